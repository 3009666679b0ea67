"""Schedule-Free optimizers behind the harness's API, for ``--optimizer schedulefree_adamw...=module:Class``.

    pytest conformance --backend=torch-cpu --spec schedulefree_adamw \\
        --optimizer schedulefree_adamw=conformance.adapters.schedulefree:AdamWScheduleFreeReference
    pytest conformance --backend=torch-cpu --spec schedulefree_sgd \\
        --optimizer schedulefree_sgd=conformance.adapters.schedulefree:SGDScheduleFreeReference

Each class here is the library's class with two additions, nothing else:

* ``train()`` is called at the end of ``__init__``.  schedulefree's classes start in eval mode and raise in
  ``step()`` until ``train()`` is called; the harness only steps (train mode throughout).
* After each ``step()`` the group's scalar state is copied into ``state[p]`` of each parameter that has state,
  under the spec's names: ``step`` (schedulefree's ``group['k']``, pytorch-optimizer's ``group['step']``),
  ``lr_max`` and ``weight_sum``.  The harness reads a parameter's state from ``state[p]``; the spec keeps
  these per parameter (spec/schedulefree.py says why).  The copies are exact (Python floats) and the
  libraries never read these keys from ``state[p]``.

The signature (and so the defaults the harness reads) is the library class's.
"""
from __future__ import annotations

import inspect
from importlib import metadata

import torch

_DISTRIBUTIONS = {"pytorch_optimizer": "pytorch_optimizer", "schedulefree": "schedulefree"}

__all__ = ["AdamWScheduleFree", "AdamWScheduleFreeForLoop", "AdamWScheduleFreeReference",
           "PytorchOptimizerScheduleFreeAdamW", "PytorchOptimizerScheduleFreeSGD",
           "PytorchOptimizerScheduleFreeSGDForLoop", "SGDScheduleFree", "SGDScheduleFreeForLoop",
           "SGDScheduleFreeReference", "train_mode"]


def train_mode(base: type, counter: str) -> type:
    """``base`` put in train mode at construction, reporting its group scalars per parameter (``counter``: the
    group key of its step count)."""

    class Adapted(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.train()

        @classmethod
        def conformance_implementation(cls) -> tuple:
            """(qualified name, version) of the library class this runs, for known deviations and reports."""
            lib = base.__mro__[0] if base.__module__ != __name__ else base.__mro__[1]
            top = lib.__module__.partition(".")[0]
            return f"{lib.__module__}:{lib.__qualname__}", metadata.version(_DISTRIBUTIONS.get(top, top))

        @torch.no_grad()
        def step(self, closure=None):
            loss = super().step(closure)
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state.get(p)
                    if state and "z" in state:
                        state["step"] = float(group[counter])
                        state["lr_max"] = float(group["lr_max"])
                        state["weight_sum"] = float(group["weight_sum"])
            return loss

    Adapted.__name__ = Adapted.__qualname__ = base.__name__
    Adapted.__module__ = __name__
    Adapted.__signature__ = inspect.signature(base)
    Adapted.__doc__ = f"{base.__module__}.{base.__qualname__} in train mode, its group scalars reported per parameter."
    Adapted.adapted = base
    return Adapted


def _schedulefree():
    try:
        import schedulefree
    except ImportError as exc:  # pragma: no cover - only without the audits extra
        raise ImportError(f"conformance.adapters.schedulefree needs schedulefree (pip install schedulefree): {exc}") \
            from exc
    return schedulefree


def _for_loop(base: type) -> type:
    class ForLoop(base):
        def __init__(self, params, *args, foreach=False, **kwargs):
            super().__init__(params, *args, foreach=foreach, **kwargs)

    ForLoop.__name__ = ForLoop.__qualname__ = base.__name__ + "ForLoop"
    sig = inspect.signature(base)
    ForLoop.__signature__ = sig.replace(parameters=[p.replace(default=False) if p.name == "foreach" else p
                                                    for p in sig.parameters.values()])
    return ForLoop


_sf = _schedulefree()
AdamWScheduleFreeReference = train_mode(_sf.AdamWScheduleFreeReference, "k")
AdamWScheduleFree = train_mode(_sf.AdamWScheduleFree, "k")  # foreach where torch has _foreach_mul_ (its default)
AdamWScheduleFreeForLoop = train_mode(_for_loop(_sf.AdamWScheduleFree), "k")
SGDScheduleFreeReference = train_mode(_sf.SGDScheduleFreeReference, "k")  # ignores foreach: one path
SGDScheduleFree = train_mode(_sf.SGDScheduleFree, "k")  # foreach where torch has _foreach_mul_ (its default)
SGDScheduleFreeForLoop = train_mode(_for_loop(_sf.SGDScheduleFree), "k")

try:
    import pytorch_optimizer as _po
except ImportError:  # pragma: no cover - only without pytorch-optimizer
    PytorchOptimizerScheduleFreeAdamW = PytorchOptimizerScheduleFreeSGD = PytorchOptimizerScheduleFreeSGDForLoop = None
else:  # starts in train mode already; train() is a no-op there
    PytorchOptimizerScheduleFreeAdamW = train_mode(_po.ScheduleFreeAdamW, "step")
    PytorchOptimizerScheduleFreeSGD = train_mode(_po.ScheduleFreeSGD, "step")  # foreach=None: foreach for real tensors
    PytorchOptimizerScheduleFreeSGDForLoop = train_mode(_for_loop(_po.ScheduleFreeSGD), "step")
