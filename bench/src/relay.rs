//! `recaudo-bench events`: the `publish-events` relay on a PostgreSQL outbox of N events
//! (written first, not timed), to the Kafka broker and to JSON lines, each pass from
//! position 0 with the sequencing included, beside the yardstick: the same records sent by
//! the relay's own Kafka sink (idempotent, `acks=all`) with no database at all.
//! BENCHMARKS.md records the results.

use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use events::CloudEvent;
use events::publish::{FileSink, Sink};
use ledger::correction::Conn;
use ledger::outbox::{EventType, NewEvent};
use ledger::{Ledger, LedgerSettings, OperatorId};

use crate::{OPERATORS, card_for};

pub struct EventsSettings {
    pub postgres_url: String,
    pub brokers: String,
    pub events: u64,
    pub batch: i64,
    pub settings: LedgerSettings,
}

pub async fn run(s: EventsSettings) -> anyhow::Result<()> {
    let db = crate::yardstick::fresh_database(&s.postgres_url)
        .await
        .context("creating the benchmark database")?;
    let ledger = ledger::connect(&db, s.settings).await?;
    let started = Instant::now();
    fill(&*ledger, s.events).await?;
    eprintln!(
        "wrote {} events to the outbox in {:.1} s (not timed)",
        s.events,
        started.elapsed().as_secs_f64()
    );
    let topic = format!("recaudo.bench.events.{}", uuid::Uuid::new_v4().simple());
    let mut kafka = events::kafka::KafkaSink::connect(&s.brokers, std::iter::empty(), &topic)
        .await
        .context("connecting to the broker")?;
    let relay_kafka = relay(&*ledger, &mut kafka, s.batch).await?;
    reset(&*ledger).await?;
    let dir = tempfile::tempdir()?;
    let mut file = FileSink::new(dir.path());
    let relay_file = relay(&*ledger, &mut file, s.batch).await?;
    let bodies = ledger
        .outbox_after(0, i64::try_from(s.events)?, &[])
        .await?
        .iter()
        .map(CloudEvent::from_outbox)
        .collect::<Vec<_>>();
    let bare = bare_producer(&s.brokers, &format!("{topic}.bare"), &bodies, s.batch).await?;

    let per_s = |secs: f64| s.events as f64 / secs;
    println!("| path | seconds | events/s |");
    println!("|---|---:|---:|");
    for (name, secs) in [
        ("relay -> Kafka (publish-events)", relay_kafka),
        ("relay -> JSON lines (embedded)", relay_file),
        ("yardstick: the Kafka sink alone, no database", bare),
    ] {
        println!("| {name} | {secs:.2} | {:.0} |", per_s(secs));
    }
    println!(
        "events={} batch={} kafka_eps={:.0} file_eps={:.0} producer_eps={:.0} ratio={:.2}",
        s.events,
        s.batch,
        per_s(relay_kafka),
        per_s(relay_file),
        per_s(bare),
        relay_kafka / bare
    );
    Ok(())
}

/// `n` sale events shaped as the ledger writes them, spread over the card pool.
async fn fill(ledger: &dyn Ledger, n: u64) -> anyhow::Result<()> {
    const CHUNK: u64 = 20_000;
    let ledger::Database::Postgres(pool) = ledger.database() else {
        anyhow::bail!("the events benchmark runs on PostgreSQL");
    };
    let mut written = 0;
    while written < n {
        let events: Vec<NewEvent> = (written..(written + CHUNK).min(n))
            .map(sale_event)
            .collect();
        let mut tx = pool.begin().await?;
        ledger::outbox::write(Conn::Postgres(&mut tx), &events).await?;
        tx.commit().await?;
        written += events.len() as u64;
    }
    Ok(())
}

fn sale_event(i: u64) -> NewEvent {
    let card = card_for(i);
    let operator = OperatorId::parse(&format!("OP{:03}", i % OPERATORS as u64)).expect("an id");
    let now = Utc::now();
    NewEvent {
        event_type: EventType::SaleRecorded,
        subject: ledger::outbox::card_subject(&card),
        time: now,
        data: serde_json::json!({
            "sale_id": i + 1,
            "operator_id": operator.as_str(),
            "operator_ref": format!("B{i:012}"),
            "card_id": card.as_str(),
            "amount": "2950.00",
            "currency": "COP",
            "card_balance": "10000.00",
            "point_of_sale": "POS-1",
            "occurred_at": now,
            "business_date": now.date_naive(),
            "transaction_id": i + 1,
        }),
        operator: Some(operator),
    }
}

/// One relay pass over the whole outbox, timed.
async fn relay(ledger: &dyn Ledger, sink: &mut dyn Sink, batch: i64) -> anyhow::Result<f64> {
    let started = Instant::now();
    events::publish::publish_pending(ledger, sink, batch, None).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Every event unsequenced again and the relay back at 0, for the next pass.
async fn reset(ledger: &dyn Ledger) -> anyhow::Result<()> {
    let ledger::Database::Postgres(pool) = ledger.database() else {
        anyhow::bail!("the events benchmark runs on PostgreSQL");
    };
    sqlx::query("UPDATE outbox SET position = NULL")
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM outbox_relays")
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE outbox").execute(pool).await?;
    Ok(())
}

/// The same records, batch by batch, through the relay's own Kafka sink: what the broker
/// and the producer cost without the database.
async fn bare_producer(
    brokers: &str,
    topic: &str,
    events: &[CloudEvent],
    batch: i64,
) -> anyhow::Result<f64> {
    let mut sink = events::kafka::KafkaSink::connect(brokers, std::iter::empty(), topic).await?;
    let started = Instant::now();
    for chunk in events.chunks(usize::try_from(batch.max(1))?) {
        sink.send(chunk).await?;
    }
    Ok(started.elapsed().as_secs_f64())
}
