#!/usr/bin/env python3
"""Where the time of an int8train_bench case goes: perf samples grouped by part.

Usage: perf_split.py BENCH_BINARY CASE_REGEX [--seconds 3] [--raw 15]

Runs the binary under `perf record -e cpu-clock` (a software clock: works in
VMs without hardware counters) on the cases matching CASE_REGEX, attributes
each sample to the function it was in, groups the functions by the part of a
training pass they belong to (GEMM microkernel, packing, im2col, batch norm,
quantizer, oneDNN, ...) and prints the share of each part, setup excluded
(operand generation and the clock measurement at start-up). oneDNN's JIT
kernels are named through ONEDNN_JIT_PROFILE=2 (a perf map file).
--raw N also lists the N hottest functions.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

# First match wins: (part, regex on the function name, regex on the DSO).
# oneDNN's parts come first: its JIT kernels' names ("jit_bnorm_t") would
# otherwise match the library's patterns.
DNNL = r"dnnl|perf-\d+\.map"
PARTS = [
    ("setup (bench)", r"i8t_bench::|add_chain|random_|_dl_|^main$", None),
    ("oneDNN convolution", r"conv|brg", DNNL),
    ("oneDNN batch norm", r"bnorm|batch_norm", DNNL),
    ("oneDNN other (GEMM, reorders, runtime, unnamed JIT)", r".", DNNL),
    ("OpenMP runtime (spin / barrier)", r".", r"gomp"),
    ("kernel (page faults, scheduling)", r".", r"kernel"),
    ("GEMM microkernel", r"ukernel", None),
    ("GEMM packing", r"pack_", None),
    ("GEMM driver (edges, column sums)", r"gemm_task|run_tile|add_tile|colsum_task|sum_b|gemm_x8|run_job", None),
    ("im2col / col2im", r"im2col|col2im", None),
    ("conv glue (output range, requantize)", r"forward_task|backward_data_task|backward_weights_task|sample_range|requant|scale_s32|minmax_s32", None),
    ("batch norm", r"u8_reduce|u8_quantize_task|u8_stats|colwise|norm_|u8_absmax|f32_stats|chunk_|dense_|bn_lane|bn_col|bn_sums|add_centered", None),
    ("sum + ReLU (fwd range/output, bwd gradient sum)", r"grad_sum|grad_quantize|range_task|eval_|mask|combine_sources|nn_absmax|sum_act|relu|act_|axpy|affine_", None),
    ("pooling, fc, loss, SGD", r"pool|softmax|sgd|fc_|xent", None),
    ("quantizer", r"quantize|minmax|dequant", None),
    ("memset / memcpy", r"memset|memmove|memcpy", None),
    ("thread pool", r"worker|parallel_for|i8t_pool|futex|spin", None),
]


def part_of(sym, dso):
    for name, srx, drx in PARTS:
        if re.search(srx, sym) and (drx is None or re.search(drx, dso)):
            return name
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("cases", help="--benchmark_filter regex")
    ap.add_argument("--seconds", type=float, default=3.0, help="--benchmark_min_time")
    ap.add_argument("--raw", type=int, default=0, help="also list the N hottest functions")
    args = ap.parse_args()
    env = dict(os.environ, ONEDNN_JIT_PROFILE="2", DNNL_JIT_PROFILE="2")  # 2: perf map
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-o", data, args.binary,
               f"--benchmark_filter={args.cases}", f"--benchmark_min_time={args.seconds}"]
        run = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode:
            sys.exit(f"perf_split: perf record failed:\n{run.stdout}")
        for line in run.stdout.splitlines():
            if "/real_time" in line:
                print(line)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    funcs = collections.Counter()
    for line in script.stdout.splitlines():
        m = re.match(r"\s*(?:[0-9a-f]+\s+)?(.*?)\s+\((.*)\)\s*$", line)
        if m:
            funcs[(m.group(1), os.path.basename(m.group(2)))] += 1
    parts = collections.Counter()
    for (sym, dso), n in funcs.items():
        parts[part_of(sym, dso)] += n
    setup = parts.pop("setup (bench)", 0)
    total = sum(parts.values())
    if not total:
        sys.exit("perf_split: no samples")
    print(f"\n{total} samples in the library and its peers ({setup} in bench setup, left out)\n")
    print("| part | share |\n|---|---|")
    for name, n in parts.most_common():
        print(f"| {name} | {100.0 * n / total:.1f}% |")
    if args.raw:
        print(f"\nhottest functions:\n")
        for (sym, dso), n in funcs.most_common(args.raw):
            print(f"{100.0 * n / (total + setup):6.2f}%  {sym}  [{dso}]  -> {part_of(sym, dso)}")


if __name__ == "__main__":
    main()
