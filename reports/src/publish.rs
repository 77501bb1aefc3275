//! Publishing a report: every file under `reports/{D}/v{n}/`, the manifest last, then
//! `reports/{D}/latest.json` moved to the new version. A version is never written twice:
//! the next number is one past the highest found, even one a crashed run left half-written.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use storage::ObjectStore;

use crate::ReportError;
use crate::files::ReportFile;
use crate::inputs::{InputFile, ReportInputs};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// Data rows; absent for the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerFingerprint {
    pub sales_count: i64,
    pub sales_amount: i64,
    pub voids_count: i64,
    pub voids_amount: i64,
    pub validations_count: i64,
    pub validations_amount: i64,
    pub online_payments_count: i64,
    pub online_payments_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inputs {
    pub operator_files: Vec<InputFile>,
    /// Each operator's terms in force on the date: what its statement was computed with.
    pub operator_terms: Vec<ledger::Operator>,
    /// Counts and totals in minor units of the ledger rows the report read.
    pub ledger: LedgerFingerprint,
    pub reconciliation_run_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub business_date: String,
    /// FINAL or PROVISIONAL.
    pub kind: &'static str,
    /// 0 for a provisional report.
    pub version: u32,
    pub prefix: String,
    /// The job run that made this report (as `recaudo status` shows it); with
    /// `generated_at` and the page, what differs between two runs on the same inputs.
    pub run_id: String,
    pub generated_at: String,
    pub currency: String,
    pub versions: serde_json::Value,
    pub files: Vec<ManifestFile>,
    pub inputs: Inputs,
}

/// Where a report was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub version: u32,
    pub prefix: String,
    pub manifest: Manifest,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn fingerprint(inputs: &ReportInputs) -> Inputs {
    let mut l = LedgerFingerprint::default();
    for s in inputs.sales.values() {
        l.sales_count += s.sales_count;
        l.sales_amount += s.sales_amount;
        l.voids_count += s.voids_count;
        l.voids_amount += s.voids_amount;
    }
    for f in inputs.fares.values() {
        l.validations_count += f.validations_count;
        l.validations_amount += f.validations_amount;
        l.online_payments_count += f.online_payments_count;
        l.online_payments_amount += f.online_payments_amount;
    }
    Inputs {
        operator_files: inputs.files.clone(),
        operator_terms: inputs.operators.clone(),
        ledger: l,
        reconciliation_run_id: inputs.reconciliation.run_id.clone(),
    }
}

/// The versions already under `reports/{D}/`, highest first.
pub async fn versions(store: &dyn ObjectStore, date: &str) -> Result<Vec<u32>, ReportError> {
    let base = format!("reports/{date}/");
    let mut found: Vec<u32> = store
        .list(&base)
        .await?
        .iter()
        .filter_map(|o| {
            let rest = o.key.strip_prefix(&base)?;
            let (dir, _) = rest.split_once('/')?;
            dir.strip_prefix('v')?.parse().ok()
        })
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.dedup();
    Ok(found)
}

/// The version a final report of `date` publishes next: one past the highest found, even
/// one a crashed run left half-written.
pub async fn next_version(store: &dyn ObjectStore, date: &str) -> Result<u32, ReportError> {
    Ok(versions(store, date).await?.first().map_or(1, |v| v + 1))
}

/// Writes `files` and their manifest: a final report under its version, then `latest`
/// moved to it; a provisional one in place of the last provisional (`latest` untouched).
pub async fn publish(
    store: &dyn ObjectStore,
    inputs: &ReportInputs,
    files: Vec<ReportFile>,
    meta: &crate::ReportMeta,
    run_id: &str,
) -> Result<Published, ReportError> {
    let date = inputs.date.to_string();
    let (version, prefix) = match meta.version {
        Some(v) => (v, format!("reports/{date}/v{v}/")),
        None => {
            let prefix = format!("reports/{date}/provisional/");
            // A look at an open day replaces the last look: no file of an earlier one
            // (an operator since gone, say) may stay beside it.
            for old in store.list(&prefix).await? {
                store.delete(&old.key).await?;
            }
            (0, prefix)
        }
    };
    let mut listed = Vec::with_capacity(files.len());
    for f in files {
        listed.push(ManifestFile {
            path: f.path.clone(),
            sha256: sha256_hex(&f.bytes),
            bytes: f.bytes.len() as u64,
            rows: f.rows,
        });
        store
            .put(&format!("{prefix}{}", f.path), bytes::Bytes::from(f.bytes))
            .await?;
    }
    let manifest = Manifest {
        business_date: date.clone(),
        kind: meta.kind.as_str(),
        version,
        prefix: prefix.clone(),
        run_id: run_id.to_string(),
        generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        currency: inputs.currency.code().to_string(),
        versions: serde_json::json!({
            "recaudo": env!("CARGO_PKG_VERSION"),
            "report_format": 4,
        }),
        files: listed,
        inputs: fingerprint(inputs),
    };
    let body = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes");
    store
        .put(&format!("{prefix}manifest.json"), bytes::Bytes::from(body))
        .await?;
    if meta.version.is_some() {
        let latest = serde_json::json!({ "version": version, "prefix": prefix });
        store
            .put(
                &format!("reports/{date}/latest.json"),
                bytes::Bytes::from(serde_json::to_vec_pretty(&latest).expect("latest serializes")),
            )
            .await?;
    }
    Ok(Published {
        version,
        prefix,
        manifest,
    })
}
