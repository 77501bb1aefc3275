//! A reconciled fixtures day in a ledger, and CSV reading for the assertions.

#![allow(dead_code)]

use std::collections::BTreeMap;

use fixtures::{Fixture, FixtureConfig, Truth};
use ledger::{BusinessDate, Currency, Ledger, MoneyRules};
use polars::prelude::IntoLazy;
use storage::{LocalStore, ObjectStore};

pub fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            // The fixtures' texts hold no commas or quotes, so a plain split reads them.
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

pub fn minor(decimal: &str) -> i64 {
    ledger::money::parse_minor("amount", decimal.trim_start_matches('-'), 2).unwrap()
        * if decimal.starts_with('-') { -1 } else { 1 }
}

/// Ingests, posts and reconciles a fixtures day with injected discrepancies and lost taps.
pub async fn prepare_day(ledger: &dyn Ledger) -> (BusinessDate, Truth) {
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let dir = tempfile::tempdir().unwrap();
    (date, prepare_day_on(ledger, date, dir.path()).await)
}

/// Reconciles `date` as the reconcile job does: the run saved and made current, then the
/// date's exception cases brought in line with it.
pub async fn reconcile_date(ledger: &dyn Ledger, date: BusinessDate) -> String {
    let (l, f) = reconcile::source::load(ledger.database(), date)
        .await
        .unwrap();
    let result = reconcile::reconcile(l.lazy(), f.lazy(), reconcile::source::days(date)).unwrap();
    let run_id = reconcile::store::save_run(ledger.database(), date, &result)
        .await
        .unwrap();
    exceptions::sync_run(ledger.database(), date, &run_id, ledger.settings().currency)
        .await
        .unwrap();
    run_id
}

/// `prepare_day` on another date, with the fixtures and the ingested files (under
/// `processed/`) kept in `dir`.
pub async fn prepare_day_on(
    ledger: &dyn Ledger,
    date: BusinessDate,
    dir: &std::path::Path,
) -> Truth {
    prepare_seeded_day(ledger, date, dir, 7, 2_000).await
}

/// `prepare_day_on` with another seed and number of validations. Days share cards: taps of
/// one day spend top-ups that a later day's voids would need back, so only one day taps.
pub async fn prepare_seeded_day(
    ledger: &dyn Ledger,
    date: BusinessDate,
    dir: &std::path::Path,
    seed: u64,
    validations: u64,
) -> Truth {
    let mut config = FixtureConfig::new(seed, date, 3_000);
    config.discrepancy_per_mille = 60;
    config.validations = validations;
    config.devices = 20;
    let fixture = Fixture::new(config);
    let truth = fixture.write_day(dir).unwrap();
    fixture.register_operators(ledger).await.unwrap();
    fixture.record_ledger_side(ledger).await.unwrap();
    let rules = MoneyRules::new(Currency::COP);
    let store = LocalStore::new(dir).unwrap();
    ingest::ingest_files(&store as &dyn ObjectStore, ledger, rules)
        .await
        .unwrap();
    ingest::validations::ingest_event_folder(ledger, &rules, &dir.join("events"), 500)
        .await
        .unwrap();
    reconcile_date(ledger, date).await;
    truth
}

/// What a final first version says of itself.
pub fn final_meta() -> reports::ReportMeta {
    reports::ReportMeta {
        kind: reports::ReportKind::Final,
        version: Some(1),
        as_of: "2026-11-27T05:00:00Z".into(),
    }
}
