//! Random sequences of runs, resolutions, approvals, rejections and reopenings (on SQLite):
//! one case per key, every case in a state its history explains, the ledger sound and the
//! chain intact after every step, and every posting equal to the case's difference at the
//! moment it was decided.

use std::sync::Arc;

use exceptions::{Action, Actor, CaseFilter, CaseState, ExceptionCase, ExceptionError, Resolution};
use ledger::{BusinessDate, Ledger, LedgerSettings};
use proptest::prelude::*;
use testbed::recon::{RunItem, store_run};

const KEYS: [&str; 4] = ["R0", "R1", "R2", "R3"];
const CARDS: [&str; 4] = ["CARD0000", "CARD0001", "CARD0002", "CARD0003"];
const OTHER_CARDS: [&str; 4] = ["CARD1000", "CARD1001", "CARD1002", "CARD1003"];
const ACTORS: [&str; 3] = ["ana", "bea", "carlos"];
const THRESHOLD: i64 = 15_000;

/// What a run finds for one key: nothing (MATCHED), or the two sides.
#[derive(Debug, Clone)]
enum Finding {
    Matched,
    LedgerOnly(i64),
    FileOnly(i64),
    Amounts(i64, i64),
    Cards(i64),
}

#[derive(Debug, Clone)]
enum Step {
    Run([Finding; 4]),
    Resolve(usize, Resolution, usize),
    Approve(usize, usize),
    Reject(usize),
    Reopen(usize),
}

fn amount() -> impl Strategy<Value = i64> {
    (1i64..40).prop_map(|n| n * 1_000)
}

fn finding() -> impl Strategy<Value = Finding> {
    prop_oneof![
        Just(Finding::Matched),
        amount().prop_map(Finding::LedgerOnly),
        amount().prop_map(Finding::FileOnly),
        (amount(), amount())
            .prop_filter("amounts differ", |(a, b)| a != b)
            .prop_map(|(a, b)| Finding::Amounts(a, b)),
        amount().prop_map(Finding::Cards),
    ]
}

fn resolution() -> impl Strategy<Value = Resolution> {
    prop_oneof![
        Just(Resolution::AdjustLedger),
        Just(Resolution::AcceptLedger),
        Just(Resolution::WriteOff)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => [finding(), finding(), finding(), finding()].prop_map(Step::Run),
        3 => (0..4usize, resolution(), 0..3usize).prop_map(|(k, r, a)| Step::Resolve(k, r, a)),
        2 => (0..4usize, 0..3usize).prop_map(|(k, a)| Step::Approve(k, a)),
        1 => (0..4usize).prop_map(Step::Reject),
        1 => (0..4usize).prop_map(Step::Reopen),
    ]
}

fn item(k: usize, finding: &Finding) -> Option<RunItem<'static>> {
    let (case_name, ledger, file) = match *finding {
        Finding::Matched => return None,
        Finding::LedgerOnly(a) => ("MISSING_IN_FILE", Some((CARDS[k], a)), None),
        Finding::FileOnly(a) => ("MISSING_IN_LEDGER", None, Some((CARDS[k], a))),
        Finding::Amounts(l, f) => ("AMOUNT_MISMATCH", Some((CARDS[k], l)), Some((CARDS[k], f))),
        Finding::Cards(a) => (
            "CARD_MISMATCH",
            Some((CARDS[k], a)),
            Some((OTHER_CARDS[k], a)),
        ),
    };
    Some(RunItem {
        operator_id: "OP001",
        operator_ref: KEYS[k],
        case_name,
        ledger,
        file,
    })
}

async fn case_of(ledger: &Arc<dyn Ledger>, k: usize) -> Option<ExceptionCase> {
    let all = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    let mine: Vec<_> = all
        .into_iter()
        .filter(|c| c.operator_ref == KEYS[k])
        .collect();
    assert!(mine.len() <= 1, "one case per key: {mine:?}");
    mine.into_iter().next()
}

/// What a decision on `before` posted to the receivable, by the rules of DESIGN.md.
fn expected_receivable(before: &ExceptionCase, resolution: Resolution) -> i64 {
    match (resolution, before.case_name.as_str()) {
        (Resolution::AdjustLedger, "CARD_MISMATCH") => 0,
        _ => before.difference,
    }
}

async fn scenario(steps: Vec<Step>) {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let ledger = db.ledger.clone();
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let date = BusinessDate::parse("2026-11-26").unwrap();
    let today = ledger.settings().calendar.business_date(chrono::Utc::now());
    let mut runs = 0;
    for step in steps {
        let (k, action, who) = match step {
            Step::Run(findings) => {
                runs += 1;
                let run_id = format!("run-{runs}");
                let items: Vec<RunItem<'_>> = findings
                    .iter()
                    .enumerate()
                    .filter_map(|(k, f)| item(k, f))
                    .collect();
                store_run(&*ledger, date, &run_id, &items).await;
                exceptions::sync_run(ledger.database(), date, &run_id, ledger.settings().currency)
                    .await
                    .unwrap();
                // Every key the run found has its case, undecided ones as found.
                for (k, f) in findings.iter().enumerate() {
                    let case = case_of(&ledger, k).await;
                    match (item(k, f), case) {
                        (Some(found), Some(case)) => {
                            assert_ne!(case.state, CaseState::Cleared, "{case:?}");
                            if case.state.is_undecided() {
                                assert_eq!(case.difference, found.difference(), "{case:?}");
                            }
                        }
                        (Some(_), None) => panic!("key {} found but has no case", KEYS[k]),
                        (None, Some(case)) => assert!(
                            matches!(case.state, CaseState::Cleared | CaseState::Resolved),
                            "{case:?}"
                        ),
                        (None, None) => {}
                    }
                }
                check(&ledger).await;
                continue;
            }
            Step::Resolve(k, r, a) => (
                k,
                Action::Resolve {
                    resolution: r,
                    note: "checked".into(),
                },
                a,
            ),
            Step::Approve(k, a) => (k, Action::Approve { note: None }, a),
            Step::Reject(k) => (
                k,
                Action::Reject {
                    note: "not yet".into(),
                },
                0,
            ),
            Step::Reopen(k) => (
                k,
                Action::Reopen {
                    note: "again".into(),
                },
                1,
            ),
        };
        let Some(before) = case_of(&ledger, k).await else {
            continue;
        };
        let actor = Actor::parse(ACTORS[who]).unwrap();
        let result =
            exceptions::decide(&*ledger, before.id, &action, &actor, THRESHOLD, None).await;
        match result {
            Ok(done) => {
                if let Some(transaction) = done.transaction_id {
                    let posted = ledger.corrections_on(today).await.unwrap();
                    let correction = posted
                        .iter()
                        .find(|c| c.transaction_id == transaction)
                        .expect("the posting is a correction");
                    let expected = match &action {
                        Action::Reopen { .. } => {
                            -expected_receivable(&before, before.resolution.unwrap())
                        }
                        Action::Resolve { resolution, .. } => {
                            expected_receivable(&before, *resolution)
                        }
                        _ => expected_receivable(&before, before.resolution.unwrap()),
                    };
                    assert_eq!(correction.receivable, expected, "{before:?} {action:?}");
                    assert_eq!(correction.actor, ACTORS[who]);
                }
                if let Action::Approve { .. } = action {
                    assert_ne!(before.proposed_by.as_deref(), Some(ACTORS[who]));
                }
            }
            Err(
                ExceptionError::WrongState { .. }
                | ExceptionError::OwnApproval { .. }
                | ExceptionError::NotApplicable { .. },
            ) => {
                let after = case_of(&ledger, k).await.unwrap();
                assert_eq!(after, before, "a refused decision changes nothing");
            }
            Err(e) => panic!("unexpected: {e}"),
        }
        check(&ledger).await;
    }
}

async fn check(ledger: &Arc<dyn Ledger>) {
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "{report:?}");
    let chain = exceptions::verify(ledger.database()).await.unwrap();
    assert_eq!(chain.first_mismatch, None);
    for case in exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap()
    {
        // The state and the decision agree.
        match case.state {
            CaseState::PendingApproval => {
                assert!(case.resolution.is_some() && case.proposed_by.is_some())
            }
            CaseState::Resolved => assert!(case.resolution.is_some()),
            CaseState::Open => assert!(case.resolution.is_none() && case.proposed_by.is_none()),
            CaseState::Disputed | CaseState::Cleared => {}
        }
        let posts = matches!(
            case.resolution,
            Some(Resolution::AdjustLedger | Resolution::WriteOff)
        );
        assert_eq!(
            case.transaction_id.is_some(),
            case.state == CaseState::Resolved && posts,
            "{case:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn decisions_keep_one_case_per_key_and_the_books_sound(
        steps in proptest::collection::vec(step(), 1..14)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(scenario(steps));
    }
}
