//! The endpoints, one module per resource. Request and response types live beside their
//! handlers and are separate from the domain types: the wire format can stay stable while
//! the ledger changes.

pub mod cards;
pub mod operations;
pub mod payments;
pub mod sales;

use axum::http::StatusCode;

use crate::problem::Problem;

/// A path id that does not parse names nothing that exists.
pub(crate) fn parse_id(text: &str, what: &str) -> Result<i64, Problem> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Problem::not_found(what))
}

pub(crate) fn ok_json<T: serde::Serialize>(
    status: StatusCode,
    value: &T,
) -> Result<(StatusCode, serde_json::Value), Problem> {
    serde_json::to_value(value)
        .map(|v| (status, v))
        .map_err(|_| Problem::internal())
}
