// MakeAdapter: the one place that maps a method name in the settings JSON to its class.
#include <functional>
#include <map>
#include <stdexcept>

#include "worker/adapters/adapter.h"
#include "worker/adapters/methods.h"

namespace sweepd::adapters {

std::shared_ptr<Adapter> MakeAdapter(const nlohmann::json& settings, torch::Tensor weight, torch::Tensor bias,
                                     const LinearShape& shape) {
  using Maker = std::function<std::shared_ptr<Adapter>(const std::string&, const AdapterOptions&, torch::Tensor,
                                                       torch::Tensor, const LinearShape&)>;
  static const auto* makers = new std::map<std::string, Maker>{
      {"lora", MakeLora},       {"rslora", MakeLora}, {"dora", MakeDora},   {"pre_diag", MakePreDiag},
      {"sora", MakeSora},       {"oft", MakeOft},     {"boft", MakeBoft},   {"ia3", MakeIa3},
      {"adalora", MakeAdalora}, {"sorsa", MakeSorsa}, {"jora", MakeJora},
  };
  if (!settings.is_object() || !settings.contains("method") || !settings["method"].is_string()) {
    throw std::invalid_argument("adapter settings need a string 'method', got " + settings.dump());
  }
  std::string method = settings["method"].get<std::string>();
  AdapterOptions options(settings, method);
  if (method == "lora" && options.Bool("dora", false)) method = "dora";
  if (method == "lora" && options.Bool("use_dora", false)) method = "dora";
  auto it = makers->find(method);
  if (it == makers->end()) {
    std::string known;
    for (const auto& [name, _] : *makers) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("unknown adapter method '" + method + "'; known: " + known);
  }
  return it->second(method, options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
