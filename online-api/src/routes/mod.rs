//! The endpoints, one module per resource. Request and response types live beside their
//! handlers and are separate from the domain types: the wire format can stay stable while
//! the ledger changes.

pub mod cards;
pub mod exceptions;
pub mod operations;
pub mod payments;
pub mod sales;
pub mod settlements;
pub mod statement;
pub mod webhooks;

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

/// A page's size and where it starts: `limit` from 1 to `max` (100 when not given, or
/// `max` if smaller), `cursor` a `next_cursor` this API returned.
pub(crate) fn page(
    limit: Option<i64>,
    cursor: Option<&str>,
    max: u32,
) -> Result<(u32, Option<i64>), Problem> {
    let invalid = |field: &str, detail: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A query parameter is not valid",
        )
        .field(field)
        .detail(detail)
    };
    let limit = match limit {
        None => 100.min(max),
        Some(n) if n >= 1 && n <= i64::from(max) => n as u32,
        Some(_) => return Err(invalid("limit", format!("limit must be from 1 to {max}"))),
    };
    let after = match cursor {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            invalid(
                "cursor",
                "cursor must be a next_cursor this API returned".to_string(),
            )
        })?),
    };
    Ok((limit, after))
}

/// Cuts a page read with one row more than `limit` back to `limit`, and says where the next
/// page starts: the extra row's presence is what tells there is one.
pub(crate) fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
) -> Option<String> {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(cursor)
    } else {
        None
    }
}
