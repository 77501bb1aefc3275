//! `/v1/cards/{card_id}`: what a card holds and whether it is blocked, and what a rider asks
//! for at an operator: blocking a lost, stolen or damaged card, and moving its balance to a
//! new card (DESIGN.md, Hotlists). Cards belong to riders, not operators: any operator may
//! read any card and block any card (a rider can walk into any shop); each block records
//! the operator and the token's subject that made it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, SubsecRound, Utc};
use ledger::CardId;
use ledger::card_status::{BlockReason, CardStatus, NewBlock, NewReplacement, Replacement};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::StrictJson;
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

/// A replacement: the old card blocked REPLACED, its balance moved to the new card once
/// `transfer_after` has passed (by the `transfer-replacements` job).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplacementView {
    pub old_card_id: String,
    pub new_card_id: String,
    pub requested_at: DateTime<Utc>,
    pub transfer_after: DateTime<Utc>,
    /// When the balance moved; absent until then.
    pub transferred_at: Option<DateTime<Utc>>,
    /// What moved (zero when the old card held nothing); absent until then.
    #[schema(example = "17050.00")]
    pub amount: Option<String>,
}

impl From<Replacement> for ReplacementView {
    fn from(r: Replacement) -> ReplacementView {
        ReplacementView {
            old_card_id: r.old_card.to_string(),
            new_card_id: r.new_card.to_string(),
            requested_at: r.requested_at,
            transfer_after: r.transfer_after,
            transferred_at: r.transferred_at,
            amount: r.amount.map(|a| a.to_decimal_string()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardResponse {
    pub card_id: String,
    /// `ACTIVE` or `BLOCKED`.
    #[schema(example = "BLOCKED")]
    pub status: String,
    /// Why it is blocked: LOST, STOLEN, DAMAGED, NEGATIVE_BALANCE, FRAUD or REPLACED.
    #[schema(example = "LOST")]
    pub reason: Option<String>,
    pub blocked_since: Option<DateTime<Utc>>,
    #[schema(example = "17050.00")]
    pub balance: String,
    pub currency: String,
    /// Set when field validations took the card below zero.
    pub flagged: bool,
    /// The card that replaces this one.
    pub replaced_by: Option<ReplacementView>,
    /// The card this one replaces.
    pub replaces: Option<ReplacementView>,
}

impl From<CardStatus> for CardResponse {
    fn from(s: CardStatus) -> CardResponse {
        CardResponse {
            card_id: s.card_id.to_string(),
            status: if s.block.is_some() {
                "BLOCKED"
            } else {
                "ACTIVE"
            }
            .to_string(),
            reason: s.block.as_ref().map(|b| b.reason.to_string()),
            blocked_since: s.block.as_ref().map(|b| b.since),
            balance: s.balance.to_decimal_string(),
            currency: s.balance.currency.to_string(),
            flagged: s.flagged,
            replaced_by: s.replaced_by.map(Into::into),
            replaces: s.replaces.map(Into::into),
        }
    }
}

fn card_in_path(card_id: &str) -> Result<CardId, Problem> {
    CardId::parse(card_id).map_err(Problem::invalid)
}

/// Read a card: its status, why and since when it is blocked, its replacement, its balance.
#[utoipa::path(
    get,
    path = "/v1/cards/{card_id}",
    tag = "cards",
    params(("card_id" = String, Path, description = "The card number", pattern = "^[A-Z0-9]{1,32}$")),
    responses(
        (status = 200, description = "The card (ACTIVE with a zero balance for a card never seen)", body = CardResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The card number is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["balances:read"]))
)]
pub async fn get_card(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(card_id): Path<String>,
) -> Result<Json<CardResponse>, Problem> {
    caller.require(Scope::BalancesRead)?;
    let card = card_in_path(&card_id)?;
    let status = state
        .ledger
        .card_status(&card)
        .await
        .map_err(Problem::from_ledger)?;
    Ok(Json(status.into()))
}

/// What the rider reported.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// LOST, STOLEN or DAMAGED.
    #[schema(example = "LOST")]
    pub reason: String,
    /// What the rider said, for the back office (at most 500 characters).
    #[schema(example = "left on bus T13", max_length = 500)]
    pub note: Option<String>,
}

/// Block a card a rider reported lost, stolen or damaged. A card already blocked stays as it
/// is (the same report twice is one block); the answer says the card's status either way.
#[utoipa::path(
    post,
    path = "/v1/cards/{card_id}/block",
    tag = "cards",
    params(("card_id" = String, Path, description = "The card number", pattern = "^[A-Z0-9]{1,32}$")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "The card, now blocked", body = CardResponse),
        (status = 400, description = "The body is not a JSON object of the expected fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cards:write"]))
)]
pub async fn block_card(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(card_id): Path<String>,
    body: Result<StrictJson<BlockRequest>, Problem>,
) -> Result<Json<CardResponse>, Problem> {
    caller.require(Scope::CardsWrite)?;
    let card = card_in_path(&card_id)?;
    let body = body?.value;
    let reason = BlockReason::parse(&body.reason)
        .ok()
        .filter(|r| r.reported_by_rider())
        .ok_or_else(|| {
            Problem::invalid(ledger::InvalidInput::new(
                "reason",
                "a rider reports a card LOST, STOLEN or DAMAGED",
            ))
        })?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(Problem::invalid(ledger::InvalidInput::new(
            "note",
            "is longer than 500 characters",
        )));
    }
    let outcome = state
        .ledger
        .block_card(&NewBlock {
            card,
            reason,
            at: Utc::now(),
            operator: Some(caller.operator.clone()),
            actor: caller.subject.clone(),
            note: body.note,
        })
        .await
        .map_err(Problem::from_ledger)?;
    Ok(Json(outcome.status.into()))
}

/// The card that takes the old card's place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    /// An empty card that is not blocked.
    #[schema(example = "CARD0000654321", pattern = "^[A-Z0-9]{1,32}$")]
    pub new_card_id: String,
}

/// Replace a card: the old card is blocked REPLACED at once, and what it holds moves to the
/// new card once the block has had time to reach the field (`transfer_after`). The same
/// request again answers with the replacement recorded (200).
#[utoipa::path(
    post,
    path = "/v1/cards/{card_id}/replace",
    tag = "cards",
    params(("card_id" = String, Path, description = "The card being replaced", pattern = "^[A-Z0-9]{1,32}$")),
    request_body = ReplaceRequest,
    responses(
        (status = 201, description = "The replacement, recorded", body = ReplacementView),
        (status = 200, description = "The same replacement, recorded before", body = ReplacementView),
        (status = 400, description = "The body is not a JSON object of the expected fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The card was replaced by another card before", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, the new card is in use, or a card is blocked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["cards:write"]))
)]
pub async fn replace_card(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(card_id): Path<String>,
    body: Result<StrictJson<ReplaceRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Scope::CardsWrite)?;
    let old = card_in_path(&card_id)?;
    let body = body?.value;
    let new = CardId::parse(&body.new_card_id)
        .map_err(|e| Problem::invalid(ledger::InvalidInput::new("new_card_id", e.reason)))?;
    // As the ledger keeps it (microseconds): a replay answers with an earlier time.
    let at = Utc::now().trunc_subsecs(6);
    let r = state
        .ledger
        .replace_card(&NewReplacement {
            old,
            new,
            operator: caller.operator.clone(),
            actor: caller.subject.clone(),
            at,
        })
        .await
        .map_err(Problem::from_ledger)?;
    let status = if r.requested_at == at {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ReplacementView::from(r))).into_response())
}
