//! The ledger of recaudo: domain types that parse instead of validate (money, identifiers,
//! business dates, operators), and the double-entry journal of sales, voids, fare payments
//! and field validations, on PostgreSQL (production) or SQLite (the embedded default).

pub mod backend;
pub mod business_date;
pub mod card_status;
pub mod copy_text;
pub mod correction;
pub mod date_status;
pub mod deposit;
pub mod device_gap;
pub mod discrepancy;
pub mod error;
pub mod hotlist_violation;
pub mod idempotency;
pub mod ids;
pub mod journal;
pub mod money;
pub mod operator;
pub mod outbox;
pub mod postgres;
mod reads;
pub mod receivable;
mod rows;
pub mod settlement_line;
pub mod sqlite;

pub use backend::{Backend, Database, Ledger, LedgerSettings, connect};
pub use business_date::{BusinessCalendar, BusinessDate};
pub use error::{InvalidInput, LedgerError};
pub use fault::{Blame, Fault, RetryHint};
pub use ids::{
    CardId, DeviceId, OperatorId, OperatorRef, PaymentRef, PointOfSale, RouteId,
    TransportOperatorId,
};
pub use money::{Currency, Money, MoneyRules, Rate};
pub use operator::{Operator, OperatorName, OperatorPatch, TermsVersion, VoidWindow};
