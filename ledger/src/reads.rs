//! The ledger's read queries, written once for both backends: sqlx binds `$N` on SQLite
//! too, so `pg` and `sqlite` are the same functions over each pool type.

macro_rules! reads {
    ($module:ident, $pool:ty) => {
        pub(crate) mod $module {
            use crate::business_date::BusinessDate;
            use crate::error::LedgerError;
            use crate::ids::{CardId, OperatorId};
            use crate::journal::{CardBalance, CardEntry, Sale, SaleId, card_account};
            use crate::money::{Currency, Money};
            use crate::operator::Operator;
            use crate::rows::{
                OPERATOR_COLUMNS, SALE_COLUMNS, card_entries_sql, entry_from_row,
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
                let rows = sqlx::query(&card_entries_sql("$1"))
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
        }
    };
}

reads!(pg, sqlx::PgPool);
reads!(sqlite, sqlx::SqlitePool);
