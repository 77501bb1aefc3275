//! The order items are stored in: by operator, then by ref, byte for byte.
//!
//! This is the one place the engine sorts rows itself instead of asking polars. Polars sorts
//! by two columns with a comparator that reaches the second column (the ref, a string)
//! through dynamic dispatch and a lookup into the string buffers on every tie, and every
//! comparison inside an operator is a tie: that was a quarter of the run (BENCHMARKS.md).
//! Here each row gets a fixed-size key — the operator's place among the part's operators,
//! then the first eight bytes of the ref after the prefix that all of that operator's refs
//! share — so almost every comparison is two integers, and whole refs are compared only when
//! those are equal.

use std::collections::HashMap;

use polars::prelude::*;

use crate::ReconcileError;

/// Bytes of a ref (after its operator's shared prefix) packed into a key's integer.
const HEAD: usize = 8;

/// Row positions that put the rows in order of `operator_id`, then `operator_ref`; rows with
/// the same key stay in the order they came, so the result never depends on the sort.
/// `operators` holds every operator id of the rows, in order. Neither column may hold nulls.
pub(crate) fn item_order(
    operator_id: &StringChunked,
    operator_ref: &StringChunked,
    operators: &[String],
) -> Result<IdxCa, ReconcileError> {
    let fail = |reason: String| ReconcileError::Frame(PolarsError::ComputeError(reason.into()));
    if operator_id.null_count() > 0 || operator_ref.null_count() > 0 {
        return Err(fail(
            "an item without operator or ref cannot be ordered".into(),
        ));
    }
    let places: HashMap<&str, u32> = operators
        .iter()
        .enumerate()
        .map(|(place, op)| (op.as_str(), place as u32))
        .collect();
    let orders = operator_id
        .downcast_iter()
        .flat_map(|chunk| chunk.values_iter())
        .map(|op| {
            places
                .get(op)
                .copied()
                .ok_or_else(|| fail(format!("operator {op} is not among the part's operators")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let refs: Vec<&[u8]> = operator_ref
        .downcast_iter()
        .flat_map(|chunk| chunk.values_iter().map(str::as_bytes))
        .collect();

    // The prefix every ref of an operator shares: comparing refs of one operator can start
    // after it. (Refs are usually the operator's code and the date, then a number.)
    let mut shared: Vec<Option<(&[u8], usize)>> = vec![None; operators.len()];
    for (&order, &r) in orders.iter().zip(&refs) {
        match &mut shared[order as usize] {
            slot @ None => *slot = Some((r, r.len())),
            Some((first, len)) => {
                *len = first[..*len]
                    .iter()
                    .zip(r)
                    .take_while(|(a, b)| a == b)
                    .count()
            }
        }
    }
    let prefix: Vec<usize> = shared
        .into_iter()
        .map(|s| s.map_or(0, |(_, len)| len))
        .collect();

    // Zero-padding the head keeps the order: if one padded head is below another, its ref is
    // below the other (it differs first at a real byte, or is a prefix of the other).
    let tail = |row: IdxSize, order: u32| &refs[row as usize][prefix[order as usize]..];
    let mut keys: Vec<(u32, u64, IdxSize)> = orders
        .iter()
        .enumerate()
        .map(|(row, &order)| {
            let mut head = [0u8; HEAD];
            let t = tail(row as IdxSize, order);
            let n = t.len().min(HEAD);
            head[..n].copy_from_slice(&t[..n]);
            (order, u64::from_be_bytes(head), row as IdxSize)
        })
        .collect();
    keys.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| tail(a.2, a.0).cmp(tail(b.2, b.0)))
            .then_with(|| a.2.cmp(&b.2))
    });
    Ok(IdxCa::from_vec(
        "row".into(),
        keys.into_iter().map(|(_, _, row)| row).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ordered(rows: &[(&str, &str)], operators: &[&str]) -> Vec<(String, String)> {
        let o = StringChunked::from_iter_values("o".into(), rows.iter().map(|r| r.0));
        let r = StringChunked::from_iter_values("r".into(), rows.iter().map(|r| r.1));
        let operators: Vec<String> = operators.iter().map(|op| op.to_string()).collect();
        let idx = item_order(&o, &r, &operators).unwrap();
        idx.into_no_null_iter()
            .map(|i| {
                (
                    rows[i as usize].0.to_string(),
                    rows[i as usize].1.to_string(),
                )
            })
            .collect()
    }

    fn owned(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter()
            .map(|(o, r)| (o.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn operator_first_then_ref_byte_for_byte() {
        let got = ordered(
            &[
                ("OP2", "B-10"),
                ("OP1", "A-2"),
                ("OP2", "B-9"),
                ("OP1", "A-10"),
                ("OP1", "A-1"),
                ("OP2", "B-10-V"),
            ],
            &["OP1", "OP2"],
        );
        let want = owned(&[
            ("OP1", "A-1"),
            ("OP1", "A-10"),
            ("OP1", "A-2"),
            ("OP2", "B-10"),
            ("OP2", "B-10-V"),
            ("OP2", "B-9"),
        ]);
        assert_eq!(got, want, "refs compare as bytes, a prefix first");
    }

    #[test]
    fn an_operator_not_in_the_list_is_an_error() {
        let o = StringChunked::from_iter_values("o".into(), ["OP1", "OP3"].into_iter());
        let r = StringChunked::from_iter_values("r".into(), ["a", "b"].into_iter());
        let e = item_order(&o, &r, &["OP1".into(), "OP2".into()]).unwrap_err();
        assert!(e.to_string().contains("OP3"), "{e}");
    }

    proptest! {
        /// Same order as sorting the pairs, whatever the refs share: long common prefixes,
        /// refs that are prefixes of others, refs that differ only after eight bytes.
        #[test]
        fn same_as_sorting_pairs(
            rows in prop::collection::vec(("OP[1-4]", "(OP1-2026|OP1-20261|x)?[0-9]{0,12}"), 0..200)
        ) {
            let borrowed: Vec<(&str, &str)> =
                rows.iter().map(|(o, r)| (o.as_str(), r.as_str())).collect();
            let mut want = rows.clone();
            want.sort();
            prop_assert_eq!(ordered(&borrowed, &["OP1", "OP2", "OP3", "OP4"]), want);
        }
    }
}
