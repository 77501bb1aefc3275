//! What the relays tell ops: each event logs one line and counts in one metric. Labels are
//! bounded: a sink (`kafka`, `file`), a relay name, a delivery outcome.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use settings::telemetry::InternalEvent;

/// Describes every metric of this module, for the `# HELP` lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "recaudo_events_published_total",
        "Events the publish-events relay had acknowledged, by sink (kafka, file)."
    );
    describe_gauge!(
        "recaudo_outbox_lag_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest event a relay has not had acknowledged (0: up to date), by relay."
    );
    describe_counter!(
        "recaudo_webhook_deliveries_total",
        "Webhook delivery attempts, by outcome (delivered, failed)."
    );
    describe_histogram!(
        "recaudo_webhook_delivery_duration_seconds",
        metrics::Unit::Seconds,
        "Time a webhook delivery attempt took, answer or not."
    );
    describe_counter!(
        "recaudo_webhooks_disabled_total",
        "Webhook endpoints disabled after failing for 24 hours."
    );
}

/// A batch of events was acknowledged by the sink.
pub struct EventsPublished {
    pub sink: &'static str,
    pub count: u64,
    pub position: i64,
}

impl InternalEvent for EventsPublished {
    fn emit(self) {
        tracing::debug!(
            sink = self.sink,
            count = self.count,
            position = self.position,
            "events published"
        );
        counter!("recaudo_events_published_total", "sink" => self.sink).increment(self.count);
    }
}

/// How far behind a relay is.
pub struct OutboxLag {
    pub relay: &'static str,
    pub lag: Duration,
}

impl InternalEvent for OutboxLag {
    fn emit(self) {
        if self.lag > Duration::from_secs(300) {
            tracing::warn!(
                relay = self.relay,
                lag_secs = self.lag.as_secs(),
                "the outbox relay is behind"
            );
        }
        gauge!("recaudo_outbox_lag_seconds", "relay" => self.relay).set(self.lag.as_secs_f64());
    }
}

/// One attempt to deliver an event to an operator's endpoint.
pub struct WebhookAttempted<'a> {
    pub operator: &'a str,
    pub event_id: i64,
    pub attempt: i32,
    pub delivered: bool,
    pub http_status: Option<u16>,
    pub elapsed: Duration,
    pub error: Option<&'a str>,
}

impl InternalEvent for WebhookAttempted<'_> {
    fn emit(self) {
        let outcome = if self.delivered {
            "delivered"
        } else {
            "failed"
        };
        if self.delivered {
            tracing::info!(
                operator = self.operator,
                event_id = self.event_id,
                attempt = self.attempt,
                status = self.http_status,
                latency_ms = self.elapsed.as_millis() as u64,
                "webhook delivered"
            );
        } else {
            tracing::warn!(
                operator = self.operator,
                event_id = self.event_id,
                attempt = self.attempt,
                status = self.http_status,
                latency_ms = self.elapsed.as_millis() as u64,
                error = self.error,
                "webhook delivery failed"
            );
        }
        counter!("recaudo_webhook_deliveries_total", "outcome" => outcome).increment(1);
        histogram!("recaudo_webhook_delivery_duration_seconds").record(self.elapsed.as_secs_f64());
    }
}

/// An endpoint failed for too long and was disabled.
pub struct WebhookDisabled<'a> {
    pub operator: &'a str,
    pub url: &'a str,
}

impl InternalEvent for WebhookDisabled<'_> {
    fn emit(self) {
        tracing::error!(
            operator = self.operator,
            url = self.url,
            "webhook endpoint disabled: it failed for 24 hours; the operator re-enables it with PUT /v1/webhook"
        );
        counter!("recaudo_webhooks_disabled_total").increment(1);
    }
}
