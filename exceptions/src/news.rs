//! What other systems and the operator hear of a case (DESIGN.md, Events): `exception.opened`
//! when a run opens a case (or finds a cleared one again), `exception.disputed` when the
//! operator disputes it, `exception.resolved` when a resolution stands. Each is written to
//! the ledger's outbox in the transaction that changes the case, so it is heard once the
//! change commits, and never otherwise.

use chrono::{DateTime, Utc};
use ledger::outbox::{EventType, NewEvent};
use ledger::{Currency, Money, OperatorId};
use serde_json::{Value, json};

use crate::ExceptionError;
use crate::case::{CaseState, ExceptionCase, Resolution};

/// The event a case's new state makes heard, if any: a case OPEN for the first time or
/// again (found again after it cleared, or reopened by a person after a resolution),
/// DISPUTED, or RESOLVED. Proposals awaiting approval, rejections of them, updates and
/// clearings stay in the case's own history.
pub(crate) fn of_change(
    before: Option<CaseState>,
    case: &ExceptionCase,
    actor: &str,
    currency: Currency,
) -> Result<Option<NewEvent>, ExceptionError> {
    if before == Some(case.state) {
        return Ok(None);
    }
    let (event_type, more) = match case.state {
        CaseState::Open
            if matches!(
                before,
                None | Some(CaseState::Cleared | CaseState::Resolved)
            ) =>
        {
            (EventType::ExceptionOpened, json!({}))
        }
        CaseState::Disputed => (
            EventType::ExceptionDisputed,
            json!({
                "actor": actor,
                "reason": case.dispute_reason.as_deref().unwrap_or_default(),
            }),
        ),
        CaseState::Resolved => (
            EventType::ExceptionResolved,
            json!({
                "actor": actor,
                "resolution": case.resolution.map(Resolution::as_str),
                "transaction_id": case.transaction_id,
            }),
        ),
        _ => return Ok(None),
    };
    Ok(Some(event(
        event_type,
        case,
        currency,
        case.updated_at,
        more,
    )?))
}

fn event(
    event_type: EventType,
    case: &ExceptionCase,
    currency: Currency,
    time: DateTime<Utc>,
    more: Value,
) -> Result<NewEvent, ExceptionError> {
    let operator = OperatorId::parse(&case.operator_id)
        .map_err(|e| ExceptionError::Corrupt(format!("case {}: operator_id: {e}", case.id)))?;
    let mut data = json!({
        "case_id": case.id,
        "operator_id": case.operator_id,
        "operator_ref": case.operator_ref,
        "business_date": case.business_date,
        "case": case.case_name,
        "amount": Money::new(case.difference, currency).to_decimal_string(),
        "currency": currency.code(),
        "status": case.state.as_str(),
    });
    if let (Some(data), Value::Object(more)) = (data.as_object_mut(), more) {
        data.extend(more);
    }
    Ok(NewEvent {
        event_type,
        subject: format!("exception/{}", case.id),
        operator: Some(operator),
        time,
        data,
    })
}
