"""AdaGrad (torch.optim.Adagrad): per-element step sizes from the sum of squared gradients.

``ADAGRAD_SPARSE`` is the same class given sparse gradients: the sparse branch of ``_single_tensor_adagrad``
(torch 2.13, ``torch/optim/adagrad.py``), which the spec follows statement by statement:

* ``step_t += 1`` comes first, for every parameter whose ``p.grad`` is not None: the step counter counts the
  tensor's steps, an empty gradient's too, and the decayed clr = lr/(1 + (t − 1)·lr_decay) of an element uses that
  global t, not the number of gradients the element has had.
* ``grad = grad.coalesce()``: an index held twice is summed in the parameter's dtype first ("the update is
  non-linear so indices must be unique"); the index set is the coalesced indices, an explicit 0 included.
* ``state_sum.add_(sparse(g²))``: s gains g² (``grad_values.pow(2)``, rounded) on the index set only.
* ``std = state_sum.sparse_mask(grad)``; ``std_values.sqrt_().add_(eps)``: √s + ε on the index set only, and
  ``param.add_(sparse(g / std), alpha=-clr)``: θ + (−clr)·(g/(√s + ε)) there.  An element outside the index set
  keeps θ and s exactly: it is not the dense step on the densified gradient (zeros outside), which would compute
  θ − clr·0/(√s + ε) there, NaN where s = ε = 0 (an element that never had a non-zero gradient) and a signed zero
  of its own where θ = −0 under maximize; here nothing is computed there.
* ``weight_decay != 0`` raises ``RuntimeError: weight_decay option is not compatible with sparse gradients`` at
  ``step()``: the variant has no weight decay.  ``fused=True`` raises ``RuntimeError: `fused` does not support
  sparse grad or complex param``; ``foreach=True`` hands a dtype group with any sparse gradient to the
  single-tensor code (``_multi_tensor_adagrad``: ``if device_has_sparse_grad``), so its foreach path is the
  for-loop's.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import STEP, Assign, Hyperparameter, NONNEGATIVE, OptimizerSpec, State, g, t, theta

LR = common.lr(1e-2)
LR_DECAY = Hyperparameter("lr_decay", 0.0, NONNEGATIVE, "lr is divided by 1 + (t − 1)·lr_decay", latex="delta")
WD = common.weight_decay()
INIT = Hyperparameter("initial_accumulator_value", 0.0, NONNEGATIVE,
                      "starting value of the sum (TensorFlow's default is 0.1)", latex="s_0")
EPS = common.eps(1e-10, "added to √sum, outside the square root")

s = sp.Symbol("s", real=True)
clr = sp.Symbol("eta_t", real=True)
eta, delta, lam, eps = LR.symbol, LR_DECAY.symbol, WD.symbol, EPS.symbol


def rule(f: dict) -> list:
    return [
        *common.maximize(f),
        *common.coupled_weight_decay(lam),
        Assign(clr, eta / (1 + (t - 1) * delta), "decayed learning rate"),
        Assign(s, s + g * g, "accumulate the squared gradient"),
        Assign(theta, theta - clr * g / (sp.sqrt(s) + eps), "ε outside the square root"),
    ]


ADAGRAD = OptimizerSpec(
    name="adagrad",
    title="AdaGrad",
    hyperparameters=(LR, LR_DECAY, WD, INIT, EPS, common.MAXIMIZE),
    state=(STEP,
           State("sum", INIT.symbol, "sum of squared gradients", latex="s")),
    rule=rule,
    torch_class="torch.optim.Adagrad",
    doc=__doc__,
    paths_doc="foreach: sqrt → add ε → addcdiv per list; fused (CPU): one kernel.",
    edge_doc="Sparse gradients take another branch of torch's code, specified by `adagrad_sparse`: elements "
             "outside the gradient's index set keep θ and s, duplicate indices are summed first, weight decay "
             "is refused.",
)


def sparse_rule(f: dict) -> list:
    q = sp.Symbol("q", real=True)
    return [
        *common.maximize(f),
        Assign(clr, eta / (1 + (t - 1) * delta), "clr from the tensor's step counter (every step with a gradient)"),
        Assign(s, s + g ** 2, "state_sum.add_ of grad_values.pow(2), on the index set"),
        Assign(q, g / (sp.sqrt(s) + eps), "grad_values / (std_values.sqrt_().add_(ε)), std = sum at the indices"),
        Assign(theta, theta + (-clr) * q, "param.add_(that, alpha=−clr)"),
    ]


ADAGRAD_SPARSE = ADAGRAD.variant(
    "adagrad_sparse", dialect="torch", title="AdaGrad, sparse gradients",
    hyperparameters=(LR, LR_DECAY, INIT, EPS, common.MAXIMIZE), rule=sparse_rule,
    sparse_gradients=True, coalesces=True, fixed_keywords=(("weight_decay", "torch raises with sparse gradients"),),
    paths_doc=("for-loop, and foreach, which hands a dtype group with a sparse gradient to the for-loop's code. "
               "fused refuses sparse gradients (RuntimeError: `fused` does not support sparse grad or complex "
               "param)."),
    edge_doc=("An element outside a gradient's index set keeps θ and s; the tensor's step counter advances whenever "
              "it has a gradient, an empty one included, and clr uses it.  weight_decay ≠ 0 raises at step() "
              "(RuntimeError: weight_decay option is not compatible with sparse gradients): not a hyperparameter "
              "of this variant."),
)
