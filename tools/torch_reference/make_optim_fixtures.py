#!/usr/bin/env python3
"""Write PyTorch optimizer trajectories for chainrule's optim tests.

Each run starts from the same a (3,) and b (2, 3) and takes 30 steps of a
torch.optim optimizer on the fixed non-quadratic loss

    L(a, b) = sum((1 - a)^2) + 2 sum((b - a)^2) + 0.5 sum(sin(3 b)) + 0.1 sum(a^4)

(negated for `maximize` runs), in float64, recording a and b after every
step. Writes tests/fixtures/torch/optim.json.

    pip install torch numpy
    python3 tools/torch_reference/make_optim_fixtures.py
"""

import json
import pathlib

import torch

torch.set_default_dtype(torch.float64)
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "torch" / "optim.json"
STEPS = 30
A0 = [0.3, -0.8, 1.2]
B0 = [[0.5, -0.2, 0.9], [-1.1, 0.4, 0.0]]


def loss(a, b):
    return ((1 - a) ** 2).sum() + 2 * ((b - a) ** 2).sum() + 0.5 * torch.sin(3 * b).sum() + 0.1 * (a ** 4).sum()


RUNS = [
    ("SGD", {"lr": 0.01}),
    ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("SGD", {"lr": 0.02, "momentum": 0.8, "split_lr_b": 0.005}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("Adagrad", {"lr": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.5, "eps": 1e-6}),
    ("Adadelta", {"lr": 1.0}),
    ("Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 0.05}),
    ("Adamax", {"lr": 0.01}),
    ("Adamax", {"lr": 0.02, "betas": [0.8, 0.99], "weight_decay": 0.05, "maximize": True}),
    ("NAdam", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "maximize": True}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.02, "betas": [0.8, 0.99], "weight_decay": 0.05}),
    ("Rprop", {"lr": 0.01}),
    ("Rprop", {"lr": 0.05, "etas": [0.3, 1.5], "step_sizes": [1e-4, 0.2]}),
    ("Rprop", {"lr": 0.01, "maximize": True}),
    ("ASGD", {"lr": 0.01}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 10, "weight_decay": 0.05}),
]


def run(name, config):
    a = torch.tensor(A0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opts = dict(config)
    split = opts.pop("split_lr_b", None)
    groups = [{"params": [a]}, {"params": [b], "lr": split}] if split is not None else [a, b]
    opt = getattr(torch.optim, name)(groups, **opts)
    sign = -1.0 if config.get("maximize") else 1.0
    trajectory = []
    for _ in range(STEPS):
        opt.zero_grad()
        (sign * loss(a, b)).backward()
        opt.step()
        trajectory.append([a.detach().tolist(), sum(b.detach().tolist(), [])])
    out = {"optimizer": name, "config": config, "trajectory": trajectory}
    if name == "ASGD":  # the averaged parameters after the last step
        out["averaged"] = [opt.state[a]["ax"].tolist(), sum(opt.state[b]["ax"].tolist(), [])]
    return out


def clip_cases():
    """clip_grad_norm_ over three gradients for several norm types, and clip_grad_value_."""
    grads = [torch.tensor([[0.5, -1.5, 2.0], [0.1, 0.0, -0.3]]), torch.tensor([3.0, -4.0]), torch.tensor([[-0.2]])]
    cases = []
    for norm_type, max_norm in [(2.0, 1.0), (1.0, 2.5), (3.0, 0.5), (float("inf"), 1.0), (2.0, 100.0)]:
        params = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        cases.append({"kind": "norm", "norm_type": "inf" if norm_type == float("inf") else norm_type, "max_norm": max_norm,
                      "total": float(total), "clipped": [p.grad.reshape(-1).tolist() for p in params]})
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_value_(params, 0.4)
    cases.append({"kind": "value", "clip_value": 0.4, "clipped": [p.grad.reshape(-1).tolist() for p in params]})
    return {"grads": [{"shape": list(g.shape), "data": g.reshape(-1).tolist()} for g in grads], "cases": cases}


SCHEDULES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [5, 12, 30], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.95}),
    ("InverseTime", {"decay": 0.1}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 10}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 20}),
    ("PolynomialLR", {"total_iters": 40, "power": 2.0}),
    ("CosineAnnealingLR", {"T_max": 20, "eta_min": 0.001}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 8}),
    ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2, "eta_min": 0.001}),
    ("CosineAnnealingWarmRestarts", {"T_0": 7}),
    ("MultiplicativeLR", {"factor": 0.97}),
    ("SequentialLR", {"warmup": 5, "T_max": 30}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 66}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 66, "anneal_strategy": "linear", "pct_start": 0.25}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 66, "three_phase": True, "optimizer": "Adam"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "step_size_down": 6, "mode": "triangular2"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "exp_range", "gamma": 0.97, "optimizer": "Adam"}),
    # One value per group (PyTorch accepts lists for these).
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": 66}),
    ("CyclicLR", {"base_lr": [0.01, 0.002], "max_lr": [0.1, 0.05], "step_size_up": 6, "base_momentum": [0.8, 0.7], "max_momentum": [0.9, 0.95]}),
    # ChainedScheduler: warm-up factor and decay applied together.
    ("ChainedScheduler", {"chain": "ConstantLR+ExponentialLR"}),
    ("ChainedScheduler", {"chain": "LinearLR+StepLR"}),
]


def schedule_cases():
    """lr of two groups (base 0.1 and 0.03) at t = 0..65 under each scheduler."""
    from torch.optim import lr_scheduler as S
    cases = []
    for name, kw in SCHEDULES:
        a = torch.zeros(1, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        kw = dict(kw)
        use_adam = kw.pop("optimizer", "SGD") == "Adam"
        groups = [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.03}]
        opt = torch.optim.Adam(groups) if use_adam else torch.optim.SGD(groups, momentum=0.9)
        if name == "InverseTime":  # lr0 / (1 + k t) through LambdaLR
            sched = S.LambdaLR(opt, lambda t, k=kw["decay"]: 1.0 / (1.0 + k * t))
        elif name == "MultiplicativeLR":
            sched = S.MultiplicativeLR(opt, lambda t, f=kw["factor"]: f)
        elif name == "ChainedScheduler":
            if kw["chain"] == "ConstantLR+ExponentialLR":
                parts = [S.ConstantLR(opt, factor=0.5, total_iters=8), S.ExponentialLR(opt, gamma=0.95)]
            else:
                parts = [S.LinearLR(opt, start_factor=0.1, total_iters=5), S.StepLR(opt, step_size=10, gamma=0.5)]
            sched = S.ChainedScheduler(parts)
        elif name == "SequentialLR":
            warm = S.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=kw["warmup"])
            cos = S.CosineAnnealingLR(opt, T_max=kw["T_max"])
            sched = S.SequentialLR(opt, [warm, cos], milestones=[kw["warmup"]])
        else:
            sched = getattr(S, name)(opt, **kw)

        def snapshot():
            lr = [g["lr"] for g in opt.param_groups]
            mom = [g["betas"][0] if use_adam else g["momentum"] for g in opt.param_groups]
            return lr, mom

        lrs, moms = [], []
        for t in range(66 if name != "OneCycleLR" else kw["total_steps"]):
            if t > 0:
                opt.step()
                sched.step()
            lr, mom = snapshot()
            lrs.append(lr)
            moms.append(mom)
        cases.append({"scheduler": name, "kwargs": kw, "optimizer": "Adam" if use_adam else "SGD", "lrs": lrs, "momenta": moms})
    return cases


def plateau_cases():
    """ReduceLROnPlateau lr sequences for a fixed, noisy, plateauing metric."""
    metric = [1.0 / (1 + 0.3 * t) + 0.02 * ((t * 7919) % 11) / 11 if t < 25 else 0.15 + 0.01 * ((t * 104729) % 5) for t in range(70)]
    cases = []
    for kw in [
        {},
        {"patience": 3, "factor": 0.5},
        {"patience": 2, "factor": 0.5, "cooldown": 3, "threshold": 0.05, "threshold_mode": "abs", "min_lr": 0.004},
        {"mode": "max", "patience": 2, "factor": 0.3},
    ]:
        a = torch.zeros(1, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.03}])
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for m in metric:
            opt.step()
            sched.step(-m if kw.get("mode") == "max" else m)
            lrs.append([g["lr"] for g in opt.param_groups])
        cases.append({"kwargs": kw, "metric": metric, "lrs": lrs})
    return cases


def lbfgs_cases():
    """torch.optim.LBFGS (fixed step and strong-Wolfe): parameters after each step(closure) call."""
    cases = []
    for kw, calls in [
        ({"lr": 1.0, "max_iter": 20, "history_size": 5}, 3),
        ({"lr": 0.5, "max_iter": 4, "history_size": 3}, 5),
        ({"lr": 1.0, "max_iter": 20, "history_size": 5, "line_search_fn": "strong_wolfe"}, 3),
        ({"lr": 0.8, "max_iter": 6, "history_size": 2, "line_search_fn": "strong_wolfe"}, 4),
        ({"lr": 6.0, "max_iter": 10, "history_size": 3, "line_search_fn": "strong_wolfe"}, 3),
    ]:
        a = torch.tensor(A0, requires_grad=True)
        b = torch.tensor(B0, requires_grad=True)
        opt = torch.optim.LBFGS([a, b], **kw)

        def closure():
            opt.zero_grad()
            value = loss(a, b)
            value.backward()
            return value

        trajectory, losses = [], []
        for _ in range(calls):
            losses.append(float(opt.step(closure)))
            trajectory.append([a.detach().tolist(), sum(b.detach().tolist(), [])])
        cases.append({"config": kw, "trajectory": trajectory, "losses": losses})
    return cases


LINE_FUNCTIONS = {
    "quartic": lambda x: (x - 3) ** 4 + x * x,
    "wiggle": lambda x: torch.sin(3 * x) + 0.1 * x * x - x,
    "steep": lambda x: torch.exp(x - 2) - 3 * x,
    "hyperbola": lambda x: torch.sqrt(1 + (x - 1.5) ** 2) * 4 - x,
}


def line_search_cases():
    """torch's strong-Wolfe line search alone on 1-D functions from x = 0 along
    d = -f'(0), from several first trial steps: the accepted t, f(t) and the
    number of evaluations (exercises bracketing, zoom and its safeguards)."""
    from torch.optim.lbfgs import _strong_wolfe

    cases = []
    for name, f in LINE_FUNCTIONS.items():
        for t0 in [0.01, 0.3, 1.0, 5.0, 50.0]:
            def obj(x, t, d):
                xx = (x + t * d).detach().requires_grad_(True)
                value = f(xx).sum()
                value.backward()
                return float(value), xx.grad.clone()

            x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            value = f(x).sum()
            value.backward()
            g = x.grad.clone()
            d = -g
            f_new, _, t, evals = _strong_wolfe(obj, x.detach(), t0, d, float(value), g, float(g @ d))
            cases.append({"function": name, "t0": t0, "t": float(t), "f": float(f_new), "evals": evals})
    return cases


def main():
    doc = {
        "generator": "tools/torch_reference/make_optim_fixtures.py",
        "torch": torch.__version__,
        "a0": A0,
        "b0": B0,
        "runs": [run(n, c) for n, c in RUNS],
        "clip": clip_cases(),
        "schedules": schedule_cases(),
        "plateau": plateau_cases(),
        "lbfgs": lbfgs_cases(),
        "line_search": line_search_cases(),
    }
    OUT.write_text(json.dumps(doc) + "\n")
    print(f"wrote {len(RUNS)} runs to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
