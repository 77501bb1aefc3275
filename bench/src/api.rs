//! `recaudo-bench api`: drives the real HTTP server on PostgreSQL with concurrent
//! connections making sales, and prints sales per second with p50/p99 latency beside
//! pgbench's tpcb-like tps on the same server (BENCHMARKS.md records the results).

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
        tokens.push(keys.mint(&format!("OP{i:03}"), "sales:write", 3600)?);
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

    eprintln!(
        "driving {base} with {} connections for {} s …",
        s.connections, s.seconds
    );
    let tokens = Arc::new(tokens);
    let deadline = Instant::now() + Duration::from_secs(s.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..s.connections)
        .map(|c| {
            let tokens = tokens.clone();
            let base = base.clone();
            tokio::spawn(async move {
                // One keep-alive connection per simulated client.
                let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let op = (c + n as usize) % OPERATORS;
                    let body = format!(
                        r#"{{"operator_ref":"L{c}-{n}","card_id":"CARD{:08}","amount":"20000.00","currency":"COP","point_of_sale":"POS-{c}"}}"#,
                        (c as u64 * 7919 + n * 104_729) % 200_000
                    );
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/sales"))
                        .bearer_auth(&tokens[op])
                        .header("Idempotency-Key", format!("load-{c}-{n}"))
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let ok = r.status() == 201;
                    r.bytes().await?;
                    if ok {
                        latencies.push(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                    n += 1;
                }
                anyhow::Ok((latencies, errors))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    // Integer arithmetic only: no floats in a crate that handles money.
    let elapsed_ms = (start.elapsed().as_millis() as u64).max(1);
    all.sort_unstable();
    let percentile = |p: usize| {
        all.get((all.len() * p / 100).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let ms = |micros: u64| format!("{}.{}", micros / 1000, (micros % 1000) / 100);
    let report = ledger.check_invariants().await?;
    anyhow::ensure!(
        report.is_sound(),
        "invariants broken after the run: {report:?}"
    );
    eprintln!("measuring pgbench …");
    let pgbench = crate::yardstick::pgbench(&db, 32, s.seconds).await?;
    let sales_per_s = all.len() as u64 * 1000 / elapsed_ms;
    let ratio_hundredths = sales_per_s * 100 / pgbench.tps().max(1);
    println!(
        "workload                           connections  requests  errors  seconds  per second  p50 ms  p99 ms"
    );
    println!(
        "POST /v1/sales (HTTP, PostgreSQL)  {:<11}  {:<8}  {:<6}  {:<7}  {:<10}  {:<6}  {}",
        s.connections,
        all.len(),
        errors,
        format!("{}.{}", elapsed_ms / 1000, (elapsed_ms % 1000) / 100),
        sales_per_s,
        ms(percentile(50)),
        ms(percentile(99))
    );
    println!(
        "pgbench tpcb-like, scale 32        32           {:<8}  0       {:<7}  {}",
        pgbench.transactions,
        pgbench.seconds,
        pgbench.tps()
    );
    println!(
        "sales/s / pgbench tps = {}.{:02} (target >= 0.45); p99 = {} ms (target <= 50)",
        ratio_hundredths / 100,
        ratio_hundredths % 100,
        ms(percentile(99))
    );
    Ok(())
}
