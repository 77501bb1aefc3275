//! Money in, on both backends, over several business days. Three fixtures days are settled
//! (their reports post each operator's settlement once, a re-run posts nothing); the bank
//! statements that pay them (the fixtures' own, camt.053 and CSV) parse to their truth, go in
//! once, and are matched by payer account or reference, one deposit left unidentified. The
//! aging that `receivables_as_of` and the report's `receivables_aging.csv` show equals an
//! aging computed here from the fixtures' truth; the partial payer's rest and the silent
//! operator are overdue; the unidentified deposit sits in suspense until finance assigns it.
//! After every step the ledger's invariants hold, and for every operator the receivable is
//! Σ net due − Σ payments.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone};
use fixtures::{Fixture, FixtureConfig, Habit, Owed};
use ingest::bank_statement::{BankStatement, Direction, parse_camt053, parse_csv};
use ledger::{BusinessDate, Currency, Ledger, LedgerSettings, MoneyRules};
use storage::{LocalStore, ObjectStore};

mod support;

use support::{csv_rows, minor, prepare_seeded_day, reconcile_date};

const ACCOUNT: &str = "CO12BANK0000000001";

fn date(text: &str) -> BusinessDate {
    BusinessDate::parse(text).unwrap()
}

/// Noon of `day` in the business time zone.
fn noon(ledger: &dyn Ledger, day: &str) -> chrono::DateTime<chrono::Utc> {
    let tz = ledger.settings().calendar.time_zone();
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    tz.from_local_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn report(
    ledger: &dyn Ledger,
    store: &dyn ObjectStore,
    day: BusinessDate,
    kind: reports::ReportKind,
) -> String {
    let (_, published) = reports::report(ledger, store, day, Currency::COP, vec![], kind, "run")
        .await
        .unwrap();
    published.prefix
}

async fn assert_sound(ledger: &dyn Ledger) {
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "ledger invariants broken: {report:?}");
    testbed::events::assert_valid(ledger).await;
}

async fn scalar(ledger: &dyn Ledger, sql: &str) -> i64 {
    ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
    })
}

/// An event's decimal amount (two-digit COP), in minor units.
fn decimal(v: &serde_json::Value) -> i64 {
    let text = v.as_str().expect("an amount is a decimal string");
    let (sign, digits) = text.strip_prefix('-').map_or((1, text), |t| (-1, t));
    sign * ledger::money::parse_minor("amount", digits, 2).unwrap()
}

/// What each published line says is owed.
async fn owed(ledger: &dyn Ledger) -> Vec<Owed> {
    let rows: Vec<(String, NaiveDate, NaiveDate, i64)> = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_as(
            "SELECT operator_id, business_date, due_date, CAST(net_due + adjustments AS BIGINT) \
             FROM settlement_lines ORDER BY business_date, operator_id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    rows.into_iter()
        .map(|(operator_id, settles_date, due_date, amount)| Owed {
            operator_id,
            settles_date,
            due_date,
            amount,
        })
        .collect()
}

/// The aging computed here, from the lines and the truth's payments only: each operator's
/// payments taken from its dues oldest due date first, what is left bucketed by days late.
fn expected_aging(
    owed: &[Owed],
    paid: &BTreeMap<String, i64>,
    as_of: NaiveDate,
) -> BTreeMap<String, [i64; 6]> {
    let mut by_op: BTreeMap<String, Vec<&Owed>> = BTreeMap::new();
    for o in owed {
        by_op.entry(o.operator_id.clone()).or_default().push(o);
    }
    by_op
        .into_iter()
        .map(|(op, mut dues)| {
            dues.sort_by_key(|o| (o.due_date, o.settles_date));
            let mut left = paid.get(&op).copied().unwrap_or(0);
            let mut buckets = [0i64; 6]; // owed, not due, 1-30, 31-60, 61-90, >90
            for o in dues {
                let part = left.min(o.amount);
                left -= part;
                let open = o.amount - part;
                let late = (as_of - o.due_date).num_days();
                let i = match late {
                    ..=0 => 1,
                    1..=30 => 2,
                    31..=60 => 3,
                    61..=90 => 4,
                    _ => 5,
                };
                buckets[i] += open;
                buckets[0] += open;
            }
            buckets[0] -= left;
            (op, buckets)
        })
        .filter(|(_, b)| *b != [0; 6])
        .collect()
}

fn aging_map(rows: &[remittances::AgingRow]) -> BTreeMap<String, [i64; 6]> {
    rows.iter()
        .filter(|r| r.owed != 0 || r.credit != 0)
        .map(|r| {
            (
                r.operator_id.clone(),
                [
                    r.owed,
                    r.not_due,
                    r.days_1_30,
                    r.days_31_60,
                    r.days_61_90,
                    r.over_90,
                ],
            )
        })
        .collect()
}

/// Both formats of a fixtures statement say the same entries, and those are the truth's.
fn check_parsed(camt: &BankStatement, csv: &BankStatement, truth: &fixtures::BankTruth) {
    assert_eq!(camt.entries.len(), csv.entries.len());
    for (x, c) in camt.entries.iter().zip(&csv.entries) {
        assert_eq!(
            (
                &x.bank_ref,
                x.amount,
                x.direction,
                &x.reference,
                &x.payer_account,
                x.booking_date
            ),
            (
                &c.bank_ref,
                c.amount,
                c.direction,
                &c.reference,
                &c.payer_account,
                c.booking_date
            )
        );
        match x.direction {
            Direction::Credit => {
                let p = truth
                    .payments
                    .iter()
                    .find(|p| p.bank_ref == x.bank_ref)
                    .expect("every credit is a truth payment");
                assert_eq!(
                    (
                        x.amount,
                        x.booking_date,
                        x.payer_account.as_deref(),
                        x.payer_name.as_deref()
                    ),
                    (
                        p.amount,
                        p.booking_date,
                        Some(p.payer_account.as_str()),
                        Some(p.payer_name.as_str())
                    )
                );
                assert_eq!(x.reference, p.reference);
            }
            Direction::Debit => {
                assert!(
                    truth
                        .fees
                        .iter()
                        .any(|f| f.bank_ref == x.bank_ref && f.amount == x.amount)
                );
            }
        }
    }
}

async fn money_in_over_several_days(ledger: Arc<dyn Ledger>) {
    let dirs = tempfile::tempdir().unwrap();
    let reports_store = LocalStore::new(dirs.path().join("reports")).unwrap();
    let bank_store = LocalStore::new(dirs.path().join("bank")).unwrap();
    let days = ["2026-11-16", "2026-11-17", "2026-11-18"];
    for (i, day) in days.iter().enumerate() {
        let dir = dirs.path().join(format!("day{i}"));
        prepare_seeded_day(&*ledger, date(day), &dir, 7 + i as u64, 0).await;
        report(
            &*ledger,
            &reports_store,
            date(day),
            reports::ReportKind::Final,
        )
        .await;
        assert_sound(&*ledger).await;
    }
    // Each date's settlement is posted once: a re-run of its report posts nothing more.
    let settlements = scalar(&*ledger, "SELECT COUNT(*) FROM settlements").await;
    assert!(settlements > 0);
    report(
        &*ledger,
        &reports_store,
        date(days[0]),
        reports::ReportKind::Final,
    )
    .await;
    assert_eq!(
        scalar(&*ledger, "SELECT COUNT(*) FROM settlements").await,
        settlements
    );

    let owed = owed(&*ledger).await;
    let fixture = Fixture::new(FixtureConfig::new(7, date(days[0]), 3_000));
    let (files, truth) = fixture.bank_statements(ACCOUNT, &owed);
    assert!(files.len() >= 3, "a statement per booking day");
    let habits: Vec<Habit> = truth.habits.values().copied().collect();
    for h in [
        Habit::Never,
        Habit::Partial,
        Habit::Late,
        Habit::Unidentified,
        Habit::FromPayerAccount,
        Habit::WithReference,
    ] {
        assert!(habits.contains(&h), "{h:?}");
    }
    let rules = MoneyRules::new(Currency::COP);
    let ours = vec![ACCOUNT.to_string()];
    for (i, f) in files.iter().enumerate() {
        let camt = parse_camt053(f.camt053.as_bytes(), &rules, &ours).unwrap();
        let csv = parse_csv(f.csv.as_bytes(), ACCOUNT, &rules, &ours).unwrap();
        let s = &truth.statements[i];
        assert_eq!(
            (camt.opening, camt.closing),
            (Some(s.opening), Some(s.closing))
        );
        check_parsed(&camt, &csv, &truth);
        // Half the days come as camt.053, half as CSV.
        let (name, bytes) = match i % 2 {
            0 => ("statement.xml", f.camt053.clone()),
            _ => ("statement.csv", f.csv.clone()),
        };
        bank_store
            .put(
                &format!("bank/incoming/{ACCOUNT}/{}/{name}", f.booking_date),
                bytes.into(),
            )
            .await
            .unwrap();
    }
    for (op, account) in &truth.payer_accounts {
        let id = ledger::OperatorId::parse(op).unwrap();
        remittances::payer_account::set(
            ledger.database(),
            account,
            &id,
            "ana@finance",
            noon(&*ledger, "2026-11-20"),
        )
        .await
        .unwrap();
    }

    // The statements go in once, today: they are today's (the days settled were reported
    // today too, so their lines are in the books as of today, not before).
    // One instant for the posting and the date it is in: a run across midnight must not
    // post in one day and look at another.
    let posted_at = ledger::journal::now();
    let as_of = ledger.settings().calendar.business_date(posted_at);
    let next = as_of.succ();
    let noon_of = |d: BusinessDate| noon(&*ledger, &d.to_string());
    let got = ingest::bank_files::ingest_statements(&bank_store, &*ledger, rules, &ours)
        .await
        .unwrap();
    assert_eq!(
        (got.accepted.len(), got.rejected.len()),
        (files.len(), 0),
        "{got:?}"
    );
    let entries = truth.payments.len() + truth.fees.len();
    assert_eq!(got.records as usize, entries);
    let matched = remittances::match_new_entries(&*ledger, posted_at)
        .await
        .unwrap();
    let count = |h: Habit| truth.payments.iter().filter(|p| p.habit == h).count() as u64;
    assert_eq!(matched.by_payer_account, count(Habit::FromPayerAccount));
    assert_eq!(
        matched.by_reference,
        count(Habit::WithReference) + count(Habit::Partial) + count(Habit::Late)
    );
    assert_eq!(matched.unidentified, count(Habit::Unidentified));
    assert_eq!(matched.debits, truth.fees.len() as u64);
    // Again: nothing new is posted.
    assert_eq!(
        remittances::match_new_entries(&*ledger, posted_at)
            .await
            .unwrap()
            .total(),
        0
    );
    assert_sound(&*ledger).await;
    let unidentified: i64 = truth
        .payments
        .iter()
        .filter(|p| p.habit == Habit::Unidentified)
        .map(|p| p.amount)
        .sum();
    assert!(unidentified > 0);
    assert_eq!(
        testbed::account_balance(&*ledger, "suspense:unidentified").await,
        unidentified
    );

    // Payments as the truth says they were made; the unidentified one pays no one yet.
    let mut paid: BTreeMap<String, i64> = BTreeMap::new();
    for p in truth
        .payments
        .iter()
        .filter(|p| p.habit != Habit::Unidentified)
    {
        *paid.entry(p.operator_id.clone()).or_default() += p.amount;
    }
    reconcile_date(&*ledger, as_of).await;
    let prefix = report(
        &*ledger,
        &reports_store,
        as_of,
        reports::ReportKind::Provisional,
    )
    .await;
    let expected = expected_aging(&owed, &paid, as_of.naive());
    let aging = remittances::receivables_as_of(&*ledger, as_of, None)
        .await
        .unwrap();
    assert_eq!(aging_map(&aging), expected);
    let file = reports_store
        .get_bytes(&format!("{prefix}receivables_aging.csv"))
        .await
        .unwrap();
    let from_file: BTreeMap<String, [i64; 6]> = csv_rows(&file)
        .into_iter()
        .filter(|r| minor(&r["owed"]) != 0 || minor(&r["credit"]) != 0)
        .map(|r| {
            let m = |k: &str| minor(&r[k]);
            (
                r["operator_id"].clone(),
                [
                    m("owed"),
                    m("not_due"),
                    m("days_1_30"),
                    m("days_31_60"),
                    m("days_61_90"),
                    m("over_90"),
                ],
            )
        })
        .collect();
    assert_eq!(from_file, expected, "the report's aging is the same");
    // The partial payer's rest and the silent operator's whole debt are overdue.
    for (op, habit) in &truth.habits {
        let row = aging.iter().find(|r| &r.operator_id == op).unwrap();
        match habit {
            Habit::Never | Habit::Partial | Habit::Unidentified => {
                assert!(row.overdue() > 0, "{op} {habit:?}: {row:?}")
            }
            _ => assert_eq!(row.owed, 0, "{op} {habit:?} paid in full: {row:?}"),
        }
    }
    let listed = csv_rows(
        &reports_store
            .get_bytes(&format!("{prefix}remittances.csv"))
            .await
            .unwrap(),
    );
    assert_eq!(listed.len(), entries, "every entry posted on the day");
    let rows = remittances::remittances(&*ledger, &Default::default(), as_of, None)
        .await
        .unwrap();
    for p in &truth.payments {
        let r = rows.iter().find(|r| r.bank_ref == p.bank_ref).unwrap();
        match p.habit {
            Habit::Unidentified => assert_eq!(r.operator_id, None),
            // Each payment settles the line it was made for: the date its reference names,
            // or (from a payer account, without one) the oldest due date still open.
            _ => assert_eq!(
                r.applied_to,
                vec![remittances::Application {
                    seq: r.transaction_id,
                    settles_date: Some(p.settles_date),
                    amount: p.amount
                }],
                "{p:?}"
            ),
        }
    }

    // Finance assigns the unidentified deposit the next day: suspense empties, the aging of
    // the next day counts it, the day before stays as it was.
    let stray = truth
        .payments
        .iter()
        .find(|p| p.habit == Habit::Unidentified)
        .unwrap();
    let op = ledger::OperatorId::parse(&stray.operator_id).unwrap();
    remittances::assign(
        &*ledger,
        &stray.bank_ref,
        None,
        &op,
        "ana@finance",
        noon_of(next),
    )
    .await
    .unwrap();
    assert_eq!(
        testbed::account_balance(&*ledger, "suspense:unidentified").await,
        unidentified - stray.amount
    );
    *paid.entry(stray.operator_id.clone()).or_default() += stray.amount;
    let aging = remittances::receivables_as_of(&*ledger, next, None)
        .await
        .unwrap();
    assert_eq!(
        aging_map(&aging),
        expected_aging(&owed, &paid, next.naive())
    );
    // Today's report again: as of today, byte for byte, the assignment of tomorrow unseen.
    let rerun = report(
        &*ledger,
        &reports_store,
        as_of,
        reports::ReportKind::Provisional,
    )
    .await;
    for file in [
        "remittances.csv",
        "receivables_aging.csv",
        "receivables_aging.parquet",
    ] {
        assert_eq!(
            reports_store
                .get_bytes(&format!("{prefix}{file}"))
                .await
                .unwrap(),
            reports_store
                .get_bytes(&format!("{rerun}{file}"))
                .await
                .unwrap(),
            "{file}"
        );
    }
    let before = remittances::receivables_as_of(&*ledger, as_of, None)
        .await
        .unwrap();
    assert_eq!(aging_map(&before), expected, "as of today, nothing changed");
    let unassigned = remittances::remittances(
        &*ledger,
        &remittances::RemittanceFilter {
            unidentified: true,
            ..Default::default()
        },
        next,
        None,
    )
    .await
    .unwrap();
    assert_eq!(unassigned.len() as u64, count(Habit::Unidentified) - 1);
    assert_sound(&*ledger).await;

    // The receivable is what the lines say was owed less what was paid.
    for op in truth.habits.keys() {
        let due: i64 = owed
            .iter()
            .filter(|o| &o.operator_id == op)
            .map(|o| o.amount)
            .sum();
        let receivable =
            testbed::account_balance(&*ledger, &format!("operator:{op}:receivable")).await;
        assert_eq!(
            -receivable,
            due - paid.get(op).copied().unwrap_or(0),
            "{op}"
        );
    }

    // Others heard it: each operator's line of each date's latest report as published,
    // and every credit that went to an operator (matched or assigned), once.
    use ledger::outbox::EventType::{RemittanceApplied, SettlementPublished};
    let heard = testbed::events::written(&*ledger, &[SettlementPublished]).await;
    let mut last: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for (_, e) in &heard {
        let key = (
            e["operator_id"].as_str().unwrap().to_string(),
            e["business_date"].as_str().unwrap().to_string(),
        );
        last.insert(
            key,
            (
                e["version"].as_i64().unwrap(),
                decimal(&e["net_due"]) + decimal(&e["adjustments"]),
            ),
        );
    }
    let lines: Vec<(String, NaiveDate, i32, i64)> = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_as(
            "SELECT operator_id, business_date, report_version, CAST(net_due + adjustments AS BIGINT) \
             FROM settlement_lines",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(
        last,
        lines
            .into_iter()
            .map(|(op, d, v, owed)| ((op, d.to_string()), (i64::from(v), owed)))
            .collect::<BTreeMap<_, _>>()
    );
    // Day one was reported twice: its lines were heard twice.
    assert_eq!(
        heard.len(),
        last.len()
            + owed
                .iter()
                .filter(|o| o.settles_date == date(days[0]).naive())
                .count()
    );
    let mut applied: BTreeMap<String, i64> = BTreeMap::new();
    for (_, e) in testbed::events::written(&*ledger, &[RemittanceApplied]).await {
        *applied
            .entry(e["operator_id"].as_str().unwrap().to_string())
            .or_default() += decimal(&e["amount"]);
    }
    let mut posted: BTreeMap<String, i64> = BTreeMap::new();
    for d in ledger.deposits(&Default::default()).await.unwrap() {
        if let Some(op) = &d.operator_id {
            *posted.entry(op.clone()).or_default() += d.amount;
        }
    }
    assert_eq!(applied, posted);

    // The same statements again change nothing.
    for f in &files {
        bank_store
            .put(
                &format!("bank/incoming/{ACCOUNT}/{}/statement.csv", f.booking_date),
                f.csv.clone().into(),
            )
            .await
            .unwrap();
    }
    let again = ingest::bank_files::ingest_statements(&bank_store, &*ledger, rules, &ours)
        .await
        .unwrap();
    // The CSV copies of the camt days are new bytes, but every entry in them was booked: they
    // are rejected whole, naming the entries; the CSV days are the same bytes, a no-op.
    assert_eq!(again.accepted.len(), 0, "{again:?}");
    assert_eq!(again.duplicates.len() + again.rejected.len(), files.len());
    assert_eq!(
        remittances::match_new_entries(&*ledger, noon_of(next))
            .await
            .unwrap()
            .total(),
        0
    );
    assert_sound(&*ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    money_in_over_several_days(db.ledger.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    money_in_over_several_days(db.ledger.clone()).await;
}
