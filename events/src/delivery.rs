//! The `deliver-webhooks` relay: each operator's own webhook events (its files, its
//! settlements, its exceptions, its remittances; never a card number), one at a time per
//! endpoint so they arrive in order, signed (see [`crate::signature`]) and logged. A failed
//! attempt (no answer, or anything but 2xx) is retried after a delay that doubles from
//! `RECAUDO_WEBHOOK_RETRY_BASE_MS` up to `RECAUDO_WEBHOOK_RETRY_MAX_MS`; the events behind
//! it wait. An endpoint still failing 24 hours after its first failure is disabled, and
//! says so where the operator looks (`GET /v1/webhook`) and where ops look
//! (`recaudo operators show`); setting it again (`PUT`) resumes where it stopped.
//!
//! Every attempt resolves the host again and calls only the addresses just checked
//! ([`crate::ssrf`]), follows no redirect and uses no proxy.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fault::{Blame, Fault};
use futures::StreamExt;
use ledger::outbox::{EventType, OutboxEvent};
use ledger::{Ledger, LedgerError, OperatorId};
use reqwest::Url;
use settings::telemetry::InternalEvent;

use crate::CloudEvent;
use crate::internal_events::{WebhookAttempted, WebhookDisabled};
use crate::signature;
use crate::ssrf::{self, Policy};
use crate::webhook::{self, Attempt, Endpoint, Failing, WebhookError};

/// The relay's job name.
pub const RELAY: &str = "deliver-webhooks";
/// How long an endpoint may fail before it is disabled (DESIGN.md: retried for 24 hours).
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// Endpoints served at once; each one's own events still go one at a time.
const ENDPOINTS_AT_ONCE: usize = 8;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub policy: Policy,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// For one attempt, connection included.
    pub timeout: Duration,
    /// Events read per endpoint per pass.
    pub batch: i64,
}

impl DeliverySettings {
    pub fn from_settings(s: &settings::Settings) -> DeliverySettings {
        DeliverySettings {
            policy: Policy {
                allow_private: s.webhooks.allow_private,
            },
            retry_base: s.webhooks.retry_base,
            retry_max: s.webhooks.retry_max,
            timeout: s.webhooks.timeout,
            batch: s.events.batch,
        }
    }

    /// The wait after the `attempt`-th failure in a row.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let doublings = attempt.clamp(1, 30) as u32 - 1;
        self.retry_base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.retry_max)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

impl Fault for DeliveryError {
    fn blame(&self) -> Blame {
        match self {
            DeliveryError::Ledger(e) => e.blame(),
            DeliveryError::Webhook(e) => e.blame(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: u64,
    pub failed: u64,
    pub disabled: u64,
}

impl std::ops::AddAssign for Delivered {
    fn add_assign(&mut self, o: Delivered) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.disabled += o.disabled;
    }
}

/// The types a webhook hears.
pub fn webhook_types() -> Vec<EventType> {
    EventType::ALL
        .into_iter()
        .filter(|t| t.for_webhooks())
        .collect()
}

/// Delivers what is due to every endpoint: its queue until it is empty or an attempt
/// fails. Endpoints waiting for a retry are left until their time.
pub async fn deliver_due(
    ledger: &dyn Ledger,
    settings: &DeliverySettings,
) -> Result<Delivered, DeliveryError> {
    ledger.sequence_outbox(settings.batch.max(1) * 10).await?;
    let now = Utc::now();
    let due: Vec<Endpoint> = webhook::enabled(ledger.database())
        .await?
        .into_iter()
        .filter(|e| e.next_attempt_at.is_none_or(|at| at <= now))
        .collect();
    let results: Vec<Result<Delivered, DeliveryError>> = futures::stream::iter(due)
        .map(|endpoint| deliver_endpoint(ledger, settings, endpoint))
        .buffer_unordered(ENDPOINTS_AT_ONCE)
        .collect()
        .await;
    let mut total = Delivered::default();
    for r in results {
        total += r?;
    }
    Ok(total)
}

async fn deliver_endpoint(
    ledger: &dyn Ledger,
    settings: &DeliverySettings,
    mut endpoint: Endpoint,
) -> Result<Delivered, DeliveryError> {
    let mut done = Delivered::default();
    let Ok(operator) = OperatorId::parse(&endpoint.operator_id) else {
        return Ok(done);
    };
    let db = ledger.database();
    let types = webhook_types();
    loop {
        let at = ledger
            .relay_position(&webhook::relay_name(operator.as_str()))
            .await?;
        let events =
            ledger::outbox::after_where(db, at, settings.batch.max(1), &types, Some(&operator))
                .await?;
        if events.is_empty() {
            return Ok(done);
        }
        for event in &events {
            if event.id <= endpoint.since_event_id {
                // From before the endpoint existed (sequenced after it was registered).
                ledger
                    .advance_relay(&webhook::relay_name(operator.as_str()), event.position)
                    .await?;
                continue;
            }
            let attempt = endpoint.attempts + 1;
            let started = Instant::now();
            let now = Utc::now();
            let result = send(&endpoint, event, settings, now).await;
            let elapsed = started.elapsed();
            let (http_status, error) = match &result {
                Ok(status) => (Some(*status), None),
                Err((status, e)) => (*status, Some(e.clone())),
            };
            WebhookAttempted {
                operator: operator.as_str(),
                event_id: event.id,
                attempt,
                delivered: result.is_ok(),
                http_status,
                elapsed,
                error: error.as_deref(),
            }
            .emit();
            let record = Attempt {
                event_id: event.id,
                event_type: &event.event_type,
                position: event.position,
                attempt,
                http_status,
                latency_ms: elapsed.as_millis() as i64,
                error,
                at: now,
            };
            if result.is_ok() {
                webhook::record_attempt(db, &endpoint, &record, None).await?;
                endpoint.attempts = 0;
                endpoint.failing_since = None;
                done.delivered += 1;
                continue;
            }
            let since = endpoint.failing_since.unwrap_or(now);
            let failing = Failing {
                since,
                // The wait runs from the end of the failed attempt.
                next_attempt_at: Utc::now()
                    + chrono::Duration::from_std(settings.backoff(attempt))
                        .unwrap_or(chrono::Duration::MAX),
                disable: now - since >= GIVE_UP_AFTER,
            };
            webhook::record_attempt(db, &endpoint, &record, Some(&failing)).await?;
            done.failed += 1;
            if failing.disable {
                WebhookDisabled {
                    operator: operator.as_str(),
                    url: &endpoint.url,
                }
                .emit();
                done.disabled += 1;
            }
            return Ok(done);
        }
    }
}

/// One POST of `event` to the endpoint: the answer's status when it was 2xx, else what
/// went wrong (with the status, when there was an answer).
async fn send(
    endpoint: &Endpoint,
    event: &OutboxEvent,
    settings: &DeliverySettings,
    now: DateTime<Utc>,
) -> Result<u16, (Option<u16>, String)> {
    let url = Url::parse(&endpoint.url).map_err(|e| (None, format!("the URL: {e}")))?;
    let addrs = ssrf::resolve(&url, settings.policy)
        .await
        .map_err(|e| (None, e.to_string()))?;
    // A client per attempt, not one shared: the addresses it may connect to are the ones
    // this attempt checked, and a pooled connection from an earlier check must not serve.
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .timeout(settings.timeout)
        .user_agent(concat!("recaudo-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(host) = url.host_str() {
        // Connect to the addresses just checked, whatever the name says by then.
        client = client.resolve_to_addrs(host, &addrs);
    }
    let client = client
        .build()
        .map_err(|e| (None, format!("the HTTP client: {e}")))?;
    let body = CloudEvent::from_outbox(event)
        .for_webhook(&endpoint.operator_id)
        .to_json();
    let t = now.timestamp();
    let signed = signature::header_value(endpoint.signing_secrets(now), t, &body);
    let response = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            crate::cloudevent::STRUCTURED_CONTENT_TYPE,
        )
        .header(signature::HEADER, signed)
        .body(body)
        .send()
        .await
        .map_err(|e| (None, describe(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err((
            Some(status.as_u16()),
            format!("the endpoint answered {status}"),
        ))
    }
}

/// A transport error in a few words (reqwest's own message hides its cause).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_cap() {
        let s = DeliverySettings {
            policy: Policy::default(),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            batch: 100,
        };
        let waits: Vec<u64> = (1..=9).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(s.backoff(1000).as_secs(), 3600);
    }
}
