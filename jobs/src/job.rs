//! The jobs ops runs, and what each does for one business date: `ingest-files`,
//! `ingest-validations`, `ingest-bank` (bank statements, then matching), `reconcile`,
//! `report`, and `settle` (the three in a row); `transfer-replacements` (replaced cards'
//! balances) and `publish-hotlist` (the blocked cards, to the field); and the outbox's relays, `publish-events` and `deliver-webhooks` (see
//! `relay`). Each
//! returns what it counted; an error says whether trying again may help (an external
//! system was down) or not (the data or the request is wrong, or a bug of ours).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fault::{Blame, Fault, RetryHint};
use settings::telemetry::InternalEvent;

use crate::internal_events::{LostTapsReported, ReconciliationCompleted};
use ledger::{BusinessDate, Ledger};
use reports::ReportKind;
use settings::Settings;
use storage::ObjectStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    IngestFiles,
    IngestValidations,
    IngestBank,
    Reconcile,
    Report,
    Settle,
    /// `settle --provisional`: the chain for a date that may not have closed, with a
    /// provisional report (nothing posted, `latest` untouched, the date not settled).
    SettleProvisional,
    /// The outbox's events out to Kafka (or JSON lines under `var/outbox/`).
    PublishEvents,
    /// Operators' webhook events out to their endpoints.
    DeliverWebhooks,
    /// Replaced cards' balances moved to their new cards, once the delay has passed.
    TransferReplacements,
    /// The action list of blocked cards to the object store and the compacted topic.
    PublishHotlist,
}

impl Job {
    pub const ALL: [Job; 10] = [
        Job::IngestFiles,
        Job::IngestValidations,
        Job::IngestBank,
        Job::Reconcile,
        Job::Report,
        Job::Settle,
        Job::PublishEvents,
        Job::DeliverWebhooks,
        Job::TransferReplacements,
        Job::PublishHotlist,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Job::IngestFiles => "ingest-files",
            Job::IngestValidations => "ingest-validations",
            Job::IngestBank => "ingest-bank",
            Job::Reconcile => "reconcile",
            Job::Report => "report",
            Job::Settle => "settle",
            Job::SettleProvisional => "settle-provisional",
            Job::PublishEvents => "publish-events",
            Job::DeliverWebhooks => "deliver-webhooks",
            Job::TransferReplacements => "transfer-replacements",
            Job::PublishHotlist => "publish-hotlist",
        }
    }

    pub fn parse(text: &str) -> Result<Job, String> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Job::ALL.iter().map(Job::as_str).collect();
                format!("unknown job {text:?}; jobs are {}", names.join(", "))
            })
    }

    /// Ingest and the relays take whatever has arrived, whatever its date; the others work
    /// on one date.
    pub fn is_dated(&self) -> bool {
        !matches!(
            self,
            Job::IngestFiles
                | Job::IngestValidations
                | Job::IngestBank
                | Job::PublishEvents
                | Job::DeliverWebhooks
                | Job::TransferReplacements
                | Job::PublishHotlist
        )
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run counted, by name (`files_accepted`, `exceptions`, ...).
pub type Counts = BTreeMap<String, i64>;

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub counts: Counts,
    /// One line for people: the run id made current, the report version published.
    pub note: String,
}

impl Outcome {
    /// One count of the run (zero when the run did not count it).
    pub fn count(&self, key: &str) -> i64 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

/// A failed step: its typed error, which says whose it is and whether the same run may
/// succeed later. The runner asks it, and never looks at the type underneath.
#[derive(Debug)]
pub struct StepError(Box<dyn Fault>);

impl StepError {
    pub fn blame(&self) -> Blame {
        self.0.blame()
    }

    pub fn retry(&self) -> RetryHint {
        self.0.retry()
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fault::chain(&*self.0))
    }
}

impl<E: Fault> From<E> for StepError {
    fn from(error: E) -> StepError {
        StepError(Box::new(error))
    }
}

/// A job asked for in a way it cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0} needs a business date (--date)")]
    NeedsDate(Job),
    #[error(
        "{date} has not closed yet (it closes at {closes_at}); a date is settled once its day \
         is over: look at it now with `recaudo run settle --date {date} --provisional`"
    )]
    DayOpen {
        date: BusinessDate,
        closes_at: String,
    },
}

/// Refuses a date whose day has not closed: its statements would leave out what is still
/// to come, and settling posts money.
pub fn ensure_closed(
    calendar: &ledger::BusinessCalendar,
    date: BusinessDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), RequestError> {
    if calendar.business_date(now) > date {
        return Ok(());
    }
    let closes = calendar.opens_at(date.succ());
    Err(RequestError::DayOpen {
        date,
        closes_at: format!(
            "{} {}",
            closes
                .with_timezone(&calendar.time_zone())
                .format("%Y-%m-%d %H:%M"),
            calendar.time_zone()
        ),
    })
}

impl Fault for RequestError {
    fn blame(&self) -> Blame {
        Blame::User
    }
}

/// What every job needs, opened once per process.
#[derive(Clone)]
pub struct JobContext {
    pub config: Settings,
    pub ledger: Arc<dyn Ledger>,
    pub store: Arc<dyn ObjectStore>,
}

impl JobContext {
    pub async fn open(config: &Settings) -> anyhow::Result<JobContext> {
        Ok(JobContext {
            config: config.clone(),
            ledger: crate::open_ledger(config).await?,
            store: crate::data_in::object_store(config).await?,
        })
    }
}

/// Runs one job once (no lock, no retry: see `runner`) as the job run `run_id`.
pub async fn execute(
    ctx: &JobContext,
    job: Job,
    date: Option<BusinessDate>,
    run_id: &str,
) -> Result<Outcome, StepError> {
    let dated = || date.ok_or(RequestError::NeedsDate(job));
    let calendar = &ctx.ledger.settings().calendar;
    let closed = |date| ensure_closed(calendar, date, chrono::Utc::now());
    let outcome = match job {
        Job::IngestFiles => ingest_files(ctx).await?,
        Job::IngestValidations => ingest_validations(ctx).await?,
        Job::IngestBank => ingest_bank(ctx).await?,
        Job::PublishEvents => crate::relay::publish_once(ctx).await?,
        Job::DeliverWebhooks => crate::relay::deliver_once(ctx).await?,
        Job::TransferReplacements => transfer_replacements(ctx).await?,
        Job::PublishHotlist => publish_hotlist(ctx).await?,
        Job::Reconcile => reconcile_date(ctx, dated()?).await?,
        Job::Report => {
            let date = dated()?;
            closed(date)?;
            report_date(ctx, date, ReportKind::Final, run_id).await?
        }
        Job::Settle | Job::SettleProvisional => {
            let date = dated()?;
            let kind = match job {
                Job::Settle => {
                    closed(date)?;
                    ReportKind::Final
                }
                _ => ReportKind::Provisional,
            };
            let mut all = Outcome::default();
            let mut notes = Vec::new();
            for (step, outcome) in [
                ("files", ingest_files(ctx).await?),
                ("validations", ingest_validations(ctx).await?),
                ("reconcile", reconcile_date(ctx, date).await?),
                ("report", report_date(ctx, date, kind, run_id).await?),
            ] {
                for (k, v) in outcome.counts {
                    all.counts.insert(format!("{step}.{k}"), v);
                }
                if !outcome.note.is_empty() {
                    notes.push(outcome.note);
                }
            }
            all.note = notes.join("; ");
            all
        }
    };
    Ok(outcome)
}

fn counts<const N: usize>(pairs: [(&str, i64); N]) -> Counts {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The run's note on the objects it rejected, kept under `kept_in` with their reports.
fn rejected_note(kept_in: &str, rejected: &[String]) -> String {
    if rejected.is_empty() {
        return String::new();
    }
    format!(
        "rejected (see {kept_in}/*.errors.json): {}",
        rejected.join(", ")
    )
}

async fn ingest_files(ctx: &JobContext) -> Result<Outcome, StepError> {
    let rules = ledger::MoneyRules::from_settings(&ctx.config.money)?;
    let report = ingest::ingest_files(&*ctx.store, &*ctx.ledger, rules).await?;
    // A rejected file is the operator's to fix: it is kept with its error report, counted
    // here, and does not fail the run (the other operators' files still go in).
    let note = rejected_note("rejected", &report.rejected);
    Ok(Outcome {
        counts: counts([
            ("accepted", report.accepted.len() as i64),
            ("rejected", report.rejected.len() as i64),
            ("already_ingested", report.duplicates.len() as i64),
            ("records", report.records as i64),
        ]),
        note,
    })
}

/// Bank statements in, then every new entry matched and posted. A rejected statement is
/// the bank's (or our settings') to fix: kept with its report, counted, not a failure.
async fn ingest_bank(ctx: &JobContext) -> Result<Outcome, StepError> {
    let rules = ledger::MoneyRules::from_settings(&ctx.config.money)?;
    let report = ingest::bank_files::ingest_statements(
        &*ctx.store,
        &*ctx.ledger,
        rules,
        &ctx.config.money.bank_accounts,
    )
    .await?;
    let matched = remittances::match_new_entries(&*ctx.ledger, chrono::Utc::now()).await?;
    let note = rejected_note("bank/rejected", &report.rejected);
    Ok(Outcome {
        counts: counts([
            ("accepted", report.accepted.len() as i64),
            ("rejected", report.rejected.len() as i64),
            ("already_ingested", report.duplicates.len() as i64),
            ("entries", report.records as i64),
            ("by_payer_account", matched.by_payer_account as i64),
            ("by_reference", matched.by_reference as i64),
            ("unidentified", matched.unidentified as i64),
            ("debits", matched.debits as i64),
        ]),
        note,
    })
}

async fn ingest_validations(ctx: &JobContext) -> Result<Outcome, StepError> {
    let rules = ledger::MoneyRules::from_settings(&ctx.config.money)?;
    let report = match crate::data_in::kafka_settings(&ctx.config) {
        Some(mut settings) => {
            settings.stop_when_idle = Some(Duration::from_secs(5));
            ingest::validations::ingest_from_kafka(&*ctx.ledger, &rules, &settings).await?
        }
        None => {
            ingest::validations::ingest_event_folder(
                &*ctx.ledger,
                &rules,
                &ctx.config.kafka.events_dir,
                5_000,
            )
            .await?
        }
    };
    Ok(Outcome {
        counts: counts([
            ("events", report.events as i64),
            ("posted", report.posted as i64),
            ("already_posted", report.duplicates as i64),
            ("dead_lettered", report.dead_lettered as i64),
        ]),
        note: String::new(),
    })
}

/// Moves the balance of every replacement whose delay has passed. The scheduler runs it
/// right after `ingest-validations`, so the taps of an old card received by then are posted
/// before its balance is read.
async fn transfer_replacements(ctx: &JobContext) -> Result<Outcome, StepError> {
    let moved = ctx.ledger.transfer_replacements(chrono::Utc::now()).await?;
    let amount: i64 = moved.iter().filter_map(|r| r.amount).map(|a| a.minor).sum();
    let empty = moved.iter().filter(|r| r.transaction_id.is_none()).count();
    Ok(Outcome {
        counts: counts([
            ("replacements", moved.len() as i64),
            ("nothing_to_move", empty as i64),
            ("amount_minor", amount),
        ]),
        note: String::new(),
    })
}

/// Publishes the action list when it changed, then catches the topic up with the store
/// (when a broker is configured): the store first, so a broker that is down delays only the
/// topic, and the next run sends what it missed.
async fn publish_hotlist(ctx: &JobContext) -> Result<Outcome, StepError> {
    let out = hotlist::publish(&*ctx.ledger, &*ctx.store, chrono::Utc::now()).await?;
    let mut sent = Vec::new();
    if let Some(brokers) = &ctx.config.kafka.brokers {
        let mut topic = hotlist::kafka::KafkaTopic::connect(
            brokers,
            ctx.config.kafka.client.expose(),
            &ctx.config.hotlist.topic,
        )
        .await?;
        sent = hotlist::catch_up_topic(&*ctx.ledger, &mut topic).await?;
    }
    let note = match out.published {
        Some(v) => format!("published hotlist v{v}"),
        None => format!("hotlist unchanged at v{}", out.latest),
    };
    Ok(Outcome {
        counts: counts([
            ("version", out.latest),
            ("cards", out.cards as i64),
            ("added", out.added as i64),
            ("removed", out.removed as i64),
            ("versions_to_topic", sent.len() as i64),
        ]),
        note,
    })
}

async fn reconcile_date(ctx: &JobContext, date: BusinessDate) -> Result<Outcome, StepError> {
    let currency = ledger::MoneyRules::from_settings(&ctx.config.money)?.currency;
    let (run_id, result) = crate::reconciliation::reconcile_and_save(
        ctx.ledger.database(),
        &*ctx.store,
        date,
        currency,
        None,
    )
    .await?;
    let summaries = result.operator_summaries()?;
    let mut cases = BTreeMap::new();
    for s in &summaries {
        for (case, n) in &s.counts {
            *cases.entry(case.clone()).or_insert(0) += n;
        }
    }
    ReconciliationCompleted {
        run_id: &run_id.to_string(),
        date,
        cases: &cases,
    }
    .emit();
    Ok(Outcome {
        counts: counts([
            ("items", result.items as i64),
            ("exceptions", summaries.iter().map(|s| s.exceptions()).sum()),
            ("operators", summaries.len() as i64),
        ]),
        note: format!("reconciliation run {run_id} is current for {date}"),
    })
}

async fn report_date(
    ctx: &JobContext,
    date: BusinessDate,
    kind: ReportKind,
    run_id: &str,
) -> Result<Outcome, StepError> {
    let (statement, published) = reports::report(
        &*ctx.ledger,
        &*ctx.store,
        date,
        ledger::MoneyRules::from_settings(&ctx.config.money)?.currency,
        ledger::business_date::holidays(&ctx.config.calendar),
        kind,
        run_id,
    )
    .await?;
    LostTapsReported {
        date,
        taps: statement
            .gaps
            .iter()
            .map(|g| g.to_seq - g.from_seq + 1)
            .sum(),
    }
    .emit();
    Ok(Outcome {
        counts: counts([
            ("operators", statement.lines.len() as i64),
            ("discrepancies", statement.discrepancies.height() as i64),
            ("version", i64::from(published.version)),
        ]),
        note: match kind {
            ReportKind::Final => format!("reports published under {}", published.prefix),
            ReportKind::Provisional => format!(
                "PROVISIONAL reports under {} (nothing posted, the date is not settled)",
                published.prefix
            ),
        },
    })
}
