//! Reads: the bank entries as posted, with what each paid (`remittances`), and the aging
//! of what operators owe as of a date (`receivables_as_of`), from the settlement lines the
//! final reports published and the postings of the journal.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::{BusinessDate, Ledger};
use serde::Serialize;

use crate::RemittanceError;
use crate::aging::{AgingRow, Allocation, Application, Due, Payment, aging, allocate};

/// Which posted bank entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemittanceFilter {
    /// Posted in this business date.
    pub on: Option<BusinessDate>,
    pub operator: Option<String>,
    /// Only deposits still in suspense (never assigned).
    pub unidentified: bool,
}

/// A bank entry as posted (or an unidentified deposit's assignment), and what it paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Remittance {
    /// The business date it was posted in.
    pub business_date: NaiveDate,
    pub bank_account: String,
    pub bank_ref: String,
    pub booking_date: NaiveDate,
    pub value_date: NaiveDate,
    /// CREDIT or DEBIT.
    pub direction: String,
    /// Minor units, positive.
    pub amount: i64,
    pub currency: String,
    pub reference: Option<String>,
    pub payer_name: Option<String>,
    pub payer_account: Option<String>,
    /// `deposit`, `bank_debit` or `assignment`.
    pub kind: String,
    /// Whom it paid; none while in suspense, or for a debit.
    pub operator_id: Option<String>,
    /// `payer_account`, `reference` or `assigned`.
    pub matched_by: Option<String>,
    pub actor: Option<String>,
    pub transaction_id: i64,
    /// For an unidentified deposit: whether it was assigned since.
    pub assigned: bool,
    #[sqlx(skip)]
    pub applied_to: Vec<Application>,
    pub created_at: DateTime<Utc>,
}

impl Remittance {
    /// Where its money went, for people: `2026-11-28:150000.00 credit:20.00`,
    /// `suspense:unidentified`, `suspense:bank_debits`.
    pub fn applied_to_text(&self, format: impl Fn(i64) -> String) -> String {
        match (self.kind.as_str(), &self.operator_id) {
            ("bank_debit", _) => ledger::deposit::SUSPENSE_BANK_DEBITS.to_string(),
            (_, None) if self.assigned => "assigned later".to_string(),
            (_, None) => ledger::deposit::SUSPENSE_UNIDENTIFIED.to_string(),
            _ => self
                .applied_to
                .iter()
                .map(|a| match a.settles_date {
                    Some(d) => format!("{d}:{}", format(a.amount)),
                    None => format!("credit:{}", format(a.amount)),
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// `$4` is the date the listing is as of: an assignment made after it is not seen, so a
/// date's list says what was known at its end.
const REMITTANCES: &str = "SELECT * FROM (SELECT d.business_date, d.bank_account, d.bank_ref, \
    e.booking_date, e.value_date, e.direction, d.amount, e.currency, e.reference, e.payer_name, \
    e.payer_account, d.kind, d.operator_id, d.matched_by, d.actor, d.transaction_id, \
    d.created_at, \
    EXISTS (SELECT 1 FROM deposits a WHERE a.document = 'assign:' || d.bank_account || ':' || \
            d.bank_ref AND a.business_date <= $4) AS assigned \
    FROM deposits d JOIN bank_entries e ON e.account = d.bank_account AND e.bank_ref = d.bank_ref \
    WHERE d.business_date <= $4 AND ($1 IS NULL OR d.business_date = $1) \
    AND ($2 IS NULL OR d.operator_id = $2)) r \
    WHERE $3 = 0 OR (kind = 'deposit' AND operator_id IS NULL AND NOT assigned) \
    ORDER BY transaction_id";

async fn select_remittances(
    ledger: &dyn Ledger,
    filter: &RemittanceFilter,
    as_of: BusinessDate,
) -> Result<Vec<Remittance>, RemittanceError> {
    Ok(ledger::on_pool!(ledger.database(), pool => {
        sqlx::query_as(REMITTANCES)
            .bind(filter.on.map(|d| d.naive()))
            .bind(filter.operator.as_deref())
            .bind(i64::from(filter.unidentified))
            .bind(as_of.naive())
            .fetch_all(pool)
            .await?
    }))
}

/// Fills each row's `applied_to` from the allocation.
fn applied(mut rows: Vec<Remittance>, allocation: &Allocation) -> Vec<Remittance> {
    let mut by_seq: std::collections::HashMap<i64, Vec<Application>> = Default::default();
    for a in &allocation.applications {
        by_seq.entry(a.seq).or_default().push(a.clone());
    }
    for r in &mut rows {
        r.applied_to = by_seq.remove(&r.transaction_id).unwrap_or_default();
    }
    rows
}

/// The bank entries posted up to the end of `as_of` that the filter selects, in posting
/// order, each with what it paid as of then (a later due can take a payment's credit);
/// `date_lines` as for `dues_as_of`.
pub async fn remittances(
    ledger: &dyn Ledger,
    filter: &RemittanceFilter,
    as_of: BusinessDate,
    date_lines: Option<(BusinessDate, &[Due])>,
) -> Result<Vec<Remittance>, RemittanceError> {
    let rows = select_remittances(ledger, filter, as_of).await?;
    if rows.iter().all(|r| r.operator_id.is_none()) {
        return Ok(rows);
    }
    let (allocation, _) = allocation_as_of(ledger, as_of, date_lines).await?;
    Ok(applied(rows, &allocation))
}

/// A date's report: the entries posted on `date` with what each paid, and the aging at its
/// end, from one reading of the dues and payments.
pub async fn of_date(
    ledger: &dyn Ledger,
    date: BusinessDate,
    date_lines: Option<(BusinessDate, &[Due])>,
) -> Result<(Vec<Remittance>, Vec<AgingRow>), RemittanceError> {
    let on_date = RemittanceFilter {
        on: Some(date),
        ..Default::default()
    };
    let rows = select_remittances(ledger, &on_date, date).await?;
    let (allocation, operators) = allocation_as_of(ledger, date, date_lines).await?;
    let aging = aging(&allocation, &operators, date.naive());
    Ok((applied(rows, &allocation), aging))
}

/// What every operator owed for each settled date at the end of `as_of`: each line's net due
/// plus the date's adjustments, due on its due date, as the reports published by then said
/// (`ledger::settlement_line::dues_as_of`). `date_lines` stands in for the lines of one date
/// (a report computing that date's lines before it publishes them).
pub async fn dues_as_of(
    ledger: &dyn Ledger,
    as_of: BusinessDate,
    date_lines: Option<(BusinessDate, &[Due])>,
) -> Result<Vec<Due>, RemittanceError> {
    let replaced = date_lines.map(|(d, _)| d.naive());
    let mut dues: Vec<Due> = ledger::settlement_line::dues_as_of(ledger.database(), as_of)
        .await?
        .into_iter()
        .filter(|d| Some(d.settles_date) != replaced)
        .map(|d| Due {
            operator_id: d.operator_id,
            settles_date: d.settles_date,
            due_date: d.due_date,
            amount: d.amount,
        })
        .collect();
    if let Some((_, lines)) = date_lines {
        dues.extend(lines.iter().cloned());
    }
    Ok(dues)
}

/// Every payment of an operator posted up to the end of `as_of` (matched deposits and
/// assignments), in the order they are applied.
pub async fn payments_as_of(
    ledger: &dyn Ledger,
    as_of: BusinessDate,
) -> Result<Vec<Payment>, RemittanceError> {
    let db = ledger.database();
    let rows: Vec<(String, i64, i64, Option<NaiveDate>)> = ledger::on_pool!(db, pool => {
        // The order payments are applied in: the day they were posted, then as the bank
        // booked them (so that entries posted side by side keep the bank's order).
        sqlx::query_as(
            "SELECT d.operator_id, d.transaction_id, d.amount, d.settles_date FROM deposits d \
             JOIN bank_entries e ON e.account = d.bank_account AND e.bank_ref = d.bank_ref \
             WHERE d.operator_id IS NOT NULL AND d.business_date <= $1 \
             ORDER BY d.business_date, e.booking_date, e.account, e.statement_id, e.position, \
                      d.transaction_id",
        )
        .bind(as_of.naive())
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(operator_id, seq, amount, settles)| Payment {
            operator_id,
            seq,
            amount,
            settles,
        })
        .collect())
}

/// The allocation as of the end of `as_of`, and the operators it concerns (those owed or
/// paid by then: an operator registered later is not in an earlier date's aging).
async fn allocation_as_of(
    ledger: &dyn Ledger,
    as_of: BusinessDate,
    date_lines: Option<(BusinessDate, &[Due])>,
) -> Result<(Allocation, Vec<String>), RemittanceError> {
    let dues = dues_as_of(ledger, as_of, date_lines).await?;
    let payments = payments_as_of(ledger, as_of).await?;
    let mut operators: Vec<String> = dues
        .iter()
        .map(|d| d.operator_id.clone())
        .chain(payments.iter().map(|p| p.operator_id.clone()))
        .collect();
    operators.sort();
    operators.dedup();
    Ok((allocate(&dues, &payments), operators))
}

/// The aging of every operator owed or paid by the end of `as_of` (see `aging`).
pub async fn receivables_as_of(
    ledger: &dyn Ledger,
    as_of: BusinessDate,
    date_lines: Option<(BusinessDate, &[Due])>,
) -> Result<Vec<AgingRow>, RemittanceError> {
    let (allocation, operators) = allocation_as_of(ledger, as_of, date_lines).await?;
    Ok(aging(&allocation, &operators, as_of.naive()))
}

/// Gives an unidentified deposit to an operator. `account` may be left out when the bank
/// reference is in one account only.
pub async fn assign(
    ledger: &dyn Ledger,
    bank_ref: &str,
    account: Option<&str>,
    operator: &ledger::OperatorId,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<ledger::deposit::AssignmentReceipt, RemittanceError> {
    if ledger.operator(operator).await?.is_none() {
        return Err(ledger::LedgerError::UnknownOperator(operator.to_string()).into());
    }
    let db = ledger.database();
    let accounts: Vec<String> = ledger::on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT account FROM bank_entries WHERE bank_ref = $1 AND ($2 IS NULL OR account = $2) \
             ORDER BY account",
        )
        .bind(bank_ref)
        .bind(account)
        .fetch_all(pool)
        .await?
    });
    let account = match &accounts[..] {
        [] => {
            return Err(RemittanceError::EntryNotFound {
                bank_ref: bank_ref.to_string(),
                account: account.map(str::to_string),
            });
        }
        [one] => one.clone(),
        many => {
            return Err(RemittanceError::Ambiguous {
                bank_ref: bank_ref.to_string(),
                accounts: many.join(", "),
            });
        }
    };
    Ok(ledger
        .assign_deposit(&ledger::deposit::NewAssignment {
            bank_account: account,
            bank_ref: bank_ref.to_string(),
            operator: operator.clone(),
            actor: actor.to_string(),
            at,
        })
        .await?)
}
