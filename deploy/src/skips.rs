//! The register of checkov checks that recaudo's deployment does not meet on purpose
//! (`deploy/checkov-skips.yaml`), each with its reason, held against what checkov reports:
//! a failure not in the register fails the build, and so does an entry that no longer
//! fails (the register never goes stale). Kept in one file, rather than as markers spread
//! over the manifests, so a reviewer reads every exception in one place.

use serde::Deserialize;
use serde_json::Value;

/// One check not met on purpose. `resource` is checkov's name for it (`aws_s3_bucket.logs`,
/// `Deployment.recaudo.recaudo-api`), or `*` for every resource the check fails on.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    pub check: String,
    pub resource: String,
    pub reason: String,
}

/// The register, by checkov framework.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub kubernetes: Vec<Skip>,
    pub terraform: Vec<Skip>,
}

impl Register {
    pub fn parse(yaml: &str) -> Result<Self, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }
}

/// A failed check as checkov reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: String,
    pub resource: String,
    pub file: String,
}

/// The failed checks of checkov's JSON output (`-o json`: one report, or a list of them).
pub fn failures(checkov_json: &str) -> Result<Vec<Failure>, serde_json::Error> {
    let value: Value = serde_json::from_str(checkov_json)?;
    let reports = match value {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(reports
        .iter()
        .flat_map(|r| {
            r["results"]["failed_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| Failure {
            check: text(&f["check_id"]),
            resource: text(&f["resource"]),
            file: text(&f["file_path"]),
        })
        .collect())
}

/// What does not agree between the register and checkov's failures.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Disagreement {
    /// Failed, and not in the register: fix it, or register it with a reason.
    pub unlisted: Vec<Failure>,
    /// In the register, and no longer failing: remove it.
    pub stale: Vec<Skip>,
    /// In the register with an empty reason.
    pub unexplained: Vec<Skip>,
}

impl Disagreement {
    pub fn is_empty(&self) -> bool {
        self.unlisted.is_empty() && self.stale.is_empty() && self.unexplained.is_empty()
    }
}

pub fn compare(register: &[Skip], failures: &[Failure]) -> Disagreement {
    let covers = |s: &Skip, f: &Failure| {
        s.check == f.check && (s.resource == "*" || s.resource == f.resource)
    };
    Disagreement {
        unlisted: failures
            .iter()
            .filter(|f| !register.iter().any(|s| covers(s, f)))
            .cloned()
            .collect(),
        stale: register
            .iter()
            .filter(|s| !failures.iter().any(|f| covers(s, f)))
            .cloned()
            .collect(),
        unexplained: register
            .iter()
            .filter(|s| s.reason.trim().len() < 10)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(check: &str, resource: &str, reason: &str) -> Skip {
        Skip {
            check: check.into(),
            resource: resource.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn failures_are_read_from_one_report_or_many() {
        let one = r#"{"check_type": "terraform", "results": {"failed_checks": [
            {"check_id": "CKV_AWS_145", "resource": "aws_s3_bucket.logs", "file_path": "/s3.tf"}]}}"#;
        let many = format!(r#"[{one}, {{"check_type": "kubernetes", "results": {{}}}}]"#);
        let expected = vec![Failure {
            check: "CKV_AWS_145".into(),
            resource: "aws_s3_bucket.logs".into(),
            file: "/s3.tf".into(),
        }];
        assert_eq!(failures(one).unwrap(), expected);
        assert_eq!(failures(&many).unwrap(), expected);
    }

    #[test]
    fn unlisted_failures_stale_entries_and_missing_reasons_are_found() {
        let failed = failures(
            r#"{"results": {"failed_checks": [
            {"check_id": "A", "resource": "x.one", "file_path": "/f"},
            {"check_id": "A", "resource": "x.two", "file_path": "/f"},
            {"check_id": "B", "resource": "x.one", "file_path": "/f"},
            {"check_id": "C", "resource": "x.one", "file_path": "/f"}]}}"#,
        )
        .unwrap();
        let register = [
            skip("A", "*", "applies to every resource, on purpose"),
            skip("B", "x.one", "x.one cannot, because of a documented limit"),
            skip("B", "x.two", "x.two cannot either"),
            skip("D", "*", ""),
        ];
        let d = compare(&register, &failed);
        assert_eq!(d.unlisted, vec![failed[3].clone()]);
        assert_eq!(d.stale, vec![register[2].clone(), register[3].clone()]);
        assert_eq!(d.unexplained, vec![register[3].clone()]);
        assert!(!d.is_empty());
        assert!(compare(&register[..2], &failed[..3]).is_empty());
    }
}
