"""One record per optimizer: what the harness, the backends and the tests know about it beyond its spec.

In the spirit of PyTorch's ``OptimizerInfo`` (torch/testing/_internal/common_optimizers.py) and Optax's single
test table.  The spec (``spec.OPTIMIZERS``) says what an optimizer computes; its ``OptimizerInfo`` here says
which implementations run it, with which example hyperparameters the tests drive it, which hyperparameters
must be refused, and which studies include it.  Every list of optimizer names elsewhere derives from
``OPTIMIZERS``; ``tests/test_optimizer_registry.py`` checks it against the spec and the installed frameworks.

Other frameworks' versions of an optimizer are dialect specs (``spec.dialects``: ``"adam@keras"``, with the
framework's class name in ``spec.dialects.INFO``), so they have no field here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Optional

import spec as spec_pkg

__all__ = ["ALL", "CAPTURABLE", "FUSED", "Invalid", "OBSERVED", "OptimizerInfo", "OPTIMIZERS", "TORCH_PAIRS", "get",
           "names",
           "torch_kwargs", "tuple_entries"]

#: torch.optim's optional implementation paths, by the constructor argument that selects them
#: (conformance/backends/torch_backend.py runs for-loop, and foreach where the class has the argument)
FUSED, CAPTURABLE = "fused", "capturable"

#: torch.optim's tuple arguments, and the spec's names of their entries (Adam's betas, Rprop's etas and
#: step_sizes; Adafactor's eps, (eps1, eps2); Adan's and AdEMAMix's betas have a third, beta3): the torch backend and the tests that construct
#: torch's classes map them with this.  A spec's tuple is the leading entries it has (Adam: (β₁, β₂); Adan:
#: (β₁, β₂, β₃)).
TORCH_PAIRS = MappingProxyType({"betas": ("beta1", "beta2", "beta3"), "etas": ("etaminus", "etaplus"),
                                "step_sizes": ("step_size_min", "step_size_max"), "eps": ("eps1", "eps2"),
                                "ns_coefficients": ("ns_a", "ns_b", "ns_c")})


def tuple_entries(entries: tuple, hyper) -> tuple:
    """The names of ``entries`` that form the tuple argument for ``hyper``: its longest leading run present in
    ``hyper``, or () if that is shorter than two (Adam: beta1, beta2; Adan, AdEMAMix: beta1, beta2, beta3)."""
    n = 0
    while n < len(entries) and entries[n] in hyper:
        n += 1
    return entries[:n] if n >= 2 else ()


def torch_kwargs(hyper: dict) -> dict:
    """Spec hyperparameters as torch.optim's keyword arguments: each tuple of ``TORCH_PAIRS`` joined."""
    out = dict(hyper)
    for pair, entries in TORCH_PAIRS.items():
        present = tuple_entries(entries, out)
        if present:
            out[pair] = tuple(out.pop(e) for e in present)
    return out


@dataclass(frozen=True)
class Invalid:
    """Hyperparameters the spec refuses, and what torch's constructor does with them.

    ``torch_error`` is the exception type torch's constructor raises, or None where its check is looser
    than the spec's (SGD tests ``lr < 0.0``, which NaN passes).  ``hyper`` names every hyperparameter the
    refusal depends on, so that it holds whatever the other hyperparameters are.
    """

    hyper: Mapping
    torch_error: Optional[type] = ValueError


@dataclass(frozen=True)
class OptimizerInfo:
    """Everything about one optimizer that is not its spec.

    * ``torch`` (from the spec's ``torch_class``, which the spec states as the code it follows): the
      ``torch.optim`` attribute the torch backend runs for it; None where torch has none.
    * ``foreach``: torch's class has a ``foreach`` argument, and so a foreach path besides its for-loop (all but
      SparseAdam, whose one loop has none).
    * ``torch_paths``: the paths torch's class offers besides ``for-loop`` and ``foreach``: ``fused``
      (a ``fused`` argument; CPU kernels in torch 2.13) and ``capturable`` (a ``capturable`` argument; the
      torch backend runs it on CUDA as ``capturable`` and ``capturable-foreach``).
    * ``hyper``: ordinary hyperparameters with every term of the update active (weight decay, momentum
      nonzero where they exist), for fixed-data checks (tests/test_reference_vs_torch.py).
    * ``branches``: changes to ``hyper`` that take the rule's other branches (momentum 0), or that some flag
      combination needs (SGD's Nesterov needs dampening 0).
    * ``group_pairs``: (group 0, group 1) hyperparameters of two-group cases; flags may differ between
      groups, as torch allows (tests/test_numpy_backend.py's cross-check against torch).
    * ``invalid``: hyperparameters the spec refuses, with torch's error; ``edge``: odd hyperparameters that the
      spec and torch both accept.  A backend must refuse and accept the same.
    * ``scheduled``: driven by lr schedules in conformance/test_schedules.py's scheduled trajectories
      (optimizers with a ``momentum`` or ``beta1`` for the schedules that cycle it).
    * ``drift_hyper``: hyperparameters of the long-run drift study (``python -m reports.drift_study``);
      the spec's defaults fill the rest.
    * ``torch_args``: where the class's keywords are not the spec's names (after ``TORCH_PAIRS``): a function of
      the spec's hyperparameters to them (Muon: the flag match_rms_adamw is ``adjust_lr_fn``, and ns_steps an int,
      which ``range`` needs).
    """

    name: str
    torch_paths: tuple = ()
    foreach: bool = True
    hyper: Mapping = field(default_factory=dict)
    branches: tuple = ()
    group_pairs: tuple = ()
    invalid: tuple = ()
    edge: tuple = ()
    scheduled: bool = False
    drift_hyper: Mapping = field(default_factory=dict)
    torch_args: Optional[Callable] = None

    def __post_init__(self):  # shared by every test that reads them: read-only
        for name in ("hyper", "drift_hyper"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def spec(self):
        return spec_pkg.get(self.name)

    @property
    def torch(self) -> Optional[str]:
        prefix = "torch.optim."
        qualified = self.spec.torch_class
        return qualified[len(prefix):] if qualified.startswith(prefix) else None

    @property
    def constraint_violations(self) -> tuple:
        """The ``invalid`` hyperparameters whose values are each in their domain: refused by a constraint."""
        s = self.spec
        return tuple(dict(i.hyper) for i in self.invalid
                     if all(s.hyper(k).accepts(v) for k, v in i.hyper.items()))


_ADAM_LIKE = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)

OPTIMIZERS: Mapping = MappingProxyType({r.name: r for r in (
    OptimizerInfo(
        "sgd", torch_paths=(FUSED,),
        hyper=dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
        branches=(dict(momentum=0.0, dampening=0.0), dict(dampening=0.0)),
        group_pairs=(
            ({}, {"lr": 0.05, "weight_decay": 0.1}),
            ({"momentum": 0.9, "dampening": 0.1}, {"momentum": 0.5, "weight_decay": 0.01, "maximize": True}),
            ({"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, {"momentum": 0.3, "nesterov": True}),
        ),
        invalid=(
            Invalid({"lr": -1e-3}), Invalid({"momentum": -0.1}), Invalid({"weight_decay": -1.0}),
            Invalid({"nesterov": True, "momentum": 0.0, "dampening": 0.0}),
            Invalid({"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
            Invalid({"lr": float("nan")}, torch_error=None),  # SGD tests `lr < 0.0`, false for NaN
            Invalid({"lr": float("inf")}, torch_error=None),
        ),
        edge=({"dampening": -3.0},),
        scheduled=True,
        drift_hyper={"lr": 0.01, "momentum": 0.9},
    ),
    OptimizerInfo(
        "adagrad", torch_paths=(FUSED,),
        hyper=dict(lr=0.05, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1, eps=1e-10),
        group_pairs=(
            # torch fills `sum` from the constructor's initial_accumulator_value for every group,
            # so the two groups here agree on it (see numpy_backend's docstring).
            ({}, {"lr": 0.1, "lr_decay": 0.05}),
            ({"initial_accumulator_value": 0.3, "weight_decay": 0.1},
             {"initial_accumulator_value": 0.3, "lr_decay": 0.01, "maximize": True, "eps": 1e-3}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"lr_decay": -1.0}), Invalid({"weight_decay": -1.0}),
            Invalid({"initial_accumulator_value": -0.1}), Invalid({"eps": -1e-10}), Invalid({"lr": float("nan")}),
        ),
    ),
    OptimizerInfo(
        "rmsprop", torch_paths=(CAPTURABLE,),
        hyper=dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.01, momentum=0.9),
        branches=(dict(momentum=0.0),),
        group_pairs=(
            ({}, {"alpha": 0.9, "weight_decay": 0.1}),
            ({"centered": True}, {"momentum": 0.9, "maximize": True}),
            ({"centered": True, "momentum": 0.5, "weight_decay": 0.01}, {"alpha": 0.5, "eps": 1e-3}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"eps": -1.0}), Invalid({"momentum": -1.0}),
            Invalid({"weight_decay": -1.0}), Invalid({"alpha": -0.5}),
        ),
        edge=({"alpha": 2.0},),  # no upper bound on alpha
        scheduled=True,
    ),
    OptimizerInfo(
        "adadelta", torch_paths=(CAPTURABLE,),
        hyper=dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.01),
        group_pairs=(
            ({}, {"rho": 0.5, "lr": 0.5}),
            ({"weight_decay": 0.1, "maximize": True}, {"eps": 1e-3, "rho": 1.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"rho": 1.5}), Invalid({"rho": -0.1}),
            Invalid({"eps": -1.0}), Invalid({"weight_decay": -1.0}),
        ),
        edge=({"rho": 1.0},),  # rho's interval is closed
    ),
    OptimizerInfo(
        "adam", torch_paths=(FUSED, CAPTURABLE),
        hyper=_ADAM_LIKE,
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9}),
            ({"amsgrad": True, "weight_decay": 0.1}, {"maximize": True, "eps": 1e-3}),
            ({"decoupled_weight_decay": True, "weight_decay": 0.1, "amsgrad": True},
             {"decoupled_weight_decay": True, "weight_decay": 0.5, "beta1": 0.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"eps": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": -0.1}),
            Invalid({"weight_decay": -1.0}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0},),
        scheduled=True,
    ),
    OptimizerInfo(
        "adamw", torch_paths=(FUSED, CAPTURABLE),
        hyper=_ADAM_LIKE,
        group_pairs=(
            ({}, {"weight_decay": 0.5, "beta2": 0.9}),
            ({"amsgrad": True, "maximize": True}, {"weight_decay": 0.0, "eps": 1e-3}),
        ),
        invalid=(Invalid({"beta1": 1.0}), Invalid({"weight_decay": -1.0})),
        scheduled=True,
    ),
    OptimizerInfo(
        "adamax", torch_paths=(CAPTURABLE,),
        hyper=_ADAM_LIKE,
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9}),
            ({"weight_decay": 0.1, "maximize": True}, {"eps": 1e-3}),
        ),
        invalid=(Invalid({"beta2": 1.0}), Invalid({"lr": -1.0}), Invalid({"eps": -1.0})),
    ),
    OptimizerInfo(
        "nadam", torch_paths=(CAPTURABLE,),
        hyper=dict(_ADAM_LIKE, momentum_decay=4e-3),
        group_pairs=(
            ({}, {"momentum_decay": 0.1, "beta1": 0.5}),
            ({"weight_decay": 0.1, "maximize": True}, {"decoupled_weight_decay": True, "weight_decay": 0.2}),
        ),
        invalid=(Invalid({"momentum_decay": -1.0}), Invalid({"beta1": 1.0}), Invalid({"weight_decay": -1.0})),
    ),
    OptimizerInfo(
        "radam", torch_paths=(CAPTURABLE,),
        hyper=_ADAM_LIKE,
        group_pairs=(
            # rho_t stays below about t, so the rectified branch (rho_t > 5) needs step 6 or later: beta2 =
            # 0.999 crosses 5 at step 6 while beta2 = 0.5 never does (rho_inf = 3): both branches are taken
            # in the 8-step cases of tests/test_numpy_backend.py.
            ({}, {"beta2": 0.5, "beta1": 0.5}),
            ({"weight_decay": 0.1, "maximize": True}, {"decoupled_weight_decay": True, "weight_decay": 0.2}),
        ),
        invalid=(Invalid({"beta2": 1.0}), Invalid({"eps": -1.0}), Invalid({"lr": -1.0})),
    ),
    OptimizerInfo(
        "rprop", torch_paths=(CAPTURABLE,),
        hyper=dict(lr=0.01, etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50.0),
        branches=(dict(step_size_min=0.02, step_size_max=0.005),),  # Δ_min > Δ_max: Δ = Δ_max
        group_pairs=(
            ({}, {"etaminus": 0.3, "etaplus": 1.5}),
            ({"maximize": True, "step_size_max": 0.02}, {"lr": 0.1, "step_size_min": 0.05}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"etaminus": 0.0}), Invalid({"etaminus": 1.0}),
            Invalid({"etaplus": 1.0}), Invalid({"etaplus": 0.5}), Invalid({"lr": float("nan")}),
        ),
        edge=({"step_size_min": 1.0, "step_size_max": 0.5}, {"step_size_min": -1.0}),  # torch checks neither
    ),
    OptimizerInfo(
        "asgd", torch_paths=(CAPTURABLE,),
        # t0 small, so that averaging (mu != 1) starts within a few steps; the default 1e6 never averages
        hyper=dict(lr=0.05, lambd=0.01, alpha=0.75, t0=2.0, weight_decay=0.01),
        branches=(dict(t0=1e6, weight_decay=0.0),),  # the average stays a copy of theta
        group_pairs=(
            ({"t0": 0.0}, {"lambd": 0.1, "alpha": 0.5, "t0": 3.0}),
            ({"maximize": True, "weight_decay": 0.1, "t0": 1.0}, {"lr": 0.1, "t0": -2.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"weight_decay": -1.0}), Invalid({"lr": float("nan")}),
            Invalid({"weight_decay": float("nan")}),
        ),
        edge=({"lambd": -1e-4, "alpha": -1.0, "t0": -5.0},),  # torch checks none of them
    ),
    OptimizerInfo(  # no torch.optim class: audited through --optimizer lion=module:Class (spec/lion.py)
        "lion",
        hyper=dict(lr=0.01, beta1=0.9, beta2=0.99, weight_decay=0.1),
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9}),
            ({"weight_decay": 0.5}, {"lr": 0.1, "beta1": 0.0, "weight_decay": 0.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": 1.0}), Invalid({"beta1": -0.1}),
            Invalid({"weight_decay": -1.0}), Invalid({"lr": float("nan")}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0}, {"lr": 0.0}),
        scheduled=True,
    ),
    OptimizerInfo(  # no torch.optim class: audited through --optimizer adan=module:Class (spec/adan.py)
        "adan",
        hyper=dict(lr=0.01, beta1=0.98, beta2=0.92, beta3=0.99, eps=1e-8, weight_decay=0.02),
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.75, "beta3": 0.9}),
            ({"weight_decay": 0.5, "no_prox": True}, {"lr": 0.1, "beta2": 0.0, "weight_decay": 0.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": 1.0}), Invalid({"beta3": 1.0}),
            Invalid({"beta3": -0.1}), Invalid({"eps": -1.0}), Invalid({"weight_decay": -1.0}),
            Invalid({"lr": float("nan")}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0, "beta3": 0.0}, {"lr": 0.0}),
    ),
    OptimizerInfo(  # no torch.optim class: audited through --optimizer ademamix=module:Class (spec/ademamix.py)
        "ademamix",
        hyper=dict(lr=0.01, beta1=0.9, beta2=0.999, beta3=0.999, alpha=5.0, beta3_warmup=4.0, alpha_warmup=4.0,
                   eps=1e-8, weight_decay=0.01),
        branches=(dict(beta1=0.0, beta3_warmup=0.0, alpha_warmup=0.0),),  # m₁ = g; no warm-up
        group_pairs=(
            ({}, {"beta1": 0.5, "beta3": 0.99, "alpha": 8.0}),
            ({"beta3_warmup": 3.0, "alpha_warmup": 5.0, "weight_decay": 0.1}, {"beta1": 0.0, "eps": 1e-3}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"eps": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": -0.1}),
            Invalid({"beta3": 1.0}), Invalid({"alpha": -1.0}), Invalid({"weight_decay": -1.0}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0, "beta3": 0.0}, {"lr": 0.0}, {"beta3_warmup": 0.5, "alpha_warmup": 1.0}),
        scheduled=True,
    ),
    OptimizerInfo(  # no torch.optim class: audited through --optimizer schedulefree_adamw=module:Class
        "schedulefree_adamw",
        hyper=dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, warmup_steps=2.0, r=0.5),
        branches=(dict(weight_decay=0.0, warmup_steps=0.0, r=0.0),),
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9, "r": 1.0}),
            ({"weight_decay": 0.5, "warmup_steps": 3.0}, {"lr": 0.1, "beta1": 0.0, "weight_decay": 0.0}),
        ),
        # refused by the spec and the NumPy port; schedulefree itself checks nothing (a known deviation of its classes)
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": 1.0}), Invalid({"weight_decay": -1.0}),
            Invalid({"eps": -1.0}), Invalid({"warmup_steps": 0.5}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0}, {"lr": 0.0}, {"r": -1.0}),
    ),
    OptimizerInfo(  # no torch.optim class: audited through --optimizer schedulefree_sgd=module:Class
        "schedulefree_sgd",
        hyper=dict(lr=0.1, momentum=0.9, weight_decay=0.1, warmup_steps=2.0, r=0.5),
        branches=(dict(weight_decay=0.0, warmup_steps=0.0, r=0.0),),
        group_pairs=(
            ({}, {"momentum": 0.5, "r": 1.0}),
            ({"weight_decay": 0.5, "warmup_steps": 3.0}, {"lr": 0.5, "momentum": 0.1, "weight_decay": 0.0}),
        ),
        # the library refuses all but warmup_steps (a known deviation of its classes); the NumPy port all
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"momentum": 0.0}), Invalid({"momentum": 1.0}),
            Invalid({"weight_decay": -1.0}), Invalid({"warmup_steps": 0.5}),
        ),
        edge=({"lr": 0.0}, {"r": -1.0}, {"momentum": 1e-3}),
    ),
    OptimizerInfo(  # no torch.optim class; reduces over the tensor (spec/lamb.py): checked by the exact engine
        "lamb",
        hyper=dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01),
        branches=(dict(weight_decay=0.0),),
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9}),
            ({"weight_decay": 0.5}, {"lr": 0.1, "beta1": 0.0, "weight_decay": 0.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"beta1": 1.0}), Invalid({"beta2": 1.0}), Invalid({"eps": -1.0}),
            Invalid({"weight_decay": -1.0}), Invalid({"lr": float("nan")}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0}, {"lr": 0.0}),
    ),
    OptimizerInfo(  # sparse gradients (spec/sparse_adam.py): checked by the exact engine, one path (no foreach)
        "sparse_adam", foreach=False,
        hyper=dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8),
        group_pairs=(
            ({}, {"beta1": 0.5, "beta2": 0.9}),
            ({"maximize": True, "eps": 1e-3}, {"lr": 0.1, "beta1": 0.0}),
        ),
        invalid=(
            Invalid({"lr": 0.0}), Invalid({"lr": -1.0}), Invalid({"eps": 0.0}), Invalid({"beta1": 1.0}),
            Invalid({"beta2": -0.1}), Invalid({"lr": float("nan")}),
        ),
        edge=({"beta1": 0.0, "beta2": 0.0}, {"eps": 1e-30}),
    ),
    OptimizerInfo(  # torch.optim.SGD given sparse gradients (spec/sgd.py's SGD_SPARSE): the exact engine; fused is
        # probed so that its refusal of sparse gradients is listed with torch's reason
        "sgd_sparse", torch_paths=(FUSED,),
        hyper=dict(lr=0.05, momentum=0.9, dampening=0.1),
        branches=(dict(momentum=0.0, dampening=0.0), dict(dampening=0.0, nesterov=True)),
        group_pairs=(({}, {"lr": 0.1}), ({"maximize": True}, {"lr": 0.5}),
                     ({"momentum": 0.9, "dampening": 0.1}, {"momentum": 0.5, "maximize": True}),
                     ({"momentum": 0.9, "nesterov": True}, {"momentum": 0.3, "nesterov": True})),
        invalid=(Invalid({"lr": -1.0}), Invalid({"lr": float("nan")}, None), Invalid({"momentum": -0.1}),
                 Invalid({"nesterov": True, "momentum": 0.0, "dampening": 0.0}),
                 Invalid({"nesterov": True, "momentum": 0.9, "dampening": 0.1})),
        edge=({"lr": 0.0}, {"momentum": 0.9, "dampening": 1.0}),
    ),
    OptimizerInfo(  # torch.optim.Adagrad given sparse gradients (spec/adagrad.py's ADAGRAD_SPARSE): the exact engine
        "adagrad_sparse", torch_paths=(FUSED,),
        hyper=dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, eps=1e-10),
        group_pairs=(  # one initial_accumulator_value for both groups: torch takes the constructor's (as adagrad's)
            ({}, {"lr": 0.1, "lr_decay": 0.05}),
            ({"initial_accumulator_value": 0.3}, {"initial_accumulator_value": 0.3, "maximize": True, "eps": 1e-3}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"lr_decay": -1.0}), Invalid({"initial_accumulator_value": -0.1}),
            Invalid({"eps": -1e-10}), Invalid({"lr": float("nan")}),
        ),
        edge=({"lr": 0.0}, {"eps": 0.0}),
    ),
    OptimizerInfo(  # reduces over the tensor and along its last two axes (spec/adafactor.py): the exact engine
        "adafactor",
        hyper=dict(lr=0.05, beta2_decay=-0.8, eps1=1e-30, eps2=1e-3, d=1.0, weight_decay=0.01),
        branches=(dict(weight_decay=0.0), dict(eps1=None), dict(d=100.0)),
        group_pairs=(
            ({}, {"beta2_decay": -0.5, "d": 2.0}),
            ({"weight_decay": 0.5, "eps1": None}, {"lr": 0.1, "eps2": 0.0, "weight_decay": 0.0, "maximize": True}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"beta2_decay": 0.5}), Invalid({"eps1": -1.0}), Invalid({"eps2": -1.0}),
            Invalid({"d": 0.5}), Invalid({"weight_decay": -1.0}), Invalid({"lr": float("nan")}),
        ),
        edge=({"beta2_decay": 0.0}, {"lr": 0.0}, {"eps1": 0.0, "eps2": 0.0}, {"d": 1.0}),
    ),
)})


def _muon_args(hyper: dict) -> dict:
    """torch.optim.Muon's keywords: ``adjust_lr_fn`` from the flag, ``ns_steps`` as the int ``range`` needs."""
    out = dict(hyper)
    if "match_rms_adamw" in out:
        out["adjust_lr_fn"] = "match_rms_adamw" if out.pop("match_rms_adamw") else None
    if isinstance(out.get("ns_steps"), float) and out["ns_steps"].is_integer():
        out["ns_steps"] = int(out["ns_steps"])
    return out


#: The records of the specs with observed state (``spec.OBSERVED_OPTIMIZERS``: Muon), kept apart as the specs are:
#: every test that steps the reference alone over ``OPTIMIZERS`` leaves them out; the harness and the backends
#: look records up in ``ALL``.
OBSERVED: Mapping = MappingProxyType({r.name: r for r in (
    OptimizerInfo(  # 2-D tensors only (spec/muon.py); one path, no foreach/fused/capturable/differentiable argument
        "muon", foreach=False,
        hyper=dict(lr=0.05, weight_decay=0.1, momentum=0.9),
        branches=(dict(momentum=0.0), dict(weight_decay=0.0, nesterov=False)),
        group_pairs=(
            ({}, {"nesterov": False, "lr": 0.1}),
            ({"match_rms_adamw": True, "weight_decay": 0.3}, {"momentum": 0.5, "ns_steps": 3.0}),
        ),
        invalid=(
            Invalid({"lr": -1.0}), Invalid({"momentum": -0.1}), Invalid({"weight_decay": -1.0}),
            Invalid({"lr": float("nan")}),
            Invalid({"ns_steps": 100.0}, torch_error=None),  # refused at step() only (finding 63)
        ),
        edge=({"momentum": 0.0}, {"lr": 0.0}, {"eps": 0.0}),
        torch_args=_muon_args,
    ),
)})

#: Every record, by spec name: ``OPTIMIZERS`` and ``OBSERVED``.
ALL: Mapping = MappingProxyType({**OPTIMIZERS, **OBSERVED})


def names() -> tuple:
    """Every optimizer's spec name, in the registry's order."""
    return tuple(OPTIMIZERS)


def get(name: str) -> OptimizerInfo:
    """The record of spec ``name`` (``ALL``); a clear error listing the known names otherwise."""
    try:
        return ALL[name]
    except KeyError:
        raise KeyError(f"no optimizer named {name!r} in conformance/optimizers.py; known: "
                       f"{', '.join(ALL)}") from None
