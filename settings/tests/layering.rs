//! The settings as ops give them: a file, environment variables on top, mistakes named.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use settings::{Settings, SettingsError};

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn nothing_set_is_the_embedded_defaults() {
    let s = Settings::embedded();
    assert_eq!(s.database.url.expose(), "sqlite://var/recaudo.db");
    assert_eq!(s.store.url, "file://var/objects");
    assert_eq!(s.kafka.brokers, None);
    assert_eq!(s.kafka.topic, "recaudo.validations.v1");
    assert_eq!(s.calendar.timezone, chrono_tz::America::Bogota);
    assert_eq!(s.money.max_amount, "10000000.00");
    assert_eq!(s.jobs.retries, 3);
    assert_eq!(s.jobs.retry_backoff, Duration::from_secs(2));
    assert_eq!(s.schedule.grace, Duration::from_secs(30));
    assert!(s.schedule.catch_up);
    assert_eq!(s.telemetry.metrics_addr, None);
}

#[test]
fn the_environment_wins_over_the_file_and_the_file_over_the_defaults() {
    let f = file(
        "timezone = \"America/Lima\"\nday_close = \"23:00\"\njob_retries = 5\n\
         holidays = [\"2026-12-25\"]\nkafka_topic = \"taps\"\n",
    );
    let s = Settings::from_sources(
        Some(f.path()),
        &vars(&[
            ("RECAUDO_DAY_CLOSE", "22:00"),
            ("RECAUDO_MAX_AMOUNT", "500000.00"),
            ("RECAUDO_SCHEDULE_CATCH_UP", "false"),
            ("RECAUDO_HOLIDAYS", "2026-12-08, 2026-12-25"),
            ("RECAUDO_METRICS_ADDR", "127.0.0.1:9464"),
            ("RECAUDO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("RECAUDO_TEST_SOMETHING", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(s.calendar.timezone, chrono_tz::America::Lima);
    assert_eq!(s.calendar.day_close, "22:00");
    assert_eq!(s.jobs.retries, 5);
    assert_eq!(s.kafka.topic, "taps");
    // A decimal string stays the text it was, not a float.
    assert_eq!(s.money.max_amount, "500000.00");
    assert!(!s.schedule.catch_up);
    assert_eq!(s.calendar.holidays.len(), 2);
    assert_eq!(
        s.telemetry.metrics_addr,
        Some("127.0.0.1:9464".parse().unwrap())
    );
    let client: Vec<_> = s.kafka.client.expose().collect();
    assert_eq!(client, [("security.protocol", "SASL_SSL")]);
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_that_names_it() {
    let f = file("timezon = \"UTC\"\n");
    let err = Settings::from_sources(Some(f.path()), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("timezon"), "{err}");
}

#[test]
fn a_bad_value_names_its_key() {
    let f = file("job_retries = \"many\"\n");
    let err = Settings::from_sources(Some(f.path()), &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("job_retries"), "{err}");

    let err =
        Settings::from_sources(None, &vars(&[("RECAUDO_JOB_LEASE_SECS", "soon")])).unwrap_err();
    assert!(err.to_string().contains("RECAUDO_JOB_LEASE_SECS"), "{err}");

    let err =
        Settings::from_sources(None, &vars(&[("RECAUDO_TIMEZONE", "Mars/Base")])).unwrap_err();
    assert!(
        matches!(
            err,
            SettingsError::Invalid {
                key: "timezone",
                ..
            }
        ),
        "{err}"
    );
    let err =
        Settings::from_sources(None, &vars(&[("RECAUDO_HOLIDAYS", "2026-13-01")])).unwrap_err();
    assert!(err.to_string().contains("holidays"), "{err}");
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error() {
    let err = Settings::from_sources(
        Some(std::path::Path::new("/nonexistent/recaudo.toml")),
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/recaudo.toml"),
        "{err}"
    );
}

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_appear_in_debug_output_or_logs() {
    let s = Settings::from_sources(
        None,
        &vars(&[
            (
                "RECAUDO_DATABASE_URL",
                "postgres://app:s3cret-pw@db/recaudo",
            ),
            ("RECAUDO_KAFKA_SASL_PASSWORD", "kafka-s3cret"),
            ("RECAUDO_KAFKA_SASL_USERNAME", "ingest"),
        ]),
    )
    .unwrap();
    let shown = format!("{s:?} {} {:#?}", s.database.url, s.kafka);
    for secret in ["s3cret-pw", "kafka-s3cret"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(shown.contains("postgres://app:***@db/recaudo"), "{shown}");

    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(settings = ?s, url = %s.database.url, "configured");
    });
    let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("configured"), "{logged}");
    for secret in ["s3cret-pw", "kafka-s3cret"] {
        assert!(!logged.contains(secret), "{secret} logged in {logged}");
    }
    // The client still gets the real value.
    assert!(
        s.kafka
            .client
            .expose()
            .any(|(k, v)| k == "sasl.password" && v == "kafka-s3cret")
    );
}
