// What the methods built on LoRA's low-rank branch s · B A share (Hu et al. 2021): the
// options r, alpha, dropout with PEFT's spellings, and the count r · (d_in + d_out).
#pragma once

#include <vector>

#include "common/methods/method.h"

namespace sweepd::methods {

// r (8), alpha (8, PEFT's lora_alpha default), dropout (0), their PEFT aliases, then `extra`.
inline std::vector<OptionSpec> LoraLikeOptions(std::vector<OptionSpec> extra = {}) {
  std::vector<OptionSpec> o = {
      IntOption("r", 8, 1, "rank of the low-rank branch"),
      NumberOption("alpha", 8.0, std::nullopt, "scale numerator: s = alpha / r (alpha / sqrt(r) with rsLoRA)"),
      NumberOption("dropout", 0.0, 0.0, "dropout on the branch's input while training"),
      AliasOption("lora_alpha", {"alpha"}, OptionType::kNumber),
      AliasOption("lora_dropout", {"dropout"}, OptionType::kNumber, 0.0),
  };
  o.back().max = 1.0;
  o[2].max = 1.0;
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

// r · (d_in + d_out) + extra_per_out · d_out.
inline Result<int64_t> CountLowRank(const MethodSettings& s, const LinearShape& sh, int64_t extra_per_out) {
  return s.Int("r") * (sh.d_in + sh.d_out) + extra_per_out * sh.d_out;
}

}  // namespace sweepd::methods
