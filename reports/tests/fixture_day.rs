//! A fixtures day through ingest and reconciliation, then reported: the totals tie to the
//! ledger and to `truth.json`, the discrepancies are exactly the injected keys, a re-run
//! writes a new version with byte-identical data files and moves `latest.json`. On SQLite
//! with a local folder, and on PostgreSQL with the S3-compatible server and SSE-KMS.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger::{BusinessDate, Currency, Ledger, LedgerSettings};
use storage::{LocalStore, ObjectStore};

mod support;

use support::{csv_rows, minor, prepare_day};

const KMS_KEY: &str = "alias/recaudo-reports";

async fn read(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    store.get_bytes(key).await.unwrap().to_vec()
}

async fn reports_a_fixtures_day(ledger: Arc<dyn Ledger>, store: Arc<dyn ObjectStore>) {
    let (date, truth) = prepare_day(&*ledger).await;
    let run = |run_id: &'static str| {
        reports::report(
            &*ledger,
            &*store,
            date,
            Currency::COP,
            vec![],
            reports::ReportKind::Final,
            run_id,
        )
    };
    let (_, first) = run("run-1").await.unwrap();
    assert_eq!(first.manifest.run_id, "run-1", "the job run that made it");
    assert_eq!(first.version, 1);
    assert_eq!(first.prefix, "reports/2026-11-26/v1/");
    let v1 = |name: &str| format!("reports/2026-11-26/v1/{name}");

    // Net sales tie to truth.json per operator, and so to the ledger's total.
    let summary = csv_rows(&read(&*store, &v1("settlement_summary.csv")).await);
    let net: BTreeMap<String, i64> = summary
        .iter()
        .filter(|r| r["sales_count"] != "0")
        .map(|r| (r["operator_id"].clone(), minor(&r["net_sales"])))
        .collect();
    assert_eq!(net, truth.ledger_net_by_operator);
    let lags: BTreeMap<String, u16> = ledger
        .operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.id.to_string(), o.settlement_lag_days))
        .collect();
    assert!(
        lags.values().any(|l| *l > 1),
        "some due dates cross the weekend"
    );
    for r in &summary {
        let n = minor(&r["net_sales"]);
        assert_eq!(
            n,
            minor(&r["commission"]) + minor(&r["commission_tax"]) + minor(&r["net_due"])
        );
        let lag = lags[&r["operator_id"]];
        let due = reports::settlement::due_date(date, lag, &[]);
        assert_eq!(r["due_date"], due.to_string(), "lag {lag} from a Thursday");
        let status = if r["exception_count"] == "0" {
            "BALANCED"
        } else {
            "EXCEPTIONS"
        };
        assert_eq!(r["status"], status);
        // Each operator's own file is its summary line.
        let own = csv_rows(
            &read(
                &*store,
                &v1(&format!("settlement/{}.csv", r["operator_id"])),
            )
            .await,
        );
        assert_eq!(own, vec![r.clone()]);
    }

    // The settlement is in the books: each receivable is what its operator owes for the
    // day (credit positive, so a debt is negative), once.
    let receivables = || {
        let ledger = ledger.clone();
        async move {
            let rows: Vec<(String, i64)> = ledger::on_pool!(ledger.database(), pool => {
                sqlx::query_as(
                    "SELECT id, balance FROM accounts WHERE id LIKE 'operator:%:receivable' \
                     ORDER BY id",
                )
                .fetch_all(pool)
                .await
                .unwrap()
            });
            rows
        }
    };
    let owed: Vec<(String, i64)> = summary
        .iter()
        .filter(|r| r["sales_count"] != "0")
        .map(|r| {
            let id = format!("operator:{}:receivable", r["operator_id"]);
            (id, -minor(&r["net_due"]))
        })
        .collect();
    assert_eq!(receivables().await, owed);
    let settled = ledger.check_invariants().await.unwrap();
    assert!(settled.is_sound(), "{settled:?}");

    // Exactly the injected keys, with differences that tie out per operator.
    let discrepancies = csv_rows(&read(&*store, &v1("discrepancies.csv")).await);
    let mut keys: Vec<(String, String, String)> = discrepancies
        .iter()
        .map(|r| {
            (
                r["operator_id"].clone(),
                r["operator_ref"].clone(),
                r["case"].clone(),
            )
        })
        .collect();
    keys.sort();
    let expected = truth.exception_keys();
    assert_eq!(keys, expected);
    for r in &summary {
        let sum: i64 = discrepancies
            .iter()
            .filter(|d| d["operator_id"] == r["operator_id"])
            .map(|d| minor(&d["difference"]))
            .sum();
        assert_eq!(sum, minor(&r["exception_amount"]));
    }

    // Fares and lost taps.
    let fares = csv_rows(&read(&*store, &v1("fare_distribution.csv")).await);
    let validations: i64 = fares.iter().map(|r| minor(&r["validations_amount"])).sum();
    assert_eq!(validations, truth.validations_amount_minor);
    let gaps: Vec<(String, i64, i64)> = csv_rows(&read(&*store, &v1("device_gaps.csv")).await)
        .iter()
        .map(|r| {
            (
                r["device_id"].clone(),
                r["from_seq"].parse().unwrap(),
                r["to_seq"].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(gaps, truth.gaps);
    // The stale validators' taps on cards reported hours before, and only those: a tap within
    // the grace is not one, and no other device touched a reported card after its report.
    let violations: Vec<(String, i64, i64, i64)> =
        csv_rows(&read(&*store, &v1("hotlist_violations.csv")).await)
            .iter()
            .map(|r| {
                (
                    r["device_id"].clone(),
                    r["taps"].parse().unwrap(),
                    r["cards"].parse().unwrap(),
                    r["hotlist_version"].parse().unwrap(),
                )
            })
            .collect();
    let expected: Vec<(String, i64, i64, i64)> = truth
        .hotlist_violations
        .iter()
        .map(|v| (v.device_id.clone(), v.taps, v.cards, v.hotlist_version))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(violations, expected);
    let page = String::from_utf8(read(&*store, &v1("index.html")).await).unwrap();
    assert!(page.contains(&format!("Hotlist violations ({})", expected.len())));

    // The manifest lists every file with its hash, size and rows.
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&*store, &v1("manifest.json")).await).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), first.manifest.files.len());
    for f in files {
        let bytes = read(&*store, &v1(f["path"].as_str().unwrap())).await;
        assert_eq!(f["sha256"], reports::publish::sha256_hex(&bytes));
        assert_eq!(f["bytes"], bytes.len() as u64);
    }
    let rows = |path: &str| {
        files.iter().find(|f| f["path"] == path).unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("discrepancies.csv"), truth.discrepancies.len() as u64);
    assert_eq!(
        rows("discrepancies.parquet"),
        truth.discrepancies.len() as u64
    );
    assert_eq!(rows("settlement_summary.csv"), summary.len() as u64);
    // Instants in Parquet are UTC instants (isAdjustedToUTC), as DuckDB, Spark and
    // pandas need to read them as such.
    let parquet = read(&*store, &v1("discrepancies.parquet")).await;
    use polars::prelude::SerReader;
    let mut reader = polars::prelude::ParquetReader::new(std::io::Cursor::new(parquet));
    let metadata = reader.get_metadata().unwrap();
    let instants: Vec<String> = metadata
        .schema()
        .columns()
        .iter()
        .filter(|c| {
            c.path_in_schema
                .last()
                .is_some_and(|n| n.ends_with("_occurred_at"))
        })
        .map(|c| format!("{:?}", c.descriptor.primitive_type.logical_type))
        .collect();
    assert_eq!(instants.len(), 2);
    for t in instants {
        assert!(t.contains("is_adjusted_to_utc: true"), "{t}");
    }
    assert_eq!(
        manifest["inputs"]["ledger"]["validations_amount"],
        truth.validations_amount_minor
    );
    assert!(
        !manifest["inputs"]["operator_files"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A re-run: a new version, identical data files, `latest` moved, v1 untouched.
    let (_, second) = run("run-2").await.unwrap();
    // The same figures post nothing again.
    assert_eq!(receivables().await, owed);
    assert_eq!(
        ledger.check_invariants().await.unwrap().transactions,
        settled.transactions
    );
    assert_eq!(second.version, 2);
    let latest: serde_json::Value =
        serde_json::from_slice(&read(&*store, "reports/2026-11-26/latest.json").await).unwrap();
    assert_eq!(
        latest,
        serde_json::json!({"version": 2, "prefix": "reports/2026-11-26/v2/"})
    );
    // Every data file is the same; the page says which version it is and as of when.
    let data = |files: &[reports::publish::ManifestFile]| {
        files
            .iter()
            .filter(|f| f.path != "index.html")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&first.manifest.files), data(&second.manifest.files));
    let page = String::from_utf8(read(&*store, "reports/2026-11-26/v2/index.html").await).unwrap();
    assert!(page.contains("Version 2, inputs as of "), "{page}");
    for f in data(&first.manifest.files) {
        assert_eq!(
            read(&*store, &v1(&f.path)).await,
            read(&*store, &format!("reports/2026-11-26/v2/{}", f.path)).await,
            "{} differs between runs",
            f.path
        );
    }
    assert_ne!(first.manifest.run_id, second.manifest.run_id);
    assert_eq!(
        reports::publish::versions(&*store, "2026-11-26")
            .await
            .unwrap(),
        vec![2, 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_a_local_folder() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let objects = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(objects.path()).unwrap());
    reports_a_fixtures_day(db.ledger.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_s3_with_sse_kms() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let t = match testbed::store::s3_with(|s| s.sse_kms_key_id(Some(KMS_KEY.into()))).await {
        Ok(t) => t,
        Err(e) => return testbed::service_missing("the S3-compatible server", &e),
    };
    reports_a_fixtures_day(db.ledger.clone(), t.store.clone()).await;
    // Every object, the pointers included, was written with the configured key.
    let s3 = t.s3.as_ref().unwrap();
    let objects = t.store.list("reports/").await.unwrap();
    assert!(objects.len() > 10);
    for o in objects {
        let head = s3
            .client()
            .head_object()
            .bucket(s3.bucket())
            .key(format!("tenant/{}", o.key))
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("aws:kms"),
            "{}",
            o.key
        );
        assert_eq!(head.ssekms_key_id(), Some(KMS_KEY), "{}", o.key);
    }
}

#[tokio::test]
async fn a_date_never_reconciled_is_refused_with_the_command_to_run() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let objects = tempfile::tempdir().unwrap();
    let store = LocalStore::new(objects.path()).unwrap();
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let err = refused(&*db.ledger, &store, date).await;
    assert!(matches!(err, reports::ReportError::NotReconciled(_)));
    assert!(
        err.to_string()
            .contains("recaudo reconcile --date 2026-11-26")
    );
    assert!(
        store.list("").await.unwrap().is_empty(),
        "nothing published"
    );
}

/// A sale recorded after the reconciliation: the report refuses, and says the amounts as
/// finance reads them and what to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_changed_since_its_reconciliation_is_refused_in_pesos() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let (date, truth) = prepare_day(&*db.ledger).await;
    let operator = truth.ledger_net_by_operator.keys().next().unwrap().clone();
    db.ledger
        .record_sale(&ledger::journal::NewSale {
            operator_id: ledger::OperatorId::parse(&operator).unwrap(),
            operator_ref: ledger::OperatorRef::parse("LATE-1").unwrap(),
            card_id: ledger::CardId::parse("CARD0000000001").unwrap(),
            amount: ledger::Money::new(123_450, Currency::COP),
            point_of_sale: ledger::PointOfSale::parse("POS-1").unwrap(),
            occurred_at: chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00-05:00")
                .unwrap()
                .into(),
        })
        .await
        .unwrap();
    let objects = tempfile::tempdir().unwrap();
    let store = LocalStore::new(objects.path()).unwrap();
    let err = refused(&*db.ledger, &store, date).await;
    let text = err.to_string();
    let net = truth.ledger_net_by_operator[&operator] + 123_450;
    let pesos = ledger::Money::new(net, Currency::COP).to_string();
    assert!(text.contains(&pesos), "{text} should say {pesos}");
    assert!(text.contains("reconcile 2026-11-26 again"), "{text}");
}

/// The error a final report of `date` is refused with.
async fn refused(
    ledger: &dyn Ledger,
    store: &dyn ObjectStore,
    date: BusinessDate,
) -> reports::ReportError {
    reports::report(
        ledger,
        store,
        date,
        Currency::COP,
        vec![],
        reports::ReportKind::Final,
        "run-1",
    )
    .await
    .err()
    .expect("refused")
}
