//! Operators' webhook endpoints (DESIGN.md, Events): at most one per operator, registered
//! through the API (`PUT /v1/webhook`). The signing secret is made here, returned once, and
//! kept so the relay can sign; a rotation keeps the previous secret valid for 24 hours, and
//! deliveries are signed with both meanwhile. Each endpoint has its own place in the outbox
//! (`outbox_relays`, relay `webhook/{operator}`), starting at the newest event when it is
//! registered: an operator hears what happens from then on, not its history.

use chrono::{DateTime, Duration, Utc};
use fault::{Blame, Fault};
use ledger::{Database, OperatorId};
use reqwest::Url;

/// How long a rotated-out secret still signs deliveries.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// The relay name of `operator`'s endpoint in `outbox_relays`.
pub fn relay_name(operator: &str) -> String {
    format!("webhook/{operator}")
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("another change of this webhook happened at the same time; send the request again")]
    Conflict,
}

impl Fault for WebhookError {
    fn blame(&self) -> Blame {
        match self {
            WebhookError::Database(e) => ledger::error::database_blame(e),
            WebhookError::Conflict => Blame::User,
        }
    }
}

/// Whether deliveries go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Delivering (or nothing to deliver).
    Active,
    /// The event at the head of the queue failed and is being retried.
    Failing,
    /// Failed for 24 hours: nothing is sent until the operator sets the endpoint again.
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Failing => "failing",
            Status::Disabled => "disabled",
        }
    }
}

/// A registered endpoint. Its secrets are not printable: only the relay signs with them.
#[derive(Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub operator_id: String,
    pub url: String,
    secret: String,
    previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failing_since: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// The newest event when the endpoint was registered; it hears only later ones.
    pub since_event_id: i64,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("operator_id", &self.operator_id)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn status(&self) -> Status {
        if self.disabled_at.is_some() {
            Status::Disabled
        } else if self.failing_since.is_some() {
            Status::Failing
        } else {
            Status::Active
        }
    }

    /// The secrets a delivery at `now` is signed with, newest first.
    pub(crate) fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// What `put` did. `secret` is set when a secret was made (a new endpoint, a rotation):
/// the one time it is shown.
#[derive(Debug)]
pub struct Saved {
    pub endpoint: Endpoint,
    pub created: bool,
    pub secret: Option<String>,
}

/// A new signing secret: 32 random bytes, hex, with a prefix that makes it recognizable
/// in a secret scanner.
fn new_secret() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    format!("whsec_{}", hex::encode(bytes))
}

const COLUMNS: &str = "operator_id, url, secret, previous_secret, previous_until, created_by, \
    created_at, updated_at, failing_since, attempts, next_attempt_at, disabled_at, \
    last_delivered_at, since_event_id";

/// Registers `operator`'s endpoint at `url` (checked by the caller, `ssrf::check`), or
/// points the existing one there; either way it is enabled again with a clean slate. A new
/// endpoint, or `rotate`, makes a secret.
pub async fn put(
    db: Database<'_>,
    operator: &OperatorId,
    url: &Url,
    rotate: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Saved, WebhookError> {
    let select = format!("SELECT {COLUMNS} FROM webhooks WHERE operator_id = $1");
    let insert = "INSERT INTO webhooks (operator_id, url, secret, created_by, created_at, \
        updated_at, since_event_id) \
        VALUES ($1, $2, $3, $4, $5, $5, (SELECT coalesce(max(id), 0) FROM outbox))";
    // The endpoint starts at the newest event: it hears what happens from now on.
    let start = "INSERT INTO outbox_relays (relay, position, updated_at) \
        VALUES ($1, (SELECT coalesce(max(position), 0) FROM outbox), $2) \
        ON CONFLICT (relay) DO UPDATE SET position = excluded.position, \
          updated_at = excluded.updated_at";
    let update = "UPDATE webhooks SET url = $2, updated_at = $3, failing_since = NULL, \
        attempts = 0, next_attempt_at = NULL, disabled_at = NULL WHERE operator_id = $1";
    let rotate_sql = "UPDATE webhooks SET previous_secret = secret, previous_until = $2, \
        secret = $3 WHERE operator_id = $1";
    macro_rules! body {
        ($tx:expr, $lock:expr) => {{
            let mut tx = $tx;
            let existing: Option<Endpoint> = sqlx::query_as(&format!("{select}{}", $lock))
                .bind(operator.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let mut secret = None;
            let created = existing.is_none();
            if created {
                let made = new_secret();
                let inserted = sqlx::query(insert)
                    .bind(operator.as_str())
                    .bind(url.as_str())
                    .bind(&made)
                    .bind(actor)
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(WebhookError::Conflict);
                    }
                    other => other?,
                };
                sqlx::query(start)
                    .bind(relay_name(operator.as_str()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                secret = Some(made);
            } else {
                sqlx::query(update)
                    .bind(operator.as_str())
                    .bind(url.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if rotate {
                    let made = new_secret();
                    sqlx::query(rotate_sql)
                        .bind(operator.as_str())
                        .bind(now + ROTATION_OVERLAP)
                        .bind(&made)
                        .execute(&mut *tx)
                        .await?;
                    secret = Some(made);
                }
            }
            let endpoint: Endpoint = sqlx::query_as(&select)
                .bind(operator.as_str())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Saved {
                endpoint,
                created,
                secret,
            })
        }};
    }
    match db {
        Database::Postgres(pool) => body!(pool.begin().await?, " FOR UPDATE"),
        Database::Sqlite(pool) => body!(pool.begin_with("BEGIN IMMEDIATE").await?, ""),
    }
}

/// `operator`'s endpoint, if it has one.
pub async fn get(db: Database<'_>, operator: &str) -> Result<Option<Endpoint>, WebhookError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE operator_id = $1");
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(operator).fetch_optional(pool).await?
    }))
}

/// Every endpoint that is not disabled.
pub async fn enabled(db: Database<'_>) -> Result<Vec<Endpoint>, WebhookError> {
    let sql =
        format!("SELECT {COLUMNS} FROM webhooks WHERE disabled_at IS NULL ORDER BY operator_id");
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_as(&sql).fetch_all(pool).await?
    }))
}

/// Removes `operator`'s endpoint and its place in the outbox; its delivery log stays.
/// False when there was none.
pub async fn delete(db: Database<'_>, operator: &str) -> Result<bool, WebhookError> {
    Ok(ledger::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let removed = sqlx::query("DELETE FROM webhooks WHERE operator_id = $1")
            .bind(operator)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM outbox_relays WHERE relay = $1")
            .bind(relay_name(operator))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        removed > 0
    }))
}

/// One attempt to deliver an event, as the log keeps it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub url: String,
    pub attempt: i32,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub http_status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

/// `operator`'s delivery log, newest first: up to `limit` attempts before the attempt
/// `before` (a page's cursor), or from the newest.
pub async fn deliveries(
    db: Database<'_>,
    operator: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, WebhookError> {
    const SQL: &str = "SELECT id, event_id, event_type, url, attempt, outcome, http_status, \
        latency_ms, error, attempted_at FROM webhook_deliveries \
        WHERE operator_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_as(SQL)
            .bind(operator)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
    }))
}

/// What an attempt came to, for [`record_attempt`].
pub(crate) struct Attempt<'a> {
    pub event_id: i64,
    pub event_type: &'a str,
    pub position: i64,
    pub attempt: i32,
    pub http_status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// The endpoint's state after a failed attempt.
pub(crate) struct Failing {
    pub since: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub disable: bool,
}

/// Logs an attempt and moves the endpoint on, in one transaction: a delivered event moves
/// its place in the outbox past it and clears the failure state; a failed one sets when to
/// try again (or disables the endpoint).
pub(crate) async fn record_attempt(
    db: Database<'_>,
    endpoint: &Endpoint,
    a: &Attempt<'_>,
    failing: Option<&Failing>,
) -> Result<(), WebhookError> {
    const LOG: &str = "INSERT INTO webhook_deliveries (operator_id, event_id, event_type, url, \
        attempt, outcome, http_status, latency_ms, error, attempted_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    const DELIVERED: &str = "UPDATE webhooks SET failing_since = NULL, attempts = 0, \
        next_attempt_at = NULL, last_delivered_at = $2 WHERE operator_id = $1";
    const ADVANCE: &str = "UPDATE outbox_relays SET position = $2, updated_at = $3 \
        WHERE relay = $1 AND position < $2";
    const FAILED: &str = "UPDATE webhooks SET failing_since = $2, attempts = $3, \
        next_attempt_at = $4, disabled_at = $5 WHERE operator_id = $1";
    ledger::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOG)
            .bind(&endpoint.operator_id)
            .bind(a.event_id)
            .bind(a.event_type)
            .bind(&endpoint.url)
            .bind(a.attempt)
            .bind(if failing.is_none() { "delivered" } else { "failed" })
            .bind(a.http_status.map(i32::from))
            .bind(a.latency_ms)
            .bind(a.error.as_deref())
            .bind(a.at)
            .execute(&mut *tx)
            .await?;
        match failing {
            None => {
                sqlx::query(DELIVERED)
                    .bind(&endpoint.operator_id)
                    .bind(a.at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(ADVANCE)
                    .bind(relay_name(&endpoint.operator_id))
                    .bind(a.position)
                    .bind(a.at)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(f) => {
                sqlx::query(FAILED)
                    .bind(&endpoint.operator_id)
                    .bind(f.since)
                    .bind(a.attempt)
                    .bind(f.next_attempt_at)
                    .bind(f.disable.then_some(a.at))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}
