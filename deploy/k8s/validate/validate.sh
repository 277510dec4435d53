#!/usr/bin/env bash
# Validates Kubernetes manifests against the Kubernetes OpenAPI schema (validate.mjs beside
# this file). The validator's npm packages (package.json, pinned by package-lock.json) are
# installed once into ${SWEEPD_TEST_CACHE:-$HOME/.cache/sweepd}/npm/k8s-validate.
#   deploy/k8s/validate/validate.sh [MANIFEST.yaml...]   (default: deploy/k8s/*.yaml)
# Exit status: 0 valid, 1 problems (each named by file and line), 2 bad usage or no npm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "validate: node and npm are missing; run deploy/install-deps.sh" >&2
  exit 2
}
cache=${SWEEPD_TEST_CACHE:-$HOME/.cache/sweepd}/npm/k8s-validate
if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [ ! -d "$cache/node_modules" ]; then
  mkdir -p "$cache"
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >&2) || {
    echo "validate: npm ci in $cache failed" >&2
    exit 2
  }
fi
cp "$here/validate.mjs" "$cache/validate.mjs"
[ $# -gt 0 ] || set -- "$here"/../*.yaml
exec node "$cache/validate.mjs" "$@"
