//! What an operator owes for a business date: commission and the tax on it, each rounded
//! half-even to minor units once, and the date it is due, counted in business days.

use chrono::{Datelike, Weekday};
use ledger::{BusinessDate, Rate};
use rust_decimal::{Decimal, RoundingStrategy};

/// The money lines of one operator's statement, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub commission: i64,
    pub commission_tax: i64,
    pub net_due: i64,
}

/// Rounds to a whole number of minor units, half to even (banker's rounding): over many
/// lines the roundings do not drift in one direction.
fn to_minor(value: Decimal) -> i64 {
    let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    // |net_sales| fits in i64 and the rates are at most 1, so the product does too.
    i64::try_from(rounded).expect("a rate of at most 1 keeps an i64 amount in range")
}

/// commission = net_sales × rate; commission_tax = commission × tax rate; net_due =
/// net_sales − commission − commission_tax. The tax is computed on the rounded commission,
/// as the statement shows it.
pub fn settle(net_sales: i64, commission_rate: Rate, tax_rate: Rate) -> Settlement {
    let commission = to_minor(Decimal::from(net_sales) * commission_rate.value());
    let commission_tax = to_minor(Decimal::from(commission) * tax_rate.value());
    Settlement {
        commission,
        commission_tax,
        net_due: net_sales - commission - commission_tax,
    }
}

/// Whether `date` is a business day: not a Saturday, Sunday or configured holiday.
pub fn is_business_day(date: BusinessDate, holidays: &[BusinessDate]) -> bool {
    !matches!(date.naive().weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&date)
}

/// `lag` business days after `date`. A lag of 0 is due on the date itself.
pub fn due_date(date: BusinessDate, lag: u16, holidays: &[BusinessDate]) -> BusinessDate {
    let mut due = date;
    let mut left = lag;
    while left > 0 {
        due = due.succ();
        if is_business_day(due, holidays) {
            left -= 1;
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse("rate", text).unwrap()
    }

    fn date(text: &str) -> BusinessDate {
        BusinessDate::parse(text).unwrap()
    }

    #[test]
    fn worked_examples() {
        // 1,000,000.00 COP at 3.5 % with 19 % VAT on the commission.
        assert_eq!(
            settle(100_000_000, rate("0.035"), rate("0.19")),
            Settlement {
                commission: 3_500_000,
                commission_tax: 665_000,
                net_due: 95_835_000
            }
        );
        // 2,950.00 COP at 2 %: 59.00, tax 11.21.
        assert_eq!(
            settle(295_000, rate("0.02"), rate("0.19")),
            Settlement {
                commission: 5_900,
                commission_tax: 1_121,
                net_due: 287_979
            }
        );
        // Nothing sold, nothing owed either way.
        assert_eq!(
            settle(0, rate("0.035"), rate("0.19")),
            Settlement {
                commission: 0,
                commission_tax: 0,
                net_due: 0
            }
        );
        // A zero rate: the operator owes every peso it collected.
        assert_eq!(settle(12_345, rate("0"), rate("0.19")).net_due, 12_345);
    }

    #[test]
    fn half_a_minor_unit_goes_to_the_even_neighbour() {
        // 25 × 0.1 = 2.5 → 2 (even, down); 35 × 0.1 = 3.5 → 4 (even, up).
        assert_eq!(settle(25, rate("0.1"), rate("0")).commission, 2);
        assert_eq!(settle(35, rate("0.1"), rate("0")).commission, 4);
        // 5 × 0.5 = 2.5 → 2; 7 × 0.5 = 3.5 → 4.
        assert_eq!(settle(5, rate("0.5"), rate("0")).commission, 2);
        assert_eq!(settle(7, rate("0.5"), rate("0")).commission, 4);
        // Just off the midpoint rounds to the nearest, whatever the parity.
        assert_eq!(settle(2_501, rate("0.001"), rate("0")).commission, 3); // 2.501
        assert_eq!(settle(2_499, rate("0.001"), rate("0")).commission, 2); // 2.499
        // The tax rounds on its own, once, from the rounded commission:
        // 1,850 × 0.035 = 64.75 → 65; 65 × 0.1 = 6.5 → 6 (even).
        let s = settle(1_850, rate("0.035"), rate("0.1"));
        assert_eq!((s.commission, s.commission_tax, s.net_due), (65, 6, 1_779));
        // 150 × 0.05 = 7.5 → 8; 8 × 0.1875 = 1.5 → 2.
        let s = settle(150, rate("0.05"), rate("0.1875"));
        assert_eq!((s.commission, s.commission_tax, s.net_due), (8, 2, 140));
    }

    #[test]
    fn the_due_date_skips_weekends_and_holidays() {
        // 2026-11-27 is a Friday: one business day later is Monday the 30th.
        assert_eq!(due_date(date("2026-11-27"), 1, &[]), date("2026-11-30"));
        assert_eq!(due_date(date("2026-11-27"), 0, &[]), date("2026-11-27"));
        // Thursday + 1 is Friday, + 2 crosses the weekend.
        assert_eq!(due_date(date("2026-11-26"), 1, &[]), date("2026-11-27"));
        assert_eq!(due_date(date("2026-11-26"), 2, &[]), date("2026-11-30"));
        // With Monday 2026-12-07 and Tuesday 2026-12-08 as holidays, a Friday's next
        // business day is Wednesday.
        let holidays = [date("2026-12-07"), date("2026-12-08")];
        assert_eq!(
            due_date(date("2026-12-04"), 1, &holidays),
            date("2026-12-09")
        );
        assert_eq!(
            due_date(date("2026-12-04"), 3, &holidays),
            date("2026-12-11")
        );
        // A sale day that is itself a weekend counts from the next business day.
        assert_eq!(due_date(date("2026-11-28"), 1, &[]), date("2026-11-30"));
        // A holiday on a weekend changes nothing.
        let christmas_on_friday = [date("2026-12-25")];
        assert_eq!(
            due_date(date("2026-12-24"), 1, &christmas_on_friday),
            date("2026-12-28")
        );
    }
}
