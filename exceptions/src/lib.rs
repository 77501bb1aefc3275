//! Exception cases (DESIGN.md, Exceptions): every non-MATCHED item of a date's current
//! reconciliation run is a case, one per key for its whole life. Runs open, update and
//! clear cases (`sync`); people decide them (`decision`): a resolution, maker-checker
//! approval over a threshold, reopening, an operator's dispute. Adjustments and write-offs
//! are ledger corrections posted in the same database transaction as the decision, once
//! per decision. Every action is an event in an append-only, hash-chained history
//! (`audit`) that `verify` recomputes.

pub mod as_of;
pub mod audit;
pub mod case;
pub mod decision;
mod news;
mod store;
pub mod sync;

pub use as_of::{OpenCase, case_of_document, open_at_end_of};
pub use audit::{CaseEvent, ChainReport};
pub use case::{Actor, CaseFilter, CaseId, CaseState, ExceptionCase, Resolution};
pub use decision::{Action, Decided};
pub use store::{case, cases_by_id, decide, events, list, verify};
pub use sync::{Found, SyncReport, sync_found, sync_run};

use fault::{Blame, Fault};
use ledger::{InvalidInput, LedgerError};

/// Why an exception command did not happen. The user's mistakes say which case and why;
/// the database's and the ledger's failures keep their own blame.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionError {
    #[error("exception case {0} not found")]
    NotFound(i64),
    #[error("exception case {id} is {state}: {action} needs a case that is {needs}")]
    WrongState {
        id: i64,
        state: CaseState,
        action: &'static str,
        needs: &'static str,
    },
    #[error(
        "exception case {id}: {actor} proposed this resolution and cannot approve it; another \
         person must"
    )]
    OwnApproval { id: i64, actor: String },
    #[error("exception case {id} ({case_name}): {resolution} does not apply: {reason}")]
    NotApplicable {
        id: i64,
        case_name: String,
        resolution: Resolution,
        reason: &'static str,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored exception data is inconsistent: {0}")]
    Corrupt(String),
}

impl Fault for ExceptionError {
    fn blame(&self) -> Blame {
        match self {
            ExceptionError::Ledger(e) => e.blame(),
            ExceptionError::Database(e) => ledger::error::database_blame(e),
            ExceptionError::Corrupt(_) => Blame::Internal,
            _ => Blame::User,
        }
    }
}
