"""Every optimizer as SymPy equations: the single source of truth.

``OPTIMIZERS`` maps a spec name to its ``OptimizerSpec``.  The reference, the
test strategies and the docs are all derived from these objects.
"""
from .adadelta import ADADELTA
from .adafactor import ADAFACTOR
from .adagrad import ADAGRAD, ADAGRAD_SPARSE
from .adam import ADAM, ADAMW
from .adamax import ADAMAX
from .adan import ADAN
from .ademamix import ADEMAMIX
from .asgd import ASGD
from .core import Assign, Hyperparameter, InvalidHyperparameter, OptimizerSpec, State, g, t, theta
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import LION
from .muon import MUON
from .nadam import NADAM
from .radam import RADAM
from .rmsprop import RMSPROP
from .rprop import RPROP
from .schedulefree import SCHEDULEFREE_ADAMW
from .schedulefree_sgd import SCHEDULEFREE_SGD
from .sgd import SGD, SGD_SPARSE
from .sparse_adam import SPARSE_ADAM

from .schedules import SCHEDULES

OPTIMIZERS = {s.name: s for s in (SGD, ADAGRAD, RMSPROP, ADADELTA, ADAM, ADAMW, ADAMAX, NADAM, RADAM, RPROP,
                                  ASGD, LION, ADAN, ADEMAMIX, SCHEDULEFREE_ADAMW, SCHEDULEFREE_SGD,
                                  LAMB, SPARSE_ADAM, SGD_SPARSE, ADAGRAD_SPARSE, ADAFACTOR)}
#: Closure-driven optimizers (``spec.lbfgs.ClosureSpec``): no element-wise rule, checked by their own properties.
CLOSURE_OPTIMIZERS = {s.name: s for s in (LBFGS,)}
#: Element-wise given a value of each step that the implementation reports (``State.observed``: Muon's O = NS(U),
#: checked by properties in conformance/test_properties.py): the conformance harness runs them like
#: ``OPTIMIZERS``, from the backend's observed values; kept apart because the reference alone cannot step them
#: (every check that computes a trajectory from the spec without a backend leaves them out).
OBSERVED_OPTIMIZERS = {s.name: s for s in (MUON,)}


def get(name: str) -> OptimizerSpec:
    """The spec called ``name``: a torch spec, one with observed values (``OBSERVED_OPTIMIZERS``), a closure-driven
    one (``CLOSURE_OPTIMIZERS``: a ``ClosureSpec``),
    else another framework's dialect (``spec.dialects.DIALECTS``, names like ``"adam@keras"``); a clear error
    listing the known names otherwise."""
    for registry in (OPTIMIZERS, OBSERVED_OPTIMIZERS, CLOSURE_OPTIMIZERS):
        if name in registry:
            return registry[name]
    # Imported here, not at the top: spec.dialects imports this package (its ``get``) and its modules, a cycle.
    from .dialects import DIALECTS
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join([*OPTIMIZERS, *OBSERVED_OPTIMIZERS, *CLOSURE_OPTIMIZERS])
        raise KeyError(f"no optimizer spec named {name!r}; known: {known}; "
                       f"dialects: {', '.join(DIALECTS)}") from None


#: the package's public names: the registry, its lookup, and the core types and symbols re-exported from spec.core
__all__ = ["OPTIMIZERS", "OBSERVED_OPTIMIZERS", "CLOSURE_OPTIMIZERS", "SCHEDULES", "get", "Assign", "Hyperparameter",
           "InvalidHyperparameter",
           "OptimizerSpec", "State", "g", "t", "theta"]
