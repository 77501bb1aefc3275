//! What a reconciliation run does to the cases of its date (DESIGN.md, Exceptions): every
//! non-MATCHED item of the date's current run has its case, one per key for the key's whole
//! life. A new key opens a case; a case nobody has decided yet follows what the run found
//! (a withdrawn proposal if the amounts moved under it); a case the run no longer finds is
//! CLEARED with the run's id; a CLEARED key found again is reopened. A decided case
//! (RESOLVED) is final until a person reopens it, whatever later runs find.
//!
//! TIMING: a key one-sided on the date and found on the other side on an adjacent date is
//! TIMING on both dates. Once both dates' runs have seen it, the pair is explained: both
//! cases are CLEARED (the second date's opened and cleared at once).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessDate, Database};
use serde::Serialize;

use crate::ExceptionError;
use crate::audit::{EventAction, NewEvent};
use crate::case::{Actor, CaseState, ExceptionCase};

/// A non-MATCHED item of a run, as the run stored it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Found {
    pub operator_id: String,
    pub operator_ref: String,
    pub case_name: String,
    pub ledger_card_id: Option<String>,
    pub file_card_id: Option<String>,
    pub ledger_amount: Option<i64>,
    pub file_amount: Option<i64>,
    pub difference: i64,
}

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub opened: u64,
    pub updated: u64,
    pub cleared: u64,
    pub reopened: u64,
    /// True when the run was no longer the date's current one: nothing was changed.
    pub superseded: bool,
}

/// The changes a run makes, before they are stored.
#[derive(Debug, Default)]
pub(crate) struct SyncPlan {
    /// New cases and their events (OPENED, and CLEARED for an explained TIMING), whose
    /// `case_id` the store fills in once the database has given the case its id.
    pub opened: Vec<(ExceptionCase, Vec<NewEvent>)>,
    /// Changed cases and the event that says why.
    pub changed: Vec<(ExceptionCase, NewEvent)>,
    pub report: SyncReport,
}

fn key(operator_id: &str, operator_ref: &str) -> (String, String) {
    (operator_id.to_string(), operator_ref.to_string())
}

impl Found {
    fn differs(&self, case: &ExceptionCase) -> bool {
        self.case_name != case.case_name
            || self.ledger_card_id != case.ledger_card_id
            || self.file_card_id != case.file_card_id
            || self.ledger_amount != case.ledger_amount
            || self.file_amount != case.file_amount
            || self.difference != case.difference
    }

    pub(crate) fn apply(&self, case: &mut ExceptionCase) {
        case.case_name = self.case_name.clone();
        case.ledger_card_id = self.ledger_card_id.clone();
        case.file_card_id = self.file_card_id.clone();
        case.ledger_amount = self.ledger_amount;
        case.file_amount = self.file_amount;
        case.difference = self.difference;
    }
}

/// Plans what run `run_id` of `date` does to the cases, given the run's items, the date's
/// cases and the adjacent dates' TIMING cases.
pub(crate) fn plan(
    date: NaiveDate,
    run_id: &str,
    found: Vec<Found>,
    existing: Vec<ExceptionCase>,
    adjacent_timing: &[ExceptionCase],
    at: DateTime<Utc>,
) -> SyncPlan {
    let system = Actor::system();
    let event =
        |case: &ExceptionCase, action, from: Option<CaseState>, note: Option<String>| NewEvent {
            case_id: case.id,
            at,
            actor: system.as_str().to_string(),
            action,
            from_state: from,
            to_state: case.state,
            note,
            amount: Some(case.difference),
            run_id: Some(run_id.to_string()),
        };
    let explained: HashSet<(String, String)> = adjacent_timing
        .iter()
        .map(|c| key(&c.operator_id, &c.operator_ref))
        .collect();
    let mut plan = SyncPlan::default();
    let mut by_key: HashMap<(String, String), ExceptionCase> = existing
        .into_iter()
        .map(|c| (key(&c.operator_id, &c.operator_ref), c))
        .collect();
    let mut counterparts = HashSet::new();
    for item in found {
        let k = key(&item.operator_id, &item.operator_ref);
        let explained_timing = item.case_name == "TIMING" && explained.contains(&k);
        if explained_timing {
            // Both dates have seen it: explained. Its case, if any, clears below.
            counterparts.insert(k.clone());
            if by_key.contains_key(&k) {
                continue;
            }
        }
        match by_key.remove(&k) {
            None => {
                let mut case = ExceptionCase {
                    id: 0,
                    business_date: date,
                    operator_id: item.operator_id.clone(),
                    operator_ref: item.operator_ref.clone(),
                    case_name: String::new(),
                    ledger_card_id: None,
                    file_card_id: None,
                    ledger_amount: None,
                    file_amount: None,
                    difference: 0,
                    state: CaseState::Open,
                    resolution: None,
                    proposed_by: None,
                    decisions: 0,
                    transaction_id: None,
                    dispute_reason: None,
                    evidence_ref: None,
                    opened_run: run_id.to_string(),
                    last_run: run_id.to_string(),
                    cleared_run: None,
                    opened_at: at,
                    updated_at: at,
                };
                item.apply(&mut case);
                let note = format!("{} found by run {run_id}", case.case_name);
                let mut events = vec![event(&case, EventAction::Opened, None, Some(note))];
                if explained_timing {
                    // Opened and cleared at once, so that the key has its case on this date
                    // too and a re-run of either date finds the pair explained.
                    case.state = CaseState::Cleared;
                    case.cleared_run = Some(run_id.to_string());
                    let why = "TIMING: its other side was found on an adjacent date".to_string();
                    events.push(event(
                        &case,
                        EventAction::Cleared,
                        Some(CaseState::Open),
                        Some(why),
                    ));
                    plan.report.cleared += 1;
                }
                plan.opened.push((case, events));
                plan.report.opened += 1;
            }
            Some(case) if case.state == CaseState::Resolved => {}
            Some(mut case) if case.state == CaseState::Cleared => {
                let from = case.state;
                item.apply(&mut case);
                case.state = CaseState::Open;
                case.cleared_run = None;
                case.resolution = None;
                case.proposed_by = None;
                case.updated_at = at;
                let note = format!("found again by run {run_id}");
                let e = event(&case, EventAction::Reopened, Some(from), Some(note));
                plan.changed.push((case, e));
                plan.report.reopened += 1;
            }
            Some(mut case) => {
                if item.differs(&case) {
                    let from = case.state;
                    item.apply(&mut case);
                    let mut note = format!("run {run_id} found {}", case.case_name);
                    if case.state == CaseState::PendingApproval {
                        // The proposal was for other numbers: it cannot stand.
                        case.state = CaseState::Open;
                        case.resolution = None;
                        case.proposed_by = None;
                        note.push_str("; the proposed resolution is withdrawn");
                    }
                    case.updated_at = at;
                    let e = event(&case, EventAction::Updated, Some(from), Some(note));
                    plan.changed.push((case, e));
                    plan.report.updated += 1;
                }
            }
        }
    }
    let clear = |mut case: ExceptionCase, why: &str, plan: &mut SyncPlan| {
        let from = case.state;
        case.state = CaseState::Cleared;
        case.cleared_run = Some(run_id.to_string());
        case.updated_at = at;
        let e = event(
            &case,
            EventAction::Cleared,
            Some(from),
            Some(why.to_string()),
        );
        plan.changed.push((case, e));
        plan.report.cleared += 1;
    };
    let mut left: Vec<ExceptionCase> = by_key.into_values().collect();
    left.sort_by_key(|c| c.id);
    for case in left.into_iter().filter(|c| c.state.is_undecided()) {
        let k = key(&case.operator_id, &case.operator_ref);
        let why = if counterparts.contains(&k) {
            "TIMING: its other side was found on an adjacent date"
        } else {
            "no longer found by the date's current run"
        };
        clear(case, why, &mut plan);
    }
    for case in adjacent_timing {
        if case.state.is_undecided()
            && counterparts.contains(&key(&case.operator_id, &case.operator_ref))
        {
            clear(
                case.clone(),
                "TIMING: its other side was found on an adjacent date",
                &mut plan,
            );
        }
    }
    plan
}

/// Brings the cases of `date` in line with run `run_id`, in one database transaction. A run
/// that is no longer the date's current one changes nothing. Safe to repeat: a second sync
/// of the same run finds nothing to change. Amounts in the events it writes are in
/// `currency`, the ledger's.
pub async fn sync_run(
    db: Database<'_>,
    date: BusinessDate,
    run_id: &str,
    currency: ledger::Currency,
) -> Result<SyncReport, ExceptionError> {
    synced(db, date, run_id, None, currency).await
}

/// `sync_run` for the run that has just been saved, given its non-MATCHED items (`found`,
/// exactly the rows the run stored, in any order) rather than reading them back: the job
/// that made the run holds them already, and a city's day has hundreds of thousands.
pub async fn sync_found(
    db: Database<'_>,
    date: BusinessDate,
    run_id: &str,
    found: Vec<Found>,
    currency: ledger::Currency,
) -> Result<SyncReport, ExceptionError> {
    synced(db, date, run_id, Some(found), currency).await
}

async fn synced(
    db: Database<'_>,
    date: BusinessDate,
    run_id: &str,
    found: Option<Vec<Found>>,
    currency: ledger::Currency,
) -> Result<SyncReport, ExceptionError> {
    let started = std::time::Instant::now();
    let report = crate::store::sync(db, date, run_id, found, currency).await?;
    tracing::info!(
        business_date = %date,
        run_id,
        seconds = started.elapsed().as_secs_f64(),
        opened = report.opened,
        updated = report.updated,
        cleared = report.cleared,
        reopened = report.reopened,
        superseded = report.superseded,
        "exception cases synced"
    );
    Ok(report)
}
