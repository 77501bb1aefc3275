//! `recaudo operators`: the registry of recharge operators, managed by ops.

use std::sync::Arc;

use clap::{Args, Subcommand};
use ledger::{Ledger, Operator, OperatorId, OperatorName, OperatorPatch, Rate, VoidWindow};

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Register a recharge operator.
    ///
    /// Example: recaudo operators add OP001 --name "Tienda La 14" --commission-rate 0.035
    /// --tax-rate 0.19 --void-window 30m --settlement-lag 1
    Add(AddArgs),
    /// List every operator with its terms.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change an operator's name, terms or active flag; options not given stay as they are.
    Set(SetArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// Operator id, as it appears in tokens and file names (letters, digits, - _ .).
    id: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Commission the operator keeps, as a rate of net sales (0.035 = 3.5%).
    #[arg(long)]
    commission_rate: String,
    /// Tax (VAT) charged on the commission, as a rate of the commission.
    #[arg(long)]
    tax_rate: String,
    /// How long after a sale the operator may void it: 90s, 30m, 2h, 1d (at most 7d).
    #[arg(long, default_value = "30m")]
    void_window: String,
    /// Business days after the business date by which the operator pays.
    #[arg(long, default_value_t = 1)]
    settlement_lag: u16,
    /// Register the operator as inactive (it cannot sell until set active).
    #[arg(long)]
    inactive: bool,
}

#[derive(Args)]
pub struct SetArgs {
    /// Operator id.
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    commission_rate: Option<String>,
    #[arg(long)]
    tax_rate: Option<String>,
    #[arg(long)]
    void_window: Option<String>,
    #[arg(long)]
    settlement_lag: Option<u16>,
    /// true or false: an inactive operator cannot sell, pay or void.
    #[arg(long)]
    active: Option<bool>,
}

pub async fn run(cmd: OperatorsCommand, ledger: &Arc<dyn Ledger>) -> anyhow::Result<()> {
    match cmd {
        OperatorsCommand::Add(a) => {
            let op = Operator {
                id: OperatorId::parse(&a.id)?,
                name: OperatorName::parse(&a.name)?,
                commission_rate: Rate::parse("commission_rate", &a.commission_rate)?,
                tax_rate: Rate::parse("tax_rate", &a.tax_rate)?,
                void_window: VoidWindow::parse(&a.void_window)?,
                settlement_lag_days: a.settlement_lag,
                active: !a.inactive,
            };
            ledger.add_operator(&op).await?;
            println!("registered operator {}", op.id);
            print_table(&[op]);
        }
        OperatorsCommand::List { json } => {
            let ops = ledger.operators().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ops)?);
            } else if ops.is_empty() {
                println!("no operators registered; add one with `recaudo operators add`");
            } else {
                print_table(&ops);
            }
        }
        OperatorsCommand::Set(s) => {
            let patch = OperatorPatch {
                name: s.name.as_deref().map(OperatorName::parse).transpose()?,
                commission_rate: s
                    .commission_rate
                    .as_deref()
                    .map(|r| Rate::parse("commission_rate", r))
                    .transpose()?,
                tax_rate: s
                    .tax_rate
                    .as_deref()
                    .map(|r| Rate::parse("tax_rate", r))
                    .transpose()?,
                void_window: s
                    .void_window
                    .as_deref()
                    .map(VoidWindow::parse)
                    .transpose()?,
                settlement_lag_days: s.settlement_lag,
                active: s.active,
            };
            if patch == OperatorPatch::default() {
                anyhow::bail!("nothing to change: give at least one option (see --help)");
            }
            let op = ledger
                .update_operator(&OperatorId::parse(&s.id)?, &patch)
                .await?;
            println!("updated operator {}", op.id);
            print_table(&[op]);
        }
    }
    Ok(())
}

fn print_table(ops: &[Operator]) {
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            vec![
                o.id.to_string(),
                o.name.to_string(),
                o.commission_rate.to_string(),
                o.tax_rate.to_string(),
                o.void_window.to_string(),
                o.settlement_lag_days.to_string(),
                if o.active { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "id",
            "name",
            "commission",
            "tax",
            "void window",
            "lag (days)",
            "active",
        ],
        &rows,
    );
}
