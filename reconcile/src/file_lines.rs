//! A file's lines per key: the first line stands for the key, and a key whose lines differ in
//! card or amount is flagged (DUPLICATE_IN_FILE).
//!
//! This is the engine's second hand-written step. Polars' group-by (first line, number of
//! distinct cards and amounts) hashed every key and kept a list of rows per key: about a
//! quarter of a second per million lines, the largest single cost of a part. Here the lines
//! are put in key order by the item sort kernel, and one pass over neighbours finds each
//! key's lowest line number and whether its repeats differ, whatever order the rows came in.

use polars::prelude::*;

use crate::ReconcileError;
use crate::item_order::item_order;

/// One row per key of `sales` (`operator_id, operator_ref, card_id, amount, line` and any
/// other columns, rows in any order), in key order: the key's first line (the lowest `line`),
/// its other columns as they are on that line, and `f_dup`, whether the key's lines do not
/// all have the same card and amount. `operators` holds every operator id of the rows, in
/// order.
pub(crate) fn first_lines(
    sales: &DataFrame,
    operators: &[String],
) -> Result<DataFrame, ReconcileError> {
    let mut sales = sales.clone();
    sales.rechunk_mut_par();
    let (ops, refs, cards, amounts, lines) = (
        sales.column("operator_id")?.str()?,
        sales.column("operator_ref")?.str()?,
        sales.column("card_id")?.str()?,
        sales.column("amount")?.i64()?,
        sales.column("line")?.i64()?,
    );
    let order = item_order(ops, refs, operators)?;
    let order = order.cont_slice()?;
    // One chunk each after the rechunk; nulls compare as values, as polars' n_unique counts them.
    let (ops, refs) = (ops.downcast_as_array(), refs.downcast_as_array());
    let (cards, amounts) = (cards.downcast_as_array(), amounts.downcast_as_array());
    let lines = lines.downcast_as_array();
    let same_key =
        |a: usize, b: usize| refs.value(a) == refs.value(b) && ops.value(a) == ops.value(b);
    let same_content =
        |a: usize, b: usize| cards.get(a) == cards.get(b) && amounts.get(a) == amounts.get(b);

    let mut firsts = Vec::with_capacity(order.len());
    let mut differing = Vec::with_capacity(order.len());
    let mut k = 0;
    while k < order.len() {
        // The lines of a key differ when any of them differs from the key's first row here.
        let (head, mut first) = (order[k] as usize, order[k] as usize);
        let mut dup = false;
        k += 1;
        while k < order.len() && same_key(head, order[k] as usize) {
            let row = order[k] as usize;
            dup |= !same_content(head, row);
            if lines.get(row) < lines.get(first) {
                first = row;
            }
            k += 1;
        }
        firsts.push(first as IdxSize);
        differing.push(dup);
    }
    let mut day = sales.take(&IdxCa::from_vec("row".into(), firsts))?;
    day.with_column(Column::new("f_dup".into(), differing))?;
    Ok(day)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Same as keeping, per key in key order, its first line and whether any other line
        /// has another card or amount; the lines' keys repeat often.
        #[test]
        fn same_as_the_first_line_per_key(
            lines in prop::collection::vec(("OP[1-3]", "R[0-9]{1,2}", "c[12]", 1i64..3), 0..300)
        ) {
            let mut want: BTreeMap<(String, String), (usize, bool)> = BTreeMap::new();
            for (line, (op, r, card, amount)) in lines.iter().enumerate() {
                want.entry((op.clone(), r.clone()))
                    .and_modify(|(first, dup)| {
                        let f = &lines[*first];
                        *dup |= (&f.2, f.3) != (card, *amount);
                    })
                    .or_insert((line, false));
            }
            let sales = df!(
                "operator_id" => lines.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
                "operator_ref" => lines.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
                "card_id" => lines.iter().map(|l| l.2.as_str()).collect::<Vec<_>>(),
                "amount" => lines.iter().map(|l| l.3).collect::<Vec<_>>(),
                "line" => (0..lines.len() as i64).collect::<Vec<_>>(),
            )
            .unwrap();
            let day = first_lines(&sales, &["OP1".into(), "OP2".into(), "OP3".into()]).unwrap();
            let got: Vec<(usize, bool)> = day
                .column("line").unwrap().i64().unwrap().into_no_null_iter()
                .zip(day.column("f_dup").unwrap().bool().unwrap().iter())
                .map(|(line, dup)| (line as usize, dup == Some(true)))
                .collect();
            prop_assert_eq!(got, want.into_values().collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_line_stands_and_differing_repeats_are_flagged() {
        let sales = df!(
            "operator_id" => ["OP2", "OP1", "OP1", "OP2", "OP1", "OP1"],
            "operator_ref" => ["B", "A", "C", "B", "A", "C"],
            "card_id" => ["c1", "c2", "c3", "c1", "c2", "c9"],
            "amount" => [10i64, 20, 30, 10, 20, 30],
            "line" => [1i64, 2, 3, 4, 5, 6],
        )
        .unwrap();
        let day = first_lines(&sales, &["OP1".into(), "OP2".into()]).unwrap();
        let want = df!(
            "operator_id" => ["OP1", "OP1", "OP2"],
            "operator_ref" => ["A", "C", "B"],
            "card_id" => ["c2", "c3", "c1"],
            "amount" => [20i64, 30, 10],
            "line" => [2i64, 3, 1],
            "f_dup" => [false, true, false],
        )
        .unwrap();
        assert!(day.equals(&want), "{day}");
    }

    #[test]
    fn the_same_ref_under_two_operators_is_two_keys() {
        let sales = df!(
            "operator_id" => ["OP1", "OP2"],
            "operator_ref" => ["R", "R"],
            "card_id" => ["c1", "c2"],
            "amount" => [10i64, 20],
            "line" => [1i64, 2],
        )
        .unwrap();
        let day = first_lines(&sales, &["OP1".into(), "OP2".into()]).unwrap();
        assert_eq!(day.height(), 2);
        assert!(!day.column("f_dup").unwrap().bool().unwrap().any());
    }
}
