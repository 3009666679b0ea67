"""Backends: implementations of the optimizer steps that the harness runs against the spec.

``load(name)`` resolves the ``--backend`` option: ``numpy``, ``torch-cpu``,
``torch-cuda``, ``optax`` (Optax's transformations on JAX's CPU, against the ``@optax`` dialects), or
``module:attr`` naming any object that implements the protocol of ``conformance.backend``.
"""
from __future__ import annotations

import importlib


def load(name: str, overrides: dict | None = None, hyper_map: dict | None = None, holds: dict | None = None):
    """The backend called ``name``; ``overrides`` (spec → class), and their ``hyper_map`` and ``holds``
    (``TorchBackend``), apply to the torch backends.

    A ValueError when it cannot run here (``torch-cuda`` without a CUDA device, torch not importable):
    a run that asked for it by name must not turn into a run of skipped tests.
    """
    if name == "numpy":
        if overrides:
            raise ValueError("--optimizer overrides need a torch backend (--backend=torch-cpu or torch-cuda)")
        from .numpy_backend import backend
        return backend
    if name == "optax":
        if overrides:
            raise ValueError("--optimizer overrides need a torch backend (--backend=torch-cpu or torch-cuda)")
        try:
            from .optax_backend import backend as optax_backend
        except ImportError as e:
            raise ValueError(f"--backend=optax cannot run here: {e}") from None
        return optax_backend
    if name in ("torch-cpu", "torch-cuda"):
        from .torch_backend import TorchBackend  # here: importing torch costs seconds, and a numpy run needs none
        impl = TorchBackend("cpu" if name == "torch-cpu" else "cuda", overrides=overrides, hyper_map=hyper_map,
                            holds=holds)
        if impl.skip_reason is not None:  # asked for by name: skipping every test would read as a pass
            raise ValueError(f"--backend={name} cannot run here: {impl.skip_reason}")
        return impl
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--backend={name}: cannot load {attr!r} from {module!r}: {e}") from None
        obj = obj() if isinstance(obj, type) else obj
        missing = [m for m in ("paths", "dtypes", "run") if not callable(getattr(obj, m, None))]
        if missing:
            raise ValueError(f"--backend={name}: {obj!r} lacks the protocol method(s) {missing} "
                             "(see conformance/backend.py)")
        return obj
    raise ValueError(f"unknown backend {name!r}: use numpy, torch-cpu, torch-cuda, optax or module:attr")


def load_class(text: str):
    """``module:Class`` → the class (for ``--optimizer SPEC=module:Class``)."""
    from .torch_backend import load_class as _load  # here, as in load: torch only when a torch class is asked for
    return _load(text)
