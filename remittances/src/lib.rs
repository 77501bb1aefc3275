//! Remittances and receivables (DESIGN.md, Bank statements and remittances): the entries of
//! our bank statements (ingested whole by `ingest::bank_files`) are matched to the operators
//! who owe (`matching`: by the payer account registered for the operator, else by the
//! payment reference the settlement line shows, else left unidentified in suspense) and
//! posted through the `Ledger` trait once each. What each operator still owes, and how long
//! past its due date, is `aging`: payments settle the oldest due date first (or the date
//! their reference names), computed as of any date from the settlement lines and the
//! postings, so the day's report and `recaudo receivables` agree.

pub mod aging;
pub mod internal_events;
pub mod matching;
pub mod payer_account;
pub mod store;

pub use aging::{AgingRow, Application, Due, Payment, aging, allocate};
pub use matching::{MatchReport, match_new_entries, payment_reference_in};
pub use store::{
    Remittance, RemittanceFilter, assign, dues_as_of, of_date, payments_as_of, receivables_as_of,
    remittances,
};

use fault::{Blame, Fault};
use ledger::LedgerError;

/// Why a remittance command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RemittanceError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("bank entry {bank_ref} not found{}", .account.as_deref().map(|a| format!(" in account {a}")).unwrap_or_default())]
    EntryNotFound {
        bank_ref: String,
        account: Option<String>,
    },
    #[error(
        "bank entry {bank_ref} is in more than one account ({accounts}); say which with --account"
    )]
    Ambiguous { bank_ref: String, accounts: String },
}

impl From<ledger::InvalidInput> for RemittanceError {
    fn from(e: ledger::InvalidInput) -> RemittanceError {
        RemittanceError::Ledger(e.into())
    }
}

impl Fault for RemittanceError {
    fn blame(&self) -> Blame {
        match self {
            RemittanceError::Ledger(e) => e.blame(),
            RemittanceError::Database(e) => ledger::error::database_blame(e),
            RemittanceError::EntryNotFound { .. } | RemittanceError::Ambiguous { .. } => {
                Blame::User
            }
        }
    }
}
