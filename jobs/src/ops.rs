//! The commands ops runs by hand: `run JOB --date D`, `backfill JOB --from D1 --to D2`,
//! `status`, and `report --date D` (the `report` job, once).

use std::process::ExitCode;

use clap::Args;
use ledger::BusinessDate;
use settings::Settings;

use crate::job::{Job, JobContext};
use crate::job_run;
use crate::runner::{self, RunError, RunReport};

fn parse_job(text: &str) -> Result<Job, String> {
    Job::parse(text)
}

#[derive(Args)]
pub struct RunArgs {
    /// ingest-files, ingest-validations, reconcile, report or settle.
    #[arg(value_parser = parse_job)]
    pub job: Job,
    /// The business date (YYYY-MM-DD); required by reconcile, report and settle.
    #[arg(long)]
    pub date: Option<String>,
}

#[derive(Args)]
pub struct BackfillArgs {
    /// The job to run for each date.
    #[arg(value_parser = parse_job)]
    pub job: Job,
    /// First business date (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub from: String,
    /// Last business date, inclusive.
    #[arg(long)]
    pub to: String,
    /// Run dates that already succeeded too (by default they are skipped).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// How many of the most recent attempts to show.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn date_arg(job: Job, date: Option<&str>) -> anyhow::Result<Option<BusinessDate>> {
    match (job.is_dated(), date) {
        (true, Some(d)) => Ok(Some(BusinessDate::parse_as("--date", d)?)),
        (true, None) => anyhow::bail!("{job} needs --date YYYY-MM-DD"),
        (false, Some(_)) => anyhow::bail!("{job} takes whatever has arrived; it has no --date"),
        (false, None) => Ok(None),
    }
}

pub fn print_report(report: &RunReport) {
    let rows: Vec<Vec<String>> = report
        .outcome
        .counts
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    crate::table::print(&["count", "value"], &rows);
    let scope = job_run::scope(report.date);
    println!(
        "{} for {scope} succeeded (attempt {})",
        report.job, report.attempts
    );
    if !report.outcome.note.is_empty() {
        println!("{}", report.outcome.note);
    }
}

fn failure(e: RunError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
}

pub async fn run(args: RunArgs, config: &Settings) -> anyhow::Result<ExitCode> {
    let date = date_arg(args.job, args.date.as_deref())?;
    let ctx = JobContext::open(config).await?;
    let holder = runner::holder_id();
    match runner::run(&ctx, args.job, date, &holder, settings::signal::shutdown()).await {
        Ok(report) => {
            print_report(&report);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failure(e)),
    }
}

pub async fn backfill(args: BackfillArgs, config: &Settings) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.job.is_dated(),
        "{} has no dates to backfill: run it with `recaudo run {}`",
        args.job,
        args.job
    );
    let from = BusinessDate::parse_as("--from", &args.from)?;
    let to = BusinessDate::parse_as("--to", &args.to)?;
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    anyhow::ensure!(
        (to.naive() - from.naive()).num_days() < 366,
        "a backfill covers at most a year at a time"
    );
    let ctx = JobContext::open(config).await?;
    let holder = runner::holder_id();
    let mut date = from;
    let mut rows = Vec::new();
    let mut failed = None;
    while date <= to {
        let done = job_run::succeeded(ctx.ledger.database(), args.job.as_str(), date).await?;
        if done && !args.force {
            rows.push(vec![date.to_string(), "skipped (already succeeded)".into()]);
        } else {
            match runner::run(
                &ctx,
                args.job,
                Some(date),
                &holder,
                settings::signal::shutdown(),
            )
            .await
            {
                Ok(report) => rows.push(vec![
                    date.to_string(),
                    format!("succeeded (attempt {})", report.attempts),
                ]),
                Err(e) => {
                    rows.push(vec![date.to_string(), format!("failed: {e}")]);
                    failed = Some(e);
                    // Later dates build on earlier ones: stop at the first failure.
                    break;
                }
            }
        }
        date = date.succ();
    }
    crate::table::print(&["business date", args.job.as_str()], &rows);
    Ok(match failed {
        None => ExitCode::SUCCESS,
        Some(e) => failure(e),
    })
}

pub async fn status(args: StatusArgs, config: &Settings) -> anyhow::Result<ExitCode> {
    let ledger = crate::open_ledger(config).await?;
    let runs = job_run::recent(ledger.database(), args.limit.clamp(1, 1_000)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no job has run yet");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let took = r
                .finished_at
                .map(|f| {
                    format!(
                        "{:.1}s",
                        (f - r.started_at).num_milliseconds() as f64 / 1000.0
                    )
                })
                .unwrap_or_else(|| "-".into());
            let detail = match (&r.error, &r.counts) {
                (Some(e), _) => e.clone(),
                (None, Some(c)) => c
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
                (None, None) => String::new(),
            };
            vec![
                r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.job.clone(),
                r.business_date.clone().unwrap_or_else(|| "*".into()),
                r.attempt.to_string(),
                r.status.clone(),
                took,
                detail,
            ]
        })
        .collect();
    crate::table::print(
        &[
            "started (UTC)",
            "job",
            "date",
            "attempt",
            "status",
            "took",
            "counts / error",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
