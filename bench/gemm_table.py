#!/usr/bin/env python3
"""GEMM tables from one int8train_bench JSON run: GOPS of every impl side by side, and 2-thread scaling.

Usage: gemm_table.py RUN.json [--clock cpu|real]

Rows are (kind, shape, threads) of the gemm/<kind>/<impl>/<M>x<N>x<K>/t<threads>
cases, columns the impls; each cell is best/median GOPS over the repetitions
(run with --benchmark_repetitions=N, ideally
--benchmark_enable_random_interleaving=true so that every impl sees the same
machine state). A second table gives, per (kind, shape, impl) measured at 1 and
at more threads, the speed-up over 1 thread of the medians and of the best
repetitions. When the run has host/parallel_ceiling cases (perfectly parallel
shared-nothing work: fma, l2, mem; bench_host.cc), their speed-ups come first,
and each speed-up on medians is also given as a fraction of the l2 ceiling's
(a GEMM's blocks live in L2 too): what is left of the shortfall is the GEMM's,
not the machine's. --clock cpu uses the main thread's CPU time (1-thread cases
only: it leaves out the time the benchmark was descheduled; multi-threaded
cases are left out). Runs from before the /t<threads> suffix count as the thread count in
their context (int8train_threads, else 1).
"""
import argparse
import json
import re
import statistics
import sys

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
IMPLS = ["generic", "avx2", "avx512vnni", "neon", "neondot", "onednn", "onednn_f32"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"gemm_table: cannot read {path}: {e}")


def collect(data, clock):
    """{(kind, shape, threads): {impl: [GOPS per repetition]}}"""
    default_threads = int(data.get("context", {}).get("int8train_threads", 1))
    gops = {}
    for b in data.get("benchmarks", []):
        name = re.sub(r"/real_time$", "", b.get("run_name") or b["name"])
        parts = name.split("/")
        if b.get("run_type") != "iteration" or b.get("error_occurred") or parts[0] != "gemm":
            continue
        if len(parts) == 4:
            threads = default_threads
        elif len(parts) == 5 and re.fullmatch(r"t\d+", parts[4]):
            threads = int(parts[4][1:])
        else:
            continue
        if clock == "cpu" and threads != 1:
            continue
        m, n, k = (int(x) for x in parts[3].split("x"))
        t = b[clock + "_time"] * UNITS.get(b.get("time_unit", "ns"), 1e-9)
        gops.setdefault((parts[1], parts[3], threads), {}).setdefault(parts[2], []).append(2.0 * m * n * k / t / 1e9)
    return gops


def ceiling_times(data):
    """{(work, threads): [seconds per repetition]} of the host/parallel_ceiling cases."""
    times = {}
    for b in data.get("benchmarks", []):
        name = re.sub(r"/real_time$", "", b.get("run_name") or b["name"])
        m = re.fullmatch(r"host/parallel_ceiling/(\w+)/t(\d+)", name)
        if m and b.get("run_type") == "iteration" and not b.get("error_occurred"):
            t = b["real_time"] * UNITS.get(b.get("time_unit", "ns"), 1e-9)
            times.setdefault((m.group(1), int(m.group(2))), []).append(t)
    return times


def shape_key(shape):
    return tuple(int(x) for x in shape.split("x"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--clock", choices=["cpu", "real"], default="real")
    args = ap.parse_args()
    data = load(args.run)
    gops = collect(data, args.clock)
    if not gops:
        sys.exit(f"gemm_table: no gemm/ cases in {args.run}")
    rows = sorted(gops, key=lambda r: (r[0], shape_key(r[1]), r[2]))
    impls = [i for i in IMPLS if any(i in row for row in gops.values())]
    print(f"GOPS best/median ({args.clock} time); core clock {data['context'].get('core_ghz', '?')}\n")
    print("| kind | M x N x K | threads | " + " | ".join(impls) + " |")
    print("|---|---|---|" + "---|" * len(impls))
    for key in rows:
        row = gops[key]
        cells = [f"{max(row[i]):.1f} / {statistics.median(row[i]):.1f}" if i in row else "-" for i in impls]
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")

    scaling = []
    for (kind, shape, threads) in rows:
        one = gops.get((kind, shape, 1), {})
        if threads == 1:
            continue
        for impl in impls:
            if impl in one and impl in gops[(kind, shape, threads)]:
                many = gops[(kind, shape, threads)][impl]
                scaling.append((kind, shape, impl, threads,
                                statistics.median(many) / statistics.median(one[impl]),
                                max(many) / max(one[impl])))
    if scaling:
        ceiling = ceiling_times(data)
        ceil_med = {(w, t): statistics.median(ceiling[(w, 1)]) / statistics.median(v)
                    for (w, t), v in ceiling.items() if t > 1 and (w, 1) in ceiling}
        # a GEMM is read against the L2 ceiling: its blocks live in L2 too
        ref = {t: m for (w, t), m in ceil_med.items() if w == "l2"}
        print("\nScaling over 1 thread (same run): time at 1 thread / time at N threads\n")
        print("| kind | M x N x K | impl | threads | medians | best | median / l2 ceiling's |")
        print("|---|---|---|---|---|---|---|")
        for (w, t) in sorted(ceil_med):
            best = min(ceiling[(w, 1)]) / min(ceiling[(w, t)])
            frac = f"{ceil_med[(w, t)] / ref[t]:.2f}" if t in ref else "-"
            print(f"| host ceiling | {w} | - | {t} | {ceil_med[(w, t)]:.2f}x | {best:.2f}x | {frac} |")
        for kind, shape, impl, threads, med, best in scaling:
            frac = f"{med / ref[threads]:.2f}" if threads in ref else "-"
            print(f"| {kind} | {shape} | {impl} | {threads} | {med:.2f}x | {best:.2f}x | {frac} |")


if __name__ == "__main__":
    main()
