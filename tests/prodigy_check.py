"""Prodigy (spec/prodigy.py) against prodigyopt's class, pytorch-optimizer's, or the NumPy port: "conforms", as code.

``run`` steps a class with prodigyopt's API (or pytorch-optimizer's) over parameter groups and reports, per step,
the group scalars (group 0's dict: every group holds the same) and each tensor's θ, exp_avg, exp_avg_sq, s, p0.
``check_steps`` checks each step from the implementation's own previous step:

* the group scalars N (d_numerator), D (d_denom) and d̂ against ``spec.prodigy.group_scalars`` run in the tolerance
  model's arithmetic (``reference.bound.Bound``): each dot(g, p0 − θ) and each Σ|s| an any-order sum in the
  parameter's dtype (n − 1 roundings of at most u·Σ|terms|), converted exactly by ``.item()``, then the Python
  floats' binary64 operations (prodigyopt) or float32 tensor operations (pytorch-optimizer: ``acc="float32"``);
  d_max and d exactly (``next_d``: max, min, one binary64 product of the observed d̂); D = 0 (every s exactly 0)
  means the early return: θ, d, d_max, d_numerator and k unchanged;
* each tensor element by element against the element-wise rule (the exact interval reference and the derived
  bound, as the harness's single-step test does), given the d before and after the step that the implementation
  had (hyperparameters ``d``, ``d_next``).
"""
from __future__ import annotations

import mpmath
import numpy as np
import torch

from conformance.backends.torch_backend import _to_numpy
from conformance.check import _compare
from reference.bound import B, Bound, trajectory_bounds
from reference.formats import FORMATS, get_format
from reference.step import trajectory
from spec.prodigy import GROUP_DEFAULTS, PRODIGY, PRODIGY_PYTORCH_OPTIMIZER, group_scalars, next_d, resolve

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
#: per library: the spec its tensors follow and the format its group scalars accumulate in
LIBRARIES = {"prodigyopt": (PRODIGY, "float64"), "pytorch_optimizer": (PRODIGY_PYTORCH_OPTIMIZER, "float32"),
             "numpy": (PRODIGY, "float64")}


def complete(hyper: dict) -> dict:
    """The spec's hyperparameters (defaults, β₃ resolved) with d_coef and growth_rate; ``d``/``d_next`` are the
    checker's to set."""
    extra = {k: hyper.get(k, v) for k, v in GROUP_DEFAULTS.items()}
    spec_part = {k: v for k, v in hyper.items() if k not in GROUP_DEFAULTS and k != "beta3"}
    h = resolve({**PRODIGY.complete(spec_part), "beta3": hyper.get("beta3")})
    return {**h, **extra}


def torch_kwargs(library: str, h: dict, foreach: bool = False) -> dict:
    kw = dict(lr=h["lr"], betas=(h["beta1"], h["beta2"]), beta3=h["beta3"], eps=h["eps"],
              weight_decay=h["weight_decay"], safeguard_warmup=h["safeguard_warmup"], d0=h["d0"],
              d_coef=h["d_coef"], growth_rate=h["growth_rate"])
    if library == "prodigyopt":
        return {**kw, "decouple": h["decouple"], "use_bias_correction": h["use_bias_correction"],
                "slice_p": h["slice_p"]}
    if h["slice_p"] != 1:
        raise ValueError("pytorch-optimizer's Prodigy has no slice_p (it would swallow the keyword: finding 93)")
    return {**kw, "weight_decouple": h["decouple"], "bias_correction": h["use_bias_correction"], "foreach": foreach}


def _f(x):
    return None if x is None else float(x.item() if isinstance(x, torch.Tensor) else x)


def run(cls, library: str, hyper: dict, groups: list, grads: list, dtype: str, group_lrs=None,
        foreach: bool = False) -> list:
    """Per step: ``scalars`` and ``tensors`` (the NumPy port's row format) of a torch class stepped over
    ``groups`` (lists of float64 arrays holding ``dtype`` values) with ``grads[step][group][tensor]``;
    ``foreach``: pytorch-optimizer's foreach path (its default on CUDA; asked for, it runs on the CPU too)."""
    h = complete(hyper)
    params = [[torch.tensor(np.asarray(a, dtype=np.float64), dtype=DTYPES[dtype]) for a in grp] for grp in groups]
    lrs = group_lrs or [h["lr"]] * len(groups)
    opt = cls([{"params": ps, "lr": lr} for ps, lr in zip(params, lrs)], **torch_kwargs(library, h, foreach))
    rows = []
    for step_grads in grads:
        for ps, gs in zip(params, step_grads):
            for p, gr in zip(ps, gs):
                p.grad = None if gr is None else torch.tensor(np.asarray(gr, dtype=np.float64), dtype=p.dtype)
        opt.step()
        g0 = opt.param_groups[0]
        k = g0["k"] if library == "prodigyopt" else g0["step"] - 1
        scalars = {"d": g0["d"], "d_max": g0["d_max"], "d_hat": _f(g0.get("d_hat")), "k": k,
                   "d_numerator": _f(g0.get("d_numerator", 0.0)), "d_denom": _f(g0.get("d_denom", g0.get("d_de_nom")))}
        tensors = []
        for ps in params:
            tensors.append([])
            for p in ps:
                st = opt.state[p]
                tensors[-1].append({"theta": _to_numpy(p), **{n: _to_numpy(st[n]).reshape(p.shape) for n in
                                                              ("exp_avg", "exp_avg_sq") if n in st},
                                    **({"s": unslice(_to_numpy(st["s"]), p.shape, h["slice_p"])} if "s" in st else {}),
                                    **({"p0": _to_numpy(st["p0"])} if "p0" in st else {})})
        rows.append({"scalars": scalars, "tensors": tensors})
    return rows


def unslice(s: np.ndarray, shape: tuple, slice_p: int) -> np.ndarray:
    """prodigyopt's s (every slice_p-th element of the flattened tensor) in the parameter's shape, 0 elsewhere."""
    full = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=s.dtype)
    full[::slice_p] = np.ravel(s)
    return full.reshape(shape)


def _within(got, value: B, name: str, where: str) -> list:
    if got is None:
        return [f"{where} {name}: not stored"]
    if not mpmath.isfinite(value.e):  # the bound is format-limited (overflow): nothing to compare
        return []
    if not np.isfinite(got):
        return [f"{where} {name}: got {got!r} for a finite exact value"]
    err = abs(mpmath.mpf(got) - value.v)
    if err <= value.e:
        return []
    return [f"{where} {name}: got {got!r}, exact {mpmath.nstr(value.v, 17)}, error {mpmath.nstr(err, 3)} > bound "
            f"{mpmath.nstr(value.e, 3)}"]


def _sum(O, terms: list):
    return O.hyper(0.0) if not terms else terms[0] if len(terms) == 1 else O.add(*terms)


def check_steps(library: str, hyper: dict, groups: list, grads: list, rows: list, dtype: str,
                group_lrs=None) -> list:
    """Failures (strings) of each step's group scalars and tensors, from the implementation's previous step."""
    spec, acc = LIBRARIES[library]
    fmt = get_format(dtype)
    np_dtype = rows[0]["tensors"][0][0]["theta"].dtype
    h = complete(hyper)
    lrs = group_lrs or [h["lr"]] * len(groups)
    spec_h = {k: v for k, v in h.items() if k not in GROUP_DEFAULTS}
    if library == "pytorch_optimizer":
        spec_h.pop("lr_zero")
    failures = []
    before = {"d": h["d0"], "d_max": h["d0"], "d_numerator": 0.0, "k": 0, "d0": h["d0"]}
    prev = [[{"theta": np.asarray(a).astype(np_dtype)} for a in grp] for grp in groups]
    for s, row in enumerate(rows):
        where, obs = f"step {s + 1}", row["scalars"]
        Ob, Oa = Bound(fmt, scalars="float64"), Bound(FORMATS[acc], scalars="float64")
        reductions, zero = [], True
        for gi, grp in enumerate(row["tensors"]):
            for pi, cur in enumerate(grp):
                gr = grads[s][gi][pi]
                if gr is None or lrs[gi] == 0.0:
                    continue
                sl = slice(None, None, h["slice_p"])  # the elements the reductions read
                theta0 = prev[gi][pi]["theta"].astype(np.float64).ravel()[sl]
                p0 = np.asarray(groups[gi][pi], dtype=np.float64).ravel()[sl]
                g = np.asarray(gr, dtype=np.float64).ravel()[sl]
                terms = []
                for gv, pv, tv in zip(g, p0, theta0):
                    ge = Ob.input(float(gv))
                    if h["weight_decay"] != 0 and not h["decouple"]:
                        ge = Ob.add(ge, Ob.mul(Ob.hyper(h["weight_decay"]), Ob.input(float(tv))))
                    terms.append(Ob.mul(ge, Ob.sub(Ob.input(float(pv)), Ob.input(float(tv)))))
                dot = _sum(Ob, terms)
                new_s = cur["s"].astype(np.float64).ravel()[sl]
                zero = zero and not new_s.any()
                l1 = _sum(Ob, [Ob.abs(Ob.input(float(x))) for x in new_s])
                reductions.append({"dot": B(dot.v, dot.e), "l1": B(l1.v, l1.e)})
        early = zero
        if not all(np.isfinite(before[n]) for n in ("d", "d_max", "d_numerator")):
            pass  # a non-finite scalar (float16 overflow downstream): nothing left to compare exactly
        elif early:  # D = 0: prodigyopt returns before θ, k and the group scalars move
            expect = dict(before)
            if library == "pytorch_optimizer":  # it counts the step and decays its d_numerator tensor before
                expect["k"] = before["k"] + 1
                expect["d_numerator"] = float(np.float32(np.float32(before["d_numerator"]) * np.float32(h["beta3"])))
            for name in ("d", "d_max", "k", "d_numerator"):
                if obs[name] != expect[name]:
                    failures.append(f"{where} (D = 0) {name}: got {obs[name]!r}, expected {expect[name]!r}")
        else:
            N, D = group_scalars(Oa, h, before, reductions, bias_divides=library == "pytorch_optimizer")
            d_hat = Oa.div(Oa.mul(Oa.hyper(h["d_coef"]), N), D)
            failures += _within(obs["d_numerator"], N, "d_numerator", where)
            failures += _within(obs["d_denom"], D, "d_denom", where)
            failures += _within(obs["d_hat"], d_hat, "d_hat", where)
            if obs["d_hat"] is not None:
                d_max, d = next_d(h, before, obs["d_hat"])
                if (obs["d_max"], obs["d"]) != (d_max, d):
                    failures.append(f"{where} (d_max, d): got {(obs['d_max'], obs['d'])!r}, from the observed d̂ "
                                    f"{obs['d_hat']!r} exactly {(d_max, d)!r}")
            if obs["k"] != before["k"] + 1:
                failures.append(f"{where} k: got {obs['k']}, expected {before['k'] + 1}")
        failures += _check_tensors(spec, spec_h, before, obs, prev, row, grads[s], lrs, fmt, where, early,
                                   h["slice_p"])
        before = {"d": obs["d"], "d_max": obs["d_max"], "d_numerator": obs["d_numerator"], "k": obs["k"],
                  "d0": h["d0"]}
        prev = row["tensors"]
    return failures


def _check_tensors(spec, spec_h, before, obs, prev, row, step_grads, lrs, fmt, where, early, slice_p) -> list:
    failures = []
    for gi, grp in enumerate(row["tensors"]):
        for pi, cur in enumerate(grp):
            gr = step_grads[gi][pi]
            if gr is None:
                continue
            last = prev[gi][pi]
            zeros = np.zeros_like(last["theta"])
            given = {n: last.get(n, zeros) for n in ("exp_avg", "exp_avg_sq", "s")}
            hyper = {**spec_h, "d": before["d"], "d_next": obs["d"], **({"lr_zero": True} if lrs[gi] == 0 else {})}
            g = np.asarray(gr, dtype=np.float64).astype(last["theta"].dtype)
            ref = trajectory(spec, hyper, last["theta"], [g], state=given, step=before["k"], formats=(fmt.name,))[0]
            bnd = trajectory_bounds(spec, hyper, last["theta"], [g], fmt, state=given, step=before["k"],
                                    scalars="float64")[0]
            names = [n for n in ("exp_avg", "exp_avg_sq", "s") if n in cur]
            if early:
                if not np.array_equal(cur["theta"], last["theta"], equal_nan=True):
                    failures.append(f"{where} (D = 0) theta of tensor {gi}.{pi} moved")
            else:
                names.insert(0, "theta")
            for name in names:
                exact = ref.theta if name == "theta" else ref.state[name]
                for k, idx in enumerate(np.ndindex(*np.shape(cur["theta"]))):
                    if name == "s" and k % slice_p:
                        continue  # no s there (slice_p)
                    verdict, _, ratio, why = _compare(cur[name][idx], exact[idx], bnd[name][idx], fmt)
                    if verdict == "fail":
                        failures.append(f"{where} tensor {gi}.{pi} {name}{list(idx)}: got {float(cur[name][idx])!r}, "
                                        f"exact {float(exact[idx].value)!r}, {ratio:.3g}× the bound {why}")
    return failures
