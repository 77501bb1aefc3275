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

pub fn date_of(days: i32) -> BusinessDate {
    BusinessDate::from_naive(
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Days::new(days as u64),
    )
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

const LEDGER_SQL: &str = "SELECT operator_id, operator_ref, card_id, amount, occurred_at, \
    business_date, voided_at IS NOT NULL AS voided FROM sales \
    WHERE business_date BETWEEN $1 AND $2";

/// Records of the file in force (the accepted one with the highest sequence) for each
/// operator and date.
const FILE_SQL: &str = "SELECT f.operator_id, r.operator_ref, r.card_id, r.amount, r.occurred_at, \
    f.business_date, r.kind, r.voided_ref, r.line \
    FROM operator_file_records r JOIN operator_files f ON f.id = r.file_id \
    WHERE f.status = 'accepted' AND f.business_date BETWEEN $1 AND $2 \
      AND f.seq = (SELECT MAX(g.seq) FROM operator_files g WHERE g.operator_id = f.operator_id \
                   AND g.business_date = f.business_date AND g.status = 'accepted')";

type LedgerRow = (String, String, String, i64, DateTime<Utc>, NaiveDate, bool);
type FileRow = (
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

/// Loads both sides for `date` and its neighbours from the database.
pub async fn load(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    let (from, to) = (date.pred().naive(), date.succ().naive());
    let (ledger_rows, file_rows): (Vec<LedgerRow>, Vec<FileRow>) = match db {
        Database::Postgres(pool) => (
            sqlx::query_as(LEDGER_SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?,
            sqlx::query_as(FILE_SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?,
        ),
        Database::Sqlite(pool) => (
            sqlx::query_as(LEDGER_SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?,
            sqlx::query_as(FILE_SQL)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?,
        ),
    };
    let mut l = LedgerColumns::default();
    for (op, r, card, amount, at, d, voided) in ledger_rows {
        l.operator_id.push(op);
        l.operator_ref.push(r);
        l.card_id.push(card);
        l.amount.push(amount);
        l.occurred_at.push(at.timestamp_micros());
        l.business_date.push(days(BusinessDate::from_naive(d)));
        l.voided.push(voided);
    }
    let mut f = FileColumns::default();
    for (op, r, card, amount, at, d, kind, voided_ref, line) in file_rows {
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
    Ok((l.into_frame()?, f.into_frame()?))
}
