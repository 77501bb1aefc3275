//! The settlement lines of each date's latest final report, kept in the database so that an
//! operator reads its own through the API (`GET /v1/settlements`) the moment they are
//! published, without access to the object store, and put in the books: each line's
//! commission and its tax are posted against the operator's receivable (DESIGN.md, Ledger),
//! so that the receivable is what the operator owes. The report publishes them through the
//! `Ledger` trait; nothing else does. A new version of a date's report replaces that date's
//! lines and posts only what its figures changed, usually nothing.

use chrono::{DateTime, NaiveDate, Utc};

use crate::backend::Database;
use crate::business_date::{BusinessCalendar, BusinessDate};
use crate::correction::{Conn, post_entry};
use crate::error::{InvalidInput, LedgerError};
use crate::ids::OperatorId;
use crate::journal::receivable_account;
use crate::money::{Currency, Money};

pub fn commission_account(operator: &OperatorId) -> String {
    format!("commission:{operator}")
}

pub fn commission_tax_account(operator: &OperatorId) -> String {
    format!("commission_tax:{operator}")
}

/// The reference an operator quotes when it pays what a date's line says it owes
/// (DESIGN.md, Bank statements and remittances): `RC-{operator_id}-{YYYYMMDD}`.
pub fn payment_reference(operator_id: &str, date: BusinessDate) -> String {
    format!("RC-{operator_id}-{}", date.naive().format("%Y%m%d"))
}

/// One operator's line for one date, as the report published it. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublishedLine {
    pub operator_id: String,
    pub business_date: NaiveDate,
    pub report_version: i32,
    pub currency: String,
    pub sales_count: i64,
    pub sales_amount: i64,
    pub voids_count: i64,
    pub voids_amount: i64,
    pub net_sales: i64,
    /// A decimal fraction, as the operator's terms say it (`0.035`).
    pub commission_rate: String,
    pub commission: i64,
    pub commission_tax: i64,
    pub net_due: i64,
    pub due_date: NaiveDate,
    pub matched_count: i64,
    pub exception_count: i64,
    pub exception_amount: i64,
    /// What the date's adjustments and write-offs added to what the operator owes.
    pub adjustments: i64,
    /// BALANCED, EXCEPTIONS or NO_FILE.
    pub status: String,
    pub payment_reference: String,
    pub published_at: DateTime<Utc>,
}

const COLUMNS: &str = "operator_id, business_date, report_version, currency, sales_count, \
    sales_amount, voids_count, voids_amount, net_sales, commission_rate, commission, \
    commission_tax, net_due, due_date, matched_count, exception_count, exception_amount, \
    adjustments, status, payment_reference, published_at";

/// Rows per INSERT (21 parameters each, well under SQLite's limit).
const ROWS_PER_STATEMENT: usize = 1_000;

/// The postings that bring what was posted for a line (commission, tax) to what it says now:
/// commission and tax debited, the receivable credited by both (credit positive). Empty when
/// nothing changed.
pub fn settlement_postings(
    operator: &OperatorId,
    (commission, tax): (i64, i64),
    (posted_commission, posted_tax): (i64, i64),
) -> Vec<(String, i64)> {
    let (dc, dt) = (commission - posted_commission, tax - posted_tax);
    [
        (commission_account(operator), -dc),
        (commission_tax_account(operator), -dt),
        (receivable_account(operator), dc + dt),
    ]
    .into_iter()
    .filter(|(_, amount)| *amount != 0)
    .collect()
}

/// Replaces the lines of `date` with `lines` of report version `version` and posts each
/// line's settlement, in one transaction: a reader sees the old version's lines or the new
/// one's, never a mix, and the books agree with the lines kept. Lines of a later version
/// already kept stay (an older report that finishes last neither replaces nor posts). The
/// postings land in the business date of `at`, the report's.
pub(crate) async fn replace_date(
    db: Database<'_>,
    calendar: &BusinessCalendar,
    date: BusinessDate,
    version: i32,
    lines: &[PublishedLine],
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    // What every operator was posted for the date so far, read once.
    const POSTED: &str = "SELECT operator_id, CAST(SUM(commission) AS BIGINT), \
        CAST(SUM(commission_tax) AS BIGINT) FROM settlements WHERE settles_date = $1 \
        GROUP BY operator_id";
    const RECORD: &str = "INSERT INTO settlements (document, transaction_id, operator_id, \
        settles_date, report_version, business_date, commission, commission_tax, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    // What each operator owes for the date so far, with the latest due date.
    const DUES: &str = "SELECT operator_id, CAST(SUM(amount) AS BIGINT), MAX(due_date) \
        FROM settlement_dues WHERE settles_date = $1 GROUP BY operator_id";
    const RECORD_DUE: &str = "INSERT INTO settlement_dues (operator_id, settles_date, \
        report_version, due_date, amount, business_date, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let posted_in = calendar.business_date(at);
    macro_rules! body {
        ($tx:expr, $db:ty, $conn:path) => {{
            let mut tx = $tx;
            if matches!(db, Database::Postgres(_)) {
                // Reports of one date take turns (SQLite has one writer anyway): each posts
                // from what the one before it posted.
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(format!("settlement_lines:{date}"))
                    .execute(&mut *tx)
                    .await?;
            }
            let kept: Option<i32> = sqlx::query_scalar(
                "SELECT MAX(report_version) FROM settlement_lines WHERE business_date = $1",
            )
            .bind(date.naive())
            .fetch_one(&mut *tx)
            .await?;
            if kept.is_some_and(|k| k > version) {
                return Ok(());
            }
            sqlx::query("DELETE FROM settlement_lines WHERE business_date = $1")
                .bind(date.naive())
                .execute(&mut *tx)
                .await?;
            for chunk in lines.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO settlement_lines ({COLUMNS}) "
                ));
                q.push_values(chunk, |mut row, l| {
                    row.push_bind(&l.operator_id)
                        .push_bind(l.business_date)
                        .push_bind(l.report_version)
                        .push_bind(&l.currency)
                        .push_bind(l.sales_count)
                        .push_bind(l.sales_amount)
                        .push_bind(l.voids_count)
                        .push_bind(l.voids_amount)
                        .push_bind(l.net_sales)
                        .push_bind(&l.commission_rate)
                        .push_bind(l.commission)
                        .push_bind(l.commission_tax)
                        .push_bind(l.net_due)
                        .push_bind(l.due_date)
                        .push_bind(l.matched_count)
                        .push_bind(l.exception_count)
                        .push_bind(l.exception_amount)
                        .push_bind(l.adjustments)
                        .push_bind(&l.status)
                        .push_bind(&l.payment_reference)
                        .push_bind(l.published_at);
                });
                q.build().execute(&mut *tx).await?;
            }
            let mut posted: std::collections::BTreeMap<String, (i64, i64)> =
                sqlx::query_as::<_, (String, i64, i64)>(POSTED)
                    .bind(date.naive())
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(op, c, t)| (op, (c, t)))
                    .collect();
            // Each line's operator, then any operator settled by an earlier version and
            // absent from this one: it is owed nothing by it, its settlement goes back to zero.
            let mut targets: Vec<(String, i64, i64, (i64, i64))> = lines
                .iter()
                .map(|l| {
                    let before = posted.remove(&l.operator_id).unwrap_or((0, 0));
                    (
                        l.operator_id.clone(),
                        l.commission,
                        l.commission_tax,
                        before,
                    )
                })
                .collect();
            targets.extend(posted.into_iter().map(|(op, before)| (op, 0, 0, before)));
            // Accounts are locked in operator order, as every other writer takes them.
            targets.sort_by(|a, b| a.0.cmp(&b.0));
            for (operator_id, commission, commission_tax, posted) in targets {
                let operator = OperatorId::parse(&operator_id)
                    .map_err(|e| InvalidInput::new("operator_id", e.to_string()))?;
                let postings = settlement_postings(&operator, (commission, commission_tax), posted);
                if postings.is_empty() {
                    continue;
                }
                let transaction_id = post_entry($conn(&mut *tx), "settlement", &postings).await?;
                sqlx::query(RECORD)
                    .bind(format!("settlement:{operator_id}:{date}:v{version}"))
                    .bind(transaction_id)
                    .bind(&operator_id)
                    .bind(date.naive())
                    .bind(version)
                    .bind(posted_in.naive())
                    .bind(commission - posted.0)
                    .bind(commission_tax - posted.1)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            // What each line makes its operator owe, recorded where it changed (see `dues`).
            let owed: std::collections::BTreeMap<String, (i64, NaiveDate)> =
                sqlx::query_as::<_, (String, i64, NaiveDate)>(DUES)
                    .bind(date.naive())
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(op, amount, due)| (op, (amount, due)))
                    .collect();
            let mut changes: Vec<(String, i64, NaiveDate)> = lines
                .iter()
                .filter_map(|l| {
                    let now = l.net_due + l.adjustments;
                    match owed.get(&l.operator_id) {
                        Some((before, due)) if *before == now && *due == l.due_date => None,
                        Some((before, _)) => {
                            Some((l.operator_id.clone(), now - before, l.due_date))
                        }
                        None => Some((l.operator_id.clone(), now, l.due_date)),
                    }
                })
                .collect();
            for (op, (before, due)) in &owed {
                if *before != 0 && !lines.iter().any(|l| &l.operator_id == op) {
                    changes.push((op.clone(), -before, *due));
                }
            }
            for (operator_id, amount, due_date) in changes {
                sqlx::query(RECORD_DUE)
                    .bind(&operator_id)
                    .bind(date.naive())
                    .bind(version)
                    .bind(due_date)
                    .bind(amount)
                    .bind(posted_in.naive())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            let heard = lines
                .iter()
                .map(|l| published_event(l, at))
                .collect::<Result<Vec<_>, _>>()?;
            crate::outbox::write($conn(&mut *tx), &heard).await?;
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => body!(pool.begin().await?, sqlx::Postgres, Conn::Postgres),
        Database::Sqlite(pool) => body!(
            pool.begin_with("BEGIN IMMEDIATE").await?,
            sqlx::Sqlite,
            Conn::Sqlite
        ),
    }
    Ok(())
}

/// `settlement.published`: the operator's line of a final report is out, and where.
fn published_event(
    l: &PublishedLine,
    at: DateTime<Utc>,
) -> Result<crate::outbox::NewEvent, InvalidInput> {
    let operator = OperatorId::parse(&l.operator_id)
        .map_err(|e| InvalidInput::new("operator_id", e.to_string()))?;
    let currency = Currency::parse(&l.currency)?;
    let amount = |minor| Money::new(minor, currency).to_decimal_string();
    Ok(crate::outbox::NewEvent {
        event_type: crate::outbox::EventType::SettlementPublished,
        subject: crate::outbox::operator_subject(&operator),
        operator: Some(operator),
        time: at,
        data: serde_json::json!({
            "operator_id": l.operator_id,
            "business_date": l.business_date,
            "version": l.report_version,
            "kind": "final",
            "net_due": amount(l.net_due),
            "adjustments": amount(l.adjustments),
            "due_date": l.due_date,
            "currency": currency.code(),
            "status": l.status,
            "payment_reference": l.payment_reference,
            // The report's layout (DESIGN.md, Reports), where the operator's file is.
            "report_prefix": format!("reports/{}/v{}/", l.business_date, l.report_version),
        }),
    })
}

/// The lines of `operator`, newest date first: of one date (`on`), or a page of at most
/// `limit` lines before date `before`.
pub async fn of_operator(
    db: Database<'_>,
    operator: &str,
    on: Option<BusinessDate>,
    before: Option<BusinessDate>,
    limit: u32,
) -> Result<Vec<PublishedLine>, LedgerError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM settlement_lines WHERE operator_id = $1 \
         AND ($2 IS NULL OR business_date = $2) AND ($3 IS NULL OR business_date < $3) \
         ORDER BY business_date DESC LIMIT $4"
    );
    Ok(crate::on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(operator)
            .bind(on.map(|d| d.naive()))
            .bind(before.map(|d| d.naive()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    }))
}

/// Every operator's line of `date`, by operator.
pub async fn of_date(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Vec<PublishedLine>, LedgerError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM settlement_lines WHERE business_date = $1 ORDER BY operator_id"
    );
    Ok(crate::on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(date.naive()).fetch_all(pool).await?
    }))
}

/// What an operator owed for one settled date at the end of some date, due on `due_date`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Due {
    pub operator_id: String,
    pub settles_date: NaiveDate,
    pub due_date: NaiveDate,
    /// The line's net due plus the date's adjustments, minor units.
    pub amount: i64,
}

/// What every operator owed for each settled date, as the final reports published by the
/// end of `as_of` said (a later version of a date's report does not change it). The lines of
/// `as_of` itself are the latest published, if any: a date's own report runs after it ends.
pub async fn dues_as_of(db: Database<'_>, as_of: BusinessDate) -> Result<Vec<Due>, LedgerError> {
    const SQL: &str = "SELECT operator_id, settles_date, \
        (SELECT d.due_date FROM settlement_dues d WHERE d.operator_id = s.operator_id \
          AND d.settles_date = s.settles_date \
          AND (d.business_date <= $1 OR d.settles_date = $1) \
          ORDER BY d.report_version DESC LIMIT 1) AS due_date, \
        CAST(SUM(amount) AS BIGINT) AS amount \
        FROM settlement_dues s WHERE settles_date <= $1 \
          AND (business_date <= $1 OR settles_date = $1) \
        GROUP BY operator_id, settles_date ORDER BY operator_id, settles_date";
    Ok(crate::on_pool!(db, pool => {
        sqlx::query_as(SQL).bind(as_of.naive()).fetch_all(pool).await?
    }))
}
