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
        std::fs::write(dir.join("items.parquet"), self.items_parquet(currency)?)?;
        write_csv(&self.items, &dir.join("items.csv"), currency)?;
        write_csv(&self.summary, &dir.join("summary.csv"), currency)?;
        Ok(())
    }

    /// Every item as Parquet, with a `currency` column beside the minor units: what the
    /// object store keeps of a run (`reconciliation/{date}/{run_id}/items.parquet`).
    pub fn items_parquet(&self, currency: Currency) -> Result<Vec<u8>, ReconcileError> {
        let mut items = self
            .items
            .clone()
            .lazy()
            .with_column(lit(currency.code()).alias("currency"))
            .collect()?;
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut items)?;
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

fn write_csv(frame: &DataFrame, path: &Path, currency: Currency) -> Result<(), ReconcileError> {
    let io = |e: csv::Error| ReconcileError::Io(std::io::Error::other(e));
    let mut out = csv::Writer::from_path(path).map_err(io)?;
    let names: Vec<&str> = frame
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    out.write_record(&names).map_err(io)?;
    let kinds: Vec<Kind> = names.iter().map(|n| kind_of(n)).collect();
    let columns = frame.columns();
    let mut record = Vec::with_capacity(columns.len());
    for row in 0..frame.height() {
        record.clear();
        for (column, kind) in columns.iter().zip(&kinds) {
            record.push(cell(column.get(row)?, *kind, currency));
        }
        out.write_record(&record).map_err(io)?;
    }
    out.flush()?;
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
