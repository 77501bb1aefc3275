//! Errors as RFC 9457 problem details (`application/problem+json`): a stable `type`, a
//! title, the status, a detail a client can act on, and the offending field where there is
//! one. Internals (SQL, stack traces) never reach a response; they are logged instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fault::Fault;
use ledger::{InvalidInput, LedgerError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, stable across releases.
    #[serde(rename = "type")]
    #[schema(example = "urn:recaudo:problem:invalid-field")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field the problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The card's balance, on an insufficient-balance problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// Why the card is blocked, on a card-blocked problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "LOST")]
    pub reason: Option<String>,
    #[serde(skip)]
    retry_after_secs: Option<u64>,
    #[serde(skip)]
    www_authenticate: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Problem {
        Problem {
            kind: format!("urn:recaudo:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: None,
            field: None,
            balance: None,
            reason: None,
            retry_after_secs: None,
            www_authenticate: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn invalid(e: InvalidInput) -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field is not valid",
        )
        .field(e.field)
        .detail(e.to_string())
    }

    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "The request is malformed",
        )
        .detail(detail)
    }

    /// 401 with the `WWW-Authenticate: Bearer` challenge of RFC 6750.
    pub fn unauthorized(detail: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required",
        )
        .detail(detail);
        p.www_authenticate = Some(format!(
            "Bearer realm=\"recaudo\", error=\"invalid_token\", error_description=\"{}\"",
            detail.replace('"', "'")
        ));
        p
    }

    pub fn missing_token() -> Problem {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required",
        )
        .detail("send the access token as `Authorization: Bearer <token>`");
        p.www_authenticate = Some("Bearer realm=\"recaudo\"".into());
        p
    }

    pub fn insufficient_scope(scope: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "The token lacks a scope",
        )
        .detail(format!("this operation needs the scope `{scope}`"));
        p.www_authenticate = Some(format!(
            "Bearer realm=\"recaudo\", error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        p
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The operator may not do this",
        )
        .detail(detail)
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(format!("{what} not found"))
    }

    pub fn rate_limited(retry_after_secs: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        )
        .detail(format!(
            "the operator's rate limit is reached; retry after {retry_after_secs} s"
        ));
        p.retry_after_secs = Some(retry_after_secs);
        p
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side",
        )
        .detail("the error was logged; retrying later may succeed")
    }

    pub fn unavailable(detail: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is temporarily unavailable",
        )
        .detail(detail);
        p.retry_after_secs = Some(1);
        p
    }

    /// The problem for a ledger refusal or failure. Failures of ours are logged here, once.
    pub fn from_ledger(e: LedgerError) -> Problem {
        use LedgerError as E;
        match e {
            E::Invalid(i) => Problem::invalid(i),
            E::UnknownOperator(_) | E::InactiveOperator(_) => {
                Problem::forbidden("the operator is not registered or not active")
            }
            E::Conflict {
                detail,
                reference,
                what,
            } => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "The reference was already used for different content",
            )
            .detail(format!(
                "{what} {reference} was recorded before with {detail}"
            )),
            E::SaleNotFound(_) => Problem::not_found("sale"),
            E::AlreadyVoided(id) => Problem::new(
                StatusCode::CONFLICT,
                "already-voided",
                "The sale is already voided",
            )
            .detail(format!("sale {id} was voided before")),
            E::VoidWindowClosed { closed_at, .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "void-window-closed",
                "The sale can no longer be voided",
            )
            .detail(format!(
                "the void window closed at {}",
                closed_at.to_rfc3339()
            )),
            E::InsufficientBalance { balance, needed } => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "insufficient-balance",
                    "The card's balance is not enough",
                )
                .detail(format!(
                    "the card holds {}, {} is needed",
                    balance.to_decimal_string(),
                    needed.to_decimal_string()
                ));
                p.balance = Some(balance.to_decimal_string());
                p
            }
            E::CardBlocked { card, reason } => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "card-blocked",
                    "The card is blocked",
                )
                .detail(format!("card {card} is blocked ({reason})"));
                p.reason = Some(reason.to_string());
                p
            }
            E::WrongCurrency { expected, .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A field is not valid",
            )
            .field("currency")
            .detail(format!("currency must be {expected}")),
            E::DuplicateOperator(_) => Problem::internal(),
            other if other.retry() == fault::RetryHint::Retry => {
                tracing::warn!(error = %other, "database temporarily unavailable");
                Problem::unavailable("the database is busy or unreachable")
            }
            other => {
                tracing::error!(error = %other, "ledger failure");
                Problem::internal()
            }
        }
    }
}

/// Every problem `type` the API answers with, as `urn:recaudo:problem:{slug}`.
pub const TYPES: [&str; 20] = [
    "already-voided",
    "card-blocked",
    "case-state",
    "conflict",
    "forbidden",
    "idempotency-key-in-use",
    "idempotency-key-reused",
    "insufficient-balance",
    "insufficient-scope",
    "internal",
    "invalid-field",
    "malformed-request",
    "method-not-allowed",
    "not-found",
    "payload-too-large",
    "rate-limited",
    "unauthorized",
    "unavailable",
    "unsupported-media-type",
    "void-window-closed",
];

/// Why a request was refused, as the request log line says it (the problem's detail).
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let reason = self.detail.clone().unwrap_or_else(|| self.title.clone());
        response.extensions_mut().insert(Refusal(reason));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.www_authenticate
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}
