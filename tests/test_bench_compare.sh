#!/bin/sh
# scripts/bench_compare.py on synthetic Google Benchmark JSON pairs: a clear
# regression exits 1 and is named, equal runs and a speed-up exit 0, and a
# missing, malformed or foreign file (or no common case) exits 2.
# Usage: test_bench_compare.sh PYTHON3 PATH/TO/bench_compare.py
set -u
PY=$1
CMP=$2
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/i8t_test_bench_compare_XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# write_run FILE "NAME:T1,T2,..;NAME:T1,.." [UNIT]: one iteration entry per
# timing (as --benchmark_repetitions writes them) plus the aggregate rows a
# real run has, which the script must ignore.
write_run() {
  "$PY" - "$1" "$2" "${3:-ms}" <<'EOF'
import json, sys
path, spec, unit = sys.argv[1], sys.argv[2], sys.argv[3]
benchmarks = []
for case in spec.split(";"):
    name, times = case.split(":")
    ts = [float(t) for t in times.split(",")]
    for i, t in enumerate(ts):
        benchmarks.append({"name": name + "/real_time", "run_name": name + "/real_time",
                           "run_type": "iteration", "repetitions": len(ts),
                           "repetition_index": i, "iterations": 10, "real_time": t,
                           "cpu_time": t, "time_unit": unit})
    # Aggregates (mean, median, stddev) carry the same run_name: not timings.
    for agg in ("mean", "median", "stddev"):
        benchmarks.append({"name": name + "/real_time_" + agg, "run_name": name + "/real_time",
                           "run_type": "aggregate", "aggregate_name": agg,
                           "real_time": 1e9, "cpu_time": 1e9, "time_unit": unit})
json.dump({"context": {"num_cpus": 2}, "benchmarks": benchmarks}, open(path, "w"))
EOF
}

# expect CODE REGEX ARGS...: bench_compare.py ARGS exits with CODE and prints
# something matching REGEX (stdout and stderr together).
expect() {
  code=$1 regex=$2
  shift 2
  out=$("$PY" "$CMP" "$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$code" ] || ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
    echo "FAIL: bench_compare.py $* -> exit $rc (want $code, output matching '$regex'):"
    printf '%s\n' "$out" | head -20
    fails=$((fails + 1))
  else
    echo "ok: exit $rc: $(printf '%s\n' "$out" | grep -E -m1 -- "$regex")"
  fi
}

A=conv/fwd/avx2/x
B=bn/onednn_f32/y
base="$A:10.0,10.2,9.9,10.1,10.3;$B:5.0,5.1,4.9,5.2,5.0"
write_run "$tmp/base.json" "$base"
# The same timings in another order and unit (us): no change at all.
write_run "$tmp/equal.json" "$A:10100,9900,10300,10000,10200;$B:5000,5200,4900,5100,5000" us
# Run-to-run jitter of a few percent: not a regression.
write_run "$tmp/jitter.json" "$A:10.4,10.1,10.6,9.8,10.3;$B:5.2,4.9,5.1,5.3,5.0"
# A clearly slower: +50 %, every timing above every baseline timing.
write_run "$tmp/slower.json" "$A:15.0,15.3,14.8,15.1,15.5;$B:5.0,5.1,4.9,5.2,5.0"
# A clearly faster: not a regression.
write_run "$tmp/faster.json" "$A:6.0,6.1,5.9,6.2,6.0;$B:5.0,5.1,4.9,5.2,5.0"
# +50 % on the median but overlapping timings (one noisy run): the U test
# does not call it a difference.
write_run "$tmp/noisy.json" "$A:9.0,15.0,16.0,9.5,15.5;$B:5.0,5.1,4.9,5.2,5.0"
# A slower by more than 10 % but less than the 30 % threshold given below.
write_run "$tmp/slight.json" "$A:12.0,12.2,11.9,12.1,12.3;$B:5.0,5.1,4.9,5.2,5.0"
# A's median +40 % but its best as fast as ever (a run hit by other work):
# SLOWER on medians, the same with --stat best.
write_run "$tmp/slowtail.json" "$A:10.25,14.0,15.0,14.5,15.2;$B:5.0,5.1,4.9,5.2,5.0"
# No case in common with the baseline.
write_run "$tmp/other.json" "gemm/u8s8/avx2/z:1,2,3,4,5"
# A GEMM case of a run from before the /t<threads> suffix matches its /t1
# name (the baseline's single-threaded GEMMs), not the /t2 one.
G=gemm/u8s8/avx2/3136x64x576
write_run "$tmp/gemm_old.json" "$G:10.0,10.2,9.9,10.1,10.3"
write_run "$tmp/gemm_t1_slower.json" "$G/t1:15.0,15.3,14.8,15.1,15.5;$G/t2:5.0,5.1,4.9,5.2,5.0"
write_run "$tmp/gemm_t2_only.json" "$G/t2:15.0,15.3,14.8,15.1,15.5"
# The host/ control case slower (the machine was busier) beside A slower:
# only A counts, and the summary says the machine was slower.
H=host/parallel_ceiling/l2/t2
write_run "$tmp/ctl_base.json" "$base;$H:0.25,0.26,0.25,0.26,0.25"
write_run "$tmp/ctl_busy.json" "$A:10.0,10.2,9.9,10.1,10.3;$B:5.0,5.1,4.9,5.2,5.0;$H:0.40,0.41,0.42,0.40,0.43"
write_run "$tmp/ctl_both.json" "$A:15.0,15.3,14.8,15.1,15.5;$B:5.0,5.1,4.9,5.2,5.0;$H:0.40,0.41,0.42,0.40,0.43"
printf '{"benchmarks": [' >"$tmp/truncated.json"
printf '{"context": {}}' >"$tmp/foreign.json"

expect 0 "0 slower case" "$tmp/base.json" "$tmp/base.json"
expect 0 "0 slower case" "$tmp/base.json" "$tmp/equal.json"
expect 0 "0 slower case" "$tmp/base.json" "$tmp/jitter.json"
expect 1 "^conv/fwd/avx2/x/real_time .*SLOWER" "$tmp/base.json" "$tmp/slower.json"
expect 1 "1 slower case" "$tmp/base.json" "$tmp/slower.json"
expect 1 "^conv/fwd/avx2/x/real_time .*SLOWER" "$tmp/base.json" "$tmp/slowtail.json"
expect 0 "0 slower case" "$tmp/base.json" "$tmp/slowtail.json" --stat best
expect 1 "1 slower case" "$tmp/base.json" "$tmp/slower.json" --stat best
expect 0 "^conv/fwd/avx2/x/real_time .*faster" "$tmp/base.json" "$tmp/faster.json"
expect 0 "0 slower case" "$tmp/base.json" "$tmp/noisy.json"
expect 1 "SLOWER" "$tmp/base.json" "$tmp/slight.json"
expect 0 "0 slower case" "$tmp/base.json" "$tmp/slight.json" --threshold 0.30
# --filter leaves the regressed case out: no regression among the others.
expect 0 "0 slower case" "$tmp/base.json" "$tmp/slower.json" --filter '^bn/'
expect 2 "cannot read" "$tmp/base.json" "$tmp/missing.json"
expect 2 "cannot read" "$tmp/truncated.json" "$tmp/base.json"
expect 2 "not Google Benchmark JSON" "$tmp/base.json" "$tmp/foreign.json"
expect 2 "no case names in common" "$tmp/base.json" "$tmp/other.json"
expect 1 "^$G/t1/real_time .*SLOWER" "$tmp/gemm_old.json" "$tmp/gemm_t1_slower.json"
expect 1 "1 slower case" "$tmp/gemm_old.json" "$tmp/gemm_t1_slower.json"
expect 2 "no case names in common" "$tmp/gemm_old.json" "$tmp/gemm_t2_only.json"
expect 0 "^$H/real_time .*machine slower \(control\)" "$tmp/ctl_base.json" "$tmp/ctl_busy.json"
expect 0 "1 host/ control case\(s\) slower" "$tmp/ctl_base.json" "$tmp/ctl_busy.json"
expect 1 "^1 slower case" "$tmp/ctl_base.json" "$tmp/ctl_both.json"
expect 0 "^0 slower case" "$tmp/ctl_base.json" "$tmp/ctl_base.json"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
