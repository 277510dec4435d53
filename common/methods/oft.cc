// OFT (Qiu et al. 2023) as PEFT 0.21's OFTConfig: block-diagonal Cayley rotations of the
// input side, oft_block_size (or r blocks), skew parameters b(b−1)/2 per block.
#include "common/methods/method.h"
#include "common/methods/shape_checks.h"

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
  m.tensor_markers = {"oft_R"};
  m.tolerances.merged = 1e-6;  // the merged weight goes through a matrix inverse
  m.components = {{ParamComponent::Kind::kRotation, nlohmann::json::object(), nullptr}};
  m.core_type = [](const MethodSettings&) { return std::string("Orthogonal"); };
  return m;
}

}  // namespace sweepd::methods
