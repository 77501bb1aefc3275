//! Validation events from the field validators: decoded, dead-lettered when bad, posted to
//! the ledger in batches. Two sources: a Kafka consumer group (production) and JSON-lines
//! files in a folder (the embedded default).
//!
//! Exactly-once effect: a batch's dead letters and postings are both idempotent (by source
//! position, and by `(device_id, device_seq)`), and a source's position (Kafka offsets, a
//! file's byte offset) is committed only after the batch is durable. A crash replays at
//! most the uncommitted batch, and replaying it changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ledger::journal::Validation;
use ledger::{CardId, Database, DeviceId, Ledger, MoneyRules, RouteId, TransportOperatorId};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt};

use crate::IngestError;
use crate::internal_events::ValidationBatchPosted;
use settings::telemetry::InternalEvent;

pub const TOPIC: &str = "recaudo.validations.v1";

/// The event as validators publish it.
#[derive(Debug, Deserialize)]
struct Wire {
    event_id: String,
    device_id: String,
    device_seq: i64,
    card_id: String,
    occurred_at: String,
    fare: String,
    currency: String,
    route_id: String,
    transport_operator_id: String,
    /// Absent from older devices.
    #[serde(default)]
    hotlist_version: Option<i64>,
}

/// Decodes one event; the error is the dead letter's reason.
pub fn decode(bytes: &[u8], rules: &MoneyRules) -> Result<Validation, String> {
    // The path names the field of a value of the wrong type (`device_seq: invalid type …`).
    let w: Wire =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
            .map_err(|e| match e.path().to_string().as_str() {
                "." => format!("not a validation event: {}", e.inner()),
                path => format!("not a validation event: {path}: {}", e.inner()),
            })?;
    let field = |e: ledger::InvalidInput| e.to_string();
    if w.event_id.is_empty() || w.event_id.len() > 64 {
        return Err("event_id: must be 1 to 64 characters".into());
    }
    if w.device_seq < 0 {
        return Err("device_seq: must not be negative".into());
    }
    if w.hotlist_version.is_some_and(|n| n < 0) {
        return Err("hotlist_version: must not be negative".into());
    }
    rules
        .parse_currency("currency", &w.currency)
        .map_err(field)?;
    Ok(Validation {
        event_id: w.event_id,
        device_id: DeviceId::parse(&w.device_id).map_err(field)?,
        device_seq: w.device_seq,
        card_id: CardId::parse(&w.card_id).map_err(field)?,
        fare: rules.parse_amount("fare", &w.fare).map_err(field)?,
        route_id: RouteId::parse(&w.route_id).map_err(field)?,
        transport_operator_id: TransportOperatorId::parse(&w.transport_operator_id)
            .map_err(field)?,
        occurred_at: DateTime::parse_from_rfc3339(&w.occurred_at)
            .map_err(|_| format!("occurred_at: {:?} is not an RFC 3339 time", w.occurred_at))?
            .with_timezone(&Utc),
        hotlist_version: w.hotlist_version,
    })
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationsReport {
    pub events: u64,
    pub posted: u64,
    /// Valid events already posted (replays and duplicates).
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub batches: u64,
}

/// One raw event and where it came from.
pub struct RawEvent {
    pub position: String,
    pub payload: Vec<u8>,
}

/// Decodes and posts a batch. Returns once everything is durable.
pub async fn process_batch(
    ledger: &dyn Ledger,
    rules: &MoneyRules,
    source: &str,
    events: &[RawEvent],
    report: &mut ValidationsReport,
) -> Result<(), IngestError> {
    let mut good = Vec::with_capacity(events.len());
    let mut bad = Vec::new();
    for e in events {
        match decode(&e.payload, rules) {
            Ok(v) => good.push(v),
            Err(reason) => bad.push((e, reason)),
        }
    }
    if !bad.is_empty() {
        dead_letter(ledger.database(), source, &bad).await?;
    }
    let outcome = ledger.post_validations(&good).await?;
    report.events += events.len() as u64;
    report.posted += outcome.posted as u64;
    report.duplicates += outcome.duplicates as u64;
    report.dead_lettered += bad.len() as u64;
    report.batches += 1;
    ValidationBatchPosted {
        events: events.len(),
        posted: outcome.posted,
        duplicates: outcome.duplicates,
        dead_lettered: bad.len(),
        flagged_cards: outcome.flagged_cards.len(),
    }
    .emit();
    Ok(())
}

async fn dead_letter(
    db: Database<'_>,
    source: &str,
    bad: &[(&RawEvent, String)],
) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO dead_letters (source, position, payload, reason, received_at) \
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, position) DO NOTHING";
    let now = Utc::now();
    ledger::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for (event, reason) in bad {
            sqlx::query(SQL)
                .bind(source)
                .bind(&event.position)
                .bind(&event.payload)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    })
}

/// A dead-lettered event, as kept.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub source: String,
    pub position: String,
    /// The event's bytes: as text when they are UTF-8, else hex (see `payload_encoding`).
    #[serde(serialize_with = "payload_text")]
    pub payload: Vec<u8>,
    pub payload_encoding: &'static str,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

fn payload_text<S: serde::Serializer>(payload: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(payload) {
        Ok(text) => s.serialize_str(text),
        Err(_) => s.serialize_str(&hex::encode(payload)),
    }
}

/// The most recent dead letters, newest first.
pub async fn dead_letters(db: Database<'_>, limit: i64) -> Result<Vec<DeadLetter>, sqlx::Error> {
    const SQL: &str = "SELECT id, source, position, payload, reason, received_at FROM dead_letters \
        ORDER BY id DESC LIMIT $1";
    type Row = (i64, String, String, Vec<u8>, String, DateTime<Utc>);
    let rows: Vec<Row> =
        ledger::on_pool!(db, pool => sqlx::query_as(SQL).bind(limit).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(
            |(id, source, position, payload, reason, received_at)| DeadLetter {
                id,
                source,
                position,
                payload_encoding: if std::str::from_utf8(&payload).is_ok() {
                    "utf-8"
                } else {
                    "hex"
                },
                payload,
                reason,
                received_at,
            },
        )
        .collect())
}

pub use ledger::device_gap::{DeviceGap, device_gaps};

async fn position(db: Database<'_>, source: &str) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT position FROM event_positions WHERE source = $1";
    let p: Option<i64> = ledger::on_pool!(db, pool => {
        sqlx::query_scalar(SQL)
            .bind(source)
            .fetch_optional(pool)
            .await?
    });
    Ok(p.unwrap_or(0))
}

async fn set_position(db: Database<'_>, source: &str, at: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO event_positions (source, position) VALUES ($1, $2) \
        ON CONFLICT (source) DO UPDATE SET position = excluded.position";
    ledger::on_pool!(db, pool => {
        sqlx::query(SQL).bind(source).bind(at).execute(pool).await?;
    });
    Ok(())
}

/// Reads every `*.jsonl` file in `dir` (in name order) from where the last run stopped.
/// A last line without its newline is left for the next run: the file may still be
/// being written.
pub async fn ingest_event_folder(
    ledger: &dyn Ledger,
    rules: &MoneyRules,
    dir: &Path,
    batch_size: usize,
) -> Result<ValidationsReport, IngestError> {
    let mut report = ValidationsReport::default();
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e.into()),
    };
    names.sort();
    for name in names {
        let source = format!("file:{name}");
        let mut offset = position(ledger.database(), &source).await?;
        let mut file = tokio::fs::File::open(dir.join(&name)).await?;
        file.seek(std::io::SeekFrom::Start(offset as u64)).await?;
        let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
        let mut batch = Vec::with_capacity(batch_size);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).await?;
            let complete = n > 0 && line.last() == Some(&b'\n');
            if complete {
                let payload = line[..line.len() - 1]
                    .strip_suffix(b"\r")
                    .unwrap_or(&line[..line.len() - 1]);
                if !payload.is_empty() {
                    batch.push(RawEvent {
                        position: offset.to_string(),
                        payload: payload.to_vec(),
                    });
                }
                offset += n as i64;
            }
            if (!complete && !batch.is_empty()) || batch.len() >= batch_size {
                process_batch(ledger, rules, &source, &batch, &mut report).await?;
                set_position(ledger.database(), &source, offset).await?;
                batch.clear();
            }
            if !complete {
                break;
            }
        }
    }
    Ok(report)
}

/// Where and how to consume from Kafka.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group: String,
    pub topic: String,
    /// Further librdkafka settings (SASL/SSL for MSK), passed through as they are.
    pub client: BTreeMap<String, String>,
    pub batch_size: usize,
    /// A batch is posted when full or when it is this old.
    pub linger: Duration,
    /// Stop after no message arrived for this long (`None`: run until cancelled).
    pub stop_when_idle: Option<Duration>,
}

impl KafkaSettings {
    pub fn new(brokers: &str, group: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.to_string(),
            group: group.to_string(),
            topic: TOPIC.to_string(),
            client: BTreeMap::new(),
            batch_size: 5_000,
            linger: Duration::from_millis(200),
            stop_when_idle: Some(Duration::from_secs(5)),
        }
    }
}

fn kafka_err(e: rdkafka::error::KafkaError) -> IngestError {
    IngestError::Kafka(e.to_string())
}

/// Consumes validations as a member of the consumer group, committing offsets only after
/// each batch is durable in the database.
pub async fn ingest_from_kafka(
    ledger: &dyn Ledger,
    rules: &MoneyRules,
    settings: &KafkaSettings,
) -> Result<ValidationsReport, IngestError> {
    use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        // A member that died without leaving the group (a killed pod) holds its partitions
        // until this expires, and the broker may wait as long for members when the group
        // forms; a batch takes well under a second, so 10 s is ample.
        .set("max.poll.interval.ms", "10000");
    for (k, v) in &settings.client {
        config.set(k, v);
    }
    let consumer: Arc<StreamConsumer> = Arc::new(config.create().map_err(kafka_err)?);
    consumer.subscribe(&[&settings.topic]).map_err(kafka_err)?;
    let source = format!("kafka:{}", settings.topic);
    let mut report = ValidationsReport::default();
    let mut batch: Vec<RawEvent> = Vec::with_capacity(settings.batch_size);
    let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let mut batch_started: Option<Instant> = None;
    let mut last_message = Instant::now();
    let mut receive_errors = 0u64;
    let mut lag_checks = 0u32;
    loop {
        let wait = match batch_started {
            Some(t) => settings.linger.saturating_sub(t.elapsed()),
            None => Duration::from_millis(500),
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(msg)) => {
                last_message = Instant::now();
                batch_started.get_or_insert_with(Instant::now);
                next_offsets.insert(msg.partition(), msg.offset() + 1);
                batch.push(RawEvent {
                    position: format!("{}:{}", msg.partition(), msg.offset()),
                    payload: msg.payload().unwrap_or_default().to_vec(),
                });
            }
            Ok(Err(e)) => {
                // librdkafka says the same thing every few hundred milliseconds while a
                // broker is away; once is enough at warn, the end-of-run check decides.
                if receive_errors == 0 {
                    tracing::warn!(error = %e, "Kafka receive error");
                } else {
                    tracing::debug!(error = %e, "Kafka receive error");
                }
                receive_errors += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {}
        }
        let full = batch.len() >= settings.batch_size;
        let lingered = batch_started.is_some_and(|t| t.elapsed() >= settings.linger);
        if !batch.is_empty() && (full || lingered) {
            let t = Instant::now();
            process_batch(ledger, rules, &source, &batch, &mut report).await?;
            tracing::debug!(
                events = batch.len(),
                full,
                process_ms = t.elapsed().as_millis() as u64,
                "batch posted"
            );
            let mut tpl = TopicPartitionList::new();
            for (partition, offset) in &next_offsets {
                tpl.add_partition_offset(&settings.topic, *partition, Offset::Offset(*offset))
                    .map_err(kafka_err)?;
            }
            consumer.commit(&tpl, CommitMode::Sync).map_err(kafka_err)?;
            tracing::debug!(?next_offsets, events = batch.len(), "batch committed");
            batch.clear();
            batch_started = None;
        }
        if batch.is_empty()
            && settings
                .stop_when_idle
                .is_some_and(|idle| last_message.elapsed() >= idle)
        {
            // A quiet topic and a broker we cannot reach look the same from here: only
            // the broker can say the group has read everything there is.
            match lag(&consumer, &settings.topic).await {
                Ok(behind) if behind.is_empty() => break,
                Ok(behind) => {
                    lag_checks += 1;
                    if lag_checks >= MAX_LAG_CHECKS {
                        return Err(IngestError::KafkaBehind {
                            topic: settings.topic.clone(),
                            behind: behind.join(", "),
                        });
                    }
                    tracing::info!(behind = %behind.join(", "), "not at the end of the topic yet");
                    last_message = Instant::now();
                }
                Err(e) => {
                    return Err(IngestError::KafkaUnreachable {
                        brokers: settings.brokers.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(report)
}

/// How many idle periods a run waits for a lagging group to catch up (partitions another
/// member holds, say) before it gives up.
const MAX_LAG_CHECKS: u32 = 6;

/// The partitions whose committed offset is behind their end, as `partition committed/end`
/// (empty: the group has read everything). An error: the broker did not answer.
async fn lag(
    consumer: &Arc<rdkafka::consumer::StreamConsumer>,
    topic: &str,
) -> Result<Vec<String>, rdkafka::error::KafkaError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{Offset, TopicPartitionList};
    const TIMEOUT: Duration = Duration::from_secs(5);
    let (consumer, topic) = (consumer.clone(), topic.to_string());
    // These calls block on the network; keep them off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        let mut partitions = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            match t.error().map(RDKafkaErrorCode::from) {
                None => {}
                // The broker answered: no topic yet means no validations yet.
                Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(Vec::new()),
                Some(code) => return Err(rdkafka::error::KafkaError::MetadataFetch(code)),
            }
            for p in t.partitions() {
                partitions.add_partition(&topic, p.id());
            }
        }
        let committed = consumer.committed_offsets(partitions, TIMEOUT)?;
        let mut behind = Vec::new();
        for element in committed.elements() {
            let (low, high) = consumer.fetch_watermarks(&topic, element.partition(), TIMEOUT)?;
            let at = match element.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            if at < high {
                behind.push(format!("{} {at}/{high}", element.partition()));
            }
        }
        Ok(behind)
    })
    .await
    .expect("the lag check does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::Currency;

    fn event(extra: &str) -> Vec<u8> {
        format!(
            "{{\"event_id\":\"e1\",\"device_id\":\"BUS-1\",\"device_seq\":4,\"card_id\":\"CARD1\",\
             \"occurred_at\":\"2026-11-26T10:00:00Z\",\"fare\":\"2950.00\",\"currency\":\"COP\",\
             \"route_id\":\"R1\",\"transport_operator_id\":\"TO1\"{extra}}}"
        )
        .into_bytes()
    }

    #[test]
    fn the_hotlist_version_is_kept_when_a_device_says_it_and_never_required() {
        let rules = MoneyRules::new(Currency::COP);
        assert_eq!(decode(&event(""), &rules).unwrap().hotlist_version, None);
        assert_eq!(
            decode(&event(",\"hotlist_version\":null"), &rules)
                .unwrap()
                .hotlist_version,
            None
        );
        assert_eq!(
            decode(&event(",\"hotlist_version\":17"), &rules)
                .unwrap()
                .hotlist_version,
            Some(17)
        );
        assert_eq!(
            decode(&event(",\"hotlist_version\":-1"), &rules).unwrap_err(),
            "hotlist_version: must not be negative"
        );
        assert!(
            decode(&event(",\"hotlist_version\":\"7\""), &rules)
                .unwrap_err()
                .starts_with("not a validation event: hotlist_version: invalid type")
        );
    }
}
