#!/usr/bin/env bash
# Builds sweep-train against the LibTorch inside an installed PyTorch (CUDA or CPU), for
# GPU nodes. Needs cmake, a C++20 compiler, nlohmann-json and CLI11 headers (and, for
# SentencePiece tokenizers, libsentencepiece); gRPC and the other services are not built.
# Usage: deploy/build-trainer.sh [BUILD_DIR]   (default build-trainer-torch)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build-trainer-torch}
python=${PYTHON:-python3}
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
cuda_arch=$("$python" -c 'import torch
if torch.cuda.is_available():
    ccs = sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    print(";".join(ccs))' 2>/dev/null || true)
# Extra CMake arguments, e.g. SWEEPD_CMAKE_ARGS=-DSWEEPD_UNITY_BUILD=OFF.
read -r -a extra <<<"${SWEEPD_CMAKE_ARGS:-}"
if [ -n "$cuda_arch" ]; then
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$cuda_arch}
  command -v nvcc >/dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || export PATH=/usr/local/cuda/bin:$PATH
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix${SWEEPD_PREFIX_PATH:+;$SWEEPD_PREFIX_PATH}" \
  -DSWEEPD_BUILD_SERVICES=OFF -DSWEEPD_BUILD_TESTS=OFF "${extra[@]}"
cmake --build "$build_dir" -j "$(nproc)" --target sweep-train
echo "build-trainer: $build_dir/bin/sweep-train (LibTorch from $torch_prefix)"
