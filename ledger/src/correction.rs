//! Corrections finance decides: adjustments and write-offs (DESIGN.md, Ledger and
//! Exceptions). Each is one balanced transaction caused by one document, a decision on an
//! exception case, and posted once per document: the same decision asked for twice, or by
//! two people at the same moment, finds the first posting and posts nothing.

use chrono::{DateTime, Utc};

use crate::Database;
use crate::business_date::{BusinessCalendar, BusinessDate};
use crate::error::{InvalidInput, LedgerError};
use crate::ids::{CardId, OperatorId};
use crate::journal::{card_account, receivable_account};

/// The two kinds of correction, as the journal names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionKind {
    /// The file was right: the ledger's side is made equal to it.
    Adjustment,
    /// The difference is not recovered: it goes to `writeoff:{op}`.
    WriteOff,
}

impl CorrectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrectionKind::Adjustment => "adjustment",
            CorrectionKind::WriteOff => "writeoff",
        }
    }
}

pub fn writeoff_account(operator: &OperatorId) -> String {
    format!("writeoff:{operator}")
}

/// One account a correction moves, and by how much (credit positive, as every posting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectionAccount {
    Card(CardId),
    Receivable,
    WriteOff,
}

/// A correction as finance decided it, for one operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCorrection {
    pub kind: CorrectionKind,
    /// What caused it, unique: `exception:{case}:{decision}`.
    pub document: String,
    pub operator_id: OperatorId,
    /// The person who decided it (for a maker-checker decision, the approver).
    pub actor: String,
    pub moves: Vec<(CorrectionAccount, i64)>,
    pub at: DateTime<Utc>,
}

/// A correction as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionReceipt {
    pub transaction_id: i64,
    /// The business date it was posted in (the day it was decided, never an earlier one).
    pub business_date: BusinessDate,
    /// What it posted to the operator's receivable.
    pub receivable: i64,
    /// True when the document had been posted before and nothing was posted now.
    pub replayed: bool,
}

impl NewCorrection {
    /// The postings by account id, checked: at least two, none zero, no account twice,
    /// summing to zero; an adjustment moves cards and the receivable, a write-off the
    /// receivable and `writeoff:{op}`.
    fn postings(&self) -> Result<Vec<(String, i64)>, InvalidInput> {
        let mut postings: Vec<(String, i64)> = Vec::with_capacity(self.moves.len());
        for (account, amount) in &self.moves {
            let allowed = matches!(
                (self.kind, account),
                (CorrectionKind::Adjustment, CorrectionAccount::Card(_))
                    | (_, CorrectionAccount::Receivable)
                    | (CorrectionKind::WriteOff, CorrectionAccount::WriteOff)
            );
            if !allowed {
                return Err(InvalidInput::new(
                    "moves",
                    format!("a {} cannot move {account:?}", self.kind.as_str()),
                ));
            }
            if *amount == 0 {
                return Err(InvalidInput::new("moves", "a posting of zero"));
            }
            let id = match account {
                CorrectionAccount::Card(card) => card_account(card),
                CorrectionAccount::Receivable => receivable_account(&self.operator_id),
                CorrectionAccount::WriteOff => writeoff_account(&self.operator_id),
            };
            if postings.iter().any(|(a, _)| *a == id) {
                return Err(InvalidInput::new("moves", format!("{id} twice")));
            }
            postings.push((id, *amount));
        }
        if postings.len() < 2 || postings.iter().map(|(_, a)| a).sum::<i64>() != 0 {
            return Err(InvalidInput::new(
                "moves",
                "a correction needs at least two postings that sum to zero",
            ));
        }
        if self.document.trim().is_empty() || self.actor.trim().is_empty() {
            return Err(InvalidInput::new(
                "document",
                "a correction names its document and its actor",
            ));
        }
        Ok(postings)
    }

    fn receivable(&self) -> i64 {
        self.moves
            .iter()
            .filter(|(a, _)| *a == CorrectionAccount::Receivable)
            .map(|(_, amount)| amount)
            .sum()
    }
}

/// A connection inside a write transaction of the caller's, so that a correction commits
/// with the decision that caused it (an exception case's new state) or not at all.
pub enum Conn<'a> {
    Postgres(&'a mut sqlx::PgConnection),
    Sqlite(&'a mut sqlx::SqliteConnection),
}

// So that code written once for both backends (`on_pool!`) hands either transaction over.
impl<'a> From<&'a mut sqlx::PgConnection> for Conn<'a> {
    fn from(conn: &'a mut sqlx::PgConnection) -> Conn<'a> {
        Conn::Postgres(conn)
    }
}

impl<'a> From<&'a mut sqlx::SqliteConnection> for Conn<'a> {
    fn from(conn: &'a mut sqlx::SqliteConnection) -> Conn<'a> {
        Conn::Sqlite(conn)
    }
}

/// Posts `correction` in the caller's transaction unless its document was posted before.
/// The caller holds whatever lock makes the decision single (the case's row), so two
/// decisions of one document never race here; a document posted outside such a lock is
/// refused by its key.
/// Writes one balanced journal entry of `kind` (a transaction, its postings, the cached
/// balances) on `conn`, returning the transaction id. The caller has checked the postings.
pub(crate) async fn post_entry(
    conn: Conn<'_>,
    kind: &str,
    postings: &[(String, i64)],
) -> Result<i64, LedgerError> {
    macro_rules! body {
        ($conn:expr, $new_transaction:expr) => {{
            let conn = $conn;
            let transaction_id: i64 = sqlx::query_scalar($new_transaction)
                .bind(kind)
                .fetch_one(&mut *conn)
                .await?;
            // Accounts in id order, as every writer takes them, so that two writers never
            // wait on each other's balances.
            let mut sorted: Vec<&(String, i64)> = postings.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (account, amount) in sorted {
                sqlx::query(
                    "INSERT INTO postings (transaction_id, account_id, amount) VALUES ($1, $2, $3)",
                )
                .bind(transaction_id)
                .bind(account)
                .bind(amount)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT (id) \
                     DO UPDATE SET balance = accounts.balance + excluded.balance",
                )
                .bind(account)
                .bind(amount)
                .execute(&mut *conn)
                .await?;
            }
            Ok(transaction_id)
        }};
    }
    match conn {
        Conn::Postgres(conn) => body!(
            conn,
            "INSERT INTO transactions (id, kind) VALUES (nextval('transactions_id_seq'), $1) \
             RETURNING id"
        ),
        Conn::Sqlite(conn) => body!(
            conn,
            "INSERT INTO transactions (kind) VALUES ($1) RETURNING id"
        ),
    }
}

pub(crate) async fn post_in(
    conn: Conn<'_>,
    calendar: &BusinessCalendar,
    correction: &NewCorrection,
) -> Result<CorrectionReceipt, LedgerError> {
    let postings = correction.postings()?;
    let business_date = calendar.business_date(correction.at);
    let receivable = correction.receivable();
    const FOUND: &str = "SELECT transaction_id, business_date, receivable FROM corrections \
        WHERE document = $1";
    const RECORD: &str = "INSERT INTO corrections (document, transaction_id, kind, business_date, \
        operator_id, receivable, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    macro_rules! body {
        ($conn:expr, $wrap:path) => {{
            let conn = $conn;
            let found: Option<(i64, chrono::NaiveDate, i64)> = sqlx::query_as(FOUND)
                .bind(&correction.document)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some((transaction_id, date, receivable)) = found {
                return Ok(CorrectionReceipt {
                    transaction_id,
                    business_date: BusinessDate::from_naive(date),
                    receivable,
                    replayed: true,
                });
            }
            let transaction_id =
                post_entry($wrap(&mut *conn), correction.kind.as_str(), &postings).await?;
            sqlx::query(RECORD)
                .bind(&correction.document)
                .bind(transaction_id)
                .bind(correction.kind.as_str())
                .bind(business_date.naive())
                .bind(correction.operator_id.as_str())
                .bind(receivable)
                .bind(&correction.actor)
                .bind(correction.at)
                .execute(&mut *conn)
                .await?;
            Ok(CorrectionReceipt {
                transaction_id,
                business_date,
                receivable,
                replayed: false,
            })
        }};
    }
    match conn {
        Conn::Postgres(conn) => body!(conn, Conn::Postgres),
        Conn::Sqlite(conn) => body!(conn, Conn::Sqlite),
    }
}

pub(crate) async fn post(
    db: Database<'_>,
    calendar: &BusinessCalendar,
    correction: &NewCorrection,
) -> Result<CorrectionReceipt, LedgerError> {
    for attempt in 0..2 {
        let posted = match db {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let receipt = post_in(Conn::Postgres(&mut tx), calendar, correction).await;
                match receipt {
                    Ok(receipt) => tx.commit().await.map(|()| receipt).map_err(Into::into),
                    Err(e) => Err(e),
                }
            }
            Database::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let receipt = post_in(Conn::Sqlite(&mut tx), calendar, correction).await;
                match receipt {
                    Ok(receipt) => tx.commit().await.map(|()| receipt).map_err(Into::into),
                    Err(e) => Err(e),
                }
            }
        };
        match posted {
            Err(LedgerError::Database(sqlx::Error::Database(e)))
                if e.is_unique_violation() && attempt == 0 => {}
            other => return other,
        }
    }
    Err(LedgerError::Corrupt(format!(
        "correction {} neither posted nor found",
        correction.document
    )))
}

/// Corrections posted in `date`, by operator, in the order they were posted.
pub(crate) async fn on_date(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Vec<PostedCorrection>, LedgerError> {
    const SQL: &str = "SELECT document, transaction_id, kind, operator_id, receivable, actor, \
        created_at FROM corrections WHERE business_date = $1 ORDER BY operator_id, transaction_id";
    let rows: Vec<CorrectionRow> = crate::on_pool!(db, pool => {
        sqlx::query_as(SQL).bind(date.naive()).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(PostedCorrection {
                kind: match r.kind.as_str() {
                    "adjustment" => CorrectionKind::Adjustment,
                    "writeoff" => CorrectionKind::WriteOff,
                    other => return Err(LedgerError::Corrupt(format!("correction kind {other}"))),
                },
                operator_id: OperatorId::parse(&r.operator_id)
                    .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                document: r.document,
                transaction_id: r.transaction_id,
                receivable: r.receivable,
                actor: r.actor,
                created_at: r.created_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct CorrectionRow {
    document: String,
    transaction_id: i64,
    kind: String,
    operator_id: String,
    receivable: i64,
    actor: String,
    created_at: DateTime<Utc>,
}

/// A correction the journal holds, as the day's report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedCorrection {
    pub document: String,
    pub transaction_id: i64,
    pub kind: CorrectionKind,
    pub operator_id: OperatorId,
    pub receivable: i64,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}
