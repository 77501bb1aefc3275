//! An outbox row as a CloudEvents 1.0 event in structured JSON mode: the envelope's
//! attributes beside the event's `data`. The `id` is the outbox row's, so a consumer that
//! hears an event twice (the relays deliver at least once) drops the second by its id.

use chrono::{DateTime, Utc};
use ledger::outbox::{OutboxEvent, SOURCE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SPEC_VERSION: &str = "1.0";
/// The media type of `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The media type of a whole event in structured mode (a webhook's body).
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// Keys of `data` that hold card numbers: removed from what leaves for a webhook.
const CARD_KEYS: [&str; 4] = ["card_id", "card_ids", "old_card_id", "new_card_id"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    pub data: Value,
}

impl CloudEvent {
    pub fn from_outbox(event: &OutboxEvent) -> CloudEvent {
        CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: event.id.to_string(),
            source: SOURCE.into(),
            event_type: event.event_type.clone(),
            subject: event.subject.clone(),
            time: event.time,
            datacontenttype: DATA_CONTENT_TYPE.into(),
            data: event.data.clone(),
        }
    }

    /// The event as an operator's webhook receives it: no card number travels outside
    /// (DESIGN.md, Events), so card keys leave `data` and a card subject becomes the
    /// operator's.
    pub fn for_webhook(mut self, operator: &str) -> CloudEvent {
        redact_cards(&mut self.data);
        if self.subject.starts_with("card/") {
            self.subject = format!("operator/{operator}");
        }
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serializes")
    }
}

fn redact_cards(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !CARD_KEYS.contains(&k.as_str()));
            map.values_mut().for_each(redact_cards);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_cards),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subject: &str, data: Value) -> OutboxEvent {
        OutboxEvent {
            id: 7,
            position: 3,
            event_type: "co.recaudo.exception.opened.v1".into(),
            subject: subject.into(),
            operator_id: Some("OP001".into()),
            time: "2026-12-01T10:00:00Z".parse().unwrap(),
            data,
            created_at: "2026-12-01T10:00:01Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_envelope_has_every_required_attribute() {
        let e = CloudEvent::from_outbox(&event("operator/OP001", serde_json::json!({"a": 1})));
        let json: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], "7");
        assert_eq!(json["source"], "recaudo");
        assert_eq!(json["type"], "co.recaudo.exception.opened.v1");
        assert_eq!(json["subject"], "operator/OP001");
        assert_eq!(json["time"], "2026-12-01T10:00:00Z");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"]["a"], 1);
    }

    #[test]
    fn a_webhook_never_carries_a_card_number() {
        let data = serde_json::json!({
            "case_id": 9,
            "card_id": "CARD0001",
            "items": [{"card_id": "CARD0002", "amount": "1.00"}],
            "card_ids": ["CARD0003"],
        });
        let e = CloudEvent::from_outbox(&event("card/CARD0001", data)).for_webhook("OP001");
        let text = String::from_utf8(e.to_json()).unwrap();
        assert!(!text.contains("CARD000"), "{text}");
        assert_eq!(e.subject, "operator/OP001");
        assert_eq!(e.data["items"][0]["amount"], "1.00");
        assert_eq!(e.data["case_id"], 9);
    }
}
