//! Who each new bank entry is from (DESIGN.md, Bank statements and remittances): a credit
//! from an account registered for an operator is that operator's; else one that quotes a
//! payment reference `RC-{operator_id}-{YYYYMMDD}` of a registered operator is; else it is
//! unidentified and waits in suspense for finance. A debit is never an operator's. Each
//! entry is then posted once, through the `Ledger` trait.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use ledger::deposit::{Destination, MatchedBy, NewDeposit};
use ledger::{BusinessDate, Ledger, OperatorId};
use serde::Serialize;
use settings::telemetry::InternalEvent;

use crate::RemittanceError;
use crate::internal_events::BankEntriesMatched;

/// Entries posted per ledger call (one database transaction each).
const BATCH: usize = 5_000;
const CONCURRENT_BATCHES: usize = 2;

/// What a matching run posted, by how each entry was matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MatchReport {
    pub by_payer_account: u64,
    pub by_reference: u64,
    pub unidentified: u64,
    pub debits: u64,
}

impl MatchReport {
    pub fn total(&self) -> u64 {
        self.by_payer_account + self.by_reference + self.unidentified + self.debits
    }
}

/// The first payment reference in `text` that names a known operator (looked up without
/// regard to case, as payers type it), with the date it names.
pub fn payment_reference_in(
    text: &str,
    operators: &HashMap<String, String>,
) -> Option<(String, NaiveDate)> {
    text.split(|c: char| c.is_whitespace() || ",;/:()[]".contains(c))
        .filter_map(|token| {
            let rest = token
                .get(..3)
                .filter(|p| p.eq_ignore_ascii_case("RC-"))
                .map(|_| &token[3..])?;
            let (op, date) = rest.rsplit_once('-')?;
            let date = date.trim_end_matches('.');
            if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let date = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
            let op = operators.get(&op.to_ascii_lowercase())?;
            Some((op.clone(), date))
        })
        .next()
}

#[derive(sqlx::FromRow)]
struct NewEntry {
    account: String,
    bank_ref: String,
    direction: String,
    amount: i64,
    reference: Option<String>,
    payer_account: Option<String>,
}

/// Where one entry goes.
fn destination(
    e: &NewEntry,
    payers: &HashMap<String, String>,
    operators: &HashMap<String, String>,
) -> Result<Destination, RemittanceError> {
    if e.direction != "CREDIT" {
        return Ok(Destination::Debit);
    }
    let quoted = e
        .reference
        .as_deref()
        .and_then(|r| payment_reference_in(r, operators));
    let by_payer = e
        .payer_account
        .as_deref()
        .and_then(|a| payers.get(a.trim()));
    Ok(match (by_payer, quoted) {
        (Some(op), quoted) => Destination::Operator {
            operator: OperatorId::parse(op)?,
            matched_by: MatchedBy::PayerAccount,
            // Its reference still names the date it pays, when it is this operator's.
            settles: quoted
                .filter(|(q, _)| q == op)
                .map(|(_, d)| BusinessDate::from_naive(d)),
        },
        (None, Some((op, date))) => Destination::Operator {
            operator: OperatorId::parse(&op)?,
            matched_by: MatchedBy::Reference,
            settles: Some(BusinessDate::from_naive(date)),
        },
        (None, None) => Destination::Unidentified,
    })
}

/// Matches and posts every bank entry not posted yet, in booking order, in the business
/// date of `at`. Safe to repeat: an entry already posted is found and skipped by the ledger.
pub async fn match_new_entries(
    ledger: &dyn Ledger,
    at: DateTime<Utc>,
) -> Result<MatchReport, RemittanceError> {
    let db = ledger.database();
    let payers = crate::payer_account::registry(db).await?;
    let operators: HashMap<String, String> = ledger
        .operators()
        .await?
        .into_iter()
        .map(|o| (o.id.as_str().to_ascii_lowercase(), o.id.to_string()))
        .collect();
    // In the order the bank booked them (statements may go in side by side), each entry's
    // own document looked up by its key.
    const NEW: &str = "SELECT e.account, e.bank_ref, e.direction, e.amount, e.reference, \
        e.payer_account FROM bank_entries e WHERE NOT EXISTS (SELECT 1 FROM deposits d \
        WHERE d.document = 'bank:' || e.account || ':' || e.bank_ref) \
        ORDER BY e.booking_date, e.account, e.statement_id, e.position";
    let entries: Vec<NewEntry> = ledger::on_pool!(db, pool => {
        sqlx::query_as(NEW).fetch_all(pool).await?
    });
    let mut report = MatchReport::default();
    let mut batches = Vec::new();
    for chunk in entries.chunks(BATCH) {
        let mut deposits = Vec::with_capacity(chunk.len());
        for e in chunk {
            let to = destination(e, &payers, &operators)?;
            match &to {
                Destination::Operator {
                    matched_by: MatchedBy::PayerAccount,
                    ..
                } => report.by_payer_account += 1,
                Destination::Operator { .. } => report.by_reference += 1,
                Destination::Unidentified => report.unidentified += 1,
                Destination::Debit => report.debits += 1,
            }
            deposits.push(NewDeposit {
                bank_account: e.account.clone(),
                bank_ref: e.bank_ref.clone(),
                amount: e.amount,
                to,
                at,
            });
        }
        batches.push(deposits);
    }
    // Two batches in flight on PostgreSQL: one writes its rows while the other commits
    // (BENCHMARKS.md, remittances). The order payments apply in does not depend on it.
    let concurrent = match db {
        ledger::Database::Postgres(_) => CONCURRENT_BATCHES,
        ledger::Database::Sqlite(_) => 1,
    };
    futures::stream::iter(batches)
        .map(|deposits| async move { ledger.post_deposits(&deposits).await })
        .buffered(concurrent)
        .try_collect::<Vec<u64>>()
        .await?;
    BankEntriesMatched { report: &report }.emit();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_found_in_free_text_whatever_its_case() {
        let ops: HashMap<String, String> = [("op-7".to_string(), "OP-7".to_string())].into();
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(
            payment_reference_in("Pago liquidacion rc-op-7-20261130.", &ops),
            Some(("OP-7".into(), d))
        );
        assert_eq!(payment_reference_in("RC-OP-7-2026113", &ops), None);
        assert_eq!(payment_reference_in("RC-OP-8-20261130", &ops), None);
        assert_eq!(payment_reference_in("RC-OP-7-20261340", &ops), None);
        assert_eq!(payment_reference_in("", &ops), None);
    }
}
