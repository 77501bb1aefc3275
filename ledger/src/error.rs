//! Errors of the ledger: bad input that names its field, and the outcomes of ledger rules.

use fault::{Blame, Fault};

use crate::business_date::BusinessDate;
use crate::money::Money;

/// Input that does not parse into a domain value. It names the field and says why, so a
/// caller can show it to whoever sent the input (an API client, an operator's file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Everything a ledger operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("operator {0} is not registered")]
    UnknownOperator(String),
    #[error("operator {0} is not active")]
    InactiveOperator(String),
    #[error("operator {0} is already registered")]
    DuplicateOperator(String),
    #[error(
        "terms of operator {operator} cannot take effect on {effective_from}: a date that has \
         begun keeps its terms (today is {today}); give --effective-from after {today}"
    )]
    TermsInThePast {
        operator: String,
        effective_from: BusinessDate,
        today: BusinessDate,
    },
    #[error("{what} {reference} was already recorded with different content ({detail})")]
    Conflict {
        what: &'static str,
        reference: String,
        detail: String,
    },
    #[error("sale {0} not found")]
    SaleNotFound(i64),
    #[error("sale {0} is already voided")]
    AlreadyVoided(i64),
    #[error("sale {sale_id} can no longer be voided: the void window closed at {closed_at}")]
    VoidWindowClosed {
        sale_id: i64,
        closed_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("insufficient balance: the card holds {balance}, {needed} is needed")]
    InsufficientBalance { balance: Money, needed: Money },
    #[error("card {card} is blocked ({reason})")]
    CardBlocked {
        card: String,
        reason: crate::card_status::BlockReason,
    },
    #[error("currency {got} is not the ledger's currency {expected}")]
    WrongCurrency { got: String, expected: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl Fault for InvalidInput {
    fn blame(&self) -> Blame {
        Blame::User
    }
}

impl Fault for LedgerError {
    fn blame(&self) -> Blame {
        match self {
            LedgerError::Database(e) => database_blame(e),
            LedgerError::Migration(_) | LedgerError::Corrupt(_) => Blame::Internal,
            _ => Blame::User,
        }
    }
}

/// Whose a database error is: the database being unavailable or contended is external
/// (worth retrying unchanged); anything else is a bug of ours. Every crate with SQL of its
/// own classifies its database errors with this.
pub fn database_blame(e: &sqlx::Error) -> Blame {
    if is_transient(e) {
        Blame::External
    } else {
        Blame::Internal
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // serialization failure, deadlock, too many connections, admin shutdown,
            // SQLite busy / locked
            Some("40001" | "40P01" | "53300" | "57P01" | "5" | "6" | "517")
        ),
        _ => false,
    }
}
