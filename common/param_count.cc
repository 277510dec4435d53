// Closed-form trainable-parameter counts: the settings are read through the method
// registry (common/methods/), whose method files hold one formula each, following the
// tensor shapes of the reference implementations. The trainer's adapters create exactly
// these tensors; tests/adapters compares the two.
#include "common/param_count.h"

#include "common/methods/registry.h"

namespace sweepd {

Result<int64_t> CountTrainableParameters(const nlohmann::json& settings, const LinearShape& shape) {
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) return resolved.status();
  return resolved->method().count(*resolved, shape);
}

}  // namespace sweepd
