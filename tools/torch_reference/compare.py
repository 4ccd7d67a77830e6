#!/usr/bin/env python3
"""Run `chainrule bench W` and PyTorch's twin alternately and report medians.

    cargo build --release
    python3 tools/torch_reference/compare.py tiny matmul cnn-train --runs 5

Ratios count only on a quiet machine: under load PyTorch's OpenMP threads
collapse while chainrule's rayon pool takes a fair share, so a loaded ratio
flatters chainrule. Before every run the 1-minute load average is read from
/proc/loadavg; above --max-load (default 0.3) the script stops without a
ratio, naming the load, unless --allow-load is given (then the ratio is
printed marked as loaded). The load seen before each run is printed beside
its figure, and each framework's CPU, SIMD and GEMM path once per workload.

Runs alternate between the two frameworks so that what load remains affects
both alike; the table reports the median of each key and the ratio
chainrule / PyTorch.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS = {"tiny": "ns_per_op", "matmul": "gflops", "conv": "median_sec", "mlp": "epoch_sec",
        "cnn": "median_sec", "cnn-train": "ms_per_step"}
STEP_WORKLOADS = ("cnn", "cnn-train")


def load_avg():
    """The 1-minute load average, or None if /proc/loadavg cannot be read."""
    try:
        return float(pathlib.Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_load(args, what):
    """The load before `what`; exits (no ratio) above --max-load unless --allow-load."""
    load = load_avg()
    if args.allow_load:
        return load
    if load is None:
        sys.exit(f"compare.py: cannot read /proc/loadavg before {what}, so cannot check for a quiet "
                 "machine; pass --allow-load to report anyway")
    if load > args.max_load:
        sys.exit(f"compare.py: load average {load:.2f} is above --max-load {args.max_load} before {what}; "
                 "no ratio reported (a loaded machine flatters chainrule). Wait for a quiet machine, "
                 "or pass --allow-load to report it anyway, marked as loaded")
    return load


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def fmt_load(load):
    return "?" if load is None else f"{load:.2f}"


def describe(line):
    """The machine fields of one JSON line."""
    fields = [f"{k} {line[k]}" for k in ("cpu", "simd", "gemm_path", "conv_path", "threads") if k in line]
    return "; ".join(fields) or "no machine fields"


def compare(args, binary, w):
    key = KEYS[w]
    extra = ["--steps", str(args.steps)] if args.steps and w in STEP_WORKLOADS else []
    commands = {
        "chainrule": [str(binary), "bench", w, *extra],
        "pytorch": [sys.executable, "tools/torch_reference/bench_torch.py", w, *extra],
    }
    figures = {name: [] for name in commands}
    last = {}
    for i in range(args.runs):
        for name, cmd in commands.items():
            load = check_load(args, f"{name} run {i + 1} of {w}")
            last[name] = run(cmd)
            figures[name].append((last[name][key], load))
    medians = {}
    for name, runs in figures.items():
        medians[name] = statistics.median(v for v, _ in runs)
        listed = ", ".join(f"{v:.4g} (load {fmt_load(load)})" for v, load in runs)
        label = w if name == "chainrule" else ""
        print(f"{label:9} {key:11} {name:9} median {medians[name]:10.4g}  runs {listed}")
        print(f"{'':9} {'':11} {'':9} {describe(last[name])}")
    loads = [load for runs in figures.values() for _, load in runs]
    loaded = any(load is None or load > args.max_load for load in loads)
    mark = f"  LOADED (load above {args.max_load} before a run): not a quiet-machine ratio" if loaded else ""
    print(f"{'':9} {'':11} ratio chainrule/pytorch {medians['chainrule'] / medians['pytorch']:.3f}{mark}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workloads", nargs="+", choices=sorted(KEYS))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-load", type=float, default=0.3,
                    help="highest 1-minute load average allowed before a run (default 0.3)")
    ap.add_argument("--allow-load", action="store_true",
                    help="report a ratio even when the load was above --max-load (marked as loaded)")
    ap.add_argument("--binary", type=pathlib.Path, default=ROOT / "target" / "release" / "chainrule",
                    help="the chainrule program (default target/release/chainrule)")
    ap.add_argument("--steps", type=int,
                    help="timed steps of cnn and cnn-train for both frameworks (a quick check, not a figure)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.steps is not None and args.steps < 1:
        ap.error("--steps must be >= 1")
    if not args.binary.exists():
        sys.exit(f"compare.py: {args.binary} does not exist; build first: cargo build --release")
    for w in args.workloads:
        compare(args, args.binary, w)


if __name__ == "__main__":
    main()
