//! The ledger's read queries, written once for both backends: sqlx binds `$N` on SQLite
//! too, so `pg` and `sqlite` are the same functions over each pool type.

macro_rules! reads {
    ($module:ident, $pool:ty, $conn:ty) => {
        pub(crate) mod $module {
            use crate::business_date::BusinessDate;
            use crate::error::LedgerError;
            use crate::ids::{CardId, OperatorId};
            use crate::journal::{
                CardBalance, CardEntry, InvariantReport, Sale, SaleId, card_account,
            };
            use crate::money::{Currency, Money};
            use crate::operator::Operator;
            use crate::rows::{
                CARD_ENTRIES_SQL, OPERATOR_COLUMNS, SALE_COLUMNS, entry_from_row, invariants,
                operator_from_row, sale_from_row,
            };

            pub(crate) async fn card_balance(
                pool: &$pool,
                currency: Currency,
                card: &CardId,
            ) -> Result<CardBalance, LedgerError> {
                let row: Option<(i64, bool)> =
                    sqlx::query_as("SELECT balance, flagged FROM accounts WHERE id = $1")
                        .bind(card_account(card))
                        .fetch_optional(pool)
                        .await?;
                let (balance, flagged) = row.unwrap_or((0, false));
                Ok(CardBalance {
                    card_id: card.clone(),
                    balance: Money::new(balance, currency),
                    flagged,
                })
            }

            pub(crate) async fn card_entries(
                pool: &$pool,
                currency: Currency,
                card: &CardId,
            ) -> Result<Vec<CardEntry>, LedgerError> {
                let rows = sqlx::query(CARD_ENTRIES_SQL)
                    .bind(card.as_str())
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(|r| entry_from_row(r, currency)).collect()
            }

            pub(crate) async fn sale(
                pool: &$pool,
                operator: &OperatorId,
                id: SaleId,
            ) -> Result<Option<Sale>, LedgerError> {
                let row = sqlx::query(&format!(
                    "SELECT {SALE_COLUMNS} FROM sales WHERE id = $1 AND operator_id = $2"
                ))
                .bind(id)
                .bind(operator.as_str())
                .fetch_optional(pool)
                .await?;
                row.as_ref().map(sale_from_row).transpose()
            }

            pub(crate) async fn operator_sales(
                pool: &$pool,
                operator: &OperatorId,
                date: BusinessDate,
            ) -> Result<Vec<Sale>, LedgerError> {
                let rows = sqlx::query(&format!(
                    "SELECT {SALE_COLUMNS} FROM sales WHERE operator_id = $1 \
                       AND (business_date = $2 \
                            OR (voided_at IS NOT NULL AND void_business_date = $2)) \
                     ORDER BY id"
                ))
                .bind(operator.as_str())
                .bind(date.naive())
                .fetch_all(pool)
                .await?;
                rows.iter().map(sale_from_row).collect()
            }

            pub(crate) async fn operator_sales_page(
                pool: &$pool,
                operator: &OperatorId,
                date: BusinessDate,
                after: Option<SaleId>,
                limit: u32,
            ) -> Result<Vec<Sale>, LedgerError> {
                let rows = sqlx::query(&format!(
                    "SELECT {SALE_COLUMNS} FROM sales \
                     WHERE operator_id = $1 AND business_date = $2 AND id > $3 \
                     ORDER BY id LIMIT $4"
                ))
                .bind(operator.as_str())
                .bind(date.naive())
                .bind(after.unwrap_or(0))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
                rows.iter().map(sale_from_row).collect()
            }

            pub(crate) async fn operator(
                pool: &$pool,
                id: &OperatorId,
            ) -> Result<Option<Operator>, LedgerError> {
                let row = sqlx::query(&format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(pool)
                .await?;
                row.as_ref().map(operator_from_row).transpose()
            }

            pub(crate) async fn operators(pool: &$pool) -> Result<Vec<Operator>, LedgerError> {
                let rows = sqlx::query(&format!(
                    "SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY id"
                ))
                .fetch_all(pool)
                .await?;
                rows.iter().map(operator_from_row).collect()
            }

            /// Every invariant of the journal, read inside the caller's transaction so the
            /// checks see one snapshot.
            pub(crate) async fn check_invariants(
                conn: &mut $conn,
            ) -> Result<InvariantReport, LedgerError> {
                let (transactions, postings): (i64, i64) = sqlx::query_as(invariants::COUNTS)
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(InvariantReport {
                    transactions,
                    postings,
                    unbalanced_transactions: sqlx::query_as(invariants::UNBALANCED)
                        .fetch_all(&mut *conn)
                        .await?,
                    orphans: sqlx::query_scalar(invariants::ORPHANS)
                        .fetch_all(&mut *conn)
                        .await?,
                    total_balance: sqlx::query_scalar(invariants::TOTAL)
                        .fetch_one(&mut *conn)
                        .await?,
                    mismatched_accounts: sqlx::query_as(invariants::MISMATCHED)
                        .fetch_all(&mut *conn)
                        .await?,
                })
            }
        }
    };
}

reads!(pg, sqlx::PgPool, sqlx::PgConnection);
reads!(sqlite, sqlx::SqlitePool, sqlx::SqliteConnection);
