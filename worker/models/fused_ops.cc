#include "worker/models/fused_ops.h"

#include <cstdlib>
#include <stdexcept>

#include "worker/models/cuda_kernels.h"

namespace sweepd::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The rotation's arithmetic as ATen operations, rounded as the kernel rounds (each product in
// x's dtype, then the sum): x [B, T, H, 2·half], tables [Bt, T, 2·half] float32.
torch::Tensor RopeAten(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, bool backward) {
  const int64_t half = x.size(-1) / 2;
  auto c = cos.unsqueeze(2).to(x.scalar_type());  // [Bt, T, 1, 2·half]
  auto s = sin.unsqueeze(2).to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto c1 = c.narrow(-1, 0, half), c2 = c.narrow(-1, half, half);
  auto s1 = s.narrow(-1, 0, half), s2 = s.narrow(-1, half, half);
  if (!backward) return torch::cat({x1 * c1 - x2 * s1, x2 * c2 + x1 * s2}, -1);
  return torch::cat({x1 * c1 + x2 * s2, x2 * c2 - x1 * s1}, -1);
}

torch::Tensor Rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, bool backward) {
  if (x.is_cuda() && FusedKernelsAllowed()) {
    auto out = torch::empty_like(x, torch::MemoryFormat::Contiguous);
    if (cuda_kernels::Rope(x, cos, sin, out, backward)) return out;
  }
  return RopeAten(x, cos, sin, backward);
}

class RopeFunction : public torch::autograd::Function<RopeFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return Rope(x, cos, sin, /*backward=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {Rope(grads[0].contiguous(), saved[0], saved[1], /*backward=*/true), torch::Tensor(), torch::Tensor()};
  }
};

class SwiGluFunction : public torch::autograd::Function<SwiGluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate, const torch::Tensor& up) {
    ctx->save_for_backward({gate, up});
    if (gate.is_cuda() && FusedKernelsAllowed()) {
      auto out = torch::empty_like(gate, torch::MemoryFormat::Contiguous);
      if (cuda_kernels::SwiGluForward(gate, up, out)) return out;
    }
    return torch::silu(gate) * up;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& gate = saved[0];
    const auto& up = saved[1];
    auto grad = grads[0].contiguous();
    if (gate.is_cuda() && FusedKernelsAllowed()) {
      auto d_gate = torch::empty_like(gate, torch::MemoryFormat::Contiguous);
      auto d_up = torch::empty_like(up, torch::MemoryFormat::Contiguous);
      if (cuda_kernels::SwiGluBackward(grad, gate, up, d_gate, d_up)) return {d_gate, d_up};
    }
    return {torch::silu_backward(grad * up, gate), grad * torch::silu(gate)};
  }
};

}  // namespace

bool FusedKernelsAllowed() {
  static const bool allowed = [] {
    const char* value = std::getenv("SWEEPD_FUSED_KERNELS");
    if (value == nullptr || std::string(value) == "1") return true;
    if (std::string(value) == "0") return false;
    throw std::invalid_argument("environment variable SWEEPD_FUSED_KERNELS: '" + std::string(value) +
                                "' is not 0 or 1");
  }();
  return allowed;
}

std::string FusedKernelStatus() {
  if (!FusedKernelsAllowed()) return "aten (SWEEPD_FUSED_KERNELS=0)";
  const std::string why = cuda_kernels::Status();
  return why.empty() ? "cuda" : "aten (" + why + ")";
}

torch::Tensor RotaryEmbedding(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t rotary = cos.size(-1), dim = x.size(-1);
  auto c = cos.to(torch::kFloat32).contiguous(), s = sin.to(torch::kFloat32).contiguous();
  if (rotary == dim) return RopeFunction::apply(x.contiguous(), c, s);
  auto rotated = RopeFunction::apply(x.narrow(-1, 0, rotary).contiguous(), c, s);
  return torch::cat({rotated, x.narrow(-1, rotary, dim - rotary)}, -1);
}

torch::Tensor SwiGlu(const torch::Tensor& gate, const torch::Tensor& up) {
  return SwiGluFunction::apply(gate.contiguous(), up.contiguous());
}

}  // namespace sweepd::models
