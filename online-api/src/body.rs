//! Strict request bodies: JSON only, bounded in size, unknown fields rejected, and every
//! error naming the field it is about. The body is also hashed in a canonical form (keys
//! sorted, no whitespace) for idempotency checks.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::problem::Problem;

pub struct StrictJson<T> {
    pub value: T,
    /// sha256 of the canonical JSON, hex.
    pub hash: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The body must be JSON",
            )
            .detail("send `Content-Type: application/json`"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "The body is too large",
                )
                .detail(e.body_text())
            } else {
                Problem::malformed(e.body_text())
            }
        })?;
        parse(&bytes)
    }
}

/// Parses and checks a JSON body; public for the tests of the field-naming rules.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<StrictJson<T>, Problem> {
    let json: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Problem::malformed(format!("the body is not valid JSON: {e}")))?;
    if !json.is_object() {
        return Err(Problem::malformed("the body must be a JSON object"));
    }
    let canonical = serde_json::to_vec(&json).expect("a parsed value serializes");
    let hash = hex::encode(Sha256::digest(&canonical));
    let value = serde_path_to_error::deserialize(&json).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field is not valid",
        )
        .field(field_of(&path, &message))
        .detail(message)
    })?;
    Ok(StrictJson { value, hash })
}

/// The field an error is about: its path, or for unknown and missing fields (reported at
/// the object) the name serde quotes in the message.
fn field_of(path: &str, message: &str) -> String {
    if path != "." && !path.is_empty() {
        return path.to_string();
    }
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "body".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: String,
        card_id: String,
    }

    fn field(bytes: &str) -> Option<String> {
        parse::<Body>(bytes.as_bytes()).err().and_then(|p| p.field)
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field(r#"{"amount": 2.5, "card_id": "C1"}"#).as_deref(),
            Some("amount")
        );
        assert_eq!(
            field(r#"{"amount": "1", "card_id": "C1", "x": 1}"#).as_deref(),
            Some("x")
        );
        assert_eq!(field(r#"{"amount": "1"}"#).as_deref(), Some("card_id"));
    }

    #[test]
    fn the_hash_ignores_layout_and_key_order() {
        let a = parse::<Body>(br#"{"amount":"1","card_id":"C1"}"#).unwrap();
        let b = parse::<Body>(b"{ \"card_id\" : \"C1\",\n \"amount\": \"1\" }").unwrap();
        let c = parse::<Body>(br#"{"amount":"2","card_id":"C1"}"#).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn malformed_json_is_a_400() {
        let p = parse::<Body>(b"{\"amount\":").err().unwrap();
        assert_eq!(p.status, 400);
        assert_eq!(parse::<Body>(b"[]").err().unwrap().status, 400);
    }
}
