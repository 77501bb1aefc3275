//! Item and summary files of a run, written deterministically: the same inputs give the
//! same bytes. The CSVs read as the reports do (amounts as decimal strings with the
//! currency's minor digits, instants in RFC 3339 UTC); the Parquet keeps integer minor
//! units beside a `currency` column.

use std::path::Path;

use chrono::{DateTime, NaiveDate};
use ledger::Currency;
use ledger::money::format_minor;
use polars::prelude::*;

use crate::{ReconcileError, Reconciliation};

impl Reconciliation {
    /// Writes `items.parquet`, `items.csv` and `summary.csv` under `dir`.
    pub fn write(&self, dir: &Path, currency: Currency) -> Result<(), ReconcileError> {
        std::fs::create_dir_all(dir)?;
        let mut items = ItemWriter::new(
            std::fs::File::create(dir.join("items.parquet"))?,
            Some(&dir.join("items.csv")),
            currency,
        )?;
        items.append(&self.items)?;
        items.finish()?;
        write_summary(&self.summary, &dir.join("summary.csv"), currency)
    }

    /// Every item as Parquet, with a `currency` column beside the minor units: what the
    /// object store keeps of a run (`reconciliation/{date}/{run_id}/items.parquet`).
    pub fn items_parquet(&self, currency: Currency) -> Result<Vec<u8>, ReconcileError> {
        let mut bytes = Vec::new();
        let mut items = ItemWriter::new(&mut bytes, None, currency)?;
        items.append(&self.items)?;
        items.finish()?;
        Ok(bytes)
    }

    /// The non-MATCHED items: `(operator_id, operator_ref, case)`.
    pub fn exceptions(&self) -> Result<Vec<(String, String, String)>, ReconcileError> {
        let ops = self.items.column("operator_id")?.str()?;
        let refs = self.items.column("operator_ref")?.str()?;
        let cases = self.items.column("case")?.str()?;
        Ok((0..self.items.height())
            .filter(|&k| cases.get(k) != Some("MATCHED"))
            .map(|k| {
                (
                    ops.get(k).unwrap_or_default().to_string(),
                    refs.get(k).unwrap_or_default().to_string(),
                    cases.get(k).unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

/// How a column's integers read for people.
#[derive(Clone, Copy)]
enum Kind {
    Money,
    Instant,
    Plain,
}

/// Money columns are the amounts, differences and totals; instants the `*_occurred_at`
/// microseconds. Counts stay numbers.
fn kind_of(name: &str) -> Kind {
    if name.ends_with("_occurred_at") {
        Kind::Instant
    } else if name.ends_with("_amount") || name.ends_with("_total") || name.ends_with("difference")
    {
        Kind::Money
    } else {
        Kind::Plain
    }
}

/// A run's items written part by part as they come: Parquet (snappy, as fast to write as
/// the engine produces parts; a `currency` column beside the minor units) and, when asked,
/// the CSV. The same parts give the same bytes.
pub struct ItemWriter<W: std::io::Write> {
    parquet: Option<W>,
    batched: Option<polars::io::parquet::write::BatchedWriter<W>>,
    csv: Option<csv::Writer<std::fs::File>>,
    /// Parts appended so far (the CSV's header goes before the first).
    parts: usize,
    currency: Currency,
}

impl<W: std::io::Write> ItemWriter<W> {
    /// Items to `parquet`, and as CSV to `csv` when given.
    pub fn new(parquet: W, csv: Option<&Path>, currency: Currency) -> Result<Self, ReconcileError> {
        let csv = match csv {
            Some(path) => Some(csv::Writer::from_path(path).map_err(csv_error)?),
            None => None,
        };
        Ok(ItemWriter {
            parquet: Some(parquet),
            batched: None,
            csv,
            parts: 0,
            currency,
        })
    }

    /// Appends a part's items (columns as in `Reconciliation::items`).
    pub fn append(&mut self, items: &DataFrame) -> Result<(), ReconcileError> {
        let with_currency = items
            .clone()
            .lazy()
            .with_column(lit(self.currency.code()).alias("currency"))
            .collect()?;
        let batched = match &mut self.batched {
            Some(batched) => batched,
            None => {
                let sink = self.parquet.take().expect("the sink is taken once");
                self.batched.insert(
                    ParquetWriter::new(sink)
                        .with_compression(ParquetCompression::Snappy)
                        .batched(with_currency.schema())?,
                )
            }
        };
        batched.write_batch(&with_currency)?;
        if let Some(csv) = &mut self.csv {
            write_rows(csv, items, self.parts == 0, self.currency)?;
        }
        self.parts += 1;
        Ok(())
    }

    /// Finishes both files.
    pub fn finish(self) -> Result<(), ReconcileError> {
        if let Some(mut csv) = self.csv {
            csv.flush()?;
        }
        match self.batched {
            Some(batched) => {
                batched.finish()?;
                Ok(())
            }
            None => Err(ReconcileError::Stored("a run with no part of items".into())),
        }
    }
}

fn csv_error(e: csv::Error) -> ReconcileError {
    ReconcileError::Io(std::io::Error::other(e))
}

/// Writes the per-operator summary as CSV.
pub fn write_summary(
    summary: &DataFrame,
    path: &Path,
    currency: Currency,
) -> Result<(), ReconcileError> {
    let mut out = csv::Writer::from_path(path).map_err(csv_error)?;
    write_rows(&mut out, summary, true, currency)?;
    out.flush()?;
    Ok(())
}

fn write_rows(
    out: &mut csv::Writer<std::fs::File>,
    frame: &DataFrame,
    header: bool,
    currency: Currency,
) -> Result<(), ReconcileError> {
    let names: Vec<&str> = frame
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    if header {
        out.write_record(&names).map_err(csv_error)?;
    }
    let kinds: Vec<Kind> = names.iter().map(|n| kind_of(n)).collect();
    let columns = frame.columns();
    let mut record = Vec::with_capacity(columns.len());
    for row in 0..frame.height() {
        record.clear();
        for (column, kind) in columns.iter().zip(&kinds) {
            record.push(cell(column.get(row)?, *kind, currency));
        }
        out.write_record(&record).map_err(csv_error)?;
    }
    Ok(())
}

fn cell(value: AnyValue<'_>, kind: Kind, currency: Currency) -> String {
    match (value, kind) {
        (AnyValue::Null, _) => String::new(),
        (AnyValue::Int64(minor), Kind::Money) => format_minor(minor, currency.exponent()),
        (AnyValue::Int64(micros), Kind::Instant) => DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default(),
        (AnyValue::Date(days), _) => NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        (AnyValue::String(s), _) => s.to_string(),
        (AnyValue::StringOwned(s), _) => s.to_string(),
        (other, _) => other.to_string(),
    }
}
