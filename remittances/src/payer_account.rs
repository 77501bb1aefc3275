//! The accounts operators pay from (`recaudo operators set OP --payer-account ACCOUNT`): a
//! credit from a registered account is that operator's whatever its text says. An account
//! belongs to one operator at a time; registering it again for another moves it, in the name
//! of the person who did it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ledger::{Database, InvalidInput, OperatorId};
use serde::Serialize;

use crate::RemittanceError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PayerAccount {
    pub account: String,
    pub operator_id: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
}

/// Registers `account` as `operator`'s (the operator must exist).
pub async fn set(
    db: Database<'_>,
    account: &str,
    operator: &OperatorId,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), RemittanceError> {
    let account = account.trim();
    if account.is_empty() || account.len() > 64 || account.chars().any(char::is_whitespace) {
        return Err(InvalidInput::new(
            "payer_account",
            "an account number of 1 to 64 characters, without spaces",
        )
        .into());
    }
    if actor.trim().is_empty() {
        return Err(InvalidInput::new("actor", "a change names the person who made it").into());
    }
    ledger::on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO payer_accounts (account, operator_id, actor, recorded_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account) DO UPDATE SET \
             operator_id = excluded.operator_id, actor = excluded.actor, \
             recorded_at = excluded.recorded_at",
        )
        .bind(account)
        .bind(operator.as_str())
        .bind(actor)
        .bind(at)
        .execute(pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                RemittanceError::Ledger(ledger::LedgerError::UnknownOperator(operator.to_string()))
            }
            _ => e.into(),
        })?;
    });
    Ok(())
}

/// Every registered account, by account.
pub async fn all(db: Database<'_>) -> Result<Vec<PayerAccount>, RemittanceError> {
    Ok(ledger::on_pool!(db, pool => {
        sqlx::query_as("SELECT account, operator_id, actor, recorded_at FROM payer_accounts ORDER BY account")
            .fetch_all(pool)
            .await?
    }))
}

/// Account → operator, for matching.
pub async fn registry(db: Database<'_>) -> Result<HashMap<String, String>, RemittanceError> {
    Ok(all(db)
        .await?
        .into_iter()
        .map(|p| (p.account, p.operator_id))
        .collect())
}
