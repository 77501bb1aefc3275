//! `recaudo cards`: the back office's view of cards and its blocks (DESIGN.md, Hotlists).
//! Riders report cards at operators through the API; here a person blocks for FRAUD (or a
//! rider's reason), lifts blocks (only the back office does), and reads a card's status
//! with its whole history, or the list of blocked cards. Reads take `--json`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use ledger::card_status::{BlockReason, CardStatus, NewBlock, NewUnblock, StatusChange};
use ledger::{CardId, Ledger};
use serde_json::{Value, json};

use crate::exception_case::ActorArg;
use crate::usage;

#[derive(Subcommand)]
pub enum CardsCommand {
    /// Block a card: FRAUD (the back office's own reason), or LOST, STOLEN or DAMAGED for a
    /// rider who called in.
    ///
    /// Example: recaudo cards block CARD0000123456 --reason FRAUD --note "case 812" --actor ana
    Block {
        card: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Lift a card's block (a REPLACED card stays blocked: its balance is the new card's).
    ///
    /// Example: recaudo cards unblock CARD0000123456 --note "found by the rider" --actor ana
    Unblock {
        card: String,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// A card's status, balance, replacement and every change of its status.
    Show {
        card: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The blocked cards, in card order.
    List(ListArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// List the blocked cards (the only list there is: every card ever seen would be
    /// millions).
    #[arg(long)]
    blocked: bool,
    /// Only cards blocked for this reason.
    #[arg(long)]
    reason: Option<String>,
    /// At most this many (after --after).
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// Start after this card number (the last one of the page before).
    #[arg(long)]
    after: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn card_arg(text: &str) -> anyhow::Result<CardId> {
    match CardId::parse(text) {
        Ok(card) => Ok(card),
        Err(e) => usage!("CARD: {e}"),
    }
}

pub async fn run(cmd: CardsCommand, ledger: &Arc<dyn Ledger>) -> anyhow::Result<()> {
    match cmd {
        CardsCommand::Block {
            card,
            reason,
            note,
            actor,
        } => {
            let reason = match BlockReason::parse(&reason) {
                Ok(r) if r.set_by_people() => r,
                _ => usage!("--reason: one of FRAUD, LOST, STOLEN, DAMAGED"),
            };
            let actor = actor.actor_for("a card's status")?.to_string();
            let outcome = ledger
                .block_card(&NewBlock {
                    card: card_arg(&card)?,
                    reason,
                    at: chrono::Utc::now(),
                    operator: None,
                    actor,
                    note,
                })
                .await?;
            let s = &outcome.status;
            match (&s.block, outcome.changed) {
                (Some(b), true) => println!("card {} blocked {}", s.card_id, b.reason),
                (Some(b), false) => println!(
                    "card {} was already blocked {} since {}: nothing changed",
                    s.card_id, b.reason, b.since
                ),
                (None, _) => println!("card {} is not blocked", s.card_id),
            }
        }
        CardsCommand::Unblock { card, note, actor } => {
            let actor = actor.actor_for("a card's status")?.to_string();
            let outcome = ledger
                .unblock_card(&NewUnblock {
                    card: card_arg(&card)?,
                    at: chrono::Utc::now(),
                    actor,
                    note,
                })
                .await?;
            if outcome.changed {
                println!("card {} unblocked", outcome.status.card_id);
            } else {
                println!(
                    "card {} was not blocked: nothing changed",
                    outcome.status.card_id
                );
            }
        }
        CardsCommand::Show { card, json } => {
            let card = card_arg(&card)?;
            let status = ledger.card_status(&card).await?;
            let history = ledger.card_history(&card).await?;
            if json {
                let mut v = status_json(&status);
                v["history"] = history.iter().map(change_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            print_status(&status, &history);
        }
        CardsCommand::List(a) => {
            if !a.blocked {
                usage!("say --blocked: the blocked cards are the list there is");
            }
            let reason = match a.reason.as_deref().map(BlockReason::parse).transpose() {
                Ok(r) => r,
                Err(e) => usage!("--reason: {}", e.reason),
            };
            let after = a.after.as_deref().map(card_arg).transpose()?;
            let rows = ledger
                .blocked_cards(reason, after.as_ref(), a.limit.clamp(1, 1_000_000))
                .await?;
            if a.json {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|b| {
                        json!({
                            "card_id": b.card_id.as_str(),
                            "reason": b.reason.as_str(),
                            "blocked_since": b.since,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            if rows.is_empty() {
                println!("no card is blocked");
                return Ok(());
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|b| {
                    vec![
                        b.card_id.to_string(),
                        b.reason.to_string(),
                        b.since.to_rfc3339(),
                    ]
                })
                .collect();
            crate::table::print(&["card", "reason", "blocked since"], &table);
        }
    }
    Ok(())
}

fn replacement_json(r: &ledger::card_status::Replacement) -> Value {
    json!({
        "old_card_id": r.old_card.as_str(),
        "new_card_id": r.new_card.as_str(),
        "operator_id": r.operator_id.as_str(),
        "actor": r.actor,
        "requested_at": r.requested_at,
        "transfer_after": r.transfer_after,
        "transferred_at": r.transferred_at,
        "amount": r.amount.map(|a| a.to_decimal_string()),
        "transaction_id": r.transaction_id,
    })
}

fn status_json(s: &CardStatus) -> Value {
    json!({
        "card_id": s.card_id.as_str(),
        "status": if s.block.is_some() { "BLOCKED" } else { "ACTIVE" },
        "reason": s.block.as_ref().map(|b| b.reason.as_str()),
        "blocked_since": s.block.as_ref().map(|b| b.since),
        "balance": s.balance.to_decimal_string(),
        "currency": s.balance.currency.code(),
        "flagged": s.flagged,
        "replaced_by": s.replaced_by.as_ref().map(replacement_json),
        "replaces": s.replaces.as_ref().map(replacement_json),
    })
}

fn change_json(c: &StatusChange) -> Value {
    json!({
        "id": c.id,
        "action": c.action,
        "reason": c.reason.as_str(),
        "at": c.at,
        "operator_id": c.operator_id,
        "actor": c.actor,
        "note": c.note,
        "transaction_id": c.transaction_id,
    })
}

fn print_status(s: &CardStatus, history: &[StatusChange]) {
    match &s.block {
        Some(b) => println!("card {}: BLOCKED {} since {}", s.card_id, b.reason, b.since),
        None => println!("card {}: ACTIVE", s.card_id),
    }
    println!(
        "balance {} {}{}",
        s.balance.to_decimal_string(),
        s.balance.currency,
        if s.flagged {
            " (validations took it below zero)"
        } else {
            ""
        }
    );
    let moved = |r: &ledger::card_status::Replacement| match (r.transferred_at, r.amount) {
        (Some(at), Some(amount)) => format!("{} moved at {at}", amount.to_decimal_string()),
        _ => format!("balance moves after {}", r.transfer_after),
    };
    if let Some(r) = &s.replaced_by {
        println!(
            "replaced by {} (asked at {} by {} {}; {})",
            r.new_card,
            r.requested_at,
            r.operator_id,
            r.actor,
            moved(r)
        );
    }
    if let Some(r) = &s.replaces {
        println!("replaces {} ({})", r.old_card, moved(r));
    }
    if history.is_empty() {
        println!("no change of status");
        return;
    }
    let table: Vec<Vec<String>> = history
        .iter()
        .map(|c| {
            vec![
                c.at.to_rfc3339(),
                c.action.clone(),
                c.reason.to_string(),
                c.operator_id.clone().unwrap_or_else(|| "-".into()),
                c.actor.clone(),
                c.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::table::print(
        &["at", "action", "reason", "operator", "by", "note"],
        &table,
    );
}
