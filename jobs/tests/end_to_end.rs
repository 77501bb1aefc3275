//! The whole back office with the real services, as in production: a PostgreSQL ledger,
//! every sale and void made through the running HTTP API by the operators themselves, the
//! operators' files put in the S3-compatible server, validations produced to the Kafka
//! broker, then `recaudo run settle`; the reports read back from S3 match the fixtures'
//! truth.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use fixtures::{Fixture, FixtureConfig};
use ledger::{BusinessCalendar, LedgerSettings};
use support::{Env, start_api, text};

const SALES: u64 = 600;
const SEED: u64 = 5;
const DISCREPANCIES_PER_MILLE: u64 = 120;

fn csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

fn minor(decimal: &str) -> i64 {
    let negative = decimal.starts_with('-');
    let v = ledger::money::parse_minor("amount", decimal.trim_start_matches('-'), 2).unwrap();
    if negative { -v } else { v }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_through_the_api_files_in_s3_taps_on_kafka_settle_to_the_truth() {
    let Ok(brokers) = std::env::var("RECAUDO_TEST_KAFKA_BROKERS") else {
        return testbed::service_missing(
            "the Kafka broker",
            "RECAUDO_TEST_KAFKA_BROKERS is not set",
        );
    };
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let s3 = match testbed::store::s3_with(|s| s).await {
        Ok(s) => s,
        Err(e) => return testbed::service_missing("the S3-compatible server", &e),
    };
    let s3_client = s3.s3.as_ref().unwrap();
    let bucket = s3_client.bucket().to_string();
    let endpoint = std::env::var(testbed::store::TEST_S3_ENDPOINT_VAR).unwrap();
    let topic = format!("recaudo.validations.e2e-{}", uuid::Uuid::new_v4().simple());

    // The API stamps each sale with the time it arrives, so the day is today's.
    let calendar = BusinessCalendar::default();
    let date = calendar.business_date(chrono::Utc::now());
    let mut config = FixtureConfig::new(SEED, date, SALES);
    config.discrepancy_per_mille = DISCREPANCIES_PER_MILLE;
    config.validations = 2 * SALES;
    let fixture = Fixture::new(config);
    fixture.register_operators(&*db.ledger).await.unwrap();

    // The operators' files and the taps, with the command ops would use.
    let env = Env::new(&db.url);
    let with_services = |c: &mut std::process::Command| {
        c.env("RECAUDO_OBJECT_STORE", format!("s3://{bucket}/tenant/"))
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RECAUDO_KAFKA_BROKERS", &brokers)
            .env("RECAUDO_KAFKA_TOPIC", &topic)
            .env("RECAUDO_KAFKA_GROUP", format!("group-{topic}"));
    };
    let sales = SALES.to_string();
    let validations = (2 * SALES).to_string();
    let per_mille = DISCREPANCIES_PER_MILLE.to_string();
    let date_text = date.to_string();
    let mut publish = env.recaudo(&[
        "fixtures",
        "--date",
        &date_text,
        "--sales",
        &sales,
        "--seed",
        &SEED.to_string(),
        "--validations",
        &validations,
        "--discrepancies-per-mille",
        &per_mille,
        "--publish",
    ]);
    with_services(&mut publish);
    let out = publish.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The same fixture here as in the command: the same truth.
    let truth = fixture.truth(&fixtures::FilesWritten::default());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path().join("var/fixtures/truth.json")).unwrap())
            .unwrap();
    assert_eq!(
        written["discrepancies"],
        serde_json::to_value(&truth.discrepancies).unwrap()
    );
    assert_eq!(
        written["validations_amount_minor"],
        truth.validations_amount_minor
    );
    assert!(!truth.discrepancies.is_empty());

    // Every sale and void through the HTTP API, each operator with its own token.
    let (addr, keys) = start_api(db.ledger.clone(), env.path()).await;
    let http = reqwest::Client::new();
    let mut tokens = BTreeMap::new();
    for s in fixture.sales().filter(|s| s.in_ledger) {
        let op = fixture.operator_id(s.operator).to_string();
        let token = tokens
            .entry(op.clone())
            .or_insert_with(|| keys.mint(&op, "sales:write sales:read", 3600).unwrap())
            .clone();
        let body = serde_json::json!({
            "operator_ref": s.operator_ref,
            "card_id": s.card_id,
            "amount": ledger::money::format_minor(s.amount_minor, 2),
            "currency": "COP",
            "point_of_sale": s.point_of_sale,
        });
        let r = http
            .post(format!("http://{addr}/v1/sales"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("sale-{}", s.operator_ref))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let sale: serde_json::Value = r.json().await.unwrap();
        if s.voided_at.is_some() {
            let r = http
                .post(format!("http://{addr}/v1/sales/{}/void", sale["sale_id"]))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("void-{}", s.operator_ref))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }

    // Today has not closed: settling it is refused. A day later it settles.
    let mut early = env.recaudo(&["run", "settle", "--date", &date_text]);
    with_services(&mut early);
    let out = early.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("has not closed yet"));
    // The taps are taken from the broker as the scheduler does every few minutes; the
    // settle then runs a day later, under `faketime`, which librdkafka's timed waits do not
    // survive (they would sleep for the shifted day), so that one reads no broker.
    let mut taps = env.recaudo(&["run", "ingest-validations"]);
    with_services(&mut taps);
    let out = taps.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut settle = env.recaudo_a_day_later(&["run", "settle", "--date", &date_text]);
    with_services(&mut settle);
    settle.env_remove("RECAUDO_KAFKA_BROKERS");
    let out = settle.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The reports, read back from S3 (the test store's keys are under the same tenant/).
    let store = &s3.store;
    let latest: serde_json::Value = serde_json::from_slice(
        &store
            .get_bytes(&format!("reports/{date}/latest.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    let prefix = latest["prefix"].as_str().unwrap().to_string();
    let read = |name: &'static str| {
        let key = format!("{prefix}{name}");
        async move { store.get_bytes(&key).await.unwrap() }
    };
    let summary = csv(&read("settlement_summary.csv").await);
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    for r in &summary {
        if r["sales_count"] != "0" {
            net.insert(r["operator_id"].clone(), minor(&r["net_sales"]));
        }
    }
    assert_eq!(net, truth.ledger_net_by_operator, "net sales per operator");
    let mut found: Vec<(String, String, String)> = csv(&read("discrepancies.csv").await)
        .into_iter()
        .map(|r| {
            (
                r["operator_id"].clone(),
                r["operator_ref"].clone(),
                r["case"].clone(),
            )
        })
        .collect();
    found.sort();
    let expected = truth.exception_keys();
    assert_eq!(found, expected, "discrepancies");
    let fares: i64 = csv(&read("fare_distribution.csv").await)
        .iter()
        .map(|r| minor(&r["validations_amount"]))
        .sum();
    assert_eq!(
        fares, truth.validations_amount_minor,
        "fare revenue from the taps"
    );
    let gaps: Vec<(String, i64, i64)> = csv(&read("device_gaps.csv").await)
        .iter()
        .map(|r| {
            (
                r["device_id"].clone(),
                r["from_seq"].parse().unwrap(),
                r["to_seq"].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(gaps, truth.gaps, "lost taps");
    let report = db.ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "{report:?}");
    testbed::events::assert_valid(&*db.ledger).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
