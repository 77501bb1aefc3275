//! Cards and the action list as ops and the field meet them: `recaudo cards` on both
//! backends, and against the real broker `recaudo run publish-hotlist` killed with SIGKILL
//! after writing the store but before the topic heard it, then run again. A consumer that
//! reads `recaudo.hotlist.v1` from the start, applying tombstones, ends with exactly the
//! store's latest `full.csv`; versions are gapless and each delta replays to its full list.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use hotlist::action_list;
use ledger::card_status::{BlockReason, NewBlock, NewUnblock};
use ledger::{CardId, LedgerSettings};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use support::{Env, text};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn the_back_office_blocks_and_lifts(url: &str) {
    let env = Env::new(url);
    let out = env.run(&["cards", "block", "CARD0000000001", "--reason", "FRAUD"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a change of status names its actor"
    );
    let out = env.run(&[
        "cards",
        "block",
        "CARD0000000001",
        "--reason",
        "NEGATIVE_BALANCE",
        "--actor",
        "ana",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "NEGATIVE_BALANCE is the ledger's own"
    );
    let out = env.run(&[
        "cards",
        "block",
        "CARD0000000001",
        "--reason",
        "FRAUD",
        "--note",
        "case 812",
        "--actor",
        "ana",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = json(&env.run(&["cards", "show", "CARD0000000001", "--json"]));
    assert_eq!(shown["status"], "BLOCKED");
    assert_eq!(shown["reason"], "FRAUD");
    assert_eq!(shown["history"][0]["actor"], "ana");
    assert_eq!(shown["history"][0]["note"], "case 812");
    let listed = json(&env.run(&["cards", "list", "--blocked", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["card_id"], "CARD0000000001");
    let out = env.run(&["cards", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&[
        "cards",
        "unblock",
        "CARD0000000001",
        "--note",
        "cleared",
        "--actor",
        "ana",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = json(&env.run(&["cards", "show", "CARD0000000001", "--json"]));
    assert_eq!(shown["status"], "ACTIVE");
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["BLOCK", "UNBLOCK"]);
    let listed = json(&env.run(&["cards", "list", "--blocked", "--json"]));
    assert!(listed.as_array().unwrap().is_empty());
}

#[test]
fn cards_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_back_office_blocks_and_lifts(&format!("sqlite://{}/r.db", dir.path().display()));
}

#[tokio::test]
async fn cards_on_postgres() {
    let Some(url) = testbed::fresh_postgres_url().await else {
        return;
    };
    the_back_office_blocks_and_lifts(&url);
}

fn block(card: &str, reason: BlockReason) -> NewBlock {
    NewBlock {
        card: CardId::parse(card).unwrap(),
        reason,
        at: Utc::now(),
        operator: None,
        actor: "ana".into(),
        note: None,
    }
}

/// Applies the topic's records from the start: the last value of each card, a tombstone
/// removing it.
async fn read_topic(brokers: &str, topic: &str) -> Vec<action_list::Entry> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("hotlist-test-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut list: BTreeMap<String, action_list::Entry> = BTreeMap::new();
    let mut stream = consumer.stream();
    // The topic is read until it has been quiet for a while.
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(8), stream.next()).await
    {
        let message = message.unwrap();
        let card = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        match message.payload() {
            None => {
                list.remove(&card);
            }
            Some(value) => {
                let v: serde_json::Value = serde_json::from_slice(value).unwrap();
                assert_eq!(v["card_id"], card);
                list.insert(
                    card.clone(),
                    action_list::Entry {
                        card_id: card,
                        reason: v["reason"].as_str().unwrap().to_string(),
                        blocked_at: chrono::DateTime::parse_from_rfc3339(
                            v["blocked_at"].as_str().unwrap(),
                        )
                        .unwrap()
                        .with_timezone(&Utc),
                    },
                );
            }
        }
    }
    list.into_values().collect()
}

fn read(env: &Env, key: &str) -> Vec<u8> {
    std::fs::read(env.objects().join(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_killed_before_the_topic_is_repaired_by_the_next() {
    let Ok(brokers) = std::env::var("RECAUDO_TEST_KAFKA_BROKERS") else {
        return testbed::service_missing(
            "the Kafka broker",
            "RECAUDO_TEST_KAFKA_BROKERS is not set",
        );
    };
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let ledger = db.ledger.clone();
    for i in 0..120 {
        let reason = [BlockReason::Lost, BlockReason::Stolen, BlockReason::Fraud][i % 3];
        ledger
            .block_card(&block(&format!("CARD{i:06}"), reason))
            .await
            .unwrap();
    }
    let env = Env::new(&db.url);
    let topic = format!("recaudo.hotlist.test.{}", uuid::Uuid::new_v4().simple());

    // A broker that accepts connections and never answers: the run writes the store and
    // records the version, then hangs before the topic hears anything, and is killed.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = black_hole.local_addr().unwrap().to_string();
    let mut first = env.recaudo(&["run", "publish-hotlist"]);
    first
        .env("RECAUDO_KAFKA_BROKERS", &hole)
        .env("RECAUDO_HOTLIST_TOPIC", &topic)
        .env("RECAUDO_JOB_LEASE_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.objects().join("hotlists/latest.json").exists() {
        assert!(
            Instant::now() < deadline,
            "the first run never wrote the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the first run was killed, not finished");
    drop(black_hole);
    let not_on_topic: i64 = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_scalar("SELECT count(*) FROM hotlist_versions WHERE topic_done_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(not_on_topic, 1, "v1 is in the store, not on the topic");

    // Meanwhile the list changes: unblocks (tombstones) and new blocks.
    for i in (0..120).step_by(4) {
        ledger
            .unblock_card(&NewUnblock {
                card: CardId::parse(&format!("CARD{i:06}")).unwrap(),
                at: Utc::now(),
                actor: "ana".into(),
                note: "found".into(),
            })
            .await
            .unwrap();
    }
    for i in 120..150 {
        ledger
            .block_card(&block(&format!("CARD{i:06}"), BlockReason::Damaged))
            .await
            .unwrap();
    }
    // Wait out the dead run's lease, then run again against the real broker.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let out = env
        .recaudo(&["run", "publish-hotlist"])
        .env("RECAUDO_KAFKA_BROKERS", &brokers)
        .env("RECAUDO_HOTLIST_TOPIC", &topic)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let latest: action_list::Latest =
        serde_json::from_slice(&read(&env, "hotlists/latest.json")).unwrap();
    assert_eq!(latest.version, 2);
    let full = |v: i64| {
        action_list::parse_full_csv(&read(&env, &format!("hotlists/v{v}/full.csv"))).unwrap()
    };
    let delta = |v: i64| {
        action_list::parse_delta_csv(&read(&env, &format!("hotlists/v{v}/delta.csv"))).unwrap()
    };
    assert_eq!(action_list::apply(&[], &delta(1)), full(1));
    assert_eq!(action_list::apply(&full(1), &delta(2)), full(2));
    assert_eq!(full(2).len(), 120 - 30 + 30);

    // The run created the topic compacted, so the broker keeps each card's last record.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
    let configs = admin
        .describe_configs(
            &[rdkafka::admin::ResourceSpecifier::Topic(&topic)],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    let config = configs[0].as_ref().unwrap();
    assert_eq!(
        config
            .get("cleanup.policy")
            .and_then(|e| e.value.as_deref()),
        Some("compact")
    );
    let heard = read_topic(&brokers, &topic).await;
    assert_eq!(
        heard,
        full(2),
        "the topic, compacted by card, is the latest full list"
    );
    // Nothing is left for a third run to send, and no version is written without a change.
    let out = env
        .recaudo(&["run", "publish-hotlist"])
        .env("RECAUDO_KAFKA_BROKERS", &brokers)
        .env("RECAUDO_HOTLIST_TOPIC", &topic)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!env.objects().join("hotlists/v3").exists());
}
