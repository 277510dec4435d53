// Renders chat templates with @huggingface/jinja (the reference for worker/data/jinja_template):
// node render.mjs JINJA_MODULE_DIR CASES.json prints a JSON list, one {text} or {error} per case
// ({template, context}), as transformers.js's apply_chat_template renders.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [moduleDir, casesFile] = process.argv.slice(2);
const { Template } = await import(pathToFileURL(path.join(moduleDir, "dist", "index.js")).href);
const cases = JSON.parse(readFileSync(casesFile, "utf8"));
const out = cases.map(({ template, context }) => {
  try {
    return { text: new Template(template).render(context) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(out));
