//! The outbox's relays as ops runs them (DESIGN.md, Events): `publish-events` (to Kafka, or
//! JSON lines under `var/outbox/` on the embedded defaults) and `deliver-webhooks`. Once,
//! recorded like every job, with `recaudo run`; continuously inside `recaudo schedule`,
//! where several schedulers may run and the job's lock (a lease, as for every job) lets one
//! relay while the others wait, so the order of each subject's events holds. And `recaudo
//! events tail`, for ops to watch the stream.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use events::CloudEvent;
use events::delivery::{self, DeliverySettings};
use events::publish::{self, FileSink, PublishError, Sink};
use ledger::outbox::EventType;
use settings::Settings;
use tokio::sync::watch;

use crate::job::{Job, JobContext, Outcome, StepError};
use crate::job_lock;

/// Bounded passes: the relay checks it still holds its lock between them.
const BATCHES_PER_PASS: u64 = 20;

/// The sink the configuration names: the Kafka topic when a broker is configured, else
/// JSON-lines files.
pub async fn open_sink(config: &Settings) -> Result<Box<dyn Sink>, PublishError> {
    Ok(match &config.kafka.brokers {
        Some(brokers) => Box::new(
            events::kafka::KafkaSink::connect(
                brokers,
                config.kafka.client.expose(),
                &config.events.topic,
            )
            .await?,
        ),
        None => Box::new(FileSink::new(&config.events.outbox_dir)),
    })
}

/// `publish-events`, once: everything there is, then done.
pub async fn publish_once(ctx: &JobContext) -> Result<Outcome, StepError> {
    let mut sink = open_sink(&ctx.config).await?;
    let done =
        publish::publish_pending(&*ctx.ledger, &mut *sink, ctx.config.events.batch, None).await?;
    Ok(Outcome {
        counts: [
            ("published".to_string(), done.events as i64),
            ("position".to_string(), done.position),
        ]
        .into(),
        note: format!(
            "{} events published to {} (position {})",
            done.events,
            where_to(&ctx.config),
            done.position
        ),
    })
}

fn where_to(config: &Settings) -> String {
    match config.kafka.brokers {
        Some(_) => format!("Kafka topic {}", config.events.topic),
        None => config.events.outbox_dir.display().to_string(),
    }
}

/// `deliver-webhooks`, once: what is due now (an endpoint waiting to retry is left alone).
pub async fn deliver_once(ctx: &JobContext) -> Result<Outcome, StepError> {
    let done =
        delivery::deliver_due(&*ctx.ledger, &DeliverySettings::from_settings(&ctx.config)).await?;
    Ok(Outcome {
        counts: [
            ("delivered".to_string(), done.delivered as i64),
            ("failed".to_string(), done.failed as i64),
            ("disabled".to_string(), done.disabled as i64),
        ]
        .into(),
        note: String::new(),
    })
}

/// Sleeps `d`; true when the stop came first.
async fn stopped_during(d: Duration, stopping: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => false,
        r = stopping.wait_for(|s| *s) => r.is_ok(),
    };
    stopped || *stopping.borrow()
}

/// Runs `job` (a relay) until the stop: takes its lock when it is free, relays every
/// `RECAUDO_EVENTS_POLL_MS` while holding it, and gives it back on the stop. A process that
/// dies stops renewing the lease, and another scheduler takes over when it runs out.
pub async fn run_continuously(
    ctx: JobContext,
    job: Job,
    holder: String,
    mut stopping: watch::Receiver<bool>,
) {
    let db = ctx.ledger.database();
    let lease_secs = ctx.config.jobs.lease.as_secs().max(3);
    let lease = chrono::Duration::seconds(lease_secs as i64);
    let poll = ctx.config.events.poll;
    let lock_id = uuid::Uuid::new_v4().to_string();
    let mut waiting_said = false;
    'lock: while !*stopping.borrow() {
        match job_lock::acquire(db, job.as_str(), "*", &holder, &lock_id, lease).await {
            Ok(Ok(())) => {}
            Ok(Err(other)) => {
                if !waiting_said {
                    tracing::info!(%job, holder = %other.holder, "another process relays; waiting for its lease");
                    waiting_said = true;
                }
                if stopped_during(Duration::from_secs(lease_secs / 3), &mut stopping).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(%job, error = %e, "taking the relay's lock");
                if stopped_during(poll, &mut stopping).await {
                    break;
                }
                continue;
            }
        }
        waiting_said = false;
        tracing::info!(%job, "relaying: this process holds the lock");
        let held = Arc::new(std::sync::Mutex::new(vec![(job, "*".to_string())]));
        let heartbeat =
            job_lock::Heartbeat::spawn(ctx.ledger.clone(), held, lock_id.clone(), lease);
        let mut sink: Option<Box<dyn Sink>> = None;
        let deliveries = DeliverySettings::from_settings(&ctx.config);
        loop {
            if heartbeat.lost() {
                tracing::error!(%job, "stopping until the relay's lock is free again");
                continue 'lock;
            }
            let pass: Result<(), StepError> = match job {
                Job::PublishEvents => {
                    async {
                        if sink.is_none() {
                            sink = Some(open_sink(&ctx.config).await?);
                        }
                        let sink = sink.as_mut().expect("just opened");
                        let max = BATCHES_PER_PASS * ctx.config.events.batch as u64;
                        publish::publish_pending(
                            &*ctx.ledger,
                            &mut **sink,
                            ctx.config.events.batch,
                            Some(max),
                        )
                        .await?;
                        Ok(())
                    }
                    .await
                }
                _ => delivery::deliver_due(&*ctx.ledger, &deliveries)
                    .await
                    .map(|_| ())
                    .map_err(StepError::from),
            };
            if let Err(e) = pass {
                tracing::warn!(%job, blame = %e.blame(), error = %e, "relay pass failed; trying again");
            }
            if stopped_during(poll, &mut stopping).await {
                break 'lock;
            }
        }
    }
    if let Err(e) = job_lock::release(db, job.as_str(), "*", &lock_id).await {
        tracing::warn!(%job, error = %e, "releasing the relay's lock");
    }
    tracing::info!(%job, "relay stopped");
}

#[derive(Args)]
pub struct TailArgs {
    /// Only events of this type (`sale.recorded` or `co.recaudo.sale.recorded.v1`); repeat
    /// for several.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Start at this position (as the table shows it); default: the last --limit events.
    #[arg(long)]
    pub from: Option<i64>,
    /// Events to show (without --follow).
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Keep watching for new events until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// JSON lines: each event as Kafka carries it, with its `position`.
    #[arg(long)]
    pub json: bool,
}

/// `recaudo events tail`.
pub async fn tail(args: TailArgs, config: &Settings) -> anyhow::Result<()> {
    let ledger = crate::open_ledger(config).await?;
    let mut types = Vec::new();
    for t in &args.types {
        match EventType::parse(t) {
            Some(t) => types.push(t),
            None => {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.short_name()).collect();
                crate::usage!("unknown event type {t:?}; types are {}", names.join(", "));
            }
        }
    }
    if args.limit < 1 {
        crate::usage!("--limit must be at least 1");
    }
    // Events get their positions from the relay; a tail with no relay running gives them.
    ledger.sequence_outbox(100_000).await?;
    let db = ledger.database();
    let mut events = match args.from {
        Some(p) => {
            ledger
                .outbox_after((p - 1).max(0), args.limit, &types)
                .await?
        }
        None => ledger::outbox::before(db, i64::MAX, args.limit, &types).await?,
    };
    let mut at = args.from.map_or(0, |p| (p - 1).max(0));
    if !args.json {
        println!(
            "{:>9}  {:<23}  {:<24}  {:<10}  subject",
            "position", "time (UTC)", "type", "operator"
        );
    }
    loop {
        for e in &events {
            print_event(e, args.json)?;
            at = e.position;
        }
        if !args.follow {
            if events.is_empty() && !args.json {
                println!("(no events)");
            }
            return Ok(());
        }
        if events.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ledger.sequence_outbox(100_000).await?;
        }
        events = ledger.outbox_after(at, 1_000, &types).await?;
    }
}

fn print_event(e: &ledger::outbox::OutboxEvent, json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(CloudEvent::from_outbox(e))?;
        value["position"] = e.position.into();
        println!("{value}");
    } else {
        let short =
            EventType::parse(&e.event_type).map_or(e.event_type.as_str(), |t| t.short_name());
        println!(
            "{:>9}  {:<23}  {:<24}  {:<10}  {}",
            e.position,
            e.time.format("%Y-%m-%d %H:%M:%S%.3f"),
            short,
            e.operator_id.as_deref().unwrap_or("-"),
            e.subject
        );
    }
    Ok(())
}
