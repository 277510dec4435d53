// OFT (Qiu et al. 2023) as PEFT 0.21's OFTConfig: block-diagonal Cayley rotations of the
// input side, oft_block_size (or r blocks), skew parameters b(b−1)/2 per block.
#include "common/methods/method.h"
#include "common/methods/shape_checks.h"

#include <algorithm>

namespace sweepd::methods {

MethodInfo Oft() {
  MethodInfo m;
  m.name = "oft";
  m.label = "OFT";
  m.label_keys = {"oft_block_size"};
  m.options = {IntOption("oft_block_size", 0, 0, "block size (0: from r, else PEFT's 32)"),
               IntOption("r", 0, 0, "number of blocks (0: from oft_block_size)"),
               BoolOption("coft", false, "constrained OFT"),
               NumberOption("eps", 6e-5, 0.0, "COFT's constraint radius"),
               BoolOption("block_share", false, "one rotation shared by every block"),
               NumberOption("dropout", 0.0, 0.0, "multiplicative dropout"),
               BoolOption("use_cayley_neumann", false, "Cayley transform by a Neumann series (PEFT 0.21)"),
               IntOption("num_cayley_neumann_terms", 5, 1, "terms of that series")};
  m.size_knob = "oft_block_size";
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    int64_t size = s.Int("oft_block_size");
    const int64_t blocks = s.Int("r");
    if (size <= 0) {
      if (blocks <= 0) {
        size = 32;  // PEFT's default oft_block_size
      } else {
        SWEEPD_RETURN_IF_ERROR(Divides(blocks, sh.d_in, "oft r (number of blocks)", sh));
        size = sh.d_in / blocks;
      }
    }
    SWEEPD_RETURN_IF_ERROR(Divides(size, sh.d_in, "oft_block_size", sh));
    return (sh.d_in / size) * (size * (size - 1) / 2);
  };
  m.peft_type = "OFT";
  m.peft_fields = {{"bias", "none"},          {"block_share", false},       {"coft", false},
                   {"eps", 6e-05},            {"exclude_modules", nullptr}, {"fan_in_fan_out", false},
                   {"init_weights", true},    {"layers_pattern", nullptr},  {"layers_to_transform", nullptr},
                   {"module_dropout", 0.0},   {"modules_to_save", nullptr}, {"num_cayley_neumann_terms", 5},
                   {"oft_block_size", 32},    {"r", 0},                     {"use_cayley_neumann", true}};
  // Every field that shapes the rotation is written, whatever PEFT's default; our OFT never
  // shares one rotation across blocks, so block_share is false.
  m.to_peft = [](const MethodSettings& s, const PeftContext&) -> Result<nlohmann::json> {
    const bool neumann = s.Bool("use_cayley_neumann");
    const int64_t terms = s.Int("num_cayley_neumann_terms");
    if (neumann && (terms == 2 || terms == 3)) {
      return Status::InvalidArgument("oft num_cayley_neumann_terms " + std::to_string(terms) +
                                     ": PEFT's series differs from ours below 4 terms; use 1 or at least 4");
    }
    if (s.Bool("block_share")) {
      return Status::InvalidArgument("oft block_share: sweep-train trains one rotation per block; set it false");
    }
    int64_t size = s.Int("oft_block_size");
    const int64_t blocks = size > 0 ? 0 : s.Int("r");
    if (size <= 0 && blocks <= 0) size = 32;  // PEFT's default oft_block_size
    // PEFT accepts exactly one of r and oft_block_size non-zero.
    return nlohmann::json{{"oft_block_size", std::max<int64_t>(size, 0)}, {"r", blocks},
                          {"coft", s.Bool("coft")},                     {"eps", s.Number("eps")},
                          {"block_share", false},                       {"module_dropout", s.Number("dropout")},
                          {"use_cayley_neumann", neumann},              {"num_cayley_neumann_terms", terms}};
  };
  m.from_peft = [](const nlohmann::json& c) -> Result<PeftSettings> {
    PeftSettings out;
    out.settings = {{"method", "oft"},
                    {"oft_block_size", c.value("oft_block_size", nlohmann::json(32))},
                    {"r", c.value("r", nlohmann::json(0))},
                    {"coft", c.value("coft", nlohmann::json(false))},
                    {"eps", c.value("eps", nlohmann::json(6e-05))},
                    {"dropout", c.value("module_dropout", nlohmann::json(0.0))},
                    {"use_cayley_neumann", c.value("use_cayley_neumann", nlohmann::json(true))},
                    {"num_cayley_neumann_terms", c.value("num_cayley_neumann_terms", nlohmann::json(5))}};
    return out;
  };
  m.tensor_markers = {"oft_R"};
  m.tolerances.merged = 1e-6;  // the merged weight goes through a matrix inverse
  m.components = {{ParamComponent::Kind::kRotation, nlohmann::json::object(), nullptr}};
  m.core_type = [](const MethodSettings&) { return std::string("Orthogonal"); };
  return m;
}

}  // namespace sweepd::methods
