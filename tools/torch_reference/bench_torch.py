#!/usr/bin/env python3
"""PyTorch twins of `chainrule bench WORKLOAD`, for side-by-side ratios.

    python3 tools/torch_reference/bench_torch.py tiny
    python3 tools/torch_reference/bench_torch.py matmul
    python3 tools/torch_reference/bench_torch.py conv
    python3 tools/torch_reference/bench_torch.py mlp   # Fashion-MNIST from /usr/share/datasets/fashion-mnist
    python3 tools/torch_reference/bench_torch.py cnn
    python3 tools/torch_reference/bench_torch.py cnn-train [--steps N]

Prints one JSON line with the same keys as chainrule's, and the machine's:
cpu (model name of /proc/cpuinfo), simd (the CPU capability PyTorch's
kernels dispatch to, torch.backends.cpu.get_cpu_capability()), gemm_path
(the BLAS PyTorch was built with, BLAS_INFO; convolutions go through oneDNN
when conv_path says "onednn"), threads and load_avg (the 1-minute load
average before the workload). Uses 2 threads (torch.set_num_threads(2)), as
chainrule uses the machine's 2 cores.
"""

import argparse
import json
import resource
import re
import statistics
import time

import torch

torch.set_num_threads(2)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_model():
    """The first `model name` of /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip() or "unknown"
    except OSError:
        pass
    return "unknown"


def load_avg():
    """The 1-minute load average (first field of /proc/loadavg), or None."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine(load):
    """The machine fields chainrule's `bench` prints, in PyTorch's terms."""
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return {"cpu": cpu_model(), "simd": torch.backends.cpu.get_cpu_capability(),
            "gemm_path": blas.group(1) if blas else "unknown",
            "conv_path": "onednn" if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else "native",
            "threads": torch.get_num_threads(), "load_avg": load}


def tiny():
    ops = 100_000

    def once():
        a = torch.tensor(0.5, requires_grad=True)
        b = torch.tensor(0.5, requires_grad=True)
        x = torch.tensor(0.1)
        for i in range(ops):
            r = i % 3
            if r == 0:
                x = x * a
            elif r == 1:
                x = x + b
            else:
                x = torch.tanh(x)
        x.backward()
        return x.item(), a.grad.item(), b.grad.item()

    once()
    times, values = [], None
    for _ in range(5):
        t = time.perf_counter()
        values = once()
        times.append(time.perf_counter() - t)
    total = statistics.median(times)
    return {"workload": "tiny", "ops": ops, "total_sec": total, "ns_per_op": total * 1e9 / ops,
            "peak_rss_mib": peak_rss_mib(),
            "values": {"x": values[0], "a_grad": values[1], "b_grad": values[2]}}


def matmul():
    n = 1024
    g = torch.Generator().manual_seed(0)
    a0, b0 = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    totals, forwards = [], []
    for rep in range(23):
        t = time.perf_counter()
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        c = a @ b
        f = time.perf_counter() - t
        c.sum().backward()
        total = time.perf_counter() - t
        if rep >= 3:
            totals.append(total)
            forwards.append(f)
    flop = 2.0 * n ** 3
    total, forward = statistics.median(totals), statistics.median(forwards)
    return {"workload": "matmul", "n": n, "median_sec": total, "gflops": 3 * flop / total / 1e9,
            "forward_gflops": flop / forward / 1e9, "peak_rss_mib": peak_rss_mib()}


def conv():
    """64 images of 28x28 through Conv2d(1,32,3,pad 1), ReLU, Conv2d(32,64,3,pad 1), mean; fwd+bwd."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28, generator=g)
    c1, c2 = torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.Conv2d(32, 64, 3, padding=1)
    times = []
    for rep in range(13):
        t = time.perf_counter()
        for p in [*c1.parameters(), *c2.parameters()]:
            p.grad = None
        c2(torch.relu(c1(x))).mean().backward()
        if rep >= 3:
            times.append(time.perf_counter() - t)
    return {"workload": "conv", "batch": 64, "median_sec": statistics.median(times), "peak_rss_mib": peak_rss_mib()}


def fashion(part):
    """Fashion-MNIST images scaled to [0, 1] and labels, as chainrule reads them."""
    import gzip
    import os
    import numpy as np
    root = os.environ.get("CHAINRULE_DATA", "/usr/share/datasets/fashion-mnist")
    with gzip.open(f"{root}/{part}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    with gzip.open(f"{root}/{part}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def mlp():
    """One shuffled epoch: 784-512-256-10 ReLU, default init, Adam 1e-3, batch 128."""
    torch.manual_seed(0)
    x, y = fashion("train")
    xt, yt = fashion("t10k")
    nn = torch.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t = time.perf_counter()
    order = torch.randperm(len(y))
    total, n = 0.0, 0
    for i in range(0, len(y), 128):
        idx = order[i:i + 128]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        n += len(idx)
    epoch = time.perf_counter() - t
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return {"workload": "mlp", "images": n, "epoch_sec": epoch, "train_loss": total / n, "test_accuracy": acc, "peak_rss_mib": peak_rss_mib()}


def timed_steps(model, opt, x, y, steps, label_smoothing=0.0):
    """5 untimed then `steps` timed steps on batches of 64 from one shuffled
    epoch (reused in turn beyond 938); returns (seconds, last loss)."""
    order = torch.randperm(len(y))
    n = min(steps + 5, len(y) // 64)
    batches = [order[i * 64:(i + 1) * 64] for i in range(n)]

    def step(idx):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx], label_smoothing=label_smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(5):
        step(batches[i % n])
    t = time.perf_counter()
    loss = float("nan")
    for i in range(5, 5 + steps):
        loss = step(batches[i % n])
    return time.perf_counter() - t, loss


def cnn(steps):
    """`steps` Adam steps (batch 64) after 5 warm-up steps of the benchmark CNN.
    median_sec is the total of the timed steps (the name matches chainrule's)."""
    torch.manual_seed(0)
    x, y = fashion("train")
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    total, _ = timed_steps(model, opt, x, y, steps)
    return {"workload": "cnn", "steps": steps, "median_sec": total, "peak_rss_mib": peak_rss_mib()}


def cnn_train(steps):
    """The twin of `chainrule bench cnn-train`: the CNN `chainrule train` builds
    by default (chainrule_cli::models::cnn, dropout 0.3), Adam 1e-3, label
    smoothing 0.1, batch 64, images standardized by the training set's global
    mean and deviation, training mode; `steps` timed steps after 5 warm-up."""
    torch.manual_seed(0)
    x, y = fashion("train")
    x = (x - x.mean()) / x.std(unbiased=False)
    nn, dropout = torch.nn, 0.3
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(dropout / 2), nn.Flatten(),
        nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 10))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    total, loss = timed_steps(model, opt, x, y, steps, label_smoothing=0.1)
    return {"workload": "cnn-train", "steps": steps, "total_sec": total, "ms_per_step": total * 1e3 / steps,
            "final_loss": loss, "peak_rss_mib": peak_rss_mib()}


def main():
    workloads = {"tiny": tiny, "matmul": matmul, "conv": conv, "mlp": mlp, "cnn": cnn, "cnn-train": cnn_train}
    ap = argparse.ArgumentParser(description="PyTorch twins of `chainrule bench`")
    ap.add_argument("workload", choices=list(workloads))
    ap.add_argument("--steps", type=int, help="timed steps of cnn and cnn-train, >= 1 (default 200)")
    args = ap.parse_args()
    if args.steps is not None and (args.workload not in ("cnn", "cnn-train") or args.steps < 1):
        ap.error("--steps takes a whole number >= 1 and applies only to cnn and cnn-train")
    load = load_avg()
    if args.workload in ("cnn", "cnn-train"):
        line = workloads[args.workload](args.steps or 200)
    else:
        line = workloads[args.workload]()
    line.update(machine(load))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
