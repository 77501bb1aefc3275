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

/// A valid value of each setting, as TOML.
fn sample(key: &str) -> &'static str {
    match key {
        "api_addr" => "\"0.0.0.0:8080\"",
        "api_body_limit_bytes" | "api_page_size_max" | "api_rate_burst" | "api_rate_limit" => "100",
        "api_request_timeout_ms" | "job_retry_backoff_ms" => "1000",
        "bank_accounts" => "[\"CO12BANK0001\"]",
        "currency" => "\"COP\"",
        "database_max_connections" | "job_lease_secs" | "job_retries" => "4",
        "database_url" => "\"postgres://recaudo@db/recaudo\"",
        "day_close" => "\"23:00\"",
        "events_dir" | "outbox_dir" => "\"events\"",
        "events_topic" => "\"recaudo.events.v1\"",
        "events_batch" | "events_poll_ms" => "250",
        "webhook_allow_private" => "true",
        "webhook_retry_base_ms" | "webhook_retry_max_ms" | "webhook_timeout_ms" => "2000",
        "holidays" => "[\"2026-12-25\"]",
        "jwt_algorithms" => "\"RS256,ES256\"",
        "jwt_audience" | "jwt_issuer" => "\"https://idp.example\"",
        "jwt_jwks" => "\"jwks.json\"",
        "kafka_brokers" => "\"b-1.msk:9098\"",
        "kafka_group" | "kafka_topic" => "\"taps\"",
        "log_format" => "\"json\"",
        "max_amount" | "approval_threshold" => "\"500000.00\"",
        "metrics_addr" => "\"0.0.0.0:9464\"",
        "object_store" => "\"s3://bucket/prefix/\"",
        "s3_sse_kms_key_id" => "\"alias/recaudo\"",
        "schedule_catch_up" | "schedule_resettle_stale" => "false",
        "schedule_grace_secs" => "10",
        "schedule_ingest" | "schedule_settle" | "schedule_hotlist" => "\"*/10 * * * *\"",
        "negative_limit" => "\"5000.00\"",
        "replacement_delay" => "\"12h\"",
        "hotlist_grace" => "\"10m\"",
        "hotlist_topic" => "\"hotlist\"",
        "timezone" => "\"America/Lima\"",
        other => panic!("no sample value for the setting {other}: add one here"),
    }
}

/// Every variable the README's configuration table documents can be given in the file as
/// well, under its name without the prefix, and takes effect from there.
#[test]
fn every_documented_variable_is_also_a_file_key() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let table = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .split("\n\n")
        .find(|block| block.starts_with("| variable"))
        .expect("the variables table");
    let mut documented = Vec::new();
    for row in table.lines().skip(2) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for name in first.split('`').filter(|n| n.starts_with("RECAUDO_")) {
            if name.ends_with('*') {
                continue; // RECAUDO_KAFKA_* other: client options, checked below
            }
            documented.push(name.to_string());
        }
    }
    assert!(documented.len() > 25, "{documented:?}");
    let keys = settings::names();
    for name in &documented {
        let key = name["RECAUDO_".len()..].to_ascii_lowercase();
        assert!(
            keys.contains(&key),
            "{name} is documented but {key} is no file key"
        );
        // The file takes the key with a value the environment would take.
        let value = sample(&key);
        let f = file(&format!("{key} = {value}\n"));
        Settings::from_sources(Some(f.path()), &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{key} = {value} in the file: {e}"));
    }
    for key in &keys {
        let name = format!("RECAUDO_{}", key.to_ascii_uppercase());
        assert!(
            documented.contains(&name),
            "{name} is a setting the README does not document"
        );
    }
}

#[test]
fn kafka_client_options_can_be_given_in_the_file_and_the_environment_wins() {
    let f = file(
        "kafka_brokers = \"b-1:9098\"\nkafka_security_protocol = \"SASL_SSL\"\n\
         kafka_sasl_password = \"from-file\"\nkafka_session_timeout_ms = 6000\n",
    );
    let s = Settings::from_sources(
        Some(f.path()),
        &vars(&[("RECAUDO_KAFKA_SASL_PASSWORD", "from-env")]),
    )
    .unwrap();
    let client: BTreeMap<&str, &str> = s.kafka.client.expose().collect();
    assert_eq!(client["security.protocol"], "SASL_SSL");
    assert_eq!(client["session.timeout.ms"], "6000");
    assert_eq!(client["sasl.password"], "from-env");
    assert!(
        !format!("{:?}", s.kafka).contains("from-env"),
        "a secret never prints"
    );
}
