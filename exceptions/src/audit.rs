//! The history of every case: one event per action (who, when, what, from and to state,
//! note, amount), append-only (database triggers refuse UPDATE and DELETE) and hash-chained
//! across all cases, `hash = sha256(previous hash ‖ canonical event)`, so that a row changed
//! behind the application's back is found by recomputing the chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::case::{CaseId, CaseState};

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventAction {
    Opened,
    Updated,
    Cleared,
    Proposed,
    Resolved,
    Approved,
    Rejected,
    Reopened,
    Disputed,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Opened => "OPENED",
            EventAction::Updated => "UPDATED",
            EventAction::Cleared => "CLEARED",
            EventAction::Proposed => "PROPOSED",
            EventAction::Resolved => "RESOLVED",
            EventAction::Approved => "APPROVED",
            EventAction::Rejected => "REJECTED",
            EventAction::Reopened => "REOPENED",
            EventAction::Disputed => "DISPUTED",
        }
    }
}

/// An event about to be chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub case_id: CaseId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: EventAction,
    pub from_state: Option<CaseState>,
    pub to_state: CaseState,
    pub note: Option<String>,
    /// The amount the action is about: the difference found, or what a decision posted.
    pub amount: Option<i64>,
    pub run_id: Option<String>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CaseEvent {
    pub seq: i64,
    pub case_id: CaseId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: Option<String>,
    pub amount: Option<i64>,
    pub run_id: Option<String>,
    pub hash: String,
}

/// The bytes an event is hashed by: a JSON object with its fields in this order, the time
/// in RFC 3339 with microseconds, UTC.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    case_id: CaseId,
    at: String,
    actor: &'a str,
    action: &'a str,
    from_state: Option<&'a str>,
    to_state: &'a str,
    note: Option<&'a str>,
    amount: Option<i64>,
    run_id: Option<&'a str>,
}

fn chain_hash(previous: &str, canonical: &Canonical<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous.as_bytes());
    hasher.update(serde_json::to_vec(canonical).expect("an event serializes"));
    hex::encode(hasher.finalize())
}

fn at_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl NewEvent {
    /// The event stored as number `seq`, chained to `previous`.
    pub(crate) fn chained(&self, seq: i64, previous: &str) -> CaseEvent {
        let canonical = Canonical {
            seq,
            case_id: self.case_id,
            at: at_text(&self.at),
            actor: &self.actor,
            action: self.action.as_str(),
            from_state: self.from_state.map(CaseState::as_str),
            to_state: self.to_state.as_str(),
            note: self.note.as_deref(),
            amount: self.amount,
            run_id: self.run_id.as_deref(),
        };
        CaseEvent {
            seq,
            case_id: self.case_id,
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.as_str().to_string(),
            from_state: self.from_state.map(|s| s.as_str().to_string()),
            to_state: self.to_state.as_str().to_string(),
            note: self.note.clone(),
            amount: self.amount,
            run_id: self.run_id.clone(),
            hash: chain_hash(previous, &canonical),
        }
    }
}

impl CaseEvent {
    /// The hash this row should have after `previous`, from its stored fields.
    fn recomputed(&self, previous: &str) -> String {
        chain_hash(
            previous,
            &Canonical {
                seq: self.seq,
                case_id: self.case_id,
                at: at_text(&self.at),
                actor: &self.actor,
                action: &self.action,
                from_state: self.from_state.as_deref(),
                to_state: &self.to_state,
                note: self.note.as_deref(),
                amount: self.amount,
                run_id: self.run_id.as_deref(),
            },
        )
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub events: u64,
    /// The first event whose number or hash does not follow from the one before, and why.
    pub first_mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub seq: i64,
    pub case_id: CaseId,
    pub reason: String,
}

/// Walks the chain in order; `head` is what the chain's head row says.
pub(crate) fn walk(events: impl IntoIterator<Item = CaseEvent>, head: (i64, &str)) -> ChainReport {
    let (mut previous, mut expected_seq, mut count) = (GENESIS.to_string(), 1i64, 0u64);
    for event in events {
        count += 1;
        let reason = if event.seq != expected_seq {
            Some(format!(
                "expected event number {expected_seq}, found {}",
                event.seq
            ))
        } else if event.recomputed(&previous) != event.hash {
            Some("its hash does not match its content and the event before it".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            return ChainReport {
                events: count,
                first_mismatch: Some(Mismatch {
                    seq: event.seq,
                    case_id: event.case_id,
                    reason,
                }),
            };
        }
        previous = event.hash;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    let first_mismatch = (head.0 != last || head.1 != previous).then(|| Mismatch {
        seq: head.0,
        case_id: 0,
        reason: format!(
            "the chain's head says event {} but the history ends at event {last}: events were \
             removed",
            head.0
        ),
    });
    ChainReport {
        events: count,
        first_mismatch,
    }
}
