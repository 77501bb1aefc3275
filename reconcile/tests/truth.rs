//! A fixtures day through the whole data path (operators, the ledger side, the operators'
//! files ingested from storage) and then reconciled from the database: the exceptions are
//! exactly the keys and cases of `truth.json`, on both database backends, whether the date
//! is loaded whole or read in parts as the job reads it. A re-run becomes
//! the current run, keeps the history, and writes byte-identical item files.

use std::sync::Arc;

use fixtures::{Fixture, FixtureConfig};
use ledger::{BusinessDate, Currency, Ledger, LedgerSettings, MoneyRules};
use polars::prelude::IntoLazy;
use storage::{LocalStore, ObjectStore};

async fn reconciles_a_fixtures_day_to_its_truth(ledger: Arc<dyn Ledger>) {
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let mut config = FixtureConfig::new(99, date, 4_000);
    config.whole_file_defect = true;
    config.discrepancy_per_mille = 60;
    config.validations = 10;
    let fixture = Fixture::new(config);
    let dir = tempfile::tempdir().unwrap();
    let truth = fixture.write_day(dir.path()).unwrap();
    fixture.register_operators(&*ledger).await.unwrap();
    fixture.record_ledger_side(&*ledger).await.unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let report = ingest::ingest_files(
        &store as &dyn ObjectStore,
        &*ledger,
        MoneyRules::new(Currency::COP),
    )
    .await
    .unwrap();
    assert_eq!(report.rejected.len(), 1);

    let mut outputs = Vec::new();
    for _ in 0..2 {
        let (l, f) = reconcile::source::load(ledger.database(), date)
            .await
            .unwrap();
        let d = reconcile::source::days(date);
        let result = reconcile::reconcile(l.clone().lazy(), f.clone().lazy(), d).unwrap();
        let expected = truth.exception_keys();
        assert_eq!(
            result.exceptions().unwrap(),
            expected,
            "engine exceptions differ from truth.json"
        );
        // In parts of about 1,000 rows (several operators each), the stacked items and the
        // summary are the same as in one part.
        let mut parts = Vec::new();
        let summary = reconcile::reconcile_in_parts(l.lazy(), f.lazy(), d, 1_000, |part| {
            parts.push(part);
            Ok(())
        })
        .unwrap();
        assert!(parts.len() > 3, "{} parts", parts.len());
        let mut stacked = parts.remove(0);
        for part in parts {
            stacked.vstack_mut_owned(part).unwrap();
        }
        assert!(stacked.equals_missing(&result.items));
        assert!(summary.equals_missing(&result.summary));
        // Straight from the database in parts, the adjacent dates read only for one-sided
        // keys, as the job runs: the same items, summary and exceptions.
        let mut parts = Vec::new();
        let outcome = reconcile::reconcile_day(ledger.database(), date, 1_000, |part| {
            parts.push(part);
            Ok(())
        })
        .await
        .unwrap();
        assert!(parts.len() > 3, "{} parts", parts.len());
        let mut streamed = parts.remove(0);
        for part in parts {
            streamed.vstack_mut_owned(part).unwrap();
        }
        assert!(streamed.equals_missing(&result.items));
        assert!(outcome.summary.equals_missing(&result.summary));
        assert_eq!(outcome.items, result.items.height() as u64);
        assert!(
            outcome
                .exceptions
                .equals_missing(&reconcile::store::non_matched(&result.items).unwrap())
        );
        let run_id = reconcile::store::save_run(ledger.database(), date, &result)
            .await
            .unwrap();
        // The run made current is heard, with the day's counts by case.
        ledger.sequence_outbox(1_000_000).await.unwrap();
        let completed = ledger
            .outbox_after(0, 10, &[ledger::outbox::EventType::ReconciliationCompleted])
            .await
            .unwrap();
        // The newest is this run's (one per run made current).
        let completed = completed.last().into_iter().collect::<Vec<_>>();
        assert_eq!(completed[0].data["run_id"], run_id.as_str());
        assert_eq!(completed[0].data["items"], result.items.height() as i64);
        let cases = completed[0].data["cases"].as_object().unwrap();
        assert_eq!(
            cases.values().map(|n| n.as_i64().unwrap()).sum::<i64>(),
            result.items.height() as i64
        );
        testbed::events::assert_valid(&*ledger).await;
        assert_eq!(
            reconcile::store::current_exceptions(ledger.database(), date)
                .await
                .unwrap(),
            expected
        );
        let out = tempfile::tempdir().unwrap();
        result.write(out.path(), ledger::Currency::COP).unwrap();
        // The CSV reads as the reports do: amounts in pesos with two digits, instants in
        // RFC 3339 UTC.
        let csv = std::fs::read_to_string(out.path().join("items.csv")).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (amount, instant) = (at("ledger_amount"), at("ledger_occurred_at"));
        let mut seen = 0;
        for line in lines.take(200) {
            let cells: Vec<&str> = line.split(',').collect();
            if cells[amount].is_empty() {
                continue;
            }
            let (units, cents) = cells[amount]
                .trim_start_matches('-')
                .split_once('.')
                .unwrap();
            assert!(
                units.bytes().all(|b| b.is_ascii_digit()) && cents.len() == 2,
                "{line}"
            );
            assert!(
                cells[instant].ends_with('Z') && cells[instant].contains('T'),
                "{line}"
            );
            seen += 1;
        }
        assert!(seen > 0);
        let summary = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
        assert!(summary.lines().next().unwrap().contains("ledger_total"));
        outputs.push((
            std::fs::read(out.path().join("items.csv")).unwrap(),
            std::fs::read(out.path().join("items.parquet")).unwrap(),
        ));
    }
    assert_eq!(
        reconcile::store::runs(ledger.database(), date)
            .await
            .unwrap(),
        2
    );
    assert!(
        outputs[0] == outputs[1],
        "two runs wrote different item files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    reconciles_a_fixtures_day_to_its_truth(db.ledger.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await {
        reconciles_a_fixtures_day_to_its_truth(db.ledger.clone()).await;
    }
}
