// MakeAdapter: settings are read through the method registry (common/methods/), whose
// registration names the tensor code that builds each method; this table maps those names
// to the constructors of the per-method files.
#include <functional>
#include <map>
#include <stdexcept>

#include "common/methods/registry.h"
#include "worker/adapters/adapter.h"
#include "worker/adapters/methods.h"

namespace sweepd::adapters {

std::shared_ptr<Adapter> MakeAdapter(const nlohmann::json& settings, torch::Tensor weight, torch::Tensor bias,
                                     const LinearShape& shape) {
  using Maker = std::function<std::shared_ptr<Adapter>(const std::string&, const AdapterOptions&, torch::Tensor,
                                                       torch::Tensor, const LinearShape&)>;
  static const auto* makers = new std::map<std::string, Maker>{
      {"lora", MakeLora}, {"dora", MakeDora}, {"pre_diag", MakePreDiag}, {"sora", MakeSora},
      {"oft", MakeOft},   {"boft", MakeBoft}, {"ia3", MakeIa3},          {"adalora", MakeAdalora},
      {"sorsa", MakeSorsa}, {"jora", MakeJora},
  };
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) throw std::invalid_argument(resolved.status().message());
  const std::string code = resolved->method().adapter(*resolved);
  auto it = makers->find(code);
  if (it == makers->end()) {
    throw std::logic_error("method '" + resolved->method().name + "' names tensor code '" + code +
                           "', which worker/adapters/factory.cc does not have");
  }
  // LoRA+ and rsLoRA keep their own name on LoRA's tensor code; lora with dora: true is DoRA.
  const std::string method = code == "dora" ? code : resolved->method().name;
  return it->second(method, AdapterOptions(*resolved), std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
