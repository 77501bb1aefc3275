//! The `publish-hotlist` job: the blocked cards now, compared with the last version
//! published; when they differ, version n+1 goes to the object store (the files, then
//! `latest.json`), is recorded in the database, and its changes go to the topic.
//!
//! The job runs under its job lock (one at a time), so versions are gapless. A run that
//! dies half-way is repaired by the next: files written but not recorded are written
//! again as the same version; a version recorded but not yet in `latest.json` moves it; a
//! version whose changes the broker never acknowledged is produced again, in version order,
//! before anything newer (the topic is compacted by card, so a record twice is harmless).

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use fault::{Blame, Fault};
use ledger::{Database, Ledger, on_pool};
use storage::{ObjectStore, StorageError};

use crate::action_list::{
    self, Action, Change, Entry, FileEntry, LATEST_KEY, Latest, Manifest, version_prefix,
};

#[derive(Debug, thiserror::Error)]
pub enum HotlistError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("object store: {0}")]
    Storage(#[from] StorageError),
    #[error("the hotlist topic: {0}")]
    Topic(String),
    #[error("stored hotlist data is inconsistent: {0}")]
    Corrupt(String),
}

impl Fault for HotlistError {
    fn blame(&self) -> Blame {
        match self {
            HotlistError::Database(e) => ledger::error::database_blame(e),
            HotlistError::Storage(e) => e.blame(),
            HotlistError::Topic(_) => Blame::External,
            HotlistError::Corrupt(_) => Blame::Internal,
        }
    }
}

/// Where the changes of each version go besides the store: the compacted topic.
#[async_trait::async_trait]
pub trait TopicSink: Send {
    /// Sends `changes` of `version` (ADD as the block record, REMOVE as a tombstone) and
    /// returns once the broker acknowledged every one.
    async fn send(&mut self, version: i64, changes: &[Change]) -> Result<(), HotlistError>;
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The version this run published, if the list changed.
    pub published: Option<i64>,
    /// The newest version after the run.
    pub latest: i64,
    pub cards: u64,
    pub added: u64,
    pub removed: u64,
    /// Whether this run had to move `latest.json` to a version an earlier run recorded.
    pub repaired_latest: bool,
}

/// Publishes the action list once to the store (see the module's description); the topic
/// follows with [`catch_up_topic`].
pub async fn publish(
    ledger: &dyn Ledger,
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
) -> Result<PublishOutcome, HotlistError> {
    let db = ledger.database();
    let mut outcome = PublishOutcome::default();
    let last = latest_version(db).await?;
    if let Some(last) = &last {
        outcome.repaired_latest = ensure_latest(store, last).await?;
    }
    let previous = published_entries(db).await?;
    let current = blocked_now(db).await?;
    let removed: Vec<&str> = {
        let now_blocked: std::collections::HashSet<&str> =
            current.iter().map(|e| e.card_id.as_str()).collect();
        previous
            .iter()
            .map(|e| e.card_id.as_str())
            .filter(|c| !now_blocked.contains(c))
            .collect()
    };
    let unblocked_at = last_unblocks(db, &removed).await?;
    let changes = action_list::diff(
        &previous,
        &current,
        |card| unblocked_at.get(card).copied(),
        now,
    );
    outcome.latest = last.as_ref().map_or(0, |l| l.version);
    outcome.cards = current.len() as u64;
    if !changes.is_empty() {
        let version = outcome.latest + 1;
        let record = write_version(store, version, &current, &changes, now).await?;
        record_version(db, &record, &changes).await?;
        write_latest(store, &record.latest()).await?;
        outcome.published = Some(version);
        outcome.latest = version;
        outcome.added = record.added;
        outcome.removed = record.removed;
    }
    Ok(outcome)
}

/// Sends the topic every recorded version's changes it has not acknowledged yet, oldest
/// version first, so the topic ends at the store's version; returns the versions sent.
pub async fn catch_up_topic(
    ledger: &dyn Ledger,
    topic: &mut dyn TopicSink,
) -> Result<Vec<i64>, HotlistError> {
    let db = ledger.database();
    let mut sent = Vec::new();
    for version in versions_not_on_topic(db).await? {
        let changes = changes_of(db, version).await?;
        topic.send(version, &changes).await?;
        mark_on_topic(db, version, Utc::now()).await?;
        sent.push(version);
    }
    Ok(sent)
}

/// A version as recorded.
#[derive(Debug, Clone)]
struct VersionRecord {
    version: i64,
    published_at: DateTime<Utc>,
    cards: u64,
    added: u64,
    removed: u64,
    full_sha256: String,
    delta_sha256: String,
}

impl VersionRecord {
    fn latest(&self) -> Latest {
        Latest {
            version: self.version,
            manifest: format!("{}manifest.json", version_prefix(self.version)),
            published_at: action_list::timestamp(self.published_at),
        }
    }
}

async fn write_version(
    store: &dyn ObjectStore,
    version: i64,
    current: &[Entry],
    changes: &[Change],
    now: DateTime<Utc>,
) -> Result<VersionRecord, HotlistError> {
    let prefix = version_prefix(version);
    let full = action_list::full_csv(current);
    let delta = action_list::delta_csv(changes);
    let record = VersionRecord {
        version,
        published_at: now,
        cards: current.len() as u64,
        added: changes.iter().filter(|c| c.action == Action::Add).count() as u64,
        removed: changes
            .iter()
            .filter(|c| c.action == Action::Remove)
            .count() as u64,
        full_sha256: action_list::sha256_hex(&full),
        delta_sha256: action_list::sha256_hex(&delta),
    };
    let manifest = Manifest {
        version,
        previous_version: (version > 1).then_some(version - 1),
        published_at: action_list::timestamp(now),
        full: FileEntry {
            key: format!("{prefix}full.csv"),
            sha256: record.full_sha256.clone(),
            rows: record.cards,
        },
        delta: FileEntry {
            key: format!("{prefix}delta.csv"),
            sha256: record.delta_sha256.clone(),
            rows: changes.len() as u64,
        },
    };
    store.put(&manifest.full.key, Bytes::from(full)).await?;
    store.put(&manifest.delta.key, Bytes::from(delta)).await?;
    let manifest = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    store
        .put(&format!("{prefix}manifest.json"), Bytes::from(manifest))
        .await?;
    Ok(record)
}

async fn write_latest(store: &dyn ObjectStore, latest: &Latest) -> Result<(), HotlistError> {
    let body = serde_json::to_vec_pretty(latest).expect("latest.json serializes");
    store.put(LATEST_KEY, Bytes::from(body)).await?;
    Ok(())
}

/// Moves `latest.json` to the newest recorded version if a run died before it did; says
/// whether it had to.
async fn ensure_latest(
    store: &dyn ObjectStore,
    last: &VersionRecord,
) -> Result<bool, HotlistError> {
    let current: Option<Latest> = match store.get_bytes(LATEST_KEY).await {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(StorageError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if current.as_ref().map(|l| l.version) == Some(last.version) {
        return Ok(false);
    }
    write_latest(store, &last.latest()).await?;
    Ok(true)
}

type VersionRow = (i64, DateTime<Utc>, i64, i64, i64, String, String);

async fn latest_version(db: Database<'_>) -> Result<Option<VersionRecord>, HotlistError> {
    let row: Option<VersionRow> = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT version, published_at, cards, added, removed, full_sha256, delta_sha256 \
             FROM hotlist_versions ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(
        |(version, published_at, cards, added, removed, full_sha256, delta_sha256)| VersionRecord {
            version,
            published_at,
            cards: cards as u64,
            added: added as u64,
            removed: removed as u64,
            full_sha256,
            delta_sha256,
        },
    ))
}

fn entries(rows: Vec<(String, String, DateTime<Utc>)>) -> Vec<Entry> {
    rows.into_iter()
        .map(|(card_id, reason, blocked_at)| Entry {
            card_id,
            reason,
            blocked_at,
        })
        .collect()
}

/// Every blocked card now, in card order.
async fn blocked_now(db: Database<'_>) -> Result<Vec<Entry>, HotlistError> {
    let rows = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT substr(id, 6), blocked_reason, blocked_at FROM accounts \
             WHERE blocked_reason IS NOT NULL AND id LIKE 'card:%' ORDER BY id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(entries(rows))
}

/// The list as of the last version, in card order.
async fn published_entries(db: Database<'_>) -> Result<Vec<Entry>, HotlistError> {
    let rows = on_pool!(db, pool => {
        sqlx::query_as("SELECT card_id, reason, blocked_at FROM hotlist_entries ORDER BY card_id")
            .fetch_all(pool)
            .await?
    });
    Ok(entries(rows))
}

/// When each of `cards` was last unblocked (the time a REMOVE says).
async fn last_unblocks(
    db: Database<'_>,
    cards: &[&str],
) -> Result<HashMap<String, DateTime<Utc>>, HotlistError> {
    let mut found = HashMap::with_capacity(cards.len());
    for chunk in cards.chunks(500) {
        let rows: Vec<(String, DateTime<Utc>)> = on_pool!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT card_id, at FROM card_status_changes WHERE action = 'UNBLOCK' AND card_id IN (",
            );
            let mut list = q.separated(", ");
            for c in chunk {
                list.push_bind(*c);
            }
            q.push(") ORDER BY id");
            q.build_query_as().fetch_all(pool).await?
        });
        // In history order: the last one of each card stays.
        found.extend(rows);
    }
    Ok(found)
}

/// Records version `r` and makes the published list its list, in one transaction.
async fn record_version(
    db: Database<'_>,
    r: &VersionRecord,
    changes: &[Change],
) -> Result<(), HotlistError> {
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO hotlist_versions (version, published_at, cards, added, removed, \
             full_sha256, delta_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.version)
        .bind(r.published_at)
        .bind(r.cards as i64)
        .bind(r.added as i64)
        .bind(r.removed as i64)
        .bind(&r.full_sha256)
        .bind(&r.delta_sha256)
        .execute(&mut *tx)
        .await?;
        for chunk in changes.chunks(1000) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO hotlist_changes (version, card_id, action, reason, at) ",
            );
            q.push_values(chunk, |mut row, c| {
                row.push_bind(r.version)
                    .push_bind(c.card_id.as_str())
                    .push_bind(c.action.as_str())
                    .push_bind(c.reason.as_deref())
                    .push_bind(c.at);
            });
            q.build().execute(&mut *tx).await?;
            let adds: Vec<&Change> = chunk.iter().filter(|c| c.action == Action::Add).collect();
            if !adds.is_empty() {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO hotlist_entries (card_id, reason, blocked_at, version) ",
                );
                q.push_values(&adds, |mut row, c| {
                    row.push_bind(c.card_id.as_str())
                        .push_bind(c.reason.as_deref().unwrap_or_default())
                        .push_bind(c.at)
                        .push_bind(r.version);
                });
                q.push(
                    " ON CONFLICT (card_id) DO UPDATE SET reason = excluded.reason, \
                     blocked_at = excluded.blocked_at, version = excluded.version",
                );
                q.build().execute(&mut *tx).await?;
            }
            let removes: Vec<&Change> =
                chunk.iter().filter(|c| c.action == Action::Remove).collect();
            if !removes.is_empty() {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM hotlist_entries WHERE card_id IN (");
                let mut list = q.separated(", ");
                for c in &removes {
                    list.push_bind(c.card_id.as_str());
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

async fn versions_not_on_topic(db: Database<'_>) -> Result<Vec<i64>, HotlistError> {
    Ok(on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT version FROM hotlist_versions WHERE topic_done_at IS NULL ORDER BY version",
        )
        .fetch_all(pool)
        .await?
    }))
}

/// The changes of `version`, in card order.
pub async fn changes_of(db: Database<'_>, version: i64) -> Result<Vec<Change>, HotlistError> {
    let rows: Vec<(String, String, Option<String>, DateTime<Utc>)> = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT card_id, action, reason, at FROM hotlist_changes WHERE version = $1 \
             ORDER BY card_id",
        )
        .bind(version)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(card_id, action, reason, at)| {
            Ok(Change {
                action: Action::parse(&action)
                    .ok_or_else(|| HotlistError::Corrupt(format!("action {action}")))?,
                card_id,
                reason,
                at,
            })
        })
        .collect()
}

async fn mark_on_topic(
    db: Database<'_>,
    version: i64,
    at: DateTime<Utc>,
) -> Result<(), HotlistError> {
    on_pool!(db, pool => {
        sqlx::query("UPDATE hotlist_versions SET topic_done_at = $2 WHERE version = $1")
            .bind(version)
            .bind(at)
            .execute(pool)
            .await?;
    });
    Ok(())
}
