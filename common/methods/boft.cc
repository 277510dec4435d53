// BOFT (Liu et al. 2024) as PEFT 0.21's BOFTConfig: butterfly products of block rotations,
// boft_n_butterfly_factor · (d_in / b) · b² parameters plus the output scale.
#include "common/methods/method.h"
#include "common/methods/shape_checks.h"

#include <algorithm>

namespace sweepd::methods {

MethodInfo Boft() {
  MethodInfo m;
  m.name = "boft";
  m.label = "BOFT";
  m.label_keys = {"boft_block_size", "boft_n_butterfly_factor"};
  m.options = {IntOption("boft_block_size", 0, 0, "block size (0: from boft_block_num, else PEFT's 4)"),
               IntOption("boft_block_num", 0, 0, "number of blocks (0: from boft_block_size)"),
               IntOption("boft_n_butterfly_factor", 1, 1, "butterfly factors"),
               NumberOption("dropout", 0.0, 0.0, "multiplicative dropout")};
  m.size_knob = "boft_block_size";
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    int64_t size = s.Int("boft_block_size");
    const int64_t num = s.Int("boft_block_num");
    const int64_t factors = s.Int("boft_n_butterfly_factor");
    if (size <= 0 && num <= 0) size = 4;  // PEFT's default boft_block_size
    if (size <= 0) {
      SWEEPD_RETURN_IF_ERROR(Divides(num, sh.d_in, "boft_block_num", sh));
      size = sh.d_in / num;
    }
    SWEEPD_RETURN_IF_ERROR(Divides(size, sh.d_in, "boft_block_size", sh));
    // PEFT's butterfly needs d_in divisible by b·2^(factors−1) and even sizes beyond one factor.
    const int64_t span = size << (factors - 1);
    if (factors > 1 && (sh.d_in % span != 0 || size % 2 != 0 || (sh.d_in / size) % 2 != 0)) {
      return Status::InvalidArgument("boft_block_size " + std::to_string(size) + " with " + std::to_string(factors) +
                                     " butterfly factors does not fit d_in " + std::to_string(sh.d_in) +
                                     " of layer '" + sh.name + "' (needs an even block size and d_in divisible by " +
                                     std::to_string(span) + ")");
    }
    return factors * (sh.d_in / size) * size * size + sh.d_out;
  };
  m.tensor_markers = {"boft_R"};
  m.peft_type = "BOFT";
  m.peft_fields = {{"bias", "none"},          {"boft_block_num", 0},           {"boft_block_size", 4},
                   {"boft_dropout", 0.0},     {"boft_n_butterfly_factor", 1},  {"exclude_modules", nullptr},
                   {"fan_in_fan_out", false}, {"init_weights", true},          {"layers_pattern", nullptr},
                   {"layers_to_transform", nullptr}, {"modules_to_save", nullptr}};
  m.to_peft = [](const MethodSettings& s, const PeftContext&) -> Result<nlohmann::json> {
    int64_t size = s.Int("boft_block_size");
    const int64_t num = size > 0 ? 0 : s.Int("boft_block_num");
    if (size <= 0 && num <= 0) size = 4;  // PEFT's default boft_block_size
    // PEFT accepts exactly one of boft_block_size and boft_block_num non-zero.
    return nlohmann::json{{"boft_block_size", std::max<int64_t>(size, 0)},
                          {"boft_block_num", num},
                          {"boft_n_butterfly_factor", s.Int("boft_n_butterfly_factor")},
                          {"boft_dropout", s.Number("dropout")}};
  };
  m.from_peft = [](const nlohmann::json& c) -> Result<PeftSettings> {
    PeftSettings out;
    out.settings = {{"method", "boft"},
                    {"boft_block_size", c.value("boft_block_size", nlohmann::json(4))},
                    {"boft_block_num", c.value("boft_block_num", nlohmann::json(0))},
                    {"boft_n_butterfly_factor", c.value("boft_n_butterfly_factor", nlohmann::json(1))},
                    {"dropout", c.value("boft_dropout", nlohmann::json(0.0))}};
    return out;
  };
  m.budget_rows = {{{"boft_n_butterfly_factor", 1}}, {{"boft_n_butterfly_factor", 2}}};
  m.tolerances.merged = 1e-6;  // the merged weight goes through a matrix inverse
  m.components = {{ParamComponent::Kind::kRotation, nlohmann::json::object(), nullptr}};
  m.core_type = [](const MethodSettings&) { return std::string("Orthogonal"); };
  return m;
}

}  // namespace sweepd::methods
