//! The production manifests and the Terraform through the real scanners and recaudo's own
//! rules: `kubectl kustomize`, `kubernetes-validate --strict`, the CRD validators, checkov
//! (with the register of skipped checks) and an HCL parser. The tools come from
//! scripts/services; a missing one skips here on a laptop and fails under CI.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use deploy::manifest::{self, name_of};
use deploy::skips::{self, Register};
use serde_json::Value;

/// The Kubernetes version the schemas are checked against: the oldest EKS version the
/// manifests are meant for.
const KUBERNETES_VERSION: &str = "1.33.0";
/// Kinds Kubernetes does not define, validated by their CRDs' validators instead.
const CUSTOM_KINDS: [&str; 2] = ["ExternalSecret", "ServiceMonitor"];

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn production() -> (String, Vec<Value>) {
    manifest::render(&deploy_dir().join("k8s/overlays/production")).expect("the overlay renders")
}

/// A tool from scripts/services' deploy tools (`RECAUDO_TEST_DEPLOY_TOOLS`), or from PATH.
fn tool(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("RECAUDO_TEST_DEPLOY_TOOLS")
        .into_iter()
        .chain(std::env::var_os("PATH"))
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    testbed::service_missing(name, "not installed (scripts/services installs it)");
    None
}

fn run(mut command: Command, stdin: Option<&[u8]>) -> (bool, String) {
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the tool starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn rendered_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn the_production_manifests_keep_recaudos_rules() {
    let (_, objects) = production();
    let found = manifest::violations(&objects);
    assert!(found.is_empty(), "rules broken:\n{}", found.join("\n"));

    // What the rules are about is there to be checked: the three workloads, and the
    // scheduler twice over for availability (single flight keeps two safe).
    let names: Vec<String> = objects.iter().map(name_of).collect();
    for expected in [
        "Deployment/recaudo-api",
        "Deployment/recaudo-scheduler",
        "Job/recaudo-migrate",
        "HorizontalPodAutoscaler/recaudo-api",
        "PodDisruptionBudget/recaudo-api",
        "NetworkPolicy/default-deny",
        "ServiceMonitor/recaudo-scheduler",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let scheduler = objects
        .iter()
        .find(|o| name_of(o) == "Deployment/recaudo-scheduler")
        .unwrap();
    assert_eq!(scheduler["spec"]["replicas"], 2);
    let external_secrets = objects.iter().filter(|o| o["kind"] == "ExternalSecret");
    let keys: Vec<&str> = external_secrets
        .flat_map(|o| o["spec"]["data"].as_array().unwrap())
        .map(|d| d["secretKey"].as_str().unwrap())
        .collect();
    for secret in [
        "RECAUDO_DATABASE_URL",
        "RECAUDO_JWT_ISSUER",
        "RECAUDO_JWT_AUDIENCE",
        "RECAUDO_JWT_JWKS",
    ] {
        assert!(
            keys.contains(&secret),
            "{secret} does not come from the secret manager"
        );
    }
}

#[test]
fn the_production_manifests_validate_strictly_against_their_schemas() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let (text, objects) = production();
    let file = rendered_file(&text);
    let mut command = Command::new(validate);
    command
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(file.path());
    let (ok, out) = run(command, None);
    assert!(ok, "kubernetes-validate --strict failed:\n{out}");
    // Every object was validated, but for the custom kinds, whose schemas it does not have.
    let passed = out
        .lines()
        .filter(|l| l.starts_with("INFO") && l.contains(" passed "))
        .count();
    let custom: Vec<Value> = objects
        .iter()
        .filter(|o| CUSTOM_KINDS.contains(&o["kind"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    assert_eq!(passed + custom.len(), objects.len(), "{out}");
    for line in out.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|k| line.contains(&format!("kind {k} "))),
            "{line}"
        );
    }

    let Some(node) = tool("node") else { return };
    let Some(models) = std::env::var_os("RECAUDO_TEST_CRD_MODELS") else {
        testbed::service_missing("CRD validators", "RECAUDO_TEST_CRD_MODELS is not set");
        return;
    };
    let mut command = Command::new(node);
    command
        .arg(deploy_dir().join("k8s/validate-crds.mjs"))
        .env("CRD_MODELS", models);
    let (ok, out) = run(command, Some(&serde_json::to_vec(&custom).unwrap()));
    assert!(
        ok,
        "the custom resources do not validate against their CRDs:\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK ")).count(),
        custom.len(),
        "{out}"
    );
}

#[test]
fn the_crd_validators_reject_what_their_crds_reject() {
    // The validators must be able to fail: a ServiceMonitor with a malformed interval and an
    // ExternalSecret without its remote reference.
    let Some(node) = tool("node") else { return };
    let Some(models) = std::env::var_os("RECAUDO_TEST_CRD_MODELS") else {
        testbed::service_missing("CRD validators", "RECAUDO_TEST_CRD_MODELS is not set");
        return;
    };
    let bad = serde_json::json!([
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m"},
         "spec": {"selector": {}, "endpoints": [{"port": "metrics", "interval": "30 seconds"}]}},
        {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "s"},
         "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws"}, "data": [{"secretKey": "K"}]}}
    ]);
    let mut command = Command::new(node);
    command
        .arg(deploy_dir().join("k8s/validate-crds.mjs"))
        .env("CRD_MODELS", models);
    let (ok, out) = run(command, Some(&serde_json::to_vec(&bad).unwrap()));
    assert!(!ok, "{out}");
    assert!(
        out.contains("ERROR ServiceMonitor/m") && out.contains("interval"),
        "{out}"
    );
    assert!(
        out.contains("ERROR ExternalSecret/s") && out.contains("remoteRef"),
        "{out}"
    );
}

fn checkov(framework: &str, target: &[&str]) -> Option<Vec<skips::Failure>> {
    let checkov = tool("checkov")?;
    let mut command = Command::new(checkov);
    command
        .args([
            "--skip-download",
            "--quiet",
            "--output",
            "json",
            "--framework",
            framework,
        ])
        .args(target)
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    let out = command.output().expect("checkov runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures = skips::failures(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's output is not its JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Some(failures)
}

fn register() -> Register {
    let text = std::fs::read_to_string(deploy_dir().join("checkov-skips.yaml")).unwrap();
    Register::parse(&text).expect("checkov-skips.yaml is the register's format")
}

fn assert_agrees(framework: &str, register: &[skips::Skip], failures: &[skips::Failure]) {
    let d = skips::compare(register, failures);
    assert!(
        d.is_empty(),
        "checkov ({framework}) and deploy/checkov-skips.yaml disagree:\n\
         failed and not registered: {:#?}\nregistered and no longer failing: {:#?}\nwithout a reason: {:#?}",
        d.unlisted,
        d.stale,
        d.unexplained
    );
}

#[test]
fn checkov_passes_on_the_production_manifests_but_for_the_registered_skips() {
    let (text, _) = production();
    let file = rendered_file(&text);
    let Some(failures) = checkov("kubernetes", &["--file", file.path().to_str().unwrap()]) else {
        return;
    };
    assert_agrees("kubernetes", &register().kubernetes, &failures);
}

#[test]
fn checkov_passes_on_the_terraform_but_for_the_registered_skips() {
    let dir = deploy_dir().join("terraform");
    let Some(failures) = checkov("terraform", &["--directory", dir.to_str().unwrap()]) else {
        return;
    };
    assert_agrees("terraform", &register().terraform, &failures);
}

#[test]
fn every_terraform_file_parses_as_hcl() {
    // checkov passes over a file it cannot parse with a warning; this makes it an error.
    let Some(python) = tool("python3") else {
        return;
    };
    let files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("terraform"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    assert!(files.len() >= 8, "{files:?}");
    let script = "import sys, hcl2\nfor path in sys.argv[1:]:\n    with open(path) as f:\n        hcl2.load(f)\n    print('parsed', path)\n";
    let mut command = Command::new(python);
    command.arg("-c").arg(script).args(&files);
    let (ok, out) = run(command, None);
    assert!(ok, "a Terraform file does not parse:\n{out}");
}
