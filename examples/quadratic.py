"""The quadratic comparison from the optimizer literature, against the exact trajectories.

    python examples/quadratic.py [--steps 1000] [--img docs/img/quadratic.png] [--md docs/quadratic.md]

J(θ) = θ², θ₀ = 3, lr = 0.01, 1,000 iterations of SGD with momentum 0.9,
Nesterov (momentum 0.9), Adagrad, RMSprop and Adam (torch's defaults
otherwise).  The gradient depends on θ (g = 2θ), so every trajectory feeds
back on itself:

* the exact trajectory is stepped one iteration at a time with
  g = 2·θ_exact: the spec's compiled update (``reference.program``) runs over
  ``reference.arith.Interval`` at 256 bits, each step's interval provably
  containing the exact real θ; the rounding of θ to float32 and float64 is
  certified at every step (both ends of the interval round alike) or the whole
  trajectory is recomputed at twice the precision (Ziv's strategy, as in
  ``reference.step``);
* the backend, torch.optim on the CPU (for-loop path, ``foreach=False``), runs
  in float32 and in float64 with its own θ: g = 2·θ_backend, computed in the
  dtype (exact: a doubling).

Drift is the ULP error of the backend's θ after each iteration against the
exact θ of the same iteration (``reference.ulp.ulp_error``: in units of the
dtype's spacing at the exact value; a correctly rounded result is within 0.5).
Writes the plot and a Markdown table, and prints the table.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from fractions import Fraction

import mpmath
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import spec as spec_pkg  # noqa: E402
from reference import arith  # noqa: E402
from reference.formats import get_format, round_to_format  # noqa: E402
from reference.program import compile_rule  # noqa: E402
from reference.step import initial_state  # noqa: E402
from reference.ulp import ulp_error  # noqa: E402

THETA0 = 3.0
LR = 0.01
OPTIMIZERS = {  # label -> (spec, hyperparameters); the rest are torch's defaults
    "SGD (momentum 0.9)": ("sgd", {"lr": LR, "momentum": 0.9}),
    "Nesterov (momentum 0.9)": ("sgd", {"lr": LR, "momentum": 0.9, "nesterov": True}),
    "Adagrad": ("adagrad", {"lr": LR}),
    "RMSprop": ("rmsprop", {"lr": LR}),
    "Adam": ("adam", {"lr": LR}),
}
DTYPES = ("float32", "float64")
START_PREC, MAX_PREC = 256, 4096


class _Unsettled(Exception):
    pass


def exact_trajectory(spec, hyper: dict, steps: int, formats=DTYPES) -> dict:
    """The exact θ after each of ``steps`` iterations with g = 2θ: midpoints (mpf) and certified roundings."""
    prec = START_PREC
    while True:
        try:
            return _exact_at(spec, hyper, steps, formats, prec)
        except (_Unsettled, arith.Undecided):
            if prec >= MAX_PREC:
                raise
            prec *= 2


def _exact_at(spec, hyper, steps, formats, prec) -> dict:
    hyper = spec.complete(hyper)
    program = compile_rule(spec, hyper)
    O = arith.Interval(prec)
    numeric = {k: O.input(Fraction(v)) for k, v in hyper.items() if not isinstance(v, bool)}
    state = {"theta": O.input(Fraction(THETA0))}
    state.update({k: O.input(v[()]) for k, v in initial_state(spec, hyper, ()).items()})
    two = O.const(2, 1)
    mids, rounded, width = [], {f: [] for f in formats}, 0.0
    for t in range(1, steps + 1):
        values = {**state, "g": O.mul(two, state["theta"]), "t": O.input(t), **numeric}
        state = {k: arith.check_real(v) for k, v in program(O, values).items()}
        th = state["theta"]
        lo, hi = (mpmath.mp.make_mpf(x) for x in th._mpi_)
        for f in formats:
            a, b = round_to_format(lo, get_format(f)), round_to_format(hi, get_format(f))
            if a != b and not (a == 0 and b == 0):
                raise _Unsettled(f"step {t}: [{lo}, {hi}] rounds to {a} and {b} in {f}")
            rounded[f].append(a)
        mids.append(mpmath.mp.make_mpf(th.mid._mpi_[0]))
        if lo != 0:
            width = max(width, float(abs((hi - lo) / lo)))
    return {"theta": mids, "rounded": rounded, "prec": prec, "max_rel_width": width}


def backend_trajectory(spec_name: str, hyper: dict, dtype: str, steps: int) -> np.ndarray:
    """torch.optim on the CPU, for-loop path, g = 2θ from its own θ; θ after each iteration."""
    import torch

    from conformance.backends.torch_backend import TorchBackend

    tb = TorchBackend("cpu")
    cls = tb.optimizer_class(spec_name)
    full = spec_pkg.get(spec_name).complete(hyper)
    kwargs = {**tb.map_hyper(spec_name, full), **tb._path_flags(spec_name, "for-loop")}
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    p = torch.tensor([THETA0], dtype=tdtype)
    opt = cls([p], **kwargs)
    out = np.empty(steps, dtype=get_format(dtype).dtype)
    for s in range(steps):
        p.grad = 2 * p.detach()
        opt.step()
        out[s] = p.detach()[0].item()
    return out


def run(steps: int) -> list:
    results = []
    for label, (name, hyper) in OPTIMIZERS.items():
        t0 = time.perf_counter()
        spec = spec_pkg.get(name)
        ref = exact_trajectory(spec, hyper, steps)
        t_ref = time.perf_counter() - t0
        row = {"label": label, "spec": name, "hyper": hyper, "ref": ref, "seconds_reference": t_ref}
        for dtype in DTYPES:
            fmt = get_format(dtype)
            got = backend_trajectory(name, hyper, dtype, steps)
            ulps = np.array([ulp_error(got[s], ref["theta"][s], fmt) for s in range(steps)])
            abs_err = np.array([float(abs(mpmath.mpf(float(got[s])) - ref["theta"][s])) for s in range(steps)])
            exact_hits = int(sum(got[s] == ref["rounded"][dtype][s] for s in range(steps)))
            row[dtype] = {"theta": got, "ulp": ulps, "abs": abs_err, "correctly_rounded_steps": exact_hits}
        results.append(row)
        print(f"{label}: exact trajectory at {ref['prec']} bits in {t_ref:.1f} s; "
              f"float32 max {np.max(row['float32']['ulp']):.3g} ulp, float64 max {np.max(row['float64']['ulp']):.3g} ulp",
              file=sys.stderr, flush=True)
    return results


def plot(results: list, steps: int, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10")
    fig = plt.figure(figsize=(13.5, 8.5))
    gs = fig.add_gridspec(2, 2, height_ratios=[1.1, 1])
    ax = fig.add_subplot(gs[0, :])
    x = np.arange(1, steps + 1)
    for k, r in enumerate(results):
        ax.plot(np.r_[0, x], np.r_[THETA0, [float(v) for v in r["ref"]["theta"]]], color=colors(k), lw=1.6,
                label=f"{r['label']} exact")
        ax.plot(x, r["float32"]["theta"].astype(float), color=colors(k), lw=0, marker="o", ms=2.2,
                markevery=max(1, steps // 60), label=f"{r['label']} torch float32")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("iteration")
    ax.set_ylabel("θ")
    every = max(1, steps // 60)
    ax.set_title(f"J(θ) = θ², θ₀ = {THETA0:g}, lr = {LR:g}: exact trajectories (lines) and torch-cpu float32 "
                 f"(markers{f', every {every}th iteration' if every > 1 else ''})", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(alpha=0.3)
    floor = 1e-3
    for j, dtype in enumerate(DTYPES):
        a = fig.add_subplot(gs[1, j], sharey=None if j == 0 else fig.axes[1])
        for k, r in enumerate(results):
            y = np.maximum(r[dtype]["ulp"], floor)
            a.plot(x, np.where(np.isfinite(y), y, np.nan), color=colors(k), lw=1, label=r["label"])
        a.set_yscale("log")
        a.axhline(0.5, color="grey", lw=0.6, ls=":")
        a.set_xlabel("iteration")
        a.set_title(f"torch-cpu {dtype} (for-loop): ULP error of θ vs the exact θ", fontsize=10)
        a.grid(alpha=0.3)
        if j == 0:
            a.set_ylabel(f"ULP error (0 drawn at {floor:g}; dotted: 0.5)")
            a.legend(fontsize=7.5)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _g(x) -> str:
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    return f"{x:.4g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.3e}"


def table(results: list, steps: int) -> str:
    head = ("| optimizer | exact θ₁₀₀₀ | float32 θ₁₀₀₀ | float32 max ULP error (iteration) | float32 final ULP error "
            "| float32 correctly rounded iterations | float64 θ₁₀₀₀ | float64 max ULP error (iteration) "
            "| float64 final ULP error | float64 correctly rounded iterations |").replace("₁₀₀₀", f"_{steps}")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        cells = [r["label"], mpmath.nstr(r["ref"]["theta"][-1], 10)]
        for dtype in DTYPES:
            d = r[dtype]
            k = int(np.argmax(d["ulp"]))
            cells += [repr(float(d["theta"][-1])),
                      f"{_g(d['ulp'][k])} (iteration {k + 1}, exact θ {mpmath.nstr(r['ref']['theta'][k], 3)})",
                      _g(d["ulp"][-1]),
                      f"{d['correctly_rounded_steps']}/{steps}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: list, steps: int, img_rel: str, elapsed: float) -> str:
    from conformance.backends.torch_backend import environment

    env = environment("cpu")
    hyper = "; ".join(f"{r['label']}: " + ", ".join(f"{k}={v}" for k, v in r["hyper"].items()) for r in results)
    precs = ", ".join(f"{r['label']} {r['ref']['prec']} bits (interval width ≤ {r['ref']['max_rel_width']:.1e} "
                      "relative)" for r in results)
    return f"""# The quadratic J(θ) = θ²: torch.optim against the exact trajectories

J(θ) = θ², θ₀ = {THETA0:g}, lr = {LR:g}, {steps} iterations, g = 2θ. {hyper} (torch's defaults otherwise).

![θ per iteration and ULP error]({img_rel})

The exact trajectory feeds g = 2·θ_exact into the spec's update at every iteration (interval arithmetic,
{precs}; every rounding to float32 and float64 certified). The backend (torch {env.get('torch')} on
{env.get('device_name')}, for-loop path, `foreach=False`) feeds g = 2·θ from its own θ, in float32 and in
float64. Drift: the ULP error of the backend's θ after each iteration against the exact θ of that iteration
(units of the dtype's spacing at the exact value; ≤ 0.5 means correctly rounded).

{table(results, steps)}

Large ULP errors go with small |θ|: the ULP is relative to the exact value, so an absolute error carried over
from earlier iterations counts for more as θ shrinks (the table gives the exact θ at the worst iteration).
SGD and Nesterov oscillate around the minimum and their spikes are the iterations where θ passes close to 0.
The iterates that decay furthest leave the normal float32 range (below 2⁻¹²⁶ ≈ 1.2e-38 float32 θ is subnormal,
its spacing a fixed 2⁻¹⁴⁹, and an exact value below 2⁻¹⁵⁰ rounds to 0).
No error bound is drawn here: the trajectories feed back through g = 2θ, so the backend's and the exact
trajectory see different gradients after the first step (`python -m reports.drift_study` compares against the
bound with fixed gradients).

Generated by `python examples/quadratic.py` in {elapsed:.0f} s (torch {env.get('torch')}, numpy
{env.get('numpy')}, {env.get('cpu_capability')}, denormals flushed: {env.get('cpu_denormals_flushed')}).
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--img", default="docs/img/quadratic.png")
    ap.add_argument("--md", default="docs/quadratic.md")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = run(args.steps)
    plot(results, args.steps, args.img)
    elapsed = time.perf_counter() - t0
    text = markdown(results, args.steps, os.path.relpath(args.img, os.path.dirname(os.path.abspath(args.md))), elapsed)
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(text)
    print(table(results, args.steps))
    print(f"\nwrote {args.img} and {args.md} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
