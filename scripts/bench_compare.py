#!/usr/bin/env python3
"""Compare two int8train_bench runs (Google Benchmark --benchmark_format=json).

Usage: bench_compare.py BASELINE.json NEW.json [--threshold 0.10] [--alpha 0.05]

Cases are matched by name. GEMM cases recorded before they took the thread
count into their name (gemm/<kind>/<impl>/<M>x<N>x<K>, run at the count in
the file's context int8train_threads, else 1) match .../<M>x<N>x<K>/t<count>.
With repetitions (--benchmark_repetitions=N, N >= 3
recommended) each case has N timings per file; a case counts as SLOWER only if
  * its median time grew by more than the threshold (default 10 %), and
  * a Mann-Whitney U test says the two sets of timings differ (p < alpha),
so that the 10-25 % swings of a shared machine are not reported as changes.
With 3 repetitions per side no difference can reach p < 0.05: use 4 or more.
--stat best compares the fastest repetitions instead of the medians: on a VM
that shares its host, medians of identical code can move 20-50 % between runs
while the best moves a few percent (the U test is still required).
The host/ cases (host/parallel_ceiling/*: fixed work that measures the
machine, not the library) are the control: they are compared the same way
but never count as regressions; when one is slower the machine was busier
for the new run, which the summary says.
Exit status: 0 no regression, 1 at least one case slower, 2 bad input.
"""
import argparse
import json
import math
import re
import sys


def load(path):
    """name -> list of per-repetition real times (ns), from iteration entries."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_compare: cannot read {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if not isinstance(data, dict) or "benchmarks" not in data:
        print(f"bench_compare: {path} is not Google Benchmark JSON (no 'benchmarks')", file=sys.stderr)
        sys.exit(2)
    units = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    old_gemm_threads = "/t" + str(data.get("context", {}).get("int8train_threads", 1))
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        name = b.get("run_name") or re.sub(r"/repeats:\d+$", "", b["name"])
        name = re.sub(r"^(gemm/[^/]+/[^/]+/\d+x\d+x\d+)(?=/real_time$|$)", r"\g<1>" + old_gemm_threads, name)
        t = b["real_time"] * units.get(b.get("time_unit", "ns"), 1.0)
        runs.setdefault(name, []).append(t)
    return runs


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def exact_u_p(a, b):
    """Two-sided exact p-value of the U statistic by enumerating every split
    of the pooled sample (used for small samples, where the normal
    approximation is poor)."""
    from itertools import combinations
    pooled = a + b
    n1 = len(a)

    def u_of(xs, ys):
        return sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)

    u_obs = u_of(a, b)
    mu = n1 * len(b) / 2
    extreme = total = 0
    idx = range(len(pooled))
    for comb in combinations(idx, n1):
        chosen = set(comb)
        xs = [pooled[i] for i in comb]
        ys = [pooled[i] for i in idx if i not in chosen]
        total += 1
        if abs(u_of(xs, ys) - mu) >= abs(u_obs - mu) - 1e-9:
            extreme += 1
    return extreme / total


def mann_whitney_p(a, b):
    """Two-sided p-value: exact for small samples, else the normal
    approximation with tie correction."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return 1.0
    if n1 + n2 <= 16:
        return exact_u_p(a, b)
    allv = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(allv)
    i = 0
    ties = 0.0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1][0] == allv[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = r
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, allv) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u - mu) - 0.5) / sigma
    return math.erfc(max(z, 0) / math.sqrt(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.10, help="relative slowdown to flag (0.10 = 10%%)")
    ap.add_argument("--alpha", type=float, default=0.05, help="significance level of the U test")
    ap.add_argument("--filter", default="", help="regex: compare only matching cases")
    ap.add_argument("--stat", choices=["median", "best"], default="median",
                    help="compare medians (default) or the fastest repetitions")
    args = ap.parse_args()
    base, new = load(args.baseline), load(args.new)
    pat = re.compile(args.filter)
    common = [n for n in base if n in new and pat.search(n)]
    if not common:
        print("bench_compare: no case names in common", file=sys.stderr)
        return 2
    width = max(len(n) for n in common)
    print(f"{'case':<{width}}  {'base(us)':>11} {'new(us)':>11} {'change':>8} {'p':>6}  verdict")
    slower = machine_slower = 0
    for name in common:
        b, n = base[name], new[name]
        stat = min if args.stat == "best" else median
        mb, mn = stat(b), stat(n)
        change = mn / mb - 1
        p = mann_whitney_p(b, n)
        few = min(len(b), len(n)) < 3
        control = name.startswith("host/")
        if change > args.threshold and (p < args.alpha or few):
            verdict = "machine slower (control)" if control else "SLOWER"
            machine_slower += control
            slower += not control
        elif change < -args.threshold and (p < args.alpha or few):
            verdict = "machine faster (control)" if control else "faster"
        else:
            verdict = ("same" if not few else "same (few reps)") + (" (control)" if control else "")
        print(f"{name:<{width}}  {mb/1e3:11.2f} {mn/1e3:11.2f} {change*100:+7.1f}% {p:6.3f}  {verdict}")
    only = sorted(set(base) ^ set(new))
    if only:
        print(f"\n{len(only)} case(s) only in one file (not compared)")
    print(f"\n{slower} slower case(s) beyond {args.threshold*100:.0f}% (U test alpha {args.alpha})")
    if machine_slower:
        print(f"{machine_slower} host/ control case(s) slower: the machine itself was slower "
              "for the new run, so its other verdicts may be the machine's")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
