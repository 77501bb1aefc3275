//! The reconciliation engine: for one business date, every sale an operator's file claims
//! and every sale our ledger holds ends in exactly one case of DESIGN.md, with both sides'
//! values and the signed difference, and a per-operator summary whose totals must tie out.
//!
//! The engine is pure and columnar (polars): `engine::reconcile` takes the two sides as data
//! frames. Two steps it does itself, each several times faster than polars on these keys:
//! ordering rows by operator and ref (`item_order`, a sort kernel), and finding each key's
//! first line in a file and whether its repeats differ (`file_lines`, one pass over the
//! lines in key order). `source` loads the two sides from the database or from Parquet;
//! `day` reconciles a date from the database in parts, as the job does; `store` persists a
//! run, `output` writes the item files.

pub mod day;
pub mod engine;
mod file_lines;
mod item_order;
pub mod output;
pub mod source;
pub mod store;

pub use day::reconcile_day;
pub use engine::{Case, DayJoin, Reconciliation, reconcile, reconcile_in_parts};
pub use store::RunOutcome;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("dataframe: {0}")]
    Frame(#[from] polars::error::PolarsError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("a stored run cannot be read: {0}")]
    Stored(String),
    #[error("the totals do not tie out for {0}")]
    TieOut(String),
}

impl fault::Fault for ReconcileError {
    /// Only the database can be away for a while; everything else is a bug of ours (a
    /// run that does not tie out included: the engine must always tie out).
    fn blame(&self) -> fault::Blame {
        match self {
            ReconcileError::Database(e) => ledger::error::database_blame(e),
            _ => fault::Blame::Internal,
        }
    }
}
