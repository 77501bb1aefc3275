//! Whether a settled business date is still current. Every write that brings a date new
//! input (an accepted operator file of the date or of a neighbouring one, whose records its
//! reconciliation reads; a posted validation) bumps the date's input counter in the same
//! transaction, and a final report records the counter as it was before its inputs were
//! read. A date whose counter has moved on since is **stale**: its published report no
//! longer shows everything the database holds for it, and it must be settled again.
//!
//! A counter and not a clock: a writer that commits after a report read the data always
//! leaves the counter ahead of the value that report recorded, whatever the clocks say.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::backend::Database;
use crate::business_date::BusinessDate;
use crate::on_pool;

/// Bumps the input counter of `$1` (a business date); `$2` is when, `$3` what arrived.
pub const TOUCH: &str = "INSERT INTO business_dates (business_date, input_seq, last_input_at, \
    last_input) VALUES ($1, 1, $2, $3) ON CONFLICT (business_date) DO UPDATE SET \
    input_seq = business_dates.input_seq + 1, last_input_at = excluded.last_input_at, \
    last_input = excluded.last_input";

/// The date's input counter now (0: it never received input).
pub async fn input_seq(db: Database<'_>, date: BusinessDate) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT input_seq FROM business_dates WHERE business_date = $1";
    let seq: Option<i64> = on_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(date.naive()).fetch_optional(pool).await?
    });
    Ok(seq.unwrap_or(0))
}

/// Records that a final report of `date`, made at `at`, saw its inputs up to counter `seq`.
pub async fn settled(
    db: Database<'_>,
    date: BusinessDate,
    seq: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO business_dates (business_date, settled_seq, settled_at) \
        VALUES ($1, $2, $3) ON CONFLICT (business_date) DO UPDATE SET \
        settled_seq = excluded.settled_seq, settled_at = excluded.settled_at";
    on_pool!(db, pool => {
        sqlx::query(SQL).bind(date.naive()).bind(seq).bind(at).execute(pool).await?;
    });
    Ok(())
}

/// A settled date with input newer than its last report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleDate {
    pub business_date: BusinessDate,
    /// When its last final report was made.
    pub settled_at: DateTime<Utc>,
    pub last_input_at: DateTime<Utc>,
    /// What arrived last: `operator file` or `validations`.
    pub last_input: String,
}

/// Every stale date, oldest first.
pub async fn stale(db: Database<'_>) -> Result<Vec<StaleDate>, sqlx::Error> {
    const SQL: &str = "SELECT business_date, settled_at, last_input_at, last_input \
        FROM business_dates WHERE settled_seq IS NOT NULL AND input_seq > settled_seq \
        ORDER BY business_date";
    let rows: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>, String)> =
        on_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|(d, settled_at, last_input_at, last_input)| StaleDate {
            business_date: BusinessDate::from_naive(d),
            settled_at,
            last_input_at,
            last_input,
        })
        .collect())
}
