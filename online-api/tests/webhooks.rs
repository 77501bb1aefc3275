//! `/v1/webhook` on both backends: registration refuses URLs that are not https or that
//! reach inside (SSRF), the secret is shown once and a rotation shows the new one, the
//! endpoint is the operator's own, and the scope is required.

mod support;

use serde_json::{Value, json};
use support::*;

on_both_backends!(
    inside_or_plain_urls_are_refused_at_registration,
    the_secret_is_shown_once_and_a_rotation_shows_the_new_one,
);

impl TestApp {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn put_webhook(&self, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, "/v1/webhook", token, Some(body))
            .await
    }
}

async fn inside_or_plain_urls_are_refused_at_registration(app: TestApp) {
    for url in [
        "http://93.184.215.14/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
    ] {
        let (status, problem) = app.put_webhook(&token("OPA"), json!({ "url": url })).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["type"], "urn:recaudo:problem:invalid-field");
        assert_eq!(problem["field"], "url");
    }
    let (status, _) = app
        .send(reqwest::Method::GET, "/v1/webhook", &token("OPA"), None)
        .await;
    assert_eq!(status, 404, "nothing was registered");
    // The scope is required.
    let reader = rs256(&claims("OPA", "sales:read"));
    let (status, _) = app
        .put_webhook(&reader, json!({ "url": "https://93.184.215.14/hook" }))
        .await;
    assert_eq!(status, 403);
}

async fn the_secret_is_shown_once_and_a_rotation_shows_the_new_one(app: TestApp) {
    let url = "https://93.184.215.14/recaudo";
    let (status, created) = app.put_webhook(&token("OPA"), json!({ "url": url })).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    assert_eq!(created["status"], "active");

    let (status, read) = app
        .send(reqwest::Method::GET, "/v1/webhook", &token("OPA"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["url"], url);
    assert!(read.get("secret").is_none(), "never shown again: {read}");
    let (status, moved) = app
        .put_webhook(
            &token("OPA"),
            json!({ "url": "https://93.184.215.15/recaudo" }),
        )
        .await;
    assert_eq!(status, 200);
    assert!(moved.get("secret").is_none());

    let (status, rotated) = app
        .put_webhook(&token("OPA"), json!({ "url": url, "rotate_secret": true }))
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, secret);
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );
    let text = serde_json::to_string(
        &app.send(reqwest::Method::GET, "/v1/webhook", &token("OPA"), None)
            .await
            .1,
    )
    .unwrap();
    assert!(!text.contains(new) && !text.contains(&secret));

    // Another operator's endpoint does not exist for OPB.
    let (status, _) = app
        .send(reqwest::Method::GET, "/v1/webhook", &token("OPB"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(reqwest::Method::DELETE, "/v1/webhook", &token("OPB"), None)
        .await;
    assert_eq!(status, 404);
    let (status, log) = app
        .send(
            reqwest::Method::GET,
            "/v1/webhook/deliveries",
            &token("OPA"),
            None,
        )
        .await;
    assert_eq!(
        (status, log["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    let (status, _) = app
        .send(reqwest::Method::DELETE, "/v1/webhook", &token("OPA"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .send(reqwest::Method::GET, "/v1/webhook", &token("OPA"), None)
        .await;
    assert_eq!(status, 404);
}
