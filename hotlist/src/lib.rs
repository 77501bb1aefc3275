//! The action list validators download (DESIGN.md, Hotlists): every blocked card, published
//! as gapless versions to the object store (`hotlists/v{n}/full.csv`, `delta.csv`,
//! `manifest.json`, then `hotlists/latest.json`) and as its changes to a compacted Kafka
//! topic (`recaudo.hotlist.v1`, key the card, a tombstone on unblock), so a device reading
//! the topic from the start holds the current list.
//!
//! Card status itself (blocks, unblocks, replacements) is the ledger's, because the paths
//! that move money read it under the same lock; this crate turns it into lists.
//!
//! - [`action_list`]: the list, its diff between versions, and the bytes of each file;
//! - [`publish`]: the `publish-hotlist` job, and its repair of a run that died half-way;
//! - `kafka` (feature `kafka`): the topic's producer.

pub mod action_list;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod publish;

pub use action_list::{Action, Change, Entry};
pub use publish::{HotlistError, PublishOutcome, TopicSink, catch_up_topic, publish};
