//! What matching tells ops: one event per run, logged and counted by outcome (bounded
//! labels: never an operator or an account).

use metrics::counter;
use settings::telemetry::InternalEvent;

use crate::MatchReport;

/// A matching run posted the new bank entries.
pub struct BankEntriesMatched<'a> {
    pub report: &'a MatchReport,
}

impl InternalEvent for BankEntriesMatched<'_> {
    fn emit(self) {
        let r = self.report;
        tracing::info!(
            by_payer_account = r.by_payer_account,
            by_reference = r.by_reference,
            unidentified = r.unidentified,
            debits = r.debits,
            "bank entries matched and posted"
        );
        for (outcome, n) in [
            ("payer_account", r.by_payer_account),
            ("reference", r.by_reference),
            ("unidentified", r.unidentified),
            ("debit", r.debits),
        ] {
            counter!("recaudo_bank_entries_matched_total", "outcome" => outcome).increment(n);
        }
    }
}
