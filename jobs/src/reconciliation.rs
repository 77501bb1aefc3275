//! `recaudo reconcile --date D`: one reconciliation run for a business date, saved as the
//! date's current run, with a summary table per operator.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use sha2::Digest;

use clap::Args;
use ledger::BusinessDate;
use ledger::money::format_minor;
use settings::Settings;

#[derive(Args)]
pub struct ReconcileArgs {
    /// The business date to reconcile.
    #[arg(long)]
    pub date: String,
    /// Also write items.parquet, items.csv and summary.csv under this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Why saving a run failed: the object store or the database.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("writing the run's items: {0}")]
    Store(#[from] storage::StorageError),
    #[error(transparent)]
    Reconcile(#[from] reconcile::ReconcileError),
    #[error("the run's item file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the run's exception cases: {0}")]
    Exceptions(#[from] exceptions::ExceptionError),
}

impl fault::Fault for SaveError {
    fn blame(&self) -> fault::Blame {
        match self {
            SaveError::Store(e) => e.blame(),
            SaveError::Reconcile(e) => e.blame(),
            SaveError::Io(_) => fault::Blame::Internal,
            SaveError::Exceptions(e) => e.blame(),
        }
    }

    fn retry(&self) -> fault::RetryHint {
        match self {
            SaveError::Store(e) => e.retry(),
            SaveError::Reconcile(e) => e.retry(),
            SaveError::Io(_) => fault::Blame::Internal.into(),
            SaveError::Exceptions(e) => e.retry(),
        }
    }
}

/// Reconciles `date` from the database one range of operators at a time and saves the run:
/// first its whole item list to the object store as Parquet
/// (`reconciliation/{date}/{run_id}/items.parquet`), uploaded part by part as the engine
/// produces them, then the run, naming that object and its sha256, made current in one
/// transaction. A failed run uploads nothing; a crash in between leaves an object no run
/// names, never a run without its object. The date's exception cases then follow the new
/// current run (opened, updated, cleared); should that fail, the run stands and the next run
/// of the date brings the cases in line. With `out`, the item and summary files are also
/// written there.
pub async fn reconcile_and_save(
    db: ledger::Database<'_>,
    store: &dyn storage::ObjectStore,
    date: BusinessDate,
    currency: ledger::Currency,
    out: Option<&Path>,
) -> Result<(String, reconcile::RunOutcome), SaveError> {
    // Read before the inputs: input that commits while they are read moves it on.
    let input_seq = ledger::date_status::input_seq(db, date)
        .await
        .map_err(reconcile::ReconcileError::Database)?;
    if let Some(out) = out {
        std::fs::create_dir_all(out)?;
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let key = format!("reconciliation/{date}/{run_id}/items.parquet");
    // Unbounded, so the encoder never waits for the upload (the engine waits for the
    // encoder, and the upload is polled by the same task as the engine): at most the item
    // file's bytes are buffered when the store is slower than the encoder.
    let (chunks, upload) =
        tokio::sync::mpsc::unbounded_channel::<Result<bytes::Bytes, storage::StorageError>>();
    let copy = match out {
        Some(dir) => Some(std::fs::File::create(dir.join("items.parquet"))?),
        None => None,
    };
    let mut items = reconcile::output::ItemWriter::new(
        std::io::BufWriter::with_capacity(
            1 << 20,
            Upload {
                chunks: chunks.clone(),
                copy,
            },
        ),
        out.map(|dir| dir.join("items.csv")).as_deref(),
        currency,
    )?;
    // The item file is encoded on a thread of its own as the parts come, so the engine
    // seldom waits for the Parquet encoder, and uploaded as it is encoded, hashed on the way.
    let (parts, received) = std::sync::mpsc::sync_channel::<polars::prelude::DataFrame>(1);
    let writer = std::thread::spawn(move || -> Result<(), reconcile::ReconcileError> {
        for part in received {
            items.append(&part)?;
        }
        items.finish()
    });
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(sha2::Sha256::new()));
    let body = {
        let hasher = hasher.clone();
        tokio_stream_of(upload).inspect_ok(move |chunk| {
            hasher
                .lock()
                .expect("the hasher is not poisoned")
                .update(chunk);
        })
    };
    let mut writer_stopped = false;
    let reconciled = async {
        let outcome = reconcile::reconcile_day(db, date, reconcile::engine::PART_ROWS, |part| {
            parts.send(part).map_err(|_| {
                writer_stopped = true;
                reconcile::ReconcileError::Stored("the item writer stopped".into())
            })
        })
        .await;
        drop(parts);
        let written = tokio::task::spawn_blocking(move || writer.join())
            .await
            .expect("joining the item writer")
            .expect("the item writer does not panic");
        if outcome.is_err() || written.is_err() {
            // The upload fails rather than keep a partial item file.
            let _ = chunks.send(Err(storage::StorageError::Io {
                op: "write",
                key: "the run's item file".into(),
                source: std::io::Error::other("the reconciliation failed"),
            }));
        }
        drop(chunks);
        (outcome, written)
    };
    let (uploaded, (outcome, written)) =
        tokio::join!(store.put_stream(&key, Box::pin(body)), reconciled);
    // What went wrong first: the run itself (the database, the engine), else the store,
    // which stops the writer and then the run, else the writer.
    let outcome = match (outcome, uploaded, written) {
        (Ok(outcome), Ok(()), Ok(())) => outcome,
        (Err(e), _, _) if !writer_stopped => return Err(failed(e.into(), out)),
        (_, Err(e), _) => return Err(failed(e.into(), out)),
        (_, _, Err(e)) => return Err(failed(e.into(), out)),
        (Err(e), _, _) => return Err(failed(e.into(), out)),
    };
    let sha256 = hex::encode(
        std::mem::take(&mut *hasher.lock().expect("the hasher is not poisoned")).finalize(),
    );
    let record = reconcile::store::RunRecord {
        input_seq: Some(input_seq),
        items_object: Some((key, sha256)),
    };
    reconcile::store::save_run_as(db, date, &outcome, &run_id, &record).await?;
    let found = outcome
        .exception_rows()?
        .into_iter()
        .map(|item| exceptions::Found {
            operator_id: item.operator_id.to_string(),
            operator_ref: item.operator_ref.to_string(),
            case_name: item.case.to_string(),
            ledger_card_id: item.ledger_card_id.map(str::to_string),
            file_card_id: item.file_card_id.map(str::to_string),
            ledger_amount: item.ledger_amount,
            file_amount: item.file_amount,
            difference: item.difference,
        })
        .collect();
    exceptions::sync_found(db, date, &run_id, found, currency).await?;
    if let Some(out) = out {
        reconcile::output::write_summary(&outcome.summary, &out.join("summary.csv"), currency)?;
    }
    Ok((run_id, outcome))
}

/// The upload's side of the item file: each write goes to the object store's upload (and
/// to `copy`, the `--out` file, when there is one).
struct Upload {
    chunks: tokio::sync::mpsc::UnboundedSender<Result<bytes::Bytes, storage::StorageError>>,
    copy: Option<std::fs::File>,
}

impl std::io::Write for Upload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(copy) = &mut self.copy {
            copy.write_all(buf)?;
        }
        self.chunks
            .send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the upload of the item file stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.copy {
            Some(copy) => copy.flush(),
            None => Ok(()),
        }
    }
}

/// A failed run's `--out` item files hold only some parts: they go, so that nobody takes
/// them for a run's.
fn failed(error: SaveError, out: Option<&Path>) -> SaveError {
    if let Some(dir) = out {
        for name in ["items.parquet", "items.csv"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    error
}

fn tokio_stream_of<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

pub async fn run(args: ReconcileArgs, config: &Settings) -> anyhow::Result<()> {
    let date = BusinessDate::parse(&args.date)?;
    let ledger = crate::open_ledger(config).await?;
    let store = crate::data_in::object_store(config).await?;
    let currency = ledger::MoneyRules::from_settings(&config.money)?.currency;
    let (run_id, outcome) = reconcile_and_save(
        ledger.database(),
        &*store,
        date,
        currency,
        args.out.as_deref(),
    )
    .await?;
    let exponent = currency.exponent();
    let rows: Vec<Vec<String>> = outcome
        .operator_summaries()?
        .into_iter()
        .map(|s| {
            vec![
                s.operator_id.clone(),
                s.matched().to_string(),
                s.exceptions().to_string(),
                format_minor(s.ledger_total, exponent),
                format_minor(s.file_total, exponent),
                format_minor(s.exceptions_difference, exponent),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "operator",
            "matched",
            "exceptions",
            "ledger net",
            "file net",
            "difference",
        ],
        &rows,
    );
    println!("run {run_id} is now the current reconciliation of {date}");
    Ok(())
}
