//! `recaudo-api`: serves the online API, and mints development tokens.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ledger::{LedgerSettings, MoneyRules};
use online_api::auth::{JwksSource, Verifier, VerifierSettings, parse_algorithms};
use online_api::dev_keys::{DEV_AUDIENCE, DEV_ISSUER, DevKeys};
use online_api::{Limits, app, idempotency, openapi_document};
use settings::Settings;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Settings::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    settings::logging::init(config.telemetry.log_format.as_deref(), "info,sqlx=warn");
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

async fn run(command: Command, config: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::DevToken {
            operator,
            scope,
            ttl,
        } => {
            anyhow::ensure!(
                config.jwt.jwks.is_none(),
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
    }
}

/// The verifier the configuration asks for: the identity provider's JWKS, or the
/// development key pair when none is configured.
async fn verifier(config: &Settings) -> anyhow::Result<Verifier> {
    let settings = match &config.jwt.jwks {
        Some(jwks) => VerifierSettings {
            issuer: config
                .jwt
                .issuer
                .clone()
                .context("RECAUDO_JWT_ISSUER is required with RECAUDO_JWT_JWKS")?,
            audience: config
                .jwt
                .audience
                .clone()
                .context("RECAUDO_JWT_AUDIENCE is required with RECAUDO_JWT_JWKS")?,
            algorithms: parse_algorithms(config.jwt.algorithms.as_deref().unwrap_or("RS256"))
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

async fn serve(config: Settings) -> anyhow::Result<()> {
    let ledger = ledger::connect(
        config.database.url.expose(),
        LedgerSettings::from_settings(&config)?,
    )
    .await
    .with_context(|| format!("opening the ledger at {}", config.database.url))?;
    let money = MoneyRules::from_settings(&config.money)?;
    let router = app(
        ledger.clone(),
        verifier(&config).await?,
        money,
        Limits::from_settings(&config.api),
        events::ssrf::Policy {
            allow_private: config.webhooks.allow_private,
        },
    );
    if config.webhooks.allow_private {
        tracing::warn!(
            "RECAUDO_WEBHOOK_ALLOW_PRIVATE is set: webhooks may point at private addresses and http (development only)"
        );
    }
    tokio::spawn(purge_idempotency_keys(ledger));
    let listener = tokio::net::TcpListener::bind(&config.api.addr)
        .await
        .with_context(|| format!("binding {}", config.api.addr))?;
    tracing::info!(addr = %config.api.addr, "recaudo-api listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(settings::signal::shutdown())
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
