// Validates Kubernetes manifests against the Kubernetes API's OpenAPI schema, as compiled
// into kubernetes-models' validators (the npm package kubernetes-models, generated from the
// OpenAPI spec of one Kubernetes release). Every document of every file is checked: its
// apiVersion and kind must exist in that release, and the object must match the schema
// (types, required fields, enums, formats). Each problem names the file, the line and the
// field. Usage: node validate.mjs FILE... ; exit 0 all valid, 1 problems found, 2 bad usage.
import { readFileSync } from "node:fs";
import { LineCounter, parseAllDocuments } from "yaml";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs MANIFEST.yaml...");
  process.exit(2);
}

// kubernetes-models keeps the models of group/versions that Kubernetes has since removed
// (apps/v1beta1, extensions/v1beta1, ...): a manifest may use only those a current release
// serves by default, its GA APIs (Kubernetes 1.34; the "Deprecated API Migration Guide"
// lists what was removed when).
const served = new Set([
  "v1", "admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
  "apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1",
  "autoscaling/v2", "batch/v1", "certificates.k8s.io/v1", "coordination.k8s.io/v1",
  "discovery.k8s.io/v1", "events.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1",
  "networking.k8s.io/v1", "node.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
  "resource.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1",
]);

// kubernetes-models/<group>/<version> (or kubernetes-models/<version> for the core group).
async function modelsOf(apiVersion) {
  if (!served.has(apiVersion)) return null;
  try {
    return await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
}

// The YAML node at a JSON pointer such as /spec/template/spec/containers/0, or the nearest
// parent that exists, for its line number.
function nodeAt(doc, pointer) {
  const keys = pointer
    .split("/")
    .slice(1)
    .map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  for (let n = keys.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true);
    if (node && node.range) return node;
  }
  return doc.contents;
}

let problems = 0;
let checked = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    console.error(`${file}: cannot read (${e.code ?? e.message})`);
    problems++;
    continue;
  }
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  const lineOf = (node) => (node && node.range ? lines.linePos(node.range[0]).line : 1);
  const report = (node, what) => {
    console.error(`${file}:${lineOf(node)}: ${what}`);
    problems++;
  };
  for (const [index, doc] of docs.entries()) {
    for (const e of doc.errors) report({ range: e.pos }, `YAML: ${e.message.split("\n")[0]}`);
    if (doc.errors.length > 0) continue;
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // an empty document (a trailing ---)
    const where = `document ${index + 1}`;
    if (typeof obj !== "object" || Array.isArray(obj)) {
      report(doc.contents, `${where}: expected a Kubernetes object (a mapping)`);
      continue;
    }
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
      report(doc.contents, `${where}: needs apiVersion and kind (e.g. apiVersion: apps/v1, kind: Deployment)`);
      continue;
    }
    const name = `${obj.kind}/${obj.metadata?.name ?? "(no name)"}`;
    const models = await modelsOf(obj.apiVersion);
    const Model = models?.[obj.kind];
    if (typeof Model !== "function" || typeof Model.prototype?.validate !== "function") {
      const known = models ? Object.keys(models).filter((k) => /^[A-Z]/.test(k)) : [];
      report(
        doc.get("kind", true) ?? doc.contents,
        `${name}: ${obj.apiVersion} ${obj.kind} is not part of this Kubernetes release's API` +
          (known.length
            ? ` (${obj.apiVersion} has ${known.join(", ")})`
            : ` (${obj.apiVersion} is not served; served: ${[...served].join(", ")})`),
      );
      continue;
    }
    checked++;
    try {
      new Model(obj).validate();
    } catch (e) {
      if (!Array.isArray(e.errors)) throw e;
      for (const err of e.errors) {
        const field = err.instancePath || "/";
        const detail = err.keyword === "required" ? `${field}: missing ${err.params.missingProperty}`
          : err.keyword === "enum" ? `${field}: ${err.message}: ${err.params.allowedValues.join(", ")}`
          : `${field}: ${err.message}`;
        report(nodeAt(doc, err.instancePath), `${name}: ${detail}`);
      }
    }
  }
}
if (problems > 0) {
  console.error(`validate: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(1);
}
console.log(`validate: ${checked} object(s) in ${files.length} file(s) match the Kubernetes schema`);
