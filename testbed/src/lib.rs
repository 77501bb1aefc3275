//! Test beds on the real services, for every crate's tests (and only its tests: nothing
//! but dev-dependencies names this crate): a fresh, migrated ledger per test on each
//! backend, and a fresh store ([`store`]). PostgreSQL is the real server named by `RECAUDO_TEST_DATABASE_URL` (default: the
//! local one on 127.0.0.1:5432); when it is unreachable a test is skipped on a laptop but
//! fails under CI (`CI` set), so CI never goes green without having run it.

use std::sync::Arc;

use ledger::{Ledger, LedgerSettings, connect};

pub mod events;
pub mod recon;
pub mod store;

pub const TEST_DATABASE_URL_VAR: &str = "RECAUDO_TEST_DATABASE_URL";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A ledger on a database that exists for one test.
pub struct TestLedger {
    pub url: String,
    pub ledger: Arc<dyn Ledger>,
    _dir: Option<tempfile::TempDir>,
}

/// Whether a missing service must fail the test rather than skip it.
pub fn services_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports a missing service: panics under CI, otherwise prints why the test is skipped.
pub fn service_missing(service: &str, detail: &str) {
    if services_required() {
        panic!("{service} is required under CI but is not reachable: {detail}");
    }
    eprintln!("skipping: {service} is not reachable ({detail}); run scripts/test to start it");
}

/// A recharge operator with the usual terms (3.5 % commission, 19 % tax on it, a 30-minute
/// void window, settled a day later), active, named after its id.
pub fn operator(id: &str) -> ledger::Operator {
    ledger::Operator {
        id: ledger::OperatorId::parse(id).expect("a valid operator id"),
        name: ledger::OperatorName::parse(id).expect("a valid name"),
        commission_rate: ledger::Rate::parse("commission_rate", "0.035").expect("a rate"),
        tax_rate: ledger::Rate::parse("tax_rate", "0.19").expect("a rate"),
        void_window: ledger::VoidWindow::parse("30m").expect("a window"),
        settlement_lag_days: 1,
        active: true,
    }
}

/// A fresh SQLite ledger in a temporary folder.
pub async fn sqlite_ledger(settings: LedgerSettings) -> TestLedger {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let ledger = connect(&url, settings).await.expect("SQLite ledger");
    TestLedger {
        url,
        ledger,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, created on the test server; `None` when the server is not
/// reachable outside CI.
pub async fn fresh_postgres_url() -> Option<String> {
    let admin =
        std::env::var(TEST_DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
    match ledger::postgres::create_database(&admin, "recaudo_test").await {
        Ok(url) => Some(url),
        Err(e) => {
            service_missing("PostgreSQL", &e.to_string());
            None
        }
    }
}

/// A fresh, migrated PostgreSQL ledger; `None` when the server is not reachable outside CI.
pub async fn postgres_ledger(settings: LedgerSettings) -> Option<TestLedger> {
    let url = fresh_postgres_url().await?;
    let ledger = connect(&url, settings).await.expect("PostgreSQL ledger");
    Some(TestLedger {
        url,
        ledger,
        _dir: None,
    })
}

/// The cached balance of account `id` (0 when it has never been posted to).
pub async fn account_balance(ledger: &dyn ledger::Ledger, id: &str) -> i64 {
    let balance: Option<i64> = ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .expect("an account's balance")
    });
    balance.unwrap_or(0)
}
