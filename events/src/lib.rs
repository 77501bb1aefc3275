//! What other systems and operators hear of recaudo (DESIGN.md, Events). The ledger and the
//! other domain crates write each change's event to the outbox in the change's own
//! transaction (`ledger::outbox`); this crate carries them out from there:
//!
//! - [`cloudevent`]: an outbox row as a CloudEvents 1.0 structured JSON event;
//! - [`schema`]: the JSON Schema of each type's `data` (`events/schemas/`);
//! - [`publish`]: the `publish-events` relay, to Kafka ([`kafka`], feature `kafka`) or to
//!   JSON-lines files on the embedded defaults;
//! - [`webhook`], [`delivery`], [`signature`], [`ssrf`]: operators' endpoints, the
//!   `deliver-webhooks` relay, how deliveries are signed, and which URLs may be called.

pub mod cloudevent;
pub mod delivery;
pub mod internal_events;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod publish;
pub mod schema;
pub mod signature;
pub mod ssrf;
pub mod webhook;

pub use cloudevent::CloudEvent;
