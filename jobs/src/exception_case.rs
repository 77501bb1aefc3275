//! `recaudo exceptions`: finance's side of the exception cases (DESIGN.md, Exceptions).
//! Reads take `--json`; every write names the person acting (`--actor` or
//! `RECAUDO_ACTOR`) and fails with exit code 2 without one.

use std::sync::Arc;

use clap::{Args, Subcommand};
use exceptions::{Action, Actor, CaseFilter, CaseState, ExceptionCase, Resolution};
use ledger::{BusinessDate, Ledger};
use settings::Settings;

use crate::{table, usage};

#[derive(Subcommand)]
pub enum ExceptionsCommand {
    /// List exception cases, oldest first; every option narrows the list.
    List(ListArgs),
    /// One case with its whole history.
    Show {
        /// The case id.
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decide a case: adjust-ledger (the file is right), accept-ledger (the ledger is
    /// right) or write-off. A resolution of at least RECAUDO_APPROVAL_THRESHOLD waits for
    /// another person's approval.
    ///
    /// With --date, --operator and --case instead of an id, resolves every OPEN or DISPUTED
    /// case they select: it prints what it would change, and changes it only with --yes.
    Resolve(ResolveArgs),
    /// Approve a proposed resolution (someone else's: nobody approves their own).
    Approve {
        id: i64,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Send a proposed resolution back to OPEN.
    Reject {
        id: i64,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Reopen a resolved case; what its resolution posted is taken back.
    Reopen {
        id: i64,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Recompute the history's hash chain; names the first event that does not match
    /// (exit code 1 then).
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ActorArg {
    /// The person acting, recorded on the case's history.
    #[arg(long, env = "RECAUDO_ACTOR")]
    actor: Option<String>,
}

impl ActorArg {
    fn actor(&self) -> anyhow::Result<Actor> {
        self.actor_for("a case")
    }

    /// The person acting, required: `what` says what the command changes.
    pub fn actor_for(&self, what: &str) -> anyhow::Result<Actor> {
        match self.actor.as_deref() {
            None | Some("") => {
                usage!("this command changes {what}: say who you are with --actor or RECAUDO_ACTOR")
            }
            Some(name) => Ok(Actor::parse(name)?),
        }
    }
}

#[derive(Args)]
pub struct ListArgs {
    /// Business date the cases were found on (YYYY-MM-DD).
    #[arg(long)]
    date: Option<String>,
    #[arg(long)]
    operator: Option<String>,
    /// OPEN, DISPUTED, PENDING_APPROVAL, RESOLVED or CLEARED (repeatable).
    #[arg(long)]
    state: Vec<String>,
    /// The reconciliation case: AMOUNT_MISMATCH, MISSING_IN_LEDGER, TIMING, …
    #[arg(long = "case")]
    case_name: Option<String>,
    /// Only cases found at least this many days ago.
    #[arg(long)]
    older_than: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ResolveArgs {
    /// The case id; or select cases with --date, --operator and --case.
    id: Option<i64>,
    /// adjust-ledger, accept-ledger or write-off.
    #[arg(long = "as")]
    resolution: String,
    /// Why: kept on the case's history.
    #[arg(long)]
    note: String,
    #[arg(long)]
    date: Option<String>,
    #[arg(long)]
    operator: Option<String>,
    #[arg(long = "case")]
    case_name: Option<String>,
    /// Change the cases a bulk resolve selects (without it, only print them).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    actor: ActorArg,
}

/// The approval threshold in minor units of the settled currency.
pub fn approval_threshold(config: &Settings) -> anyhow::Result<i64> {
    let currency = ledger::Currency::parse(&config.money.currency)?;
    Ok(ledger::money::parse_minor(
        "approval_threshold",
        &config.money.approval_threshold,
        currency.exponent(),
    )?)
}

fn today(ledger: &Arc<dyn Ledger>) -> BusinessDate {
    ledger.settings().calendar.business_date(chrono::Utc::now())
}

pub async fn run(
    cmd: ExceptionsCommand,
    ledger: &Arc<dyn Ledger>,
    config: &Settings,
) -> anyhow::Result<std::process::ExitCode> {
    let ok = Ok(std::process::ExitCode::SUCCESS);
    let decide = |id: i64, action: Action, actor: Actor| {
        let ledger = ledger.clone();
        async move {
            let threshold = approval_threshold(config)?;
            let done = exceptions::decide(&*ledger, id, &action, &actor, threshold, None).await?;
            let posted = done
                .transaction_id
                .map_or(String::new(), |t| format!(", posted as transaction {t}"));
            println!(
                "case {id}: {} by {actor}, now {}{posted}",
                done.action, done.case.state
            );
            anyhow::Ok(())
        }
    };
    match cmd {
        ExceptionsCommand::List(a) => {
            let filter = CaseFilter {
                business_date: a.date.as_deref().map(BusinessDate::parse).transpose()?,
                operator_id: a.operator,
                states: a
                    .state
                    .iter()
                    .map(|s| CaseState::parse(s))
                    .collect::<Result<_, _>>()?,
                case_name: a.case_name.map(|c| c.to_ascii_uppercase()),
                older_than: a.older_than.map(|d| (d, today(ledger))),
                ..CaseFilter::default()
            };
            let cases = exceptions::list(ledger.database(), &filter).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&cases)?);
            } else if cases.is_empty() {
                println!("no exception cases match");
            } else {
                print_cases(&cases, today(ledger), ledger.settings().currency.exponent());
            }
        }
        ExceptionsCommand::Show { id, json } => {
            let Some(case) = exceptions::case(ledger.database(), id, None).await? else {
                usage!("exception case {id} not found");
            };
            let history = exceptions::events(ledger.database(), Some(id)).await?;
            if json {
                let both = serde_json::json!({ "case": case, "history": history });
                println!("{}", serde_json::to_string_pretty(&both)?);
            } else {
                let exponent = ledger.settings().currency.exponent();
                print_cases(std::slice::from_ref(&case), today(ledger), exponent);
                if let Some(reason) = &case.dispute_reason {
                    println!("\ndisputed by the operator: {reason}");
                }
                println!();
                let rows: Vec<Vec<String>> = history
                    .iter()
                    .map(|e| {
                        vec![
                            e.seq.to_string(),
                            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            e.actor.clone(),
                            e.action.clone(),
                            format!(
                                "{} -> {}",
                                e.from_state.as_deref().unwrap_or("-"),
                                e.to_state
                            ),
                            e.amount.map_or(String::new(), |a| money(a, exponent)),
                            e.note.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table::print(
                    &["#", "at", "actor", "action", "state", "amount", "note"],
                    &rows,
                );
            }
        }
        ExceptionsCommand::Resolve(a) => {
            let resolution = Resolution::parse(&a.resolution)?;
            let actor = a.actor.actor()?;
            let action = Action::Resolve {
                resolution,
                note: a.note.clone(),
            };
            match (a.id, &a.date, &a.operator, &a.case_name) {
                (Some(id), None, None, None) => decide(id, action, actor).await?,
                (None, Some(date), Some(operator), Some(case_name)) => {
                    let filter = CaseFilter {
                        business_date: Some(BusinessDate::parse(date)?),
                        operator_id: Some(operator.clone()),
                        states: vec![CaseState::Open, CaseState::Disputed],
                        case_name: Some(case_name.to_ascii_uppercase()),
                        ..CaseFilter::default()
                    };
                    let cases = exceptions::list(ledger.database(), &filter).await?;
                    if cases.is_empty() {
                        println!("no OPEN or DISPUTED cases match");
                        return ok;
                    }
                    let exponent = ledger.settings().currency.exponent();
                    let total: i64 = cases.iter().map(|c| c.difference).sum();
                    println!(
                        "{} case(s) of {operator} on {date} ({case_name}), difference {} in all, \
                         would be resolved {resolution}:",
                        cases.len(),
                        money(total, exponent)
                    );
                    print_cases(&cases, today(ledger), exponent);
                    if !a.yes {
                        println!("nothing changed; run again with --yes to resolve them");
                        return ok;
                    }
                    for case in &cases {
                        decide(case.id, action.clone(), actor.clone()).await?;
                    }
                }
                _ => usage!(
                    "give a case id, or --date, --operator and --case together for a bulk \
                     resolve (not both)"
                ),
            }
        }
        ExceptionsCommand::Approve { id, note, actor } => {
            decide(id, Action::Approve { note }, actor.actor()?).await?
        }
        ExceptionsCommand::Reject { id, note, actor } => {
            decide(id, Action::Reject { note }, actor.actor()?).await?
        }
        ExceptionsCommand::Reopen { id, note, actor } => {
            decide(id, Action::Reopen { note }, actor.actor()?).await?
        }
        ExceptionsCommand::Verify { json } => {
            let report = exceptions::verify(ledger.database()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                match &report.first_mismatch {
                    None => println!("the history of {} events is intact", report.events),
                    Some(m) => println!(
                        "the history does not verify: event {} (case {}): {}",
                        m.seq, m.case_id, m.reason
                    ),
                }
            }
            if report.first_mismatch.is_some() {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
    }
    ok
}

fn money(minor: i64, exponent: u8) -> String {
    ledger::money::format_minor(minor, exponent)
}

fn print_cases(cases: &[ExceptionCase], today: BusinessDate, exponent: u8) {
    let amount = |a: Option<i64>| a.map_or("-".to_string(), |a| money(a, exponent));
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                c.id.to_string(),
                c.business_date.to_string(),
                c.operator_id.clone(),
                c.operator_ref.clone(),
                c.case_name.clone(),
                amount(c.ledger_amount),
                amount(c.file_amount),
                money(c.difference, exponent),
                c.state.to_string(),
                c.resolution.map_or(String::new(), |r| r.to_string()),
                c.age_days(today).to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "id",
            "date",
            "operator",
            "ref",
            "case",
            "ledger",
            "file",
            "difference",
            "state",
            "resolution",
            "age",
        ],
        &rows,
    );
}
