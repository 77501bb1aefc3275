//! What each operator owes, due date by due date, and how far past due (DESIGN.md,
//! Receivables aging). Pure: it takes the dues (one per settled date: the line's net due plus
//! the adjustments posted on the date) and the payments, and applies each payment, in the
//! order they were posted, first to the date its reference named, then to the oldest due
//! date still open. What is left after every due is paid is a credit. A due that is
//! negative (the operator was owed) is applied like a payment made before all others.
//!
//! The same function answers `recaudo receivables`, the report's `receivables_aging` and the
//! "applied to" of `remittances.csv`, so they cannot disagree.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

/// What an operator owes for one settled date, due on `due_date`. Minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub operator_id: String,
    pub settles_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amount: i64,
}

/// Money that paid an operator. `allocate` takes payments in the order given (see
/// `store::payments_as_of`: posted date, then the bank's booking date and reference); `seq`
/// names the payment (its journal transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub operator_id: String,
    pub seq: i64,
    pub amount: i64,
    /// The settled date its payment reference named, if any.
    pub settles: Option<NaiveDate>,
}

/// Part of a payment applied to a settled date (`None`: left as a credit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Application {
    pub seq: i64,
    pub settles_date: Option<NaiveDate>,
    pub amount: i64,
}

/// What is still open of each due, and each operator's credit, after the payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    pub applications: Vec<Application>,
    /// By (operator, settled date): what is still owed, with its due date.
    pub open: BTreeMap<(String, NaiveDate), (NaiveDate, i64)>,
    pub credit: BTreeMap<String, i64>,
}

/// Applies `payments` to `dues` (see the module's rule).
pub fn allocate(dues: &[Due], payments: &[Payment]) -> Allocation {
    let mut out = Allocation::default();
    // Per operator, the open items in the order payments take them: oldest due date first.
    let mut items: BTreeMap<&str, Vec<(NaiveDate, NaiveDate, i64)>> = BTreeMap::new();
    // Per operator, what pays its dues: (seq, amount, the date it names).
    type Paid = Vec<(i64, i64, Option<NaiveDate>)>;
    let mut pool: BTreeMap<&str, Paid> = BTreeMap::new();
    for d in dues {
        if d.amount > 0 {
            items
                .entry(&d.operator_id)
                .or_default()
                .push((d.due_date, d.settles_date, d.amount));
        } else if d.amount < 0 {
            // Owed to the operator: a credit, taken before any payment.
            pool.entry(&d.operator_id)
                .or_default()
                .push((i64::MIN, -d.amount, None));
        }
    }
    for p in payments {
        pool.entry(&p.operator_id)
            .or_default()
            .push((p.seq, p.amount, p.settles));
    }
    for list in items.values_mut() {
        list.sort();
    }
    for (operator, paid) in pool {
        let open = items.entry(operator).or_default();
        for (seq, amount, settles) in paid {
            let mut left = amount;
            if let Some(named) = settles
                && let Some(i) = open.iter().position(|(_, s, _)| *s == named)
            {
                take(&mut open[i], &mut left, seq, &mut out);
            }
            for item in open.iter_mut() {
                if left == 0 {
                    break;
                }
                take(item, &mut left, seq, &mut out);
            }
            if left > 0 {
                *out.credit.entry(operator.to_string()).or_default() += left;
                if seq != i64::MIN {
                    out.applications.push(Application {
                        seq,
                        settles_date: None,
                        amount: left,
                    });
                }
            }
        }
    }
    for (operator, list) in items {
        for (due_date, settles_date, amount) in list {
            if amount > 0 {
                // One line per operator and date in practice; were there two, both count.
                let open = out
                    .open
                    .entry((operator.to_string(), settles_date))
                    .or_insert((due_date, 0));
                open.1 += amount;
            }
        }
    }
    out
}

/// Takes what it can of `left` for one open item.
fn take(item: &mut (NaiveDate, NaiveDate, i64), left: &mut i64, seq: i64, out: &mut Allocation) {
    let part = item.2.min(*left);
    if part > 0 {
        item.2 -= part;
        *left -= part;
        // A negative due's credit (seq MIN) is not a payment: it is not listed.
        if seq != i64::MIN {
            out.applications.push(Application {
                seq,
                settles_date: Some(item.1),
                amount: part,
            });
        }
    }
}

/// One operator's line of the aging, as of the end of a date. `owed` is what it owes in all
/// (`not_due` + the overdue buckets − `credit`). Minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgingRow {
    pub operator_id: String,
    pub owed: i64,
    pub not_due: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub over_90: i64,
    /// Paid beyond everything due, kept for what falls due next.
    pub credit: i64,
    /// The oldest due date still open, if any.
    pub oldest_due: Option<NaiveDate>,
}

impl AgingRow {
    pub fn overdue(&self) -> i64 {
        self.days_1_30 + self.days_31_60 + self.days_61_90 + self.over_90
    }
}

/// The aging of every operator in `operators` (each gets a row, owing or not) as of the end
/// of `as_of`, from what `allocate` left open. A due is overdue from the day after its due
/// date.
pub fn aging(allocation: &Allocation, operators: &[String], as_of: NaiveDate) -> Vec<AgingRow> {
    let mut rows: BTreeMap<&str, AgingRow> = operators
        .iter()
        .map(|op| {
            (
                op.as_str(),
                AgingRow {
                    operator_id: op.clone(),
                    ..AgingRow::default()
                },
            )
        })
        .collect();
    for ((operator, _), (due_date, amount)) in &allocation.open {
        let Some(row) = rows.get_mut(operator.as_str()) else {
            continue;
        };
        let late = (as_of - *due_date).num_days();
        let bucket = match late {
            ..=0 => &mut row.not_due,
            1..=30 => &mut row.days_1_30,
            31..=60 => &mut row.days_31_60,
            61..=90 => &mut row.days_61_90,
            _ => &mut row.over_90,
        };
        *bucket += amount;
        row.oldest_due = Some(row.oldest_due.map_or(*due_date, |d| d.min(*due_date)));
    }
    for (operator, credit) in &allocation.credit {
        if let Some(row) = rows.get_mut(operator.as_str()) {
            row.credit = *credit;
        }
    }
    rows.into_values()
        .map(|mut r| {
            r.owed = r.not_due + r.overdue() - r.credit;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    fn due(settles: u32, due: u32, amount: i64) -> Due {
        Due {
            operator_id: "OP1".into(),
            settles_date: d(settles),
            due_date: d(due),
            amount,
        }
    }

    fn pay(seq: i64, amount: i64, settles: Option<u32>) -> Payment {
        Payment {
            operator_id: "OP1".into(),
            seq,
            amount,
            settles: settles.map(d),
        }
    }

    #[test]
    fn payments_settle_the_oldest_due_first_and_a_partial_leaves_the_rest() {
        let dues = [due(2, 4, 100), due(1, 3, 50), due(3, 5, 70)];
        let a = allocate(&dues, &[pay(1, 120, None)]);
        assert_eq!(
            a.applications,
            vec![
                Application {
                    seq: 1,
                    settles_date: Some(d(1)),
                    amount: 50
                },
                Application {
                    seq: 1,
                    settles_date: Some(d(2)),
                    amount: 70
                },
            ]
        );
        assert_eq!(a.open.get(&("OP1".into(), d(2))), Some(&(d(4), 30)));
        let rows = aging(&a, &["OP1".into()], d(10));
        assert_eq!(rows[0].days_1_30, 100);
        assert_eq!(rows[0].owed, 100);
        assert_eq!(rows[0].oldest_due, Some(d(4)));
    }

    #[test]
    fn a_reference_names_its_date_and_an_overpayment_is_a_credit() {
        let dues = [due(1, 3, 50), due(2, 4, 100)];
        let a = allocate(&dues, &[pay(1, 100, Some(2)), pay(2, 80, None)]);
        assert_eq!(a.applications[0].settles_date, Some(d(2)));
        assert_eq!(a.credit.get("OP1"), Some(&30));
        let rows = aging(&a, &["OP1".into()], d(4));
        assert_eq!(
            (rows[0].owed, rows[0].not_due, rows[0].credit),
            (-30, 0, 30)
        );
    }

    #[test]
    fn buckets_count_days_past_the_due_date() {
        let dues = [due(1, 1, 1), due(2, 2, 10)];
        let a = allocate(&dues, &[]);
        let as_of = d(2) + chrono::Days::new(30);
        let rows = aging(&a, &["OP1".into()], as_of);
        // 31 days past the first, 30 past the second.
        assert_eq!((rows[0].days_31_60, rows[0].days_1_30), (1, 10));
        let rows = aging(&a, &["OP1".into()], d(2));
        assert_eq!((rows[0].not_due, rows[0].days_1_30), (10, 1));
    }

    #[test]
    fn a_negative_due_is_a_credit_taken_first() {
        let dues = [due(1, 3, -20), due(2, 4, 50)];
        let a = allocate(&dues, &[pay(1, 30, None)]);
        assert!(a.open.is_empty());
        assert!(a.credit.is_empty());
        assert_eq!(
            a.applications,
            vec![Application {
                seq: 1,
                settles_date: Some(d(2)),
                amount: 30
            }]
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    proptest! {
        /// Whatever the dues and payments, nothing is lost or made: what stays open less the
        /// credit is what was due less what was paid, per operator, and no payment is applied
        /// beyond its amount.
        #[test]
        fn allocation_keeps_every_minor_unit(
            dues in prop::collection::vec((0u8..3, 0u32..20, 0u32..10, -50_000i64..500_000), 0..30),
            pays in prop::collection::vec((0u8..3, 1i64..400_000, prop::option::of(0u32..20)), 0..30),
        ) {
            let dues: Vec<Due> = dues.iter().map(|(op, d, lag, amount)| Due {
                operator_id: format!("OP{op}"),
                settles_date: day(*d),
                due_date: day(d + lag),
                amount: *amount,
            }).collect();
            let payments: Vec<Payment> = pays.iter().enumerate().map(|(i, (op, amount, named))| Payment {
                operator_id: format!("OP{op}"),
                seq: i as i64,
                amount: *amount,
                settles: named.map(day),
            }).collect();
            let a = allocate(&dues, &payments);
            for op in ["OP0", "OP1", "OP2"] {
                let due: i64 = dues.iter().filter(|d| d.operator_id == op).map(|d| d.amount).sum();
                let paid: i64 = payments.iter().filter(|p| p.operator_id == op).map(|p| p.amount).sum();
                let open: i64 = a.open.iter().filter(|((o, _), _)| o == op).map(|(_, (_, n))| n).sum();
                let credit = a.credit.get(op).copied().unwrap_or(0);
                prop_assert_eq!(open - credit, due - paid, "{}", op);
            }
            for p in &payments {
                let applied: i64 = a.applications.iter().filter(|x| x.seq == p.seq).map(|x| x.amount).sum();
                prop_assert_eq!(applied, p.amount);
            }
            prop_assert!(a.open.values().all(|(_, n)| *n > 0));
        }
    }
}
