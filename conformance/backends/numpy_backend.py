"""The project's own NumPy port of PyTorch 2.13's for-loop optimizers.

Written by hand from ``torch/optim/<name>.py``'s ``_single_tensor_<name>``
functions, statement for statement, as an implementation independent of both
torch and our SymPy spec (Lion, Adan and AdEMAMix, which torch.optim lacks, from their authors'
reference code, google/automl ``lion/lion_pytorch.py``, sail-sg/Adan ``adan.py`` and apple/ml-ademamix
``pytorch/ademamix.py``, likewise).  It mirrors torch's CPU arithmetic where that is
cheap:

* Hyperparameter-only scalars (``1 - beta**step``, ``lr / bc1``, NAdam's mu,
  RAdam's rho_t and rectification, ...) are Python floats (binary64), computed
  by the same expressions as torch's for-loop.  The step counter is an integer
  count held as a float.
* Every tensor operation (one torch call: ``add(alpha=)``, ``addcmul``,
  ``addcdiv``, ``lerp``, ``sqrt``, ...) is evaluated in the compute type and
  its result rounded once to the parameter dtype; state arrays are kept in the
  parameter dtype.  The compute type is float32 for float16/bfloat16 (torch's
  CPU "opmath") and the dtype itself for float32/float64.  A Python scalar
  entering a tensor op is converted straight from binary64 to the compute type,
  except in ``add`` (``alpha``, or a scalar ``other`` as in ``add(eps)``): torch
  rounds those to the tensor's dtype first, so on float16 ``add_(eps=1e-8)``
  adds zero and ``add_(x, alpha=-lr)`` uses ``float16(lr)``.  (That is torch's
  vectorized loop.  Its scalar loop, which handles the tail of every contiguous
  run that is not a whole number of vector pairs, 0-d tensors and tensors
  smaller than two vectors, does ``add`` in Half/BFloat16 arithmetic, rounding
  ``alpha * other`` to the half type before adding: those elements can differ
  from this port by an ulp.  Not mirrored: it depends on the element's position
  and on the CPU's vector width.)
* Inside one op, the order is torch's kernel's: ``add`` is ``a + alpha*b``,
  ``addcmul`` is ``a + (value*t1)*t2``, ``addcdiv`` is ``a + (value*t1)/t2``,
  ``lerp`` is ``|w| < 0.5 ? a + w*(b-a) : b - (b-a)*(1-w)``.  torch's CPU
  kernels (vectorized and scalar loops alike) fuse ``add`` with alpha,
  ``addcmul`` and ``lerp`` into FMAs; this port does not, so on float32/float64
  it differs from torch by an ulp in some elements (on half types the float32
  FMA rarely survives the rounding to the half type).
* ``scalar / tensor`` is ``tensor.reciprocal() * scalar`` (``Tensor.__rtruediv__``).
* NAdam's ``mu_product`` is a 0-d tensor of torch's default scalar dtype:
  float32 unless ``torch.get_default_dtype()`` is float64.  ``NumpyBackend``
  mirrors the default (``scalar_dtype="float32"``: ``mu_product *= mu`` is a
  float32 multiply of the stored product by ``float32(mu)``); pass
  ``scalar_dtype="float64"`` to model torch run with a float64 default dtype.
  The module's ``backend`` (what ``--backend=numpy`` runs) uses float64: the
  project's own implementation follows the spec, not torch's float32 product
  (a known deviation of torch, see conformance/known_deviations.py).
  The step counters are float32 there too, exact for any realistic count.
* ASGD's ``eta`` and ``mu`` are 0-d tensors of that scalar dtype too: each step
  computes them as Python floats and stores them rounded to ``scalar_dtype``
  (the initial ``eta``, the group's lr, included).
* Adagrad creates its state (``step = 0``, ``sum = initial_accumulator_value``)
  for every parameter when the optimizer is constructed, as torch does, so a
  parameter that never had a gradient still reports it.  Every other
  optimizer creates state on a parameter's first step with a gradient.
  (torch itself fills ``sum`` from the *constructor's* value for all groups; a
  per-group ``initial_accumulator_value`` is honoured here.)

Signed zeros, NaN and inf propagate as NumPy's IEEE arithmetic makes them;
floating-point warnings are silenced.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from conformance.backend import DTYPES, Case, StepOutput, lay_out
from conformance.backends import numpy_muon
from reference.sparse import Uncoalesced, first_entries, second_entries
from spec import get as spec_get

__all__ = ["NumpyBackend", "backend", "DEFAULTS", "validate"]

_NP_DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

# --------------------------------------------------------------------------
# hyperparameters: torch's defaults and constructor checks
# --------------------------------------------------------------------------

_ADAM_COMMON = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)

DEFAULTS = {
    "sgd": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False),
    "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    maximize=False),
    "adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
    "adam": dict(_ADAM_COMMON, decoupled_weight_decay=False),
    "adamw": dict(_ADAM_COMMON, weight_decay=1e-2),
    "adamax": dict(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, maximize=False),
    "nadam": dict(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                  decoupled_weight_decay=False, maximize=False),
    "radam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                  maximize=False),
    "rprop": dict(lr=1e-2, etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50.0, maximize=False),
    "asgd": dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False),
    # not torch's: the Lion paper's and its authors' reference code's (google/automl lion/lion_pytorch.py)
    "lion": dict(lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0),
    # not torch's: the Adan authors' reference code's (sail-sg/Adan adan.py)
    "adan": dict(lr=1e-3, beta1=0.98, beta2=0.92, beta3=0.99, eps=1e-8, weight_decay=0.0, no_prox=False),
    # not torch's: the AdEMAMix authors' reference code's (apple/ml-ademamix pytorch/ademamix.py); a warm-up of 0 is
    # its None (no warm-up: its ``step < warmup`` never holds)
    "ademamix": dict(lr=1e-3, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=2.0, beta3_warmup=0.0, alpha_warmup=0.0,
                     eps=1e-8, weight_decay=0.0),
    # not torch's: schedulefree 1.4.1's AdamWScheduleFreeReference (weight_lr_power fixed at its default 2)
    "schedulefree_adamw": dict(lr=0.0025, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, warmup_steps=0,
                               r=0.0),
    # not torch's: schedulefree 1.4.1's SGDScheduleFreeReference (weight_lr_power fixed at its default 2)
    "schedulefree_sgd": dict(lr=1.0, momentum=0.9, weight_decay=0.0, warmup_steps=0, r=0.0),
    # not torch's: the LAMB paper's (You et al. 2020, Algorithm 2), λ = 0
    "lamb": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0),
    "sparse_adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, maximize=False),
    # torch's SGD and Adagrad given sparse gradients: the hyperparameters torch steps sparse gradients with
    "sgd_sparse": dict(lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, maximize=False),
    "adagrad_sparse": dict(lr=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False),
    # torch.optim.Adafactor's eps=(None, 1e-3), under the spec's names
    "adafactor": dict(lr=1e-2, beta2_decay=-0.8, eps1=None, eps2=1e-3, d=1.0, weight_decay=0.0, maximize=False),
    # torch.optim.Muon's, under the spec's names (ns_coefficients split, adjust_lr_fn=None as the flag False)
    "muon": dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, match_rms_adamw=False, ns_a=3.4445,
                 ns_b=-4.775, ns_c=2.0315, eps=1e-7, ns_steps=5),
}


def _check_betas(h: dict) -> None:
    if not 0.0 <= h["beta1"] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {h['beta1']}")
    if not 0.0 <= h["beta2"] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {h['beta2']}")


def validate(optimizer: str, hyper: dict) -> dict:
    """``hyper`` completed with torch's defaults, checked as torch's constructor checks it.

    The conditions are torch's own expressions, so NaN is accepted or refused
    exactly where torch accepts or refuses it (``SGD`` tests ``lr < 0.0`` and
    lets NaN through; the others test ``not 0.0 <= lr``).  Unknown names raise
    too: a hyperparameter this port does not know would otherwise be ignored.
    """
    if optimizer not in DEFAULTS:
        raise ValueError(f"numpy backend: unknown optimizer {optimizer!r}; known: {', '.join(DEFAULTS)}")
    unknown = sorted(set(hyper) - set(DEFAULTS[optimizer]))
    if unknown:
        raise ValueError(f"{optimizer}: unknown hyperparameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(DEFAULTS[optimizer])}")
    h = {**DEFAULTS[optimizer], **hyper}

    if optimizer in ("sgd", "sgd_sparse"):
        if h["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {h['lr']}")
        if h["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {h['momentum']}")
        if h.get("weight_decay", 0.0) < 0.0:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        return h

    if not 0.0 <= h["lr"]:
        raise ValueError(f"Invalid learning rate: {h['lr']}")
    if optimizer == "adafactor":  # torch's checks, in its order
        if not 0.0 >= h["beta2_decay"]:
            raise ValueError(f"beta2_decay should be <= 0 but is: {h['beta2_decay']}")
        if h["eps1"] is not None and not 0.0 <= h["eps1"]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {h['eps1']}")
        if not 0.0 <= h["eps2"]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {h['eps2']}")
        if not 1.0 <= h["d"]:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {h['d']}")
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"weight_decay should be >= 0 but is: {h['weight_decay']}")
        return h
    if optimizer in ("adagrad", "adagrad_sparse"):
        if not 0.0 <= h["lr_decay"]:
            raise ValueError(f"Invalid lr_decay value: {h['lr_decay']}")
        if not 0.0 <= h.get("weight_decay", 0.0):
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
        if not 0.0 <= h["initial_accumulator_value"]:
            raise ValueError(f"Invalid initial_accumulator_value value: {h['initial_accumulator_value']}")
        if not 0.0 <= h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
    elif optimizer == "rmsprop":
        if not 0.0 <= h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
        if not 0.0 <= h["momentum"]:
            raise ValueError(f"Invalid momentum value: {h['momentum']}")
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
        if not 0.0 <= h["alpha"]:  # torch sets no upper bound on alpha
            raise ValueError(f"Invalid alpha value: {h['alpha']}")
    elif optimizer == "adadelta":
        if not 0.0 <= h["rho"] <= 1.0:  # rho = 1 is accepted
            raise ValueError(f"Invalid rho value: {h['rho']}")
        if not 0.0 <= h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
    elif optimizer == "rprop":
        if not 0.0 < h["etaminus"] < 1.0 < h["etaplus"]:  # torch checks nothing about step_sizes
            raise ValueError(f"Invalid eta values: {h['etaminus']}, {h['etaplus']}")
    elif optimizer == "asgd":  # torch checks nothing about lambd, alpha and t0
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
    elif optimizer == "lion":  # the reference code's checks, and the spec's λ ≥ 0 (which that code does not check)
        _check_betas(h)
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
    elif optimizer in ("adan", "ademamix"):  # the reference codes' checks, and the spec's λ ≥ 0 (and AdEMAMix's
        # α, T ≥ 0), which those codes do not check
        if not 0.0 <= h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
        _check_betas(h)
        if not 0.0 <= h["beta3"] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 2: {h['beta3']}")
        extra = ("alpha", "beta3_warmup", "alpha_warmup") if optimizer == "ademamix" else ()
        for name in ("weight_decay", *extra):
            if not 0.0 <= h[name]:
                raise ValueError(f"Invalid {name} value: {h[name]}")
    elif optimizer == "schedulefree_adamw":  # the library checks nothing: the spec's domains
        _check_betas(h)
        for name in ("eps", "weight_decay", "warmup_steps"):
            if not 0.0 <= h[name]:
                raise ValueError(f"Invalid {name} value: {h[name]}")
        if not float(h["warmup_steps"]).is_integer():
            raise ValueError(f"Invalid warmup_steps value: {h['warmup_steps']} (a number of steps)")
    elif optimizer == "muon":  # torch's constructor checks, and the spec's whole ns_steps in [0, 100), which torch
        # checks only at step() (finding 63: a known deviation of torch's, not followed here)
        if not (0 <= h["ns_steps"] < 100 and float(h["ns_steps"]).is_integer()):
            raise ValueError(f"Invalid ns_steps value: {h['ns_steps']} (a whole number below 100)")
        if not 0.0 <= h["momentum"]:
            raise ValueError(f"momentum should be >= 0 but is: {h['momentum']}")
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"weight decay should be >= 0 but is: {h['weight_decay']}")
    elif optimizer == "sparse_adam":  # torch's checks: lr and eps strictly positive
        if not 0.0 < h["lr"]:
            raise ValueError(f"Invalid learning rate: {h['lr']}")
        if not 0.0 < h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
        _check_betas(h)
    elif optimizer == "schedulefree_sgd":  # the library's checks, and the spec's whole warmup_steps ≥ 0
        if not 0.0 <= h["lr"]:
            raise ValueError(f"Invalid learning rate: {h['lr']}")
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
        if not 0.0 < h["momentum"] < 1.0:
            raise ValueError(f"Momentum must be between 0 and 1 exclusive: {h['momentum']}")
        if not (0.0 <= h["warmup_steps"] and float(h["warmup_steps"]).is_integer()):
            raise ValueError(f"Invalid warmup_steps value: {h['warmup_steps']} (a number of steps)")
    else:  # adam, adamw, adamax, nadam, radam, lamb (the spec's domains)
        if not 0.0 <= h["eps"]:
            raise ValueError(f"Invalid epsilon value: {h['eps']}")
        _check_betas(h)
        if not 0.0 <= h["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {h['weight_decay']}")
        if optimizer == "nadam" and not 0.0 <= h["momentum_decay"]:
            raise ValueError(f"Invalid momentum_decay value: {h['momentum_decay']}")
    return h


# --------------------------------------------------------------------------
# torch's CPU elementwise ops for one dtype
# --------------------------------------------------------------------------

class _Ops:
    """Tensor ops as torch's CPU kernels do them: compute type in, one rounding out."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.ct = np.float64 if dtype == np.float64 else np.float32  # torch's opmath type

    def s(self, x: float):
        """A Python scalar as the kernel sees it: binary64 -> compute type."""
        return self.ct(x)

    def _in(self, a):
        return np.asarray(a).astype(self.ct, copy=False)

    def _out(self, a) -> np.ndarray:
        return np.asarray(a).astype(self.dtype)  # always a fresh array, 0-d stays 0-d

    def _arg(self, b):
        return self.s(b) if isinstance(b, (int, float)) else self._in(b)

    # one torch call each
    def neg(self, a):
        return self._out(-self._in(a))

    def abs(self, a):
        return self._out(np.abs(self._in(a)))

    def sqrt(self, a):
        return self._out(np.sqrt(self._in(a)))

    def s_add(self, x: float):
        """A Python scalar as torch's ``add`` kernel sees it: rounded to the *tensor's* dtype first.

        ``add`` is a codegen'd ufunc kernel that converts ``alpha`` (and a scalar
        ``other``) with ``Scalar.to<scalar_t>()``: for float16/bfloat16 that rounds
        the scalar to the half type before the float32 arithmetic.  The other
        kernels (mul, div, addcmul, addcdiv, lerp) use the float32 value.
        """
        return self.ct(np.asarray(x, dtype=np.float64).astype(self.dtype))

    def add(self, a, b, alpha: float = 1.0):  # a.add(b, alpha=alpha); b a tensor or a Python scalar
        other = self.s_add(b) if isinstance(b, (int, float)) else self._in(b)
        if alpha == 1:
            return self._out(self._in(a) + other)
        return self._out(self._in(a) + self.s_add(alpha) * other)

    def mul(self, a, b):
        return self._out(self._in(a) * self._arg(b))

    def div(self, a, b):
        return self._out(self._in(a) / self._arg(b))

    def rdiv(self, x: float, a):  # x / a  ==  a.reciprocal() * x
        return self.mul(self._out(self.ct(1) / self._in(a)), x)

    def addcmul(self, a, t1, t2, value: float = 1.0):
        return self._out(self._in(a) + self.s(value) * self._in(t1) * self._in(t2))

    def addcdiv(self, a, t1, t2, value: float = 1.0):
        return self._out(self._in(a) + self.s(value) * self._in(t1) / self._in(t2))

    def lerp(self, a, end, weight: float):
        w, x, y = self.s(weight), self._in(a), self._in(end)
        if abs(w) < 0.5:
            return self._out(x + w * (y - x))
        return self._out(y - (y - x) * (self.ct(1) - w))

    def maximum(self, a, b):  # NaN-propagating, like torch.maximum
        return self._out(np.maximum(self._in(a), self._in(b)))

    def clamp(self, a, lo: float, hi: float):
        """``a.clamp(lo, hi)``: min(max(a, lo), hi), NaN-propagating; the bounds rounded to the tensor's dtype
        first (``Scalar.to<scalar_t>()``), so hi wins when lo > hi."""
        lo, hi = (self.ct(np.asarray(x, dtype=np.float64).astype(self.dtype)) for x in (lo, hi))
        return self._out(np.minimum(np.maximum(self._in(a), lo), hi))

    def rsqrt(self, a):
        return self._out(self.ct(1) / np.sqrt(self._in(a)))

    def norm_axis(self, a, axis: int):
        """``torch.norm(a, dim=axis, keepdim=True)``: the sum of squares in the compute type, its root rounded once."""
        x = self._in(a)
        return self._out(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)))

    def mean_axis(self, a, axis: int):
        """``a.mean(dim=axis, keepdim=True)``: the sum in the compute type divided by the length, rounded once."""
        x = self._in(a)
        return self._out(np.sum(x, axis=axis, keepdims=True) / self.ct(x.shape[axis]))

    def fill(self, like, x: float):
        """A tensor of ``like``'s shape holding the Python scalar ``x`` in the dtype (``torch.full_like``)."""
        return np.full(np.shape(like), x, dtype=np.float64).astype(self.dtype)


# --------------------------------------------------------------------------
# one step of one parameter, per optimizer: _single_tensor_<name>'s loop body
# --------------------------------------------------------------------------
# k: ops, p: param, g: grad, st: the param's state dict (updated in place),
# h: hyperparameters (lr current).  Returns the new param.

def _sgd(k, p, g, st, h, _):
    grad = k.neg(g) if h["maximize"] else g
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    momentum = h["momentum"]
    if momentum != 0:
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = grad.copy()
        else:
            buf = k.add(k.mul(buf, momentum), grad, 1 - h["dampening"])
        st["momentum_buffer"] = buf
        grad = k.add(grad, buf, momentum) if h["nesterov"] else buf
    return k.add(p, grad, -h["lr"])


def _adagrad(k, p, g, st, h, _):
    st["step"] += 1
    step = st["step"]
    grad = k.neg(g) if h["maximize"] else g
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    clr = h["lr"] / (1 + (step - 1) * h["lr_decay"])
    st["sum"] = k.addcmul(st["sum"], grad, grad, 1)
    std = k.add(k.sqrt(st["sum"]), h["eps"])
    return k.addcdiv(p, grad, std, -clr)


def _rmsprop(k, p, g, st, h, _):
    lr, alpha, eps, momentum = h["lr"], h["alpha"], h["eps"], h["momentum"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    square_avg = st["square_avg"] = k.addcmul(k.mul(st["square_avg"], alpha), grad, grad, 1 - alpha)
    if h["centered"]:
        grad_avg = st["grad_avg"] = k.lerp(st["grad_avg"], grad, 1 - alpha)
        avg = k.sqrt(k.addcmul(square_avg, grad_avg, grad_avg, -1))
    else:
        avg = k.sqrt(square_avg)
    avg = k.add(avg, eps)
    if momentum > 0:
        buf = st["momentum_buffer"] = k.addcdiv(k.mul(st["momentum_buffer"], momentum), grad, avg)
        return k.add(p, buf, -lr)
    return k.addcdiv(p, grad, avg, -lr)


def _adadelta(k, p, g, st, h, _):
    lr, rho, eps = h["lr"], h["rho"], h["eps"]
    st["step"] += 1
    grad = k.neg(g) if h["maximize"] else g
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    st["square_avg"] = k.addcmul(k.mul(st["square_avg"], rho), grad, grad, 1 - rho)
    std = k.sqrt(k.add(st["square_avg"], eps))
    delta = k.sqrt(k.add(st["acc_delta"], eps))
    delta = k.mul(k.div(delta, std), grad)
    st["acc_delta"] = k.addcmul(k.mul(st["acc_delta"], rho), delta, delta, 1 - rho)
    return k.add(p, delta, -lr)


def _adam(k, p, g, st, h, _):
    lr, beta1, beta2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    if wd != 0:
        if h.get("decoupled_weight_decay", True):  # adamw has no key: always decoupled
            p = k.mul(p, 1 - lr * wd)
        else:
            grad = k.add(grad, p, wd)
    exp_avg = st["exp_avg"] = k.lerp(st["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta2), grad, grad, 1 - beta2)
    step = st["step"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if h["amsgrad"]:
        st["max_exp_avg_sq"] = k.maximum(st["max_exp_avg_sq"], exp_avg_sq)
        denom = k.add(k.div(k.sqrt(st["max_exp_avg_sq"]), bias_correction2_sqrt), eps)
    else:
        denom = k.add(k.div(k.sqrt(exp_avg_sq), bias_correction2_sqrt), eps)
    return k.addcdiv(p, exp_avg, denom, -step_size)


def _adamax(k, p, g, st, h, _):
    lr, beta1, beta2, eps = h["lr"], h["beta1"], h["beta2"], h["eps"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    exp_avg = st["exp_avg"] = k.lerp(st["exp_avg"], grad, 1 - beta1)
    exp_inf = st["exp_inf"] = k.maximum(k.mul(st["exp_inf"], beta2), k.add(k.abs(grad), eps))
    bias_correction = 1 - beta1 ** st["step"]
    clr = lr / bias_correction
    return k.addcdiv(p, exp_avg, exp_inf, -clr)


def _nadam(k, p, g, st, h, scalar_round):
    lr, beta1, beta2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    momentum_decay = h["momentum_decay"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    step = st["step"]
    bias_correction2 = 1 - beta2**step
    if wd != 0:
        if h["decoupled_weight_decay"]:
            p = k.mul(p, 1 - lr * wd)
        else:
            grad = k.add(grad, p, wd)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    # mu_product *= mu: a 0-d tensor of torch's default scalar dtype times a Python float
    st["mu_product"] = scalar_round(scalar_round(st["mu_product"]) * scalar_round(mu))
    exp_avg = st["exp_avg"] = k.lerp(st["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta2), grad, grad, 1 - beta2)
    denom = k.sqrt(k.div(exp_avg_sq, bias_correction2))
    mu_product = st["mu_product"]
    mu_product_next = mu_product * mu_next
    denom = k.add(denom, eps)
    p = k.addcdiv(p, grad, denom, (-lr * (1.0 - mu) / (1.0 - mu_product)))
    return k.addcdiv(p, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_product_next))


def _radam(k, p, g, st, h, _):
    lr, beta1, beta2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    step = st["step"]
    if wd != 0:
        if h["decoupled_weight_decay"]:
            p = k.mul(p, 1 - lr * wd)
        else:
            grad = k.add(grad, p, wd)
    exp_avg = st["exp_avg"] = k.lerp(st["exp_avg"], grad, 1 - beta1)
    exp_avg_sq = st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta2), grad, grad, 1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = k.div(exp_avg, bias_correction1)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive_lr = k.rdiv(bias_correction2**0.5, k.add(k.sqrt(exp_avg_sq), eps))
        update = k.mul(k.mul(k.mul(bias_corrected_exp_avg, lr), adaptive_lr), rect)
        return k.add(p, update, -1.0)
    return k.add(p, k.mul(bias_corrected_exp_avg, lr), -1.0)


def _torch_sign(x):
    """torch.sign: (0 < x) − (x < 0), so 0 for ±0 and for NaN (np.sign(NaN) would be NaN)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def _rprop(k, p, g, st, h, _):
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    product = k.mul(grad, st["prev"])
    # torch maps sign(product) to the factors in a tensor of the parameter's dtype: etaplus and etaminus are
    # rounded to it; torch.sign(NaN) is 0 (see _torch_sign), so a NaN product takes the factor 1.
    factor = np.where(product > 0, k.fill(product, h["etaplus"]),
                      np.where(product < 0, k.fill(product, h["etaminus"]), 1))
    step_size = st["step_size"] = k.clamp(k.mul(st["step_size"], factor.astype(k.dtype)),
                                          h["step_size_min"], h["step_size_max"])
    # torch zeroes grad where factor == etaminus; this port tests the sign itself, as the spec does (the two
    # differ where etaminus rounds to 0 or 1 in the dtype: a known deviation of torch).
    grad = np.where(product < 0, np.zeros_like(grad), grad)
    st["prev"] = grad.copy()
    return k.addcmul(p, _torch_sign(grad), step_size, -1.0)


def _asgd(k, p, g, st, h, scalar_round):
    lr, lambd, alpha, t0 = h["lr"], h["lambd"], h["alpha"], h["t0"]
    grad = k.neg(g) if h["maximize"] else g
    st["step"] += 1
    if h["weight_decay"] != 0:
        grad = k.add(grad, p, h["weight_decay"])
    eta = st["eta"]  # the previous step's: eta.item()
    p = k.mul(p, 1 - lambd * eta)
    p = k.add(p, grad, -eta)
    if st["mu"] != 1:  # ax.add_(param.sub(ax).mul_(mu)), mu a 0-d tensor: its value, not rounded to the dtype
        st["ax"] = k.add(st["ax"], k.mul(k.add(p, st["ax"], -1.0), st["mu"]))
    else:
        st["ax"] = p.copy()
    step = st["step"]
    # Python floats copied into eta and mu, 0-d tensors of torch's default scalar dtype
    st["eta"] = scalar_round(lr / ((1 + lambd * lr * step) ** alpha))
    st["mu"] = scalar_round(1 / max(1, step - t0))
    return p


def _lion(k, p, g, st, h, _):
    # Not a torch.optim port: the Lion authors' reference code (google/automl lion/lion_pytorch.py), statement for
    # statement.  Its decay multiplies even by 1 (λ = 0), which is exact.
    lr, beta1, beta2 = h["lr"], h["beta1"], h["beta2"]
    p = k.mul(p, 1 - lr * h["weight_decay"])
    update = k.add(k.mul(st["exp_avg"], beta1), k.mul(g, 1 - beta1))  # exp_avg * beta1 + grad * (1 - beta1)
    p = k.add(p, _torch_sign(update), -lr)
    st["exp_avg"] = k.add(k.mul(st["exp_avg"], beta2), g, 1 - beta2)
    return p


def _adan(k, p, g, st, h, _):
    # Not a torch.optim port: the Adan authors' reference code (sail-sg/Adan adan.py, _single_tensor_adan),
    # statement for statement, with the step counted per parameter (the spec's t; the code counts per group).
    # Its decay multiplies or divides even by 1 (λ = 0), which is exact.
    lr, beta1, beta2, beta3, eps, wd = h["lr"], h["beta1"], h["beta2"], h["beta3"], h["eps"], h["weight_decay"]
    st["step"] += 1
    step = st["step"]
    if step == 1:  # state['neg_pre_grad'] = p.grad.clone().mul_(-clip_global_grad_norm), clip 1
        st["neg_pre_grad"] = k.neg(g)
    neg_grad_or_diff = k.add(st["neg_pre_grad"], g)
    exp_avg = st["exp_avg"] = k.add(k.mul(st["exp_avg"], beta1), g, 1 - beta1)
    exp_avg_diff = st["exp_avg_diff"] = k.add(k.mul(st["exp_avg_diff"], beta2), neg_grad_or_diff, 1 - beta2)
    neg_grad_or_diff = k.add(k.mul(neg_grad_or_diff, beta2), g)
    st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta3), neg_grad_or_diff, neg_grad_or_diff, 1 - beta3)
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    bias_correction3 = 1.0 - beta3**step
    denom = k.add(k.div(k.sqrt(st["exp_avg_sq"]), math.sqrt(bias_correction3)), eps)
    step_size_diff = lr * beta2 / bias_correction2
    step_size = lr / bias_correction1
    if h["no_prox"]:
        p = k.mul(p, 1 - lr * wd)
        p = k.addcdiv(p, exp_avg, denom, -step_size)
        p = k.addcdiv(p, exp_avg_diff, denom, -step_size_diff)
    else:
        p = k.addcdiv(p, exp_avg, denom, -step_size)
        p = k.addcdiv(p, exp_avg_diff, denom, -step_size_diff)
        p = k.div(p, 1 + lr * wd)
    st["neg_pre_grad"] = k.add(k.fill(g, 0.0), g, -1.0)  # neg_grad_or_diff.zero_().add_(grad, alpha=-1.0)
    return p


def _linear_warmup(step, alpha_end, warmup):
    # the reference code's linear_warmup_scheduler(step, alpha_end, alpha_start=0, warmup)
    if step < warmup:
        a = step / float(warmup)
        return (1.0 - a) * 0 + a * alpha_end
    return alpha_end


def _linear_hl_warmup(step, beta_end, beta_start, warmup):
    # the reference code's linear_hl_warmup_scheduler: linear in the half-life f(beta)
    def f(beta, eps=1e-8):
        return math.log(0.5) / math.log(beta + eps) - 1

    def f_inv(t):
        return math.pow(0.5, 1 / (t + 1))

    if step < warmup:
        a = step / float(warmup)
        return f_inv((1.0 - a) * f(beta_start) + a * f(beta_end))
    return beta_end


def _ademamix(k, p, g, st, h, _):
    # Not a torch.optim port: the AdEMAMix authors' reference code (apple/ml-ademamix pytorch/ademamix.py), statement
    # for statement; its warm-up None is 0 here (the same values).
    lr, beta1, beta2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    st["step"] += 1
    step = st["step"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    alpha = _linear_warmup(step, h["alpha"], h["alpha_warmup"])
    beta3 = _linear_hl_warmup(step, h["beta3"], beta1, h["beta3_warmup"])
    if beta1 != 0.0:
        exp_avg_fast = st["exp_avg_fast"] = k.add(k.mul(st["exp_avg_fast"], beta1), g, 1 - beta1)
    else:
        exp_avg_fast = g  # the code keeps no exp_avg_fast (None in its state)
    exp_avg_slow = st["exp_avg_slow"] = k.add(k.mul(st["exp_avg_slow"], beta3), g, 1 - beta3)
    exp_avg_sq = st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta2), g, g, 1 - beta2)
    denom = k.add(k.div(k.sqrt(exp_avg_sq), math.sqrt(bias_correction2)), eps)
    update = k.div(k.add(k.div(exp_avg_fast, bias_correction1), k.mul(exp_avg_slow, alpha)), denom)
    update = k.add(update, p, wd)  # not skipped for λ = 0: 0·inf is NaN, as torch's add_
    return k.add(p, k.mul(update, -lr))


def _schedulefree_adamw(k, p, g, st, h, _):
    # Not a torch.optim port: schedulefree 1.4.1's AdamWScheduleFreeReference.step, statement for statement.  The
    # library keeps step, lr_max and weight_sum per group; here each parameter keeps a copy, the same values while
    # every parameter has a gradient at every step (all the harness draws for this spec).
    step, warmup = st["step"], h["warmup_steps"]
    sched = (step + 1) / warmup if step < warmup else 1.0
    bias_correction2 = 1 - h["beta2"] ** (step + 1)
    lr = h["lr"] * sched
    lr_max = st["lr_max"] = max(lr, st["lr_max"])
    # lr_max ** 2.0 in the library: the same correctly rounded square, but Python's ** raises OverflowError
    # past 1.3e154 where * gives inf (a tiny warmup_steps W makes lr·t/W that large)
    weight = ((step + 1) ** h["r"]) * (lr_max * lr_max)
    weight_sum = st["weight_sum"] = st["weight_sum"] + weight
    try:
        ckp1 = weight / weight_sum
    except ZeroDivisionError:
        ckp1 = 0
    z = st["z"]
    if h["weight_decay"] != 0:
        z = k.add(z, p, -(lr * h["weight_decay"]))  # z.sub_(y, alpha=lr*decay)
    st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], h["beta2"]), g, g, 1 - h["beta2"])
    denom = k.add(k.sqrt(k.div(st["exp_avg_sq"], bias_correction2)), h["eps"])
    z = st["z"] = k.addcdiv(z, g, denom, -lr)
    x = st["x"] = k.add(k.mul(st["x"], 1 - ckp1), z, ckp1)  # x.mul_(1-ckp1).add_(z, alpha=ckp1)
    st["step"] = step + 1
    return k.add(k.mul(x, h["beta1"]), z, 1 - h["beta1"])  # y = x.mul(beta1).add_(z, alpha=1-beta1)


def _average_weight(st, h) -> tuple:
    """schedulefree's group scalars (γ_t, c) of one step, advancing the copies of them this parameter keeps."""
    step, warmup = st["step"], h["warmup_steps"]
    lr = h["lr"] * ((step + 1) / warmup if step < warmup else 1.0)
    lr_max = st["lr_max"] = max(lr, st["lr_max"])
    weight = ((step + 1) ** h["r"]) * (lr_max * lr_max)  # lr_max ** 2.0 there: _schedulefree_adamw says why
    weight_sum = st["weight_sum"] = st["weight_sum"] + weight
    st["step"] = step + 1
    return lr, (weight / weight_sum if weight_sum != 0 else 0)


def _schedulefree_sgd(k, p, g, st, h, _):
    # Not a torch.optim port: schedulefree 1.4.1's SGDScheduleFreeReference.step, statement for statement (the
    # group scalars kept per parameter, as for _schedulefree_adamw).
    lr, ckp1 = _average_weight(st, h)
    if h["weight_decay"] != 0:
        g = k.add(g, p, h["weight_decay"])  # grad.add_(y, alpha=weight_decay)
    z = st["z"] = k.add(st["z"], g, -lr)  # z.sub_(grad, alpha=lr)
    x = st["x"] = k.add(k.mul(st["x"], 1 - ckp1), z, ckp1)  # x.mul_(1-ckp1).add_(z, alpha=ckp1)
    return k.add(k.mul(x, h["momentum"]), z, 1 - h["momentum"])  # y = x.mul(momentum).add_(z, alpha=1-momentum)


def _norm(k, a):
    """``a.norm(2)`` as a 0-d tensor of the dtype: the sum of squares in the compute type (NumPy's pairwise
    order), its root rounded once to the dtype."""
    x = k._in(a)
    return k._out(np.sqrt(np.sum(x * x)))


def _lamb(k, p, g, st, h, _):
    # Not a torch.optim port: the LAMB paper's Algorithm 2 (You et al. 2020) written as PyTorch ports write it,
    # with tensorflow/addons' trust ratio of 1 where a norm is 0.
    lr, beta1, beta2, eps, wd = h["lr"], h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
    st["step"] += 1
    step = st["step"]
    exp_avg = st["exp_avg"] = k.add(k.mul(st["exp_avg"], beta1), g, 1 - beta1)
    exp_avg_sq = st["exp_avg_sq"] = k.addcmul(k.mul(st["exp_avg_sq"], beta2), g, g, 1 - beta2)
    update = k.div(k.div(exp_avg, 1 - beta1 ** step), k.add(k.sqrt(k.div(exp_avg_sq, 1 - beta2 ** step)), eps))
    if wd != 0:
        update = k.add(update, p, wd)
    w_norm, u_norm = _norm(k, p), _norm(k, update)
    trust = k.div(w_norm, u_norm) if w_norm > 0 and u_norm > 0 else k.fill(w_norm, 1.0)
    return k.add(p, k.mul(update, k.mul(trust, lr)), -1.0)


def _sparse_adam(k, p, g, st, h, _):
    # g: a MaskedArray, masked outside the sparse gradient's index set (torch: the coalesced COO indices).  Computed
    # on every element as torch computes on the held values, then kept only where held (torch's add_ of a sparse
    # tensor touches its indices alone).
    lr, beta1, beta2, eps = h["lr"], h["beta1"], h["beta2"], h["eps"]
    held = ~np.ma.getmaskarray(g)
    st["step"] += 1  # in the class's step(), before the functional skips an empty gradient
    if not held.any():
        return p.copy()
    values = np.ma.getdata(g)
    grad = k.neg(values) if h["maximize"] else values
    old_m, old_v = st["exp_avg"], st["exp_avg_sq"]
    m = k.add(old_m, k.mul(k.add(grad, old_m, -1.0), 1 - beta1))  # old += (new − old)·(1 − β₁)
    v = k.add(old_v, k.mul(k.add(k.mul(grad, grad), old_v, -1.0), 1 - beta2))
    step = st["step"]
    step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    new_p = k.add(p, k.mul(k.div(m, k.add(k.sqrt(v), eps)), -step_size))
    st["exp_avg"], st["exp_avg_sq"] = np.where(held, m, old_m), np.where(held, v, old_v)
    return np.where(held, new_p, p)


def _add_sparse(k, p, values, alpha: float):
    """torch's CPU ``dense.add_(sparse, alpha=alpha)`` at the held elements: alpha cast to the dtype
    (``Scalar.to<scalar_t>()``), each entry's product rounded to the dtype, then added (``r += cast_value * value``
    in ``add_dense_sparse_worker_*``: two roundings, where a dense ``add`` rounds once)."""
    return k.add(p, k.mul(values, k.s_add(alpha)))


def _sgd_sparse(k, p, g, st, h, _):
    # torch's _single_tensor_sgd on a sparse gradient (index lists sorted, each index once where momentum != 0):
    # -grad negates the values, param.add_(grad, alpha=-lr) adds them at the index set alone.  With momentum the
    # buffer is sparse too (a MaskedArray here, masked where it holds no entry, 0 there): clone(grad) at the first
    # step, then buf.mul_(μ).add_(grad, alpha=1 − τ) merges the two index sets (add_out_sparse_contiguous: r = b,
    # then r += (1 − τ)·g by axpy where g holds an entry), and θ moves wherever the buffer holds one.
    held = ~np.ma.getmaskarray(g)
    values = np.ma.getdata(g)
    grad = k.neg(values) if h["maximize"] else values
    momentum = h["momentum"]
    if momentum == 0:
        return np.where(held, _add_sparse(k, p, grad, -h["lr"]), p)
    buf = st.get("momentum_buffer")
    if buf is None:
        has, data = held, np.where(held, grad, 0).astype(p.dtype)
    else:
        has = ~np.ma.getmaskarray(buf)
        # buf.mul_(μ) on a sparse tensor multiplies its values by μ rounded to the dtype (measured: bfloat16)
        scaled = np.where(has, k.mul(np.ma.getdata(buf), k.s_add(momentum)), 0).astype(p.dtype)
        data = np.where(held, _add_sparse(k, scaled, grad, 1 - h["dampening"]), scaled)
        has = has | held
    st["momentum_buffer"] = np.ma.MaskedArray(data, mask=~has)
    if h["nesterov"]:  # grad.add(buf, alpha=μ): r = g, then r += μ·b (g is 0 where it holds no entry)
        data = _add_sparse(k, np.where(held, grad, 0).astype(p.dtype), data, momentum)
    return np.where(has, _add_sparse(k, p, data, -h["lr"]), p)


def _adagrad_sparse(k, p, g, st, h, _):
    # torch's _single_tensor_adagrad, sparse branch (g coalesced by the caller): the step counter first, then the
    # sum and θ at the index set alone
    st["step"] += 1
    held = ~np.ma.getmaskarray(g)
    values = np.ma.getdata(g)
    grad = k.neg(values) if h["maximize"] else values
    clr = h["lr"] / (1 + (st["step"] - 1) * h["lr_decay"])
    total = k.add(st["sum"], k.mul(grad, grad))  # state_sum.add_(sparse(grad_values.pow(2)))
    std = k.add(k.sqrt(total), h["eps"])  # state_sum.sparse_mask(grad)._values().sqrt_().add_(eps)
    st["sum"] = np.where(held, total, st["sum"])
    return np.where(held, _add_sparse(k, p, k.div(grad, std), -clr), p)  # param.add_(sparse(grad/std), alpha=-clr)


#: The ports whose gradients are sparse (``OptimizerSpec.sparse_gradients``): they take a MaskedArray.
_SPARSE = ("sparse_adam", "sgd_sparse", "adagrad_sparse")

def _adafactor(k, p, g, st, h, _):
    # torch's _single_tensor_adafactor, statement for statement
    grad = k.neg(g) if h["maximize"] else g
    lr, wd, d = h["lr"], h["weight_decay"], h["d"]
    eps1 = h["eps1"] if h["eps1"] is not None else float(ml_dtypes.finfo(k.dtype).eps)  # torch.finfo(dtype).eps
    st["step"] += 1
    step = st["step"]
    one_minus_beta2_t = step ** h["beta2_decay"]
    rho_t = min(lr, 1 / (step ** 0.5))
    alpha = max(h["eps2"], float(_norm(k, p)) / (p.size ** 0.5)) * rho_t
    if wd != 0:
        p = k.mul(p, 1 - lr * wd)
    if grad.ndim > 1:
        row_norm = k.norm_axis(grad, -1)
        st["row_var"] = k.lerp(st["row_var"], k.div(k.mul(row_norm, row_norm), grad.shape[-1]), one_minus_beta2_t)
        col_norm = k.norm_axis(grad, -2)
        st["col_var"] = k.lerp(st["col_var"], k.div(k.mul(col_norm, col_norm), grad.shape[-2]), one_minus_beta2_t)
        var_estimate = k.mul(st["row_var"], st["col_var"])  # row_var @ col_var: one product per element
        var_estimate = k.div(var_estimate, k.clamp(k.mean_axis(st["row_var"], -2), eps1, math.inf))
    else:
        st["variance"] = k.lerp(st["variance"], k.mul(grad, grad), one_minus_beta2_t)
        var_estimate = st["variance"].copy()
    update = k.mul(k.rsqrt(k.clamp(var_estimate, eps1 * eps1, math.inf)), grad)
    denom = max(1.0, float(_norm(k, update)) / ((update.size ** 0.5) * d))
    return k.add(p, update, -alpha / denom)


def _muon(k, p, g, st, h, _):
    """conformance/backends/numpy_muon.py's step: NS in bfloat16 (its float32 products in NumPy's order); the NS
    input and output are reported as the observed state ``update`` and ``ortho`` (spec/muon.py)."""
    if p.ndim != 2:
        raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: {p.shape}")
    buf = st["momentum_buffer"] = numpy_muon._lerp(st["momentum_buffer"], g, 1 - h["momentum"])
    u = numpy_muon._lerp(g, buf, h["momentum"]) if h["nesterov"] else buf.copy()
    steps = h["ns_steps"]
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    *_, o = numpy_muon.newton_schulz(u, h["ns_a"], h["ns_b"], h["ns_c"], int(steps), h["eps"])
    st["update"], st["ortho"] = u.copy(), o
    om = numpy_muon._opmath(p.dtype)
    lr = h["lr"]
    p = (p.astype(om) * om.type(1 - lr * h["weight_decay"])).astype(p.dtype)
    step = om.type(-numpy_muon.adjusted_lr(lr, h["match_rms_adamw"], p.shape))
    return (p.astype(om) + step * o.astype(om)).astype(p.dtype)


_STEPS = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adadelta": _adadelta,
    "adam": _adam,
    "adamw": _adam,
    "adamax": _adamax,
    "nadam": _nadam,
    "radam": _radam,
    "rprop": _rprop,
    "asgd": _asgd,
    "lion": _lion,
    "adan": _adan,
    "ademamix": _ademamix,
    "schedulefree_adamw": _schedulefree_adamw,
    "schedulefree_sgd": _schedulefree_sgd,
    "lamb": _lamb,
    "sparse_adam": _sparse_adam,
    "sgd_sparse": _sgd_sparse,
    "adagrad_sparse": _adagrad_sparse,
    "adafactor": _adafactor,
    "muon": _muon,
}


def _zeros(p):
    return np.zeros(p.shape, p.dtype)


def _init_state(optimizer: str, p: np.ndarray, h: dict, scalar_round=float) -> dict:
    """The state torch's ``_init_group`` creates on a parameter's first step (0-d scalar state rounded by
    ``scalar_round``)."""
    if optimizer in ("sgd", "sgd_sparse"):
        return {}  # momentum_buffer appears after the first step, as a copy of the gradient
    if optimizer in ("adagrad", "adagrad_sparse"):
        return {"step": 0.0, "sum": np.full(p.shape, h["initial_accumulator_value"]).astype(p.dtype)}
    if optimizer == "rmsprop":
        st = {"step": 0.0, "square_avg": _zeros(p)}
        if h["momentum"] > 0:
            st["momentum_buffer"] = _zeros(p)
        if h["centered"]:
            st["grad_avg"] = _zeros(p)
        return st
    if optimizer == "adadelta":
        return {"step": 0.0, "square_avg": _zeros(p), "acc_delta": _zeros(p)}
    if optimizer in ("adam", "adamw"):
        st = {"step": 0.0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
        if h["amsgrad"]:
            st["max_exp_avg_sq"] = _zeros(p)
        return st
    if optimizer == "adamax":
        return {"step": 0.0, "exp_avg": _zeros(p), "exp_inf": _zeros(p)}
    if optimizer == "nadam":
        return {"step": 0.0, "mu_product": 1.0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
    if optimizer == "radam":
        return {"step": 0.0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
    if optimizer == "rprop":  # step_size: the group's lr now, not at construction
        return {"step": 0.0, "prev": _zeros(p), "step_size": np.full(p.shape, h["lr"]).astype(p.dtype)}
    if optimizer == "asgd":  # eta: the group's lr now, not at construction
        return {"step": 0.0, "eta": scalar_round(h["lr"]), "mu": 1.0, "ax": _zeros(p)}
    if optimizer == "lion":
        return {"exp_avg": _zeros(p)}
    if optimizer == "adan":  # neg_pre_grad is −g of the first step, set there
        return {"step": 0.0, "exp_avg": _zeros(p), "exp_avg_diff": _zeros(p), "exp_avg_sq": _zeros(p),
                "neg_pre_grad": _zeros(p)}
    if optimizer == "ademamix":  # no exp_avg_fast for beta1 = 0, as the reference code
        st = {"step": 0.0, "exp_avg_slow": _zeros(p), "exp_avg_sq": _zeros(p)}
        if h["beta1"] != 0.0:
            st["exp_avg_fast"] = _zeros(p)
        return st
    if optimizer in ("lamb", "sparse_adam"):
        return {"step": 0.0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
    if optimizer == "muon":  # update and ortho: observed values of each step, reported from its first
        return {"momentum_buffer": _zeros(p)}
    if optimizer == "adafactor":  # factored over the last two dimensions (torch's keepdim shapes), else whole
        if p.ndim > 1:
            return {"step": 0.0, "row_var": np.zeros(p.shape[:-1] + (1,), p.dtype),
                    "col_var": np.zeros(p.shape[:-2] + (1,) + p.shape[-1:], p.dtype)}
        return {"step": 0.0, "variance": _zeros(p)}
    if optimizer == "schedulefree_adamw":  # z and x: copies of the parameter (y) at its first step
        return {"step": 0.0, "z": p.copy(), "x": p.copy(), "exp_avg_sq": _zeros(p), "weight_sum": 0.0,
                "lr_max": -1.0}
    if optimizer == "schedulefree_sgd":
        return {"step": 0.0, "z": p.copy(), "x": p.copy(), "weight_sum": 0.0, "lr_max": -1.0}
    raise ValueError(f"numpy backend: unknown optimizer {optimizer!r}")


def _snapshot_state(st: dict, reported: bool = False) -> dict:
    """A copy of the state.  sgd_sparse's buffer is a MaskedArray (masked where it holds no entry, 0 there): it stays
    one in the copy a resumed run goes on from, and is reported as its plain values (0 where no entry)."""
    def copy(v):
        if isinstance(v, float):
            return float(v)
        if isinstance(v, np.ma.MaskedArray):
            return np.array(np.ma.getdata(v), copy=True) if reported else np.ma.copy(v)
        return np.array(v, copy=True)
    return {key: copy(v) for key, v in st.items()}


# --------------------------------------------------------------------------
# the backend
# --------------------------------------------------------------------------

class NumpyBackend:
    """Runs the NumPy port.  One path, ``"for-loop"``; all four dtypes."""

    name = "numpy"
    #: ``Case.resume_at`` is honoured: the state is copied and the run goes on from the copy.
    supports_resume = True

    def __init__(self, scalar_dtype: str = "float32"):
        if scalar_dtype not in ("float32", "float64"):
            raise ValueError(f"scalar_dtype must be 'float32' or 'float64', got {scalar_dtype!r}")
        self.scalar_dtype = scalar_dtype
        if scalar_dtype == "float32":
            self._scalar_round = lambda x: float(np.float32(x))
        else:
            self._scalar_round = float

    def __repr__(self) -> str:
        return f"NumpyBackend(scalar_dtype={self.scalar_dtype!r})"

    def paths(self, optimizer: str) -> tuple:
        return ("for-loop",) if optimizer in _STEPS else ()

    def scalar_precision(self, optimizer: str, path: str) -> str:
        """Python floats (binary64) for every per-step scalar, but NAdam's μ product and ASGD's η and μ,
        kept in ``scalar_dtype``."""
        return self.scalar_dtype if optimizer in ("nadam", "asgd") else "float64"

    def dtypes(self, optimizer: str, path: str) -> tuple:
        return tuple(DTYPES) if optimizer in _STEPS and path == "for-loop" else ()

    def newton_schulz(self, optimizer: str, path: str):
        """Muon's NS sequence as this port runs it (``numpy_muon.newton_schulz``: its float32 products in NumPy's
        order, so only the enclosures relate it to torch's)."""
        return lambda u, a, b, c, steps, eps: numpy_muon.newton_schulz(u, a, b, c, int(steps), eps)

    def defaults(self, optimizer: str) -> dict:
        """The port's defaults (torch's), by spec name."""
        if optimizer not in DEFAULTS:
            raise ValueError(f"numpy backend: unknown optimizer {optimizer!r}; known: {', '.join(DEFAULTS)}")
        return dict(DEFAULTS[optimizer])

    def run(self, case: Case) -> list:
        opt = case.optimizer
        if opt not in _STEPS:
            raise ValueError(f"numpy backend: unknown optimizer {opt!r}; known: {', '.join(_STEPS)}")
        if case.path != "for-loop":
            raise ValueError(f"numpy backend: unknown path {case.path!r} (only 'for-loop')")
        if case.dtype not in _NP_DTYPES:
            raise ValueError(f"numpy backend: unknown dtype {case.dtype!r}; known: {', '.join(_NP_DTYPES)}")
        dtype = _NP_DTYPES[case.dtype]
        k = _Ops(dtype)
        step_fn = _STEPS[opt]

        hypers = [validate(opt, group.hyper) for group in case.groups]
        # In ``case.layout`` (``lay_out``): each step reads these views and writes its result back into them.
        params = [[lay_out(np.asarray(p, dtype=dtype), case.layout) for p in group.params] for group in case.groups]
        if opt in ("adagrad", "adagrad_sparse"):  # torch's Adagrad fills its state in __init__
            states = [[_init_state(opt, p, h) for p in ps] for ps, h in zip(params, hypers)]
        else:
            states = [[None] * len(ps) for ps in params]

        resume_at = case.resume_at
        if resume_at is not None and not 0 <= resume_at < case.steps:
            raise ValueError(f"resume_at={resume_at} is not a step of this {case.steps}-step case")

        outputs = []
        with np.errstate(all="ignore"):
            for s in range(case.steps):
                if s == resume_at:  # a checkpoint round trip: go on from copies of everything
                    params = [[lay_out(p, case.layout) for p in ps] for ps in params]
                    states = [[None if st is None else _snapshot_state(st) for st in sts] for sts in states]
                    hypers = [dict(h) for h in hypers]
                lrs = case.lrs[s] if case.lrs is not None and s < len(case.lrs) else None
                for i, (ps, h) in enumerate(zip(params, hypers)):
                    if lrs is not None and lrs[i] is not None:
                        h["lr"] = lrs[i]
                    for j, p in enumerate(ps):
                        g = case.grads[s][i][j]
                        if g is None:
                            continue
                        again = None  # duplicate indices added in turn: the second entries, stepped after
                        if isinstance(g, Uncoalesced) and not spec_get(opt).takes_duplicates(h):
                            raise ValueError(f"step {s}, group {i}, param {j}: {opt} with these hyperparameters "
                                             f"does not take duplicate indices (not specified)")
                        # torch's SGD adds them in turn on a contiguous θ; on another, its slow path coalesces
                        if isinstance(g, Uncoalesced) and spec_get(opt).adds_duplicates_in_turn \
                                and p.flags.c_contiguous:
                            again, g = second_entries(g), first_entries(g)
                        elif isinstance(g, Uncoalesced):  # duplicate indices: coalesce() sums them in the dtype
                            g = np.ma.MaskedArray(np.where(g.twice, k.add(np.ma.getdata(g), g.second),
                                                           np.ma.getdata(g)), mask=np.ma.getmaskarray(g))
                        held = None if not isinstance(g, np.ma.MaskedArray) else ~np.ma.getmaskarray(g)
                        g = lay_out(np.asarray(g, dtype=dtype), case.layout)
                        if g.shape != p.shape:
                            raise ValueError(f"step {s}, group {i}, param {j}: grad shape {g.shape} "
                                             f"!= param shape {p.shape}")
                        if (held is not None) != (opt in _SPARSE):
                            raise ValueError(f"step {s}, group {i}, param {j}: {opt} takes "
                                             f"{'sparse' if opt in _SPARSE else 'dense'} gradients, got "
                                             f"{'a sparse' if held is not None else 'a dense'} one")
                        if held is not None:
                            g = np.ma.MaskedArray(g, mask=~held)
                        if states[i][j] is None:
                            states[i][j] = _init_state(opt, p, h, self._scalar_round)
                        p[...] = step_fn(k, p, g, states[i][j], h, self._scalar_round)
                        if again is not None:  # torch's SGD on a contiguous θ: each entry added in turn
                            p[...] = step_fn(k, p, lay_out(again, case.layout), states[i][j], h, self._scalar_round)
                outputs.append(StepOutput(
                    params=[[p.copy() for p in ps] for ps in params],
                    state=[[_snapshot_state(st or {}, reported=True) for st in sts] for sts in states],
                ))
        return outputs


backend = NumpyBackend(scalar_dtype="float64")
