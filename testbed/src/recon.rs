//! A reconciliation run stored as the reconcile job stores it (the run, its non-MATCHED
//! items, made the date's current run), for the tests of what follows a run, such as
//! exception cases, without the engine.

use chrono::Utc;
use ledger::{BusinessDate, Ledger};

/// One non-MATCHED item: a side is (card, net amount), absent when that side lacks the key.
pub struct RunItem<'a> {
    pub operator_id: &'a str,
    pub operator_ref: &'a str,
    pub case_name: &'a str,
    pub ledger: Option<(&'a str, i64)>,
    pub file: Option<(&'a str, i64)>,
}

impl RunItem<'_> {
    /// Ledger − file, an absent side counting 0.
    pub fn difference(&self) -> i64 {
        self.ledger.map_or(0, |(_, a)| a) - self.file.map_or(0, |(_, a)| a)
    }
}

/// Stores run `run_id` of `date` with `items` and makes it the date's current run.
pub async fn store_run(
    ledger: &dyn Ledger,
    date: BusinessDate,
    run_id: &str,
    items: &[RunItem<'_>],
) {
    ledger::on_pool!(ledger.database(), pool => {
        let mut tx = pool.begin().await.expect("a transaction");
        sqlx::query(
            "INSERT INTO recon_runs (id, business_date, created_at, items, exceptions, is_current) \
             VALUES ($1, $2, $3, $4, $4, false)",
        )
        .bind(run_id)
        .bind(date.naive())
        .bind(Utc::now())
        .bind(items.len() as i64)
        .execute(&mut *tx)
        .await
        .expect("the run");
        for i in items {
            sqlx::query(
                "INSERT INTO recon_items (run_id, operator_id, operator_ref, case_name, \
                 ledger_card_id, file_card_id, ledger_amount, file_amount, difference) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(run_id)
            .bind(i.operator_id)
            .bind(i.operator_ref)
            .bind(i.case_name)
            .bind(i.ledger.map(|(c, _)| c))
            .bind(i.file.map(|(c, _)| c))
            .bind(i.ledger.map(|(_, a)| a))
            .bind(i.file.map(|(_, a)| a))
            .bind(i.difference())
            .execute(&mut *tx)
            .await
            .expect("an item");
        }
        sqlx::query("UPDATE recon_runs SET is_current = false WHERE business_date = $1")
            .bind(date.naive())
            .execute(&mut *tx)
            .await
            .expect("the old current run");
        sqlx::query("UPDATE recon_runs SET is_current = true WHERE id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .expect("the new current run");
        tx.commit().await.expect("the commit");
    });
}
