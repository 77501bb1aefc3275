//! Request telemetry of the API: a request id on every response, one structured log line per
//! request, and Prometheus metrics. Labels are the matched route template (never the raw
//! path, which carries card numbers), the method and the status: bounded by construction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};
use settings::telemetry::{PrometheusHandle, PrometheusRecorder};

use crate::AppState;
use crate::auth::Caller;

/// The API's metrics, in a recorder of this router's own: each test app counts only its
/// own requests, and `/metrics` shows what this process answered.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = settings::telemetry::builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(
                "http_requests_total",
                "HTTP requests answered, by matched route, method and status."
            );
            metrics::describe_histogram!(
                "http_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to answer a request, by matched route."
            );
        });
        Metrics {
            recorder: Arc::new(recorder),
            handle,
        }
    }
}

impl Metrics {
    fn record(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        metrics::with_local_recorder(&*self.recorder, || {
            counter!("http_requests_total", "route" => route.to_string(), "method" => method,
                "status" => status.to_string())
            .increment(1);
            histogram!("http_request_duration_seconds", "route" => route.to_string()).record(took);
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A client's `X-Request-Id` is kept when it is short and plain; otherwise one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The operator an unverified token claims (for the log line of a refused request only;
/// nothing is ever decided on it).
#[derive(Debug, Clone)]
pub struct ClaimedOperator(pub String);

impl ClaimedOperator {
    /// The `operator_id` in a token's payload, read without verifying anything, when it is
    /// a plausible id.
    pub fn of(token: &str) -> Option<ClaimedOperator> {
        use base64::Engine;
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let id = claims.get("operator_id")?.as_str()?;
        (id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        .then(|| ClaimedOperator(id.to_string()))
    }
}

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(&req);
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let mut response = next.run(req).await;
    let took = start.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(&route, method, status, took);
    // A refused token names no verified operator; the one it claims still helps ops.
    let operator = match (
        response.extensions().get::<Caller>(),
        response.extensions().get::<ClaimedOperator>(),
    ) {
        (Some(c), _) => c.operator.to_string(),
        (None, Some(claimed)) => format!("{} (unverified)", claimed.0),
        (None, None) => "-".to_string(),
    };
    let reason = response
        .extensions()
        .get::<crate::problem::Refusal>()
        .map(|r| r.0.as_str())
        .unwrap_or("-");
    let latency_ms = took.as_millis() as u64;
    if status >= 400 {
        tracing::warn!(request_id = %id, method, route = %route, status, latency_ms, operator, reason, "request refused");
    } else {
        tracing::info!(request_id = %id, method, route = %route, status, latency_ms, operator, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
