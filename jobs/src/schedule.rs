//! `recaudo schedule`: the long-running scheduler. Cron expressions (5 fields) from the
//! configuration are evaluated in the business time zone: ingest every 5 minutes and
//! `settle` of the previous business date at 02:00 by default. On start it settles a
//! previous date that never settled (catch-up, configurable); `publish-hotlist` every 5
//! minutes and as each business day closes. On SIGTERM it takes no new
//! run, gives the current one a grace period to end, and otherwise records it as failed.
//! Beside the cron jobs, the outbox's relays run continuously (`relay`).

use std::str::FromStr;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use ledger::BusinessDate;
use tokio::sync::watch;

use crate::job::{Job, JobContext};
use crate::runner::{self, RunError};

pub struct Schedule {
    pub ingest: Cron,
    pub settle: Cron,
    pub hotlist: Cron,
    pub time_zone: Tz,
}

impl Schedule {
    pub fn from_config(config: &settings::Settings) -> anyhow::Result<Schedule> {
        let parse = |name: &str, text: &str| {
            Cron::from_str(text)
                .with_context(|| format!("setting {name}: {text:?} is not a cron expression"))
        };
        Ok(Schedule {
            ingest: parse("schedule_ingest", &config.schedule.ingest)?,
            settle: parse("schedule_settle", &config.schedule.settle)?,
            hotlist: parse("schedule_hotlist", &config.hotlist.schedule)?,
            time_zone: config.calendar.timezone,
        })
    }

    /// The next instant strictly after `now` at which `cron` fires, in the business zone.
    pub fn next(&self, cron: &Cron, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
        let local = now.with_timezone(&self.time_zone);
        Ok(cron
            .find_next_occurrence(&local, false)
            .context("the cron expression never fires")?
            .with_timezone(&Utc))
    }
}

/// The date `settle` works on when it fires at `at`: the business date before `at`'s.
pub fn settle_date(ctx: &JobContext, at: DateTime<Utc>) -> BusinessDate {
    ctx.ledger.settings().calendar.business_date(at).pred()
}

async fn run_logged(
    ctx: &JobContext,
    job: Job,
    date: Option<BusinessDate>,
    holder: &str,
    stopping: &watch::Receiver<bool>,
) {
    let mut rx = stopping.clone();
    let stop = async move {
        let _ = rx.wait_for(|s| *s).await;
        // How long a run in progress may go on after SIGTERM before it is stopped.
        tokio::time::sleep(ctx.config.schedule.grace).await;
    };
    match runner::run(ctx, job, date, holder, stop).await {
        Ok(report) => {
            tracing::info!(%job, attempts = report.attempts, note = %report.outcome.note, "scheduled run succeeded")
        }
        Err(e @ RunError::Busy { .. }) => {
            tracing::info!(%job, reason = %e, "scheduled run skipped")
        }
        Err(e) => tracing::error!(%job, error = %e, "scheduled run failed"),
    }
}

/// Settles again every date whose inputs changed after its last report (a late file, a
/// late validation), oldest first.
async fn resettle_stale(ctx: &JobContext, holder: &str, stopping: &watch::Receiver<bool>) {
    let stale = match ledger::date_status::stale(ctx.ledger.database()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "reading the stale dates");
            return;
        }
    };
    for date in stale {
        if *stopping.borrow() {
            return;
        }
        tracing::info!(
            date = %date.business_date,
            input = %date.last_input,
            "settling a stale date again: its inputs changed after its report"
        );
        run_logged(ctx, Job::Settle, Some(date.business_date), holder, stopping).await;
    }
}

pub async fn run(ctx: JobContext) -> anyhow::Result<()> {
    let schedule = Schedule::from_config(&ctx.config)?;
    if let Some(addr) = ctx.config.telemetry.metrics_addr {
        settings::telemetry::serve(addr)
            .with_context(|| format!("serving metrics on {addr} (RECAUDO_METRICS_ADDR)"))?;
        crate::internal_events::describe();
        events::internal_events::describe();
        tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    }
    let holder = runner::holder_id();
    let (stop_tx, stopping) = watch::channel(false);
    // The handlers are installed here, before the first run can start.
    let signal = settings::signal::shutdown();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("stop requested: no new runs; the current one may finish");
        let _ = stop_tx.send(true);
    });
    tracing::info!(
        ingest = %ctx.config.schedule.ingest,
        settle = %ctx.config.schedule.settle,
        time_zone = %schedule.time_zone,
        "scheduler started"
    );
    // The relays run beside the cron jobs, each under its own lock.
    let relays: Vec<_> = [Job::PublishEvents, Job::DeliverWebhooks]
        .into_iter()
        .map(|job| {
            tokio::spawn(crate::relay::run_continuously(
                ctx.clone(),
                job,
                holder.clone(),
                stopping.clone(),
            ))
        })
        .collect();
    if ctx.config.schedule.catch_up {
        let date = settle_date(&ctx, Utc::now());
        if !crate::job_run::succeeded(ctx.ledger.database(), Job::Settle.as_str(), date).await? {
            tracing::info!(%date, "catching up: the previous date never settled");
            run_logged(&ctx, Job::Settle, Some(date), &holder, &stopping).await;
        }
    }
    loop {
        if *stopping.borrow() {
            break;
        }
        let now = Utc::now();
        let next_ingest = schedule.next(&schedule.ingest, now)?;
        let next_settle = schedule.next(&schedule.settle, now)?;
        let next_hotlist = schedule.next(&schedule.hotlist, now)?;
        // The action list also goes out as the day closes, so the day's blocks reach the
        // field with it.
        let calendar = &ctx.ledger.settings().calendar;
        let next_close = calendar.opens_at(calendar.business_date(now).succ());
        let at = next_ingest
            .min(next_settle)
            .min(next_hotlist)
            .min(next_close);
        let wait = (at - now).to_std().unwrap_or_default();
        tracing::debug!(next = %at, "sleeping until the next run");
        let mut rx = stopping.clone();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = rx.wait_for(|s| *s) => break,
        }
        if at == next_ingest {
            run_logged(&ctx, Job::IngestFiles, None, &holder, &stopping).await;
            if !*stopping.borrow() {
                run_logged(&ctx, Job::IngestValidations, None, &holder, &stopping).await;
            }
            // After the taps received by now are posted, so an old card's balance is whole.
            if !*stopping.borrow() {
                run_logged(&ctx, Job::TransferReplacements, None, &holder, &stopping).await;
            }
            if !*stopping.borrow() {
                run_logged(&ctx, Job::IngestBank, None, &holder, &stopping).await;
            }
            if ctx.config.schedule.resettle_stale {
                resettle_stale(&ctx, &holder, &stopping).await;
            }
        }
        if (at == next_hotlist || at == next_close) && !*stopping.borrow() {
            run_logged(&ctx, Job::PublishHotlist, None, &holder, &stopping).await;
        }
        if at == next_settle && !*stopping.borrow() {
            let date = settle_date(&ctx, at);
            run_logged(&ctx, Job::Settle, Some(date), &holder, &stopping).await;
        }
    }
    for relay in relays {
        let _ = relay.await;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cron_fires_in_the_business_time_zone() {
        let schedule = Schedule {
            ingest: Cron::from_str("*/5 * * * *").unwrap(),
            settle: Cron::from_str("0 2 * * *").unwrap(),
            hotlist: Cron::from_str("*/5 * * * *").unwrap(),
            time_zone: chrono_tz::America::Bogota,
        };
        // 06:59 UTC is 01:59 in Bogotá (UTC-5): settle fires at 02:00 local = 07:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 6, 59, 0).unwrap();
        assert_eq!(
            schedule.next(&schedule.settle, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 7, 0, 0).unwrap()
        );
        // Strictly after: at 07:00 UTC the next settle is a day later.
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 7, 0, 0).unwrap();
        assert_eq!(
            schedule.next(&schedule.settle, at).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 28, 7, 0, 0).unwrap()
        );
        assert_eq!(
            schedule.next(&schedule.ingest, now).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 7, 0, 0).unwrap()
        );
    }
}
