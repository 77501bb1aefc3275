//! The JSON Schema (draft 2020-12) of each event type's `data`, committed under
//! `events/schemas/` as `{noun}.{verb}.v1.json` and compiled in, so what the schemas say
//! and what the binaries ship never differ. The test suite validates every event it
//! produces against them; a change that breaks an existing event fails there.

use ledger::outbox::EventType;

macro_rules! schemas {
    ($($t:ident => $file:literal),* $(,)?) => {
        /// Each event type with its schema's text.
        pub const SCHEMAS: &[(EventType, &str)] = &[
            $((EventType::$t, include_str!(concat!("../schemas/", $file)))),*
        ];
    };
}

schemas! {
    SaleRecorded => "sale.recorded.v1.json",
    SaleVoided => "sale.voided.v1.json",
    PaymentRecorded => "payment.recorded.v1.json",
    ValidationsPosted => "validations.posted.v1.json",
    OperatorFileAccepted => "operator_file.accepted.v1.json",
    OperatorFileRejected => "operator_file.rejected.v1.json",
    ReconciliationCompleted => "reconciliation.completed.v1.json",
    SettlementPublished => "settlement.published.v1.json",
    ExceptionOpened => "exception.opened.v1.json",
    ExceptionDisputed => "exception.disputed.v1.json",
    ExceptionResolved => "exception.resolved.v1.json",
    RemittanceApplied => "remittance.applied.v1.json",
    CardBlocked => "card.blocked.v1.json",
    CardUnblocked => "card.unblocked.v1.json",
    CardReplaced => "card.replaced.v1.json",
}

/// The schema of `event_type`'s data.
pub fn of(event_type: EventType) -> &'static str {
    SCHEMAS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, text)| *text)
        .expect("every event type has a schema (see the test below)")
}

/// The file under `events/schemas/` that holds `event_type`'s schema.
pub fn file_name(event_type: EventType) -> String {
    format!("{}.v1.json", event_type.short_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_its_own_schema_titled_with_its_name() {
        for t in EventType::ALL {
            let found: Vec<_> = SCHEMAS.iter().filter(|(s, _)| *s == t).collect();
            assert_eq!(found.len(), 1, "{t:?}");
            let schema: serde_json::Value = serde_json::from_str(of(t)).expect("JSON");
            assert_eq!(schema["title"], t.name(), "{}", file_name(t));
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
            assert_eq!(schema["additionalProperties"], false, "{}", file_name(t));
        }
    }
}
