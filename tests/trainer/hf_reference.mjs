// Writes the ids that transformers.js (npm @huggingface/tokenizers) gives texts, as
// reference data for tests/trainer/hf_tokenizer_test.cc.
// Usage: node hf_reference.mjs TOKENIZER_DIR TEXTS_JSON OUT_JSON
//   TOKENIZER_DIR holds tokenizer.json and tokenizer_config.json; TEXTS_JSON is a list of
//   strings; OUT_JSON becomes a list of {text, ids, decoded}: ids with add_special_tokens
//   false (special tokens written in a text are matched, as the library does by default),
//   decoded = decode(ids) with skip_special_tokens and no clean-up of spaces (the Rust
//   library has none; transformers adds it).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [dir, textsPath, outPath] = process.argv.slice(2);
const require = createRequire(join(process.cwd(), "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");
const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
const tokenizer = new Tokenizer(json, config);
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const rows = texts.map((text) => {
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  return { text, ids, decoded: tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }) };
});
writeFileSync(outPath, JSON.stringify(rows, null, 1));
