//! `recaudo`: the command ops and developers run. This first version migrates the database
//! and manages the operators registry; the scheduled jobs arrive in later versions.

mod bench;
mod data_in;
mod operators;
mod reconcile_bench;
mod reconciliation;
mod table;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger::config::{Config, redact_url};

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
    /// Measure the ledger's throughput and print a table (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    ledger::logging::init(config.log_format.as_deref(), "info,sqlx=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let ledger = open_ledger(&config).await?;
            println!("database is up to date ({})", ledger.backend());
            Ok(())
        }
        Command::Operators(cmd) => operators::run(cmd, &open_ledger(&config).await?).await,
        Command::Fixtures(args) => data_in::fixtures(args, &config).await,
        Command::Ingest(cmd) => data_in::ingest(cmd, &config).await,
        Command::Reconcile(args) => reconciliation::run(args, &config).await,
        Command::Bench(cmd) => bench::run(cmd, &config).await,
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
