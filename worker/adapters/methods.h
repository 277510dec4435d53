// Constructors of the adapter methods, one per file (lora.cc, dora.cc, ...); only
// factory.cc calls them, through MakeAdapter.
#pragma once

#include <memory>
#include <string>

#include "worker/adapters/adapter.h"

namespace sweepd::adapters {

#define SWEEPD_ADAPTER_MAKER(Name)                                                          \
  std::shared_ptr<Adapter> Name(const std::string& method, const AdapterOptions& options, \
                                torch::Tensor weight, torch::Tensor bias, const LinearShape& shape)

SWEEPD_ADAPTER_MAKER(MakeLora);     // lora, rslora, lora_plus
SWEEPD_ADAPTER_MAKER(MakeDora);     // dora (or lora with "dora": true)
SWEEPD_ADAPTER_MAKER(MakePreDiag);  // pre_diag
SWEEPD_ADAPTER_MAKER(MakeSora);     // sora
SWEEPD_ADAPTER_MAKER(MakeOft);      // oft
SWEEPD_ADAPTER_MAKER(MakeBoft);     // boft
SWEEPD_ADAPTER_MAKER(MakeIa3);      // ia3
SWEEPD_ADAPTER_MAKER(MakeAdalora);  // adalora
SWEEPD_ADAPTER_MAKER(MakeSorsa);    // sorsa
SWEEPD_ADAPTER_MAKER(MakeJora);     // jora

#undef SWEEPD_ADAPTER_MAKER

}  // namespace sweepd::adapters
