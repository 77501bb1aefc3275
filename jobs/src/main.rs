//! `recaudo`: the command ops and developers run. The jobs (`ingest-files`,
//! `ingest-validations`, `ingest-bank`, `reconcile`, `report`, `settle`) run once with `run`, over a range
//! of dates with `backfill`, or on their cron schedule with `schedule`; every run is
//! recorded (`status`) and single-flight per job and date across processes. `demo` shows it
//! all on one laptop.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jobs::{
    data_in, dead_letters, demo, job, open_ledger, operators, ops, reconciliation, remittance,
    schedule,
};
use settings::Settings;

// The engine's frames are many large, short-lived buffers (see `jobs::tune_allocator`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The most recent job runs (status, timings, counts, notes, errors) and the stale dates.
    Status(ops::StatusArgs),
    /// Exception cases: list, show, resolve, approve, reject, reopen, verify the history.
    #[command(subcommand)]
    Exceptions(jobs::exception_case::ExceptionsCommand),
    /// Bank entries posted from our statements, and unidentified deposits assigned.
    #[command(subcommand)]
    Remittances(remittance::RemittancesCommand),
    /// What each operator owes: not yet due, and overdue by 1-30, 31-60, 61-90, >90 days.
    Receivables(remittance::ReceivablesArgs),
    /// Cards: status and history, blocks by the back office, the blocked list.
    #[command(subcommand)]
    Cards(jobs::card::CardsCommand),
    /// Validation events that could not be posted, with their reason and bytes.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLettersCommand),
    /// Run the jobs on their cron schedules until SIGTERM (see the schedule_* settings),
    /// and the outbox's relays (publish-events, deliver-webhooks) continuously.
    Schedule,
    /// The event stream other systems hear (the outbox).
    #[command(subcommand)]
    Events(EventsCommand),
    /// The whole back office on this machine, from scratch, on the embedded defaults: a
    /// synthetic day ingested, reconciled and reported, and a summary.
    Demo(demo::DemoArgs),
}

#[derive(clap::Subcommand)]
enum EventsCommand {
    /// The latest events, or those from a position on; --follow keeps watching.
    Tail(jobs::relay::TailArgs),
}

fn main() -> ExitCode {
    jobs::tune_allocator();
    let cli = Cli::parse();
    let config = match Settings::load() {
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
    settings::logging::init(config.telemetry.log_format.as_deref(), default_filter);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(jobs::exit_code(&e))
        }
    }
}

async fn run(cli: Cli, config: Settings) -> anyhow::Result<ExitCode> {
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Report { date } => {
            let args = ops::RunArgs {
                job: job::Job::Report,
                date: Some(date),
                provisional: false,
            };
            ops::run(args, &config).await
        }
        Command::Run(args) => ops::run(args, &config).await,
        Command::Backfill(args) => ops::backfill(args, &config).await,
        Command::Status(args) => ops::status(args, &config).await,
        Command::DeadLetters(cmd) => done(dead_letters::run(cmd, &config).await),
        Command::Schedule => done(schedule::run(job::JobContext::open(&config).await?).await),
        Command::Demo(args) => done(demo::run(args, &config).await),
        Command::Events(EventsCommand::Tail(args)) => done(jobs::relay::tail(args, &config).await),
        Command::Migrate => {
            let ledger = open_ledger(&config).await?;
            println!("database is up to date ({})", ledger.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Exceptions(cmd) => {
            jobs::exception_case::run(cmd, &open_ledger(&config).await?, &config).await
        }
        Command::Cards(cmd) => done(jobs::card::run(cmd, &open_ledger(&config).await?).await),
        Command::Operators(cmd) => done(operators::run(cmd, &open_ledger(&config).await?).await),
        Command::Remittances(cmd) => {
            done(remittance::run(cmd, &open_ledger(&config).await?, &config).await)
        }
        Command::Receivables(args) => {
            done(remittance::receivables(args, &open_ledger(&config).await?, &config).await)
        }
        Command::Fixtures(args) => done(data_in::fixtures(args, &config).await),
        Command::Ingest(cmd) => done(data_in::ingest(cmd, &config).await),
        Command::Reconcile(args) => done(reconciliation::run(args, &config).await),
    }
}
