//! `/v1/exceptions`: the operator's own exception cases (what reconciliation holds against
//! it), each with its history, and the operator's dispute of one. Another operator's case
//! does not exist here (404).

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use exceptions::{Action, Actor, CaseFilter, CaseState, ExceptionCase, ExceptionError};
use ledger::BusinessDate;
use ledger::money::format_minor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sales::query_problem;
use super::{next_cursor, page, parse_id};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::StrictJson;
use crate::problem::Problem;

#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionResponse {
    pub id: i64,
    #[schema(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: chrono::NaiveDate,
    pub operator_ref: String,
    /// What reconciliation found: AMOUNT_MISMATCH, CARD_MISMATCH, STATUS_MISMATCH,
    /// MISSING_IN_LEDGER, MISSING_IN_FILE, TIMING or DUPLICATE_IN_FILE.
    #[schema(example = "AMOUNT_MISMATCH")]
    pub case: String,
    /// OPEN, DISPUTED, PENDING_APPROVAL, RESOLVED or CLEARED.
    #[schema(example = "OPEN")]
    pub state: String,
    /// The sale's net amount in the ledger (absent when the ledger does not have it).
    #[schema(example = "20000.00")]
    pub ledger_amount: Option<String>,
    /// The sale's net amount in the operator's file (absent when the file does not have it).
    #[schema(example = "25000.00")]
    pub file_amount: Option<String>,
    /// Ledger minus file.
    #[schema(example = "-5000.00")]
    pub difference: String,
    pub ledger_card_id: Option<String>,
    pub file_card_id: Option<String>,
    /// ADJUST_LEDGER, ACCEPT_LEDGER or WRITE_OFF, once decided (or proposed).
    pub resolution: Option<String>,
    pub dispute_reason: Option<String>,
    pub evidence_ref: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every action on the case, oldest first (on a single case only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `system` for reconciliation runs, a person of finance, or `operator:{id}:{sub}`.
    pub actor: String,
    #[schema(example = "OPENED")]
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionPage {
    pub items: Vec<ExceptionResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl ExceptionResponse {
    fn new(case: ExceptionCase, exponent: u8) -> ExceptionResponse {
        let money = |m: i64| format_minor(m, exponent);
        ExceptionResponse {
            id: case.id,
            business_date: case.business_date,
            operator_ref: case.operator_ref,
            case: case.case_name,
            state: case.state.as_str().to_string(),
            ledger_amount: case.ledger_amount.map(money),
            file_amount: case.file_amount.map(money),
            difference: money(case.difference),
            ledger_card_id: case.ledger_card_id,
            file_card_id: case.file_card_id,
            resolution: case.resolution.map(|r| r.as_str().to_string()),
            dispute_reason: case.dispute_reason,
            evidence_ref: case.evidence_ref,
            opened_at: case.opened_at,
            updated_at: case.updated_at,
            history: None,
        }
    }
}

fn from_exceptions(e: ExceptionError) -> Problem {
    match e {
        ExceptionError::NotFound(_) => Problem::not_found("exception case"),
        ExceptionError::WrongState { .. } => Problem::new(
            StatusCode::CONFLICT,
            "case-state",
            "The case cannot be disputed in its state",
        )
        .detail(e.to_string()),
        ExceptionError::Invalid(i) => Problem::invalid(i),
        ExceptionError::Ledger(l) => Problem::from_ledger(l),
        other => {
            tracing::error!(error = %other, "exception case request failed");
            Problem::internal()
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only cases found on this business date.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-26")]
    pub business_date: Option<String>,
    /// Only cases in this state.
    #[param(pattern = "^(OPEN|DISPUTED|PENDING_APPROVAL|RESOLVED|CLEARED)$")]
    pub state: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to the configured maximum (500 by default); larger is rejected.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// List the operator's own exception cases, oldest first.
#[utoipa::path(
    get,
    path = "/v1/exceptions",
    tag = "exceptions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the operator's cases", body = ExceptionPage),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["exceptions:read"]))
)]
pub async fn list_exceptions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::ExceptionsRead)?;
    let Query(q) = query.map_err(query_problem)?;
    let (limit, after) = page(q.limit, q.cursor.as_deref(), state.limits.page_size_max)?;
    let filter = CaseFilter {
        business_date: q
            .business_date
            .as_deref()
            .map(BusinessDate::parse)
            .transpose()
            .map_err(Problem::invalid)?,
        operator_id: Some(caller.operator.to_string()),
        states: q
            .state
            .as_deref()
            .map(CaseState::parse)
            .transpose()
            .map_err(Problem::invalid)?
            .into_iter()
            .collect(),
        after,
        // One extra row says whether there is a next page.
        limit: Some(limit + 1),
        ..CaseFilter::default()
    };
    let mut cases = exceptions::list(state.ledger.database(), &filter)
        .await
        .map_err(from_exceptions)?;
    let next_cursor = next_cursor(&mut cases, limit, |c| c.id.to_string());
    let exponent = state.ledger.settings().currency.exponent();
    Ok(axum::Json(ExceptionPage {
        items: cases
            .into_iter()
            .map(|c| ExceptionResponse::new(c, exponent))
            .collect(),
        next_cursor,
    })
    .into_response())
}

async fn with_history(state: &AppState, case: ExceptionCase) -> Result<ExceptionResponse, Problem> {
    let events = exceptions::events(state.ledger.database(), Some(case.id))
        .await
        .map_err(from_exceptions)?;
    let mut response = ExceptionResponse::new(case, state.ledger.settings().currency.exponent());
    response.history = Some(
        events
            .into_iter()
            .map(|e| HistoryEntry {
                at: e.at,
                actor: e.actor,
                action: e.action,
                from_state: e.from_state,
                to_state: e.to_state,
                note: e.note,
            })
            .collect(),
    );
    Ok(response)
}

/// Read one of the operator's exception cases with its history.
#[utoipa::path(
    get,
    path = "/v1/exceptions/{exception_id}",
    tag = "exceptions",
    params(("exception_id" = i64, Path, description = "The case id", minimum = 1)),
    responses(
        (status = 200, description = "The case and its history", body = ExceptionResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case of this operator", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["exceptions:read"]))
)]
pub async fn get_exception(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(exception_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Scope::ExceptionsRead)?;
    let id = parse_id(&exception_id, "exception case")?;
    let case = exceptions::case(state.ledger.database(), id, Some(caller.operator.as_str()))
        .await
        .map_err(from_exceptions)?
        .ok_or_else(|| Problem::not_found("exception case"))?;
    Ok(axum::Json(with_history(&state, case).await?).into_response())
}

/// The operator contests a case: why, and where its evidence is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    /// Why the operator holds the case wrong (1 to 2000 characters).
    #[schema(
        example = "our receipt 881 shows 25,000",
        min_length = 1,
        max_length = 2000
    )]
    pub reason: String,
    /// Where finance finds the evidence: a ticket, a document id.
    #[schema(example = "ticket-881", max_length = 500)]
    pub evidence_ref: Option<String>,
}

/// Dispute one of the operator's OPEN (or already DISPUTED) cases.
#[utoipa::path(
    post,
    path = "/v1/exceptions/{exception_id}/dispute",
    tag = "exceptions",
    params(("exception_id" = i64, Path, description = "The case id", minimum = 1)),
    request_body = DisputeRequest,
    responses(
        (status = 200, description = "The case, now DISPUTED, with its history", body = ExceptionResponse),
        (status = 400, description = "The body is not a JSON object of the expected fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case of this operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case is decided or cleared: it cannot be disputed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["exceptions:write"]))
)]
pub async fn dispute_exception(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(exception_id): Path<String>,
    body: Result<StrictJson<DisputeRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Scope::ExceptionsWrite)?;
    let id = parse_id(&exception_id, "exception case")?;
    let body = body?.value;
    let actor = Actor::operator(&caller.operator, &caller.subject).map_err(Problem::invalid)?;
    let action = Action::Dispute {
        reason: body.reason,
        evidence_ref: body.evidence_ref,
    };
    // A dispute posts nothing, so no approval threshold applies to it.
    let decided = exceptions::decide(
        &*state.ledger,
        id,
        &action,
        &actor,
        i64::MAX,
        Some(caller.operator.as_str()),
    )
    .await
    .map_err(from_exceptions)?;
    Ok(axum::Json(with_history(&state, decided.case).await?).into_response())
}
