//! `/v1/statement`: the operator's statement of account over a range of business dates,
//! what it owed before, each movement (a day's sales, a day's voids, each settlement,
//! correction and payment) with the balance after it, and what it owed after. The statement
//! is always the caller's own: no parameter names an operator.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use ledger::money::format_minor;
use ledger::{BusinessDate, InvalidInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sales::query_problem;
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::problem::Problem;

/// Longest range one request reads, in days (`from` and `to` included).
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementMovement {
    #[schema(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: chrono::NaiveDate,
    /// `sales`, `voids`, `settlement`, `adjustment`, `writeoff`, `deposit` or `assignment`.
    #[schema(example = "deposit")]
    pub kind: String,
    /// The document that caused it (`bank:{account}:{bank_ref}`, `settlement:…`,
    /// `exception:…`); absent for a day's sales or voids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Sales or voids summed (1 for the others).
    pub count: i64,
    /// What it changed in what the operator owes: positive owes more (sales), negative
    /// less (voids, commission, payments).
    #[schema(example = "-939183.00")]
    pub amount: String,
    /// What the operator owes after it.
    #[schema(example = "0.00")]
    pub balance: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementResponse {
    #[schema(example = "OP001")]
    pub operator_id: String,
    #[schema(example = "COP")]
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub from: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: chrono::NaiveDate,
    /// What the operator owed at the start of `from` (negative: a credit in its favour).
    #[schema(example = "939183.00")]
    pub opening_balance: String,
    pub movements: Vec<StatementMovement>,
    /// What the operator owed at the end of `to`.
    #[schema(example = "0.00")]
    pub closing_balance: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// First business date of the statement.
    #[param(value_type = String, format = Date, example = "2026-11-01", required = true)]
    pub from: Option<String>,
    /// Last business date (default: today); the range is at most 366 days, both included.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-30")]
    pub to: Option<String>,
}

/// The operator's statement of account between two business dates.
#[utoipa::path(
    get,
    path = "/v1/statement",
    tag = "settlements",
    params(StatementQuery),
    responses(
        (status = 200, description = "Opening balance, each movement with its running balance, closing balance", body = StatementResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["settlements:read"]))
)]
pub async fn get_statement(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::SettlementsRead)?;
    let Query(q) = query.map_err(query_problem)?;
    let invalid =
        |field: &'static str, reason: String| Problem::invalid(InvalidInput::new(field, reason));
    let from = q
        .from
        .as_deref()
        .ok_or_else(|| {
            invalid(
                "from",
                "the first business date of the statement is required".into(),
            )
        })
        .and_then(|d| BusinessDate::parse_as("from", d).map_err(Problem::invalid))?;
    let today = state
        .ledger
        .settings()
        .calendar
        .business_date(chrono::Utc::now());
    let to = match q.to.as_deref() {
        Some(d) => BusinessDate::parse_as("to", d).map_err(Problem::invalid)?,
        None => today,
    };
    if to < from {
        return Err(invalid("to", format!("{to} is before from ({from})")));
    }
    if (to.naive() - from.naive()).num_days() >= MAX_DAYS {
        return Err(invalid(
            "to",
            format!("a statement covers at most {MAX_DAYS} days; ask for a shorter range"),
        ));
    }
    let statement = state
        .ledger
        .receivable_statement(&caller.operator, from, to)
        .await
        .map_err(Problem::from_ledger)?;
    let exponent = state.ledger.settings().currency.exponent();
    let money = |m: i64| format_minor(m, exponent);
    // The receivable is credit positive (a debt is negative); the operator reads what it owes.
    let mut owed = -statement.opening;
    let movements = statement
        .movements
        .into_iter()
        .map(|m| {
            owed -= m.amount;
            StatementMovement {
                business_date: m.business_date,
                kind: m.kind,
                document: m.document,
                count: m.count,
                amount: money(-m.amount),
                balance: money(owed),
            }
        })
        .collect();
    Ok(axum::Json(StatementResponse {
        operator_id: caller.operator.to_string(),
        currency: state.ledger.settings().currency.code().to_string(),
        from: from.naive(),
        to: to.naive(),
        opening_balance: money(-statement.opening),
        movements,
        closing_balance: money(-statement.closing),
    })
    .into_response())
}
