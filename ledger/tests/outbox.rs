//! The outbox on both backends: each change writes its one event in its own transaction
//! (a replay or a refusal writes none), and the sequencer gives positions that a reader can
//! follow without passing over anything, in each card's own order even under concurrency.

mod support;

use std::sync::Arc;

use ledger::Ledger;
use ledger::outbox::EventType;
use support::*;

on_both_backends!(
    each_change_writes_one_event_and_refusals_none,
    positions_are_gapless_and_follow_each_cards_order_under_concurrency,
    a_bulk_write_reads_back_as_written,
);

async fn each_change_writes_one_event_and_refusals_none(ledger: Arc<dyn Ledger>) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let sold = sell(&ledger, sale("OP001", "R-1", "CARD0001", 300_000)).await;
    // A replay is the same sale: no second event.
    assert!(
        ledger
            .record_sale(&sale("OP001", "R-1", "CARD0001", 300_000))
            .await
            .unwrap()
            .replayed
    );
    ledger
        .pay_fare(&payment("OP001", "P-1", "CARD0001", 100_000))
        .await
        .unwrap();
    // Refused, so rolled back: its event with it.
    ledger
        .pay_fare(&payment("OP001", "P-2", "CARD0001", 900_000))
        .await
        .unwrap_err();
    let second = sell(&ledger, sale("OP001", "R-2", "CARD0002", 50_000)).await;
    ledger
        .void_sale(&op_id("OP001"), second.sale.id, second.sale.occurred_at)
        .await
        .unwrap();
    let batch = [
        validation("GATE-1", 1, "CARD0001", 2_950),
        validation("GATE-1", 2, "CARD0001", 2_950),
        validation("GATE-1", 2, "CARD0001", 2_950),
    ];
    ledger.post_validations(&batch).await.unwrap();
    // All duplicates: nothing posted, no event.
    assert_eq!(ledger.post_validations(&batch).await.unwrap().posted, 0);
    ledger
        .import_sales(&[
            sale("OP002", "I-1", "CARD0004", 10_000),
            sale("OP002", "I-2", "CARD0005", 20_000),
        ])
        .await
        .unwrap();

    // Nothing is readable before the sequencer gives positions.
    assert!(ledger.outbox_after(0, 100, &[]).await.unwrap().is_empty());
    assert_eq!(ledger.sequence_outbox(3).await.unwrap(), 3);
    assert_eq!(ledger.sequence_outbox(100).await.unwrap(), 4);
    assert_eq!(ledger.sequence_outbox(100).await.unwrap(), 0);
    let events = ledger.outbox_after(0, 100, &[]).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "co.recaudo.sale.recorded.v1",
            "co.recaudo.payment.recorded.v1",
            "co.recaudo.sale.recorded.v1",
            "co.recaudo.sale.voided.v1",
            "co.recaudo.validations.posted.v1",
            "co.recaudo.sale.recorded.v1",
            "co.recaudo.sale.recorded.v1",
        ]
    );
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=7).collect::<Vec<_>>());
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));

    let first = &events[0];
    assert_eq!(first.subject, "card/CARD0001");
    assert_eq!(first.operator_id.as_deref(), Some("OP001"));
    assert_eq!(first.data["sale_id"], sold.sale.id);
    assert_eq!(first.data["transaction_id"], sold.sale.transaction_id);
    assert_eq!(first.data["amount"], "3000.00");
    assert_eq!(first.data["operator_ref"], "R-1");
    assert_eq!(events[3].data["sale_id"], second.sale.id);
    let batch = &events[4];
    assert_eq!(batch.operator_id, None);
    assert_eq!(
        (
            batch.data["posted"].as_i64(),
            batch.data["duplicates"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(batch.data["total"], "59.00");
    assert_eq!(
        batch.data["by_transport_operator"][0]["transport_operator_id"],
        "BUSCO"
    );
    assert_eq!(events[6].data["operator_ref"], "I-2");

    let voided = ledger
        .outbox_after(0, 100, &[EventType::SaleVoided])
        .await
        .unwrap();
    assert_eq!(voided.len(), 1);
    let page: Vec<i64> = ledger
        .outbox_after(3, 2, &[])
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(page, [4, 5]);

    // A relay's acknowledged position only moves forward; what is past it is its lag.
    assert_eq!(ledger.relay_position("test-relay").await.unwrap(), 0);
    ledger.advance_relay("test-relay", 5).await.unwrap();
    ledger.advance_relay("test-relay", 3).await.unwrap();
    assert_eq!(ledger.relay_position("test-relay").await.unwrap(), 5);
    assert!(
        ledger
            .outbox_oldest_pending("test-relay")
            .await
            .unwrap()
            .is_some()
    );
    ledger.advance_relay("test-relay", 7).await.unwrap();
    assert_eq!(
        ledger.outbox_oldest_pending("test-relay").await.unwrap(),
        None
    );
    assert_sound(&ledger).await;
}

async fn positions_are_gapless_and_follow_each_cards_order_under_concurrency(
    ledger: Arc<dyn Ledger>,
) {
    with_operators(&ledger, &["OP001", "OP002"]).await;
    let sellers = (0..8).map(|w| {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            for i in 0..10 {
                let op = if w % 2 == 0 { "OP001" } else { "OP002" };
                let card = format!("CARD000{}", i % 3);
                sell(&ledger, sale(op, &format!("W{w}-{i}"), &card, 1_000)).await;
            }
        })
    });
    let sellers: Vec<_> = sellers.collect();
    // The sequencer runs while the sales commit, as the relay does.
    let sequencer = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            let mut given = 0;
            for _ in 0..40 {
                given += ledger.sequence_outbox(7).await.unwrap();
                tokio::task::yield_now().await;
            }
            given
        })
    };
    for s in sellers {
        s.await.unwrap();
    }
    let mut given = sequencer.await.unwrap();
    given += ledger.sequence_outbox(1_000).await.unwrap();
    assert_eq!(given, 80);
    let events = ledger.outbox_after(0, 1_000, &[]).await.unwrap();
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=80).collect::<Vec<_>>());
    // Each card's events in position order are in the order its balance changed: every
    // sale adds 10.00, so the balances they report climb by 10.00 each.
    for card in ["card/CARD0000", "card/CARD0001", "card/CARD0002"] {
        let balances: Vec<String> = events
            .iter()
            .filter(|e| e.subject == card)
            .map(|e| e.data["card_balance"].as_str().unwrap().to_string())
            .collect();
        let climbing: Vec<String> = (1..=balances.len())
            .map(|n| format!("{}.00", n * 10))
            .collect();
        assert_eq!(balances, climbing, "{card}: events out of the card's order");
    }
    assert_sound(&ledger).await;
}

/// A bulk write (more events than one statement takes: PostgreSQL sends them by COPY) keeps
/// every event as it was given, text that COPY would otherwise read as field or row breaks
/// included, in the order given.
async fn a_bulk_write_reads_back_as_written(ledger: Arc<dyn Ledger>) {
    use ledger::correction::Conn;
    use ledger::outbox::NewEvent;
    let time = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:15:30.123456Z")
        .unwrap()
        .to_utc();
    let events: Vec<NewEvent> = (0..4_100)
        .map(|n| NewEvent {
            event_type: EventType::ExceptionOpened,
            // No real subject holds a tab or a line break; these would break a COPY row.
            subject: format!(
                "operator/OP{:03}\t{}",
                n % 7,
                if n % 2 == 0 { "\n" } else { "\\" }
            ),
            operator: (n % 3 != 0).then(|| op_id(&format!("OP{:03}", n % 7))),
            time: time + chrono::Duration::microseconds(n),
            data: serde_json::json!({
                "n": n,
                "note": format!("tab\there, line\nbreak, back\\slash \"quoted\" ñandú {n}"),
            }),
        })
        .collect();
    ledger::on_pool!(ledger.database(), pool => {
        let mut tx = pool.begin().await.unwrap();
        ledger::outbox::write(Conn::from(&mut *tx), &events)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    assert_eq!(ledger.sequence_outbox(10_000).await.unwrap(), 4_100);
    let read = ledger.outbox_after(0, 10_000, &[]).await.unwrap();
    assert_eq!(read.len(), events.len());
    for (got, sent) in read.iter().zip(&events) {
        assert_eq!(got.event_type, sent.event_type.name());
        assert_eq!(got.subject, sent.subject);
        assert_eq!(
            got.operator_id.as_deref(),
            sent.operator.as_ref().map(|o| o.as_str())
        );
        assert_eq!(got.time, sent.time);
        assert_eq!(got.data, sent.data);
    }
}
