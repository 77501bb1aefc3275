//! What a case is: its key, the discrepancy as last found, its state and decision, and the
//! names the CLI, the API and the reports use for them.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessDate, InvalidInput};
use serde::Serialize;

/// A case's id, as people type it.
pub type CaseId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseState {
    Open,
    Disputed,
    PendingApproval,
    Resolved,
    Cleared,
}

impl CaseState {
    pub const ALL: [CaseState; 5] = [
        CaseState::Open,
        CaseState::Disputed,
        CaseState::PendingApproval,
        CaseState::Resolved,
        CaseState::Cleared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "OPEN",
            CaseState::Disputed => "DISPUTED",
            CaseState::PendingApproval => "PENDING_APPROVAL",
            CaseState::Resolved => "RESOLVED",
            CaseState::Cleared => "CLEARED",
        }
    }

    /// `OPEN`, `open` or `pending-approval` alike.
    pub fn parse(text: &str) -> Result<CaseState, InvalidInput> {
        let wanted = text.trim().replace('-', "_").to_ascii_uppercase();
        CaseState::ALL
            .into_iter()
            .find(|s| s.as_str() == wanted)
            .ok_or_else(|| {
                InvalidInput::new(
                    "state",
                    format!(
                        "{text:?} is not a state (OPEN, DISPUTED, PENDING_APPROVAL, RESOLVED, \
                         CLEARED)"
                    ),
                )
            })
    }

    /// Nobody has decided it yet: runs may still change or clear it.
    pub fn is_undecided(self) -> bool {
        matches!(
            self,
            CaseState::Open | CaseState::Disputed | CaseState::PendingApproval
        )
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// The file is right: an adjustment makes the ledger's side equal the file's.
    AdjustLedger,
    /// The ledger is right: nothing is posted; the operator must correct its file.
    AcceptLedger,
    /// The difference is not recovered: it is posted to `writeoff:{op}`.
    WriteOff,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [
        Resolution::AdjustLedger,
        Resolution::AcceptLedger,
        Resolution::WriteOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::AdjustLedger => "ADJUST_LEDGER",
            Resolution::AcceptLedger => "ACCEPT_LEDGER",
            Resolution::WriteOff => "WRITE_OFF",
        }
    }

    /// `adjust-ledger` (the CLI's spelling) or `ADJUST_LEDGER` alike.
    pub fn parse(text: &str) -> Result<Resolution, InvalidInput> {
        let wanted = text.trim().replace('-', "_").to_ascii_uppercase();
        Resolution::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| {
                InvalidInput::new(
                    "as",
                    format!(
                        "{text:?} is not a resolution (adjust-ledger, accept-ledger, write-off)"
                    ),
                )
            })
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acts: a person on the CLI (`--actor`), `system` for a reconciliation run, or an
/// operator's token through the API (`operator:{id}:{sub}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor(String);

impl Actor {
    pub const SYSTEM: &'static str = "system";

    pub fn parse(text: &str) -> Result<Actor, InvalidInput> {
        let text = text.trim();
        if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "actor",
                "must name the person acting: 1 to 200 characters, no control characters",
            ));
        }
        Ok(Actor(text.to_string()))
    }

    /// The reconciliation runs.
    pub fn system() -> Actor {
        Actor(Actor::SYSTEM.to_string())
    }

    /// An operator's token through the API.
    pub fn operator(operator: &ledger::OperatorId, subject: &str) -> Result<Actor, InvalidInput> {
        Actor::parse(&format!("operator:{operator}:{subject}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One case as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionCase {
    pub id: CaseId,
    pub business_date: NaiveDate,
    pub operator_id: String,
    pub operator_ref: String,
    /// The reconciliation case as last found (`AMOUNT_MISMATCH`, `TIMING`, …).
    pub case_name: String,
    pub ledger_card_id: Option<String>,
    pub file_card_id: Option<String>,
    pub ledger_amount: Option<i64>,
    pub file_amount: Option<i64>,
    /// Ledger − file, the absent side counting 0.
    pub difference: i64,
    pub state: CaseState,
    /// Decided, or proposed while PENDING_APPROVAL.
    pub resolution: Option<Resolution>,
    pub proposed_by: Option<String>,
    /// How many resolutions have been decided; names each decision's posting.
    pub decisions: i32,
    /// The correction the standing resolution posted.
    pub transaction_id: Option<i64>,
    pub dispute_reason: Option<String>,
    pub evidence_ref: Option<String>,
    pub opened_run: String,
    pub last_run: String,
    pub cleared_run: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ExceptionCase {
    /// Whole days from the case's business date to `today` (never negative).
    pub fn age_days(&self, today: BusinessDate) -> i64 {
        (today.naive() - self.business_date).num_days().max(0)
    }
}

/// Which cases `list` returns; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub business_date: Option<BusinessDate>,
    pub operator_id: Option<String>,
    pub states: Vec<CaseState>,
    pub case_name: Option<String>,
    /// Cases whose business date is at least this many days before `today`.
    pub older_than: Option<(u32, BusinessDate)>,
    /// Keyset pagination: cases with a greater id.
    pub after: Option<CaseId>,
    pub limit: Option<u32>,
}
