//! The jobs of recaudo and every operation ops runs, as a library: the `recaudo` binary is
//! its command line, and the benchmarks reuse its pieces (`recaudo-bench`).

pub mod card;
pub mod data_in;
pub mod dead_letters;
pub mod demo;
pub mod exception_case;
pub mod internal_events;
pub mod job;
pub mod job_lock;
pub mod job_run;
pub mod operators;
pub mod ops;
pub mod reconciliation;
pub mod relay;
pub mod remittance;
pub mod runner;
pub mod schedule;
pub mod table;

use anyhow::Context;
use settings::Settings;

/// A command asked for in a way it cannot run (a missing or impossible option): the
/// process exits 2, as for any usage error, and nothing was done.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Fails with a [`UsageError`] built like `format!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::UsageError(format!($($arg)*)).into())
    };
}

/// The exit code of a failed command: 2 when the command line was wrong (a usage error, an
/// option that does not parse), 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let usage = error.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<ledger::InvalidInput>()
            || matches!(
                cause.downcast_ref::<ledger::LedgerError>(),
                Some(ledger::LedgerError::Invalid(_) | ledger::LedgerError::TermsInThePast { .. })
            )
    });
    if usage { 2 } else { 1 }
}

/// Connects to the configured database and applies pending migrations.
pub async fn open_ledger(config: &Settings) -> anyhow::Result<std::sync::Arc<dyn ledger::Ledger>> {
    let ledger_settings = ledger::LedgerSettings::from_settings(config)?;
    ledger::connect(config.database.url.expose(), ledger_settings)
        .await
        .with_context(|| format!("opening the ledger at {}", config.database.url))
}

/// mimalloc's `purge_delay` option (ms; -1 never).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets up mimalloc (the binaries' allocator, which polars recommends over the system's)
/// for the engine: purging hands freed pages back to the OS, and the engine's next part
/// faults them straight back in, so freed pages are kept for reuse and a process keeps its
/// peak until it exits (BENCHMARKS.md, reconciliation engine). `MIMALLOC_PURGE_DELAY` in the
/// environment, mimalloc's own setting, wins: ops trading time for memory. Call first thing
/// in `main`, before any thread starts.
pub fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets a process-wide allocator option before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
