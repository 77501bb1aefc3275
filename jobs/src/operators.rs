//! `recaudo operators`: the registry of recharge operators, managed by ops.

use std::sync::Arc;

use clap::{Args, Subcommand};
use ledger::{
    BusinessDate, Ledger, Operator, OperatorId, OperatorName, OperatorPatch, Rate, VoidWindow,
};

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
    ///
    /// Terms (commission, tax, void window, settlement lag) change from a business date on
    /// (--effective-from, default the next business date): statements of earlier dates keep
    /// the terms they were made with. A name or active flag changes at once.
    ///
    /// --payer-account registers the bank account the operator pays from: a credit from it
    /// is the operator's whatever its text says (it needs --actor or RECAUDO_ACTOR).
    Set(SetArgs),
    /// The bank accounts registered as operators' payer accounts, with who registered each.
    PayerAccounts {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One operator: its terms, and its webhook endpoint with whether deliveries go out.
    Show {
        /// Operator id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every version of an operator's terms, with the date each took effect.
    Terms {
        /// Operator id.
        id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// The business date (YYYY-MM-DD) from which changed terms are in force; today's or
    /// later. Default: the next business date.
    #[arg(long)]
    effective_from: Option<String>,
    /// A bank account (IBAN or local number) the operator pays from.
    #[arg(long)]
    payer_account: Option<String>,
    #[command(flatten)]
    actor: crate::exception_case::ActorArg,
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
                effective_from: s
                    .effective_from
                    .as_deref()
                    .map(|d| BusinessDate::parse_as("--effective-from", d))
                    .transpose()?,
            };
            if patch.effective_from.is_some() && !patch.changes_terms() {
                crate::usage!(
                    "--effective-from dates a change of terms: give --commission-rate, \
                     --tax-rate, --void-window or --settlement-lag with it"
                );
            }
            let id = OperatorId::parse(&s.id)?;
            if let Some(account) = &s.payer_account {
                let actor = s.actor.actor_for("how payments are matched")?;
                if ledger.operator(&id).await?.is_none() {
                    return Err(ledger::LedgerError::UnknownOperator(id.to_string()).into());
                }
                remittances::payer_account::set(
                    ledger.database(),
                    account,
                    &id,
                    actor.as_str(),
                    chrono::Utc::now(),
                )
                .await?;
                println!("credits from account {account} are now {id}'s (set by {actor})");
                if patch == OperatorPatch::default() {
                    return Ok(());
                }
            }
            if patch == OperatorPatch::default() {
                crate::usage!("nothing to change: give at least one option (see --help)");
            }
            let op = ledger.update_operator(&id, &patch).await?;
            match patch.changes_terms() {
                true => println!(
                    "updated operator {}; its terms from {} on:",
                    op.id,
                    patch
                        .effective_from
                        .map_or_else(|| "the next business date".to_string(), |d| d.to_string())
                ),
                false => println!("updated operator {}", op.id),
            }
            print_table(&[op]);
        }
        OperatorsCommand::PayerAccounts { json } => {
            let accounts = remittances::payer_account::all(ledger.database()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
            } else if accounts.is_empty() {
                println!(
                    "no payer accounts registered; add one with \
                     `recaudo operators set OP --payer-account ACCOUNT`"
                );
            } else {
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|a| {
                        vec![
                            a.account.clone(),
                            a.operator_id.clone(),
                            a.actor.clone(),
                            a.recorded_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        ]
                    })
                    .collect();
                crate::table::print(&["account", "operator", "registered by", "at"], &rows);
            }
        }
        OperatorsCommand::Show { id, json } => {
            let id = OperatorId::parse(&id)?;
            let Some(op) = ledger.operator(&id).await? else {
                crate::usage!("operator {id} is not registered");
            };
            let endpoint = events::webhook::get(ledger.database(), id.as_str()).await?;
            let webhook = endpoint.as_ref().map(|e| {
                serde_json::json!({
                    "url": e.url,
                    "status": e.status().as_str(),
                    "created_by": e.created_by,
                    "updated_at": e.updated_at,
                    "failing_since": e.failing_since,
                    "attempts": e.attempts,
                    "next_attempt_at": e.next_attempt_at,
                    "disabled_at": e.disabled_at,
                    "last_delivered_at": e.last_delivered_at,
                })
            });
            if json {
                let mut value = serde_json::to_value(&op)?;
                value["webhook"] = webhook.unwrap_or(serde_json::Value::Null);
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(());
            }
            print_table(&[op]);
            match endpoint {
                None => println!("webhook: none registered"),
                Some(e) => {
                    println!("webhook: {} ({})", e.url, e.status().as_str());
                    if let Some(at) = e.last_delivered_at {
                        println!("  last delivered: {at}");
                    }
                    if let Some(since) = e.failing_since {
                        println!("  failing since: {since} ({} attempts)", e.attempts);
                    }
                    if let Some(at) = e.next_attempt_at {
                        println!("  next attempt: {at}");
                    }
                    if let Some(at) = e.disabled_at {
                        println!(
                            "  disabled at {at}: it failed for 24 hours; the operator sets it \
                             again with PUT /v1/webhook"
                        );
                    }
                }
            }
        }
        OperatorsCommand::Terms { id, json } => {
            let versions = ledger.terms_versions(&OperatorId::parse(&id)?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&versions)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    let mut row = vec![
                        v.effective_from
                            .map_or_else(|| "registration".into(), |d| d.to_string()),
                    ];
                    row.extend(terms_cells(&v.terms));
                    row
                })
                .collect();
            crate::table::print(
                &[
                    "in force from",
                    "commission",
                    "tax",
                    "void window",
                    "lag (days)",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

fn terms_cells(o: &Operator) -> [String; 4] {
    [
        o.commission_rate.to_string(),
        o.tax_rate.to_string(),
        o.void_window.to_string(),
        o.settlement_lag_days.to_string(),
    ]
}

fn print_table(ops: &[Operator]) {
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|o| {
            let mut row = vec![o.id.to_string(), o.name.to_string()];
            row.extend(terms_cells(o));
            row.push(if o.active { "yes" } else { "no" }.to_string());
            row
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
