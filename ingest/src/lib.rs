//! Data in: the operators' daily sales files from object storage, and the field
//! validators' taps from Kafka (or, embedded, from JSON-lines files in a folder). Both take
//! volume, are safe to re-run, and lose nothing: a bad file is rejected whole with a report,
//! a bad event is dead-lettered with its bytes.

pub mod bank_files;
pub mod bank_statement;
pub mod files;
pub mod internal_events;
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
    #[error(
        "Kafka at {brokers} did not answer ({reason}), so the validations cannot be known \
         complete; check the broker and RECAUDO_KAFKA_BROKERS, then run again"
    )]
    KafkaUnreachable { brokers: String, reason: String },
    #[error(
        "the consumer group is still behind the end of {topic} (partition committed/end: \
         {behind}); another member may hold those partitions, run again when it has left"
    )]
    KafkaBehind { topic: String, behind: String },
    #[error("event folder: {0}")]
    Io(#[from] std::io::Error),
}

impl fault::Fault for IngestError {
    fn blame(&self) -> fault::Blame {
        match self {
            IngestError::Storage(e) => e.blame(),
            IngestError::Database(e) => ledger::error::database_blame(e),
            IngestError::Ledger(e) => e.blame(),
            IngestError::Kafka(_)
            | IngestError::KafkaUnreachable { .. }
            | IngestError::KafkaBehind { .. } => fault::Blame::External,
            IngestError::Io(_) => fault::Blame::Internal,
        }
    }

    fn retry(&self) -> fault::RetryHint {
        match self {
            IngestError::Storage(e) => e.retry(),
            other => other.blame().into(),
        }
    }
}
