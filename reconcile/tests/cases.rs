//! One test per case of DESIGN.md's table, on hand-built inputs, plus the property that for
//! any inputs every key ends in exactly one item and the totals tie out.

use polars::prelude::*;
use proptest::prelude::*;
use reconcile::source::{FileColumns, LedgerColumns};
use reconcile::{Reconciliation, reconcile, reconcile_in_parts};

const D: i32 = 20_418; // 2025-11-26

#[derive(Clone, Debug)]
struct L(&'static str, &'static str, &'static str, i64, i32, bool);
#[derive(Clone, Debug)]
struct F(
    &'static str,
    &'static str,
    &'static str,
    i64,
    i32,
    &'static str,
    Option<&'static str>,
);

fn frames(ledger: &[L], file: &[F]) -> (LazyFrame, LazyFrame) {
    let mut l = LedgerColumns::default();
    for L(op, r, card, amount, date, voided) in ledger {
        l.operator_id.push(op.to_string());
        l.operator_ref.push(r.to_string());
        l.card_id.push(card.to_string());
        l.amount.push(*amount);
        l.occurred_at.push(1_000);
        l.business_date.push(*date);
        l.voided.push(*voided);
    }
    let mut f = FileColumns::default();
    for (line, F(op, r, card, amount, date, kind, voided)) in file.iter().enumerate() {
        f.operator_id.push(op.to_string());
        f.operator_ref.push(r.to_string());
        f.card_id.push(card.to_string());
        f.amount.push(*amount);
        f.occurred_at.push(2_000);
        f.file_date.push(*date);
        f.kind.push(kind.to_string());
        f.voided_ref.push(voided.map(str::to_string));
        f.line.push(line as i64 + 2);
    }
    (
        l.into_frame().unwrap().lazy(),
        f.into_frame().unwrap().lazy(),
    )
}

fn run(ledger: &[L], file: &[F]) -> Reconciliation {
    let (l, f) = frames(ledger, file);
    reconcile(l, f, D).unwrap()
}

/// The items of every part stacked, and the summary, with parts of about `part_rows`.
fn run_in_parts(ledger: &[L], file: &[F], part_rows: u64) -> (DataFrame, DataFrame) {
    let (l, f) = frames(ledger, file);
    let mut items: Option<DataFrame> = None;
    let summary = reconcile_in_parts(l, f, D, part_rows, |part| {
        match &mut items {
            Some(all) => {
                all.vstack_mut_owned(part)?;
            }
            None => items = Some(part),
        }
        Ok(())
    })
    .unwrap();
    (items.expect("at least one part"), summary)
}

/// (ref, case, ledger_amount, file_amount, difference) of an item.
type Item = (String, String, Option<i64>, Option<i64>, i64);

fn items(r: &Reconciliation) -> Vec<Item> {
    let i = &r.items;
    (0..i.height())
        .map(|k| {
            (
                i.column("operator_ref")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(k)
                    .unwrap()
                    .to_string(),
                i.column("case")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(k)
                    .unwrap()
                    .to_string(),
                i.column("ledger_amount").unwrap().i64().unwrap().get(k),
                i.column("file_amount").unwrap().i64().unwrap().get(k),
                i.column("difference")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .get(k)
                    .unwrap(),
            )
        })
        .collect()
}

fn case_of(r: &Reconciliation, reference: &str) -> String {
    items(r)
        .into_iter()
        .find(|i| i.0 == reference)
        .unwrap_or_else(|| panic!("no item for {reference}"))
        .1
}

fn sale(r: &'static str, card: &'static str, amount: i64) -> F {
    F("OP1", r, card, amount, D, "SALE", None)
}

#[test]
fn matched_when_amount_card_and_state_agree() {
    let r = run(
        &[L("OP1", "A", "C1", 2000, D, false)],
        &[sale("A", "C1", 2000)],
    );
    assert_eq!(
        items(&r),
        [("A".into(), "MATCHED".into(), Some(2000), Some(2000), 0)]
    );
}

#[test]
fn voided_on_both_sides_is_matched() {
    let r = run(
        &[L("OP1", "A", "C1", 2000, D, true)],
        &[
            sale("A", "C1", 2000),
            F("OP1", "A-V", "C1", 2000, D, "VOID", Some("A")),
        ],
    );
    assert_eq!(
        items(&r),
        [("A".into(), "MATCHED".into(), Some(0), Some(0), 0)]
    );
}

#[test]
fn voided_on_one_side_is_a_status_mismatch() {
    let r = run(
        &[
            L("OP1", "A", "C1", 2000, D, true),
            L("OP1", "B", "C1", 3000, D, false),
        ],
        &[
            sale("A", "C1", 2000),
            sale("B", "C1", 3000),
            F("OP1", "B-V", "C1", 3000, D, "VOID", Some("B")),
        ],
    );
    assert_eq!(
        items(&r),
        [
            (
                "A".into(),
                "STATUS_MISMATCH".into(),
                Some(0),
                Some(2000),
                -2000
            ),
            (
                "B".into(),
                "STATUS_MISMATCH".into(),
                Some(3000),
                Some(0),
                3000
            ),
        ]
    );
}

#[test]
fn amount_and_card_mismatches() {
    let r = run(
        &[
            L("OP1", "A", "C1", 2000, D, false),
            L("OP1", "B", "C1", 2000, D, false),
            L("OP1", "C", "C1", 2000, D, false),
        ],
        &[
            sale("A", "C1", 2500),
            sale("B", "C2", 2000),
            sale("C", "C2", 9000),
        ],
    );
    assert_eq!(case_of(&r, "A"), "AMOUNT_MISMATCH");
    assert_eq!(case_of(&r, "B"), "CARD_MISMATCH");
    // Amount comes first when both differ.
    assert_eq!(case_of(&r, "C"), "AMOUNT_MISMATCH");
    assert_eq!(items(&r)[0].4, -500);
}

#[test]
fn a_sale_at_the_day_close_found_on_the_adjacent_date_is_timing() {
    let r = run(
        &[
            L("OP1", "LATE", "C1", 2000, D, false),
            L("OP1", "EARLY", "C1", 1000, D - 1, false),
        ],
        &[
            F("OP1", "LATE", "C1", 2000, D + 1, "SALE", None),
            sale("EARLY", "C1", 1000),
        ],
    );
    assert_eq!(case_of(&r, "LATE"), "TIMING");
    assert_eq!(case_of(&r, "EARLY"), "TIMING");
    assert_eq!(
        items(&r).len(),
        2,
        "adjacent dates' own keys are not items of D"
    );
}

#[test]
fn missing_on_either_side() {
    let r = run(
        &[L("OP1", "ONLY-L", "C1", 2000, D, false)],
        &[sale("ONLY-F", "C1", 1500)],
    );
    assert_eq!(
        items(&r),
        [
            (
                "ONLY-F".into(),
                "MISSING_IN_LEDGER".into(),
                None,
                Some(1500),
                -1500
            ),
            (
                "ONLY-L".into(),
                "MISSING_IN_FILE".into(),
                Some(2000),
                None,
                2000
            ),
        ]
    );
}

#[test]
fn duplicates_in_the_file() {
    let r = run(
        &[
            L("OP1", "SAME", "C1", 2000, D, false),
            L("OP1", "DIFF", "C1", 2000, D, false),
        ],
        &[
            sale("SAME", "C1", 2000),
            sale("SAME", "C1", 2000),
            sale("DIFF", "C1", 2000),
            sale("DIFF", "C1", 2100),
        ],
    );
    assert_eq!(
        case_of(&r, "SAME"),
        "MATCHED",
        "identical duplicates count once"
    );
    assert_eq!(case_of(&r, "DIFF"), "DUPLICATE_IN_FILE");
}

#[test]
fn the_first_line_stands_for_differing_duplicates_whatever_the_row_order() {
    let ledger = [L("OP1", "DIFF", "C1", 2100, D, false)];
    let file = [
        sale("OTHER", "C1", 500),
        sale("DIFF", "C1", 2000),
        sale("DIFF", "C2", 2100),
    ];
    let (l, f) = frames(&ledger, &file);
    for (order, f) in [("line order", f.clone()), ("reversed", f.reverse())] {
        let r = reconcile(l.clone(), f, D).unwrap();
        let diff = items(&r).into_iter().find(|i| i.0 == "DIFF").unwrap();
        assert_eq!(diff.1, "DUPLICATE_IN_FILE", "{order}");
        assert_eq!(diff.3, Some(2000), "{order}: the amount of the first line");
    }
}

#[test]
fn an_operator_with_no_file_has_every_sale_missing_in_file() {
    let r = run(
        &[
            L("OP2", "X1", "C1", 2000, D, false),
            L("OP2", "X2", "C1", 1000, D, true),
        ],
        &[sale("A", "C1", 2000)],
    );
    let op2: Vec<_> = items(&r)
        .into_iter()
        .filter(|i| i.0.starts_with('X'))
        .collect();
    assert!(op2.iter().all(|i| i.1 == "MISSING_IN_FILE"), "{op2:?}");
    assert_eq!(op2[1].2, Some(0), "a voided sale's net is 0");
}

#[test]
fn a_file_for_an_operator_with_no_ledger_sales() {
    let r = run(&[], &[F("OP3", "Z", "C1", 2000, D, "SALE", None)]);
    assert_eq!(
        items(&r),
        [(
            "Z".into(),
            "MISSING_IN_LEDGER".into(),
            None,
            Some(2000),
            -2000
        )]
    );
    let ops = r
        .summary
        .column("operator_id")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .map(str::to_string);
    assert_eq!(ops.as_deref(), Some("OP3"));
}

fn arbitrary_sides() -> impl Strategy<Value = (Vec<L>, Vec<F>)> {
    const REFS: [&str; 12] = [
        "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11",
    ];
    const OPS: [&str; 3] = ["OP1", "OP2", "OP3"];
    const CARDS: [&str; 3] = ["C1", "C2", "C3"];
    let l = (
        0..3usize,
        0..12usize,
        0..3usize,
        1i64..5,
        -1i32..=1,
        any::<bool>(),
    )
        .prop_map(|(o, r, c, a, d, v)| L(OPS[o], REFS[r], CARDS[c], a * 1000, D + d, v));
    let f = (
        0..3usize,
        0..12usize,
        0..3usize,
        1i64..5,
        -1i32..=1,
        0..4usize,
    )
        .prop_map(|(o, r, c, a, d, k)| {
            if k == 0 {
                F(
                    OPS[o],
                    "V",
                    CARDS[c],
                    a * 1000,
                    D + d,
                    "VOID",
                    Some(REFS[r]),
                )
            } else {
                F(OPS[o], REFS[r], CARDS[c], a * 1000, D + d, "SALE", None)
            }
        });
    (
        prop::collection::vec(l, 0..25),
        prop::collection::vec(f, 0..25),
    )
        .prop_map(|(mut l, f)| {
            // The ledger holds a key once.
            let mut seen = std::collections::HashSet::new();
            l.retain(|x| seen.insert((x.0, x.1)));
            (l, f)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn every_key_is_one_item_and_the_totals_tie_out((ledger, file) in arbitrary_sides()) {
        // reconcile() itself refuses a result whose totals do not tie out.
        let r = run(&ledger, &file);
        let got: Vec<(String, String)> = (0..r.items.height())
            .map(|k| (
                r.items.column("operator_id").unwrap().str().unwrap().get(k).unwrap().to_string(),
                r.items.column("operator_ref").unwrap().str().unwrap().get(k).unwrap().to_string(),
            ))
            .collect();
        let unique: std::collections::BTreeSet<_> = got.iter().cloned().collect();
        prop_assert_eq!(unique.len(), got.len(), "a key in two items");
        let mut expected = std::collections::BTreeSet::new();
        for x in ledger.iter().filter(|x| x.4 == D) {
            expected.insert((x.0.to_string(), x.1.to_string()));
        }
        for x in file.iter().filter(|x| x.4 == D && x.5 == "SALE") {
            expected.insert((x.0.to_string(), x.1.to_string()));
        }
        prop_assert_eq!(unique, expected);
        let ledger_total: i64 = ledger.iter().filter(|x| x.4 == D && !x.5).map(|x| x.3).sum();
        let sum = |name: &str| r.summary.column(name).unwrap().i64().unwrap().sum().unwrap_or(0);
        prop_assert_eq!(sum("ledger_total"), ledger_total);
        prop_assert_eq!(sum("ledger_total") - sum("file_total"), sum("exceptions_difference"));
    }

    #[test]
    fn reconciling_in_parts_gives_the_same_result(
        (ledger, file) in arbitrary_sides(),
        part_rows in 1u64..40,
    ) {
        // Parts are ranges of operators: stacked in order they are the one-part result.
        let whole = run(&ledger, &file);
        let (items, summary) = run_in_parts(&ledger, &file, part_rows);
        prop_assert!(items.equals_missing(&whole.items), "{items}\n{}", whole.items);
        prop_assert!(summary.equals_missing(&whole.summary), "{summary}\n{}", whole.summary);
    }
}
