//! `/v1/settlements`: the operator's own settlement lines, as the latest final report of
//! each date published them, read from the database the report writes them to (the operator
//! does not wait for, or need access to, the object store). Another operator's lines do not
//! exist here.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ledger::BusinessDate;
use ledger::money::format_minor;
use ledger::settlement_line::{PublishedLine, of_operator};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sales::query_problem;
use super::{next_cursor, page};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::problem::Problem;

#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementResponse {
    #[schema(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: chrono::NaiveDate,
    #[schema(example = "COP")]
    pub currency: String,
    pub sales_count: i64,
    #[schema(example = "1000000.00")]
    pub sales_amount: String,
    pub voids_count: i64,
    #[schema(example = "20000.00")]
    pub voids_amount: String,
    /// Sales minus voids.
    #[schema(example = "980000.00")]
    pub net_sales: String,
    /// The commission rate in force on the date, a decimal fraction.
    #[schema(example = "0.035")]
    pub commission_rate: String,
    #[schema(example = "34300.00")]
    pub commission: String,
    /// Tax on the commission.
    #[schema(example = "6517.00")]
    pub commission_tax: String,
    /// What the operator owes for the date's sales: net sales − commission − tax.
    #[schema(example = "939183.00")]
    pub net_due: String,
    #[schema(value_type = String, format = Date, example = "2026-11-27")]
    pub due_date: chrono::NaiveDate,
    /// BALANCED, EXCEPTIONS or NO_FILE.
    #[schema(example = "EXCEPTIONS")]
    pub status: String,
    pub matched_count: i64,
    pub exception_count: i64,
    /// Σ (ledger − file) of the date's exceptions.
    #[schema(example = "-5000.00")]
    pub exception_amount: String,
    /// What the adjustments and write-offs finance posted on the date added to what the
    /// operator owes (negative: it owes less); not part of `net_due`.
    #[schema(example = "25000.00")]
    pub adjustments: String,
    /// Quote it when paying this line, so that the payment is matched to it.
    #[schema(example = "RC-OP001-20261126")]
    pub payment_reference: String,
    /// The version of the date's report these figures come from.
    pub report_version: i32,
    pub published_at: DateTime<Utc>,
}

impl SettlementResponse {
    fn new(l: PublishedLine, exponent: u8) -> SettlementResponse {
        let money = |m: i64| format_minor(m, exponent);
        SettlementResponse {
            business_date: l.business_date,
            currency: l.currency,
            sales_count: l.sales_count,
            sales_amount: money(l.sales_amount),
            voids_count: l.voids_count,
            voids_amount: money(l.voids_amount),
            net_sales: money(l.net_sales),
            commission_rate: l.commission_rate,
            commission: money(l.commission),
            commission_tax: money(l.commission_tax),
            net_due: money(l.net_due),
            due_date: l.due_date,
            status: l.status,
            matched_count: l.matched_count,
            exception_count: l.exception_count,
            exception_amount: money(l.exception_amount),
            adjustments: money(l.adjustments),
            payment_reference: l.payment_reference,
            report_version: l.report_version,
            published_at: l.published_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementPage {
    pub items: Vec<SettlementResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only the line of this business date.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-26")]
    pub business_date: Option<String>,
    /// `next_cursor` of the previous page: lines of earlier dates than this one.
    #[param(value_type = Option<String>, format = Date)]
    pub cursor: Option<String>,
    /// Page size, 1 to the configured maximum (500 by default); larger is rejected.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// List the operator's own settlement lines, newest date first.
#[utoipa::path(
    get,
    path = "/v1/settlements",
    tag = "settlements",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the operator's settlement lines", body = SettlementPage),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["settlements:read"]))
)]
pub async fn list_settlements(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::SettlementsRead)?;
    let Query(q) = query.map_err(query_problem)?;
    let (limit, _) = page(q.limit, None, state.limits.page_size_max)?;
    let on = q
        .business_date
        .as_deref()
        .map(BusinessDate::parse)
        .transpose()
        .map_err(Problem::invalid)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| BusinessDate::parse_as("cursor", c))
        .transpose()
        .map_err(Problem::invalid)?;
    // One extra row says whether there is a next page.
    let mut lines = of_operator(
        state.ledger.database(),
        caller.operator.as_str(),
        on,
        before,
        limit + 1,
    )
    .await
    .map_err(Problem::from_ledger)?;
    let next_cursor = next_cursor(&mut lines, limit, |l| l.business_date.to_string());
    let exponent = state.ledger.settings().currency.exponent();
    Ok(axum::Json(SettlementPage {
        items: lines
            .into_iter()
            .map(|l| SettlementResponse::new(l, exponent))
            .collect(),
        next_cursor,
    })
    .into_response())
}

/// Read the operator's settlement line of one business date.
#[utoipa::path(
    get,
    path = "/v1/settlements/{business_date}",
    tag = "settlements",
    params(("business_date" = String, Path, description = "The business date", format = Date, example = "2026-11-26")),
    responses(
        (status = 200, description = "The operator's line of that date, as last published", body = SettlementResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No settlement of this operator published for that date", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["settlements:read"]))
)]
pub async fn get_settlement(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(business_date): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Scope::SettlementsRead)?;
    // A path that is not a date names no settlement.
    let date = BusinessDate::parse(&business_date).map_err(|_| Problem::not_found("settlement"))?;
    let line = of_operator(
        state.ledger.database(),
        caller.operator.as_str(),
        Some(date),
        None,
        1,
    )
    .await
    .map_err(Problem::from_ledger)?
    .into_iter()
    .next()
    .ok_or_else(|| Problem::not_found("settlement"))?;
    let exponent = state.ledger.settings().currency.exponent();
    Ok(axum::Json(SettlementResponse::new(line, exponent)).into_response())
}
