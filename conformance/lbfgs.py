"""What ``conformance/test_lbfgs.py`` needs to check an L-BFGS implementation by properties (``spec/lbfgs.py``).

* **Runners**: one interface over torch-API classes (``torch.optim.LBFGS``, or a class given with
  ``--optimizer lbfgs=module:Class``) and the NumPy port: ``step(fn)`` with ``fn(flat_x) -> (loss, flat_g)`` on
  the flattened real vector, ``flat_x()``, ``state()`` (torch's state names, NumPy float64) and ``set_lr``.
* **Quadratics** f(x) = ½xᵀAx − bᵀx with ∇f = Ax − b, A symmetric positive definite.
* **A bound for binary64 evaluations** (``Bounded``): a value computed here and a bound on how far *any*
  evaluation of the same expression that obeys the standard model |fl(a∘b) − a∘b| ≤ u|fl(a∘b)| ... in any
  summation order (dot products: γₙ·Σ|aᵢbᵢ|, which FMA and blocked sums meet too) can be from the exact value.
  An implementation agrees with the exact value within ``e``, and so does this evaluation, so the two agree
  within 2e.  The bound is itself computed in binary64, a relative error of a few n·u that the factor
  ``SLACK`` covers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

U = 2.0 ** -53  # binary64's unit roundoff
SLACK = 1 + 2.0 ** -20  # covers the rounding of the bound's own arithmetic (relative error of order n·u)


def gamma(n: int) -> float:
    return n * U / (1 - n * U)


class StateMissing(Exception):
    """The implementation does not keep torch's state variable of this name."""


# --------------------------------------------------------------------------- bounded binary64 evaluation

@dataclass(frozen=True)
class Bounded:
    v: object  # float or np.ndarray: this evaluation's value
    e: object  # a bound on |any standard-model evaluation − exact| (elementwise)

    @property
    def big(self):
        """A bound on the magnitude of the exact value and of any evaluation of it."""
        return np.abs(self.v) + 2 * self.e


def exact(v) -> Bounded:
    return Bounded(np.asarray(v, dtype=np.float64) if np.ndim(v) else float(v), 0.0 * np.abs(v))


def add(a: Bounded, b: Bounded) -> Bounded:
    return Bounded(a.v + b.v, a.e + b.e + U * (a.big + b.big))


def neg(a: Bounded) -> Bounded:
    return Bounded(-a.v, a.e)


def mul(a: Bounded, b: Bounded) -> Bounded:
    return Bounded(a.v * b.v, a.big * b.e + b.big * a.e + U * a.big * b.big)


def div(a: Bounded, b: Bounded) -> Bounded:
    low = abs(b.v) - 2 * b.e  # |b| and any evaluation of b are at least this
    if low <= 0:
        return Bounded(a.v / b.v, float("inf"))
    return Bounded(a.v / b.v, a.e / low + (abs(a.v) + a.e) * b.e / low ** 2 + U * a.big / low)


def dot(a: Bounded, b: Bounded) -> Bounded:
    n = np.size(a.v)
    e = float(np.sum(a.big * b.e + b.big * a.e)) + gamma(n) * float(np.sum(a.big * b.big))
    return Bounded(float(a.v @ b.v), e)


def abs_sum(g: np.ndarray) -> Bounded:
    """‖g‖₁ of an exact g: Σ|gᵢ| in any order."""
    s = float(np.abs(g).sum())
    return Bounded(s, gamma(g.size) * s)


def min1(a: Bounded) -> Bounded:
    """min(1, a): 1-Lipschitz, so the bound carries over."""
    return Bounded(min(1.0, a.v), a.e)


def first_step(g: np.ndarray, lr: float) -> Bounded:
    """t = min(1, 1/‖g‖₁)·lr (spec.lbfgs.first_step_size)."""
    return mul(min1(div(exact(1.0), abs_sum(g))), exact(lr))


def curvature(y: np.ndarray, s: np.ndarray) -> tuple:
    """(ρ = 1/yᵀs, γ = yᵀs/yᵀy) of a pair given exactly."""
    ys = dot(exact(y), exact(s))
    return div(exact(1.0), ys), div(ys, dot(exact(y), exact(y)))


def two_loop(g: np.ndarray, dirs: list, stps: list) -> Bounded:
    """d = −H·g (spec.lbfgs.two_loop) from exact g and exact pairs, with ρᵢ and γ computed from them."""
    rhos = [curvature(y, s)[0] for y, s in zip(dirs, stps)]
    gam = curvature(dirs[-1], stps[-1])[1] if dirs else exact(1.0)
    q = exact(-g)
    alphas = [None] * len(dirs)
    for i in reversed(range(len(dirs))):
        alphas[i] = mul(dot(exact(stps[i]), q), rhos[i])
        q = add(q, mul(neg(alphas[i]), exact(dirs[i])))
    r = mul(q, gam)
    for i in range(len(dirs)):
        beta = mul(dot(exact(dirs[i]), r), rhos[i])
        r = add(r, mul(add(alphas[i], neg(beta)), exact(stps[i])))
    return r


def outside(got, b: Bounded, exact_value=None) -> np.ndarray:
    """Where ``got`` is farther than the bound from the exact value: from ``exact_value`` when it is known
    (then within e), else from this evaluation (within 2e)."""
    got = np.asarray(got, dtype=np.float64)
    if exact_value is None:
        return ~(np.abs(got - b.v) <= 2 * b.e * SLACK)
    return ~(np.abs(got - np.asarray(exact_value)) <= b.e * SLACK)


# --------------------------------------------------------------------------- quadratics

@dataclass
class Quadratic:
    """f(x) = ½xᵀAx − bᵀx; ``calls`` counts the closure's evaluations."""

    A: np.ndarray
    b: np.ndarray
    calls: int = 0

    def __call__(self, x: np.ndarray):
        self.calls += 1
        g = self.A @ x - self.b
        return float(0.5 * (x @ (self.A @ x)) - self.b @ x), g

    @staticmethod
    def draw(rng: np.random.Generator, n: int, scale: float = 1.0) -> "Quadratic":
        """A well-conditioned A = I + MᵀM/n (eigenvalues in [1, 1 + ‖M‖²/n]) and b of order ``scale``."""
        m = rng.uniform(-1, 1, (n, n))
        return Quadratic(np.eye(n) + m.T @ m / n, rng.uniform(-scale, scale, n))


# --------------------------------------------------------------------------- runners

def _real_size(part: np.ndarray) -> int:
    return 2 * part.size if np.iscomplexobj(part) else part.size


def split(flat: np.ndarray, like: list) -> list:
    """``flat`` cut into arrays shaped and typed as ``like`` (complex: re, im interleaved)."""
    out, offset = [], 0
    for part in like:
        n = _real_size(part)
        chunk = flat[offset:offset + n]
        out.append(chunk.view(np.complex128).reshape(part.shape) if np.iscomplexobj(part)
                   else chunk.reshape(part.shape).copy())
        offset += n
    return out


def join(parts) -> np.ndarray:
    return np.concatenate([np.ascontiguousarray(p).view(np.float64).reshape(-1) if np.iscomplexobj(p)
                           else np.asarray(p, dtype=np.float64).reshape(-1) for p in parts])


class TorchRunner:
    """A torch-API L-BFGS class over float64 (complex128) parameters shaped as ``parts``."""

    def __init__(self, cls, parts: list, hyper: dict, device: str = "cpu"):
        import torch
        self.torch = torch
        self.params = [torch.tensor(p, device=device).requires_grad_() for p in parts]
        self.opt = cls(self.params, **hyper)

    def flat_x(self) -> np.ndarray:
        t = self.torch
        return join([(t.view_as_real(p.detach()) if p.is_complex() else p.detach()).cpu().numpy()
                     for p in self.params])

    def step(self, fn):
        t = self.torch

        def closure():
            loss, g = fn(self.flat_x())
            for p, gp in zip(self.params, split(g, [np.zeros(p.shape, np.complex128 if p.is_complex() else
                                                              np.float64) for p in self.params])):
                p.grad = t.tensor(gp, device=p.device)
            return loss
        return self.opt.step(closure)

    def set_lr(self, lr: float) -> None:
        self.opt.param_groups[0]["lr"] = lr

    def state(self) -> dict:
        return _numpy_state(self.opt.state[self.params[0]], lambda v: v.detach().cpu().numpy()
                            if isinstance(v, self.torch.Tensor) else v)


class NumpyRunner:
    """The NumPy port (or a subclass of it: the broken ports of tests/broken_lbfgs.py)."""

    def __init__(self, cls, parts: list, hyper: dict):
        self.params = [np.array(p) for p in parts]
        self.opt = cls(self.params, **hyper)

    def flat_x(self) -> np.ndarray:
        return join(self.params)

    def step(self, fn):
        def closure():
            loss, g = fn(self.flat_x())
            return loss, split(g, self.params)
        return self.opt.step(closure)

    def set_lr(self, lr: float) -> None:
        self.opt.group["lr"] = lr

    def state(self) -> dict:
        return _numpy_state(self.opt.state, lambda v: v)


def _numpy_state(raw: dict, to_numpy) -> dict:
    """torch's state names as NumPy values (lists of flat arrays; scalars as floats); a missing one raises
    StateMissing when read."""
    class View(dict):
        def __missing__(self, key):
            raise StateMissing(key)
    out = View()
    for k, v in raw.items():
        if isinstance(v, list):
            out[k] = [None if x is None else np.asarray(to_numpy(x), dtype=np.float64) for x in v]
        elif v is None or isinstance(v, (int, float)):
            out[k] = v
        else:
            a = np.asarray(to_numpy(v), dtype=np.float64)
            out[k] = float(a) if a.ndim == 0 else a
    return out
