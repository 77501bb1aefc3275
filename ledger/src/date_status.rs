//! Whether a settled business date is still current: the write that brings a date new
//! input (an accepted operator file, a posted validation) marks the date in the same
//! transaction, and a final report records as of when it read its inputs. A date whose
//! last input is newer than that is **stale**: its published report no longer shows
//! everything the database holds for it, and it must be settled again.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::backend::Database;
use crate::business_date::BusinessDate;
use crate::on_pool;

/// Marks `$1` (a business date) as having received input at `$2`; `$3` says what.
pub const TOUCH: &str = "INSERT INTO business_dates (business_date, last_input_at, last_input) \
    VALUES ($1, $2, $3) ON CONFLICT (business_date) DO UPDATE SET \
    last_input_at = excluded.last_input_at, last_input = excluded.last_input";

/// Records that a final report of `date` read its inputs at `at`.
pub async fn settled(
    db: Database<'_>,
    date: BusinessDate,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO business_dates (business_date, inputs_read_at) VALUES ($1, $2) \
        ON CONFLICT (business_date) DO UPDATE SET inputs_read_at = excluded.inputs_read_at";
    on_pool!(db, pool => {
        sqlx::query(SQL).bind(date.naive()).bind(at).execute(pool).await?;
    });
    Ok(())
}

/// A settled date with input newer than its last report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleDate {
    pub business_date: BusinessDate,
    /// As of when its last final report read its inputs.
    pub settled_as_of: DateTime<Utc>,
    pub last_input_at: DateTime<Utc>,
    /// What arrived last: `operator file` or `validations`.
    pub last_input: String,
}

/// Every stale date, oldest first.
pub async fn stale(db: Database<'_>) -> Result<Vec<StaleDate>, sqlx::Error> {
    const SQL: &str = "SELECT business_date, inputs_read_at, last_input_at, last_input \
        FROM business_dates WHERE inputs_read_at IS NOT NULL AND last_input_at > inputs_read_at \
        ORDER BY business_date";
    let rows: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>, String)> =
        on_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|(d, settled_as_of, last_input_at, last_input)| StaleDate {
            business_date: BusinessDate::from_naive(d),
            settled_as_of,
            last_input_at,
            last_input,
        })
        .collect())
}
