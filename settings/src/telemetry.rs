//! Metrics set-up: every recaudo process records through the `metrics` facade and exports
//! with `metrics-exporter-prometheus`. Histograms whose name ends in `_seconds` get the
//! same latency buckets everywhere, so they render as Prometheus histograms (without
//! buckets the exporter renders summaries).

pub use metrics_exporter_prometheus::{BuildError, PrometheusHandle, PrometheusRecorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Upper bounds of the `_seconds` histograms: from a millisecond (an API call) to an hour
/// (a city-scale settle).
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0, 600.0,
    3600.0,
];

/// A builder with recaudo's buckets, for a recorder of one's own (the API keeps one per
/// router, so each test app counts only its own requests).
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .expect("the bucket list is not empty")
}

/// Installs the process-wide recorder and serves its exposition on `addr` (every path;
/// `/metrics` by convention), on the current tokio runtime. For long-running processes
/// with no HTTP server of their own (`recaudo schedule`).
#[cfg(feature = "listener")]
pub fn serve(addr: std::net::SocketAddr) -> Result<(), BuildError> {
    builder().with_http_listener(addr).install()
}

/// Something a subsystem tells ops: one type per event, which both logs it and counts it,
/// so a log line and its metric never drift apart. Each subsystem keeps its events in one
/// module (`internal_events`), the way Vector does.
pub trait InternalEvent {
    fn emit(self);
}
