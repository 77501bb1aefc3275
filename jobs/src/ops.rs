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

/// A job as runs are recorded: any job, or a provisional settle.
fn parse_recorded_job(text: &str) -> Result<Job, String> {
    match text {
        "settle-provisional" => Ok(Job::SettleProvisional),
        other => Job::parse(other),
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// ingest-files, ingest-validations, reconcile, report or settle.
    #[arg(value_parser = parse_job)]
    pub job: Job,
    /// The business date (YYYY-MM-DD); required by reconcile, report and settle. A date
    /// settles (and reports) only once its day has closed.
    #[arg(long)]
    pub date: Option<String>,
    /// With settle: a provisional look at a date, even one that has not closed, under
    /// reports/{date}/provisional/ (marked PROVISIONAL, nothing posted, latest.json
    /// untouched, the date not counted as settled).
    #[arg(long)]
    pub provisional: bool,
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
    /// How many of the most recent attempts to show (1 to 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Only this job's runs (a job's name, or settle-provisional for provisional looks).
    #[arg(long, value_parser = parse_recorded_job)]
    pub job: Option<Job>,
    /// Only runs for this business date (YYYY-MM-DD).
    #[arg(long)]
    pub date: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_parser = ["running", "succeeded", "failed"])]
    pub status: Option<String>,
    /// List the stale dates instead: settled dates whose inputs changed after their last
    /// report.
    #[arg(long)]
    pub stale: bool,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn date_arg(job: Job, date: Option<&str>) -> anyhow::Result<Option<BusinessDate>> {
    match (job.is_dated(), date) {
        (true, Some(d)) => Ok(Some(BusinessDate::parse_as("--date", d)?)),
        (true, None) => crate::usage!("{job} needs --date YYYY-MM-DD"),
        (false, Some(_)) => crate::usage!("{job} takes whatever has arrived; it has no --date"),
        (false, None) => Ok(None),
    }
}

/// A usage error (exit 2) for a settle or report of a date whose day has not closed.
fn refuse_open(config: &Settings, job: Job, date: Option<BusinessDate>) -> anyhow::Result<()> {
    let (Job::Settle | Job::Report, Some(date)) = (job, date) else {
        return Ok(());
    };
    let calendar = ledger::LedgerSettings::from_settings(config)?.calendar;
    if let Err(e) = crate::job::ensure_closed(&calendar, date, chrono::Utc::now()) {
        crate::usage!("{e}");
    }
    Ok(())
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
    let job = match (args.job, args.provisional) {
        (Job::Settle, true) => Job::SettleProvisional,
        (job, true) => crate::usage!("--provisional goes with settle, not {job}"),
        (job, false) => job,
    };
    refuse_open(config, job, date)?;
    let ctx = JobContext::open(config).await?;
    let holder = runner::holder_id();
    match runner::run(&ctx, job, date, &holder, settings::signal::shutdown()).await {
        Ok(report) => {
            print_report(&report);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failure(e)),
    }
}

pub async fn backfill(args: BackfillArgs, config: &Settings) -> anyhow::Result<ExitCode> {
    if !args.job.is_dated() {
        crate::usage!(
            "{} has no dates to backfill: run it with `recaudo run {}`",
            args.job,
            args.job
        );
    }
    let from = BusinessDate::parse_as("--from", &args.from)?;
    let to = BusinessDate::parse_as("--to", &args.to)?;
    refuse_open(config, args.job, Some(to))?;
    if from > to {
        crate::usage!("--from {from} is after --to {to}");
    }
    if (to.naive() - from.naive()).num_days() >= 366 {
        crate::usage!("a backfill covers at most a year at a time");
    }
    let ctx = JobContext::open(config).await?;
    let holder = runner::holder_id();
    let stale_dates: Vec<BusinessDate> = match args.job {
        Job::Settle | Job::Report => ledger::date_status::stale(ctx.ledger.database())
            .await?
            .into_iter()
            .map(|s| s.business_date)
            .collect(),
        _ => Vec::new(),
    };
    let mut date = from;
    let mut rows = Vec::new();
    let mut failed = None;
    while date <= to {
        let done = job_run::succeeded(ctx.ledger.database(), args.job.as_str(), date).await?;
        // A stale date succeeded once, but its inputs changed since: it is run again.
        let stale = stale_dates.contains(&date);
        if done && !stale && !args.force {
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
    let filter = job_run::RunFilter {
        job: args.job.map(|j| j.as_str().to_string()),
        date: args
            .date
            .as_deref()
            .map(|d| BusinessDate::parse_as("--date", d))
            .transpose()?,
        status: args.status.clone(),
    };
    let ledger = crate::open_ledger(config).await?;
    let stale = ledger::date_status::stale(ledger.database()).await?;
    if args.stale {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&stale)?);
        } else if stale.is_empty() {
            println!("no settled date is stale");
        } else {
            print_stale(&stale);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runs = job_run::recent(ledger.database(), &filter, args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no job run matches");
    } else {
        print_runs(&runs);
    }
    if !stale.is_empty() {
        println!();
        print_stale(&stale);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stale(stale: &[ledger::date_status::StaleDate]) {
    let rows: Vec<Vec<String>> = stale
        .iter()
        .map(|s| {
            vec![
                s.business_date.to_string(),
                s.settled_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                format!(
                    "{} at {}",
                    s.last_input,
                    s.last_input_at.format("%Y-%m-%d %H:%M:%S")
                ),
            ]
        })
        .collect();
    println!("stale dates (settle them again: recaudo run settle --date D):");
    crate::table::print(
        &["business date", "report as of (UTC)", "newer input (UTC)"],
        &rows,
    );
}

fn print_runs(runs: &[job_run::JobRun]) {
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
                (None, Some(c)) => {
                    let counts = c
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default();
                    match &r.note {
                        Some(note) => format!("{counts}; {note}"),
                        None => counts,
                    }
                }
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
}
