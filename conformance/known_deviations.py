"""Known deviations: real departures of real implementations from the spec, one record type, one registry.

Each ``KnownDeviation`` names the implementation it was measured on (``torch.optim.NAdam``,
``keras.optimizers.Adam``, ``torch.optim.lr_scheduler``) and the version range of that measurement; it
applies only where the backend reports that very implementation for the (optimizer, path) under test
(``implementation(optimizer, path)`` of ``conformance/backend.py``; a backend without it gets no known
deviations, and an ``--optimizer`` class is never torch's).  It also names the tests it covers, by test
function name: a deviation from the spec's values covers the tests that compare values, not the property
tests that compare a backend with itself, unless it breaks one of those too.

``effect`` says what the harness does:

* ``"xfail"``: without ``applies``, every named test of the matching (optimizer, path, dtype) is marked
  ``xfail`` (``conformance/plugin.py``; a pass is reported as stale); with ``applies``, a drawn case for
  which ``applies(case)`` holds is set aside (Hypothesis ``reject`` with an ``event`` naming the entry).
* ``"drift"``: within the tolerance of the implementation's own form; shown in the drift table only.
* ``"domain"``: concerns arguments or steps the spec's strategies never draw; recorded, not applied.

The evidence of each entry is a section of ``docs/measured/known-deviations.md`` with the entry's ``id`` as
its anchor; ``tests/test_known_deviations.py`` (optimizers) and ``tests/test_schedules.py`` (schedules)
reproduce each entry and fail once the implementation is fixed.  Nothing here widens a tolerance.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable, Optional, Union

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from . import deviation_predicates as p
from . import optimizers

Patterns = Union[str, tuple]  # one fnmatch pattern, or a tuple of them (any may match)

EVIDENCE_PAGE = "docs/measured/known-deviations.md"

# Test function names, for ``KnownDeviation.tests``.
VALUE_TESTS = ("test_trajectory", "test_single_steps", "test_scheduled_trajectory", "test_branches")
MAXIMIZE = "test_maximize_is_descent_on_the_negated_gradient"
SEVERAL = "test_several_tensors_at_once_equal_each_alone"
RESUME = "test_resume_from_saved_state_continues_identically"
PROPERTY_RUNS = (MAXIMIZE, "test_parameter_without_gradient_is_left_alone", SEVERAL, RESUME,
                 "test_same_inputs_same_outputs")
SCHEDULE_TESTS = ("test_schedule_values", "test_schedule_long_horizon", "test_scheduled_trajectory")

TORCH = ">=2.11,<2.14"  # measured on torch 2.13 (CPU) and 2.11 (CUDA, docs/measured/torch-cuda.md)
KERAS = ">=3.15.1,<3.16"
OPTAX = "==0.2.8"  # measured with jax 0.10.2 on the CPU (--backend=optax)
LION_PYTORCH = "==0.2.5"  # lion-pytorch, measured at this version only
PYTORCH_OPTIMIZER = "==4.1.0"  # pytorch-optimizer, measured at this version only
ADAN_PYTORCH = "==0.1.0"  # adan-pytorch (lucidrains), measured at this version only
PO_ADEMAMIX = ("pytorch_optimizer.optimizer.ademamix:AdEMAMix",)
PO_ADAMAX = "pytorch_optimizer.optimizer.adamax:AdaMax"
PO_LION = "pytorch_optimizer.optimizer.lion:Lion"
PO_ADAN = "pytorch_optimizer.optimizer.adan:Adan"
PO_LAMB = "pytorch_optimizer.optimizer.lamb:Lamb"
SCHEDULEFREE = "==1.4.1"  # schedulefree (facebookresearch/schedule_free), measured at this version only
TIMM = "==1.0.29"  # timm's optimizers (conformance/adapters/timm_optim.py loads them), measured at this version only
BITSANDBYTES = "==0.50.2"  # bitsandbytes' 32-bit optimizers on the CPU (its default backend), this version only
TRANSFORMERS = "==5.18.0"  # Hugging Face transformers, measured at this version only
HF_ADAFACTOR = "transformers.optimization:Adafactor"


@dataclass(frozen=True)
class Target:
    """What a test runs: the backend's name and the implementation (qualified name, version) it reports."""

    backend: str
    implementation: str
    version: Optional[str]


@dataclass(frozen=True)
class KnownDeviation:
    id: str  # stable; the anchor of its evidence section
    implementation: tuple  # qualified names it was measured on (exact)
    versions: str  # PEP 440 specifier set of the implementation's version
    spec: Patterns  # optimizer or schedule spec name(s)
    tests: tuple  # test function names it covers
    reason: str  # one line
    path: Patterns = "*"
    dtype: Patterns = "*"
    backend: Patterns = "*"  # where the measurement needs a device ("torch-cuda")
    applies: Optional[Callable] = None  # Case (ScheduleCase) -> bool: only these inputs
    # A one-tensor Case that ``applies`` covers -> bool array of the tensor's shape: the elements the departure may
    # concern, for an optimizer that steps each element on its own; the harness leaves out only those
    # (``harness.without_known``), so a large tensor with a few such elements is still checked.
    elements: Optional[Callable] = None
    effect: str = "xfail"  # xfail | drift | domain
    # A whole-test entry whose departure shows on some drawn inputs only, with no predicate that can tell which
    # in advance (a 1-ulp difference of two roundings): a pass means the run drew none of them, not that the
    # entry is stale; the reproduction in ``reproduced_by`` is what fails once the implementation is fixed.
    on_some_inputs: bool = False
    issue: str = ""
    reproduced_by: str = "tests/test_known_deviations.py"

    @property
    def evidence(self) -> str:
        return f"{EVIDENCE_PAGE}#{self.id}"

    def concerns(self, target: Optional[Target]) -> bool:
        """This entry was measured on ``target``'s implementation, version and backend."""
        if target is None or target.implementation not in self.implementation or target.version is None:
            return False
        try:
            version = Version(target.version)
        except InvalidVersion:
            return False
        return version in SpecifierSet(self.versions) and matches_pattern(target.backend, self.backend)

    def matches(self, target: Optional[Target], spec: str, path: str, dtype: str, test: str) -> bool:
        return (test in self.tests and self.concerns(target) and matches_pattern(spec, self.spec)
                and matches_pattern(path, self.path) and matches_pattern(dtype, self.dtype))


def matches_pattern(value: str, patterns: Patterns) -> bool:
    return any(fnmatch.fnmatchcase(value, x) for x in ((patterns,) if isinstance(patterns, str) else patterns))


def target_of(backend, name: str, spec: str, path: Optional[str]) -> Optional[Target]:
    """The Target of ``backend`` (its ``--backend`` ``name``) for a spec and path; None without ``implementation``."""
    how = getattr(backend, "implementation", None)
    found = how(spec, path) if callable(how) else None
    return None if found is None else Target(name, *found)


def torch_target(backend: str, optimizer: str) -> Target:
    """The Target of torch.optim's own class for ``optimizer`` on ``backend`` ("torch-cpu", "torch-cuda"), at the
    installed torch's version (for reproductions and benchmarks that ask without a backend object)."""
    import torch  # here: torch is optional, and only a torch target needs it

    return Target(backend, f"torch.optim.{optimizers.get(optimizer).torch}", torch.__version__)


_XFAIL_PREFIX = "known deviation "


def xfail_reason(entry_id: str, text: str = "") -> str:
    """The reason of an xfail a known deviation causes: ``known deviation ID: text`` (``of_xfail_reason`` reads it)."""
    return f"{_XFAIL_PREFIX}{entry_id}" + (f": {text}" if text else "")


def of_xfail_reason(reason: str) -> Optional[KnownDeviation]:
    """The entry an ``xfail_reason`` names (``by_id``: an unknown id is a KeyError), or None for any other reason."""
    if not reason.startswith(_XFAIL_PREFIX):
        return None
    return by_id(reason[len(_XFAIL_PREFIX):].split(":")[0])


def find(target: Optional[Target], spec: str, path: str, dtype: str, test: str) -> Optional[KnownDeviation]:
    """The entry that covers the whole test parameter (an ``xfail``), if any."""
    return next((d for d in KNOWN_DEVIATIONS if d.effect == "xfail" and d.applies is None
                 and d.matches(target, spec, path, dtype, test)), None)


def affecting(target: Optional[Target], spec: str, path: str, dtype: str, case, test: str) -> Optional[KnownDeviation]:
    """The input-specific entry that covers this drawn case in ``test``, if any."""
    return next(_affecting(target, spec, path, dtype, case, test), None)


def affecting_all(target: Optional[Target], spec: str, path: str, dtype: str, case, test: str) -> list:
    """Every input-specific entry that covers this drawn case in ``test``."""
    return list(_affecting(target, spec, path, dtype, case, test))


def _affecting(target, spec, path, dtype, case, test):
    """The input-specific entries that cover this drawn case in ``test``, lazily (predicates run as asked)."""
    return (d for d in KNOWN_DEVIATIONS if d.effect == "xfail" and d.applies is not None
            and d.matches(target, spec, path, dtype, test) and d.applies(case))


def torch_optim(*names: str) -> tuple:
    return tuple(f"torch.optim.{n}" for n in names)


KNOWN_DEVIATIONS = (
    # ---- whole-parameter deviations of values (xfail) ---------------------------------------------------
    KnownDeviation(
        id="nadam-float64-mu-product", implementation=torch_optim("NAdam"), versions=TORCH, spec="nadam",
        dtype="float64", tests=VALUE_TESTS,
        reason="NAdam keeps mu_product in float32 whatever the parameter's dtype: float64 NAdam is "
               "float32-accurate."),
    KnownDeviation(
        id="asgd-float64-float32-eta-mu", implementation=torch_optim("ASGD"), versions=">=2.13,<2.14", spec="asgd",
        dtype="float64", tests=VALUE_TESTS,
        reason="ASGD keeps eta and mu in float32 whatever the parameter's dtype (the first eta is float32(lr)): "
               "float64 ASGD is float32-accurate."),
    KnownDeviation(
        id="keras-adam-bfloat16-beta2-power", implementation=("keras.optimizers.Adam", "keras.optimizers.AdamW"),
        versions=KERAS, spec=("adam@keras", "adamw@keras"), path="custom", dtype="bfloat16", tests=VALUE_TESTS,
        reason="Keras computes beta_2**t in bfloat16, where 0.999 is 1: 1 - beta_2**t = 0 and the Adam part of "
               "every step is 0."),
    KnownDeviation(
        id="keras-adam-float16-bias-corrections",
        implementation=("keras.optimizers.Adam", "keras.optimizers.AdamW", "keras.optimizers.Adamax"),
        versions=KERAS, spec="adam*@keras", path="custom", dtype="float16", tests=VALUE_TESTS,
        reason="Keras computes the bias corrections 1 - beta**t in float16: the first Adam step is 1.4% short."),
    KnownDeviation(
        id="keras-lamb-beta-power-in-dtype", implementation=("keras.optimizers.Lamb",), versions=KERAS,
        spec="lamb@keras", path="custom", dtype=("bfloat16", "float16"), tests=VALUE_TESTS,
        applies=p._some_beta_rounds_to_one_in_dtype, reproduced_by="tests/test_keras_findings.py",
        reason="Keras's Lamb computes beta**t in the variable's dtype: where beta rounds to 1 there (bfloat16: the "
               "default 0.999), 1 - beta**t = 0, v_hat = v/0, and theta is NaN or never moves."),
    KnownDeviation(
        id="keras-lamb-float32-constants", implementation=("keras.optimizers.Lamb",), versions=KERAS,
        spec="lamb@keras", path="custom", dtype="float64", tests=VALUE_TESTS, reproduced_by="tests/test_keras_findings.py",
        reason="Keras's generic Lamb update turns the Python floats 1 - beta1 and 1 - beta2 into float32 tensors: "
               "float64 m and v are float32-accurate (and lr is float32, as for every Keras optimizer)."),
    KnownDeviation(
        id="keras-float32-learning-rate",
        implementation=tuple(f"keras.optimizers.{n}" for n in ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad",
                                                               "Adamax", "Nadam", "Adadelta", "Lamb", "Lion")),
        versions=KERAS, spec="*@keras", path="custom", dtype="float64", tests=VALUE_TESTS,
        reason="Keras keeps a float lr in a float32 keras.Variable: float64 parameters step with float32(lr)."),
    # ---- input-specific deviations (the case is set aside) ----------------------------------------------
    KnownDeviation(
        id="lion-pytorch-refuses-lr-0", implementation=("lion_pytorch.lion_pytorch:Lion",), versions=LION_PYTORCH,
        spec="lion", path="custom", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._constructor_lr_is_zero,
        reason="lion-pytorch's constructor asserts lr > 0: lr = 0, which the spec and the reference code accept, "
               "raises AssertionError.",
        reproduced_by="tests/test_third_party_findings.py"),
    KnownDeviation(
        id="pytorch-optimizer-adan-counts-steps-per-group", implementation=(PO_ADAN,),
        versions=PYTORCH_OPTIMIZER, spec=("adan", "adan@pytorch-optimizer"), path="custom", tests=VALUE_TESTS,
        applies=p._gradient_missing_before_a_later_one,
        reason="pytorch-optimizer's Adan bias-corrects with the group's step count (group['step']), as the "
               "reference code does: a parameter whose gradient was missing at an earlier step gets t too large.",
        reproduced_by="tests/test_third_party_findings.py"),
    KnownDeviation(
        id="pytorch-optimizer-adamax-counts-steps-per-group", implementation=(PO_ADAMAX,), versions=PYTORCH_OPTIMIZER,
        spec="adamax", path="custom", tests=VALUE_TESTS, applies=p._gradient_missing_before_a_later_one,
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's AdaMax bias-corrects with the group's step count (group['step']): a parameter "
               "whose gradient was missing at an earlier step gets t too large (finding 7)."),
    KnownDeviation(
        id="pytorch-optimizer-adamax-maximize-per-optimizer", implementation=(PO_ADAMAX,), versions=PYTORCH_OPTIMIZER,
        spec="adamax", path="custom", tests=VALUE_TESTS, applies=p._groups_differ_in("maximize"),
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's AdaMax reads the constructor's maximize (self.maximize) for every group: a "
               "group's own maximize is ignored (finding 8)."),
    KnownDeviation(
        id="pytorch-optimizer-adamax-default-lr", implementation=(PO_ADAMAX,), versions=PYTORCH_OPTIMIZER,
        spec="adamax", tests=("test_defaults_are_the_specs",), reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's AdaMax defaults to lr = 1e-3 where torch.optim.Adamax (and the spec) has 2e-3: "
               "AdaMax() steps half as far (finding 10)."),
    KnownDeviation(
        id="pytorch-optimizer-maximize-negates-p-grad", implementation=(PO_ADAMAX, PO_LION, PO_ADEMAMIX[0], PO_ADAN),
        versions=PYTORCH_OPTIMIZER, spec=("adamax", "lion", "ademamix", "ademamix@pytorch-optimizer", "adan",
                                          "adan@pytorch-optimizer"),
        path="custom", tests=(MAXIMIZE,), effect="domain", reproduced_by="tests/test_third_party_findings.py",
        reason="maximize=True negates the caller's p.grad in place (grad.neg_(), torch._foreach_neg_) where "
               "torch.optim negates a copy: after step() p.grad is -g (findings 11, 16, 18, 30)."),
    KnownDeviation(
        id="pytorch-optimizer-adan-per-parameter-path-negates-p-grad", implementation=(PO_ADAN,),
        versions=PYTORCH_OPTIMIZER, spec=("adan", "adan@pytorch-optimizer"), path="custom", tests=VALUE_TESTS,
        effect="domain", reproduced_by="tests/test_third_party_findings.py",
        reason="Adan's per-parameter path (foreach=False) ends with grad.neg_() on p.grad itself: after step() the "
               "caller's gradient is -g, without maximize (finding 18)."),
    KnownDeviation(
        id="pytorch-optimizer-weight-decay-into-p-grad", implementation=(PO_LION, PO_ADEMAMIX[0]),
        versions=PYTORCH_OPTIMIZER, spec=("lion", "ademamix", "ademamix@pytorch-optimizer"), path="custom",
        tests=VALUE_TESTS, effect="domain", reproduced_by="tests/test_third_party_findings.py",
        reason="with weight_decouple=False, Lion and AdEMAMix add lambda*theta to the caller's p.grad in place (both "
               "paths): after step() p.grad is g + lambda*theta (findings 16, 30)."),
    KnownDeviation(
        id="pytorch-optimizer-lamb-counts-steps-per-group", implementation=(PO_LAMB,),
        versions=PYTORCH_OPTIMIZER, spec=("lamb", "lamb@pytorch-optimizer"), path="custom", tests=VALUE_TESTS,
        applies=p._gradient_missing_before_a_later_one, reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's Lamb scales its step by 1/(1 - beta1**t) with the group's step count "
               "(group['step']): a parameter whose gradient was missing at an earlier step gets t too large."),
    KnownDeviation(
        id="pytorch-optimizer-lamb-float16-step-size-raises", implementation=(PO_LAMB,),
        versions=PYTORCH_OPTIMIZER, spec=("lamb", "lamb@pytorch-optimizer"), path="custom", dtype="float16",
        tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._pytorch_optimizer_lamb_alpha_overflows,
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's Lamb passes -lr/(1 - beta1**t) as torch._foreach_add_'s alpha, which raises "
               "RuntimeError for a float16 tensor where it exceeds 65504 (lr = 0.01, beta1 = 1 - 1e-7)."),
    KnownDeviation(
        id="adan-pytorch-zero-division-for-tiny-beta", implementation=("adan_pytorch.adan:Adan",),
        versions=ADAN_PYTORCH, spec="adan@adan-pytorch", path="custom", tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._some_beta_rounds_one_minus_to_one,
        reason="adan-pytorch's bias correction 1 / (1 - (1 - beta)**step) raises ZeroDivisionError for "
               "beta <= 2**-54, where 1 - beta rounds to 1.",
        reproduced_by="tests/test_third_party_findings.py"),
    KnownDeviation(
        id="pytorch-optimizer-ademamix-step-per-group", implementation=PO_ADEMAMIX, versions=PYTORCH_OPTIMIZER,
        spec=("ademamix", "ademamix@pytorch-optimizer"), path="custom", tests=VALUE_TESTS,
        applies=p._gradient_missing_before_a_later_one, reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's AdEMAMix counts steps per group (group['step']): a parameter that had no "
               "gradient at an earlier step is bias-corrected and warmed up with the group's count, not its own."),
    KnownDeviation(
        id="pytorch-optimizer-ademamix-beta3-schedule-raises", implementation=PO_ADEMAMIX,
        versions=PYTORCH_OPTIMIZER, spec=("ademamix", "ademamix@pytorch-optimizer"), path="custom",
        tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._ademamix_beta3_schedule_overflows,
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's AdEMAMix evaluates β₃(t) past its warm-up too: for β₁ > β₃ math.exp "
               "overflows (OverflowError); β₁ or β₃ = 0 with a warm-up: math.log(0) raises ValueError."),
    KnownDeviation(
        id="adagrad-per-group-initial-accumulator", implementation=torch_optim("Adagrad"), versions=TORCH,
        spec=("adagrad", "adagrad_sparse"), tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._groups_differ_in("initial_accumulator_value"),
        reason="Adagrad ignores a per-group initial_accumulator_value: every group starts at the constructor's."),
    KnownDeviation(
        id="schedulefree-accepts-any-hyperparameter",
        implementation=("schedulefree.adamw_schedulefree_reference:AdamWScheduleFreeReference",
                        "schedulefree.adamw_schedulefree:AdamWScheduleFree"),
        versions=SCHEDULEFREE, spec=("schedulefree_adamw", "schedulefree_adamw@schedulefree"),
        tests=("test_out_of_domain_hyperparameters_are_refused",), reproduced_by="tests/test_third_party_findings.py",
        reason="schedulefree's constructors check no argument: lr < 0, beta >= 1, eps < 0, weight_decay < 0 and a "
               "negative warmup_steps are taken as given (a documented difference: its code validates nothing)."),
    KnownDeviation(
        id="pytorch-optimizer-schedulefree-accepts-negative-warmup",
        implementation=("pytorch_optimizer.optimizer.schedulefree:ScheduleFreeAdamW",), versions="==4.1.0",
        spec="schedulefree_adamw@pytorch-optimizer", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's ScheduleFreeAdamW validates lr, betas, eps and weight_decay but not "
               "warmup_steps: a negative one is accepted (and means no warm-up; a documented difference)."),
    KnownDeviation(
        id="schedulefree-adamw-writes-the-normalised-gradient-into-p-grad",
        implementation=("schedulefree.adamw_schedulefree:AdamWScheduleFree",), versions=SCHEDULEFREE,
        spec="schedulefree_adamw@schedulefree", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_third_party_findings.py",
        reason="AdamWScheduleFree divides p.grad in place and adds lambda*y to it on both paths: after step() the "
               "caller's gradient is u = g/(sqrt(v/bc2) + eps) + lambda*y (the step itself is the spec's)."),
    KnownDeviation(
        id="pytorch-optimizer-schedulefree-adamw-writes-into-p-grad",
        implementation=("pytorch_optimizer.optimizer.schedulefree:ScheduleFreeAdamW",), versions=PYTORCH_OPTIMIZER,
        spec="schedulefree_adamw@pytorch-optimizer", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_third_party_findings.py",
        reason="as schedulefree's AdamWScheduleFree: p.grad is u = g/(sqrt(v/bc2 + 1e-15) + eps) + lambda*y after "
               "step(), on both paths."),
    KnownDeviation(
        id="schedulefree-sgd-accepts-any-warmup",
        implementation=("schedulefree.sgd_schedulefree_reference:SGDScheduleFreeReference",
                        "schedulefree.sgd_schedulefree:SGDScheduleFree"),
        versions=SCHEDULEFREE, spec=("schedulefree_sgd", "schedulefree_sgd@schedulefree"),
        tests=("test_out_of_domain_hyperparameters_are_refused",), reproduced_by="tests/test_third_party_findings.py",
        reason="schedulefree's SGD classes check lr, weight_decay and 0 < momentum < 1 but not warmup_steps: a "
               "negative or fractional one is taken as given (a documented difference)."),
    KnownDeviation(
        id="pytorch-optimizer-schedulefree-sgd-accepts-any-warmup",
        implementation=("pytorch_optimizer.optimizer.schedulefree:ScheduleFreeSGD",), versions=PYTORCH_OPTIMIZER,
        spec="schedulefree_sgd@schedulefree", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_third_party_findings.py",
        reason="pytorch-optimizer's ScheduleFreeSGD validates lr, momentum, weight_decay and eps but not "
               "warmup_steps: a negative or fractional one is accepted (a documented difference)."),
    KnownDeviation(
        id="schedulefree-sgd-writes-the-decayed-gradient-into-p-grad",
        implementation=("schedulefree.sgd_schedulefree_reference:SGDScheduleFreeReference",
                        "schedulefree.sgd_schedulefree:SGDScheduleFree"),
        versions=SCHEDULEFREE, spec=("schedulefree_sgd", "schedulefree_sgd@schedulefree"), tests=VALUE_TESTS,
        effect="domain", reproduced_by="tests/test_third_party_findings.py",
        reason="with weight_decay != 0 both SGD classes, the reference one too, add λ·y to p.grad in place: after "
               "step() the caller's gradient is g + λ·y (the step itself is the spec's)."),
    KnownDeviation(
        id="pytorch-optimizer-schedulefree-sgd-writes-the-decayed-gradient-into-p-grad",
        implementation=("pytorch_optimizer.optimizer.schedulefree:ScheduleFreeSGD",), versions=PYTORCH_OPTIMIZER,
        spec="schedulefree_sgd@schedulefree", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_third_party_findings.py",
        reason="with weight_decay != 0 ScheduleFreeSGD adds λ·y to p.grad in place (apply_weight_decay, both paths): "
               "the caller's gradient is g + λ·y after step()."),
    KnownDeviation(
        id="pytorch-optimizer-schedulefree-sgd-ignores-eps",
        implementation=("pytorch_optimizer.optimizer.schedulefree:ScheduleFreeSGD",), versions=PYTORCH_OPTIMIZER,
        spec="schedulefree_sgd@schedulefree", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_third_party_findings.py",
        reason="ScheduleFreeSGD documents eps as a term added to a denominator and validates it, but never reads it: "
               "its update has no denominator (not a spec hyperparameter; never passed by the harness)."),
    KnownDeviation(
        id="optax-accepts-any-hyperparameter", implementation=tuple(f"optax.{n}" for n in (
            "adam", "adamw", "nadam", "adamax", "sgd", "rmsprop", "adagrad", "adadelta", "lion", "adan",
            "contrib.ademamix", "contrib.schedule_free_adamw", "lamb", "adafactor")),
        versions=OPTAX, spec="*@optax", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_optax_findings.py",
        reason="Optax validates no hyperparameter: a negative lr, beta outside [0, 1) or a negative eps is "
               "taken as given (a documented difference: its aliases are plain functions of their arguments)."),
    KnownDeviation(  # finding 109
        id="keras-unchecked-hyperparameters",
        implementation=tuple(f"keras.optimizers.{c}" for c in ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad",
                                                                 "Adamax", "Nadam", "Adadelta")),
        versions=KERAS, spec=("adam@keras", "adamw@keras", "sgd@keras", "rmsprop@keras", "adagrad@keras",
                              "adamax@keras", "nadam@keras", "adadelta@keras"),
        tests=("test_out_of_domain_hyperparameters_are_refused",), reproduced_by="tests/test_keras_findings.py",
        reason="Keras's optimizers check no decay rate, epsilon, weight_decay or initial accumulator (SGD checks only "
               "momentum): a negative or >= 1 value is taken as given (finding 109)."),
    KnownDeviation(
        id="keras-lamb-lion-unchecked-hyperparameters", implementation=("keras.optimizers.Lamb",
                                                                         "keras.optimizers.Lion"),
        versions=KERAS, spec=("lamb@keras", "lion@keras"), tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_keras_findings.py",
        reason="keras.optimizers.Lamb checks none of its arguments, Lion only beta_1: beta_2 outside [0, 1), a "
               "negative epsilon or weight_decay (and Lamb's beta_1) are taken as given."),
    KnownDeviation(
        id="transformers-adafactor-unchecked-hyperparameters", implementation=(HF_ADAFACTOR,), versions=TRANSFORMERS,
        spec="adafactor@transformers", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_transformers_findings.py",
        reason="transformers' Adafactor checks only lr and warmup_init against relative_step: a negative lr or eps, "
               "clip_threshold <= 0, decay_rate > 0, beta1 outside [0, 1), weight_decay < 0 are taken."),
    KnownDeviation(
        id="transformers-adafactor-resume-rounds-float32-state", implementation=(HF_ADAFACTOR,),
        versions=TRANSFORMERS, spec="adafactor@transformers", dtype=("float16", "bfloat16"), tests=(RESUME,),
        reproduced_by="tests/test_transformers_findings.py",
        reason="Adafactor keeps float32 state for float16/bfloat16 parameters and torch's load_state_dict casts it "
               "to the parameter's dtype: a resumed run continues from statistics rounded to half precision."),
    KnownDeviation(
        id="adan-pytorch-accepts-any-hyperparameter", implementation=("adan_pytorch.adan:Adan",),
        versions=ADAN_PYTORCH, spec="adan@adan-pytorch", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_third_party_findings.py",
        reason="adan-pytorch validates no hyperparameter (only len(betas) == 3): a negative lr, eps or "
               "weight_decay, or a beta outside (0, 1], is taken as given."),
    KnownDeviation(
        id="timm-accepts-negative-weight-decay", implementation=("timm.optim.lion:Lion", "timm.optim.adan:Adan",
                                                                   "timm.optim.adamw:AdamWLegacy"),
        versions=TIMM, spec=("lion", "adan", "adamw"), tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_timm_findings.py",
        reason="timm's Lion, Adan and AdamWLegacy check lr, eps and the betas but not weight_decay: a negative one "
               "is taken as given (finding 81)."),
    KnownDeviation(
        id="timm-adamw-legacy-foreach-folds-the-step-size-into-the-denominator",
        implementation=("timm.optim.adamw:AdamWLegacy",), versions=TIMM, spec="adamw", path="custom",
        dtype="float16", tests=VALUE_TESTS, reproduced_by="tests/test_timm_findings.py",
        reason="timm's foreach AdamWLegacy divides the denominator by -lr/bc1: float16 rounds once more than the "
               "bound charges, and overflows to -inf, losing the update, for |g| above ~65504*lr (finding 83)."),
    KnownDeviation(
        id="timm-rmsproptf-has-a-default-lr", implementation=("timm.optim.rmsprop_tf:RMSpropTF",), versions=TIMM,
        spec="rmsprop@tf", tests=("test_defaults_are_the_specs",), reproduced_by="tests/test_timm_findings.py",
        reason="timm's RMSpropTF gives lr a default, 0.01; TF1's RMSPropOptimizer (the dialect) requires it "
               "(finding 84, a documented difference: the signature)."),
    KnownDeviation(
        id="timm-lamb-accepts-betas-outside-0-1", implementation=("timm.optim.lamb:Lamb",), versions=TIMM,
        spec="lamb@timm", tests=("test_out_of_domain_hyperparameters_are_refused",),
        reproduced_by="tests/test_timm_findings.py",
        reason="timm's Lamb checks lr, eps and weight_decay but not the betas: beta1 or beta2 outside [0, 1) is "
               "taken as given (finding 105)."),
    KnownDeviation(
        id="timm-lamb-counts-steps-per-group", implementation=("timm.optim.lamb:Lamb",), versions=TIMM,
        spec="lamb@timm", path="custom", tests=VALUE_TESTS, applies=p._gradient_missing_before_a_later_one,
        reproduced_by="tests/test_timm_findings.py",
        reason="timm's Lamb bias-corrects with the group's step count, advanced at every step() call: a parameter "
               "whose gradient was missing at an earlier step gets t too large (finding 106)."),
    KnownDeviation(
        id="timm-lamb-clips-p-grad-in-place", implementation=("timm.optim.lamb:Lamb",), versions=TIMM,
        spec="lamb@timm", path="custom", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_timm_findings.py",
        reason="with max_grad_norm (default 1.0; the audit runs None) timm's Lamb divides each p.grad in place by "
               "the global clip factor: after step() the caller's gradient is the clipped one (finding 107)."),
    KnownDeviation(
        id="timm-adan-counts-steps-per-group", implementation=("timm.optim.adan:Adan",), versions=TIMM,
        spec="adan", path="custom", tests=VALUE_TESTS, applies=p._gradient_missing_before_a_later_one,
        reproduced_by="tests/test_timm_findings.py",
        reason="timm's Adan bias-corrects with the group's step count (group['step']), as the reference code "
               "does: a parameter whose gradient was missing at an earlier step gets t too large (finding 82)."),
    KnownDeviation(
        id="bitsandbytes-float64-stepped-in-float32", implementation=tuple(
            f"bitsandbytes.optim.{m}:{c}" for m, c in (("adam", "Adam"), ("adamw", "AdamW"), ("lion", "Lion"),
                                                       ("ademamix", "AdEMAMix"), ("rmsprop", "RMSprop"),
                                                       ("adagrad", "Adagrad"), ("sgd", "SGD"))),
        versions=BITSANDBYTES, spec=("adam", "adamw", "lion", "ademamix", "rmsprop", "adagrad", "sgd"), path="custom",
        dtype="float64", tests=VALUE_TESTS,
        reproduced_by="tests/test_bitsandbytes_findings.py",
        reason="bitsandbytes' CPU kernel steps a float64 parameter in float32 (p.float(), float32 state): float32's "
               "rounding, and a gradient whose square overflows float32 leaves θ unchanged (finding 79)."),
    KnownDeviation(
        id="bitsandbytes-rmsprop-group-alpha-ignored", implementation=("bitsandbytes.optim.rmsprop:RMSprop",),
        versions=BITSANDBYTES, spec="rmsprop", path="custom", tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._bitsandbytes_rmsprop_alpha, reproduced_by="tests/test_bitsandbytes_findings.py",
        reason="bitsandbytes' RMSprop steps every group with the constructor's alpha (stored as betas); a group's "
               "own alpha is ignored, and alpha = 0 or 1 is refused (finding 88)."),
    KnownDeviation(
        id="bitsandbytes-ademamix-beta3-warmup-is-the-papers-closed-form",
        implementation=("bitsandbytes.optim.ademamix:AdEMAMix",), versions=BITSANDBYTES, spec="ademamix",
        path="custom", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._beta3_warmup_in_force,
        reproduced_by="tests/test_bitsandbytes_findings.py",
        reason="bitsandbytes' AdEMAMix warms beta3 up by the paper's min(exp(ln b1 ln b3/D), b3), not the "
               "reference code's half-life interpolation: they differ for b3 < b1, and beta1 = 0 raises (finding 85)."),
    KnownDeviation(
        id="optax-float16-bias-correction-reciprocal", implementation=(
            "optax.adam", "optax.adamw", "optax.nadam", "optax.adamax", "optax.adan", "optax.contrib.ademamix",
            "optax.contrib.schedule_free_adamw", "optax.lamb"),
        versions=OPTAX, spec=("adam@optax", "adamw@optax", "nadam@optax", "adamax@optax", "adan@optax",
                              "ademamix@optax", "schedulefree_adamw@optax", "lamb@optax"), dtype="float16",
        tests=VALUE_TESTS, applies=p._optax_float16_bias_correction_reciprocal_overflows,
        reproduced_by="tests/test_optax_findings.py",
        reason="Optax divides float16 moments by 1 - beta**t cast to float16, and XLA computes x/c as x*(1/c): "
               "inf where 1/c exceeds 65504 (c < 2**-16), so v_hat is NaN (0*inf) or inf."),
    KnownDeviation(
        id="optax-schedule-free-scalars-in-parameter-dtype", implementation=("optax.contrib.schedule_free_adamw",),
        versions=OPTAX, spec="schedulefree_adamw@optax", dtype=("float16", "bfloat16"), tests=VALUE_TESTS,
        reproduced_by="tests/test_optax_findings.py", on_some_inputs=True,
        reason="Optax's schedule_free keeps max_lr, weight_sum and c in the parameters' dtype: float16 lr**2 "
               "underflows (c = 0), bfloat16 weight_sum stops growing at 256 equal weights."),
    KnownDeviation(
        id="optax-schedule-free-warmup-float32-lr", implementation=("optax.contrib.schedule_free_adamw",),
        versions=OPTAX, spec="schedulefree_adamw@optax", dtype="float64", tests=VALUE_TESTS,
        applies=p._optax_schedule_free_has_warmup, reproduced_by="tests/test_optax_findings.py",
        reason="with warmup_steps, Optax's learning rates come from linear_schedule, which computes in float32 "
               "(int32 count / W): float64 parameters step with float32-rounded lr, even after the warm-up."),
    KnownDeviation(  # finding 68
        id="optax-adafactor-float16-zero-square-nan", implementation=("optax.adafactor",), versions=OPTAX,
        spec="adafactor@optax", dtype="float16", tests=VALUE_TESTS,
        applies=p._optax_adafactor_float16_square_is_zero, reproduced_by="tests/test_optax_findings.py",
        reason="eps = 1e-30 is 0 in float16: a gradient element whose square rounds to 0 can make v (or a factor) 0, "
               "g*0**-0.5 is NaN or inf, and the block RMS clip spreads it to every element."),
    KnownDeviation(  # finding 69
        id="optax-adafactor-float64-decay-rate-in-float32", implementation=("optax.adafactor",), versions=OPTAX,
        spec="adafactor@optax", dtype="float64", tests=VALUE_TESTS,
        applies=p._optax_adafactor_decay_rate_inexact_in_float32, reproduced_by="tests/test_optax_findings.py",
        reason="_decay_rate_pow computes 1 - (count + 1)**-decay_rate from a float32 count: float64 second moments "
               "are averaged with a float32-rounded weight from the second step on."),
    KnownDeviation(
        id="optax-adan-difference-weight", implementation=("optax.adan",), versions=OPTAX, spec="adan",
        tests=VALUE_TESTS, effect="domain", reproduced_by="tests/test_optax_findings.py",
        reason="optax.adan weighs g - g_prev by 1 - b2 in n and in the step where the reference code weighs it by "
               "b2 (optax PR #1715); dialect adan@optax states it."),
    KnownDeviation(
        id="optax-schedule-free-warmup-lag", implementation=("optax.contrib.schedule_free_adamw",), versions=OPTAX,
        spec="schedulefree_adamw", tests=VALUE_TESTS, effect="domain", reproduced_by="tests/test_optax_findings.py",
        reason="with warmup_steps, Optax's z step reads the schedule at t - 1 (lr 0 at the first step), the "
               "weights at t (optax PR #1744); dialect schedulefree_adamw@optax states it."),
    KnownDeviation(
        id="optax-schedule-free-warmup-0", implementation=("optax.contrib.schedule_free_adamw",), versions=OPTAX,
        spec="schedulefree_adamw@optax", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_optax_findings.py",
        reason="warmup_steps=0 makes the learning rate a constant 0 (documented: a positive integer); the dialect "
               "passes None for its 0."),
    KnownDeviation(
        id="optax-lion-sign-nan", implementation=("optax.lion",), versions=OPTAX, spec="lion", tests=VALUE_TESTS,
        effect="domain", reproduced_by="tests/test_optax_findings.py",
        reason="jnp.sign(NaN) is NaN: a NaN direction makes theta NaN where torch.sign (the reference code's) gives "
               "0; dialect lion@optax states it."),
    KnownDeviation(  # finding 60
        id="adafactor-eps1-default-from-another-dtype", implementation=torch_optim("Adafactor"), versions=TORCH,
        spec="adafactor", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._adafactor_eps1_none_with_mixed_dtypes,
        reason="Adafactor resolves eps1=None to finfo(dtype).eps once per group and step, from the first tensor "
               "(for-loop) or dtype group (foreach): tensors of another dtype in that group step with its eps."),
    KnownDeviation(  # finding 61
        id="adafactor-foreach-tensor-lr-mixed-steps", implementation=torch_optim("Adafactor"), versions=TORCH,
        spec="adafactor", path="foreach", tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._adafactor_tensor_lr_mixes_scalar_types,
        reason="foreach Adafactor with a Tensor lr raises TypeError where a group's tensors are at steps on both "
               "sides of lr = 1/sqrt(t): min(lr, 1/sqrt(t)) mixes tensors and floats."),
    KnownDeviation(
        id="radam-foreach-nan-before-rectification", implementation=torch_optim("RAdam"), versions=TORCH,
        spec="radam", path="*foreach", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._radam_adaptive_term_not_finite,
        elements=p._radam_adaptive_term_not_finite_at,
        reason="foreach RAdam multiplies a non-finite adaptive term by rect = 0 while rho_t <= 5: NaN where the "
               "spec leaves the term out."),
    KnownDeviation(
        id="radam-foreach-step-size-overflow", implementation=torch_optim("RAdam"), versions=TORCH, spec="radam",
        path="*foreach", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._step_size_overflows,
        reason="foreach RAdam adds -lr/(1 - beta1**t) as a scalar to a tensor of the parameter's dtype: inf "
               "where it exceeds the dtype's range."),
    KnownDeviation(
        id="radam-foreach-step-size-in-denominator", implementation=torch_optim("RAdam"), versions=">=2.13,<2.14",
        spec="radam", path="foreach", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._capturable_denominator_leaves_range,
        reason="foreach RAdam forms D = (sqrt(v) + eps)*bc1/(sqrt(bc2)*lr*r_t) in the parameter's dtype and steps "
               "by m/D: wrong rectified steps where D leaves its range."),
    KnownDeviation(
        id="muon-validation-only-at-step", implementation=torch_optim("Muon"), versions=">=2.13,<2.14", spec="muon",
        tests=("test_out_of_domain_hyperparameters_are_refused",),
        reason="torch.optim.Muon's constructor does not check ns_steps: ns_steps >= 100 (or a fraction, which "
               "range() refuses) is refused only by a step() with a gradient (finding 63)."),
    KnownDeviation(
        id="muon-bfloat16-buffer-normalised-in-place", implementation=torch_optim("Muon"), versions=">=2.13,<2.14",
        spec="muon", path="for-loop", dtype="bfloat16", tests=VALUE_TESTS,
        applies=p._any_group(lambda h: not h.get("nesterov", True)),
        reason="bfloat16 without Nesterov: NS divides the momentum buffer itself by its norm (grad.bfloat16() is "
               "the tensor), so the buffer, and from it the next steps' U, are not the EMA (finding 62)."),
    KnownDeviation(
        id="rprop-etaminus-rounds-to-0-or-1", implementation=torch_optim("Rprop"), versions=">=2.13,<2.14", spec="rprop",
        tests=VALUE_TESTS, applies=p._rprop_etaminus_rounds_to_0_or_1,
        reason="Rprop finds sign flips by comparing its factor tensor with etaminus: wrong where etaminus rounds "
               "to 0 or 1 in the parameter's dtype."),
    KnownDeviation(
        id="asgd-average-without-copy", implementation=torch_optim("ASGD"), versions=">=2.13,<2.14", spec="asgd",
        path="capturable", tests=("test_single_steps",), applies=p._asgd_mu_may_be_one_after_first_step,
        reason="capturable ASGD averages ax + mu*(param - ax) with mu = 1 where the for-loop copies param: ax "
               "loses the low bits of a param that param*(1 - lambd*eta) - eta*grad moved far from ax."),
    KnownDeviation(
        id="asgd-foreach-decay-folded-into-gradient", implementation=torch_optim("ASGD"), versions=">=2.13,<2.14",
        spec="asgd", path="*foreach", tests=VALUE_TESTS, applies=p._asgd_foreach_folding_may_depart,
        reason="foreach ASGD steps by param - eta*(grad + lambd*param), formed in the dtype: lambd*param's rounding "
               "left where lambd*eta is near 1; inf where grad + lambd*param overflows."),
    KnownDeviation(
        id="sgd-fused-late-momentum-buffer", implementation=torch_optim("SGD"), versions=TORCH, spec="sgd",
        path="fused", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._momentum_with_missing_grad,
        reason="fused SGD with momentum raises TypeError when a parameter gets its first gradient after another "
               "parameter's momentum buffer exists."),
    KnownDeviation(
        id="sgd-fused-cpu-half-skips-vector-blocks", implementation=torch_optim("SGD"), versions=">=2.12,<2.14",
        spec="sgd", path="fused", dtype=("float16", "bfloat16"), backend="torch-cpu",
        tests=VALUE_TESTS, applies=p._half_tensor_of_a_vector_or_more,
        issue="https://github.com/pytorch/pytorch/issues/191763",
        reason="fused SGD on the CPU leaves every whole SIMD block of a float16/bfloat16 parameter unchanged: "
               "only the scalar tail is updated."),
) + tuple(
    KnownDeviation(
        id=f"{name}-fused-amsgrad-drops-nan", implementation=torch_optim(cls), versions=TORCH, spec=name,
        path="fused", tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._amsgrad_may_meet_nan,
        reason="fused Adam/AdamW with amsgrad takes a max that drops NaN, so max_exp_avg_sq keeps its old value "
               "where v is NaN.")
    for name, cls in (("adam", "Adam"), ("adamw", "AdamW"))
) + tuple(
    KnownDeviation(
        # measured on torch 2.13.0 (CPU) only: no earlier CPU build was at hand
        id=f"{name}-fused-cpu-ignores-strides", implementation=torch_optim(cls), versions=">=2.13,<2.14", spec=name,
        path="fused", backend="torch-cpu", tests=VALUE_TESTS, applies=p._has_non_dense_tensor,
        reason="the CPU fused kernel steps a non-dense tensor (a strided view) as numel contiguous elements from "
               "its data pointer: wrong elements updated, others left alone.")
    for name, cls in (("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD"), ("adagrad", "Adagrad"))
) + (
    KnownDeviation(
        id="sparse-adam-tensor-lr-step-size-in-parameter-dtype", implementation=torch_optim("SparseAdam"),
        versions=">=2.13,<2.14", spec="sparse_adam", dtype=("float16", "bfloat16"), backend="torch-cpu",
        tests=VALUE_TESTS, applies=p._sparse_adam_tensor_step_size_overflows,  # measured on the CPU only
        reason="with a Tensor lr the step size lr*sqrt(bc2)/bc1 is a 0-d float64 tensor that -step_size * numer "
               "converts to the parameter's dtype: +-inf where it exceeds the dtype's range (a float lr: finite)."),
) + tuple(
    KnownDeviation(
        # measured on torch 2.13.0 (CPU); the kernel line is the same in earlier releases, not run here
        id=f"{prefix}-add-sparse-doubles-storage-offset", implementation=torch_optim(cls),
        versions=">=2.13,<2.14", spec=name, backend="torch-cpu", tests=VALUE_TESTS,
        applies=p._offset_view_with_element_sparse_gradient, elements=p._all_elements,
        reason="CPU dense.add_(sparse) with sparse_dim == dim on a contiguous tensor at a storage offset writes at "
               f"2*offset + index: {cls}'s theta update of such a view lands outside it.")
    for prefix, name, cls in (("sparse-adam", "sparse_adam", "SparseAdam"), ("sgd-sparse", "sgd_sparse", "SGD"),
                              ("adagrad-sparse", "adagrad_sparse", "Adagrad"))
) + (
    KnownDeviation(  # finding 111; measured on torch 2.13.0 (CPU)
        id="sgd-sparse-momentum-float16-raises", implementation=torch_optim("SGD"), versions=">=2.13,<2.14",
        spec="sgd_sparse", dtype="float16", backend="torch-cpu", tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._half_sparse_tensors_meet,
        reproduced_by="tests/test_known_deviations.py::test_sgd_sparse_momentum_float16_raises_where_sparse_tensors_meet",
        reason="with momentum, step() adds the sparse buffer and the sparse gradient, and CPU sparse + sparse has "
               "no float16 kernel: NotImplementedError \"cadd_sparse\" not implemented for 'Half'."),
) + (
    # ---- property tests only ---------------------------------------------------------------------------
    # LBFGS (spec.lbfgs, closure-driven; conformance/test_lbfgs.py never draws these inputs, hence "domain")
    KnownDeviation(
        id="lbfgs-non-contiguous-parameter", implementation=torch_optim("LBFGS"), versions=">=2.13,<2.14",
        spec="lbfgs", tests=("test_parameters_are_one_vector_in_parameter_order",), effect="domain",
        issue="https://github.com/pytorch/pytorch/issues/130346 (closed; still so in 2.13)",
        reason="step() raises RuntimeError for a non-contiguous parameter: _gather_flat_grad takes p.grad.view(-1) "
               "of a gradient with the parameter's strides (finding 65)."),
    KnownDeviation(
        id="lbfgs-unvalidated-arguments", implementation=torch_optim("LBFGS"), versions=">=2.13,<2.14",
        spec="lbfgs", tests=("test_closure_calls_are_bounded_and_counted",), effect="domain",
        reason="LBFGS validates only lr: max_eval <= 0 with strong Wolfe raises UnboundLocalError, history_size=0 "
               "IndexError, at a later step (finding 66)."),
    KnownDeviation(
        id="nadam-load-state-dict-casts-mu-product", implementation=torch_optim("NAdam"), versions=TORCH,
        spec="nadam", dtype=("float16", "bfloat16", "float64"), tests=(RESUME,), on_some_inputs=True,
        reason="load_state_dict casts NAdam's float32 mu_product to the parameter's dtype: a restored NAdam "
               "differs from an uninterrupted one."),
    KnownDeviation(
        id="asgd-load-state-dict-casts-eta-mu", implementation=torch_optim("ASGD"), versions=">=2.13,<2.14",
        spec="asgd", dtype=("float16", "bfloat16", "float64"), tests=(RESUME,), on_some_inputs=True,
        reason="load_state_dict casts ASGD's float32 eta and mu to the parameter's dtype: a restored ASGD "
               "differs from an uninterrupted one."),
    KnownDeviation(
        id="adagrad-foreach-maximize-half", implementation=torch_optim("Adagrad"), versions=TORCH,
        spec="adagrad", path="foreach", dtype=("bfloat16", "float16"), tests=(MAXIMIZE,), on_some_inputs=True,
        reason="foreach Adagrad forms -clr*g in place (_foreach_mul_) with maximize=True and out of place "
               "(_foreach_mul) on -g: on the CPU they round differently in bfloat16 and float16 (both within "
               "the tolerance)."),
    KnownDeviation(
        id="sgd-foreach-momentum-half-fallback", implementation=torch_optim("SGD"), versions=TORCH, spec="sgd",
        path="foreach", backend="torch-cpu", tests=(SEVERAL,), applies=p._momentum_buffer_created_beside_others,
        reason="foreach SGD scales momentum buffers per tensor in the step where one is new, and _foreach_mul_ "
               "rounds momentum to the half dtype first: not bit-identical to each tensor alone."),
) + tuple(
    # ---- capturable paths ------------------------------------------------------------------------------
    KnownDeviation(
        id=f"{name}-capturable-float32-step-counter", implementation=torch_optim(cls), versions=TORCH, spec=name,
        path=("capturable*", "differentiable") if name in ("adam", "adamw") else "capturable*", dtype="float64",
        tests=VALUE_TESTS,
        reason="capturable=True keeps the step counter, and so the bias corrections, in float32: float64 steps are "
               "float32-accurate (Adam/AdamW with differentiable=True take the same code).")
    for name, cls in (("adam", "Adam"), ("adamw", "AdamW"), ("adamax", "Adamax"), ("radam", "RAdam"))
) + tuple(
    KnownDeviation(
        id=f"{name}-capturable-step-size-in-denominator", implementation=torch_optim(cls), versions=TORCH,
        spec=name, path=path, tests=VALUE_TESTS + PROPERTY_RUNS, applies=p._capturable_denominator_leaves_range,
        reason="capturable paths fold the step size into a denominator D formed in the parameter's dtype: wrong "
               "steps where D leaves the dtype's range.")
    for name, cls, path in (("adam", "Adam", ("capturable*", "differentiable")),
                            ("adamw", "AdamW", ("capturable*", "differentiable")),
                            ("adamax", "Adamax", "capturable*"), ("radam", "RAdam", "capturable-foreach"))
) + tuple(
    # ---- complex parameters (Case.complex) -----------------------------------------------------------
    KnownDeviation(
        id=f"{name}-complex-weight-decay-in-complex-arithmetic", implementation=torch_optim(cls),
        versions=">=2.13,<2.14", spec=name, path=("for-loop", "differentiable"), tests=VALUE_TESTS,
        applies=p._complex_weight_decay_meets_non_finite,
        reason="the single-tensor path applies weight decay to a complex parameter before view_as_real: where a "
               "part of theta is inf or NaN the other part becomes NaN (inf*0).")
    for name, cls in (("adadelta", "Adadelta"), ("adagrad", "Adagrad"), ("adam", "Adam"), ("adamw", "AdamW"),
                      ("adamax", "Adamax"), ("rmsprop", "RMSprop"))
) + tuple(
    KnownDeviation(
        id=f"{name}-tensor-beta1-rounded-to-parameter-dtype", implementation=torch_optim(cls), versions=">=2.13,<2.14",
        spec=name, path=("for-loop", "differentiable"), tests=VALUE_TESTS, effect="drift",
        reproduced_by="tests/test_known_deviations.py::test_tensor_beta1_is_rounded_to_the_parameter_dtype",
        reason="with betas given as Tensors (the betas_tensor axis) the single-tensor path rounds beta1 to the "
               "parameter's dtype before lerp(g, 1 - beta1): bfloat16 m = 0.1016 for 0.1.")
    for name, cls in (("adam", "Adam"), ("adamw", "AdamW"))
) + (
    KnownDeviation(  # finding 108
        id="foreach-tensor-betas-fail-at-the-first-step",
        implementation=torch_optim("Adamax", "NAdam", "RAdam"), versions=TORCH,
        spec=("adamax", "nadam", "radam"), path="foreach", tests=VALUE_TESTS, effect="domain",
        reproduced_by="tests/test_known_deviations.py::test_foreach_tensor_betas_fail_at_the_first_step",
        reason="the constructors accept Tensor betas with foreach=True, and step() then raises from inside a "
               "_foreach op (Adam and AdamW refuse them at construction); the betas_tensor axis is refused there."),
    KnownDeviation(  # finding 110
        id="sparse-adam-tensor-betas-factors-in-parameter-dtype", implementation=torch_optim("SparseAdam"),
        versions=">=2.13,<2.14", spec="sparse_adam", dtype=("float16", "bfloat16"), backend="torch-cpu",
        tests=VALUE_TESTS, applies=p._sparse_adam_tensor_factor_leaves_range,  # measured on the CPU only
        reproduced_by="tests/test_known_deviations.py::test_sparse_adam_tensor_betas_round_factors_to_the_dtype",
        reason="with Tensor betas, 1 - beta1, 1 - beta2 and the step size are 0-d float64 Tensors that the multiply "
               "casts to the half dtype (a Python float stays float32): inf or 0 where they leave its range."),
) + tuple(
    KnownDeviation(
        id=f"{name}-capturable-cuda-factors-rounded", implementation=torch_optim(cls), versions=TORCH, spec=name,
        path=path, backend="torch-cuda", tests=VALUE_TESTS + PROPERTY_RUNS,
        applies=p._capturable_factor_leaves_range,
        reason="on CUDA the capturable step-size factors act as if rounded to the parameter's dtype: inf or "
               "imprecise where they leave its range.")
    for name, cls, path in (("adam", "Adam", "capturable*"), ("adamw", "AdamW", "capturable*"),
                            ("adamax", "Adamax", "capturable*"), ("radam", "RAdam", "capturable-foreach"))
) + tuple(
    KnownDeviation(
        id=f"{name}-fused-cuda-maximize", implementation=torch_optim(cls), versions=TORCH, spec=name,
        path="fused", dtype="float32", backend="torch-cuda", tests=(MAXIMIZE,),
        reason="CUDA's fused kernel with maximize=True is not bit-identical to maximize=False on -g (both within "
               "the tolerance).")
    for name, cls in (("sgd", "SGD"), ("adam", "Adam"))
) + (
    # ---- learning-rate schedules -----------------------------------------------------------------------
    KnownDeviation(
        id="cosine-recursive-drift", implementation=("torch.optim.lr_scheduler",), versions=TORCH, spec="cosine",
        tests=SCHEDULE_TESTS, effect="drift", reproduced_by="tests/test_schedules.py::test_cosine_recursive_drift",
        issue="https://github.com/pytorch/pytorch/issues/17913; https://github.com/pytorch/pytorch/issues/152081",
        reason="chainable CosineAnnealingLR drifts by up to millions of ulps after each trough, inside the error "
               "bound of its own recursion."),
    KnownDeviation(
        id="onecycle-rounded-phase-end", implementation=("torch.optim.lr_scheduler",), versions=TORCH,
        spec="onecycle", tests=SCHEDULE_TESTS, effect="domain",
        reproduced_by="tests/test_schedules.py::test_onecycle_first_and_last_steps",
        reason="OneCycleLR rounds its phase ends: an empty phase raises ZeroDivisionError although the exact "
               "schedule is defined (complete() and last_step() exclude those cases)."),
    KnownDeviation(
        id="zero-division-not-value-error", implementation=("torch.optim.lr_scheduler",), versions=TORCH,
        spec=("step", "cosine", "cyclic", "onecycle", "polynomial"), tests=SCHEDULE_TESTS, effect="domain",
        reproduced_by="tests/test_schedules.py::test_invalid_arguments_raise_exactly_when_torch_raises",
        reason="several invalid scheduler arguments surface as ZeroDivisionError, some only at a later step, where "
               "the spec raises InvalidHyperparameter up front."),
    KnownDeviation(
        id="sequential-milestone-zero-before-2-13", implementation=("torch.optim.lr_scheduler",), versions="<2.13",
        spec="sequential", tests=SCHEDULE_TESTS, applies=p._sequential_milestone_not_positive,
        reproduced_by="tests/test_schedules.py::test_sequential_milestone_zero_starts_with_the_decay",
        issue="https://github.com/pytorch/pytorch/issues/185872 (fixed by PR 185986, in torch 2.13)",
        reason="before torch 2.13 SequentialLR with a milestone <= 0 starts with the first scheduler's lr: the "
               "decay runs from eta0*start_factor."),
) + tuple(
    # ---- Prodigy (spec/prodigy.py): outside the harness, checked by tests/test_prodigy.py, hence "domain" ---------
    KnownDeviation(id=key, implementation=(cls,), versions=versions, spec=spec, effect="domain", reason=reason,
                   tests=("test_fixed_cases_conform", "test_drawn_cases_conform"),
                   reproduced_by="tests/test_prodigy_findings.py")
    for key, cls, versions, spec, reason in (
        ("prodigyopt-lr-zero-group-still-steps", "prodigyopt.prodigy:Prodigy", "==1.1.2", "prodigy",
         "prodigyopt steps a group with lr = 0 with the global dlr: decoupled decay, and with beta1 = 0 a step of "
         "-dlr*g/eps (finding 89)."),
        ("prodigyopt-accepts-growth-rate-and-d-coef-unchecked", "prodigyopt.prodigy:Prodigy", "==1.1.2", "prodigy",
         "prodigyopt accepts growth_rate <= 0 (d <= 0: frozen or ascending), d_coef <= 0, weight_decay < 0, any "
         "beta3 and slice_p < 1 (finding 90)."),
        ("pytorch-optimizer-prodigy-coupled-decay-ignored", "pytorch_optimizer.optimizer.prodigy:Prodigy",
         PYTORCH_OPTIMIZER, "prodigy@pytorch-optimizer",
         "pytorch-optimizer's Prodigy adds weight_decay*p to the gradient after the moments used it: "
         "weight_decouple=False changes nothing (finding 91)."),
        ("pytorch-optimizer-prodigy-first-groups-lr-for-all", "pytorch_optimizer.optimizer.prodigy:Prodigy",
         PYTORCH_OPTIMIZER, "prodigy@pytorch-optimizer",
         "pytorch-optimizer's Prodigy steps every group with param_groups[0]'s lr; a group's own lr, 0 included, "
         "is ignored without an error (finding 92)."),
        ("pytorch-optimizer-prodigy-d0-zero-accepted", "pytorch_optimizer.optimizer.prodigy:Prodigy",
         PYTORCH_OPTIMIZER, "prodigy@pytorch-optimizer",
         "pytorch-optimizer's Prodigy accepts d0 = 0 (ZeroDivisionError inside step), lr = NaN, eps = 0 and any "
         "keyword, prodigyopt's names too (finding 93)."),
    )
)


def by_id(key: str) -> KnownDeviation:
    """The entry with this id; a clear error listing the ids otherwise."""
    for d in KNOWN_DEVIATIONS:
        if d.id == key:
            return d
    raise KeyError(f"no known deviation {key!r}; known: {', '.join(d.id for d in KNOWN_DEVIATIONS)}")


def drift_deviations(target: Optional[Target], schedule: str) -> list:
    """Ids of the entries that show as drift in this schedule's rows."""
    return [d.id for d in KNOWN_DEVIATIONS
            if d.effect == "drift" and d.concerns(target) and matches_pattern(schedule, d.spec)]
