#!/usr/bin/env python3
"""Fixtures for chainrule's nn crate: PyTorch <-> chainrule weight interop,
BatchNorm running statistics, default initialisation bounds.

    pip install torch numpy safetensors
    # first let chainrule write its model (deterministic, seed 11):
    CHAINRULE_WRITE_FIXTURES=1 cargo test --release -p chainrule-nn --test interop
    python3 tools/torch_reference/make_nn_interop.py

Writes tests/fixtures/nn/cnn_from_torch.safetensors (a PyTorch CNN),
tests/fixtures/nn/interop.json (inputs, both models' eval logits as PyTorch
computes them, and BatchNorm trajectories).
"""

import json
import pathlib

import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIR = ROOT / "tests" / "fixtures" / "nn"


def cnn():
    """The same layers, in the same order, as chainrule's interop CNN."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 10),
    )


def batchnorm_cases():
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(5, 3, 2, 2, generator=g, dtype=torch.float64) * 2 + 1 for _ in range(3)]
    cases = []
    for momentum in [0.1, 0.3, None]:
        bn = torch.nn.BatchNorm2d(3, momentum=momentum).double()
        steps = []
        for x in xs:
            y = bn(x)
            steps.append({"output": y.detach().reshape(-1).tolist(), "running_mean": bn.running_mean.tolist(),
                          "running_var": bn.running_var.tolist(), "num_batches_tracked": int(bn.num_batches_tracked)})
        bn.eval()
        steps.append({"output": bn(xs[0]).detach().reshape(-1).tolist()})
        cases.append({"momentum": momentum, "steps": steps})
    return {"inputs": [x.reshape(-1).tolist() for x in xs], "shape": [5, 3, 2, 2], "cases": cases}


def main():
    torch.manual_seed(0)
    model = cnn()
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(2):  # non-trivial running statistics
        model(torch.randn(6, 1, 8, 8, generator=g))
    model.eval()
    DIR.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, DIR / "cnn_from_torch.safetensors")
    x = torch.randn(3, 1, 8, 8, generator=g)
    with torch.no_grad():
        torch_logits = model(x)
        ours = cnn()
        ours.load_state_dict(load_file(DIR / "cnn_from_chainrule.safetensors"))
        ours.eval()
        chainrule_logits = ours(x)
    doc = {
        "generator": "tools/torch_reference/make_nn_interop.py",
        "torch": torch.__version__,
        "input": {"shape": list(x.shape), "data": x.reshape(-1).tolist()},
        "torch_model_logits": torch_logits.reshape(-1).tolist(),
        "chainrule_model_logits": chainrule_logits.reshape(-1).tolist(),
        "batch_norm": batchnorm_cases(),
    }
    (DIR / "interop.json").write_text(json.dumps(doc) + "\n")
    print("wrote", DIR / "interop.json")


if __name__ == "__main__":
    main()
