//! Idempotency keys of the online API (IETF Idempotency-Key draft), stored beside the
//! ledger so both backends keep them. A key is scoped to one operator and remembers a hash of
//! the request it was first used with and, once the work is done, the response.

use chrono::{DateTime, Utc};

use crate::backend::Database;
use crate::error::LedgerError;
use crate::ids::OperatorId;

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

/// A stored key: request hash, response status and body (once complete), claimed at.
type StoredKey = (String, Option<i32>, Option<Vec<u8>>, DateTime<Utc>);

/// The SQL of the idempotency-key store, written once for both backends (sqlx binds `$N`
/// on SQLite too).
pub(crate) async fn claim(
    db: Database<'_>,
    operator: &OperatorId,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> Result<KeyClaim, LedgerError> {
    // A row purged between the two statements is simply claimed afresh.
    crate::on_pool!(db, pool => loop {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys \
             (operator_id, key, request_hash, claimed_at, created_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (operator_id, key) DO NOTHING",
        )
        .bind(operator.as_str())
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(KeyClaim::Claimed);
        }
        let row: Option<StoredKey> =
            sqlx::query_as(
                "SELECT request_hash, response_status, response_body, claimed_at \
                 FROM idempotency_keys WHERE operator_id = $1 AND key = $2",
            )
            .bind(operator.as_str())
            .bind(key)
            .fetch_optional(pool)
            .await?;
        let Some((hash, status, body, claimed_at)) = row else {
            continue;
        };
        if let Some(decided) = decide(request_hash, &hash, status, body) {
            return Ok(decided);
        }
        if claimed_at + stale_after > now {
            return Ok(KeyClaim::InFlight);
        }
        // Its holder vanished: take it over, unless someone else just did.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET claimed_at = $3 \
             WHERE operator_id = $1 AND key = $2 \
             AND response_status IS NULL AND claimed_at = $4",
        )
        .bind(operator.as_str())
        .bind(key)
        .bind(now)
        .bind(claimed_at)
        .execute(pool)
        .await?
        .rows_affected();
        return Ok(if taken == 1 {
            KeyClaim::Claimed
        } else {
            KeyClaim::InFlight
        });
    })
}

pub(crate) async fn complete(
    db: Database<'_>,
    operator: &OperatorId,
    key: &str,
    status: u16,
    body: &[u8],
) -> Result<(), LedgerError> {
    crate::on_pool!(db, pool => {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
         WHERE operator_id = $1 AND key = $2",
    )
    .bind(operator.as_str())
    .bind(key)
    .bind(i32::from(status))
    .bind(body)
    .execute(pool)
    .await?;
    });
    Ok(())
}

pub(crate) async fn release(
    db: Database<'_>,
    operator: &OperatorId,
    key: &str,
) -> Result<(), LedgerError> {
    crate::on_pool!(db, pool => {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE operator_id = $1 AND key = $2 \
         AND response_status IS NULL",
    )
    .bind(operator.as_str())
    .bind(key)
    .execute(pool)
    .await?;
    });
    Ok(())
}

pub(crate) async fn purge(db: Database<'_>, before: DateTime<Utc>) -> Result<u64, LedgerError> {
    crate::on_pool!(db, pool => Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
}
