//! The jobs as ops run them: two `settle`s of one date at once (one wins, the other touches
//! nothing), a `settle` while a `reconcile` of its date runs elsewhere (it waits for it),
//! a `settle` killed with SIGKILL (its lock runs out, the next run takes over),
//! an S3 server that stops (the run fails after its retries, `status` says why, a later run
//! succeeds), `backfill` (each date once, in order; repeating it does nothing), and the
//! scheduler's catch-up and its end on SIGTERM (a run past the grace is stopped and recorded),
//! and the scheduler's `/metrics`: runs by job and status, durations, what the jobs counted.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ledger::LedgerSettings;
use support::{Env, text};

const DATE: &str = "2026-11-26";

async fn count(db: &testbed::TestLedger, sql: &str) -> i64 {
    ledger::on_pool!(db.ledger.database(), pool => {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_settle_per_date_at_a_time_and_a_killed_one_does_not_block() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let env = Env::new(&db.url);
    env.fixtures_day(DATE, "20000");

    // Two at the same moment: exactly one settles, the other says so and does nothing.
    let spawn = || {
        env.recaudo(&["run", "settle", "--date", DATE])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes == [Some(0), Some(3)] || codes == [Some(3), Some(0)],
        "{codes:?}\n{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    let loser = if a.status.code() == Some(3) { &a } else { &b };
    let said = text(&loser.stderr);
    assert!(
        said.contains("settle for 2026-11-26 is already running")
            && said.contains("nothing was done"),
        "{said}"
    );
    assert_eq!(env.versions(DATE), ["v1"], "one report version");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM recon_runs").await, 1);
    let runs = env.status();
    assert_eq!(runs.len(), 1, "the loser recorded no run: {runs:?}");
    assert_eq!(runs[0]["status"], "succeeded");

    // A run killed mid-way holds the date only until its lease runs out.
    let lease = [("RECAUDO_JOB_LEASE_SECS", "3")];
    let mut killed = env
        .recaudo(&["run", "settle", "--date", DATE])
        .envs(lease)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &db,
        "SELECT COUNT(*) FROM job_runs WHERE status = 'running'",
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killed.kill().unwrap(); // SIGKILL: no clean-up of any kind
    killed.wait().unwrap();
    let blocked = env
        .recaudo(&["run", "settle", "--date", DATE])
        .envs(lease)
        .output()
        .unwrap();
    assert_eq!(blocked.status.code(), Some(3), "{}", text(&blocked.stderr));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let next = env
        .recaudo(&["run", "settle", "--date", DATE])
        .envs(lease)
        .output()
        .unwrap();
    assert!(next.status.success(), "{}", text(&next.stderr));
    let runs = env.status();
    let abandoned: Vec<_> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(abandoned.len(), 1, "{runs:?}");
    assert!(
        abandoned[0]["error"]
            .as_str()
            .unwrap()
            .contains("stopped without finishing")
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM job_locks").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_waits_for_a_reconcile_of_its_date_running_elsewhere() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let env = Env::new(&db.url);
    env.fixtures_day(DATE, "2000");
    // Another process is reconciling the date; it stops renewing, so its lease runs out in
    // a few seconds, as when it finishes or dies.
    ledger::on_pool!(db.ledger.database(), pool => {
        sqlx::query(
            "INSERT INTO job_locks (job, scope, holder, run_id, acquired_at, expires_at) \
             VALUES ('reconcile', $1, 'elsewhere:42:abcd', 'run-1', now(), now() + interval '4 seconds')",
        )
        .bind(DATE)
        .execute(pool)
        .await
        .unwrap();
    });

    let started = Instant::now();
    let settle = env
        .recaudo(&["run", "settle", "--date", DATE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM operator_files").await,
        0,
        "nothing is ingested while the date's reconcile runs elsewhere"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM job_runs").await, 0);
    let settle = settle.wait_with_output().unwrap();
    let said = text(&settle.stderr);
    assert!(settle.status.success(), "{said}");
    assert!(started.elapsed() >= Duration::from_secs(3), "it waited");
    assert!(
        said.contains("waiting for a run of a step to finish elsewhere")
            && said.contains("elsewhere:42:abcd"),
        "{said}"
    );
    assert!(count(&db, "SELECT COUNT(*) FROM operator_files").await > 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM job_locks").await, 0);
}

/// A moto S3 server of the test's own, so the test can stop and restart it.
struct OwnS3 {
    child: std::process::Child,
    port: u16,
}

impl OwnS3 {
    fn start(port: u16) -> Option<OwnS3> {
        let Ok(bin) = std::env::var("RECAUDO_TEST_MOTO_SERVER") else {
            testbed::service_missing(
                "moto's S3 server",
                "RECAUDO_TEST_MOTO_SERVER is not set (scripts/services exports it)",
            );
            return None;
        };
        let child = std::process::Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(OwnS3 { child, port })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bucket and the day's operator files, as an operator would have put them.
async fn bucket_with_files(endpoint: &str, env: &Env) {
    let settings = storage::S3Settings {
        bucket: "recaudo".into(),
        prefix: String::new(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        sse_kms_key_id: None,
        static_credentials: Some(("test".into(), "test".into())),
    };
    let store = storage::S3Store::new(settings).await;
    store
        .client()
        .create_bucket()
        .bucket("recaudo")
        .send()
        .await
        .unwrap();
    let local = storage::LocalStore::new(env.objects()).unwrap();
    use storage::ObjectStore;
    for o in local.list("incoming/").await.unwrap() {
        store
            .put(&o.key, local.get_bytes(&o.key).await.unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_s3_server_fails_the_run_after_its_retries_and_a_later_run_succeeds() {
    let Some(db) = testbed::postgres_ledger(LedgerSettings::default()).await else {
        return;
    };
    let port = free_port();
    let Some(s3) = OwnS3::start(port) else { return };
    let env = Env::new(&db.url);
    env.fixtures_day(DATE, "2000");
    bucket_with_files(&s3.endpoint(), &env).await;
    let settle = |endpoint: String| {
        env.recaudo(&["run", "settle", "--date", DATE])
            .env("RECAUDO_OBJECT_STORE", "s3://recaudo/")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RECAUDO_JOB_RETRIES", "2")
            .output()
            .unwrap()
    };

    let endpoint = s3.endpoint();
    s3.stop();
    let failed = settle(endpoint.clone());
    assert_eq!(failed.status.code(), Some(1));
    let said = text(&failed.stderr);
    assert!(
        said.contains("failed after 3 attempt(s)") && said.contains("S3"),
        "{said}"
    );
    // The runner retried because the step's error blamed an external system.
    assert!(said.contains(r#""blame":"external""#), "{said}");
    let runs = env.status();
    assert_eq!(runs.len(), 3, "the first try and two retries: {runs:?}");
    for (r, attempt) in runs.iter().zip([3, 2, 1]) {
        assert_eq!(r["status"], "failed");
        assert_eq!(r["attempt"], attempt);
        // One line for people: what failed, why, and what to check; no SDK internals.
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("the object store could not be reached")
                && error.contains("AWS_ENDPOINT_URL")
                && !error.contains("DispatchFailure")
                && error.len() < 400,
            "{error}"
        );
    }
    let last = said.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.len() < 500, "{last}");
    let table = text(&env.run(&["status"]).stdout);
    assert!(table.contains("failed") && table.contains("S3"), "{table}");

    // The server is back (empty, as a restarted moto is): the files are put again.
    let s3 = OwnS3::start(port).unwrap();
    bucket_with_files(&s3.endpoint(), &env).await;
    let ok = settle(endpoint);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(env.status()[0]["status"], "succeeded");
    s3.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_refused_for_its_input_is_not_retried() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let env = Env::new(&db.url);
    // A report of a date never reconciled: the request is wrong, so trying again cannot
    // help, whatever the retry setting says.
    let out = env
        .recaudo(&["run", "report", "--date", DATE])
        .env("RECAUDO_JOB_RETRIES", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(said.contains("failed after 1 attempt(s)"), "{said}");
    assert!(said.contains(r#""blame":"user""#), "{said}");
    let runs = env.status();
    assert_eq!(runs.len(), 1, "no retry: {runs:?}");
    assert_eq!(runs[0]["status"], "failed");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("has not been reconciled"),
        "{runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_settles_each_date_once_in_order() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let env = Env::new(&db.url);
    let dates = ["2026-11-23", "2026-11-24", "2026-11-25"];
    for d in dates {
        env.fixtures_day(d, "500");
    }
    let backfill = || env.run(&["backfill", "settle", "--from", dates[0], "--to", dates[2]]);
    let first = backfill();
    assert!(first.status.success(), "{}", text(&first.stderr));
    let runs = env.status();
    let settled: Vec<&str> = runs
        .iter()
        .rev()
        .map(|r| r["business_date"].as_str().unwrap())
        .collect();
    assert_eq!(settled, dates, "each date once, in order");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    for d in dates {
        assert_eq!(env.versions(d), ["v1"]);
    }

    let again = backfill();
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout)
            .matches("skipped (already succeeded)")
            .count(),
        3
    );
    assert_eq!(env.status().len(), 3, "nothing ran again");
    for d in dates {
        assert_eq!(env.versions(d), ["v1"]);
    }

    // Usage errors exit with 2.
    let bad = env.run(&["backfill", "settle", "--from", "2026-11-25"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = env.run(&["run", "setle", "--date", DATE]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("unknown job"));
}

#[test]
fn the_demo_prints_what_its_reports_say() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recaudo"))
        .current_dir(dir.path())
        .args(["demo", "--sales", "4000", "--validations", "8000"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let page = printed
        .lines()
        .find_map(|l| l.split(": ").nth(1).filter(|p| p.ends_with("index.html")))
        .unwrap_or_else(|| panic!("no page path in {printed}"));
    let summary = std::fs::read_to_string(
        std::path::Path::new(page).with_file_name("settlement_summary.csv"),
    )
    .unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 20);
    for r in rows {
        let expected = format!(
            "{}  {}  {}  {}",
            r[at("operator_id")],
            r[at("net_sales")],
            r[at("net_due")],
            r[at("exception_count")]
        );
        let shown = printed
            .lines()
            .find(|l| l.starts_with(r[at("operator_id")]))
            .unwrap()
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join("  ");
        assert_eq!(shown, expected);
    }
    // The riders' reports and the cards taps took below zero went out in the action list;
    // the demo checked the report's violations against the fixtures and printed them.
    let hotlists = dir.path().join("var/objects/hotlists");
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hotlists.join("latest.json")).unwrap()).unwrap();
    let full = std::fs::read_to_string(
        hotlists.join(format!("v{}/full.csv", latest["version"].as_i64().unwrap())),
    )
    .unwrap();
    for reason in ["REPLACED", "NEGATIVE_BALANCE"] {
        assert!(full.contains(&format!(",{reason},")), "{reason} in {full}");
    }
    assert!(printed.contains("hotlist_violations.csv") && printed.contains("BUS-90000"));
    // `recaudo receivables` says what today's report says is overdue (and the report's aging
    // is checked against the fixtures' truth in reports/tests/remittances_days.rs); the
    // operators who did not pay in full are overdue. (Today's provisional report also counts
    // today's provisional lines as not yet due; the command counts published lines only.)
    let receivables = std::process::Command::new(env!("CARGO_BIN_EXE_recaudo"))
        .current_dir(dir.path())
        .args(["receivables", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        receivables.status.success(),
        "{}",
        text(&receivables.stderr)
    );
    let aging: serde_json::Value = serde_json::from_slice(&receivables.stdout).unwrap();
    let today = aging["as_of"].as_str().unwrap().to_string();
    let csv = std::fs::read_to_string(dir.path().join(format!(
        "var/objects/reports/{today}/provisional/receivables_aging.csv"
    )))
    .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let minor = |s: &str| s.replace('.', "").parse::<i64>().unwrap();
    let from_report: Vec<(String, i64, i64)> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|r| {
            (
                r[at("operator_id")].to_string(),
                minor(r[at("days_31_60")]),
                minor(r[at("days_1_30")]),
            )
        })
        .collect();
    let from_cli: Vec<(String, i64, i64)> = aging["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["operator_id"].as_str().unwrap().to_string(),
                r["days_31_60"].as_i64().unwrap(),
                r["days_1_30"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(from_cli, from_report);
    assert!(
        from_cli.iter().filter(|(_, _, late)| *late > 0).count() >= 2,
        "{from_cli:?}"
    );
    // A second run starts over and works too.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_recaudo"))
        .current_dir(dir.path())
        .args(["demo", "--sales", "2000", "--validations", "100"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// A fixtures day of `sales` on the previous business date, and a scheduler (with `vars`)
/// whose cron times are far from now, so that only its catch-up settle of that date runs.
fn catch_up_scheduler(env: &Env, sales: &str, vars: &[(&str, &str)]) -> (String, Child) {
    let calendar = ledger::BusinessCalendar::default();
    let yesterday = calendar
        .business_date(chrono::Utc::now())
        .pred()
        .to_string();
    env.fixtures_day(&yesterday, sales);
    let scheduler = env
        .recaudo(&["schedule"])
        .env("RECAUDO_SCHEDULE_INGEST", "0 0 1 1 *")
        .env("RECAUDO_SCHEDULE_SETTLE", "0 0 1 1 *")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (yesterday, scheduler)
}

fn sigterm(child: &Child) {
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_catches_up_a_missed_settle_and_stops_on_sigterm() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let env = Env::new(&db.url);
    let (yesterday, scheduler) = catch_up_scheduler(&env, "500", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = count(
            &db,
            "SELECT COUNT(*) FROM job_runs WHERE job = 'settle' AND status = 'succeeded'",
        )
        .await;
        if done == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the missed settle never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&scheduler);
    let out = scheduler.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("scheduler stopped"));
    let runs = env.status();
    assert_eq!(runs[0]["business_date"], yesterday.as_str());
    assert_eq!(env.versions(&yesterday), ["v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_still_going_when_the_grace_after_sigterm_ends_is_stopped_and_recorded() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let env = Env::new(&db.url);
    // No grace: the catch-up settle is stopped as soon as the signal comes.
    let (_, scheduler) = catch_up_scheduler(&env, "20000", &[("RECAUDO_SCHEDULE_GRACE_SECS", "0")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        &db,
        "SELECT COUNT(*) FROM job_runs WHERE status = 'running'",
    )
    .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the catch-up settle never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigterm(&scheduler);
    let out = scheduler.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("scheduler stopped"));
    let runs = env.status();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "failed", "{runs:?}");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("stopped by a signal"),
        "{runs:?}"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM job_locks").await, 0);
}

/// `/metrics` of a scheduler on `port`, once it says what `wanted` says (or the deadline).
async fn metrics_until(port: u16, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("http://127.0.0.1:{port}/metrics");
    loop {
        let text = match reqwest::get(&url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if wanted.iter().all(|w| text.contains(w)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics never showed {wanted:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_serves_its_runs_as_prometheus_metrics() {
    let db = testbed::sqlite_ledger(LedgerSettings::default()).await;
    let env = Env::new(&db.url);
    let port = free_port();
    let events = env.path().join("events");
    // The catch-up settle of yesterday succeeds; ingest then runs every two seconds.
    let (yesterday, scheduler) = catch_up_scheduler(
        &env,
        "500",
        &[
            ("RECAUDO_METRICS_ADDR", &format!("127.0.0.1:{port}")),
            ("RECAUDO_SCHEDULE_INGEST", "*/2 * * * * *"),
        ],
    );
    let settled = metrics_until(
        port,
        &[
            r#"recaudo_job_runs_total{job="settle",status="succeeded"} 1"#,
            "recaudo_last_settled_date_timestamp_seconds ",
            r#"recaudo_operator_files_total{outcome="accepted"}"#,
            r#"recaudo_reconciliation_items_total{case="MATCHED"}"#,
            r#"recaudo_reconciliation_items_total{case="AMOUNT_MISMATCH"}"#,
            "recaudo_validations_posted_total ",
            r#"recaudo_job_duration_seconds_bucket{job="settle",le="+Inf"} 1"#,
            r#"recaudo_job_duration_seconds_count{job="settle"} 1"#,
        ],
    )
    .await;
    let midnight = chrono::NaiveDate::parse_from_str(&yesterday, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    assert!(
        settled.contains(&format!(
            "recaudo_last_settled_date_timestamp_seconds {midnight}\n"
        )),
        "{settled}"
    );
    assert!(
        settled.contains("# TYPE recaudo_job_duration_seconds histogram"),
        "{settled}"
    );

    // The event folder becomes unreadable: ingest-validations now fails (our side, not
    // retried), while ingest-files goes on succeeding.
    std::fs::remove_dir_all(&events).unwrap();
    std::fs::write(&events, "not a folder").unwrap();
    let failing = metrics_until(
        port,
        &[
            r#"recaudo_job_runs_total{job="ingest-validations",status="failed"}"#,
            r#"recaudo_job_runs_total{job="ingest-files",status="succeeded"}"#,
        ],
    )
    .await;
    assert!(!failing.contains("recaudo_job_retries_total{job=\"ingest-validations\"}"));
    sigterm(&scheduler);
    let out = scheduler.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
