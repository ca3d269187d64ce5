#!/usr/bin/env python3
"""GEMM table from one int8train_bench JSON run: GOPS of every impl side by side.

Usage: gemm_table.py RUN.json [--clock cpu|real]

Rows are (kind, shape) of the gemm/<kind>/<impl>/<M>x<N>x<K> cases, columns the
impls; each cell is best/median GOPS over the repetitions (run with
--benchmark_repetitions=N, ideally --benchmark_enable_random_interleaving=true
so that every impl sees the same machine state). --clock cpu uses the main
thread's CPU time (single-threaded runs only): on a shared machine it leaves
out the time the benchmark was descheduled.
"""
import argparse
import json
import re
import statistics
import sys

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
IMPLS = ["generic", "avx2", "avx512vnni", "neon", "neondot", "onednn", "onednn_f32"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--clock", choices=["cpu", "real"], default="real")
    args = ap.parse_args()
    try:
        with open(args.run) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"gemm_table: cannot read {args.run}: {e}")
    gops = {}
    for b in data.get("benchmarks", []):
        name = re.sub(r"/real_time$", "", b.get("run_name") or b["name"])
        parts = name.split("/")
        if b.get("run_type") != "iteration" or b.get("error_occurred") or len(parts) != 4 or parts[0] != "gemm":
            continue
        m, n, k = (int(x) for x in parts[3].split("x"))
        t = b[args.clock + "_time"] * UNITS.get(b.get("time_unit", "ns"), 1e-9)
        gops.setdefault((parts[1], parts[3]), {}).setdefault(parts[2], []).append(2.0 * m * n * k / t / 1e9)
    impls = [i for i in IMPLS if any(i in row for row in gops.values())]
    print(f"GOPS best/median ({args.clock} time); core clock {data['context'].get('core_ghz', '?')}\n")
    print("| kind | M x N x K | " + " | ".join(impls) + " |")
    print("|---|---|" + "---|" * len(impls))
    for (kind, shape) in sorted(gops):
        row = gops[(kind, shape)]
        cells = [f"{max(row[i]):.1f} / {statistics.median(row[i]):.1f}" if i in row else "-" for i in impls]
        print(f"| {kind} | {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
