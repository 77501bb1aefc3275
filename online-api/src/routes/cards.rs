//! `/v1/cards/{card_id}/balance`: what a card holds. Cards belong to riders, not operators,
//! so any operator with `balances:read` may read any card's balance.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use ledger::CardId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::problem::Problem;

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    pub card_id: String,
    #[schema(example = "17050.00")]
    pub balance: String,
    pub currency: String,
    /// Set when field validations took the card below zero.
    pub flagged: bool,
}

/// Read a card's balance.
#[utoipa::path(
    get,
    path = "/v1/cards/{card_id}/balance",
    tag = "cards",
    params(("card_id" = String, Path, description = "The card number", pattern = "^[A-Z0-9]{1,32}$")),
    responses(
        (status = 200, description = "The card's balance (zero for a card never seen)", body = BalanceResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The card number is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["balances:read"]))
)]
pub async fn card_balance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(card_id): Path<String>,
) -> Result<Json<BalanceResponse>, Problem> {
    caller.require(Scope::BalancesRead)?;
    let card = CardId::parse(&card_id).map_err(Problem::invalid)?;
    let b = state
        .ledger
        .card_balance(&card)
        .await
        .map_err(Problem::from_ledger)?;
    Ok(Json(BalanceResponse {
        card_id: b.card_id.to_string(),
        balance: b.balance.to_decimal_string(),
        currency: b.balance.currency.to_string(),
        flagged: b.flagged,
    }))
}
