//! `recaudo reconcile --date D`: one reconciliation run for a business date, saved as the
//! date's current run, with a summary table per operator.

use std::path::PathBuf;

use clap::Args;
use ledger::BusinessDate;
use ledger::money::format_minor;
use polars::prelude::IntoLazy;
use settings::Settings;

#[derive(Args)]
pub struct ReconcileArgs {
    /// The business date to reconcile.
    #[arg(long)]
    pub date: String,
    /// Also write items.parquet, items.csv and summary.csv under this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Why saving a run failed: the object store or the database.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("writing the run's items: {0}")]
    Store(#[from] storage::StorageError),
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileError),
}

impl fault::Fault for SaveError {
    fn blame(&self) -> fault::Blame {
        match self {
            SaveError::Store(e) => e.blame(),
            SaveError::Reconcile(e) => e.blame(),
        }
    }

    fn retry(&self) -> fault::RetryHint {
        match self {
            SaveError::Store(e) => e.retry(),
            SaveError::Reconcile(e) => e.retry(),
        }
    }
}

/// Saves a run: first its whole item list to the object store as Parquet
/// (`reconciliation/{date}/{run_id}/items.parquet`), then the run, naming that object and
/// its sha256, made current in one transaction. A crash in between leaves an object no run
/// names, never a run without its object.
pub async fn save(
    db: ledger::Database<'_>,
    store: &dyn storage::ObjectStore,
    date: BusinessDate,
    result: &reconcile::Reconciliation,
    currency: ledger::Currency,
    input_seq: i64,
) -> Result<String, SaveError> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let bytes = result.items_parquet(currency)?;
    let sha256 = reports::publish::sha256_hex(&bytes);
    let key = format!("reconciliation/{date}/{run_id}/items.parquet");
    store.put(&key, bytes.into()).await?;
    let record = reconcile::store::RunRecord {
        input_seq: Some(input_seq),
        items_object: Some((key, sha256)),
    };
    reconcile::store::save_run_as(db, date, result, &run_id, &record).await?;
    Ok(run_id)
}

pub async fn run(args: ReconcileArgs, config: &Settings) -> anyhow::Result<()> {
    let date = BusinessDate::parse(&args.date)?;
    let ledger = crate::open_ledger(config).await?;
    let store = crate::data_in::object_store(config).await?;
    let input_seq = ledger::date_status::input_seq(ledger.database(), date).await?;
    let (ledger_side, file_side) = reconcile::source::load(ledger.database(), date).await?;
    let result = reconcile::reconcile(
        ledger_side.lazy(),
        file_side.lazy(),
        reconcile::source::days(date),
    )?;
    let currency = ledger::MoneyRules::from_settings(&config.money)?.currency;
    let run_id = save(
        ledger.database(),
        &*store,
        date,
        &result,
        currency,
        input_seq,
    )
    .await?;
    if let Some(out) = &args.out {
        result.write(out, currency)?;
    }
    let exponent = currency.exponent();
    let rows: Vec<Vec<String>> = result
        .operator_summaries()?
        .into_iter()
        .map(|s| {
            vec![
                s.operator_id.clone(),
                s.matched().to_string(),
                s.exceptions().to_string(),
                format_minor(s.ledger_total, exponent),
                format_minor(s.file_total, exponent),
                format_minor(s.exceptions_difference, exponent),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "operator",
            "matched",
            "exceptions",
            "ledger net",
            "file net",
            "difference",
        ],
        &rows,
    );
    println!("run {run_id} is now the current reconciliation of {date}");
    Ok(())
}
