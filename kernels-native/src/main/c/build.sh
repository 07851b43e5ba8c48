#!/bin/sh
# Builds libbitplane_kernels.so into $1/<os>-<arch>/ for the Maven build (exec-maven-plugin, process-resources).
# A machine without a C compiler, or whose compiler cannot build the kernels, gets one message and no library:
# the runtime then uses the Java kernels.
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
flags="-O3 -fPIC -std=c11 -Wall -Wextra -ffp-contract=off -fno-math-errno -fvisibility=hidden"
build() {
    # compile IMPL FLAGS...: every kernel source for one instruction set, linked only if all of them compile
    compile() {
        impl=$1
        shift
        built=""
        for source in float_products quantize quantized_products xnor sign_tiles base3_tiles group_lanes attention stream_read; do
            "$cc" $flags "$@" -DBP_IMPL=$impl -c "$src/$source.c" -o "$tmp/${source}_$impl.o" || return 1
            built="$built $tmp/${source}_$impl.o"
        done
        objects="${objects:-}$built"
    }
    compile portable || return 1
    if [ "$arch" = x86_64 ]; then
        compile avx2 -mavx2 -mfma -mf16c || return 1
        # A compiler too old for AVX-512 VNNI still builds the AVX2 and portable kernels.
        if compile avx512 -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni; then
            :
        else
            echo "bitplane: $cc cannot build the AVX-512 VNNI kernels (above): building AVX2 and portable C only"
            dispatch_flags="-DBP_WITHOUT_AVX512"
        fi
    fi
    "$cc" $flags ${dispatch_flags:-} -fvisibility=default -c "$src/dispatch.c" -o "$tmp/dispatch.o" || return 1
    "$cc" -shared -o "$tmp/libbitplane_kernels.so" $objects "$tmp/dispatch.o" -lm || return 1
}
# A compiler that cannot build the kernels (too old, another architecture's flags) is reported, not fatal: the
# jar then has no library and the runtime uses the Java kernels, as without a compiler.
if ! build; then
    echo "bitplane: the native kernels did not compile with $cc (above): the runtime will use the Java kernels"
    rm -f "$out/libbitplane_kernels.so"
    exit 0
fi
mv "$tmp/libbitplane_kernels.so" "$out/libbitplane_kernels.so"
echo "bitplane: built $out/libbitplane_kernels.so"
