//! Item and summary files of a run, written deterministically: the same inputs give the
//! same bytes.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::{ReconcileError, Reconciliation};

impl Reconciliation {
    /// Writes `items.parquet`, `items.csv` and `summary.csv` under `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), ReconcileError> {
        std::fs::create_dir_all(dir)?;
        let mut items = self.items.clone();
        ParquetWriter::new(File::create(dir.join("items.parquet"))?).finish(&mut items)?;
        CsvWriter::new(File::create(dir.join("items.csv"))?).finish(&mut items)?;
        let mut summary = self.summary.clone();
        CsvWriter::new(File::create(dir.join("summary.csv"))?).finish(&mut summary)?;
        Ok(())
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
