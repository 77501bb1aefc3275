//! The compacted topic of the action list (`recaudo.hotlist.v1`): key the card number,
//! value the block record (`card_id`, `reason`, `blocked_at`, `version`), a tombstone (no
//! value) when the card is no longer blocked. Compaction keeps the last record of each
//! card, so a device that reads the topic from the start holds the current list. The
//! producer is idempotent, and one card's records keep their order on its partition.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::action_list::{Action, Change, timestamp};
use crate::publish::{HotlistError, TopicSink};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct KafkaTopic {
    producer: FutureProducer,
    topic: String,
}

impl KafkaTopic {
    /// A producer for `brokers` with the configured client options; creates the topic,
    /// compacted, when the broker does not have it.
    pub async fn connect<'a>(
        brokers: &str,
        options: impl Iterator<Item = (&'a str, &'a str)>,
        topic: &str,
    ) -> Result<KafkaTopic, HotlistError> {
        let client = events::kafka::idempotent_producer_client(brokers, options, DELIVERY_TIMEOUT);
        events::kafka::ensure_topic_with(&client, topic, &[("cleanup.policy", "compact")])
            .await
            .map_err(|e| HotlistError::Topic(e.to_string()))?;
        let producer = client
            .create()
            .map_err(|e| HotlistError::Topic(format!("creating the producer: {e}")))?;
        Ok(KafkaTopic {
            producer,
            topic: topic.to_string(),
        })
    }
}

/// The value of an ADD: the block as the field applies it.
pub fn record(version: i64, change: &Change) -> Option<Vec<u8>> {
    match change.action {
        Action::Remove => None,
        Action::Add => Some(
            serde_json::to_vec(&serde_json::json!({
                "card_id": change.card_id,
                "reason": change.reason,
                "blocked_at": timestamp(change.at),
                "version": version,
            }))
            .expect("a record serializes"),
        ),
    }
}

#[async_trait::async_trait]
impl TopicSink for KafkaTopic {
    async fn send(&mut self, version: i64, changes: &[Change]) -> Result<(), HotlistError> {
        let values: Vec<Option<Vec<u8>>> = changes.iter().map(|c| record(version, c)).collect();
        // Each future enqueues its record when first polled; join_all polls them in order.
        let sends = changes.iter().zip(&values).map(|(c, value)| {
            let mut r = FutureRecord::<str, [u8]>::to(&self.topic).key(c.card_id.as_str());
            if let Some(v) = value {
                r = r.payload(v.as_slice());
            }
            self.producer.send(r, DELIVERY_TIMEOUT)
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| {
                HotlistError::Topic(format!("producing to {}: {e}", self.topic))
            })?;
        }
        Ok(())
    }
}
