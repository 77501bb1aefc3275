//! Idempotency keys of the online API (IETF Idempotency-Key draft), stored beside the
//! ledger so both backends keep them. A key is scoped to one operator and remembers a hash of
//! the request it was first used with and, once the work is done, the response.

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new (or its earlier holder vanished): do the work, then complete it.
    Claimed,
    /// The work was done before with the same request: answer with the stored response.
    Replay { status: u16, body: Vec<u8> },
    /// Another request with this key is still being processed.
    InFlight,
    /// The key was used before with a different request.
    Mismatch,
}

/// Decides a claim from the stored row: (request hash, response status, response body).
pub(crate) fn decide(
    request_hash: &str,
    stored_hash: &str,
    status: Option<i32>,
    body: Option<Vec<u8>>,
) -> Option<KeyClaim> {
    if stored_hash != request_hash {
        return Some(KeyClaim::Mismatch);
    }
    status.map(|s| KeyClaim::Replay {
        status: u16::try_from(s).unwrap_or(500),
        body: body.unwrap_or_default(),
    })
}
