//! An operator's statement of account: the movements of `operator:{op}:receivable` over a
//! range of business dates, with the balance before and after (DESIGN.md, Online API,
//! `GET /v1/statement`). A day's sales and a day's voids are one movement each (an operator
//! reads its own sales elsewhere, one by one); every settlement, correction, payment and
//! assignment is its own, named by its document.

use chrono::NaiveDate;

use crate::backend::Database;
use crate::business_date::BusinessDate;
use crate::error::LedgerError;
use crate::ids::OperatorId;
use crate::journal::receivable_account;

/// One movement of the receivable. `amount` is signed as postings are (credit positive: a
/// sale is negative, a payment positive).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivableMovement {
    pub business_date: NaiveDate,
    /// `sales`, `voids`, `settlement`, `adjustment`, `writeoff`, `deposit` or `assignment`.
    pub kind: String,
    /// The document that caused it; none for a day's sales or voids.
    pub document: Option<String>,
    /// How many sales or voids it sums (1 for the others).
    pub count: i64,
    pub amount: i64,
}

/// The receivable's balance before `from`, each movement of the range, and after `to`
/// (credit positive, so a debt is negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivableStatement {
    pub opening: i64,
    pub movements: Vec<ReceivableMovement>,
    pub closing: i64,
}

/// Every movement of the receivable from `from` on (to `to`, when given), in order: by
/// business date, then sales, voids, settlements, corrections and payments, each in the
/// order it was posted.
const MOVEMENTS: &str = "
SELECT business_date, kind, document, count, amount FROM (
    SELECT business_date, 'sales' AS kind, NULL AS document, 0 AS rank, MIN(transaction_id) AS seq,
           COUNT(*) AS count, CAST(-SUM(amount) AS BIGINT) AS amount
      FROM sales WHERE operator_id = $1 AND business_date >= $2 AND ($3 IS NULL OR business_date <= $3)
     GROUP BY business_date
    UNION ALL
    SELECT void_business_date, 'voids', NULL, 1, MIN(void_transaction_id), COUNT(*),
           CAST(SUM(amount) AS BIGINT)
      FROM sales WHERE operator_id = $1 AND voided_at IS NOT NULL
       AND void_business_date >= $2 AND ($3 IS NULL OR void_business_date <= $3)
     GROUP BY void_business_date
    UNION ALL
    SELECT business_date, 'settlement', document, 2, transaction_id, 1, commission + commission_tax
      FROM settlements WHERE operator_id = $1 AND business_date >= $2
       AND ($3 IS NULL OR business_date <= $3)
    UNION ALL
    SELECT business_date, kind, document, 3, transaction_id, 1, receivable
      FROM corrections WHERE operator_id = $1 AND business_date >= $2
       AND ($3 IS NULL OR business_date <= $3)
    UNION ALL
    SELECT business_date, kind, document, 4, transaction_id, 1, amount
      FROM deposits WHERE operator_id = $1 AND business_date >= $2
       AND ($3 IS NULL OR business_date <= $3)
) m
ORDER BY business_date, rank, seq";

/// The statement of `operator`'s receivable for `from`..=`to`, read in one snapshot: the
/// opening balance is today's balance less everything posted from `from` on, so it reads only
/// the range and what came after it, never the operator's whole history.
pub(crate) async fn statement(
    db: Database<'_>,
    operator: &OperatorId,
    from: BusinessDate,
    to: BusinessDate,
) -> Result<ReceivableStatement, LedgerError> {
    let postgres = matches!(db, Database::Postgres(_));
    crate::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM accounts WHERE id = $1")
            .bind(receivable_account(operator))
            .fetch_optional(&mut *tx)
            .await?;
        let since: Vec<ReceivableMovement> = sqlx::query_as(MOVEMENTS)
            .bind(operator.as_str())
            .bind(from.naive())
            .bind(None::<NaiveDate>)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let opening = balance.unwrap_or(0) - since.iter().map(|m| m.amount).sum::<i64>();
        let movements: Vec<ReceivableMovement> = since
            .into_iter()
            .filter(|m| m.business_date <= to.naive())
            .collect();
        let closing = opening + movements.iter().map(|m| m.amount).sum::<i64>();
        Ok(ReceivableStatement { opening, movements, closing })
    })
}
