//! The online API as operators (and attackers) meet it, on PostgreSQL and on SQLite.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

on_both_backends!(
    jwt_attacks_are_rejected_with_a_bearer_challenge,
    a_valid_es256_token_is_accepted_and_jku_is_ignored,
    a_missing_scope_is_forbidden,
    unknown_and_inactive_operators_are_forbidden,
    operators_cannot_see_or_void_each_others_sales,
    an_idempotency_key_replays_the_first_answer,
    concurrent_requests_with_one_key_make_one_transaction,
    a_key_reused_by_another_operator_is_another_key,
    bad_input_names_the_field,
    an_insufficient_balance_leaves_the_card_untouched,
    concurrent_payments_cannot_overdraw,
    a_sale_can_be_voided_once,
    sales_are_listed_in_pages,
    token_problems_say_which_and_scopes_come_as_text_or_array,
    instants_read_back_as_written_and_a_missing_query_field_is_named,
    operators_see_and_dispute_only_their_own_exceptions,
    operators_read_only_their_own_settlements,
    the_statement_runs_to_the_receivable_and_is_the_callers_own,
    a_reported_card_refuses_payments_and_top_ups_and_is_replaced,
);

async fn token_problems_say_which_and_scopes_come_as_text_or_array(app: TestApp) {
    let good = claims("OPA", "balances:read");
    let detail = |token: String| {
        let app = &app;
        async move {
            let r = app.get("/v1/cards/CARD0001/balance", &token).await;
            let (status, _, body) = status_and_body(r).await;
            (
                status,
                body["detail"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let (status, said) = detail(rs256(&no_sub)).await;
    assert_eq!(status, 401);
    assert!(said.contains("\"sub\""), "{said}");
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &good,
        &EncodingKey::from_rsa_pem(keys().rsa_private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let (status, said) = detail(no_kid).await;
    assert_eq!(status, 401);
    assert!(said.contains("key id (kid)"), "{said}");
    let mut numeric = good.clone();
    numeric["operator_id"] = json!(42);
    let (status, said) = detail(rs256(&numeric)).await;
    assert_eq!(status, 401);
    assert!(said.contains("operator_id and sub are strings"), "{said}");
    // Scopes as a JSON array, under `scope` or under `scp`, are scopes.
    for claim in ["scope", "scp"] {
        let mut listed = good.clone();
        listed.as_object_mut().unwrap().remove("scope");
        listed[claim] = json!(["balances:read", "sales:read"]);
        let (status, said) = detail(rs256(&listed)).await;
        assert_eq!(status, 200, "{claim}: {said}");
    }
}

async fn instants_read_back_as_written_and_a_missing_query_field_is_named(app: TestApp) {
    let t = token("OPA");
    let r = app
        .post(
            "/v1/sales",
            &t,
            Some("k-time"),
            &sale_body("R-T", "CARD0001", "1000"),
        )
        .await;
    let (status, _, created) = status_and_body(r).await;
    assert_eq!(status, 201, "{created}");
    let id = created["sale_id"].as_i64().unwrap();
    let r = app.get(&format!("/v1/sales/{id}"), &t).await;
    let (_, _, read) = status_and_body(r).await;
    assert_eq!(created["occurred_at"], read["occurred_at"], "one precision");
    let fraction = created["occurred_at"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .map_or(0, |f| f.trim_end_matches('Z').len());
    assert!(fraction <= 6, "{created}");

    let r = app.get("/v1/sales", &t).await;
    let (status, _, body) = status_and_body(r).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "business_date", "{body}");
    let r = app
        .get("/v1/sales?business_date=2026-11-26&colour=red", &t)
        .await;
    let (_, _, body) = status_and_body(r).await;
    assert_eq!(body["field"], "colour", "{body}");
}

async fn status_and_body(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

async fn jwt_attacks_are_rejected_with_a_bearer_challenge(app: TestApp) {
    let good = claims("OPA", ALL_SCOPES);
    let valid = rs256(&good);
    let [h, p, s]: [&str; 3] = valid.split('.').collect::<Vec<_>>().try_into().unwrap();

    let mut attacks: Vec<(&str, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        attacks.push((
            "alg none",
            unsigned(&json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"}), &good),
        ));
    }
    // HS256 keyed with the RSA public key: the classic algorithm confusion.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("rsa-1".into());
    attacks.push((
        "HS256 with the public key",
        jsonwebtoken::encode(
            &hs,
            &good,
            &EncodingKey::from_secret(keys().rsa_public_pem.as_bytes()),
        )
        .unwrap(),
    ));
    let mut other = good.clone();
    other["operator_id"] = json!("OPB");
    attacks.push((
        "tampered payload",
        format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(other.to_string())),
    ));
    let mut sig = s.to_string();
    let flipped = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(flipped);
    attacks.push(("tampered signature", format!("{h}.{p}.{sig}")));
    let mut c = good.clone();
    c["exp"] = json!(now() - 120);
    attacks.push(("expired beyond leeway", rs256(&c)));
    let mut c = good.clone();
    c["nbf"] = json!(now() + 300);
    attacks.push(("nbf in the future", rs256(&c)));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("exp");
    attacks.push(("missing exp", rs256(&c)));
    let mut c = good.clone();
    c["aud"] = json!("someone-else");
    attacks.push(("wrong aud", rs256(&c)));
    let mut c = good.clone();
    c["iss"] = json!("https://evil.example.test/");
    attacks.push(("wrong iss", rs256(&c)));
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("rsa-404".into());
    attacks.push((
        "unknown kid",
        jsonwebtoken::encode(
            &unknown,
            &good,
            &EncodingKey::from_rsa_pem(keys().rsa_private_pem.as_bytes()).unwrap(),
        )
        .unwrap(),
    ));
    for malformed in ["not-a-token", "a.b", "a.b.c", "", "...."] {
        attacks.push(("malformed", malformed.to_string()));
    }

    for (name, token) in attacks {
        let r = app
            .post(
                "/v1/sales",
                &token,
                Some("k"),
                &sale_body("R1", "CARD0001", "1000"),
            )
            .await;
        let (status, headers, body) = status_and_body(r).await;
        assert_eq!(status, 401, "{name}: {body}");
        let challenge = headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{name}: {challenge:?}"
        );
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{name}"
        );
    }
    // No header at all.
    let r = app
        .http
        .get(format!("{}/v1/cards/CARD0001/balance", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(app.transactions().await, 0, "nothing was posted");
    // The untouched token works.
    let r = app
        .post(
            "/v1/sales",
            &valid,
            Some("k-ok"),
            &sale_body("R1", "CARD0001", "1000"),
        )
        .await;
    assert_eq!(r.status(), 201);
}

async fn a_valid_es256_token_is_accepted_and_jku_is_ignored(app: TestApp) {
    let r = app
        .get(
            "/v1/cards/CARD0001/balance",
            &es256(&claims("OPA", "balances:read")),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A jku header pointing elsewhere changes nothing: keys come from our JWKS only.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    header.jku = Some("https://evil.example.test/jwks.json".into());
    let t = jsonwebtoken::encode(
        &header,
        &claims("OPA", "balances:read"),
        &EncodingKey::from_rsa_pem(keys().rsa_private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        app.get("/v1/cards/CARD0001/balance", &t).await.status(),
        200
    );
}

async fn a_missing_scope_is_forbidden(app: TestApp) {
    let reader = rs256(&claims("OPA", "sales:read balances:read"));
    let r = app
        .post(
            "/v1/sales",
            &reader,
            Some("k1"),
            &sale_body("R1", "CARD0001", "1000"),
        )
        .await;
    let (status, headers, body) = status_and_body(r).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let r = app
        .post(
            "/v1/payments",
            &reader,
            Some("k2"),
            &payment_body("P1", "CARD0001", "1000"),
        )
        .await;
    assert_eq!(r.status(), 403);
    let writer = rs256(&claims("OPA", "sales:write"));
    assert_eq!(
        app.get("/v1/cards/CARD0001/balance", &writer)
            .await
            .status(),
        403
    );
    assert_eq!(app.get("/v1/sales/1", &writer).await.status(), 403);
    assert_eq!(app.transactions().await, 0);
}

async fn unknown_and_inactive_operators_are_forbidden(app: TestApp) {
    let r = app
        .post(
            "/v1/sales",
            &token("OPX"),
            Some("k1"),
            &sale_body("R1", "CARD0001", "1000"),
        )
        .await;
    assert_eq!(r.status(), 403);
    app.ledger
        .update_operator(
            &ledger::OperatorId::parse("OPB").unwrap(),
            &ledger::OperatorPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = app
        .post(
            "/v1/sales",
            &token("OPB"),
            Some("k1"),
            &sale_body("R1", "CARD0001", "1000"),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.transactions().await, 0);
}

async fn operators_cannot_see_or_void_each_others_sales(app: TestApp) {
    let sale = app.sell("OPA", "A-1", "CARD0001", "5000").await;
    let id = sale["sale_id"].as_i64().unwrap();
    let b = token("OPB");
    let r = app.get(&format!("/v1/sales/{id}"), &b).await;
    assert_eq!(r.status(), 404);
    let r = app
        .post(&format!("/v1/sales/{id}/void"), &b, Some("kv"), &json!({}))
        .await;
    assert_eq!(r.status(), 404);
    let date = sale["business_date"].as_str().unwrap();
    let r = app
        .get(&format!("/v1/sales?business_date={date}"), &b)
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    // A's sale is as it was.
    let r = app.get(&format!("/v1/sales/{id}"), &token("OPA")).await;
    let own: Value = r.json().await.unwrap();
    assert_eq!(own["status"], "active");
    assert_eq!(app.balance("CARD0001").await, "5000.00");
}

async fn an_idempotency_key_replays_the_first_answer(app: TestApp) {
    let a = token("OPA");
    let body = sale_body("A-1", "CARD0001", "5000");
    let missing = app.post("/v1/sales", &a, None, &body).await;
    let (status, _, problem) = status_and_body(missing).await;
    assert_eq!(status, 400);
    assert_eq!(problem["field"], "Idempotency-Key");

    let first = app.post("/v1/sales", &a, Some("key-1"), &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = app.post("/v1/sales", &a, Some("key-1"), &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = app
        .post(
            "/v1/sales",
            &a,
            Some("key-1"),
            &sale_body("A-1", "CARD0001", "6000"),
        )
        .await;
    let (status, _, problem) = status_and_body(other).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["type"],
        "urn:recaudo:problem:idempotency-key-reused"
    );
    assert_eq!(app.transactions().await, 1);
    assert_eq!(app.balance("CARD0001").await, "5000.00");
}

async fn concurrent_requests_with_one_key_make_one_transaction(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post(
                    "/v1/sales",
                    &token("OPA"),
                    Some("same-key"),
                    &sale_body("A-1", "CARD0001", "5000"),
                )
                .await
                .status()
                .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(app.transactions().await, 1);
    assert_eq!(app.balance("CARD0001").await, "5000.00");
}

async fn a_key_reused_by_another_operator_is_another_key(app: TestApp) {
    let r = app
        .post(
            "/v1/sales",
            &token("OPA"),
            Some("shared"),
            &sale_body("A-1", "CARD0001", "5000"),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/v1/sales",
            &token("OPB"),
            Some("shared"),
            &sale_body("B-1", "CARD0002", "7000"),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["operator_ref"], "B-1");
    assert_eq!(b["card_id"], "CARD0002");
    assert_eq!(app.transactions().await, 2);
}

async fn bad_input_names_the_field(app: TestApp) {
    let a = token("OPA");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut unknown = sale_body("A-1", "CARD0001", "5000");
    unknown["discount"] = json!("1");
    cases.push((unknown, "discount"));
    let mut float = sale_body("A-1", "CARD0001", "5000");
    float["amount"] = json!(5000.5);
    cases.push((float, "amount"));
    for amount in ["1.005", "0", "0.00", "-1", "99999999.00", "1e3", "abc"] {
        cases.push((sale_body("A-1", "CARD0001", amount), "amount"));
    }
    let mut currency = sale_body("A-1", "CARD0001", "5000");
    currency["currency"] = json!("USD");
    cases.push((currency, "currency"));
    cases.push((sale_body("A-1", "card-0001", "5000"), "card_id"));
    cases.push((sale_body("A 1", "CARD0001", "5000"), "operator_ref"));
    let mut missing = sale_body("A-1", "CARD0001", "5000");
    missing.as_object_mut().unwrap().remove("point_of_sale");
    cases.push((missing, "point_of_sale"));
    for (i, (body, field)) in cases.into_iter().enumerate() {
        let r = app
            .post("/v1/sales", &a, Some(&format!("bad-{i}")), &body)
            .await;
        let (status, headers, problem) = status_and_body(r).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }
    // Oversized body: 413.
    let mut huge = sale_body("A-1", "CARD0001", "5000");
    huge["point_of_sale"] = json!("P".repeat(64 * 1024));
    let r = app.post("/v1/sales", &a, Some("huge"), &huge).await;
    assert_eq!(r.status(), 413);
    // Not JSON: 415. On a new connection: the server may close the one the oversized body
    // came on before reading it all, and a request sent on it then fails to send.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sales", app.base))
        .bearer_auth(&a)
        .header("Idempotency-Key", "text")
        .header("Content-Type", "text/plain")
        .body(sale_body("A-1", "CARD0001", "5000").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // A page over the cap is rejected.
    let r = app
        .get("/v1/sales?business_date=2026-11-26&limit=501", &a)
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("limit")));
    let r = app.get("/v1/cards/card%201/balance", &a).await;
    assert_eq!(r.status(), 422);
    assert_eq!(app.transactions().await, 0);
}

async fn an_insufficient_balance_leaves_the_card_untouched(app: TestApp) {
    app.sell("OPA", "A-1", "CARD0001", "2000").await;
    let r = app
        .post(
            "/v1/payments",
            &token("OPA"),
            Some("p1"),
            &payment_body("P-1", "CARD0001", "2950"),
        )
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "urn:recaudo:problem:insufficient-balance");
    assert_eq!(problem["balance"], "2000.00");
    assert_eq!(app.balance("CARD0001").await, "2000.00");
    let r = app
        .post(
            "/v1/payments",
            &token("OPA"),
            Some("p2"),
            &payment_body("P-2", "CARD0001", "1500"),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["card_balance"], "500.00");
}

async fn concurrent_payments_cannot_overdraw(app: TestApp) {
    app.sell("OPA", "A-1", "CARD0001", "29500").await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post(
                    "/v1/payments",
                    &token("OPA"),
                    Some(&format!("pay-{i}")),
                    &payment_body(&format!("P-{i}"), "CARD0001", "2950"),
                )
                .await
                .status()
                .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => ok += 1,
            422 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(app.balance("CARD0001").await, "0.00");
    app.transactions().await;
}

async fn a_sale_can_be_voided_once(app: TestApp) {
    let sale = app.sell("OPA", "A-1", "CARD0001", "5000").await;
    let id = sale["sale_id"].as_i64().unwrap();
    let a = token("OPA");
    let r = app
        .post(&format!("/v1/sales/{id}/void"), &a, Some("v1"), &json!({}))
        .await;
    let (status, _, body) = status_and_body(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "voided");
    assert_eq!(body["card_balance"], "0.00");
    let r = app
        .post(&format!("/v1/sales/{id}/void"), &a, Some("v2"), &json!({}))
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:recaudo:problem:already-voided");
    let r = app
        .post("/v1/sales/999999/void", &a, Some("v3"), &json!({}))
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.balance("CARD0001").await, "0.00");
    assert_eq!(app.transactions().await, 2);
}

async fn sales_are_listed_in_pages(app: TestApp) {
    let mut date = String::new();
    for i in 0..5 {
        date = app.sell("OPA", &format!("A-{i}"), "CARD0001", "1000").await["business_date"]
            .as_str()
            .unwrap()
            .to_string();
    }
    app.sell("OPB", "B-1", "CARD0001", "1000").await;
    let a = token("OPA");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sales?business_date={date}&limit=2&cursor={c}"),
            None => format!("/v1/sales?business_date={date}&limit=2"),
        };
        let r = app.get(&path, &a).await;
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page: Value = r.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["operator_ref"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["A-0", "A-1", "A-2", "A-3", "A-4"]);
}

async fn operators_see_and_dispute_only_their_own_exceptions(app: TestApp) {
    use testbed::recon::{RunItem, store_run};
    let date = ledger::BusinessDate::parse("2026-11-26").unwrap();
    let item = |operator_id, operator_ref| RunItem {
        operator_id,
        operator_ref,
        case_name: "AMOUNT_MISMATCH",
        ledger: Some(("CARD0001", 20_000)),
        file: Some(("CARD0001", 25_000)),
    };
    store_run(
        &*app.ledger,
        date,
        "run-1",
        &[item("OPA", "A-1"), item("OPA", "A-2"), item("OPB", "B-1")],
    )
    .await;
    exceptions::sync_run(
        app.ledger.database(),
        date,
        "run-1",
        app.ledger.settings().currency,
    )
    .await
    .unwrap();

    let (a, b) = (token("OPA"), token("OPB"));
    let page: Value = app
        .get("/v1/exceptions?limit=1", &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["operator_ref"], "A-1");
    assert_eq!(page["items"][0]["difference"], "-50.00");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let rest: Value = app
        .get(&format!("/v1/exceptions?limit=1&cursor={cursor}"), &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["operator_ref"], "A-2");
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let mine = page["items"][0]["id"].as_i64().unwrap();

    // Another operator's case does not exist for OPB.
    assert_eq!(
        app.get(&format!("/v1/exceptions/{mine}"), &b)
            .await
            .status(),
        404
    );
    let theirs: Value = app.get("/v1/exceptions", &b).await.json().await.unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    let dispute = json!({"reason": "our receipt shows 250.00", "evidence_ref": "ticket-881"});
    let r = app
        .post(
            &format!("/v1/exceptions/{mine}/dispute"),
            &b,
            None,
            &dispute,
        )
        .await;
    assert_eq!(r.status(), 404);

    let r = app
        .post(
            &format!("/v1/exceptions/{mine}/dispute"),
            &a,
            None,
            &dispute,
        )
        .await;
    assert_eq!(r.status(), 200);
    let case: Value = r.json().await.unwrap();
    assert_eq!(case["state"], "DISPUTED");
    assert_eq!(case["dispute_reason"], "our receipt shows 250.00");
    let history = case["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["action"], "DISPUTED");
    assert_eq!(history.last().unwrap()["actor"], "operator:OPA:client-OPA");
    // What finance sees.
    let disputed = exceptions::list(
        app.ledger.database(),
        &exceptions::CaseFilter {
            states: vec![exceptions::CaseState::Disputed],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(disputed.len(), 1);
    assert_eq!(
        disputed[0].dispute_reason.as_deref(),
        Some("our receipt shows 250.00")
    );

    // A reason is required, unknown fields are refused, a read-only token cannot dispute.
    let r = app
        .post(
            &format!("/v1/exceptions/{mine}/dispute"),
            &a,
            None,
            &json!({"reason": " "}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post(
            &format!("/v1/exceptions/{mine}/dispute"),
            &a,
            None,
            &json!({"reason": "x", "amount": 1}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let reader = rs256(&claims("OPA", "exceptions:read"));
    let r = app
        .post(
            &format!("/v1/exceptions/{mine}/dispute"),
            &reader,
            None,
            &dispute,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.get(&format!("/v1/exceptions/{mine}"), &reader)
            .await
            .status(),
        200
    );
}

fn published(
    operator: &str,
    date: &str,
    version: i32,
    net_sales: i64,
) -> ledger::settlement_line::PublishedLine {
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    ledger::settlement_line::PublishedLine {
        operator_id: operator.into(),
        business_date: day(date),
        report_version: version,
        currency: "COP".into(),
        sales_count: 3,
        sales_amount: net_sales + 1_000,
        voids_count: 1,
        voids_amount: 1_000,
        net_sales,
        commission_rate: "0.035".into(),
        commission: net_sales * 35 / 1_000,
        commission_tax: 0,
        net_due: net_sales - net_sales * 35 / 1_000,
        due_date: day(date).succ_opt().unwrap(),
        matched_count: 2,
        exception_count: 1,
        exception_amount: -5_000,
        adjustments: 2_500,
        status: "EXCEPTIONS".into(),
        payment_reference: format!("RC-{operator}-{}", date.replace('-', "")),
        published_at: ledger::journal::now(),
    }
}

async fn operators_read_only_their_own_settlements(app: TestApp) {
    let day = |d: &str| ledger::BusinessDate::parse(d).unwrap();
    let books = app.ledger.clone();
    let replace_date = |date, version, lines: &[ledger::settlement_line::PublishedLine]| {
        let (books, lines) = (books.clone(), lines.to_vec());
        async move {
            books
                .publish_settlement_lines(date, version, &lines, ledger::journal::now())
                .await
        }
    };
    replace_date(
        day("2026-11-25"),
        1,
        &[published("OPA", "2026-11-25", 1, 100_000)],
    )
    .await
    .unwrap();
    replace_date(
        day("2026-11-26"),
        1,
        &[
            published("OPA", "2026-11-26", 1, 200_000),
            published("OPB", "2026-11-26", 1, 300_000),
        ],
    )
    .await
    .unwrap();
    let (a, b) = (token("OPA"), token("OPB"));

    // Newest first, a page at a time.
    let page: Value = app
        .get("/v1/settlements?limit=1", &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let line = &page["items"][0];
    assert_eq!(line["business_date"], "2026-11-26");
    assert_eq!(line["net_sales"], "2000.00");
    assert_eq!(line["commission"], "70.00");
    assert_eq!(line["net_due"], "1930.00");
    assert_eq!(line["due_date"], "2026-11-27");
    assert_eq!(line["adjustments"], "25.00");
    assert_eq!(line["exception_amount"], "-50.00");
    assert_eq!(line["status"], "EXCEPTIONS");
    assert_eq!(line["report_version"], 1);
    assert_eq!(line["payment_reference"], "RC-OPA-20261126");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let rest: Value = app
        .get(&format!("/v1/settlements?limit=1&cursor={cursor}"), &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["business_date"], "2026-11-25");
    assert!(rest["next_cursor"].is_null(), "{rest}");

    // One date, by path or by query; another operator's is not there.
    let one: Value = app
        .get("/v1/settlements/2026-11-26", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["net_sales"], "3000.00");
    assert_eq!(
        app.get("/v1/settlements/2026-11-25", &b).await.status(),
        404
    );
    assert_eq!(
        app.get("/v1/settlements/2026-11-24", &a).await.status(),
        404
    );
    assert_eq!(app.get("/v1/settlements/yesterday", &a).await.status(), 404);
    let by_query: Value = app
        .get("/v1/settlements?business_date=2026-11-25", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_query["items"].as_array().unwrap().len(), 0, "{by_query}");

    // A new version of the date's report replaces its lines.
    replace_date(
        day("2026-11-26"),
        2,
        &[published("OPA", "2026-11-26", 2, 250_000)],
    )
    .await
    .unwrap();
    // An older version that finishes last does not win.
    replace_date(
        day("2026-11-26"),
        1,
        &[published("OPA", "2026-11-26", 1, 1)],
    )
    .await
    .unwrap();
    let again: Value = app
        .get("/v1/settlements/2026-11-26", &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            again["report_version"].as_i64(),
            again["net_sales"].as_str()
        ),
        (Some(2), Some("2500.00"))
    );
    assert_eq!(
        app.get("/v1/settlements/2026-11-26", &b).await.status(),
        404
    );

    // The scope is needed; a bad date is named.
    let no_scope = rs256(&claims("OPA", "sales:read"));
    assert_eq!(app.get("/v1/settlements", &no_scope).await.status(), 403);
    let r = app
        .get("/v1/settlements?business_date=2026-13-01", &a)
        .await;
    let (status, _, body) = status_and_body(r).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("business_date")),
        "{body}"
    );
}

async fn the_statement_runs_to_the_receivable_and_is_the_callers_own(app: TestApp) {
    let today = app
        .ledger
        .settings()
        .calendar
        .business_date(ledger::journal::now());
    let (a, b) = (token("OPA"), token("OPB"));
    app.sell("OPA", "S-1", "CARD0001", "3000.00").await;
    app.sell("OPA", "S-2", "CARD0002", "2000.00").await;
    app.sell("OPB", "S-1", "CARD0003", "700.00").await;
    // Yesterday's line settled: commission 70.00 on 2,000.00 back to the operator.
    app.ledger
        .publish_settlement_lines(
            today.pred(),
            1,
            &[published("OPA", &today.pred().to_string(), 1, 200_000)],
            ledger::journal::now(),
        )
        .await
        .unwrap();
    let deposit = |bank_ref: &str, amount: i64| ledger::deposit::NewDeposit {
        bank_account: "CO12BANK0001".into(),
        bank_ref: bank_ref.into(),
        amount,
        to: ledger::deposit::Destination::Operator {
            operator: ledger::OperatorId::parse("OPA").unwrap(),
            matched_by: ledger::deposit::MatchedBy::Reference,
            settles: None,
        },
        at: ledger::journal::now(),
    };
    app.ledger
        .post_deposits(&[deposit("B1", 150_000), deposit("B2", 50_000)])
        .await
        .unwrap();

    let path = format!("/v1/statement?from={}&to={today}", today.pred());
    let r = app.get(&path, &a).await;
    let (status, _, s) = status_and_body(r).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["operator_id"].as_str(), s["opening_balance"].as_str()),
        (Some("OPA"), Some("0.00"))
    );
    let kinds: Vec<(&str, &str, &str)> = s["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["amount"].as_str().unwrap(),
                m["balance"].as_str().unwrap(),
            )
        })
        .collect();
    // Sales owe more, the commission and the payments less; each balance is the one before
    // plus the movement.
    assert_eq!(
        kinds,
        [
            ("sales", "5000.00", "5000.00"),
            ("settlement", "-70.00", "4930.00"),
            ("deposit", "-1500.00", "3430.00"),
            ("deposit", "-500.00", "2930.00"),
        ]
    );
    assert_eq!(s["movements"][0]["count"], 2);
    assert_eq!(s["movements"][2]["document"], "bank:CO12BANK0001:B1");
    // The closing balance is what the ledger's receivable says is owed.
    let receivable = testbed::account_balance(&*app.ledger, "operator:OPA:receivable").await;
    assert_eq!(
        s["closing_balance"],
        ledger::money::format_minor(-receivable, 2)
    );
    assert_eq!(s["closing_balance"], "2930.00");
    // A range that ends before today opens and closes where the books stood.
    let before: Value = app
        .get(
            &format!("/v1/statement?from={}&to={}", today.pred(), today.pred()),
            &a,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            before["opening_balance"].as_str(),
            before["closing_balance"].as_str()
        ),
        (Some("0.00"), Some("0.00"))
    );
    let after: Value = app
        .get(&format!("/v1/statement?from={0}&to={0}", today.succ()), &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["opening_balance"], "2930.00", "{after}");

    // Another operator sees its own books only; no parameter reaches someone else's.
    let theirs: Value = app.get(&path, &b).await.json().await.unwrap();
    assert_eq!(theirs["closing_balance"], "700.00", "{theirs}");
    assert_eq!(theirs["movements"].as_array().unwrap().len(), 1);
    let r = app.get(&format!("{path}&operator_id=OPA"), &b).await;
    assert_eq!(r.status(), 422);

    // The scope is needed; a bad or missing date, or a range too long, is named.
    let no_scope = rs256(&claims("OPA", "sales:read"));
    assert_eq!(app.get(&path, &no_scope).await.status(), 403);
    for (query, field) in [
        ("", "from"),
        ("?from=2026-13-01", "from"),
        ("?from=2026-11-20&to=2026-11-19", "to"),
        ("?from=2025-01-01&to=2026-11-19", "to"),
    ] {
        let r = app.get(&format!("/v1/statement{query}"), &a).await;
        let (status, _, body) = status_and_body(r).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{query}: {body}"
        );
    }
}

async fn a_reported_card_refuses_payments_and_top_ups_and_is_replaced(app: TestApp) {
    app.sell("OPA", "A-1", "CARD0001", "20000").await;
    let (a, b) = (token("OPA"), token("OPB"));
    let card: Value = app
        .get("/v1/cards/CARD0001", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (card["status"].as_str(), card["balance"].as_str()),
        (Some("ACTIVE"), Some("20000.00"))
    );

    // Blocking needs cards:write; a reason is a rider's.
    let reader = rs256(&claims("OPB", "balances:read"));
    let r = app
        .post(
            "/v1/cards/CARD0001/block",
            &reader,
            None,
            &json!({"reason": "LOST"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            "/v1/cards/CARD0001/block",
            &b,
            None,
            &json!({"reason": "FRAUD"}),
        )
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("reason")));
    let r = app
        .post(
            "/v1/cards/CARD0001/block",
            &b,
            None,
            &json!({"reason": "LOST", "pin": 1}),
        )
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("pin")),
        "{problem}"
    );

    // Any operator may block any card: the rider walked into B's shop.
    let r = app
        .post(
            "/v1/cards/CARD0001/block",
            &b,
            None,
            &json!({"reason": "LOST", "note": "left on bus T13"}),
        )
        .await;
    let (status, _, card) = status_and_body(r).await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(
        (card["status"].as_str(), card["reason"].as_str()),
        (Some("BLOCKED"), Some("LOST"))
    );
    let history = app
        .ledger
        .card_history(&ledger::CardId::parse("CARD0001").unwrap())
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].operator_id.as_deref(), Some("OPB"));
    assert_eq!(history[0].actor, "client-OPB");
    assert_eq!(history[0].note.as_deref(), Some("left on bus T13"));
    assert_eq!(history[0].reason, ledger::card_status::BlockReason::Lost);
    assert!((chrono::Utc::now() - history[0].at).num_seconds().abs() < 60);

    for (path, body) in [
        ("/v1/payments", payment_body("P-1", "CARD0001", "2950")),
        ("/v1/sales", sale_body("A-2", "CARD0001", "1000")),
    ] {
        let r = app.post(path, &a, Some(&format!("k{path}")), &body).await;
        let (status, headers, problem) = status_and_body(r).await;
        assert_eq!(status, 422, "{path}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            problem["type"], "urn:recaudo:problem:card-blocked",
            "{path}"
        );
        assert_eq!(problem["reason"], "LOST");
    }
    assert_eq!(app.balance("CARD0001").await, "20000.00");

    // The new card must be empty.
    app.sell("OPA", "A-3", "CARD0003", "1000").await;
    let r = app
        .post(
            "/v1/cards/CARD0001/replace",
            &a,
            None,
            &json!({"new_card_id": "CARD0003"}),
        )
        .await;
    let (status, _, problem) = status_and_body(r).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("new_card_id"))
    );
    let r = app
        .post(
            "/v1/cards/CARD0001/replace",
            &a,
            None,
            &json!({"new_card_id": "CARD0002"}),
        )
        .await;
    let (status, _, replacement) = status_and_body(r).await;
    assert_eq!(status, 201, "{replacement}");
    assert_eq!(replacement["new_card_id"], "CARD0002");
    assert!(replacement["transferred_at"].is_null());
    // The same request again is the same replacement.
    let r = app
        .post(
            "/v1/cards/CARD0001/replace",
            &a,
            None,
            &json!({"new_card_id": "CARD0002"}),
        )
        .await;
    let (status, _, again) = status_and_body(r).await;
    assert_eq!(
        (status, &again["requested_at"]),
        (200, &replacement["requested_at"])
    );
    let r = app
        .post(
            "/v1/cards/CARD0001/replace",
            &a,
            None,
            &json!({"new_card_id": "CARD0004"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let card: Value = app
        .get("/v1/cards/CARD0001", &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(card["reason"], "REPLACED");
    assert_eq!(card["replaced_by"]["new_card_id"], "CARD0002");

    app.ledger
        .transfer_replacements(chrono::Utc::now() + chrono::Duration::hours(25))
        .await
        .unwrap();
    let new: Value = app
        .get("/v1/cards/CARD0002", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(new["balance"], "20000.00");
    assert_eq!(new["replaces"]["amount"], "20000.00");
    assert_eq!(app.balance("CARD0001").await, "0.00");
    app.transactions().await;
}
