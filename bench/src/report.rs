//! `recaudo-bench report --sales N --operators M`: the settlement reports of one business
//! date with N sales over M operators, read from PostgreSQL and written to a local folder,
//! timed step by step.
//!
//! Set-up (not timed): a fresh database; the fixtures' sales, a day of validations and the
//! reconciliation run are loaded with COPY straight into their tables. The sales skip the
//! journal (the reports never read it), which is what makes 10M rows a minutes-long set-up.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use fixtures::{Fixture, FixtureConfig};
use ledger::LedgerSettings;
use ledger::{BusinessDate, Database, Ledger};
use settings::Settings;
use storage::ObjectStore;

const CHUNK: u64 = 500_000;
const TRANSPORT_OPERATORS: u64 = 12;
const DEVICES: u64 = 2_000;

pub(crate) async fn copy(
    pool: &sqlx::PgPool,
    table_columns: &str,
    csv: String,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table_columns} FROM STDIN WITH (FORMAT csv)"
        ))
        .await?;
    copy.send(csv.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Net sales and the reconciliation cases per operator, as loaded.
#[derive(Default)]
struct Tally {
    net: i64,
    counts: BTreeMap<String, i64>,
    exceptions_difference: i64,
}

async fn load_day(
    ledger: &dyn Ledger,
    fixture: &Fixture,
    date: BusinessDate,
    validations: u64,
) -> anyhow::Result<()> {
    let Database::Postgres(pool) = ledger.database() else {
        anyhow::bail!("the report benchmark runs on PostgreSQL");
    };
    fixture.register_operators(ledger).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let sales = fixture.config.sales;
    let mut start = 0;
    while start < sales {
        let end = (start + CHUNK).min(sales);
        let (mut rows, mut items) = (String::new(), String::new());
        for i in start..end {
            let s = fixture.sale(i);
            let op = fixture.operator_id(s.operator).to_string();
            let t = tally.entry(op.clone()).or_default();
            let case = s.case.as_str().to_string();
            *t.counts.entry(case.clone()).or_default() += 1;
            if !s.in_ledger {
                continue;
            }
            let voided = s.voided_at.is_some();
            let net = if voided { 0 } else { s.amount_minor };
            t.net += net;
            let at = s.occurred_at.to_rfc3339();
            let void = s
                .voided_at
                .map(|v| format!("{},{date},{i}", v.to_rfc3339()))
                .unwrap_or_else(|| ",,".into());
            rows.push_str(&format!(
                "{op},{},{},{},COP,{},{at},{date},{i},{void}\n",
                s.operator_ref, s.card_id, s.amount_minor, s.point_of_sale
            ));
            if case != "MATCHED" {
                // The item as if the file lacked the sale: its difference is the net amount.
                t.exceptions_difference += net;
                items.push_str(&format!(
                    "{run_id},{op},{},{case},{},,{net},,{net},{at},\n",
                    s.operator_ref, s.card_id
                ));
            }
        }
        copy(
            pool,
            "sales (operator_id, operator_ref, card_id, amount, currency, point_of_sale, \
             occurred_at, business_date, transaction_id, voided_at, void_business_date, \
             void_transaction_id)",
            rows,
        )
        .await?;
        copy(
            pool,
            "recon_items (run_id, operator_id, operator_ref, case_name, ledger_card_id, \
             file_card_id, ledger_amount, file_amount, difference, ledger_occurred_at, \
             file_occurred_at)",
            items,
        )
        .await?;
        start = end;
    }
    let at = ledger.settings().calendar.opens_at(date).to_rfc3339();
    let mut start = 0;
    while start < validations {
        let end = (start + CHUNK).min(validations);
        let mut rows = String::new();
        for i in start..end {
            rows.push_str(&format!(
                "DEV{:05},{},ev-{i},CARD{:010},{},COP,R{},TO{},{at},{date},{i}\n",
                i % DEVICES,
                i / DEVICES + 1,
                i % 100_000,
                250_000 + (i % 3) * 10_000,
                i % 40,
                i % TRANSPORT_OPERATORS + 1
            ));
        }
        copy(
            pool,
            "validations (device_id, device_seq, event_id, card_id, fare, currency, route_id, \
             transport_operator_id, occurred_at, business_date, transaction_id)",
            rows,
        )
        .await?;
        start = end;
    }
    let exceptions: i64 = tally
        .values()
        .map(|t| {
            t.counts
                .iter()
                .filter(|(c, _)| *c != "MATCHED")
                .map(|(_, n)| n)
                .sum::<i64>()
        })
        .sum();
    sqlx::query(
        "INSERT INTO recon_runs (id, business_date, created_at, items, exceptions, is_current) \
         VALUES ($1, $2, now(), $3, $4, true)",
    )
    .bind(&run_id)
    .bind(date.naive())
    .bind(sales as i64)
    .bind(exceptions)
    .execute(pool)
    .await?;
    for (op, t) in &tally {
        let mut counts: BTreeMap<String, i64> = reconcile::Case::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), 0))
            .collect();
        counts.extend(t.counts.clone());
        sqlx::query(
            "INSERT INTO recon_summaries (run_id, operator_id, counts, ledger_total, file_total, \
             exceptions_difference) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&run_id)
        .bind(op)
        .bind(serde_json::to_string(&counts)?)
        .bind(t.net)
        .bind(t.net - t.exceptions_difference)
        .bind(t.exceptions_difference)
        .execute(pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

pub async fn run(
    postgres_url: &str,
    sales: u64,
    operators: usize,
    validations: u64,
    config: &Settings,
) -> anyhow::Result<()> {
    let date = BusinessDate::parse("2026-11-26")?;
    let mut fc = FixtureConfig::new(2026, date, sales);
    fc.operators = operators;
    fc.cards = sales / 2 + 10;
    let fixture = Fixture::new(fc);
    let url = ledger::postgres::create_database(postgres_url, "recaudo_bench").await?;
    let ledger = ledger::connect(&url, LedgerSettings::from_settings(config)?)
        .await
        .context("opening the benchmark database")?;
    let setup = Instant::now();
    eprintln!("loading {sales} sales over {operators} operators and {validations} validations");
    load_day(&*ledger, &fixture, date, validations).await?;
    eprintln!("set-up took {:.1} s", setup.elapsed().as_secs_f64());

    let out = tempfile::tempdir()?;
    let store = storage::LocalStore::new(out.path())?;
    let mut rows = Vec::new();
    let mut last = (0.0, 0);
    let meta = reports::ReportMeta {
        kind: reports::ReportKind::Final,
        version: Some(1),
        as_of: chrono::Utc::now().to_rfc3339(),
    };
    for attempt in 1..=2 {
        let t0 = Instant::now();
        let inputs = reports::inputs::load(
            &*ledger,
            date,
            ledger::MoneyRules::from_settings(&config.money)?.currency,
            ledger::business_date::holidays(&config.calendar),
        )
        .await?;
        let t1 = Instant::now();
        let statement = reports::statement::build(&inputs, meta.clone())?;
        let files = reports::files::render(&statement)?;
        let t2 = Instant::now();
        let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
        let published = reports::publish::publish(
            &store as &dyn ObjectStore,
            &inputs,
            files,
            &statement.meta,
            "bench",
        )
        .await?;
        let t3 = Instant::now();
        let total = (t3 - t0).as_secs_f64();
        rows.push(vec![
            attempt.to_string(),
            format!("{:.2}", (t1 - t0).as_secs_f64()),
            format!("{:.2}", (t2 - t1).as_secs_f64()),
            format!("{:.2}", (t3 - t2).as_secs_f64()),
            format!("{total:.2}"),
            statement.lines.len().to_string(),
            statement.discrepancies.height().to_string(),
            format!("{:.1}", bytes as f64 / 1_048_576.0),
            published.prefix,
        ]);
        last = (total, crate::peak_rss_mib());
    }
    jobs::table::print(
        &[
            "run",
            "load s",
            "build+render s",
            "publish s",
            "total s",
            "operators",
            "discrepancies",
            "MiB written",
            "version",
        ],
        &rows,
    );
    println!(
        "sales={sales} operators={operators} seconds={:.2} peak_mib={}",
        last.0, last.1
    );
    Ok(())
}
