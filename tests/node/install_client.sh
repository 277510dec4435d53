#!/usr/bin/env bash
# Installs the independent Node.js gRPC client of the security tests (sweepd_call.mjs beside
# this file; @grpc/grpc-js and @grpc/proto-loader pinned by package-lock.json) into
# NPM_DIR/grpc-client, once, and prints the path of the installed client. Nothing is committed.
# Usage: tests/node/install_client.sh NPM_DIR
# Exit status: 0 installed, 2 no node/npm or npm ci failed.
set -euo pipefail
npm_dir=${1:?usage: install_client.sh NPM_DIR}
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "install_client: node and npm are missing; run deploy/install-deps.sh" >&2
  exit 2
}
dir=$npm_dir/grpc-client
mkdir -p "$dir"
# A lock: CTest may run the tests of this folder in parallel.
exec 9>"$dir/.lock"
flock 9
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules/@grpc/grpc-js" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || {
    echo "install_client: npm ci in $dir failed" >&2
    exit 2
  }
fi
# Node resolves the client's imports from where the script lies: beside node_modules.
cp "$here/sweepd_call.mjs" "$dir/sweepd_call.mjs.tmp.$$" && mv "$dir/sweepd_call.mjs.tmp.$$" "$dir/sweepd_call.mjs"
echo "$dir/sweepd_call.mjs"
