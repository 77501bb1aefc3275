//! `/v1/webhook`: the operator's one endpoint for its events (DESIGN.md, Events), and the
//! log of deliveries to it. The signing secret is in the answer that made it (the first
//! `PUT`, or one with `rotate_secret`) and never again; a rotation keeps the old secret
//! valid for 24 hours. The URL must be https and resolve only to public addresses.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use events::webhook::{self, Delivery, Endpoint, WebhookError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sales::query_problem;
use super::{next_cursor, page};
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::StrictJson;
use crate::problem::Problem;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where events are POSTed: https, resolving only to public addresses.
    #[schema(example = "https://hooks.example.com/recaudo", max_length = 2048)]
    pub url: String,
    /// Make a new signing secret; the current one keeps signing for 24 hours.
    #[serde(default)]
    pub rotate_secret: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    pub url: String,
    /// `active`, `failing` (the oldest undelivered event is being retried) or `disabled`
    /// (it failed for 24 hours: `PUT` the endpoint again to resume).
    #[schema(example = "active")]
    pub status: String,
    /// The signing secret: only in the answer that made it. Keep it; it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_5f1c…")]
    pub secret: Option<String>,
    /// Until when deliveries are also signed with the secret before the last rotation.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

impl WebhookResponse {
    fn new(e: Endpoint, secret: Option<String>) -> WebhookResponse {
        WebhookResponse {
            status: e.status().as_str().to_string(),
            url: e.url,
            secret,
            previous_secret_valid_until: e.previous_until.filter(|u| *u > Utc::now()),
            created_at: e.created_at,
            updated_at: e.updated_at,
            failing_since: e.failing_since,
            next_attempt_at: e.next_attempt_at,
            disabled_at: e.disabled_at,
            last_delivered_at: e.last_delivered_at,
        }
    }
}

fn from_webhook(e: WebhookError) -> Problem {
    match e {
        WebhookError::Conflict => {
            Problem::new(StatusCode::CONFLICT, "conflict", "A concurrent change")
                .detail(e.to_string())
        }
        other => {
            tracing::error!(error = %other, "webhook request failed");
            Problem::internal()
        }
    }
}

/// Register the operator's endpoint, point it elsewhere, re-enable it, or rotate its secret.
#[utoipa::path(
    put,
    path = "/v1/webhook",
    tag = "webhooks",
    request_body = WebhookRequest,
    responses(
        (status = 200, description = "The endpoint, changed (with `secret` after a rotation)", body = WebhookResponse),
        (status = 201, description = "The endpoint, registered, with its secret", body = WebhookResponse),
        (status = 400, description = "The body is not a JSON object of the expected fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A concurrent change of the same endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The URL is refused (not https, not public, not resolvable)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<StrictJson<WebhookRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let body = body?.value;
    let url = events::ssrf::check(&body.url, state.webhooks)
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A field is not valid",
            )
            .field("url")
            .detail(e.to_string())
        })?;
    let actor = format!("operator:{}:{}", caller.operator, caller.subject);
    let saved = webhook::put(
        state.ledger.database(),
        &caller.operator,
        &url,
        body.rotate_secret,
        &actor,
        Utc::now(),
    )
    .await
    .map_err(from_webhook)?;
    tracing::info!(operator = %caller.operator, actor = %actor, created = saved.created, rotated = body.rotate_secret, "webhook endpoint set");
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(WebhookResponse::new(saved.endpoint, saved.secret)),
    )
        .into_response())
}

/// Read the operator's endpoint and whether deliveries go out (never its secret).
#[utoipa::path(
    get,
    path = "/v1/webhook",
    tag = "webhooks",
    responses(
        (status = 200, description = "The endpoint and its status", body = WebhookResponse),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The operator has no endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let endpoint = webhook::get(state.ledger.database(), caller.operator.as_str())
        .await
        .map_err(from_webhook)?
        .ok_or_else(|| Problem::not_found("webhook"))?;
    Ok(axum::Json(WebhookResponse::new(endpoint, None)).into_response())
}

/// Remove the operator's endpoint: nothing more is sent (its delivery log stays).
#[utoipa::path(
    delete,
    path = "/v1/webhook",
    tag = "webhooks",
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The operator has no endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let removed = webhook::delete(state.ledger.database(), caller.operator.as_str())
        .await
        .map_err(from_webhook)?;
    if !removed {
        return Err(Problem::not_found("webhook"));
    }
    tracing::info!(operator = %caller.operator, subject = %caller.subject, "webhook endpoint removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: i64,
    /// The CloudEvents `id` of the event.
    pub event_id: String,
    #[schema(example = "co.recaudo.operator_file.rejected.v1")]
    pub event_type: String,
    pub url: String,
    /// 1 for the first try of this event, 2 for its first retry, ...
    pub attempt: i32,
    /// `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub outcome: String,
    /// The endpoint's answer, when there was one.
    pub http_status: Option<i32>,
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> DeliveryResponse {
        DeliveryResponse {
            id: d.id,
            event_id: d.event_id.to_string(),
            event_type: d.event_type,
            url: d.url,
            attempt: d.attempt,
            outcome: d.outcome,
            http_status: d.http_status,
            latency_ms: d.latency_ms,
            error: d.error,
            attempted_at: d.attempted_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryResponse>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to the configured maximum (500 by default); larger is rejected.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The operator's delivery log, newest first: every attempt, with its answer and latency.
#[utoipa::path(
    get,
    path = "/v1/webhook/deliveries",
    tag = "webhooks",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first", body = DeliveryPage),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::WebhooksWrite)?;
    let Query(q) = query.map_err(query_problem)?;
    let (limit, before) = page(q.limit, q.cursor.as_deref(), state.limits.page_size_max)?;
    let mut rows = webhook::deliveries(
        state.ledger.database(),
        caller.operator.as_str(),
        before,
        i64::from(limit) + 1,
    )
    .await
    .map_err(from_webhook)?;
    let next_cursor = next_cursor(&mut rows, limit, |d| d.id.to_string());
    Ok(axum::Json(DeliveryPage {
        items: rows.into_iter().map(DeliveryResponse::from).collect(),
        next_cursor,
    })
    .into_response())
}
