//! The operator-file ingest: discover new objects under `incoming/`, stream-parse each,
//! stage it whole or reject it whole, and move the object out of `incoming/` so it is not
//! seen again. A rejected file goes to `rejected/` with a `.errors.json` report beside it
//! that names every bad line, field and reason.

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use ledger::outbox::{self, EventType, NewEvent};
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
use crate::staging::{EarlierFile, StageTx, Staged, known_sha, record_rejection};

/// The `operator_file.accepted` event of a file taken in.
fn accepted_event(
    key: &str,
    kept_at: &str,
    name: &FileName,
    sha: &str,
    summary: &crate::operator_file::Summary,
    currency: ledger::Currency,
) -> NewEvent {
    let money = |minor| ledger::Money::new(minor, currency).to_decimal_string();
    NewEvent {
        event_type: EventType::OperatorFileAccepted,
        subject: outbox::operator_subject(&name.operator_id),
        operator: Some(name.operator_id.clone()),
        time: Utc::now(),
        data: serde_json::json!({
            "operator_id": name.operator_id.as_str(),
            "object_key": key,
            "kept_at": kept_at,
            "business_date": name.business_date.naive(),
            "seq": name.seq,
            "sha256": sha,
            "records": summary.records,
            "sales_total": money(summary.sales_total),
            "voids_total": money(summary.voids_total),
            "currency": currency.code(),
        }),
    }
}

/// The `operator_file.rejected` event of a file set aside, with its report's first error.
fn rejected_event(
    key: &str,
    kept_at: &str,
    report_key: &str,
    name: Option<&FileName>,
    errors: usize,
    first: Option<&LineError>,
) -> NewEvent {
    NewEvent {
        event_type: EventType::OperatorFileRejected,
        subject: match name {
            Some(n) => outbox::operator_subject(&n.operator_id),
            None => format!("operator_file/{key}"),
        },
        operator: name.map(|n| n.operator_id.clone()),
        time: Utc::now(),
        data: serde_json::json!({
            "operator_id": name.map(|n| n.operator_id.as_str()),
            "object_key": key,
            "kept_at": kept_at,
            "report_key": report_key,
            "business_date": name.map(|n| n.business_date.naive()),
            "errors": errors,
            "first_error": first.map(|e| serde_json::json!({
                "line": e.line,
                "field": e.field,
                "reason": e.reason,
            })),
        }),
    }
}

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

impl FilesReport {
    /// The report of a run's outcomes, by key, in the order given.
    pub fn of(outcomes: impl IntoIterator<Item = (String, FileOutcome)>) -> FilesReport {
        let mut report = FilesReport::default();
        for (key, outcome) in outcomes {
            match outcome {
                FileOutcome::Accepted { records } => {
                    report.records += records;
                    report.accepted.push(key);
                }
                FileOutcome::Rejected { .. } => report.rejected.push(key),
                FileOutcome::Duplicate => report.duplicates.push(key),
            }
        }
        report
    }
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
    /// The earlier object with these same bytes, when that is why this one was set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<&'a EarlierFile>,
}

/// Where an `incoming/…` object is kept once handled: `processed/…` or `rejected/…`, under
/// its own name when that key is free (`bank/incoming/…` goes to `bank/processed/…`). Nothing kept is ever overwritten (a manifest
/// fingerprints those bytes), so another version of the same name is kept beside it with
/// the start of its sha256 in the name.
pub(crate) async fn keep_as(
    store: &dyn ObjectStore,
    key: &str,
    to: &str,
    sha: &str,
) -> Result<String, IngestError> {
    let wanted = match (
        key.strip_prefix("bank/incoming/"),
        key.strip_prefix("incoming/"),
    ) {
        (Some(rest), _) => format!("bank/{to}/{rest}"),
        (None, Some(rest)) => format!("{to}/{rest}"),
        (None, None) => format!("{to}/{key}"),
    };
    if is_free(store, &wanted).await? {
        return Ok(wanted);
    }
    let (stem, ext) = match wanted.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => (stem, format!(".{ext}")),
        _ => (wanted.as_str(), String::new()),
    };
    Ok(format!("{stem}.{}{ext}", &sha[..16]))
}

pub(crate) async fn is_free(store: &dyn ObjectStore, key: &str) -> Result<bool, IngestError> {
    match store.head(key).await {
        Ok(_) => Ok(false),
        Err(storage::StorageError::NotFound(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Moves `key` to `target`, unless `target` already holds it (its name carries the same
/// sha256, or an earlier run moved it before it crashed): then the copy under `incoming/`
/// is only removed.
pub(crate) async fn move_to(
    store: &dyn ObjectStore,
    key: &str,
    target: &str,
) -> Result<(), IngestError> {
    if is_free(store, target).await? {
        store.rename(key, target).await?;
    } else {
        store.delete(key).await?;
    }
    Ok(())
}

/// Operators whose files go in at the same time on PostgreSQL: staging one file keeps about
/// one of the server's cores busy (its COPY and index upkeep) while this process mostly
/// waits, so two at once nearly double the rate on a two-core host (BENCHMARKS.md, settle).
/// SQLite takes one writer at a time.
const CONCURRENT_OPERATORS: usize = 2;

/// Ingests every object under `incoming/`. Each operator's files go in key order (date,
/// then sequence), one after another, since a later sequence supersedes an earlier one;
/// different operators' files are independent and go in side by side. The report lists
/// the keys in key order.
pub async fn ingest_files(
    store: &dyn ObjectStore,
    ledger: &dyn Ledger,
    rules: MoneyRules,
) -> Result<FilesReport, IngestError> {
    let mut by_operator: Vec<Vec<String>> = Vec::new();
    for object in store.list("incoming/").await? {
        let operator = |key: &str| key.split('/').nth(1).map(str::to_string);
        match by_operator.last_mut() {
            Some(keys) if operator(&keys[0]) == operator(&object.key) => keys.push(object.key),
            _ => by_operator.push(vec![object.key]),
        }
    }
    let concurrent = match ledger.database() {
        ledger::Database::Postgres(_) => CONCURRENT_OPERATORS,
        ledger::Database::Sqlite(_) => 1,
    };
    let outcomes: Vec<Vec<(String, FileOutcome)>> = futures::stream::iter(by_operator)
        .map(|keys| async move {
            let mut outcomes = Vec::with_capacity(keys.len());
            for key in keys {
                let outcome = ingest_file(store, ledger, rules, &key).await?;
                outcomes.push((key, outcome));
            }
            Ok::<_, IngestError>(outcomes)
        })
        .buffered(concurrent)
        .try_collect()
        .await?;
    Ok(FilesReport::of(outcomes.into_iter().flatten()))
}

/// A whole-file error found before a line is read: the key, or the operator it names.
fn file_error(field: &str, reason: String) -> [LineError; 1] {
    [LineError {
        line: 0,
        field: Some(field.into()),
        reason,
    }]
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
    let db = ledger.database();
    let name = match FileName::parse(key) {
        Ok(n) => n,
        Err(reason) => {
            let sha = sha_of(store, key).await?;
            reject(store, key, &sha, &file_error("object_key", reason), 1, None)
                .run(db)
                .await?;
            OperatorFileRejected { key, errors: 1 }.emit();
            return Ok(FileOutcome::Rejected { errors: 1 });
        }
    };
    // Only a registered, active operator's file can be settled: anything else would show
    // its rows as exceptions of an operator with no settlement line.
    let not_allowed = match ledger.operator(&name.operator_id).await? {
        None => Some(format!(
            "operator {} is not registered; register it (recaudo operators add) and send \
             the file again",
            name.operator_id
        )),
        Some(op) if !op.active => Some(format!(
            "operator {} is not active; files of an inactive operator are not settled",
            name.operator_id
        )),
        Some(_) => None,
    };
    if let Some(reason) = not_allowed {
        // Kept with its report but not remembered by its bytes: once the operator is
        // registered (or active again), the same file sent again goes in.
        let sha = sha_of(store, key).await?;
        let errors = file_error("operator_id", reason);
        reject(store, key, &sha, &errors, 1, None)
            .of(&name)
            .run(db)
            .await?;
        OperatorFileRejected { key, errors: 1 }.emit();
        return Ok(FileOutcome::Rejected { errors: 1 });
    }
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
            if let Some(outcome) = already_seen(store, db, key, &sha).await? {
                return Ok(outcome);
            }
            reject(store, key, &sha, &errors, count, None)
                .of(&name)
                .remember(now)
                .run(db)
                .await?;
            OperatorFileRejected { key, errors: count }.emit();
            Ok(FileOutcome::Rejected { errors: count })
        }
        Ok(summary) => {
            tx.records(file_id, &currency, &batch).await?;
            let target = keep_as(store, key, "processed", &sha).await?;
            let event = accepted_event(key, &target, &name, &sha, &summary, rules.currency);
            match tx.accept(file_id, &sha, &target, &summary, &event).await? {
                Staged::Accepted { .. } => {
                    store.rename(key, &target).await?;
                    OperatorFileAccepted {
                        key,
                        records: summary.records,
                    }
                    .emit();
                    Ok(FileOutcome::Accepted {
                        records: summary.records,
                    })
                }
                Staged::Duplicate => Ok(already_seen(store, db, key, &sha)
                    .await?
                    .unwrap_or(FileOutcome::Duplicate)),
                Staged::SeqTaken(earlier) => {
                    let errors = file_error(
                        "seq",
                        format!(
                            "{} already accepted sequence {:03} for {} with other bytes \
                             (sha256 {}, kept at {}); send the corrected file with a higher \
                             sequence, such as {:03}",
                            name.operator_id,
                            name.seq,
                            name.business_date,
                            earlier.sha256,
                            earlier.kept_at,
                            earlier.next_seq,
                        ),
                    );
                    reject(store, key, &sha, &errors, 1, None)
                        .of(&name)
                        .remember(now)
                        .run(db)
                        .await?;
                    OperatorFileRejected { key, errors: 1 }.emit();
                    Ok(FileOutcome::Rejected { errors: 1 })
                }
            }
        }
    }
}

/// When these bytes were ingested before: the same object again (sent twice, or a run
/// that stopped before moving it) is only moved out of `incoming/`; the same bytes under
/// another key are set aside in `rejected/` with a report naming the earlier object.
/// `None` when the bytes are new.
async fn already_seen(
    store: &dyn ObjectStore,
    db: ledger::Database<'_>,
    key: &str,
    sha: &str,
) -> Result<Option<FileOutcome>, IngestError> {
    let Some(earlier) = known_sha(db, sha).await? else {
        return Ok(None);
    };
    if earlier.object_key == key {
        move_to(store, key, &earlier.kept_at).await?;
    } else {
        let name = FileName::parse(key).ok();
        let mut rejection = reject(store, key, sha, &[], 0, Some(&earlier));
        if let Some(name) = &name {
            rejection = rejection.of(name);
        }
        rejection.run(db).await?;
    }
    OperatorFileAlreadyIngested { key }.emit();
    Ok(Some(FileOutcome::Duplicate))
}

async fn sha_of(store: &dyn ObjectStore, key: &str) -> Result<String, IngestError> {
    let mut body = store.get(key).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Sets a file aside in `rejected/` with its error report, when `.run()` (see
/// [`Rejection::run`]).
fn reject<'a>(
    store: &'a dyn ObjectStore,
    key: &'a str,
    sha: &'a str,
    errors: &'a [LineError],
    count: usize,
    duplicate_of: Option<&'a EarlierFile>,
) -> Rejection<'a> {
    Rejection {
        store,
        key,
        sha,
        errors,
        count,
        duplicate_of,
        name: None,
        remember: None,
    }
}

/// A rejection about to be carried out.
struct Rejection<'a> {
    store: &'a dyn ObjectStore,
    key: &'a str,
    sha: &'a str,
    errors: &'a [LineError],
    count: usize,
    duplicate_of: Option<&'a EarlierFile>,
    /// Whose file it is, when its name says.
    name: Option<&'a FileName>,
    remember: Option<chrono::DateTime<Utc>>,
}

impl<'a> Rejection<'a> {
    fn of(mut self, name: &'a FileName) -> Rejection<'a> {
        self.name = Some(name);
        self
    }

    /// Also records the file (by its bytes) in the database, so the same bytes again change
    /// nothing and the page lists it. Needs [`Rejection::of`].
    fn remember(mut self, now: chrono::DateTime<Utc>) -> Rejection<'a> {
        self.remember = Some(now);
        self
    }

    /// Writes the error report, records the file (with its `operator_file.rejected` event;
    /// a file not recorded gets its event on its own), then moves it: a crash at any point
    /// leaves the file in `incoming/`, and the next run finishes the job (the same bytes,
    /// recorded, are only moved to where the row says). Returns where the file is kept.
    async fn run(self, db: ledger::Database<'_>) -> Result<String, IngestError> {
        let Rejection {
            store,
            key,
            sha,
            errors,
            count,
            duplicate_of,
            name,
            remember,
        } = self;
        let target = keep_as(store, key, "rejected", sha).await?;
        let note = match duplicate_of {
            Some(earlier) => Some(format!(
                "these bytes were received before as {} ({}, kept at {}); this copy changed \
                 nothing",
                earlier.object_key, earlier.status, earlier.kept_at
            )),
            None => (count > MAX_ERRORS)
                .then(|| format!("only the first {MAX_ERRORS} of {count} errors are listed")),
        };
        let report = ErrorReport {
            object_key: key,
            sha256: sha,
            rejected_at: Utc::now().to_rfc3339(),
            error_count: count,
            errors,
            note,
            duplicate_of,
        };
        let body = serde_json::to_vec_pretty(&report).expect("a report serializes");
        let report_key = format!("{target}.errors.json");
        if is_free(store, &report_key).await? {
            store.put(&report_key, body.into()).await?;
        }
        let event = rejected_event(key, &target, &report_key, name, count, errors.first());
        match (remember, name) {
            (Some(now), Some(name)) => {
                record_rejection(db, key, &target, name, sha, count, now, &event).await?
            }
            _ => crate::staging::write_event(db, &event).await?,
        }
        move_to(store, key, &target).await?;
        Ok(target)
    }
}
