//! `recaudo demo`: the whole back office on one laptop, on the embedded defaults (SQLite,
//! `var/objects`, `var/events`). It starts from a clean slate each time (its own database,
//! objects and events), makes one synthetic business date (20 operators, 100,000 sales,
//! 200,000 validations, injected discrepancies, one operator file to be rejected), drops the
//! files and events where ingest finds them, runs `settle` and prints the day per operator
//! from the published summary, with the path of the page to open. The bank statements that
//! pay it (the fixtures' own: most operators on time, one partially, one late, one not at
//! all, one deposit nobody can name, a bank fee) go in with `ingest-bank`, and the aging of
//! what operators still owe is printed. The cards riders reported lost go to the field in
//! the action list, the replaced ones' balances to their new cards, and the validators that
//! kept accepting them are named. Then finance decides a few exception cases, and a
//! provisional look at today shows what that posted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fixtures::{Fixture, FixtureConfig};
use settings::Settings;

use crate::job::{Job, JobContext};
use crate::runner;

#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 100_000)]
    pub sales: u64,
    #[arg(long, default_value_t = 200_000)]
    pub validations: u64,
    #[arg(long, default_value_t = 20)]
    pub operators: usize,
}

/// A step with a spinner on a terminal (nothing when output is not a terminal).
async fn step<T>(
    label: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let bar = indicatif::ProgressBar::new_spinner().with_message(label.to_string());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let started = Instant::now();
    let result = work.await;
    bar.finish_and_clear();
    if result.is_ok() {
        println!("✓ {label} ({:.1} s)", started.elapsed().as_secs_f64());
    }
    result
}

/// The demo's own files: refuses anything but the embedded SQLite and local folders, so it
/// can never wipe a real database or bucket.
fn embedded_paths(config: &Settings) -> anyhow::Result<(PathBuf, PathBuf)> {
    let db = config
        .database
        .url
        .expose()
        .strip_prefix("sqlite://")
        .map(PathBuf::from);
    let objects = config.store.url.strip_prefix("file://").map(PathBuf::from);
    match (db, objects, &config.kafka.brokers) {
        (Some(db), Some(objects), None) => Ok((db, objects)),
        _ => anyhow::bail!(
            "recaudo demo runs on the embedded defaults only (SQLite, a local object folder, \
             the event folder) and starts them from scratch; unset RECAUDO_DATABASE_URL, \
             RECAUDO_OBJECT_STORE and RECAUDO_KAFKA_BROKERS (or the config file's values)"
        ),
    }
}

fn remove(path: &Path) -> anyhow::Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub async fn run(args: DemoArgs, config: &Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let (db_path, objects) = embedded_paths(config)?;
    for suffix in ["", "-wal", "-shm"] {
        remove(Path::new(&format!("{}{suffix}", db_path.display())))?;
    }
    let fixtures_dir = PathBuf::from("var/fixtures");
    for dir in [&objects, &config.kafka.events_dir, &fixtures_dir] {
        remove(dir)?;
    }
    println!(
        "recaudo demo: a clean {} , {} and {}",
        db_path.display(),
        objects.display(),
        config.kafka.events_dir.display()
    );

    let mut ctx = step("database created and migrated", JobContext::open(config)).await?;
    if ctx.config.money.bank_accounts.is_empty() {
        ctx.config.money.bank_accounts = vec![DEMO_ACCOUNT.to_string()];
    }
    // Ten days back, so that the day's dues, and the payments that are late, have come due.
    let date = (0..DAYS_BACK).fold(
        ctx.ledger
            .settings()
            .calendar
            .business_date(chrono::Utc::now()),
        |d, _| d.pred(),
    );
    let mut fc = FixtureConfig::new(2026, date, args.sales);
    fc.calendar = ctx.ledger.settings().calendar;
    fc.operators = args.operators.max(1);
    fc.validations = args.validations;
    fc.whole_file_defect = true;
    let fixture = Fixture::new(fc);
    let truth = step(
        &format!(
            "{} operators registered, a day of fixtures written for {date}",
            args.operators
        ),
        async {
            fixture.register_operators(&*ctx.ledger).await?;
            Ok(fixture.write_day(&fixtures_dir)?)
        },
    )
    .await?;
    step(
        "operator files put under incoming/, events in the event folder",
        crate::data_in::publish(&fixture, &truth, &fixtures_dir, config),
    )
    .await?;
    let (sales, voids) = step(
        &format!(
            "{} sales recorded in the ledger (as the online API would)",
            truth.ledger_sales
        ),
        async { Ok(fixture.record_ledger_side(&*ctx.ledger).await?) },
    )
    .await?;
    anyhow::ensure!(
        sales == truth.ledger_sales,
        "recorded {sales} sales, expected {}",
        truth.ledger_sales
    );
    let holder = runner::holder_id();
    let settle = |job: Job, date: ledger::BusinessDate| {
        let (ctx, holder) = (&ctx, &holder);
        async move {
            let shutdown = settings::signal::shutdown();
            Ok(runner::run(ctx, job, Some(date), holder, shutdown).await?)
        }
    };
    let report = step(
        &format!("settle {date}: ingest, reconcile, report"),
        settle(Job::Settle, date),
    )
    .await?;
    println!(
        "  {} voids; {} validations posted; {} operator file(s) rejected and kept with their errors",
        voids,
        report.outcome.count("validations.posted"),
        report.outcome.count("files.rejected"),
    );
    summary(&ctx, date, &objects).await?;
    hotlist_day(&ctx, &truth, date, &objects, &holder).await?;
    let account = ctx.config.money.bank_accounts[0].clone();
    let truth = step(
        &format!("bank statements of {account} that pay {date} put under bank/incoming/"),
        bank_statements(&ctx, &fixture, date, &account),
    )
    .await?;
    let banked = step(
        "ingest-bank: statements in, each entry matched and posted once",
        async {
            Ok(runner::run(
                &ctx,
                Job::IngestBank,
                None,
                &holder,
                settings::signal::shutdown(),
            )
            .await?)
        },
    )
    .await?;
    let count = |k: &str| banked.outcome.count(k);
    println!(
        "  {} statements, {} entries: {} matched by payer account, {} by payment reference, {} \
         unidentified (recaudo remittances list --unidentified), {} bank debit(s)",
        count("accepted"),
        count("entries"),
        count("by_payer_account"),
        count("by_reference"),
        count("unidentified"),
        count("debits"),
    );
    let today = ctx
        .ledger
        .settings()
        .calendar
        .business_date(ledger::journal::now());
    let aging = remittances::receivables_as_of(&*ctx.ledger, today, None).await?;
    let owing: Vec<_> = aging
        .into_iter()
        .filter(|r| r.owed != 0 || r.credit != 0)
        .collect();
    println!("\nreceivables as of {today} (recaudo receivables):");
    let exponent = ledger::MoneyRules::from_settings(&ctx.config.money)?
        .currency
        .exponent();
    crate::remittance::print_aging(&owing, &|m| ledger::money::format_minor(m, exponent));
    let late: Vec<&String> = truth
        .habits
        .iter()
        .filter(|(_, h)| {
            matches!(
                h,
                fixtures::Habit::Never | fixtures::Habit::Partial | fixtures::Habit::Unidentified
            )
        })
        .map(|(op, _)| op)
        .collect();
    anyhow::ensure!(
        late.iter().all(|op| owing
            .iter()
            .any(|r| &&r.operator_id == op && r.overdue() > 0)),
        "the aging does not show the operators who did not pay as overdue"
    );
    let decided = step(
        "finance decides four exception cases (recaudo exceptions list shows them all)",
        finance_decides(&ctx, date, config),
    )
    .await?;
    crate::table::print(&["case", "operator", "ref", "found", "decided"], &decided);
    // Decided today, they are today's: the books move in the day a decision is made, and the
    // date's own report stays as of its end. A provisional look at today shows them.
    step(
        &format!("a provisional look at {today}: what finance decided, the cases still open"),
        settle(Job::SettleProvisional, today),
    )
    .await?;
    decisions(&ctx, today, &objects).await?;
    println!(
        "demo finished in {:.1} s; `recaudo status` shows the runs, `recaudo demo` again starts over",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Our collection account in the demo, when RECAUDO_BANK_ACCOUNTS names none.
const DEMO_ACCOUNT: &str = "CO12DEMO0000000001";
const DAYS_BACK: usize = 10;

/// Writes the fixtures' bank statements that pay what `date`'s published lines say, camt.053
/// and CSV on alternate days, and registers the payer accounts of the operators who pay from
/// one.
async fn bank_statements(
    ctx: &JobContext,
    fixture: &Fixture,
    date: ledger::BusinessDate,
    account: &str,
) -> anyhow::Result<fixtures::BankTruth> {
    let lines = ledger::settlement_line::of_date(ctx.ledger.database(), date).await?;
    let owed: Vec<fixtures::Owed> = lines
        .into_iter()
        .map(|l| fixtures::Owed {
            operator_id: l.operator_id,
            settles_date: l.business_date,
            due_date: l.due_date,
            amount: l.net_due + l.adjustments,
        })
        .collect();
    let (files, truth) = fixture.bank_statements(account, &owed);
    for (i, f) in files.into_iter().enumerate() {
        let (name, body) = match i % 2 {
            0 => ("statement.xml", f.camt053),
            _ => ("statement.csv", f.csv),
        };
        let key = format!("bank/incoming/{account}/{}/{name}", f.booking_date);
        ctx.store.put(&key, body.into()).await?;
    }
    for (op, payer) in &truth.payer_accounts {
        remittances::payer_account::set(
            ctx.ledger.database(),
            payer,
            &ledger::OperatorId::parse(op)?,
            "demo-finance",
            chrono::Utc::now(),
        )
        .await?;
    }
    Ok(truth)
}

/// One case of each resolution, and one left waiting for a second person: what finance's
/// morning looks like (README, Finance: exceptions). The proposal is made with the
/// threshold at its own amount, as if RECAUDO_APPROVAL_THRESHOLD were that low.
async fn finance_decides(
    ctx: &JobContext,
    date: ledger::BusinessDate,
    config: &Settings,
) -> anyhow::Result<Vec<Vec<String>>> {
    use exceptions::{Action, Actor, CaseFilter, CaseState, Resolution};
    let open = exceptions::list(
        ctx.ledger.database(),
        &CaseFilter {
            business_date: Some(date),
            states: vec![CaseState::Open],
            ..CaseFilter::default()
        },
    )
    .await?;
    let first = |case_name: &str, skip: usize| {
        open.iter()
            .filter(|c| c.case_name == case_name)
            .nth(skip)
            .cloned()
    };
    let plan = [
        (
            first("MISSING_IN_LEDGER", 0),
            Resolution::AdjustLedger,
            "the operator's receipt shows the sale",
            None,
        ),
        (
            first("AMOUNT_MISMATCH", 0),
            Resolution::WriteOff,
            "too small to recover",
            None,
        ),
        (
            first("MISSING_IN_FILE", 0),
            Resolution::AcceptLedger,
            "the sale is ours; the operator corrects its file",
            None,
        ),
        (
            first("MISSING_IN_LEDGER", 1),
            Resolution::AdjustLedger,
            "large: a second person checks it",
            Some(()),
        ),
    ];
    let (maker, threshold) = (
        Actor::parse("demo-finance-maker")?,
        crate::exception_case::approval_threshold(config)?,
    );
    let mut rows = Vec::new();
    for (case, resolution, note, needs_approval) in plan {
        let Some(case) = case else { continue };
        let threshold = match needs_approval {
            Some(()) => case.difference.abs(),
            None => threshold,
        };
        let action = Action::Resolve {
            resolution,
            note: note.to_string(),
        };
        let done =
            exceptions::decide(&*ctx.ledger, case.id, &action, &maker, threshold, None).await?;
        rows.push(vec![
            case.id.to_string(),
            case.operator_id.clone(),
            case.operator_ref.clone(),
            case.case_name.clone(),
            format!("{} {}", done.case.state, resolution),
        ]);
    }
    let report = ctx.ledger.check_invariants().await?;
    anyhow::ensure!(report.is_sound(), "the ledger does not hold: {report:?}");
    Ok(rows)
}

/// Prints, from the provisional report of `today`, the adjustments posted and the cases
/// open by state, and where its page is.
async fn decisions(
    ctx: &JobContext,
    today: ledger::BusinessDate,
    objects: &Path,
) -> anyhow::Result<()> {
    let prefix = format!("reports/{today}/provisional/");
    let rows = |file: &'static str| {
        let key = format!("{prefix}{file}");
        async move {
            let bytes = ctx.store.get_bytes(&key).await?;
            let mut reader = csv::Reader::from_reader(bytes.as_ref());
            let header = reader.headers()?.clone();
            let mut out = Vec::new();
            for record in reader.records() {
                let record = record?;
                let row: std::collections::BTreeMap<String, String> = header
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect();
                out.push(row);
            }
            anyhow::Ok(out)
        }
    };
    let adjustments: Vec<Vec<String>> = rows("adjustments.csv")
        .await?
        .into_iter()
        .map(|r| {
            ["case_id", "operator_id", "kind", "amount", "actor"]
                .iter()
                .map(|c| r.get(*c).cloned().unwrap_or_default())
                .collect()
        })
        .collect();
    println!();
    crate::table::print(
        &["case", "operator", "posted", "owed change", "decided by"],
        &adjustments,
    );
    let mut by_state: std::collections::BTreeMap<String, u64> = Default::default();
    for r in rows("exceptions_open.csv").await? {
        *by_state.entry(r["state"].clone()).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("open exception cases at {today}: {}", states.join(", "));
    let page = std::path::absolute(objects.join(&prefix).join("index.html"))?;
    println!("today so far (provisional): {}", page.display());
    Ok(())
}

/// Moves the replaced cards' balances, publishes the action list and prints it, with the
/// devices the date's report found accepting blocked cards (checked against the fixtures'
/// truth: what the demo shows is what it injected).
async fn hotlist_day(
    ctx: &JobContext,
    truth: &fixtures::Truth,
    date: ledger::BusinessDate,
    objects: &Path,
    holder: &str,
) -> anyhow::Result<()> {
    let run = |job: Job| async move {
        Ok(runner::run(ctx, job, None, holder, settings::signal::shutdown()).await?)
    };
    let replaced = truth
        .card_reports
        .iter()
        .filter(|r| r.replaced_by.is_some())
        .count();
    let moved = step(
        &format!(
            "{} cards reported lost, stolen or damaged; transfer-replacements moved the \
             balances of the {replaced} replaced",
            truth.card_reports.len()
        ),
        run(Job::TransferReplacements),
    )
    .await?;
    let exponent = ledger::MoneyRules::from_settings(&ctx.config.money)?
        .currency
        .exponent();
    println!(
        "  {} COP moved to new cards (of them, {} held nothing to move)",
        ledger::money::format_minor(moved.outcome.count("amount_minor"), exponent),
        moved.outcome.count("nothing_to_move")
    );
    let published = step(
        "publish-hotlist: the action list for the validators",
        run(Job::PublishHotlist),
    )
    .await?;
    let version = published.outcome.count("version");
    let full = ctx
        .store
        .get_bytes(&format!(
            "{}full.csv",
            hotlist::action_list::version_prefix(version)
        ))
        .await?;
    let mut by_reason: std::collections::BTreeMap<String, u64> = Default::default();
    for record in csv::Reader::from_reader(full.as_ref()).records() {
        *by_reason.entry(record?[1].to_string()).or_default() += 1;
    }
    let reasons: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
    println!(
        "  hotlist v{version}: {} blocked cards ({}): {}",
        published.outcome.count("cards"),
        reasons.join(", "),
        std::path::absolute(objects.join(hotlist::action_list::LATEST_KEY))?.display()
    );
    let (_, csv) = latest_report_file(ctx, date, "hotlist_violations.csv").await?;
    let mut rows = Vec::new();
    for record in csv::Reader::from_reader(csv.as_ref()).records() {
        let r = record?;
        rows.push(vec![
            r[1].to_string(),
            r[2].to_string(),
            r[3].to_string(),
            r[6].to_string(),
        ]);
    }
    let expected: Vec<Vec<String>> = truth
        .hotlist_violations
        .iter()
        .map(|v| {
            vec![
                v.device_id.clone(),
                v.taps.to_string(),
                v.cards.to_string(),
                v.hotlist_version.to_string(),
            ]
        })
        .collect();
    anyhow::ensure!(
        rows == expected,
        "hotlist_violations.csv lists {rows:?}, the fixtures injected {expected:?}"
    );
    println!(
        "validators of {date} that accepted blocked cards past the grace (hotlist_violations.csv):"
    );
    crate::table::print(&["device", "taps", "cards", "list version"], &rows);
    Ok(())
}

/// A file of `date`'s latest report, as finance reads it from the store, and the report's
/// prefix.
async fn latest_report_file(
    ctx: &JobContext,
    date: ledger::BusinessDate,
    file: &str,
) -> anyhow::Result<(String, bytes::Bytes)> {
    let latest: serde_json::Value = serde_json::from_slice(
        &ctx.store
            .get_bytes(&format!("reports/{date}/latest.json"))
            .await?,
    )?;
    let prefix = latest["prefix"]
        .as_str()
        .context("latest.json has a prefix")?
        .to_string();
    let bytes = ctx.store.get_bytes(&format!("{prefix}{file}")).await?;
    Ok((prefix, bytes))
}

/// Prints the published summary of `date` (read back from the store, so what is printed is
/// what finance gets) and where the page is.
async fn summary(
    ctx: &JobContext,
    date: ledger::BusinessDate,
    objects: &Path,
) -> anyhow::Result<()> {
    let (prefix, csv) = latest_report_file(ctx, date, "settlement_summary.csv").await?;
    let text = String::from_utf8(csv.to_vec())?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (id, net, due, exc, status) = (
        col("operator_id").context("operator_id column")?,
        col("net_sales").context("net_sales column")?,
        col("net_due").context("net_due column")?,
        col("exception_count").context("exception_count column")?,
        col("status").context("status column")?,
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            // Our operator ids and amounts hold no commas; names are not printed here.
            let cells: Vec<&str> = l.split(',').collect();
            [id, net, due, exc, status]
                .iter()
                .map(|i| cells.get(*i).copied().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    println!();
    crate::table::print(
        &["operator", "net sales", "net due", "exceptions", "status"],
        &rows,
    );
    let page = std::path::absolute(objects.join(prefix).join("index.html"))?;
    println!("\nsettlement of {date} (COP): {}", page.display());
    Ok(())
}
