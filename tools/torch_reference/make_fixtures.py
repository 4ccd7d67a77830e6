#!/usr/bin/env python3
"""Write PyTorch reference fixtures for chainrule's op tests.

For every core case in chainrule's op registry (same names as the cases
beside each op in crates/ops/src: binary.rs, unary.rs, reduce.rs, matmul.rs,
shape_ops.rs) this builds fixed float64 inputs, applies the
op in PyTorch, backpropagates a fixed random upstream gradient, and writes
inputs, upstream, output and input gradients to JSON. The JSON is committed;
Rust tests read it and never run Python.

    pip install torch numpy
    python3 tools/torch_reference/make_fixtures.py   # writes tests/fixtures/torch/ops_core.json
"""

import json
import pathlib
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch" / "ops_core.json"

rng = np.random.default_rng(20261121)


def anyv(shape):
    return rng.uniform(-2.0, 2.0, size=shape)


def pos(shape):
    return rng.uniform(0.2, 3.0, size=shape)


def away(shape):
    return rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def grid(offset):
    return lambda shape: rng.integers(-20, 20, size=shape) * 0.1 + offset


def distinct(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape)


def mk(gen, shape):
    return torch.tensor(np.asarray(gen(tuple(shape)), dtype=np.float64).reshape(shape))


# name -> list of (input specs [(generator, shape)], function)
CASES = {
    "add": [([(anyv, [2, 3]), (anyv, [3])], lambda a, b: a + b),
            ([(anyv, [2, 1, 3]), (anyv, [4, 1])], lambda a, b: a + b)],
    "sub": [([(anyv, [2, 1, 3]), (anyv, [4, 1])], lambda a, b: a - b)],
    "mul": [([(anyv, [3, 4]), (anyv, [3, 1])], lambda a, b: a * b)],
    "div": [([(anyv, [2, 3]), (away, [2, 3])], lambda a, b: a / b),
            ([(anyv, [3, 1]), (away, [1, 4])], lambda a, b: a / b)],
    "neg": [([(anyv, [5])], lambda x: -x)],
    "add_scalar": [([(anyv, [2, 2])], lambda x: x + 0.7)],
    "mul_scalar": [([(anyv, [2, 2])], lambda x: x * -1.3)],
    "rsub_scalar": [([(anyv, [3])], lambda x: 0.4 - x)],
    "scalar_div": [([(away, [4])], lambda x: 2.0 / x)],
    "sum_to": [([(anyv, [2, 3, 4]), (anyv, [3, 1])], lambda a, b: a.sum_to_size(b.shape) * b)],
    "broadcast_to": [([(anyv, [2, 3, 4]), (anyv, [3, 1])], lambda a, b: b.broadcast_to(a.shape) * a)],
    "exp": [([(anyv, [2, 3])], torch.exp)],
    "log": [([(pos, [2, 3])], torch.log)],
    "sqrt": [([(pos, [2, 3])], torch.sqrt)],
    "abs": [([(away, [2, 3])], torch.abs)],
    "sin": [([(anyv, [2, 3])], torch.sin)],
    "cos": [([(anyv, [2, 3])], torch.cos)],
    "tanh": [([(anyv, [2, 3])], torch.tanh)],
    "sigmoid": [([(anyv, [2, 3])], torch.sigmoid)],
    "relu": [([(away, [2, 3])], torch.relu)],
    "pow_scalar_2": [([(anyv, [4])], lambda x: torch.pow(x, 2.0))],
    "pow_scalar_3": [([(anyv, [4])], lambda x: torch.pow(x, 3.0))],
    "pow_scalar_neg1_5": [([(pos, [4])], lambda x: torch.pow(x, -1.5))],
    "pow_scalar_0_5": [([(pos, [4])], lambda x: torch.pow(x, 0.5))],
    "pow": [([(lambda s: rng.uniform(0.5, 2.0, size=s), [2, 3]), (anyv, [3])], torch.pow)],
    "maximum": [([(grid(0.0), [2, 3]), (grid(0.05), [3])], torch.maximum)],
    "minimum": [([(grid(0.0), [2, 3]), (grid(0.05), [2, 1])], torch.minimum)],
    "sum_axis1": [([(anyv, [2, 3, 4])], lambda x: x.sum(1))],
    "sum_last_keepdim": [([(anyv, [3, 4])], lambda x: x.sum(-1, keepdim=True))],
    "sum_all": [([(anyv, [3, 4])], lambda x: x.sum())],
    "mean_axis0": [([(anyv, [3, 4])], lambda x: x.mean(0))],
    "mean_all": [([(anyv, [2, 3, 2])], lambda x: x.mean())],
    "max_axis1": [([(distinct, [2, 4, 3])], lambda x: torch.amax(x, 1))],
    "max_all": [([(distinct, [3, 4])], lambda x: torch.amax(x))],
    "min_axis0_keepdim": [([(distinct, [3, 4])], lambda x: torch.amin(x, 0, keepdim=True))],
    "min_all": [([(distinct, [5])], lambda x: torch.amin(x))],
    "matmul": [([(anyv, [3, 4]), (anyv, [4, 5])], torch.matmul)],
    "matmul_batched_broadcast": [([(anyv, [2, 1, 3, 4]), (anyv, [3, 4, 2])], torch.matmul)],
    "matmul_matrix_vector": [([(anyv, [3, 4]), (anyv, [4])], torch.matmul)],
    "matmul_transposed": [([(anyv, [3, 4]), (anyv, [4, 2])], lambda a, b: (b.T @ a.T).T)],
    "reshape": [([(anyv, [2, 3, 2])], lambda x: x.reshape(-1))],
    "transpose": [([(anyv, [2, 3, 4])], lambda x: x.transpose(0, -1))],
    "permute": [([(anyv, [2, 3, 4])], lambda x: x.permute(2, 0, 1))],
    # Appended last, so the random draws of the cases above are unchanged.
    "max_dim": [([(distinct, [3, 4])], lambda x: torch.max(x, 1).values)],
    "min_dim_keepdim": [([(distinct, [2, 3, 2])], lambda x: torch.min(x, 0, keepdim=True).values)],
}


def as_json(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def main():
    cases = []
    for name, variants in CASES.items():
        for specs, fn in variants:
            inputs = [mk(gen, shape).requires_grad_(True) for gen, shape in specs]
            out = fn(*inputs)
            upstream = torch.tensor(rng.uniform(-1.0, 1.0, size=tuple(out.shape)))
            grads = torch.autograd.grad(out, inputs, upstream, allow_unused=True)
            cases.append({
                "name": name,
                "inputs": [as_json(x) for x in inputs],
                "upstream": as_json(upstream),
                "output": as_json(out),
                "grads": [None if g is None else as_json(g) for g in grads],
            })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generator": "tools/torch_reference/make_fixtures.py",
        "torch": torch.__version__,
        "dtype": "float64",
        "cases": cases,
    }
    # One case per line keeps diffs of regenerated fixtures readable.
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"})[:-1]
    body = ",\n".join(json.dumps(c) for c in cases)
    OUT.write_text(f'{head}, "cases": [\n{body}\n]}}\n')
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
