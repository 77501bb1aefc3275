//! Finance's loop on both backends, as the reports show it. Day D is reconciled: its report
//! lists every case open at age 0 and no adjustments. Two days later finance decides (one of
//! each resolution, one waiting for approval, one disputed by the operator). D's report
//! re-run says the same bytes (it is as of the end of D); the day in between, reported,
//! shows D's cases as they stood at its end, a day old, the TIMING pairs its file explains
//! cleared; today's report shows the adjustments with their cases and the cases still open
//! with their ages. Then a superseding file of D clears the case it fixes, in D's report,
//! while the report of the day in between stays byte for byte what it was. A final
//! report's settlement lines are kept for the operators' API.

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
    testbed::events::assert_valid(ledger).await;
    let chain = exceptions::verify(ledger.database()).await.unwrap();
    assert_eq!(chain.first_mismatch, None, "{chain:?}");
}

async fn balance(ledger: &dyn Ledger, account: &str) -> i64 {
    testbed::account_balance(ledger, account).await
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
    let (day, between) = (today.pred().pred(), today.pred());
    let fixtures = tempfile::tempdir().unwrap();
    prepare_day_on(&*ledger, day, fixtures.path()).await;
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

    // Two days later (today) finance decides.
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
    // The case a superseding file will fix, at the end.
    let fixed_id = cases
        .iter()
        .filter(|c| c.case_name == "MISSING_IN_LEDGER")
        .filter(|c| c.id != adjusted.id && c.id != large.id)
        .find(|c| c.operator_id != adjusted.operator_id)
        .expect("another MISSING_IN_LEDGER case")
        .id;
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

    // The day in between, reconciled and reported: D's cases as they stood at its end (the
    // decisions are today's), a day old; its file holds the other side of D's TIMING items.
    // D's run counts from D on: no date had been reported when it ran.
    reconcile_date(&*ledger, between).await;
    let m1 = report(&*ledger, &store, between, reports::ReportKind::Final).await;
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
        "the day in between's file explains some of D's TIMING"
    );
    let open = csv_rows(&read(&store, format!("{}exceptions_open.csv", m1.prefix)).await);
    assert_eq!(open.len(), cases.len() - explained.len());
    for row in &open {
        assert_eq!(
            (&*row["found_on"], &*row["age_days"], &*row["state"]),
            (&*day.to_string(), "1", "OPEN"),
            "{row:?}"
        );
    }
    assert!(open.iter().any(|r| r["case_id"] == fixed_id.to_string()));
    let none = csv_rows(&read(&store, format!("{}adjustments.csv", m1.prefix)).await);
    assert_eq!(none.len(), 0, "nothing was posted on the day in between");

    // Today's report: the adjustments with their cases, the open cases with their ages.
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
    let now = exceptions::list(ledger.database(), &CaseFilter::default())
        .await
        .unwrap();
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

    // And D itself still says what it said at its end: the decisions are today's, the
    // clearing of its TIMING cases the day in between's.
    let v3 = report(&*ledger, &store, day, reports::ReportKind::Final).await;
    for file in ["exceptions_open.csv", "adjustments.csv"] {
        assert_eq!(
            read(&store, format!("{}{file}", v1.prefix)).await,
            read(&store, format!("{}{file}", v3.prefix)).await,
            "{file}"
        );
    }
    assert_sound(&*ledger).await;

    // A superseding file: the operator of an open MISSING_IN_LEDGER case sends its file
    // again without that sale. The day's next run no longer finds the key: its case clears.
    let fixed = cases.iter().find(|c| c.id == fixed_id).unwrap().clone();
    let files = LocalStore::new(fixtures.path()).unwrap();
    supersede_without(&files, day, &fixed.operator_id, &fixed.operator_ref).await;
    let rules = ledger::MoneyRules::new(Currency::COP);
    let ingested = ingest::ingest_files(&files as &dyn ObjectStore, &*ledger, rules)
        .await
        .unwrap();
    assert_eq!(ingested.accepted.len(), 1, "{ingested:?}");
    let run_id = reconcile_date(&*ledger, day).await;
    let after = exceptions::case(ledger.database(), fixed.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, CaseState::Cleared);
    assert_eq!(after.cleared_run.as_deref(), Some(run_id.as_str()));
    let decided = exceptions::case(ledger.database(), adjusted.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decided.state,
        CaseState::Resolved,
        "a decided case stays decided"
    );
    // The day in between keeps what it said at its end.
    let m2 = report(&*ledger, &store, between, reports::ReportKind::Final).await;
    for file in [
        "exceptions_open.csv",
        "exceptions_open.parquet",
        "adjustments.csv",
    ] {
        assert_eq!(
            read(&store, format!("{}{file}", m1.prefix)).await,
            read(&store, format!("{}{file}", m2.prefix)).await,
            "{file}"
        );
    }
    // D's report says so: the case is no longer open, nor a discrepancy.
    let v4 = report(&*ledger, &store, day, reports::ReportKind::Final).await;
    let open = csv_rows(&read(&store, format!("{}exceptions_open.csv", v4.prefix)).await);
    assert!(open.iter().all(|r| r["case_id"] != fixed.id.to_string()));
    let listed = csv_rows(&read(&store, format!("{}discrepancies.csv", v4.prefix)).await);
    assert!(
        listed
            .iter()
            .all(|r| r["operator_ref"] != fixed.operator_ref)
    );
    assert_sound(&*ledger).await;
}

/// Puts under `incoming/` the operator's file of `date` again as its next seq, without
/// the record of `operator_ref`, its trailer recounted.
async fn supersede_without(
    store: &LocalStore,
    date: BusinessDate,
    operator: &str,
    operator_ref: &str,
) {
    let stamp = date.naive().format("%Y%m%d");
    let processed = store
        .list(&format!("processed/{operator}/{date}/"))
        .await
        .unwrap();
    let first = processed
        .iter()
        .find(|o| o.key.ends_with("_001.csv"))
        .expect("the operator's first file");
    let text = String::from_utf8(store.get_bytes(&first.key).await.unwrap().to_vec()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.retain(|l| !(l.starts_with("D,") && l.split(',').nth(2) == Some(operator_ref)));
    let (mut count, mut sales, mut voids) = (0, 0, 0);
    for l in lines.iter().filter(|l| l.starts_with("D,")) {
        let cells: Vec<&str> = l.split(',').collect();
        count += 1;
        match cells[1] {
            "SALE" => sales += minor(cells[5]),
            _ => voids += minor(cells[5]),
        }
    }
    let money = |m: i64| ledger::money::format_minor(m, 2);
    lines[0] = lines[0].replacen(",001,", ",002,", 1);
    let last = lines.len() - 1;
    lines[last] = format!("T,{count},{},{}", money(sales), money(voids));
    let body = lines.join("\n") + "\n";
    store
        .put(
            &format!("incoming/{operator}/{date}/{operator}_{stamp}_002.csv"),
            bytes::Bytes::from(body),
        )
        .await
        .unwrap();
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
