//! What ops and finance rely on at the edges of a day, through the command they use: a
//! date settles only once closed (an open one can be looked at, provisionally); input that
//! arrives after a settle makes the date stale until it is settled again; a statement keeps
//! the terms of its own date; an operator without an accepted file is NO_FILE; cards that
//! taps took below zero are listed; `status` filters and keeps each run's note; dead letters
//! are readable without SQL; and a re-sent file never overwrites what a manifest
//! fingerprints.

mod support;

use std::collections::BTreeMap;

use sha2::Digest;
use support::{Env, text};

const DATE: &str = "2026-11-26";

fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("recaudo.db").display());
    // The database lives beside the objects, in a folder the env keeps.
    let env = Env::new(&url);
    std::mem::forget(dir);
    env
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

impl Env {
    fn object(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.objects().join(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    fn latest(&self, date: &str) -> String {
        let latest: serde_json::Value =
            serde_json::from_slice(&self.object(&format!("reports/{date}/latest.json"))).unwrap();
        latest["prefix"].as_str().unwrap().to_string()
    }

    fn summary(&self, prefix: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        csv_rows(&self.object(&format!("{prefix}settlement_summary.csv")))
            .into_iter()
            .map(|r| (r["operator_id"].clone(), r))
            .collect()
    }

    fn late_validation(&self, card: &str) {
        let event = serde_json::json!({
            "event_id": format!("late-{card}"),
            "device_id": format!("BUS-{card}"),
            "device_seq": 1,
            "card_id": card,
            "occurred_at": "2026-11-26T15:00:00-05:00",
            "fare": "2950.00",
            "currency": "COP",
            "route_id": "R1",
            "transport_operator_id": "TO1",
        });
        let path = self.path().join(format!("events/zz-late-{card}.jsonl"));
        std::fs::write(path, format!("{event}\n")).unwrap();
    }
}

#[test]
fn late_input_makes_a_settled_date_stale_and_statements_keep_their_terms() {
    let env = sqlite_env();
    env.fixtures_day(DATE, "1500");
    // An operator that is registered and sends nothing, then only a file that is rejected.
    ok(&env.run(&[
        "operators",
        "add",
        "OPNOFILE",
        "--name",
        "Sin archivo",
        "--commission-rate",
        "0.03",
        "--tax-rate",
        "0.19",
    ]));
    ok(&env.run(&["run", "settle", "--date", DATE]));
    let v1 = env.latest(DATE);
    assert_eq!(v1, format!("reports/{DATE}/v1/"));
    // The manifest names the job run that made it, as `status` shows it.
    let manifest: serde_json::Value =
        serde_json::from_slice(&env.object(&format!("{v1}manifest.json"))).unwrap();
    let settle = json(&env.run(&["status", "--json", "--job", "settle"]));
    assert_eq!(manifest["run_id"], settle[0]["id"]);
    let summary = env.summary(&v1);
    assert_eq!(summary["OPNOFILE"]["status"], "NO_FILE");
    assert!(
        summary.values().all(|r| r["report_kind"] == "FINAL"),
        "{summary:?}"
    );
    let op = summary
        .keys()
        .find(|k| k.as_str() != "OPNOFILE")
        .unwrap()
        .clone();
    let old_rate = summary[&op]["commission_rate"].clone();
    assert_eq!(
        json(&env.run(&["status", "--stale", "--json"])),
        serde_json::json!([])
    );

    // The operator's terms change (from the next business date, by default), and the file
    // of the operator without one arrives, broken.
    ok(&env.run(&["operators", "set", &op, "--commission-rate", "0.5"]));
    let bad = "incoming/OPNOFILE/2026-11-26/OPNOFILE_20261126_001.csv";
    std::fs::create_dir_all(env.objects().join("incoming/OPNOFILE/2026-11-26")).unwrap();
    std::fs::write(env.objects().join(bad), "H,1,OPNOFILE,2026-11-26,001,x\n").unwrap();
    // A late tap, on a card that holds nothing: honoured at the gate, so below zero.
    env.late_validation("CARDLATE0001");
    ok(&env.run(&["run", "ingest-validations"]));
    let stale = json(&env.run(&["status", "--stale", "--json"]));
    assert_eq!(stale.as_array().unwrap().len(), 1, "{stale}");
    assert_eq!(stale[0]["business_date"], DATE);
    assert_eq!(stale[0]["last_input"], "validations");
    let table = ok(&env.run(&["status"]));
    assert!(
        table.contains("stale dates") && table.contains(DATE),
        "{table}"
    );

    // Backfill does not skip a stale date: it settles it again, and it is current.
    let out = ok(&env.run(&["backfill", "settle", "--from", DATE, "--to", DATE]));
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(
        json(&env.run(&["status", "--stale", "--json"])),
        serde_json::json!([])
    );
    let v2 = env.latest(DATE);
    assert_eq!(v2, format!("reports/{DATE}/v2/"));
    let summary = env.summary(&v2);
    assert_eq!(
        summary[&op]["commission_rate"], old_rate,
        "the statement of {DATE} keeps the terms in force on {DATE}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&env.object(&format!("{v2}manifest.json"))).unwrap();
    let terms = manifest["inputs"]["operator_terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == op.as_str())
        .unwrap();
    assert_eq!(terms["commission_rate"], old_rate.as_str());
    // The rejected file is listed, its operator still NO_FILE; the card below zero too.
    assert_eq!(summary["OPNOFILE"]["status"], "NO_FILE");
    let page = String::from_utf8(env.object(&format!("{v2}index.html"))).unwrap();
    assert!(
        page.contains(bad) && page.contains("Rejected files (1)"),
        "{page}"
    );
    assert!(page.contains("Version 2, inputs as of"), "{page}");
    assert!(
        page.contains("<td class=\"status-no_file\">NO_FILE</td>"),
        "{page}"
    );
    let negative = csv_rows(&env.object(&format!("{v2}negative_cards.csv")));
    let late = negative
        .iter()
        .find(|r| r["card_id"] == "CARDLATE0001")
        .expect("the card the late tap took below zero is listed");
    assert_eq!(
        (late["balance"].as_str(), late["validations"].as_str()),
        ("-2950.00", "1")
    );
    assert!(
        negative.iter().all(|r| r["balance"].starts_with('-')),
        "only cards below zero"
    );
    assert!(page.contains("CARDLATE0001"), "{page}");
    // The page's totals and its exceptions table count the same exceptions.
    let total: usize = summary
        .values()
        .map(|r| r["exception_count"].parse::<usize>().unwrap())
        .sum();
    assert!(
        page.contains(&format!("<dd id=\"total-exception-count\">{total}</dd>"))
            && page.contains(&format!("<h2>Exceptions ({total})</h2>")),
        "{total}"
    );
}

#[test]
fn an_open_day_is_looked_at_provisionally_and_never_counted_as_settled() {
    let env = sqlite_env();
    let today = ledger::BusinessCalendar::default()
        .business_date(chrono::Utc::now())
        .to_string();
    env.fixtures_day(&today, "800");
    let refused = env.run(&["run", "settle", "--date", &today]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("has not closed yet"));

    let out = ok(&env.run(&["run", "settle", "--date", &today, "--provisional"]));
    assert!(out.contains("PROVISIONAL"), "{out}");
    let prefix = format!("reports/{today}/provisional/");
    let summary = env.summary(&prefix);
    assert!(!summary.is_empty());
    assert!(summary.values().all(|r| r["report_kind"] == "PROVISIONAL"));
    for file in [
        "discrepancies.csv",
        "fare_distribution.csv",
        "device_gaps.csv",
    ] {
        let bytes = env.object(&format!("{prefix}{file}"));
        let header = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(header.ends_with(",report_kind"), "{file}: {header}");
    }
    let page = String::from_utf8(env.object(&format!("{prefix}index.html"))).unwrap();
    assert!(page.contains("<title>PROVISIONAL Settlement"), "{page}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&env.object(&format!("{prefix}manifest.json"))).unwrap();
    assert_eq!(manifest["kind"], "PROVISIONAL");
    assert!(
        !env.objects()
            .join(format!("reports/{today}/latest.json"))
            .exists()
    );
    assert_eq!(env.versions(&today), Vec::<String>::new(), "no version");
    // Not settled: no settle run, and nothing for the scheduler to call stale.
    let settles = json(&env.run(&["status", "--json", "--job", "settle"]));
    assert_eq!(settles, serde_json::json!([]));
    let looks = json(&env.run(&["status", "--json", "--job", "settle-provisional"]));
    assert_eq!(looks[0]["status"], "succeeded");
    assert_eq!(
        json(&env.run(&["status", "--stale", "--json"])),
        serde_json::json!([])
    );
}

#[test]
fn status_filters_keep_notes_and_dead_letters_are_listed() {
    let env = sqlite_env();
    let out = env.run(&[
        "fixtures",
        "--date",
        DATE,
        "--sales",
        "600",
        "--register",
        "--post-ledger",
        "--publish",
        "--whole-file-defect",
    ]);
    ok(&out);
    let ingest = env.run(&["run", "ingest-files"]);
    ok(&ingest);
    ok(&env.run(&["run", "settle", "--date", DATE]));
    // Log lines are for people and machines, never Rust's debug text (`Accepted { … }`).
    for line in text(&ingest.stderr).lines() {
        let log: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = log["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains(" { ") && !message.contains("Some("),
            "{line}"
        );
        for (key, value) in log.as_object().unwrap() {
            if let Some(text) = value.as_str() {
                assert!(!text.contains(" { ") || key == "error", "{key}: {line}");
            }
        }
    }

    let files = json(&env.run(&["status", "--json", "--job", "ingest-files"]));
    assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
    let note = files[0]["note"].as_str().unwrap();
    assert!(
        note.contains("rejected") && note.contains("_002.csv"),
        "{note}"
    );
    let settle = json(&env.run(&["status", "--json", "--date", DATE]));
    assert_eq!(settle.as_array().unwrap().len(), 1, "{settle}");
    assert!(
        settle[0]["note"]
            .as_str()
            .unwrap()
            .contains(&format!("reports published under reports/{DATE}/v1/")),
        "{settle}"
    );
    assert_eq!(
        json(&env.run(&["status", "--json", "--status", "failed"])),
        serde_json::json!([])
    );
    let limited = json(&env.run(&["status", "--json", "--limit", "1"]));
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(limited[0]["job"], "settle", "newest first");
    let table = ok(&env.run(&["status", "--job", "ingest-files"]));
    assert!(
        table.contains("rejected"),
        "the note is in the table: {table}"
    );

    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path().join("var/fixtures/truth.json")).unwrap())
            .unwrap();
    let dead = json(&env.run(&["dead-letters", "list", "--json", "--limit", "10000"]));
    let dead = dead.as_array().unwrap();
    assert_eq!(
        dead.len() as u64,
        truth["malformed_events"].as_u64().unwrap()
    );
    assert!(dead.iter().all(|d| {
        !d["reason"].as_str().unwrap().is_empty() && d["payload_encoding"].is_string()
    }));
    let table = ok(&env.run(&["dead-letters", "list"]));
    assert!(
        table.contains("reason") && table.contains(dead[0]["reason"].as_str().unwrap()),
        "{table}"
    );
}

#[test]
fn a_re_sent_file_leaves_every_manifest_verifiable() {
    let env = sqlite_env();
    env.fixtures_day(DATE, "600");
    ok(&env.run(&["run", "settle", "--date", DATE]));
    let v1 = env.latest(DATE);
    let manifest: serde_json::Value =
        serde_json::from_slice(&env.object(&format!("{v1}manifest.json"))).unwrap();
    let first = &manifest["inputs"]["operator_files"][0];
    let kept = first["object_key"].as_str().unwrap().to_string();
    assert!(kept.starts_with("processed/"), "{kept}");
    let received = first["received_as"].as_str().unwrap().to_string();

    // The operator sends other bytes under the same name and seq.
    let mut other = env.object(&kept);
    other.extend_from_slice(b"\n");
    std::fs::write(env.objects().join(&received), &other).unwrap();
    ok(&env.run(&["run", "settle", "--date", DATE]));
    let report = env.object(&format!(
        "{}.errors.json",
        received.replacen("incoming/", "rejected/", 1)
    ));
    assert!(
        String::from_utf8_lossy(&report).contains("higher sequence"),
        "{}",
        String::from_utf8_lossy(&report)
    );
    // Every file every manifest fingerprints still has its bytes where the manifest says.
    for prefix in [v1, env.latest(DATE)] {
        let manifest: serde_json::Value =
            serde_json::from_slice(&env.object(&format!("{prefix}manifest.json"))).unwrap();
        for f in manifest["inputs"]["operator_files"].as_array().unwrap() {
            let bytes = env.object(f["object_key"].as_str().unwrap());
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                f["sha256"].as_str().unwrap(),
                "{prefix}: {f}"
            );
        }
        for f in manifest["files"].as_array().unwrap() {
            let bytes = env.object(&format!("{prefix}{}", f["path"].as_str().unwrap()));
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                f["sha256"].as_str().unwrap()
            );
        }
    }
}

/// `recaudo schedule` ingesting every second, with no settle and no catch-up: only a stale
/// date can be settled, and only with `resettle` on.
fn ingesting_scheduler(env: &Env, resettle: &str) -> std::process::Child {
    env.recaudo(&["schedule"])
        .env("RECAUDO_SCHEDULE_INGEST", "* * * * * *")
        .env("RECAUDO_SCHEDULE_SETTLE", "0 0 1 1 *")
        .env("RECAUDO_SCHEDULE_CATCH_UP", "false")
        .env("RECAUDO_SCHEDULE_RESETTLE_STALE", resettle)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn the_scheduler_settles_a_stale_date_again_by_itself() {
    let env = sqlite_env();
    env.fixtures_day(DATE, "500");
    ok(&env.run(&["run", "settle", "--date", DATE]));
    env.late_validation("CARDLATE0002");
    let mut scheduler = ingesting_scheduler(&env, "true");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while env.versions(DATE).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stale date was not settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &scheduler.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = scheduler.wait().unwrap();
    assert!(out.success());
    assert_eq!(
        json(&env.run(&["status", "--stale", "--json"])),
        serde_json::json!([])
    );
    let negative = csv_rows(&env.object(&format!("{}negative_cards.csv", env.latest(DATE))));
    assert!(negative.iter().any(|r| r["card_id"] == "CARDLATE0002"));
    // With the setting off, a stale date waits for ops.
    env.late_validation("CARDLATE0003");
    let mut idle = ingesting_scheduler(&env, "false");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while json(&env.run(&["status", "--stale", "--json"])) == serde_json::json!([]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the late tap was never ingested"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    idle.kill().unwrap();
    idle.wait().unwrap();
    assert_eq!(env.versions(DATE).len(), 2, "not settled again");
}

/// The database keeps what people query (the run, its summaries, its non-MATCHED items);
/// the whole item list is Parquet in the object store, named by the run with its sha256,
/// and the same inputs give the same bytes.
#[test]
fn a_run_keeps_its_exceptions_in_the_database_and_every_item_in_the_store() {
    let env = sqlite_env();
    env.fixtures_day(DATE, "800");
    ok(&env.run(&["run", "settle", "--date", DATE]));
    ok(&env.run(&["run", "reconcile", "--date", DATE]));
    let db = env.database_url.trim_start_matches("sqlite://").to_string();
    let query = |sql: &str| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys,json;c=sqlite3.connect(sys.argv[1]);print(json.dumps(c.execute(sys.argv[2]).fetchall()))", &db, sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        query("SELECT COUNT(*) FROM recon_items WHERE case_name = 'MATCHED'"),
        serde_json::json!([[0]])
    );
    let runs = query(
        "SELECT r.items, r.exceptions, r.items_key, r.items_sha256, \
         (SELECT COUNT(*) FROM recon_items i WHERE i.run_id = r.id) \
         FROM recon_runs r ORDER BY r.created_at",
    );
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let mut objects = Vec::new();
    for run in runs {
        let (items, exceptions, key, sha, stored) = (&run[0], &run[1], &run[2], &run[3], &run[4]);
        assert_eq!(
            exceptions, stored,
            "every non-MATCHED item is in the database"
        );
        assert!(items.as_i64().unwrap() > exceptions.as_i64().unwrap());
        let key = key.as_str().unwrap();
        assert!(
            key.starts_with(&format!("reconciliation/{DATE}/")) && key.ends_with("/items.parquet")
        );
        let bytes = env.object(key);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            sha.as_str().unwrap()
        );
        objects.push(bytes);
    }
    assert!(
        objects[0] == objects[1],
        "the same inputs give the same Parquet bytes"
    );
    // The job hands the run's exceptions to the case sync: one standing case per
    // non-MATCHED item of the current run, as the run found it.
    let found = query(
        "SELECT i.operator_id, i.operator_ref, i.case_name, i.difference FROM recon_items i \
         JOIN recon_runs r ON r.id = i.run_id WHERE r.is_current ORDER BY 1, 2",
    );
    let cases = query(
        "SELECT operator_id, operator_ref, case_name, difference FROM exception_cases \
         WHERE business_date = '2026-11-26' AND state <> 'CLEARED' ORDER BY 1, 2",
    );
    assert!(!found.as_array().unwrap().is_empty());
    assert_eq!(cases, found);
    // `reconcile --out` writes the same item file beside the CSVs, one line per item.
    let out = tempfile::tempdir().unwrap();
    ok(&env.run(&[
        "reconcile",
        "--date",
        DATE,
        "--out",
        &out.path().to_string_lossy(),
    ]));
    assert!(std::fs::read(out.path().join("items.parquet")).unwrap() == objects[0]);
    let csv = std::fs::read_to_string(out.path().join("items.csv")).unwrap();
    assert_eq!(
        csv.lines().count() as i64,
        runs[0][0].as_i64().unwrap() + 1,
        "a header and one line per item"
    );
    assert!(
        std::fs::read_to_string(out.path().join("summary.csv"))
            .unwrap()
            .starts_with("operator_id,")
    );
}
