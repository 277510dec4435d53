// IA3 (Liu et al. 2022) as PEFT 0.21's IA3Config: a trained scale on the outputs, or on
// the inputs of the feed-forward down projection.
#include "common/methods/method.h"

namespace sweepd::methods {

MethodInfo Ia3() {
  MethodInfo m;
  m.name = "ia3";
  m.label = "IA3";
  m.options = {BoolOption("feedforward", nullptr, "scale the inputs (default: for down_proj only)")};
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    return s.Bool("feedforward", sh.feed_forward) ? sh.d_in : sh.d_out;
  };
  m.peft_type = "IA3";
  m.tensor_markers = {"ia3_l"};
  m.core_type = [](const MethodSettings&) { return std::string("Scaling"); };
  return m;
}

}  // namespace sweepd::methods
