//! `recaudo fixtures` and `recaudo ingest`: make a synthetic day, and take operator files
//! and validation events in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use fixtures::{Fixture, FixtureConfig};
use ingest::validations::{KafkaSettings, ingest_event_folder, ingest_from_kafka};
use ledger::BusinessDate;
use settings::Settings;
use storage::ObjectStore;

#[derive(Args)]
pub struct FixturesArgs {
    /// Business date of the day to generate.
    #[arg(long)]
    pub date: String,
    /// Sales in the day.
    #[arg(long, default_value_t = 100_000)]
    pub sales: u64,
    /// Validations in the day (default: twice the sales).
    #[arg(long)]
    pub validations: Option<u64>,
    #[arg(long, default_value_t = 20)]
    pub operators: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Sales with an injected discrepancy, per mille.
    #[arg(long, default_value_t = 20)]
    pub discrepancies_per_mille: u64,
    /// Also write a file that must be rejected whole.
    #[arg(long)]
    pub whole_file_defect: bool,
    /// Folder for incoming/, events/ and truth.json.
    #[arg(long, default_value = "var/fixtures")]
    pub out: PathBuf,
    /// Register the operators in the database (existing ones are left as they are).
    #[arg(long)]
    pub register: bool,
    /// Record the ledger's side (sales and voids) as the online API would.
    #[arg(long)]
    pub post_ledger: bool,
    /// Put the operator files in the object store and the events where ingest reads them
    /// (the Kafka topic when RECAUDO_KAFKA_BROKERS is set, else RECAUDO_EVENTS_DIR).
    #[arg(long)]
    pub publish: bool,
}

#[derive(Subcommand)]
pub enum IngestCommand {
    /// Ingest every operator file waiting under incoming/ in the object store.
    Files,
    /// Ingest validation events: from Kafka when RECAUDO_KAFKA_BROKERS is set (until the
    /// topic is idle), else from the JSON-lines files in RECAUDO_EVENTS_DIR.
    Validations {
        /// Stop after the topic has been idle this many seconds.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
    },
}

pub async fn object_store(config: &Settings) -> anyhow::Result<Arc<dyn ObjectStore>> {
    storage::open(&config.store.url, config.store.sse_kms_key_id.clone())
        .await
        .with_context(|| format!("opening the object store {}", config.store.url))
}

/// The Kafka consumer's settings from the configuration (`RECAUDO_KAFKA_*`); `None`
/// when no broker is configured and events come from the event folder.
pub fn kafka_settings(config: &Settings) -> Option<KafkaSettings> {
    let kafka = &config.kafka;
    let mut settings = KafkaSettings::new(kafka.brokers.as_deref()?, &kafka.group);
    settings.topic = kafka.topic.clone();
    for (key, value) in kafka.client.expose() {
        settings.client.insert(key.to_string(), value.to_string());
    }
    Some(settings)
}

pub async fn fixtures(args: FixturesArgs, config: &Settings) -> anyhow::Result<()> {
    let date = BusinessDate::parse(&args.date)?;
    let mut fc = FixtureConfig::new(args.seed, date, args.sales);
    fc.calendar = ledger::LedgerSettings::from_settings(config)?.calendar;
    fc.operators = args.operators.max(1);
    fc.discrepancy_per_mille = args.discrepancies_per_mille;
    fc.whole_file_defect = args.whole_file_defect;
    if let Some(v) = args.validations {
        fc.validations = v;
    }
    let fixture = Fixture::new(fc);
    let truth = fixture.write_day(&args.out)?;
    println!(
        "wrote {} sales, {} operator files ({} to be rejected), {} events and truth.json under {}",
        truth.sales,
        truth.accepted_files.len() + truth.rejected_files.len(),
        truth.rejected_files.len(),
        truth.events,
        args.out.display()
    );
    if args.register || args.post_ledger {
        let ledger = crate::open_ledger(config).await?;
        fixture.register_operators(&*ledger).await?;
        if args.post_ledger {
            let (sales, voids) = fixture.record_ledger_side(&*ledger).await?;
            println!("recorded {sales} sales and {voids} voids in the ledger");
        }
    }
    if args.publish {
        publish(&fixture, &truth, &args.out, config).await?;
    }
    Ok(())
}

pub(crate) async fn publish(
    fixture: &Fixture,
    truth: &fixtures::Truth,
    out: &std::path::Path,
    config: &Settings,
) -> anyhow::Result<()> {
    let store = object_store(config).await?;
    for key in truth.accepted_files.iter().chain(&truth.rejected_files) {
        let body = tokio::fs::read(out.join(key)).await?;
        store.put(key, Bytes::from(body)).await?;
    }
    println!(
        "put {} operator files under incoming/ in {}",
        truth.accepted_files.len() + truth.rejected_files.len(),
        store.describe()
    );
    match kafka_settings(config) {
        Some(settings) => {
            let produced = produce(fixture, &settings).await?;
            println!("produced {produced} events to {}", settings.topic);
        }
        None => {
            tokio::fs::create_dir_all(&config.kafka.events_dir).await?;
            for entry in std::fs::read_dir(out.join("events"))? {
                let entry = entry?;
                tokio::fs::copy(
                    entry.path(),
                    config.kafka.events_dir.join(entry.file_name()),
                )
                .await?;
            }
            println!("copied the events to {}", config.kafka.events_dir.display());
        }
    }
    Ok(())
}

pub async fn produce(fixture: &Fixture, settings: &KafkaSettings) -> anyhow::Result<u64> {
    use futures::StreamExt;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let options = settings
        .client
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let mut client = events::kafka::producer_client(&settings.brokers, options);
    client
        .set("enable.idempotence", "true")
        .set("linger.ms", "20");
    events::kafka::ensure_topic(&client, &settings.topic).await?;
    let producer: FutureProducer = client.create()?;
    let sent: Vec<anyhow::Result<()>> = futures::stream::iter(fixture.events())
        .map(|e| {
            let producer = producer.clone();
            let topic = settings.topic.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&e.key).payload(&e.value),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| anyhow::anyhow!("producing to Kafka: {e}"))?;
                Ok(())
            }
        })
        .buffer_unordered(1_000)
        .collect()
        .await;
    let mut n = 0;
    for r in sent {
        r?;
        n += 1;
    }
    Ok(n)
}

pub async fn ingest(cmd: IngestCommand, config: &Settings) -> anyhow::Result<()> {
    let ledger = crate::open_ledger(config).await?;
    let rules = ledger::MoneyRules::from_settings(&config.money)?;
    match cmd {
        IngestCommand::Files => {
            let store = object_store(config).await?;
            let report = ingest::ingest_files(&*store, &*ledger, rules).await?;
            println!(
                "operator files: {} accepted ({} records), {} rejected, {} already ingested",
                report.accepted.len(),
                report.records,
                report.rejected.len(),
                report.duplicates.len()
            );
            for key in &report.rejected {
                println!(
                    "  rejected {key}: see rejected/…{}.errors.json",
                    key.trim_start_matches("incoming")
                );
            }
        }
        IngestCommand::Validations { idle_secs } => {
            let report = match kafka_settings(config) {
                Some(mut settings) => {
                    settings.stop_when_idle = Some(Duration::from_secs(idle_secs));
                    ingest_from_kafka(&*ledger, &rules, &settings).await?
                }
                None => {
                    ingest_event_folder(&*ledger, &rules, &config.kafka.events_dir, 5_000).await?
                }
            };
            println!(
                "validations: {} events, {} posted, {} already posted, {} dead-lettered",
                report.events, report.posted, report.duplicates, report.dead_lettered
            );
        }
    }
    Ok(())
}
