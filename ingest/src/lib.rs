//! Data in: the operators' daily sales files from object storage, and the field
//! validators' taps from Kafka (or, embedded, from JSON-lines files in a folder). Both take
//! volume, are safe to re-run, and lose nothing: a bad file is rejected whole with a report,
//! a bad event is dead-lettered with its bytes.

pub mod files;
pub mod operator_file;
pub mod staging;
pub mod validations;

pub use files::{FileOutcome, FilesReport, ingest_file, ingest_files};

/// Why an ingest run stopped. Bad input never stops a run (it is rejected or
/// dead-lettered); these are failures of the systems around it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("object storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger: {0}")]
    Ledger(#[from] ledger::LedgerError),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("event folder: {0}")]
    Io(#[from] std::io::Error),
}

impl IngestError {
    /// True when the same run may succeed later (an external system is down).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Storage(e) => e.is_retryable(),
            IngestError::Database(e) => ledger::error::is_transient(e),
            IngestError::Ledger(e) => e.is_retryable(),
            IngestError::Kafka(_) => true,
            _ => false,
        }
    }
}
