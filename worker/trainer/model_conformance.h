// Conformance of whole models and tokenizers against reference files, for
// `sweep-train conformance PATH...`: a model folder with reference.safetensors (logits and
// loss; for a PEFT adapter folder, the logits through the adapter on its base) and a
// SentencePiece .model or a tokenizer.json with reference.json beside it (every text's
// ids; tokenizer.json: worker/trainer/tokenizer_conformance.h); an eval folder
// (eval_conformance.h) is handed on to RunEvalConformance.
#pragma once

#include <ostream>
#include <string>

namespace sweepd::trainer {

// True for the paths these checks handle: a folder with reference.safetensors, a .model
// file, a file named tokenizer.json, or an eval folder.
bool IsModelConformancePath(const std::string& path);

// Runs the checks of `path`, printing one line per check to `out`; returns 0 when all pass,
// 1 when one fails, 2 when the path cannot be used (message on `out`).
int RunModelConformance(const std::string& path, std::ostream& out);

}  // namespace sweepd::trainer
