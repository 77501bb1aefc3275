//! The operator-file ingest: discover new objects under `incoming/`, stream-parse each,
//! stage it whole or reject it whole, and move the object out of `incoming/` so it is not
//! seen again. A rejected file goes to `rejected/` with a `.errors.json` report beside it
//! that names every bad line, field and reason.

use chrono::Utc;
use futures::StreamExt;
use ledger::{Ledger, MoneyRules};
use serde::Serialize;
use settings::telemetry::InternalEvent;
use sha2::{Digest, Sha256};
use storage::ObjectStore;

use crate::IngestError;
use crate::internal_events::{
    OperatorFileAccepted, OperatorFileAlreadyIngested, OperatorFileRejected,
};
use crate::operator_file::{FileName, LineError, LineSplitter, MAX_ERRORS, Parser, Piece, Record};
use crate::staging::{StageTx, Staged, known_sha, record_rejection};

/// Records staged per database round trip.
const BATCH: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Accepted {
        records: u64,
    },
    Rejected {
        errors: usize,
    },
    /// The same bytes were ingested before: nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FilesReport {
    pub accepted: Vec<String>,
    pub rejected: Vec<String>,
    pub duplicates: Vec<String>,
    pub records: u64,
}

#[derive(Serialize)]
struct ErrorReport<'a> {
    object_key: &'a str,
    sha256: &'a str,
    rejected_at: String,
    error_count: usize,
    errors: &'a [LineError],
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Where an `incoming/…` object goes once handled: `processed/…` or `rejected/…`.
fn moved(key: &str, to: &str) -> String {
    format!("{to}/{}", key.strip_prefix("incoming/").unwrap_or(key))
}

/// Ingests every object under `incoming/`, in key order (operator, date, sequence).
pub async fn ingest_files(
    store: &dyn ObjectStore,
    ledger: &dyn Ledger,
    rules: MoneyRules,
) -> Result<FilesReport, IngestError> {
    let mut report = FilesReport::default();
    for object in store.list("incoming/").await? {
        let key = object.key;
        match ingest_file(store, ledger, rules, &key).await? {
            FileOutcome::Accepted { records } => {
                report.records += records;
                report.accepted.push(key);
            }
            FileOutcome::Rejected { .. } => report.rejected.push(key),
            FileOutcome::Duplicate => report.duplicates.push(key),
        }
    }
    Ok(report)
}

/// Ingests one object. Failures of the store or the database leave the object in
/// `incoming/` and the database as it was, so the run can simply be repeated.
pub async fn ingest_file(
    store: &dyn ObjectStore,
    ledger: &dyn Ledger,
    rules: MoneyRules,
    key: &str,
) -> Result<FileOutcome, IngestError> {
    let now = Utc::now();
    let name = match FileName::parse(key) {
        Ok(n) => n,
        Err(reason) => {
            let errors = [LineError {
                line: 0,
                field: Some("object_key".into()),
                reason,
            }];
            let sha = sha_of(store, key).await?;
            reject(store, key, &sha, &errors, 1).await?;
            OperatorFileRejected { key, errors: 1 }.emit();
            return Ok(FileOutcome::Rejected { errors: 1 });
        }
    };
    let db = ledger.database();
    let (mut tx, file_id) = StageTx::begin(db, key, &name, now).await?;
    let mut parser = Parser::new(name.clone(), rules);
    let mut splitter = LineSplitter::default();
    let mut hasher = Sha256::new();
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let currency = rules.currency.code().to_string();
    let mut body = match store.get(key).await {
        Ok(b) => b,
        Err(e) => {
            tx.abandon().await?;
            return Err(e.into());
        }
    };
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                tx.abandon().await?;
                return Err(e.into());
            }
        };
        hasher.update(&chunk);
        splitter.feed(&chunk, |piece| match piece {
            Piece::Line(line) => batch.extend(parser.push_line(line)),
            Piece::TooLong => parser.too_long(),
        });
        if batch.len() >= BATCH {
            tx.records(file_id, &currency, &batch).await?;
            batch.clear();
        }
    }
    splitter.finish(|piece| match piece {
        Piece::Line(line) => batch.extend(parser.push_line(line)),
        Piece::TooLong => parser.too_long(),
    });
    let sha = hex::encode(hasher.finalize());
    match parser.finish() {
        Err((errors, count)) => {
            tx.abandon().await?;
            if known_sha(db, &sha).await? {
                store.rename(key, &moved(key, "rejected")).await?;
                OperatorFileAlreadyIngested { key }.emit();
                return Ok(FileOutcome::Duplicate);
            }
            reject(store, key, &sha, &errors, count).await?;
            record_rejection(db, key, &name, &sha, count, now).await?;
            OperatorFileRejected { key, errors: count }.emit();
            Ok(FileOutcome::Rejected { errors: count })
        }
        Ok(summary) => {
            tx.records(file_id, &currency, &batch).await?;
            let outcome = match tx.accept(file_id, &sha, &summary).await? {
                Staged::Accepted { .. } => FileOutcome::Accepted {
                    records: summary.records,
                },
                Staged::Duplicate { .. } => FileOutcome::Duplicate,
            };
            store.rename(key, &moved(key, "processed")).await?;
            match outcome {
                FileOutcome::Accepted { records } => OperatorFileAccepted { key, records }.emit(),
                _ => OperatorFileAlreadyIngested { key }.emit(),
            }
            Ok(outcome)
        }
    }
}

async fn sha_of(store: &dyn ObjectStore, key: &str) -> Result<String, IngestError> {
    let mut body = store.get(key).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Writes the error report first, then moves the file: a crash in between leaves the file
/// in `incoming/`, to be rejected again on the next run.
async fn reject(
    store: &dyn ObjectStore,
    key: &str,
    sha: &str,
    errors: &[LineError],
    count: usize,
) -> Result<(), IngestError> {
    let target = moved(key, "rejected");
    let report = ErrorReport {
        object_key: key,
        sha256: sha,
        rejected_at: Utc::now().to_rfc3339(),
        error_count: count,
        errors,
        note: (count > MAX_ERRORS)
            .then(|| format!("only the first {MAX_ERRORS} of {count} errors are listed")),
    };
    let body = serde_json::to_vec_pretty(&report).expect("a report serializes");
    store
        .put(&format!("{target}.errors.json"), body.into())
        .await?;
    store.rename(key, &target).await?;
    Ok(())
}
