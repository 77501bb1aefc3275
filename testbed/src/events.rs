//! Every event a test produced, checked against its committed JSON Schema with a real
//! validator (DESIGN.md, Events: the schemas are the contract consumers code against).

use std::collections::HashMap;

use ledger::Ledger;
use ledger::outbox::EventType;

/// The compiled validators of every event type.
pub struct Validators(HashMap<&'static str, jsonschema::Validator>);

impl Validators {
    /// The committed schemas (`events/schemas/`).
    pub fn committed() -> Validators {
        Validators::from(
            events::schema::SCHEMAS
                .iter()
                .map(|(t, text)| (*t, serde_json::from_str(text).expect("a schema is JSON"))),
        )
    }

    /// Validators of the given schemas (a test may hand in a changed one).
    pub fn from(schemas: impl IntoIterator<Item = (EventType, serde_json::Value)>) -> Validators {
        Validators(
            schemas
                .into_iter()
                .map(|(t, schema)| {
                    let validator = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .unwrap_or_else(|e| panic!("the schema of {} is not valid: {e}", t.name()));
                    (t.name(), validator)
                })
                .collect(),
        )
    }

    /// What is wrong with `data` as an event of `event_type`, one line per error.
    pub fn errors(&self, event_type: &str, data: &serde_json::Value) -> Vec<String> {
        match self.0.get(event_type) {
            None => vec![format!("{event_type} has no schema")],
            Some(v) => v
                .iter_errors(data)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect(),
        }
    }
}

/// Asserts that every event in `ledger`'s outbox (sequenced or not) validates against its
/// schema; returns how many there were.
pub async fn assert_valid(ledger: &dyn Ledger) -> usize {
    let rows: Vec<(i64, String, String)> = ledger::on_pool!(ledger.database(), pool => {
        let sql = match ledger.database() {
            ledger::Database::Postgres(_) => "SELECT id, type, data::text FROM outbox ORDER BY id",
            ledger::Database::Sqlite(_) => "SELECT id, type, data FROM outbox ORDER BY id",
        };
        sqlx::query_as(sql).fetch_all(pool).await.expect("the outbox")
    });
    let validators = Validators::committed();
    let mut wrong = Vec::new();
    for (id, event_type, data) in &rows {
        let data: serde_json::Value = serde_json::from_str(data).expect("an event's data is JSON");
        for e in validators.errors(event_type, &data) {
            wrong.push(format!("event {id} ({event_type}) {e}\n  data: {data}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "events that do not match their schema:\n{}",
        wrong.join("\n")
    );
    rows.len()
}

/// The `data` of every event of `types` in `ledger`'s outbox, in the order written, each
/// with its short type name (`exception.opened`).
pub async fn written(ledger: &dyn Ledger, types: &[EventType]) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, String)> = ledger::on_pool!(ledger.database(), pool => {
        let sql = match ledger.database() {
            ledger::Database::Postgres(_) => "SELECT type, data::text FROM outbox ORDER BY id",
            ledger::Database::Sqlite(_) => "SELECT type, data FROM outbox ORDER BY id",
        };
        sqlx::query_as(sql).fetch_all(pool).await.expect("the outbox")
    });
    rows.into_iter()
        .filter_map(|(t, data)| {
            let t = EventType::parse(&t).filter(|t| types.contains(t))?;
            let data = serde_json::from_str(&data).expect("an event's data is JSON");
            Some((t.short_name().to_string(), data))
        })
        .collect()
}
