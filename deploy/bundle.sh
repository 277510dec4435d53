#!/usr/bin/env bash
# Builds a relocatable bundle of sweepd, sweep-worker and sweepctl for GPU nodes that
# have no Debian packages: the binaries, every shared library they need beyond the C
# runtime, and wrappers in bin/ that point the loader at the bundled libraries.
# Usage: deploy/bundle.sh [OUT_DIR]   (default dist/sweepd-bundle; tarball beside it)
# sweep-train is built on the GPU node against its own PyTorch: deploy/build-trainer.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-dist/sweepd-bundle}
build_dir=${SWEEPD_BUILD_DIR:-build}
binaries=(sweepd sweep-worker sweepctl)

if [ ! -x "$build_dir/bin/sweepd" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target "${binaries[@]}"
fi

rm -rf "$out"
mkdir -p "$out/bin" "$out/libexec" "$out/lib"
# The C runtime and loader come from the node: bundling them breaks on other glibc versions.
# libstdc++ and libgcc_s are newer on the nodes than here and stay backward compatible.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libstdc\+\+\.so|libgcc_s\.so)'
for b in "${binaries[@]}"; do
  cp "$build_dir/bin/$b" "$out/libexec/$b"
  ldd "$build_dir/bin/$b" | awk '/=> \//{print $1" "$3}' | while read -r name path; do
    if ! [[ $name =~ $skip ]]; then cp -L -n "$path" "$out/lib/$name"; fi
  done
  cat >"$out/bin/$b" <<WRAP
#!/bin/sh
here=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/libexec/$b" "\$@"
WRAP
  chmod +x "$out/bin/$b"
done
cp -r sweeps dashboards "$out/"
tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"
echo "bundle: $out ($(du -sh "$out/lib" | cut -f1) of libraries), $out.tar.gz"
