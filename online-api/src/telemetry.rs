//! Request telemetry of the API: a request id on every response, one structured log line per
//! request, and Prometheus metrics. Labels are the matched route template (never the raw
//! path, which carries card numbers), the method and the status: bounded by construction.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::auth::Caller;

/// Upper bounds of the latency histogram, in microseconds (exported in seconds).
const BUCKETS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// Microseconds as decimal seconds, for the exposition format.
fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    fn record(&self, route: &str, method: &'static str, status: u16, micros: u64) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route.to_string(), method, status))
            .or_default() += 1;
        let mut latency = self.latency.lock().expect("metrics lock");
        let h = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if micros <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum_micros += micros;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests answered, by matched route, method and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to answer a request, by matched route.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().expect("metrics lock").iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{}\"}} {count}",
                    seconds(*bound)
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count,
                seconds(h.sum_micros),
                h.count
            );
        }
        out
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
    let micros = start.elapsed().as_micros() as u64;
    let status = response.status().as_u16();
    state.metrics.record(&route, method, status, micros);
    let operator = response
        .extensions()
        .get::<Caller>()
        .map(|c| c.operator.to_string());
    tracing::info!(
        request_id = %id,
        method,
        route = %route,
        status,
        latency_ms = micros / 1000,
        operator = operator.as_deref().unwrap_or("-"),
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
