// The JORA adapter as it computed before its pair slots got a fixed capacity (active pairs as a
// host-sized prefix), the reference jora_selection_test.cc compares the current one with.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/adapters/adapter.h"

namespace sweepd::adapters {

// Builds the reference JORA layer from settings as MakeAdapter reads them ("method": "jora").
std::shared_ptr<Adapter> MakeEagerJoraReference(const nlohmann::json& settings, torch::Tensor weight,
                                                torch::Tensor bias, const LinearShape& shape);

}  // namespace sweepd::adapters
