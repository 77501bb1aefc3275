//! `recaudo-bench settle`: the nightly settle of a city-scale day on PostgreSQL, as ops runs
//! it. The day is built first and not timed (`recaudo fixtures --register --post-ledger
//! --publish`, the events ingested, the database vacuumed and analyzed); then `recaudo run
//! ingest-files`, `recaudo run reconcile` and `recaudo run report` are timed, each its own
//! process under GNU time (wall time, peak RSS). Beside them, on the same database in the
//! same run, the yardstick: PostgreSQL's own COPY out of the reconcile job's inputs (the
//! date's sales and file records, one query per side) and COPY in of the rows the job keeps
//! (its non-MATCHED items, the exception cases it opens, their events and what the outbox
//! says of them). With `--runs N` each run starts from a copy of the day made
//! right after the set-up (a template database and a copy of the object store), and the
//! last line shows the medians.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use futures::TryStreamExt;
use ledger::BusinessDate;

use crate::reconcile::{Timed, timed, under_time};

pub struct SettleSettings {
    pub postgres_url: String,
    pub sales: u64,
    pub operators: usize,
    pub validations: u64,
    pub runs: u32,
    pub date: BusinessDate,
    pub dir: Option<PathBuf>,
    /// The database of a day built earlier under `dir` (its store untouched), to measure
    /// again without building it again.
    pub reuse: Option<String>,
}

/// One run's three steps and the yardstick beside them.
struct SettleRun {
    ingest: Timed,
    records: i64,
    reconcile: Timed,
    report: Timed,
    yardstick_s: f64,
}

impl SettleRun {
    fn peak_mib(&self) -> u64 {
        [&self.ingest, &self.reconcile, &self.report]
            .iter()
            .map(|t| t.peak_mib)
            .max()
            .unwrap_or(0)
    }
}

pub async fn run(s: SettleSettings) -> anyhow::Result<()> {
    let (recaudo, time_bin) = crate::reconcile::recaudo_under_time()?;
    let time_bin = time_bin.as_path();
    let tmp = tempfile::tempdir()?;
    let dir = s.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let date = s.date.to_string();
    let base = match &s.reuse {
        Some(name) => {
            let root = s
                .postgres_url
                .rsplit_once('/')
                .map_or(s.postgres_url.as_str(), |(root, _)| root);
            format!("{root}/{name}")
        }
        None => crate::fresh_database(&s.postgres_url).await?,
    };
    eprintln!(
        "the day's database: {} (--reuse takes it)",
        base.rsplit('/').next().unwrap_or_default()
    );
    let env = Env {
        recaudo: &recaudo,
        database_url: base.clone(),
        objects: dir.join("objects"),
        events: dir.join("events"),
    };
    let setup_s = match &s.reuse {
        Some(name) => {
            eprintln!(
                "reusing the day built earlier in database {name} and {}",
                dir.display()
            );
            anyhow::ensure!(
                s.runs > 1,
                "a day built earlier is only reused with --runs 2 or more (each run takes a copy)"
            );
            None
        }
        None => Some(build_day(&s, &env, &dir, &date).await?),
    };

    let mut runs = Vec::new();
    for k in 1..=s.runs {
        let env = if s.runs == 1 {
            env.clone_ref()
        } else {
            eprintln!("run {k}: copying the day …");
            let copy = template_copy(&s.postgres_url, &base, k).await?;
            let objects = dir.join(format!("objects-{k}"));
            copy_dir(&env.objects, &objects)?;
            Env {
                recaudo: &recaudo,
                database_url: copy,
                objects,
                events: env.events.clone(),
            }
        };
        eprintln!("run {k}: ingest-files, reconcile, report …");
        let ingest = timed(&mut env.timed(time_bin, &["run", "ingest-files"]))?;
        let records: i64 = scalar(
            &env.database_url,
            "SELECT COALESCE(SUM(record_count), 0)::bigint FROM operator_files \
             WHERE status = 'accepted'",
        )
        .await?;
        let reconcile = timed(&mut env.timed(time_bin, &["run", "reconcile", "--date", &date]))?;
        let report = timed(&mut env.timed(time_bin, &["run", "report", "--date", &date]))?;
        let yardstick_s = yardstick(&env.database_url, s.date).await?;
        let run = SettleRun {
            ingest,
            records,
            reconcile,
            report,
            yardstick_s,
        };
        print_run(k, &run);
        runs.push(run);
        if s.runs > 1 {
            // Each copy is as big as the day: only the template stays.
            let name = env
                .database_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            sql(
                &s.postgres_url,
                &format!("DROP DATABASE {name} WITH (FORCE)"),
            )
            .await?;
            std::fs::remove_dir_all(&env.objects)?;
        }
    }
    let middle = |f: fn(&SettleRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ingest_s, reconcile_s, report_s, yardstick_s) = (
        middle(|r| r.ingest.seconds),
        middle(|r| r.reconcile.seconds),
        middle(|r| r.report.seconds),
        middle(|r| r.yardstick_s),
    );
    let peak = runs.iter().map(SettleRun::peak_mib).max().unwrap_or(0);
    if let Some(setup_s) = setup_s {
        println!("set-up: {setup_s:.0} s (not timed above)");
    }
    println!(
        "sales={} ingest_s={ingest_s:.2} reconcile_s={reconcile_s:.2} report_s={report_s:.2} \
         peak_mib={peak} yardstick_s={yardstick_s:.2} ratio={:.2}",
        s.sales,
        reconcile_s / yardstick_s
    );
    Ok(())
}

/// The seconds the reconcile job's exception sync logged (JSON log lines).
fn sync_seconds(log: &str) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("exception cases synced"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| {
            v["seconds"]
                .as_f64()
                .or_else(|| v["fields"]["seconds"].as_f64())
        })
}

fn print_run(k: u32, run: &SettleRun) {
    let rows = vec![
        vec![
            "ingest-files".to_string(),
            format!("{:.2}", run.ingest.seconds),
            run.ingest.peak_mib.to_string(),
            format!(
                "{} records, {:.0}/s",
                run.records,
                run.records as f64 / run.ingest.seconds
            ),
            run.ingest.cpu.clone(),
        ],
        vec![
            "reconcile".to_string(),
            format!("{:.2}", run.reconcile.seconds),
            run.reconcile.peak_mib.to_string(),
            format!(
                "{:.2} x the yardstick; exception cases synced in {}",
                run.reconcile.seconds / run.yardstick_s,
                sync_seconds(&run.reconcile.stderr)
                    .map_or("(not logged)".to_string(), |s| format!("{s:.2} s"))
            ),
            run.reconcile.cpu.clone(),
        ],
        vec![
            "report".to_string(),
            format!("{:.2}", run.report.seconds),
            run.report.peak_mib.to_string(),
            String::new(),
            run.report.cpu.clone(),
        ],
        vec![
            "yardstick: COPY out of the inputs, in of the rows kept".to_string(),
            format!("{:.2}", run.yardstick_s),
            String::new(),
            String::new(),
            String::new(),
        ],
    ];
    println!("run {k}");
    jobs::table::print(&["step", "seconds", "peak MiB", "", "cpu s"], &rows);
}

/// Builds the day in `env`'s database and store; returns the seconds it took.
async fn build_day(
    s: &SettleSettings,
    env: &Env<'_>,
    dir: &Path,
    date: &str,
) -> anyhow::Result<f64> {
    eprintln!(
        "building the day: {} sales over {} operators, {} validations …",
        s.sales, s.operators, s.validations
    );
    let setup = Instant::now();
    env.run(&["migrate"])?;
    let fixtures_start = Instant::now();
    env.run(&[
        "fixtures",
        "--date",
        date,
        "--sales",
        &s.sales.to_string(),
        "--operators",
        &s.operators.to_string(),
        "--validations",
        &s.validations.to_string(),
        "--out",
        &dir.join("fixtures").to_string_lossy(),
        "--register",
        "--post-ledger",
        "--publish",
    ])?;
    let fixtures_s = fixtures_start.elapsed().as_secs_f64();
    let events_start = Instant::now();
    env.run(&["ingest", "validations"])?;
    let events_s = events_start.elapsed().as_secs_f64();
    sql(&env.database_url, "VACUUM ANALYZE").await?;
    let setup_s = setup.elapsed().as_secs_f64();
    eprintln!(
        "set-up took {setup_s:.0} s (fixtures with the ledger side {fixtures_s:.0} s, \
         events {events_s:.0} s)"
    );
    Ok(setup_s)
}

/// How the benchmark runs `recaudo` against one copy of the day.
struct Env<'a> {
    recaudo: &'a Path,
    database_url: String,
    objects: PathBuf,
    events: PathBuf,
}

impl Env<'_> {
    fn clone_ref(&self) -> Env<'_> {
        Env {
            recaudo: self.recaudo,
            database_url: self.database_url.clone(),
            objects: self.objects.clone(),
            events: self.events.clone(),
        }
    }

    fn configure(&self, cmd: &mut Command) {
        cmd.env("RECAUDO_DATABASE_URL", &self.database_url)
            .env(
                "RECAUDO_OBJECT_STORE",
                format!("file://{}", self.objects.display()),
            )
            .env("RECAUDO_EVENTS_DIR", &self.events)
            // The exception sync says how long it took (the reconcile row shows it).
            .env("RUST_LOG", "warn,exceptions=info")
            .env("RECAUDO_LOG_FORMAT", "json")
            .env_remove("RECAUDO_KAFKA_BROKERS")
            .env_remove("RECAUDO_CONFIG");
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new(self.recaudo);
        cmd.args(args);
        self.configure(&mut cmd);
        let out = cmd.output()?;
        anyhow::ensure!(
            out.status.success(),
            "recaudo {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn timed(&self, time_bin: &Path, args: &[&str]) -> Command {
        let mut cmd = under_time(time_bin, self.recaudo);
        cmd.args(args);
        self.configure(&mut cmd);
        cmd
    }
}

async fn connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", settings::redact_url(url)))
}

async fn sql(url: &str, statement: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = connect(url).await?;
    sqlx::raw_sql(statement).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

async fn scalar(url: &str, query: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = connect(url).await?;
    let v = sqlx::query_scalar(query).fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(v)
}

/// A new database made from `base` (which nobody may be connected to), for run `k`.
async fn template_copy(admin_url: &str, base: &str, k: u32) -> anyhow::Result<String> {
    let base_name = base.rsplit('/').next().unwrap_or(base);
    let name = format!("{base_name}_run{k}");
    // Two statements: CREATE DATABASE cannot run in the transaction a batch of them is.
    sql(admin_url, &format!("DROP DATABASE IF EXISTS {name}")).await?;
    sql(
        admin_url,
        &format!("CREATE DATABASE {name} TEMPLATE {base_name}"),
    )
    .await?;
    Ok(format!(
        "{}/{name}",
        base.rsplit_once('/').map_or(base, |(root, _)| root)
    ))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    anyhow::ensure!(status.success(), "copying {} failed", from.display());
    Ok(())
}

/// PostgreSQL's own cost of the rows the reconcile job moves: its inputs read out in one
/// COPY per side (the bytes read and dropped), and the rows it keeps written back with COPY
/// into tables like their own, keys and all: its non-MATCHED items, the exception cases it
/// opened, their events and the outbox's events of them. Seconds, all together.
async fn yardstick(url: &str, date: BusinessDate) -> anyhow::Result<f64> {
    let mut conn = connect(url).await?;
    // What the reconcile job wrote of its run, read before the clock starts, each with an
    // empty table like its own (indexes included) to write it to. Each run of the bench
    // works on a fresh copy of the day, so the exception events of the outbox are the run's.
    const KEPT: [(&str, &str); 4] = [
        (
            "recon_items",
            "SELECT i.* FROM recon_items i JOIN recon_runs r ON r.id = i.run_id WHERE r.is_current",
        ),
        (
            "exception_cases",
            "SELECT c.* FROM exception_cases c JOIN recon_runs r ON r.id = c.opened_run \
             WHERE r.is_current",
        ),
        (
            "exception_events",
            "SELECT e.* FROM exception_events e JOIN recon_runs r ON r.id = e.run_id \
             WHERE r.is_current",
        ),
        (
            "outbox",
            "SELECT * FROM outbox WHERE type LIKE 'co.recaudo.exception.%'",
        ),
    ];
    let mut kept = Vec::new();
    for (table, query) in KEPT {
        let rows: Vec<bytes::Bytes> = conn
            .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
            .await?
            .try_collect()
            .await?;
        sqlx::raw_sql(&format!(
            "DROP TABLE IF EXISTS yardstick_{table} CASCADE; \
             CREATE TABLE yardstick_{table} (LIKE {table} INCLUDING ALL)"
        ))
        .execute(&mut conn)
        .await?;
        // LIKE leaves the foreign keys out; the job's rows are checked against theirs.
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::regclass AND contype = 'f'",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await?;
        for key in keys {
            let key = KEPT.iter().fold(key, |key, (kept, _)| {
                key.replace(
                    &format!("REFERENCES {kept}("),
                    &format!("REFERENCES yardstick_{kept}("),
                )
            });
            sqlx::raw_sql(&format!("ALTER TABLE yardstick_{table} ADD {key}"))
                .execute(&mut conn)
                .await?;
        }
        kept.push((table, rows));
    }
    let operators: Vec<String> = sqlx::query_scalar("SELECT id FROM operators ORDER BY id")
        .fetch_all(&mut conn)
        .await?;
    let start = Instant::now();
    for query in reconcile::day::input_queries(date, &operators)? {
        let mut lines = 0usize;
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"
            ))
            .await?;
        while let Some(chunk) = out.try_next().await? {
            lines += chunk.iter().filter(|&&b| b == b'\n').count();
        }
        drop(out);
        anyhow::ensure!(lines > 1, "the yardstick read no rows: is the day there?");
    }
    for (table, rows) in &kept {
        let mut copy = conn
            .copy_in_raw(&format!("COPY yardstick_{table} FROM STDIN"))
            .await?;
        for chunk in rows {
            copy.send(chunk.clone()).await?;
        }
        copy.finish().await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    for (table, _) in kept.iter().rev() {
        sqlx::raw_sql(&format!("DROP TABLE yardstick_{table}"))
            .execute(&mut conn)
            .await?;
    }
    Ok(seconds)
}
