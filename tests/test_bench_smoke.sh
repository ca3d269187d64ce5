#!/bin/sh
# int8train_bench end to end at tiny sizes: the host ceiling cases (their
# thread teams start, run and stop without hanging) and one GEMM case (a SIMD
# path where there is one: the portable one runs at 1 thread only) run at 1
# and 2 threads, and bench/gemm_table.py reads the JSON back with the
# ceiling rows. A machine with one usable CPU reports the 2-thread
# ceiling cases as skipped, which the test accepts.
# Usage: test_bench_smoke.sh PYTHON3 PATH/TO/int8train_bench PATH/TO/gemm_table.py
set -u
PY=$1
BENCH=$2
TABLE=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/i8t_test_bench_smoke_XXXXXX")
trap 'rm -rf "$tmp"' EXIT

impl=$("$BENCH" --benchmark_list_tests --benchmark_filter='^gemm/u8s8/[a-z0-9]+/256x256x256/t2/' |
       sed -n 's|^gemm/u8s8/\([a-z0-9]*\)/.*|\1|p' | grep -v onednn | head -1)
[ -n "$impl" ] || impl=generic
echo "GEMM path: $impl"
if ! I8T_BENCH_THREADS=1,2 "$BENCH" --benchmark_filter="^(host/|gemm/u8s8/$impl/256x256x256/)" \
    --benchmark_min_time=0.01 --benchmark_repetitions=2 --benchmark_format=json \
    --benchmark_out="$tmp/run.json" >"$tmp/out.txt" 2>&1; then
  echo "FAIL: int8train_bench exited non-zero:"; cat "$tmp/out.txt"; exit 1
fi
# Every ceiling work ran at 1 thread without error; at 2 threads it ran or
# was skipped for want of CPUs, never failed otherwise.
if ! "$PY" - "$tmp/run.json" <<'PY'
import json, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"]
bad = 0
for work in ("fma", "l2", "mem"):
    for t in (1, 2):
        name = f"host/parallel_ceiling/{work}/t{t}/real_time"
        got = [b for b in runs if b["name"] == name]
        ok = [b for b in got if not b.get("error_occurred") and b["real_time"] > 0]
        skipped = [b for b in got if b.get("error_message") == "fewer usable CPUs than threads"]
        if len(ok) != 2 and not (t > 1 and skipped):
            print(f"FAIL: {name}: {got}")
            bad += 1
        else:
            print(f"ok: {name}: {len(ok)} repetitions" + (" (skipped: one CPU)" if skipped else ""))
sys.exit(1 if bad else 0)
PY
then exit 1; fi
out=$("$PY" "$TABLE" "$tmp/run.json" 2>&1) || { echo "FAIL: gemm_table.py:"; echo "$out"; exit 1; }
if ! printf '%s\n' "$out" | grep -Eq '^\| u8s8 \| 256x256x256 \| 1 \|'; then
  echo "FAIL: gemm_table.py printed no u8s8 row:"; echo "$out"; exit 1
fi
# With two CPUs and a SIMD path the scaling table has the ceiling rows and
# the GEMM's fraction of the l2 ceiling.
if [ "$(nproc)" -ge 2 ] && [ "$impl" != generic ]; then # nproc: the CPUs this process may use
  for row in '\| host ceiling \| l2 \| - \| 2 \| [0-9.]+x \| [0-9.]+x \| 1\.00 \|' \
             "\\| u8s8 \\| 256x256x256 \\| $impl \\| 2 \\| [0-9.]+x \\| [0-9.]+x \\| [0-9.]+ \\|"; do
    if ! printf '%s\n' "$out" | grep -Eq "^$row"; then
      echo "FAIL: gemm_table.py printed no row matching '$row':"; echo "$out"; exit 1
    fi
  done
fi
echo "ok: gemm_table.py"
