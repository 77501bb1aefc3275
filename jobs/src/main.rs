//! `recaudo`: the command ops and developers run. The jobs (`ingest-files`,
//! `ingest-validations`, `reconcile`, `report`, `settle`) run once with `run`, over a range
//! of dates with `backfill`, or on their cron schedule with `schedule`; every run is
//! recorded (`status`) and single-flight per job and date across processes. `demo` shows it
//! all on one laptop.

mod bench;
mod data_in;
mod demo;
mod job;
mod job_lock;
mod job_run;
mod operators;
mod ops;
mod reconcile_bench;
mod reconciliation;
mod report_bench;
mod runner;
mod schedule;
mod table;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger::config::{Config, redact_url};

// The engine's frames are many large, short-lived buffers; polars recommends a faster
// allocator than the system's (BENCHMARKS.md has the numbers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (ms; -1 never). Purging hands freed pages back to the
/// OS, and the engine's next part faults them straight back in: with the default 10 ms a
/// reconciliation of 10M sales per side spent a fifth of its time in page faults. Not
/// purging means a process keeps its peak (about 2 GiB there) until it exits.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[derive(Parser)]
#[command(
    name = "recaudo",
    version,
    about = "Settlement and reconciliation back office of an electronic transit fare system",
    long_about = "Settlement and reconciliation back office of an electronic transit fare system.\n\n\
        Configuration comes from recaudo.toml (or the file RECAUDO_CONFIG names) and RECAUDO_* \
        environment variables, which win. With nothing set, everything runs embedded under var/ \
        (SQLite at var/recaudo.db)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the database schema (PostgreSQL or SQLite, by RECAUDO_DATABASE_URL).
    ///
    /// Safe to run again and from several processes at once: applied migrations are skipped.
    Migrate,
    /// Register, list and change recharge operators.
    #[command(subcommand)]
    Operators(operators::OperatorsCommand),
    /// Generate a deterministic day of synthetic data (and optionally load and publish it).
    Fixtures(data_in::FixturesArgs),
    /// Take operator files and validation events in, once.
    #[command(subcommand)]
    Ingest(data_in::IngestCommand),
    /// Reconcile a business date: every operator's file against the ledger, once.
    Reconcile(reconciliation::ReconcileArgs),
    /// Publish the settlement reports of a business date (the `report` job, once).
    Report {
        /// The business date (YYYY-MM-DD); it must have been reconciled.
        #[arg(long)]
        date: String,
    },
    /// Run one job once: recorded, retried when an external system fails, and refused
    /// (exit code 3) while another process runs the same job for the same date.
    Run(ops::RunArgs),
    /// Run a dated job for every date of a range, in order; dates that already succeeded
    /// are skipped, so repeating a backfill is safe.
    Backfill(ops::BackfillArgs),
    /// The most recent job runs: status, timings, counts, errors.
    Status(ops::StatusArgs),
    /// Run the jobs on their cron schedules until SIGTERM (see the schedule_* settings).
    Schedule,
    /// The whole back office on this machine, from scratch, on the embedded defaults: a
    /// synthetic day ingested, reconciled and reported, and a summary.
    Demo(demo::DemoArgs),
    /// Measure the ledger's throughput and print a table (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    // SAFETY: sets a process-wide allocator option before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The demo speaks through its own output; its logs only say what went wrong.
    let default_filter = match cli.command {
        Command::Demo(_) => "warn,sqlx=error",
        _ => "info,sqlx=warn",
    };
    ledger::logging::init(config.log_format.as_deref(), default_filter);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Report { date } => {
            let args = ops::RunArgs {
                job: job::Job::Report,
                date: Some(date),
            };
            ops::run(args, &config).await
        }
        Command::Run(args) => ops::run(args, &config).await,
        Command::Backfill(args) => ops::backfill(args, &config).await,
        Command::Status(args) => ops::status(args, &config).await,
        Command::Schedule => done(schedule::run(job::JobContext::open(&config).await?).await),
        Command::Demo(args) => done(demo::run(args, &config).await),
        Command::Migrate => {
            let ledger = open_ledger(&config).await?;
            println!("database is up to date ({})", ledger.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Operators(cmd) => done(operators::run(cmd, &open_ledger(&config).await?).await),
        Command::Fixtures(args) => done(data_in::fixtures(args, &config).await),
        Command::Ingest(cmd) => done(data_in::ingest(cmd, &config).await),
        Command::Reconcile(args) => done(reconciliation::run(args, &config).await),
        Command::Bench(cmd) => done(bench::run(cmd, &config).await),
    }
}

/// Connects to the configured database and applies pending migrations.
pub(crate) async fn open_ledger(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn ledger::Ledger>> {
    let settings = config.ledger_settings()?;
    ledger::connect(&config.database_url, settings)
        .await
        .with_context(|| format!("opening the ledger at {}", redact_url(&config.database_url)))
}
