//! `recaudo-bench api`: drives the real HTTP server on PostgreSQL with concurrent
//! connections making sales, then fare payments, and prints each per second with p50/p99
//! latency beside pgbench's tpcb-like tps on the same server (BENCHMARKS.md records the
//! results).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ledger::{LedgerSettings, MoneyRules};

use online_api::auth::{JwksSource, Verifier, VerifierSettings, parse_algorithms};
use online_api::dev_keys::{DEV_AUDIENCE, DEV_ISSUER, DevKeys};
use online_api::{Limits, app};

use crate::OPERATORS;

pub struct LoadSettings {
    pub postgres_url: String,
    pub connections: usize,
    pub seconds: u64,
    pub settings: LedgerSettings,
}

pub async fn run(s: LoadSettings) -> anyhow::Result<()> {
    let db = crate::yardstick::fresh_database(&s.postgres_url)
        .await
        .context("creating the benchmark database")?;
    let ledger = ledger::connect(
        &db,
        LedgerSettings {
            max_connections: s.connections as u32 + 8,
            ..s.settings
        },
    )
    .await?;
    let mut tokens = Vec::new();
    let keys_dir = tempfile::tempdir()?;
    let keys = DevKeys::load_or_create_in(keys_dir.path())?;
    crate::register_operators(&ledger).await?;
    for i in 0..OPERATORS {
        tokens.push(keys.mint(&format!("OP{i:03}"), "sales:write payments:write", 3600)?);
    }
    let verifier = Verifier::new(VerifierSettings {
        issuer: DEV_ISSUER.into(),
        audience: DEV_AUDIENCE.into(),
        algorithms: parse_algorithms("ES256").map_err(anyhow::Error::msg)?,
        source: JwksSource::Static(keys.jwks.clone()),
    })
    .await?;
    let limits = Limits {
        body_bytes: 16 * 1024,
        page_size_max: 500,
        request_timeout: Duration::from_secs(10),
        rate_per_second: 1_000_000,
        rate_burst: 1_000_000,
    };
    let router = app(
        ledger.clone(),
        verifier,
        MoneyRules::new(s.settings.currency),
        limits,
        events::ssrf::Policy::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let tokens = Arc::new(tokens);
    let sales = drive(&base, &tokens, s.connections, s.seconds, |c, n| {
        let body = format!(
            r#"{{"operator_ref":"L{c}-{n}","card_id":"CARD{:08}","amount":"20000.00","currency":"COP","point_of_sale":"POS-{c}"}}"#,
            (c as u64 * 7919 + n * 104_729) % 200_000
        );
        ("/v1/sales", format!("load-{c}-{n}"), body, 201)
    })
    .await?;
    // Payments from cards funded up front (not timed), so none is short of balance.
    fund_cards(&*ledger, s.settings.currency).await?;
    let payments = drive(&base, &tokens, s.connections, s.seconds, |c, n| {
        let body = format!(
            r#"{{"payment_ref":"P{c}-{n}","card_id":"FUND{:08}","amount":"2950.00","currency":"COP","route_id":"R{}","transport_operator_id":"TO{}"}}"#,
            (c as u64 * 7919 + n * 104_729) % FUNDED_CARDS,
            n % 40,
            c % 6
        );
        ("/v1/payments", format!("pay-{c}-{n}"), body, 201)
    })
    .await?;
    let report = ledger.check_invariants().await?;
    anyhow::ensure!(
        report.is_sound(),
        "invariants broken after the run: {report:?}"
    );
    eprintln!("measuring pgbench …");
    let pgbench = crate::yardstick::pgbench(&db, 32, s.seconds).await?;
    let ms = |micros: u64| format!("{}.{}", micros / 1000, (micros % 1000) / 100);
    println!(
        "workload                              connections  requests  errors  seconds  per second  p50 ms  p99 ms"
    );
    for (name, load) in [
        ("POST /v1/sales (HTTP, PostgreSQL)", &sales),
        ("POST /v1/payments (HTTP, PostgreSQL)", &payments),
    ] {
        println!(
            "{name:<36}  {:<11}  {:<8}  {:<6}  {:<7}  {:<10}  {:<6}  {}",
            s.connections,
            load.latencies.len(),
            load.errors,
            format!(
                "{}.{}",
                load.elapsed_ms / 1000,
                (load.elapsed_ms % 1000) / 100
            ),
            load.per_second(),
            ms(load.percentile(50)),
            ms(load.percentile(99))
        );
    }
    println!(
        "pgbench tpcb-like, scale 32           32           {:<8}  0       {:<7}  {}",
        pgbench.transactions,
        pgbench.seconds,
        pgbench.tps()
    );
    let ratio_hundredths = sales.per_second() * 100 / pgbench.tps().max(1);
    println!(
        "sales/s / pgbench tps = {}.{:02} (target >= 0.45); p99 = {} ms (target <= 50)",
        ratio_hundredths / 100,
        ratio_hundredths % 100,
        ms(sales.percentile(99))
    );
    println!(
        "sales_per_s={} payments_per_s={} pgbench_tps={}",
        sales.per_second(),
        payments.per_second(),
        pgbench.tps()
    );
    Ok(())
}

/// Cards funded before the payments run.
const FUNDED_CARDS: u64 = 50_000;

/// Tops up `FUNDED_CARDS` cards with enough for every payment the run can make, through
/// the ledger's bulk load.
async fn fund_cards(ledger: &dyn ledger::Ledger, currency: ledger::Currency) -> anyhow::Result<()> {
    use ledger::journal::NewSale;
    let operator = ledger::OperatorId::parse("OP000")?;
    let cards: Vec<u64> = (0..FUNDED_CARDS).collect();
    for chunk in cards.chunks(5_000) {
        let batch = chunk
            .iter()
            .map(|i| {
                Ok(NewSale {
                    operator_id: operator.clone(),
                    operator_ref: ledger::OperatorRef::parse(&format!("FUND-{i}"))?,
                    card_id: ledger::CardId::parse(&format!("FUND{i:08}"))?,
                    amount: ledger::Money::new(100_000_000, currency),
                    point_of_sale: ledger::PointOfSale::parse("POS-1")?,
                    occurred_at: chrono::Utc::now(),
                })
            })
            .collect::<Result<Vec<_>, ledger::LedgerError>>()?;
        ledger.import_sales(&batch).await?;
    }
    Ok(())
}

/// What one timed load did.
struct Load {
    /// Of the requests answered as expected, sorted.
    latencies: Vec<u64>,
    errors: u64,
    elapsed_ms: u64,
}

impl Load {
    fn per_second(&self) -> u64 {
        self.latencies.len() as u64 * 1000 / self.elapsed_ms.max(1)
    }

    fn percentile(&self, p: usize) -> u64 {
        let all = &self.latencies;
        all.get((all.len() * p / 100).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

/// What a client sends: the path, the idempotency key, the body and the status it expects.
type Request = (&'static str, String, String, u16);

/// Drives `base` with `connections` keep-alive clients for `seconds`, each sending the
/// requests `request(client, n)` makes.
async fn drive(
    base: &str,
    tokens: &Arc<Vec<String>>,
    connections: usize,
    seconds: u64,
    request: fn(usize, u64) -> Request,
) -> anyhow::Result<Load> {
    eprintln!("driving {base} with {connections} connections for {seconds} s …");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let tokens = tokens.clone();
            let base = base.to_string();
            tokio::spawn(async move {
                // One keep-alive connection per simulated client.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let op = (c + n as usize) % OPERATORS;
                    let (path, key, body, expected) = request(c, n);
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}{path}"))
                        .bearer_auth(&tokens[op])
                        .header("Idempotency-Key", key)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let status = r.status().as_u16();
                    let body = r.bytes().await?;
                    if status == expected {
                        latencies.push(t.elapsed().as_micros() as u64);
                    } else {
                        // A load that is refused measures nothing: say why, once.
                        if errors == 0 && c == 0 {
                            eprintln!("{path}: {status} {}", String::from_utf8_lossy(&body));
                        }
                        errors += 1;
                    }
                    n += 1;
                }
                anyhow::Ok((latencies, errors))
            })
        })
        .collect();
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        elapsed_ms: 0,
    };
    for t in tasks {
        let (l, e) = t.await??;
        load.latencies.extend(l);
        load.errors += e;
    }
    // Integer arithmetic only: no floats in a crate that handles money.
    load.elapsed_ms = (start.elapsed().as_millis() as u64).max(1);
    load.latencies.sort_unstable();
    Ok(load)
}
