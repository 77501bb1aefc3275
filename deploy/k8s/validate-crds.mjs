// Validates the rendered objects of custom resource kinds (the External Secrets Operator's
// ExternalSecret, prometheus-operator's ServiceMonitor) against validators generated from
// their CRDs' schemas (the @kubernetes-models packages, which scripts/services installs),
// since kubernetes-validate knows only Kubernetes' own kinds. Reads a JSON array of objects
// on stdin; prints one line per object; exits 1 when any is invalid or of an unknown kind.
//
//   CRD_MODELS=dir-with-node_modules node deploy/k8s/validate-crds.mjs < objects.json
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const models = process.env.CRD_MODELS;
if (!models) {
  console.error("CRD_MODELS is not set (the folder scripts/services installed the models in)");
  process.exit(2);
}

const KINDS = {
  "external-secrets.io/v1 ExternalSecret": ["@kubernetes-models/external-secrets", "external-secrets.io/v1"],
  "monitoring.coreos.com/v1 ServiceMonitor": ["@kubernetes-models/prometheus-operator", "monitoring.coreos.com/v1"],
};

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const object of objects) {
  const kind = `${object.apiVersion} ${object.kind}`;
  const name = `${object.kind}/${object.metadata?.name}`;
  const model = KINDS[kind];
  if (!model) {
    console.log(`ERROR ${name}: no validator for ${kind}`);
    failed++;
    continue;
  }
  const [pkg, group] = model;
  const module = await import(pathToFileURL(join(models, "node_modules", pkg, group, "index.js")));
  try {
    new module[object.kind](object).validate();
    console.log(`OK ${name} against ${pkg}`);
  } catch (e) {
    console.log(`ERROR ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
