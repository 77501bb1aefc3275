//! Where the two sides come from: the database (the ledger's sales and the staged records
//! of each operator's file in force) or Parquet files (benchmarks, tests in isolation).
//! Dates are days since 1970-01-01 and instants microseconds since the epoch, so the
//! engine works on plain integers.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessDate, Database};
use polars::prelude::*;

use crate::ReconcileError;

pub fn days(date: BusinessDate) -> i32 {
    (date.naive() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The ledger side, column by column.
#[derive(Default)]
pub struct LedgerColumns {
    pub operator_id: Vec<String>,
    pub operator_ref: Vec<String>,
    pub card_id: Vec<String>,
    pub amount: Vec<i64>,
    pub occurred_at: Vec<i64>,
    pub business_date: Vec<i32>,
    pub voided: Vec<bool>,
}

impl LedgerColumns {
    pub fn into_frame(self) -> Result<DataFrame, ReconcileError> {
        Ok(df!(
            "operator_id" => self.operator_id,
            "operator_ref" => self.operator_ref,
            "card_id" => self.card_id,
            "amount" => self.amount,
            "occurred_at" => self.occurred_at,
            "business_date" => self.business_date,
            "voided" => self.voided,
        )?)
    }
}

/// The file side, column by column.
#[derive(Default)]
pub struct FileColumns {
    pub operator_id: Vec<String>,
    pub operator_ref: Vec<String>,
    pub card_id: Vec<String>,
    pub amount: Vec<i64>,
    pub occurred_at: Vec<i64>,
    pub file_date: Vec<i32>,
    pub kind: Vec<String>,
    pub voided_ref: Vec<Option<String>>,
    pub line: Vec<i64>,
}

impl FileColumns {
    pub fn into_frame(self) -> Result<DataFrame, ReconcileError> {
        Ok(df!(
            "operator_id" => self.operator_id,
            "operator_ref" => self.operator_ref,
            "card_id" => self.card_id,
            "amount" => self.amount,
            "occurred_at" => self.occurred_at,
            "file_date" => self.file_date,
            "kind" => self.kind,
            "voided_ref" => self.voided_ref,
            "line" => self.line,
        )?)
    }
}

/// The ledger side's columns, read through sqlx (SQLite).
pub(crate) const LEDGER_COLUMNS: &str = "operator_id, operator_ref, card_id, amount, \
    occurred_at, business_date, voided_at IS NOT NULL AS voided";

/// The ledger side's columns as PostgreSQL's COPY writes them: instants in µs and dates in
/// days since the epoch, as the engine takes them (`ledger_schema`).
pub(crate) const LEDGER_COPY_COLUMNS: &str = "operator_id, operator_ref, card_id, amount, \
    (EXTRACT(EPOCH FROM occurred_at) * 1000000)::bigint AS occurred_at, \
    (business_date - DATE '1970-01-01') AS business_date, \
    CASE WHEN voided_at IS NULL THEN 'false' ELSE 'true' END AS voided";

/// The file side's columns (`r` a record, `f` its file), read through sqlx (SQLite).
pub(crate) const FILE_COLUMNS: &str = "f.operator_id, r.operator_ref, r.card_id, r.amount, \
    r.occurred_at, f.business_date, r.kind, r.voided_ref, r.line";

/// The file side's columns as PostgreSQL's COPY writes them (`file_schema`).
pub(crate) const FILE_COPY_COLUMNS: &str = "f.operator_id, r.operator_ref, r.card_id, r.amount, \
    (EXTRACT(EPOCH FROM r.occurred_at) * 1000000)::bigint AS occurred_at, \
    (f.business_date - DATE '1970-01-01') AS file_date, r.kind, r.voided_ref, \
    r.line::bigint AS line";

/// Whether file `f` is in force: the accepted one with the highest sequence for its
/// operator and date.
pub(crate) const IN_FORCE: &str = "f.status = 'accepted' AND f.seq = (SELECT MAX(g.seq) \
    FROM operator_files g WHERE g.operator_id = f.operator_id \
    AND g.business_date = f.business_date AND g.status = 'accepted')";

pub(crate) type LedgerRow = (String, String, String, i64, DateTime<Utc>, NaiveDate, bool);
pub(crate) type FileRow = (
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    NaiveDate,
    String,
    Option<String>,
    i32,
);

/// Loads both sides for `date` and its neighbours from the database. PostgreSQL streams
/// them out with COPY as CSV straight into polars; SQLite (the embedded default, one
/// laptop's volume) goes through rows.
pub async fn load(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    let (from, to) = (date.pred().naive(), date.succ().naive());
    let (ledger_rows, file_rows): (Vec<LedgerRow>, Vec<FileRow>) = match db {
        Database::Postgres(pool) => return load_postgres(pool, date).await,
        Database::Sqlite(pool) => (
            sqlx::query_as(&format!(
                "SELECT {LEDGER_COLUMNS} FROM sales WHERE business_date BETWEEN $1 AND $2"
            ))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?,
            sqlx::query_as(&format!(
                "SELECT {FILE_COLUMNS} FROM operator_file_records r \
                 JOIN operator_files f ON f.id = r.file_id \
                 WHERE f.business_date BETWEEN $1 AND $2 AND {IN_FORCE}"
            ))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?,
        ),
    };
    Ok((
        ledger_columns(ledger_rows).into_frame()?,
        file_columns(file_rows).into_frame()?,
    ))
}

pub(crate) fn ledger_columns(rows: Vec<LedgerRow>) -> LedgerColumns {
    let mut l = LedgerColumns::default();
    for (op, r, card, amount, at, d, voided) in rows {
        l.operator_id.push(op);
        l.operator_ref.push(r);
        l.card_id.push(card);
        l.amount.push(amount);
        l.occurred_at.push(at.timestamp_micros());
        l.business_date.push(days(BusinessDate::from_naive(d)));
        l.voided.push(voided);
    }
    l
}

pub(crate) fn file_columns(rows: Vec<FileRow>) -> FileColumns {
    let mut f = FileColumns::default();
    for (op, r, card, amount, at, d, kind, voided_ref, line) in rows {
        f.operator_id.push(op);
        f.operator_ref.push(r);
        f.card_id.push(card);
        f.amount.push(amount);
        f.occurred_at.push(at.timestamp_micros());
        f.file_date.push(days(BusinessDate::from_naive(d)));
        f.kind.push(kind);
        f.voided_ref.push(voided_ref);
        f.line.push(i64::from(line));
    }
    f
}

/// `COPY (query) TO STDOUT` as CSV, read by polars with the given schema.
pub(crate) async fn copy_csv(
    conn: &mut sqlx::PgConnection,
    query: &str,
    schema: Schema,
) -> Result<DataFrame, ReconcileError> {
    use futures::TryStreamExt;
    let statement = format!("COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)");
    // One buffer grown as the rows arrive: PostgreSQL sends each row as a message of its
    // own, and holding millions of them before joining them cost as much memory again.
    let mut rows = conn.copy_out_raw(&statement).await?;
    let mut csv = Vec::new();
    while let Some(row) = rows.try_next().await? {
        csv.extend_from_slice(&row);
    }
    drop(rows);
    Ok(CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(std::sync::Arc::new(schema)))
        .into_reader_with_file_handle(std::io::Cursor::new(csv))
        .finish()?)
}

async fn load_postgres(
    pool: &sqlx::PgPool,
    date: BusinessDate,
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    // COPY takes no bind parameters; the dates are formatted from a parsed BusinessDate.
    let (from, to) = (date.pred(), date.succ());
    let ledger_sql = format!(
        "SELECT {LEDGER_COPY_COLUMNS} FROM sales \
         WHERE business_date BETWEEN DATE '{from}' AND DATE '{to}'"
    );
    let file_sql = format!(
        "SELECT {FILE_COPY_COLUMNS} FROM operator_file_records r \
         JOIN operator_files f ON f.id = r.file_id \
         WHERE f.business_date BETWEEN DATE '{from}' AND DATE '{to}' AND {IN_FORCE}"
    );
    let (ledger_schema, file_schema) = (ledger_schema(), file_schema());
    let mut conn = pool.acquire().await?;
    let ledger = copy_csv(&mut conn, &ledger_sql, ledger_schema).await?;
    let file = copy_csv(&mut conn, &file_sql, file_schema).await?;
    Ok((ledger, file))
}

/// The ledger side's columns as `COPY … (FORMAT csv)` gives them (see `LEDGER_COPY`).
pub(crate) fn ledger_schema() -> Schema {
    Schema::from_iter([
        Field::new("operator_id".into(), DataType::String),
        Field::new("operator_ref".into(), DataType::String),
        Field::new("card_id".into(), DataType::String),
        Field::new("amount".into(), DataType::Int64),
        Field::new("occurred_at".into(), DataType::Int64),
        Field::new("business_date".into(), DataType::Int32),
        Field::new("voided".into(), DataType::Boolean),
    ])
}

/// The file side's columns as `COPY … (FORMAT csv)` gives them (see `FILE_COPY`).
pub(crate) fn file_schema() -> Schema {
    Schema::from_iter([
        Field::new("operator_id".into(), DataType::String),
        Field::new("operator_ref".into(), DataType::String),
        Field::new("card_id".into(), DataType::String),
        Field::new("amount".into(), DataType::Int64),
        Field::new("occurred_at".into(), DataType::Int64),
        Field::new("file_date".into(), DataType::Int32),
        Field::new("kind".into(), DataType::String),
        Field::new("voided_ref".into(), DataType::String),
        Field::new("line".into(), DataType::Int64),
    ])
}
