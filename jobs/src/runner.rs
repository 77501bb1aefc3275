//! Running a job the way ops needs it: single-flight per (job, date) across processes, each
//! attempt recorded, retries with doubling backoff for errors an external system caused
//! (none for bad data), and a clean end when the process is asked to stop.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use fault::RetryHint;
use ledger::BusinessDate;
use settings::telemetry::InternalEvent;
use tracing::Instrument;

use crate::internal_events::{JobAttemptFinished, JobRetrying, LockWaited, SettleSucceeded};
use crate::job::{Job, JobContext, Outcome, StepError, execute};
use crate::job_lock::{self, Holder};
use crate::job_run::{self, scope};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "{job} for {scope} is already running (held by {} since {}, run {}); nothing was done",
        holder.holder, holder.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"), holder.run_id
    )]
    Busy {
        job: Job,
        scope: String,
        holder: Holder,
    },
    #[error("{job} for {scope} failed after {attempts} attempt(s): {error}")]
    Failed {
        job: Job,
        scope: String,
        attempts: i32,
        error: StepError,
    },
    #[error("{job} for {scope} was stopped by a signal; attempt {attempt} is recorded as failed")]
    Stopped {
        job: Job,
        scope: String,
        attempt: i32,
    },
    #[error("recording the run: {0}")]
    History(#[from] sqlx::Error),
}

impl RunError {
    /// The process exit code: 3 when another process holds the job, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Busy { .. } => 3,
            _ => 1,
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunReport {
    pub job: Job,
    pub date: Option<BusinessDate>,
    pub attempts: i32,
    pub outcome: Outcome,
}

/// Who this process is in locks and run history: host, pid and a random part.
pub fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &nonce[..8])
}

/// Runs `job` for `date` once, under its lock, with retries. `stop` resolves when the run
/// must end now (a signal): the current attempt is then recorded as failed.
pub async fn run(
    ctx: &JobContext,
    job: Job,
    date: Option<BusinessDate>,
    holder: &str,
    stop: impl Future<Output = ()>,
) -> Result<RunReport, RunError> {
    let db = ctx.ledger.database();
    let scope = scope(date);
    let lock_id = uuid::Uuid::new_v4().to_string();
    let lease_secs = ctx.config.jobs.lease.as_secs();
    let lease = Duration::seconds(lease_secs as i64);
    let mut wanted = locks(job, date).into_iter();
    let own = wanted.next().expect("a job's own lock comes first");
    if let Err(holder) =
        job_lock::acquire(db, job.as_str(), &own.1, holder, &lock_id, lease).await?
    {
        return Err(RunError::Busy { job, scope, holder });
    }
    let held = Arc::new(Mutex::new(vec![own]));

    let heartbeat =
        job_lock::Heartbeat::spawn(ctx.ledger.clone(), held.clone(), lock_id.clone(), lease);
    tokio::pin!(stop);
    let result = async {
        wait_for_steps(db, job, wanted, holder, &lock_id, lease, &held, &mut stop).await?;
        let abandoned = job_run::abandon_stale(
            db,
            job.as_str(),
            date,
            holder,
            "abandoned: the process running it stopped without finishing (its lock expired)",
        )
        .await?;
        if abandoned > 0 {
            tracing::warn!(%job, %scope, abandoned, "took over from a run whose process stopped");
        }
        attempts(ctx, job, date, holder, &scope, &mut stop).await
    }
    .await;
    drop(heartbeat);
    let locks = held
        .lock()
        .expect("the lock list is never poisoned")
        .clone();
    for (job, scope) in locks {
        job_lock::release(db, job.as_str(), &scope, &lock_id).await?;
    }
    result
}

/// Takes the locks of the jobs `settle` runs in a row, waiting while one of them runs
/// elsewhere: that run ends or its lease runs out. A signal while waiting ends the run with
/// nothing done.
#[allow(clippy::too_many_arguments)]
async fn wait_for_steps(
    db: ledger::Database<'_>,
    job: Job,
    steps: impl Iterator<Item = (Job, String)>,
    holder: &str,
    lock_id: &str,
    lease: Duration,
    held: &Mutex<Vec<(Job, String)>>,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), RunError> {
    for (step, scope) in steps {
        let mut said = false;
        loop {
            match job_lock::acquire(db, step.as_str(), &scope, holder, lock_id, lease).await? {
                Ok(()) => break,
                Err(other) => {
                    if !said {
                        LockWaited {
                            job,
                            step,
                            scope: &scope,
                            holder: &other.holder,
                        }
                        .emit();
                        said = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                        () = &mut *stop => {
                            return Err(RunError::Busy { job: step, scope, holder: other });
                        }
                    }
                }
            }
        }
        held.lock()
            .expect("the lock list is never poisoned")
            .push((step, scope));
    }
    Ok(())
}

/// The locks a run holds, its own first: for `settle` also those of the jobs it runs in a
/// row, so that it never works beside one of them started on its own (an ingest of the same
/// files, a reconcile or report of the same date). Always taken in this order.
fn locks(job: Job, date: Option<BusinessDate>) -> Vec<(Job, String)> {
    let jobs = match job {
        Job::Settle | Job::SettleProvisional => vec![
            job,
            Job::IngestFiles,
            Job::IngestValidations,
            Job::Reconcile,
            Job::Report,
        ],
        _ => vec![job],
    };
    jobs.into_iter()
        .map(|j| (j, scope(date.filter(|_| j.is_dated()))))
        .collect()
}

async fn attempts(
    ctx: &JobContext,
    job: Job,
    date: Option<BusinessDate>,
    holder: &str,
    scope: &str,
    stop: impl Future<Output = ()>,
) -> Result<RunReport, RunError> {
    let db = ctx.ledger.database();
    let max = ctx.config.jobs.retries as i32 + 1;
    let mut backoff = ctx.config.jobs.retry_backoff;
    tokio::pin!(stop);
    for attempt in 1..=max {
        let id = uuid::Uuid::new_v4().to_string();
        job_run::start(db, &id, job.as_str(), date, attempt, holder).await?;
        // Every log line of the attempt names the job, the date and the run.
        let span = tracing::info_span!("job_run", %job, date = %scope, run_id = %id, attempt);
        span.in_scope(|| tracing::info!("job started"));
        let started = Instant::now();
        let result = tokio::select! {
            r = execute(ctx, job, date, &id).instrument(span.clone()) => r,
            () = &mut stop => {
                job_run::finish(db, &id, None, None, Some("stopped by a signal before it finished")).await?;
                return Err(RunError::Stopped { job, scope: scope.to_string(), attempt });
            }
        };
        match result {
            Ok(outcome) => {
                job_run::finish(db, &id, Some(&outcome.counts), Some(&outcome.note), None).await?;
                // The guard of `in_scope` is never held across an await: a task that
                // yields while inside a span would lend it to whatever runs next.
                span.in_scope(|| {
                    JobAttemptFinished {
                        job,
                        scope,
                        attempt,
                        took: started.elapsed(),
                        result: Ok(&outcome.note),
                        retryable: false,
                    }
                    .emit();
                    if let (Job::Settle, Some(date)) = (job, date) {
                        SettleSucceeded { date }.emit();
                    }
                });
                return Ok(RunReport {
                    job,
                    date,
                    attempts: attempt,
                    outcome,
                });
            }
            Err(error) => {
                let message = format!("{error}");
                job_run::finish(db, &id, None, None, Some(&message)).await?;
                let retryable = error.retry() == RetryHint::Retry;
                span.in_scope(|| {
                    JobAttemptFinished {
                        job,
                        scope,
                        attempt,
                        took: started.elapsed(),
                        result: Err((error.blame(), &message)),
                        retryable,
                    }
                    .emit()
                });
                if !retryable || attempt == max {
                    return Err(RunError::Failed {
                        job,
                        scope: scope.to_string(),
                        attempts: attempt,
                        error,
                    });
                }
                span.in_scope(|| {
                    JobRetrying {
                        job,
                        scope,
                        wait: backoff,
                    }
                    .emit()
                });
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut stop => {
                        return Err(RunError::Stopped { job, scope: scope.to_string(), attempt });
                    }
                }
                backoff *= 2;
            }
        }
    }
    unreachable!("the last attempt returns")
}
