"""Hugging Face transformers' Adafactor behind the harness's API, for ``--optimizer adafactor@transformers=...``.

    pytest conformance --backend=torch-cpu --optimizer \\
        adafactor@transformers=conformance.adapters.transformers:Adafactor

``transformers.optimization.Adafactor`` with two additions, nothing else.

* **lr as the spec reads it.**  With ``relative_step`` (the default) transformers never reads lr and raises
  ValueError for a number; without it lr is the step.  The harness passes the spec's lr, whose 0 it turns into
  transformers' default None (``Hyperparameter.zero_means_none``); the adapter passes None under
  ``relative_step`` and a number (None as 0.0) otherwise, per group, as the spec reads it.
* **The factors in torch's shapes.**  Between steps its row and column factors
are kept in torch's keepdim shapes, (…, R, 1) and (…, 1, C), which the harness compares per row and per column
(``spec.core.State.reduced_axis``); transformers keeps them as (…, R) and (…, C).  ``step()`` reshapes them to
transformers' shapes before the library's step and back after it: views of the same storage, so the values the
library reads and writes are exactly its own, and a state_dict saved between steps reloads the same way.

The signature (and so the defaults the harness reads: lr=None, eps=(1e-30, 1e-3), beta1=None) is the library's.
"""
from __future__ import annotations

import inspect
from importlib import metadata

import torch

try:
    from transformers.optimization import Adafactor as _Adafactor
except ImportError as exc:  # pragma: no cover - only without transformers
    raise ImportError("conformance.adapters.transformers needs transformers==5.18.0, the version audited "
                      f"(pip install -e '.[transformers]'): {exc}") from exc

__all__ = ["Adafactor"]


def _shapes(p: torch.Tensor, keepdim: bool) -> dict:
    """The row and column factors' shapes for parameter ``p``: transformers' or (keepdim) torch's."""
    s = tuple(p.shape)
    if keepdim:
        return {"exp_avg_sq_row": s[:-1] + (1,), "exp_avg_sq_col": s[:-2] + (1,) + s[-1:]}
    return {"exp_avg_sq_row": s[:-1], "exp_avg_sq_col": s[:-2] + s[-1:]}


def _lr(lr, relative_step: bool):
    """The spec's lr as transformers takes it: None under relative_step (never read there), else a number."""
    if relative_step:
        return None
    return 0.0 if lr is None else lr


class Adafactor(_Adafactor):
    """transformers.optimization.Adafactor, its factors reported in torch's keepdim shapes between steps."""

    def __init__(self, params, *args, **kwargs):
        bound = inspect.signature(_Adafactor).bind(params, *args, **kwargs)
        bound.apply_defaults()
        args = dict(bound.arguments)
        params, lr = args.pop("params"), args["lr"]
        args["lr"] = _lr(lr, args["relative_step"])
        if not isinstance(params, torch.Tensor):
            params = [{**g, "lr": _lr(g.get("lr", lr), g.get("relative_step", args["relative_step"]))}
                      if isinstance(g, dict) else g for g in params]
        super().__init__(params, **args)

    @classmethod
    def conformance_implementation(cls) -> tuple:
        """(qualified name, version) of the library class this runs, for known deviations and reports."""
        return "transformers.optimization:Adafactor", metadata.version("transformers")

    def _reshape_factors(self, keepdim: bool) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if not state or p.dim() < 2:
                    continue
                for key, shape in _shapes(p, keepdim).items():
                    if key in state:
                        state[key] = state[key].reshape(shape)

    @torch.no_grad()
    def step(self, closure=None):
        self._reshape_factors(keepdim=False)
        try:
            return super().step(closure)
        finally:
            self._reshape_factors(keepdim=True)


Adafactor.__signature__ = inspect.signature(_Adafactor)
