"""timm's optimizer classes, loaded without ``import timm``, for ``--optimizer SPEC=module:Class``.

    pytest conformance --backend=torch-cpu --spec lion --optimizer lion=conformance.adapters.timm_optim:Lion

``import timm`` imports its model zoo, which needs torchvision; torchvision from the package index does not load
beside the torch 2.13.0 CPU wheel (``operator torchvision::nms does not exist``).  timm's optimizers need neither:
each ``timm/optim/<name>.py`` imports only torch and ``timm.optim._types``.  So this module registers empty
package objects for ``timm`` and ``timm.optim`` (their ``__path__`` pointing at the installed files) and imports
the optimizer modules themselves.  The classes are timm's own, unchanged: this is a way to import them, not an
adapter of their behaviour.  If ``timm`` was already imported for real, its modules are used as they are.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from pathlib import Path

#: the class name exported here -> timm's module under timm/optim and its class name there
CLASSES = {
    "AdamWLegacy": ("adamw", "AdamWLegacy"),
    "NAdamLegacy": ("nadam", "NAdamLegacy"),
    "NAdamW": ("nadamw", "NAdamW"),
    "RAdamLegacy": ("radam", "RAdamLegacy"),
    "Lamb": ("lamb", "Lamb"),
    "Lion": ("lion", "Lion"),
    "Adan": ("adan", "Adan"),
    "RMSpropTF": ("rmsprop_tf", "RMSpropTF"),
    "SGDW": ("sgdw", "SGDW"),
    "Adafactor": ("adafactor", "Adafactor"),
}

#: timm's classes with another default, for a keyword the spec has no statement for (the class is subclassed,
#: its code untouched; it reports itself as timm's class, so timm's known deviations apply to it)
CONFIGURED = {
    # max_grad_norm (default 1.0) divides every gradient, in place, by max(1, global norm/max_grad_norm) over all
    # groups before the step: a cross-group reduction that spec lamb@timm does not state (docs/measured/third-party.md)
    "LambUnclipped": ("Lamb", {"max_grad_norm": None}),
}

__all__ = sorted([*CLASSES, *CONFIGURED])


def _package(name: str, path: Path) -> None:
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module


def _load(module: str, cls: str) -> type:
    loaded = sys.modules.get("timm")
    spec = None if loaded is not None else importlib.util.find_spec("timm")
    if loaded is None and (spec is None or spec.origin is None):
        raise ImportError("timm is not installed (pip install --no-deps timm==1.0.29; it needs no torchvision "
                          "for its optimizers when loaded through conformance.adapters.timm_optim)")
    root = Path(loaded.__path__[0]) if loaded is not None else Path(spec.origin).parent
    _package("timm", root)
    _package("timm.optim", root / "optim")
    return getattr(importlib.import_module(f"timm.optim.{module}"), cls)


def _configured(name: str) -> type:
    base_name, fixed = CONFIGURED[name]
    base = _load(*CLASSES[base_name])
    module, _ = CLASSES[base_name]

    def __init__(self, params, **kwargs):
        base.__init__(self, params, **{**fixed, **kwargs})

    signature = inspect.signature(base.__init__)  # the defaults test reads the class's own, with these changed
    __init__.__signature__ = signature.replace(parameters=[
        q.replace(default=fixed[q.name]) if q.name in fixed else q for q in signature.parameters.values()])

    def conformance_implementation(cls):
        from importlib.metadata import version
        return f"timm.optim.{module}:{base_name}", version("timm")

    shown = ", ".join(f"{k}={v!r}" for k, v in fixed.items())
    return type(name, (base,), {"__init__": __init__, "__module__": __name__,
                                "conformance_implementation": classmethod(conformance_implementation),
                                "__doc__": f"timm's {base_name} with {shown} by default; its code unchanged."})


def __getattr__(name: str):
    if name in CONFIGURED:
        cls = _configured(name)
        globals()[name] = cls
        return cls
    if name not in CLASSES:
        raise AttributeError(f"conformance.adapters.timm_optim has no {name!r}; it exports {', '.join(sorted(CLASSES))}")
    cls = _load(*CLASSES[name])
    globals()[name] = cls
    return cls
