//! The API's contract: the committed OpenAPI document is the one the code serves, every
//! documented route is served, Schemathesis finds nothing against the running server, and
//! the operational endpoints and limits behave.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

fn committed_document() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap()
}

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    assert!(
        committed_document() == online_api::openapi_document(),
        "online-api/openapi.json is stale: regenerate it with \
         `cargo run -p online-api -- openapi > online-api/openapi.json`"
    );
}

/// What a client generator needs besides the shapes: the response headers, the problem
/// types and where the API is.
#[test]
fn the_document_names_headers_problem_types_and_servers() {
    let doc: Value = serde_json::from_str(&online_api::openapi_document()).unwrap();
    assert_eq!(doc["servers"][0]["url"], "/");
    let sale = &doc["paths"]["/v1/sales"]["post"]["responses"];
    for (status, header) in [
        ("201", "Idempotent-Replayed"),
        ("201", "X-Request-Id"),
        ("401", "WWW-Authenticate"),
        ("429", "Retry-After"),
    ] {
        assert!(
            sale[status]["headers"][header].is_object(),
            "POST /v1/sales {status} lacks {header}: {}",
            sale[status]
        );
    }
    let list = &doc["paths"]["/v1/sales"]["get"]["responses"];
    assert!(
        list["200"]["headers"]["Idempotent-Replayed"].is_null(),
        "a GET takes no key"
    );
    let problem = doc["components"]["schemas"]["Problem"]["description"]
        .as_str()
        .unwrap();
    for slug in online_api::problem::TYPES {
        assert!(
            problem.contains(&format!("urn:recaudo:problem:{slug}")),
            "{slug}"
        );
    }
    // Every problem the code can answer with is in the list.
    let code: String = [
        "src/problem.rs",
        "src/idempotency.rs",
        "src/lib.rs",
        "src/body.rs",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    })
    .collect();
    for part in code.split("Problem::new(").skip(1) {
        let slug = part.split('"').nth(1).unwrap();
        assert!(
            online_api::problem::TYPES.contains(&slug),
            "{slug} is not in problem::TYPES"
        );
    }
}

/// Every (method, path) of the document, with path parameters filled in.
fn documented_operations() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&online_api::openapi_document()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{sale_id}", "1")
                .replace("{card_id}", "CARD0001")
                .replace("{exception_id}", "1")
                .replace("{business_date}", "2026-11-26");
            ops.push((method.to_uppercase(), concrete));
        }
    }
    ops
}

#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite, limits()).await.unwrap();
    let public: BTreeSet<&str> = ["/healthz", "/readyz", "/metrics", "/openapi.json"].into();
    let ops = documented_operations();
    assert_eq!(ops.len(), 23, "{ops:?}");
    for (method, path) in ops {
        let r = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        // Operator routes answer 401 without a token: they matched a route.
        let expected = if public.contains(path.as_str()) {
            200
        } else {
            401
        };
        assert_eq!(r.status(), expected, "{method} {path}");
    }
    for (method, path) in [
        ("GET", "/v1/payments"),
        ("DELETE", "/v1/sales/1"),
        ("GET", "/v2/sales"),
        ("GET", "/admin"),
    ] {
        let r = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 404 | 405),
            "{method} {path}: {}",
            r.status()
        );
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn operations_endpoints_report_health_and_metrics() {
    let app = spawn_app(Backend::Sqlite, limits()).await.unwrap();
    let ready: Value = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    app.sell("OPA", "A-1", "CARD0001", "1000").await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{route="/v1/sales",method="POST",status="201"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"http_request_duration_seconds_count{route="/v1/sales"} 1"#));
    // Raw paths (with card numbers) never become labels.
    app.get("/v1/cards/CARD0009/balance", &token("OPA")).await;
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("CARD0009"));
    assert!(metrics.contains(r#"route="/v1/cards/{card_id}/balance""#));
}

/// A block writes the card's history: a flood of them is throttled like any route, and
/// what was refused left no trace.
#[tokio::test]
async fn blocks_are_rate_limited_like_every_route() {
    let mut tight = limits();
    tight.rate_per_second = 1;
    tight.rate_burst = 3;
    let app = spawn_app(Backend::Sqlite, tight).await.unwrap();
    let a = token("OPA");
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = app
            .post(
                &format!("/v1/cards/CARD00{i:02}/block"),
                &a,
                None,
                &serde_json::json!({"reason": "STOLEN"}),
            )
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            assert_eq!(r.headers()["content-type"], "application/problem+json");
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    for (i, status) in statuses.iter().enumerate() {
        let card = ledger::CardId::parse(&format!("CARD00{i:02}")).unwrap();
        let history = app.ledger.card_history(&card).await.unwrap();
        assert_eq!(history.len(), usize::from(*status == 200), "{i}: {status}");
    }
}

#[tokio::test]
async fn one_operators_flood_does_not_throttle_another() {
    let mut tight = limits();
    tight.rate_per_second = 1;
    tight.rate_burst = 3;
    let app = spawn_app(Backend::Sqlite, tight).await.unwrap();
    let a = token("OPA");
    let mut limited = None;
    for _ in 0..6 {
        let r = app.get("/v1/cards/CARD0001/balance", &a).await;
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("a flood gets 429");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        app.get("/v1/cards/CARD0001/balance", &token("OPB"))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let Some(schemathesis) = std::env::var_os("RECAUDO_TEST_SCHEMATHESIS") else {
        testbed::service_missing("schemathesis", "RECAUDO_TEST_SCHEMATHESIS is not set");
        return;
    };
    let mut generous = limits();
    generous.rate_per_second = 100_000;
    generous.rate_burst = 100_000;
    let app = match spawn_app(Backend::Postgres, generous).await {
        Some(app) => app,
        None => spawn_app(Backend::Sqlite, generous).await.unwrap(),
    };
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new(schemathesis)
        .args(["--config-file", &format!("{dir}/schemathesis.toml"), "run"])
        .arg(format!("{dir}/openapi.json"))
        .args(["--url", &app.base, "--header"])
        .arg(format!("Authorization: Bearer {}", token("OPA")))
        .args(["--seed", "20261127", "--no-color"])
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    app.transactions().await;
}
