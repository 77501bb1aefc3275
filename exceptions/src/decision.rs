//! What people decide, as pure rules: given a case and an action, the case's next state,
//! the event that records it and the correction it posts, if any. The store applies a plan
//! in one database transaction, the case's row locked, so a decision happens once.
//!
//! What each resolution posts (DESIGN.md, Ledger; difference d = ledger − file):
//! - ADJUST_LEDGER makes the ledger's side equal the file's: `card −d`, `receivable +d` (the
//!   missing sale posted to the file's card, the amount difference, the void); for a
//!   CARD_MISMATCH, the amount moves from the ledger's card to the file's. A TIMING case
//!   clears by itself and a DUPLICATE_IN_FILE has no single file side: neither is adjusted.
//! - WRITE_OFF posts the difference to `writeoff:{op}`: `receivable +d`, `writeoff −d`.
//! - ACCEPT_LEDGER posts nothing.
//!
//! Adjustments earn no commission: commission is computed on the operator's sales as they
//! were sold, and a correction is not a sale (README, Finance: exceptions).

use chrono::{DateTime, Utc};
use ledger::correction::{CorrectionAccount, CorrectionKind, NewCorrection};
use ledger::{CardId, InvalidInput, OperatorId};

use crate::ExceptionError;
use crate::audit::{EventAction, NewEvent};
use crate::case::{Actor, CaseState, ExceptionCase, Resolution};

/// A person's (or an operator's) action on one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Resolve {
        resolution: Resolution,
        note: String,
    },
    Approve {
        note: Option<String>,
    },
    Reject {
        note: String,
    },
    Reopen {
        note: String,
    },
    Dispute {
        reason: String,
        evidence_ref: Option<String>,
    },
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Resolve { .. } => "resolve",
            Action::Approve { .. } => "approve",
            Action::Reject { .. } => "reject",
            Action::Reopen { .. } => "reopen",
            Action::Dispute { .. } => "dispute",
        }
    }
}

/// A decision planned: the case as it will be, its event, and the correction to post.
#[derive(Debug, Clone)]
pub struct Plan {
    pub case: ExceptionCase,
    pub event: NewEvent,
    pub correction: Option<NewCorrection>,
}

/// What a decision did, for the one who asked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decided {
    pub case: ExceptionCase,
    pub action: &'static str,
    /// The ledger transaction the decision posted, if it posted one.
    pub transaction_id: Option<i64>,
}

const NOTE_LIMIT: usize = 2_000;

fn note(field: &'static str, text: &str) -> Result<String, InvalidInput> {
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidInput::new(field, "is required: say why"));
    }
    if text.len() > NOTE_LIMIT || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(InvalidInput::new(
            field,
            format!("at most {NOTE_LIMIT} characters, no control characters"),
        ));
    }
    Ok(text.to_string())
}

/// The moves `resolution` posts for `case`, and the amount the approval threshold is
/// compared with (the largest posting). ACCEPT_LEDGER moves nothing.
pub fn moves(
    case: &ExceptionCase,
    resolution: Resolution,
) -> Result<Vec<(CorrectionAccount, i64)>, ExceptionError> {
    let not = |reason: &'static str| ExceptionError::NotApplicable {
        id: case.id,
        case_name: case.case_name.clone(),
        resolution,
        reason,
    };
    let card = |id: &Option<String>| -> Result<CardId, ExceptionError> {
        let id = id.as_deref().ok_or_else(|| not("the case names no card"))?;
        CardId::parse(id).map_err(|e| ExceptionError::Corrupt(format!("case {}: {e}", case.id)))
    };
    let d = case.difference;
    match resolution {
        Resolution::AcceptLedger => Ok(Vec::new()),
        Resolution::AdjustLedger => match case.case_name.as_str() {
            "TIMING" => Err(not(
                "its other side is on an adjacent date; it clears when that date is reconciled",
            )),
            "DUPLICATE_IN_FILE" => Err(not(
                "the file holds the key more than once, so there is no one file side to adopt",
            )),
            "CARD_MISMATCH" => {
                let amount = case.ledger_amount.unwrap_or(0);
                if amount == 0 {
                    return Err(not("there is no amount to move between cards"));
                }
                let (from, to) = (card(&case.ledger_card_id)?, card(&case.file_card_id)?);
                Ok(vec![
                    (CorrectionAccount::Card(from), -amount),
                    (CorrectionAccount::Card(to), amount),
                ])
            }
            _ if d == 0 => Err(not("the two sides' amounts agree")),
            _ => {
                let on = if case.ledger_card_id.is_some() {
                    &case.ledger_card_id
                } else {
                    &case.file_card_id
                };
                Ok(vec![
                    (CorrectionAccount::Card(card(on)?), -d),
                    (CorrectionAccount::Receivable, d),
                ])
            }
        },
        Resolution::WriteOff if d == 0 => Err(not("there is no difference to write off")),
        Resolution::WriteOff => Ok(vec![
            (CorrectionAccount::Receivable, d),
            (CorrectionAccount::WriteOff, -d),
        ]),
    }
}

/// The document a decision's correction is posted under: once per case and decision.
pub fn document(case: &ExceptionCase, decision: i32) -> String {
    format!("exception:{}:{decision}", case.id)
}

fn correction(
    case: &ExceptionCase,
    resolution: Resolution,
    document: String,
    moves: Vec<(CorrectionAccount, i64)>,
    actor: &Actor,
    at: DateTime<Utc>,
) -> Result<Option<NewCorrection>, ExceptionError> {
    if moves.is_empty() {
        return Ok(None);
    }
    Ok(Some(NewCorrection {
        kind: match resolution {
            Resolution::WriteOff => CorrectionKind::WriteOff,
            _ => CorrectionKind::Adjustment,
        },
        document,
        operator_id: OperatorId::parse(&case.operator_id)
            .map_err(|e| ExceptionError::Corrupt(format!("case {}: {e}", case.id)))?,
        actor: actor.as_str().to_string(),
        moves,
        at,
    }))
}

/// The largest amount `moves` post: what the approval threshold is compared with.
fn size(moves: &[(CorrectionAccount, i64)], case: &ExceptionCase) -> i64 {
    moves
        .iter()
        .map(|(_, a)| a.abs())
        .max()
        .unwrap_or(case.difference.abs())
}

/// Plans `action` by `actor` on `case` (as locked), `threshold` the approval threshold in
/// minor units.
pub fn plan(
    case: &ExceptionCase,
    action: &Action,
    actor: &Actor,
    threshold: i64,
    at: DateTime<Utc>,
) -> Result<Plan, ExceptionError> {
    let wrong = |needs: &'static str| ExceptionError::WrongState {
        id: case.id,
        state: case.state,
        action: action.name(),
        needs,
    };
    let mut next = case.clone();
    next.updated_at = at;
    let event =
        |action: EventAction, to: CaseState, note: Option<String>, amount: Option<i64>| NewEvent {
            case_id: case.id,
            at,
            actor: actor.as_str().to_string(),
            action,
            from_state: Some(case.state),
            to_state: to,
            note,
            amount,
            run_id: None,
        };
    let plan = match action {
        Action::Resolve {
            resolution,
            note: text,
        } => {
            if !matches!(case.state, CaseState::Open | CaseState::Disputed) {
                return Err(wrong("OPEN or DISPUTED"));
            }
            let text = note("note", text)?;
            let moves = moves(case, *resolution)?;
            let amount = size(&moves, case);
            next.resolution = Some(*resolution);
            if !moves.is_empty() && amount >= threshold {
                next.state = CaseState::PendingApproval;
                next.proposed_by = Some(actor.as_str().to_string());
                let event = event(EventAction::Proposed, next.state, Some(text), Some(amount));
                Plan {
                    case: next,
                    event,
                    correction: None,
                }
            } else {
                next.state = CaseState::Resolved;
                next.proposed_by = None;
                next.decisions += 1;
                let correction = correction(
                    case,
                    *resolution,
                    document(case, next.decisions),
                    moves,
                    actor,
                    at,
                )?;
                let posted = correction.as_ref().map(|_| amount);
                let event = event(EventAction::Resolved, next.state, Some(text), posted);
                Plan {
                    case: next,
                    event,
                    correction,
                }
            }
        }
        Action::Approve { note: text } => {
            if case.state != CaseState::PendingApproval {
                return Err(wrong("PENDING_APPROVAL"));
            }
            let proposer = case.proposed_by.as_deref().unwrap_or_default();
            if proposer == actor.as_str() {
                return Err(ExceptionError::OwnApproval {
                    id: case.id,
                    actor: actor.as_str().to_string(),
                });
            }
            let resolution = case.resolution.ok_or_else(|| {
                ExceptionError::Corrupt(format!("case {} proposes nothing", case.id))
            })?;
            let text = match text {
                Some(t) => Some(note("note", t)?),
                None => None,
            };
            let moves = moves(case, resolution)?;
            let amount = size(&moves, case);
            next.state = CaseState::Resolved;
            next.decisions += 1;
            let correction = correction(
                case,
                resolution,
                document(case, next.decisions),
                moves,
                actor,
                at,
            )?;
            let event = event(EventAction::Approved, next.state, text, Some(amount));
            Plan {
                case: next,
                event,
                correction,
            }
        }
        Action::Reject { note: text } => {
            if case.state != CaseState::PendingApproval {
                return Err(wrong("PENDING_APPROVAL"));
            }
            let text = note("note", text)?;
            next.state = CaseState::Open;
            next.resolution = None;
            next.proposed_by = None;
            let event = event(EventAction::Rejected, next.state, Some(text), None);
            Plan {
                case: next,
                event,
                correction: None,
            }
        }
        Action::Reopen { note: text } => {
            if case.state != CaseState::Resolved {
                return Err(wrong("RESOLVED"));
            }
            let text = note("note", text)?;
            // What the standing resolution posted is taken back, so that the next
            // resolution starts from the books as they were before it.
            let reversal = match (case.resolution, case.transaction_id) {
                (Some(resolution), Some(_)) => {
                    let back = moves(case, resolution)?
                        .into_iter()
                        .map(|(account, amount)| (account, -amount))
                        .collect();
                    let document = format!("{}:reversal", document(case, case.decisions));
                    correction(case, resolution, document, back, actor, at)?
                }
                _ => None,
            };
            next.state = CaseState::Open;
            next.resolution = None;
            next.proposed_by = None;
            next.transaction_id = None;
            let amount = reversal.as_ref().map(|c| size(&c.moves, case));
            let event = event(EventAction::Reopened, next.state, Some(text), amount);
            Plan {
                case: next,
                event,
                correction: reversal,
            }
        }
        Action::Dispute {
            reason,
            evidence_ref,
        } => {
            if !matches!(case.state, CaseState::Open | CaseState::Disputed) {
                return Err(wrong("OPEN or DISPUTED"));
            }
            let reason = note("reason", reason)?;
            let evidence = match evidence_ref.as_deref().map(str::trim) {
                Some("") | None => None,
                Some(e) if e.len() > 500 || e.chars().any(char::is_control) => {
                    return Err(InvalidInput::new(
                        "evidence_ref",
                        "at most 500 characters, no control characters",
                    )
                    .into());
                }
                Some(e) => Some(e.to_string()),
            };
            next.state = CaseState::Disputed;
            next.dispute_reason = Some(reason.clone());
            next.evidence_ref = evidence.clone();
            let text = match &evidence {
                Some(e) => format!("{reason} (evidence: {e})"),
                None => reason,
            };
            let event = event(EventAction::Disputed, next.state, Some(text), None);
            Plan {
                case: next,
                event,
                correction: None,
            }
        }
    };
    Ok(plan)
}
