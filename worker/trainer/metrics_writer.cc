// Peak memory for the step metrics.
#include "worker/trainer/metrics_writer.h"

#include <sys/resource.h>

#include "worker/compat.h"

namespace sweepd::trainer {

int64_t PeakMemoryBytes(const torch::Device& device) {
  if (device.is_cuda()) return compat::CudaPeakAllocatedBytes(device.has_index() ? device.index() : 0);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace sweepd::trainer
