//! Finance's loop on both backends, as the reports show it: a reconciled day's report lists
//! every case open with age 0 and no adjustments; finance decides (one of each resolution,
//! one waiting for approval, one disputed by the operator) the next day; the reconciled
//! day's report re-run says the same bytes (it is as of the end of its date), and the next
//! day's report shows the adjustments with their cases and the cases still open with their
//! ages. A final report's settlement lines are kept for the operators' API.

use std::collections::BTreeMap;
use std::sync::Arc;

use exceptions::{Action, Actor, CaseFilter, CaseState, ExceptionCase, Resolution};
use ledger::{BusinessDate, Currency, Ledger, LedgerSettings};
use storage::{LocalStore, ObjectStore};

mod support;

use support::{csv_rows, minor, prepare_day_on, reconcile_date};

async fn report(
    ledger: &dyn Ledger,
    store: &dyn ObjectStore,
    date: BusinessDate,
    kind: reports::ReportKind,
) -> reports::Published {
    let (_, published) = reports::report(ledger, store, date, Currency::COP, vec![], kind, "run")
        .await
        .unwrap();
    published
}

async fn read(store: &dyn ObjectStore, key: String) -> Vec<u8> {
    store.get_bytes(&key).await.unwrap().to_vec()
}

async fn assert_sound(ledger: &dyn Ledger) {
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "ledger invariants broken: {report:?}");
    let chain = exceptions::verify(ledger.database()).await.unwrap();
    assert_eq!(chain.first_mismatch, None, "{chain:?}");
}

async fn balance(ledger: &dyn Ledger, account: &str) -> i64 {
    let balance: Option<i64> = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(pool)
            .await
            .unwrap()
    });
    balance.unwrap_or(0)
}

fn resolve(resolution: Resolution) -> Action {
    Action::Resolve {
        resolution,
        note: "checked against the operator's receipt".into(),
    }
}

async fn the_next_days_report_shows_what_finance_decided(ledger: Arc<dyn Ledger>) {
    let objects = tempfile::tempdir().unwrap();
    let store = LocalStore::new(objects.path()).unwrap();
    let calendar = ledger.settings().calendar;
    let today = calendar.business_date(ledger::journal::now());
    let day = today.pred();
    prepare_day_on(&*ledger, day).await;
    let cases = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    assert!(cases.len() > 20, "{} cases", cases.len());

    // The reconciled day's report: every case open, found that day, age 0; nothing adjusted.
    let v1 = report(&*ledger, &store, day, reports::ReportKind::Final).await;
    let open = csv_rows(&read(&store, format!("{}exceptions_open.csv", v1.prefix)).await);
    assert_eq!(open.len(), cases.len(), "one row per case");
    for row in &open {
        assert_eq!(
            (&*row["found_on"], &*row["age_days"], &*row["state"]),
            (&*day.to_string(), "0", "OPEN"),
            "{row:?}"
        );
    }
    let adjustments = read(&store, format!("{}adjustments.csv", v1.prefix)).await;
    assert_eq!(csv_rows(&adjustments).len(), 0);
    let summary = csv_rows(&read(&store, format!("{}settlement_summary.csv", v1.prefix)).await);
    assert!(summary.iter().all(|r| r["adjustments"] == "0.00"));
    // The published lines are the operators' to read.
    for r in &summary {
        let kept = ledger::settlement_line::of_operator(
            ledger.database(),
            &r["operator_id"],
            Some(day),
            None,
            1,
        )
        .await
        .unwrap();
        assert_eq!(kept.len(), 1, "{}", r["operator_id"]);
        assert_eq!(kept[0].net_due, minor(&r["net_due"]));
        assert_eq!(kept[0].status, r["status"]);
        assert_eq!(kept[0].report_version, 1);
    }

    // The next morning finance decides.
    let first = |name: &str, skip: usize| -> ExceptionCase {
        cases
            .iter()
            .filter(|c| c.case_name == name)
            .nth(skip)
            .unwrap_or_else(|| panic!("no {name} #{skip}"))
            .clone()
    };
    let (adjusted, written_off, accepted, large, disputed) = (
        first("MISSING_IN_LEDGER", 0),
        first("AMOUNT_MISMATCH", 0),
        first("MISSING_IN_FILE", 0),
        first("MISSING_IN_LEDGER", 1),
        first("AMOUNT_MISMATCH", 1),
    );
    let maker = Actor::parse("ana.finance").unwrap();
    let card = format!("card:{}", adjusted.file_card_id.as_deref().unwrap());
    let card_before = balance(&*ledger, &card).await;
    let writeoff = format!("writeoff:{}", written_off.operator_id);
    let decide = |case: &ExceptionCase, action: Action, threshold: i64| {
        let (ledger, maker, id) = (ledger.clone(), maker.clone(), case.id);
        async move {
            exceptions::decide(&*ledger, id, &action, &maker, threshold, None)
                .await
                .unwrap()
        }
    };
    let done = decide(&adjusted, resolve(Resolution::AdjustLedger), i64::MAX).await;
    assert_eq!(done.case.state, CaseState::Resolved);
    assert_sound(&*ledger).await;
    // The missing sale is on its card now.
    assert_eq!(
        balance(&*ledger, &card).await - card_before,
        adjusted.file_amount.unwrap()
    );
    decide(&written_off, resolve(Resolution::WriteOff), i64::MAX).await;
    assert_sound(&*ledger).await;
    assert_eq!(balance(&*ledger, &writeoff).await, -written_off.difference);
    decide(&accepted, resolve(Resolution::AcceptLedger), i64::MAX).await;
    assert_sound(&*ledger).await;
    let waiting = decide(
        &large,
        resolve(Resolution::AdjustLedger),
        large.difference.abs(),
    )
    .await;
    assert_eq!(waiting.case.state, CaseState::PendingApproval);
    assert_eq!(
        waiting.transaction_id, None,
        "nothing posted before approval"
    );
    let operator = ledger::OperatorId::parse(&disputed.operator_id).unwrap();
    let dispute = Action::Dispute {
        reason: "our receipt shows otherwise".into(),
        evidence_ref: None,
    };
    exceptions::decide(
        &*ledger,
        disputed.id,
        &dispute,
        &Actor::operator(&operator, "client").unwrap(),
        i64::MAX,
        Some(&disputed.operator_id),
    )
    .await
    .unwrap();
    assert_sound(&*ledger).await;
    let decided_on = calendar.business_date(ledger::journal::now());

    // The reconciled day's report again: as of the end of its date, byte for byte.
    let v2 = report(&*ledger, &store, day, reports::ReportKind::Final).await;
    assert_eq!(v2.version, 2);
    for file in [
        "exceptions_open.csv",
        "exceptions_open.parquet",
        "adjustments.csv",
    ] {
        assert_eq!(
            read(&store, format!("{}{file}", v1.prefix)).await,
            read(&store, format!("{}{file}", v2.prefix)).await,
            "{file}"
        );
    }

    // The next day's report: the adjustments with their cases, the open cases with ages.
    reconcile_date(&*ledger, decided_on).await;
    let next = report(
        &*ledger,
        &store,
        decided_on,
        reports::ReportKind::Provisional,
    )
    .await;
    let posted = csv_rows(&read(&store, format!("{}adjustments.csv", next.prefix)).await);
    let by_case: BTreeMap<i64, &BTreeMap<String, String>> = posted
        .iter()
        .map(|r| (r["case_id"].parse().unwrap(), r))
        .collect();
    assert_eq!(
        by_case.keys().copied().collect::<Vec<_>>(),
        {
            let mut ids = vec![adjusted.id, written_off.id];
            ids.sort();
            ids
        },
        "ACCEPT_LEDGER and an unapproved proposal post nothing"
    );
    let a = by_case[&adjusted.id];
    assert_eq!(
        (
            &*a["kind"],
            &*a["found_on"],
            &*a["operator_ref"],
            &*a["actor"]
        ),
        (
            "adjustment",
            &*day.to_string(),
            &*adjusted.operator_ref,
            "ana.finance"
        )
    );
    // The missing sale makes the operator owe its amount; the write-off forgives the
    // difference the file claimed beyond the ledger.
    assert_eq!(minor(&a["amount"]), adjusted.file_amount.unwrap());
    let w = by_case[&written_off.id];
    assert_eq!(w["kind"], "writeoff");
    assert_eq!(minor(&w["amount"]), -written_off.difference);
    let lines = csv_rows(&read(&store, format!("{}settlement_summary.csv", next.prefix)).await);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for r in &posted {
        *expected.entry(r["operator_id"].clone()).or_default() += minor(&r["amount"]);
    }
    for (op, amount) in &expected {
        let line = lines
            .iter()
            .find(|l| &l["operator_id"] == op)
            .expect("a line for every operator adjusted");
        assert_eq!(minor(&line["adjustments"]), *amount, "{op}");
    }

    let open = csv_rows(&read(&store, format!("{}exceptions_open.csv", next.prefix)).await);
    // The next day's run found the other side of the day's TIMING items: those pairs are
    // explained, and cleared by the system.
    let now = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
    let explained: Vec<i64> = now
        .iter()
        .filter(|c| c.case_name == "TIMING" && c.business_date == day.naive())
        .filter(|c| c.state == CaseState::Cleared)
        .map(|c| c.id)
        .collect();
    assert!(
        !explained.is_empty(),
        "the fixture's next-day file explains some TIMING"
    );
    assert_eq!(
        open.len(),
        cases.len() - 3 - explained.len(),
        "three cases decided, the explained TIMING cleared"
    );
    // At the end of today the report and the cases' present state agree.
    let undecided: Vec<String> = now
        .iter()
        .filter(|c| c.state.is_undecided())
        .map(|c| c.id.to_string())
        .collect();
    let listed: Vec<String> = open.iter().map(|r| r["case_id"].clone()).collect();
    assert_eq!(listed.len(), undecided.len());
    assert!(listed.iter().all(|id| undecided.contains(id)));
    let age = (decided_on.naive() - day.naive()).num_days().to_string();
    let state_of = |id: i64| {
        open.iter()
            .find(|r| r["case_id"] == id.to_string())
            .map(|r| r["state"].clone())
    };
    assert!(
        open.iter()
            .all(|r| r["age_days"] == age && r["found_on"] == day.to_string())
    );
    assert_eq!(state_of(large.id).as_deref(), Some("PENDING_APPROVAL"));
    assert_eq!(state_of(disputed.id).as_deref(), Some("DISPUTED"));
    assert_eq!(state_of(adjusted.id), None);
    assert!(explained.iter().all(|id| state_of(*id).is_none()));
    let page = String::from_utf8(read(&store, format!("{}index.html", next.prefix)).await).unwrap();
    assert!(page.contains("Open exceptions by age"), "{page}");
    assert!(
        page.contains("ana.finance"),
        "the adjustments table names who decided"
    );

    // And the reconciled day itself still says what it said at its end: the decisions and
    // the next day's clearing of its TIMING cases are the next day's.
    let v3 = report(&*ledger, &store, day, reports::ReportKind::Final).await;
    for file in ["exceptions_open.csv", "adjustments.csv"] {
        assert_eq!(
            read(&store, format!("{}{file}", v1.prefix)).await,
            read(&store, format!("{}{file}", v3.prefix)).await,
            "{file}"
        );
    }
    assert_sound(&*ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    the_next_days_report_shows_what_finance_decided(db.ledger.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    the_next_days_report_shows_what_finance_decided(db.ledger.clone()).await;
}
