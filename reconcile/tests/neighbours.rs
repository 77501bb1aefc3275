//! The adjacent dates as the job reads them from the database: only for the keys one side
//! alone has on the date, from the neighbours' files in force, with their VOIDs. Each key
//! below is one way a neighbour decides a case; the parts read from the database must give
//! what the whole three days loaded at once give, on both backends.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ledger::journal::NewSale;
use ledger::{
    BusinessDate, CardId, Currency, Ledger, LedgerSettings, Money, MoneyRules, OperatorId,
    OperatorRef, PointOfSale,
};
use polars::prelude::IntoLazy;
use storage::{LocalStore, ObjectStore};

const CARD: &str = "CARD0000123456";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

/// An operator file of OP001 for `date` (`2026-11-26`) with sequence `seq`; each detail is
/// `(kind, ref, occurred_at, voided_ref)`, every amount 20000.00.
fn file(date: &str, seq: u32, details: &[(&str, &str, &str, &str)]) -> (String, Bytes) {
    let compact = date.replace('-', "");
    let mut lines = vec![format!("H,1,OP001,{date},{seq:03},{date}T23:00:00-05:00")];
    let (mut sales, mut voids) = (0, 0);
    for (kind, r, occurred, voided) in details {
        lines.push(format!(
            "D,{kind},{r},{occurred},{CARD},20000.00,COP,POS-1,{voided}"
        ));
        if *kind == "SALE" {
            sales += 20000;
        } else {
            voids += 20000;
        }
    }
    lines.push(format!("T,{},{sales}.00,{voids}.00", details.len()));
    let key = format!("incoming/OP001/{date}/OP001_{compact}_{seq:03}.csv");
    (key, Bytes::from(lines.join("\n") + "\n"))
}

async fn the_neighbours_decide_only_one_sided_keys(ledger: Arc<dyn Ledger>) {
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let sale = |r: &str, occurred: &str| NewSale {
        operator_id: OperatorId::parse("OP001").unwrap(),
        operator_ref: OperatorRef::parse(r).unwrap(),
        card_id: CardId::parse(CARD).unwrap(),
        amount: Money::new(2_000_000, Currency::COP),
        point_of_sale: PointOfSale::parse("POS-1").unwrap(),
        occurred_at: at(occurred),
    };
    // A: sold on the 25th, claimed by the 26th's file. B: voided in the ledger, the void
    // in the 27th's file. C: claimed only by a superseded file of the 27th. E: claimed by
    // the 27th's file in force. G: on both sides. H: claimed by the 28th's file, which is
    // no neighbour.
    let ids = ledger
        .import_sales(&[
            sale("A", "2026-11-25T10:00:00-05:00"),
            sale("B", "2026-11-26T10:00:00-05:00"),
            sale("C", "2026-11-26T10:01:00-05:00"),
            sale("E", "2026-11-26T10:02:00-05:00"),
            sale("G", "2026-11-26T10:03:00-05:00"),
            sale("H", "2026-11-26T10:04:00-05:00"),
        ])
        .await
        .unwrap();
    let op = OperatorId::parse("OP001").unwrap();
    ledger
        .import_voids(&[(op, ids[1].unwrap(), at("2026-11-26T10:10:00-05:00"))])
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let d26 = "2026-11-26T10:00:00-05:00";
    let d27 = "2026-11-27T10:00:00-05:00";
    let files = [
        file(
            "2026-11-26",
            1,
            &[
                ("SALE", "A", d26, ""),
                ("SALE", "B", d26, ""),
                ("SALE", "F", d26, ""),
                ("SALE", "G", "2026-11-26T10:03:00-05:00", ""),
            ],
        ),
        file("2026-11-27", 1, &[("SALE", "C", d27, "")]),
        file(
            "2026-11-27",
            2,
            &[("SALE", "E", d27, ""), ("VOID", "B-V", d27, "B")],
        ),
        file(
            "2026-11-28",
            1,
            &[("SALE", "H", "2026-11-28T10:00:00-05:00", "")],
        ),
    ];
    for (key, bytes) in files {
        store.put(&key, bytes).await.unwrap();
    }
    let report = ingest::ingest_files(
        &store as &dyn ObjectStore,
        &*ledger,
        MoneyRules::new(Currency::COP),
    )
    .await
    .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);

    let date = BusinessDate::parse("2026-11-26").unwrap();
    let (l, f) = reconcile::source::load(ledger.database(), date)
        .await
        .unwrap();
    let whole = reconcile::reconcile(l.lazy(), f.lazy(), reconcile::source::days(date)).unwrap();
    let mut parts = Vec::new();
    let outcome = reconcile::reconcile_day(ledger.database(), date, 1, |part| {
        parts.push(part);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(parts.len(), 1);
    assert!(parts[0].equals_missing(&whole.items));
    assert!(outcome.summary.equals_missing(&whole.summary));

    let cases: Vec<(String, String)> = {
        let items = &parts[0];
        let refs = items.column("operator_ref").unwrap().str().unwrap();
        let cases = items.column("case").unwrap().str().unwrap();
        (0..items.height())
            .map(|k| {
                (
                    refs.get(k).unwrap().to_string(),
                    cases.get(k).unwrap().to_string(),
                )
            })
            .collect()
    };
    let expected = [
        ("A", "TIMING"),
        ("B", "MATCHED"),
        ("C", "MISSING_IN_FILE"),
        ("E", "TIMING"),
        ("F", "MISSING_IN_LEDGER"),
        ("G", "MATCHED"),
        ("H", "MISSING_IN_FILE"),
    ]
    .map(|(r, c)| (r.to_string(), c.to_string()));
    assert_eq!(cases, expected);
    // What the file said of G, as staged: its card, amount and instant.
    let g = parts[0]
        .clone()
        .lazy()
        .filter(polars::prelude::col("operator_ref").eq(polars::prelude::lit("G")))
        .collect()
        .unwrap();
    let text = |name: &str| {
        g.column(name)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .map(str::to_string)
    };
    let int = |name: &str| g.column(name).unwrap().i64().unwrap().get(0);
    assert_eq!(text("file_card_id").as_deref(), Some(CARD));
    assert_eq!(int("file_amount"), Some(2_000_000));
    assert_eq!(
        int("file_occurred_at"),
        Some(at("2026-11-26T10:03:00-05:00").timestamp_micros())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    a_date_without_operators_is_an_empty_run(db.ledger.clone()).await;
    the_neighbours_decide_only_one_sided_keys(db.ledger.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await {
        a_date_without_operators_is_an_empty_run(db.ledger.clone()).await;
        the_neighbours_decide_only_one_sided_keys(db.ledger.clone()).await;
    }
}

/// A date before any operator is registered (run first, on the fresh ledger): an empty run
/// with the items' columns, not an error (PostgreSQL once got `IN ()`).
async fn a_date_without_operators_is_an_empty_run(ledger: Arc<dyn Ledger>) {
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let mut parts = Vec::new();
    let outcome = reconcile::reconcile_day(
        ledger.database(),
        date,
        reconcile::engine::PART_ROWS,
        |part| {
            parts.push(part);
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.items, 0);
    assert_eq!(outcome.exceptions.height(), 0);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].column("operator_ref").is_ok());
}
