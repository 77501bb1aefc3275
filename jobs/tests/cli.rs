//! The `recaudo` command as ops use it: migrate and manage operators, on both backends.

use std::process::{Command, Output};

fn recaudo(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recaudo"))
        .args(args)
        .env("RECAUDO_DATABASE_URL", database_url)
        .env("RECAUDO_LOG_FORMAT", "json")
        .env_remove("RECAUDO_CONFIG")
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

    let list = recaudo(url, &["operators", "list", "--json"]);
    assert!(list.status.success());
    let ops: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(ops[0]["id"], "OP001");
    assert_eq!(ops[0]["name"], "Tienda La 14");
    assert_eq!(ops[0]["commission_rate"], "0.035");
    assert_eq!(ops[0]["void_window"], 7200);
    assert_eq!(ops[0]["active"], false);
    let table = stdout(&recaudo(url, &["operators", "list"]));
    assert!(
        table.contains("Tienda La 14") && table.contains("2h"),
        "{table}"
    );

    // Bad input: a clear error naming the field, exit 1, nothing changed.
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
    assert_eq!(bad.status.code(), Some(1));
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

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["operators", "--help"],
        vec!["operators", "add", "--help"],
        vec!["operators", "list", "--help"],
        vec!["operators", "set", "--help"],
        vec!["run", "--help"],
        vec!["status", "--help"],
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
