//! The Idempotency-Key protocol of the IETF draft, per operator: a POST without a key is a
//! 400; the same key with the same request replays the stored response (the work is done
//! once); the same key with another request is a 422; a key whose first request is still
//! being processed is a 409. Keys are kept 48 hours (at least the draft's 24).

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ledger::idempotency::KeyClaim;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{PROBLEM_JSON, Problem};

pub const HEADER: &str = "idempotency-key";
/// A claim older than this is taken to belong to a crashed process and is taken over.
pub const STALE_AFTER_SECS: i64 = 60;
/// How long keys are kept before they are purged.
pub const RETENTION_HOURS: i64 = 48;

/// The request's key: 1 to 255 visible ASCII characters.
pub fn key_from(headers: &HeaderMap) -> Result<String, Problem> {
    let value = headers.get(HEADER).ok_or_else(|| {
        Problem::malformed("the Idempotency-Key header is required on this request")
            .field("Idempotency-Key")
    })?;
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .ok_or_else(|| {
            Problem::malformed("the Idempotency-Key must be 1 to 255 visible ASCII characters")
                .field("Idempotency-Key")
        })
}

/// A fingerprint of the request: the endpoint and the canonical body hash.
pub fn fingerprint(endpoint: &str, body_hash: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{endpoint}\n{body_hash}").as_bytes(),
    ))
}

/// Runs `work` once per (operator, key): the first request does it and its answer is
/// stored; replays get the stored answer. A failure of ours (5xx) is not stored, so a retry
/// with the same key can succeed.
pub async fn once<F, Fut>(
    state: &AppState,
    caller: &Caller,
    key: &str,
    fingerprint: &str,
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), Problem>>,
{
    let claim = state
        .ledger
        .claim_idempotency_key(
            &caller.operator,
            key,
            fingerprint,
            Utc::now(),
            chrono::Duration::seconds(STALE_AFTER_SECS),
        )
        .await;
    match claim {
        Err(e) => Problem::from_ledger(e).into_response(),
        Ok(KeyClaim::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = stored_response(status, body);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(KeyClaim::InFlight) => Problem::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-use",
            "A request with this Idempotency-Key is still being processed",
        )
        .detail("retry after the first request has finished")
        .into_response(),
        Ok(KeyClaim::Mismatch) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "The Idempotency-Key was used for a different request",
        )
        .field("Idempotency-Key")
        .into_response(),
        Ok(KeyClaim::Claimed) => {
            let (status, body) = match work().await {
                Ok((status, value)) => (status, serde_json::to_vec(&value).unwrap_or_default()),
                Err(problem) => (
                    problem.status(),
                    serde_json::to_vec(&problem).unwrap_or_default(),
                ),
            };
            let stored = if status.is_server_error() {
                state
                    .ledger
                    .release_idempotency_key(&caller.operator, key)
                    .await
            } else {
                state
                    .ledger
                    .complete_idempotency_key(&caller.operator, key, status.as_u16(), &body)
                    .await
            };
            if let Err(e) = stored {
                // The work is done and idempotent in the ledger itself (operator_ref,
                // payment_ref); a lost record only means a retry is answered by the ledger.
                tracing::warn!(error = %e, "could not store the idempotency record");
            }
            stored_response(status, body)
        }
    }
}

fn stored_response(status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
