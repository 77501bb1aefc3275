//! The money that arrives in (or leaves) our collection accounts, in the books (DESIGN.md,
//! Ledger and Bank statements and remittances). Each bank entry is one journal transaction,
//! caused by one document `bank:{account}:{bank_ref}` and posted once: a credit matched to an
//! operator pays its receivable, an unidentified credit waits in `suspense:unidentified`, a
//! debit (a fee, a return) goes to `suspense:bank_debits` for finance to classify. An
//! unidentified deposit assigned later is a second transaction, `assign:{account}:{bank_ref}`,
//! made by a named person.
//!
//! Entries are posted in batches, one database transaction per batch, because a statement
//! holds thousands of them (BENCHMARKS.md, remittances).

use chrono::{DateTime, NaiveDate, Utc};

use crate::backend::{Database, LedgerSettings};
use crate::business_date::BusinessDate;
use crate::correction::{Conn, post_entry};
use crate::error::{InvalidInput, LedgerError};
use crate::ids::OperatorId;
use crate::journal::receivable_account;

pub const SUSPENSE_UNIDENTIFIED: &str = "suspense:unidentified";
pub const SUSPENSE_BANK_DEBITS: &str = "suspense:bank_debits";

pub fn bank_account(account: &str) -> String {
    format!("bank:{account}")
}

/// The document of a bank entry's own posting.
pub fn entry_document(account: &str, bank_ref: &str) -> String {
    format!("bank:{account}:{bank_ref}")
}

/// The document of an unidentified deposit's assignment.
pub fn assignment_document(account: &str, bank_ref: &str) -> String {
    format!("assign:{account}:{bank_ref}")
}

/// How a credit was found to be an operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// It came from an account registered for the operator.
    PayerAccount,
    /// It quoted the operator's payment reference.
    Reference,
    /// Finance assigned it.
    Assigned,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::PayerAccount => "payer_account",
            MatchedBy::Reference => "reference",
            MatchedBy::Assigned => "assigned",
        }
    }

    fn parse(s: &str) -> Result<MatchedBy, LedgerError> {
        match s {
            "payer_account" => Ok(MatchedBy::PayerAccount),
            "reference" => Ok(MatchedBy::Reference),
            "assigned" => Ok(MatchedBy::Assigned),
            other => Err(LedgerError::Corrupt(format!("matched_by {other}"))),
        }
    }
}

/// Where a bank entry's money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A credit that pays `operator`'s receivable; `settles` is the date its reference named.
    Operator {
        operator: OperatorId,
        matched_by: MatchedBy,
        settles: Option<BusinessDate>,
    },
    /// A credit no one has been matched to yet.
    Unidentified,
    /// Money out of the account.
    Debit,
}

/// One bank entry to post. `amount` is positive; the destination says which way it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeposit {
    pub bank_account: String,
    pub bank_ref: String,
    pub amount: i64,
    pub to: Destination,
    pub at: DateTime<Utc>,
}

impl NewDeposit {
    fn kind(&self) -> &'static str {
        match self.to {
            Destination::Debit => "bank_debit",
            _ => "deposit",
        }
    }

    /// Credit positive: money in debits the bank account and credits whoever it pays.
    fn postings(&self) -> Vec<(String, i64)> {
        let bank = bank_account(&self.bank_account);
        match &self.to {
            Destination::Operator { operator, .. } => vec![
                (bank, -self.amount),
                (receivable_account(operator), self.amount),
            ],
            Destination::Unidentified => vec![
                (bank, -self.amount),
                (SUSPENSE_UNIDENTIFIED.to_string(), self.amount),
            ],
            Destination::Debit => vec![
                (bank, self.amount),
                (SUSPENSE_BANK_DEBITS.to_string(), -self.amount),
            ],
        }
    }
}

/// An unidentified deposit given to an operator by a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignment {
    pub bank_account: String,
    pub bank_ref: String,
    pub operator: OperatorId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A bank entry's posting (or an assignment) as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedDeposit {
    pub document: String,
    pub transaction_id: i64,
    /// `deposit`, `bank_debit` or `assignment`.
    pub kind: String,
    pub bank_account: String,
    pub bank_ref: String,
    /// `None`: in suspense (or a debit).
    pub operator_id: Option<String>,
    pub amount: i64,
    pub matched_by: Option<MatchedBy>,
    pub settles_date: Option<BusinessDate>,
    pub business_date: BusinessDate,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl PostedDeposit {
    /// What it paid off an operator's receivable (zero for suspense and debits).
    pub fn paid(&self) -> i64 {
        if self.operator_id.is_some() {
            self.amount
        } else {
            0
        }
    }
}

/// Which postings to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepositFilter {
    /// Posted in this business date.
    pub on: Option<BusinessDate>,
    /// Posted in this business date or before.
    pub until: Option<BusinessDate>,
    pub operator: Option<String>,
}

/// Rows per multi-row INSERT (12 parameters each: under both backends' limits).
const ROWS_PER_STATEMENT: usize = 1_000;

const COLUMNS: &str = "document, transaction_id, kind, bank_account, bank_ref, operator_id, \
    amount, matched_by, settles_date, business_date, actor, created_at";

/// Posts every deposit whose document was not posted before, in one database transaction,
/// and returns how many it posted. The postings land in the business date of each one's `at`.
pub(crate) async fn post_batch(
    db: Database<'_>,
    settings: &LedgerSettings,
    deposits: &[NewDeposit],
) -> Result<u64, LedgerError> {
    for d in deposits {
        if d.amount <= 0 {
            return Err(
                InvalidInput::new("amount", format!("{} is not positive", d.amount)).into(),
            );
        }
        if d.bank_account.trim().is_empty() || d.bank_ref.trim().is_empty() {
            return Err(InvalidInput::new(
                "bank_ref",
                "a bank entry names its account and reference",
            )
            .into());
        }
    }
    insert_batch(db, settings, deposits).await
}

async fn insert_batch(
    db: Database<'_>,
    settings: &LedgerSettings,
    deposits: &[NewDeposit],
) -> Result<u64, LedgerError> {
    // No look first: the documents' key decides (a look per batch costs more than it saves,
    // since callers only pass entries they found unposted). One entry twice is one entry.
    let mut seen = std::collections::HashSet::new();
    let fresh: Vec<(String, &NewDeposit)> = deposits
        .iter()
        .map(|d| (entry_document(&d.bank_account, &d.bank_ref), d))
        .filter(|(doc, _)| seen.insert(doc.clone()))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    match db {
        Database::Postgres(pool) => insert_batch_pg(pool, settings, &fresh).await,
        Database::Sqlite(pool) => insert_batch_sqlite(pool, settings, &fresh).await,
    }
}

/// `insert_batch` on SQLite: multi-row statements (it plans them cheaply), in the one
/// writer's transaction.
async fn insert_batch_sqlite(
    pool: &sqlx::SqlitePool,
    settings: &LedgerSettings,
    fresh: &[(String, &NewDeposit)],
) -> Result<u64, LedgerError> {
    let calendar = &settings.calendar;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let ids: Vec<i64> = sqlite_ids(&mut tx, fresh.len()).await?;
    // The documents first: one posted before, or by another writer meanwhile, is
    // skipped here (PostgreSQL waits for that writer to commit), and nothing else of
    // it is written, so no entry posts twice whoever runs at the same time.
    let mut kept: Vec<(i64, &NewDeposit)> = Vec::with_capacity(fresh.len());
    for (chunk, ids) in fresh
        .chunks(ROWS_PER_STATEMENT)
        .zip(ids.chunks(ROWS_PER_STATEMENT))
    {
        let mut q =
            sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO deposits ({COLUMNS}) "));
        q.push_values(chunk.iter().zip(ids), |mut row, ((document, d), id)| {
            let (operator, matched_by, settles) = match &d.to {
                Destination::Operator {
                    operator,
                    matched_by,
                    settles,
                } => (
                    Some(operator.as_str().to_string()),
                    Some(matched_by.as_str()),
                    settles.map(|s| s.naive()),
                ),
                _ => (None, None, None),
            };
            row.push_bind(document)
                .push_bind(*id)
                .push_bind(d.kind())
                .push_bind(&d.bank_account)
                .push_bind(&d.bank_ref)
                .push_bind(operator)
                .push_bind(d.amount)
                .push_bind(matched_by)
                .push_bind(settles)
                .push_bind(calendar.business_date(d.at).naive())
                .push_bind(None::<String>)
                .push_bind(d.at);
        });
        q.push(" ON CONFLICT (document) DO NOTHING RETURNING transaction_id");
        let inserted: std::collections::HashSet<i64> = q
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        kept.extend(
            chunk
                .iter()
                .zip(ids)
                .filter(|(_, id)| inserted.contains(id))
                .map(|((_, d), id)| (*id, *d)),
        );
    }
    for chunk in kept.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO transactions (id, kind) ");
        q.push_values(chunk, |mut row, (id, d)| {
            row.push_bind(*id).push_bind(d.kind());
        });
        q.build().execute(&mut *tx).await?;
        let moves: Vec<(i64, String, i64)> = chunk
            .iter()
            .flat_map(|(id, d)| d.postings().into_iter().map(move |(a, m)| (*id, a, m)))
            .collect();
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO postings (transaction_id, account_id, amount) ",
        );
        q.push_values(&moves, |mut row, (id, account, amount)| {
            row.push_bind(*id).push_bind(account).push_bind(*amount);
        });
        q.build().execute(&mut *tx).await?;
    }
    // Balances move once per account for the whole batch, in account order (as
    // every writer takes them); an account the batch nets to zero still gets its row.
    let mut by_account: std::collections::BTreeMap<String, i64> = Default::default();
    for (_, d) in &kept {
        for (account, amount) in d.postings() {
            *by_account.entry(account).or_default() += amount;
        }
    }
    let by_account: Vec<(String, i64)> = by_account.into_iter().collect();
    for chunk in by_account.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO accounts (id, balance) ");
        q.push_values(chunk, |mut row, (account, amount)| {
            row.push_bind(account).push_bind(*amount);
        });
        q.push(" ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance");
        q.build().execute(&mut *tx).await?;
    }
    crate::outbox::write(Conn::Sqlite(&mut tx), &applied_events(settings, &kept)).await?;
    tx.commit().await?;
    Ok(kept.len() as u64)
}

/// `insert_batch` on PostgreSQL, each table written by one array statement (UNNEST): a
/// multi-row VALUES of thousands of parameters costs more to plan than to run.
async fn insert_batch_pg(
    pool: &sqlx::PgPool,
    settings: &LedgerSettings,
    fresh: &[(String, &NewDeposit)],
) -> Result<u64, LedgerError> {
    let calendar = &settings.calendar;
    let mut tx = pool.begin().await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('transactions_id_seq') FROM generate_series(1, $1)")
            .bind(fresh.len() as i64)
            .fetch_all(&mut *tx)
            .await?;
    let column = |f: &dyn Fn(&NewDeposit) -> Option<String>| -> Vec<Option<String>> {
        fresh.iter().map(|(_, d)| f(d)).collect()
    };
    let operator = |d: &NewDeposit| match &d.to {
        Destination::Operator { operator, .. } => Some(operator.as_str().to_string()),
        _ => None,
    };
    let matched_by = |d: &NewDeposit| match &d.to {
        Destination::Operator { matched_by, .. } => Some(matched_by.as_str().to_string()),
        _ => None,
    };
    let settles: Vec<Option<NaiveDate>> = fresh
        .iter()
        .map(|(_, d)| match &d.to {
            Destination::Operator { settles, .. } => settles.map(|s| s.naive()),
            _ => None,
        })
        .collect();
    // The documents first: one posted before, or by another writer meanwhile, is skipped
    // here (PostgreSQL waits for that writer to commit), and nothing else of it is written.
    let inserted: std::collections::HashSet<i64> = sqlx::query_scalar(
        "INSERT INTO deposits (document, transaction_id, kind, bank_account, bank_ref, \
           operator_id, amount, matched_by, settles_date, business_date, actor, created_at) \
         SELECT doc, id, kind, acct, ref, op, amount, by, settles, day, NULL, at \
           FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
                       $7::int8[], $8::text[], $9::date[], $10::date[], $11::timestamptz[]) \
             AS u(doc, id, kind, acct, ref, op, amount, by, settles, day, at) \
         ON CONFLICT (document) DO NOTHING RETURNING transaction_id",
    )
    .bind(
        fresh
            .iter()
            .map(|(doc, _)| doc.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&ids)
    .bind(fresh.iter().map(|(_, d)| d.kind()).collect::<Vec<_>>())
    .bind(
        fresh
            .iter()
            .map(|(_, d)| d.bank_account.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        fresh
            .iter()
            .map(|(_, d)| d.bank_ref.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(column(&operator))
    .bind(fresh.iter().map(|(_, d)| d.amount).collect::<Vec<_>>())
    .bind(column(&matched_by))
    .bind(settles)
    .bind(
        fresh
            .iter()
            .map(|(_, d)| calendar.business_date(d.at).naive())
            .collect::<Vec<_>>(),
    )
    .bind(fresh.iter().map(|(_, d)| d.at).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let kept: Vec<(i64, &NewDeposit)> = fresh
        .iter()
        .zip(&ids)
        .filter(|(_, id)| inserted.contains(id))
        .map(|((_, d), id)| (*id, *d))
        .collect();
    sqlx::query("INSERT INTO transactions (id, kind) SELECT * FROM UNNEST($1::int8[], $2::text[])")
        .bind(kept.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(kept.iter().map(|(_, d)| d.kind()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    let moves = kept
        .iter()
        .flat_map(|(id, d)| d.postings().into_iter().map(move |(a, m)| (*id, a, m)));
    crate::postgres::post_in_batch(&mut tx, moves).await?;
    crate::outbox::write(Conn::Postgres(&mut tx), &applied_events(settings, &kept)).await?;
    tx.commit().await?;
    Ok(kept.len() as u64)
}

/// A credit that paid an operator's receivable, as `remittance.applied` tells it.
struct Applied<'a> {
    operator: &'a OperatorId,
    bank_account: &'a str,
    bank_ref: &'a str,
    amount: i64,
    matched_by: MatchedBy,
    settles: Option<BusinessDate>,
    transaction_id: i64,
    actor: Option<&'a str>,
    at: DateTime<Utc>,
}

/// `remittance.applied`: money in, on the operator's receivable. Which dues it pays off is
/// decided when they are read (oldest first, `remittances`), so the event says what the
/// posting knows: how it was matched and the date a reference named.
fn applied_event(settings: &LedgerSettings, a: Applied<'_>) -> crate::outbox::NewEvent {
    let currency = settings.currency;
    crate::outbox::NewEvent {
        event_type: crate::outbox::EventType::RemittanceApplied,
        subject: crate::outbox::operator_subject(a.operator),
        operator: Some(a.operator.clone()),
        time: a.at,
        data: serde_json::json!({
            "operator_id": a.operator.as_str(),
            "document": entry_document(a.bank_account, a.bank_ref),
            "bank_ref": a.bank_ref,
            "amount": crate::money::Money::new(a.amount, currency).to_decimal_string(),
            "currency": currency.code(),
            "matched_by": a.matched_by.as_str(),
            "settles_date": a.settles.map(|d| d.naive()),
            "business_date": settings.calendar.business_date(a.at).naive(),
            "transaction_id": a.transaction_id,
            "actor": a.actor,
        }),
    }
}

/// The events of the credits of a posted batch that went to an operator.
fn applied_events(
    settings: &LedgerSettings,
    kept: &[(i64, &NewDeposit)],
) -> Vec<crate::outbox::NewEvent> {
    kept.iter()
        .filter_map(|(id, d)| match &d.to {
            Destination::Operator {
                operator,
                matched_by,
                settles,
            } => Some(applied_event(
                settings,
                Applied {
                    operator,
                    bank_account: &d.bank_account,
                    bank_ref: &d.bank_ref,
                    amount: d.amount,
                    matched_by: *matched_by,
                    settles: *settles,
                    transaction_id: *id,
                    actor: None,
                    at: d.at,
                },
            )),
            _ => None,
        })
        .collect()
}

/// SQLite has one writer, and this transaction is it: the ids after the largest are free.
async fn sqlite_ids(tx: &mut sqlx::SqliteConnection, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM transactions")
        .fetch_one(tx)
        .await?;
    Ok((next..next + n as i64).collect())
}

/// What an assignment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentReceipt {
    pub transaction_id: i64,
    pub amount: i64,
    /// The same assignment was made before: nothing was posted now.
    pub replayed: bool,
}

/// Moves an unidentified deposit from suspense to `operator`'s receivable, once. Assigning
/// it again to the same operator is a replay; to another, a conflict (finance reverses a
/// wrong assignment with a correction, never by rewriting this one).
pub(crate) async fn assign(
    db: Database<'_>,
    settings: &LedgerSettings,
    a: &NewAssignment,
) -> Result<AssignmentReceipt, LedgerError> {
    let calendar = &settings.calendar;
    if a.actor.trim().is_empty() {
        return Err(
            InvalidInput::new("actor", "an assignment names the person who made it").into(),
        );
    }
    let entry = entry_document(&a.bank_account, &a.bank_ref);
    let document = assignment_document(&a.bank_account, &a.bank_ref);
    const FIND: &str =
        "SELECT kind, operator_id, amount, transaction_id FROM deposits WHERE document = $1";
    macro_rules! body {
        ($tx:expr, $conn:path) => {{
            let mut tx = $tx;
            if let Database::Postgres(_) = db {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(&document)
                    .execute(&mut *tx)
                    .await?;
            }
            let found: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(FIND)
                .bind(&entry)
                .fetch_optional(&mut *tx)
                .await?;
            let amount = match found {
                None => {
                    return Err(InvalidInput::new(
                        "bank_ref",
                        format!(
                            "no bank entry {} of account {} was posted",
                            a.bank_ref, a.bank_account
                        ),
                    )
                    .into());
                }
                Some((kind, operator, amount, _)) => {
                    if kind != "deposit" || operator.is_some() {
                        return Err(InvalidInput::new(
                            "bank_ref",
                            format!(
                                "bank entry {} is not an unidentified deposit (it is a {}{})",
                                a.bank_ref,
                                kind,
                                operator
                                    .map(|o| format!(" of operator {o}"))
                                    .unwrap_or_default()
                            ),
                        )
                        .into());
                    }
                    amount
                }
            };
            let before: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(FIND)
                .bind(&document)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((_, operator, amount, transaction_id)) = before {
                if operator.as_deref() == Some(a.operator.as_str()) {
                    return Ok(AssignmentReceipt {
                        transaction_id,
                        amount,
                        replayed: true,
                    });
                }
                return Err(LedgerError::Conflict {
                    what: "assignment".into(),
                    reference: a.bank_ref.clone(),
                    detail: format!(
                        "it was assigned to operator {} before",
                        operator.unwrap_or_default()
                    ),
                });
            }
            let postings = vec![
                (SUSPENSE_UNIDENTIFIED.to_string(), -amount),
                (receivable_account(&a.operator), amount),
            ];
            let transaction_id = post_entry($conn(&mut *tx), "assignment", &postings).await?;
            sqlx::query(&format!(
                "INSERT INTO deposits ({COLUMNS}) VALUES ($1, $2, 'assignment', $3, $4, $5, $6, \
                 'assigned', NULL, $7, $8, $9)"
            ))
            .bind(&document)
            .bind(transaction_id)
            .bind(&a.bank_account)
            .bind(&a.bank_ref)
            .bind(a.operator.as_str())
            .bind(amount)
            .bind(calendar.business_date(a.at).naive())
            .bind(&a.actor)
            .bind(a.at)
            .execute(&mut *tx)
            .await?;
            let heard = applied_event(
                settings,
                Applied {
                    operator: &a.operator,
                    bank_account: &a.bank_account,
                    bank_ref: &a.bank_ref,
                    amount,
                    matched_by: MatchedBy::Assigned,
                    settles: None,
                    transaction_id,
                    actor: Some(&a.actor),
                    at: a.at,
                },
            );
            crate::outbox::write($conn(&mut *tx), &[heard]).await?;
            tx.commit().await?;
            Ok(AssignmentReceipt {
                transaction_id,
                amount,
                replayed: false,
            })
        }};
    }
    match db {
        Database::Postgres(pool) => body!(pool.begin().await?, Conn::Postgres),
        Database::Sqlite(pool) => body!(pool.begin_with("BEGIN IMMEDIATE").await?, Conn::Sqlite),
    }
}

#[derive(sqlx::FromRow)]
struct DepositRow {
    document: String,
    transaction_id: i64,
    kind: String,
    bank_account: String,
    bank_ref: String,
    operator_id: Option<String>,
    amount: i64,
    matched_by: Option<String>,
    settles_date: Option<NaiveDate>,
    business_date: NaiveDate,
    actor: Option<String>,
    created_at: DateTime<Utc>,
}

/// The postings of bank entries and assignments the filter selects, in the order they were
/// posted.
pub(crate) async fn list(
    db: Database<'_>,
    filter: &DepositFilter,
) -> Result<Vec<PostedDeposit>, LedgerError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deposits WHERE ($1 IS NULL OR business_date = $1) \
         AND ($2 IS NULL OR business_date <= $2) AND ($3 IS NULL OR operator_id = $3) \
         ORDER BY transaction_id"
    );
    let rows: Vec<DepositRow> = crate::on_pool!(db, pool => {
        sqlx::query_as(&sql)
            .bind(filter.on.map(|d| d.naive()))
            .bind(filter.until.map(|d| d.naive()))
            .bind(filter.operator.as_deref())
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(PostedDeposit {
                document: r.document,
                transaction_id: r.transaction_id,
                kind: r.kind,
                bank_account: r.bank_account,
                bank_ref: r.bank_ref,
                operator_id: r.operator_id,
                amount: r.amount,
                matched_by: r.matched_by.as_deref().map(MatchedBy::parse).transpose()?,
                settles_date: r.settles_date.map(BusinessDate::from_naive),
                business_date: BusinessDate::from_naive(r.business_date),
                actor: r.actor,
                created_at: r.created_at,
            })
        })
        .collect()
}
