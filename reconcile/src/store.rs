//! Persisting a run: its items and summaries under a run id. A re-run of a date becomes
//! the current run for it in the same transaction that writes it, so readers see either the
//! old results or the new ones; earlier runs are kept as history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger::{BusinessDate, Database};
use polars::prelude::*;

use crate::{Case, ReconcileError, Reconciliation};

fn micros_to_time(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(DateTime::from_timestamp_micros)
}

/// One item of a run, borrowed from its frame: a row of `recon_items`.
pub struct ItemRow<'a> {
    pub operator_id: &'a str,
    pub operator_ref: &'a str,
    pub case: &'a str,
    pub ledger_card_id: Option<&'a str>,
    pub file_card_id: Option<&'a str>,
    pub ledger_amount: Option<i64>,
    pub file_amount: Option<i64>,
    pub difference: i64,
    pub ledger_occurred_at: Option<DateTime<Utc>>,
    pub file_occurred_at: Option<DateTime<Utc>>,
}

fn item_rows(items: &DataFrame) -> Result<Vec<ItemRow<'_>>, ReconcileError> {
    let s =
        |name: &str| -> Result<&StringChunked, ReconcileError> { Ok(items.column(name)?.str()?) };
    let i =
        |name: &str| -> Result<&Int64Chunked, ReconcileError> { Ok(items.column(name)?.i64()?) };
    let (ops, refs, cases, lcards, fcards) = (
        s("operator_id")?,
        s("operator_ref")?,
        s("case")?,
        s("ledger_card_id")?,
        s("file_card_id")?,
    );
    let (lamount, famount, diff, lat, fat) = (
        i("ledger_amount")?,
        i("file_amount")?,
        i("difference")?,
        i("ledger_occurred_at")?,
        i("file_occurred_at")?,
    );
    Ok((0..items.height())
        .map(|idx| ItemRow {
            operator_id: ops.get(idx).unwrap_or_default(),
            operator_ref: refs.get(idx).unwrap_or_default(),
            case: cases.get(idx).unwrap_or_default(),
            ledger_card_id: lcards.get(idx),
            file_card_id: fcards.get(idx),
            ledger_amount: lamount.get(idx),
            file_amount: famount.get(idx),
            difference: diff.get(idx).unwrap_or(0),
            ledger_occurred_at: micros_to_time(lat.get(idx)),
            file_occurred_at: micros_to_time(fat.get(idx)),
        })
        .collect())
}

/// What a job knows about a run besides its results.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// The date's input counter when the run began reading (see `ledger::date_status`).
    pub input_seq: Option<i64>,
    /// Where the full item list was written, and its sha256.
    pub items_object: Option<(String, String)>,
}

/// What the database keeps of a run's results: how many items it had, its non-MATCHED
/// items and its per-operator summary. MATCHED items are many and nobody queries them one
/// by one; they stay in the run's item file in the object store.
pub struct RunOutcome {
    /// Items of the run, MATCHED included.
    pub items: u64,
    /// The non-MATCHED items, columns as in `Reconciliation::items`, sorted by operator and
    /// ref.
    pub exceptions: DataFrame,
    /// The per-operator summary, as in `Reconciliation::summary`.
    pub summary: DataFrame,
}

impl RunOutcome {
    /// The summary frame as one typed line per operator.
    pub fn operator_summaries(&self) -> Result<Vec<OperatorSummary>, ReconcileError> {
        summaries_of(&self.summary)
    }

    /// The non-MATCHED items one by one, as the database keeps them: what the date's
    /// exception cases follow, handed over without reading them back.
    pub fn exception_rows(&self) -> Result<Vec<ItemRow<'_>>, ReconcileError> {
        item_rows(&self.exceptions)
    }
}

impl Reconciliation {
    /// What the database keeps of this result.
    pub fn outcome(&self) -> Result<RunOutcome, ReconcileError> {
        Ok(RunOutcome {
            items: self.items.height() as u64,
            exceptions: non_matched(&self.items)?,
            summary: self.summary.clone(),
        })
    }
}

/// The items of `items` that are not MATCHED, in their order.
pub fn non_matched(items: &DataFrame) -> Result<DataFrame, ReconcileError> {
    let mask = items
        .column("case")?
        .str()?
        .not_equal(Case::Matched.as_str());
    Ok(items.filter(&mask)?)
}

/// Saves a run under a new id and makes it the current one for its date; returns the id.
pub async fn save_run(
    db: Database<'_>,
    date: BusinessDate,
    result: &Reconciliation,
) -> Result<String, ReconcileError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    save_run_as(db, date, &result.outcome()?, &run_id, &RunRecord::default()).await?;
    Ok(run_id)
}

/// Saves a run as `run_id` and makes it the current one for its date, in one transaction.
/// Only what people query is kept in the database: the run, its per-operator summaries and
/// its non-MATCHED items (PostgreSQL takes them through COPY). The whole item list belongs
/// in the object store (`record.items_object`).
pub async fn save_run_as(
    db: Database<'_>,
    date: BusinessDate,
    outcome: &RunOutcome,
    run_id: &str,
    record: &RunRecord,
) -> Result<(), ReconcileError> {
    let rows: Vec<ItemRow<'_>> = item_rows(&outcome.exceptions)?
        .into_iter()
        .filter(|r| r.case != Case::Matched.as_str())
        .collect();
    let exceptions = rows.len() as i64;
    let summaries = outcome.operator_summaries()?;
    let (items_key, items_sha256) = record.items_object.clone().unzip();
    let event = completed_event(date, outcome.items as i64, exceptions, &summaries, run_id);
    macro_rules! header {
        ($tx:expr) => {
            sqlx::query(
                "INSERT INTO recon_runs (id, business_date, created_at, items, exceptions, \
                 is_current, input_seq, items_key, items_sha256) \
                 VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8)",
            )
            .bind(run_id)
            .bind(date.naive())
            .bind(Utc::now())
            .bind(outcome.items as i64)
            .bind(exceptions)
            .bind(record.input_seq)
            .bind(&items_key)
            .bind(&items_sha256)
            .execute(&mut *$tx)
            .await?
        };
    }
    macro_rules! rest {
        ($tx:expr, $conn:path) => {{
            for summary in &summaries {
                sqlx::query(
                    "INSERT INTO recon_summaries (run_id, operator_id, counts, ledger_total, \
                     file_total, exceptions_difference) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(run_id)
                .bind(&summary.operator_id)
                .bind(serde_json::to_string(&summary.counts).expect("counts serialize"))
                .bind(summary.ledger_total)
                .bind(summary.file_total)
                .bind(summary.exceptions_difference)
                .execute(&mut *$tx)
                .await?;
            }
            sqlx::query(
                "UPDATE recon_runs SET is_current = false WHERE business_date = $1 AND is_current",
            )
            .bind(date.naive())
            .execute(&mut *$tx)
            .await?;
            sqlx::query("UPDATE recon_runs SET is_current = true WHERE id = $1")
                .bind(run_id)
                .execute(&mut *$tx)
                .await?;
            // Heard when the run became current, or not at all.
            ledger::outbox::write($conn(&mut *$tx), std::slice::from_ref(&event)).await?;
        }};
    }
    const ITEM_COLUMNS: &str = "recon_items (run_id, operator_id, operator_ref, case_name, \
        ledger_card_id, file_card_id, ledger_amount, file_amount, difference, \
        ledger_occurred_at, file_occurred_at)";
    match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            header!(tx);
            if !rows.is_empty() {
                // Text COPY: every value is a checked identifier, a number or a time, so
                // none holds a tab, a line break or a backslash.
                let mut data = String::with_capacity(rows.len() * 160);
                for r in &rows {
                    use std::fmt::Write;
                    let text = |v: Option<&str>| v.unwrap_or("\\N").to_string();
                    let int = |v: Option<i64>| v.map_or("\\N".to_string(), |v| v.to_string());
                    let time = |v: Option<DateTime<Utc>>| {
                        v.map_or("\\N".to_string(), |t| {
                            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                        })
                    };
                    let _ = writeln!(
                        data,
                        "{run_id}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        r.operator_id,
                        r.operator_ref,
                        r.case,
                        text(r.ledger_card_id),
                        text(r.file_card_id),
                        int(r.ledger_amount),
                        int(r.file_amount),
                        r.difference,
                        time(r.ledger_occurred_at),
                        time(r.file_occurred_at),
                    );
                }
                let mut copy = tx
                    .copy_in_raw(&format!("COPY {ITEM_COLUMNS} FROM STDIN"))
                    .await?;
                copy.send(data.into_bytes()).await?;
                copy.finish().await?;
            }
            rest!(tx, ledger::correction::Conn::Postgres);
            tx.commit().await?;
        }
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            header!(tx);
            for chunk in rows.chunks(2_500) {
                let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO {ITEM_COLUMNS} "));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(run_id)
                        .push_bind(r.operator_id)
                        .push_bind(r.operator_ref)
                        .push_bind(r.case)
                        .push_bind(r.ledger_card_id)
                        .push_bind(r.file_card_id)
                        .push_bind(r.ledger_amount)
                        .push_bind(r.file_amount)
                        .push_bind(r.difference)
                        .push_bind(r.ledger_occurred_at)
                        .push_bind(r.file_occurred_at);
                });
                q.build().execute(&mut *tx).await?;
            }
            rest!(tx, ledger::correction::Conn::Sqlite);
            tx.commit().await?;
        }
    }
    Ok(())
}

/// The `reconciliation.completed` event of a run made current: its counts by case.
fn completed_event(
    date: BusinessDate,
    items: i64,
    exceptions: i64,
    summaries: &[OperatorSummary],
    run_id: &str,
) -> ledger::outbox::NewEvent {
    let mut cases: BTreeMap<&str, i64> = BTreeMap::new();
    for s in summaries {
        for (case, n) in &s.counts {
            *cases.entry(case.as_str()).or_default() += n;
        }
    }
    ledger::outbox::NewEvent {
        event_type: ledger::outbox::EventType::ReconciliationCompleted,
        subject: format!("reconciliation/{date}"),
        operator: None,
        time: Utc::now(),
        data: serde_json::json!({
            "run_id": run_id,
            "business_date": date.naive(),
            "items": items,
            "exceptions": exceptions,
            "operators": summaries.len(),
            "cases": cases,
        }),
    }
}

/// One operator's line of a run's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSummary {
    pub operator_id: String,
    /// Items per case name (`MATCHED`, `AMOUNT_MISMATCH`, ...); every case is present.
    pub counts: BTreeMap<String, i64>,
    /// Net sales of the date on each side.
    pub ledger_total: i64,
    pub file_total: i64,
    /// Σ differences of the non-MATCHED items (= ledger_total − file_total).
    pub exceptions_difference: i64,
}

impl OperatorSummary {
    pub fn matched(&self) -> i64 {
        self.counts
            .get(Case::Matched.as_str())
            .copied()
            .unwrap_or(0)
    }

    pub fn exceptions(&self) -> i64 {
        self.counts.values().sum::<i64>() - self.matched()
    }
}

impl Reconciliation {
    /// The summary frame as one typed line per operator.
    pub fn operator_summaries(&self) -> Result<Vec<OperatorSummary>, ReconcileError> {
        summaries_of(&self.summary)
    }
}

fn summaries_of(summary: &DataFrame) -> Result<Vec<OperatorSummary>, ReconcileError> {
    let ops = summary.column("operator_id")?.str()?;
    let mut out = Vec::with_capacity(summary.height());
    for idx in 0..summary.height() {
        let get = |name: &str| -> Result<i64, ReconcileError> {
            Ok(summary.column(name)?.i64()?.get(idx).unwrap_or(0))
        };
        let mut counts = BTreeMap::new();
        for case in Case::ALL {
            let name = case.as_str().to_lowercase();
            counts.insert(case.as_str().to_string(), get(&format!("{name}_count"))?);
        }
        out.push(OperatorSummary {
            operator_id: ops.get(idx).unwrap_or_default().to_string(),
            counts,
            ledger_total: get("ledger_total")?,
            file_total: get("file_total")?,
            exceptions_difference: get("exceptions_difference")?,
        });
    }
    Ok(out)
}

/// The current run of a date, as the reports read it.
pub struct CurrentRun {
    pub run_id: String,
    /// The date's input counter when the run began reading (`None`: not recorded), which
    /// says whether input arrived after it (see `ledger::date_status`).
    pub input_seq: Option<i64>,
    pub summaries: Vec<OperatorSummary>,
    /// The non-MATCHED items, columns as in `Reconciliation::items`.
    pub exceptions: DataFrame,
}

type StoredSummary = (String, String, i64, i64, i64);

type StoredItem = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// The current run of `date`, or `None` when the date was never reconciled.
pub async fn current_run(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Option<CurrentRun>, ReconcileError> {
    const RUN: &str =
        "SELECT id, input_seq FROM recon_runs WHERE business_date = $1 AND is_current";
    const SUMMARIES: &str = "SELECT operator_id, counts, ledger_total, file_total, \
        exceptions_difference FROM recon_summaries WHERE run_id = $1 ORDER BY operator_id";
    const ITEMS: &str = "SELECT operator_id, operator_ref, case_name, ledger_card_id, \
        file_card_id, ledger_amount, file_amount, difference, ledger_occurred_at, \
        file_occurred_at FROM recon_items WHERE run_id = $1 AND case_name <> 'MATCHED' \
        ORDER BY operator_id, operator_ref";
    let ((run_id, input_seq), summaries, items): (
        (String, Option<i64>),
        Vec<StoredSummary>,
        Vec<StoredItem>,
    ) = ledger::on_pool!(db, pool => {
        let Some(run): Option<(String, Option<i64>)> = sqlx::query_as(RUN)
            .bind(date.naive())
            .fetch_optional(pool)
            .await?
        else {
            return Ok(None);
        };
        let summaries = sqlx::query_as(SUMMARIES).bind(&run.0).fetch_all(pool).await?;
        let items = sqlx::query_as(ITEMS).bind(&run.0).fetch_all(pool).await?;
        (run, summaries, items)
    });
    let summaries = summaries
        .into_iter()
        .map(
            |(operator_id, counts, ledger_total, file_total, exceptions_difference)| {
                let counts: BTreeMap<String, i64> = serde_json::from_str(&counts).map_err(|e| {
                    ReconcileError::Stored(format!("counts of {operator_id} in run {run_id}: {e}"))
                })?;
                Ok(OperatorSummary {
                    operator_id,
                    counts,
                    ledger_total,
                    file_total,
                    exceptions_difference,
                })
            },
        )
        .collect::<Result<Vec<_>, ReconcileError>>()?;
    let micros = |t: &Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    let n = items.len();
    let exceptions = df!(
        "business_date" => vec![crate::source::days(date); n],
        "operator_id" => items.iter().map(|i| i.0.as_str()).collect::<Vec<_>>(),
        "operator_ref" => items.iter().map(|i| i.1.as_str()).collect::<Vec<_>>(),
        "case" => items.iter().map(|i| i.2.as_str()).collect::<Vec<_>>(),
        "ledger_card_id" => items.iter().map(|i| i.3.as_deref()).collect::<Vec<_>>(),
        "file_card_id" => items.iter().map(|i| i.4.as_deref()).collect::<Vec<_>>(),
        "ledger_amount" => items.iter().map(|i| i.5).collect::<Vec<_>>(),
        "file_amount" => items.iter().map(|i| i.6).collect::<Vec<_>>(),
        "difference" => items.iter().map(|i| i.7).collect::<Vec<_>>(),
        "ledger_occurred_at" => items.iter().map(|i| micros(&i.8)).collect::<Vec<_>>(),
        "file_occurred_at" => items.iter().map(|i| micros(&i.9)).collect::<Vec<_>>(),
    )?;
    Ok(Some(CurrentRun {
        run_id,
        input_seq,
        summaries,
        exceptions,
    }))
}

/// The current run's non-MATCHED items of a date: `(operator_id, operator_ref, case)`.
pub async fn current_exceptions(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Vec<(String, String, String)>, ReconcileError> {
    const SQL: &str = "SELECT i.operator_id, i.operator_ref, i.case_name FROM recon_items i \
        JOIN recon_runs r ON r.id = i.run_id \
        WHERE r.business_date = $1 AND r.is_current AND i.case_name <> 'MATCHED' \
        ORDER BY i.operator_id, i.operator_ref";
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_as(SQL)
            .bind(date.naive())
            .fetch_all(pool)
            .await?
    }))
}

/// How many runs a date has had.
pub async fn runs(db: Database<'_>, date: BusinessDate) -> Result<i64, ReconcileError> {
    const SQL: &str = "SELECT COUNT(*) FROM recon_runs WHERE business_date = $1";
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_scalar(SQL)
            .bind(date.naive())
            .fetch_one(pool)
            .await?
    }))
}
