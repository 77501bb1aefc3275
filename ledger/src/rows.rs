//! Turning database rows back into domain records. Generic over the backend so PostgreSQL
//! and SQLite share one mapping; values are parsed again on the way out, so a row that no
//! longer parses is reported as corrupt instead of passed on.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::business_date::BusinessDate;
use crate::error::{InvalidInput, LedgerError};
use crate::ids::{
    CardId, OperatorId, OperatorRef, PaymentRef, PointOfSale, RouteId, TransportOperatorId,
};
use crate::journal::{CardEntry, EntryKind, Payment, Sale, Void};
use crate::money::{Currency, Money, Rate};
use crate::operator::{Operator, OperatorName, VoidWindow};

/// The columns `sale_from_row` reads, in a form both backends accept.
pub(crate) const SALE_COLUMNS: &str = "id, operator_id, operator_ref, card_id, amount, currency, \
     point_of_sale, occurred_at, business_date, transaction_id, voided_at, void_business_date, \
     void_transaction_id";

pub(crate) const PAYMENT_COLUMNS: &str = "id, operator_id, payment_ref, card_id, amount, currency, \
     route_id, transport_operator_id, occurred_at, business_date, transaction_id";

pub(crate) const OPERATOR_COLUMNS: &str = "id, name, commission_rate, tax_rate, void_window_secs, \
     settlement_lag_days, active";

/// Every operator with the terms in force on the business date bound as `date_param`:
/// each term from the latest version on or before that date that sets it, else the one it
/// was registered with. `FROM` ends the text, so a caller adds its `WHERE`.
pub(crate) fn operators_on(date_param: &str) -> String {
    let term = |name: &str| {
        format!(
            "COALESCE((SELECT t.{name} FROM operator_terms t WHERE t.operator_id = o.id \
               AND t.effective_from <= {date_param} AND t.{name} IS NOT NULL \
               ORDER BY t.effective_from DESC LIMIT 1), o.{name}) AS {name}"
        )
    };
    format!(
        "SELECT o.id, o.name, {}, {}, {}, {}, o.active FROM operators o",
        term("commission_rate"),
        term("tax_rate"),
        term("void_window_secs"),
        term("settlement_lag_days"),
    )
}

/// The void window of the sale `s`'s operator in force on the business date `date_param`.
pub(crate) fn void_window_on(date_param: &str) -> String {
    format!(
        "(SELECT COALESCE((SELECT t.void_window_secs FROM operator_terms t \
            WHERE t.operator_id = o.id AND t.effective_from <= {date_param} \
            AND t.void_window_secs IS NOT NULL \
            ORDER BY t.effective_from DESC LIMIT 1), o.void_window_secs) \
          FROM operators o WHERE o.id = s.operator_id)"
    )
}

fn corrupt(e: InvalidInput) -> LedgerError {
    LedgerError::Corrupt(e.to_string())
}

/// The decoding abilities a backend's rows need for our columns.
pub(crate) trait LedgerRow:
    Row
    + for<'r> RowGet<'r, i64>
    + for<'r> RowGet<'r, i32>
    + for<'r> RowGet<'r, bool>
    + for<'r> RowGet<'r, String>
    + for<'r> RowGet<'r, DateTime<Utc>>
    + for<'r> RowGet<'r, NaiveDate>
    + for<'r> RowGet<'r, Option<i64>>
    + for<'r> RowGet<'r, Option<DateTime<Utc>>>
    + for<'r> RowGet<'r, Option<NaiveDate>>
{
}

impl<R> LedgerRow for R where
    R: Row
        + for<'r> RowGet<'r, i64>
        + for<'r> RowGet<'r, i32>
        + for<'r> RowGet<'r, bool>
        + for<'r> RowGet<'r, String>
        + for<'r> RowGet<'r, DateTime<Utc>>
        + for<'r> RowGet<'r, NaiveDate>
        + for<'r> RowGet<'r, Option<i64>>
        + for<'r> RowGet<'r, Option<DateTime<Utc>>>
        + for<'r> RowGet<'r, Option<NaiveDate>>
{
}

/// `row.get(name)` as a trait, so the bounds above can name it once.
pub(crate) trait RowGet<'r, T> {
    fn col(&'r self, name: &str) -> Result<T, sqlx::Error>;
}

impl<'r, R, T> RowGet<'r, T> for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    fn col(&'r self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}

fn text<R: LedgerRow>(row: &R, name: &str) -> Result<String, LedgerError> {
    Ok(RowGet::<String>::col(row, name)?)
}

fn int<R: LedgerRow>(row: &R, name: &str) -> Result<i64, LedgerError> {
    Ok(RowGet::<i64>::col(row, name)?)
}

fn currency_of<R: LedgerRow>(row: &R) -> Result<Currency, LedgerError> {
    Currency::parse(&text(row, "currency")?).map_err(corrupt)
}

pub(crate) fn sale_from_row<R: LedgerRow>(row: &R) -> Result<Sale, LedgerError> {
    let currency = currency_of(row)?;
    let voided_at: Option<DateTime<Utc>> = row.col("voided_at")?;
    let void_date: Option<NaiveDate> = row.col("void_business_date")?;
    let void_tx: Option<i64> = row.col("void_transaction_id")?;
    let void = match (voided_at, void_date, void_tx) {
        (Some(voided_at), Some(date), Some(tx)) => Some(Void {
            voided_at,
            business_date: BusinessDate::from_naive(date),
            transaction_id: tx,
        }),
        (None, None, None) => None,
        _ => {
            return Err(LedgerError::Corrupt(
                "a sale's void is half recorded".into(),
            ));
        }
    };
    Ok(Sale {
        id: int(row, "id")?,
        operator_id: OperatorId::parse(&text(row, "operator_id")?).map_err(corrupt)?,
        operator_ref: OperatorRef::parse(&text(row, "operator_ref")?).map_err(corrupt)?,
        card_id: CardId::parse(&text(row, "card_id")?).map_err(corrupt)?,
        amount: Money::new(int(row, "amount")?, currency),
        point_of_sale: PointOfSale::parse(&text(row, "point_of_sale")?).map_err(corrupt)?,
        occurred_at: row.col("occurred_at")?,
        business_date: BusinessDate::from_naive(row.col("business_date")?),
        transaction_id: int(row, "transaction_id")?,
        void,
    })
}

pub(crate) fn payment_from_row<R: LedgerRow>(row: &R) -> Result<Payment, LedgerError> {
    let currency = currency_of(row)?;
    Ok(Payment {
        id: int(row, "id")?,
        operator_id: OperatorId::parse(&text(row, "operator_id")?).map_err(corrupt)?,
        payment_ref: PaymentRef::parse(&text(row, "payment_ref")?).map_err(corrupt)?,
        card_id: CardId::parse(&text(row, "card_id")?).map_err(corrupt)?,
        amount: Money::new(int(row, "amount")?, currency),
        route_id: RouteId::parse(&text(row, "route_id")?).map_err(corrupt)?,
        transport_operator_id: TransportOperatorId::parse(&text(row, "transport_operator_id")?)
            .map_err(corrupt)?,
        occurred_at: row.col("occurred_at")?,
        business_date: BusinessDate::from_naive(row.col("business_date")?),
        transaction_id: int(row, "transaction_id")?,
    })
}

pub(crate) fn operator_from_row<R: LedgerRow>(row: &R) -> Result<Operator, LedgerError> {
    let lag: i32 = row.col("settlement_lag_days")?;
    let window = int(row, "void_window_secs")?;
    Ok(Operator {
        id: OperatorId::parse(&text(row, "id")?).map_err(corrupt)?,
        name: OperatorName::parse(&text(row, "name")?).map_err(corrupt)?,
        commission_rate: Rate::parse("commission_rate", &text(row, "commission_rate")?)
            .map_err(corrupt)?,
        tax_rate: Rate::parse("tax_rate", &text(row, "tax_rate")?).map_err(corrupt)?,
        void_window: VoidWindow::from_secs(u64::try_from(window).unwrap_or(u64::MAX))
            .map_err(corrupt)?,
        settlement_lag_days: u16::try_from(lag)
            .map_err(|_| LedgerError::Corrupt(format!("settlement lag {lag}")))?,
        active: row.col("active")?,
    })
}

/// A row of the card-history union: `transaction_id, kind, amount, occurred_at, reference`.
pub(crate) fn entry_from_row<R: LedgerRow>(
    row: &R,
    currency: Currency,
) -> Result<CardEntry, LedgerError> {
    let kind = text(row, "kind")?;
    Ok(CardEntry {
        transaction_id: int(row, "transaction_id")?,
        kind: EntryKind::parse(&kind)
            .ok_or_else(|| LedgerError::Corrupt(format!("entry kind {kind}")))?,
        amount: Money::new(int(row, "amount")?, currency),
        occurred_at: row.col("occurred_at")?,
        reference: text(row, "reference")?,
    })
}

/// The card history as one query over the source documents; `$1` is the card id.
pub(crate) const CARD_ENTRIES_SQL: &str = "SELECT transaction_id, 'sale' AS kind, amount, \
       occurred_at, operator_ref AS reference FROM sales WHERE card_id = $1 \
     UNION ALL \
     SELECT void_transaction_id, 'void', -amount, voided_at, operator_ref \
       FROM sales WHERE card_id = $1 AND voided_at IS NOT NULL \
     UNION ALL \
     SELECT transaction_id, 'payment', -amount, occurred_at, payment_ref \
       FROM payments WHERE card_id = $1 \
     UNION ALL \
     SELECT transaction_id, 'validation', -fare, occurred_at, \
            device_id || '#' || CAST(device_seq AS TEXT) \
       FROM validations WHERE card_id = $1 \
     UNION ALL \
     SELECT transaction_id, 'replacement', -amount, transferred_at, 'to ' || new_card_id \
       FROM card_replacements WHERE old_card_id = $1 AND amount > 0 \
     UNION ALL \
     SELECT transaction_id, 'replacement', amount, transferred_at, 'from ' || old_card_id \
       FROM card_replacements WHERE new_card_id = $1 AND amount > 0 \
     ORDER BY occurred_at, transaction_id";

/// The invariant queries, in SQL both backends run unchanged.
pub(crate) mod invariants {
    pub const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM transactions) AS transactions, \
                (SELECT COUNT(*) FROM postings) AS postings";
    pub const UNBALANCED: &str = "SELECT transaction_id, CAST(SUM(amount) AS BIGINT) AS total FROM postings \
         GROUP BY transaction_id HAVING SUM(amount) <> 0 ORDER BY transaction_id LIMIT 100";
    pub const ORPHANS: &str = "SELECT t.id FROM transactions t \
           WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.transaction_id = t.id) \
         UNION \
         SELECT DISTINCT p.transaction_id FROM postings p \
           WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = p.transaction_id) \
         ORDER BY 1 LIMIT 100";
    pub const TOTAL: &str = "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts";
    pub const MISMATCHED: &str = "SELECT a.id, a.balance, CAST(COALESCE(p.total, 0) AS BIGINT) AS total \
           FROM accounts a LEFT JOIN \
                (SELECT account_id, SUM(amount) AS total FROM postings GROUP BY account_id) p \
             ON p.account_id = a.id \
          WHERE a.balance <> COALESCE(p.total, 0) \
         UNION ALL \
         SELECT p.account_id, 0, CAST(SUM(p.amount) AS BIGINT) FROM postings p \
          WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = p.account_id) \
          GROUP BY p.account_id \
         ORDER BY 1 LIMIT 100";
}
