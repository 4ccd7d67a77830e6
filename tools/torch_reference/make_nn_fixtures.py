#!/usr/bin/env python3
"""Write PyTorch fixtures for chainrule's neural-network op set.

Mirrors the registry cases beside each nn op in crates/ops/src (indexing.rs,
shape_ops.rs, activations.rs, softmax.rs, loss.rs, conv.rs, pool.rs, norm.rs;
the patterns are in registry.rs) case by case: the same names, input
shapes and domains, and the same index and mask patterns ((7k + 3) mod n
indices, ones at flat positions k = 0 mod 3). Writes float64 inputs, a
random upstream gradient, the output and the input gradients.

    pip install torch numpy
    python3 tools/torch_reference/make_nn_fixtures.py   # writes tests/fixtures/torch/ops_nn.json
"""

import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch" / "ops_nn.json"
rng = np.random.default_rng(20261122)


def uniform(lo, hi):
    return lambda s: rng.uniform(lo, hi, size=s)


ANY = uniform(-2.0, 2.0)
POS = uniform(0.2, 3.0)
SMALL = uniform(-1.0, 1.0)
PROB = uniform(0.05, 0.95)
UNIT = uniform(0.0, 1.0)


def away(s):
    return rng.uniform(0.2, 2.0, size=s) * rng.choice([-1.0, 1.0], size=s)


def grid(offset):
    return lambda s: rng.integers(-20, 20, size=s) * 0.1 + offset


def distinct(s):
    n = int(np.prod(s))
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(s)


def pattern(shape, n):
    k = np.arange(int(np.prod(shape)))
    return torch.tensor((7 * k + 3) % n).reshape(shape)


def mask(shape):
    return torch.tensor(np.arange(int(np.prod(shape))) % 3 == 0).reshape(shape)


def split_chunk(x):
    p, c = x.split(2, 0), x.chunk(2, 0)
    return torch.cat([p[2], c[1], p[0] * 2, c[0]], 0)


def ramp(n, a, b):
    return torch.tensor([a + b * k for k in range(n)])


CASES = {
    "slice_step": ([(ANY, [3, 5])], lambda x: x[:, 1:5:2]),
    "narrow": ([(ANY, [4, 3])], lambda x: x.narrow(0, 1, 2)),
    "index_select": ([(ANY, [2, 4, 3])], lambda x: x.index_select(1, torch.tensor([3, 0, 3]))),
    "gather": ([(ANY, [3, 4])], lambda x: x.gather(1, pattern([3, 5], 4))),
    "scatter_add": ([(ANY, [3, 4]), (ANY, [3, 5])], lambda x, s: x.scatter_add(1, pattern([3, 5], 4), s)),
    "concat": ([(ANY, [2, 3]), (ANY, [2, 1]), (ANY, [2, 2])], lambda a, b, c: torch.cat([a, b, c], 1)),
    "stack": ([(ANY, [2, 3]), (ANY, [2, 3])], lambda a, b: torch.stack([a, b], 1)),
    "split_chunk": ([(ANY, [5, 2])], split_chunk),
    "squeeze_unsqueeze_flatten": ([(ANY, [2, 1, 3])], lambda x: x.squeeze(1).unsqueeze(0).flatten(1, 2)),
    "pad": ([(ANY, [2, 2, 3])], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5)),
    "repeat": ([(ANY, [2, 3])], lambda x: x.repeat(2, 1, 3)),
    "expand": ([(ANY, [3, 1])], lambda x: x.expand(2, -1, 4)),
    "where": ([(ANY, [2, 3]), (ANY, [3])], lambda a, b: torch.where(mask([2, 3]), a, b)),
    "masked_fill": ([(ANY, [3, 4])], lambda x: x.masked_fill(mask([3, 4]), -1.5)),
    "leaky_relu": ([(away, [2, 5])], lambda x: F.leaky_relu(x, 0.2)),
    "elu": ([(away, [2, 5])], lambda x: F.elu(x, 1.3)),
    "selu": ([(away, [2, 5])], F.selu),
    "gelu_exact": ([(uniform(-3, 3), [2, 5])], F.gelu),
    "gelu_tanh": ([(uniform(-3, 3), [2, 5])], lambda x: F.gelu(x, approximate="tanh")),
    "softplus_beta2": ([(ANY, [2, 5])], lambda x: F.softplus(x, beta=2.0, threshold=20.0)),
    "softplus_linear_region": ([(uniform(2.0, 3.0), [4])], lambda x: F.softplus(x, beta=2.0, threshold=3.0)),
    "silu": ([(ANY, [2, 5])], F.silu),
    "mish": ([(ANY, [2, 5])], F.mish),
    "hardtanh": ([(grid(0.05), [3, 4])], lambda x: F.hardtanh(x, -1.0, 1.0)),
    "clamp": ([(grid(0.05), [3, 4])], lambda x: torch.clamp(x, -0.5, 1.0)),
    "softsign": ([(away, [2, 5])], F.softsign),
    "log_sigmoid": ([(uniform(-6, 6), [2, 5])], F.logsigmoid),
    "softmax": ([(ANY, [3, 4])], lambda x: F.softmax(x, -1)),
    "log_softmax": ([(ANY, [3, 4])], lambda x: F.log_softmax(x, 0)),
    "logsumexp": ([(ANY, [2, 3, 4])], lambda x: torch.logsumexp(x, 1)),
    "logsumexp_keepdim": ([(ANY, [3, 4])], lambda x: torch.logsumexp(x, -1, keepdim=True)),
    "mse_loss": ([(ANY, [3, 4]), (ANY, [3, 4])], F.mse_loss),
    "l1_loss_sum": ([(uniform(0.2, 2.0), [3, 4]), (uniform(-2.0, -0.1), [3, 4])], lambda x, y: F.l1_loss(x, y, reduction="sum")),
    "smooth_l1_loss": ([(grid(0.0), [3, 4]), (grid(0.05), [3, 4])], lambda x, y: F.smooth_l1_loss(x, y, beta=1.0)),
    "huber_loss_none": ([(grid(0.0), [3, 4]), (grid(0.05), [3, 4])], lambda x, y: F.huber_loss(x, y, reduction="none", delta=0.8)),
    "binary_cross_entropy": ([(PROB, [3, 4]), (UNIT, [3, 4])], F.binary_cross_entropy),
    "binary_cross_entropy_weighted": ([(PROB, [3, 4]), (UNIT, [3, 4])], lambda p, y: F.binary_cross_entropy(p, y, weight=ramp(4, 0.5, 0.25), reduction="sum")),
    "bce_with_logits_pos_weight": ([(uniform(-4, 4), [3, 4]), (UNIT, [3, 4])], lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=ramp(4, 0.5, 0.5))),
    "cross_entropy": ([(ANY, [5, 4])], lambda x: F.cross_entropy(x, pattern([5], 4))),
    "cross_entropy_weighted_ignore_smoothing": ([(ANY, [6, 4])], lambda x: F.cross_entropy(
        x, pattern([6], 4), weight=torch.tensor([0.5, 1.0, 2.0, 1.5]), ignore_index=2, label_smoothing=0.1)),
    "cross_entropy_spatial_none": ([(ANY, [2, 3, 2, 2])], lambda x: F.cross_entropy(x, pattern([2, 2, 2], 3), reduction="none")),
    "cross_entropy_probs": ([(ANY, [3, 4]), (UNIT, [3, 4])], lambda x, p: F.cross_entropy(
        x, p, weight=torch.tensor([1.0, 0.5, 2.0, 1.0]), label_smoothing=0.2)),
    "nll_loss": ([(ANY, [5, 3])], lambda x: F.nll_loss(x, pattern([5], 3), weight=torch.tensor([0.3, 1.0, 2.0]), ignore_index=1)),
    "kl_div_batchmean": ([(ANY, [3, 4]), (POS, [3, 4])], lambda x, t: F.kl_div(x, t, reduction="batchmean")),
    "kl_div_log_target": ([(ANY, [3, 4]), (ANY, [3, 4])], lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True)),
    "multi_margin_loss": ([(grid(0.0), [4, 3])], lambda x: F.multi_margin_loss(x, pattern([4], 3), p=1, margin=1.05)),
    "multi_margin_loss_p2_weighted": ([(grid(0.0), [4, 3])], lambda x: F.multi_margin_loss(
        x, pattern([4], 3), p=2, margin=1.05, weight=ramp(3, 1.0, 0.5), reduction="sum")),
    "hinge_embedding_loss": ([(grid(0.05), [3, 4])], lambda x: F.hinge_embedding_loss(
        x, torch.tensor([1.0 if k % 2 == 0 else -1.0 for k in range(12)]).reshape(3, 4), margin=1.0)),
    "conv2d": ([(SMALL, [2, 2, 4, 4]), (SMALL, [3, 2, 3, 3]), (SMALL, [3])], lambda x, w, b: F.conv2d(x, w, b, padding=1)),
    "conv2d_stride_dilation_groups": ([(SMALL, [1, 4, 6, 5]), (SMALL, [2, 2, 2, 2])], lambda x, w: F.conv2d(
        x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
    "conv1d": ([(SMALL, [2, 2, 7]), (SMALL, [4, 1, 3]), (SMALL, [4])], lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2)),
    "conv_transpose2d": ([(SMALL, [1, 2, 3, 3]), (SMALL, [2, 3, 3, 3]), (SMALL, [3])], lambda x, w, b: F.conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1)),
    "conv_transpose2d_groups_dilation": ([(SMALL, [1, 4, 3, 2]), (SMALL, [4, 1, 2, 2])], lambda x, w: F.conv_transpose2d(
        x, w, stride=(1, 2), padding=(0, 1), dilation=(2, 1), groups=2)),
    "max_pool2d": ([(distinct, [2, 2, 4, 4])], lambda x: F.max_pool2d(x, 2, 2)),
    "max_pool2d_padded_overlapping": ([(distinct, [1, 2, 5, 5])], lambda x: F.max_pool2d(x, 3, 2, padding=1)),
    "avg_pool2d": ([(ANY, [2, 2, 4, 5])], lambda x: F.avg_pool2d(x, 2, 2, padding=1)),
    "avg_pool2d_exclude_pad": ([(ANY, [1, 2, 5, 5])], lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)),
    "adaptive_avg_pool2d": ([(ANY, [2, 2, 5, 7])], lambda x: F.adaptive_avg_pool2d(x, (3, 2))),
    "batch_norm_train": ([(ANY, [4, 3, 2, 2]), (ANY, [3]), (ANY, [3])], lambda x, w, b: F.batch_norm(
        x, None, None, w, b, training=True, eps=1e-5)),
    "batch_norm_eval": ([(ANY, [4, 3, 2]), (ANY, [3]), (ANY, [3])], lambda x, w, b: F.batch_norm(
        x, torch.tensor([0.1, -0.2, 0.3]), torch.tensor([1.5, 0.7, 2.0]), w, b, training=False, eps=1e-5)),
    "layer_norm": ([(ANY, [3, 2, 4]), (ANY, [2, 4]), (ANY, [2, 4])], lambda x, w, b: F.layer_norm(x, (2, 4), w, b, 1e-5)),
}


def as_json(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def main():
    cases = []
    for name, (specs, fn) in CASES.items():
        inputs = [torch.tensor(np.asarray(gen(tuple(s)), dtype=np.float64).reshape(s)).requires_grad_(True) for gen, s in specs]
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
    doc = {"generator": "tools/torch_reference/make_nn_fixtures.py", "torch": torch.__version__, "dtype": "float64"}
    head = json.dumps(doc)[:-1]
    body = ",\n".join(json.dumps(c) for c in cases)
    OUT.write_text(f'{head}, "cases": [\n{body}\n]}}\n')
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
