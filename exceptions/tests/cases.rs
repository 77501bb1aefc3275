//! Exception cases on both backends: runs open, update and clear them; each resolution
//! moves the books as DESIGN.md says, once; maker-checker holds under concurrency; the
//! history is append-only and a changed row is named by `verify`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use exceptions::{Action, Actor, CaseFilter, CaseState, ExceptionCase, ExceptionError, Resolution};
use ledger::journal::NewSale;
use ledger::{
    BusinessDate, CardId, Currency, Database, Ledger, LedgerSettings, Money, OperatorId,
    OperatorRef, PointOfSale,
};
use testbed::recon::RunItem;

const NO_THRESHOLD: i64 = i64::MAX;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T13:15:02Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn date() -> BusinessDate {
    LedgerSettings::default().calendar.business_date(t0())
}

fn sale(reference: &str, card: &str, minor: i64) -> NewSale {
    NewSale {
        operator_id: OperatorId::parse("OP001").unwrap(),
        operator_ref: OperatorRef::parse(reference).unwrap(),
        card_id: CardId::parse(card).unwrap(),
        amount: Money::new(minor, Currency::COP),
        point_of_sale: PointOfSale::parse("POS-1").unwrap(),
        occurred_at: t0(),
    }
}

/// An item as the reconcile job stores it.
fn item<'a>(
    reference: &'a str,
    case_name: &'a str,
    ledger: Option<(&'a str, i64)>,
    file: Option<(&'a str, i64)>,
) -> RunItem<'a> {
    RunItem {
        operator_id: "OP001",
        operator_ref: reference,
        case_name,
        ledger,
        file,
    }
}

/// Stores run `run_id` of `date` with `items` and makes it current, as the reconcile job's
/// save does, then syncs the cases.
async fn run(ledger: &Arc<dyn Ledger>, date: BusinessDate, run_id: &str, items: &[RunItem<'_>]) {
    testbed::recon::store_run(&**ledger, date, run_id, items).await;
    let report = exceptions::sync_run(ledger.database(), date, run_id, ledger.settings().currency)
        .await
        .unwrap();
    assert!(!report.superseded);
    // A second sync of the same run changes nothing.
    let again = exceptions::sync_run(ledger.database(), date, run_id, ledger.settings().currency)
        .await
        .unwrap();
    assert_eq!(
        (again.opened, again.updated, again.cleared, again.reopened),
        (0, 0, 0, 0)
    );
}

async fn account(ledger: &Arc<dyn Ledger>, id: &str) -> i64 {
    testbed::account_balance(&**ledger, id).await
}

async fn balances(ledger: &Arc<dyn Ledger>, ids: &[&str]) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        out.push(account(ledger, id).await);
    }
    out
}

async fn assert_sound(ledger: &Arc<dyn Ledger>) {
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "ledger invariants broken: {report:?}");
    testbed::events::assert_valid(&**ledger).await;
    let chain = exceptions::verify(ledger.database()).await.unwrap();
    assert_eq!(chain.first_mismatch, None, "{chain:?}");
}

async fn by_ref(ledger: &Arc<dyn Ledger>, reference: &str) -> ExceptionCase {
    let all = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    let mine: Vec<_> = all
        .into_iter()
        .filter(|c| c.operator_ref == reference)
        .collect();
    assert_eq!(mine.len(), 1, "one case per key: {mine:?}");
    mine.into_iter().next().unwrap()
}

fn actor(name: &str) -> Actor {
    Actor::parse(name).unwrap()
}

fn resolve(resolution: Resolution) -> Action {
    Action::Resolve {
        resolution,
        note: "checked against the operator's receipt".into(),
    }
}

async fn decide(
    ledger: &Arc<dyn Ledger>,
    case: &ExceptionCase,
    action: Action,
    who: &str,
    threshold: i64,
) -> Result<exceptions::Decided, ExceptionError> {
    exceptions::decide(&**ledger, case.id, &action, &actor(who), threshold, None).await
}

/// A day with one key of each kind the ledger can correct, its cases opened by the run.
async fn a_reconciled_day(ledger: &Arc<dyn Ledger>) {
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    ledger
        .add_operator(&testbed::operator("OP002"))
        .await
        .unwrap();
    for s in [
        sale("R1", "CARD0001", 10_000),
        sale("R2", "CARD0002", 20_000),
        sale("R4", "CARD0004", 7_000),
        sale("R5", "CARD0006", 3_000),
    ] {
        ledger.record_sale(&s).await.unwrap();
    }
    let items = [
        item("R1", "MISSING_IN_FILE", Some(("CARD0001", 10_000)), None),
        item(
            "R2",
            "AMOUNT_MISMATCH",
            Some(("CARD0002", 20_000)),
            Some(("CARD0002", 25_000)),
        ),
        item("R3", "MISSING_IN_LEDGER", None, Some(("CARD0003", 30_000))),
        item(
            "R4",
            "CARD_MISMATCH",
            Some(("CARD0004", 7_000)),
            Some(("CARD0005", 7_000)),
        ),
        item("R5", "TIMING", Some(("CARD0006", 3_000)), None),
    ];
    run(ledger, date(), "run-1", &items).await;
    let open = exceptions::list(
        ledger.database(),
        &CaseFilter {
            states: vec![CaseState::Open],
            ..CaseFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(open.len(), 5);
    assert_sound(ledger).await;
}

const ACCOUNTS: [&str; 8] = [
    "card:CARD0001",
    "card:CARD0002",
    "card:CARD0003",
    "card:CARD0004",
    "card:CARD0005",
    "card:CARD0006",
    "operator:OP001:receivable",
    "writeoff:OP001",
];

async fn each_resolution_moves_the_books_once(ledger: Arc<dyn Ledger>) {
    a_reconciled_day(&ledger).await;
    let sold = [10_000, 20_000, 0, 7_000, 0, 3_000, -40_000, 0];
    assert_eq!(balances(&ledger, &ACCOUNTS).await, sold);

    // The file is right about R3: the missing sale is posted to its card.
    let r3 = by_ref(&ledger, "R3").await;
    let done = decide(
        &ledger,
        &r3,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_eq!(done.case.state, CaseState::Resolved);
    assert!(done.transaction_id.is_some());
    assert_eq!(
        balances(&ledger, &ACCOUNTS).await,
        [10_000, 20_000, 30_000, 7_000, 0, 3_000, -70_000, 0]
    );
    assert_sound(&ledger).await;
    // The same command again, and at once by someone else: refused, nothing posted twice.
    let again = decide(
        &ledger,
        &r3,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await;
    assert!(
        matches!(again, Err(ExceptionError::WrongState { .. })),
        "{again:?}"
    );

    // R2: the 5,000 the file claims beyond the ledger is written off.
    let r2 = by_ref(&ledger, "R2").await;
    decide(
        &ledger,
        &r2,
        resolve(Resolution::WriteOff),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_eq!(
        balances(&ledger, &ACCOUNTS).await,
        [10_000, 20_000, 30_000, 7_000, 0, 3_000, -75_000, 5_000]
    );
    assert_sound(&ledger).await;

    // R4: the top-up went to the file's card.
    let r4 = by_ref(&ledger, "R4").await;
    decide(
        &ledger,
        &r4,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    // R1: the ledger is right; nothing is posted.
    let r1 = by_ref(&ledger, "R1").await;
    let accepted = decide(
        &ledger,
        &r1,
        resolve(Resolution::AcceptLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_eq!(accepted.transaction_id, None);
    assert_eq!(
        balances(&ledger, &ACCOUNTS).await,
        [10_000, 20_000, 30_000, 0, 7_000, 3_000, -75_000, 5_000]
    );
    assert_sound(&ledger).await;

    // A TIMING case is not adjusted: it clears by itself.
    let r5 = by_ref(&ledger, "R5").await;
    let timing = decide(
        &ledger,
        &r5,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await;
    assert!(
        matches!(timing, Err(ExceptionError::NotApplicable { .. })),
        "{timing:?}"
    );

    // Reopening R3 takes its adjustment back.
    let reopened = decide(
        &ledger,
        &r3,
        Action::Reopen {
            note: "the operator sent the sale again".into(),
        },
        "bea",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_eq!(reopened.case.state, CaseState::Open);
    assert_eq!(
        balances(&ledger, &ACCOUNTS).await,
        [10_000, 20_000, 0, 0, 7_000, 3_000, -45_000, 5_000]
    );
    assert_sound(&ledger).await;
    // Resolved again, it posts again, under a document of its own.
    decide(
        &ledger,
        &r3,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_eq!(account(&ledger, "card:CARD0003").await, 30_000);

    let posted = ledger
        .corrections_on(ledger.settings().calendar.business_date(Utc::now()))
        .await
        .unwrap();
    let documents: Vec<(String, i64)> = posted
        .iter()
        .map(|c| (c.document.clone(), c.receivable))
        .collect();
    let expected = [
        (format!("exception:{}:1", r3.id), -30_000),
        (format!("exception:{}:1", r2.id), -5_000),
        (format!("exception:{}:1", r4.id), 0),
        (format!("exception:{}:1:reversal", r3.id), 30_000),
        (format!("exception:{}:2", r3.id), -30_000),
    ];
    assert_eq!(documents, expected);
    assert_sound(&ledger).await;

    // The next run of the date: a superseding file fixed R5's timing and R4 no longer
    // differs; undecided cases it no longer finds are cleared, decided ones stay.
    let items = [
        item("R1", "MISSING_IN_FILE", Some(("CARD0001", 10_000)), None),
        item(
            "R2",
            "AMOUNT_MISMATCH",
            Some(("CARD0002", 20_000)),
            Some(("CARD0002", 25_000)),
        ),
        item("R3", "MISSING_IN_LEDGER", None, Some(("CARD0003", 30_000))),
    ];
    run(&ledger, date(), "run-2", &items).await;
    let r5 = by_ref(&ledger, "R5").await;
    assert_eq!(
        (r5.state, r5.cleared_run.as_deref()),
        (CaseState::Cleared, Some("run-2"))
    );
    assert_eq!(by_ref(&ledger, "R4").await.state, CaseState::Resolved);
    assert_eq!(by_ref(&ledger, "R1").await.state, CaseState::Resolved);
    // Found again later, a cleared key is the same case, open again.
    run(
        &ledger,
        date(),
        "run-3",
        &[item(
            "R5",
            "MISSING_IN_FILE",
            Some(("CARD0006", 3_000)),
            None,
        )],
    )
    .await;
    let r5 = by_ref(&ledger, "R5").await;
    assert_eq!(
        (r5.state, r5.case_name.as_str()),
        (CaseState::Open, "MISSING_IN_FILE")
    );
    let history: Vec<String> = exceptions::events(ledger.database(), Some(r5.id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(history, ["OPENED", "CLEARED", "REOPENED"]);
    assert_sound(&ledger).await;
    // What others heard, in order: every case opened, each resolution that stood, R3
    // reopened by a person and R5 found again; the refused commands and the clearing, nothing.
    let heard = heard(&ledger).await;
    assert_eq!(
        heard,
        [
            ("exception.opened", "R1", "OPEN", ""),
            ("exception.opened", "R2", "OPEN", ""),
            ("exception.opened", "R3", "OPEN", ""),
            ("exception.opened", "R4", "OPEN", ""),
            ("exception.opened", "R5", "OPEN", ""),
            ("exception.resolved", "R3", "RESOLVED", "ana"),
            ("exception.resolved", "R2", "RESOLVED", "ana"),
            ("exception.resolved", "R4", "RESOLVED", "ana"),
            ("exception.resolved", "R1", "RESOLVED", "ana"),
            ("exception.opened", "R3", "OPEN", ""),
            ("exception.resolved", "R3", "RESOLVED", "ana"),
            ("exception.opened", "R5", "OPEN", ""),
        ]
        .map(|(t, r, s, a)| (t.to_string(), r.to_string(), s.to_string(), a.to_string()))
    );
}

/// The exception events in the outbox: type, operator reference, status and actor (none
/// for an opening).
async fn heard(ledger: &Arc<dyn Ledger>) -> Vec<(String, String, String, String)> {
    use ledger::outbox::EventType::{ExceptionDisputed, ExceptionOpened, ExceptionResolved};
    let types = [ExceptionOpened, ExceptionDisputed, ExceptionResolved];
    testbed::events::written(&**ledger, &types)
        .await
        .into_iter()
        .map(|(t, data)| {
            let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
            (t, text("operator_ref"), text("status"), text("actor"))
        })
        .collect()
}

async fn timing_pairs_clear_when_both_dates_have_run(ledger: Arc<dyn Ledger>) {
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let (day, next) = (date(), date().succ());
    // Sold at the close of `day`; the operator's file put it on the next date.
    run(
        &ledger,
        day,
        "run-a",
        &[item("R9", "TIMING", Some(("CARD0009", 5_000)), None)],
    )
    .await;
    assert_eq!(by_ref(&ledger, "R9").await.state, CaseState::Open);
    run(
        &ledger,
        next,
        "run-b",
        &[item("R9", "TIMING", None, Some(("CARD0009", 5_000)))],
    )
    .await;
    let cases = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    let states: Vec<_> = cases
        .iter()
        .map(|c| (c.business_date, c.state, c.cleared_run.as_deref()))
        .collect();
    // The second date's case is opened and cleared at once: the pair is explained.
    assert_eq!(
        states,
        [
            (day.naive(), CaseState::Cleared, Some("run-b")),
            (next.naive(), CaseState::Cleared, Some("run-b"))
        ]
    );
    // Re-running either date keeps it explained.
    for (date, run_id) in [(day, "run-c"), (next, "run-d")] {
        let side = if date == day {
            item("R9", "TIMING", Some(("CARD0009", 5_000)), None)
        } else {
            item("R9", "TIMING", None, Some(("CARD0009", 5_000)))
        };
        run(&ledger, date, run_id, &[side]).await;
    }
    let cases = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    assert!(
        cases.iter().all(|c| c.state == CaseState::Cleared),
        "{cases:?}"
    );
    assert_sound(&ledger).await;
}

async fn maker_checker_posts_once_after_another_person_approves(ledger: Arc<dyn Ledger>) {
    a_reconciled_day(&ledger).await;
    let threshold = 25_000;
    let r3 = by_ref(&ledger, "R3").await;
    let proposed = decide(
        &ledger,
        &r3,
        resolve(Resolution::AdjustLedger),
        "ana",
        threshold,
    )
    .await
    .unwrap();
    assert_eq!(proposed.case.state, CaseState::PendingApproval);
    assert_eq!(proposed.transaction_id, None);
    assert_eq!(
        account(&ledger, "card:CARD0003").await,
        0,
        "nothing posted before approval"
    );
    let own = decide(
        &ledger,
        &r3,
        Action::Approve { note: None },
        "ana",
        threshold,
    )
    .await;
    assert!(
        matches!(own, Err(ExceptionError::OwnApproval { .. })),
        "{own:?}"
    );

    let approvals: Vec<_> = (0..20)
        .map(|i| {
            let (ledger, id) = (ledger.clone(), r3.id);
            tokio::spawn(async move {
                exceptions::decide(
                    &*ledger,
                    id,
                    &Action::Approve { note: None },
                    &actor(&format!("checker{i}")),
                    threshold,
                    None,
                )
                .await
            })
        })
        .collect();
    let mut approved = 0;
    for a in approvals {
        match a.await.unwrap() {
            Ok(d) => {
                approved += 1;
                assert!(d.transaction_id.is_some());
            }
            Err(ExceptionError::WrongState { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(approved, 1, "exactly one approval");
    assert_eq!(account(&ledger, "card:CARD0003").await, 30_000);
    let report = ledger.check_invariants().await.unwrap();
    assert_eq!(report.transactions, 5, "four sales and one adjustment");
    assert_sound(&ledger).await;

    // Under the threshold no second person is needed; a rejected proposal goes back to OPEN.
    let r2 = by_ref(&ledger, "R2").await;
    let small = decide(
        &ledger,
        &r2,
        resolve(Resolution::WriteOff),
        "ana",
        threshold,
    )
    .await
    .unwrap();
    assert_eq!(small.case.state, CaseState::Resolved);
    let r1 = by_ref(&ledger, "R1").await;
    decide(&ledger, &r1, resolve(Resolution::WriteOff), "ana", 1_000)
        .await
        .unwrap();
    let rejected = decide(
        &ledger,
        &r1,
        Action::Reject {
            note: "the operator's file is wrong, not our ledger".into(),
        },
        "bea",
        1_000,
    )
    .await
    .unwrap();
    assert_eq!(
        (rejected.case.state, rejected.case.resolution),
        (CaseState::Open, None)
    );
    assert_sound(&ledger).await;
}

async fn disputes_are_the_operators_own(ledger: Arc<dyn Ledger>) {
    a_reconciled_day(&ledger).await;
    let r2 = by_ref(&ledger, "R2").await;
    let dispute = Action::Dispute {
        reason: "the receipt shows 25,000".into(),
        evidence_ref: Some("ticket-881".into()),
    };
    let theirs = exceptions::decide(
        &*ledger,
        r2.id,
        &dispute,
        &Actor::operator(&OperatorId::parse("OP002").unwrap(), "pos-user").unwrap(),
        NO_THRESHOLD,
        Some("OP002"),
    )
    .await;
    assert!(
        matches!(theirs, Err(ExceptionError::NotFound(_))),
        "{theirs:?}"
    );
    let mine = exceptions::decide(
        &*ledger,
        r2.id,
        &dispute,
        &Actor::operator(&OperatorId::parse("OP001").unwrap(), "pos-user").unwrap(),
        NO_THRESHOLD,
        Some("OP001"),
    )
    .await
    .unwrap();
    assert_eq!(mine.case.state, CaseState::Disputed);
    assert_eq!(
        mine.case.dispute_reason.as_deref(),
        Some("the receipt shows 25,000")
    );
    let disputed = exceptions::list(
        ledger.database(),
        &CaseFilter {
            states: vec![CaseState::Disputed],
            ..CaseFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(disputed.len(), 1);
    // A disputed case can still be decided by finance.
    decide(
        &ledger,
        &r2,
        resolve(Resolution::AcceptLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_sound(&ledger).await;
    // The dispute is heard with who made it and why; the other operator's try, not at all.
    let heard = heard(&ledger).await;
    assert_eq!(
        heard[5..],
        [
            (
                "exception.disputed",
                "R2",
                "DISPUTED",
                "operator:OP001:pos-user"
            ),
            ("exception.resolved", "R2", "RESOLVED", "ana"),
        ]
        .map(|(t, r, s, a)| (t.to_string(), r.to_string(), s.to_string(), a.to_string()))
    );
}

async fn a_changed_event_is_named_and_the_history_refuses_changes(ledger: Arc<dyn Ledger>) {
    a_reconciled_day(&ledger).await;
    let r3 = by_ref(&ledger, "R3").await;
    decide(
        &ledger,
        &r3,
        resolve(Resolution::AdjustLedger),
        "ana",
        NO_THRESHOLD,
    )
    .await
    .unwrap();
    assert_sound(&ledger).await;
    let history = exceptions::events(ledger.database(), None).await.unwrap();
    let victim = history[2].seq;
    let refused_update = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query("UPDATE exception_events SET note = 'nothing to see' WHERE seq = $1")
            .bind(victim)
            .execute(pool)
            .await
            .map(|_| ())
    });
    assert!(refused_update.is_err(), "UPDATE must be refused");
    let refused_delete = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query("DELETE FROM exception_events WHERE seq = $1").bind(victim).execute(pool).await.map(|_| ())
    });
    assert!(refused_delete.is_err(), "DELETE must be refused");

    // Someone with the database's owner rights goes around the triggers.
    match ledger.database() {
        Database::Postgres(pool) => {
            sqlx::raw_sql(&format!(
                "ALTER TABLE exception_events DISABLE TRIGGER exception_events_append_only; \
                 UPDATE exception_events SET amount = 1 WHERE seq = {victim}; \
                 ALTER TABLE exception_events ENABLE TRIGGER exception_events_append_only"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
        Database::Sqlite(pool) => {
            sqlx::raw_sql(&format!(
                "DROP TRIGGER exception_events_no_update; \
                 UPDATE exception_events SET amount = 1 WHERE seq = {victim}"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let report = exceptions::verify(ledger.database()).await.unwrap();
    let mismatch = report.first_mismatch.expect("the change is found");
    assert_eq!(mismatch.seq, victim, "{mismatch:?}");
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = testbed::sqlite_ledger(ledger::LedgerSettings::default()).await;
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(db) = testbed::postgres_ledger(ledger::LedgerSettings::default()).await
                    else {
                        return;
                    };
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    each_resolution_moves_the_books_once,
    timing_pairs_clear_when_both_dates_have_run,
    maker_checker_posts_once_after_another_person_approves,
    disputes_are_the_operators_own,
    a_changed_event_is_named_and_the_history_refuses_changes,
);
