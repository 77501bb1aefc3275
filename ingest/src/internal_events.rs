//! What ingest tells ops: each event logs one line and counts in one metric. Labels are
//! bounded (an outcome, never a key or an operator).

use metrics::counter;
use settings::telemetry::InternalEvent;

/// An operator file went in whole.
pub struct OperatorFileAccepted<'a> {
    pub key: &'a str,
    pub records: u64,
}

impl InternalEvent for OperatorFileAccepted<'_> {
    fn emit(self) {
        tracing::info!(
            object = self.key,
            records = self.records,
            "operator file accepted"
        );
        counter!("recaudo_operator_files_total", "outcome" => "accepted").increment(1);
        counter!("recaudo_operator_file_records_total").increment(self.records);
    }
}

/// An operator file was rejected whole and kept with its error report.
pub struct OperatorFileRejected<'a> {
    pub key: &'a str,
    pub errors: usize,
}

impl InternalEvent for OperatorFileRejected<'_> {
    fn emit(self) {
        tracing::warn!(
            object = self.key,
            errors = self.errors,
            "operator file rejected"
        );
        counter!("recaudo_operator_files_total", "outcome" => "rejected").increment(1);
    }
}

/// An operator file whose bytes were ingested before.
pub struct OperatorFileAlreadyIngested<'a> {
    pub key: &'a str,
}

impl InternalEvent for OperatorFileAlreadyIngested<'_> {
    fn emit(self) {
        tracing::info!(object = self.key, "operator file already ingested");
        counter!("recaudo_operator_files_total", "outcome" => "already_ingested").increment(1);
    }
}

/// A batch of validation events is durable: posted, replays skipped, bad ones
/// dead-lettered.
pub struct ValidationBatchPosted {
    pub events: usize,
    pub posted: usize,
    pub duplicates: usize,
    pub dead_lettered: usize,
    pub flagged_cards: usize,
}

impl InternalEvent for ValidationBatchPosted {
    fn emit(self) {
        tracing::debug!(
            events = self.events,
            posted = self.posted,
            duplicates = self.duplicates,
            dead_lettered = self.dead_lettered,
            "validation batch posted"
        );
        if self.dead_lettered > 0 {
            tracing::warn!(
                events = self.dead_lettered,
                "malformed validation events went to the dead letters"
            );
        }
        if self.flagged_cards > 0 {
            tracing::info!(
                cards = self.flagged_cards,
                "cards went below zero and were flagged"
            );
        }
        counter!("recaudo_validations_posted_total").increment(self.posted as u64);
        counter!("recaudo_validations_duplicate_total").increment(self.duplicates as u64);
        counter!("recaudo_dead_letters_total").increment(self.dead_lettered as u64);
    }
}

/// A bank statement went in whole, or was rejected whole, or its bytes were seen before.
pub struct BankStatementHandled<'a> {
    pub key: &'a str,
    /// `accepted`, `rejected` or `duplicate`.
    pub outcome: &'static str,
    pub entries: usize,
    pub errors: usize,
}

impl InternalEvent for BankStatementHandled<'_> {
    fn emit(self) {
        if self.outcome == "rejected" {
            tracing::warn!(
                object = self.key,
                errors = self.errors,
                "bank statement rejected"
            );
        } else {
            tracing::info!(
                object = self.key,
                entries = self.entries,
                outcome = self.outcome,
                "bank statement handled"
            );
        }
        counter!("recaudo_bank_statements_total", "outcome" => self.outcome).increment(1);
        counter!("recaudo_bank_entries_total").increment(self.entries as u64);
    }
}
