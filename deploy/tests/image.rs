//! The container image, built and smoke-tested by `scripts/image` (podman, no registry):
//! migrate and the demo on a volume, the API's health and a sale with a development token,
//! every container as the image's non-root user on a read-only root filesystem. The
//! binaries are the ones this test run built (a release build would add half an hour to a
//! fresh machine's run; `scripts/image` alone builds release binaries).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_image_builds_and_passes_its_smoke_test() {
    let has_podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_podman && !testbed::services_required() {
        testbed::service_missing(
            "podman",
            "not installed (scripts/image installs it, as root)",
        );
        return;
    }
    // target/{profile}/deps/this-test → target/{profile}, where cargo put the binaries.
    let exe = std::env::current_exe().unwrap();
    let binaries: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/image"))
        .current_dir(&root)
        .args(["--binaries", binaries.to_str().unwrap(), "--tag", "test"])
        .output()
        .expect("scripts/image runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/image failed:\n{log}");
    for step in [
        "smoke: recaudo migrate",
        "smoke: recaudo demo",
        "a sale through the API answered 201",
        "smoke test passed",
    ] {
        assert!(log.contains(step), "{step:?} not in the log:\n{log}");
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "localhost/recaudo:test"
    );
    eprintln!("{log}");
}
