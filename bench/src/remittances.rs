//! `recaudo-bench remittances`: bank statements (camt.053, written by the fixtures) for N
//! entries over M operators, taken in on a fresh PostgreSQL database (parsed, checked and
//! staged by `ingest::bank_files`), then matched and posted (`remittances`), timed step by
//! step with the peak memory. The yardstick beside it is PostgreSQL's COPY of the same
//! entries and of the two postings each makes: the bare cost of writing those rows.

use std::time::Instant;

use chrono::{Days, NaiveDate};
use fixtures::{Fixture, FixtureConfig, Owed};
use ledger::{BusinessDate, Ledger, LedgerSettings, MoneyRules};
use storage::ObjectStore;

use crate::{fresh_database, peak_rss_mib};

const ACCOUNT: &str = "CO12BENCH000000001";

pub struct RemittanceSettings {
    pub postgres_url: String,
    pub entries: u64,
    pub operators: usize,
    pub ledger: LedgerSettings,
    pub rules: MoneyRules,
}

pub async fn run(s: RemittanceSettings) -> anyhow::Result<()> {
    let first = NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date");
    let mut fc = FixtureConfig::new(11, BusinessDate::from_naive(first), 1_000);
    fc.operators = s.operators.max(5);
    let fixture = Fixture::new(fc);
    // One line per operator and day, due two days later, until the entries are reached.
    let days = s.entries.div_ceil(fixture.config.operators as u64);
    let owed: Vec<Owed> = (0..days)
        .flat_map(|d| {
            (0..fixture.config.operators).map(move |op| {
                let day = first + Days::new(d);
                Owed {
                    operator_id: format!("OP{:03}", op + 1),
                    settles_date: day,
                    due_date: day + Days::new(2),
                    amount: 100_000 + ((op as i64 * 7_919 + d as i64 * 104_729) % 5_000_000),
                }
            })
        })
        .take(s.entries as usize)
        .collect();
    eprintln!("writing the bank statements for {} lines …", owed.len());
    let (files, truth) = fixture.bank_statements(ACCOUNT, &owed);
    let dir = tempfile::tempdir()?;
    let store = storage::LocalStore::new(dir.path())?;
    let mut bytes = 0usize;
    for f in &files {
        bytes += f.camt053.len();
        let key = format!("bank/incoming/{ACCOUNT}/{}/statement.xml", f.booking_date);
        store.put(&key, f.camt053.clone().into()).await?;
    }
    let entries = truth.payments.len() + truth.fees.len();
    let url = fresh_database(&s.postgres_url).await?;
    let ledger = ledger::connect(&url, s.ledger).await?;
    fixture.register_operators(&*ledger).await?;
    for (op, account) in &truth.payer_accounts {
        let id = ledger::OperatorId::parse(op)?;
        remittances::payer_account::set(
            ledger.database(),
            account,
            &id,
            "bench",
            chrono::Utc::now(),
        )
        .await?;
    }
    // Parsing alone, for the table: what the ingest step spends outside the database.
    let ours = vec![ACCOUNT.to_string()];
    let start = Instant::now();
    for f in &files {
        ingest::bank_statement::parse_camt053(f.camt053.as_bytes(), &s.rules, &ours)
            .map_err(|e| anyhow::anyhow!("a fixtures statement does not parse: {e:?}"))?;
    }
    let parse_s = start.elapsed().as_secs_f64();
    let before = peak_rss_mib();
    eprintln!(
        "{} statements, {entries} entries: taking them in …",
        files.len()
    );
    let start = Instant::now();
    let report = ingest::bank_files::ingest_statements(&store, &*ledger, s.rules, &ours).await?;
    let ingest_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.rejected.is_empty() && report.records as usize == entries,
        "unexpected ingest: {} rejected, {} entries",
        report.rejected.len(),
        report.records
    );
    eprintln!("matching and posting them …");
    let start = Instant::now();
    let matched = remittances::match_new_entries(&*ledger, chrono::Utc::now()).await?;
    let match_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(matched.total() as usize == entries, "posted {matched:?}");
    let peak = peak_rss_mib();
    let invariants = ledger.check_invariants().await?;
    anyhow::ensure!(invariants.is_sound(), "{invariants:?}");

    eprintln!("yardstick: COPY of the same rows …");
    let yardstick_s = copy_yardstick(&*ledger, &truth).await?;
    let total = ingest_s + match_s;
    let rate = |secs: f64| format!("{:.0}", entries as f64 / secs);
    jobs::table::print(
        &["step", "entries", "seconds", "entries/s"],
        &[
            vec![
                format!(
                    "parse + check + stage ({:.1} MiB of camt.053)",
                    bytes as f64 / 1_048_576.0
                ),
                entries.to_string(),
                format!("{ingest_s:.2}"),
                rate(ingest_s),
            ],
            vec![
                "  of which parsing alone (in memory, run apart)".into(),
                entries.to_string(),
                format!("{parse_s:.2}"),
                rate(parse_s),
            ],
            vec![
                "match + post".into(),
                entries.to_string(),
                format!("{match_s:.2}"),
                rate(match_s),
            ],
            vec![
                "total".into(),
                entries.to_string(),
                format!("{total:.2}"),
                rate(total),
            ],
            vec![
                "yardstick: COPY of the entries and their postings".into(),
                entries.to_string(),
                format!("{yardstick_s:.2}"),
                rate(yardstick_s),
            ],
        ],
    );
    println!(
        "entries={entries} statements={} seconds={total:.2} entries_per_s={:.0} peak_mib={peak} (+{}) yardstick_s={yardstick_s:.2} ratio={:.2}",
        files.len(),
        entries as f64 / total,
        peak.saturating_sub(before),
        total / yardstick_s
    );
    Ok(())
}

/// COPY of one row per entry and two per posting into plain tables shaped like ours.
async fn copy_yardstick(ledger: &dyn Ledger, truth: &fixtures::BankTruth) -> anyhow::Result<f64> {
    let ledger::Database::Postgres(pool) = ledger.database() else {
        anyhow::bail!("the yardstick runs on PostgreSQL");
    };
    for create in [
        "CREATE TABLE yard_entries (LIKE bank_entries)",
        "CREATE TABLE yard_postings (LIKE postings)",
    ] {
        sqlx::query(create).execute(pool).await?;
    }
    let mut entries = String::new();
    let mut postings = String::new();
    for (i, p) in truth.payments.iter().enumerate() {
        entries.push_str(&format!(
            "{ACCOUNT},{},1,{i},{},{},CREDIT,{},COP,\"{}\",\"{}\",{}\n",
            p.bank_ref,
            p.booking_date,
            p.booking_date,
            p.amount,
            p.reference.as_deref().unwrap_or(""),
            p.payer_name.replace('"', "\"\""),
            p.payer_account
        ));
        postings.push_str(&format!(
            "{i},bank:{ACCOUNT},{}\n{i},operator:{}:receivable,{}\n",
            -p.amount, p.operator_id, p.amount
        ));
    }
    let start = Instant::now();
    for (table, csv) in [("yard_entries", entries), ("yard_postings", postings)] {
        let mut conn = pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN WITH (FORMAT csv)"))
            .await?;
        copy.send(csv.into_bytes()).await?;
        copy.finish().await?;
    }
    Ok(start.elapsed().as_secs_f64())
}
