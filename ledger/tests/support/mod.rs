//! Builders shared by the ledger's integration tests, and the macro that runs one scenario
//! on both backends.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ledger::journal::{NewPayment, NewSale, Validation};
use ledger::{
    CardId, Currency, DeviceId, Ledger, LedgerSettings, Money, Operator, OperatorId, OperatorName,
    OperatorRef, PaymentRef, PointOfSale, Rate, RouteId, TransportOperatorId, VoidWindow,
};

pub fn settings() -> LedgerSettings {
    LedgerSettings {
        max_connections: 16,
        ..LedgerSettings::default()
    }
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T13:15:02Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn cop(minor: i64) -> Money {
    Money::new(minor, Currency::COP)
}

pub fn operator(id: &str) -> Operator {
    Operator {
        id: OperatorId::parse(id).unwrap(),
        name: OperatorName::parse(&format!("Operator {id}")).unwrap(),
        commission_rate: Rate::parse("commission_rate", "0.035").unwrap(),
        tax_rate: Rate::parse("tax_rate", "0.19").unwrap(),
        void_window: VoidWindow::parse("30m").unwrap(),
        settlement_lag_days: 1,
        active: true,
    }
}

pub async fn with_operators(ledger: &Arc<dyn Ledger>, ids: &[&str]) {
    for id in ids {
        ledger.add_operator(&operator(id)).await.unwrap();
    }
}

pub fn sale(op: &str, reference: &str, card: &str, minor: i64) -> NewSale {
    NewSale {
        operator_id: OperatorId::parse(op).unwrap(),
        operator_ref: OperatorRef::parse(reference).unwrap(),
        card_id: CardId::parse(card).unwrap(),
        amount: cop(minor),
        point_of_sale: PointOfSale::parse("POS-1").unwrap(),
        occurred_at: t0(),
    }
}

/// Records a sale that must succeed.
pub async fn sell(ledger: &Arc<dyn Ledger>, sale: NewSale) -> ledger::journal::SaleReceipt {
    ledger
        .record_sale(&sale)
        .await
        .expect("the sale is recorded")
}

/// A card's balance now.
pub async fn balance(ledger: &Arc<dyn Ledger>, card_id: &str) -> Money {
    ledger.card_balance(&card(card_id)).await.unwrap().balance
}

pub fn payment(op: &str, reference: &str, card: &str, minor: i64) -> NewPayment {
    NewPayment {
        operator_id: OperatorId::parse(op).unwrap(),
        payment_ref: PaymentRef::parse(reference).unwrap(),
        card_id: CardId::parse(card).unwrap(),
        amount: cop(minor),
        route_id: RouteId::parse("R1").unwrap(),
        transport_operator_id: TransportOperatorId::parse("TM").unwrap(),
        occurred_at: t0() + Duration::minutes(5),
    }
}

pub fn validation(device: &str, seq: i64, card: &str, minor: i64) -> Validation {
    Validation {
        event_id: format!("{device}-{seq}"),
        device_id: DeviceId::parse(device).unwrap(),
        device_seq: seq,
        card_id: CardId::parse(card).unwrap(),
        fare: cop(minor),
        route_id: RouteId::parse("R7").unwrap(),
        transport_operator_id: TransportOperatorId::parse("BUSCO").unwrap(),
        occurred_at: t0() + Duration::minutes(10),
        hotlist_version: None,
    }
}

pub fn card(id: &str) -> CardId {
    CardId::parse(id).unwrap()
}

pub fn op_id(id: &str) -> OperatorId {
    OperatorId::parse(id).unwrap()
}

/// The ledger's invariants hold: every transaction sums to zero, balances sum to zero and
/// each cached balance equals its postings.
pub async fn assert_sound(ledger: &Arc<dyn Ledger>) {
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "ledger invariants broken: {report:?}");
    assert_each_change_has_its_event(ledger).await;
    testbed::events::assert_valid(&**ledger).await;
}

/// The outbox's side of soundness: every sale, void, payment and posted batch of
/// validations wrote exactly one event, and nothing else wrote one of those types.
pub async fn assert_each_change_has_its_event(ledger: &Arc<dyn Ledger>) {
    let counts = [
        ("co.recaudo.sale.recorded.v1", "SELECT count(*) FROM sales"),
        (
            "co.recaudo.sale.voided.v1",
            "SELECT count(*) FROM sales WHERE voided_at IS NOT NULL",
        ),
        (
            "co.recaudo.payment.recorded.v1",
            "SELECT count(*) FROM payments",
        ),
        (
            "co.recaudo.validations.posted.v1",
            "SELECT count(DISTINCT transaction_id) FROM validations",
        ),
        (
            "co.recaudo.card.blocked.v1",
            "SELECT count(*) FROM card_status_changes WHERE action = 'BLOCK'",
        ),
        (
            "co.recaudo.card.unblocked.v1",
            "SELECT count(*) FROM card_status_changes WHERE action = 'UNBLOCK'",
        ),
        (
            "co.recaudo.card.replaced.v1",
            "SELECT count(*) FROM card_replacements WHERE transferred_at IS NOT NULL",
        ),
    ];
    // Each card's status is what the last row of its history says.
    let disagreeing: i64 = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_scalar(
            "SELECT count(*) FROM accounts a WHERE a.id LIKE 'card:%' \
               AND COALESCE(a.blocked_reason, '-') <> COALESCE((SELECT CASE WHEN c.action = 'BLOCK' \
                 THEN c.reason END FROM card_status_changes c WHERE c.card_id = substr(a.id, 6) \
                 ORDER BY c.id DESC LIMIT 1), '-')",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert_eq!(
        disagreeing, 0,
        "cards whose status is not their history's last word"
    );
    for (event_type, changes) in counts {
        let (changes, events): (i64, i64) = ledger::on_pool!(ledger.database(), pool => {
            let changes: i64 = sqlx::query_scalar(changes).fetch_one(pool).await.unwrap();
            let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE type = $1")
                .bind(event_type)
                .fetch_one(pool)
                .await
                .unwrap();
            (changes, events)
        });
        assert_eq!(
            changes, events,
            "{event_type}: {changes} changes but {events} events"
        );
    }
}

/// Defines `mod sqlite` and `mod postgres`, each with one test per scenario function; a
/// scenario is `async fn(Arc<dyn Ledger>)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = testbed::sqlite_ledger($crate::support::settings()).await;
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(db) =
                        testbed::postgres_ledger($crate::support::settings()).await
                    else {
                        return;
                    };
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
    };
}
