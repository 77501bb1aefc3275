//! The ledger's read queries, written once for both backends: sqlx binds `$N` on SQLite
//! too, so each function runs the same SQL on whichever pool a [`Database`] holds.

use crate::backend::Database;
use crate::business_date::BusinessDate;
use crate::error::LedgerError;
use crate::ids::{CardId, OperatorId};
use crate::journal::{CardBalance, CardEntry, InvariantReport, Sale, SaleId, card_account};
use crate::money::{Currency, Money};
use crate::on_pool;
use crate::operator::{Operator, TermsVersion};
use crate::rows::{
    CARD_ENTRIES_SQL, OPERATOR_COLUMNS, SALE_COLUMNS, entry_from_row, invariants,
    operator_from_row, operators_on, sale_from_row,
};

pub(crate) async fn card_balance(
    db: Database<'_>,
    currency: Currency,
    card: &CardId,
) -> Result<CardBalance, LedgerError> {
    let row: Option<(i64, bool)> = on_pool!(db, pool => {
        sqlx::query_as("SELECT balance, flagged FROM accounts WHERE id = $1")
            .bind(card_account(card))
            .fetch_optional(pool)
            .await?
    });
    let (balance, flagged) = row.unwrap_or((0, false));
    Ok(CardBalance {
        card_id: card.clone(),
        balance: Money::new(balance, currency),
        flagged,
    })
}

pub(crate) async fn card_entries(
    db: Database<'_>,
    currency: Currency,
    card: &CardId,
) -> Result<Vec<CardEntry>, LedgerError> {
    on_pool!(db, pool => {
        let rows = sqlx::query(CARD_ENTRIES_SQL)
            .bind(card.as_str())
            .fetch_all(pool)
            .await?;
        rows.iter().map(|r| entry_from_row(r, currency)).collect()
    })
}

pub(crate) async fn sale(
    db: Database<'_>,
    operator: &OperatorId,
    id: SaleId,
) -> Result<Option<Sale>, LedgerError> {
    let sql = format!("SELECT {SALE_COLUMNS} FROM sales WHERE id = $1 AND operator_id = $2");
    on_pool!(db, pool => {
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(operator.as_str())
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(sale_from_row).transpose()
    })
}

pub(crate) async fn operator_sales(
    db: Database<'_>,
    operator: &OperatorId,
    date: BusinessDate,
) -> Result<Vec<Sale>, LedgerError> {
    let sql = format!(
        "SELECT {SALE_COLUMNS} FROM sales WHERE operator_id = $1 \
           AND (business_date = $2 OR (voided_at IS NOT NULL AND void_business_date = $2)) \
         ORDER BY id"
    );
    on_pool!(db, pool => {
        let rows = sqlx::query(&sql)
            .bind(operator.as_str())
            .bind(date.naive())
            .fetch_all(pool)
            .await?;
        rows.iter().map(sale_from_row).collect()
    })
}

pub(crate) async fn operator_sales_page(
    db: Database<'_>,
    operator: &OperatorId,
    date: BusinessDate,
    after: Option<SaleId>,
    limit: u32,
) -> Result<Vec<Sale>, LedgerError> {
    let sql = format!(
        "SELECT {SALE_COLUMNS} FROM sales \
         WHERE operator_id = $1 AND business_date = $2 AND id > $3 ORDER BY id LIMIT $4"
    );
    on_pool!(db, pool => {
        let rows = sqlx::query(&sql)
            .bind(operator.as_str())
            .bind(date.naive())
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(sale_from_row).collect()
    })
}

pub(crate) async fn operator(
    db: Database<'_>,
    id: &OperatorId,
    date: BusinessDate,
) -> Result<Option<Operator>, LedgerError> {
    let sql = format!("{} WHERE o.id = $2", operators_on("$1"));
    on_pool!(db, pool => {
        let row = sqlx::query(&sql)
            .bind(date.naive())
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    })
}

pub(crate) async fn operators(
    db: Database<'_>,
    date: BusinessDate,
) -> Result<Vec<Operator>, LedgerError> {
    let sql = format!("{} ORDER BY o.id", operators_on("$1"));
    on_pool!(db, pool => {
        let rows = sqlx::query(&sql).bind(date.naive()).fetch_all(pool).await?;
        rows.iter().map(operator_from_row).collect()
    })
}

/// Every version of an operator's terms: those it was registered with first (no date),
/// then the terms in force from each change's effective date on.
pub(crate) async fn terms_versions(
    db: Database<'_>,
    id: &OperatorId,
) -> Result<Vec<TermsVersion>, LedgerError> {
    let base = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1");
    const VERSIONS: &str = "SELECT effective_from, recorded_at FROM operator_terms \
        WHERE operator_id = $1 ORDER BY effective_from";
    let (registered, changes): (
        Operator,
        Vec<(chrono::NaiveDate, chrono::DateTime<chrono::Utc>)>,
    ) = on_pool!(db, pool => {
        let Some(row) = sqlx::query(&base).bind(id.as_str()).fetch_optional(pool).await? else {
            return Err(LedgerError::UnknownOperator(id.to_string()));
        };
        (
            operator_from_row(&row)?,
            sqlx::query_as(VERSIONS).bind(id.as_str()).fetch_all(pool).await?,
        )
    });
    let mut versions = vec![TermsVersion {
        effective_from: None,
        recorded_at: None,
        terms: registered,
    }];
    for (from, recorded_at) in changes {
        let date = BusinessDate::from_naive(from);
        let terms = operator(db, id, date)
            .await?
            .ok_or_else(|| LedgerError::UnknownOperator(id.to_string()))?;
        versions.push(TermsVersion {
            effective_from: Some(date),
            recorded_at: Some(recorded_at),
            terms,
        });
    }
    Ok(versions)
}

/// Every invariant of the journal, read in one transaction so the checks see one snapshot
/// (on PostgreSQL a repeatable-read one; a SQLite read transaction is one in WAL mode), and
/// concurrent writers cannot make a sound ledger look unsound.
pub(crate) async fn check_invariants(db: Database<'_>) -> Result<InvariantReport, LedgerError> {
    let postgres = matches!(db, Database::Postgres(_));
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let (transactions, postings): (i64, i64) =
            sqlx::query_as(invariants::COUNTS).fetch_one(&mut *tx).await?;
        let report = InvariantReport {
            transactions,
            postings,
            unbalanced_transactions: sqlx::query_as(invariants::UNBALANCED)
                .fetch_all(&mut *tx)
                .await?,
            orphans: sqlx::query_scalar(invariants::ORPHANS)
                .fetch_all(&mut *tx)
                .await?,
            total_balance: sqlx::query_scalar(invariants::TOTAL)
                .fetch_one(&mut *tx)
                .await?,
            mismatched_accounts: sqlx::query_as(invariants::MISMATCHED)
                .fetch_all(&mut *tx)
                .await?,
        };
        tx.commit().await?;
        Ok(report)
    })
}
