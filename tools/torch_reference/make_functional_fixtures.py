#!/usr/bin/env python3
"""Write PyTorch reference fixtures for chainrule's functional transforms.

torch.autograd.functional's vjp, jvp, jacobian, hessian and hvp in float64,
on (1) the mean-squared loss of a small tanh network (full Hessian and a
Hessian-vector product over its three parameter tensors) and (2)
f(a, b) = tanh(a @ b). Writes tests/fixtures/torch/functional.json.

    pip install torch numpy
    python3 tools/torch_reference/make_functional_fixtures.py
"""

import json
import pathlib

import numpy as np
import torch
from torch.autograd import functional as F

torch.set_default_dtype(torch.float64)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch" / "functional.json"
rng = np.random.default_rng(7)


def t(shape, lo=-1.0, hi=1.0):
    return torch.tensor(rng.uniform(lo, hi, size=shape))


def js(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "data": [float(v) for v in x.reshape(-1).tolist()]}


def main():
    x, y = t((5, 3)), t((5, 2))
    params = (t((3, 4)), t((4,)), t((4, 2)))

    def loss(w1, b1, w2):
        return ((torch.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()

    hess = F.hessian(loss, params)
    v = tuple(t(p.shape) for p in params)
    value, hv = F.hvp(loss, params, v)

    a, b = t((2, 3)), t((3, 2))

    def g(a, b):
        return torch.tanh(a @ b)

    jac = F.jacobian(g, (a, b))
    tangents = (t((2, 3)), t((3, 2)))
    out, jv = F.jvp(g, (a, b), tangents)
    cot = t((2, 2))
    _, vj = F.vjp(g, (a, b), cot)

    doc = {
        "generator": "tools/torch_reference/make_functional_fixtures.py",
        "torch": torch.__version__,
        "tanh_net": {
            "x": js(x), "y": js(y), "params": [js(p) for p in params],
            "loss": float(value),
            "hessian": [[js(hess[i][j]) for j in range(3)] for i in range(3)],
            "hvp_v": [js(p) for p in v], "hvp": [js(h) for h in hv],
        },
        "tanh_matmul": {
            "inputs": [js(a), js(b)], "output": js(out),
            "jacobian": [js(j) for j in jac],
            "jvp_v": [js(u) for u in tangents], "jvp": js(jv),
            "vjp_v": js(cot), "vjp": [js(u) for u in vj],
        },
    }
    OUT.write_text(json.dumps(doc) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
