//! The cases of reconciliation (DESIGN.md): how an operator's file and the ledger can agree
//! or differ about one sale. Shared by the engine that finds them and the fixtures that
//! inject them.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Case {
    Matched,
    AmountMismatch,
    CardMismatch,
    StatusMismatch,
    MissingInLedger,
    MissingInFile,
    Timing,
    DuplicateInFile,
}

impl Case {
    pub const ALL: [Case; 8] = [
        Case::Matched,
        Case::AmountMismatch,
        Case::CardMismatch,
        Case::StatusMismatch,
        Case::MissingInLedger,
        Case::MissingInFile,
        Case::Timing,
        Case::DuplicateInFile,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Case::Matched => "MATCHED",
            Case::AmountMismatch => "AMOUNT_MISMATCH",
            Case::CardMismatch => "CARD_MISMATCH",
            Case::StatusMismatch => "STATUS_MISMATCH",
            Case::MissingInLedger => "MISSING_IN_LEDGER",
            Case::MissingInFile => "MISSING_IN_FILE",
            Case::Timing => "TIMING",
            Case::DuplicateInFile => "DUPLICATE_IN_FILE",
        }
    }
}
