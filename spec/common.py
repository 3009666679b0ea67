"""Pieces of update rules that several optimizers share, written once."""
from __future__ import annotations

import sympy as sp

from .core import Assign, Hyperparameter, NONNEGATIVE, g, theta, unless_zero

LR_DOC = "learning rate; may change between steps (schedules, per-group lr)"


def lr(default: float) -> Hyperparameter:
    return Hyperparameter("lr", default, NONNEGATIVE, LR_DOC, latex="eta",
                          fuzz=None, fuzz_why="")


def weight_decay(default: float = 0.0, doc: str = "L2 penalty coefficient") -> Hyperparameter:
    return Hyperparameter("weight_decay", default, NONNEGATIVE, doc, latex="lambda")


def eps(default: float, doc: str) -> Hyperparameter:
    return Hyperparameter("eps", default, NONNEGATIVE, doc, latex="epsilon")


def flag(name: str, doc: str, default: bool = False) -> Hyperparameter:
    return Hyperparameter(name, default, bool, doc)


MAXIMIZE = flag("maximize", "ascend the objective: the gradient is negated before anything else")


def lerp(start, end, weight):
    """``start + weight·(end − start)``: torch's ``start.lerp_(end, weight)``, the form its code evaluates.

    Written as the lerp rather than the weighted mean ``(1 − w)·start + w·end``
    because the two group the arithmetic differently: torch's lerp applies the
    rounded weight to the difference, and the tolerance model charges rounding
    to the operations as the spec writes them.
    """
    return start + weight * (end - start)


def maximize(flags: dict) -> list:
    """torch: ``grad = grad if not maximize else -grad``, the first thing every step does."""
    return [Assign(g, -g, "maximize: negate the gradient")] if flags["maximize"] else []


def coupled_weight_decay(lam: sp.Symbol) -> list:
    """L2 regularisation folded into the gradient: ``g ← g + λθ`` (skipped when λ = 0)."""
    return [Assign(g, unless_zero(lam, g + lam * theta, g), "coupled weight decay (L2 in the gradient)")]


def decoupled_weight_decay(lr_sym: sp.Symbol, lam: sp.Symbol) -> list:
    """AdamW-style decay applied to the parameter first: ``θ ← θ·(1 − lr·λ)``."""
    return [Assign(theta, unless_zero(lam, theta * (1 - lr_sym * lam), theta),
                   "decoupled weight decay, scaled by lr")]


def weight_decay_either(flags: dict, lr_sym: sp.Symbol, lam: sp.Symbol) -> list:
    if flags.get("decoupled_weight_decay"):
        return decoupled_weight_decay(lr_sym, lam)
    return coupled_weight_decay(lam)
