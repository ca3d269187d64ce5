#!/usr/bin/env bash
# The whole int8train test suite (the README's test command, and what CI runs):
#   native   release build, every kernel path this CPU has (ctest)
#   asan     the same tests under AddressSanitizer + UBSan
#   emu      AVX-512 VNNI kernels built against SIMDe and tested on any AVX2 CPU
#   arm      aarch64 cross build, tests under qemu-aarch64 with and without SDOT
# I8T_TEST_STAGES="native asan" runs a subset. Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stages=${I8T_TEST_STAGES:-native asan emu arm}
jobs=$(nproc)

scripts/install-deps.sh $([[ " $stages " == *" arm "* ]] && echo --with-arm)

banner() { printf '\n==== %s ====\n' "$*"; }

run_ctest() { # build dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
  ninja -C "$dir" -j"$jobs"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

start=$SECONDS
for stage in $stages; do
  t0=$SECONDS
  case $stage in
    native) banner "native build: ctest"
            run_ctest build/test-native -DCMAKE_BUILD_TYPE=Release ;;
    asan)   banner "AddressSanitizer + UBSan build: ctest"
            ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
              run_ctest build/test-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DI8T_SANITIZE=ON -DI8T_BUILD_BENCH=OFF ;;
    emu)    banner "AVX-512 VNNI through SIMDe emulation: ctest"
            run_ctest build/test-avx512emu -DCMAKE_BUILD_TYPE=Release -DI8T_AVX512_EMULATION=ON -DI8T_BUILD_BENCH=OFF ;;
    arm)    banner "aarch64 cross build under qemu-aarch64"
            scripts/ci-arm.sh build/test-arm ;;
    *) echo "test.sh: unknown stage '$stage'" >&2; exit 2 ;;
  esac
  echo "stage $stage: $((SECONDS - t0)) s"
done
banner "all stages passed ($stages) in $((SECONDS - start)) s"
