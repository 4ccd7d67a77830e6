#!/usr/bin/env python3
"""PyTorch twins of `chainrule bench WORKLOAD`, for side-by-side ratios.

    python3 tools/torch_reference/bench_torch.py tiny
    python3 tools/torch_reference/bench_torch.py matmul
    python3 tools/torch_reference/bench_torch.py conv
    python3 tools/torch_reference/bench_torch.py mlp   # Fashion-MNIST from /usr/share/datasets/fashion-mnist
    python3 tools/torch_reference/bench_torch.py cnn

Prints one JSON line with the same keys as chainrule's. Uses 2 threads
(torch.set_num_threads(2)), as chainrule uses the machine's 2 cores.
"""

import json
import resource
import statistics
import sys
import time

import torch

torch.set_num_threads(2)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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


def cnn():
    """200 Adam steps (batch 64) after 5 warm-up steps of the benchmark CNN."""
    torch.manual_seed(0)
    x, y = fashion("train")
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(y))
    batches = [order[i * 64:(i + 1) * 64] for i in range(205)]

    def step(idx):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for idx in batches[:5]:
        step(idx)
    t = time.perf_counter()
    for idx in batches[5:]:
        step(idx)
    return {"workload": "cnn", "steps": 200, "median_sec": time.perf_counter() - t, "peak_rss_mib": peak_rss_mib()}


if __name__ == "__main__":
    workloads = {"tiny": tiny, "matmul": matmul, "conv": conv, "mlp": mlp, "cnn": cnn}
    if len(sys.argv) != 2 or sys.argv[1] not in workloads:
        sys.exit(f"usage: bench_torch.py {{{'|'.join(workloads)}}}")
    print(json.dumps(workloads[sys.argv[1]]()))
