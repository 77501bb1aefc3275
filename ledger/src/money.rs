//! Money as integer minor units of an ISO 4217 currency, parsed from and formatted to the
//! decimal strings used at every edge (API JSON, operator files, reports). Never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// An ISO 4217 currency with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// The currencies recaudo knows. A transit system settles in one of them (configured);
/// the table is here so that a typo is an error rather than a silent exponent guess.
const CURRENCIES: &[(&str, u8)] = &[
    ("ARS", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("CLP", 0),
    ("COP", 2),
    ("CRC", 2),
    ("DOP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GTQ", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("PAB", 2),
    ("PEN", 2),
    ("PYG", 0),
    ("USD", 2),
    ("UYU", 2),
];

impl Currency {
    pub const COP: Currency = Currency {
        code: *b"COP",
        exponent: 2,
    };

    /// Parses a three-letter ISO 4217 code (upper case).
    pub fn parse(code: &str) -> Result<Currency, InvalidInput> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, e)| Currency {
                code: c.as_bytes().try_into().expect("three letters"),
                exponent: *e,
            })
            .ok_or_else(|| {
                InvalidInput::new(
                    "currency",
                    format!(
                        "{:?} is not a supported ISO 4217 currency code",
                        truncate(code)
                    ),
                )
            })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ASCII code")
    }

    /// Digits after the decimal point (COP: 2, CLP: 0).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units of a currency. May be negative (balances, differences);
/// amounts that come in from outside are parsed with [`MoneyRules`], which only admits
/// positive values up to a maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// The decimal string with exactly the currency's minor digits: `295000` COP is `"2950.00"`.
    pub fn to_decimal_string(&self) -> String {
        format_minor(self.minor, self.currency.exponent)
    }
}

/// Serialized as its decimal string (`"2950.00"`): the currency travels beside it.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal_string())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Formats minor units as a decimal string with `exponent` digits after the point.
pub fn format_minor(minor: i64, exponent: u8) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(u32::from(exponent));
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// How amounts that come from outside are accepted: in one currency, above zero (or at
/// least zero for totals), never above a configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyRules {
    pub currency: Currency,
    /// Largest accepted amount, in minor units.
    pub max_minor: i64,
}

/// Default maximum for a single amount: 10,000,000.00 in a two-digit currency.
pub const DEFAULT_MAX_MINOR: i64 = 1_000_000_000;

impl MoneyRules {
    pub fn new(currency: Currency) -> MoneyRules {
        MoneyRules {
            currency,
            max_minor: DEFAULT_MAX_MINOR,
        }
    }

    /// The configured currency and maximum (`currency`, `max_amount`), checked.
    pub fn from_settings(money: &settings::MoneySettings) -> Result<MoneyRules, InvalidInput> {
        let currency = Currency::parse(&money.currency)?;
        let max_minor = match money.max_amount.as_str() {
            "" => DEFAULT_MAX_MINOR,
            text => parse_minor("max_amount", text, currency.exponent())?,
        };
        Ok(MoneyRules {
            currency,
            max_minor,
        })
    }

    /// A positive amount (a sale, a fare, a payment).
    pub fn parse_amount(&self, field: &'static str, text: &str) -> Result<Money, InvalidInput> {
        let minor = parse_minor(field, text, self.currency.exponent)?;
        if minor == 0 {
            return Err(InvalidInput::new(field, "must be greater than zero"));
        }
        self.within_max(field, minor)
    }

    /// An amount of zero or more (a file trailer's totals).
    pub fn parse_total(&self, field: &'static str, text: &str) -> Result<Money, InvalidInput> {
        let minor = parse_minor(field, text, self.currency.exponent)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Checks the currency code of an input against the configured one.
    pub fn parse_currency(
        &self,
        field: &'static str,
        code: &str,
    ) -> Result<Currency, InvalidInput> {
        let currency = Currency::parse(code).map_err(|e| InvalidInput::new(field, e.reason))?;
        if currency != self.currency {
            return Err(InvalidInput::new(
                field,
                format!("must be {}, got {}", self.currency, currency),
            ));
        }
        Ok(currency)
    }

    fn within_max(&self, field: &'static str, minor: i64) -> Result<Money, InvalidInput> {
        if minor > self.max_minor {
            return Err(InvalidInput::new(
                field,
                format!(
                    "exceeds the maximum of {}",
                    format_minor(self.max_minor, self.currency.exponent)
                ),
            ));
        }
        Ok(Money::new(minor, self.currency))
    }
}

/// Parses an unsigned decimal string (`"2950"`, `"2950.5"`, `"2950.00"`) into minor units.
///
/// The grammar is deliberately narrow: ASCII digits, at most one point with at least one
/// digit on each side, no sign, no exponent, no spaces or thousands separators, and no more
/// fraction digits than the currency has. Anything else is rejected rather than guessed.
pub fn parse_minor(field: &'static str, text: &str, exponent: u8) -> Result<i64, InvalidInput> {
    let bad = |reason: &str| InvalidInput::new(field, format!("{:?} {reason}", truncate(text)));
    if text.is_empty() {
        return Err(InvalidInput::new(field, "is empty"));
    }
    if text.len() > 32 {
        return Err(bad("is too long for an amount"));
    }
    if text.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(bad(
            "is not a plain decimal number (digits, optionally '.' and digits)",
        ));
    }
    if let Some(f) = fraction
        && f.len() > usize::from(exponent)
    {
        return Err(bad(&format!("has more than {exponent} decimal places")));
    }
    let value = Decimal::from_str(text).map_err(|_| bad("is out of range"))?;
    let scaled = value
        .checked_mul(Decimal::from(10i64.pow(u32::from(exponent))))
        .ok_or_else(|| bad("is out of range"))?;
    i64::try_from(scaled).map_err(|_| bad("is out of range"))
}

/// A rate such as a commission (0.035) or a tax (0.19): a decimal from 0 to 1 inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    pub fn parse(field: &'static str, text: &str) -> Result<Rate, InvalidInput> {
        let bad = |reason: &str| InvalidInput::new(field, format!("{:?} {reason}", truncate(text)));
        if text.is_empty() || text.len() > 32 {
            return Err(bad("is not a rate"));
        }
        if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(bad(
                "must be a plain decimal between 0 and 1, such as 0.035",
            ));
        }
        let d = Decimal::from_str(text).map_err(|_| bad("is not a decimal number"))?;
        if d > Decimal::ONE {
            return Err(bad("must be between 0 and 1"));
        }
        Ok(Rate(d.normalize()))
    }

    pub fn value(&self) -> Decimal {
        self.0
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Keeps error messages bounded when the input is absurdly long.
pub fn truncate(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cop() -> MoneyRules {
        MoneyRules::new(Currency::COP)
    }

    #[test]
    fn parses_the_forms_operators_send() {
        assert_eq!(
            cop().parse_amount("amount", "2950.00").unwrap().minor,
            295_000
        );
        assert_eq!(cop().parse_amount("amount", "2950").unwrap().minor, 295_000);
        assert_eq!(
            cop().parse_amount("amount", "2950.5").unwrap().minor,
            295_050
        );
        assert_eq!(cop().parse_amount("amount", "0.01").unwrap().minor, 1);
    }

    #[test]
    fn rejects_what_is_not_a_plain_amount() {
        for bad in [
            "",
            "2950.001",
            "-1",
            "+1",
            "1e3",
            "1E3",
            "NaN",
            "inf",
            " 1",
            "1 ",
            "1,000",
            ".5",
            "5.",
            "0",
            "0.00",
            "١٢",
            "10000000.01",
        ] {
            let err = cop().parse_amount("amount", bad).unwrap_err();
            assert_eq!(err.field, "amount", "{bad:?}");
        }
    }

    #[test]
    fn zero_decimal_currency_takes_no_fraction() {
        let clp = MoneyRules::new(Currency::parse("CLP").unwrap());
        assert_eq!(clp.parse_amount("fare", "800").unwrap().minor, 800);
        assert!(clp.parse_amount("fare", "800.0").is_err());
        assert_eq!(format_minor(800, 0), "800");
    }

    #[test]
    fn formats_with_the_currency_digits() {
        assert_eq!(format_minor(295_000, 2), "2950.00");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn currency_must_be_the_configured_one() {
        assert!(cop().parse_currency("currency", "COP").is_ok());
        assert_eq!(
            cop().parse_currency("currency", "USD").unwrap_err().field,
            "currency"
        );
        assert!(Currency::parse("cop").is_err());
        assert!(Currency::parse("XXX").is_err());
    }

    #[test]
    fn rates_are_between_zero_and_one() {
        assert_eq!(
            Rate::parse("commission_rate", "0.035").unwrap().to_string(),
            "0.035"
        );
        for bad in ["1.5", "-0.1", "abc", "", "1e-2"] {
            assert!(Rate::parse("commission_rate", bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn money_round_trips(minor in 1i64..=DEFAULT_MAX_MINOR) {
            let text = format_minor(minor, 2);
            proptest::prop_assert_eq!(cop().parse_amount("amount", &text).unwrap().minor, minor);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = cop().parse_amount("amount", &text);
            let _ = Rate::parse("rate", &text);
        }
    }
}
