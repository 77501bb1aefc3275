//! Benchmark support shared by the `bench` commands: a fresh database to measure on, and
//! pgbench's built-in tpcb-like run as the yardstick of what the PostgreSQL server can commit.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum YardstickError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("pgbench could not run (install PostgreSQL's client tools): {0}")]
    Spawn(#[from] std::io::Error),
    #[error("pgbench failed: {0}")]
    Failed(String),
}

/// Creates an empty database on the server `admin_url` names and returns its URL.
pub async fn fresh_database(admin_url: &str) -> Result<String, YardstickError> {
    Ok(ledger::postgres::create_database(admin_url, "recaudo_bench").await?)
}

/// What pgbench committed in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgbenchRun {
    pub transactions: u64,
    pub seconds: u64,
}

impl PgbenchRun {
    /// Transactions per second, whole.
    pub fn tps(&self) -> u64 {
        self.transactions / self.seconds.max(1)
    }
}

/// Runs `pgbench -i -s 32` and then the built-in tpcb-like script with `clients` clients
/// for `seconds` on `db_url`.
pub async fn pgbench(
    db_url: &str,
    clients: usize,
    seconds: u64,
) -> Result<PgbenchRun, YardstickError> {
    let db_url = db_url.to_string();
    tokio::task::spawn_blocking(move || {
        let init = Command::new("pgbench")
            .args(["-i", "-q", "-s", "32", &db_url])
            .output()?;
        if !init.status.success() {
            return Err(YardstickError::Failed(
                String::from_utf8_lossy(&init.stderr).into(),
            ));
        }
        let out = Command::new("pgbench")
            .args([
                "-b",
                "tpcb-like",
                "-c",
                &clients.to_string(),
                "-j",
                "2",
                "-T",
            ])
            .arg(seconds.to_string())
            .arg(&db_url)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            return Err(YardstickError::Failed(
                String::from_utf8_lossy(&out.stderr).into(),
            ));
        }
        let transactions = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("number of transactions actually processed: ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            })
            .ok_or_else(|| YardstickError::Failed(format!("no transaction count in: {text}")))?;
        Ok(PgbenchRun {
            transactions,
            seconds,
        })
    })
    .await
    .map_err(|e| YardstickError::Failed(e.to_string()))?
}
