"""Error growth over long trajectories: a backend against the exact trajectory, step by step.

    python -m reports.drift_study [--backend torch-cpu] [--path for-loop] [--steps 1000]
                                [--optimizers sgd adam ...] [--dtypes float32 bfloat16 ...]
                                [--elements 8] [--seed 0] [--jobs N] [--out out/drift]

The problem is small and fixed (seeded): ``--elements`` parameters θ₀ ~ N(0, 1)
and one pre-drawn gradient sequence from a noisy quadratic
f(θ) = ½ Σ hᵢ θᵢ², hᵢ log-uniform in [0.1, 10]: the gradients
gₛ = h ⊙ θ̄ₛ + σ ξₛ (σ = 0.1, ξ ~ N(0, 1)) are taken along the path θ̄ of plain
gradient descent (step 0.05) computed once in float64, then rounded to each
dtype.  The gradients are fixed inputs, not computed from the backend's
parameters: every optimizer and the exact reference see the same sequence,
so the only difference between the backend and the reference is rounding.

For each optimizer and dtype the backend runs the whole trajectory once;
``reference.step.trajectory`` gives the exact trajectory (correctly rounded to
the dtype) and ``reference.bound.trajectory_bounds`` the error bound of any
conforming implementation after k steps.  Per step the parameter's ULP error
(``reference.ulp.ulp_error``, max over the elements) and its error/bound ratio
are recorded.

Writes to ``--out``: ``drift.png`` (ULP error per step, log scale, one line per
optimizer, one panel per dtype), ``report.md`` (the plot and a table: final and
maximum ULP error, error/bound at the last step) and ``trajectories.json`` (the
per-step series and the execution target; ``--replot`` redraws from it).  The name
``drift.json`` is left to the pytest drift report (``--drift-report``), which
``reports/docs.py`` reads from ``docs/drift/drift.json``.  One progress line per
optimizer/dtype goes to stderr.

Hyperparameters are the spec's defaults, updated by each optimizer's ``drift_hyper``
(conformance/optimizers.py: SGD runs with lr 0.01, momentum 0.9).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Optional

import numpy as np
import sympy as sp

import spec as spec_pkg
from conformance import backends, optimizers
from conformance.backend import Case, Group, check_output, for_backend
from conformance.check import check
from conformance.environment import target_environment
from conformance.known_deviations import find, target_of
from reference.fast_round import round_array
from reference.formats import get_format

DEFAULT_DTYPES = ("float32", "bfloat16", "float16", "float64")
NOISE = 0.1
JSON_NAME = "trajectories.json"
LOOSE_ULP = 1e6  # a bound above this many ulps at the last step is flagged in the report
GD_STEP = 0.05


# --------------------------------------------------------------------------- the problem

def problem(elements: int, steps: int, seed: int) -> tuple:
    """(θ₀, gradients) in float64: the fixed noisy-quadratic gradient sequence (see the module docstring)."""
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(elements)
    h = np.exp(rng.uniform(np.log(0.1), np.log(10.0), elements))
    path = theta0.copy()
    grads = []
    for _ in range(steps):
        g = h * path + NOISE * rng.standard_normal(elements)
        grads.append(g)
        path = path - GD_STEP * g
    return theta0, grads


def _in_dtype(a, dtype: str) -> np.ndarray:
    """``a`` correctly rounded to ``dtype`` (once: NumPy's cast to bfloat16 goes through float32 and rounds twice)."""
    return round_array(a, dtype)


# --------------------------------------------------------------------------- one optimizer × dtype

def run_one(backend_name: str, path: Optional[str], optimizer: str, dtype: str, steps: int, elements: int,
            seed: int, impl=None) -> dict:
    """Backend vs exact trajectory for one optimizer and dtype; per-step ULP errors and error/bound ratios,
    from ``conformance.check``'s findings for the parameter (the verdicts the conformance suite gives).

    ``impl``: the backend object, when it is not ``backends.load(backend_name)`` (an audited class)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        import torch  # optional: only a torch backend needs it, and it must step on one thread
        torch.set_num_threads(1)
    except ImportError:
        pass
    impl = backends.load(backend_name) if impl is None else impl
    spec = spec_pkg.get(optimizer)
    info = optimizers.OPTIMIZERS.get(optimizer)  # None for another framework's dialect: its defaults
    hyper = spec.complete(info.drift_hyper if info else {})
    paths = list(impl.paths(optimizer))
    if path is None:
        path = "for-loop" if "for-loop" in paths else (paths[0] if paths else None)
    result = {"optimizer": optimizer, "dtype": dtype, "path": path, "hyper": hyper, "steps": steps}
    if path is None or path not in paths or dtype not in impl.dtypes(optimizer, path):
        result["skipped"] = f"{backend_name} offers no {optimizer} {path or ''} {dtype}".replace("  ", " ")
        result["seconds"] = time.perf_counter() - t0
        result["cpu_seconds"] = time.process_time() - c0
        return result
    fmt = get_format(dtype)
    theta0, grads64 = problem(elements, steps, seed)
    p0 = _in_dtype(theta0, dtype)
    grads = [_in_dtype(g, dtype) for g in grads64]

    data = Case(optimizer, dtype, [Group(dict(hyper), [p0])], [[[g]] for g in grads])
    case = for_backend(data, path)
    outputs = impl.run(case)
    check_output(case, outputs)
    t_backend = time.perf_counter() - t0
    report = check(data, outputs, "trajectory")
    t_check = time.perf_counter() - t0 - t_backend

    ulp = [0.0] * steps
    ratio, bound_ulp = [math.nan] * steps, [math.nan] * steps
    limited, lost = [0] * steps, [0] * steps
    why = None
    for f in report.findings:
        if f.quantity != "theta":
            continue
        s = f.step
        ulp[s] = _nanmax(ulp[s], f.ulp)
        lost[s] += f.lost_update
        if f.verdict == "limited":  # the bound model gives up here: a limitation of the dtype
            limited[s] += 1
            why = why or f.why
            continue
        ratio[s] = _nanmax(ratio[s], f.ratio)
        try:
            b = float(f.bound / float(fmt.ulp(f.exact)))
        except (OverflowError, ValueError, TypeError, ZeroDivisionError):
            b = math.inf
        bound_ulp[s] = _nanmax(bound_ulp[s], b)
    result.update({
        "ulp": ulp, "ratio": ratio, "limited": limited, "lost": lost, "bound_ulp": bound_ulp,
        "limited_why": why,
        "known_deviation": _known(impl, backend_name, optimizer, path, dtype),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "timing": {"backend": t_backend, "check": t_check},
        "final_theta": [float(x) for x in np.asarray(outputs[-1].params[0][0], dtype=np.float64)],
    })
    return result


def _nanmax(a: float, b: float) -> float:
    if b is None or math.isnan(b):
        return a
    if math.isnan(a):
        return b
    return max(a, b)


def _known(impl, backend: str, optimizer: str, path: str, dtype: str) -> Optional[str]:
    dev = find(target_of(impl, backend, optimizer, path), optimizer, path, dtype, "test_trajectory")
    return dev.reason if dev else None


# --------------------------------------------------------------------------- outputs

def _summary(r: dict) -> dict:
    """Final and worst values of one run; a ratio is nan where every element was dtype-limited."""
    if "summary" in r:  # saved with the run, from the unrounded series (see write_json)
        return r["summary"]
    ulp, ratio = r["ulp"], r["ratio"]
    k = max(range(len(ulp)), key=lambda s: (ulp[s], -s))
    checked = [x for x in ratio if not math.isnan(x)]
    worst = max(checked, default=math.nan)
    verdict = "pass"
    if worst > 1:
        verdict = "xfail-known" if r.get("known_deviation") else "FAIL"
    return {"final_ulp": ulp[-1], "max_ulp": ulp[k], "max_ulp_step": k + 1,
            "final_ratio": ratio[-1], "max_ratio": worst, "final_bound_ulp": r["bound_ulp"][-1],
            "final_limited": r["limited"][-1], "limited_steps": sum(1 for n in r["limited"] if n),
            "lost_updates": sum(r["lost"]), "verdict": verdict}


def plot(results: list, dtypes: list, png: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-3
    ncols = min(2, len(dtypes))
    nrows = -(-len(dtypes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 4.6 * nrows), squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10")
    names = list(dict.fromkeys(r["optimizer"] for r in results))
    flat = list(axes.flat)
    for ax in flat[len(dtypes):]:
        ax.set_visible(False)
    for ax, dtype in zip(flat, dtypes):
        for r in results:
            if r["dtype"] != dtype or "ulp" not in r:
                continue
            y = np.maximum(np.asarray(r["ulp"], dtype=float), floor)  # 0 ulp on a log axis
            y = np.where(np.isfinite(y), y, np.nan)
            ax.plot(np.arange(1, len(y) + 1), y, lw=1.1, color=colors(names.index(r["optimizer"]) % 10),
                    label=r["optimizer"])
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(dtype)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.grid(True, which="major", alpha=0.3)
    for row in axes:
        row[0].set_ylabel(f"max ULP error of θ vs the exact trajectory\n(0 drawn at {floor:g}; dotted: 0.5 ulp)")
    flat[len(dtypes) - 1].legend(loc="lower right", fontsize=8, ncol=3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _g(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.2e}"


def table(results: list) -> str:
    head = ("| optimizer | dtype | path | final ULP error | max ULP error (step) | bound at last step (ulp) "
            "| error/bound at last step | max error/bound | lost updates | dtype-limited | verdict |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    notes = {}
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['optimizer']} | {r['dtype']} | {r.get('path') or '-'} | skipped: {r['skipped']} "
                         "| | | | | | | |")
            continue
        s = _summary(r)
        n = len(r["ulp"])
        lim = "-"
        if s["limited_steps"]:
            note = notes.setdefault(r["limited_why"].split(":")[0], len(notes) + 1)
            lim = (f"{s['limited_steps']}/{n} steps, {s['final_limited']}/{len(r['final_theta'])} "
                   f"elements at the end [{note}]")
        final_ratio = "limited" if math.isnan(s["final_ratio"]) else _g(s["final_ratio"])
        bound = "limited" if math.isnan(s["final_bound_ulp"]) else _g(s["final_bound_ulp"])
        lines.append(f"| {r['optimizer']} | {r['dtype']} | {r['path']} | {_g(s['final_ulp'])} | "
                     f"{_g(s['max_ulp'])} ({s['max_ulp_step']}) | {bound} | {final_ratio} | "
                     f"{_g(s['max_ratio'])} | {s['lost_updates']} | {lim} | {s['verdict']} |")
    if notes:
        lines.append("")
        for why, k in notes.items():
            lines.append(f"[{k}] dtype-limited: {why} (the bound model cannot bound these elements; "
                         "their ULP error is still measured)")
    loose = [f"{r['optimizer']} {r['dtype']}" for r in results if "ulp" in r
             and not math.isnan(_summary(r)["final_bound_ulp"]) and _summary(r)["final_bound_ulp"] > LOOSE_ULP]
    if loose:
        lines.append(f"\nThe bound at the last step exceeds {LOOSE_ULP:.0e} ulps for {', '.join(loose)}: over this "
                     "many steps the tolerance model's error bound has grown too large for error/bound to say "
                     "much there (the ULP errors themselves are unaffected).")
    known = {r["known_deviation"] for r in results if r.get("known_deviation") and "ulp" in r
             and _summary(r)["verdict"] != "pass"}
    for reason in sorted(known):
        lines.append(f"\nxfail-known: {reason}")
    return "\n".join(lines)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _write_outputs(results: list, args, env: dict, elapsed: float, out: str) -> None:
    plot(results, args.dtypes, os.path.join(out, "drift.png"),
         f"{args.backend}: ULP error of θ against the exact trajectory "
         f"({args.elements} elements, noisy quadratic, seed {args.seed})")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown(results, args, env, elapsed, "drift.png"))


def markdown(results: list, args, env: dict, elapsed: float, png_name: str) -> str:
    cpu = sum(r.get("cpu_seconds", 0.0) for r in results)
    cmd = "python -m reports.drift_study " + " ".join(
        [f"--backend {args.backend}"] + ([f"--path {args.path}"] if args.path else [])
        + [f"--steps {args.steps}", f"--elements {args.elements}", f"--seed {args.seed}",
           "--optimizers " + " ".join(args.optimizers), "--dtypes " + " ".join(args.dtypes),
           f"--out {args.out}"])
    target = ", ".join(f"{k}={env[k]}" for k in ("device_name", "torch", "numpy", "cuda", "matmul_allow_tf32",
                                                   "cpu_denormals_flushed", "cpu_capability", "num_threads")
                       if k in env)
    hyper = "; ".join(f"{r['optimizer']}: " + ", ".join(f"{k}={v}" for k, v in r["hyper"].items()
                                                          if not isinstance(v, bool) or v)
                      for r in {r["optimizer"]: r for r in results}.values())
    return f"""# Drift over {args.steps} steps: {args.backend} against the exact trajectory

![ULP error per step]({png_name})

Problem: {args.elements} parameters, θ₀ ~ N(0, 1), and one fixed gradient sequence from a noisy quadratic
(gₛ = h ⊙ θ̄ₛ + {NOISE}·ξₛ along float64 gradient descent, hᵢ log-uniform in [0.1, 10], seed {args.seed}),
rounded to each dtype; the backend and the exact reference (`reference.step.trajectory`) see the same inputs.
*ULP error*: the largest over the elements of |θ_backend − θ_exact| / ulp(θ_exact) after each step.
*Bound*: `reference.bound.trajectory_bounds`, the error any conforming implementation may accumulate
over the whole trajectory (in ulps of the exact value, max over the elements); *error/bound* > 1 fails.
*Lost updates*: elements where θ + Δ = θ in the dtype although the exact parameter moved.

{table(results)}

Hyperparameters: {hyper}.

Target: {args.backend}, {target}.
Generated {getattr(args, "created", None) or _now()} in {elapsed:.0f} s wall time
({cpu:.0f} s CPU time in total) with {args.jobs} processes by

    {cmd}
"""


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.drift_study", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="torch-cpu", help="numpy, torch-cpu, torch-cuda or module:attr")
    ap.add_argument("--path", default=None, help="implementation path (default: for-loop, else the first offered)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--optimizers", nargs="+", default=list(optimizers.names()))
    ap.add_argument("--dtypes", nargs="+", default=list(DEFAULT_DTYPES))
    ap.add_argument("--elements", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--out", default="out/drift", help="output folder")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw drift.png and report.md from the trajectories.json already in --out")
    args = ap.parse_args(argv)
    if args.replot:
        return replot(args.out)

    for name in args.optimizers:
        spec_pkg.get(name)
    for d in args.dtypes:
        get_format(d)
    os.makedirs(args.out, exist_ok=True)

    tasks = [(o, d) for d in args.dtypes for o in args.optimizers]
    # Slowest first (longer rules cost more to run exactly): keeps both processes busy to the end.
    cost = {o: sum(sp.count_ops(a.expr) for a in spec_pkg.get(o).statements({})) for o in args.optimizers}
    order = sorted(tasks, key=lambda t: -cost[t[0]])
    start = time.perf_counter()
    print(f"drift: {len(tasks)} runs of {args.steps} steps × {args.elements} elements on {args.backend}, "
          f"{args.jobs} processes", file=sys.stderr, flush=True)
    results = {}

    def progress(res):
        done = len(results)
        el = time.perf_counter() - start
        if "skipped" in res:
            msg = f"skipped ({res['skipped']})"
        else:
            s = _summary(res)
            msg = (f"final {_g(s['final_ulp'])} ulp, max {_g(s['max_ulp'])} ulp, "
                   f"error/bound {'limited' if math.isnan(s['final_ratio']) else _g(s['final_ratio'])}, {s['verdict']}; "
                   f"{res['seconds']:.1f} s ({res['cpu_seconds']:.1f} s CPU)")
        print(f"[{done:>2}/{len(tasks)}] {res['optimizer']:<8} {res['dtype']:<8} {msg}  "
              f"(elapsed {int(el // 60)}:{el % 60:04.1f})", file=sys.stderr, flush=True)

    run_args = (args.backend, args.path)
    if args.jobs <= 1:
        for o, d in order:
            res = run_one(*run_args, o, d, args.steps, args.elements, args.seed)
            results[(o, d)] = res
            progress(res)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(run_one, *run_args, o, d, args.steps, args.elements, args.seed): (o, d)
                       for o, d in order}
            for fut in as_completed(futures):
                res = fut.result()
                results[futures[fut]] = res
                progress(res)
    elapsed = time.perf_counter() - start
    ordered = [results[t] for t in tasks]
    cpu = sum(r.get("cpu_seconds", 0.0) for r in ordered)

    try:
        impl = backends.load(args.backend)
    except ValueError:
        impl = None
    env = target_environment(args.backend, impl)
    if "num_threads" in env:
        env["num_threads"] = 1  # run_one sets it in each worker process

    args.created = _now()
    _write_outputs(ordered, args, env, elapsed, args.out)
    png = os.path.join(args.out, "drift.png")
    write_json(os.path.join(args.out, JSON_NAME),
               {"schema": "optimizer-conformance/drift-trajectories", "version": 1,
                "args": vars(args), "target": env, "seconds": elapsed, "cpu_seconds": cpu,
                "results": [{**r, **({"summary": _summary(r)} if "ulp" in r else {})} for r in ordered]})
    print(f"drift: done in {elapsed:.1f} s wall, {cpu:.1f} s CPU in {args.jobs} processes; wrote {png}, {os.path.join(args.out, 'report.md')} and "
          f"{os.path.join(args.out, JSON_NAME)}", file=sys.stderr, flush=True)
    print(table(ordered))
    return 0


def replot(out: str) -> int:
    """Redraw the plot and the Markdown report from a saved trajectories.json (no recomputation)."""
    with open(os.path.join(out, JSON_NAME)) as f:
        saved = json.load(f)
    args = argparse.Namespace(**saved["args"])
    results = [_unfinite(r) for r in saved["results"]]
    _write_outputs(results, args, saved["target"], saved["seconds"], out)
    print(table(results))
    return 0


def _unfinite(x):
    if x in ("inf", "-inf", "nan"):
        return float(x)
    if isinstance(x, dict):
        return {k: _unfinite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unfinite(v) for v in x]
    return x


SERIES = ("ulp", "ratio", "bound_ulp")


def write_json(path: str, data: dict) -> None:
    """trajectories.json: summaries exact, the per-step series rounded to 4 significant digits, compact."""
    data = dict(data)
    data["results"] = [{**r, **{k: [_sig(x) for x in r[k]] for k in SERIES if k in r}} for r in data["results"]]
    with open(path, "w") as f:
        json.dump(_finite(data), f, separators=(",", ":"), default=_json_default, allow_nan=False)
        f.write("\n")


def _sig(x, digits: int = 4):
    if x is None or isinstance(x, str) or not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{digits - 1}e}")


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def _finite(x):
    """inf/nan as the strings "inf", "-inf", "nan" (strict JSON), recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


if __name__ == "__main__":
    sys.exit(main())
