"""A NumPy port of prodigyopt 1.1.2's ``Prodigy.step`` (spec/prodigy.py), for parameter groups of tensors.

Until Prodigy joins the conformance harness (its d is a reduction over every tensor of every group, which the
harness's per-tensor protocol lacks), ``tests/test_prodigy.py`` checks this port as it checks prodigyopt's class:
the group scalars against ``spec.prodigy.group_scalars`` within the any-order summation bound, the tensors element
by element against ``spec.prodigy.PRODIGY`` given the d it had (``tests/prodigy_check.py``).

Tensor statements compute in the parameter's dtype, in float32 for float16 and bfloat16 (torch's opmath), and
round once per torch operation; the dot product and Σ|s| are NumPy's, in opmath, rounded to the dtype (as
``.item()`` of a tensor of the dtype); the group scalars are Python floats, in prodigyopt's order.  ``broken``
names deliberate errors (``BROKEN``) that the checks must catch.
"""
from __future__ import annotations

import numpy as np

BROKEN = {
    "no_max": "d = d̂ at every step: the estimate may shrink (no running max d_max, no growth limit)",
    "beta3_is_beta2": "β₃ defaults to β₂ instead of √β₂",
    "dot_sign": "d_numerator accumulates dot(g, θ − p0): the wrong sign",
    "bias_k": "bias correction with k instead of k + 1",
    "eps_old_d": "ε's factor is the d before the step (the paper's d_k·ε), not the new d",
}


def _opmath(dtype) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def run(hyper: dict, groups: list, grads: list, group_lrs=None, broken: str = "") -> list:
    """Per step: ``scalars`` (d, d_max, d_hat, d_numerator, d_denom, k as Python floats and ints) and ``tensors``
    (per group, per tensor: theta, exp_avg, exp_avg_sq, s, p0 as arrays of the parameter's dtype).  ``hyper``: the
    spec's resolved hyperparameters with d_coef and growth_rate; ``groups``: per group a list of arrays of one
    dtype; ``grads[step][group][tensor]``: an array or None; ``group_lrs``: per group lr (default ``hyper["lr"]``)."""
    if broken and broken not in BROKEN:
        raise ValueError(f"unknown broken variant {broken!r}; known: {', '.join(BROKEN)}")
    h = dict(hyper)
    b1, b2 = h["beta1"], h["beta2"]
    b3 = b2 if broken == "beta3_is_beta2" else h["beta3"]
    lrs = list(group_lrs) if group_lrs is not None else [h["lr"]] * len(groups)
    lr = max(lrs)
    if any(x not in (lr, 0.0) for x in lrs):
        raise RuntimeError("Setting different lr values in different parameter groups is only supported for "
                           "values of 0")
    params = [[np.array(p, copy=True) for p in grp] for grp in groups]
    state = [[None] * len(grp) for grp in groups]
    d0, sp = h["d0"], h.get("slice_p", 1)
    sc = {"d": d0, "d_max": d0, "d_numerator": 0.0, "k": 0, "d_hat": None, "d_denom": None}
    rows = []
    for step_grads in grads:
        k, d, d_max = sc["k"], sc["d"], sc["d_max"]
        sc_d_before = d
        kk = k if broken == "bias_k" else k + 1
        bias = ((1 - b2 ** kk) ** 0.5) / (1 - b1 ** kk) if h["use_bias_correction"] and kk > 0 else 1
        dlr = d * lr * bias
        numerator = sc["d_numerator"] * b3
        delta, denom = 0.0, 0.0
        used = []
        for gi, (grp, gl) in enumerate(zip(params, lrs)):
            for pi, p in enumerate(grp):
                gr = step_grads[gi][pi]
                if gr is None:
                    continue
                dt, om = p.dtype, _opmath(p.dtype)
                g = np.asarray(gr).astype(dt)
                if h["weight_decay"] != 0 and not h["decouple"]:
                    g = (g.astype(om) + om.type(h["weight_decay"]) * p.astype(om)).astype(dt)
                if state[gi][pi] is None:
                    flat = p.ravel()[::sp]
                    state[gi][pi] = {"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p),
                                     "s": np.zeros_like(flat), "p0": flat.copy() if p.any() else np.zeros((), dt)}
                st = state[gi][pi]
                used.append((gi, pi, g))
                if gl > 0.0:
                    g_sl = g.ravel()[::sp]
                    diff = (st["p0"].astype(om) - p.ravel()[::sp].astype(om)).astype(dt)
                    if broken == "dot_sign":
                        diff = -diff
                    dot = float(np.dot(g_sl.astype(om), diff.astype(om)).astype(dt))
                    delta += (d / d0) * dlr * dot
                    st["exp_avg"] = ((st["exp_avg"].astype(om) * om.type(b1)).astype(dt).astype(om)
                                     + om.type(d * (1 - b1)) * g.astype(om)).astype(dt)
                    st["exp_avg_sq"] = ((st["exp_avg_sq"].astype(om) * om.type(b2)).astype(dt).astype(om)
                                        + om.type(d * d * (1 - b2)) * g.astype(om) * g.astype(om)).astype(dt)
                    alpha = (d / d0) * (d if h["safeguard_warmup"] else dlr)
                    st["s"] = ((st["s"].astype(om) * om.type(b3)).astype(dt).astype(om)
                               + om.type(alpha) * g_sl.astype(om)).astype(dt)
                    denom += float(np.sum(np.abs(st["s"].astype(om))).astype(dt))
        if denom == 0:
            rows.append(_row(sc, params, state, sp))
            continue
        numerator = numerator + delta
        d_hat = h["d_coef"] * numerator / denom
        if broken == "no_max":
            d_max, d = d_hat, d_hat
        else:
            if d == d0:
                d = max(d, d_hat)
            d_max = max(d_max, d_hat)
            d = min(d_max, d * h["growth_rate"])
        sc = {"d": d, "d_max": d_max, "d_numerator": numerator, "k": k + 1, "d_hat": d_hat, "d_denom": denom}
        d_eps = sc_d_before if broken == "eps_old_d" else d
        for gi, pi, g in used:
            p, st = params[gi][pi], state[gi][pi]
            dt, om = p.dtype, _opmath(p.dtype)
            den = (np.sqrt(st["exp_avg_sq"].astype(om)).astype(dt).astype(om) + om.type(d_eps * h["eps"])).astype(dt)
            if h["weight_decay"] != 0 and h["decouple"]:
                p = (p.astype(om) + om.type(-h["weight_decay"] * dlr) * p.astype(om)).astype(dt)
            num, value = (st["exp_avg"], -dlr) if b1 > 0 else (g, -dlr * d)
            p = (p.astype(om) + om.type(value) * num.astype(om) / den.astype(om)).astype(dt)
            params[gi][pi] = p
        rows.append(_row(sc, params, state, sp))
    return rows


def _row(sc: dict, params: list, state: list, sp: int) -> dict:
    """The step's row; s (every sp-th element, flattened, as prodigyopt keeps it) in the parameter's shape, 0
    elsewhere, as ``tests/prodigy_check.run`` reports prodigyopt's."""
    def tensor(p, st):
        out = {"theta": p.copy(), **{k: v.copy() for k, v in (st or {}).items()}}
        if st:
            full = np.zeros(p.size, dtype=p.dtype)
            full[::sp] = st["s"]
            out["s"] = full.reshape(p.shape)
        return out
    return {"scalars": dict(sc), "tensors": [[tensor(p, st) for p, st in zip(grp, sts)]
                                             for grp, sts in zip(params, state)]}

