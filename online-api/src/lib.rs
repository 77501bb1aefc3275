//! The online API of recaudo: the HTTP surface recharge operators use to sell top-ups, void
//! them, pay fares and read balances. It is thin on purpose: the rules live in `ledger`;
//! this crate authenticates, validates, limits and translates.

// `Problem` (about 170 bytes) travels only on error paths of request handlers, where its
// size costs nothing measurable; boxing it everywhere would only add noise.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod body;
pub mod dev_keys;
pub mod idempotency;
pub mod problem;
pub mod rate_limit;
pub mod routes;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ledger::{Ledger, MoneyRules, OperatorId};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Verifier};
use crate::problem::Problem;
use crate::rate_limit::RateLimiter;
use crate::telemetry::Metrics;

/// Limits that protect the service and the database.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub page_size_max: u32,
    pub request_timeout: Duration,
    pub rate_per_second: u32,
    pub rate_burst: u32,
}

impl Limits {
    pub fn from_settings(api: &settings::ApiSettings) -> Limits {
        Limits {
            body_bytes: api.body_limit_bytes,
            page_size_max: api.page_size_max,
            request_timeout: api.request_timeout,
            rate_per_second: api.rate_limit,
            rate_burst: api.rate_burst,
        }
    }
}

/// How long an operator's active flag is trusted before it is read again.
const OPERATOR_CACHE_TTL: Duration = Duration::from_secs(5);

pub struct Inner {
    pub ledger: Arc<dyn Ledger>,
    pub verifier: Verifier,
    pub money: MoneyRules,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Which webhook URLs may be registered.
    pub webhooks: events::ssrf::Policy,
    rate: RateLimiter,
    operators: Mutex<HashMap<OperatorId, (bool, Instant)>>,
    openapi: String,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Whether the operator is registered and active, cached briefly.
    async fn operator_active(&self, id: &OperatorId) -> Result<bool, Problem> {
        if let Some((active, at)) = self.operators.lock().expect("cache lock").get(id)
            && at.elapsed() < OPERATOR_CACHE_TTL
        {
            return Ok(*active);
        }
        let active = self
            .ledger
            .operator(id)
            .await
            .map_err(Problem::from_ledger)?
            .is_some_and(|o| o.active);
        self.operators
            .lock()
            .expect("cache lock")
            .insert(id.clone(), (active, Instant::now()));
        Ok(active)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recaudo online API",
        description = "Recharge operators sell card top-ups, void them, pay fares and read \
            balances, read their settlements, see and dispute the exceptions reconciliation found, and \
            register a webhook for their events. Every call needs a bearer JWT whose `operator_id` claim names the \
            operator; errors are RFC 9457 problem details.",
        version = "1.0.0"
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "sales", description = "Card top-ups and their voids"),
        (name = "payments", description = "Online fare payments"),
        (name = "cards", description = "Card balances"),
        (name = "settlements", description = "What the operator owes for each business date, as published"),
        (name = "exceptions", description = "What reconciliation holds against the operator, and its disputes"),
        (name = "webhooks", description = "The operator's endpoint for its events, signed, and its delivery log"),
        (name = "operations", description = "Health, readiness, metrics, this document")
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        openapi.servers = Some(vec![
            utoipa::openapi::server::ServerBuilder::new()
                .url("/")
                .description(Some(
                    "The host that serves this document (the API gateway in production)",
                ))
                .build(),
        ]);
    }
}

/// What the routes' own annotations cannot say, added once every route is in: the problem
/// types and the response headers.
fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    if let Some(components) = openapi.components.as_mut()
        && let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(problem))) =
            components.schemas.get_mut("Problem")
    {
        let types: Vec<String> = problem::TYPES
            .iter()
            .map(|slug| format!("`urn:recaudo:problem:{slug}`"))
            .collect();
        problem.description = Some(format!(
            "An RFC 9457 problem. `type` is one of: {}.",
            types.join(", ")
        ));
    }
    document_headers(openapi);
}

/// The response headers every client generator should know: `X-Request-Id` on every
/// answer, `WWW-Authenticate` on 401 and 403, `Retry-After` on 429 and 503, and
/// `Idempotent-Replayed` on the success of a call that takes an `Idempotency-Key`.
fn document_headers(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let header = |kind: Type, description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let idempotent = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| p.name.eq_ignore_ascii_case("idempotency-key"));
            for (status, response) in operation.responses.responses.iter_mut() {
                let utoipa::openapi::RefOr::T(response) = response else {
                    continue;
                };
                response.headers.insert(
                    "X-Request-Id".into(),
                    header(Type::String, "The request's id (the caller's, if it sent a valid one), as the logs name it"),
                );
                match status.as_str() {
                    "401" | "403" => {
                        response.headers.insert(
                            "WWW-Authenticate".into(),
                            header(
                                Type::String,
                                "The Bearer challenge of RFC 6750: error and error_description",
                            ),
                        );
                    }
                    "429" | "503" => {
                        response.headers.insert(
                            "Retry-After".into(),
                            header(Type::Integer, "Seconds to wait before trying again"),
                        );
                    }
                    "200" | "201" if idempotent => {
                        response.headers.insert(
                            "Idempotent-Replayed".into(),
                            header(Type::String, "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Every route with its documentation, registered once: the public operations routes and
/// the operator routes (which `app` puts behind authentication). A route cannot be served
/// without being in the OpenAPI document, because both come from these registrations.
fn documented_routes() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let public = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::operations::healthz))
        .routes(routes!(routes::operations::readyz))
        .routes(routes!(routes::operations::metrics))
        .routes(routes!(routes::operations::openapi_json));
    let operator = OpenApiRouter::new()
        .routes(routes!(
            routes::sales::create_sale,
            routes::sales::list_sales
        ))
        .routes(routes!(routes::sales::get_sale))
        .routes(routes!(routes::sales::void_sale))
        .routes(routes!(routes::payments::create_payment))
        .routes(routes!(routes::cards::card_balance))
        .routes(routes!(routes::cards::get_card))
        .routes(routes!(routes::cards::block_card))
        .routes(routes!(routes::cards::replace_card))
        .routes(routes!(routes::settlements::list_settlements))
        .routes(routes!(routes::settlements::get_settlement))
        .routes(routes!(routes::statement::get_statement))
        .routes(routes!(routes::exceptions::list_exceptions))
        .routes(routes!(routes::exceptions::get_exception))
        .routes(routes!(routes::exceptions::dispute_exception))
        .routes(routes!(
            routes::webhooks::put_webhook,
            routes::webhooks::get_webhook,
            routes::webhooks::delete_webhook
        ))
        .routes(routes!(routes::webhooks::list_deliveries));
    (public, operator)
}

/// The OpenAPI document as served at `/openapi.json` and committed as `openapi.json`.
pub fn openapi_document() -> String {
    let (public, operator) = documented_routes();
    let (_, mut api) = public.split_for_parts();
    api.merge(operator.split_for_parts().1);
    complete(&mut api);
    let mut text = api.to_pretty_json().expect("the document serializes");
    text.push('\n');
    text
}

/// Builds the application: routes, authentication, limits and telemetry.
pub fn app(
    ledger: Arc<dyn Ledger>,
    verifier: Verifier,
    money: MoneyRules,
    limits: Limits,
    webhooks: events::ssrf::Policy,
) -> Router {
    let state = AppState(Arc::new(Inner {
        ledger,
        verifier,
        money,
        limits,
        metrics: Metrics::default(),
        webhooks,
        rate: RateLimiter::new(limits.rate_per_second, limits.rate_burst),
        operators: Mutex::new(HashMap::new()),
        openapi: openapi_document(),
    }));
    let (public, operator) = documented_routes();
    let operator = operator
        .split_for_parts()
        .0
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    public
        .split_for_parts()
        .0
        .merge(operator)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            telemetry::observe,
        ))
        .with_state(state)
}

async fn not_found() -> Problem {
    Problem::not_found("resource")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    )
}

/// Answers 503 when a request takes longer than the configured timeout.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Problem::unavailable("the request took too long; retry it").into_response(),
    }
}

/// Verifies the bearer token, the operator and its rate limit; hands the `Caller` on.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return Problem::missing_token().into_response();
    };
    let caller: Caller = match state.verifier.verify(token).await {
        Ok(c) => c,
        Err(p) => {
            let mut response = p.into_response();
            if let Some(claimed) = telemetry::ClaimedOperator::of(token) {
                response.extensions_mut().insert(claimed);
            }
            return response;
        }
    };
    match state.operator_active(&caller.operator).await {
        Ok(true) => {}
        Ok(false) => {
            return Problem::forbidden("the operator is not registered or not active")
                .into_response();
        }
        Err(p) => return p.into_response(),
    }
    if let Err(retry_after) = state.rate.check(&caller.operator) {
        let mut response = Problem::rate_limited(retry_after).into_response();
        response.extensions_mut().insert(caller);
        return response;
    }
    req.extensions_mut().insert(caller.clone());
    let mut response = next.run(req).await;
    // Balances and sales are per-operator data: never cached by anything in between.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(caller);
    response
}
