"""Standalone reproductions: every failing case prints a call of ``replay`` that re-runs it.

Arrays travel as hex floats (exact in every format), or, when drawn by
``strategies.bulk_arrays``, as their recipe (a numpy seed and the drawn values
as hex, ``strategies.bulk_array``), which rebuilds them bit for bit;
hyperparameters travel as Python float literals (``repr`` is exact), and the
memory layout (``Case.layout``) by name, and the case axes (``Case.lr_tensor``, ``Case.complex``, ``Case.mixed_dtype``, ``Case.betas_tensor``) where set, so the printed call replays the very
inputs that failed, laid out as they were, on any machine.
"""
from __future__ import annotations

import numpy as np

from reference.formats import from_hex, get_format, to_hex
from reference.sparse import Uncoalesced, uncoalesced

from . import backends
from .backend import CASE_AXES, Case, Group, check_output, for_backend, scalar_precision
from .check import check
from .strategies import bulk_array, recipe_of


def encode_array(a) -> dict:
    """A sparse gradient (a MaskedArray) carries ``"outside"``: the flat indices of its masked elements; one with
    duplicate indices (``reference.sparse.Uncoalesced``) ``"twice"`` too (the flat indices held twice) and
    ``"second"`` (their second values, as an array)."""
    outside = None
    if isinstance(a, Uncoalesced):
        return {**encode_array(np.ma.MaskedArray(np.ma.getdata(a), mask=np.ma.getmaskarray(a))),
                "twice": np.flatnonzero(a.twice).tolist(), "second": encode_array(a.second)}
    if isinstance(a, np.ma.MaskedArray):
        outside = np.flatnonzero(np.ma.getmaskarray(a)).tolist()
        a = np.ma.getdata(a)
    a = np.asarray(a)
    recipe = recipe_of(a)
    out = {"bulk": recipe} if recipe is not None else {"shape": list(a.shape), "hex": [to_hex(x) for x in a.ravel()]}
    if outside is not None:
        out["outside"] = outside
    return out


def decode_array(d: dict, dtype: str) -> np.ndarray:
    if "bulk" in d:
        r = d["bulk"]
        a = bulk_array(dtype, tuple(r["shape"]), r["seed"], tuple((k, h) for k, h in r["spots"]))
    else:
        fmt = get_format(dtype)
        a = np.array([from_hex(h, fmt) for h in d["hex"]], dtype=fmt.dtype).reshape(d["shape"])
    if "outside" in d:
        mask = np.zeros(a.size, dtype=bool)
        mask[d["outside"]] = True
        if "twice" in d:
            twice = np.zeros(a.size, dtype=bool)
            twice[d["twice"]] = True
            return uncoalesced(a, ~mask.reshape(a.shape), twice.reshape(a.shape), decode_array(d["second"], dtype))
        return np.ma.MaskedArray(a, mask=mask.reshape(a.shape))
    return a


def reproduction(data: Case, backend: str, path: str, mode: str, overrides: dict | None = None,
                 hyper_map: dict | None = None, holds: dict | None = None) -> str:
    """Python source that replays ``data`` on ``backend`` and prints the comparison (with the ``--optimizer``
    classes' ``--hyper-map`` and ``--hold``, where there are any)."""
    groups = [(h, [encode_array(p) for p in ps]) for h, ps in data.groups]
    grads = [[[None if g is None else encode_array(g) for g in row] for row in step] for step in data.grads]
    return (
        "from conformance.replay import replay\n"
        f"replay(backend={backend!r}, optimizer={data.optimizer!r}, path={path!r}, dtype={data.dtype!r}, "
        f"mode={mode!r},\n       overrides={overrides or {}!r},\n"
        + (f"       hyper_map={hyper_map!r},\n" if hyper_map else "")
        + (f"       holds={holds!r},\n" if holds else "") +
        f"       groups={groups!r},\n       grads={grads!r},\n       lrs={data.lrs!r}, layout={data.layout!r}"
        + "".join(f", {axis}=True" for axis in CASE_AXES if getattr(data, axis)) + ")\n"
    )


def decode(optimizer: str, dtype: str, groups, grads, lrs, layout: str = "contiguous", **axes) -> Case:
    return Case(
        optimizer, dtype,
        [Group(dict(h), [decode_array(p, dtype) for p in ps]) for h, ps in groups],
        [[[None if g is None else decode_array(g, dtype) for g in row] for row in step] for step in grads],
        lrs, layout=layout, **axes,
    )


def replay(backend: str, optimizer: str, path: str, dtype: str, mode: str, groups, grads, lrs=None,
           overrides=None, quiet: bool = False, layout: str = "contiguous", lr_tensor: bool = False,
           complex: bool = False, mixed_dtype: bool = False, betas_tensor: bool = False, hyper_map=None, holds=None):
    """Re-run a printed case and return its ``check.Report`` (printed unless ``quiet``)."""
    classes = {k: backends.load_class(v) for k, v in (overrides or {}).items()}
    impl = backends.load(backend, overrides=classes or None, hyper_map=hyper_map or None, holds=holds or None)
    data = decode(optimizer, dtype, groups, grads, lrs, layout, lr_tensor=lr_tensor, complex=complex,
                  mixed_dtype=mixed_dtype, betas_tensor=betas_tensor)
    case = for_backend(data, path)
    outputs = impl.run(case)
    check_output(case, outputs)
    report = check(data, outputs, mode, scalars=scalar_precision(impl, optimizer, path))
    if not quiet:
        print(report.summary())
    return report
