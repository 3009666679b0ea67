"""SparseAdam (torch.optim.SparseAdam): Adam on the elements a sparse gradient holds, the others left alone.

torch's code (``torch/optim/_functional.py``, ``sparse_adam``), which the spec follows:


* The gradient is a sparse COO tensor; ``coalesce()`` makes its indices unique.  The *index set* is the set of
  elements it holds a value for, an explicit 0 included: the docstring's "mask of the non-zero values" is the
  intent, not the code, which "does NOT actually verify that all values are not zero".  A held 0 decays m and v
  and moves θ as any other value does.

* Elements outside the index set keep θ, m and v exactly (``add_`` of a sparse tensor touches its indices only).

* ``state["step"]`` counts the tensor's steps: it advances at every ``step()`` in which ``p.grad`` is not None,
  also when the gradient holds no value at all (then nothing else happens).  So an element first held at the
  tensor's third step is bias-corrected with t = 3 although its moments have one update: the "lazy" Adam the
  class implements, not a slip.

* The moments are updated as ``old += (1 − β)·(new − old)``: m ← m + (g − m)·(1 − β₁) and
  v ← v + (g² − v)·(1 − β₂), with 1 − β a Python float.  ε is added to √v, not to a bias-corrected root; both
  bias corrections are folded into one Python-float step size s = η·√(1 − β₂ᵗ)/(1 − β₁ᵗ), and
  θ ← θ + (−s)·(m/(√v + ε)).

* ``maximize`` negates the gradient's values.  The constructor refuses lr ≤ 0, ε ≤ 0 and β outside [0, 1), and
  complex or sparse parameters; a dense gradient raises at ``step()``.

* Duplicate indices (an uncoalesced gradient holding an index twice, as two lookups of one embedding row give):
  ``coalesce()`` sums their values in the parameter's dtype before anything else, so the index steps once, with
  the rounded sum (``reference.sparse.coalesce``; torch's Adagrad does the same, its SGD does not).  Drawn with two
  values per index, whose sum is one correctly rounded addition in any order.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .adam import BETA1, BETA2
from .core import STEP, Assign, Hyperparameter, Interval, OptimizerSpec, State, g, t, theta

POSITIVE = Interval(0.0, None, False, False)
LR = Hyperparameter("lr", 1e-3, POSITIVE, common.LR_DOC + "; the constructor refuses 0", latex="eta")
EPS = Hyperparameter("eps", 1e-8, POSITIVE, "added to √v (not bias-corrected); the constructor refuses 0",
                     latex="epsilon")

m = sp.Symbol("m", real=True)
v = sp.Symbol("v", real=True)
step_size = sp.Symbol("s", real=True)
dm = sp.Symbol("Delta_m", real=True)
dv = sp.Symbol("Delta_v", real=True)
u = sp.Symbol("u", real=True)
eta, beta1, beta2, eps = LR.symbol, BETA1.symbol, BETA2.symbol, EPS.symbol


def rule(f: dict) -> list:
    # Each update is two statements, as torch computes it (``exp_avg_update_values``, then ``add_``): one statement
    # m + (g − m)·(1 − β₁) would read as a lerp, whose bound covers every way of evaluating one (Bound.lerp) and is
    # far looser than three roundings in this order.
    return [
        *common.maximize(f),
        Assign(dm, (g - m) * (1 - beta1), "exp_avg_update_values: (g − m)·(1 − β₁)"),
        Assign(m, m + dm, "first moment: exp_avg.add_ of that (old += (1 − β₁)·(new − old))"),
        Assign(dv, (g ** 2 - v) * (1 - beta2), "exp_avg_sq_update_values: (g² − v)·(1 − β₂)"),
        Assign(v, v + dv, "second moment: exp_avg_sq.add_ of that"),
        Assign(step_size, eta * sp.sqrt(1 - beta2 ** t) / (1 - beta1 ** t),
               "both bias corrections in one Python-float step size"),
        Assign(u, m / (sp.sqrt(v) + eps), "numer.div_(denom): m/(√v + ε)"),
        Assign(theta, theta + (-step_size) * u, "θ + (−s)·that"),
    ]


SPARSE_ADAM = OptimizerSpec(
    name="sparse_adam",
    title="SparseAdam",
    hyperparameters=(LR, BETA1, BETA2, EPS, common.MAXIMIZE),
    state=(STEP,
           State("exp_avg", sp.Integer(0), "first moment m", latex="m"),
           State("exp_avg_sq", sp.Integer(0), "second moment v", latex="v")),
    rule=rule,
    torch_class="torch.optim.SparseAdam",
    doc=__doc__,
    sparse_gradients=True, coalesces=True,
    paths_doc="One path: torch.optim.SparseAdam has no foreach, fused or capturable argument.",
    edge_doc=("An element outside a gradient's index set keeps θ, m and v; the tensor's step counter advances "
              "whenever it has a gradient, an empty one included.  An index held twice is summed first, in the "
              "parameter's dtype (coalesce())."),
)
