// Closed-form trainable-parameter counts, one formula per method, following
// ../shared/methods.md and the tensor shapes of the reference files (PEFT 0.21, the
// SORA/SORSA authors' layers, the public JORA implementation). The trainer's adapters
// create exactly these tensors; tests/adapters compares the two.
#include "common/param_count.h"

#include <algorithm>
#include <functional>
#include <map>

namespace sweepd {
namespace {

using nlohmann::json;

// Reads an integer option, `fallback` when absent; an error names the field.
Result<int64_t> IntOption(const json& s, const std::string& key, int64_t fallback) {
  if (!s.contains(key) || s[key].is_null()) return fallback;
  const json& v = s[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(v.get<int64_t>())) {
    return v.get<int64_t>();
  }
  return Status::InvalidArgument("adapter option '" + key + "' must be an integer, got " + v.dump());
}

Result<int64_t> PositiveOption(const json& s, const std::string& key, int64_t fallback) {
  Result<int64_t> v = IntOption(s, key, fallback);
  if (!v.ok()) return v;
  if (*v <= 0) {
    return Status::InvalidArgument("adapter option '" + key + "' must be positive, got " +
                                   std::to_string(*v));
  }
  return v;
}

std::string StringOption(const json& s, const std::string& key, const std::string& fallback) {
  if (!s.contains(key) || !s[key].is_string()) return fallback;
  return s[key].get<std::string>();
}

Status Divides(int64_t block, int64_t dim, const std::string& what, const LinearShape& shape) {
  if (block <= 0 || dim % block != 0) {
    return Status::InvalidArgument(what + " " + std::to_string(block) + " does not divide d_in " +
                                   std::to_string(dim) + " of layer '" + shape.name +
                                   "'; pick a divisor of " + std::to_string(dim));
  }
  return Status::Ok();
}

using Counter = std::function<Result<int64_t>(const json&, const LinearShape&)>;

Result<int64_t> LoraLike(const json& s, const LinearShape& sh, int64_t extra_per_out) {
  Result<int64_t> r = PositiveOption(s, "r", 8);
  if (!r.ok()) return r;
  return *r * (sh.d_in + sh.d_out) + extra_per_out * sh.d_out;
}

Result<int64_t> CountSora(const json& s, const LinearShape& sh) {
  Result<int64_t> r = PositiveOption(s, "r", 8);
  if (!r.ok()) return r;
  Result<int64_t> rp = PositiveOption(s, "r_p", 4);  // the SORA authors' default
  if (!rp.ok()) return rp;
  return *r * (sh.d_in + sh.d_out) + 2 * *rp * sh.d_out + sh.d_out;
}

Result<int64_t> CountOft(const json& s, const LinearShape& sh) {
  Result<int64_t> n = IntOption(s, "oft_block_size", 0);
  if (!n.ok()) return n;
  Result<int64_t> blocks = IntOption(s, "r", 0);
  if (!blocks.ok()) return blocks;
  int64_t size = *n;
  if (size <= 0) {
    if (*blocks <= 0) size = 32;  // PEFT's default oft_block_size
    else {
      SWEEPD_RETURN_IF_ERROR(Divides(*blocks, sh.d_in, "oft r (number of blocks)", sh));
      size = sh.d_in / *blocks;
    }
  }
  SWEEPD_RETURN_IF_ERROR(Divides(size, sh.d_in, "oft_block_size", sh));
  return (sh.d_in / size) * (size * (size - 1) / 2);
}

Result<int64_t> CountBoft(const json& s, const LinearShape& sh) {
  Result<int64_t> b = IntOption(s, "boft_block_size", 0);
  if (!b.ok()) return b;
  Result<int64_t> num = IntOption(s, "boft_block_num", 0);
  if (!num.ok()) return num;
  Result<int64_t> factors = PositiveOption(s, "boft_n_butterfly_factor", 1);
  if (!factors.ok()) return factors;
  int64_t size = *b;
  if (size <= 0 && *num <= 0) size = 4;  // PEFT's default boft_block_size
  if (size <= 0) {
    SWEEPD_RETURN_IF_ERROR(Divides(*num, sh.d_in, "boft_block_num", sh));
    size = sh.d_in / *num;
  }
  SWEEPD_RETURN_IF_ERROR(Divides(size, sh.d_in, "boft_block_size", sh));
  // PEFT's butterfly needs d_in divisible by b·2^(factors−1) and even sizes beyond one factor.
  const int64_t span = size << (*factors - 1);
  if (*factors > 1 && (sh.d_in % span != 0 || size % 2 != 0 || (sh.d_in / size) % 2 != 0)) {
    return Status::InvalidArgument("boft_block_size " + std::to_string(size) + " with " +
                                   std::to_string(*factors) + " butterfly factors does not fit d_in " +
                                   std::to_string(sh.d_in) + " of layer '" + sh.name +
                                   "' (needs an even block size and d_in divisible by " +
                                   std::to_string(span) + ")");
  }
  return *factors * (sh.d_in / size) * size * size + sh.d_out;
}

Result<int64_t> CountIa3(const json& s, const LinearShape& sh) {
  bool ff = sh.feed_forward;
  if (s.contains("feedforward") && s["feedforward"].is_boolean()) ff = s["feedforward"].get<bool>();
  return ff ? sh.d_in : sh.d_out;
}

Result<int64_t> CountAdalora(const json& s, const LinearShape& sh) {
  Result<int64_t> r = PositiveOption(s, "init_r", s.contains("r") ? s["r"].get<int64_t>() : 12);
  if (!r.ok()) return r;
  return *r * (sh.d_in + sh.d_out + 1);
}

Result<int64_t> CountSorsa(const json& s, const LinearShape& sh) {
  Result<int64_t> r = PositiveOption(s, "r", 8);
  if (!r.ok()) return r;
  if (*r > std::min(sh.d_in, sh.d_out)) {
    return Status::InvalidArgument("sorsa r " + std::to_string(*r) + " exceeds min(d_in, d_out) of '" +
                                   sh.name + "'");
  }
  return *r * (sh.d_in + sh.d_out + 1);
}

Result<int64_t> CountJora(const json& s, const LinearShape& sh) {
  Result<int64_t> sl = IntOption(s, "S_L", 32);
  if (!sl.ok()) return sl;
  Result<int64_t> sr = IntOption(s, "S_R", 32);
  if (!sr.ok()) return sr;
  Result<int64_t> k = IntOption(s, "k", 8);
  if (!k.ok()) return k;
  if (*sl < 0 || *sr < 0 || *k < 0) return Status::InvalidArgument("jora S_L, S_R and k must be >= 0");
  if (2 * *sl > sh.d_out || 2 * *sr > sh.d_in) {
    return Status::InvalidArgument("jora needs 2·S_L <= d_out and 2·S_R <= d_in (disjoint pairs) on '" +
                                   sh.name + "'");
  }
  const std::string sided = StringOption(s, "single_sided", "none");
  if (sided != "none" && sided != "left" && sided != "right") {
    return Status::InvalidArgument("jora single_sided must be none|left|right, got '" + sided + "'");
  }
  int64_t count = (sided == "right" ? 0 : *sl) + (sided == "left" ? 0 : *sr);
  const int64_t m = std::min(sh.d_in, sh.d_out);
  const std::string core = StringOption(s, "core", "diag");
  if (core == "diag") {
    count += m;
  } else if (core == "block") {
    Result<int64_t> b = PositiveOption(s, "block_size", 4);
    if (!b.ok()) return b;
    count += (m / *b) * *b * *b + (m % *b);
  } else if (core == "lowrank") {
    Result<int64_t> r = PositiveOption(s, "lowrank_r", 8);
    if (!r.ok()) return r;
    count += *r * (sh.d_in + sh.d_out);
  } else if (core == "selective_diag") {
    if (sh.d_in != sh.d_out) {
      return Status::InvalidArgument("jora core selective_diag needs a square layer; '" + sh.name +
                                     "' is " + std::to_string(sh.d_out) + "x" + std::to_string(sh.d_in));
    }
    count += 2 * *k;
  } else {
    return Status::InvalidArgument("jora core must be diag|block|lowrank|selective_diag, got '" + core +
                                   "'");
  }
  const std::string mag = StringOption(s, "magnitude", "oer_softmax");
  if (mag == "ecd_tanh" || mag == "oer_softmax") {
    count += sh.d_out;
  } else if (mag != "none") {
    return Status::InvalidArgument("jora magnitude must be none|ecd_tanh|oer_softmax, got '" + mag + "'");
  }
  return count;
}

const std::map<std::string, Counter>& Counters() {
  static const auto* table = new std::map<std::string, Counter>{
      {"lora", [](const json& s, const LinearShape& sh) {
         return LoraLike(s, sh, s.value("dora", false) ? 1 : 0);
       }},
      {"rslora", [](const json& s, const LinearShape& sh) { return LoraLike(s, sh, 0); }},
      {"dora", [](const json& s, const LinearShape& sh) { return LoraLike(s, sh, 1); }},
      {"pre_diag", [](const json& s, const LinearShape& sh) { return LoraLike(s, sh, 1); }},
      {"sora", CountSora},
      {"oft", CountOft},
      {"boft", CountBoft},
      {"ia3", CountIa3},
      {"adalora", CountAdalora},
      {"sorsa", CountSorsa},
      {"jora", CountJora},
  };
  return *table;
}

}  // namespace

Result<int64_t> CountTrainableParameters(const nlohmann::json& settings, const LinearShape& shape) {
  if (!settings.is_object() || !settings.contains("method") || !settings["method"].is_string()) {
    return Status::InvalidArgument("adapter settings need a string 'method', got " + settings.dump());
  }
  const std::string method = settings["method"].get<std::string>();
  auto it = Counters().find(method);
  if (it == Counters().end()) {
    std::string known;
    for (const auto& [name, _] : Counters()) known += (known.empty() ? "" : ", ") + name;
    return Status::InvalidArgument("unknown adapter method '" + method + "'; known: " + known);
  }
  try {
    return it->second(settings, shape);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument("bad option in adapter settings " + settings.dump() + ": " + e.what());
  }
}

}  // namespace sweepd
