//! The day's figures, computed once from the inputs: one settlement line per operator, the
//! discrepancies, fare revenue per transport operator, the lost taps, the exception cases
//! open at the end of the day and the adjustments posted on it. Every file of the
//! report is rendered from this, so the CSV, the Parquet and the page cannot disagree.

use std::collections::BTreeMap;

use ledger::{BusinessDate, Currency, Rate};
use polars::prelude::*;

use crate::ReportError;
use crate::inputs::{Fares, OperatorSales, ReportInputs};
use crate::settlement::{Settlement, due_date, settle};

/// One operator's statement line. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub operator_id: String,
    pub operator_name: String,
    pub sales: OperatorSales,
    pub commission_rate: Rate,
    pub settlement: Settlement,
    pub due_date: BusinessDate,
    pub matched_count: i64,
    pub exception_count: i64,
    /// Σ differences (ledger − file) of the operator's non-MATCHED items.
    pub exception_amount: i64,
    /// Whether the operator's accepted file for the date was reconciled.
    pub has_file: bool,
    /// What the adjustments and write-offs posted on the date added to what the operator
    /// owes (negative: it owes less). Not part of `net_due`, which is the date's sales:
    /// a correction of an earlier day lands in the day it was decided, beside it.
    pub adjustments: i64,
}

impl SettlementLine {
    /// What the operator quotes when it pays this line.
    pub fn payment_reference(&self, date: BusinessDate) -> String {
        ledger::settlement_line::payment_reference(&self.operator_id, date)
    }

    /// NO_FILE when no accepted file of the operator's was reconciled (it sent none, or
    /// every one was rejected): nothing confirms its sales, whatever they are.
    pub fn status(&self) -> &'static str {
        if !self.has_file {
            "NO_FILE"
        } else if self.exception_count == 0 {
            "BALANCED"
        } else {
            "EXCEPTIONS"
        }
    }
}

/// Final (the date has closed: `reports/{D}/v{n}/`, `latest.json` moved) or provisional
/// (a look at a date that has not closed: `reports/{D}/provisional/`, every file marked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Final,
    Provisional,
}

impl ReportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportKind::Final => "FINAL",
            ReportKind::Provisional => "PROVISIONAL",
        }
    }
}

/// What the page says about the report itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMeta {
    pub kind: ReportKind,
    /// The version being published (`None`: provisional).
    pub version: Option<u32>,
    /// When the report read its inputs (RFC 3339, UTC).
    pub as_of: String,
}

/// The whole day.
pub struct Statement {
    pub date: BusinessDate,
    pub currency: Currency,
    /// Sorted by operator id.
    pub lines: Vec<SettlementLine>,
    /// Non-MATCHED items sorted by operator, case, ref; columns as in reconciliation items.
    pub discrepancies: DataFrame,
    pub fares: BTreeMap<String, Fares>,
    pub gaps: Vec<ledger::device_gap::DeviceGap>,
    pub rejected_files: Vec<crate::inputs::RejectedFile>,
    pub negative_cards: Vec<crate::inputs::NegativeCard>,
    /// Cases open at the end of the date, oldest first.
    pub open_cases: Vec<exceptions::OpenCase>,
    /// Adjustments and write-offs posted on the date, by operator, then transaction.
    pub adjustments: Vec<crate::inputs::Adjustment>,
    /// Devices that accepted taps on cards blocked past the grace, by device.
    pub hotlist_violations: Vec<ledger::hotlist_violation::DeviceViolations>,
    pub hotlist: Option<crate::inputs::HotlistState>,
    /// Bank entries posted on the date, with what each paid (filled by `report`, which
    /// reads them once the lines are known).
    pub remittances: Vec<remittances::Remittance>,
    /// Every operator's receivable by age at the end of the date (filled by `report`).
    pub aging: Vec<remittances::AgingRow>,
    pub meta: ReportMeta,
}

/// Computes the statement. An operator appears when it is active or has anything on the
/// date. Fails when the reconciliation run no longer matches the ledger (sales arrived or
/// were voided after it ran): the statement and its exceptions would disagree.
pub fn build(inputs: &ReportInputs, meta: ReportMeta) -> Result<Statement, ReportError> {
    let run = &inputs.reconciliation;
    let summaries: BTreeMap<&str, &reconcile::store::OperatorSummary> = run
        .summaries
        .iter()
        .map(|s| (s.operator_id.as_str(), s))
        .collect();
    let mut adjusted: BTreeMap<&str, i64> = BTreeMap::new();
    for a in &inputs.adjustments {
        *adjusted.entry(a.operator_id.as_str()).or_default() += a.amount;
    }
    let mut lines = Vec::new();
    let mut operators: Vec<_> = inputs.operators.iter().collect();
    operators.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    for op in operators {
        let id = op.id.as_str();
        let sales = inputs.sales.get(id).cloned().unwrap_or_default();
        let summary = summaries.get(id);
        let adjustments = adjusted.get(id).copied().unwrap_or(0);
        if !op.active && sales.sales_count == 0 && summary.is_none() && adjustments == 0 {
            continue;
        }
        let reconciled_net = summary.map_or(0, |s| s.ledger_total);
        if reconciled_net != sales.net() {
            let amount = |minor| ledger::Money::new(minor, inputs.currency).to_string();
            return Err(ReportError::StaleReconciliation {
                date: inputs.date,
                operator: id.to_string(),
                ledger: amount(sales.net()),
                reconciled: amount(reconciled_net),
            });
        }
        lines.push(SettlementLine {
            operator_id: id.to_string(),
            operator_name: op.name.as_str().to_string(),
            commission_rate: op.commission_rate,
            settlement: settle(sales.net(), op.commission_rate, op.tax_rate),
            due_date: due_date(inputs.date, op.settlement_lag_days, &inputs.holidays),
            matched_count: summary.map_or(0, |s| s.matched()),
            exception_count: summary.map_or(0, |s| s.exceptions()),
            exception_amount: summary.map_or(0, |s| s.exceptions_difference),
            has_file: inputs
                .files
                .iter()
                .any(|f| f.operator_id == id && f.business_date == inputs.date.to_string()),
            adjustments,
            sales,
        });
    }
    let discrepancies = run
        .exceptions
        .clone()
        .lazy()
        .sort(
            ["operator_id", "case", "operator_ref"],
            SortMultipleOptions::default(),
        )
        .collect()?;
    Ok(Statement {
        date: inputs.date,
        currency: inputs.currency,
        lines,
        discrepancies,
        fares: inputs.fares.clone(),
        gaps: inputs.gaps.clone(),
        rejected_files: inputs.rejected_files.clone(),
        negative_cards: inputs.negative_cards.clone(),
        open_cases: inputs.open_cases.clone(),
        adjustments: inputs.adjustments.clone(),
        hotlist_violations: inputs.hotlist_violations.clone(),
        hotlist: inputs.hotlist.clone(),
        remittances: Vec::new(),
        aging: Vec::new(),
        meta,
    })
}

/// Day totals, as the page shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub sales_count: i64,
    pub sales_amount: i64,
    pub voids_count: i64,
    pub voids_amount: i64,
    pub net_sales: i64,
    pub commission: i64,
    pub commission_tax: i64,
    pub net_due: i64,
    pub exception_count: i64,
    pub exception_amount: i64,
    pub fare_revenue: i64,
    pub adjustments: i64,
    pub open_cases: i64,
}

/// Open cases of one age bucket, as the page shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgeBucket {
    pub label: &'static str,
    pub cases: i64,
    pub open: i64,
    pub disputed: i64,
    pub pending_approval: i64,
    /// Σ differences (ledger − file).
    pub difference: i64,
}

/// The age buckets, in days since the date a case was found on: (label, up to and
/// including this many days; `None` for the last).
pub const AGE_BUCKETS: [(&str, Option<i64>); 5] = [
    ("0–1 days", Some(1)),
    ("2–7 days", Some(7)),
    ("8–30 days", Some(30)),
    ("31–90 days", Some(90)),
    ("over 90 days", None),
];

impl Statement {
    /// What each line makes the operator owe for the date, for the aging: its net due and
    /// the adjustments posted on the date, due on its due date.
    pub fn dues(&self) -> Vec<remittances::Due> {
        self.lines
            .iter()
            .map(|l| remittances::Due {
                operator_id: l.operator_id.clone(),
                settles_date: self.date.naive(),
                due_date: l.due_date.naive(),
                amount: l.settlement.net_due + l.adjustments,
            })
            .collect()
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for l in &self.lines {
            t.sales_count += l.sales.sales_count;
            t.sales_amount += l.sales.sales_amount;
            t.voids_count += l.sales.voids_count;
            t.voids_amount += l.sales.voids_amount;
            t.net_sales += l.sales.net();
            t.commission += l.settlement.commission;
            t.commission_tax += l.settlement.commission_tax;
            t.net_due += l.settlement.net_due;
            t.adjustments += l.adjustments;
        }
        t.open_cases = self.open_cases.len() as i64;
        // From the discrepancies themselves, as the exceptions table counts them: the
        // totals and the table cannot disagree.
        t.exception_count = self.discrepancies.height() as i64;
        t.exception_amount = self
            .discrepancies
            .column("difference")
            .ok()
            .and_then(|c| c.i64().ok().map(|d| d.sum().unwrap_or(0)))
            .unwrap_or(0);
        t.fare_revenue = self.fares.values().map(Fares::revenue).sum();
        t
    }

    /// The open cases by age, every bucket present.
    pub fn open_by_age(&self) -> Vec<AgeBucket> {
        let mut buckets: Vec<AgeBucket> = AGE_BUCKETS
            .iter()
            .map(|(label, _)| AgeBucket {
                label,
                ..AgeBucket::default()
            })
            .collect();
        for o in &self.open_cases {
            let i = AGE_BUCKETS
                .iter()
                .position(|(_, most)| most.is_none_or(|m| o.age_days <= m))
                .unwrap_or(AGE_BUCKETS.len() - 1);
            let b = &mut buckets[i];
            b.cases += 1;
            b.difference += o.case.difference;
            match o.state {
                exceptions::CaseState::Disputed => b.disputed += 1,
                exceptions::CaseState::PendingApproval => b.pending_approval += 1,
                _ => b.open += 1,
            }
        }
        buckets
    }

    /// Exceptions per case, over all operators, in the order of DESIGN.md's table.
    pub fn exceptions_by_case(&self) -> Result<Vec<(&'static str, i64)>, ReportError> {
        let cases = self.discrepancies.column("case")?.str()?;
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for case in cases.iter().flatten() {
            *counts.entry(case).or_default() += 1;
        }
        Ok(reconcile::Case::ALL
            .iter()
            .filter(|c| **c != reconcile::Case::Matched)
            .map(|c| (c.as_str(), counts.get(c.as_str()).copied().unwrap_or(0)))
            .collect())
    }
}

/// The discrepancy columns, typed, for the renderers that walk them row by row.
pub struct DiscrepancyColumns<'a> {
    pub operator_id: &'a StringChunked,
    pub case: &'a StringChunked,
    pub operator_ref: &'a StringChunked,
    pub ledger_card_id: &'a StringChunked,
    pub file_card_id: &'a StringChunked,
    pub ledger_amount: &'a Int64Chunked,
    pub file_amount: &'a Int64Chunked,
    pub difference: &'a Int64Chunked,
    pub ledger_occurred_at: &'a Int64Chunked,
    pub file_occurred_at: &'a Int64Chunked,
}

impl Statement {
    pub fn discrepancy_columns(&self) -> Result<DiscrepancyColumns<'_>, ReportError> {
        let d = &self.discrepancies;
        let text =
            |name: &str| -> Result<&StringChunked, ReportError> { Ok(d.column(name)?.str()?) };
        let int = |name: &str| -> Result<&Int64Chunked, ReportError> { Ok(d.column(name)?.i64()?) };
        Ok(DiscrepancyColumns {
            operator_id: text("operator_id")?,
            case: text("case")?,
            operator_ref: text("operator_ref")?,
            ledger_card_id: text("ledger_card_id")?,
            file_card_id: text("file_card_id")?,
            ledger_amount: int("ledger_amount")?,
            file_amount: int("file_amount")?,
            difference: int("difference")?,
            ledger_occurred_at: int("ledger_occurred_at")?,
            file_occurred_at: int("file_occurred_at")?,
        })
    }
}

impl Statement {
    /// The lines as the database keeps them for the API, for the version being published.
    pub fn published_lines(
        &self,
        version: u32,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<ledger::settlement_line::PublishedLine> {
        self.lines
            .iter()
            .map(|l| ledger::settlement_line::PublishedLine {
                operator_id: l.operator_id.clone(),
                business_date: self.date.naive(),
                report_version: i32::try_from(version).unwrap_or(i32::MAX),
                currency: self.currency.code().to_string(),
                sales_count: l.sales.sales_count,
                sales_amount: l.sales.sales_amount,
                voids_count: l.sales.voids_count,
                voids_amount: l.sales.voids_amount,
                net_sales: l.sales.net(),
                commission_rate: l.commission_rate.to_string(),
                commission: l.settlement.commission,
                commission_tax: l.settlement.commission_tax,
                net_due: l.settlement.net_due,
                due_date: l.due_date.naive(),
                matched_count: l.matched_count,
                exception_count: l.exception_count,
                exception_amount: l.exception_amount,
                adjustments: l.adjustments,
                status: l.status().to_string(),
                payment_reference: l.payment_reference(self.date),
                published_at: at,
            })
            .collect()
    }
}
