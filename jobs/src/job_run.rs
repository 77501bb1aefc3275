//! The history of job runs: one row per attempt, with its status, timings, counts and
//! error chain. This is what `recaudo status` shows and what backfill consults.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessDate, Database};
use serde::Serialize;

use crate::job::Counts;

/// One attempt of a job, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    pub business_date: Option<String>,
    pub attempt: i32,
    pub status: String,
    pub holder: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: Option<serde_json::Value>,
    /// What a succeeded run tells people: the files it rejected, the report it published.
    pub note: Option<String>,
    pub error: Option<String>,
}

/// Which runs `recaudo status` shows.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub job: Option<String>,
    pub date: Option<BusinessDate>,
    pub status: Option<String>,
}

/// The scope a lock and a run are kept under: the date, or `*` for undated jobs.
pub fn scope(date: Option<BusinessDate>) -> String {
    date.map_or_else(|| "*".to_string(), |d| d.to_string())
}

pub async fn start(
    db: Database<'_>,
    id: &str,
    job: &str,
    date: Option<BusinessDate>,
    attempt: i32,
    holder: &str,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO job_runs (id, job, business_date, attempt, status, holder, \
        started_at) VALUES ($1, $2, $3, $4, 'running', $5, $6)";
    ledger::on_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(id)
            .bind(job)
            .bind(date.map(|d| d.naive()))
            .bind(attempt)
            .bind(holder)
            .bind(Utc::now())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Records how an attempt ended: `error` None means it succeeded.
pub async fn finish(
    db: Database<'_>,
    id: &str,
    counts: Option<&Counts>,
    note: Option<&str>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE job_runs SET status = $1, finished_at = $2, counts = $3, error = $4, \
        note = $6 WHERE id = $5";
    let counts = counts.map(|c| serde_json::to_string(c).expect("counts serialize"));
    ledger::on_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(if error.is_none() { "succeeded" } else { "failed" })
            .bind(Utc::now())
            .bind(&counts)
            .bind(error)
            .bind(id)
            .bind(note.filter(|n| !n.is_empty()))
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Marks as failed the attempts of `(job, date)` still `running` whose process is gone: the
/// lock they ran under has been taken over. Returns how many.
pub async fn abandon_stale(
    db: Database<'_>,
    job: &str,
    date: Option<BusinessDate>,
    except_holder: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE job_runs SET status = 'failed', finished_at = $1, error = $2 \
        WHERE job = $3 AND status = 'running' AND holder <> $4 \
          AND (business_date = $5 OR (business_date IS NULL AND $5 IS NULL))";
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(Utc::now())
            .bind(reason)
            .bind(job)
            .bind(except_holder)
            .bind(date.map(|d| d.naive()))
            .execute(pool)
            .await?
            .rows_affected()
    }))
}

/// Whether `(job, date)` has a succeeded run.
pub async fn succeeded(
    db: Database<'_>,
    job: &str,
    date: BusinessDate,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM job_runs WHERE job = $1 AND business_date = $2 \
        AND status = 'succeeded'";
    let n: i64 = ledger::on_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(job).bind(date.naive()).fetch_one(pool).await?
    });
    Ok(n > 0)
}

type Row = (
    String,
    String,
    Option<NaiveDate>,
    i32,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The most recent attempts that pass `filter`, newest first.
pub async fn recent(
    db: Database<'_>,
    filter: &RunFilter,
    limit: i64,
) -> Result<Vec<JobRun>, sqlx::Error> {
    const SQL: &str = "SELECT id, job, business_date, attempt, status, holder, started_at, \
        finished_at, counts, error, note FROM job_runs \
        WHERE ($1 IS NULL OR job = $1) AND ($2 IS NULL OR business_date = $2) \
          AND ($3 IS NULL OR status = $3) \
        ORDER BY started_at DESC, attempt DESC LIMIT $4";
    let rows: Vec<Row> = ledger::on_pool!(db, pool => {
        sqlx::query_as(SQL)
            .bind(filter.job.as_deref())
            .bind(filter.date.map(|d| d.naive()))
            .bind(filter.status.as_deref())
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                job,
                date,
                attempt,
                status,
                holder,
                started_at,
                finished_at,
                counts,
                error,
                note,
            )| {
                JobRun {
                    id,
                    job,
                    business_date: date.map(|d| d.format("%Y-%m-%d").to_string()),
                    attempt,
                    status,
                    holder,
                    started_at,
                    finished_at,
                    counts: counts.and_then(|c| serde_json::from_str(&c).ok()),
                    note,
                    error,
                }
            },
        )
        .collect())
}
