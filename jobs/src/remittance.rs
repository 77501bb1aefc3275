//! `recaudo remittances` and `recaudo receivables`: the money operators paid, and what they
//! still owe by age (DESIGN.md, Bank statements and remittances). Reads take `--json`; an
//! assignment names the person who made it.

use std::sync::Arc;

use clap::{Args, Subcommand};
use ledger::{BusinessDate, Ledger, OperatorId};
use settings::Settings;

use crate::exception_case::ActorArg;

#[derive(Subcommand)]
pub enum RemittancesCommand {
    /// The bank entries posted, and what each paid (oldest due date first, or the date its
    /// reference named).
    List(ListArgs),
    /// Give an unidentified deposit (waiting in suspense) to the operator who made it.
    ///
    /// Example: recaudo remittances assign 2026112900042 --operator OP001 --actor ana
    Assign {
        /// The bank's reference of the entry (AcctSvcrRef, or bank_ref in a CSV).
        bank_ref: String,
        #[arg(long)]
        operator: String,
        /// Our account the entry is in, when the reference is in more than one.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Args)]
pub struct ListArgs {
    /// Business date the entries were posted in (YYYY-MM-DD).
    #[arg(long)]
    date: Option<String>,
    #[arg(long)]
    operator: Option<String>,
    /// Only deposits still unidentified.
    #[arg(long)]
    unidentified: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReceivablesArgs {
    /// The business date whose end the aging is as of (default: today).
    #[arg(long)]
    as_of: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn money(config: &Settings) -> anyhow::Result<impl Fn(i64) -> String> {
    let exponent = ledger::MoneyRules::from_settings(&config.money)?
        .currency
        .exponent();
    Ok(move |minor| ledger::money::format_minor(minor, exponent))
}

fn today(ledger: &Arc<dyn Ledger>) -> BusinessDate {
    ledger.settings().calendar.business_date(chrono::Utc::now())
}

pub async fn run(
    cmd: RemittancesCommand,
    ledger: &Arc<dyn Ledger>,
    config: &Settings,
) -> anyhow::Result<()> {
    let fmt = money(config)?;
    match cmd {
        RemittancesCommand::List(a) => {
            let filter = remittances::RemittanceFilter {
                on: a
                    .date
                    .as_deref()
                    .map(|d| BusinessDate::parse_as("--date", d))
                    .transpose()?,
                operator: a.operator,
                unidentified: a.unidentified,
            };
            // A date's list says what was known at its end, as its report does.
            let as_of = filter.on.unwrap_or_else(|| today(ledger));
            let rows = remittances::remittances(&**ledger, &filter, as_of, None).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!(
                    "no bank entries posted match; statements go in with `recaudo run ingest-bank`"
                );
                return Ok(());
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.business_date.to_string(),
                        r.bank_account.clone(),
                        r.bank_ref.clone(),
                        r.booking_date.to_string(),
                        r.direction.clone(),
                        fmt(r.amount),
                        r.payer_name.clone().unwrap_or_default(),
                        r.reference.clone().unwrap_or_default(),
                        r.operator_id.clone().unwrap_or_else(|| "-".into()),
                        r.matched_by.clone().unwrap_or_else(|| "-".into()),
                        r.applied_to_text(&fmt),
                    ]
                })
                .collect();
            crate::table::print(
                &[
                    "posted",
                    "account",
                    "bank ref",
                    "booked",
                    "direction",
                    "amount",
                    "payer",
                    "reference",
                    "operator",
                    "matched by",
                    "applied to",
                ],
                &table,
            );
        }
        RemittancesCommand::Assign {
            bank_ref,
            operator,
            account,
            actor,
        } => {
            let actor = actor.actor_for("what an operator owes")?;
            let operator = OperatorId::parse(&operator)?;
            let receipt = remittances::assign(
                &**ledger,
                &bank_ref,
                account.as_deref(),
                &operator,
                actor.as_str(),
                chrono::Utc::now(),
            )
            .await?;
            match receipt.replayed {
                true => println!(
                    "bank entry {bank_ref} was assigned to {operator} before; nothing changed"
                ),
                false => println!(
                    "bank entry {bank_ref} ({}) assigned to {operator} by {actor} \
                     (transaction {})",
                    fmt(receipt.amount),
                    receipt.transaction_id
                ),
            }
        }
    }
    Ok(())
}

/// `recaudo receivables`: per operator, owed, not yet due and overdue by bucket.
pub async fn receivables(
    args: ReceivablesArgs,
    ledger: &Arc<dyn Ledger>,
    config: &Settings,
) -> anyhow::Result<()> {
    let as_of = match args.as_of.as_deref() {
        Some(d) => BusinessDate::parse_as("--as-of", d)?,
        None => today(ledger),
    };
    let rows = remittances::receivables_as_of(&**ledger, as_of, None).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "as_of": as_of.to_string(),
                "operators": rows,
            }))?
        );
        return Ok(());
    }
    println!("receivables as of the end of {as_of}");
    print_aging(&rows, &money(config)?);
    Ok(())
}

/// The aging table, as the CLI and the demo print it.
pub fn print_aging(rows: &[remittances::AgingRow], fmt: &dyn Fn(i64) -> String) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.operator_id.clone(),
                fmt(r.owed),
                fmt(r.not_due),
                fmt(r.days_1_30),
                fmt(r.days_31_60),
                fmt(r.days_61_90),
                fmt(r.over_90),
                fmt(r.credit),
                r.oldest_due.map(|d| d.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "operator",
            "owed",
            "not due",
            "1-30",
            "31-60",
            "61-90",
            ">90",
            "credit",
            "oldest due",
        ],
        &table,
    );
}
