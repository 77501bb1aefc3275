//! `recaudo-bench` lists every benchmark, and each explains itself.

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_recaudo-bench"))
        .args(args)
        .output()
        .expect("recaudo-bench runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_five_benchmarks_are_listed_and_explain_themselves() {
    let help = bench(&["--help"]);
    for name in ["ledger", "api", "ingest", "reconcile", "report"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "{name} missing from:\n{help}"
        );
        let own = bench(&[name, "--help"]);
        assert!(own.contains("Usage: recaudo-bench"), "{name}: {own}");
    }
    // The engine's child processes are there for `reconcile`, but not listed.
    assert!(!help.contains("reconcile-engine"), "{help}");
}
