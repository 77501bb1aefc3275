//! `/v1/payments`: pay a fare online from a card's balance.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use ledger::journal::{NewPayment, Payment};
use ledger::{BusinessDate, CardId, PaymentRef, RouteId, TransportOperatorId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ok_json;
use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::StrictJson;
use crate::idempotency::{self, fingerprint};
use crate::problem::Problem;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The operator's own reference, unique per operator.
    #[schema(example = "PAY-000981", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub payment_ref: String,
    #[schema(example = "CARD0000123456", pattern = "^[A-Z0-9]{1,32}$")]
    pub card_id: String,
    /// The fare: a decimal string with at most the currency's minor digits; more than zero.
    #[schema(example = "2950.00", pattern = "^[0-9]{1,8}(\\.[0-9]{1,2})?$")]
    pub amount: String,
    #[schema(example = "COP")]
    pub currency: String,
    #[schema(example = "T13", pattern = "^[A-Za-z0-9._-]{1,32}$")]
    pub route_id: String,
    #[schema(example = "TRANSMI", pattern = "^[A-Za-z0-9._-]{1,32}$")]
    pub transport_operator_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub payment_id: i64,
    pub payment_ref: String,
    pub card_id: String,
    #[schema(example = "2950.00")]
    pub amount: String,
    pub currency: String,
    pub route_id: String,
    pub transport_operator_id: String,
    pub occurred_at: DateTime<Utc>,
    #[schema(value_type = String, format = Date, example = "2026-11-26")]
    pub business_date: BusinessDate,
    /// The card's balance after the payment.
    pub card_balance: String,
}

impl PaymentResponse {
    fn new(p: Payment, card_balance: String) -> PaymentResponse {
        PaymentResponse {
            payment_id: p.id,
            payment_ref: p.payment_ref.to_string(),
            card_id: p.card_id.to_string(),
            amount: p.amount.to_decimal_string(),
            currency: p.amount.currency.to_string(),
            route_id: p.route_id.to_string(),
            transport_operator_id: p.transport_operator_id.to_string(),
            occurred_at: p.occurred_at,
            business_date: p.business_date,
            card_balance,
        }
    }
}

impl PaymentRequest {
    fn parse(self, state: &AppState, caller: &Caller) -> Result<NewPayment, Problem> {
        state
            .money
            .parse_currency("currency", &self.currency)
            .map_err(Problem::invalid)?;
        Ok(NewPayment {
            operator_id: caller.operator.clone(),
            payment_ref: PaymentRef::parse(&self.payment_ref).map_err(Problem::invalid)?,
            card_id: CardId::parse(&self.card_id).map_err(Problem::invalid)?,
            amount: state
                .money
                .parse_amount("amount", &self.amount)
                .map_err(Problem::invalid)?,
            route_id: RouteId::parse(&self.route_id).map_err(Problem::invalid)?,
            transport_operator_id: TransportOperatorId::parse(&self.transport_operator_id)
                .map_err(Problem::invalid)?,
            occurred_at: ledger::journal::now(),
        })
    }
}

/// Pay a fare from a card.
///
/// Debits the card and credits the transport operator. Never takes a card below zero: a
/// card that does not hold the fare gets a 422 `insufficient-balance` with its balance, and
/// nothing is posted. Idempotent like sales, by `Idempotency-Key` and by `payment_ref`.
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    params(("Idempotency-Key" = String, Header, description = "Unique per request; 1 to 255 visible ASCII characters", pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255)),
    request_body = PaymentRequest,
    responses(
        (status = 201, description = "The fare was paid", body = PaymentResponse),
        (status = 200, description = "The payment had been recorded before under this payment_ref", body = PaymentResponse),
        (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or operator not active", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "payment_ref used with other content, or key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, or the balance is insufficient", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit reached", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporarily unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["payments:write"]))
)]
pub async fn create_payment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<StrictJson<PaymentRequest>, Problem>,
) -> Result<Response, Problem> {
    caller.require(Scope::PaymentsWrite)?;
    let key = idempotency::key_from(&headers)?;
    let body = body?;
    let fp = fingerprint("POST /v1/payments", &body.hash);
    Ok(idempotency::once(&state, &caller, &key, &fp, || async {
        let payment = body.value.parse(&state, &caller)?;
        let receipt = state
            .ledger
            .pay_fare(&payment)
            .await
            .map_err(Problem::from_ledger)?;
        let status = if receipt.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        ok_json(
            status,
            &PaymentResponse::new(receipt.payment, receipt.card_balance.to_decimal_string()),
        )
    })
    .await)
}
