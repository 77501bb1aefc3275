//! The event stream on the embedded defaults, as ops sees it: `recaudo run publish-events`
//! writes each event once as a JSON line under `var/outbox/` (a second run adds nothing),
//! `recaudo events tail` shows them, and `recaudo operators show` says whether the
//! operator's webhook is delivering.

mod support;

use ledger::{CardId, Money, OperatorId, OperatorRef, PointOfSale};
use support::{Env, text};

#[tokio::test]
async fn events_go_out_as_json_lines_once_and_tail_shows_them() {
    let db = testbed::sqlite_ledger(ledger::LedgerSettings::default()).await;
    db.ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let mut last = None;
    for i in 0..3 {
        let receipt = db
            .ledger
            .record_sale(&ledger::journal::NewSale {
                operator_id: OperatorId::parse("OP001").unwrap(),
                operator_ref: OperatorRef::parse(&format!("R-{i}")).unwrap(),
                card_id: CardId::parse("CARD0001").unwrap(),
                amount: Money::new(1_000_000, ledger::Currency::COP),
                point_of_sale: PointOfSale::parse("POS-1").unwrap(),
                occurred_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        last = Some(receipt.sale);
    }
    let sale = last.unwrap();
    db.ledger
        .void_sale(&sale.operator_id, sale.id, chrono::Utc::now())
        .await
        .unwrap();
    let env = Env::new(&db.url);

    let lines = || -> Vec<serde_json::Value> {
        let dir = env.path().join("var/outbox");
        let mut all = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            all.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
        }
        all
    };
    for _ in 0..2 {
        let out = env.run(&["run", "publish-events"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let published = lines();
    let ids: Vec<&str> = published
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4"], "each event once, in order");
    assert_eq!(published[3]["type"], "co.recaudo.sale.voided.v1");
    assert_eq!(published[0]["subject"], "card/CARD0001");
    assert_eq!(published[0]["source"], "recaudo");
    assert_eq!(published[0]["data"]["card_balance"], "10000.00");
    assert_eq!(published[2]["data"]["card_balance"], "30000.00");
    assert_eq!(published[3]["data"]["card_balance"], "20000.00");

    let tail = env.run(&["events", "tail", "--type", "sale.voided", "--json"]);
    assert!(tail.status.success(), "{}", text(&tail.stderr));
    let shown: Vec<serde_json::Value> = text(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["position"], 4);
    assert_eq!(shown[0]["id"], "4");
    let table = text(
        &env.run(&["events", "tail", "--from", "2", "--limit", "2"])
            .stdout,
    );
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains("sale.recorded") && table.contains("OP001"),
        "{table}"
    );
    let wrong = env.run(&["events", "tail", "--type", "sale.deleted"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("sale.recorded"),
        "names the types"
    );

    let show = env.run(&["operators", "show", "OP001", "--json"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let op: serde_json::Value = serde_json::from_str(&text(&show.stdout)).unwrap();
    assert_eq!(op["id"], "OP001");
    assert_eq!(op["webhook"], serde_json::Value::Null);
    testbed::events::assert_valid(&*db.ledger).await;
}
