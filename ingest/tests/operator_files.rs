//! Operator files as operators really send them: a corpus of good and bad files, each
//! accepted or rejected exactly as DESIGN.md says, on SQLite with a local folder and on
//! PostgreSQL with the S3-compatible server.

use std::sync::Arc;

use bytes::Bytes;
use ingest::{FileOutcome, ingest_file};
use ledger::{Currency, Database, Ledger, LedgerSettings, MoneyRules};
use storage::{LocalStore, ObjectStore, S3Settings, S3Store};

const KEY: &str = "incoming/OP001/2026-11-26/OP001_20261126_001.csv";
const H: &str = "H,1,OP001,2026-11-26,001,2026-11-27T01:00:00-05:00";
const SALE: &str =
    "D,SALE,OP001-000123,2026-11-26T08:15:02-05:00,CARD0000123456,20000.00,COP,POS-17,";
const VOID: &str =
    "D,VOID,OP001-000124,2026-11-26T08:20:00-05:00,CARD0000123456,20000.00,COP,POS-17,OP001-000123";
const T: &str = "T,2,20000.00,20000.00";

fn file(lines: &[&str]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn with_detail(detail: &str) -> Vec<u8> {
    file(&[H, detail, "T,1,20000.00,0.00"])
}

/// A file of the corpus: its name, its bytes, and `None` when it must be accepted or the
/// line and the field (or a fragment of the reason) its rejection must name.
type Case = (&'static str, Vec<u8>, Option<(u64, &'static str)>);

fn corpus() -> Vec<Case> {
    let mut long = String::from("D,SALE,OP001-1,2026-11-26T08:15:02-05:00,CARD1,1.00,COP,POS-1,");
    long.push_str(&"x".repeat(10_000));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(file(&[H, SALE, VOID, T]));
    let mut bad_utf8 = file(&[H]);
    bad_utf8.extend(b"D,SALE,OP001-1,2026-11-26T08:15:02-05:00,CARD\xFF\xFE,1.00,COP,POS-1,\n");
    bad_utf8.extend(b"T,1,1.00,0.00\n");
    vec![
        ("valid", file(&[H, SALE, VOID, T]), None),
        ("bom", bom, None),
        (
            "crlf",
            file(&[H, SALE, VOID, T])
                .iter()
                .flat_map(|b| {
                    if *b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![*b]
                    }
                })
                .collect(),
            None,
        ),
        (
            "no final newline",
            file(&[H, SALE, VOID, T])
                .strip_suffix(b"\n")
                .unwrap()
                .to_vec(),
            None,
        ),
        (
            "duplicate ref with other content (a reconciliation case, not a bad file)",
            file(&[
                H,
                SALE,
                &SALE.replace("20000.00", "30000.00"),
                "T,2,50000.00,0.00",
            ]),
            None,
        ),
        (
            "quoted fields, as spreadsheets and CSV libraries write them",
            with_detail(
                "D,\"SALE\",\"OP001-1\",2026-11-26T08:15:02-05:00,CARD1,\"20000.00\",COP,POS-1,\"\"",
            ),
            None,
        ),
        (
            "a quoted comma is part of its field",
            with_detail("D,SALE,OP001-1,2026-11-26T08:15:02-05:00,CARD1,20000.00,COP,\"POS,1\","),
            Some((2, "point_of_sale")),
        ),
        (
            "a quote left open",
            with_detail("D,\"SALE,OP001-1,2026-11-26T08:15:02-05:00,CARD1,20000.00,COP,POS-1,"),
            Some((2, "quoted field is not closed")),
        ),
        (
            "text after a closing quote",
            with_detail("D,\"SA\"LE,OP001-1,2026-11-26T08:15:02-05:00,CARD1,20000.00,COP,POS-1,"),
            Some((2, "after its closing quote")),
        ),
        ("empty", Vec::new(), Some((0, "empty"))),
        ("header only", file(&[H]), Some((0, "trailer"))),
        ("missing trailer", file(&[H, SALE]), Some((0, "trailer"))),
        (
            "trailer count wrong",
            file(&[H, SALE, VOID, "T,3,20000.00,20000.00"]),
            Some((4, "record_count")),
        ),
        (
            "trailer totals wrong",
            file(&[H, SALE, VOID, "T,2,20000.01,20000.00"]),
            Some((4, "sales_total")),
        ),
        (
            "operator not matching the key",
            file(&[&H.replace(",OP001,", ",OP002,"), SALE, VOID, T]),
            Some((1, "operator_id")),
        ),
        (
            "date not matching the key",
            file(&[&H.replace("2026-11-26", "2026-11-25"), SALE, VOID, T]),
            Some((1, "business_date")),
        ),
        (
            "sequence not matching the name",
            file(&[&H.replace(",001,", ",002,"), SALE, VOID, T]),
            Some((1, "seq")),
        ),
        (
            "three-decimal amount",
            with_detail(&SALE.replace("20000.00", "20000.001")),
            Some((2, "amount")),
        ),
        (
            "negative amount",
            with_detail(&SALE.replace("20000.00", "-20000.00")),
            Some((2, "amount")),
        ),
        (
            "zero amount",
            with_detail(&SALE.replace("20000.00", "0.00")),
            Some((2, "amount")),
        ),
        (
            "non-numeric amount",
            with_detail(&SALE.replace("20000.00", "veinte")),
            Some((2, "amount")),
        ),
        (
            "unknown currency",
            with_detail(&SALE.replace(",COP,", ",XYZ,")),
            Some((2, "currency")),
        ),
        (
            "other currency",
            with_detail(&SALE.replace(",COP,", ",USD,")),
            Some((2, "currency")),
        ),
        (
            "invalid timestamp",
            with_detail(&SALE.replace("2026-11-26T08:15:02-05:00", "2026-11-26 08:15")),
            Some((2, "occurred_at")),
        ),
        (
            "timestamp without offset",
            with_detail(&SALE.replace("2026-11-26T08:15:02-05:00", "2026-11-26T08:15:02")),
            Some((2, "occurred_at")),
        ),
        ("invalid UTF-8", bad_utf8, Some((2, "UTF-8"))),
        (
            "unknown record type",
            file(&[H, SALE, "X,1,2,3", "T,1,20000.00,0.00"]),
            Some((3, "record_type")),
        ),
        (
            "VOID without voided ref",
            with_detail(&VOID.replace(",OP001-000123", ",")),
            Some((2, "voided_ref")),
        ),
        (
            "SALE naming a voided ref",
            with_detail(&format!("{SALE}OP001-9")),
            Some((2, "voided_ref")),
        ),
        (
            "absurdly long line",
            file(&[H, SALE, &long, "T,1,20000.00,0.00"]),
            Some((3, "longer than")),
        ),
        (
            "wrong number of fields",
            with_detail("D,SALE,OP001-1,2026-11-26T08:15:02-05:00,CARD1"),
            Some((2, "9 fields")),
        ),
        (
            "bad card id",
            with_detail(&SALE.replace("CARD0000123456", "card-1")),
            Some((2, "card_id")),
        ),
        (
            "a second header",
            file(&[H, H, SALE, "T,1,20000.00,0.00"]),
            Some((2, "record_type")),
        ),
        (
            "records after the trailer",
            file(&[H, SALE, "T,1,20000.00,0.00", SALE]),
            Some((4, "trailer")),
        ),
        (
            "blank line inside",
            file(&[H, "", SALE, "T,1,20000.00,0.00"]),
            Some((2, "empty line")),
        ),
        (
            "first record not a header",
            file(&[SALE, "T,1,20000.00,0.00"]),
            Some((1, "header")),
        ),
        (
            "unsupported format version",
            file(&[&H.replace("H,1,", "H,2,"), SALE, VOID, T]),
            Some((1, "format_version")),
        ),
    ]
}

struct Env {
    ledger: Arc<dyn Ledger>,
    store: Arc<dyn ObjectStore>,
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

/// OP001 sends the files here; OP009 is registered but inactive.
async fn register(ledger: &dyn Ledger) {
    add_operator(ledger, "OP001", true).await;
    add_operator(ledger, "OP009", false).await;
}

async fn add_operator(ledger: &dyn Ledger, id: &str, active: bool) {
    ledger
        .add_operator(&ledger::Operator {
            id: ledger::OperatorId::parse(id).unwrap(),
            name: ledger::OperatorName::parse("Tienda").unwrap(),
            commission_rate: ledger::Rate::parse("commission_rate", "0.035").unwrap(),
            tax_rate: ledger::Rate::parse("tax_rate", "0.19").unwrap(),
            void_window: ledger::VoidWindow::parse("30m").unwrap(),
            settlement_lag_days: 1,
            active,
        })
        .await
        .unwrap();
}

async fn sqlite_env() -> Env {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    register(&*db.ledger).await;
    let dir = tempfile::tempdir().unwrap();
    Env {
        ledger: db.ledger.clone(),
        store: Arc::new(LocalStore::new(dir.path()).unwrap()),
        _keep: vec![Box::new(db), Box::new(dir)],
    }
}

async fn postgres_env() -> Option<Env> {
    let db = testbed::postgres_ledger(LedgerSettings::default()).await?;
    register(&*db.ledger).await;
    let Ok(endpoint) = std::env::var("RECAUDO_TEST_S3_ENDPOINT") else {
        testbed::service_missing(
            "the S3-compatible server",
            "RECAUDO_TEST_S3_ENDPOINT is not set",
        );
        return None;
    };
    let bucket = format!("recaudo-ingest-{}", uuid::Uuid::new_v4().simple());
    let store = S3Store::new(S3Settings {
        bucket: bucket.clone(),
        prefix: String::new(),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        sse_kms_key_id: None,
        static_credentials: Some(("test".into(), "test".into())),
    })
    .await;
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    Some(Env {
        ledger: db.ledger.clone(),
        store: Arc::new(store),
        _keep: vec![Box::new(db)],
    })
}

fn rules() -> MoneyRules {
    MoneyRules::new(Currency::COP)
}

async fn staged_records(ledger: &dyn Ledger) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM operator_file_records";
    match ledger.database() {
        Database::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap(),
        Database::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap(),
    }
}

/// Case `i` of the corpus under a sequence of its own (`100 + i`, in the name and in the
/// header), since a sequence once accepted cannot take other bytes.
fn as_seq(i: usize, bytes: &[u8]) -> (String, Vec<u8>) {
    let seq = format!("{:03}", 100 + i);
    let key = format!("incoming/OP001/2026-11-26/OP001_20261126_{seq}.csv");
    let text = bytes.to_vec();
    let end = text.iter().position(|b| *b == b'\n').unwrap_or(text.len());
    let first = String::from_utf8_lossy(&text[..end]).replacen(",001,", &format!(",{seq},"), 1);
    let mut out = first.into_bytes();
    out.extend_from_slice(&text[end..]);
    (key, out)
}

async fn the_corpus_is_accepted_or_rejected_as_designed(env: Env) {
    let mut expected_records = 0;
    let (mut files_accepted, mut files_rejected) = (0, 0);
    for (i, (name, bytes, expected)) in corpus().into_iter().enumerate() {
        let (key, bytes) = as_seq(i, &bytes);
        env.store
            .put(&key, Bytes::from(bytes.clone()))
            .await
            .unwrap();
        let outcome = ingest_file(&*env.store, &*env.ledger, rules(), &key)
            .await
            .unwrap();
        assert!(
            env.store.head(&key).await.is_err(),
            "{name}: still in incoming/"
        );
        let rejected = key.replacen("incoming/", "rejected/", 1);
        match expected {
            None => {
                let FileOutcome::Accepted { records } = outcome else {
                    let report = env
                        .store
                        .get_bytes(&format!("{rejected}.errors.json"))
                        .await;
                    panic!(
                        "{name}: {outcome:?} {:?}",
                        report.map(|b| String::from_utf8_lossy(&b).to_string())
                    );
                };
                // Every accepted variant differs in bytes, so none is a duplicate.
                expected_records += records as i64;
                files_accepted += 1;
                let processed = key.replacen("incoming/", "processed/", 1);
                assert_eq!(
                    env.store.get_bytes(&processed).await.unwrap(),
                    bytes,
                    "{name}: kept as sent"
                );
            }
            Some((line, what)) => {
                assert!(
                    matches!(outcome, FileOutcome::Rejected { .. }),
                    "{name}: {outcome:?}"
                );
                files_rejected += 1;
                let report: serde_json::Value = serde_json::from_slice(
                    &env.store
                        .get_bytes(&format!("{rejected}.errors.json"))
                        .await
                        .unwrap(),
                )
                .unwrap();
                let errors = report["errors"].as_array().unwrap();
                assert!(
                    errors.iter().any(|e| e["line"] == line
                        && (e["field"].as_str() == Some(what)
                            || e["reason"].as_str().unwrap().contains(what))),
                    "{name}: expected line {line} / {what}, got {report}"
                );
                assert!(
                    env.store.get_bytes(&rejected).await.unwrap() == bytes,
                    "{name}: the rejected file is kept as sent"
                );
            }
        }
        assert_eq!(
            staged_records(&*env.ledger).await,
            expected_records,
            "{name}: staged records"
        );
    }
    // Each file's outcome is an event, and each event matches its schema.
    assert_eq!(
        events_of(&env, "co.recaudo.operator_file.accepted.v1").await,
        files_accepted
    );
    assert_eq!(
        events_of(&env, "co.recaudo.operator_file.rejected.v1").await,
        files_rejected
    );
    testbed::events::assert_valid(&*env.ledger).await;
}

async fn events_of(env: &Env, event_type: &str) -> i64 {
    const SQL: &str = "SELECT count(*) FROM outbox WHERE type = $1";
    match env.ledger.database() {
        Database::Postgres(p) => sqlx::query_scalar(SQL).bind(event_type).fetch_one(p).await,
        Database::Sqlite(p) => sqlx::query_scalar(SQL).bind(event_type).fetch_one(p).await,
    }
    .unwrap()
}

async fn a_bad_name_is_rejected_with_a_report(env: Env) {
    let key = "incoming/OP001/2026-11-26/sales.csv";
    env.store
        .put(key, Bytes::from(file(&[H, SALE, VOID, T])))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), key)
        .await
        .unwrap();
    assert!(matches!(outcome, FileOutcome::Rejected { .. }));
    let report = env
        .store
        .get_bytes("rejected/OP001/2026-11-26/sales.csv.errors.json")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&report).contains("object_key"));
}

async fn the_same_file_twice_is_staged_once_and_a_later_seq_supersedes(env: Env) {
    let bytes = Bytes::from(file(&[H, SALE, VOID, T]));
    env.store.put(KEY, bytes.clone()).await.unwrap();
    let report = ingest::ingest_files(&*env.store, &*env.ledger, rules())
        .await
        .unwrap();
    assert_eq!(report.accepted, [KEY]);
    env.store.put(KEY, bytes).await.unwrap();
    let again = ingest::ingest_files(&*env.store, &*env.ledger, rules())
        .await
        .unwrap();
    assert_eq!((again.accepted.len(), again.duplicates.len()), (0, 1));
    assert_eq!(staged_records(&*env.ledger).await, 2);

    let key2 = "incoming/OP001/2026-11-26/OP001_20261126_002.csv";
    let second = file(&[&H.replace(",001,", ",002,"), SALE, "T,1,20000.00,0.00"]);
    env.store.put(key2, Bytes::from(second)).await.unwrap();
    ingest::ingest_files(&*env.store, &*env.ledger, rules())
        .await
        .unwrap();
    let date = ledger::BusinessDate::parse("2026-11-26").unwrap();
    let latest = ingest::staging::latest_accepted_file(env.ledger.database(), "OP001", date)
        .await
        .unwrap();
    assert_eq!(latest.map(|(_, seq)| seq), Some(2));
    // Both files are kept.
    assert_eq!(staged_records(&*env.ledger).await, 3);
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn report_of(env: &Env, key: &str) -> serde_json::Value {
    serde_json::from_slice(
        &env.store
            .get_bytes(&format!("{key}.errors.json"))
            .await
            .unwrap(),
    )
    .unwrap()
}

/// Every file row's kept object still has the bytes the row fingerprints.
async fn every_kept_object_matches_its_row(env: &Env) {
    const SQL: &str = "SELECT COALESCE(stored_key, object_key), sha256 FROM operator_files";
    let rows: Vec<(String, String)> = match env.ledger.database() {
        Database::Postgres(p) => sqlx::query_as(SQL).fetch_all(p).await.unwrap(),
        Database::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await.unwrap(),
    };
    assert!(!rows.is_empty());
    for (kept, expected) in rows {
        let bytes = env.store.get_bytes(&kept).await.unwrap();
        assert_eq!(sha(&bytes), expected, "{kept} no longer has its bytes");
    }
}

async fn other_bytes_under_an_accepted_seq_are_rejected_and_nothing_kept_is_overwritten(env: Env) {
    let first = file(&[H, SALE, VOID, T]);
    env.store
        .put(KEY, Bytes::from(first.clone()))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Accepted { records: 2 });
    let processed = "processed/OP001/2026-11-26/OP001_20261126_001.csv";
    let rejected = "rejected/OP001/2026-11-26/OP001_20261126_001.csv";

    // The operator "corrects" the amount and sends it again under the same name and seq.
    let second = file(&[
        H,
        &SALE.replace("20000.00", "25000.00"),
        "T,1,25000.00,0.00",
    ]);
    env.store
        .put(KEY, Bytes::from(second.clone()))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Rejected { errors: 1 });
    let report = report_of(&env, rejected).await;
    let reason = report["errors"][0]["reason"].as_str().unwrap();
    assert_eq!(report["errors"][0]["field"], "seq");
    assert!(reason.contains("higher sequence, such as 002"), "{reason}");
    assert!(reason.contains(&sha(&first)), "{reason}");

    // A third version under the same name is kept beside the second, not over it.
    let third = file(&[
        H,
        &SALE.replace("20000.00", "30000.00"),
        "T,1,30000.00,0.00",
    ]);
    env.store
        .put(KEY, Bytes::from(third.clone()))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Rejected { errors: 1 });
    let third_kept = format!(
        "rejected/OP001/2026-11-26/OP001_20261126_001.{}.csv",
        &sha(&third)[..16]
    );
    assert_eq!(env.store.get_bytes(processed).await.unwrap(), first);
    assert_eq!(env.store.get_bytes(rejected).await.unwrap(), second);
    assert_eq!(env.store.get_bytes(&third_kept).await.unwrap(), third);
    assert_eq!(
        report_of(&env, &third_kept).await["errors"][0]["field"],
        "seq"
    );
    every_kept_object_matches_its_row(&env).await;

    // Only the first is in force, with its two records.
    let date = ledger::BusinessDate::parse("2026-11-26").unwrap();
    let (id, seq) = ingest::staging::latest_accepted_file(env.ledger.database(), "OP001", date)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seq, 1);
    assert_eq!(staged_records(&*env.ledger).await, 2, "file {id}");
}

async fn the_same_bytes_under_another_key_are_set_aside_with_a_report(env: Env) {
    let bytes = file(&[H, SALE, VOID, T]);
    env.store
        .put(KEY, Bytes::from(bytes.clone()))
        .await
        .unwrap();
    ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    // The same bytes, sent again under the next sequence's name.
    let other = "incoming/OP001/2026-11-26/OP001_20261126_002.csv";
    env.store
        .put(other, Bytes::from(bytes.clone()))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), other)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Duplicate);
    let kept = "rejected/OP001/2026-11-26/OP001_20261126_002.csv";
    assert_eq!(env.store.get_bytes(kept).await.unwrap(), bytes);
    let report = report_of(&env, kept).await;
    assert_eq!(report["duplicate_of"]["object_key"], KEY);
    assert_eq!(
        report["duplicate_of"]["kept_at"],
        "processed/OP001/2026-11-26/OP001_20261126_001.csv"
    );
    assert!(report["note"].as_str().unwrap().contains(KEY));
    // The same object sent twice is only taken out of incoming/.
    env.store
        .put(KEY, Bytes::from(bytes.clone()))
        .await
        .unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Duplicate);
    assert!(env.store.head(KEY).await.is_err());
    assert!(
        env.store
            .head("rejected/OP001/2026-11-26/OP001_20261126_001.csv")
            .await
            .is_err()
    );
    assert_eq!(staged_records(&*env.ledger).await, 2);
}

async fn files_of_unknown_or_inactive_operators_are_rejected(env: Env) {
    for (operator, reason) in [("OP404", "is not registered"), ("OP009", "is not active")] {
        let key = format!("incoming/{operator}/2026-11-26/{operator}_20261126_001.csv");
        let bytes = file(&[H, SALE, VOID, T])
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
            .replace("OP001", operator);
        env.store.put(&key, Bytes::from(bytes)).await.unwrap();
        let outcome = ingest_file(&*env.store, &*env.ledger, rules(), &key)
            .await
            .unwrap();
        assert_eq!(outcome, FileOutcome::Rejected { errors: 1 }, "{operator}");
        let kept = key.replacen("incoming/", "rejected/", 1);
        let report = report_of(&env, &kept).await;
        assert_eq!(report["errors"][0]["field"], "operator_id");
        let text = report["errors"][0]["reason"].as_str().unwrap();
        assert!(
            text.contains(&format!("operator {operator} {reason}")),
            "{text}"
        );
    }
    assert_eq!(staged_records(&*env.ledger).await, 0);
    // Once registered, the same file sent again goes in.
    add_operator(&*env.ledger, "OP404", true).await;
    let key = "incoming/OP404/2026-11-26/OP404_20261126_001.csv";
    let bytes = env
        .store
        .get_bytes("rejected/OP404/2026-11-26/OP404_20261126_001.csv")
        .await
        .unwrap();
    env.store.put(key, bytes).await.unwrap();
    let outcome = ingest_file(&*env.store, &*env.ledger, rules(), key)
        .await
        .unwrap();
    assert_eq!(outcome, FileOutcome::Accepted { records: 2 });
    // Two refusals (not recorded: their events stand alone) and the acceptance.
    assert_eq!(
        events_of(&env, "co.recaudo.operator_file.rejected.v1").await,
        2
    );
    assert_eq!(
        events_of(&env, "co.recaudo.operator_file.accepted.v1").await,
        1
    );
    testbed::events::assert_valid(&*env.ledger).await;
}

/// The input counters of 2026-11-25 to 2026-11-28.
async fn input_seqs(env: &Env) -> Vec<i64> {
    let mut out = Vec::new();
    for d in ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"] {
        let date = ledger::BusinessDate::parse(d).unwrap();
        out.push(
            ledger::date_status::input_seq(env.ledger.database(), date)
                .await
                .unwrap(),
        );
    }
    out
}

async fn an_accepted_file_moves_its_date_and_both_neighbours_on(env: Env) {
    assert_eq!(input_seqs(&env).await, [0, 0, 0, 0]);
    env.store
        .put(KEY, Bytes::from(file(&[H, SALE, VOID, T])))
        .await
        .unwrap();
    ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(input_seqs(&env).await, [1, 1, 1, 0]);
    // A rejected file changes no figure, only its date's page (which lists it): only its
    // own date moves.
    env.store
        .put(KEY, Bytes::from(file(&[H, SALE])))
        .await
        .unwrap();
    ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    assert_eq!(input_seqs(&env).await, [1, 2, 1, 0]);
}

async fn a_trailer_count_says_lines_and_parsed_records(env: Env) {
    // A detail line with a field missing: its own error, and the trailer's count of lines
    // is right.
    let short = "D,SALE,OP001-000125,2026-11-26T08:15:02-05:00,CARD0000123456,20000.00,COP";
    env.store
        .put(
            KEY,
            Bytes::from(file(&[H, SALE, short, "T,2,20000.00,0.00"])),
        )
        .await
        .unwrap();
    ingest_file(&*env.store, &*env.ledger, rules(), KEY)
        .await
        .unwrap();
    let rejected = "rejected/OP001/2026-11-26/OP001_20261126_001.csv";
    let report = report_of(&env, rejected).await;
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["line"], 3);
    // A trailer that counts one more line than there is says both counts.
    let key = "incoming/OP001/2026-11-26/OP001_20261126_002.csv";
    let h2 = H.replace(",001,", ",002,");
    env.store
        .put(
            key,
            Bytes::from(file(&[&h2, SALE, short, "T,3,20000.00,0.00"])),
        )
        .await
        .unwrap();
    ingest_file(&*env.store, &*env.ledger, rules(), key)
        .await
        .unwrap();
    let report = report_of(&env, "rejected/OP001/2026-11-26/OP001_20261126_002.csv").await;
    let trailer = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "record_count")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        trailer["reason"],
        "the trailer says 3 detail records; the file has 2 detail lines, 1 of them parsed"
    );
}

macro_rules! on_both {
    ($($scenario:ident),*) => {
        mod sqlite_local { $( #[tokio::test] async fn $scenario() { super::$scenario(super::sqlite_env().await).await } )* }
        mod postgres_s3 { $( #[tokio::test] async fn $scenario() { if let Some(env) = super::postgres_env().await { super::$scenario(env).await } } )* }
    };
}

on_both!(
    the_corpus_is_accepted_or_rejected_as_designed,
    a_bad_name_is_rejected_with_a_report,
    the_same_file_twice_is_staged_once_and_a_later_seq_supersedes,
    other_bytes_under_an_accepted_seq_are_rejected_and_nothing_kept_is_overwritten,
    the_same_bytes_under_another_key_are_set_aside_with_a_report,
    files_of_unknown_or_inactive_operators_are_rejected,
    a_trailer_count_says_lines_and_parsed_records,
    an_accepted_file_moves_its_date_and_both_neighbours_on
);
