// NVRTC-compiled kernels for the rotary embedding and SwiGLU (worker/models/cuda_kernels.h),
// loaded and launched through the CUDA runtime's library API (cudaLibraryLoadData, CUDA 12+),
// so that the binary needs neither the driver library at link time nor ATen's private headers.
// The arithmetic mirrors ATen's unfused kernels step by step: bfloat16 values are widened to
// float, every product is rounded back to the tensor's dtype where the unfused chain stores a
// tensor, and the products use explicit round-to-nearest intrinsics so that the compiler cannot
// contract them into fused multiply-adds (which the unfused chain cannot do across kernels).
#include "worker/models/cuda_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#if defined(SWEEPD_HAVE_NVRTC)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <nvrtc.h>
#endif

namespace sweepd::models::cuda_kernels {
namespace {

#if defined(SWEEPD_HAVE_NVRTC)

// bfloat16 is stored as unsigned short and converted as c10::BFloat16 does (round to nearest
// even, NaN to 0x7fc0), so no CUDA header is needed at run time.
constexpr const char* kSource = R"CUDA(
struct F32 {
  typedef float storage;
  static __device__ __forceinline__ float load(float v) { return v; }
  static __device__ __forceinline__ float store(float v) { return v; }
};
struct BF16 {
  typedef unsigned short storage;
  static __device__ __forceinline__ float load(unsigned short v) {
    return __uint_as_float(((unsigned int)v) << 16);
  }
  static __device__ __forceinline__ unsigned short store(float f) {
    if (f != f) return (unsigned short)0x7fc0;
    unsigned int u = __float_as_uint(f);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
  }
};
template <class T> __device__ __forceinline__ float round_to(float v) { return T::load(T::store(v)); }

// V consecutive elements per thread, one 16-byte load or store each (V = 8 for bfloat16, 4 for
// float32): the host only launches where the sizes divide and the pointers are aligned.
template <class S, int V> struct alignas(16) Pack { S v[V]; };

// One thread per V rotated pairs (j..j+V-1, j+half..j+half+V-1) of one head of one token. Forward:
//   out1 = x1 c1 - x2 s1, out2 = x2 c2 + x1 s2   (x c + rotate_half(x) s, rotate_half = [-x2, x1])
// backward (x is the output gradient g):
//   dx1 = g1 c1 + g2 s2, dx2 = g2 c2 - g1 s1
template <class T, int V>
__device__ void rope(const typename T::storage* x, const float* cos, const float* sin,
                     typename T::storage* out, unsigned int units, unsigned int heads, unsigned int half,
                     unsigned int seq, unsigned int table_batch_stride, int backward) {
  typedef Pack<typename T::storage, V> P;
  const unsigned int groups = half / V;
  for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < units; i += gridDim.x * blockDim.x) {
    const unsigned int j = (i % groups) * V, r = i / groups;  // r = (b * seq + t) * heads + h
    const unsigned int bt = r / heads, t = bt % seq, b = bt / seq;
    const unsigned int tab = b * table_batch_stride + t * 2u * half + j;
    const unsigned int at = r * 2u * half + j;
    const P a = *reinterpret_cast<const P*>(x + at);
    const P c = *reinterpret_cast<const P*>(x + at + half);
    P o1, o2;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float c1 = round_to<T>(cos[tab + k]), c2 = round_to<T>(cos[tab + half + k]);
      const float s1 = round_to<T>(sin[tab + k]), s2 = round_to<T>(sin[tab + half + k]);
      const float x1 = T::load(a.v[k]), x2 = T::load(c.v[k]);
      float r1, r2;
      if (!backward) {
        r1 = __fsub_rn(round_to<T>(__fmul_rn(x1, c1)), round_to<T>(__fmul_rn(x2, s1)));
        r2 = __fadd_rn(round_to<T>(__fmul_rn(x2, c2)), round_to<T>(__fmul_rn(x1, s2)));
      } else {
        r1 = __fadd_rn(round_to<T>(__fmul_rn(x1, c1)), round_to<T>(__fmul_rn(x2, s2)));
        r2 = __fsub_rn(round_to<T>(__fmul_rn(x2, c2)), round_to<T>(__fmul_rn(x1, s1)));
      }
      o1.v[k] = T::store(r1);
      o2.v[k] = T::store(r2);
    }
    *reinterpret_cast<P*>(out + at) = o1;
    *reinterpret_cast<P*>(out + at + half) = o2;
  }
}

// ATen's silu: x / (1 + exp(-x)) in float; its backward: dy s (1 + x (1 - s)), s = sigmoid(x).
template <class T, int V>
__device__ void swiglu_forward(const typename T::storage* gate, const typename T::storage* up,
                               typename T::storage* out, unsigned int units) {
  typedef Pack<typename T::storage, V> P;
  for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < units; i += gridDim.x * blockDim.x) {
    const P g = reinterpret_cast<const P*>(gate)[i], u = reinterpret_cast<const P*>(up)[i];
    P o;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float x = T::load(g.v[k]);
      const float a = round_to<T>(x / (1.0f + expf(-x)));
      o.v[k] = T::store(__fmul_rn(a, T::load(u.v[k])));
    }
    reinterpret_cast<P*>(out)[i] = o;
  }
}

template <class T, int V>
__device__ void swiglu_backward(const typename T::storage* grad, const typename T::storage* gate,
                                const typename T::storage* up, typename T::storage* d_gate,
                                typename T::storage* d_up, unsigned int units) {
  typedef Pack<typename T::storage, V> P;
  for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < units; i += gridDim.x * blockDim.x) {
    const P dy = reinterpret_cast<const P*>(grad)[i], g = reinterpret_cast<const P*>(gate)[i],
            u = reinterpret_cast<const P*>(up)[i];
    P dg, du;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float y = T::load(dy.v[k]), x = T::load(g.v[k]);
      const float e = expf(-x);
      const float a = round_to<T>(x / (1.0f + e));
      du.v[k] = T::store(__fmul_rn(y, a));
      const float da = round_to<T>(__fmul_rn(y, T::load(u.v[k])));
      const float s = 1.0f / (1.0f + e);
      dg.v[k] = T::store(da * s * (1.0f + x * (1.0f - s)));
    }
    reinterpret_cast<P*>(d_gate)[i] = dg;
    reinterpret_cast<P*>(d_up)[i] = du;
  }
}

#define SWEEPD_KERNELS(NAME, T, V)                                                                        \
  extern "C" __global__ void rope_##NAME(const T::storage* x, const float* cos, const float* sin,       \
                                         T::storage* out, unsigned int units, unsigned int heads,        \
                                         unsigned int half, unsigned int seq,                            \
                                         unsigned int table_batch_stride, int backward) {                \
    rope<T, V>(x, cos, sin, out, units, heads, half, seq, table_batch_stride, backward);                 \
  }                                                                                                      \
  extern "C" __global__ void swiglu_forward_##NAME(const T::storage* gate, const T::storage* up,        \
                                                   T::storage* out, unsigned int units) {                \
    swiglu_forward<T, V>(gate, up, out, units);                                                          \
  }                                                                                                      \
  extern "C" __global__ void swiglu_backward_##NAME(const T::storage* grad, const T::storage* gate,     \
                                                    const T::storage* up, T::storage* d_gate,            \
                                                    T::storage* d_up, unsigned int units) {              \
    swiglu_backward<T, V>(grad, gate, up, d_gate, d_up, units);                                          \
  }
SWEEPD_KERNELS(f32, F32, 4)
SWEEPD_KERNELS(bf16, BF16, 8)
)CUDA";

struct Functions {
  cudaKernel_t rope = nullptr, swiglu_forward = nullptr, swiglu_backward = nullptr;
};

struct DeviceModule {
  bool failed = false;
  Functions f32, bf16;
};

std::mutex modules_mutex;
std::map<int, DeviceModule> modules;  // by device index, guarded by modules_mutex
std::string failure;                  // why a device's kernels could not be built, guarded too
std::atomic<bool> any_ran{false};

// Compiles the source for `device`'s architecture (a cubin; PTX for the driver to finish where
// this NVRTC does not know the architecture) and loads it. Returns "" or why it failed.
std::string Build(int device, DeviceModule& m) {
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device);
  const std::string arch = std::to_string(prop->major) + std::to_string(prop->minor);
  std::vector<char> image;
  std::string last_error;
  for (const bool cubin : {true, false}) {
    nvrtcProgram program = nullptr;
    nvrtcResult r = nvrtcCreateProgram(&program, kSource, "sweepd_fused_kernels.cu", 0, nullptr, nullptr);
    if (r != NVRTC_SUCCESS) return std::string("nvrtcCreateProgram: ") + nvrtcGetErrorString(r);
    const std::string arch_flag = std::string("--gpu-architecture=") + (cubin ? "sm_" : "compute_") + arch;
    const char* options[] = {"--std=c++17", arch_flag.c_str()};
    r = nvrtcCompileProgram(program, 2, options);
    if (r != NVRTC_SUCCESS) {
      size_t log_size = 0;
      nvrtcGetProgramLogSize(program, &log_size);
      std::string log(log_size, '\0');
      if (log_size > 0) nvrtcGetProgramLog(program, log.data());
      last_error = "NVRTC (" + arch_flag + "): " + nvrtcGetErrorString(r) + ": " + log.substr(0, 400);
      nvrtcDestroyProgram(&program);
      continue;
    }
    size_t size = 0;
    r = cubin ? nvrtcGetCUBINSize(program, &size) : nvrtcGetPTXSize(program, &size);
    if (r == NVRTC_SUCCESS) {
      image.resize(size);
      r = cubin ? nvrtcGetCUBIN(program, image.data()) : nvrtcGetPTX(program, image.data());
    }
    nvrtcDestroyProgram(&program);
    if (r == NVRTC_SUCCESS) break;
    last_error = std::string("NVRTC: ") + nvrtcGetErrorString(r);
    image.clear();
  }
  if (image.empty()) return last_error;
  cudaLibrary_t library = nullptr;
  cudaError_t e = cudaLibraryLoadData(&library, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
  if (e != cudaSuccess) return std::string("cudaLibraryLoadData: ") + cudaGetErrorString(e);
  for (auto [suffix, functions] : {std::pair<const char*, Functions*>{"f32", &m.f32}, {"bf16", &m.bf16}}) {
    for (auto [name, slot] : {std::pair<std::string, cudaKernel_t*>{"rope_", &functions->rope},
                              {"swiglu_forward_", &functions->swiglu_forward},
                              {"swiglu_backward_", &functions->swiglu_backward}}) {
      e = cudaLibraryGetKernel(slot, library, (name + suffix).c_str());
      if (e != cudaSuccess) return "cudaLibraryGetKernel " + name + suffix + ": " + cudaGetErrorString(e);
    }
  }
  return "";
}

// The kernels for `t`'s device and dtype, built on first use; null where they cannot run.
const Functions* For(const torch::Tensor& t) {
  if (!t.is_cuda() || (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kBFloat16)) return nullptr;
  const int device = t.device().index();
  std::lock_guard<std::mutex> lock(modules_mutex);
  auto [it, inserted] = modules.try_emplace(device);
  DeviceModule& m = it->second;
  if (inserted) {
    c10::cuda::CUDAGuard guard(t.device());
    const std::string error = Build(device, m);
    if (!error.empty()) {
      m.failed = true;
      failure = "fused kernels unavailable: " + error;
      TORCH_WARN("sweep-train: ", error, "; the rotary embedding and SwiGLU run as ATen operations");
    }
  }
  if (m.failed) return nullptr;
  return t.scalar_type() == torch::kFloat32 ? &m.f32 : &m.bf16;
}

bool Fits32(int64_t n) { return n > 0 && n < std::numeric_limits<int32_t>::max(); }

// Elements per 16-byte access, and whether every tensor's data starts on a 16-byte boundary.
int64_t Lanes(const torch::Tensor& t) { return 16 / static_cast<int64_t>(t.element_size()); }

bool Aligned(std::initializer_list<const torch::Tensor*> tensors) {
  for (const torch::Tensor* t : tensors) {
    if (reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) return false;
  }
  return true;
}

bool Launch(const torch::Tensor& like, cudaKernel_t kernel, unsigned int n, void** args) {
  c10::cuda::CUDAGuard guard(like.device());
  constexpr unsigned int kThreads = 256;
  const unsigned int blocks = std::min<unsigned int>((n + kThreads - 1) / kThreads, 1u << 20);
  const cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks), dim3(kThreads), args, 0,
                                         at::cuda::getCurrentCUDAStream(like.device().index()).stream());
  TORCH_CHECK(e == cudaSuccess, "sweep-train: launching a fused kernel failed: ", cudaGetErrorString(e));
  any_ran.store(true);
  return true;
}

#endif  // SWEEPD_HAVE_NVRTC

}  // namespace

bool Rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor& out,
          bool backward) {
#if defined(SWEEPD_HAVE_NVRTC)
  const Functions* f = For(x);
  const int64_t v = Lanes(x);
  if (f == nullptr || x.dim() != 4 || !Fits32(x.numel()) || (x.size(3) / 2) % v != 0 ||
      !Aligned({&x, &cos, &sin, &out})) {
    return false;
  }
  unsigned int units = static_cast<unsigned int>(x.numel() / 2 / v);
  unsigned int heads = static_cast<unsigned int>(x.size(2));
  unsigned int half = static_cast<unsigned int>(x.size(3) / 2);
  unsigned int seq = static_cast<unsigned int>(x.size(1));
  unsigned int table_batch_stride = cos.size(0) == 1 ? 0u : static_cast<unsigned int>(cos.stride(0));
  int is_backward = backward ? 1 : 0;
  const void* xp = x.data_ptr();
  const void* cp = cos.data_ptr();
  const void* sp = sin.data_ptr();
  void* op = out.data_ptr();
  void* args[] = {&xp, &cp, &sp, &op, &units, &heads, &half, &seq, &table_batch_stride, &is_backward};
  return Launch(x, f->rope, units, args);
#else
  (void)x, (void)cos, (void)sin, (void)out, (void)backward;
  return false;
#endif
}

bool SwiGluForward(const torch::Tensor& gate, const torch::Tensor& up, torch::Tensor& out) {
#if defined(SWEEPD_HAVE_NVRTC)
  const Functions* f = For(gate);
  if (f == nullptr || !Fits32(gate.numel()) || gate.numel() % Lanes(gate) != 0 || !Aligned({&gate, &up, &out})) {
    return false;
  }
  unsigned int n = static_cast<unsigned int>(gate.numel() / Lanes(gate));
  const void* gp = gate.data_ptr();
  const void* up_ = up.data_ptr();
  void* op = out.data_ptr();
  void* args[] = {&gp, &up_, &op, &n};
  return Launch(gate, f->swiglu_forward, n, args);
#else
  (void)gate, (void)up, (void)out;
  return false;
#endif
}

bool SwiGluBackward(const torch::Tensor& grad, const torch::Tensor& gate, const torch::Tensor& up,
                    torch::Tensor& d_gate, torch::Tensor& d_up) {
#if defined(SWEEPD_HAVE_NVRTC)
  const Functions* f = For(gate);
  if (f == nullptr || !Fits32(gate.numel()) || gate.numel() % Lanes(gate) != 0 ||
      !Aligned({&grad, &gate, &up, &d_gate, &d_up})) {
    return false;
  }
  unsigned int n = static_cast<unsigned int>(gate.numel() / Lanes(gate));
  const void* dp = grad.data_ptr();
  const void* gp = gate.data_ptr();
  const void* up_ = up.data_ptr();
  void* dgp = d_gate.data_ptr();
  void* dup = d_up.data_ptr();
  void* args[] = {&dp, &gp, &up_, &dgp, &dup, &n};
  return Launch(gate, f->swiglu_backward, n, args);
#else
  (void)grad, (void)gate, (void)up, (void)d_gate, (void)d_up;
  return false;
#endif
}

std::string Status() {
#if defined(SWEEPD_HAVE_NVRTC)
  if (any_ran.load()) return "";
  std::lock_guard<std::mutex> lock(modules_mutex);
  return failure.empty() ? "no fused kernel has run" : failure;
#else
  return "this sweep-train was built without NVRTC (a CPU LibTorch, or no nvrtc.h)";
#endif
}

}  // namespace sweepd::models::cuda_kernels
