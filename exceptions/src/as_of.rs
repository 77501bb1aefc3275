//! The cases as they stood at the end of a business date, read back from their history, so
//! that a date's report says the same thing however late it is re-run (DESIGN.md, Reports).
//!
//! A person's event (a decision, a dispute) counts by the end of date X when it was made in
//! X's business day or before, like the correction it posts. A reconciliation run's events
//! count in the run's own date (a date's report shows the date's current run: the run of D
//! opens D's cases after D has closed, yet they are D's) and from the first date that had no
//! final report when the run synced its cases (`recon_runs.counts_from`): the run of D made
//! the next morning counts from D on; a later run of D (a superseding file) counts in D and
//! from the first date not yet reported, never in the dates reported in between, whose
//! reports stay as they were. A case is shown as the last run of its own date that counts
//! found it (type, cards, amounts).

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessCalendar, BusinessDate, Database};

use crate::ExceptionError;
use crate::case::{CaseId, CaseState, ExceptionCase};

/// A case open (OPEN, DISPUTED or PENDING_APPROVAL) at the end of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCase {
    pub case: ExceptionCase,
    /// Its state at the end of the date (the case's own `state` is today's).
    pub state: CaseState,
    /// Days from the date it was found on to the date it is reported on.
    pub age_days: i64,
}

/// One event, as far as the dates it counts in go.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventAt {
    pub case_id: CaseId,
    pub at: DateTime<Utc>,
    pub to_state: String,
    /// The run that made it; `None` for a person's event.
    pub run_id: Option<String>,
    /// The date that run reconciled.
    pub run_date: Option<NaiveDate>,
    /// The first date that run's events count by besides its own (see the module's doc);
    /// empty for runs synced before it was kept, which count from the day they were made.
    pub counts_from: Option<NaiveDate>,
}

/// Whether `event` counts by the end of `date`.
pub fn counts_by(event: &EventAt, date: BusinessDate, calendar: &BusinessCalendar) -> bool {
    let made_in = calendar.business_date(event.at).naive();
    match event.run_date {
        None => made_in <= date.naive(),
        Some(own) => own == date.naive() || event.counts_from.unwrap_or(made_in) <= date.naive(),
    }
}

/// The first date from `date` on that is not in `reported` (sorted, ascending).
pub fn first_unreported(date: NaiveDate, reported: &[NaiveDate]) -> NaiveDate {
    let mut next = date;
    for d in reported.iter().skip_while(|d| **d < date) {
        if *d != next {
            break;
        }
        next = next.succ_opt().unwrap_or(next);
    }
    next
}

/// The state a case's events (in chain order) leave it in at the end of `date`; `None` when
/// none of them counts by then.
pub fn state_at(
    events: &[EventAt],
    date: BusinessDate,
    calendar: &BusinessCalendar,
) -> Result<Option<CaseState>, ExceptionError> {
    events
        .iter()
        .rfind(|e| counts_by(e, date, calendar))
        .map(|e| {
            CaseState::parse(&e.to_state)
                .map_err(|err| ExceptionError::Corrupt(format!("case {}: {err}", e.case_id)))
        })
        .transpose()
}

/// Every case open at the end of `date`, whatever date it was found on, oldest first (by
/// the date found, operator, reference).
///
/// Only cases that could have been open then are read: found by `date`, and either still
/// undecided or changed since the date closed. A case closed before then stays closed
/// through the date.
pub async fn open_at_end_of(
    db: Database<'_>,
    calendar: &BusinessCalendar,
    date: BusinessDate,
) -> Result<Vec<OpenCase>, ExceptionError> {
    let closed = calendar.opens_at(date.succ());
    // SQLite keeps instants as text whose fraction varies in length, so it compares them as
    // Julian days, a second early: the candidates are a superset, the events decide.
    let changed_since = match db {
        Database::Postgres(_) => "c.updated_at >= $2",
        Database::Sqlite(_) => "julianday(c.updated_at) >= julianday($2) - 1.0 / 86400.0",
    };
    let candidates = format!(
        "c.business_date <= $1 AND (c.state IN ('OPEN', 'DISPUTED', 'PENDING_APPROVAL') \
         OR {changed_since})"
    );
    let cases_sql = format!(
        "SELECT {} FROM exception_cases c WHERE {candidates} ORDER BY c.id",
        crate::store::CASE_COLUMNS
    );
    let events_sql = format!(
        "SELECT e.case_id, e.at, e.to_state, e.run_id, r.business_date AS run_date, \
         r.counts_from \
         FROM exception_events e JOIN exception_cases c ON c.id = e.case_id \
         LEFT JOIN recon_runs r ON r.id = e.run_id WHERE {candidates} ORDER BY e.case_id, e.seq"
    );
    const ITEM_SQL: &str = "SELECT operator_id, operator_ref, case_name, ledger_card_id, \
        file_card_id, ledger_amount, file_amount, difference FROM recon_items \
        WHERE run_id = $1 AND operator_id = $2 AND operator_ref = $3";
    // One snapshot for both reads, so that a sync committing in between cannot mix states.
    macro_rules! read {
        ($tx:expr) => {{
            let mut tx = $tx;
            let rows: Vec<crate::store::CaseRow> = sqlx::query_as(&cases_sql)
                .bind(date.naive())
                .bind(closed)
                .fetch_all(&mut *tx)
                .await?;
            let events: Vec<EventAt> = sqlx::query_as(&events_sql)
                .bind(date.naive())
                .bind(closed)
                .fetch_all(&mut *tx)
                .await?;
            let cases = crate::store::cases(rows)?;
            let mut open = Vec::new();
            for (case, events) in by_case(cases, &events) {
                let Some(state) = state_at(events, date, calendar)?.filter(|s| s.is_undecided())
                else {
                    continue;
                };
                let mut case = case;
                // A later run of the case's own date that does not count yet may have
                // changed what the case shows: show what the run that counts found.
                let found_on = case.business_date;
                let own = |e: &&EventAt| e.run_date == Some(found_on);
                let counting = events
                    .iter()
                    .filter(own)
                    .rfind(|e| counts_by(e, date, calendar));
                let later = events
                    .iter()
                    .filter(own)
                    .any(|e| !counts_by(e, date, calendar));
                if let (Some(run_id), true) = (counting.and_then(|e| e.run_id.clone()), later) {
                    let found: Option<crate::sync::Found> = sqlx::query_as(ITEM_SQL)
                        .bind(&run_id)
                        .bind(&case.operator_id)
                        .bind(&case.operator_ref)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(found) = found {
                        found.apply(&mut case);
                    }
                }
                open.push(OpenCase {
                    age_days: (date.naive() - case.business_date).num_days(),
                    state,
                    case,
                });
            }
            tx.commit().await?;
            open
        }};
    }
    let mut open = match db {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
            read!(tx)
        }
        // A deferred transaction reads one snapshot of the WAL.
        Database::Sqlite(pool) => read!(pool.begin().await?),
    };
    open.sort_by(|a, b| {
        (
            a.case.business_date,
            &a.case.operator_id,
            &a.case.operator_ref,
        )
            .cmp(&(
                b.case.business_date,
                &b.case.operator_id,
                &b.case.operator_ref,
            ))
    });
    Ok(open)
}

/// Each case with its events; both lists are in case order.
fn by_case(cases: Vec<ExceptionCase>, events: &[EventAt]) -> Vec<(ExceptionCase, &[EventAt])> {
    let mut rest = events;
    cases
        .into_iter()
        .map(|case| {
            let skip = rest.partition_point(|e| e.case_id < case.id);
            rest = &rest[skip..];
            let mine = rest.partition_point(|e| e.case_id == case.id);
            let (own, after) = rest.split_at(mine);
            rest = after;
            (case, own)
        })
        .collect()
}

/// The case a correction's document names (`exception:{case}:{decision}`, a reversal with
/// `:reversal` after it).
pub fn case_of_document(document: &str) -> Option<CaseId> {
    document
        .strip_prefix("exception:")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> BusinessDate {
        BusinessDate::parse(text).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A person's event (`run: None`) or a run's: (the date it reconciled, counts from).
    fn event(when: &str, to: &str, run: Option<(&str, &str)>) -> EventAt {
        EventAt {
            case_id: 7,
            at: at(when),
            to_state: to.into(),
            run_id: run.map(|(d, _)| format!("run-of-{d}")),
            run_date: run.map(|(d, _)| day(d).naive()),
            counts_from: run.map(|(_, from)| day(from).naive()),
        }
    }

    #[test]
    fn a_run_counts_in_its_own_date_and_everything_from_the_day_it_was_made() {
        let calendar = BusinessCalendar::default();
        // The run of the 26th runs on the 27th; a person disputes on the 27th and resolves
        // on the 28th at 23:30 Bogotá (04:30 UTC on the 29th), still the 28th's business day.
        let opened = event(
            "2026-11-27T07:00:00Z",
            "OPEN",
            Some(("2026-11-26", "2026-11-26")),
        );
        let disputed = event("2026-11-27T15:00:00Z", "DISPUTED", None);
        let history = [
            opened.clone(),
            disputed.clone(),
            event("2026-11-29T04:30:00Z", "RESOLVED", None),
        ];
        let state = |d: &str| state_at(&history, day(d), &calendar).unwrap();
        assert_eq!(state("2026-11-25"), None);
        assert_eq!(state("2026-11-26"), Some(CaseState::Open));
        assert_eq!(state("2026-11-27"), Some(CaseState::Disputed));
        assert_eq!(state("2026-11-28"), Some(CaseState::Resolved));
        assert_eq!(state("2026-12-31"), Some(CaseState::Resolved));
        // On 3 December a superseding file re-runs the 26th, which no longer finds the key;
        // the 26th to the 1st have been reported. The 26th's report shows its current run;
        // the dates in between keep what they said; from the 2nd on the case is cleared.
        let superseded = [
            opened,
            disputed,
            event(
                "2026-12-03T07:00:00Z",
                "CLEARED",
                Some(("2026-11-26", "2026-12-02")),
            ),
        ];
        let state = |d: &str| state_at(&superseded, day(d), &calendar).unwrap();
        assert_eq!(state("2026-11-26"), Some(CaseState::Cleared));
        assert_eq!(state("2026-11-27"), Some(CaseState::Disputed));
        assert_eq!(state("2026-12-01"), Some(CaseState::Disputed));
        assert_eq!(state("2026-12-02"), Some(CaseState::Cleared));
        // A run synced before `counts_from` was kept counts from the day it was made.
        let mut old = superseded.clone();
        old[2].counts_from = None;
        assert_eq!(
            state_at(&old, day("2026-12-02"), &calendar).unwrap(),
            Some(CaseState::Disputed)
        );
    }

    #[test]
    fn a_run_counts_from_the_first_date_not_yet_reported() {
        let d = |t: &str| day(t).naive();
        let reported = [
            d("2026-11-25"),
            d("2026-11-26"),
            d("2026-11-27"),
            d("2026-11-30"),
        ];
        assert_eq!(
            first_unreported(d("2026-11-26"), &reported),
            d("2026-11-28")
        );
        assert_eq!(
            first_unreported(d("2026-11-28"), &reported),
            d("2026-11-28")
        );
        assert_eq!(
            first_unreported(d("2026-11-30"), &reported),
            d("2026-12-01")
        );
        assert_eq!(
            first_unreported(d("2026-12-05"), &reported),
            d("2026-12-05")
        );
    }

    #[test]
    fn documents_name_their_case() {
        assert_eq!(case_of_document("exception:42:1"), Some(42));
        assert_eq!(case_of_document("exception:42:2:reversal"), Some(42));
        assert_eq!(case_of_document("sale:42"), None);
        assert_eq!(case_of_document("exception:x:1"), None);
    }
}
