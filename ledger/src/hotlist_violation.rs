//! Hotlist violations: taps a validator accepted on a card that had been on the action list
//! for longer than the grace period (DESIGN.md, Hotlists). A tap is honoured at the gate
//! and posted whatever the card's status; these say which devices do not apply the list,
//! with the newest list version each of them reported, so ops can go and find them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Database;

/// One device's violations on a business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceViolations {
    pub device_id: String,
    /// Taps accepted on cards blocked for longer than the grace.
    pub taps: i64,
    /// Distinct blocked cards among them.
    pub cards: i64,
    pub first_tap_at: DateTime<Utc>,
    pub last_tap_at: DateTime<Utc>,
    /// The newest action-list version the device reported on the date (`None`: it reports
    /// none, an older device).
    pub hotlist_version: Option<i64>,
}

/// A tap of the date on a card that has a status history, with one change of that history:
/// `(device_id, device_seq, card_id, occurred_at, action, at)`.
type TapAndChange = (String, i64, String, DateTime<Utc>, String, DateTime<Utc>);

/// One device's violations while they are counted.
struct Tally {
    taps: i64,
    cards: BTreeSet<String>,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Each tap of `date` on a card with a status history, once per change of that history, in
/// the order written: the join keeps only the cards ever blocked (few among a city's
/// millions), and the rule is applied here rather than in two SQL dialects.
const TAPS_SQL: &str = "SELECT v.device_id, v.device_seq, v.card_id, v.occurred_at, c.action, c.at \
       FROM validations v JOIN card_status_changes c ON c.card_id = v.card_id \
      WHERE v.business_date = $1 \
      ORDER BY v.device_id, v.device_seq, c.id";

/// Devices with hotlist violations on `date`, by device id. Derived from the append-only
/// status history and the journal's taps only, so a re-run gives the same answer.
pub async fn violations(
    db: Database<'_>,
    date: crate::BusinessDate,
    grace: chrono::Duration,
) -> Result<Vec<DeviceViolations>, sqlx::Error> {
    let rows: Vec<TapAndChange> = crate::on_pool!(db, pool => {
        sqlx::query_as(TAPS_SQL).bind(date.naive()).fetch_all(pool).await?
    });
    let mut by_device: BTreeMap<String, Tally> = BTreeMap::new();
    for tap in rows.chunk_by(|a, b| (&a.0, a.1) == (&b.0, b.1)) {
        let (device, _, card, at, _, _) = &tap[0];
        let history: Vec<(bool, DateTime<Utc>)> =
            tap.iter().map(|r| (r.4 == "BLOCK", r.5)).collect();
        let at = *at;
        if blocked_since(&history, at).is_none_or(|since| at <= since + grace) {
            continue;
        }
        let tally = by_device.entry(device.clone()).or_insert_with(|| Tally {
            taps: 0,
            cards: BTreeSet::new(),
            first: at,
            last: at,
        });
        tally.taps += 1;
        tally.cards.insert(card.clone());
        tally.first = tally.first.min(at);
        tally.last = tally.last.max(at);
    }
    let versions = newest_versions(db, date, by_device.keys()).await?;
    Ok(by_device
        .into_iter()
        .map(|(device_id, t)| DeviceViolations {
            hotlist_version: versions.get(&device_id).copied().flatten(),
            device_id,
            taps: t.taps,
            cards: t.cards.len() as i64,
            first_tap_at: t.first,
            last_tap_at: t.last,
        })
        .collect())
}

/// Since when the card had been on the list without a break at `at`, from its history
/// (block or unblock, in the order written). A block of a card already blocked (another
/// reason) keeps it on the list: the earlier time counts.
fn blocked_since(history: &[(bool, DateTime<Utc>)], at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut since = None;
    for &(block, when) in history.iter().filter(|(_, when)| *when <= at) {
        since = match (block, since) {
            (true, None) => Some(when),
            (true, kept) => kept,
            (false, _) => None,
        };
    }
    since
}

/// The newest list version each device reported on `date`.
async fn newest_versions(
    db: Database<'_>,
    date: crate::BusinessDate,
    devices: impl Iterator<Item = &String>,
) -> Result<BTreeMap<String, Option<i64>>, sqlx::Error> {
    // A bound list per statement, within SQLite's parameter limit.
    const DEVICES_PER_STATEMENT: usize = 500;
    let devices: Vec<&String> = devices.collect();
    let mut out = BTreeMap::new();
    for chunk in devices.chunks(DEVICES_PER_STATEMENT) {
        let rows: Vec<(String, Option<i64>)> = crate::on_pool!(db, pool => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT device_id, MAX(hotlist_version) FROM validations WHERE business_date = ",
            );
            q.push_bind(date.naive()).push(" AND device_id IN (");
            let mut list = q.separated(", ");
            for device in chunk {
                list.push_bind(device.as_str());
            }
            q.push(") GROUP BY device_id");
            q.build_query_as().fetch_all(pool).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute)
    }

    #[test]
    fn a_card_is_on_the_list_from_its_first_block_until_it_is_unblocked() {
        let history = [(true, t(10)), (true, t(20)), (false, t(30)), (true, t(40))];
        assert_eq!(blocked_since(&history, t(5)), None);
        assert_eq!(blocked_since(&history, t(10)), Some(t(10)));
        assert_eq!(blocked_since(&history, t(25)), Some(t(10)));
        assert_eq!(blocked_since(&history, t(35)), None);
        assert_eq!(blocked_since(&history, t(45)), Some(t(40)));
    }
}
