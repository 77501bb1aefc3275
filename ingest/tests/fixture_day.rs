//! A whole fixtures day goes in and every record is accounted for against `truth.json`:
//! operator files through object storage, validation events through the event folder and
//! through the real Kafka broker, including a consumer killed half-way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fixtures::{Fixture, FixtureConfig, Truth};
use ingest::validations::{KafkaSettings, device_gaps, ingest_event_folder, ingest_from_kafka};
use ledger::{BusinessDate, Currency, Database, Ledger, LedgerSettings, MoneyRules};
use storage::{LocalStore, ObjectStore};

fn rules() -> MoneyRules {
    MoneyRules::new(Currency::COP)
}

fn config(sales: u64) -> FixtureConfig {
    let mut c = FixtureConfig::new(2026, BusinessDate::parse("2026-11-26").unwrap(), sales);
    c.whole_file_defect = true;
    c.devices = 50;
    c
}

async fn count(ledger: &dyn Ledger, sql: &str) -> i64 {
    match ledger.database() {
        Database::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        Database::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
    }
}

/// Uploads the day's operator files from a fixtures folder into the store.
async fn upload(dir: &std::path::Path, truth: &Truth, store: &dyn ObjectStore) {
    for key in truth.accepted_files.iter().chain(&truth.rejected_files) {
        let bytes = std::fs::read(dir.join(key)).unwrap();
        store.put(key, Bytes::from(bytes)).await.unwrap();
    }
}

async fn check_validations(ledger: &dyn Ledger, truth: &Truth) {
    let posted = count(ledger, "SELECT COUNT(*) FROM validations").await;
    assert_eq!(posted as u64, truth.valid_validations);
    let fares = count(
        ledger,
        "SELECT CAST(COALESCE(SUM(fare), 0) AS BIGINT) FROM validations",
    )
    .await;
    assert_eq!(fares, truth.validations_amount_minor);
    let dead = ingest::validations::dead_letters(ledger.database(), 1_000_000)
        .await
        .unwrap();
    assert_eq!(dead.len() as u64, truth.malformed_events);
    assert!(
        dead.iter()
            .all(|d| !d.reason.is_empty() && !d.payload.is_empty())
    );
    let date = BusinessDate::parse(&truth.business_date).unwrap();
    let gaps: Vec<(String, i64, i64)> = device_gaps(ledger.database(), date)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.device_id, g.from_seq, g.to_seq))
        .collect();
    assert_eq!(gaps, truth.gaps);
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "{report:?}");
    testbed::events::assert_valid(ledger).await;
}

async fn a_fixtures_day_is_accounted_for(ledger: Arc<dyn Ledger>) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::new(config(3_000));
    fixture.register_operators(&*ledger).await.unwrap();
    let truth = fixture.write_day(dir.path()).unwrap();
    let objects = tempfile::tempdir().unwrap();
    let store = LocalStore::new(objects.path()).unwrap();
    upload(dir.path(), &truth, &store).await;

    let files = ingest::ingest_files(&store, &*ledger, rules())
        .await
        .unwrap();
    let mut accepted = files.accepted.clone();
    accepted.sort();
    let mut expected = truth.accepted_files.clone();
    expected.sort();
    assert_eq!(accepted, expected);
    assert_eq!(files.rejected, truth.rejected_files);
    assert_eq!(files.records, truth.file_records);
    assert_eq!(
        count(&*ledger, "SELECT COUNT(*) FROM operator_file_records").await as u64,
        truth.file_records
    );

    let report = ingest_event_folder(&*ledger, &rules(), &dir.path().join("events"), 1_000)
        .await
        .unwrap();
    assert_eq!(report.posted, truth.valid_validations);
    assert_eq!(report.dead_lettered, truth.malformed_events);
    assert_eq!(report.duplicates, truth.duplicate_events);
    check_validations(&*ledger, &truth).await;
    // A second run finds nothing new in either source.
    let again = ingest_event_folder(&*ledger, &rules(), &dir.path().join("events"), 1_000)
        .await
        .unwrap();
    assert_eq!(again.events, 0);
    assert!(
        ingest::ingest_files(&store, &*ledger, rules())
            .await
            .unwrap()
            .accepted
            .is_empty()
    );
    check_validations(&*ledger, &truth).await;
}

#[tokio::test]
async fn sqlite_fixtures_day() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    a_fixtures_day_is_accounted_for(db.ledger.clone()).await;
}

#[tokio::test]
async fn postgres_fixtures_day() {
    if let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await {
        a_fixtures_day_is_accounted_for(db.ledger.clone()).await;
    }
}

pub async fn produce(brokers: &str, topic: &str, fixture: &Fixture) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    admin
        .create_topics(
            &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let sends: Vec<_> = fixture
        .events()
        .map(|e| {
            let producer = producer.clone();
            let topic = topic.to_string();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&e.key).payload(&e.value),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        })
        .collect();
    futures::future::join_all(sends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_validations_are_posted_once_and_a_rerun_changes_nothing() {
    let Ok(brokers) = std::env::var("RECAUDO_TEST_KAFKA_BROKERS") else {
        testbed::service_missing("the Kafka broker", "RECAUDO_TEST_KAFKA_BROKERS is not set");
        return;
    };
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let ledger = db.ledger.clone();
    let fixture = Fixture::new(config(1_000));
    let truth = fixture.truth(&fixtures::FilesWritten::default());
    let topic = format!("recaudo.validations.test-{}", uuid::Uuid::new_v4().simple());
    produce(&brokers, &topic, &fixture).await;

    let mut settings = KafkaSettings::new(&brokers, &format!("group-{topic}"));
    settings.topic = topic.clone();
    settings.batch_size = 250;
    settings.stop_when_idle = Some(Duration::from_secs(3));
    let report = ingest_from_kafka(&*ledger, &rules(), &settings)
        .await
        .unwrap();
    assert_eq!(report.events, truth.events);
    check_validations(&*ledger, &truth).await;
    // The group's committed offsets hold: a second run of the group reads nothing.
    let again = ingest_from_kafka(&*ledger, &rules(), &settings)
        .await
        .unwrap();
    assert_eq!(again.events, 0);
    check_validations(&*ledger, &truth).await;
}

/// A broker nobody answers on is not an idle topic: the run fails, as an external system's
/// error worth retrying, and posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_the_run_instead_of_looking_idle() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let brokers = closed.to_string();
    let mut settings = KafkaSettings::new(&brokers, "group-closed");
    settings.stop_when_idle = Some(Duration::from_secs(1));
    let err = ingest_from_kafka(&*db.ledger, &rules(), &settings)
        .await
        .expect_err("no broker answers");
    assert!(
        matches!(err, ingest::IngestError::KafkaUnreachable { .. }),
        "{err:?}"
    );
    use fault::Fault;
    assert_eq!(err.retry(), fault::RetryHint::Retry);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("Kafka at {brokers} did not answer")),
        "{text}"
    );
    assert_eq!(
        count(&*db.ledger, "SELECT COUNT(*) FROM validations").await,
        0
    );
}
