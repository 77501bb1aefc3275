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

pub async fn run(args: ReconcileArgs, config: &Settings) -> anyhow::Result<()> {
    let date = BusinessDate::parse(&args.date)?;
    let ledger = crate::open_ledger(config).await?;
    let input_seq = ledger::date_status::input_seq(ledger.database(), date).await?;
    let (ledger_side, file_side) = reconcile::source::load(ledger.database(), date).await?;
    let result = reconcile::reconcile(
        ledger_side.lazy(),
        file_side.lazy(),
        reconcile::source::days(date),
    )?;
    let run_id = reconcile::store::save_run(ledger.database(), date, &result).await?;
    reconcile::store::record_input_seq(ledger.database(), &run_id, input_seq).await?;
    let currency = ledger::MoneyRules::from_settings(&config.money)?.currency;
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
