//! `recaudo-bench hotlist`: publishing a city's action list on PostgreSQL, as ops runs it.
//! The blocked cards are loaded first with COPY (not timed); then `recaudo run
//! publish-hotlist` is timed under GNU time (wall time, peak RSS) twice: the first version
//! (every card is an ADD) and, after `--delta` cards changed (half unblocked, half newly
//! blocked), the version that publishes that delta over the whole list. Beside them, on
//! the same database in the same run, the yardstick: PostgreSQL's own COPY out of what the
//! job reads (the blocked cards and the published list).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use futures::TryStreamExt;
use ledger::LedgerSettings;

use crate::reconcile::{Timed, timed, under_time};

pub struct HotlistBenchSettings {
    pub postgres_url: String,
    pub cards: u64,
    pub delta: u64,
}

/// Rows per COPY buffer while loading.
const CHUNK: u64 = 200_000;

pub async fn run(s: HotlistBenchSettings) -> anyhow::Result<()> {
    let (recaudo, time_bin) = crate::reconcile::recaudo_under_time()?;
    let time_bin = time_bin.as_path();
    anyhow::ensure!(s.delta <= s.cards, "--delta is at most --cards");
    let db = crate::fresh_database(&s.postgres_url).await?;
    let ledger = ledger::connect(&db, LedgerSettings::default()).await?;
    let pool = match ledger.database() {
        ledger::Database::Postgres(p) => p.clone(),
        ledger::Database::Sqlite(_) => anyhow::bail!("the benchmark runs on PostgreSQL"),
    };
    let objects = tempfile::tempdir()?;

    let started = Instant::now();
    block_cards(&pool, 0..s.cards).await?;
    sqlx::raw_sql("VACUUM ANALYZE accounts")
        .execute(&pool)
        .await?;
    let setup_s = started.elapsed().as_secs_f64();
    eprintln!("{} blocked cards loaded in {setup_s:.1} s", s.cards);

    let publish = || -> anyhow::Result<Timed> {
        let mut cmd = under_time(time_bin, &recaudo);
        cmd.args(["run", "publish-hotlist"])
            .env("RECAUDO_DATABASE_URL", &db)
            .env(
                "RECAUDO_OBJECT_STORE",
                format!("file://{}", objects.path().display()),
            )
            .env("RUST_LOG", "warn")
            .env_remove("RECAUDO_KAFKA_BROKERS")
            .env_remove("RECAUDO_CONFIG");
        timed(&mut cmd)
    };
    let first = publish().context("the first version")?;
    let first_bytes = version_bytes(objects.path(), 1)?;

    // The delta: the first half of it unblocked by the back office, the rest newly blocked.
    let unblocked = s.delta / 2;
    sqlx::query(
        "WITH u AS (UPDATE accounts SET blocked_reason = NULL, blocked_at = NULL \
           WHERE id IN (SELECT 'card:CARD' || lpad(g::text, 10, '0') FROM generate_series(0, $1 - 1) g) \
           RETURNING id) \
         INSERT INTO card_status_changes (card_id, action, reason, at, actor, note) \
         SELECT substr(id, 6), 'UNBLOCK', 'LOST', now(), 'bench', 'found' FROM u",
    )
    .bind(unblocked as i64)
    .execute(&pool)
    .await?;
    block_cards(&pool, s.cards..s.cards + (s.delta - unblocked)).await?;
    let second = publish().context("the version with the delta")?;
    let second_bytes = version_bytes(objects.path(), 2)?;

    // The yardstick: what the job reads, as PostgreSQL sends it with nothing else to do.
    let started = Instant::now();
    let mut yardstick_bytes = 0u64;
    for query in [
        "COPY (SELECT substr(id, 6), blocked_reason, blocked_at FROM accounts \
           WHERE blocked_reason IS NOT NULL ORDER BY id) TO STDOUT (FORMAT csv)",
        "COPY (SELECT card_id, reason, blocked_at FROM hotlist_entries ORDER BY card_id) \
           TO STDOUT (FORMAT csv)",
    ] {
        let mut conn = pool.acquire().await?;
        let mut out = conn.copy_out_raw(query).await?;
        while let Some(chunk) = out.try_next().await? {
            yardstick_bytes += chunk.len() as u64;
        }
    }
    let yardstick_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(yardstick_bytes > 0, "the yardstick read nothing");

    let mib = |b: u64| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
    let rows = vec![
        vec![
            format!("v1: {} cards, all added", s.cards),
            format!("{:.2}", first.seconds),
            first.peak_mib.to_string(),
            mib(first_bytes),
            first.cpu.clone(),
        ],
        vec![
            format!(
                "v2: {} cards, delta {}",
                s.cards + s.delta - 2 * unblocked,
                s.delta
            ),
            format!("{:.2}", second.seconds),
            second.peak_mib.to_string(),
            mib(second_bytes),
            second.cpu.clone(),
        ],
        vec![
            "yardstick: COPY out of both lists".into(),
            format!("{yardstick_s:.2}"),
            String::new(),
            mib(yardstick_bytes),
            String::new(),
        ],
    ];
    jobs::table::print(
        &["step", "seconds", "peak MiB", "MiB written (read)", "cpu s"],
        &rows,
    );
    println!(
        "cards={} delta={} setup_s={setup_s:.1} publish_s={:.2} peak_mib={} bytes={second_bytes} \
         yardstick_s={yardstick_s:.2} ratio={:.2}",
        s.cards,
        s.delta,
        second.seconds,
        second.peak_mib,
        second.seconds / yardstick_s.max(0.001)
    );
    Ok(())
}

/// Blocks cards `range` (LOST, an hour ago) with COPY, each with its history row.
async fn block_cards(pool: &sqlx::PgPool, range: std::ops::Range<u64>) -> anyhow::Result<()> {
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut start = range.start;
    while start < range.end {
        let end = (start + CHUNK).min(range.end);
        let (mut accounts, mut history) = (String::new(), String::new());
        for i in start..end {
            accounts.push_str(&format!("card:CARD{i:010},0,false,LOST,{at}\n"));
            history.push_str(&format!("CARD{i:010},BLOCK,LOST,{at},bench\n"));
        }
        crate::report::copy(
            pool,
            "accounts (id, balance, flagged, blocked_reason, blocked_at)",
            accounts,
        )
        .await?;
        crate::report::copy(
            pool,
            "card_status_changes (card_id, action, reason, at, actor)",
            history,
        )
        .await?;
        start = end;
    }
    Ok(())
}

/// The bytes a version wrote: its three files and `latest.json`.
fn version_bytes(objects: &Path, version: i64) -> anyhow::Result<u64> {
    let dir = objects.join(format!("hotlists/v{version}"));
    let mut total = std::fs::metadata(objects.join("hotlists/latest.json"))?.len();
    for name in ["full.csv", "delta.csv", "manifest.json"] {
        total += std::fs::metadata(dir.join(name))
            .with_context(|| format!("{}/{name}", dir.display()))?
            .len();
    }
    Ok(total)
}
