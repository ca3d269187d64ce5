#!/usr/bin/env python3
"""Speed-up tables of int8 over fp32 from one int8train_bench JSON run.

Usage: ratio_table.py RUN.json [--impl avx512vnni] [--peer onednn_f32] [--stat best|median]
                      [--clock real|cpu] [--summary | --wide]

For every case family of bench_layers.cc / bench_train.cc (conv/<pass>,
bn, train_step) it pairs each int8 case with its fp32 peer of the same shape
and thread count, and prints (markdown) the peer's time / the int8 time: a
value above 1 means int8 is faster. With repetitions, `best` uses the fastest
repetition of each side (the least disturbed on a shared machine), `median`
the median; both come from the same run, so the two sides saw the same
machine state. A geometric mean closes each group. --clock cpu uses the
main thread's CPU time instead of wall time: on a machine shared with other
work it leaves out the time the benchmark was descheduled, but it only
covers single-threaded cases (t1), where all the work runs on that thread.
--summary prints one line per case family, network (r8, r18, resnet8) and
thread count instead: the ratio of summed times (every layer shape of that
network counted once, so big layers weigh more) and the geometric mean.
--wide prints one table of speed-ups, a row per shape and thread count and a
column per convolution pass (and bn).
"""
import argparse
import json
import math
import re
import sys
from collections import defaultdict

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(path, clock):
    """case name (no /real_time suffix) -> list of seconds per iteration."""
    try:
        with open(path) as f:
            data = json.load(f)
        benchmarks = data["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"ratio_table: cannot read {path}: {e}")
    times = defaultdict(list)
    for b in benchmarks:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        name = re.sub(r"/real_time$", "", b.get("run_name") or b["name"])
        if clock == "cpu" and not name.endswith("/t1"):
            continue
        times[name].append(b[clock + "_time"] * UNITS.get(b.get("time_unit", "ns"), 1e-9))
    return times


def stat(xs, how):
    s = sorted(xs)
    if how == "best":
        return s[0]
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def pairs(times, impl, peer):
    """(group, shape, threads) -> (int8 times, peer times) for every pair."""
    out = {}
    for name, t in times.items():
        parts = name.split("/")
        if parts[0] == "conv" and len(parts) == 5 and parts[2] == impl:
            group, other = "conv/" + parts[1], f"conv/{parts[1]}/{peer}/{parts[3]}/{parts[4]}"
            key = (group, parts[3], parts[4])
        elif parts[0] == "bn" and len(parts) == 4 and parts[1] == impl:
            group, other = "bn", f"bn/{peer}/{parts[2]}/{parts[3]}"
            key = (group, parts[2], parts[3])
        elif parts[0] == "train_step" and len(parts) == 4 and parts[2] == "int8_" + impl:
            group, other = "train_step", f"train_step/{parts[1]}/fp32/{parts[3]}"
            key = (group, parts[1], parts[3])
        else:
            continue
        if other in times:
            out[key] = (t, times[other])
    return out


def summary(found, args):
    rows = defaultdict(list)
    for (group, shape, threads), (a, b) in found.items():
        rows[(group, shape.split("_")[0], threads)].append((stat(a, args.stat), stat(b, args.stat)))
    print(f"int8 ({args.impl}) speed-up over fp32 ({args.peer}), {args.stat} of the repetitions, "
          f"{args.clock} time\n")
    print("| family | network | threads | cases | summed fp32 ms / summed int8 ms | geometric mean |")
    print("|---|---|---|---|---|---|")
    for (group, net, threads) in sorted(rows, key=lambda k: (k[0], k[1], int(k[2][1:]))):
        r = rows[(group, net, threads)]
        total = sum(b for _, b in r) / sum(a for a, _ in r)
        print(f"| {group} | {net} | {threads[1:]} | {len(r)} | "
              f"{sum(b for _, b in r) * 1e3:.1f} / {sum(a for a, _ in r) * 1e3:.1f} = {total:.2f}x | "
              f"{geomean([b / a for a, b in r]):.2f}x |")


def wide(found, args):
    groups = ["conv/fwd", "conv/bwd_data", "conv/bwd_weights"]
    cells = defaultdict(dict)
    for (group, shape, threads), (a, b) in found.items():
        if group in groups:
            cells[(shape, threads)][group] = stat(b, args.stat) / stat(a, args.stat)
    print(f"fp32 ({args.peer}) time / int8 ({args.impl}) time, {args.stat} of the repetitions, "
          f"{args.clock} time\n")
    print("| shape | threads | " + " | ".join(g.split("/")[1] for g in groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for (shape, threads) in sorted(cells, key=lambda k: (int(k[1][1:]), k[0])):
        row = cells[(shape, threads)]
        print(f"| {shape} | {threads[1:]} | " +
              " | ".join(f"{row[g]:.2f}x" if g in row else "-" for g in groups) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--impl", default="avx512vnni", help="int8 kernel path (default avx512vnni)")
    ap.add_argument("--peer", default="onednn_f32", help="fp32 impl of conv/bn cases")
    ap.add_argument("--stat", choices=("best", "median"), default="best")
    ap.add_argument("--clock", choices=("real", "cpu"), default="real",
                    help="wall time (default) or the main thread's CPU time (t1 cases only)")
    ap.add_argument("--summary", action="store_true", help="one line per family and network")
    ap.add_argument("--wide", action="store_true", help="speed-ups only, a column per pass")
    args = ap.parse_args()
    found = pairs(load(args.run, args.clock), args.impl, args.peer)
    if not found:
        sys.exit(f"ratio_table: no int8 '{args.impl}' / fp32 pairs in {args.run}")
    if args.summary:
        return summary(found, args)
    if args.wide:
        return wide(found, args)
    groups = defaultdict(list)
    for key in sorted(found):
        groups[key[0]].append(key)
    print(f"fp32 time / int8 time ({args.impl} vs {args.peer}; train_step vs fp32), "
          f"{args.stat} of each case's repetitions, {args.clock} time\n")
    for group, keys in groups.items():
        threads = sorted({k[2] for k in keys}, key=lambda t: int(t[1:]))
        print(f"{group}\n")
        print("| shape | " + " | ".join(f"{t}: int8 ms | fp32 ms | speed-up" for t in threads) + " |")
        print("|---|" + "---|---|---|" * len(threads))
        ratios = defaultdict(list)
        for shape in sorted({k[1] for k in keys}):
            cells = []
            for t in threads:
                if (group, shape, t) not in found:
                    cells.append("- | - | -")
                    continue
                a, b = found[(group, shape, t)]
                ta, tb = stat(a, args.stat), stat(b, args.stat)
                ratios[t].append(tb / ta)
                cells.append(f"{ta * 1e3:.3g} | {tb * 1e3:.3g} | {tb / ta:.2f}x")
            print(f"| {shape} | " + " | ".join(cells) + " |")
        print("| geometric mean | " +
              " | ".join(f"| | {geomean(ratios[t]):.2f}x" for t in threads) + " |\n")


if __name__ == "__main__":
    main()
