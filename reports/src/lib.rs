//! Settlement reports for finance, published to object storage for one business date:
//! per operator what it sold, its commission and what it owes (`settlement_summary`,
//! `settlement/{operator}.csv`), every discrepancy of the reconciliation
//! (`discrepancies`), fare revenue per transport operator (`fare_distribution`), lost taps
//! (`device_gaps.csv`), the exception cases open at the end of the date
//! (`exceptions_open`) and the adjustments posted on it (`adjustments.csv`), the bank
//! entries posted on it (`remittances.csv`) and what every operator owes by age
//! (`receivables_aging`), a page for
//! people (`index.html`) and a `manifest.json`. A final report's settlement lines are also
//! kept in the database, where the operators' API reads them.
//!
//! `inputs` reads the database, `statement` computes the figures, `files` and `page` render
//! them, `publish` writes a new version. Only the manifest carries a run id and a time, so
//! the same inputs give byte-identical files.

pub mod csv;
pub mod files;
pub mod inputs;
pub mod page;
pub mod publish;
pub mod settlement;
pub mod statement;

use ledger::{BusinessDate, Currency, Ledger};
use storage::ObjectStore;

pub use inputs::ReportInputs;
pub use publish::Published;
pub use statement::{ReportKind, ReportMeta, Statement};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "{0} has not been reconciled yet: run `recaudo reconcile --date {0}` (or `settle`) first"
    )]
    NotReconciled(BusinessDate),
    #[error(
        "the reconciliation of {date} is out of date for {operator}: the ledger's net sales are \
         {ledger} but the current run reconciled {reconciled}; reconcile {date} again (or run \
         settle, which does)"
    )]
    StaleReconciliation {
        date: BusinessDate,
        operator: String,
        /// Decimal amounts with the currency (`2950.00 COP`).
        ledger: String,
        reconciled: String,
    },
    #[error("object storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger: {0}")]
    Ledger(#[from] ledger::LedgerError),
    #[error("reconciliation: {0}")]
    Reconcile(#[from] reconcile::ReconcileError),
    #[error("exception cases: {0}")]
    Exceptions(#[from] exceptions::ExceptionError),
    #[error("remittances: {0}")]
    Remittances(#[from] remittances::RemittanceError),
    #[error("dataframe: {0}")]
    Frame(#[from] polars::error::PolarsError),
}

impl fault::Fault for ReportError {
    fn blame(&self) -> fault::Blame {
        match self {
            ReportError::NotReconciled(_) | ReportError::StaleReconciliation { .. } => {
                fault::Blame::User
            }
            ReportError::Storage(e) => e.blame(),
            ReportError::Database(e) => ledger::error::database_blame(e),
            ReportError::Ledger(e) => e.blame(),
            ReportError::Reconcile(e) => e.blame(),
            ReportError::Exceptions(e) => e.blame(),
            ReportError::Remittances(e) => e.blame(),
            ReportError::Frame(_) => fault::Blame::Internal,
        }
    }

    fn retry(&self) -> fault::RetryHint {
        match self {
            ReportError::Storage(e) => e.retry(),
            other => other.blame().into(),
        }
    }
}

/// Reads the inputs of `date`, renders every file and publishes them: a final report as
/// the date's next version (and the date counts as settled as of when its inputs were
/// read), a provisional one under `reports/{date}/provisional/`. `run_id` is the job run
/// that made it, recorded in the manifest.
pub async fn report(
    ledger: &dyn Ledger,
    store: &dyn ObjectStore,
    date: BusinessDate,
    currency: Currency,
    holidays: Vec<BusinessDate>,
    kind: ReportKind,
    run_id: &str,
) -> Result<(Statement, Published), ReportError> {
    // Read before the inputs: anything that arrives while the report is made moves the
    // date's input counter past it, and makes the date stale.
    let as_of = ledger::journal::now();
    let input_seq = ledger::date_status::input_seq(ledger.database(), date).await?;
    let inputs = inputs::load(ledger, date, currency, holidays).await?;
    let version = match kind {
        ReportKind::Final => Some(publish::next_version(store, &date.to_string()).await?),
        ReportKind::Provisional => None,
    };
    let meta = ReportMeta {
        kind,
        version,
        as_of: as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let mut statement = statement::build(&inputs, meta)?;
    // The date's own lines count as due from the moment this report makes them.
    let dues = statement.dues();
    let lines = Some((date, &dues[..]));
    (statement.remittances, statement.aging) = remittances::of_date(ledger, date, lines).await?;
    let files = files::render(&statement)?;
    let published = publish::publish(store, &inputs, files, &statement.meta, run_id).await?;
    if kind == ReportKind::Final {
        // The settlement goes into the books, and operators read their lines through the
        // API, from here on.
        let lines = statement.published_lines(published.version, as_of);
        let version = i32::try_from(published.version).unwrap_or(i32::MAX);
        ledger
            .publish_settlement_lines(date, version, &lines, as_of)
            .await?;
        // The files and sales come from the reconciliation: the report is only as current
        // as the older of the two reads.
        let seen = input_seq.min(inputs.reconciliation.input_seq.unwrap_or(0));
        ledger::date_status::settled(ledger.database(), date, seen, as_of).await?;
    }
    tracing::info!(
        business_date = %date,
        kind = kind.as_str(),
        version = published.version,
        prefix = %published.prefix,
        "report published"
    );
    Ok((statement, published))
}
