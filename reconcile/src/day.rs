//! A business date reconciled straight from the database, one range of operators at a time,
//! so that the job's memory follows a part and not the day (DESIGN.md, Reconciliation: at
//! city scale).
//!
//! Each part reads its operators' rows of the date on both sides and joins them (`DayJoin`); only then does it ask the database about
//! the adjacent dates, and only for the keys one side alone has: does the ledger hold them
//! on the day before or after, do those days' files claim them. The adjacent files' VOIDs
//! are read whole (a void may come a day late for any sale); the rest of the neighbours is
//! never read. The file side is read part by part (a file's records are stored together);
//! the ledger side on PostgreSQL is read once, through one COPY, into one temporary file per
//! part (sales are stored in the order they happened, every operator on every page), and on
//! SQLite part by part. The spill takes about as much temporary disk as the date's sales
//! in CSV (BENCHMARKS.md, settle).
//!
//! Parts are sized by the date's files in force: their record counts, counted twice for the
//! two sides, since on any real day the ledger side is about as big as the file side; an
//! operator that sent no file counts its sales of the date.

use std::collections::{HashMap, VecDeque};
use std::io::{BufWriter, Seek, SeekFrom, Write};

use ledger::{BusinessDate, Database, OperatorId};
use polars::prelude::*;

use crate::ReconcileError;
use crate::engine::{self, DayJoin};
use crate::source::{
    FILE_COLUMNS, FILE_COPY_COLUMNS, FileColumns, FileRow, IN_FORCE, LEDGER_COLUMNS,
    LEDGER_COPY_COLUMNS, LedgerColumns, LedgerRow, copy_csv, days, file_columns, file_schema,
    ledger_columns, ledger_schema,
};
use crate::store::{RunOutcome, non_matched};

/// Reconciles `date` from the database in parts of about `part_rows` rows (both sides).
/// Each part's items, sorted by operator and ref (parts in operator order, so their
/// concatenation is sorted too), go to `sink` before the next part is read; what the
/// database keeps of the run is returned, every operator's totals checked to tie out.
pub async fn reconcile_day(
    db: Database<'_>,
    date: BusinessDate,
    part_rows: u64,
    mut sink: impl FnMut(DataFrame) -> Result<(), ReconcileError> + Send,
) -> Result<RunOutcome, ReconcileError> {
    let counts = part_sizes(db, date).await?;
    let ranges = engine::ranges_of(counts.iter().map(|(op, n)| (op.as_str(), *n)), part_rows);
    let (mut items, mut exceptions, mut summaries) = (0u64, Vec::new(), Vec::new());
    let mut finish = |(part, summary): (DataFrame, DataFrame)| {
        items += part.height() as u64;
        exceptions.push(compacted(non_matched(&part)?)?);
        summaries.push(summary);
        sink(part)
    };
    if ranges.is_empty() {
        // Nothing on either side: one empty part gives the frames their columns.
        let empty = DayJoin::new(
            LedgerColumns::default().into_frame()?.lazy(),
            FileColumns::default().into_frame()?.lazy(),
            days(date),
            &[],
        )?;
        finish(empty.finish(no_keys()?.lazy(), no_keys()?.lazy())?)?;
    }
    let started = std::time::Instant::now();
    let mut reader = PartReader::new(db, date, &ranges).await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "ledger side spilled, the first part's file side read"
    );
    // While the engine works on one part, the next one is read.
    let mut current = reader.next().await?;
    let mut part = 0;
    while let Some(rows) = current.take() {
        let (ledger_rows, file_rows) = (rows.ledger.height(), rows.file.height());
        let at = started.elapsed().as_secs_f64();
        let (done, next) = tokio::join!(reconcile_part(db, date, rows), reader.next());
        finish(done?)?;
        // Where a run's time goes, part by part (RUST_LOG=reconcile=debug).
        tracing::debug!(
            part,
            ledger_rows,
            file_rows,
            started_s = at,
            seconds = started.elapsed().as_secs_f64() - at,
            "part reconciled"
        );
        part += 1;
        current = next?;
    }
    Ok(RunOutcome {
        items,
        exceptions: engine::stacked(exceptions)?,
        summary: engine::tied_out(engine::stacked(summaries)?)?,
    })
}

/// `frame` with its text columns in buffers of their own. A filtered frame's strings still
/// point into the whole part's buffers, so the few exceptions kept of each part held every
/// part's text alive until the run ended: memory grew with the day (BENCHMARKS.md, settle).
fn compacted(frame: DataFrame) -> Result<DataFrame, ReconcileError> {
    let columns = frame
        .columns()
        .iter()
        .map(|column| -> Result<Column, ReconcileError> {
            Ok(match column.dtype() {
                DataType::String => {
                    let text: StringChunked = column.str()?.iter().collect();
                    text.with_name(column.name().clone()).into_column()
                }
                _ => column.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DataFrame::new(frame.height(), columns)?)
}

/// A part's rows of the date as read from the database.
struct PartRows {
    operators: Vec<String>,
    ledger: DataFrame,
    file: DataFrame,
}

/// Where each part's ledger rows come from.
enum LedgerParts<'a> {
    /// PostgreSQL: the whole date read once and spilled, one temporary file per part
    /// (`spill_ledger`), handed out in order.
    Spilled(VecDeque<BufWriter<std::fs::File>>),
    /// SQLite: each part's rows asked for when the part is read; its index on operator and
    /// date finds them without reading the rest of the date.
    Queried(&'a sqlx::SqlitePool),
}

/// Reads the parts in order, each part's two sides side by side.
struct PartReader<'a> {
    db: Database<'a>,
    date: BusinessDate,
    ranges: &'a [Vec<String>],
    next: usize,
    ledger: LedgerParts<'a>,
    /// The first part's file side, read while the ledger side was spilled.
    first_file: Option<DataFrame>,
}

impl<'a> PartReader<'a> {
    async fn new(
        db: Database<'a>,
        date: BusinessDate,
        ranges: &'a [Vec<String>],
    ) -> Result<Self, ReconcileError> {
        let (ledger, first_file) = match (db, ranges.first()) {
            (Database::Postgres(pool), Some(first)) => {
                // No part can start before the whole date is spilled (every part has rows
                // on every page): meanwhile the first part's file side is read.
                let (spilled, file) =
                    tokio::try_join!(spill_ledger(pool, date, ranges), file_part(db, date, first))?;
                (LedgerParts::Spilled(spilled), Some(file))
            }
            (Database::Postgres(_), None) => (LedgerParts::Spilled(VecDeque::new()), None),
            (Database::Sqlite(pool), _) => (LedgerParts::Queried(pool), None),
        };
        Ok(PartReader {
            db,
            date,
            ranges,
            next: 0,
            ledger,
            first_file,
        })
    }

    async fn next(&mut self) -> Result<Option<PartRows>, ReconcileError> {
        let Some(operators) = self.ranges.get(self.next) else {
            return Ok(None);
        };
        let (db, date) = (self.db, self.date);
        let pre_read = self.first_file.take();
        let ledger = async {
            match &mut self.ledger {
                LedgerParts::Spilled(files) => {
                    let file = files.pop_front().expect("a file per part");
                    blocking(move || read_spilled(file)).await
                }
                LedgerParts::Queried(pool) => ledger_part(pool, date, operators).await,
            }
        };
        let file = async {
            match pre_read {
                Some(file) => Ok(file),
                None => file_part(db, date, operators).await,
            }
        };
        let (ledger, file) = tokio::try_join!(ledger, file)?;
        self.next += 1;
        Ok(Some(PartRows {
            operators: operators.clone(),
            ledger,
            file,
        }))
    }
}

/// The date's ledger rows on PostgreSQL in one COPY, each row written as it arrives to the
/// temporary file of its operator's part. Sales are stored in the order they happened, so
/// a read of some operators visits the whole date's pages: reading the date part by part
/// cost PostgreSQL the square of the day, holding it whole would cost the job memory that
/// grows with the day; spilled, the date is read once and the job holds one part
/// (BENCHMARKS.md, settle). The files are unnamed: they vanish when dropped, or with the
/// process.
async fn spill_ledger(
    pool: &sqlx::PgPool,
    date: BusinessDate,
    ranges: &[Vec<String>],
) -> Result<VecDeque<BufWriter<std::fs::File>>, ReconcileError> {
    use futures::TryStreamExt;
    let part_of: HashMap<&[u8], usize> = ranges
        .iter()
        .enumerate()
        .flat_map(|(k, range)| range.iter().map(move |op| (op.as_bytes(), k)))
        .collect();
    let mut files = ranges
        .iter()
        .map(|_| Ok(BufWriter::with_capacity(1 << 18, tempfile::tempfile()?)))
        .collect::<Result<Vec<_>, std::io::Error>>()?;
    let statement = format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv)",
        ledger_copy(
            date,
            &only_operators("operator_id", ranges.iter().flatten())?
        )
    );
    let mut conn = pool.acquire().await?;
    let mut rows = conn.copy_out_raw(&statement).await?;
    // PostgreSQL sends each row of a COPY as a message of its own, and an operator id,
    // checked when registered, holds no comma or quote: the first field is the id as is.
    while let Some(row) = rows.try_next().await? {
        let operator = row.split(|b| *b == b',').next().unwrap_or_default();
        let Some(&k) = part_of.get(operator) else {
            return Err(ReconcileError::Stored(format!(
                "a sale of the date names operator {:?}, which no part holds",
                String::from_utf8_lossy(operator)
            )));
        };
        // Writes land in the page cache; a part's file is read back whole in a moment.
        files[k].write_all(&row)?;
    }
    Ok(files.into())
}

/// A part's spilled ledger rows as a frame.
fn read_spilled(file: BufWriter<std::fs::File>) -> Result<DataFrame, ReconcileError> {
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(std::sync::Arc::new(ledger_schema())))
        .into_reader_with_file_handle(file)
        .finish()?)
}

/// One part: the date's join on the engine's threads, the adjacent dates asked about the
/// one-sided keys, then the part's items and summary.
async fn reconcile_part(
    db: Database<'_>,
    date: BusinessDate,
    rows: PartRows,
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    let day = days(date);
    let (join, file_only, ledger_only) = blocking(move || {
        let join = DayJoin::new(rows.ledger.lazy(), rows.file.lazy(), day, &rows.operators)?;
        let (file_only, ledger_only) = join.one_sided()?;
        Ok((join, file_only, ledger_only))
    })
    .await?;
    let ledger_adjacent = ledger_adjacent(db, date, &file_only).await?;
    let file_adjacent = file_adjacent(db, date, &ledger_only).await?;
    blocking(move || join.finish(ledger_adjacent.lazy(), file_adjacent.lazy())).await
}

/// Runs the engine's CPU work off the async threads, which meanwhile read the next part.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReconcileError> + Send + 'static,
) -> Result<T, ReconcileError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Every registered operator, in byte order of its id, with the rows it brings to the date:
/// twice its file's record count, or, without a file, its sales of the date (counted in the
/// index on operator and date, so only for those operators).
async fn part_sizes(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Vec<(String, u64)>, ReconcileError> {
    const SQL: &str = "SELECT o.id, COALESCE((SELECT 2 * f.record_count FROM operator_files f \
        WHERE f.operator_id = o.id AND f.business_date = $1 AND f.status = 'accepted' \
        ORDER BY f.seq DESC LIMIT 1), (SELECT COUNT(*) FROM sales s \
        WHERE s.operator_id = o.id AND s.business_date = $1)) FROM operators o";
    let rows: Vec<(String, i64)> = ledger::on_pool!(db, pool => {
        sqlx::query_as(SQL).bind(date.naive()).fetch_all(pool).await?
    });
    let mut sizes: Vec<(String, u64)> = rows
        .into_iter()
        .map(|(op, n)| (op, n.max(0) as u64))
        .collect();
    sizes.sort_unstable();
    Ok(sizes)
}

/// `AND column IN ('a','b')`: `operators`, for a statement that takes no bind parameters
/// (COPY). Each is checked as an operator id first, so none holds a quote.
fn only_operators<'s>(
    column: &str,
    operators: impl IntoIterator<Item = &'s String>,
) -> Result<String, ReconcileError> {
    let quoted: Vec<String> = operators
        .into_iter()
        .map(|op| {
            OperatorId::parse(op)
                .map(|_| format!("'{op}'"))
                .map_err(|e| ReconcileError::Stored(format!("operator id {op:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(format!("AND {column} IN ({})", quoted.join(",")))
}

/// The ledger side's rows of the date on PostgreSQL (`only` narrows them to some operators).
fn ledger_copy(date: BusinessDate, only: &str) -> String {
    format!("SELECT {LEDGER_COPY_COLUMNS} FROM sales WHERE business_date = DATE '{date}' {only}")
}

/// The file side of the date on PostgreSQL: the records of the date's files in force and the
/// VOIDs of the adjacent dates' (`only` narrows them to some operators).
fn file_copy(date: BusinessDate, only: &str) -> String {
    let (before, after) = (date.pred(), date.succ());
    format!(
        "SELECT {FILE_COPY_COLUMNS} FROM operator_files f \
         JOIN operator_file_records r ON r.file_id = f.id \
         WHERE f.business_date = DATE '{date}' {only} AND {IN_FORCE} \
         UNION ALL \
         SELECT {FILE_COPY_COLUMNS} FROM operator_files f \
         JOIN operator_file_records r ON r.file_id = f.id AND r.kind = 'VOID' \
         WHERE f.business_date IN (DATE '{before}', DATE '{after}') {only} AND {IN_FORCE}"
    )
}

/// The queries that read the job's inputs of `date` on PostgreSQL, the whole date in one
/// query per side, given every registered operator: the yardstick of `recaudo-bench
/// settle` (what moving those rows costs PostgreSQL itself). The ledger side's is the job's
/// own query; the job reads the file side part by part.
pub fn input_queries(
    date: BusinessDate,
    operators: &[String],
) -> Result<[String; 2], ReconcileError> {
    Ok([
        ledger_copy(date, &only_operators("operator_id", operators)?),
        file_copy(date, &only_operators("f.operator_id", operators)?),
    ])
}

/// A JSON array of the operator ids, for SQLite's `json_each`.
fn json_list(operators: &[String]) -> String {
    serde_json::to_string(operators).expect("strings serialize")
}

/// The ledger side's rows of the date for `operators`, on SQLite.
async fn ledger_part(
    pool: &sqlx::SqlitePool,
    date: BusinessDate,
    operators: &[String],
) -> Result<DataFrame, ReconcileError> {
    let sql = format!(
        "SELECT {LEDGER_COLUMNS} FROM sales WHERE business_date = $1 \
         AND operator_id IN (SELECT value FROM json_each($2))"
    );
    let rows: Vec<LedgerRow> = sqlx::query_as(&sql)
        .bind(date.naive())
        .bind(json_list(operators))
        .fetch_all(pool)
        .await?;
    ledger_columns(rows).into_frame()
}

/// The file side for `operators`: every record of the date's files in force, and the
/// VOIDs of the adjacent dates' files in force.
async fn file_part(
    db: Database<'_>,
    date: BusinessDate,
    operators: &[String],
) -> Result<DataFrame, ReconcileError> {
    match db {
        Database::Postgres(pool) => {
            let only = only_operators("f.operator_id", operators)?;
            let sql = file_copy(date, &only);
            copy_csv(&mut *pool.acquire().await?, &sql, file_schema()).await
        }
        Database::Sqlite(pool) => {
            let sql = format!(
                "SELECT {FILE_COLUMNS} FROM operator_files f \
                 JOIN operator_file_records r ON r.file_id = f.id \
                 WHERE f.business_date = $1 AND {IN_FORCE} \
                   AND f.operator_id IN (SELECT value FROM json_each($4)) \
                 UNION ALL \
                 SELECT {FILE_COLUMNS} FROM operator_files f \
                 JOIN operator_file_records r ON r.file_id = f.id AND r.kind = 'VOID' \
                 WHERE f.business_date IN ($2, $3) AND {IN_FORCE} \
                   AND f.operator_id IN (SELECT value FROM json_each($4))"
            );
            let rows: Vec<FileRow> = sqlx::query_as(&sql)
                .bind(date.naive())
                .bind(date.pred().naive())
                .bind(date.succ().naive())
                .bind(json_list(operators))
                .fetch_all(pool)
                .await?;
            Ok(file_columns(rows).into_frame()?)
        }
    }
}

/// The keys of `keys` (`operator_id`, `operator_ref`) the ledger holds on an adjacent date.
async fn ledger_adjacent(
    db: Database<'_>,
    date: BusinessDate,
    keys: &DataFrame,
) -> Result<DataFrame, ReconcileError> {
    const POSTGRES: &str = "SELECT s.operator_id, s.operator_ref FROM sales s \
        JOIN UNNEST($1::text[], $2::text[]) AS k (operator_id, operator_ref) \
          ON s.operator_id = k.operator_id AND s.operator_ref = k.operator_ref \
        WHERE s.business_date IN ($3, $4)";
    const SQLITE: &str = "SELECT s.operator_id, s.operator_ref FROM json_each($1) k \
        JOIN sales s ON s.operator_id = json_extract(k.value, '$[0]') \
          AND s.operator_ref = json_extract(k.value, '$[1]') \
        WHERE s.business_date IN ($2, $3)";
    adjacent_keys(db, date, keys, POSTGRES, SQLITE).await
}

/// The keys of `keys` that the adjacent dates' files in force claim as SALEs.
async fn file_adjacent(
    db: Database<'_>,
    date: BusinessDate,
    keys: &DataFrame,
) -> Result<DataFrame, ReconcileError> {
    let postgres = format!(
        "SELECT f.operator_id, r.operator_ref \
         FROM UNNEST($1::text[], $2::text[]) AS k (operator_id, operator_ref) \
         JOIN operator_files f ON f.operator_id = k.operator_id \
         JOIN operator_file_records r ON r.file_id = f.id AND r.kind = 'SALE' \
           AND r.operator_ref = k.operator_ref \
         WHERE f.business_date IN ($3, $4) AND {IN_FORCE}"
    );
    let sqlite = format!(
        "SELECT f.operator_id, r.operator_ref FROM json_each($1) k \
         JOIN operator_files f ON f.operator_id = json_extract(k.value, '$[0]') \
         JOIN operator_file_records r ON r.file_id = f.id AND r.kind = 'SALE' \
           AND r.operator_ref = json_extract(k.value, '$[1]') \
         WHERE f.business_date IN ($2, $3) AND {IN_FORCE}"
    );
    adjacent_keys(db, date, keys, &postgres, &sqlite).await
}

/// Runs one of the adjacent-date probes above for `keys`: PostgreSQL takes the keys as two
/// arrays and the dates as `$3`, `$4`; SQLite as a JSON array of pairs and `$2`, `$3`.
async fn adjacent_keys(
    db: Database<'_>,
    date: BusinessDate,
    keys: &DataFrame,
    postgres: &str,
    sqlite: &str,
) -> Result<DataFrame, ReconcileError> {
    if keys.height() == 0 {
        return no_keys();
    }
    let text = |name: &str| -> Result<Vec<&str>, ReconcileError> {
        Ok(keys
            .column(name)?
            .str()?
            .iter()
            .map(Option::unwrap_or_default)
            .collect())
    };
    let (ops, refs) = (text("operator_id")?, text("operator_ref")?);
    let (before, after) = (date.pred().naive(), date.succ().naive());
    let rows: Vec<(String, String)> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(postgres)
                .bind(&ops)
                .bind(&refs)
                .bind(before)
                .bind(after)
                .fetch_all(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            let pairs: Vec<[&str; 2]> = ops.iter().zip(&refs).map(|(o, r)| [*o, *r]).collect();
            sqlx::query_as(sqlite)
                .bind(serde_json::to_string(&pairs).expect("strings serialize"))
                .bind(before)
                .bind(after)
                .fetch_all(pool)
                .await?
        }
    };
    let (ops, refs): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
    Ok(df!("operator_id" => ops, "operator_ref" => refs)?)
}

fn no_keys() -> Result<DataFrame, ReconcileError> {
    Ok(df!(
        "operator_id" => Vec::<String>::new(),
        "operator_ref" => Vec::<String>::new(),
    )?)
}
