//! Webhooks to receivers on loopback (with the development override), on both backends:
//! an endpoint that fails three times gets the event on the fourth try after growing
//! waits, every attempt logged; signatures verify with the documented scheme (both secrets
//! during a rotation); each operator hears only its own events, never a card number; an
//! endpoint failing for a day is disabled until the operator sets it again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use events::delivery::{DeliverySettings, deliver_due};
use events::ssrf::Policy;
use events::webhook::{self, Status};
use ledger::{Ledger, MoneyRules, OperatorId};

/// What a receiver heard: when, the signature header, the body.
#[derive(Clone)]
struct Heard {
    at: Instant,
    signature: String,
    body: Vec<u8>,
}

/// A receiver on loopback that answers 500 to its first `failures` requests, then 200.
struct Receiver {
    url: String,
    heard: Arc<Mutex<Vec<Heard>>>,
}

async fn receiver(failures: usize) -> Receiver {
    let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
    let log = heard.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(Heard {
                    at: Instant::now(),
                    signature: headers
                        .get("recaudo-signature")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default(),
                    body: body.to_vec(),
                });
                if log.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, heard }
}

fn settings() -> DeliverySettings {
    DeliverySettings {
        policy: Policy {
            allow_private: true,
        },
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        batch: 100,
    }
}

async fn register(ledger: &dyn Ledger, operator: &str, url: &str) -> String {
    let url = events::ssrf::check(url, settings().policy).await.unwrap();
    let saved = webhook::put(
        ledger.database(),
        &OperatorId::parse(operator).unwrap(),
        &url,
        false,
        "operator:test:ana",
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(saved.created);
    saved.secret.expect("a new endpoint's secret is shown once")
}

/// A file of `operator` that is refused whole: its `operator_file.rejected` event.
async fn reject_a_file(ledger: &dyn Ledger, store: &testbed::store::TestStore, operator: &str) {
    let key = format!("incoming/{operator}/2026-11-26/{operator}_20261126_001.csv");
    store
        .store
        // Other bytes each time: the same bytes again would be the same file.
        .put(
            &key,
            bytes::Bytes::from(format!(
                "not,a,valid,file,{}\n",
                Utc::now().timestamp_nanos_opt().unwrap()
            )),
        )
        .await
        .unwrap();
    let outcome = ingest::ingest_file(
        &*store.store,
        ledger,
        MoneyRules::new(ledger::Currency::COP),
        &key,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, ingest::FileOutcome::Rejected { .. }));
}

async fn deliver_until(ledger: &dyn Ledger, done: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < until,
            "not delivered in time: {:?}",
            webhook::deliveries(ledger.database(), "OP001", None, 20)
                .await
                .unwrap()
        );
        deliver_due(ledger, &settings()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn body(h: &Heard) -> serde_json::Value {
    serde_json::from_slice(&h.body).unwrap()
}

async fn a_failing_endpoint_gets_its_event_after_growing_waits_and_hears_only_its_own(
    ledger: Arc<dyn Ledger>,
) {
    for id in ["OP001", "OP002"] {
        ledger.add_operator(&testbed::operator(id)).await.unwrap();
    }
    // An event before registration is not the new endpoint's.
    let store = testbed::store::local();
    reject_a_file(&*ledger, &store, "OP001").await;
    let flaky = receiver(3).await;
    let steady = receiver(0).await;
    let secret_1 = register(&*ledger, "OP001", &flaky.url).await;
    let secret_2 = register(&*ledger, "OP002", &steady.url).await;

    reject_a_file(&*ledger, &testbed::store::local(), "OP001").await;
    reject_a_file(&*ledger, &testbed::store::local(), "OP002").await;
    deliver_until(&*ledger, || {
        flaky.heard.lock().unwrap().len() == 4 && steady.heard.lock().unwrap().len() == 1
    })
    .await;
    // Nothing more is due.
    assert_eq!(
        deliver_due(&*ledger, &settings()).await.unwrap(),
        Default::default()
    );

    let heard = flaky.heard.lock().unwrap().clone();
    let ids: Vec<String> = heard.iter().map(|h| body(h)["id"].to_string()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one event, retried: {ids:?}"
    );
    let gaps: Vec<Duration> = heard.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (i, gap) in gaps.iter().enumerate() {
        assert!(
            *gap >= settings().backoff(i as i32 + 1),
            "wait {i}: {gaps:?}"
        );
    }
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "the waits grow: {gaps:?}"
    );
    for (h, secret, operator) in heard.iter().map(|h| (h, &secret_1, "OP001")).chain(
        steady
            .heard
            .lock()
            .unwrap()
            .iter()
            .map(|h| (h, &secret_2, "OP002")),
    ) {
        assert!(
            events::signature::verify(secret, &h.signature, &h.body).is_some(),
            "the signature verifies with the operator's secret"
        );
        let other = if operator == "OP001" {
            &secret_2
        } else {
            &secret_1
        };
        assert!(events::signature::verify(other, &h.signature, &h.body).is_none());
        let event = body(h);
        assert_eq!(event["type"], "co.recaudo.operator_file.rejected.v1");
        assert_eq!(
            event["data"]["operator_id"], operator,
            "only its own events"
        );
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["subject"], format!("operator/{operator}"));
    }

    let log = webhook::deliveries(ledger.database(), "OP001", None, 10)
        .await
        .unwrap();
    let attempts: Vec<(i32, &str, Option<i32>)> = log
        .iter()
        .rev()
        .map(|d| (d.attempt, d.outcome.as_str(), d.http_status))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, "failed", Some(500)),
            (2, "failed", Some(500)),
            (3, "failed", Some(500)),
            (4, "delivered", Some(200)),
        ]
    );
    let endpoint = webhook::get(ledger.database(), "OP001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.status(), Status::Active);
    assert!(endpoint.last_delivered_at.is_some());
    testbed::events::assert_valid(&*ledger).await;
}

async fn a_rotation_signs_with_both_secrets_and_a_day_of_failures_disables(
    ledger: Arc<dyn Ledger>,
) {
    ledger
        .add_operator(&testbed::operator("OP001"))
        .await
        .unwrap();
    let down = receiver(usize::MAX).await;
    let old = register(&*ledger, "OP001", &down.url).await;
    let op = OperatorId::parse("OP001").unwrap();
    let url = events::ssrf::check(&down.url, settings().policy)
        .await
        .unwrap();
    let rotated = webhook::put(
        ledger.database(),
        &op,
        &url,
        true,
        "operator:test:ana",
        Utc::now(),
    )
    .await
    .unwrap();
    let new = rotated.secret.expect("a rotation shows the new secret");
    assert_ne!(new, old);

    reject_a_file(&*ledger, &testbed::store::local(), "OP001").await;
    deliver_until(&*ledger, || !down.heard.lock().unwrap().is_empty()).await;
    let first = down.heard.lock().unwrap()[0].clone();
    assert!(events::signature::verify(&new, &first.signature, &first.body).is_some());
    assert!(events::signature::verify(&old, &first.signature, &first.body).is_some());
    assert_eq!(
        webhook::get(ledger.database(), "OP001")
            .await
            .unwrap()
            .unwrap()
            .status(),
        Status::Failing
    );

    // A day later, still failing: the next failure disables it.
    ledger::on_pool!(ledger.database(), pool => {
        sqlx::query("UPDATE webhooks SET failing_since = $1, next_attempt_at = NULL")
            .bind(Utc::now() - chrono::Duration::hours(25))
            .execute(pool)
            .await
            .unwrap();
    });
    let pass = deliver_due(&*ledger, &settings()).await.unwrap();
    assert_eq!((pass.failed, pass.disabled), (1, 1));
    let endpoint = webhook::get(ledger.database(), "OP001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(endpoint.status(), Status::Disabled);
    let tries = down.heard.lock().unwrap().len();
    assert_eq!(
        deliver_due(&*ledger, &settings()).await.unwrap(),
        Default::default()
    );
    assert_eq!(
        down.heard.lock().unwrap().len(),
        tries,
        "a disabled endpoint hears nothing"
    );

    // Set again, it resumes with the event it stopped at.
    let up = receiver(0).await;
    let url = events::ssrf::check(&up.url, settings().policy)
        .await
        .unwrap();
    webhook::put(
        ledger.database(),
        &op,
        &url,
        false,
        "operator:test:ana",
        Utc::now(),
    )
    .await
    .unwrap();
    deliver_until(&*ledger, || !up.heard.lock().unwrap().is_empty()).await;
    assert_eq!(body(&up.heard.lock().unwrap()[0])["id"], body(&first)["id"]);
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = testbed::sqlite_ledger(ledger::LedgerSettings::default()).await;
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(db) = testbed::postgres_ledger(ledger::LedgerSettings::default()).await else {
                        return;
                    };
                    super::$scenario(db.ledger.clone()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_failing_endpoint_gets_its_event_after_growing_waits_and_hears_only_its_own,
    a_rotation_signs_with_both_secrets_and_a_day_of_failures_disables,
);
