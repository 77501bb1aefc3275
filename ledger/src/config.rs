//! Configuration shared by every recaudo binary: one TOML file (`RECAUDO_CONFIG`, or
//! `recaudo.toml` when present) plus `RECAUDO_*` environment variables, which win. With
//! nothing set, everything runs embedded under `var/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::LedgerSettings;
use crate::business_date::BusinessCalendar;
use crate::error::InvalidInput;
use crate::money::{Currency, DEFAULT_MAX_MINOR, MoneyRules, parse_minor};

/// Every setting, by the name it has in the TOML file; the environment variable is the
/// upper-case name with a `RECAUDO_` prefix (`database_url` ↔ `RECAUDO_DATABASE_URL`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database_url: String,
    pub database_max_connections: u32,
    pub object_store: String,
    pub s3_sse_kms_key_id: Option<String>,
    pub kafka_brokers: Option<String>,
    pub kafka_group: String,
    pub events_dir: PathBuf,
    pub timezone: String,
    pub day_close: String,
    pub currency: String,
    /// Largest single amount accepted from outside, as a decimal string.
    pub max_amount: String,
    pub api_addr: String,
    /// Requests per second each operator may make (token bucket refill rate).
    pub api_rate_limit: u32,
    /// Requests an operator may make in a burst.
    pub api_rate_burst: u32,
    /// Largest request body the API reads, in bytes.
    pub api_body_limit_bytes: usize,
    /// Largest page a list endpoint returns.
    pub api_page_size_max: u32,
    /// Time a request may take before the API answers 503.
    pub api_request_timeout_ms: u64,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_jwks: Option<String>,
    pub jwt_algorithms: Option<String>,
    pub log_format: Option<String>,
    /// Dates (`YYYY-MM-DD`) that are not business days for settlement due dates, besides
    /// weekends. In the environment: comma-separated.
    pub holidays: Vec<String>,
    /// Further attempts a job makes after an error an external system caused.
    pub job_retries: u32,
    /// Wait before the first retry; doubled before each next one.
    pub job_retry_backoff_ms: u64,
    /// How long a job's single-flight lock outlives its holder's last renewal.
    pub job_lease_secs: u64,
    /// Cron expression (5 fields, business time zone) for `ingest-files` and
    /// `ingest-validations` in `recaudo schedule`.
    pub schedule_ingest: String,
    /// Cron expression for `settle` of the previous business date.
    pub schedule_settle: String,
    /// Whether `recaudo schedule` settles, on start, a previous date whose settle never
    /// succeeded.
    pub schedule_catch_up: bool,
    /// How long a run in progress may go on after `recaudo schedule` gets SIGTERM before it
    /// is stopped and recorded as failed (keep it under the pod's termination grace).
    pub schedule_grace_secs: u64,
    /// Anything else a subsystem reads by name (`RECAUDO_KAFKA_*` client settings, say).
    #[serde(skip)]
    pub extra: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://var/recaudo.db".into(),
            database_max_connections: 16,
            object_store: "file://var/objects".into(),
            s3_sse_kms_key_id: None,
            kafka_brokers: None,
            kafka_group: "recaudo-ingest".into(),
            events_dir: PathBuf::from("var/events"),
            timezone: "America/Bogota".into(),
            day_close: "24:00".into(),
            currency: "COP".into(),
            max_amount: "10000000.00".into(),
            api_addr: "127.0.0.1:8080".into(),
            api_rate_limit: 100,
            api_rate_burst: 200,
            api_body_limit_bytes: 16 * 1024,
            api_page_size_max: 500,
            api_request_timeout_ms: 10_000,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_jwks: None,
            jwt_algorithms: None,
            log_format: None,
            holidays: Vec::new(),
            job_retries: 3,
            job_retry_backoff_ms: 2_000,
            job_lease_secs: 30,
            schedule_ingest: "*/5 * * * *".into(),
            schedule_settle: "0 2 * * *".into(),
            schedule_catch_up: true,
            schedule_grace_secs: 30,
            extra: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting {0}")]
    Invalid(#[from] InvalidInput),
}

impl Config {
    /// Reads the file and then the process environment.
    pub fn load() -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("RECAUDO_"))
            .collect();
        let file = match vars.get("RECAUDO_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("recaudo.toml")).filter(|p| p.exists()),
        };
        Config::from_sources(file.as_deref(), &vars)
    }

    /// The file (if any) with `vars` (`RECAUDO_*` names) on top.
    pub fn from_sources(
        file: Option<&Path>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.message().to_string(),
                })?
            }
            None => Config::default(),
        };
        for (key, value) in vars {
            let name = key.trim_start_matches("RECAUDO_").to_ascii_lowercase();
            let v = value.clone();
            match name.as_str() {
                "config" => {}
                "database_url" => config.database_url = v,
                "database_max_connections" => {
                    config.database_max_connections = whole("database_max_connections", &v)?
                }
                "api_rate_limit" => config.api_rate_limit = whole("api_rate_limit", &v)?,
                "api_rate_burst" => config.api_rate_burst = whole("api_rate_burst", &v)?,
                "api_body_limit_bytes" => {
                    config.api_body_limit_bytes = whole("api_body_limit_bytes", &v)?
                }
                "api_page_size_max" => config.api_page_size_max = whole("api_page_size_max", &v)?,
                "api_request_timeout_ms" => {
                    config.api_request_timeout_ms = whole("api_request_timeout_ms", &v)?
                }
                "object_store" => config.object_store = v,
                "s3_sse_kms_key_id" => config.s3_sse_kms_key_id = Some(v),
                "kafka_brokers" => config.kafka_brokers = Some(v),
                "kafka_group" => config.kafka_group = v,
                "events_dir" => config.events_dir = PathBuf::from(v),
                "timezone" => config.timezone = v,
                "day_close" => config.day_close = v,
                "currency" => config.currency = v,
                "max_amount" => config.max_amount = v,
                "api_addr" => config.api_addr = v,
                "jwt_issuer" => config.jwt_issuer = Some(v),
                "jwt_audience" => config.jwt_audience = Some(v),
                "jwt_jwks" => config.jwt_jwks = Some(v),
                "jwt_algorithms" => config.jwt_algorithms = Some(v),
                "log_format" => config.log_format = Some(v),
                "job_retries" => config.job_retries = whole("job_retries", &v)?,
                "job_retry_backoff_ms" => {
                    config.job_retry_backoff_ms = whole("job_retry_backoff_ms", &v)?
                }
                "job_lease_secs" => config.job_lease_secs = whole("job_lease_secs", &v)?,
                "schedule_ingest" => config.schedule_ingest = v,
                "schedule_settle" => config.schedule_settle = v,
                "schedule_grace_secs" => {
                    config.schedule_grace_secs = whole("schedule_grace_secs", &v)?
                }
                "schedule_catch_up" => {
                    config.schedule_catch_up = match v.as_str() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => {
                            return Err(InvalidInput::new(
                                "schedule_catch_up",
                                format!("{v:?} is not true or false"),
                            )
                            .into());
                        }
                    }
                }
                "holidays" => {
                    config.holidays = v
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(String::from)
                        .collect()
                }
                _ => {
                    config.extra.insert(name, v);
                }
            }
        }
        config.ledger_settings()?;
        config.holidays()?;
        Ok(config)
    }

    pub fn currency(&self) -> Result<Currency, InvalidInput> {
        Currency::parse(&self.currency)
    }

    /// Largest accepted single amount, in minor units.
    pub fn max_minor(&self) -> Result<i64, InvalidInput> {
        let currency = self.currency()?;
        if self.max_amount.is_empty() {
            return Ok(DEFAULT_MAX_MINOR);
        }
        parse_minor("max_amount", &self.max_amount, currency.exponent())
    }

    /// How amounts from outside are accepted: the configured currency and maximum.
    pub fn money_rules(&self) -> Result<MoneyRules, InvalidInput> {
        Ok(MoneyRules {
            currency: self.currency()?,
            max_minor: self.max_minor()?,
        })
    }

    /// The configured holidays, parsed.
    pub fn holidays(&self) -> Result<Vec<crate::BusinessDate>, InvalidInput> {
        self.holidays
            .iter()
            .map(|d| crate::BusinessDate::parse_as("holidays", d))
            .collect()
    }

    pub fn ledger_settings(&self) -> Result<LedgerSettings, InvalidInput> {
        Ok(LedgerSettings {
            calendar: BusinessCalendar::new(&self.timezone, &self.day_close)?,
            currency: self.currency()?,
            max_connections: self.database_max_connections.max(1),
        })
    }
}

fn whole<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, InvalidInput> {
    text.parse()
        .map_err(|_| InvalidInput::new(field, format!("{text:?} is not a whole number")))
}

/// The database URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("object_store", &self.object_store)
            .field("kafka_brokers", &self.kafka_brokers)
            .field("timezone", &self.timezone)
            .field("day_close", &self.day_close)
            .field("currency", &self.currency)
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_embedded() {
        let c = Config::from_sources(None, &BTreeMap::new()).unwrap();
        assert_eq!(c.database_url, "sqlite://var/recaudo.db");
        assert_eq!(c.object_store, "file://var/objects");
        assert_eq!(c.max_minor().unwrap(), 1_000_000_000);
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recaudo.toml");
        std::fs::write(
            &path,
            "timezone = \"America/Lima\"\nday_close = \"23:00\"\n",
        )
        .unwrap();
        let c =
            Config::from_sources(Some(&path), &vars(&[("RECAUDO_DAY_CLOSE", "22:00")])).unwrap();
        assert_eq!(c.timezone, "America/Lima");
        assert_eq!(c.day_close, "22:00");
    }

    #[test]
    fn bad_settings_are_named() {
        let err =
            Config::from_sources(None, &vars(&[("RECAUDO_TIMEZONE", "Nowhere")])).unwrap_err();
        assert!(err.to_string().contains("timezone"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recaudo.toml");
        std::fs::write(&path, "timezon = \"UTC\"\n").unwrap();
        let err = Config::from_sources(Some(&path), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("timezon"), "{err}");
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        let c = Config::from_sources(
            None,
            &vars(&[("RECAUDO_DATABASE_URL", "postgres://app:s3cret@db/recaudo")]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db"));
    }
}
