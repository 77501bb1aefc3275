//! The Kafka sink of `publish-events`: each event to the topic (`recaudo.events.v1`) keyed
//! by its subject, so one card's or operator's events land on one partition in order. The
//! producer is idempotent (the broker drops a retried duplicate and keeps the order of a
//! partition through retries); a batch counts as sent only when the broker acknowledged
//! every record of it.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::CloudEvent;
use crate::publish::{PublishError, Sink};

/// How long the broker may take to acknowledge a record before the batch fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Partitions of a topic this relay creates (an existing topic is left as it is).
const PARTITIONS: i32 = 3;

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// A producer for `brokers` with the configured client options (security, SASL).
    pub async fn connect<'a>(
        brokers: &str,
        options: impl Iterator<Item = (&'a str, &'a str)>,
        topic: &str,
    ) -> Result<KafkaSink, PublishError> {
        let client = idempotent_producer_client(brokers, options, DELIVERY_TIMEOUT);
        ensure_topic(&client, topic).await?;
        let producer = client
            .create()
            .map_err(|e| PublishError::Kafka(format!("creating the producer: {e}")))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_string(),
        })
    }
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn send(&mut self, events: &[CloudEvent]) -> Result<(), PublishError> {
        let bodies: Vec<Vec<u8>> = events.iter().map(CloudEvent::to_json).collect();
        // Each future enqueues its record when first polled; join_all polls them in order,
        // so records are handed to the producer in outbox order.
        let sends = events.iter().zip(&bodies).map(|(e, body)| {
            self.producer.send(
                FutureRecord::to(&self.topic).key(&e.subject).payload(body),
                DELIVERY_TIMEOUT,
            )
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| {
                PublishError::Kafka(format!("producing to {}: {e}", self.topic))
            })?;
        }
        Ok(())
    }
}

/// A client for a producer on `brokers` with the shared `RECAUDO_KAFKA_*` options
/// (security, SASL) but those only a consumer takes, which a producer would refuse.
pub fn producer_client<'a>(
    brokers: &str,
    options: impl Iterator<Item = (&'a str, &'a str)>,
) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", brokers);
    for (k, v) in options {
        if !k.starts_with("max.poll") && !k.starts_with("session.") && !k.starts_with("auto.") {
            client.set(k, v);
        }
    }
    client
}

/// [`producer_client`] for an idempotent producer: every record acknowledged by all
/// replicas, a retried duplicate dropped by the broker, a partition's order kept through
/// retries, and a record that is not acknowledged within `delivery_timeout` failed.
pub fn idempotent_producer_client<'a>(
    brokers: &str,
    options: impl Iterator<Item = (&'a str, &'a str)>,
    delivery_timeout: Duration,
) -> ClientConfig {
    let mut client = producer_client(brokers, options);
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        );
    client
}

/// Creates `topic` when the broker does not have it, with the broker's default replication
/// (a single broker, as in development, may refuse that: then one replica); an existing
/// topic is left as it is.
pub async fn ensure_topic(client: &ClientConfig, topic: &str) -> Result<(), PublishError> {
    ensure_topic_with(client, topic, &[]).await
}

/// As [`ensure_topic`], with topic configuration for a topic it creates
/// (`cleanup.policy=compact` for the hotlist's).
pub async fn ensure_topic_with(
    client: &ClientConfig,
    topic: &str,
    config: &[(&str, &str)],
) -> Result<(), PublishError> {
    let admin: AdminClient<DefaultClientContext> = client
        .create()
        .map_err(|e| PublishError::Kafka(format!("creating the admin client: {e}")))?;
    let mut last = None;
    for replication in [-1, 1] {
        let mut new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(replication));
        for (k, v) in config {
            new = new.set(k, v);
        }
        let results = admin
            .create_topics(&[new], &AdminOptions::new())
            .await
            .map_err(|e| PublishError::Kafka(format!("creating topic {topic}: {e}")))?;
        match results.into_iter().next() {
            None | Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                return Ok(());
            }
            Some(Err((_, code))) => last = Some(code),
        }
    }
    Err(PublishError::Kafka(format!(
        "creating topic {topic}: {}",
        last.expect("an attempt failed")
    )))
}
