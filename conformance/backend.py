"""The backend protocol: what the harness asks of an optimizer implementation.

A backend is any object with three methods.  The harness never reaches past
them, so a NumPy port, a JAX port or a wrapper around a C++ kernel can be
tested by writing these ~30 lines::

    class Backend(Protocol):
        name: str
        def paths(self, optimizer: str) -> Sequence[str]: ...
        def dtypes(self, optimizer: str, path: str) -> Sequence[str]: ...
        def run(self, case: Case) -> list[StepOutput]: ...

* ``optimizer`` is a spec name (``"adam"``, ``"sgd"``, ...; see ``spec.OPTIMIZERS``).
* ``paths`` lists the implementation paths the backend offers for it
  (``"for-loop"``, ``"foreach"``, ``"fused"``, or any names of its own); an
  empty sequence means "not implemented" and the harness reports it as such.
* ``dtypes`` lists the parameter dtypes a path supports, by name:
  ``"float16"``, ``"bfloat16"``, ``"float32"``, ``"float64"``.
* ``run`` performs a whole trajectory and returns one ``StepOutput`` per step;
  ``case.path`` names the path to run, and the arrays and dicts of ``case``
  are the backend's own copies, free to modify.  ``case.layout`` names the
  memory layout its parameters and gradients are to have (``lay_out``); the
  arrays arrive in it, so a backend that works on them as they are honours it,
  and one that copies them (to a device, say) rebuilds it there.

Hyperparameters use PyTorch's names (``lr``, ``betas`` split into ``beta1`` and
``beta2``, ``eps``, ``weight_decay``, ``amsgrad``, ...); state variables use
PyTorch's state names (``exp_avg``, ``exp_avg_sq``, ``step``, ...).

Optional, for the case axes (``CASE_AXES``: ``Case.lr_tensor``, ``Case.complex``, ``Case.mixed_dtype``):

* ``case_axes(optimizer, path, dtype) -> dict`` maps each axis the backend knows to ``None`` (offered: the
  strategies draw it) or the reason it refuses it (shown in the run's summary).  Without it no axis is drawn.

Optional, for the property tests (``conformance/test_properties.py``), which
skip with a reason where a backend lacks them:

* ``value_only_paths``: paths that only the value tests (``known_deviations.VALUE_TESTS``) run, not the
  property tests: a variant of another path's code whose state handling is that path's.

* ``supports_resume = True`` declares that ``run`` honours ``Case.resume_at``:
  it saves its state before that step and finishes the trajectory in a fresh
  optimizer restored from the saved state.
* ``defaults(optimizer) -> dict`` returns the implementation's own default
  hyperparameters under the spec's names (``beta1``/``beta2``, not ``betas``);
  entries the spec does not know (``foreach``, ...) are allowed and ignored.

Optional, for the known deviations (``conformance/known_deviations.py``), which a
backend without it never gets:

* ``implementation(name, path) -> (qualified_name, version) | None`` says what
  runs spec ``name`` (an optimizer or a schedule) on ``path``: torch's backend
  answers ``("torch.optim.NAdam", torch.__version__)``; a known deviation
  applies only to the implementation and version range it was measured on.

Optional, for the tolerance model (``reference.bound``):

* ``scalar_precision(optimizer, path) -> "float32" | "float64"`` declares the format the
  implementation computes its per-step scalars in (bias corrections, step sizes, RAdam's ρ_t):
  Python floats are ``"float64"``, and the tolerance charges them binary64's rounding; without it,
  ``"float32"``, which covers both.  A backend that declares ``"float64"`` and computes in float32
  fails where the difference shows (RAdam's ρ_t near 5, β₂ near 1).

Optional, for the learning-rate schedule tests (``conformance/test_schedules.py``),
which skip with a reason where a backend lacks them:

* ``schedulers() -> Sequence[str]`` names the schedules it implements, by
  ``spec.schedules.SCHEDULES`` name (``"step"``, ``"cosine"``, ``"cyclic"``, ...).
* ``run_schedule(schedule, hyper, eta0, steps) -> ScheduleOutput``: build the
  scheduler with ``hyper`` (every hyperparameter of the schedule spec, by its
  spec name, defaults filled in) on an optimizer whose lr is ``eta0`` (and
  which has a ``momentum``, so that ``cycle_momentum`` works), and report the
  lr after the constructor and after each of ``steps − 1`` calls of
  ``step()`` — and the momentum, where the schedule cycles it.
* ``run_scheduled(case, schedule, hyper) -> ScheduledRun``: ``run(case)``
  with the scheduler driving the optimizer (``optimizer.step()`` then
  ``scheduler.step()`` each step; ``case.lrs`` is ``None``), reporting the lr
  (and ``momentum`` or ``beta1``, where the optimizer has one) of each group
  just before each ``optimizer.step()``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Protocol, Sequence

import numpy as np

from reference.sparse import Uncoalesced, uncoalesced

DTYPES = ("float16", "bfloat16", "float32", "float64")


class Group(NamedTuple):
    """One parameter group: its hyperparameters and its parameter tensors.

    ``hyper`` holds every hyperparameter of the spec by its spec name
    (``beta1``/``beta2`` rather than torch's ``betas`` tuple).  ``params`` are
    NumPy arrays of the case's dtype (``ml_dtypes.bfloat16`` for bfloat16), any
    shape, including 0-d.  A tuple, so ``for hyper, params in case.groups`` works.
    """

    hyper: dict
    params: list


@dataclass(frozen=True)
class Case:
    """A whole trajectory: the inputs the strategies draw, the check reads and a backend runs.

    ``groups`` is a list of ``Group``.  ``grads[s][i][j]`` is the gradient of
    parameter ``j`` of group ``i`` at step ``s`` (an array like the parameter),
    or ``None`` when that parameter has no gradient at that step (torch:
    ``p.grad is None``; it must be left untouched and its state must not
    advance).  ``lrs[s][i]``, when given, is the learning rate of group ``i``
    set just before step ``s`` (a schedule or a user changing ``group["lr"]``).
    For a spec with sparse gradients (``OptimizerSpec.sparse_gradients``: SparseAdam, sgd_sparse, adagrad_sparse)
    every gradient is a ``numpy.ma.MaskedArray`` masked outside its index set; a backend hands it to the
    implementation as a sparse tensor (torch: a COO tensor holding exactly the unmasked elements, explicit zeros
    included).  A ``reference.sparse.Uncoalesced`` one (a spec that coalesces) holds some indices twice: the
    backend hands both entries, uncoalesced.

    ``path`` is the implementation path to run, ``None`` while the case is not
    yet bound to one; a backend always receives a case with ``path`` set
    (``for_backend``).

    ``layout``: the memory layout (``LAYOUTS``, ``lay_out``) of every parameter and gradient tensor the
    backend steps; the values are the same whatever it is.

    ``resume_at``: when set, the backend must serialize its state before step
    resume_at and continue in a fresh optimizer restored from it (torch:
    state_dict/load_state_dict).  Steps count from 0, as in ``grads``; only
    backends that declare ``supports_resume = True`` are given it.

    ``lr_tensor`` and ``complex`` (``CASE_AXES``; only given to a backend whose ``case_axes`` offers them):
    ``lr_tensor``: every group's lr, and each change of it (``lrs``), reaches the optimizer as a 0-d tensor holding
    the same value (torch: a float64 tensor, so the value is exact, changed in place with ``fill_`` as torch's
    schedulers do).  ``complex``: every tensor of one or more dimensions whose last dimension is even is stepped as
    a complex tensor whose elements are its consecutive (real, imaginary) pairs (``complex_shape``); the spec's
    per-element statements then apply to each part, and the backend reports parameters and state as those real
    pairs again.  ``mixed_dtype``: every group also holds, right after each of its tensors, a companion tensor of
    another dtype (``COMPANION_DTYPE``) with the same values converted to it, stepped with the same gradients
    converted likewise; the backend reports the case's tensors only.  It checks that a tensor is stepped as in a
    one-dtype group when its group mixes dtypes (torch's foreach and fused paths split a group by dtype,
    ``_group_tensors_by_device_and_dtype``, and must keep each tensor's state with it); the companions' own values
    are not checked.  ``betas_tensor``: every group's betas (``beta1``, ``beta2``, ...; torch's ``betas``) reach the
    optimizer as 0-d tensors holding the same values (torch: float64, exact).  None of the axes changes the exact
    values the case is checked against.

    Frozen: derive variants with ``dataclasses.replace`` (``replace(case,
    resume_at=2)``).  The lists and arrays inside are not copied by that;
    ``for_backend`` copies them.
    """

    optimizer: str
    dtype: str
    groups: list
    grads: list
    lrs: Optional[list] = None
    path: Optional[str] = None
    resume_at: Optional[int] = None
    layout: str = "contiguous"
    lr_tensor: bool = False
    complex: bool = False
    mixed_dtype: bool = False
    betas_tensor: bool = False

    @property
    def steps(self) -> int:
        return len(self.grads)


#: Optional case axes a backend may offer (``case_axes``): see ``Case``.
CASE_AXES = ("lr_tensor", "complex", "mixed_dtype", "betas_tensor")

#: The dtype of a ``mixed_dtype`` case's companion tensors: one that holds the case dtype's values exactly, except
#: for float64, whose companions are float32 roundings (their values are not checked).
COMPANION_DTYPE = {"float16": "float32", "bfloat16": "float32", "float32": "float64", "float64": "float32"}


def complex_shape(shape) -> Optional[tuple]:
    """The complex shape a real tensor of ``shape`` is stepped as in a ``complex`` case: the last dimension halved
    (its pairs are the complex elements), or None where it stays real (0-d, or an odd last dimension)."""
    shape = tuple(shape)
    if not shape or shape[-1] % 2:
        return None
    return shape[:-1] + (shape[-1] // 2,)


#: Memory layouts a case can ask for (``lay_out`` says what each is).
LAYOUTS = ("contiguous", "strided", "transposed")


def lay_out(a, layout: str) -> np.ndarray:
    """A fresh array with the values of ``a`` in memory ``layout``:

    * ``"contiguous"``: a C-contiguous copy.
    * ``"strided"``: every 2nd element, from the 2nd, of a buffer twice as long in the last dimension whose
      other elements are NaN: ``buf[..., 1::2]`` (strides ×2 in the last dimension, offset 1).  0-d: contiguous.
    * ``"transposed"``: the last two axes of a C-contiguous buffer swapped, ``buf.swapaxes(-1, -2)`` (column-major
      in the last two dimensions).  Fewer than 2 dimensions: contiguous.

    Where the layout changes no stride that matters (one element; transposed with a last or next-to-last
    dimension of 1) the result is contiguous, as numpy's flags and torch's ``is_contiguous`` say.  A sparse gradient
    (a ``numpy.ma.MaskedArray``, ``OptimizerSpec.sparse_gradients``) stays one: its mask is laid out alike."""
    if isinstance(a, Uncoalesced):  # duplicate indices: the second values and where they are, laid out alike
        return uncoalesced(lay_out(np.ma.getdata(a), layout), lay_out(~np.ma.getmaskarray(a), layout),
                           lay_out(a.twice, layout), lay_out(a.second, layout))
    if isinstance(a, np.ma.MaskedArray):
        return np.ma.MaskedArray(lay_out(np.ma.getdata(a), layout), mask=lay_out(np.ma.getmaskarray(a), layout))
    a = np.asarray(a)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if layout == "strided" and a.ndim >= 1:
        buf = np.full(a.shape[:-1] + (2 * a.shape[-1],), np.nan, dtype=a.dtype)
        view = buf[..., 1::2]
        view[...] = a
        return view
    if layout == "transposed" and a.ndim >= 2:
        return np.array(a.swapaxes(-1, -2), copy=True, order="C").swapaxes(-1, -2)  # a copy even where C-ordered
    return np.array(a, copy=True, order="C")


def contiguous(layout: str, shape: tuple) -> bool:
    """Whether a tensor of ``shape`` in memory ``layout`` (``lay_out``) is contiguous (torch's ``is_contiguous``)."""
    return bool(lay_out(np.zeros(shape, dtype=np.float16), layout).flags.c_contiguous)


def for_backend(case: Case, path: str) -> Case:
    """``case`` bound to ``path``, with fresh arrays (in ``case.layout``) and hyperparameter dicts: a backend may
    mutate what it gets."""
    return replace(
        case, path=path,
        groups=[Group(dict(h), [lay_out(p, case.layout) for p in ps]) for h, ps in case.groups],
        grads=[[[None if g is None else lay_out(g, case.layout) for g in row] for row in step] for step in case.grads],
        lrs=None if case.lrs is None else [list(row) for row in case.lrs],
    )


@dataclass
class StepOutput:
    """The backend's parameters after one step, and its state if it exposes it.

    ``params[i][j]`` is parameter ``j`` of group ``i``; ``state[i][j]`` is a dict
    from PyTorch state name to array (or float for a scalar such as ``step``),
    or ``state`` is ``None`` when the backend does not expose its state.
    """

    params: list
    state: Optional[list] = None


@dataclass
class ScheduleOutput:
    """A scheduler's values: ``lrs[n]`` is the lr after ``n`` calls of ``step()``
    (``lrs[0]``: after the constructor); ``momenta[n]`` likewise the momentum (or
    β₁) it set, or ``momenta`` is ``None`` when the schedule cycles none."""

    lrs: list
    momenta: Optional[list] = None


@dataclass
class ScheduledRun:
    """An optimizer driven by a scheduler: ``outputs`` as ``run`` returns them, and
    ``used[s][i]`` the hyperparameters group ``i`` stepped with at step ``s``
    (``{"lr": ...}`` plus ``"momentum"`` or ``"beta1"`` where the optimizer has it)."""

    outputs: list
    used: list


class Backend(Protocol):
    name: str

    def paths(self, optimizer: str) -> Sequence[str]: ...

    def dtypes(self, optimizer: str, path: str) -> Sequence[str]: ...

    def run(self, case: Case) -> list: ...


class BackendError(Exception):
    """A backend raised, or returned something that is not a valid answer."""


def check_output(case: Case, outputs) -> None:
    """Raise BackendError unless ``outputs`` has the shape the protocol requires."""
    if not isinstance(outputs, (list, tuple)) or len(outputs) != case.steps:
        raise BackendError(
            f"run() must return a list of {case.steps} StepOutput, got {type(outputs).__name__}"
            + (f" of length {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
        )
    for s, out in enumerate(outputs):
        params = getattr(out, "params", None)
        if params is None or len(params) != len(case.groups):
            raise BackendError(f"step {s}: params must hold one list per group")
        for i, group in enumerate(case.groups):
            if len(params[i]) != len(group.params):
                raise BackendError(f"step {s}, group {i}: expected {len(group.params)} params, got {len(params[i])}")
            for j, p0 in enumerate(group.params):
                p = np.asarray(params[i][j])
                if p.shape != np.shape(p0):
                    raise BackendError(f"step {s}, group {i}, param {j}: shape {p.shape}, expected {np.shape(p0)}")
                if p.dtype != np.asarray(p0).dtype:
                    raise BackendError(f"step {s}, group {i}, param {j}: dtype {p.dtype}, expected {np.asarray(p0).dtype}")


def scalar_precision(backend, optimizer: str, path) -> str:
    """The format the backend declares for the per-step scalars of ``optimizer`` on ``path``; "float32" when it
    declares none (it covers binary64 too)."""
    from reference.bound import SCALAR_PRECISIONS  # here, not at import: a backend module need not load the reference

    declared = getattr(backend, "scalar_precision", None)
    value = declared(optimizer, path) if callable(declared) else "float32"
    if value not in SCALAR_PRECISIONS:
        raise BackendError(f"scalar_precision({optimizer!r}, {path!r}) returned {value!r}; "
                           f"expected one of {', '.join(SCALAR_PRECISIONS)}")
    return value
