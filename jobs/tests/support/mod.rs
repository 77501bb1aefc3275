//! Running `recaudo` as ops do, in a folder of its own, against a given database.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

impl Env {
    pub fn new(database_url: &str) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            database_url: database_url.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn objects(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// `recaudo` with the embedded defaults but the database, under this folder.
    pub fn recaudo(&self, args: &[&str]) -> Command {
        self.configure(Command::new(env!("CARGO_BIN_EXE_recaudo")), args)
    }

    /// `recaudo` as it would run a day from now (Debian's `faketime`): what a test sold
    /// today through the API is then on a closed date, which it may settle. The product
    /// has no switch for this.
    pub fn recaudo_a_day_later(&self, args: &[&str]) -> Command {
        let mut c = Command::new("faketime");
        c.args(["-f", "+1d", env!("CARGO_BIN_EXE_recaudo")])
            // Only the wall clock moves; timers and timeouts keep real time.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        self.configure(c, args)
    }

    fn configure(&self, mut c: Command, args: &[&str]) -> Command {
        c.current_dir(self.dir.path())
            .args(args)
            .env("RECAUDO_DATABASE_URL", &self.database_url)
            .env("RECAUDO_LOG_FORMAT", "json")
            .env("RECAUDO_JOB_RETRY_BACKOFF_MS", "100")
            .env(
                "RECAUDO_OBJECT_STORE",
                format!("file://{}", self.objects().display()),
            )
            .env("RECAUDO_EVENTS_DIR", self.dir.path().join("events"))
            .env_remove("RECAUDO_CONFIG")
            .env_remove("RECAUDO_KAFKA_BROKERS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.recaudo(args).output().expect("recaudo runs")
    }

    /// `recaudo fixtures` for `date`: operators registered, the ledger side posted, files
    /// and events published where ingest finds them.
    pub fn fixtures_day(&self, date: &str, sales: &str) {
        let out = self.run(&[
            "fixtures",
            "--date",
            date,
            "--sales",
            sales,
            "--register",
            "--post-ledger",
            "--publish",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// `recaudo status --json`.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["status", "--json", "--limit", "100"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The report versions published for `date`.
    pub fn versions(&self, date: &str) -> Vec<String> {
        let dir = self.objects().join("reports").join(date);
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('v'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The API on the ledger, in this process; returns its address and the signing keys.
#[allow(dead_code)] // not every test binary starts the API
pub async fn start_api(
    ledger: std::sync::Arc<dyn ledger::Ledger>,
    keys_dir: &std::path::Path,
) -> (std::net::SocketAddr, online_api::dev_keys::DevKeys) {
    let keys = online_api::dev_keys::DevKeys::load_or_create_in(keys_dir).unwrap();
    let verifier = online_api::auth::Verifier::new(online_api::auth::VerifierSettings {
        issuer: online_api::dev_keys::DEV_ISSUER.into(),
        audience: online_api::dev_keys::DEV_AUDIENCE.into(),
        algorithms: online_api::auth::parse_algorithms("ES256").unwrap(),
        source: online_api::auth::JwksSource::Static(keys.jwks.clone()),
    })
    .await
    .unwrap();
    let mut limits = online_api::Limits::from_settings(&settings::Settings::embedded().api);
    limits.rate_burst = 10_000;
    limits.rate_per_second = 10_000;
    let router = online_api::app(
        ledger,
        verifier,
        ledger::MoneyRules::new(ledger::Currency::COP),
        limits,
        events::ssrf::Policy::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, keys)
}
