//! `recaudo-bench`: every measurement of recaudo that anyone can run, each printing a table
//! with its yardstick beside it (pgbench, DuckDB). The numbers in BENCHMARKS.md come from
//! here. Not part of the product: the binaries ops deploy carry none of this.

mod api;
mod hotlist;
mod reconcile;
mod relay;
mod remittances;
mod report;
mod settle;
mod yardstick;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use ledger::journal::{NewSale, Validation};
use ledger::{
    CardId, DeviceId, Ledger, LedgerSettings, Money, Operator, OperatorId, OperatorName,
    OperatorRef, PointOfSale, Rate, RouteId, TransportOperatorId, VoidWindow,
};
use settings::{Settings, redact_url};

// The reconciliation engine runs on the product's allocator, set up the same way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "recaudo-bench",
    version,
    about = "recaudo's benchmarks, each beside its yardstick (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Online sales per second at 1, 8 and 32 concurrent clients and validations per second
    /// posted in batches, on fresh PostgreSQL and SQLite databases, with pgbench's tpcb-like
    /// run against the same PostgreSQL server as the yardstick.
    Ledger(LedgerArgs),
    /// The real HTTP server on a fresh PostgreSQL database, driven by concurrent connections
    /// making sales (sales/s, p50/p99 latency), beside pgbench's tpcb-like run.
    Api(ApiArgs),
    /// Operator-file ingest of one large file into PostgreSQL (records/s, MB/s, peak
    /// memory), and validations from the Kafka broker into PostgreSQL (validations/s).
    Ingest(IngestArgs),
    /// The reconciliation engine on N records per side from Parquet (generated with the
    /// fixtures), timed with its peak memory, beside DuckDB's equivalent SQL on the same
    /// files, the two taking turns. The last line reads
    /// `rows=N seconds=S peak_mib=M duckdb_seconds=D ratio=S/D` (median times, highest peak).
    Reconcile(ReconcileBenchArgs),
    /// The settlement reports of one date with N sales over M operators, read from a fresh
    /// PostgreSQL database and written to a local folder, step by step. The last line reads
    /// `sales=N operators=M seconds=S peak_mib=P`.
    Report(ReportBenchArgs),
    /// The nightly settle of a city-scale day on PostgreSQL: the day built (not timed), then
    /// `ingest-files`, `reconcile` and `report` timed as ops runs them, each its own
    /// process (peak RSS each), beside the yardstick: PostgreSQL's COPY out of the reconcile
    /// job's inputs and COPY in of the rows it keeps. The last line reads `sales=N ingest_s=A
    /// reconcile_s=B report_s=C peak_mib=M yardstick_s=Y ratio=B/Y`. Needs `recaudo` built
    /// beside it (`cargo build --release -p jobs -p bench`).
    Settle(SettleBenchArgs),
    /// Bank statements (camt.053) of N entries over M operators taken in, matched and posted
    /// on a fresh PostgreSQL database, step by step with the peak memory, beside PostgreSQL's
    /// COPY of the same rows. The last line reads `entries=N … entries_per_s=R peak_mib=P
    /// yardstick_s=Y ratio=S/Y`.
    Remittances(RemittanceBenchArgs),
    /// The `publish-events` relay on a PostgreSQL outbox of N events, to the Kafka broker
    /// and to JSON lines, beside the relay's Kafka sink sending the same records with no
    /// database. The last line reads `events=N batch=B kafka_eps=K file_eps=F
    /// producer_eps=P ratio=relay/producer` (seconds over seconds).
    Events(EventsBenchArgs),
    /// The action list of N blocked cards published by `recaudo run publish-hotlist` on
    /// PostgreSQL (its own process: wall time, peak RSS, bytes written), first whole, then
    /// after a delta of D cards, beside PostgreSQL's COPY out of the lists the job reads.
    /// The last line reads `cards=N delta=D setup_s=… publish_s=S peak_mib=M bytes=B
    /// yardstick_s=Y ratio=S/Y`. Needs `recaudo` built beside it.
    Hotlist(HotlistBenchArgs),
    /// Writes the Parquet inputs of `bench reconcile` (its first child process).
    #[command(hide = true)]
    ReconcileGenerate { rows: u64, dir: std::path::PathBuf },
    /// Runs the engine alone on two Parquet files (the child process of `bench reconcile`).
    #[command(hide = true)]
    ReconcileEngine {
        ledger: String,
        file: String,
        out: String,
        date: i32,
    },
}

/// The PostgreSQL server a benchmark measures.
#[derive(Args)]
struct Server {
    /// PostgreSQL server to measure (a fresh database is created on it).
    #[arg(
        long,
        env = "RECAUDO_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
}

#[derive(Args)]
struct ApiArgs {
    #[command(flatten)]
    server: Server,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to drive the server (and to run pgbench).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Args)]
struct HotlistBenchArgs {
    #[command(flatten)]
    server: Server,
    /// Blocked cards on the list.
    #[arg(long, default_value_t = 1_000_000)]
    cards: u64,
    /// Cards that change between the two versions (half unblocked, half newly blocked).
    #[arg(long, default_value_t = 10_000)]
    delta: u64,
}

#[derive(Args)]
struct EventsBenchArgs {
    #[command(flatten)]
    server: Server,
    /// Kafka brokers.
    #[arg(
        long,
        env = "RECAUDO_TEST_KAFKA_BROKERS",
        default_value = "127.0.0.1:19092"
    )]
    brokers: String,
    /// Events in the outbox.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events per relay batch (default: the configured `RECAUDO_EVENTS_BATCH`).
    #[arg(long)]
    batch: Option<i64>,
}

#[derive(Args)]
struct RemittanceBenchArgs {
    #[command(flatten)]
    server: Server,
    /// Bank entries in all.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Operators paying.
    #[arg(long, default_value_t = 500)]
    operators: usize,
}

#[derive(Args)]
struct ReconcileBenchArgs {
    /// Records per side.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Folder for the Parquet inputs and outputs (default: a temporary folder).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Runs of each engine, taking turns; the summary line shows the median times.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

#[derive(Args)]
struct ReportBenchArgs {
    #[command(flatten)]
    server: Server,
    #[arg(long, default_value_t = 10_000_000)]
    sales: u64,
    #[arg(long, default_value_t = 500)]
    operators: usize,
    #[arg(long, default_value_t = 2_000_000)]
    validations: u64,
}

#[derive(Args)]
struct SettleBenchArgs {
    #[command(flatten)]
    server: Server,
    #[arg(long, default_value_t = 10_000_000)]
    sales: u64,
    #[arg(long, default_value_t = 500)]
    operators: usize,
    #[arg(long, default_value_t = 2_000_000)]
    validations: u64,
    /// Runs of the three steps, each on a copy of the day built once; the last line shows
    /// the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The business date of the day.
    #[arg(long, default_value = "2026-11-26")]
    date: String,
    /// Folder for the day's files and the object store (default: a temporary folder).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Measure again a day built by an earlier run with the same --dir: the name of its
    /// database (printed by that run); needs --runs 2 or more, each run taking a copy.
    #[arg(long, requires = "dir")]
    reuse: Option<String>,
}

#[derive(Args)]
struct IngestArgs {
    #[command(flatten)]
    server: Server,
    /// Kafka brokers for the validations part (skipped when unset).
    #[arg(long, env = "RECAUDO_TEST_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// Records in the operator file.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Validations produced to and consumed from the broker.
    #[arg(long, default_value_t = 300_000)]
    validations: u64,
}

#[derive(Args)]
struct LedgerArgs {
    #[command(flatten)]
    server: Server,
    /// Seconds each online-sales measurement runs.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Validations posted per backend.
    #[arg(long, default_value_t = 400_000)]
    validations: usize,
    /// Validations per batch.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Skip SQLite (PostgreSQL only).
    #[arg(long)]
    no_sqlite: bool,
}

const OPERATORS: usize = 20;
const CARDS: u64 = 200_000;

fn main() -> anyhow::Result<()> {
    jobs::tune_allocator();
    let cli = Cli::parse();
    let config = Settings::load()?;
    settings::logging::init(config.telemetry.log_format.as_deref(), "warn,sqlx=error");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli.command, &config))
}

async fn run(cmd: BenchCommand, config: &Settings) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Api(args) => {
            api::run(api::LoadSettings {
                postgres_url: args.server.postgres_url,
                connections: args.connections,
                seconds: args.seconds,
                settings: LedgerSettings::from_settings(config)?,
            })
            .await
        }
        BenchCommand::Hotlist(args) => {
            hotlist::run(hotlist::HotlistBenchSettings {
                postgres_url: args.server.postgres_url,
                cards: args.cards,
                delta: args.delta,
            })
            .await
        }
        BenchCommand::Ledger(args) => ledger_bench(args, config).await,
        BenchCommand::Events(args) => {
            relay::run(relay::EventsSettings {
                postgres_url: args.server.postgres_url,
                brokers: args.brokers,
                events: args.events,
                batch: args.batch.unwrap_or(config.events.batch),
                settings: LedgerSettings::from_settings(config)?,
            })
            .await
        }
        BenchCommand::Ingest(args) => ingest_bench(args, config).await,
        BenchCommand::Reconcile(args) => reconcile::run(args.rows, args.dir, args.runs).await,
        BenchCommand::Report(args) => {
            report::run(
                &args.server.postgres_url,
                args.sales,
                args.operators,
                args.validations,
                config,
            )
            .await
        }
        BenchCommand::Settle(args) => {
            settle::run(settle::SettleSettings {
                postgres_url: args.server.postgres_url,
                sales: args.sales,
                operators: args.operators,
                validations: args.validations,
                runs: args.runs,
                date: ledger::BusinessDate::parse(&args.date)?,
                dir: args.dir,
                reuse: args.reuse,
            })
            .await
        }
        BenchCommand::Remittances(args) => {
            remittances::run(remittances::RemittanceSettings {
                postgres_url: args.server.postgres_url,
                entries: args.entries,
                operators: args.operators,
                ledger: LedgerSettings {
                    max_connections: 8,
                    ..LedgerSettings::from_settings(config)?
                },
                rules: ledger::MoneyRules::from_settings(&config.money)?,
            })
            .await
        }
        BenchCommand::ReconcileGenerate { rows, dir } => reconcile::generate_child(rows, &dir),
        BenchCommand::ReconcileEngine {
            ledger,
            file,
            out,
            date,
        } => reconcile::engine(&ledger, &file, &out, date),
    }
}

struct Row {
    backend: String,
    workload: String,
    clients: usize,
    ops: u64,
    seconds: f64,
}

async fn ledger_bench(args: LedgerArgs, config: &Settings) -> anyhow::Result<()> {
    let settings = LedgerSettings {
        max_connections: 40,
        ..LedgerSettings::from_settings(config)?
    };
    let mut rows = Vec::new();
    let pg_db = fresh_database(&args.server.postgres_url).await?;
    let mut targets = vec![("postgres", pg_db.clone())];
    let dir = tempfile::tempdir()?;
    if !args.no_sqlite {
        targets.push((
            "sqlite",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        ));
    }
    for (backend, url) in &targets {
        eprintln!("measuring {backend} …");
        let ledger = ledger::connect(url, settings).await?;
        register_operators(&ledger).await?;
        for clients in [1, 8, 32] {
            let (ops, seconds) = online_sales(&ledger, clients, args.seconds).await?;
            rows.push(Row {
                backend: backend.to_string(),
                workload: "online sales".into(),
                clients,
                ops,
                seconds,
            });
        }
        let (ops, seconds) = validations(&ledger, args.validations, args.batch, 2).await?;
        rows.push(Row {
            backend: backend.to_string(),
            workload: format!("validations, batches of {}", args.batch),
            clients: 2,
            ops,
            seconds,
        });
        let report = ledger.check_invariants().await?;
        anyhow::ensure!(
            report.is_sound(),
            "invariants broken after the run: {report:?}"
        );
    }
    eprintln!("measuring pgbench …");
    let pgbench = yardstick::pgbench(&pg_db, 32, args.seconds).await?.tps() as f64;
    rows.push(Row {
        backend: "postgres".into(),
        workload: "pgbench tpcb-like, scale 32".into(),
        clients: 32,
        ops: (pgbench * args.seconds as f64) as u64,
        seconds: args.seconds as f64,
    });

    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.backend.clone(),
                r.workload.clone(),
                r.clients.to_string(),
                r.ops.to_string(),
                format!("{:.1}", r.seconds),
                format!("{:.0}", r.ops as f64 / r.seconds),
            ]
        })
        .collect();
    jobs::table::print(
        &[
            "backend",
            "workload",
            "clients",
            "operations",
            "seconds",
            "per second",
        ],
        &table,
    );
    let sales32 = rows
        .iter()
        .find(|r| r.backend == "postgres" && r.workload == "online sales" && r.clients == 32)
        .map(|r| r.ops as f64 / r.seconds)
        .unwrap_or(0.0);
    println!(
        "postgres online sales at 32 clients / pgbench tps = {:.2} (target >= 0.60)",
        sales32 / pgbench
    );
    Ok(())
}

pub(crate) async fn fresh_database(admin_url: &str) -> anyhow::Result<String> {
    yardstick::fresh_database(admin_url)
        .await
        .with_context(|| format!("PostgreSQL is not reachable at {}", redact_url(admin_url)))
}

async fn register_operators(ledger: &Arc<dyn Ledger>) -> anyhow::Result<()> {
    for i in 0..OPERATORS {
        ledger
            .add_operator(&Operator {
                id: OperatorId::parse(&format!("OP{i:03}"))?,
                name: OperatorName::parse(&format!("Bench operator {i}"))?,
                commission_rate: Rate::parse("commission_rate", "0.035")?,
                tax_rate: Rate::parse("tax_rate", "0.19")?,
                void_window: VoidWindow::parse("30m")?,
                settlement_lag_days: 1,
                active: true,
            })
            .await?;
    }
    Ok(())
}

/// A cheap, deterministic spread over the card pool.
fn card_for(n: u64) -> CardId {
    let k = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % CARDS;
    CardId::parse(&format!("CARD{k:010}")).expect("valid card id")
}

async fn online_sales(
    ledger: &Arc<dyn Ledger>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(u64, f64)> {
    let currency = ledger.settings().currency;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let i = n * clients as u64 + client as u64;
                    let sale = NewSale {
                        operator_id: OperatorId::parse(&format!(
                            "OP{:03}",
                            i as usize % OPERATORS
                        ))?,
                        operator_ref: OperatorRef::parse(&format!("C{clients}-{client}-{n}"))?,
                        card_id: card_for(i),
                        amount: Money::new(2_000_000, currency),
                        point_of_sale: PointOfSale::parse("POS-1")?,
                        occurred_at: Utc::now(),
                    };
                    ledger.record_sale(&sale).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

async fn validations(
    ledger: &Arc<dyn Ledger>,
    count: usize,
    batch: usize,
    workers: usize,
) -> anyhow::Result<(u64, f64)> {
    let currency = ledger.settings().currency;
    let now = Utc::now();
    // Build every batch first: only posting is measured.
    let batches: Vec<Vec<Validation>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(batch.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| Validation {
                    event_id: format!("ev-{i}"),
                    device_id: DeviceId::parse(&format!("BUS-{:04}", i % 1_000)).expect("id"),
                    device_seq: (i / 1_000) as i64,
                    card_id: card_for(i as u64 + 7),
                    fare: Money::new(295_000, currency),
                    route_id: RouteId::parse(&format!("R{}", i % 40)).expect("id"),
                    transport_operator_id: TransportOperatorId::parse(&format!("TO{}", i % 6))
                        .expect("id"),
                    occurred_at: now,
                    hotlist_version: None,
                })
                .collect()
        })
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(batches));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let ledger = ledger.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut posted = 0u64;
                loop {
                    let Some(b) = queue.lock().await.pop() else {
                        break;
                    };
                    posted += ledger.post_validations(&b).await?.posted as u64;
                }
                anyhow::Ok(posted)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

/// The process's peak resident memory so far (VmHWM), in MiB.
pub(crate) fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

async fn ingest_bench(args: IngestArgs, config: &Settings) -> anyhow::Result<()> {
    use fixtures::{Fixture, FixtureConfig};
    let settings = LedgerSettings {
        max_connections: 8,
        ..LedgerSettings::from_settings(config)?
    };
    let date = ledger::BusinessDate::parse("2026-11-26")?;
    let rules = ledger::MoneyRules::from_settings(&config.money)?;
    let mut table = Vec::new();

    // One operator's file of `records` sales.
    let dir = tempfile::tempdir()?;
    let mut fc = FixtureConfig::new(7, date, args.records);
    fc.operators = 1;
    fc.discrepancy_per_mille = 0;
    fc.void_per_mille = 0;
    eprintln!("writing a {}-record operator file …", args.records);
    let files = Fixture::new(fc).write_operator_files(&dir.path().join("objects"))?;
    let key = files.accepted[0].clone();
    let bytes = std::fs::metadata(dir.path().join("objects").join(&key))?.len();
    let store = storage::LocalStore::new(dir.path().join("objects"))?;
    let ledger =
        ledger::connect(&fresh_database(&args.server.postgres_url).await?, settings).await?;
    let before = peak_rss_mib();
    eprintln!("ingesting it into PostgreSQL …");
    let start = Instant::now();
    let outcome = ingest::ingest_file(&store, &*ledger, rules, &key).await?;
    let seconds = start.elapsed().as_secs_f64();
    let records = files.records;
    anyhow::ensure!(
        outcome == ingest::FileOutcome::Accepted { records },
        "unexpected outcome {outcome:?}"
    );
    table.push(vec![
        "operator file -> PostgreSQL".to_string(),
        records.to_string(),
        format!("{:.1}", bytes as f64 / 1_048_576.0),
        format!("{seconds:.2}"),
        format!("{:.0}", records as f64 / seconds),
        format!("{:.1}", bytes as f64 / 1_048_576.0 / seconds),
        format!(
            "{} (+{})",
            peak_rss_mib(),
            peak_rss_mib().saturating_sub(before)
        ),
    ]);

    if let Some(brokers) = args.brokers {
        let mut fc = FixtureConfig::new(8, date, args.validations / 2);
        fc.validations = args.validations;
        fc.duplicate_per_mille = 0;
        fc.malformed_per_mille = 0;
        let fixture = Fixture::new(fc);
        let topic = format!("recaudo.validations.bench-{}", std::process::id());
        let mut kafka =
            ingest::validations::KafkaSettings::new(&brokers, &format!("bench-{topic}"));
        kafka.topic = topic;
        eprintln!("producing {} validations …", args.validations);
        let produced = jobs::data_in::produce(&fixture, &kafka).await?;
        let ledger =
            ledger::connect(&fresh_database(&args.server.postgres_url).await?, settings).await?;
        kafka.stop_when_idle = None;
        eprintln!("consuming them into PostgreSQL …");
        // The consumer runs until cancelled; the clock runs from the first posted
        // validation (joining the consumer group is reported apart) to the last.
        let consumer = ingest::validations::ingest_from_kafka(&*ledger, &rules, &kafka);
        let (join, seconds) = tokio::select! {
            r = consumer => anyhow::bail!("the consumer stopped early: {:?}", r?),
            t = all_posted(&*ledger, produced) => t?,
        };
        eprintln!("joined the consumer group and posted the first batch after {join:.1} s");
        let posted = produced;
        table.push(vec![
            "Kafka validations -> PostgreSQL".to_string(),
            posted.to_string(),
            "-".to_string(),
            format!("{seconds:.2}"),
            format!("{:.0}", posted as f64 / seconds),
            "-".to_string(),
            format!("{}", peak_rss_mib()),
        ]);
    }
    jobs::table::print(
        &[
            "workload",
            "records",
            "MiB",
            "seconds",
            "records/s",
            "MiB/s",
            "peak RSS MiB",
        ],
        &table,
    );
    Ok(())
}

/// Waits until `count` validations are posted; returns the seconds until the first was
/// and the seconds from then until the last.
async fn all_posted(ledger: &dyn Ledger, count: u64) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let mut first = None;
    loop {
        let posted: i64 = ledger::on_pool!(ledger.database(), pool => {
            sqlx::query_scalar("SELECT count(*) FROM validations").fetch_one(pool).await?
        });
        if posted > 0 && first.is_none() {
            first = Some(start.elapsed().as_secs_f64());
        }
        if posted as u64 >= count {
            let first = first.unwrap_or(0.0);
            return Ok((first, start.elapsed().as_secs_f64() - first));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
