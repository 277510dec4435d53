// The subset of Jinja (jinja.palletsprojects.com, Template Designer Documentation) that the
// chat templates of Hugging Face tokenizer_config.json files use, rendered as transformers'
// apply_chat_template renders them: trim_blocks and lstrip_blocks on, the last newline of the
// source dropped, loop controls on. Values are JSON values plus "undefined".
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd::data {

namespace jinja {
struct Node;
}

// A parsed template; renders any number of times (const, so from any thread).
class JinjaTemplate {
 public:
  // Parses `source`; a syntax error is reported with `where` (the file) and the line.
  static Result<JinjaTemplate> Parse(const std::string& source, const std::string& where);

  // Renders with the variables of `context` (a JSON object). A template that calls
  // raise_exception(message), or an operation on values of the wrong type, is an error whose
  // message names `where` and says what happened.
  Result<std::string> Render(const nlohmann::ordered_json& context) const;

 private:
  std::shared_ptr<const jinja::Node> root_;
  std::string where_;
};

}  // namespace sweepd::data
