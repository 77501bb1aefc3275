//! Recharge operators: the reference data that says who may sell, how long a sale can be
//! voided, and on what terms the operator is settled.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::business_date::BusinessDate;
use crate::error::InvalidInput;
use crate::ids::OperatorId;
use crate::money::{Rate, truncate};

/// A recharge operator as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub id: OperatorId,
    pub name: OperatorName,
    pub commission_rate: Rate,
    /// Tax charged on the commission (VAT), as a rate of the commission.
    pub tax_rate: Rate,
    pub void_window: VoidWindow,
    /// Business days after the business date that the operator must pay by.
    pub settlement_lag_days: u16,
    pub active: bool,
}

/// Changes to an operator; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorPatch {
    pub name: Option<OperatorName>,
    pub commission_rate: Option<Rate>,
    pub tax_rate: Option<Rate>,
    pub void_window: Option<VoidWindow>,
    pub settlement_lag_days: Option<u16>,
    pub active: Option<bool>,
    /// The business date from which changed terms are in force; `None`: the next
    /// business date. A name or active flag changes at once.
    pub effective_from: Option<BusinessDate>,
}

impl OperatorPatch {
    /// Whether the patch changes terms (and so makes a new version of them).
    pub fn changes_terms(&self) -> bool {
        self.commission_rate.is_some()
            || self.tax_rate.is_some()
            || self.void_window.is_some()
            || self.settlement_lag_days.is_some()
    }
}

/// One version of an operator's terms, as `recaudo operators terms` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsVersion {
    /// `None`: the terms the operator was registered with, in force until the first change.
    pub effective_from: Option<BusinessDate>,
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(flatten)]
    pub terms: Operator,
}

/// A display name: 1 to 120 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OperatorName(String);

impl OperatorName {
    pub fn parse(text: &str) -> Result<OperatorName, InvalidInput> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new("name", "is empty"));
        }
        if trimmed.chars().count() > 120 {
            return Err(InvalidInput::new("name", "is longer than 120 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidInput::new("name", "contains control characters"));
        }
        Ok(OperatorName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long after a sale the operator may still void it: `30m`, `2h`, `90s`, `1d`, up to
/// seven days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VoidWindow(#[serde(serialize_with = "serialize_secs")] Duration);

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl VoidWindow {
    pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

    pub fn parse(text: &str) -> Result<VoidWindow, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                "void_window",
                format!(
                    "{:?} is not a duration such as 30m, 2h, 90s or 1d",
                    truncate(text)
                ),
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
        Self::from_secs(secs)
    }

    pub fn from_secs(secs: u64) -> Result<VoidWindow, InvalidInput> {
        let d = Duration::from_secs(secs);
        if d > Self::MAX {
            return Err(InvalidInput::new("void_window", "must be at most 7 days"));
        }
        Ok(VoidWindow(d))
    }

    pub fn duration(&self) -> Duration {
        self.0
    }
}

impl fmt::Display for VoidWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn void_windows_parse_and_print_back() {
        for text in ["30m", "2h", "90s", "1d", "0s"] {
            assert_eq!(VoidWindow::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "",
            "30",
            "m",
            "30 m",
            "-1m",
            "8d",
            "99999999999999999999s",
            "1w",
        ] {
            assert_eq!(
                VoidWindow::parse(bad).unwrap_err().field,
                "void_window",
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            OperatorName::parse("  Tienda La 14 ").unwrap().as_str(),
            "Tienda La 14"
        );
        assert!(OperatorName::parse("   ").is_err());
        assert!(OperatorName::parse("a\u{7}b").is_err());
    }
}
