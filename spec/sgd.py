"""Gradient descent with momentum, dampening, Nesterov and L2 decay (torch.optim.SGD).

Full-batch gradient descent, stochastic gradient descent and mini-batch SGD
are one update rule: they differ only in the gradient fed to it (of the whole
training loss, of one example, or of a mini-batch mean).  The spec therefore
has one optimizer, and the gradient is an input.

``SGD_SPARSE`` is the same class given sparse gradients, which torch 2.13's ``sgd.py`` takes without a branch of
its own: ``_single_tensor_sgd`` runs the same statements on the sparse tensor, and the operations decide.

* ``grad = -grad`` (maximize) negates the values; ``param.add_(grad, alpha=-lr)`` touches the index set only: an
  element outside it keeps θ exactly.  SGD keeps no step counter.  The dense step on the densified gradient (zeros
  outside the index set) gives the same values but at θ = −0 under maximize, where −0 + (−lr)·(−0) = +0.
* ``weight_decay != 0``: ``grad.add(param, alpha=weight_decay)`` raises ``RuntimeError: add(sparse, dense) is not
  supported. Use add(dense, sparse) instead.`` at ``step()`` (no message of the optimizer's own).
* ``momentum != 0``: the buffer is a sparse tensor, ``torch.clone(grad)`` at the first step.  Later,
  ``buf.mul_(μ)`` scales its values and ``.add_(g, alpha=1 − τ)`` merges g's entries into it
  (``add_out_sparse_contiguous``: a two-pointer merge of the two index lists, r = b + (1 − τ)·g where an index is
  in both, b or (1 − τ)·g where it is in one).  So the buffer holds an entry for every index any gradient held, and
  ``param.add_(buf, alpha=−lr)`` moves θ wherever it does: an element once held keeps moving, by −lr·μ·b at a step
  whose gradient does not hold it (``moves_where_state_held``).  That is the dense rule at g = 0 there; an element
  no gradient has held yet has no entry and keeps θ.  Nesterov: ``grad.add(buf, alpha=μ)``, the same merge
  (g + μ·b, or μ·b alone).  Specified for gradients whose index lists are sorted (torch's ``coalesce()`` order,
  what ``_indices()`` of a coalesced tensor gives) and hold each index once: the merge pairs the entries of one
  index only when both lists are sorted, and a buffer holding an index twice keeps two entries that are scaled
  and added on their own.  Unsorted lists (``nn.Embedding``'s gradient lists the looked-up indices in batch
  order) and duplicate indices with momentum: not specified, not drawn.
* Duplicate indices are not coalesced: on a contiguous θ, ``add_dense_sparse_worker_non_coalesced_cpu`` adds each
  entry on its own, in the order the COO tensor holds them (its threads split the first index's range, so one
  thread adds every entry of an index): θ + (−lr)·g₁, then + (−lr)·g₂ from that rounded result
  (``adds_duplicates_in_turn``, without momentum: the step is the update by the first entries, then by the second
  ones; drawn).  On a non-contiguous θ the slow path (``sparse_.coalesce()``, then ``add_`` row by row) coalesces
  first: θ + (−lr)·fl(g₁ + g₂) (drawn too).  SparseAdam and Adagrad coalesce first on every layout.
* ``fused=True`` raises ``RuntimeError: `_fused_sgd` does not support sparse gradients``; ``foreach=True`` adds
  a dtype group with a sparse gradient tensor by tensor (``# foreach APIs don't support sparse``): the for-loop's
  arithmetic.
"""
from __future__ import annotations

import sympy as sp

from . import common
from .core import REALS, Assign, Constraint, Hyperparameter, Interval, NONNEGATIVE, OptimizerSpec, State, g, t, theta, unless_zero, when

LR = common.lr(1e-3)
MOMENTUM = Hyperparameter("momentum", 0.0, NONNEGATIVE, "momentum factor μ", latex="mu",
                          fuzz=Interval(0.0, 1.0, True, False), fuzz_why="μ ≥ 1 makes the buffer grow without bound")
DAMPENING = Hyperparameter("dampening", 0.0, REALS, "dampening τ: the gradient enters the buffer scaled by 1 − τ "
                           "(torch accepts any real)", latex="tau",
                           fuzz=Interval(0.0, 1.0, True, True), fuzz_why="τ outside [0, 1] is accepted but has no use")
WD = common.weight_decay()
NESTEROV = common.flag("nesterov", "Nesterov momentum in PyTorch's form: step along g + μ·b")

b = sp.Symbol("b", real=True)
d = sp.Symbol("d", real=True)
eta, mu, tau, lam = LR.symbol, MOMENTUM.symbol, DAMPENING.symbol, WD.symbol


def rule(f: dict, decay: bool = True) -> list:
    direction = g + mu * b if f["nesterov"] else b
    return [
        *common.maximize(f),
        *(common.coupled_weight_decay(lam) if decay else ()),
        Assign(b, when(sp.Eq(t, 1), g, mu * b + (1 - tau) * g),
               "momentum buffer: the first step copies g (no dampening), later steps decay and add"),
        Assign(d, unless_zero(mu, direction, g), "step direction; plain g when momentum is 0"),
        Assign(theta, theta - eta * d, "descend; lr stays outside the buffer"),
    ]


SGD = OptimizerSpec(
    name="sgd",
    title="SGD (gradient descent, momentum, Nesterov)",
    hyperparameters=(LR, MOMENTUM, DAMPENING, WD, NESTEROV, common.MAXIMIZE),
    state=(State("momentum_buffer", sp.Integer(0), "momentum buffer b; torch creates it on the first step",
                 latex="b", when="momentum != 0"),),
    rule=rule,
    torch_class="torch.optim.SGD",
    constraints=(Constraint("nesterov requires momentum > 0 and dampening = 0",
                            lambda h: not h["nesterov"] or (h["momentum"] > 0 and h["dampening"] == 0)),),
    counts_steps=False,
    doc=__doc__,
    paths_doc="foreach: same formulas over lists of tensors; fused (CPU and CUDA): one kernel, same order.",
    edge_doc="torch keeps no step counter for SGD; 'first step' means the buffer does not exist yet.  "
             "Not modelled: torch creates the buffer at the first step with μ ≠ 0, the spec at step 1, so a "
             "momentum that is 0 at step 1 and later non-zero (a momentum schedule starting at 0) differs from "
             "the spec from then on (torch: b = g at that step; spec: b = μ·b + (1 − τ)·g with b = step 1's g).  "
             "Sparse gradients: `sgd_sparse` (elements outside the index set keep θ unless the momentum buffer "
             "holds them; weight decay refused; duplicate indices added in turn on a contiguous parameter, "
             "without momentum).",
)


SGD_SPARSE = SGD.variant(
    "sgd_sparse", dialect="torch", title="SGD, sparse gradients",
    hyperparameters=(LR, MOMENTUM, DAMPENING, NESTEROV, common.MAXIMIZE),
    rule=lambda f: rule(f, decay=False),
    sparse_gradients=True, coalesces=False, adds_duplicates_in_turn=True, moves_where_state_held=True,
    fixed_keywords=(("weight_decay", "torch raises with sparse gradients"),),
    paths_doc=("for-loop, and foreach, which adds a sparse gradient tensor by tensor (its _foreach_ ops on the "
               "sparse buffers fall back to the tensor ops).  fused refuses sparse gradients (RuntimeError: "
               "`_fused_sgd` does not support sparse gradients)."),
    edge_doc=("An element outside a gradient's index set keeps θ, unless the momentum buffer holds it (an earlier "
              "gradient did): it then moves by −lr·μ·b, the rule at g = 0.  weight_decay ≠ 0 raises at step() "
              "(RuntimeError: add(sparse, dense) is not supported. Use add(dense, sparse) instead.).  Momentum is "
              "specified for index lists sorted as coalesce() sorts them, each index once: torch's merge of the "
              "buffer with an unsorted list, or with an index held twice, keeps separate entries of one index.  "
              "Duplicate indices without momentum are added in turn on a contiguous parameter (θ + (−lr)·g₁, then "
              "+ (−lr)·g₂, each rounded); a non-contiguous one coalesces them first (θ + (−lr)·fl(g₁ + g₂)): both "
              "drawn."),
)
