"""A backend that runs ``torch.optim`` classes (or third-party look-alikes).

Paths, by the flags given to the optimizer's constructor:

* ``"for-loop"``           ``foreach=False`` (and ``fused=False`` where the class has ``fused``)
* ``"foreach"``            ``foreach=True``
* ``"differentiable"``     ``differentiable=True, foreach=False`` (and ``fused=False``): the for-loop's code with
                           out-of-place ops; Adam/AdamW take their capturable form there (float32 step counter,
                           step size folded into the denominator) and NAdam scales g and m before dividing
* ``"fused"``              ``fused=True``, where the class accepts ``fused`` and
                           torch has fused kernels for the device
* ``"capturable"``         CUDA only: ``capturable=True, foreach=False``
* ``"capturable-foreach"`` CUDA only: ``capturable=True, foreach=True``
* ``"custom"``             a class given through ``overrides``

Parameters and gradients are built on the device in the case's memory layout
(``Case.layout``, ``_laid_out``): leaf tensors that are views of a larger
buffer (``strided``) or transposed.  Every path accepts them; the CPU fused
kernels step a strided tensor wrongly (known deviation
``adam-fused-cpu-ignores-strides`` and its siblings).

Which paths and dtypes a class really supports on the device is found by
probing: one construction and two steps on a 2-element tensor per (path,
dtype), cached per backend.  What failed, and why, is kept for reporting
(``unsupported`` and ``unsupported_paths``).

Case axes (``case_axes``; ``Case.lr_tensor``, ``Case.complex``, ``Case.betas_tensor``): ``lr_tensor`` passes each group's lr as a
0-d float64 tensor (exact; changed with ``fill_``), offered where a construction and two steps with one work
(foreach Adam/AdamW refuse it with torch's ``ValueError``).  ``complex`` steps every tensor whose last
dimension is even as ``torch.view_as_complex`` of its (…, k, 2) pairs and reports ``torch.view_as_real`` of
parameters and state; offered where torch's code views complex tensors as real pairs (``_COMPLEX_REFUSED``
and the probe say where it does not), for float16 (complex32), float32 and float64.  ``mixed_dtype`` puts a
companion tensor of ``COMPANION_DTYPE`` after each tensor of a group, steps them together and reports the case's
tensors only; offered where a construction and two steps of such a group work, to ``--optimizer`` classes too
(the only axis they get).  ``betas_tensor`` passes each group's betas as 0-d float64 tensors, for the optimizers
that have betas, offered where a construction and two steps with them work (foreach Adam/AdamW refuse them with
torch's ``ValueError``).

Learning-rate schedules (``schedulers``, ``run_schedule``, ``run_scheduled``:
the optional part of ``conformance.backend``'s protocol) run
``torch.optim.lr_scheduler``'s classes, built by ``build_scheduler``.

Usage::

    from conformance.backends import torch_backend
    backend = torch_backend.make("torch-cpu")       # or torch_backend.cpu
    backend.paths("adam")                            # ('for-loop', 'foreach', 'fused')
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import inspect
import os
import platform
import sys
import warnings
from typing import Optional

import ml_dtypes
import numpy as np

from conformance import optimizers
from conformance.backend import (COMPANION_DTYPE, DTYPES, LAYOUTS, BackendError, Case, ScheduledRun,
                                  ScheduleOutput, StepOutput, complex_shape)
from conformance.environment import cpu_name
from reference.sparse import Uncoalesced
from spec import get as spec_get
from spec.schedules import SCHEDULES

try:  # torch is optional for the project as a whole; the backend needs it.
    import torch
except ImportError as _exc:  # pragma: no cover - exercised only without torch
    torch = None
    _TORCH_IMPORT_ERROR = f"{type(_exc).__name__}: {_exc}"
else:
    _TORCH_IMPORT_ERROR = None

__all__ = [
    "TorchBackend",
    "cuda_available",
    "make",
    "load_class",
    "environment",
    "build_scheduler",
]

_BF16 = np.dtype(ml_dtypes.bfloat16)


def _torch_dtypes() -> dict:
    return {
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float32": torch.float32,
        "float64": torch.float64,
    }


def cuda_available() -> bool:
    """Whether torch can run on a CUDA device here."""
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # a broken driver install raises instead of returning False
        return False


# --------------------------------------------------------------------------
# numpy <-> torch, bit-exact
# --------------------------------------------------------------------------

def _to_torch(array, device) -> "torch.Tensor":
    """A fresh torch tensor with exactly the values (and dtype) of ``array``."""
    a = np.array(array, copy=True, order="C")  # own, writeable, C-contiguous copy (0-d stays 0-d)
    if a.dtype == _BF16:
        t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    elif a.dtype in (np.float16, np.float32, np.float64):
        t = torch.from_numpy(a)
    else:
        raise BackendError(f"unsupported array dtype {a.dtype} (expected one of {', '.join(DTYPES)})")
    return t.to(device)


def _whole_rows(mask: np.ndarray) -> bool:
    """Every row of the first dimension of ``mask`` (≥ 2-D) wholly True or wholly False."""
    if mask.ndim < 2:
        return False
    flat = mask.reshape(mask.shape[0], -1)
    return bool((flat.all(axis=1) | ~flat.any(axis=1)).all())


def by_rows(grads) -> bool:
    """Whether one tensor's sparse gradients (MaskedArrays, or None at a step without one) go as rows: every index
    set, and every duplicate set, made of whole rows.  One layout for all of a tensor's steps, as a real program
    gives (``nn.Embedding(sparse=True)``: rows, always): torch adds a sparse momentum buffer and a gradient only
    when both have the same ``sparse_dim``."""
    return all(_whole_rows(~np.ma.getmaskarray(g)) and (not isinstance(g, Uncoalesced) or _whole_rows(g.twice))
               for g in grads if g is not None)


def sparse_coo(dense: "torch.Tensor", held: np.ndarray, twice: Optional[np.ndarray] = None,
               second: Optional["torch.Tensor"] = None, rows: Optional[bool] = None) -> "torch.Tensor":
    """The elements of ``dense`` where ``held`` is True as torch's sparse COO tensor, explicit zeros included (a
    sparse gradient's index set), in torch's ``coalesce()`` order (sorted).  ``rows`` (by default, where the
    index set is made of whole rows of the first dimension: every element of a row held or none): as row indices
    with dense rows (``sparse_dim`` 1, what ``nn.Embedding(sparse=True)`` gives); else element by element
    (``sparse_dim`` = ndim, a 0-d tensor too).  ``twice`` (inside ``held``) and ``second``: duplicate indices
    (``reference.sparse.Uncoalesced``), appended after them as more entries holding the values of ``second``
    there, uncoalesced."""
    twice = np.zeros_like(held) if twice is None else twice
    whole = _whole_rows(held) and _whole_rows(twice)
    if rows is None:
        rows = whole
    elif rows and not whole:
        raise BackendError("sparse_coo(rows=True) needs index sets made of whole rows")

    def row_indices(mask):
        flat = mask.reshape(mask.shape[0], -1)
        return torch.as_tensor(np.nonzero(flat.any(axis=1))[0], dtype=torch.long, device=dense.device)

    if rows:
        first, again = row_indices(held), row_indices(twice)
        index = torch.cat([first, again]).reshape(1, -1)
        values = torch.cat([dense[first], second[again]]) if len(again) else dense[first]
        return torch.sparse_coo_tensor(index, values, tuple(dense.shape), check_invariants=True)
    entries = [(held, dense)] + ([(twice, second)] if twice.any() else [])
    index = torch.cat([torch.as_tensor(np.argwhere(m).T, dtype=torch.long, device=dense.device) for m, _ in entries],
                      dim=1)  # (ndim, nnz)
    values = torch.cat([v[torch.as_tensor(m, device=dense.device)].reshape(-1) for m, v in entries])
    return torch.sparse_coo_tensor(index, values, tuple(dense.shape), check_invariants=True)


def _laid_out(t: "torch.Tensor", layout: str) -> "torch.Tensor":
    """``t``'s values in memory ``layout`` on ``t``'s device: ``conformance.backend.lay_out``'s definition, the same
    strides (in elements) and offset, built on the device so that a non-contiguous tensor reaches the optimizer."""
    if layout not in LAYOUTS:
        raise BackendError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if layout == "strided" and t.dim() >= 1:
        buf = torch.full((*t.shape[:-1], 2 * t.shape[-1]), float("nan"), dtype=t.dtype, device=t.device)
        view = buf[..., 1::2]
        view.copy_(t)
        return view
    if layout == "transposed" and t.dim() >= 2:
        return t.transpose(-1, -2).clone(memory_format=torch.contiguous_format).transpose(-1, -2)
    return t.contiguous()


def _own(groups_params: list, case: Case) -> list:
    """The case's own tensors of each group: every other one in a ``mixed_dtype`` case (companions follow)."""
    return [params[0::2] for params in groups_params] if case.mixed_dtype else groups_params


def _complex(t: "torch.Tensor", case: Case) -> "torch.Tensor":
    """``t`` as the complex tensor of its (real, imaginary) pairs where ``case.complex`` and its last dimension is
    even (``conformance.backend.complex_shape``), else ``t``."""
    shape = complex_shape(t.shape) if case.complex else None
    if shape is None:
        return t
    return torch.view_as_complex(t.contiguous().reshape(*shape, 2))


def _to_numpy(t: "torch.Tensor") -> np.ndarray:
    """A NumPy copy of ``t`` with exactly its values; bfloat16 -> ml_dtypes.bfloat16; a complex tensor -> its
    real pairs, the last dimension doubled (``view_as_real``)."""
    t = t.detach().to("cpu")
    if t.is_complex():
        t = torch.view_as_real(t).flatten(-2)
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_BF16).copy()
    return t.numpy().copy()


def _state_value(key, value, param: "torch.Tensor"):
    """One ``opt.state[p]`` entry in the protocol's form, or None to omit it.

    ``step`` -> float.  Tensors of the parameter's dtype -> arrays of that
    dtype (a sparse one densified: 0 outside its index set).  Other 0-d tensors (NAdam's float32 ``mu_product``) -> float, which
    is exact.  Other tensors keep their own dtype rather than being rounded to
    the parameter's (a third-party class may keep float32 state for bfloat16
    parameters; rounding would hide its behaviour).
    """
    if value is None:
        return None
    if torch.is_tensor(value) and value.is_sparse:  # SGD's momentum buffer with sparse gradients: 0 where no entry
        value = value.to_dense()
    if torch.is_tensor(value):
        if key == "step" or (value.dim() == 0 and value.dtype != param.dtype and value.is_floating_point()):
            return float(value.detach().to("cpu").item())
        return _to_numpy(value)
    if key == "step" and isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return value


# --------------------------------------------------------------------------
# class loading
# --------------------------------------------------------------------------

def _betas(optimizer: str, hyper: dict) -> dict:
    """The entries of ``hyper`` that torch's ``betas`` tuple holds for ``optimizer`` (beta1, beta2[, beta3]), or {}."""
    return {k: hyper[k] for k in optimizers.tuple_entries(optimizers.TORCH_PAIRS["betas"], hyper)}


def _sparse(optimizer: str) -> bool:
    """The spec's gradients are sparse (``OptimizerSpec.sparse_gradients``: SparseAdam, sgd_sparse, adagrad_sparse)."""
    return spec_get(optimizer).sparse_gradients


def _probe_ndim(optimizer: str) -> int:
    """The number of dimensions of the probe's tensor: 1, or the spec's first allowed (``OptimizerSpec.ndims``)."""
    ndims = spec_get(optimizer).ndims
    return 1 if not ndims or 1 in ndims else ndims[0]


def load_class(spec: str) -> type:
    """Import ``"package.module:Attr"`` (``Attr`` may be dotted: ``Outer.Inner``)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"bad class spec {spec!r}: expected 'module:Attr', e.g. 'torch.optim:Adam'")
    module_name, attr = (s.strip() for s in spec.split(":"))
    if not module_name or not attr:
        raise ValueError(f"bad class spec {spec!r}: expected 'module:Attr', e.g. 'torch.optim:Adam'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"bad class spec {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"bad class spec {spec!r}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"bad class spec {spec!r}: {attr!r} is a {type(obj).__name__}, not a class")
    return obj


def _class_label(cls) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', repr(cls)))}"


def _accepts(cls, keyword: str) -> bool:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params


def _reason(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# --------------------------------------------------------------------------
# the backend
# --------------------------------------------------------------------------

# differentiable=True computes the per-step scalars from the float32 step (or mu_product) tensor here
_DIFFERENTIABLE_TENSOR_SCALARS = ("adam", "adamw", "nadam")

# Optimizers whose torch code steps a complex parameter in complex arithmetic rather than as real pairs.
_COMPLEX_REFUSED = {
    "sgd": "torch.optim.SGD has no view_as_real: it steps a complex parameter in complex arithmetic, where a real "
           "scalar multiplies as (c + 0i), so an infinite or NaN part turns the other part NaN (inf*0); the spec's "
           "per-part statements do not hold",
    "sgd_sparse": "torch.optim.SGD has no view_as_real, with sparse gradients too: it steps a complex parameter in "
                  "complex arithmetic; the spec's per-part statements do not hold",
    "adagrad_sparse": "torch.optim.Adagrad's sparse branch has no view_as_real: grad_values.pow(2) and sqrt_ are "
                      "complex operations (the sum gains g² of the complex g, not the squares of its parts); the "
                      "spec's per-part statements do not hold",
}

_BUILTIN_PATH_FLAGS = {
    "for-loop": {"foreach": False},  # + fused=False where the class has it
    "foreach": {"foreach": True},
    "differentiable": {"foreach": False, "differentiable": True},  # + fused=False where the class has it
    "fused": {"fused": True},
    "capturable": {"capturable": True, "foreach": False},
    "capturable-foreach": {"capturable": True, "foreach": True},
}


def _zero_means_none(optimizer: str) -> frozenset:
    """The hyperparameters of spec ``optimizer`` whose 0 stands for the class's None (an optional warm-up)."""
    try:
        s = spec_get(optimizer)
    except KeyError:
        return frozenset()
    return frozenset(h.name for h in s.numeric if h.zero_means_none)


@functools.lru_cache(maxsize=None)
def _distribution_version(module: str):
    """The installed version of the distribution that provides top-level ``module`` (lion-pytorch has no
    ``__version__``), or None.  Cached: ``packages_distributions`` reads every installed distribution's file
    list, and the harness asks for the implementation at every drawn case."""
    try:
        from importlib import metadata

        names = metadata.packages_distributions().get(module, [])
        return metadata.version(names[0]) if names else None
    except Exception:  # no metadata: the version stays unknown, and no known deviation applies
        return None


class TorchBackend:
    """Runs torch.optim classes (or ``overrides``) on ``device``.

    ``Case.resume_at`` is honoured (``supports_resume``): before that step the
    optimizer's ``state_dict()`` is deep-copied, and the trajectory goes on in
    a fresh optimizer, over fresh copies of the parameters, that
    ``load_state_dict`` restored from the copy, as a checkpoint restore does.
    """

    supports_resume = True
    # differentiable=True changes how a step is computed (out of place; Adam/AdamW's capturable form), not the
    # state handling the property tests check (None gradients, state_dict, maximize, several tensors), which is
    # the for-loop's code: only the value tests run it (``conformance.plugin.combos``).
    value_only_paths = ("differentiable",)

    def __init__(self, device: str = "cpu", overrides: Optional[dict] = None, hyper_map: Optional[dict] = None,
                 holds: Optional[dict] = None):
        self.device_spec = str(device)
        self.overrides = dict(overrides or {})
        self.hyper_map = {k: dict(v) for k, v in (hyper_map or {}).items()}
        # spec -> {hyperparameter: value}: the class has no keyword for it and its code does ``value``
        self.holds = {k: dict(v) for k, v in (holds or {}).items()}
        self.skip_reason: Optional[str] = None
        if torch is None:
            self.device = None
            self.device_type = str(device).split(":")[0]
            self.skip_reason = f"torch is not importable: {_TORCH_IMPORT_ERROR}"
        else:
            self.device = torch.device(device)
            self.device_type = self.device.type
            if self.device_type == "cuda" and not cuda_available():
                self.skip_reason = "CUDA is not available: torch.cuda.is_available() is False"
        self.name = f"torch-{self.device_type}"
        # optimizer -> {path: {dtype: None | reason}}, built by _probe
        self._probed: dict = {}
        # optimizer -> {path: reason} for candidate paths that never worked
        self._path_errors: dict = {}
        # (optimizer, path, dtype) -> case_axes
        self._axes: dict = {}

    def __repr__(self) -> str:
        return f"TorchBackend({self.device_spec!r}{', overrides=...' if self.overrides else ''})"

    # ---- classes, hyperparameters, flags ---------------------------------

    def optimizer_class(self, optimizer: str):
        """The class run for a spec name, or None when there is none."""
        if optimizer in self.overrides:
            return self.overrides[optimizer]
        info = optimizers.ALL.get(optimizer)
        if info is None or info.torch is None or torch is None:
            return None
        return getattr(torch.optim, info.torch, None)

    def implementation(self, name: str, path: Optional[str]) -> Optional[tuple]:
        """(qualified name, version) of what runs spec ``name`` (an optimizer, or a schedule) on ``path``.

        torch.optim's own classes: ``torch.optim.NAdam`` and ``torch.__version__``; schedules:
        ``torch.optim.lr_scheduler``.  An ``--optimizer`` class: what its ``conformance_implementation()``
        classmethod declares (the Keras adapter: ``keras.optimizers.Adam``, keras's version), else its own
        ``module:qualname`` and its top-level package's ``__version__`` (else its distribution's version), so
        torch's known deviations never apply to it."""
        if torch is None:
            return None
        if name in SCHEDULES and name not in optimizers.OPTIMIZERS:
            return "torch.optim.lr_scheduler", torch.__version__
        cls = self.optimizer_class(name)
        if cls is None:
            return None
        if any(cls is getattr(torch.optim, info.torch, None) for info in optimizers.ALL.values() if info.torch):
            return f"torch.optim.{cls.__name__}", torch.__version__
        declared = getattr(cls, "conformance_implementation", None)
        if callable(declared):
            return declared()
        top = cls.__module__.partition(".")[0]
        return f"{cls.__module__}:{cls.__qualname__}", getattr(sys.modules.get(top), "__version__", None) \
            or _distribution_version(top)

    def newton_schulz(self, optimizer: str, path: str):
        """The NS sequence whose output O a step of ``optimizer`` applies (``State.observed`` ``ortho``): torch's
        bfloat16 statements re-executed with torch's kernels (``conformance.newton_schulz.rerun_torch``), for
        torch.optim.Muon and an ``--optimizer`` class alike (whose O is observed through torch's function)."""
        from conformance.newton_schulz import rerun_torch

        return rerun_torch

    def scalar_precision(self, optimizer: str, path: str) -> str:
        """The format torch computes the per-step scalars of ``optimizer`` on ``path`` in (bias corrections,
        step sizes, RAdam's ρ_t and rectifier, Adagrad's decayed lr), read in torch's code:

        * ``"float64"`` on the for-loop and foreach paths: ``_get_value(step)`` is a Python float there and
          every scalar is Python arithmetic, but NAdam's ``mu_product``, a 0-d float32 tensor
          (``_get_scalar_dtype()``) multiplied in place each step, and ASGD's η and μ, Python floats copied
          into 0-d float32 tensors each step (and η read back with ``.item()``);
        * ``"float32"`` on the fused and capturable paths (the step counter and the scalars are float32
          tensors on the device), and for an ``--optimizer`` class unless it declares otherwise with a
          ``conformance_scalar_precision`` attribute ("float32" covers either);
        * on the ``differentiable`` path as on the for-loop, but Adam/AdamW (``capturable or differentiable``:
          ``beta ** step_t`` with the float32 step tensor) and NAdam (``1.0 - mu_product`` as a float32 tensor)."""
        if optimizer in self.overrides:
            return getattr(self.overrides[optimizer], "conformance_scalar_precision", "float32")
        if optimizer == "asgd":  # η and μ are float32 tensors on every path, the differentiable one included
            return "float32"
        if path in ("for-loop", "foreach") and optimizer != "nadam":
            return "float64"
        if path == "differentiable" and optimizer not in _DIFFERENTIABLE_TENSOR_SCALARS:
            return "float64"
        return "float32"

    def map_hyper(self, optimizer: str, hyper: dict) -> dict:
        """Spec hyperparameters -> the class's keyword arguments (0 as None where the spec says 0 is the class's
        None: ``Hyperparameter.zero_means_none``)."""
        names = self.hyper_map.get(optimizer, {})
        held = self.holds.get(optimizer, {})
        for key, value in held.items():
            if key in hyper and hyper[key] != value:
                raise BackendError(f"{_class_label(self.overrides[optimizer])} has no keyword for {key} (held at "
                                   f"{value!r} by --hold); this case asks for {key}={hyper[key]!r}")
        hyper = {k: v for k, v in hyper.items() if k not in held}
        info = optimizers.ALL.get(optimizer)
        if info is not None and info.torch_args is not None:  # the class's own keywords (Muon's adjust_lr_fn)
            hyper = info.torch_args(hyper)
        out = {}
        zero_none = _zero_means_none(optimizer)
        hyper = {k: None if k in zero_none and v == 0 else v for k, v in hyper.items()}
        for pair, entries in optimizers.TORCH_PAIRS.items():
            present = optimizers.tuple_entries(entries, hyper)
            if present and not any(name in names for name in present):
                out[names.get(pair, pair)] = tuple(hyper.pop(name) for name in present)
        for key, value in hyper.items():
            out[names.get(key, key)] = value
        return out

    def _path_flags(self, optimizer: str, path: str) -> dict:
        if optimizer in self.overrides:
            if path != "custom":
                raise BackendError(f"{self.name} {optimizer}: unknown path {path!r} (an override has only 'custom')")
            return {}
        if path not in _BUILTIN_PATH_FLAGS:
            raise BackendError(f"{self.name} {optimizer}: unknown path {path!r}")
        flags = dict(_BUILTIN_PATH_FLAGS[path])
        cls = self.optimizer_class(optimizer)
        if path in ("for-loop", "differentiable") and _accepts(cls, "fused"):
            flags["fused"] = False
        if path == "for-loop" and not _accepts(cls, "foreach"):  # SparseAdam: its one loop, no argument for it
            del flags["foreach"]
        return flags

    def _candidate_paths(self, optimizer: str) -> list:
        cls = self.optimizer_class(optimizer)
        paths = ["for-loop"]
        if _accepts(cls, "foreach"):
            paths.append("foreach")
        else:
            self._path_errors.setdefault(optimizer, {})["foreach"] = f"{cls.__name__} has no 'foreach' argument"
        if _accepts(cls, "differentiable"):
            paths.append("differentiable")
        else:
            self._path_errors.setdefault(optimizer, {})["differentiable"] = \
                f"{cls.__name__} has no 'differentiable' argument"
        if _accepts(cls, "fused"):
            try:
                from torch.optim.optimizer import _get_fused_kernels_supported_devices

                fused_devices = _get_fused_kernels_supported_devices()
            except Exception:  # private helper gone: let the probe decide
                fused_devices = [self.device_type]
            if self.device_type in fused_devices:
                paths.append("fused")
            else:
                self._path_errors.setdefault(optimizer, {})["fused"] = (
                    f"torch has no fused optimizer kernels for device type {self.device_type!r}"
                )
        else:
            self._path_errors.setdefault(optimizer, {})["fused"] = f"{cls.__name__} has no 'fused' argument"
        if self.device_type == "cuda":
            if _accepts(cls, "capturable"):
                paths += ["capturable", "capturable-foreach"]
            else:
                for p in ("capturable", "capturable-foreach"):
                    self._path_errors.setdefault(optimizer, {})[p] = f"{cls.__name__} has no 'capturable' argument"
        return paths

    # ---- probing -----------------------------------------------------------

    def _tensor64(self, x: float) -> "torch.Tensor":
        """``x`` as a 0-d float64 tensor on the device: exact for any drawn float."""
        return torch.tensor(x, dtype=torch.float64, device=self.device)

    def _probe_one(self, cls, flags: dict, dtype: str, complex_: bool = False, mixed: bool = False,
                   sparse: bool = False, ndim: int = 1) -> Optional[str]:
        """None when two steps on a 2-element tensor (``complex_``: one complex element; ``mixed``: and a
        companion of ``COMPANION_DTYPE`` in the same group) work, else the reason.  ``sparse``: the optimizer takes
        sparse gradients (``OptimizerSpec.sparse_gradients``), and the probe gives it those.  ``ndim``: the tensor's
        number of dimensions (``_probe_ndim``: 2 for Muon, which refuses others), its leading ones of length 1."""
        try:
            p = torch.tensor([0.5, -0.25], dtype=_torch_dtypes()[dtype], device=self.device).reshape(
                (1,) * (ndim - 1) + (2,))
            if complex_:
                p = torch.view_as_complex(p.reshape(*p.shape[:-1], 1, 2))
            ps = [p, p.detach().to(_torch_dtypes()[COMPANION_DTYPE[dtype]])] if mixed else [p]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = cls(ps, **flags)
                for g in (0.125, -0.5):
                    for q in ps:
                        q.grad = torch.full_like(q, g).to_sparse() if sparse else torch.full_like(q, g)
                    opt.step()
                if self.device_type == "cuda":
                    torch.cuda.synchronize(self.device)
        except Exception as exc:  # any failure means "not supported"
            return _reason(exc)
        return None

    def case_axes(self, optimizer: str, path: str, dtype: str) -> dict:
        """axis -> None (offered) or why not, for ``Case.lr_tensor``, ``Case.complex`` and ``Case.mixed_dtype`` on
        this optimizer, path
        and dtype: torch's own refusal (a construction and two steps, as ``_probe_one``), or the reason torch's
        code does not step complex parameters as real pairs.  An ``--optimizer`` class gets ``mixed_dtype`` alone
        (``_override_axes``)."""
        if self.skip_reason is not None or self.optimizer_class(optimizer) is None:
            return {}
        key = (optimizer, path, dtype)
        if key not in self._axes and optimizer in self.overrides:
            self._axes[key] = self._override_axes(self.optimizer_class(optimizer), dtype, _sparse(optimizer),
                                                  _probe_ndim(optimizer))
        if key not in self._axes:
            cls, flags = self.optimizer_class(optimizer), self._path_flags(optimizer, path)
            sparse = _sparse(optimizer)
            nd = _probe_ndim(optimizer)
            lr = self._probe_one(cls, {**flags, "lr": torch.tensor(1e-3, dtype=torch.float64, device=self.device)},
                                 dtype, sparse=sparse, ndim=nd)
            if dtype == "bfloat16":
                cplx = "torch has no complex dtype of bfloat16 pairs"
            else:
                cplx = _COMPLEX_REFUSED.get(optimizer) or self._probe_one(cls, flags, dtype, complex_=True,
                                                                          sparse=sparse, ndim=nd)
            self._axes[key] = {"lr_tensor": lr, "complex": cplx,
                               "mixed_dtype": self._probe_one(cls, flags, dtype, mixed=True, sparse=sparse,
                                                              ndim=nd)}
            betas = _betas(optimizer, {h.name: h.default for h in spec_get(optimizer).hyperparameters})
            if betas:  # only an optimizer with betas has the axis (nothing to refuse elsewhere)
                self._axes[key]["betas_tensor"] = self._probe_one(
                    cls, {**flags, "betas": tuple(self._tensor64(x) for x in betas.values())}, dtype, sparse=sparse,
                    ndim=nd)
        return dict(self._axes[key])

    def _override_axes(self, cls, dtype: str, sparse: bool = False, ndim: int = 1) -> dict:
        """The case axes of an ``--optimizer`` class: ``mixed_dtype``, probed as for torch.optim's classes (with
        the class's own defaults).  Not ``lr_tensor`` nor ``complex``: what a third-party class does with a Tensor
        lr or a complex tensor is its own (``_COMPLEX_REFUSED`` knows torch's classes only), and nothing here
        says which of its values are then the spec's."""
        mixed = self._probe_one(cls, {}, dtype, mixed=True, sparse=sparse, ndim=ndim)
        if mixed is not None and self._probe_one(cls, {}, dtype, sparse=sparse, ndim=ndim) is not None:
            mixed = f"the probe could not step {cls.__name__} with its defaults in a one-dtype group either: {mixed}"
        return {"mixed_dtype": mixed}

    def _probe(self, optimizer: str) -> dict:
        if optimizer in self._probed:
            return self._probed[optimizer]
        result: dict = {}
        if self.skip_reason is None:
            cls = self.optimizer_class(optimizer)
            if optimizer in self.overrides:
                result = {"custom": {d: None for d in DTYPES}}
            elif cls is not None:
                for path in self._candidate_paths(optimizer):
                    flags = self._path_flags(optimizer, path)
                    per_dtype = {d: self._probe_one(cls, flags, d, sparse=_sparse(optimizer),
                                                    ndim=_probe_ndim(optimizer)) for d in DTYPES}
                    if any(r is None for r in per_dtype.values()):
                        result[path] = per_dtype
                    else:
                        reasons = sorted(set(per_dtype.values()))
                        self._path_errors.setdefault(optimizer, {})[path] = "; ".join(reasons)
        self._probed[optimizer] = result
        return result

    # ---- the protocol ------------------------------------------------------

    def paths(self, optimizer: str) -> tuple:
        if self.skip_reason is not None:
            return ()
        return tuple(self._probe(optimizer))

    def dtypes(self, optimizer: str, path: str) -> tuple:
        if self.skip_reason is not None:
            return ()
        per_dtype = self._probe(optimizer).get(path, {})
        return tuple(d for d in DTYPES if d in per_dtype and per_dtype[d] is None)

    def unsupported(self, optimizer: str, path: str) -> dict:
        """dtype -> why a step failed, for the dtypes ``dtypes`` leaves out of an offered path."""
        if self.skip_reason is not None:
            return {}
        per_dtype = self._probe(optimizer).get(path, {})
        return {d: r for d, r in per_dtype.items() if r is not None}

    def unsupported_paths(self, optimizer: str) -> dict:
        """path -> why it is not offered, for the candidate paths ``paths`` leaves out."""
        if self.skip_reason is not None:
            return {}
        self._probe(optimizer)
        return dict(self._path_errors.get(optimizer, {}))

    def run(self, case: Case) -> list:
        if self.skip_reason is not None:
            raise BackendError(f"{self.name}: {self.skip_reason}")
        cls = self.optimizer_class(case.optimizer)
        if cls is None:
            raise BackendError(f"{self.name}: no optimizer class for {case.optimizer!r}")
        flags = self._path_flags(case.optimizer, case.path)
        label = _class_label(cls)

        groups_params = [[t for a in g.params for t in self._tensors(a, case)] for g in case.groups]
        opt = self._construct(cls, case, groups_params, flags, label)
        resume_at = case.resume_at
        if resume_at is not None and not 0 <= resume_at < case.steps:
            raise BackendError(f"resume_at={resume_at} is not a step of this {case.steps}-step case")

        outputs = []
        observer = _OBSERVERS.get(case.optimizer) if spec_get(case.optimizer).observed else None
        if spec_get(case.optimizer).observed and observer is None:
            raise BackendError(f"{self.name}: no way to observe {', '.join(spec_get(case.optimizer).observed)} of "
                               f"{case.optimizer} (State.observed): it cannot be checked")
        seen: dict = {}  # (group, param) -> the observed values of its last step with a gradient
        for s in range(case.steps):
            if s == resume_at:
                opt, groups_params = self._resume(opt, cls, case, groups_params, flags, label)
            self._set_grads(groups_params, case, s)
            if case.lrs is not None and case.lrs[s] is not None:
                for i, lr in enumerate(case.lrs[s]):
                    if lr is not None:
                        if case.lr_tensor:
                            opt.param_groups[i]["lr"].fill_(lr)  # as torch's schedulers change a Tensor lr
                        else:
                            opt.param_groups[i]["lr"] = lr
            if observer is None:
                self._step(opt, label, s)
            else:
                with observer() as calls:
                    self._step(opt, label, s)
                seen.update(_assign_observed(calls, groups_params, case, label, s))
            out = self._snapshot(opt, _own(groups_params, case), label)
            for (i, j), values in seen.items():
                out.state[i][j].update(values)
            outputs.append(out)
        return outputs

    def _tensor(self, a, case: Case) -> "torch.Tensor":
        """An array of the case as the tensor the optimizer steps: on the device, complex where ``case.complex``
        makes it so (``_complex``), in the case's layout."""
        return _laid_out(_complex(_to_torch(a, self.device), case), case.layout)

    def _tensors(self, a, case: Case) -> list:
        """The tensors an array of the case becomes in a group: ``[_tensor(a)]``, and in a ``mixed_dtype`` case
        its companion of ``COMPANION_DTYPE`` after it."""
        if not case.mixed_dtype:
            return [self._tensor(a, case)]
        with np.errstate(over="ignore"):  # a float64 value past float32's range: an infinite companion
            companion = np.asarray(a).astype(COMPANION_DTYPE[case.dtype])
        return [self._tensor(a, case), self._tensor(companion, case)]

    def _set_grads(self, groups_params, case: Case, s: int) -> None:
        """Step ``s``'s gradients of the case on the tensors of ``groups_params`` (companions included)."""
        per = 2 if case.mixed_dtype else 1
        for i, params in enumerate(groups_params):
            grads = [t for j, g in enumerate(case.grads[s][i])
                     for t in ([None] * per if g is None else
                               self._sparse_tensors(g, case, by_rows(step[i][j] for step in case.grads))
                               if isinstance(g, np.ma.MaskedArray) else self._tensors(g, case))]
            for p, t in zip(params, grads, strict=True):
                p.grad = t

    def _sparse_tensors(self, g, case: Case, rows: bool) -> list:
        """A sparse gradient (a MaskedArray: masked outside its index set) as torch's sparse COO tensors, as
        ``_tensors`` makes dense ones (a companion in a ``mixed_dtype`` case), by rows or by elements
        (``sparse_coo``)."""
        held = ~np.ma.getmaskarray(g)
        twice, second = (g.twice, g.second) if isinstance(g, Uncoalesced) else (None, np.ma.getdata(g))
        values = [(np.ma.getdata(g), second)]
        if case.mixed_dtype:
            with np.errstate(over="ignore"):
                values.append(tuple(v.astype(COMPANION_DTYPE[case.dtype]) for v in values[0]))
        return [sparse_coo(_to_torch(a, self.device), held, twice, _to_torch(b, self.device), rows)
                for a, b in values]

    def _step(self, opt, label: str, s: int) -> None:
        """``opt.step()``, finished on the device; an exception becomes a ``BackendError`` naming the step."""
        try:
            opt.step()
            if self.device_type == "cuda":
                torch.cuda.synchronize(self.device)
        except Exception as exc:
            raise BackendError(f"{label}.step() raised {type(exc).__name__} at step {s}: {exc}") from exc

    def _construct(self, cls, case: Case, groups_params, flags: dict, label: str):
        """``cls(param_groups, **defaults)``: group 0's hyperparameters (and the path's flags) as defaults."""
        def hyper(h: dict) -> dict:
            h = dict(h)
            if case.lr_tensor:  # float64: the tensor holds the drawn lr exactly
                h["lr"] = self._tensor64(h["lr"])
            if case.betas_tensor:
                h.update({k: self._tensor64(v) for k, v in _betas(case.optimizer, h).items()})
            return self.map_hyper(case.optimizer, h)

        param_groups = []
        for g, params in zip(case.groups, groups_params):
            entry = hyper(g.hyper)
            entry["params"] = params
            param_groups.append(entry)
        defaults = hyper(case.groups[0].hyper) if case.groups else {}
        defaults.update(flags)
        try:
            return cls(param_groups, **defaults)
        except Exception as exc:
            raise BackendError(f"{label}(...) raised {type(exc).__name__}: {exc}") from exc

    def _resume(self, opt, cls, case: Case, groups_params, flags: dict, label: str):
        """A checkpoint round trip: state_dict -> deepcopy -> fresh optimizer and params -> load_state_dict."""
        try:
            saved = copy.deepcopy(opt.state_dict())
        except Exception as exc:
            raise BackendError(f"{label}.state_dict() raised {type(exc).__name__}: {exc}") from exc
        for params in groups_params:  # the old optimizer and parameters are done with
            for p in params:
                p.grad = None
        fresh = [[_laid_out(p.detach().clone(), case.layout) for p in params] for params in groups_params]
        new_opt = self._construct(cls, case, fresh, flags, label)
        try:
            new_opt.load_state_dict(saved)
        except Exception as exc:
            raise BackendError(f"{label}.load_state_dict() raised {type(exc).__name__}: {exc}") from exc
        return new_opt, fresh

    def defaults(self, optimizer: str) -> dict:
        """The class's default hyperparameters, from its signature, under the spec's names.

        ``betas`` is split into ``beta1``/``beta2`` (and ``beta3``: Adan), and Rprop's ``etas``/``step_sizes`` likewise
        (``optimizers.TORCH_PAIRS``); names given by ``hyper_map`` are mapped back.  Keyword arguments the spec does not know (``foreach``,
        ``fused``, ...) are returned too, under their own names.
        """
        cls = self.optimizer_class(optimizer)
        if cls is None:
            raise BackendError(f"{self.name}: no optimizer class for {optimizer!r}")
        try:
            sig = inspect.signature(cls)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"{_class_label(cls)}: no inspectable signature: {exc}") from exc
        names = self.hyper_map.get(optimizer, {})
        inverse = {theirs: ours for ours, theirs in names.items()}
        pairs = optimizers.TORCH_PAIRS
        for pair in pairs:
            inverse.setdefault(names.get(pair, pair), pair)
        out = {}
        for pname, param in sig.parameters.items():
            if param.default is inspect.Parameter.empty or param.kind in (
                    inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            ours = inverse.get(pname, pname)
            value = param.default
            if torch is not None and torch.is_tensor(value) and value.numel() == 1:
                value = value.item()
            if ours in pairs and isinstance(value, (tuple, list)) and 2 <= len(value) <= len(pairs[ours]):
                out.update(zip(pairs[ours], (v.item() if torch is not None and torch.is_tensor(v) else v
                                             for v in value)))
                continue
            if value is None and ours in _zero_means_none(optimizer):
                value = 0.0
            out[ours] = value
        return out

    def _snapshot(self, opt, groups_params, label) -> StepOutput:
        try:
            state = opt.state
        except Exception as exc:
            raise BackendError(f"{label}.state raised {type(exc).__name__}: {exc}") from exc
        params_out, state_out = [], []
        for params in groups_params:
            params_out.append([_to_numpy(p) for p in params])
            group_state = []
            for p in params:
                entries = state.get(p) if hasattr(state, "get") else None
                entries = entries or {}
                converted = {}
                for key, value in entries.items():
                    v = _state_value(key, value, p)
                    if v is not None:
                        converted[key] = v
                group_state.append(converted)
            state_out.append(group_state)
        return StepOutput(params=params_out, state=state_out)

    def environment(self) -> dict:
        return environment(self.device_spec)

    # ---- learning-rate schedules (the protocol's optional part) --------------

    def schedulers(self) -> tuple:
        """Every schedule of ``spec.schedules`` (torch.optim.lr_scheduler runs in Python floats on any device)."""
        if self.skip_reason is not None:
            return ()
        return tuple(SCHEDULES)

    def run_schedule(self, schedule: str, hyper: dict, eta0: float, steps: int) -> ScheduleOutput:
        """The scheduler on a one-parameter ``SGD(lr=eta0, momentum=0)`` on this device; see ``conformance.backend``."""
        p = torch.zeros(1, dtype=torch.float64, device=self.device, requires_grad=True)
        opt = torch.optim.SGD([p], lr=eta0, momentum=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sched = build_scheduler(schedule, hyper, opt)
                lrs, momenta = [], []
                for n in range(steps):
                    if n:
                        opt.step()  # no gradient: nothing moves, but torch sees the documented call order
                        sched.step()
                    lrs.append(float(opt.param_groups[0]["lr"]))
                    momenta.append(float(opt.param_groups[0]["momentum"]))
            except Exception as exc:
                raise BackendError(f"torch {schedule} scheduler raised {type(exc).__name__}: {exc}") from exc
        return ScheduleOutput(lrs, momenta if hyper.get("cycle_momentum") else None)

    def run_scheduled(self, case: Case, schedule: str, hyper: dict) -> ScheduledRun:
        """``run(case)`` with the scheduler stepping after each ``optimizer.step()``; see ``conformance.backend``."""
        if self.skip_reason is not None:
            raise BackendError(f"{self.name}: {self.skip_reason}")
        cls = self.optimizer_class(case.optimizer)
        flags = self._path_flags(case.optimizer, case.path)
        label = _class_label(cls)
        groups_params = [[t for a in g.params for t in self._tensors(a, case)] for g in case.groups]
        opt = self._construct(cls, case, groups_params, flags, label)
        outputs, used = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sched = build_scheduler(schedule, hyper, opt)
            except Exception as exc:
                raise BackendError(f"torch {schedule} scheduler raised {type(exc).__name__}: {exc}") from exc
            for s in range(case.steps):
                self._set_grads(groups_params, case, s)
                used.append([_hyper_in_use(group) for group in opt.param_groups])
                self._step(opt, label, s)
                outputs.append(self._snapshot(opt, _own(groups_params, case), label))
                try:
                    sched.step()
                except Exception as exc:
                    raise BackendError(f"torch {schedule} scheduler raised {type(exc).__name__} at step {s}: "
                                       f"{exc}") from exc
        return ScheduledRun(outputs, used)


@contextlib.contextmanager
def observe_newton_schulz():
    """Muon's observed values: (U, O) of every call of torch's module-level ``_zeropower_via_newtonschulz`` while
    active, in call order.  ``_single_tensor_muon`` (and any class that calls it through the module, as
    tests/muon_check.py's re-implementations do) calls it by name, once per tensor with a gradient; U is cloned
    before the call, which may divide it in place (bfloat16 without Nesterov: finding 62)."""
    import torch.optim._muon as muon_module

    calls, original = [], muon_module._zeropower_via_newtonschulz

    def recording(grad, *args, **kwargs):
        before = grad.detach().clone()
        out = original(grad, *args, **kwargs)
        calls.append((before, out.detach().clone()))
        return out

    muon_module._zeropower_via_newtonschulz = recording
    try:
        yield calls
    finally:
        muon_module._zeropower_via_newtonschulz = original


#: spec name -> a context manager yielding the list of (update, ortho) pairs of a step's calls (State.observed)
_OBSERVERS = {"muon": observe_newton_schulz}


def _assign_observed(calls: list, groups_params: list, case: Case, label: str, s: int) -> dict:
    """(group, param) of the case -> {"update": U, "ortho": O} of step ``s``: the k-th call belongs to the k-th
    tensor with a gradient, groups and tensors in order (companions of a ``mixed_dtype`` case counted, not
    reported), as torch's for-loop steps them.  A clear error where the calls do not match those tensors."""
    stepped = [(i, k, p) for i, params in enumerate(groups_params) for k, p in enumerate(params) if p.grad is not None]
    if len(calls) != len(stepped):
        raise BackendError(f"{label}.step() at step {s}: {len(calls)} calls of torch.optim._muon."
                           f"_zeropower_via_newtonschulz for {len(stepped)} tensors with a gradient: its update "
                           f"and orthogonalisation cannot be observed (a class must call it through the module, "
                           f"once per tensor)")
    per = 2 if case.mixed_dtype else 1
    out = {}
    for (i, k, p), (u, o) in zip(stepped, calls):
        if tuple(u.shape) != tuple(p.shape):
            raise BackendError(f"{label}.step() at step {s}: a call of _zeropower_via_newtonschulz on shape "
                               f"{tuple(u.shape)} where the tensor stepped in that order has shape {tuple(p.shape)}")
        if k % per == 0:
            out[(i, k // per)] = {"update": _to_numpy(u), "ortho": _to_numpy(o)}
    return out


def _hyper_in_use(group: dict) -> dict:
    """The lr, and momentum or β₁, a param group holds now (under the spec's names), as Python floats."""
    out = {"lr": float(group["lr"])}
    if "momentum" in group:
        out["momentum"] = float(group["momentum"])
    if "betas" in group:
        out["beta1"] = float(group["betas"][0])
    return out


def build_scheduler(name: str, hyper: dict, opt):
    """torch.optim.lr_scheduler's scheduler for a ``spec.schedules`` name and hyperparameters (spec names).

    ``hyper`` is passed as given after filling in the spec's defaults (nothing
    is validated here: torch's own checks run).  ``sequential`` is
    ``SequentialLR([LinearLR, ExponentialLR or CosineAnnealingLR], milestones=[milestone])``.
    """

    L = torch.optim.lr_scheduler
    h = {**SCHEDULES[name].defaults, **hyper}
    if name == "step":
        return L.StepLR(opt, h["step_size"], h["gamma"])
    if name == "multistep":
        return L.MultiStepLR(opt, list(h["milestones"]), h["gamma"])
    if name == "exponential":
        return L.ExponentialLR(opt, h["gamma"])
    if name == "cosine":
        return L.CosineAnnealingLR(opt, h["T_max"], h["eta_min"])
    if name == "warm_restarts":
        return L.CosineAnnealingWarmRestarts(opt, h["T_0"], h["T_mult"], h["eta_min"])
    if name == "cyclic":
        return L.CyclicLR(opt, h["base_lr"], h["max_lr"], h["step_size_up"], h["step_size_down"], h["mode"],
                          h["gamma"], cycle_momentum=h["cycle_momentum"], base_momentum=h["base_momentum"],
                          max_momentum=h["max_momentum"])
    if name == "onecycle":
        return L.OneCycleLR(opt, h["max_lr"], total_steps=h["total_steps"], pct_start=h["pct_start"],
                            anneal_strategy=h["anneal_strategy"], cycle_momentum=h["cycle_momentum"],
                            base_momentum=h["base_momentum"], max_momentum=h["max_momentum"],
                            div_factor=h["div_factor"], final_div_factor=h["final_div_factor"],
                            three_phase=h["three_phase"])
    if name == "linear":
        return L.LinearLR(opt, h["start_factor"], h["end_factor"], h["total_iters"])
    if name == "polynomial":
        return L.PolynomialLR(opt, h["total_iters"], h["power"])
    if name == "sequential":
        warm = L.LinearLR(opt, h["start_factor"], h["end_factor"], h["total_iters"])
        decay = L.ExponentialLR(opt, h["gamma"]) if h["decay"] == "exponential" \
            else L.CosineAnnealingLR(opt, h["T_max"], h["eta_min"])
        return L.SequentialLR(opt, [warm, decay], milestones=[h["milestone"]])
    raise KeyError(f"no torch scheduler for schedule {name!r}")


# --------------------------------------------------------------------------
# environment, factories
# --------------------------------------------------------------------------

def _denormals_flushed(device) -> Optional[bool]:
    try:
        x = torch.tensor(1e-40, dtype=torch.float32, device=device) * 1
        return bool((x == 0).item())
    except Exception:
        return None


def environment(device: str = "cpu") -> dict:
    """What a result was computed on: versions, device, and the numeric switches that change results."""
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ml_dtypes": getattr(ml_dtypes, "__version__", None),
        "torch": None if torch is None else torch.__version__,
        "device": str(device),
    }
    if torch is None:
        env["error"] = f"torch is not importable: {_TORCH_IMPORT_ERROR}"
        return env
    dev = torch.device(device)
    cuda_ok = cuda_available()
    if dev.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(dev) if cuda_ok else None
        if not cuda_ok:
            env["skip_reason"] = "CUDA is not available: torch.cuda.is_available() is False"
    else:
        env["device_name"] = cpu_name()
    try:
        cpu_capability = torch.backends.cpu.get_cpu_capability()
    except Exception:
        cpu_capability = None
    env.update(
        {
            "cuda": torch.version.cuda,
            "cuda_available": cuda_ok,
            "cudnn": torch.backends.cudnn.version() if cuda_ok else None,
            "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "default_dtype": str(torch.get_default_dtype()).replace("torch.", ""),
            "cpu_denormals_flushed": _denormals_flushed("cpu"),
            "cpu_capability": cpu_capability,
            "num_threads": torch.get_num_threads(),
            "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            "cpu_count": os.cpu_count(),
        }
    )
    if dev.type != "cpu" and (dev.type != "cuda" or cuda_ok):
        env["device_denormals_flushed"] = _denormals_flushed(dev)
    return env


_MADE: dict = {}
_NAMES = {"torch-cpu": "cpu", "torch-cuda": "cuda"}


def make(name: str) -> TorchBackend:
    """The shared backend for ``"torch-cpu"`` or ``"torch-cuda"`` (built on first use)."""
    if name not in _NAMES:
        raise ValueError(f"unknown torch backend {name!r}; expected one of {', '.join(_NAMES)}")
    if name not in _MADE:
        _MADE[name] = TorchBackend(_NAMES[name])
    return _MADE[name]


def __getattr__(attr: str):
    # ``torch_backend.cpu`` / ``torch_backend.cuda``: built lazily, on first access.
    if attr in ("cpu", "cuda"):
        return make(f"torch-{attr}")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
