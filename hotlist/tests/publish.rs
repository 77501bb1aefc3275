//! `publish-hotlist` on both backends: versions are gapless and written only when the list
//! changed, each delta turns the previous full list into the next, and a run that died
//! after recording a version is repaired by the next (latest.json moves).

use std::sync::Arc;

use chrono::{Duration, Utc};
use hotlist::action_list::{self, Action, Latest, Manifest};
use ledger::card_status::{BlockReason, NewBlock, NewReplacement, NewUnblock};
use ledger::{CardId, Ledger, LedgerSettings, OperatorId};
use storage::ObjectStore;

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

async fn full(store: &dyn ObjectStore, version: i64) -> Vec<action_list::Entry> {
    let bytes = store
        .get_bytes(&format!("hotlists/v{version}/full.csv"))
        .await
        .unwrap();
    action_list::parse_full_csv(&bytes).unwrap()
}

async fn delta(store: &dyn ObjectStore, version: i64) -> Vec<action_list::Change> {
    let bytes = store
        .get_bytes(&format!("hotlists/v{version}/delta.csv"))
        .await
        .unwrap();
    action_list::parse_delta_csv(&bytes).unwrap()
}

async fn latest(store: &dyn ObjectStore) -> Latest {
    serde_json::from_slice(&store.get_bytes("hotlists/latest.json").await.unwrap()).unwrap()
}

async fn versions_are_gapless_and_deltas_replay_to_the_full_list(ledger: Arc<dyn Ledger>) {
    let test_store = testbed::store::local();
    let store = &*test_store.store;
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    // Nothing blocked: nothing to publish.
    let out = hotlist::publish(&*ledger, store, Utc::now()).await.unwrap();
    assert_eq!((out.published, out.latest), (None, 0));

    for (card, reason) in [
        ("CARD0003", BlockReason::Lost),
        ("CARD0001", BlockReason::Fraud),
        ("CARD0002", BlockReason::Stolen),
    ] {
        ledger.block_card(&block(card, reason)).await.unwrap();
    }
    let out = hotlist::publish(&*ledger, store, Utc::now()).await.unwrap();
    assert_eq!((out.published, out.cards, out.added), (Some(1), 3, 3));
    let v1 = full(store, 1).await;
    let cards: Vec<&str> = v1.iter().map(|e| e.card_id.as_str()).collect();
    assert_eq!(cards, ["CARD0001", "CARD0002", "CARD0003"]);
    assert_eq!(action_list::apply(&[], &delta(store, 1).await), v1);
    // Unchanged: no version.
    let out = hotlist::publish(&*ledger, store, Utc::now()).await.unwrap();
    assert_eq!((out.published, out.latest), (None, 1));

    // An unblock, a replacement and a card that validations took below zero.
    ledger
        .unblock_card(&NewUnblock {
            card: CardId::parse("CARD0001").unwrap(),
            at: Utc::now(),
            actor: "ana".into(),
            note: "cleared".into(),
        })
        .await
        .unwrap();
    ledger
        .replace_card(&NewReplacement {
            old: CardId::parse("CARD0003").unwrap(),
            new: CardId::parse("CARD0009").unwrap(),
            operator: OperatorId::parse("OP001").unwrap(),
            actor: "clerk".into(),
            at: Utc::now(),
        })
        .await
        .unwrap();
    let tap = ledger::journal::Validation {
        event_id: "E1".into(),
        device_id: ledger::DeviceId::parse("GATE-1").unwrap(),
        device_seq: 1,
        card_id: CardId::parse("CARD0004").unwrap(),
        fare: ledger::Money::new(2_950, ledger::Currency::COP),
        route_id: ledger::RouteId::parse("R1").unwrap(),
        transport_operator_id: ledger::TransportOperatorId::parse("TM").unwrap(),
        occurred_at: Utc::now() - Duration::minutes(1),
        hotlist_version: None,
    };
    ledger.post_validations(&[tap]).await.unwrap();
    let out = hotlist::publish(&*ledger, store, Utc::now()).await.unwrap();
    assert_eq!((out.published, out.added, out.removed), (Some(2), 2, 1));
    let changes = delta(store, 2).await;
    let seen: Vec<(&str, Action, Option<&str>)> = changes
        .iter()
        .map(|c| (c.card_id.as_str(), c.action, c.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("CARD0001", Action::Remove, None),
            ("CARD0003", Action::Add, Some("REPLACED")),
            ("CARD0004", Action::Add, Some("NEGATIVE_BALANCE")),
        ]
    );
    let v2 = full(store, 2).await;
    assert_eq!(action_list::apply(&v1, &changes), v2);
    let manifest: Manifest =
        serde_json::from_slice(&store.get_bytes("hotlists/v2/manifest.json").await.unwrap())
            .unwrap();
    assert_eq!(manifest.previous_version, Some(1));
    assert_eq!((manifest.full.rows, manifest.delta.rows), (3, 3));
    assert_eq!(
        manifest.full.sha256,
        action_list::sha256_hex(&store.get_bytes("hotlists/v2/full.csv").await.unwrap())
    );
    assert_eq!(latest(store).await.version, 2);

    // A run that recorded v2 but died before moving latest.json: the next run moves it.
    store
        .put(
            "hotlists/latest.json",
            serde_json::to_vec(&Latest {
                version: 1,
                manifest: "hotlists/v1/manifest.json".into(),
                published_at: "2026-12-01T00:00:00.000000Z".into(),
            })
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let out = hotlist::publish(&*ledger, store, Utc::now()).await.unwrap();
    assert!(out.repaired_latest && out.published.is_none());
    assert_eq!(latest(store).await.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_versions_are_gapless_and_deltas_replay_to_the_full_list() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    versions_are_gapless_and_deltas_replay_to_the_full_list(db.ledger.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_versions_are_gapless_and_deltas_replay_to_the_full_list() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    versions_are_gapless_and_deltas_replay_to_the_full_list(db.ledger.clone()).await;
}
