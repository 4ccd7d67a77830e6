#!/usr/bin/env python3
"""Write a PyTorch fixture for functional batch_norm's running statistics.

Three training calls of F.batch_norm(x, running_mean, running_var, weight,
bias, training=True, momentum=0.3, eps=1e-5) on [4, 3, 2, 2] float64 inputs,
each recording the output and the running statistics PyTorch updated in
place (unbiased batch variance), then one call with training=False that
uses them. chainrule's test (crates/ops/tests/pytorch_api.rs) replays it.

    pip install torch numpy
    python3 tools/torch_reference/make_batch_norm_fixtures.py   # writes tests/fixtures/torch/batch_norm.json
"""

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch" / "batch_norm.json"
rng = np.random.default_rng(20261202)


def tensor(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def main():
    shape = (4, 3, 2, 2)
    momentum, eps = 0.3, 1e-5
    weight = torch.tensor(rng.uniform(0.5, 1.5, size=3))
    bias = torch.tensor(rng.uniform(-0.5, 0.5, size=3))
    running_mean = torch.tensor(rng.uniform(-0.2, 0.2, size=3))
    running_var = torch.tensor(rng.uniform(0.8, 1.2, size=3))
    start = {"running_mean": tensor(running_mean), "running_var": tensor(running_var)}
    steps = []
    for _ in range(3):
        x = torch.tensor(rng.normal(0.5, 2.0, size=shape))
        y = F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps)
        steps.append({
            "x": tensor(x),
            "output": tensor(y),
            "running_mean": tensor(running_mean),
            "running_var": tensor(running_var),
        })
    x = torch.tensor(rng.normal(0.5, 2.0, size=shape))
    y = F.batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    fixture = {
        "torch": torch.__version__,
        "momentum": momentum,
        "eps": eps,
        "weight": tensor(weight),
        "bias": tensor(bias),
        "start": start,
        "train_steps": steps,
        "eval": {"x": tensor(x), "output": tensor(y)},
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
