//! Configuration shared by every recaudo binary, parsed once: one TOML file
//! (`RECAUDO_CONFIG`, or `recaudo.toml` when present) plus `RECAUDO_*` environment
//! variables, which win. With nothing set, everything runs embedded under `var/`.
//!
//! Every setting has one flat name: the key in the file, and (upper-cased, with the
//! `RECAUDO_` prefix) the environment variable — `database_url` ↔ `RECAUDO_DATABASE_URL`,
//! the names ops script against. Programs read them typed and grouped by subsystem
//! ([`Settings::database`], [`Settings::jobs`], ...). Layering, type conversion and error
//! messages that name the key are figment's; this crate adds the names and the checks.
//!
//! Also here, because every binary sets them up the same way: logging ([`logging`]), the
//! metrics exporter ([`telemetry`]) and the stop signal ([`signal`]).

pub mod logging;
mod secret;
pub mod signal;
pub mod telemetry;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Metadata, Profile, Provider, value::Dict};
use serde::{Deserialize, Deserializer, Serialize};

pub use secret::{DatabaseUrl, Secret, redact_url};

/// The environment variables' common prefix.
pub const PREFIX: &str = "RECAUDO_";

/// Everything the binaries are configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub store: StoreSettings,
    pub kafka: KafkaSettings,
    pub api: ApiSettings,
    pub jwt: JwtSettings,
    pub schedule: ScheduleSettings,
    pub jobs: JobSettings,
    pub calendar: CalendarSettings,
    pub money: MoneySettings,
    pub telemetry: TelemetrySettings,
    pub events: EventsSettings,
    pub webhooks: WebhookSettings,
    pub hotlist: HotlistSettings,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`; the password never prints.
    pub url: DatabaseUrl,
    /// Pool size (PostgreSQL; SQLite uses at most 8).
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `file://folder` or `s3://bucket/prefix`.
    pub url: String,
    /// Every object written with SSE-KMS under this key.
    pub sse_kms_key_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Unset: validation events are read from [`KafkaSettings::events_dir`] instead.
    pub brokers: Option<String>,
    pub group: String,
    pub topic: String,
    /// Where JSON-lines event files are read from when no broker is configured.
    pub events_dir: PathBuf,
    /// Every other `RECAUDO_KAFKA_*` variable, for the Kafka client with `_` read as `.`
    /// (`RECAUDO_KAFKA_SECURITY_PROTOCOL` is `security.protocol`).
    pub client: ClientOptions,
}

/// Options passed through to the Kafka client. Values of keys that name a password or
/// secret (`sasl.password`) are kept as [`Secret`]s.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    plain: BTreeMap<String, String>,
    secret: BTreeMap<String, Secret>,
}

impl ClientOptions {
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        if key.contains("password") || key.contains("secret") {
            self.secret.insert(key, Secret::new(value));
        } else {
            self.plain.insert(key, value.into());
        }
    }

    /// Every option with its value in the clear, to hand to the client.
    pub fn expose(&self) -> impl Iterator<Item = (&str, &str)> {
        self.plain
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.secret.iter().map(|(k, v)| (k.as_str(), v.expose())))
    }
}

/// The relays that carry the outbox's events out (DESIGN.md, Events).
#[derive(Debug, Clone)]
pub struct EventsSettings {
    /// The Kafka topic `publish-events` writes to (when a broker is configured).
    pub topic: String,
    /// Where `publish-events` writes JSON lines when no broker is configured.
    pub outbox_dir: PathBuf,
    /// Events per batch (one produce round trip, one cursor update).
    pub batch: i64,
    /// How often the scheduler's relays look for new events.
    pub poll: Duration,
}

/// Card blocks and the action lists for the field (DESIGN.md, Hotlists).
#[derive(Debug, Clone)]
pub struct HotlistSettings {
    /// How far below zero (a decimal amount) validations may take a card before it is
    /// blocked NEGATIVE_BALANCE.
    pub negative_limit: String,
    /// The wait before a replaced card's balance moves to its new card.
    pub replacement_delay: Duration,
    /// The time the field has to apply a new block before a tap on the card is a violation.
    pub grace: Duration,
    /// When `recaudo schedule` publishes the action list (cron, business time zone).
    pub schedule: String,
    /// The compacted Kafka topic of the action list.
    pub topic: String,
}

/// Operators' webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Development only: endpoints on private or loopback addresses, and `http`.
    pub allow_private: bool,
    /// The wait after a failed delivery, doubled each time, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// For one delivery attempt.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where `recaudo-api` listens (`host:port`).
    pub addr: String,
    /// Requests per second each operator may make (token bucket refill rate).
    pub rate_limit: u32,
    /// Requests an operator may make in a burst.
    pub rate_burst: u32,
    /// Largest request body the API reads, in bytes.
    pub body_limit_bytes: usize,
    /// Largest page a list endpoint returns.
    pub page_size_max: u32,
    /// Time a request may take before the API answers 503.
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// A JWKS file path or `https://` URL; unset means development mode.
    pub jwks: Option<String>,
    /// Comma-separated, RS256 and/or ES256.
    pub algorithms: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// Cron expression (5 fields, business time zone) for `ingest-files` and
    /// `ingest-validations` in `recaudo schedule`.
    pub ingest: String,
    /// Cron expression for `settle` of the previous business date.
    pub settle: String,
    /// Whether `recaudo schedule` settles, on start, a previous date whose settle never
    /// succeeded.
    pub catch_up: bool,
    /// Whether `recaudo schedule` settles again, after each ingest, the settled dates whose
    /// inputs changed since their last report (stale dates).
    pub resettle_stale: bool,
    /// How long a run in progress may go on after SIGTERM before it is stopped and
    /// recorded as failed (keep it under the pod's termination grace).
    pub grace: Duration,
}

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Further attempts a job makes after an error an external system caused.
    pub retries: u32,
    /// Wait before the first retry; doubled before each next one.
    pub retry_backoff: Duration,
    /// How long a job's single-flight lock outlives its holder's last renewal.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct CalendarSettings {
    /// The IANA zone business dates are computed in.
    pub timezone: chrono_tz::Tz,
    /// When the business day closes (`00:01`–`24:00`); the ledger checks the form.
    pub day_close: String,
    /// Dates that are not business days for settlement due dates, besides weekends.
    pub holidays: Vec<chrono::NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct MoneySettings {
    /// The one ISO 4217 currency the system settles in.
    pub currency: String,
    /// Largest single amount accepted from outside, as a decimal string.
    pub max_amount: String,
    /// A resolution of an exception case at least this large (a decimal string) waits for
    /// a second person's approval.
    pub approval_threshold: String,
    /// Our collection accounts (IBAN or local number): a bank statement of any other
    /// account is rejected.
    pub bank_accounts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `json`, or anything else for human-readable; unset: human on a terminal.
    pub log_format: Option<String>,
    /// Where `recaudo schedule` serves `/metrics`; unset: not served.
    pub metrics_addr: Option<SocketAddr>,
}

/// Why the settings could not be read. Each names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid setting: {0}")]
    Figment(Box<figment::Error>),
    #[error("setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl From<figment::Error> for SettingsError {
    fn from(e: figment::Error) -> SettingsError {
        SettingsError::Figment(Box::new(e))
    }
}

/// The settings by their flat names: what the file and the environment say.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Flat {
    database_url: String,
    database_max_connections: u32,
    object_store: String,
    s3_sse_kms_key_id: Option<String>,
    kafka_brokers: Option<String>,
    kafka_group: String,
    kafka_topic: String,
    events_dir: PathBuf,
    timezone: String,
    day_close: String,
    currency: String,
    max_amount: String,
    approval_threshold: String,
    #[serde(deserialize_with = "list_or_commas")]
    bank_accounts: Vec<String>,
    api_addr: String,
    api_rate_limit: u32,
    api_rate_burst: u32,
    api_body_limit_bytes: usize,
    api_page_size_max: u32,
    api_request_timeout_ms: u64,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_jwks: Option<String>,
    jwt_algorithms: Option<String>,
    log_format: Option<String>,
    metrics_addr: Option<String>,
    #[serde(deserialize_with = "list_or_commas")]
    holidays: Vec<String>,
    job_retries: u32,
    job_retry_backoff_ms: u64,
    job_lease_secs: u64,
    schedule_ingest: String,
    schedule_settle: String,
    schedule_catch_up: bool,
    schedule_resettle_stale: bool,
    schedule_grace_secs: u64,
    events_topic: String,
    outbox_dir: PathBuf,
    events_batch: i64,
    events_poll_ms: u64,
    webhook_allow_private: bool,
    webhook_retry_base_ms: u64,
    webhook_retry_max_ms: u64,
    webhook_timeout_ms: u64,
    negative_limit: String,
    replacement_delay: String,
    hotlist_grace: String,
    schedule_hotlist: String,
    hotlist_topic: String,
}

impl Default for Flat {
    fn default() -> Self {
        Flat {
            database_url: "sqlite://var/recaudo.db".into(),
            database_max_connections: 16,
            object_store: "file://var/objects".into(),
            s3_sse_kms_key_id: None,
            kafka_brokers: None,
            kafka_group: "recaudo-ingest".into(),
            kafka_topic: "recaudo.validations.v1".into(),
            events_dir: PathBuf::from("var/events"),
            timezone: "America/Bogota".into(),
            day_close: "24:00".into(),
            currency: "COP".into(),
            max_amount: "10000000.00".into(),
            approval_threshold: "1000000.00".into(),
            bank_accounts: Vec::new(),
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
            metrics_addr: None,
            holidays: Vec::new(),
            job_retries: 3,
            job_retry_backoff_ms: 2_000,
            job_lease_secs: 30,
            schedule_ingest: "*/5 * * * *".into(),
            schedule_settle: "0 2 * * *".into(),
            schedule_catch_up: true,
            schedule_resettle_stale: true,
            schedule_grace_secs: 30,
            events_topic: "recaudo.events.v1".into(),
            outbox_dir: PathBuf::from("var/outbox"),
            events_batch: 500,
            events_poll_ms: 1_000,
            webhook_allow_private: false,
            webhook_retry_base_ms: 30_000,
            webhook_retry_max_ms: 3_600_000,
            webhook_timeout_ms: 10_000,
            negative_limit: "0".into(),
            replacement_delay: "24h".into(),
            hotlist_grace: "15m".into(),
            schedule_hotlist: "*/5 * * * *".into(),
            hotlist_topic: "recaudo.hotlist.v1".into(),
        }
    }
}

/// A span of time as people write it (`24h`, `15m`, `90s`).
fn duration(key: &'static str, text: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(text.trim()).map_err(|e| SettingsError::Invalid {
        key,
        reason: format!("{text:?} is not a duration like 24h or 15m ({e})"),
    })
}

/// A TOML array of strings, or (from the environment) one comma-separated string.
fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The configuration file: its settings, and its other `kafka_*` keys as Kafka client
/// options (`kafka_security_protocol = "SASL_SSL"`), as the environment's
/// `RECAUDO_KAFKA_*` variables are. Any other unknown key stays, to be refused by name.
struct SettingsFile {
    settings: figment::value::Map<Profile, Dict>,
    client: ClientOptions,
    metadata: Metadata,
}

impl SettingsFile {
    fn read(path: &Path, known: &[String]) -> Result<SettingsFile, SettingsError> {
        let toml = Toml::file_exact(path);
        let metadata = toml.metadata();
        let mut settings = toml.data()?;
        let mut client = ClientOptions::default();
        for dict in settings.values_mut() {
            let options: Vec<String> = dict
                .keys()
                .filter(|k| k.starts_with("kafka_") && !known.contains(k))
                .cloned()
                .collect();
            for key in options {
                let value = dict.remove(&key).expect("the key was just listed");
                let text = match value {
                    figment::value::Value::String(_, s) => s,
                    ref number @ figment::value::Value::Num(..) => match number.to_i128() {
                        Some(i) => i.to_string(),
                        None => number.to_f64().map(|f| f.to_string()).unwrap_or_default(),
                    },
                    figment::value::Value::Bool(_, b) => b.to_string(),
                    _ => {
                        return Err(SettingsError::Invalid {
                            key: "kafka_*",
                            reason: format!(
                                "{key} in {}: a Kafka client option is a string, a number \
                                 or a bool",
                                path.display()
                            ),
                        });
                    }
                };
                client.insert(key["kafka_".len()..].replace('_', "."), text);
            }
        }
        Ok(SettingsFile {
            settings,
            client,
            metadata,
        })
    }
}

impl Provider for SettingsFile {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        Ok(self.settings.clone())
    }
}

/// The `RECAUDO_*` variables that are settings, as raw strings: figment's lossy extraction
/// turns `"3"` into a number and `"true"` into a bool where a field wants one, and leaves
/// every other value the text it was (`10000000.00` stays a decimal string).
struct Environment(Dict);

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
            .interpolater(|_, keys| format!("{PREFIX}{}", keys.join(".").to_ascii_uppercase()))
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

impl Settings {
    /// Reads the file and then the process environment.
    pub fn load() -> Result<Settings, SettingsError> {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .collect();
        let file = match vars.get("RECAUDO_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("recaudo.toml")).filter(|p| p.exists()),
        };
        Settings::from_sources(file.as_deref(), &vars)
    }

    /// The embedded defaults, as with no file and no variables.
    pub fn embedded() -> Settings {
        Settings::from_sources(None, &BTreeMap::new()).expect("the defaults are valid")
    }

    /// The file (if any) with `vars` (`RECAUDO_*` names) on top.
    pub fn from_sources(
        file: Option<&Path>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let known = names();
        let mut env = Dict::new();
        let mut client = ClientOptions::default();
        for (key, value) in vars {
            let Some(name) = key.strip_prefix(PREFIX) else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            if known.contains(&name) {
                env.insert(name, value.clone().into());
            } else if let Some(option) = name.strip_prefix("kafka_") {
                client.insert(option.replace('_', "."), value.clone());
            }
            // Any other RECAUDO_* variable is not ours to judge (RECAUDO_CONFIG, test
            // harness variables): it is ignored.
        }
        let mut figment = Figment::from(Serialized::defaults(Flat::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_path_buf()));
            }
            let file = SettingsFile::read(path, &known)?;
            // The environment wins: its client options are put in after the file's.
            let from_env = std::mem::take(&mut client);
            client = file.client.clone();
            for (k, v) in from_env.plain {
                client.insert(k, v);
            }
            for (k, v) in from_env.secret {
                client.insert(k, v.expose());
            }
            figment = figment.merge(file);
        }
        let flat: Flat = figment.merge(Environment(env)).extract_lossy()?;
        flat.into_settings(client)
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Flat {
    fn into_settings(self, client: ClientOptions) -> Result<Settings, SettingsError> {
        let timezone = self.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("{:?} is not an IANA time zone name", self.timezone),
            )
        })?;
        let holidays = self
            .holidays
            .iter()
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| invalid("holidays", format!("{d:?} is not a YYYY-MM-DD date")))
            })
            .collect::<Result<_, _>>()?;
        let metrics_addr = self
            .metrics_addr
            .map(|a| {
                a.parse().map_err(|_| {
                    invalid(
                        "metrics_addr",
                        format!("{a:?} is not an address (host:port)"),
                    )
                })
            })
            .transpose()?;
        Ok(Settings {
            database: DatabaseSettings {
                url: DatabaseUrl::new(self.database_url),
                max_connections: self.database_max_connections.max(1),
            },
            store: StoreSettings {
                url: self.object_store,
                sse_kms_key_id: self.s3_sse_kms_key_id,
            },
            kafka: KafkaSettings {
                brokers: self.kafka_brokers,
                group: self.kafka_group,
                topic: self.kafka_topic,
                events_dir: self.events_dir,
                client,
            },
            api: ApiSettings {
                addr: self.api_addr,
                rate_limit: self.api_rate_limit,
                rate_burst: self.api_rate_burst,
                body_limit_bytes: self.api_body_limit_bytes,
                page_size_max: self.api_page_size_max.max(1),
                request_timeout: Duration::from_millis(self.api_request_timeout_ms.max(1)),
            },
            jwt: JwtSettings {
                issuer: self.jwt_issuer,
                audience: self.jwt_audience,
                jwks: self.jwt_jwks,
                algorithms: self.jwt_algorithms,
            },
            schedule: ScheduleSettings {
                ingest: self.schedule_ingest,
                settle: self.schedule_settle,
                catch_up: self.schedule_catch_up,
                resettle_stale: self.schedule_resettle_stale,
                grace: Duration::from_secs(self.schedule_grace_secs),
            },
            jobs: JobSettings {
                retries: self.job_retries,
                retry_backoff: Duration::from_millis(self.job_retry_backoff_ms),
                lease: Duration::from_secs(self.job_lease_secs.max(3)),
            },
            calendar: CalendarSettings {
                timezone,
                day_close: self.day_close,
                holidays,
            },
            money: MoneySettings {
                currency: self.currency,
                max_amount: self.max_amount,
                approval_threshold: self.approval_threshold,
                bank_accounts: self.bank_accounts,
            },
            telemetry: TelemetrySettings {
                log_format: self.log_format,
                metrics_addr,
            },
            events: EventsSettings {
                topic: self.events_topic,
                outbox_dir: self.outbox_dir,
                batch: self.events_batch.clamp(1, 10_000),
                poll: Duration::from_millis(self.events_poll_ms.max(10)),
            },
            webhooks: WebhookSettings {
                allow_private: self.webhook_allow_private,
                retry_base: Duration::from_millis(self.webhook_retry_base_ms.max(1)),
                retry_max: Duration::from_millis(
                    self.webhook_retry_max_ms
                        .max(self.webhook_retry_base_ms.max(1)),
                ),
                timeout: Duration::from_millis(self.webhook_timeout_ms.max(100)),
            },
            hotlist: HotlistSettings {
                negative_limit: self.negative_limit,
                replacement_delay: duration("replacement_delay", &self.replacement_delay)?,
                grace: duration("hotlist_grace", &self.hotlist_grace)?,
                schedule: self.schedule_hotlist,
                topic: self.hotlist_topic,
            },
        })
    }
}

/// The names of every setting, as the file spells them (for documentation checks).
pub fn names() -> Vec<String> {
    figment::value::Value::serialize(Flat::default())
        .ok()
        .and_then(|v| v.into_dict())
        .map(|d| d.into_keys().collect())
        .unwrap_or_default()
}
