//! The cases and their history in the database, on both backends. Every write is one
//! database transaction that locks what it decides on (the case's row on PostgreSQL; SQLite
//! has one writer) and the chain's head, so decisions happen once and events are chained in
//! the order they commit. The same SQL serves both backends (`$N` placeholders); the module
//! is stamped out once per backend by `backend!`.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::copy_text::{instant, row as copy_row};
use ledger::{BusinessDate, Currency, Database, Ledger};

use crate::ExceptionError;
use crate::audit::{CaseEvent, ChainReport, NewEvent, walk};
use crate::case::{Actor, CaseFilter, CaseId, CaseState, ExceptionCase, Resolution};
use crate::decision::{self, Action, Decided};
use crate::news;
use crate::sync::{Found, SyncReport};

pub(crate) const CASE_COLUMNS: &str = "id, business_date, operator_id, operator_ref, case_name, \
    ledger_card_id, file_card_id, ledger_amount, file_amount, difference, state, resolution, \
    proposed_by, decisions, transaction_id, dispute_reason, evidence_ref, opened_run, last_run, \
    cleared_run, opened_at, updated_at";

const EVENT_COLUMNS: &str =
    "seq, case_id, at, actor, action, from_state, to_state, note, amount, run_id, hash";

/// Rows per multi-row statement (SQLite allows 32,766 parameters; 15 per case row).
const ROWS_PER_STATEMENT: usize = 500;

#[derive(sqlx::FromRow)]
pub(crate) struct CaseRow {
    id: i64,
    business_date: NaiveDate,
    operator_id: String,
    operator_ref: String,
    case_name: String,
    ledger_card_id: Option<String>,
    file_card_id: Option<String>,
    ledger_amount: Option<i64>,
    file_amount: Option<i64>,
    difference: i64,
    state: String,
    resolution: Option<String>,
    proposed_by: Option<String>,
    decisions: i32,
    transaction_id: Option<i64>,
    dispute_reason: Option<String>,
    evidence_ref: Option<String>,
    opened_run: String,
    last_run: String,
    cleared_run: Option<String>,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CaseRow> for ExceptionCase {
    type Error = ExceptionError;

    fn try_from(r: CaseRow) -> Result<ExceptionCase, ExceptionError> {
        let corrupt =
            |e: ledger::InvalidInput| ExceptionError::Corrupt(format!("case {}: {e}", r.id));
        Ok(ExceptionCase {
            id: r.id,
            business_date: r.business_date,
            state: CaseState::parse(&r.state).map_err(corrupt)?,
            resolution: r
                .resolution
                .as_deref()
                .map(Resolution::parse)
                .transpose()
                .map_err(corrupt)?,
            operator_id: r.operator_id,
            operator_ref: r.operator_ref,
            case_name: r.case_name,
            ledger_card_id: r.ledger_card_id,
            file_card_id: r.file_card_id,
            ledger_amount: r.ledger_amount,
            file_amount: r.file_amount,
            difference: r.difference,
            proposed_by: r.proposed_by,
            decisions: r.decisions,
            transaction_id: r.transaction_id,
            dispute_reason: r.dispute_reason,
            evidence_ref: r.evidence_ref,
            opened_run: r.opened_run,
            last_run: r.last_run,
            cleared_run: r.cleared_run,
            opened_at: r.opened_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) fn cases(rows: Vec<CaseRow>) -> Result<Vec<ExceptionCase>, ExceptionError> {
    rows.into_iter().map(ExceptionCase::try_from).collect()
}

async fn begin_postgres(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

async fn begin_sqlite(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// New cases and their ids, by (operator, ref).
type NewCaseIds = std::collections::HashMap<(String, String), i64>;

const NEW_CASE_COLUMNS: &str = "business_date, operator_id, operator_ref, case_name, \
    ledger_card_id, file_card_id, ledger_amount, file_amount, difference, state, opened_run, \
    last_run, cleared_run, opened_at, updated_at";

/// PostgreSQL: a run's new cases in one COPY (a city's day opens hundreds of thousands),
/// their ids read back by the run that opened them.
async fn copy_cases(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    date: NaiveDate,
    run_id: &str,
    opened: &[(ExceptionCase, Vec<NewEvent>)],
) -> Result<NewCaseIds, ExceptionError> {
    if opened.is_empty() {
        return Ok(NewCaseIds::new());
    }
    let mut data = String::with_capacity(opened.len() * 200);
    for (c, _) in opened {
        let (day, amounts) = (
            c.business_date.to_string(),
            [c.ledger_amount, c.file_amount].map(|a| a.map(|a| a.to_string())),
        );
        let (difference, opened_at, updated_at) = (
            c.difference.to_string(),
            instant(&c.opened_at),
            instant(&c.updated_at),
        );
        copy_row(
            &mut data,
            &[
                Some(&day),
                Some(&c.operator_id),
                Some(&c.operator_ref),
                Some(&c.case_name),
                c.ledger_card_id.as_deref(),
                c.file_card_id.as_deref(),
                amounts[0].as_deref(),
                amounts[1].as_deref(),
                Some(&difference),
                Some(c.state.as_str()),
                Some(&c.opened_run),
                Some(&c.last_run),
                c.cleared_run.as_deref(),
                Some(&opened_at),
                Some(&updated_at),
            ],
        );
    }
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY exception_cases ({NEW_CASE_COLUMNS}) FROM STDIN"
        ))
        .await?;
    copy.send(data.into_bytes()).await?;
    copy.finish().await?;
    let ids: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, operator_id, operator_ref FROM exception_cases \
         WHERE business_date = $1 AND opened_run = $2",
    )
    .bind(date)
    .bind(run_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids.into_iter().map(|(id, o, r)| ((o, r), id)).collect())
}

/// SQLite: multi-row INSERTs, each returning its ids.
async fn insert_cases(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    _date: NaiveDate,
    _run_id: &str,
    opened: &[(ExceptionCase, Vec<NewEvent>)],
) -> Result<NewCaseIds, ExceptionError> {
    let mut ids = NewCaseIds::new();
    for chunk in opened.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "INSERT INTO exception_cases ({NEW_CASE_COLUMNS}) "
        ));
        q.push_values(chunk, |mut row, (c, _)| {
            row.push_bind(c.business_date)
                .push_bind(&c.operator_id)
                .push_bind(&c.operator_ref)
                .push_bind(&c.case_name)
                .push_bind(&c.ledger_card_id)
                .push_bind(&c.file_card_id)
                .push_bind(c.ledger_amount)
                .push_bind(c.file_amount)
                .push_bind(c.difference)
                .push_bind(c.state.as_str())
                .push_bind(&c.opened_run)
                .push_bind(&c.last_run)
                .push_bind(&c.cleared_run)
                .push_bind(c.opened_at)
                .push_bind(c.updated_at);
        });
        q.push(" RETURNING id, operator_ref, operator_id");
        let rows: Vec<(i64, String, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        ids.extend(rows.into_iter().map(|(id, r, o)| ((o, r), id)));
    }
    Ok(ids)
}

/// PostgreSQL: chained events in one COPY.
async fn copy_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[CaseEvent],
) -> Result<(), ExceptionError> {
    let mut data = String::with_capacity(events.len() * 220);
    for e in events {
        let (seq, case_id, at) = (e.seq.to_string(), e.case_id.to_string(), instant(&e.at));
        let amount = e.amount.map(|a| a.to_string());
        copy_row(
            &mut data,
            &[
                Some(&seq),
                Some(&case_id),
                Some(&at),
                Some(&e.actor),
                Some(&e.action),
                e.from_state.as_deref(),
                Some(&e.to_state),
                e.note.as_deref(),
                amount.as_deref(),
                e.run_id.as_deref(),
                Some(&e.hash),
            ],
        );
    }
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY exception_events ({EVENT_COLUMNS}) FROM STDIN"
        ))
        .await?;
    copy.send(data.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// SQLite: chained events in multi-row INSERTs.
async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    events: &[CaseEvent],
) -> Result<(), ExceptionError> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "INSERT INTO exception_events ({EVENT_COLUMNS}) "
        ));
        q.push_values(chunk, |mut row, e| {
            row.push_bind(e.seq)
                .push_bind(e.case_id)
                .push_bind(e.at)
                .push_bind(&e.actor)
                .push_bind(&e.action)
                .push_bind(&e.from_state)
                .push_bind(&e.to_state)
                .push_bind(&e.note)
                .push_bind(e.amount)
                .push_bind(&e.run_id)
                .push_bind(&e.hash);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// One module per backend: `$lock` is what locks a row read for a decision.
macro_rules! backend {
    (
        $name:ident, $db:ty, $pool:ty, $begin:path, $lock:literal, $conn:path,
        $insert_cases:path, $write_events:path
    ) => {
        mod $name {
            use super::*;

            type Tx<'a> = sqlx::Transaction<'a, $db>;

            /// Chains `events` after the head and stores them.
            pub(super) async fn append(tx: &mut Tx<'_>, events: &[NewEvent]) -> Result<(), ExceptionError> {
                if events.is_empty() {
                    return Ok(());
                }
                let (mut seq, mut hash): (i64, String) =
                    sqlx::query_as(concat!("SELECT seq, hash FROM exception_chain", $lock))
                        .fetch_one(&mut **tx)
                        .await?;
                let mut chained = Vec::with_capacity(events.len());
                for event in events {
                    seq += 1;
                    let stored = event.chained(seq, &hash);
                    hash = stored.hash.clone();
                    chained.push(stored);
                }
                $write_events(tx, &chained).await?;
                sqlx::query("UPDATE exception_chain SET seq = $1, hash = $2")
                    .bind(seq)
                    .bind(&hash)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn write_case(tx: &mut Tx<'_>, c: &ExceptionCase) -> Result<(), ExceptionError> {
                sqlx::query(
                    "UPDATE exception_cases SET case_name = $2, ledger_card_id = $3, \
                     file_card_id = $4, ledger_amount = $5, file_amount = $6, difference = $7, \
                     state = $8, resolution = $9, proposed_by = $10, decisions = $11, \
                     transaction_id = $12, dispute_reason = $13, evidence_ref = $14, \
                     last_run = $15, cleared_run = $16, updated_at = $17 WHERE id = $1",
                )
                .bind(c.id)
                .bind(&c.case_name)
                .bind(&c.ledger_card_id)
                .bind(&c.file_card_id)
                .bind(c.ledger_amount)
                .bind(c.file_amount)
                .bind(c.difference)
                .bind(c.state.as_str())
                .bind(c.resolution.map(Resolution::as_str))
                .bind(&c.proposed_by)
                .bind(c.decisions)
                .bind(c.transaction_id)
                .bind(&c.dispute_reason)
                .bind(&c.evidence_ref)
                .bind(&c.last_run)
                .bind(&c.cleared_run)
                .bind(c.updated_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            pub(super) async fn decide(
                pool: &$pool,
                ledger: &dyn Ledger,
                id: CaseId,
                action: &Action,
                actor: &Actor,
                threshold: i64,
                operator: Option<&str>,
            ) -> Result<Decided, ExceptionError> {
                let mut tx = $begin(pool).await?;
                let row: Option<CaseRow> = sqlx::query_as(&format!(
                    concat!("SELECT {} FROM exception_cases WHERE id = $1", $lock),
                    CASE_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                // Another operator's case does not exist, as far as that operator knows.
                let case: ExceptionCase = match row {
                    Some(row) if operator.is_none_or(|op| op == row.operator_id) => row.try_into()?,
                    _ => return Err(ExceptionError::NotFound(id)),
                };
                let before = case.state;
                let mut plan = decision::plan(&case, action, actor, threshold, ledger::journal::now())?;
                let mut transaction_id = None;
                if let Some(correction) = &plan.correction {
                    let receipt = ledger.post_correction_in($conn(&mut *tx), correction).await?;
                    transaction_id = Some(receipt.transaction_id);
                    if plan.case.state == CaseState::Resolved {
                        plan.case.transaction_id = transaction_id;
                    }
                }
                write_case(&mut tx, &plan.case).await?;
                append(&mut tx, std::slice::from_ref(&plan.event)).await?;
                let currency = ledger.settings().currency;
                if let Some(heard) = news::of_change(Some(before), &plan.case, actor.as_str(), currency)? {
                    ledger::outbox::write($conn(&mut *tx), &[heard]).await?;
                }
                tx.commit().await?;
                Ok(Decided {
                    case: plan.case,
                    action: plan.event.action.as_str(),
                    transaction_id,
                })
            }

            pub(super) async fn sync(
                pool: &$pool,
                date: BusinessDate,
                run_id: &str,
                found: Option<Vec<Found>>,
                currency: Currency,
            ) -> Result<SyncReport, ExceptionError> {
                let mut tx = $begin(pool).await?;
                let current: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM recon_runs WHERE business_date = $1 AND is_current",
                )
                .bind(date.naive())
                .fetch_optional(&mut *tx)
                .await?;
                if current.as_deref() != Some(run_id) {
                    return Ok(SyncReport { superseded: true, ..SyncReport::default() });
                }
                // The chain's head first: two syncs of one date take turns here.
                sqlx::query(concat!("SELECT seq FROM exception_chain", $lock))
                    .execute(&mut *tx)
                    .await?;
                // The run's changes count from the first date not yet reported: a report
                // already published keeps saying what it said (exceptions::as_of).
                let reported: Vec<NaiveDate> = sqlx::query_scalar(
                    "SELECT business_date FROM business_dates WHERE business_date >= $1 \
                     AND settled_at IS NOT NULL ORDER BY business_date",
                )
                .bind(date.naive())
                .fetch_all(&mut *tx)
                .await?;
                let counts_from = crate::as_of::first_unreported(date.naive(), &reported);
                sqlx::query("UPDATE recon_runs SET counts_from = $2 WHERE id = $1")
                    .bind(run_id)
                    .bind(counts_from)
                    .execute(&mut *tx)
                    .await?;
                let found: Vec<Found> = match found {
                    Some(found) => found,
                    None => {
                        sqlx::query_as(
                            "SELECT operator_id, operator_ref, case_name, ledger_card_id, \
                             file_card_id, ledger_amount, file_amount, difference \
                             FROM recon_items WHERE run_id = $1 AND case_name <> 'MATCHED' \
                             ORDER BY operator_id, operator_ref",
                        )
                        .bind(run_id)
                        .fetch_all(&mut *tx)
                        .await?
                    }
                };
                // In byte order, whatever the database's collation: new cases get their ids
                // and events their place in the chain in this order, from either source.
                let mut found = found;
                found.sort_by(|a, b| {
                    (a.operator_id.as_bytes(), a.operator_ref.as_bytes())
                        .cmp(&(b.operator_id.as_bytes(), b.operator_ref.as_bytes()))
                });
                let existing = cases(
                    sqlx::query_as(&format!(
                        "SELECT {CASE_COLUMNS} FROM exception_cases WHERE business_date = $1"
                    ))
                    .bind(date.naive())
                    .fetch_all(&mut *tx)
                    .await?,
                )?;
                let adjacent = cases(
                    sqlx::query_as(&format!(
                        "SELECT {CASE_COLUMNS} FROM exception_cases \
                         WHERE business_date IN ($1, $2) AND case_name = 'TIMING'"
                    ))
                    .bind(date.pred().naive())
                    .bind(date.succ().naive())
                    .fetch_all(&mut *tx)
                    .await?,
                )?;
                let at = ledger::journal::now();
                let plan = crate::sync::plan(date.naive(), run_id, found, existing, &adjacent, at);
                let mut events = Vec::with_capacity(plan.opened.len() + plan.changed.len());
                let mut heard = Vec::new();
                let ids = $insert_cases(&mut tx, date.naive(), run_id, &plan.opened).await?;
                for (c, opened) in &plan.opened {
                    let id = ids[&(c.operator_id.clone(), c.operator_ref.clone())];
                    events.extend(opened.iter().cloned().map(|e| NewEvent { case_id: id, ..e }));
                    let c = ExceptionCase { id, ..c.clone() };
                    heard.extend(news::of_change(None, &c, Actor::SYSTEM, currency)?);
                }
                for (case, event) in &plan.changed {
                    let mut case = case.clone();
                    case.last_run = run_id.to_string();
                    write_case(&mut tx, &case).await?;
                    heard.extend(news::of_change(event.from_state, &case, &event.actor, currency)?);
                    events.push(event.clone());
                }
                ledger::outbox::write($conn(&mut *tx), &heard).await?;
                // Every case of the date still standing was looked at by this run.
                sqlx::query(
                    "UPDATE exception_cases SET last_run = $2 WHERE business_date = $1 \
                     AND state <> 'CLEARED' AND last_run <> $2",
                )
                .bind(date.naive())
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
                append(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(plan.report)
            }
        }
    };
}

backend!(
    postgres,
    sqlx::Postgres,
    sqlx::PgPool,
    begin_postgres,
    " FOR UPDATE",
    ledger::correction::Conn::Postgres,
    copy_cases,
    copy_events
);
backend!(
    sqlite,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    begin_sqlite,
    "",
    ledger::correction::Conn::Sqlite,
    insert_cases,
    insert_events
);

/// Applies `action` by `actor` to case `id`. `operator` narrows it to one operator's cases
/// (the API): another operator's case is not found.
pub async fn decide(
    ledger: &dyn Ledger,
    id: CaseId,
    action: &Action,
    actor: &Actor,
    threshold: i64,
    operator: Option<&str>,
) -> Result<Decided, ExceptionError> {
    match ledger.database() {
        Database::Postgres(pool) => {
            postgres::decide(pool, ledger, id, action, actor, threshold, operator).await
        }
        Database::Sqlite(pool) => {
            sqlite::decide(pool, ledger, id, action, actor, threshold, operator).await
        }
    }
}

pub(crate) async fn sync(
    db: Database<'_>,
    date: BusinessDate,
    run_id: &str,
    found: Option<Vec<Found>>,
    currency: Currency,
) -> Result<SyncReport, ExceptionError> {
    match db {
        Database::Postgres(pool) => postgres::sync(pool, date, run_id, found, currency).await,
        Database::Sqlite(pool) => sqlite::sync(pool, date, run_id, found, currency).await,
    }
}

/// One case by id (`operator` narrows to that operator's).
pub async fn case(
    db: Database<'_>,
    id: CaseId,
    operator: Option<&str>,
) -> Result<Option<ExceptionCase>, ExceptionError> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM exception_cases WHERE id = $1");
    let row: Option<CaseRow> = ledger::on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    row.filter(|r| operator.is_none_or(|op| op == r.operator_id))
        .map(ExceptionCase::try_from)
        .transpose()
}

/// The history of one case, or of every case (`None`), in chain order.
pub async fn events(
    db: Database<'_>,
    case: Option<CaseId>,
) -> Result<Vec<CaseEvent>, ExceptionError> {
    let sql = match case {
        Some(_) => {
            format!("SELECT {EVENT_COLUMNS} FROM exception_events WHERE case_id = $1 ORDER BY seq")
        }
        None => format!("SELECT {EVENT_COLUMNS} FROM exception_events ORDER BY seq"),
    };
    Ok(ledger::on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql);
        if let Some(id) = case {
            q = q.bind(id);
        }
        q.fetch_all(pool).await?
    }))
}

/// The cases `filter` selects, by id.
pub async fn list(
    db: Database<'_>,
    filter: &CaseFilter,
) -> Result<Vec<ExceptionCase>, ExceptionError> {
    // Every condition is bound; the SQL only says which ones apply.
    let mut sql = format!("SELECT {CASE_COLUMNS} FROM exception_cases WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.business_date.is_some() {
        sql += &format!(" AND business_date = {}", next());
    }
    if filter.operator_id.is_some() {
        sql += &format!(" AND operator_id = {}", next());
    }
    if !filter.states.is_empty() {
        let marks: Vec<String> = filter.states.iter().map(|_| next()).collect();
        sql += &format!(" AND state IN ({})", marks.join(", "));
    }
    if filter.case_name.is_some() {
        sql += &format!(" AND case_name = {}", next());
    }
    if filter.older_than.is_some() {
        sql += &format!(" AND business_date <= {}", next());
    }
    if filter.after.is_some() {
        sql += &format!(" AND id > {}", next());
    }
    sql += " ORDER BY id";
    if filter.limit.is_some() {
        sql += &format!(" LIMIT {}", next());
    }
    let rows: Vec<CaseRow> = ledger::on_pool!(db, pool => {
        let mut q = sqlx::query_as(&sql);
        if let Some(date) = filter.business_date {
            q = q.bind(date.naive());
        }
        if let Some(op) = &filter.operator_id {
            q = q.bind(op);
        }
        for state in &filter.states {
            q = q.bind(state.as_str());
        }
        if let Some(case_name) = &filter.case_name {
            q = q.bind(case_name);
        }
        if let Some((days, today)) = filter.older_than {
            q = q.bind(today.naive() - chrono::Days::new(u64::from(days)));
        }
        if let Some(after) = filter.after {
            q = q.bind(after);
        }
        if let Some(limit) = filter.limit {
            q = q.bind(i64::from(limit));
        }
        q.fetch_all(pool).await?
    });
    cases(rows)
}

/// Recomputes the whole chain and names the first event that does not follow.
pub async fn verify(db: Database<'_>) -> Result<ChainReport, ExceptionError> {
    let head: (i64, String) = ledger::on_pool!(db, pool => {
        sqlx::query_as("SELECT seq, hash FROM exception_chain").fetch_one(pool).await?
    });
    let events = events(db, None).await?;
    Ok(walk(events, (head.0, &head.1)))
}

/// The cases of `ids` that exist, by id.
pub async fn cases_by_id(
    db: Database<'_>,
    ids: &[CaseId],
) -> Result<Vec<ExceptionCase>, ExceptionError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM exception_cases WHERE id IN ({}) ORDER BY id",
            marks.join(", ")
        );
        let rows: Vec<CaseRow> = ledger::on_pool!(db, pool => {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(pool).await?
        });
        found.extend(cases(rows)?);
    }
    found.sort_by_key(|c| c.id);
    Ok(found)
}
