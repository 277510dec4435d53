// Attaching adapters by track and naming their tensors as PEFT does.
#include "worker/trainer/adapter_set.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include "worker/failures.h"

namespace sweepd::trainer {
namespace {

const std::string kPeftPrefix = "base_model.model.";

bool NamesModule(const std::string& layer, const std::string& module) {
  if (layer == module) return true;
  return layer.size() > module.size() && layer.compare(layer.size() - module.size(), module.size(), module) == 0 &&
         layer[layer.size() - module.size() - 1] == '.';
}

}  // namespace

std::vector<std::string> TrackModules(const TrackSpec& track) {
  if (!track.modules.empty()) return track.modules;
  if (track.name == "A") return {"q_proj", "v_proj"};
  if (track.name == "B") return {"all-linear"};
  throw InvalidInput("track '" + track.name + "' names no modules; give track.modules or use A or B");
}

AdapterSet AdapterSet::Attach(models::LlamaForCausalLM& model, const nlohmann::json& settings,
                              const TrackSpec& track) {
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  const std::vector<std::string> modules = TrackModules(track);
  const bool all = std::find(modules.begin(), modules.end(), "all-linear") != modules.end();
  std::set<std::string> used;
  AdapterSet set;
  for (auto& [name, linear] : model->Linears()) {
    bool selected = all;
    for (const std::string& m : modules) {
      if (m != "all-linear" && NamesModule(name, m)) {
        selected = true;
        used.insert(m);
      }
    }
    if (!selected) continue;
    LinearShape shape;
    shape.name = name;
    shape.d_out = linear->weight().size(0);
    shape.d_in = linear->weight().size(1);
    shape.has_bias = linear->bias().defined();
    shape.feed_forward = NamesModule(name, "down_proj");
    std::shared_ptr<adapters::Adapter> adapter;
    try {
      adapter = adapters::MakeAdapter(settings, linear->weight(), linear->bias(), shape);
    } catch (const std::invalid_argument& e) {
      // The adapters library refuses settings with std::invalid_argument: the job's input.
      throw InvalidInput(e.what());
    }
    linear->Attach(adapter);
    set.adapters_.push_back({name, adapter});
  }
  for (const std::string& m : modules) {
    if (m != "all-linear" && !used.count(m)) {
      throw InvalidInput("track module '" + m + "' matches no linear layer of the model");
    }
  }
  if (set.adapters_.empty()) throw InvalidInput("the track selects no layer to adapt");
  return set;
}

bool AdapterSet::CudaGraphSafe() const {
  for (const auto& a : adapters_) {
    if (!a.adapter->CudaGraphSafe()) return false;
  }
  return true;
}

int64_t AdapterSet::TrainableParameters() const {
  int64_t n = 0;
  for (const auto& a : adapters_) n += a.adapter->ParameterCount();
  return n;
}

std::map<std::string, torch::Tensor> AdapterSet::Tensors(bool with_state) const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& a : adapters_) {
    for (const auto& t : a.adapter->Trainable()) out[kPeftPrefix + a.module + "." + t.name] = t.tensor.detach();
    if (!with_state) continue;
    for (const auto& t : a.adapter->State()) out[kPeftPrefix + a.module + "." + t.name] = t.tensor.detach();
  }
  return out;
}

std::map<std::string, torch::Tensor> AdapterSet::PeftTensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& a : adapters_) {
    for (const auto& t : a.adapter->Trainable()) {
      out[kPeftPrefix + a.module + "." + t.name] = a.adapter->ToPeft(t.name, t.tensor.detach()).contiguous();
    }
  }
  return out;
}

void AdapterSet::LoadPeft(const std::map<std::string, torch::Tensor>& tensors, const std::string& file) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (const auto& a : adapters_) {
    for (const auto& t : a.adapter->Trainable()) {
      const std::string key = kPeftPrefix + a.module + "." + t.name;
      auto it = tensors.find(key);
      if (it == tensors.end()) {
        throw std::invalid_argument(file + ": missing tensor '" + key + "' (the adapter's method or target modules differ)");
      }
      // The shape PEFT's layer has for it (a pruned AdaLoRA keeps its ranks only).
      const auto needed = a.adapter->ToPeft(t.name, t.tensor.detach()).sizes().vec();
      if (it->second.sizes().vec() != needed) {
        std::ostringstream msg;
        msg << file << ": tensor '" << key << "' has shape " << it->second.sizes() << ", this base model needs "
            << c10::IntArrayRef(needed) << " (an adapter for another base model or other settings?)";
        throw std::invalid_argument(msg.str());
      }
      t.tensor.copy_(a.adapter->FromPeft(t.name, it->second));
      used.insert(key);
    }
  }
  for (const auto& [key, value] : tensors) {
    if (!used.count(key)) {
      throw std::invalid_argument(file + ": tensor '" + key + "' belongs to no adapted layer of this model and method");
    }
  }
}

void AdapterSet::Load(const std::map<std::string, torch::Tensor>& tensors, const std::string& file) {
  torch::NoGradGuard no_grad;
  for (const auto& a : adapters_) {
    auto copy = [&](const adapters::NamedTensor& t) {
      const std::string key = kPeftPrefix + a.module + "." + t.name;
      auto it = tensors.find(key);
      if (it == tensors.end()) throw InvalidInput(file + ": missing tensor '" + key + "'");
      if (it->second.sizes() != t.tensor.sizes()) {
        std::ostringstream msg;
        msg << file << ": tensor '" << key << "' has shape " << it->second.sizes() << ", the adapter needs "
            << t.tensor.sizes();
        throw InvalidInput(msg.str());
      }
      t.tensor.copy_(it->second);
    };
    for (const auto& t : a.adapter->Trainable()) copy(t);
    for (const auto& t : a.adapter->State()) copy(t);
    a.adapter->AfterLoad();  // host copies of loaded state (JORA's active pair counts)
  }
}

}  // namespace sweepd::trainer
