//! `recaudo-bench reconcile --rows N`: the engine against DuckDB on the same Parquet files.
//! Each engine runs in its own process so each peak memory is its own.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fixtures::{Fixture, FixtureConfig};
use ledger::BusinessDate;
use polars::prelude::*;
use reconcile::source::{FileColumns, LedgerColumns, days};

const CHUNK: u64 = 1_000_000;

/// The generator child: writes both sides under `dir` and prints the date (days).
pub fn generate_child(rows: u64, dir: &Path) -> anyhow::Result<()> {
    println!("{}", generate(rows, dir)?);
    Ok(())
}

/// Writes the ledger side and the file side of a fixtures day with `rows` sales.
fn generate(rows: u64, dir: &Path) -> anyhow::Result<i32> {
    let date = BusinessDate::parse("2026-11-26")?;
    let mut config = FixtureConfig::new(2026, date, rows);
    config.operators = 500;
    config.cards = rows / 2 + 10;
    let fixture = Fixture::new(config);
    let d = days(date);
    let mut ledger_writer: Option<polars::io::parquet::write::BatchedWriter<File>> = None;
    let mut file_chunks = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + CHUNK).min(rows);
        let mut l = LedgerColumns::default();
        let mut f = FileColumns::default();
        for i in start..end {
            let s = fixture.sale(i);
            let op = fixture.operator_id(s.operator).to_string();
            if s.in_ledger {
                l.operator_id.push(op.clone());
                l.operator_ref.push(s.operator_ref.clone());
                l.card_id.push(s.card_id.clone());
                l.amount.push(s.amount_minor);
                l.occurred_at.push(s.occurred_at.timestamp_micros());
                l.business_date.push(d);
                l.voided.push(s.voided_at.is_some());
            }
            for (line, r) in fixture.file_records(&s).into_iter().enumerate() {
                f.operator_id.push(op.clone());
                f.operator_ref.push(r.operator_ref);
                f.card_id.push(r.card_id);
                f.amount.push(r.amount_minor);
                f.occurred_at.push(r.occurred_at.timestamp_micros());
                f.file_date.push(days(r.file_date));
                f.kind.push(match r.kind {
                    fixtures::RecordKind::Sale => "SALE".into(),
                    fixtures::RecordKind::Void => "VOID".into(),
                });
                f.voided_ref.push(r.voided_ref);
                f.line.push((i * 4 + line as u64) as i64);
            }
        }
        let (l, f) = (l.into_frame()?, f.into_frame()?);
        let lw = match &mut ledger_writer {
            Some(w) => w,
            None => ledger_writer.insert(
                ParquetWriter::new(File::create(dir.join("ledger.parquet"))?)
                    .batched(l.schema())?,
            ),
        };
        lw.write_batch(&l)?;
        file_chunks.push(f.lazy());
        start = end;
    }
    if let Some(w) = ledger_writer {
        w.finish()?;
    }
    // The file side is stored one operator after another, as staged records are: each
    // operator's file is loaded as a unit. (The ledger stays in the order sales happened.)
    let mut file = concat(file_chunks, UnionArgs::default())?
        .sort(["operator_id", "line"], SortMultipleOptions::default())
        .collect()?;
    ParquetWriter::new(File::create(dir.join("file.parquet"))?)
        .with_row_group_size(Some(100_000))
        .finish(&mut file)?;
    Ok(d)
}

/// The child: reconcile two Parquet files into `out`; prints `seconds peak_mib items`.
pub fn engine(ledger: &str, file: &str, out: &str, date: i32) -> anyhow::Result<()> {
    let start = Instant::now();
    let l = LazyFrame::scan_parquet(PlRefPath::from(ledger), ScanArgsParquet::default())?;
    let f = LazyFrame::scan_parquet(PlRefPath::from(file), ScanArgsParquet::default())?;
    // Each part's items go to the file as they come, written on their own thread while the
    // engine works on the next part, as a production sink would.
    let (parts, received) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    let out = out.to_string();
    let writer = std::thread::spawn(move || -> anyhow::Result<usize> {
        let mut writer = None;
        let mut items = 0;
        for part in received {
            items += part.height();
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(
                    ParquetWriter::new(File::create(&out)?)
                        .with_compression(ParquetCompression::Snappy)
                        .batched(part.schema())?,
                ),
            };
            w.write_batch(&part)?;
        }
        if let Some(w) = writer {
            w.finish()?;
        }
        Ok(items)
    });
    let reconciled =
        reconcile::reconcile_in_parts(l, f, date, reconcile::engine::PART_ROWS, |part| {
            // A send fails only when the writer has stopped; its own error is reported below.
            let _ = parts.send(part);
            Ok(())
        });
    drop(parts);
    let items = writer.join().expect("the writer thread does not panic")?;
    reconciled?;
    println!(
        "{:.3} {} {}",
        start.elapsed().as_secs_f64(),
        crate::peak_rss_mib(),
        items
    );
    Ok(())
}

const DUCKDB_VERSION: &str = "2.0.1";

/// A Python with DuckDB, installed into a private virtualenv on first use.
fn duckdb_python() -> anyhow::Result<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let venv = PathBuf::from(home).join(".cache/recaudo/services/duckdb-venv");
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args([
            "-c",
            &format!("import duckdb, sys; sys.exit(duckdb.__version__ != '{DUCKDB_VERSION}')"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "installing duckdb {DUCKDB_VERSION} with pip into {}",
            venv.display()
        );
        anyhow::ensure!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()?
                .success(),
            "python3 -m venv failed"
        );
        anyhow::ensure!(
            Command::new(venv.join("bin/pip"))
                .args(["install", "-q", &format!("duckdb=={DUCKDB_VERSION}")])
                .status()?
                .success(),
            "pip install duckdb failed"
        );
    }
    Ok(python)
}

/// The same classification in SQL: a FULL OUTER JOIN, sorted, into Parquet. The file side's
/// duplicates are found in one GROUP BY (min <> max of card or amount): DuckDB's fastest form
/// we found, 10% faster than grouping the distinct contents first and counting them.
fn duckdb_sql(ledger: &str, file: &str, out: &str, d: i32) -> String {
    format!(
        r#"
COPY (
WITH f AS (SELECT * FROM read_parquet('{file}')),
l AS (SELECT * FROM read_parquet('{ledger}')),
fv AS (SELECT DISTINCT operator_id, voided_ref AS operator_ref FROM f WHERE kind = 'VOID'),
g2 AS (SELECT file_date, operator_id, operator_ref,
              min(card_id) <> max(card_id) OR min(amount) <> max(amount) AS differing,
              arg_min(card_id, line) AS card_id, arg_min(amount, line) AS amount,
              arg_min(occurred_at, line) AS occurred_at
         FROM f WHERE kind = 'SALE' GROUP BY ALL),
fd AS (SELECT g2.*, fv.operator_ref IS NOT NULL AS f_voided
         FROM g2 LEFT JOIN fv USING (operator_id, operator_ref) WHERE file_date = {d}),
fa AS (SELECT DISTINCT operator_id, operator_ref FROM g2 WHERE file_date <> {d}),
ld AS (SELECT * FROM l WHERE business_date = {d}),
la AS (SELECT DISTINCT operator_id, operator_ref FROM l WHERE business_date <> {d}),
j AS (SELECT coalesce(ld.operator_id, fd.operator_id) AS operator_id,
             coalesce(ld.operator_ref, fd.operator_ref) AS operator_ref,
             ld.card_id AS l_card, fd.card_id AS f_card, ld.amount AS l_amount,
             fd.amount AS f_amount, ld.voided AS l_voided, fd.f_voided, fd.differing,
             ld.occurred_at AS l_at, fd.occurred_at AS f_at,
             ld.operator_id IS NOT NULL AS l_present, fd.operator_id IS NOT NULL AS f_present
        FROM ld FULL OUTER JOIN fd
          ON ld.operator_id = fd.operator_id AND ld.operator_ref = fd.operator_ref),
k AS (SELECT j.*,
             CASE WHEN l_present THEN CASE WHEN l_voided THEN 0 ELSE l_amount END END AS ledger_amount,
             CASE WHEN f_present THEN CASE WHEN f_voided THEN 0 ELSE f_amount END END AS file_amount,
             la.operator_id IS NOT NULL AS in_l_adj, fa.operator_id IS NOT NULL AS in_f_adj
        FROM j LEFT JOIN la USING (operator_id, operator_ref)
               LEFT JOIN fa USING (operator_id, operator_ref))
SELECT {d} AS business_date, operator_id, operator_ref,
       CASE WHEN l_present AND f_present THEN
              CASE WHEN differing THEN 'DUPLICATE_IN_FILE'
                   WHEN l_amount <> f_amount THEN 'AMOUNT_MISMATCH'
                   WHEN l_card <> f_card THEN 'CARD_MISMATCH'
                   WHEN l_voided <> f_voided THEN 'STATUS_MISMATCH'
                   ELSE 'MATCHED' END
            WHEN l_present THEN CASE WHEN in_f_adj THEN 'TIMING' ELSE 'MISSING_IN_FILE' END
            ELSE CASE WHEN in_l_adj THEN 'TIMING' ELSE 'MISSING_IN_LEDGER' END END AS "case",
       l_card AS ledger_card_id, f_card AS file_card_id, ledger_amount, file_amount,
       coalesce(ledger_amount, 0) - coalesce(file_amount, 0) AS difference,
       l_at AS ledger_occurred_at, f_at AS file_occurred_at
  FROM k ORDER BY operator_id, operator_ref
) TO '{out}' (FORMAT parquet);
"#
    )
}

/// What GNU time measured of a child.
pub(crate) struct Timed {
    pub(crate) seconds: f64,
    pub(crate) peak_mib: u64,
    /// `user=… sys=…` CPU seconds.
    pub(crate) cpu: String,
    pub(crate) stdout: String,
    /// What the program logged (and GNU time's lines).
    pub(crate) stderr: String,
}

/// The `recaudo` binary built beside the benchmark and GNU time, for the benchmarks that
/// run the jobs as ops does (each its own process).
pub(crate) fn recaudo_under_time() -> anyhow::Result<(PathBuf, PathBuf)> {
    let recaudo = std::env::current_exe()?.with_file_name("recaudo");
    anyhow::ensure!(
        recaudo.exists(),
        "{} is missing: build it beside the benchmark (cargo build --release -p jobs -p bench)",
        recaudo.display()
    );
    let time_bin = PathBuf::from("/usr/bin/time");
    anyhow::ensure!(
        time_bin.exists(),
        "/usr/bin/time is needed (Debian package `time`)"
    );
    Ok((recaudo, time_bin))
}

/// `program` run under GNU time, which reports what `timed` reads back.
pub(crate) fn under_time(time_bin: &Path, program: &Path) -> Command {
    let mut cmd = Command::new(time_bin);
    cmd.args(["-f", "cpu: user=%U sys=%S\npeak_kib=%M"])
        .arg(program);
    cmd
}

/// Runs a command, returning its wall time, CPU time and peak RSS as GNU time measures them.
pub(crate) fn timed(cmd: &mut Command) -> anyhow::Result<Timed> {
    let start = Instant::now();
    let out = cmd.output()?;
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak_kib: u64 = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let cpu = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("cpu: "))
        .unwrap_or_default()
        .to_string();
    Ok(Timed {
        seconds,
        peak_mib: peak_kib / 1024,
        cpu,
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: stderr.to_string(),
    })
}

fn case_counts(path: &Path) -> anyhow::Result<DataFrame> {
    Ok(LazyFrame::scan_parquet(
        PlRefPath::from(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )?
    .group_by([col("case")])
    .agg([len().alias("items")])
    .sort(["case"], SortMultipleOptions::default())
    .collect()?)
}

/// The median wall time of some runs (the upper one of the middle two when even).
pub(crate) fn median(runs: &[Timed]) -> f64 {
    let mut seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

pub async fn run(rows: u64, dir: Option<PathBuf>, runs: u32) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "generating {rows} sales per side into Parquet under {} …",
        dir.display()
    );
    let exe = std::env::current_exe()?;
    // In a process of its own, so that neither engine runs beside the generator's few GiB.
    let generated = Command::new(&exe)
        .args(["reconcile-generate", &rows.to_string()])
        .arg(&dir)
        .output()?;
    anyhow::ensure!(
        generated.status.success(),
        "generating the inputs failed: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let d: i32 = String::from_utf8_lossy(&generated.stdout).trim().parse()?;
    // The inputs on disk before either engine starts, so the first one timed does not pay
    // for flushing what the generator wrote.
    for name in ["ledger.parquet", "file.parquet"] {
        File::open(dir.join(name))?.sync_all()?;
    }
    let p = |name: &str| dir.join(name).to_string_lossy().to_string();
    let time_bin = Path::new("/usr/bin/time");
    anyhow::ensure!(
        time_bin.exists(),
        "/usr/bin/time is needed (Debian package `time`)"
    );

    let engine_run = || {
        timed(
            under_time(time_bin, &exe)
                .args([
                    "reconcile-engine",
                    &p("ledger.parquet"),
                    &p("file.parquet"),
                    &p("engine.parquet"),
                ])
                .arg(d.to_string()),
        )
    };
    let python = duckdb_python()?;
    let script = format!(
        "import duckdb\ncon = duckdb.connect()\ncon.execute({:?})\n",
        duckdb_sql(
            &p("ledger.parquet"),
            &p("file.parquet"),
            &p("duckdb.parquet"),
            d
        )
    );
    let duck_run = || timed(under_time(time_bin, &python).args(["-c", &script]));
    // The two take turns, so a slow spell of a shared machine falls on both.
    let (mut engine, mut duck) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        eprintln!("run {run} of {runs}: the engine …");
        engine.push(engine_run()?);
        eprintln!("run {run} of {runs}: the same in DuckDB …");
        duck.push(duck_run()?);
    }
    let items: u64 = engine[0]
        .stdout
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (ours, theirs) = (
        case_counts(&dir.join("engine.parquet"))?,
        case_counts(&dir.join("duckdb.parquet"))?,
    );
    anyhow::ensure!(
        ours.equals(&theirs),
        "the engines disagree:\n{ours}\n{theirs}"
    );
    println!("{ours}");
    for (e, k) in engine.iter().zip(&duck) {
        println!(
            "engine  items={items} seconds={:.2} peak_mib={} cpu: {}",
            e.seconds, e.peak_mib, e.cpu
        );
        println!(
            "duckdb  seconds={:.2} peak_mib={} cpu: {}",
            k.seconds, k.peak_mib, k.cpu
        );
    }
    let (seconds, duck_seconds) = (median(&engine), median(&duck));
    let peak = engine.iter().map(|e| e.peak_mib).max().unwrap_or(0);
    println!(
        "rows={rows} seconds={seconds:.2} peak_mib={peak} duckdb_seconds={duck_seconds:.2} ratio={:.2}",
        seconds / duck_seconds
    );
    Ok(())
}
