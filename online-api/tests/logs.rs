//! What ops read in the logs of `recaudo-api` when a request is refused: one JSON line
//! per request, and a refused one names the operator (verified, or claimed by a token that
//! failed) and the reason.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger::{LedgerSettings, Operator, OperatorId, OperatorName, Rate, VoidWindow};
use online_api::dev_keys::DevKeys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_logs_the_operator_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("api.db").display());
    let ledger = ledger::connect(&db, LedgerSettings::default())
        .await
        .unwrap();
    ledger
        .add_operator(&Operator {
            id: OperatorId::parse("OPA").unwrap(),
            name: OperatorName::parse("Tienda A").unwrap(),
            commission_rate: Rate::parse("commission_rate", "0.03").unwrap(),
            tax_rate: Rate::parse("tax_rate", "0.19").unwrap(),
            void_window: VoidWindow::parse("30m").unwrap(),
            settlement_lag_days: 1,
            active: true,
        })
        .await
        .unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut api = Command::new(env!("CARGO_BIN_EXE_recaudo-api"))
        .current_dir(dir.path())
        .env("RECAUDO_DATABASE_URL", &db)
        .env("RECAUDO_API_ADDR", addr.to_string())
        .env("RECAUDO_LOG_FORMAT", "json")
        .env("RECAUDO_API_RATE_LIMIT", "1")
        .env("RECAUDO_API_RATE_BURST", "1")
        .env_remove("RECAUDO_CONFIG")
        .env_remove("RECAUDO_JWT_JWKS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the API did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys = DevKeys::load_or_create_in(&dir.path().join("var/dev-jwt")).unwrap();
    let expired = keys.mint("OPA", "balances:read", -600).unwrap();
    let valid = keys.mint("OPA", "balances:read", 600).unwrap();
    let balance = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/v1/cards/CARD0001/balance"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(balance(expired).await, 401);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(balance(valid.clone()).await);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    api.kill().unwrap();
    let mut logs = String::new();
    api.stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    api.wait().unwrap();

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let refused = |status: u64| {
        lines
            .iter()
            .find(|l| l["status"] == status)
            .unwrap_or_else(|| panic!("no log line for {status}:\n{logs}"))
            .clone()
    };
    let unauthorized = refused(401);
    assert_eq!(unauthorized["operator"], "OPA (unverified)");
    assert_eq!(unauthorized["reason"], "the token has expired");
    let limited = refused(429);
    assert_eq!(limited["operator"], "OPA");
    assert!(
        limited["reason"].as_str().unwrap().contains("rate"),
        "{limited}"
    );
}
