#!/usr/bin/env python3
"""Run `chainrule bench W` and PyTorch's twin alternately and report medians.

    cargo build --release
    python3 tools/torch_reference/compare.py tiny matmul --runs 5

The machine is shared and noisy: runs alternate between the two frameworks so
that load affects both alike, and the table reports the median of each key
and the ratio chainrule / PyTorch.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEYS = {"tiny": "ns_per_op", "matmul": "gflops", "conv": "median_sec", "mlp": "epoch_sec", "cnn": "median_sec"}


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="+", choices=sorted(KEYS))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    binary = ROOT / "target" / "release" / "chainrule"
    if not binary.exists():
        sys.exit("build first: cargo build --release")
    for w in args.workloads:
        key = KEYS[w]
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(run([str(binary), "bench", w])[key])
            theirs.append(run([sys.executable, "tools/torch_reference/bench_torch.py", w])[key])
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(f"{w:8} {key:10} chainrule median {mo:10.1f} (runs {', '.join(f'{v:.0f}' for v in ours)})")
        print(f"{'':8} {'':10} pytorch   median {mt:10.1f} (runs {', '.join(f'{v:.0f}' for v in theirs)})")
        print(f"{'':8} {'':10} ratio chainrule/pytorch {mo / mt:.3f}")


if __name__ == "__main__":
    main()
