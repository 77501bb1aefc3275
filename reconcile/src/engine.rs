//! The engine, on polars lazy frames.
//!
//! Ledger side columns: `operator_id, operator_ref, card_id, amount, occurred_at` (µs since
//! the epoch), `business_date` (days since the epoch), `voided` (bool, the sale's final
//! state). File side columns: `operator_id, operator_ref, card_id, amount, occurred_at,
//! file_date` (days), `kind` (`SALE`/`VOID`), `voided_ref` (the sale a VOID names), `line`.
//! Both sides hold the date and its two neighbours.
//!
//! Rules, in order, for a key on both sides: the file has it twice with different card or
//! amount → DUPLICATE_IN_FILE; amounts differ → AMOUNT_MISMATCH; cards differ →
//! CARD_MISMATCH; voided on one side only → STATUS_MISMATCH; else MATCHED. A key on one side
//! only is TIMING when the other side has it on an adjacent date, else MISSING_IN_FILE or
//! MISSING_IN_LEDGER. Identical duplicates in a file count once; of differing duplicates
//! the first line stands for the file. Amounts compared are the sale amounts; the amounts
//! shown are net (0 when voided on that side, empty when absent).

pub use ledger::discrepancy::Case;
use polars::prelude::*;

use crate::ReconcileError;
use crate::file_lines::first_lines;
use crate::item_order::item_order;

/// The result for one date: one row per key, and one row per operator.
pub struct Reconciliation {
    /// `business_date, operator_id, operator_ref, case, ledger_card_id, file_card_id,
    /// ledger_amount, file_amount, difference, ledger_occurred_at, file_occurred_at`,
    /// sorted by operator and ref.
    pub items: DataFrame,
    /// `operator_id`, a count and an amount (Σ difference) per case, `ledger_total`,
    /// `file_total`, `tie_out` (bool), sorted by operator.
    pub summary: DataFrame,
}

/// Rows (both sides together) a part aims at: small enough that a part's working set stays
/// a few hundred MiB, large enough that the per-part scans and plans are a small share.
pub const PART_ROWS: u64 = 2_000_000;

/// Parts whose ledger rows are read in one scan. Sales are stored in the order they
/// happened, so any scan of the ledger side reads every operator's rows; reading it for five
/// parts at once is faster, for some more memory (BENCHMARKS.md, reconciliation engine).
pub(crate) const LEDGER_PARTS_PER_READ: usize = 5;

/// Reconciles business date `date` (days since the epoch) into one frame of items.
pub fn reconcile(
    ledger: LazyFrame,
    file: LazyFrame,
    date: i32,
) -> Result<Reconciliation, ReconcileError> {
    let mut parts = Vec::new();
    let summary = reconcile_in_parts(ledger, file, date, PART_ROWS, |items| {
        parts.push(items);
        Ok(())
    })?;
    let mut items = stacked(parts)?;
    items.rechunk_mut_par();
    Ok(Reconciliation { items, summary })
}

/// Reconciles `date` one range of operators at a time, so memory follows the largest part
/// rather than the whole day. Each part's items (sorted by operator and ref, parts in
/// operator order, so the concatenation is sorted too) go to `sink` before the next part is
/// read; the per-operator summary of the whole day is returned, its tie-out checked.
pub fn reconcile_in_parts(
    ledger: LazyFrame,
    file: LazyFrame,
    date: i32,
    part_rows: u64,
    mut sink: impl FnMut(DataFrame) -> Result<(), ReconcileError>,
) -> Result<DataFrame, ReconcileError> {
    let ranges = operator_ranges(&ledger, &file, part_rows)?;
    if ranges.is_empty() {
        // Nothing on either side: one empty part gives the frames their columns.
        let (items, summary) = reconcile_part(ledger, file, date, &[])?;
        sink(items)?;
        return Ok(summary);
    }
    let in_range = |frame: LazyFrame, operators: &[String]| {
        frame.filter(
            col("operator_id")
                .gt_eq(lit(operators[0].as_str()))
                .and(col("operator_id").lt_eq(lit(operators[operators.len() - 1].as_str()))),
        )
    };
    let mut summaries = Vec::new();
    for group in ranges.chunks(LEDGER_PARTS_PER_READ) {
        // Each part's ledger rows are copies: the group's frame is freed at once, and each
        // part's when it is done.
        let ledger_parts =
            split_by_range(&in_range(ledger.clone(), &group.concat()).collect()?, group)?;
        for (operators, ledger_part) in group.iter().zip(ledger_parts) {
            let (items, summary) = reconcile_part(
                ledger_part.lazy(),
                in_range(file.clone(), operators),
                date,
                operators,
            )?;
            sink(items)?;
            summaries.push(summary);
        }
    }
    tied_out(stacked(summaries)?)
}

/// The parts' summaries, once every operator's totals are checked to tie out.
pub(crate) fn tied_out(summary: DataFrame) -> Result<DataFrame, ReconcileError> {
    let (tie, ops) = (
        summary.column("tie_out")?.bool()?,
        summary.column("operator_id")?.str()?,
    );
    let broken: Vec<String> = (0..summary.height())
        .filter(|&k| tie.get(k) != Some(true))
        .map(|k| ops.get(k).unwrap_or_default().to_string())
        .collect();
    if !broken.is_empty() {
        return Err(ReconcileError::TieOut(broken.join(", ")));
    }
    Ok(summary)
}

/// The rows of `frame` (which holds only operators of `ranges`) of each range, in one pass:
/// filtering it once per range compared every row's operator twice per range.
pub(crate) fn split_by_range(
    frame: &DataFrame,
    ranges: &[Vec<String>],
) -> Result<Vec<DataFrame>, ReconcileError> {
    let lasts: Vec<&str> = ranges
        .iter()
        .map(|range| range.last().map_or("", String::as_str))
        .collect();
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); ranges.len()];
    for (row, op) in frame.column("operator_id")?.str()?.iter().enumerate() {
        // The first range whose last operator is not below this one.
        let k = lasts.partition_point(|last| Some(*last) < op);
        if k < ranges.len() && op >= ranges[k].first().map(String::as_str) {
            rows[k].push(row as IdxSize);
        }
    }
    Ok(rows
        .into_iter()
        .map(|rows| frame.take(&IdxCa::from_vec("row".into(), rows)))
        .collect::<Result<_, _>>()?)
}

/// The frames one under the other (there is at least one).
pub(crate) fn stacked(frames: Vec<DataFrame>) -> Result<DataFrame, ReconcileError> {
    let mut frames = frames.into_iter();
    let mut all = frames.next().expect("at least one part");
    for frame in frames {
        all.vstack_mut_owned(frame)?;
    }
    Ok(all)
}

/// Consecutive ranges of operator ids (each range's ids in order), each holding about
/// `part_rows` rows of both sides. An operator is never split, so one operator bigger than
/// `part_rows` is a part on its own.
fn operator_ranges(
    ledger: &LazyFrame,
    file: &LazyFrame,
    part_rows: u64,
) -> Result<Vec<Vec<String>>, ReconcileError> {
    // Each side counted on its own, then the two small counts added: grouping the two sides'
    // ids stacked together was several times slower (BENCHMARKS.md).
    let rows = |side: &LazyFrame| {
        side.clone()
            .group_by([col("operator_id")])
            .agg([len().cast(DataType::UInt64).alias("rows")])
    };
    // On the streaming engine each batch of ids is counted as it is decoded, instead of
    // every id being held in memory first, which is faster (BENCHMARKS.md).
    let counts = concat([rows(ledger), rows(file)], UnionArgs::default())?
        .group_by([col("operator_id")])
        .agg([col("rows").sum()])
        .sort(["operator_id"], SortMultipleOptions::default())
        .collect_with_engine(Engine::Streaming)?
        .unwrap_single();
    let (ops, rows) = (
        counts.column("operator_id")?.str()?,
        counts.column("rows")?.u64()?,
    );
    Ok(ranges_of(
        (0..counts.height()).map(|k| (ops.get(k).unwrap_or_default(), rows.get(k).unwrap_or(0))),
        part_rows,
    ))
}

/// Consecutive ranges of the operators of `counts` (ids in order, with their rows), each
/// holding about `part_rows` rows.
pub(crate) fn ranges_of<'a>(
    counts: impl IntoIterator<Item = (&'a str, u64)>,
    part_rows: u64,
) -> Vec<Vec<String>> {
    let mut ranges: Vec<Vec<String>> = Vec::new();
    let mut filled = 0;
    for (op, n) in counts {
        match ranges.last_mut() {
            Some(range) if filled + n <= part_rows => {
                range.push(op.to_string());
                filled += n;
            }
            _ => {
                ranges.push(vec![op.to_string()]);
                filled = n;
            }
        }
    }
    ranges
}

fn key() -> [Expr; 2] {
    [col("operator_id"), col("operator_ref")]
}

/// Marks which keys of `frame` exist, as a boolean column `name`, for a left join.
fn keys_marked(frame: LazyFrame, name: &str) -> LazyFrame {
    frame
        .select(key())
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(true).alias(name))
}

fn on_key(left: LazyFrame, right: LazyFrame, how: JoinType) -> LazyFrame {
    left.join(
        right,
        key(),
        key(),
        JoinArgs::new(how).with_coalesce(JoinCoalesce::CoalesceColumns),
    )
}

fn net(present: &str, voided: &str, amount: &str) -> Expr {
    when(col(present))
        .then(when(col(voided)).then(lit(0i64)).otherwise(col(amount)))
        .otherwise(lit(NULL).cast(DataType::Int64))
}

/// One part: both sides are read once into memory and every step works from there.
/// `operators` are the part's operator ids in order.
fn reconcile_part(
    ledger: LazyFrame,
    file: LazyFrame,
    date: i32,
    operators: &[String],
) -> Result<(DataFrame, DataFrame), ReconcileError> {
    let ledger = ledger.collect()?.lazy();
    let file = file.collect()?.lazy();
    let day = DayJoin::new(
        ledger.clone().filter(col("business_date").eq(lit(date))),
        file.clone(),
        date,
        operators,
    )?;
    day.finish(
        ledger.filter(col("business_date").neq(lit(date))),
        file.filter(
            col("kind")
                .eq(lit("SALE"))
                .and(col("file_date").neq(lit(date))),
        ),
    )
}

/// A part's date joined across the two sides, before the adjacent dates are consulted: they
/// only decide the keys that one side alone has on the date (TIMING or missing), so a
/// caller reading from a database asks for those keys only (`one_sided`) and hands what it
/// found to `finish`.
pub struct DayJoin {
    /// Every key of the date, with both sides' values and `l_present` / `f_present`.
    both: DataFrame,
    ledger_day: LazyFrame,
    file_day: LazyFrame,
    date: i32,
    operators: Vec<String>,
}

impl DayJoin {
    /// `ledger_day`: the ledger side's rows of the date. `file`: the file side's records of
    /// the date, and the VOIDs of the adjacent dates' files (a void may come a day late);
    /// SALEs of other dates are ignored. `operators` are the part's operator ids in order.
    pub fn new(
        ledger_day: LazyFrame,
        file: LazyFrame,
        date: i32,
        operators: &[String],
    ) -> Result<Self, ReconcileError> {
        // The file side: the date's sales, one row per key, its first line (`first_lines`).
        // Two records are the same content when card and amount agree.
        let file_voids = file
            .clone()
            .filter(col("kind").eq(lit("VOID")))
            .select([col("operator_id"), col("voided_ref").alias("operator_ref")]);
        let file_day = file
            .filter(
                col("kind")
                    .eq(lit("SALE"))
                    .and(col("file_date").eq(lit(date))),
            )
            .select([
                col("operator_id"),
                col("operator_ref"),
                col("card_id"),
                col("amount"),
                col("occurred_at"),
                col("line"),
            ]);
        let file_day = first_lines(&file_day.collect()?, operators)?
            .lazy()
            .select([
                col("operator_id"),
                col("operator_ref"),
                col("f_dup"),
                col("card_id").alias("f_card"),
                col("amount").alias("f_amount"),
                col("occurred_at").alias("f_at"),
            ]);
        // Materialized once: the day's join and the file totals both read it.
        let file_day = on_key(
            file_day,
            keys_marked(file_voids, "f_voided"),
            JoinType::Left,
        )
        .with_columns([
            col("f_voided").fill_null(lit(false)),
            lit(true).alias("f_present"),
        ])
        .collect()?
        .lazy();
        let ledger_day = ledger_day.select([
            col("operator_id"),
            col("operator_ref"),
            col("card_id").alias("l_card"),
            col("amount").alias("l_amount"),
            col("occurred_at").alias("l_at"),
            col("voided").alias("l_voided"),
            lit(true).alias("l_present"),
        ]);
        let both = on_key(ledger_day.clone(), file_day.clone(), JoinType::Full)
            .with_columns([
                col("l_present").fill_null(lit(false)),
                col("f_present").fill_null(lit(false)),
            ])
            .collect()?;
        Ok(DayJoin {
            both,
            ledger_day,
            file_day,
            date,
            operators: operators.to_vec(),
        })
    }

    /// The keys (`operator_id`, `operator_ref`) only the file has on the date, and those
    /// only the ledger has: the ones whose case an adjacent date can change.
    pub fn one_sided(&self) -> Result<(DataFrame, DataFrame), ReconcileError> {
        let only = |present: &str| {
            self.both
                .clone()
                .lazy()
                .filter(col(present).not())
                .select(key())
                .collect()
        };
        Ok((only("l_present")?, only("f_present")?))
    }

    /// The part's items and summary. `ledger_adjacent`: rows (`operator_id`,
    /// `operator_ref`) the ledger has on an adjacent date; `file_adjacent`: SALE records
    /// the adjacent dates' files have. Either may hold other keys too.
    pub fn finish(
        self,
        ledger_adjacent: LazyFrame,
        file_adjacent: LazyFrame,
    ) -> Result<(DataFrame, DataFrame), ReconcileError> {
        let DayJoin {
            both,
            ledger_day,
            file_day,
            date,
            operators,
        } = self;
        // The adjacent dates' keys, both sides in one small frame: one probe of the day's keys.
        let adjacent = on_key(
            keys_marked(ledger_adjacent, "in_l_adj"),
            keys_marked(file_adjacent, "in_f_adj"),
            JoinType::Full,
        );
        let both = on_key(both.lazy(), adjacent, JoinType::Left).with_columns([
            col("in_l_adj").fill_null(lit(false)),
            col("in_f_adj").fill_null(lit(false)),
        ]);
        let case = when(col("l_present").and(col("f_present")))
            .then(
                when(col("f_dup"))
                    .then(lit(Case::DuplicateInFile.as_str()))
                    .when(col("l_amount").neq(col("f_amount")))
                    .then(lit(Case::AmountMismatch.as_str()))
                    .when(col("l_card").neq(col("f_card")))
                    .then(lit(Case::CardMismatch.as_str()))
                    .when(col("l_voided").neq(col("f_voided")))
                    .then(lit(Case::StatusMismatch.as_str()))
                    .otherwise(lit(Case::Matched.as_str())),
            )
            .when(col("l_present"))
            .then(
                when(col("in_f_adj"))
                    .then(lit(Case::Timing.as_str()))
                    .otherwise(lit(Case::MissingInFile.as_str())),
            )
            .otherwise(
                when(col("in_l_adj"))
                    .then(lit(Case::Timing.as_str()))
                    .otherwise(lit(Case::MissingInLedger.as_str())),
            );
        let items = both
            .with_columns([
                case.alias("case"),
                net("l_present", "l_voided", "l_amount").alias("ledger_amount"),
                net("f_present", "f_voided", "f_amount").alias("file_amount"),
            ])
            .with_column(
                (col("ledger_amount").fill_null(lit(0i64))
                    - col("file_amount").fill_null(lit(0i64)))
                .alias("difference"),
            )
            .select([
                lit(date).alias("business_date"),
                col("operator_id"),
                col("operator_ref"),
                col("case"),
                col("l_card").alias("ledger_card_id"),
                col("f_card").alias("file_card_id"),
                col("ledger_amount"),
                col("file_amount"),
                col("difference"),
                col("l_at").alias("ledger_occurred_at"),
                col("f_at").alias("file_occurred_at"),
            ])
            .collect()?;
        let order = item_order(
            items.column("operator_id")?.str()?,
            items.column("operator_ref")?.str()?,
            &operators,
        )?;
        let items = items.take(&order)?;

        // Totals computed from each side on its own, so the tie-out checks the join.
        let ledger_totals = ledger_day
            .group_by([col("operator_id")])
            .agg([when(col("l_voided"))
                .then(lit(0i64))
                .otherwise(col("l_amount"))
                .sum()
                .alias("ledger_total")]);
        let file_totals = file_day
            .group_by([col("operator_id")])
            .agg([when(col("f_voided"))
                .then(lit(0i64))
                .otherwise(col("f_amount"))
                .sum()
                .alias("file_total")]);
        let mut aggs = Vec::new();
        for c in Case::ALL {
            let is = col("case").eq(lit(c.as_str()));
            let name = c.as_str().to_lowercase();
            aggs.push(
                is.clone()
                    .cast(DataType::Int64)
                    .sum()
                    .alias(format!("{name}_count")),
            );
            aggs.push(
                when(is)
                    .then(col("difference"))
                    .otherwise(lit(0i64))
                    .sum()
                    .alias(format!("{name}_amount")),
            );
        }
        aggs.push(
            when(col("case").neq(lit(Case::Matched.as_str())))
                .then(col("difference"))
                .otherwise(lit(0i64))
                .sum()
                .alias("exceptions_difference"),
        );
        let op = || [col("operator_id")];
        let summary = items
            .clone()
            .lazy()
            .group_by(op())
            .agg(aggs)
            .join(ledger_totals, op(), op(), JoinArgs::new(JoinType::Left))
            .join(file_totals, op(), op(), JoinArgs::new(JoinType::Left))
            .with_columns([
                col("ledger_total").fill_null(lit(0i64)),
                col("file_total").fill_null(lit(0i64)),
            ])
            .with_column(
                (col("ledger_total") - col("file_total"))
                    .eq(col("exceptions_difference"))
                    .alias("tie_out"),
            )
            .sort(["operator_id"], SortMultipleOptions::default())
            .collect()?;
        Ok((items, summary))
    }
}
