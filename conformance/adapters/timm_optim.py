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

__all__ = sorted(CLASSES)


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


def __getattr__(name: str):
    if name not in CLASSES:
        raise AttributeError(f"conformance.adapters.timm_optim has no {name!r}; it exports {', '.join(sorted(CLASSES))}")
    cls = _load(*CLASSES[name])
    globals()[name] = cls
    return cls
