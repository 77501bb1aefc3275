//! The `publish-events` relay: the outbox's events, in position order, out to a sink (the
//! Kafka topic `recaudo.events.v1`, or JSON-lines files under `var/outbox/` on the embedded
//! defaults), at least once. The relay's position moves only after the sink acknowledged
//! everything up to it, so a relay killed at any point resends from there on restart; a
//! consumer drops what it heard twice by the event's `id`.
//!
//! One relay runs at a time (the caller holds the job's lock): it also gives the outbox's
//! rows their positions, and two sequencers must never interleave.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use fault::{Blame, Fault};
use ledger::{Ledger, LedgerError};
use settings::telemetry::InternalEvent;
use tokio::io::AsyncWriteExt;

use crate::CloudEvent;
use crate::internal_events::{EventsPublished, OutboxLag};

/// The relay's name in `outbox_relays`, and its job's name.
pub const RELAY: &str = "publish-events";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("writing {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Kafka: {0}")]
    Kafka(String),
}

impl Fault for PublishError {
    fn blame(&self) -> Blame {
        match self {
            PublishError::Ledger(e) => e.blame(),
            // A full disk or an unreachable broker: worth trying again as it is.
            PublishError::File { .. } | PublishError::Kafka(_) => Blame::External,
        }
    }
}

/// Where events go. `send` returns once every event is acknowledged (written and synced,
/// or acknowledged by the broker), in order per subject.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// `kafka` or `file`: the metric label.
    fn kind(&self) -> &'static str;
    async fn send(&mut self, events: &[CloudEvent]) -> Result<(), PublishError>;
}

/// JSON lines, one file per UTC day of publishing (`{dir}/2026-12-01.jsonl`), appended and
/// synced before the relay moves on.
pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    pub fn new(dir: impl Into<PathBuf>) -> FileSink {
        FileSink { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl Sink for FileSink {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn send(&mut self, events: &[CloudEvent]) -> Result<(), PublishError> {
        let path = self
            .dir
            .join(format!("{}.jsonl", Utc::now().format("%Y-%m-%d")));
        let failed = |source| PublishError::File {
            path: path.clone(),
            source,
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(&failed)?;
        let mut text = Vec::with_capacity(events.len() * 512);
        for e in events {
            text.extend_from_slice(&e.to_json());
            text.push(b'\n');
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(&failed)?;
        file.write_all(&text).await.map_err(&failed)?;
        file.sync_data().await.map_err(&failed)?;
        Ok(())
    }
}

/// What one pass of the relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub events: u64,
    /// The relay's position after the pass.
    pub position: i64,
}

/// Publishes everything there is, `batch` events at a time, and returns when the outbox
/// has nothing more (or `max` events went out, when given: a bounded pass).
pub async fn publish_pending(
    ledger: &dyn Ledger,
    sink: &mut dyn Sink,
    batch: i64,
    max: Option<u64>,
) -> Result<Published, PublishError> {
    let batch = batch.max(1);
    let mut done = Published {
        events: 0,
        position: ledger.relay_position(RELAY).await?,
    };
    loop {
        if max.is_some_and(|m| done.events >= m) {
            break;
        }
        ledger.sequence_outbox(batch).await?;
        let events = ledger.outbox_after(done.position, batch, &[]).await?;
        let Some(last) = events.last() else { break };
        let last = last.position;
        let cloud: Vec<CloudEvent> = events.iter().map(CloudEvent::from_outbox).collect();
        sink.send(&cloud).await?;
        ledger.advance_relay(RELAY, last).await?;
        done.events += events.len() as u64;
        done.position = last;
        EventsPublished {
            sink: sink.kind(),
            count: events.len() as u64,
            position: last,
        }
        .emit();
    }
    report_lag(ledger, RELAY).await?;
    Ok(done)
}

/// Sets the lag gauge of `relay` (the age of its oldest event not yet acknowledged).
pub async fn report_lag(ledger: &dyn Ledger, relay: &'static str) -> Result<(), LedgerError> {
    let oldest = ledger.outbox_oldest_pending(relay).await?;
    let lag = oldest
        .and_then(|at| (Utc::now() - at).to_std().ok())
        .unwrap_or(Duration::ZERO);
    OutboxLag { relay, lag }.emit();
    Ok(())
}
