// SORSA (Cao 2024; the authors' layer Gunale0926/SORSA sorsalib/src/sorsa/layer.py): the
// top-r singular triplets of W trained, the residual frozen; r · (d_in + d_out + 1) parameters.
#include <algorithm>

#include "common/methods/method.h"

namespace sweepd::methods {

MethodInfo Sorsa() {
  MethodInfo m;
  m.name = "sorsa";
  m.label = "SORSA";
  m.label_keys = {"r"};
  m.options = {IntOption("r", 8, 1, "singular triplets trained"),
               NumberOption("alpha", nullptr, std::nullopt, "scale alpha / r (default: none, scale 1)"),
               NumberOption("gamma", 4e-4, 0.0, "orthogonal regulariser: gamma / lr x its gradient after clipping (0: off)"),
               NumberOption("dropout", 0.0, 0.0, "dropout on the branch's input while training")};
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    const int64_t r = s.Int("r");
    if (r > std::min(sh.d_in, sh.d_out)) {
      return Status::InvalidArgument("sorsa r " + std::to_string(r) + " exceeds min(d_in, d_out) of '" + sh.name +
                                     "'");
    }
    return r * (sh.d_in + sh.d_out + 1);
  };
  m.tensor_markers = {"sorsa_A"};
  return m;
}

}  // namespace sweepd::methods
