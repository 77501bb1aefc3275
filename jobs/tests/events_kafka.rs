//! The event stream against the real broker: a burst of sales, voids and payments through
//! the running API and a batch of field validations; `recaudo run publish-events` killed
//! with SIGKILL half-way and run again. A consumer reading the topic from the start hears
//! every event at least once, each subject's in order, and after dropping repeats by `id`
//! exactly the outbox's events; a payment that was refused (its transaction rolled back)
//! has none.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ledger::LedgerSettings;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;

fn publish_events(db: &str, brokers: &str, topic: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recaudo"));
    c.current_dir(dir)
        .args(["run", "publish-events"])
        .env("RECAUDO_DATABASE_URL", db)
        .env("RECAUDO_KAFKA_BROKERS", brokers)
        .env("RECAUDO_EVENTS_TOPIC", topic)
        // Small batches, so the kill lands between them; a short lease, so the second run
        // takes over soon after the first died holding the lock.
        .env("RECAUDO_EVENTS_BATCH", "25")
        .env("RECAUDO_JOB_LEASE_SECS", "3")
        .env("RECAUDO_LOG_FORMAT", "json")
        .env_remove("RECAUDO_CONFIG");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_half_way_loses_nothing_and_keeps_each_subjects_order() {
    let Ok(brokers) = std::env::var("RECAUDO_TEST_KAFKA_BROKERS") else {
        return testbed::service_missing(
            "the Kafka broker",
            "RECAUDO_TEST_KAFKA_BROKERS is not set",
        );
    };
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    for id in ["OP001", "OP002"] {
        db.ledger
            .add_operator(&testbed::operator(id))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (addr, keys) = support::start_api(db.ledger.clone(), dir.path()).await;
    let http = reqwest::Client::new();
    let token = |op: &str| keys.mint(op, "sales:write payments:write", 3600).unwrap();
    let tokens = [token("OP001"), token("OP002")];
    let post = |path: String, token: String, key: String, body: serde_json::Value| {
        let http = http.clone();
        async move {
            http.post(format!("http://{addr}{path}"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    // The burst: 240 top-ups on 30 cards from two operators at once.
    let sales: Vec<(usize, i64)> = futures::stream::iter(0..240usize)
        .map(|i| {
            let body = serde_json::json!({"operator_ref": format!("S-{i}"),
                "card_id": format!("CARD{:04}", i % 30), "amount": "5000.00",
                "currency": "COP", "point_of_sale": "POS-1"});
            let op = i % 2;
            let r = post(
                "/v1/sales".into(),
                tokens[op].clone(),
                format!("s{i}"),
                body,
            );
            async move {
                let r = r.await;
                assert_eq!(r.status(), 201);
                let json: serde_json::Value = r.json().await.unwrap();
                (op, json["sale_id"].as_i64().unwrap())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (n, (op, id)) in sales.iter().take(20).enumerate() {
        let r = post(
            format!("/v1/sales/{id}/void"),
            tokens[*op].clone(),
            format!("v{n}"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let payments: Vec<u16> = futures::stream::iter(0..40usize)
        .map(|i| {
            let body = serde_json::json!({"payment_ref": format!("P-{i}"),
                "card_id": format!("CARD{:04}", i % 30), "amount": "2950.00", "currency": "COP",
                "route_id": "T13", "transport_operator_id": "TRANSMI"});
            let r = post(
                "/v1/payments".into(),
                tokens[i % 2].clone(),
                format!("p{i}"),
                body,
            );
            async move { r.await.status().as_u16() }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(payments.iter().all(|s| *s == 201), "{payments:?}");
    // More than the card holds: refused, its transaction rolled back.
    let refused = post(
        "/v1/payments".into(),
        tokens[0].clone(),
        "p-refused".into(),
        serde_json::json!({"payment_ref": "P-REFUSED", "card_id": "CARD0001",
            "amount": "900000.00", "currency": "COP", "route_id": "T13",
            "transport_operator_id": "TRANSMI"}),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let taps: Vec<ledger::journal::Validation> = (0..50)
        .map(|seq| ledger::journal::Validation {
            event_id: format!("GATE-7-{seq}"),
            device_id: ledger::DeviceId::parse("GATE-7").unwrap(),
            device_seq: seq,
            card_id: ledger::CardId::parse(&format!("CARD{:04}", seq % 30)).unwrap(),
            fare: ledger::Money::new(295_000, ledger::Currency::COP),
            route_id: ledger::RouteId::parse("R7").unwrap(),
            transport_operator_id: ledger::TransportOperatorId::parse("BUSCO").unwrap(),
            occurred_at: chrono::Utc::now(),
            hotlist_version: None,
        })
        .collect();
    db.ledger.post_validations(&taps).await.unwrap();

    let ledger::Database::Postgres(pool) = db.ledger.database() else {
        unreachable!()
    };
    let outbox: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, subject, data::text FROM outbox ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(outbox.len(), 240 + 20 + 40 + 1, "one event per change");
    assert!(
        !outbox.iter().any(|(_, _, data)| data.contains("P-REFUSED")),
        "the refused payment has no event"
    );

    // The relay, killed once it has had some batches acknowledged.
    let topic = format!("recaudo.events.test-{}", uuid::Uuid::new_v4().simple());
    let acknowledged = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(max(position), 0) FROM outbox_relays WHERE relay = 'publish-events'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    let mut first = publish_events(&db.url, &brokers, &topic, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let at = acknowledged().await;
        if at > 0 {
            assert!(
                (at as usize) < outbox.len(),
                "the first run finished before it was killed"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the first run never published");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let killed_at = acknowledged().await;
    // Its lock outlives it by the lease; until then a second run is refused (exit 3).
    let mut second;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        second = publish_events(&db.url, &brokers, &topic, dir.path())
            .output()
            .unwrap();
        if second.status.code() != Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was never freed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(acknowledged().await as usize, outbox.len());

    // A consumer from the start of the topic.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut heard: Vec<(String, i64)> = Vec::new();
    let mut stream = consumer.stream();
    let ids: BTreeSet<i64> = outbox.iter().map(|(id, _, _)| *id).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while heard.iter().map(|h| h.1).collect::<HashSet<_>>().len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "heard {} of {}",
            heard.len(),
            ids.len()
        );
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
        else {
            continue;
        };
        let message = message.unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let event: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert_eq!(event["subject"], key.as_str(), "the key is the subject");
        assert_eq!(event["specversion"], "1.0");
        heard.push((key, event["id"].as_str().unwrap().parse().unwrap()));
    }
    // De-duplicated by id: exactly the outbox's events.
    let distinct: BTreeSet<i64> = heard.iter().map(|h| h.1).collect();
    assert_eq!(distinct, ids);
    // Each subject's events, first hearings only, in the outbox's order.
    let mut seen = HashSet::new();
    let mut by_subject: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (key, id) in &heard {
        if seen.insert(*id) {
            by_subject.entry(key.as_str()).or_default().push(*id);
        }
    }
    for (subject, ids) in &by_subject {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{subject}: {ids:?}");
    }
    let expected: BTreeMap<&str, Vec<i64>> =
        outbox
            .iter()
            .fold(BTreeMap::new(), |mut m, (id, subject, _)| {
                m.entry(subject.as_str()).or_insert_with(Vec::new).push(*id);
                m
            });
    assert_eq!(by_subject, expected);
    eprintln!(
        "killed at position {killed_at} of {}; {} messages heard for {} events",
        outbox.len(),
        heard.len(),
        ids.len()
    );
    testbed::events::assert_valid(&*db.ledger).await;
}
