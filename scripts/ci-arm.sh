#!/usr/bin/env bash
# ARM CI stage: cross-builds int8train for aarch64 (cmake/toolchain-aarch64.cmake)
# and runs the whole ctest suite under qemu-aarch64 twice: QEMU_CPU=max (SDOT:
# dispatch must pick neondot) and QEMU_CPU=cortex-a53 (no SDOT: neon; any SDOT
# executed there dies with SIGILL). The generic path runs in both (the harness
# tests every available path). Installs nothing: the packages come from
# scripts/install-deps.sh --with-arm.
# Usage: scripts/ci-arm.sh [build-dir]   (default: build/test-arm)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${1:-build/test-arm}
jobs=$(nproc)

need() { # command, what provides it
  command -v "$1" >/dev/null || { echo "ci-arm.sh: $1 not found (install $2)" >&2; exit 2; }
}
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need qemu-aarch64 qemu-user
need pkg-config pkg-config
for pc in cmocka; do
  PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --exists "$pc" || {
    echo "ci-arm.sh: arm64 $pc not found (dpkg --add-architecture arm64; apt-get install lib$pc-dev:arm64)" >&2
    exit 2
  }
done

echo "== cross build (aarch64, Release) in $dir"
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DI8T_WITH_ONEDNN=OFF -DI8T_BUILD_BENCH=OFF >/dev/null
ninja -C "$dir" -j"$jobs"

# Tests that size themselves down under qemu read I8T_TEST_SCALE=small.
run_suite() { # qemu cpu, ISA dispatch must choose
  local cpu=$1 isa=$2 t0=$SECONDS
  echo "== ctest under qemu-aarch64 -cpu $cpu (expect $isa)"
  local cli="$dir/cli/int8train"
  if [ -x "$cli" ]; then
    QEMU_CPU=$cpu qemu-aarch64 -L /usr/aarch64-linux-gnu \
      -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu "$cli" info || true
  fi
  # One test at a time: under qemu each test is CPU-bound and slow, and two
  # at once on two cores only stretch each one towards its timeout.
  (cd "$dir" && QEMU_CPU=$cpu I8T_TEST_EXPECT_ISA=$isa I8T_TEST_SCALE=small \
     ctest --output-on-failure -j1 --timeout 600)
  echo "qemu -cpu $cpu: suite took $((SECONDS - t0)) s"
}

run_suite max neondot
run_suite cortex-a53 neon

# Optional (I8T_ARM_SANITIZE=1): the suite once more, built with ASan + UBSan,
# on the SDOT core. LeakSanitizer cannot run under qemu-user: leaks are
# checked by the native ASan stage instead.
if [ "${I8T_ARM_SANITIZE:-0}" = 1 ]; then
  echo "== ASan + UBSan cross build in $dir-asan, ctest under qemu -cpu max"
  t0=$SECONDS
  cmake -S "$root" -B "$dir-asan" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DI8T_SANITIZE=ON -DI8T_WITH_ONEDNN=OFF -DI8T_BUILD_BENCH=OFF >/dev/null
  ninja -C "$dir-asan" -j"$jobs"
  (cd "$dir-asan" && QEMU_CPU=max I8T_TEST_EXPECT_ISA=neondot I8T_TEST_SCALE=small \
     ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j"$jobs" --timeout 900)
  echo "ASan + UBSan under qemu: $((SECONDS - t0)) s"
fi

# Asking for SDOT on a core without it must be refused, not obeyed (SIGILL).
echo "== INT8TRAIN_ISA=neondot on cortex-a53 must fall back to neon"
(cd "$dir" && QEMU_CPU=cortex-a53 I8T_TEST_EXPECT_ISA=neon INT8TRAIN_ISA=neondot \
   ctest --output-on-failure -R '^test_dispatch$')
echo "ci-arm.sh: all ARM suites passed"
