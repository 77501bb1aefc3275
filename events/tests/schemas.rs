//! The committed schemas are a contract: a real event validates against its schema, and a
//! change of the schema that an existing event no longer meets (a field's type changed, a
//! field made required that events do not carry, a field dropped) is caught.

use ledger::outbox::EventType;
use ledger::{CardId, Money, OperatorId, OperatorRef, PointOfSale};
use testbed::events::Validators;

async fn a_real_sale_event() -> serde_json::Value {
    let db = testbed::sqlite_ledger(ledger::LedgerSettings::default()).await;
    db.ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    db.ledger
        .record_sale(&ledger::journal::NewSale {
            operator_id: OperatorId::parse("OP001").unwrap(),
            operator_ref: OperatorRef::parse("R-1").unwrap(),
            card_id: CardId::parse("CARD0001").unwrap(),
            amount: Money::new(2_000_000, ledger::Currency::COP),
            point_of_sale: PointOfSale::parse("POS-1").unwrap(),
            occurred_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(testbed::events::assert_valid(&*db.ledger).await, 1);
    db.ledger.sequence_outbox(10).await.unwrap();
    let events = db.ledger.outbox_after(0, 10, &[]).await.unwrap();
    assert_eq!(events[0].data["amount"], "20000.00");
    events[0].data.clone()
}

fn committed_sale_schema() -> serde_json::Value {
    serde_json::from_str(events::schema::of(EventType::SaleRecorded)).unwrap()
}

fn errors_with(schema: serde_json::Value, data: &serde_json::Value) -> Vec<String> {
    Validators::from([(EventType::SaleRecorded, schema)])
        .errors(EventType::SaleRecorded.name(), data)
}

#[tokio::test]
async fn a_schema_change_that_breaks_an_existing_event_fails() {
    let data = a_real_sale_event().await;
    assert_eq!(
        errors_with(committed_sale_schema(), &data),
        Vec::<String>::new()
    );

    // The amount becomes a number: existing events carry a decimal string.
    let mut retyped = committed_sale_schema();
    retyped["properties"]["amount"] = serde_json::json!({"type": "integer"});
    assert!(!errors_with(retyped, &data).is_empty());

    // A new required field that events do not carry.
    let mut required = committed_sale_schema();
    required["required"]
        .as_array_mut()
        .unwrap()
        .push("channel".into());
    required["properties"]["channel"] = serde_json::json!({"type": "string"});
    assert!(!errors_with(required, &data).is_empty());

    // A field dropped from the schema while events still carry it.
    let mut dropped = committed_sale_schema();
    dropped["properties"]
        .as_object_mut()
        .unwrap()
        .remove("point_of_sale");
    dropped["required"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f != "point_of_sale");
    let errors = errors_with(dropped, &data);
    assert!(
        errors.iter().any(|e| e.contains("point_of_sale")),
        "{errors:?}"
    );
}
