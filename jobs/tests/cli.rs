//! The `recaudo` command as ops and finance use it: migrate and manage operators, work the
//! exception cases, on both backends.

use std::process::{Command, Output};

fn recaudo(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recaudo"))
        .args(args)
        .env("RECAUDO_DATABASE_URL", database_url)
        .env("RECAUDO_LOG_FORMAT", "json")
        .env_remove("RECAUDO_CONFIG")
        .env_remove("RECAUDO_ACTOR")
        .output()
        .expect("run recaudo")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn manage_operators(url: &str) {
    let migrate = recaudo(url, &["migrate"]);
    assert!(migrate.status.success(), "{migrate:?}");
    assert!(recaudo(url, &["migrate"]).status.success(), "migrate twice");

    let add = recaudo(
        url,
        &[
            "operators",
            "add",
            "OP001",
            "--name",
            "Tienda La 14",
            "--commission-rate",
            "0.035",
            "--tax-rate",
            "0.19",
            "--void-window",
            "30m",
            "--settlement-lag",
            "1",
        ],
    );
    assert!(add.status.success(), "{add:?}");
    let set = recaudo(
        url,
        &[
            "operators",
            "set",
            "OP001",
            "--active",
            "false",
            "--void-window",
            "2h",
        ],
    );
    assert!(set.status.success(), "{set:?}");

    // The active flag changes at once; the void window from the next business date on.
    let list = recaudo(url, &["operators", "list", "--json"]);
    assert!(list.status.success());
    let ops: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(ops[0]["id"], "OP001");
    assert_eq!(ops[0]["name"], "Tienda La 14");
    assert_eq!(ops[0]["commission_rate"], "0.035");
    assert_eq!(ops[0]["void_window"], 1800);
    assert_eq!(ops[0]["active"], false);
    let terms = recaudo(url, &["operators", "terms", "OP001", "--json"]);
    assert!(terms.status.success(), "{terms:?}");
    let versions: serde_json::Value = serde_json::from_str(&stdout(&terms)).unwrap();
    let tomorrow = ledger::BusinessCalendar::default()
        .business_date(chrono::Utc::now())
        .succ()
        .to_string();
    assert_eq!(versions[0]["effective_from"], serde_json::Value::Null);
    assert_eq!(versions[0]["void_window"], 1800);
    assert_eq!(versions[1]["effective_from"], tomorrow.as_str());
    assert_eq!(versions[1]["void_window"], 7200);
    let table = stdout(&recaudo(url, &["operators", "terms", "OP001"]));
    assert!(
        table.contains("registration") && table.contains(&tomorrow) && table.contains("2h"),
        "{table}"
    );
    let table = stdout(&recaudo(url, &["operators", "list"]));
    assert!(
        table.contains("Tienda La 14") && table.contains("30m"),
        "{table}"
    );
    // A date that has begun keeps its terms: a usage error, nothing changed.
    let past = recaudo(
        url,
        &[
            "operators",
            "set",
            "OP001",
            "--commission-rate",
            "0.5",
            "--effective-from",
            "2020-01-01",
        ],
    );
    assert_eq!(past.status.code(), Some(2), "{past:?}");
    assert!(
        String::from_utf8_lossy(&past.stderr).contains("cannot take effect on 2020-01-01"),
        "{past:?}"
    );

    // Bad input: a clear error naming the field, exit 2 (a usage error), nothing changed.
    let bad = recaudo(
        url,
        &[
            "operators",
            "add",
            "OP002",
            "--name",
            "X",
            "--commission-rate",
            "1.5",
            "--tax-rate",
            "0.19",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("commission_rate"),
        "{bad:?}"
    );
    let dup = recaudo(
        url,
        &[
            "operators",
            "add",
            "OP001",
            "--name",
            "X",
            "--commission-rate",
            "0.1",
            "--tax-rate",
            "0.19",
        ],
    );
    assert_eq!(dup.status.code(), Some(1));
    let ops: serde_json::Value =
        serde_json::from_str(&stdout(&recaudo(url, &["operators", "list", "--json"]))).unwrap();
    assert_eq!(ops.as_array().unwrap().len(), 1);

    // Usage errors exit 2.
    assert_eq!(
        recaudo(url, &["operators", "frobnicate"]).status.code(),
        Some(2)
    );
}

#[test]
fn operators_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    manage_operators(&format!("sqlite://{}", dir.path().join("r.db").display()));
}

#[tokio::test]
async fn operators_on_postgres() {
    let Some(url) = testbed::fresh_postgres_url().await else {
        return;
    };
    tokio::task::spawn_blocking(move || manage_operators(&url))
        .await
        .unwrap();
}

/// An operator disputes a case (as the API does); finance sees it as DISPUTED with the
/// operator's reason in `recaudo exceptions list`, and decides it with an actor, never
/// without one.
async fn finance_works_the_cases(db: testbed::TestLedger) {
    use exceptions::{Action, Actor};
    use testbed::recon::{RunItem, store_run};
    let ledger = db.ledger.clone();
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let date = ledger::BusinessDate::parse("2026-11-26").unwrap();
    let item = |operator_ref, case_name, ledger, file| RunItem {
        operator_id: "OP001",
        operator_ref,
        case_name,
        ledger,
        file,
    };
    let items = [
        item("R1", "MISSING_IN_FILE", Some(("CARD0001", 10_000)), None),
        item(
            "R2",
            "AMOUNT_MISMATCH",
            Some(("CARD0002", 20_000)),
            Some(("CARD0002", 25_000)),
        ),
    ];
    store_run(&*ledger, date, "run-1", &items).await;
    exceptions::sync_run(ledger.database(), date, "run-1", ledger.settings().currency)
        .await
        .unwrap();
    let cases = exceptions::list(ledger.database(), &Default::default())
        .await
        .unwrap();
    let r2 = cases.iter().find(|c| c.operator_ref == "R2").unwrap().id;
    let operator = ledger::OperatorId::parse("OP001").unwrap();
    let dispute = Action::Dispute {
        reason: "our receipt shows 250.00".into(),
        evidence_ref: Some("ticket-881".into()),
    };
    let client = Actor::operator(&operator, "client-OP001").unwrap();
    exceptions::decide(&*ledger, r2, &dispute, &client, i64::MAX, Some("OP001"))
        .await
        .unwrap();

    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let list = recaudo(
            &url,
            &["exceptions", "list", "--state", "DISPUTED", "--json"],
        );
        assert!(list.status.success(), "{list:?}");
        let disputed: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
        assert_eq!(disputed.as_array().unwrap().len(), 1, "{disputed}");
        assert_eq!(disputed[0]["operator_ref"], "R2");
        assert_eq!(disputed[0]["state"], "DISPUTED");
        assert_eq!(disputed[0]["dispute_reason"], "our receipt shows 250.00");
        let id = r2.to_string();
        let resolve = [
            "exceptions",
            "resolve",
            &id,
            "--as",
            "write-off",
            "--note",
            "small",
        ];
        let anonymous = recaudo(&url, &resolve);
        assert_eq!(anonymous.status.code(), Some(2), "{anonymous:?}");
        let shown = recaudo(&url, &["exceptions", "show", &id, "--json"]);
        assert!(
            stdout(&shown).contains("\"DISPUTED\""),
            "nothing changed without an actor"
        );
        let mut with_actor = resolve.to_vec();
        with_actor.extend(["--actor", "ana@finance"]);
        let resolved = recaudo(&url, &with_actor);
        assert!(resolved.status.success(), "{resolved:?}");
        assert!(
            stdout(&resolved).contains("RESOLVED"),
            "{}",
            stdout(&resolved)
        );
        let verify = recaudo(&url, &["exceptions", "verify", "--json"]);
        assert!(verify.status.success(), "{verify:?}");
    })
    .await
    .unwrap();
    let report = ledger.check_invariants().await.unwrap();
    assert!(report.is_sound(), "{report:?}");
    testbed::events::assert_valid(&*ledger).await;
}

#[tokio::test]
async fn exceptions_on_sqlite() {
    let db = testbed::sqlite_ledger(ledger::LedgerSettings::default()).await;
    finance_works_the_cases(db).await;
}

#[tokio::test]
async fn exceptions_on_postgres() {
    let Some(db) = testbed::postgres_ledger(ledger::LedgerSettings::default()).await else {
        return;
    };
    finance_works_the_cases(db).await;
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["operators", "--help"],
        vec!["operators", "add", "--help"],
        vec!["operators", "list", "--help"],
        vec!["operators", "set", "--help"],
        vec!["operators", "terms", "--help"],
        vec!["dead-letters", "list", "--help"],
        vec!["run", "--help"],
        vec!["status", "--help"],
        vec!["remittances", "list", "--help"],
        vec!["remittances", "assign", "--help"],
        vec!["receivables", "--help"],
        vec!["operators", "payer-accounts", "--help"],
    ] {
        let out = recaudo("sqlite://unused.db", &args);
        assert!(out.status.success(), "{args:?}");
        let text = stdout(&out);
        assert!(text.contains("Usage: recaudo"), "{args:?}: {text}");
        assert!(
            text.lines().next().is_some_and(|l| l.len() > 20),
            "{args:?} has no summary: {text}"
        );
    }
    // Benchmarks live in `recaudo-bench`, not in the product's command.
    let help = stdout(&recaudo("sqlite://unused.db", &["--help"]));
    assert!(!help.to_lowercase().contains("bench"), "{help}");
    let bench = recaudo("sqlite://unused.db", &["bench", "ledger"]);
    assert_eq!(bench.status.code(), Some(2), "bench is not a command");
}

/// A command asked for wrongly is a usage error: exit 2, a message that says what to give,
/// and nothing run or recorded.
#[test]
fn usage_errors_exit_2_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let today = ledger::BusinessCalendar::default()
        .business_date(chrono::Utc::now())
        .to_string();
    for (args, says) in [
        (vec!["run", "settle"], "settle needs --date"),
        (vec!["run", "settle", "--date", "2026-02-30"], "--date"),
        (
            vec![
                "backfill",
                "settle",
                "--from",
                "2026-11-27",
                "--to",
                "2026-11-26",
            ],
            "--from 2026-11-27 is after --to 2026-11-26",
        ),
        (
            vec!["run", "settle", "--date", &today],
            "has not closed yet",
        ),
        (vec!["run", "report", "--date", &today], "--provisional"),
        (
            vec!["run", "reconcile", "--date", "2026-11-26", "--provisional"],
            "goes with settle",
        ),
        (vec!["status", "--limit", "0"], "--limit"),
    ] {
        let out = recaudo(&url, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let status = recaudo(&url, &["status", "--json"]);
    assert_eq!(stdout(&status).trim(), "[]", "nothing ran");
}

/// A database that refuses connections says so, not only that a pool timed out.
#[test]
fn an_unreachable_database_says_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("postgres://recaudo@{closed}/recaudo");
    let out = recaudo(&url, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.to_lowercase().contains("connection refused"), "{said}");
    assert!(!said.contains("pool timed out"), "{said}");
}

/// Finance's morning with the bank: a payer account registered (by a named person), the
/// day's statement taken in by `ingest-bank`, the entries listed with whom they paid, the
/// unidentified deposit assigned once, what each operator stands at; a statement of an
/// account that is not ours is rejected and kept with its report.
fn finance_matches_what_the_bank_paid(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let run_with = |accounts: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_recaudo"))
            .args(args)
            .env("RECAUDO_DATABASE_URL", url)
            .env(
                "RECAUDO_OBJECT_STORE",
                format!("file://{}", objects.display()),
            )
            .env("RECAUDO_BANK_ACCOUNTS", accounts)
            .env("RECAUDO_LOG_FORMAT", "json")
            .env_remove("RECAUDO_CONFIG")
            .env_remove("RECAUDO_ACTOR")
            .output()
            .expect("run recaudo")
    };
    let run = |args: &[&str]| run_with("CO12BANK0001", args);
    let json = |args: &[&str]| -> serde_json::Value {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    for op in ["OP001", "OP002"] {
        let add = run(&[
            "operators",
            "add",
            op,
            "--name",
            "Tienda",
            "--commission-rate",
            "0.035",
            "--tax-rate",
            "0.19",
        ]);
        assert!(add.status.success(), "{add:?}");
    }
    let payer = [
        "operators",
        "set",
        "OP001",
        "--payer-account",
        "CO55PAYOP001",
    ];
    assert_eq!(
        run(&payer).status.code(),
        Some(2),
        "a change names who made it"
    );
    let set = run(&[&payer[..], &["--actor", "ana@finance"]].concat());
    assert!(set.status.success(), "{set:?}");
    let payers = json(&["operators", "payer-accounts", "--json"]);
    assert_eq!(payers[0]["account"], "CO55PAYOP001");
    assert_eq!(payers[0]["operator_id"], "OP001");
    assert_eq!(payers[0]["actor"], "ana@finance");

    let day = objects.join("bank/incoming/CO12BANK0001/2026-11-27");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(
        day.join("statement.csv"),
        "booking_date,value_date,direction,amount,currency,bank_ref,reference,payer_name,payer_account\n\
         2026-11-27,2026-11-27,CREDIT,1000.00,COP,B-1,Pago,Tienda 1,CO55PAYOP001\n\
         2026-11-27,2026-11-27,CREDIT,500.00,COP,B-2,RC-OP002-20261126,Tienda 2,CO99OTHER\n\
         2026-11-27,2026-11-27,CREDIT,70.00,COP,B-3,,Alguien,CO77UNKNOWN\n\
         2026-11-27,2026-11-27,DEBIT,12.50,COP,B-4,COMISION,,\n",
    )
    .unwrap();
    let theirs = objects.join("bank/incoming/CO99NOTOURS/2026-11-27");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(
        theirs.join("statement.csv"),
        "booking_date,value_date,direction,amount,currency,bank_ref,reference,payer_name,payer_account\n\
         2026-11-27,2026-11-27,CREDIT,1.00,COP,X-1,,,\n",
    )
    .unwrap();
    let ingest = run(&["run", "ingest-bank"]);
    assert!(ingest.status.success(), "{ingest:?}");
    let rejected = objects.join("bank/rejected/CO99NOTOURS/2026-11-27/statement.csv.errors.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rejected).unwrap()).unwrap();
    assert_eq!(report["errors"][0]["field"], "account", "{report}");
    assert!(
        objects
            .join("bank/processed/CO12BANK0001/2026-11-27/statement.csv")
            .exists()
    );

    let listed = json(&["remittances", "list", "--json"]);
    let who: Vec<(&str, Option<&str>, Option<&str>)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["bank_ref"].as_str().unwrap(),
                r["operator_id"].as_str(),
                r["matched_by"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            ("B-1", Some("OP001"), Some("payer_account")),
            ("B-2", Some("OP002"), Some("reference")),
            ("B-3", None, None),
            ("B-4", None, None),
        ]
    );
    let table = stdout(&run(&["remittances", "list"]));
    assert!(
        table.contains("suspense:unidentified") && table.contains("suspense:bank_debits"),
        "{table}"
    );
    let stray = json(&["remittances", "list", "--unidentified", "--json"]);
    assert_eq!(stray.as_array().unwrap().len(), 1);
    assert_eq!(stray[0]["bank_ref"], "B-3");

    let assign = ["remittances", "assign", "B-3", "--operator", "OP002"];
    assert_eq!(
        run(&assign).status.code(),
        Some(2),
        "an assignment names who made it"
    );
    let with_actor = [&assign[..], &["--actor", "ana@finance"]].concat();
    let first = run(&with_actor);
    assert!(first.status.success(), "{first:?}");
    assert!(
        stdout(&first).contains("assigned to OP002 by ana@finance"),
        "{first:?}"
    );
    let again = run(&with_actor);
    assert!(stdout(&again).contains("nothing changed"), "{again:?}");
    let other = run(&[
        "remittances",
        "assign",
        "B-3",
        "--operator",
        "OP001",
        "--actor",
        "ana",
    ]);
    assert!(
        !other.status.success(),
        "assigned elsewhere before: {other:?}"
    );
    assert_eq!(
        json(&["remittances", "list", "--unidentified", "--json"]),
        serde_json::json!([])
    );

    // Nothing is settled yet: what they paid is a credit for what falls due next. Posted
    // today, it is today's: as of the day the bank booked it, it was not in our books yet.
    let credits = |aging: serde_json::Value| -> Vec<(String, i64, i64)> {
        aging["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let m = |k: &str| r[k].as_i64().unwrap();
                (
                    r["operator_id"].as_str().unwrap().to_string(),
                    m("owed"),
                    m("credit"),
                )
            })
            .collect()
    };
    let now = credits(json(&["receivables", "--json"]));
    assert_eq!(
        now,
        [
            ("OP001".to_string(), -100_000, 100_000),
            ("OP002".to_string(), -57_000, 57_000)
        ]
    );
    let then = credits(json(&["receivables", "--as-of", "2026-11-27", "--json"]));
    assert_eq!(then, [], "nobody was owed or had paid anything by then");
    // The account was ours after all: once configured, the same file put back goes in.
    std::fs::copy(
        objects.join("bank/rejected/CO99NOTOURS/2026-11-27/statement.csv"),
        theirs.join("statement.csv"),
    )
    .unwrap();
    let fixed = run_with("CO12BANK0001,CO99NOTOURS", &["run", "ingest-bank"]);
    assert!(fixed.status.success(), "{fixed:?}");
    assert!(
        objects
            .join("bank/processed/CO99NOTOURS/2026-11-27/statement.csv")
            .exists()
    );
    // A run again takes nothing new.
    assert!(run(&["run", "ingest-bank"]).status.success());
    assert_eq!(
        json(&["remittances", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn remittances_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    finance_matches_what_the_bank_paid(&format!("sqlite://{}", dir.path().join("r.db").display()));
}

#[tokio::test]
async fn remittances_on_postgres() {
    let Some(url) = testbed::fresh_postgres_url().await else {
        return;
    };
    tokio::task::spawn_blocking(move || finance_matches_what_the_bank_paid(&url))
        .await
        .unwrap();
}
