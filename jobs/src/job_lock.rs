//! Single flight across processes: a job for a scope (a business date, or `*` for ingest)
//! runs in at most one process at a time. The lock is a row with a lease the holder renews
//! while it works; a holder that dies (SIGKILL, a lost pod) stops renewing and the next
//! process takes the lock once the lease has run out. The same SQL serves PostgreSQL and
//! SQLite.

use chrono::{DateTime, Duration, Utc};
use ledger::Database;

/// Who holds a lock, for the message the loser prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub holder: String,
    pub run_id: String,
    pub acquired_at: DateTime<Utc>,
}

/// Takes the lock for `(job, scope)` unless a live holder has it; returns that holder then.
pub async fn acquire(
    db: Database<'_>,
    job: &str,
    scope: &str,
    holder: &str,
    run_id: &str,
    lease: Duration,
) -> Result<Result<(), Holder>, sqlx::Error> {
    let now = Utc::now();
    // Insert, or take over a row whose lease has run out; a live row is left alone and
    // nothing is returned.
    const TAKE: &str = "INSERT INTO job_locks (job, scope, holder, run_id, acquired_at, expires_at) \
        VALUES ($1, $2, $3, $4, $5, $6) \
        ON CONFLICT (job, scope) DO UPDATE SET holder = excluded.holder, run_id = excluded.run_id, \
          acquired_at = excluded.acquired_at, expires_at = excluded.expires_at \
        WHERE job_locks.expires_at < excluded.acquired_at \
        RETURNING run_id";
    const WHO: &str =
        "SELECT holder, run_id, acquired_at FROM job_locks WHERE job = $1 AND scope = $2";
    let taken: Option<String> = ledger::on_pool!(db, pool => {
        sqlx::query_scalar(TAKE)
            .bind(job)
            .bind(scope)
            .bind(holder)
            .bind(run_id)
            .bind(now)
            .bind(now + lease)
            .fetch_optional(pool)
            .await?
    });
    if taken.is_some() {
        return Ok(Ok(()));
    }
    let who: Option<(String, String, DateTime<Utc>)> = ledger::on_pool!(db, pool => {
        sqlx::query_as(WHO).bind(job).bind(scope).fetch_optional(pool).await?
    });
    Ok(Err(match who {
        Some((holder, run_id, acquired_at)) => Holder {
            holder,
            run_id,
            acquired_at,
        },
        // Released between the two statements: report it as busy all the same; a retry
        // of the command will get it.
        None => Holder {
            holder: "another process".into(),
            run_id: String::new(),
            acquired_at: now,
        },
    }))
}

/// Extends the lease; false when the lock is no longer ours (it expired and was taken).
pub async fn renew(
    db: Database<'_>,
    job: &str,
    scope: &str,
    run_id: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    const SQL: &str =
        "UPDATE job_locks SET expires_at = $1 WHERE job = $2 AND scope = $3 AND run_id = $4";
    let done = ledger::on_pool!(db, pool => {
        sqlx::query(SQL)
            .bind(Utc::now() + lease)
            .bind(job)
            .bind(scope)
            .bind(run_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

pub async fn release(
    db: Database<'_>,
    job: &str,
    scope: &str,
    run_id: &str,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "DELETE FROM job_locks WHERE job = $1 AND scope = $2 AND run_id = $3";
    ledger::on_pool!(db, pool => {
        sqlx::query(SQL).bind(job).bind(scope).bind(run_id).execute(pool).await?;
    });
    Ok(())
}

/// The locks a process holds, as `(job, scope)`: a run may add the locks of steps it waits
/// for while it works.
pub type Held = std::sync::Arc<std::sync::Mutex<Vec<(crate::job::Job, String)>>>;

/// Renews the leases of the locks in `held` every third of `lease` for as long as it lives
/// (dropping it stops): a holder that dies stops renewing, and another process takes over
/// when the lease runs out. `lost` says that happened to one of ours meanwhile.
pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Heartbeat {
    pub fn spawn(
        ledger: std::sync::Arc<dyn ledger::Ledger>,
        held: Held,
        run_id: String,
        lease: Duration,
    ) -> Heartbeat {
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let every = (lease / 3)
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_millis(100));
        let task = tokio::spawn({
            let lost = lost.clone();
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let locks = held
                        .lock()
                        .expect("the lock list is never poisoned")
                        .clone();
                    for (job, scope) in locks {
                        match renew(ledger.database(), job.as_str(), &scope, &run_id, lease).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::error!(%job, %scope, "lost the job lock (its lease ran out)");
                                lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(e) => {
                                tracing::warn!(%job, %scope, error = %e, "renewing the job lock")
                            }
                        }
                    }
                }
            }
        });
        Heartbeat { task, lost }
    }

    /// Whether a lock was taken by another process since this started.
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
