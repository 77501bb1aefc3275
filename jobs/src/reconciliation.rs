//! `recaudo reconcile --date D`: one reconciliation run for a business date, saved as the
//! date's current run, with a summary table per operator.

use std::path::PathBuf;

use clap::Args;
use ledger::BusinessDate;
use ledger::config::Config;
use ledger::money::format_minor;
use polars::prelude::IntoLazy;

#[derive(Args)]
pub struct ReconcileArgs {
    /// The business date to reconcile.
    #[arg(long)]
    pub date: String,
    /// Also write items.parquet, items.csv and summary.csv under this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(args: ReconcileArgs, config: &Config) -> anyhow::Result<()> {
    let date = BusinessDate::parse(&args.date)?;
    let ledger = crate::open_ledger(config).await?;
    let (ledger_side, file_side) = reconcile::source::load(ledger.database(), date).await?;
    let result = reconcile::reconcile(
        ledger_side.lazy(),
        file_side.lazy(),
        reconcile::source::days(date),
    )?;
    let run_id = reconcile::store::save_run(ledger.database(), date, &result).await?;
    if let Some(out) = &args.out {
        result.write(out)?;
    }
    let exponent = config.currency()?.exponent();
    let s = &result.summary;
    let mut rows = Vec::new();
    for i in 0..s.height() {
        let int = |name: &str| {
            s.column(name)
                .ok()
                .and_then(|c| c.i64().ok()?.get(i))
                .unwrap_or(0)
        };
        let matched = int("matched_count");
        let total: i64 = reconcile::Case::ALL
            .iter()
            .map(|c| int(&format!("{}_count", c.as_str().to_lowercase())))
            .sum();
        rows.push(vec![
            s.column("operator_id")?
                .str()?
                .get(i)
                .unwrap_or_default()
                .to_string(),
            matched.to_string(),
            (total - matched).to_string(),
            format_minor(int("ledger_total"), exponent),
            format_minor(int("file_total"), exponent),
            format_minor(int("exceptions_difference"), exponent),
        ]);
    }
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
