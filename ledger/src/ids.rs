//! Identifiers that arrive from outside (tokens, API bodies, files, events), parsed once into
//! newtypes so the rest of the code never handles an unchecked string.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::money::truncate;

/// Which characters an identifier may use.
#[derive(Clone, Copy)]
enum Alphabet {
    /// `A-Z 0-9` only: card numbers.
    UpperAlnum,
    /// `A-Z a-z 0-9 - _ .`: codes chosen by operators and devices.
    Code,
}

fn check(
    field: &'static str,
    text: &str,
    max: usize,
    alphabet: Alphabet,
) -> Result<(), InvalidInput> {
    if text.is_empty() {
        return Err(InvalidInput::new(field, "is empty"));
    }
    if text.len() > max {
        return Err(InvalidInput::new(
            field,
            format!("{:?} is longer than {max} characters", truncate(text)),
        ));
    }
    let ok = match alphabet {
        Alphabet::UpperAlnum => text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        Alphabet::Code => text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
    };
    if !ok {
        let allowed = match alphabet {
            Alphabet::UpperAlnum => "A-Z and 0-9",
            Alphabet::Code => "letters, digits, '-', '_' and '.'",
        };
        return Err(InvalidInput::new(
            field,
            format!("{:?} may only contain {allowed}", truncate(text)),
        ));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $alphabet:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses the identifier; the error names the field this type is read from.
            pub fn parse(text: &str) -> Result<$name, InvalidInput> {
                Self::parse_as($field, text)
            }

            /// Parses the identifier, naming `field` in the error.
            pub fn parse_as(field: &'static str, text: &str) -> Result<$name, InvalidInput> {
                check(field, text, $max, $alphabet)?;
                Ok($name(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// A recharge operator (`OP001`).
    OperatorId, "operator_id", 32, Alphabet::Code
);
identifier!(
    /// A rider's card number (`CARD0000123456`).
    CardId, "card_id", 32, Alphabet::UpperAlnum
);
identifier!(
    /// The operator's own reference of a sale, unique per operator (`OP001-000123`).
    OperatorRef, "operator_ref", 64, Alphabet::Code
);
identifier!(
    /// The operator's own reference of an online fare payment, unique per operator.
    PaymentRef, "payment_ref", 64, Alphabet::Code
);
identifier!(
    /// A field validator (a gate, a bus reader).
    DeviceId, "device_id", 64, Alphabet::Code
);
identifier!(
    /// A company that runs buses or trains and earns fares.
    TransportOperatorId, "transport_operator_id", 32, Alphabet::Code
);
identifier!(
    /// A route a fare was paid on.
    RouteId, "route_id", 32, Alphabet::Code
);
identifier!(
    /// The shop or terminal where a sale was made.
    PointOfSale, "point_of_sale", 64, Alphabet::Code
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_realistic_identifiers() {
        assert_eq!(
            CardId::parse("CARD0000123456").unwrap().as_str(),
            "CARD0000123456"
        );
        assert!(OperatorRef::parse("OP001-000123").is_ok());
        assert!(PointOfSale::parse("POS-17").is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let e = CardId::parse("card 12").unwrap_err();
        assert_eq!(e.field, "card_id");
        assert!(e.reason.contains("A-Z"), "{e}");
        assert_eq!(OperatorId::parse("").unwrap_err().field, "operator_id");
        assert_eq!(
            OperatorRef::parse(&"x".repeat(65)).unwrap_err().field,
            "operator_ref"
        );
        assert_eq!(
            CardId::parse_as("ledger_card_id", "=1+1")
                .unwrap_err()
                .field,
            "ledger_card_id"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            let _ = CardId::parse(&text);
            let _ = OperatorRef::parse(&text);
            let _ = DeviceId::parse(&text);
        }
    }
}
