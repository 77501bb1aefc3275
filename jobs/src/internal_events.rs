//! What the jobs tell ops: each event logs one line and counts in one metric, so what
//! `recaudo schedule` serves on `/metrics` (RECAUDO_METRICS_ADDR) and what it logs always
//! agree. Labels are bounded: a job name, a step, a status, a reconciliation case.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use settings::telemetry::InternalEvent;

use crate::job::Job;

/// Describes every metric of this module, for the `# HELP` lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "recaudo_job_runs_total",
        "Job attempts that ended, by job and status (succeeded, failed)."
    );
    describe_histogram!(
        "recaudo_job_duration_seconds",
        metrics::Unit::Seconds,
        "Time one job attempt took, by job."
    );
    describe_counter!(
        "recaudo_job_retries_total",
        "Attempts started again after an external system failed, by job."
    );
    describe_counter!(
        "recaudo_job_lock_waits_total",
        "Times a run waited for a step's lock held elsewhere, by job and step."
    );
    describe_counter!(
        "recaudo_operator_files_total",
        "Operator files taken in, by outcome (accepted, rejected, already_ingested)."
    );
    describe_counter!(
        "recaudo_validations_posted_total",
        "Validation events posted to the ledger."
    );
    describe_counter!(
        "recaudo_dead_letters_total",
        "Malformed validation events kept in the dead letters."
    );
    describe_counter!(
        "recaudo_reconciliation_items_total",
        "Items of reconciliation runs, by case."
    );
    describe_gauge!(
        "recaudo_lost_taps",
        "Taps missing from device sequences on the last reported date."
    );
    describe_gauge!(
        "recaudo_last_settled_date_timestamp_seconds",
        "The latest business date settled successfully (its midnight, UTC, as a Unix time)."
    );
}

/// A job attempt ended.
pub struct JobAttemptFinished<'a> {
    pub job: Job,
    pub scope: &'a str,
    pub attempt: i32,
    pub took: Duration,
    /// `Ok(note)` or `Err((blame, error))`.
    pub result: Result<&'a str, (fault::Blame, &'a str)>,
    pub retryable: bool,
}

impl InternalEvent for JobAttemptFinished<'_> {
    fn emit(self) {
        let (job, scope, attempt) = (self.job, self.scope, self.attempt);
        let seconds = self.took.as_secs_f64(); // for the log line only
        let status = match self.result {
            Ok(note) => {
                tracing::info!(%job, %scope, attempt, seconds, %note, "job succeeded");
                "succeeded"
            }
            Err((blame, error)) => {
                tracing::error!(%job, %scope, attempt, seconds, %blame, retryable = self.retryable, %error, "job failed");
                "failed"
            }
        };
        counter!("recaudo_job_runs_total", "job" => job.as_str(), "status" => status).increment(1);
        histogram!("recaudo_job_duration_seconds", "job" => job.as_str()).record(self.took);
    }
}

/// A failed attempt will be tried again after `wait`.
pub struct JobRetrying<'a> {
    pub job: Job,
    pub scope: &'a str,
    pub wait: Duration,
}

impl InternalEvent for JobRetrying<'_> {
    fn emit(self) {
        let (job, scope) = (self.job, self.scope);
        tracing::info!(%job, %scope, wait_ms = self.wait.as_millis() as u64, "retrying");
        counter!("recaudo_job_retries_total", "job" => job.as_str()).increment(1);
    }
}

/// A run waits for the lock of one of its steps, held by a run elsewhere.
pub struct LockWaited<'a> {
    pub job: Job,
    pub step: Job,
    pub scope: &'a str,
    pub holder: &'a str,
}

impl InternalEvent for LockWaited<'_> {
    fn emit(self) {
        let (job, step, scope, holder) = (self.job, self.step, self.scope, self.holder);
        tracing::info!(%job, %step, %scope, %holder, "waiting for a run of a step to finish elsewhere");
        counter!("recaudo_job_lock_waits_total", "job" => job.as_str(), "step" => step.as_str())
            .increment(1);
    }
}

/// A reconciliation run became current; `cases` are its item counts by case.
pub struct ReconciliationCompleted<'a> {
    pub run_id: &'a str,
    pub date: ledger::BusinessDate,
    pub cases: &'a std::collections::BTreeMap<String, i64>,
}

impl InternalEvent for ReconciliationCompleted<'_> {
    fn emit(self) {
        let exceptions: i64 = self
            .cases
            .iter()
            .filter(|(case, _)| *case != "MATCHED")
            .map(|(_, n)| n)
            .sum();
        tracing::info!(run_id = self.run_id, date = %self.date, exceptions, "reconciliation run is current");
        for (case, n) in self.cases {
            counter!("recaudo_reconciliation_items_total", "case" => case.clone())
                .increment((*n).max(0) as u64);
        }
    }
}

/// The report of a date found these lost taps (device sequence gaps).
pub struct LostTapsReported {
    pub date: ledger::BusinessDate,
    pub taps: i64,
}

impl InternalEvent for LostTapsReported {
    fn emit(self) {
        if self.taps > 0 {
            tracing::warn!(date = %self.date, taps = self.taps, "validators lost taps (device sequence gaps)");
        }
        gauge!("recaudo_lost_taps").set(self.taps as f64);
    }
}

/// The newest date settled by this process, so a backfill of older dates does not move the
/// gauge back.
static LAST_SETTLED: AtomicI64 = AtomicI64::new(i64::MIN);

/// `settle` of a date succeeded.
pub struct SettleSucceeded {
    pub date: ledger::BusinessDate,
}

impl InternalEvent for SettleSucceeded {
    fn emit(self) {
        let at = self
            .date
            .naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp();
        let newest = LAST_SETTLED.fetch_max(at, Ordering::Relaxed).max(at);
        gauge!("recaudo_last_settled_date_timestamp_seconds").set(newest as f64);
    }
}
