#!/usr/bin/env bash
# Installs the Debian 12 packages that sweepd's build, tests and quickstart need.
# Idempotent: packages already present are left alone; safe to run any number of times.
# Usage: deploy/install-deps.sh [--no-test-tools]
#   --no-test-tools  leave out what only the tests use (the Prometheus server, LaTeX, SLURM,
#                    Node.js, Optuna); the quickstart passes it, deploy/test.sh does not
set -euo pipefail

test_tools=1
case "${1:-}" in
  "") ;;
  --no-test-tools) test_tools=0 ;;
  *) echo "install-deps: unknown argument '$1' (usage: deploy/install-deps.sh [--no-test-tools])" >&2; exit 2 ;;
esac

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3
  libboost-dev
  prometheus-cpp-dev
  libgtest-dev libgmock-dev
  # libtorch's matrix products go through libblas.so.3; without OpenBLAS that is the netlib
  # reference BLAS, about 4x slower for the trainer on CPU.
  libtorch-dev libopenblas0-openmp
  # one job across devices: the gloo headers LibTorch's c10d headers include (worker/trainer/distributed.cc)
  libgloo-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
  libsentencepiece-dev
  # tokenizer.json: regular expressions with Unicode classes, Unicode normal forms.
  libpcre2-dev libicu-dev
)
if [ "$test_tools" = 1 ]; then
  packages+=(
    # The metrics test scrapes sweepd with a real Prometheus server.
    prometheus
    # pdflatex compiles the exported LaTeX tables in the tests (booktabs is in -recommended).
    texlive-latex-base texlive-latex-recommended
    # The SLURM test runs a private slurmctld + slurmd with munge (deploy/slurm/local-cluster.sh).
    slurm-wlm munge
    # The Optuna comparison of the coordinator benchmark (bench/coordinator/optuna/).
    python3-optuna
    # The fuzz targets (deploy/fuzz.sh): clang, whose runtime libraries carry libFuzzer.
    clang
  )
  # The Kubernetes manifests are validated with an npm package (deploy/k8s/validate/). A
  # Node.js from elsewhere (nodesource's brings its own npm) is kept.
  command -v npm >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
