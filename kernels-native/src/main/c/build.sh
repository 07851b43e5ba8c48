#!/bin/sh
# Builds libbitplane_kernels.so into $1/<os>-<arch>/ for the Maven build (exec-maven-plugin, process-classes).
# A machine without a C compiler skips the build with one message: the runtime then uses the Java kernels.
set -eu
out_root=$1
src=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-gcc}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "bitplane: no C compiler ($cc) found: the native kernels are not built; the runtime will use the Java kernels"
    exit 0
fi
os=$(uname -s | tr '[:upper:]' '[:lower:]')
arch=$(uname -m)
case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac
out="$out_root/$os-$arch"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -ffp-contract=off: the int8 paths must combine group sums in float exactly as Java does (no fused multiply-add).
flags="-O3 -fPIC -std=c11 -Wall -Wextra -Werror -ffp-contract=off -fno-math-errno -fvisibility=hidden"
"$cc" $flags -DBP_IMPL=portable -c "$src/kernels.c" -o "$tmp/kernels_portable.o"
objects="$tmp/kernels_portable.o"
if [ "$arch" = x86_64 ]; then
    "$cc" $flags -mavx2 -mfma -mf16c -DBP_IMPL=avx2 -c "$src/kernels.c" -o "$tmp/kernels_avx2.o"
    objects="$objects $tmp/kernels_avx2.o"
fi
"$cc" $flags -fvisibility=default -c "$src/dispatch.c" -o "$tmp/dispatch.o"
"$cc" -shared -o "$out/libbitplane_kernels.so" $objects "$tmp/dispatch.o"
echo "bitplane: built $out/libbitplane_kernels.so"
