//! `recaudo-api`: serves the online API, and mints development tokens.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger::config::{Config, redact_url};
use online_api::auth::{JwksSource, Verifier, VerifierSettings, parse_algorithms};
use online_api::dev_keys::{DEV_AUDIENCE, DEV_ISSUER, DevKeys};
use online_api::{Limits, app, idempotency, openapi_document};

#[derive(Parser)]
#[command(
    name = "recaudo-api",
    version,
    about = "The online API recharge operators use: sales, voids, fare payments, balances",
    long_about = "The online API recharge operators use: sales, voids, fare payments, balances.\n\n\
        Reads the same configuration as `recaudo` (recaudo.toml and RECAUDO_* variables). \
        With RECAUDO_JWT_JWKS unset it runs in development mode: tokens are signed with a \
        key pair under var/dev-jwt/ (see `dev-token`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on RECAUDO_API_ADDR (the default command).
    Serve,
    /// Print a development token (only when RECAUDO_JWT_JWKS is unset).
    DevToken {
        /// The operator the token speaks for.
        #[arg(long)]
        operator: String,
        /// Space-separated scopes.
        #[arg(
            long,
            default_value = "sales:write sales:read payments:write balances:read"
        )]
        scope: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Load benchmark: the real HTTP server on a fresh PostgreSQL database, driven by
    /// concurrent connections making sales, beside pgbench's tpcb-like run.
    Bench {
        /// PostgreSQL server to measure (a fresh database is created on it).
        #[arg(
            long,
            env = "RECAUDO_TEST_DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        postgres_url: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds to drive the server (and to run pgbench).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
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
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::DevToken {
            operator,
            scope,
            ttl,
        } => {
            anyhow::ensure!(
                config.jwt_jwks.is_none(),
                "development tokens are off: RECAUDO_JWT_JWKS is set, so tokens come from the identity provider"
            );
            ledger::OperatorId::parse(&operator)?;
            println!(
                "{}",
                DevKeys::load_or_create()?.mint(&operator, &scope, ttl)?
            );
            Ok(())
        }
        Command::Openapi => {
            print!("{}", openapi_document());
            Ok(())
        }
        Command::Bench {
            postgres_url,
            connections,
            seconds,
        } => {
            online_api::load::run(online_api::load::LoadSettings {
                postgres_url,
                connections,
                seconds,
                settings: config.ledger_settings()?,
            })
            .await
        }
    }
}

/// The verifier the configuration asks for: the identity provider's JWKS, or the
/// development key pair when none is configured.
async fn verifier(config: &Config) -> anyhow::Result<Verifier> {
    let settings = match &config.jwt_jwks {
        Some(jwks) => VerifierSettings {
            issuer: config
                .jwt_issuer
                .clone()
                .context("RECAUDO_JWT_ISSUER is required with RECAUDO_JWT_JWKS")?,
            audience: config
                .jwt_audience
                .clone()
                .context("RECAUDO_JWT_AUDIENCE is required with RECAUDO_JWT_JWKS")?,
            algorithms: parse_algorithms(config.jwt_algorithms.as_deref().unwrap_or("RS256"))
                .map_err(anyhow::Error::msg)?,
            source: JwksSource::parse(jwks).map_err(anyhow::Error::msg)?,
        },
        None => {
            tracing::warn!(
                "DEVELOPMENT MODE: no RECAUDO_JWT_JWKS configured; accepting tokens signed with \
                 the local development key under var/dev-jwt/. Never run like this in production."
            );
            VerifierSettings {
                issuer: DEV_ISSUER.into(),
                audience: DEV_AUDIENCE.into(),
                algorithms: parse_algorithms("ES256").map_err(anyhow::Error::msg)?,
                source: JwksSource::Static(DevKeys::load_or_create()?.jwks),
            }
        }
    };
    Verifier::new(settings).await
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let ledger = ledger::connect(&config.database_url, config.ledger_settings()?)
        .await
        .with_context(|| format!("opening the ledger at {}", redact_url(&config.database_url)))?;
    let money = config.money_rules()?;
    let router = app(
        ledger.clone(),
        verifier(&config).await?,
        money,
        Limits::from_config(&config),
    );
    tokio::spawn(purge_idempotency_keys(ledger));
    let listener = tokio::net::TcpListener::bind(&config.api_addr)
        .await
        .with_context(|| format!("binding {}", config.api_addr))?;
    tracing::info!(addr = %config.api_addr, "recaudo-api listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("recaudo-api stopped");
    Ok(())
}

/// Deletes idempotency records past their retention, hourly.
async fn purge_idempotency_keys(ledger: std::sync::Arc<dyn ledger::Ledger>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = chrono::Utc::now() - chrono::Duration::hours(idempotency::RETENTION_HOURS);
        match ledger.purge_idempotency_keys(before).await {
            Ok(n) => tracing::info!(purged = n, "idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "could not purge idempotency keys"),
        }
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
