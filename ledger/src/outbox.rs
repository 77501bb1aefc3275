//! The outbox (DESIGN.md, Events): what other systems hear of each change, written in the
//! same database transaction as the change, so an event commits with its change or not at
//! all. The ledger writes the events of its own changes (sales, voids, payments, validation
//! batches); other domain crates write theirs through [`write`] on their transaction. The
//! `events` crate turns rows into CloudEvents and relays them.
//!
//! Order: `id` is given when a row is written, after the writer holds the locks of what it
//! changed (a card's balance), so two events of one card are in `id` order. `position` is
//! given later, once, by [`sequence`] — the one relay holding its job's lock — in `id` order
//! among the rows visible then. A reader that follows positions therefore never passes over
//! a row whose transaction committed late: that row gets a later position.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::backend::Database;
use crate::correction::Conn;
use crate::error::LedgerError;
use crate::ids::OperatorId;
use crate::journal::{Payment, Sale};
use crate::money::Money;

/// The CloudEvents `source` of every recaudo event.
pub const SOURCE: &str = "recaudo";

/// Every event type recaudo emits (DESIGN.md, Events), as `co.recaudo.{noun}.{verb}.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SaleRecorded,
    SaleVoided,
    PaymentRecorded,
    ValidationsPosted,
    OperatorFileAccepted,
    OperatorFileRejected,
    ReconciliationCompleted,
    SettlementPublished,
    ExceptionOpened,
    ExceptionDisputed,
    ExceptionResolved,
    RemittanceApplied,
    CardBlocked,
    CardUnblocked,
    CardReplaced,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::SaleRecorded,
        EventType::SaleVoided,
        EventType::PaymentRecorded,
        EventType::ValidationsPosted,
        EventType::OperatorFileAccepted,
        EventType::OperatorFileRejected,
        EventType::ReconciliationCompleted,
        EventType::SettlementPublished,
        EventType::ExceptionOpened,
        EventType::ExceptionDisputed,
        EventType::ExceptionResolved,
        EventType::RemittanceApplied,
        EventType::CardBlocked,
        EventType::CardUnblocked,
        EventType::CardReplaced,
    ];

    /// The CloudEvents `type`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::SaleRecorded => "co.recaudo.sale.recorded.v1",
            EventType::SaleVoided => "co.recaudo.sale.voided.v1",
            EventType::PaymentRecorded => "co.recaudo.payment.recorded.v1",
            EventType::ValidationsPosted => "co.recaudo.validations.posted.v1",
            EventType::OperatorFileAccepted => "co.recaudo.operator_file.accepted.v1",
            EventType::OperatorFileRejected => "co.recaudo.operator_file.rejected.v1",
            EventType::ReconciliationCompleted => "co.recaudo.reconciliation.completed.v1",
            EventType::SettlementPublished => "co.recaudo.settlement.published.v1",
            EventType::ExceptionOpened => "co.recaudo.exception.opened.v1",
            EventType::ExceptionDisputed => "co.recaudo.exception.disputed.v1",
            EventType::ExceptionResolved => "co.recaudo.exception.resolved.v1",
            EventType::RemittanceApplied => "co.recaudo.remittance.applied.v1",
            EventType::CardBlocked => "co.recaudo.card.blocked.v1",
            EventType::CardUnblocked => "co.recaudo.card.unblocked.v1",
            EventType::CardReplaced => "co.recaudo.card.replaced.v1",
        }
    }

    /// The type a CloudEvents `type` (or its short form, `sale.recorded`) names.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == name || t.short_name() == name)
    }

    /// Whether an operator's webhook hears this type: the operator-level news of DESIGN.md
    /// (its files, its settlements, its exceptions, its remittances, the blocks and
    /// replacements it asked for, without the card numbers). Sales, payments and
    /// validations stay on the internal stream.
    pub fn for_webhooks(self) -> bool {
        !matches!(
            self,
            EventType::SaleRecorded
                | EventType::SaleVoided
                | EventType::PaymentRecorded
                | EventType::ValidationsPosted
                | EventType::ReconciliationCompleted
        )
    }

    /// `sale.recorded`: the noun and verb, as people say it.
    pub fn short_name(self) -> &'static str {
        let name = self.name();
        &name["co.recaudo.".len()..name.len() - ".v1".len()]
    }
}

/// An event to write, in the transaction of its change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    /// What the event is about, and the Kafka key: one card's or operator's events stay in
    /// order (`card/{id}`, `operator/{id}`).
    pub subject: String,
    /// The operator whose event it is (its webhook hears it), when there is one.
    pub operator: Option<OperatorId>,
    /// When the change happened.
    pub time: DateTime<Utc>,
    pub data: Value,
}

/// An event as the outbox holds it, once sequenced.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: i64,
    pub position: i64,
    pub event_type: String,
    pub subject: String,
    pub operator_id: Option<String>,
    pub time: DateTime<Utc>,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

pub fn card_subject(card: &crate::ids::CardId) -> String {
    format!("card/{}", card.as_str())
}

pub fn operator_subject(operator: &OperatorId) -> String {
    format!("operator/{}", operator.as_str())
}

/// What a sale's events say of the sale itself, and the card's balance after the change.
fn sale_data(sale: &Sale, card_balance: Money, more: Value) -> Value {
    let mut data = serde_json::json!({
        "sale_id": sale.id,
        "operator_id": sale.operator_id.as_str(),
        "operator_ref": sale.operator_ref.as_str(),
        "card_id": sale.card_id.as_str(),
        "amount": sale.amount.to_decimal_string(),
        "currency": sale.amount.currency.code(),
        "card_balance": card_balance.to_decimal_string(),
    });
    if let (Some(data), Value::Object(more)) = (data.as_object_mut(), more) {
        data.extend(more);
    }
    data
}

/// A sale's event, with the card's balance after it.
pub(crate) fn sale_recorded(sale: &Sale, card_balance: Money) -> NewEvent {
    NewEvent {
        event_type: EventType::SaleRecorded,
        subject: card_subject(&sale.card_id),
        operator: Some(sale.operator_id.clone()),
        time: sale.occurred_at,
        data: sale_data(
            sale,
            card_balance,
            serde_json::json!({
                "point_of_sale": sale.point_of_sale.as_str(),
                "occurred_at": sale.occurred_at,
                "business_date": sale.business_date.naive(),
                "transaction_id": sale.transaction_id,
            }),
        ),
    }
}

/// A voided sale's event, with the card's balance after it; `sale.void` must be set.
pub(crate) fn sale_voided(sale: &Sale, card_balance: Money) -> NewEvent {
    let void = sale.void.as_ref().expect("a voided sale has its void");
    NewEvent {
        event_type: EventType::SaleVoided,
        subject: card_subject(&sale.card_id),
        operator: Some(sale.operator_id.clone()),
        time: void.voided_at,
        data: sale_data(
            sale,
            card_balance,
            serde_json::json!({
                "voided_at": void.voided_at,
                "business_date": void.business_date.naive(),
                "sale_business_date": sale.business_date.naive(),
                "transaction_id": void.transaction_id,
            }),
        ),
    }
}

/// A fare payment's event, with the card's balance after it.
pub(crate) fn payment_recorded(payment: &Payment, card_balance: Money) -> NewEvent {
    NewEvent {
        event_type: EventType::PaymentRecorded,
        subject: card_subject(&payment.card_id),
        operator: Some(payment.operator_id.clone()),
        time: payment.occurred_at,
        data: serde_json::json!({
            "payment_id": payment.id,
            "operator_id": payment.operator_id.as_str(),
            "payment_ref": payment.payment_ref.as_str(),
            "card_id": payment.card_id.as_str(),
            "amount": payment.amount.to_decimal_string(),
            "currency": payment.amount.currency.code(),
            "route_id": payment.route_id.as_str(),
            "transport_operator_id": payment.transport_operator_id.as_str(),
            "occurred_at": payment.occurred_at,
            "business_date": payment.business_date.naive(),
            "transaction_id": payment.transaction_id,
            "card_balance": card_balance.to_decimal_string(),
        }),
    }
}

/// What one posted batch of field validations did: one event per batch, so the hot path
/// writes one row whatever the batch's size.
pub(crate) struct BatchTotals {
    pub transaction_id: i64,
    pub posted: usize,
    pub duplicates: usize,
    pub currency: crate::money::Currency,
    /// (transport operator, validations, fares in minor units), in id order.
    pub by_transport_operator: Vec<(String, u64, i64)>,
    pub business_dates: Vec<chrono::NaiveDate>,
    pub flagged_cards: usize,
}

/// The totals of a batch of `size` validations of which `posted` (transport operator,
/// fare) were posted under `transaction_id`.
pub(crate) fn batch_totals<'a>(
    transaction_id: i64,
    posted: impl Iterator<Item = (&'a str, i64)>,
    size: usize,
    currency: crate::money::Currency,
    business_dates: Vec<chrono::NaiveDate>,
    flagged_cards: usize,
) -> BatchTotals {
    let mut by: std::collections::BTreeMap<&str, (u64, i64)> = Default::default();
    let mut count = 0;
    for (transport, fare) in posted {
        let entry = by.entry(transport).or_default();
        entry.0 += 1;
        entry.1 += fare;
        count += 1;
    }
    BatchTotals {
        transaction_id,
        posted: count,
        duplicates: size - count,
        currency,
        by_transport_operator: by
            .into_iter()
            .map(|(t, (n, f))| (t.to_string(), n, f))
            .collect(),
        business_dates,
        flagged_cards,
    }
}

pub(crate) fn validations_posted(b: &BatchTotals) -> NewEvent {
    let money = |minor: i64| Money::new(minor, b.currency).to_decimal_string();
    let total: i64 = b.by_transport_operator.iter().map(|t| t.2).sum();
    NewEvent {
        event_type: EventType::ValidationsPosted,
        subject: format!("validations/{}", b.transaction_id),
        operator: None,
        time: Utc::now(),
        data: serde_json::json!({
            "transaction_id": b.transaction_id,
            "posted": b.posted,
            "duplicates": b.duplicates,
            "total": money(total),
            "currency": b.currency.code(),
            "business_dates": b.business_dates,
            "cards_below_zero": b.flagged_cards,
            "by_transport_operator": b.by_transport_operator.iter().map(|(t, n, f)| serde_json::json!({
                "transport_operator_id": t,
                "validations": n,
                "fares": money(*f),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// Each card's balance after each of `amounts` (card account, amount), in order, from the
/// balances `before` them: what a bulk load's events say, as one sale at a time would.
pub(crate) fn running_balances<'a>(
    before: &std::collections::HashMap<String, i64>,
    amounts: impl Iterator<Item = (&'a str, i64)>,
) -> Vec<i64> {
    let mut now: std::collections::HashMap<&str, i64> = Default::default();
    amounts
        .map(|(account, amount)| {
            let balance = now
                .entry(account)
                .or_insert_with(|| before.get(account).copied().unwrap_or(0));
            *balance += amount;
            *balance
        })
        .collect()
}

/// Rows per statement: five parameters each, well under both backends' limits.
const WRITE_CHUNK: usize = 4000;

/// Writes `events` on the caller's transaction: multi-row INSERTs, or on PostgreSQL one COPY
/// when they are more than one statement's worth.
pub async fn write(conn: Conn<'_>, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    macro_rules! body {
        ($conn:expr, $db:ty, $json:expr) => {{
            let conn = $conn;
            for chunk in events.chunks(WRITE_CHUNK) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (type, subject, operator_id, time, data) ",
                );
                query.push_values(chunk, |mut row, e| {
                    row.push_bind(e.event_type.name())
                        .push_bind(e.subject.as_str())
                        .push_bind(e.operator.as_ref().map(|o| o.as_str().to_string()))
                        .push_bind(e.time)
                        .push_bind(e.data.to_string())
                        .push_unseparated($json);
                });
                query.build().execute(&mut *conn).await?;
            }
            Ok(())
        }};
    }
    if events.is_empty() {
        return Ok(());
    }
    match conn {
        Conn::Postgres(conn) if events.len() > WRITE_CHUNK => copy(conn, events).await,
        Conn::Postgres(conn) => body!(conn, sqlx::Postgres, "::jsonb"),
        Conn::Sqlite(conn) => body!(conn, sqlx::Sqlite, ""),
    }
}

/// PostgreSQL, many events (a bulk load's, a city's day of new cases): one COPY.
async fn copy(conn: &mut sqlx::PgConnection, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    use crate::copy_text::{instant, row};
    // Sent a few MiB at a time, so that a big batch is never all in memory twice.
    const SEND_AT: usize = 4 << 20;
    let mut copy = conn
        .copy_in_raw("COPY outbox (type, subject, operator_id, time, data) FROM STDIN")
        .await?;
    let mut text = String::with_capacity(SEND_AT + 4096);
    for e in events {
        let (time, data) = (instant(&e.time), e.data.to_string());
        row(
            &mut text,
            &[
                Some(e.event_type.name()),
                Some(e.subject.as_str()),
                e.operator.as_ref().map(|o| o.as_str()),
                Some(&time),
                Some(&data),
            ],
        );
        if text.len() >= SEND_AT {
            copy.send(std::mem::take(&mut text).into_bytes()).await?;
        }
    }
    if !text.is_empty() {
        copy.send(text.into_bytes()).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Gives positions to up to `limit` rows that have none, in `id` order, after the highest
/// position given so far; returns how many. Only one sequencer may run at a time: the relay
/// holding its job's lock (PostgreSQL also takes an advisory lock, so two never collide).
pub async fn sequence(db: Database<'_>, limit: i64) -> Result<u64, LedgerError> {
    // The highest position is read first, in the same transaction, rather than in the
    // UPDATE: a subquery there could be evaluated again as rows change.
    const HIGHEST: &str = "SELECT coalesce(max(position), 0) FROM outbox";
    const SEQUENCE: &str = "UPDATE outbox SET position = $2 + next.n FROM (SELECT id, \
        row_number() OVER (ORDER BY id) AS n FROM outbox WHERE position IS NULL ORDER BY id \
        LIMIT $1) AS next WHERE outbox.id = next.id";
    macro_rules! body {
        ($tx:expr) => {{
            let mut tx = $tx;
            let highest: i64 = sqlx::query_scalar(HIGHEST).fetch_one(&mut *tx).await?;
            let n = sqlx::query(SEQUENCE)
                .bind(limit)
                .bind(highest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n)
        }};
    }
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('recaudo.outbox.sequence'))")
                .execute(&mut *tx)
                .await?;
            body!(tx)
        }
        Database::Sqlite(pool) => body!(pool.begin_with("BEGIN IMMEDIATE").await?),
    }
}

/// Up to `limit` sequenced events after `position`, in position order; `types` (CloudEvents
/// names) narrows them when not empty.
pub async fn after(
    db: Database<'_>,
    position: i64,
    limit: i64,
    types: &[EventType],
) -> Result<Vec<OutboxEvent>, LedgerError> {
    after_where(db, position, limit, types, None).await
}

/// As [`after`], and only `operator`'s events when it is given (a webhook's queue).
pub async fn after_where(
    db: Database<'_>,
    position: i64,
    limit: i64,
    types: &[EventType],
    operator: Option<&OperatorId>,
) -> Result<Vec<OutboxEvent>, LedgerError> {
    read(db, Direction::After, position, limit, types, operator).await
}

/// The last `limit` sequenced events before `position` (of `types`, when not empty), in
/// position order: what `recaudo events tail` shows first.
pub async fn before(
    db: Database<'_>,
    position: i64,
    limit: i64,
    types: &[EventType],
) -> Result<Vec<OutboxEvent>, LedgerError> {
    let mut events = read(db, Direction::Before, position, limit, types, None).await?;
    events.reverse();
    Ok(events)
}

#[derive(Clone, Copy)]
enum Direction {
    After,
    Before,
}

async fn read(
    db: Database<'_>,
    direction: Direction,
    position: i64,
    limit: i64,
    types: &[EventType],
    operator: Option<&OperatorId>,
) -> Result<Vec<OutboxEvent>, LedgerError> {
    let (compare, order) = match direction {
        Direction::After => (">", "ASC"),
        Direction::Before => ("<", "DESC"),
    };
    // The names come from the enum, never from input, so they may be spelled into the SQL.
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    let mut filter = if names.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        format!(" AND type IN ({})", list.join(", "))
    };
    if operator.is_some() {
        filter.push_str(" AND operator_id = $3");
    }
    let select = |data: &str| {
        format!(
            "SELECT id, position, type, subject, operator_id, time, {data} AS data, created_at \
             FROM outbox WHERE position {compare} $1{filter} ORDER BY position {order} LIMIT $2"
        )
    };
    macro_rules! body {
        ($pool:expr, $sql:expr) => {{
            let rows: Vec<(
                i64,
                i64,
                String,
                String,
                Option<String>,
                DateTime<Utc>,
                String,
                DateTime<Utc>,
            )> = {
                let sql = $sql;
                let mut query = sqlx::query_as(&sql).bind(position).bind(limit);
                if let Some(operator) = operator {
                    query = query.bind(operator.as_str().to_string());
                }
                query.fetch_all($pool).await?
            };
            rows.into_iter()
                .map(|r| {
                    Ok(OutboxEvent {
                        id: r.0,
                        position: r.1,
                        event_type: r.2,
                        subject: r.3,
                        operator_id: r.4,
                        time: r.5,
                        data: serde_json::from_str(&r.6).map_err(|e| {
                            LedgerError::Corrupt(format!("outbox row {} data: {e}", r.0))
                        })?,
                        created_at: r.7,
                    })
                })
                .collect()
        }};
    }
    match db {
        Database::Postgres(pool) => body!(pool, select("data::text")),
        Database::Sqlite(pool) => body!(pool, select("data")),
    }
}

/// The highest position given so far (0: none).
pub async fn highest_position(db: Database<'_>) -> Result<i64, LedgerError> {
    crate::on_pool!(db, pool => {
        let highest: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM outbox")
            .fetch_one(pool)
            .await?;
        Ok(highest)
    })
}

/// How far `relay` has had its events acknowledged (0: nothing yet).
pub async fn relay_position(db: Database<'_>, relay: &str) -> Result<i64, LedgerError> {
    crate::on_pool!(db, pool => {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM outbox_relays WHERE relay = $1")
                .bind(relay)
                .fetch_optional(pool)
                .await?;
        Ok(position.unwrap_or(0))
    })
}

/// Records that `relay` has had everything up to `position` acknowledged. A position never
/// moves back (a relay that restarts from an older read cannot undo a newer one).
pub async fn advance_relay(
    db: Database<'_>,
    relay: &str,
    position: i64,
) -> Result<(), LedgerError> {
    crate::on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO outbox_relays (relay, position, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (relay) DO UPDATE SET position = excluded.position, \
               updated_at = excluded.updated_at \
             WHERE excluded.position > outbox_relays.position",
        )
        .bind(relay)
        .bind(position)
        .bind(Utc::now())
        .execute(pool)
        .await?;
        Ok(())
    })
}

/// When the oldest event `relay` has not had acknowledged was written (sequenced or not);
/// `None` when it is up to date. Ops watch this as the relay's lag.
pub async fn oldest_pending(
    db: Database<'_>,
    relay: &str,
) -> Result<Option<DateTime<Utc>>, LedgerError> {
    let at = relay_position(db, relay).await?;
    crate::on_pool!(db, pool => {
        let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(created_at) FROM outbox WHERE position IS NULL OR position > $1",
        )
        .bind(at)
        .fetch_one(pool)
        .await?;
        Ok(oldest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_have_their_cloudevents_names_and_short_forms() {
        assert_eq!(EventType::SaleVoided.name(), "co.recaudo.sale.voided.v1");
        assert_eq!(
            EventType::ValidationsPosted.short_name(),
            "validations.posted"
        );
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert_eq!(EventType::parse(t.short_name()), Some(t));
        }
        assert_eq!(EventType::parse("sale.deleted"), None);
    }
}
