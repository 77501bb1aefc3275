//! The action list as data: its entries (a blocked card, why, since when), the changes from
//! one version to the next, and the bytes of `full.csv`, `delta.csv` and `manifest.json`.
//!
//! The CSV is written by hand: every field is a card number (`[A-Z0-9]`), a reason (a fixed
//! word) or a UTC timestamp, none of which can hold a comma, a quote or a line break, and
//! the bytes must be the same for the same list on every run.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A blocked card as the field sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub card_id: String,
    pub reason: String,
    pub blocked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Block the card (new, or blocked again for another reason).
    Add,
    /// The card is no longer blocked.
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "ADD",
            Action::Remove => "REMOVE",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "ADD" => Some(Action::Add),
            "REMOVE" => Some(Action::Remove),
            _ => None,
        }
    }
}

/// One line of a delta: what to do with a card, and when the change happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub card_id: String,
    pub action: Action,
    /// The block's reason (for a REMOVE, `None`).
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The changes that turn `previous` into `current`, both in card order; a REMOVE's time
/// comes from `unblocked_at` (the card's last unblock), or `now` when none is known.
pub fn diff(
    previous: &[Entry],
    current: &[Entry],
    unblocked_at: impl Fn(&str) -> Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let add = |e: &Entry| Change {
        card_id: e.card_id.clone(),
        action: Action::Add,
        reason: Some(e.reason.clone()),
        at: e.blocked_at,
    };
    let remove = |e: &Entry| Change {
        card_id: e.card_id.clone(),
        action: Action::Remove,
        reason: None,
        at: unblocked_at(&e.card_id).unwrap_or(now),
    };
    let (mut p, mut c) = (previous.iter().peekable(), current.iter().peekable());
    let mut changes = Vec::new();
    loop {
        match (p.peek(), c.peek()) {
            (None, None) => break,
            (Some(old), None) => {
                changes.push(remove(old));
                p.next();
            }
            (None, Some(new)) => {
                changes.push(add(new));
                c.next();
            }
            (Some(old), Some(new)) => match old.card_id.cmp(&new.card_id) {
                std::cmp::Ordering::Less => {
                    changes.push(remove(old));
                    p.next();
                }
                std::cmp::Ordering::Greater => {
                    changes.push(add(new));
                    c.next();
                }
                std::cmp::Ordering::Equal => {
                    if **old != **new {
                        changes.push(add(new));
                    }
                    p.next();
                    c.next();
                }
            },
        }
    }
    changes
}

/// Applies `changes` to `list` (both in card order), as a device applies a delta.
pub fn apply(list: &[Entry], changes: &[Change]) -> Vec<Entry> {
    let mut by_card: std::collections::BTreeMap<String, Entry> = list
        .iter()
        .map(|e| (e.card_id.clone(), e.clone()))
        .collect();
    for c in changes {
        match c.action {
            Action::Add => {
                by_card.insert(
                    c.card_id.clone(),
                    Entry {
                        card_id: c.card_id.clone(),
                        reason: c.reason.clone().unwrap_or_default(),
                        blocked_at: c.at,
                    },
                );
            }
            Action::Remove => {
                by_card.remove(&c.card_id);
            }
        }
    }
    by_card.into_values().collect()
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `full.csv`: `card_id,reason,blocked_at`, one row per blocked card, in card order.
pub fn full_csv(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + entries.len() * 56);
    out.push_str("card_id,reason,blocked_at\n");
    for e in entries {
        out.push_str(&e.card_id);
        out.push(',');
        out.push_str(&e.reason);
        out.push(',');
        out.push_str(&timestamp(e.blocked_at));
        out.push('\n');
    }
    out.into_bytes()
}

/// `delta.csv`: `card_id,action,reason,at`, one row per change, in card order.
pub fn delta_csv(changes: &[Change]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + changes.len() * 64);
    out.push_str("card_id,action,reason,at\n");
    for c in changes {
        out.push_str(&c.card_id);
        out.push(',');
        out.push_str(c.action.as_str());
        out.push(',');
        out.push_str(c.reason.as_deref().unwrap_or(""));
        out.push(',');
        out.push_str(&timestamp(c.at));
        out.push('\n');
    }
    out.into_bytes()
}

/// Reads a `full.csv` back (a device's view, and the tests').
pub fn parse_full_csv(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("full.csv is not UTF-8: {e}"))?;
    let mut lines = text.lines();
    if lines.next() != Some("card_id,reason,blocked_at") {
        return Err("full.csv: the header is not card_id,reason,blocked_at".into());
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let [card, reason, at] = f[..] else {
                return Err(format!("full.csv line {}: expected 3 fields", i + 2));
            };
            Ok(Entry {
                card_id: card.to_string(),
                reason: reason.to_string(),
                blocked_at: DateTime::parse_from_rfc3339(at)
                    .map_err(|e| format!("full.csv line {}: blocked_at: {e}", i + 2))?
                    .with_timezone(&Utc),
            })
        })
        .collect()
}

/// Reads a `delta.csv` back.
pub fn parse_delta_csv(bytes: &[u8]) -> Result<Vec<Change>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("delta.csv is not UTF-8: {e}"))?;
    let mut lines = text.lines();
    if lines.next() != Some("card_id,action,reason,at") {
        return Err("delta.csv: the header is not card_id,action,reason,at".into());
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let [card, action, reason, at] = f[..] else {
                return Err(format!("delta.csv line {}: expected 4 fields", i + 2));
            };
            Ok(Change {
                card_id: card.to_string(),
                action: Action::parse(action)
                    .ok_or_else(|| format!("delta.csv line {}: action {action:?}", i + 2))?,
                reason: (!reason.is_empty()).then(|| reason.to_string()),
                at: DateTime::parse_from_rfc3339(at)
                    .map_err(|e| format!("delta.csv line {}: at: {e}", i + 2))?
                    .with_timezone(&Utc),
            })
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `manifest.json` of a version: its files with their sha256 and rows, and the version
/// its delta applies to.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub version: i64,
    pub previous_version: Option<i64>,
    pub published_at: String,
    pub full: FileEntry,
    pub delta: FileEntry,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub key: String,
    pub sha256: String,
    pub rows: u64,
}

/// `hotlists/latest.json`: where the newest version is.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Latest {
    pub version: i64,
    pub manifest: String,
    pub published_at: String,
}

pub fn version_prefix(version: i64) -> String {
    format!("hotlists/v{version}/")
}

pub const LATEST_KEY: &str = "hotlists/latest.json";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(card: &str, reason: &str) -> Entry {
        Entry {
            card_id: card.into(),
            reason: reason.into(),
            blocked_at: at("2026-12-01T10:00:00Z"),
        }
    }

    #[test]
    fn a_delta_turns_the_previous_list_into_the_current_one() {
        let previous = vec![
            entry("A", "LOST"),
            entry("B", "STOLEN"),
            entry("D", "FRAUD"),
        ];
        let current = vec![
            entry("B", "REPLACED"),
            entry("C", "LOST"),
            entry("D", "FRAUD"),
        ];
        let now = at("2026-12-02T00:00:00Z");
        let changes = diff(&previous, &current, |_| None, now);
        let seen: Vec<(&str, Action)> = changes
            .iter()
            .map(|c| (c.card_id.as_str(), c.action))
            .collect();
        assert_eq!(
            seen,
            [
                ("A", Action::Remove),
                ("B", Action::Add),
                ("C", Action::Add)
            ]
        );
        assert_eq!(apply(&previous, &changes), current);
        assert!(diff(&current, &current, |_| None, now).is_empty());
    }

    #[test]
    fn the_files_read_back_as_written() {
        let list = vec![entry("CARD1", "LOST"), entry("CARD2", "NEGATIVE_BALANCE")];
        assert_eq!(parse_full_csv(&full_csv(&list)).unwrap(), list);
        let changes = diff(&[], &list, |_| None, Utc::now());
        assert_eq!(parse_delta_csv(&delta_csv(&changes)).unwrap(), changes);
        assert_eq!(
            String::from_utf8(full_csv(&list[..1])).unwrap(),
            "card_id,reason,blocked_at\nCARD1,LOST,2026-12-01T10:00:00.000000Z\n"
        );
    }
}
