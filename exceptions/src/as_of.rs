//! The cases as they stood at the end of a business date, read back from their history, so
//! that a date's report says the same thing however late it is re-run (DESIGN.md, Reports).
//!
//! An event counts in a date by who made it: a reconciliation run's events count in the date
//! that run reconciled (the run of D that opens D's cases runs after D has closed, yet its
//! cases are D's); a person's count in the business day they acted, as the correction they
//! post does. A case's amounts and type are its current ones: only its own date's runs change
//! them, and those count in its own date.

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

/// One event, as far as the date it counts in goes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventAt {
    pub case_id: CaseId,
    pub at: DateTime<Utc>,
    pub to_state: String,
    /// The date the event's run reconciled; `None` for a person's event.
    pub run_date: Option<NaiveDate>,
}

/// The date `event` counts in.
pub fn counts_in(event: &EventAt, calendar: &BusinessCalendar) -> BusinessDate {
    match event.run_date {
        Some(date) => BusinessDate::from_naive(date),
        None => calendar.business_date(event.at),
    }
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
        .rfind(|e| counts_in(e, calendar) <= date)
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
        "SELECT e.case_id, e.at, e.to_state, r.business_date AS run_date \
         FROM exception_events e JOIN exception_cases c ON c.id = e.case_id \
         LEFT JOIN recon_runs r ON r.id = e.run_id WHERE {candidates} ORDER BY e.case_id, e.seq"
    );
    let (rows, events): (Vec<crate::store::CaseRow>, Vec<EventAt>) = ledger::on_pool!(db, pool => (
        sqlx::query_as(&cases_sql)
            .bind(date.naive())
            .bind(closed)
            .fetch_all(pool)
            .await?,
        sqlx::query_as(&events_sql)
            .bind(date.naive())
            .bind(closed)
            .fetch_all(pool)
            .await?,
    ));
    let cases = crate::store::cases(rows)?;
    let mut open = Vec::new();
    let mut events = events.as_slice();
    for case in cases {
        // Both lists are in case order: each case's events are the run at the front.
        let skip = events.partition_point(|e| e.case_id < case.id);
        events = &events[skip..];
        let mine = events.partition_point(|e| e.case_id == case.id);
        let state = state_at(&events[..mine], date, calendar)?;
        events = &events[mine..];
        if let Some(state) = state.filter(|s| s.is_undecided()) {
            open.push(OpenCase {
                age_days: (date.naive() - case.business_date).num_days(),
                state,
                case,
            });
        }
    }
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

    fn event(when: &str, to: &str, run_date: Option<&str>) -> EventAt {
        EventAt {
            case_id: 7,
            at: at(when),
            to_state: to.into(),
            run_date: run_date.map(|d| day(d).naive()),
        }
    }

    #[test]
    fn a_runs_events_count_in_its_date_and_a_persons_in_the_day_they_acted() {
        let calendar = BusinessCalendar::default();
        // The run of the 26th runs on the 27th; a person resolves on the 28th at 23:30
        // Bogotá (04:30 UTC on the 29th), still the 28th's business day.
        let opened = event("2026-11-27T07:00:00Z", "OPEN", Some("2026-11-26"));
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
        // A later run of the 26th (a superseding file) that no longer finds the key counts
        // in the 26th: from then on the case is cleared on every date.
        let superseded = [
            opened,
            disputed,
            event("2026-12-03T07:00:00Z", "CLEARED", Some("2026-11-26")),
        ];
        for d in ["2026-11-26", "2026-11-27", "2026-12-03"] {
            assert_eq!(
                state_at(&superseded, day(d), &calendar).unwrap(),
                Some(CaseState::Cleared),
                "{d}"
            );
        }
    }

    #[test]
    fn documents_name_their_case() {
        assert_eq!(case_of_document("exception:42:1"), Some(42));
        assert_eq!(case_of_document("exception:42:2:reversal"), Some(42));
        assert_eq!(case_of_document("sale:42"), None);
        assert_eq!(case_of_document("exception:x:1"), None);
    }
}
