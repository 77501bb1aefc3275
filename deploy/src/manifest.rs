//! The rules every rendered manifest set of recaudo must keep, beyond what the schema and
//! checkov check: each long-running container has probes, every container has requests and
//! limits and the restricted security context, the scheduler may finish a run before it is
//! killed, one image (and one tag) runs everywhere, and no ConfigMap holds a secret.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The setting `recaudo schedule` reads for how long a run may go on after SIGTERM.
pub const SCHEDULE_GRACE_VAR: &str = "RECAUDO_SCHEDULE_GRACE_SECS";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not run kubectl: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("kubectl kustomize {overlay} failed: {stderr}")]
    Kustomize { overlay: String, stderr: String },
    #[error("the rendered manifests are not YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// `kubectl kustomize OVERLAY`, as text and as objects.
pub fn render(overlay: &Path) -> Result<(String, Vec<Value>), RenderError> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()?;
    if !out.status.success() {
        return Err(RenderError::Kustomize {
            overlay: overlay.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let objects = parse(&text)?;
    Ok((text, objects))
}

/// Every document of a multi-document YAML stream (empty ones dropped).
pub fn parse(yaml: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// `Kind/name`, how a violation names its object.
pub fn name_of(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Every rule broken in `objects`, one line each naming the object, the container and the
/// rule; empty when all hold.
pub fn violations(objects: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    let mut images = BTreeSet::new();
    for object in objects {
        let Some((pod, long_running)) = pod_spec(object) else {
            if object["kind"] == "ConfigMap" {
                config_map_secrets(object, &mut found);
            }
            continue;
        };
        let owner = name_of(object);
        for (container, init) in containers(pod) {
            let at = format!(
                "{owner} container {}",
                container["name"].as_str().unwrap_or("?")
            );
            if let Some(image) = container["image"].as_str() {
                images.insert(image.to_string());
            }
            if long_running && !init {
                for probe in ["livenessProbe", "readinessProbe"] {
                    if container[probe].is_null() {
                        found.push(format!("{at}: no {probe}"));
                    }
                }
            }
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    if container["resources"][kind][resource].is_null() {
                        found.push(format!("{at}: no {kind}.{resource}"));
                    }
                }
            }
            security_context(pod, container, &at, &mut found);
            if runs_scheduler(container) {
                scheduler_grace(objects, pod, container, &at, &mut found);
            }
        }
    }
    match images.len() {
        0 => found.push("no container image at all".into()),
        1 => {
            let image = images.iter().next().expect("one image");
            match tag_of(image) {
                None => found.push(format!("image {image} has no tag")),
                Some("latest") => found.push(format!("image {image} is :latest")),
                Some(_) => {}
            }
        }
        _ => found.push(format!(
            "more than one image (or tag) is deployed: {}",
            images.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
    found
}

/// The pod template of a workload, and whether its pods are meant to keep running (a Job's
/// run to completion, so probes do not apply to them).
fn pod_spec(object: &Value) -> Option<(&Value, bool)> {
    let spec = match object["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            return Some((&object["spec"]["template"]["spec"], true));
        }
        "Job" => &object["spec"]["template"]["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Pod" => &object["spec"],
        _ => return None,
    };
    Some((spec, false))
}

/// Every container of a pod, with whether it is an init container.
fn containers(pod: &Value) -> impl Iterator<Item = (&Value, bool)> {
    let init = pod["initContainers"].as_array().into_iter().flatten();
    let main = pod["containers"].as_array().into_iter().flatten();
    init.map(|c| (c, true)).chain(main.map(|c| (c, false)))
}

/// The restricted security context, on the container (or, where Kubernetes allows, the pod).
fn security_context(pod: &Value, container: &Value, at: &str, found: &mut Vec<String>) {
    let own = &container["securityContext"];
    let pod_level = &pod["securityContext"];
    let either = |key: &str| {
        if own[key].is_null() {
            &pod_level[key]
        } else {
            &own[key]
        }
    };
    if either("runAsNonRoot") != &Value::Bool(true) {
        found.push(format!("{at}: runAsNonRoot is not true"));
    }
    if either("runAsUser").as_u64() == Some(0) {
        found.push(format!("{at}: runs as user 0"));
    }
    if own["readOnlyRootFilesystem"] != Value::Bool(true) {
        found.push(format!("{at}: the root filesystem is not read-only"));
    }
    if own["allowPrivilegeEscalation"] != Value::Bool(false) {
        found.push(format!("{at}: allowPrivilegeEscalation is not false"));
    }
    if own["privileged"] == Value::Bool(true) {
        found.push(format!("{at}: privileged"));
    }
    let drops_all = own["capabilities"]["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    if !drops_all {
        found.push(format!("{at}: capabilities do not drop ALL"));
    }
    if own["capabilities"]["add"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        found.push(format!("{at}: adds capabilities"));
    }
    if either("seccompProfile")["type"] != "RuntimeDefault" {
        found.push(format!("{at}: seccompProfile is not RuntimeDefault"));
    }
}

fn runs_scheduler(container: &Value) -> bool {
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    words.first().is_some_and(|w| w.ends_with("recaudo")) && words.contains(&"schedule")
}

/// The pod's termination grace period must exceed the run grace the scheduler is given, or
/// Kubernetes kills a run the scheduler meant to let finish.
fn scheduler_grace(
    objects: &[Value],
    pod: &Value,
    container: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let Some(grace) = env_value(objects, container, SCHEDULE_GRACE_VAR) else {
        found.push(format!(
            "{at}: runs the scheduler without {SCHEDULE_GRACE_VAR} set (the grace must be explicit)"
        ));
        return;
    };
    let Ok(grace) = grace.trim().parse::<u64>() else {
        found.push(format!(
            "{at}: {SCHEDULE_GRACE_VAR}={grace:?} is not a number"
        ));
        return;
    };
    // Kubernetes' own default when the field is absent.
    let period = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    if period <= grace {
        found.push(format!(
            "{at}: terminationGracePeriodSeconds {period} does not exceed {SCHEDULE_GRACE_VAR} {grace}"
        ));
    }
}

/// A variable's value as the container sees it: its own `env` first, then the ConfigMaps of
/// its `envFrom` (a later source wins, as in Kubernetes).
fn env_value(objects: &[Value], container: &Value, var: &str) -> Option<String> {
    let own = container["env"].as_array().into_iter().flatten();
    if let Some(v) = own
        .filter(|e| e["name"] == var)
        .find_map(|e| e["value"].as_str())
    {
        return Some(v.to_string());
    }
    let mut value = None;
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let Some(name) = source["configMapRef"]["name"].as_str() else {
            continue;
        };
        let map = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name);
        if let Some(v) = map.and_then(|m| m["data"][var].as_str()) {
            value = Some(v.to_string());
        }
    }
    value
}

/// The tag of an image reference (`repo/name:tag`, `name@sha256:…` has none).
fn tag_of(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// Secrets belong in Secrets: a ConfigMap key named like one, or a value that is one.
fn config_map_secrets(object: &Value, found: &mut Vec<String>) {
    const SECRET_NAMES: [&str; 6] = [
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "DATABASE_URL",
    ];
    let owner = name_of(object);
    let Some(data) = object["data"].as_object() else {
        return;
    };
    for (key, value) in data {
        let upper = key.to_ascii_uppercase();
        if let Some(word) = SECRET_NAMES.iter().find(|w| upper.contains(*w)) {
            found.push(format!(
                "{owner}: key {key} names a secret ({word}); it belongs in a Secret"
            ));
        }
        let value = value.as_str().unwrap_or_default();
        if let Some(reason) = secret_value(value) {
            found.push(format!("{owner}: the value of {key} {reason}"));
        }
    }
}

fn secret_value(value: &str) -> Option<&'static str> {
    if value.contains("-----BEGIN") {
        return Some("is a PEM key or certificate");
    }
    // A URL whose user part carries a password: scheme://user:password@host.
    if let Some((_, rest)) = value.split_once("://") {
        let authority = rest.split('/').next().unwrap_or(rest);
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            return Some("is a URL with a password");
        }
    }
    let is_access_key = |w: &str| {
        w.len() == 20
            && (w.starts_with("AKIA") || w.starts_with("ASIA"))
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(is_access_key)
    {
        return Some("holds an AWS access key id");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  RECAUDO_SCHEDULE_GRACE_SECS: "30"
  RECAUDO_S3_SSE_KMS_KEY_ID: arn:aws:kms:us-east-1:111122223333:key/abc
  RECAUDO_OBJECT_STORE: s3://bucket/
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: scheduler}
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 60
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: scheduler
          image: repo/recaudo:1.2.3
          command: [recaudo, schedule]
          envFrom: [{configMapRef: {name: settings}}]
          livenessProbe: {httpGet: {path: /metrics, port: 9464}}
          readinessProbe: {httpGet: {path: /metrics, port: 9464}}
          resources:
            requests: {cpu: "1", memory: 1Gi}
            limits: {cpu: "2", memory: 2Gi}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: migrate
          image: repo/recaudo:1.2.3
          command: [recaudo, migrate]
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: "1", memory: 128Mi}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
"#;

    fn broken(edit: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
        let mut objects = parse(GOOD).unwrap();
        edit(&mut objects);
        violations(&objects)
    }

    fn scheduler(objects: &mut [Value]) -> &mut Value {
        &mut objects[1]["spec"]["template"]["spec"]
    }

    #[test]
    fn a_set_that_keeps_every_rule_has_no_violation() {
        assert_eq!(violations(&parse(GOOD).unwrap()), Vec::<String>::new());
    }

    #[test]
    fn a_long_running_container_without_probes_is_named() {
        let found = broken(|o| {
            scheduler(o)["containers"][0]
                .as_object_mut()
                .unwrap()
                .remove("readinessProbe");
        });
        assert_eq!(
            found,
            ["Deployment/scheduler container scheduler: no readinessProbe"]
        );
    }

    #[test]
    fn missing_limits_and_a_loose_security_context_are_named() {
        let found = broken(|o| {
            let c = &mut o[2]["spec"]["template"]["spec"]["containers"][0];
            c["resources"]["limits"]
                .as_object_mut()
                .unwrap()
                .remove("memory");
            c["securityContext"]["readOnlyRootFilesystem"] = Value::Bool(false);
            c["securityContext"]["capabilities"]["drop"] = serde_json::json!(["NET_RAW"]);
            o[2]["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] =
                "Unconfined".into();
        });
        assert_eq!(
            found,
            [
                "Job/migrate container migrate: no limits.memory",
                "Job/migrate container migrate: the root filesystem is not read-only",
                "Job/migrate container migrate: capabilities do not drop ALL",
                "Job/migrate container migrate: seccompProfile is not RuntimeDefault",
            ]
        );
    }

    #[test]
    fn a_grace_period_not_above_the_run_grace_is_named() {
        let found = broken(|o| scheduler(o)["terminationGracePeriodSeconds"] = 30.into());
        assert_eq!(
            found,
            [
                "Deployment/scheduler container scheduler: terminationGracePeriodSeconds 30 does not exceed RECAUDO_SCHEDULE_GRACE_SECS 30"
            ]
        );
        // The container's own env wins over the ConfigMap.
        let found = broken(|o| {
            scheduler(o)["containers"][0]["env"] =
                serde_json::json!([{"name": "RECAUDO_SCHEDULE_GRACE_SECS", "value": "90"}]);
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("60 does not exceed RECAUDO_SCHEDULE_GRACE_SECS 90"));
        let found = broken(|o| {
            o[0]["data"]
                .as_object_mut()
                .unwrap()
                .remove(SCHEDULE_GRACE_VAR);
        });
        assert!(
            found[0].contains("without RECAUDO_SCHEDULE_GRACE_SECS set"),
            "{found:?}"
        );
    }

    #[test]
    fn two_tags_or_latest_are_named() {
        let found = broken(|o| {
            o[2]["spec"]["template"]["spec"]["containers"][0]["image"] = "repo/recaudo:1.2.4".into()
        });
        assert_eq!(
            found,
            ["more than one image (or tag) is deployed: repo/recaudo:1.2.3, repo/recaudo:1.2.4"]
        );
        let found = broken(|o| {
            scheduler(o)["containers"][0]["image"] = "repo/recaudo:latest".into();
            o[2]["spec"]["template"]["spec"]["containers"][0]["image"] =
                "repo/recaudo:latest".into();
        });
        assert_eq!(found, ["image repo/recaudo:latest is :latest"]);
        assert_eq!(tag_of("registry:5000/recaudo"), None);
        assert_eq!(tag_of("registry:5000/recaudo:1.0@sha256:ab"), Some("1.0"));
    }

    #[test]
    fn secrets_in_a_config_map_are_named() {
        let found = broken(|o| {
            let data = &mut o[0]["data"];
            data["RECAUDO_DATABASE_URL"] = "postgres://recaudo@db/recaudo".into();
            data["RECAUDO_KAFKA_SASL_PASSWORD"] = "hunter2".into();
            data["UPSTREAM"] = "https://user:pa55@example.com/x".into();
            data["AWS_KEY"] = "id=AKIAIOSFODNN7EXAMPLE".into();
        });
        let mut found = found;
        found.sort();
        assert_eq!(
            found,
            [
                "ConfigMap/settings: key RECAUDO_DATABASE_URL names a secret (DATABASE_URL); it belongs in a Secret",
                "ConfigMap/settings: key RECAUDO_KAFKA_SASL_PASSWORD names a secret (PASSWORD); it belongs in a Secret",
                "ConfigMap/settings: the value of AWS_KEY holds an AWS access key id",
                "ConfigMap/settings: the value of UPSTREAM is a URL with a password",
            ]
        );
    }
}
