//! `/v1/sales`: top up a card, void a top-up, read and list the operator's own sales.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ledger::journal::{NewSale, Sale};
use ledger::{BusinessDate, CardId, OperatorRef, PointOfSale};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{next_cursor, ok_json, page, parse_id};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::StrictJson;
use crate::idempotency::{self, fingerprint};
use crate::problem::Problem;

/// A top-up as an operator sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    /// The operator's own reference, unique per operator.
    #[schema(example = "OP001-000123", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub operator_ref: String,
    #[schema(example = "CARD0000123456", pattern = "^[A-Z0-9]{1,32}$")]
    pub card_id: String,
    /// Decimal string with at most the currency's minor digits; more than zero.
    #[schema(example = "20000.00", pattern = "^[0-9]{1,8}(\\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "COP")]
    pub currency: String,
    #[schema(example = "POS-17", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub point_of_sale: String,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    Active,
    Voided,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SaleResponse {
    pub sale_id: i64,
    pub operator_ref: String,
    pub card_id: String,
    #[schema(example = "20000.00")]
    pub amount: String,
    pub currency: String,
    pub point_of_sale: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: BusinessDate,
    pub status: SaleStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<DateTime<Utc>>,
    /// The card's balance after this operation (on creations and voids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_balance: Option<String>,
}

impl SaleResponse {
    fn new(sale: Sale, card_balance: Option<String>) -> SaleResponse {
        SaleResponse {
            sale_id: sale.id,
            operator_ref: sale.operator_ref.to_string(),
            card_id: sale.card_id.to_string(),
            amount: sale.amount.to_decimal_string(),
            currency: sale.amount.currency.to_string(),
            point_of_sale: sale.point_of_sale.to_string(),
            occurred_at: sale.occurred_at,
            business_date: sale.business_date,
            status: if sale.void.is_some() {
                SaleStatus::Voided
            } else {
                SaleStatus::Active
            },
            voided_at: sale.void.map(|v| v.voided_at),
            card_balance,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SalePage {
    pub items: Vec<SaleResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl SaleRequest {
    fn parse(self, state: &AppState, caller: &Caller) -> Result<NewSale, Problem> {
        state
            .money
            .parse_currency("currency", &self.currency)
            .map_err(Problem::invalid)?;
        Ok(NewSale {
            operator_id: caller.operator.clone(),
            operator_ref: OperatorRef::parse(&self.operator_ref).map_err(Problem::invalid)?,
            card_id: CardId::parse(&self.card_id).map_err(Problem::invalid)?,
            amount: state
                .money
                .parse_amount("amount", &self.amount)
                .map_err(Problem::invalid)?,
            point_of_sale: PointOfSale::parse(&self.point_of_sale).map_err(Problem::invalid)?,
            occurred_at: ledger::journal::now(),
        })
    }
}

/// Top up a card.
///
/// Credits the card and records the sale against the calling operator. Send a unique
/// `Idempotency-Key` per sale: retrying with the same key and body returns the first answer
/// and posts nothing again. A new key with an `operator_ref` recorded before returns that
/// sale with 200 when the content is the same, and 409 when it differs.
#[utoipa::path(
    post,
    path = "/v1/sales",
    tag = "sales",
    params(("Idempotency-Key" = String, Header, description = "Unique per request; 1 to 255 visible ASCII characters", pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255)),
    request_body = SaleRequest,
    responses(
        (status = 201, description = "The sale was recorded", body = SaleResponse),
        (status = 200, description = "The sale had been recorded before under this operator_ref", body = SaleResponse),
        (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "operator_ref used with other content, or key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporarily unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["sales:write"]))
)]
pub async fn create_sale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<StrictJson<SaleRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Scope::SalesWrite)?;
    let key = idempotency::key_from(&headers)?;
    let body = body?;
    let fp = fingerprint("POST /v1/sales", &body.hash);
    Ok(idempotency::once(&state, &caller, &key, &fp, || async {
        let sale = body.value.parse(&state, &caller)?;
        let receipt = state
            .ledger
            .record_sale(&sale)
            .await
            .map_err(Problem::from_ledger)?;
        let status = if receipt.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        ok_json(
            status,
            &SaleResponse::new(receipt.sale, Some(receipt.card_balance.to_decimal_string())),
        )
    })
    .await)
}

/// Void one of the operator's own sales.
///
/// Reverses the top-up if it is inside the operator's void window and the card still holds
/// the amount. Needs an `Idempotency-Key` like every POST.
#[utoipa::path(
    post,
    path = "/v1/sales/{sale_id}/void",
    tag = "sales",
    params(
        ("sale_id" = i64, Path, description = "The sale's id"),
        ("Idempotency-Key" = String, Header, description = "Unique per request; 1 to 255 visible ASCII characters", pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255),
    ),
    responses(
        (status = 200, description = "The sale is voided", body = SaleResponse),
        (status = 400, description = "Missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sale of this operator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already voided, or key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Void window closed, or the top-up was spent", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporarily unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["sales:write"]))
)]
pub async fn void_sale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(sale_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Scope::SalesWrite)?;
    let key = idempotency::key_from(&headers)?;
    let fp = fingerprint(&format!("POST /v1/sales/{sale_id}/void"), "");
    Ok(idempotency::once(&state, &caller, &key, &fp, || async {
        let id = parse_id(&sale_id, "sale")?;
        let receipt = state
            .ledger
            .void_sale(&caller.operator, id, ledger::journal::now())
            .await
            .map_err(Problem::from_ledger)?;
        ok_json(
            StatusCode::OK,
            &SaleResponse::new(receipt.sale, Some(receipt.card_balance.to_decimal_string())),
        )
    })
    .await)
}

/// Read one of the operator's own sales.
#[utoipa::path(
    get,
    path = "/v1/sales/{sale_id}",
    tag = "sales",
    params(("sale_id" = i64, Path, description = "The sale's id")),
    responses(
        (status = 200, description = "The sale", body = SaleResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sale of this operator", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["sales:read"]))
)]
pub async fn get_sale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sale_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Scope::SalesRead)?;
    let id = parse_id(&sale_id, "sale")?;
    let sale = state
        .ledger
        .sale(&caller.operator, id)
        .await
        .map_err(Problem::from_ledger)?
        .ok_or_else(|| Problem::not_found("sale"))?;
    Ok(axum::Json(SaleResponse::new(sale, None)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The business date of the sales.
    #[param(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: String,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to the configured maximum (500 by default); larger is rejected.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A query string that does not deserialize, said as the field it is about: serde names a
/// missing or unknown field between backticks.
pub(crate) fn query_problem(e: QueryRejection) -> Problem {
    let text = e.body_text();
    let named = |marker: &str| {
        let rest = text.split(marker).nth(1)?;
        Some(rest.split('`').nth(1)?.to_string())
    };
    let problem = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-field",
        "A query parameter is not valid",
    );
    if let Some(field) = named("missing field") {
        let detail = format!("{field}: is required");
        return problem.field(field).detail(detail);
    }
    if let Some(field) = named("unknown field") {
        let detail = format!("{field}: is not a parameter of this endpoint");
        return problem.field(field).detail(detail);
    }
    problem.detail(text)
}

/// List the operator's own sales of a business date, oldest first.
#[utoipa::path(
    get,
    path = "/v1/sales",
    tag = "sales",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of sales", body = SalePage),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["sales:read"]))
)]
pub async fn list_sales(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::SalesRead)?;
    let Query(q) = query.map_err(query_problem)?;
    let date = BusinessDate::parse(&q.business_date).map_err(Problem::invalid)?;
    let (limit, after) = page(q.limit, q.cursor.as_deref(), state.limits.page_size_max)?;
    // One extra row says whether there is a next page.
    let mut sales = state
        .ledger
        .operator_sales_page(&caller.operator, date, after, limit + 1)
        .await
        .map_err(Problem::from_ledger)?;
    let next_cursor = next_cursor(&mut sales, limit, |s| s.id.to_string());
    Ok(axum::Json(SalePage {
        items: sales
            .into_iter()
            .map(|s| SaleResponse::new(s, None))
            .collect(),
        next_cursor,
    })
    .into_response())
}
