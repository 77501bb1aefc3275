//! How a webhook delivery is signed (DESIGN.md, Events), as operators verify it:
//!
//! `Recaudo-Signature: t={unix seconds},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`
//!
//! While a rotated secret is still valid, the header carries one `v1` per secret (newest
//! first), and a receiver accepts the delivery when any of them matches. A receiver should
//! also refuse a `t` far from its own clock (five minutes, say) so a captured delivery cannot
//! be replayed later.

use ring::hmac;

/// The header's name.
pub const HEADER: &str = "Recaudo-Signature";

/// The hex HMAC-SHA256 of `"{t}.{body}"` under `secret`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// The header's value for `body` sent at `t`, signed with each of `secrets`.
pub fn header_value<'a>(secrets: impl IntoIterator<Item = &'a str>, t: i64, body: &[u8]) -> String {
    let mut value = format!("t={t}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, t, body));
    }
    value
}

/// Whether `header` signs `body` with `secret`: what a receiver does. Returns the header's
/// `t` when one of its `v1` signatures matches (compared in constant time).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> Option<i64> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_string()),
            _ => {}
        }
    }
    let t = t?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    signatures
        .iter()
        .filter_map(|s| hex::decode(s).ok())
        .any(|tag| hmac::verify(&key, &message, &tag).is_ok())
        .then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_documented_hmac() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently with
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            sign("whsec_test", 1_700_000_000, b"{}"),
            "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn either_secret_of_a_rotation_verifies_and_nothing_else_does() {
        let body = br#"{"id":"1"}"#;
        let header = header_value(["new", "old"], 1_700_000_000, body);
        assert_eq!(verify("new", &header, body), Some(1_700_000_000));
        assert_eq!(verify("old", &header, body), Some(1_700_000_000));
        assert_eq!(verify("other", &header, body), None);
        assert_eq!(verify("new", &header, br#"{"id":"2"}"#), None);
        let later = header.replacen("t=1700000000", "t=1700000001", 1);
        assert_eq!(verify("new", &later, body), None);
    }
}
