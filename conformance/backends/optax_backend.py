"""Optax's own transformations (JAX on the CPU) as a backend, checked against the ``@optax`` dialect specs.

    python -m pytest conformance --backend=optax --hypothesis-profile=ci

Each ``@optax`` spec (``spec.dialects``) names the Optax alias it follows (``optax.adam``, ``optax.sgd``, ...,
``optax.lion``, ``optax.adan``, ``optax.contrib.ademamix``, ``optax.contrib.schedule_free_adamw``,
``optax.lamb``, ``optax.adafactor``);
``run`` builds that alias from the case's hyperparameters (``ARGS``: the spec's names to Optax's) and calls its
``update`` and ``optax.apply_updates``, step by step, in JAX arrays of the case's dtype.

What the backend decides, and why:

* **One transformation state per parameter.**  Optax updates every leaf of a pytree at once; torch's protocol
  lets a parameter have no gradient at a step (``None``: left alone, its state not advanced).  Each parameter
  gets its own ``init`` state, and a step without its gradient does not call ``update`` for it.  With a
  gradient at every step this is what one state for the whole tree computes, leaf by leaf.
* **The learning rate is a Python float** given to the alias, rebuilt when the case changes it (``lrs``): none
  of these aliases keeps the learning rate in its state, so the state carries over unchanged.  JAX's weak
  typing converts it to the parameter's dtype where it meets the update (bfloat16 for bfloat16 parameters),
  which the tolerance model charges as a scalar meeting a tensor.
* **float16 only, by default.**  JAX on the CPU flushes subnormal inputs and results to zero (FTZ and DAZ, by
  design: jax-ml/jax#16200; XLA sets them around every CPU computation), which the tolerance model does not
  describe yet: a float32, float64 or bfloat16 step that passes through the subnormal range departs from the spec
  by up to the smallest normal number (measured: ``sgd@optax`` float32, θ − lr·g = 8.4e-45 computed as 0).
  float16's subnormals are float32 normals, so float16 steps are not flushed.  ``ALL_DTYPES``
  (``--backend=conformance.backends.optax_backend:all_dtypes``) runs the four dtypes anyway and shows it.
* **float64** needs ``jax_enable_x64``, which this module turns on at import; with it, JAX computes the bias
  corrections' ``β**count`` in float64 where Optax does not cast first.  Both are within the float32 scalar
  precision the backend declares (``scalar_precision``).
* **Memory layouts** do not exist in JAX (arrays have no strides): a strided or transposed case runs as a
  contiguous one.
* ``momentum = 0`` is passed as Optax's ``None`` (no trace), as the spec's ``sgd@optax`` and
  ``rmsprop@optax`` say; so is Schedule-Free's ``warmup_steps = 0`` (Optax's 0 is a constant lr of 0, its None
  no warm-up), and Adafactor's ``clip_threshold = 0`` and ``weight_decay = 0`` (its None: no clip, no decay;
  ``NONE_MEANS``).  Adafactor's default ``learning_rate=None`` (no scaling) is the spec's lr = 1, which the backend
  passes as 1.0 (the same values, and a chain of the same structure when the case changes lr).
* **Adafactor's state** keeps v_row, v_col and v for every parameter, the unused ones as ``(1,)`` placeholders:
  those are left out, and a factored tensor's v_row and v_col (its largest and second largest axis removed) are
  reported in the spec's keepdim shapes (``_factored_as_the_spec``).  Factoring needs both of the two largest
  dimensions ≥ 128, which the suite's drawn shapes never have (a spec that reduces draws small tensors for the
  exact engine): ``tests/test_optax_findings.py`` runs a factored case through this backend and the check.
* **Schedule-Free** keeps ``max_lr``, ``weight_sum`` and its weights as scalars of the parameters' dtype (not
  Python floats, as schedulefree does): in float16 (and bfloat16 under ``all_dtypes``) that is a known deviation
  (``optax-schedule-free-scalars-in-parameter-dtype``), so the default float16 run marks its value tests xfail;
  float32 and float64 runs compute them in those formats, where the flush-to-zero caveat above is what remains.
  Its per-state scalars (weight_sum, max_lr, step_count) are not reported: the spec keeps them per element.

State is reported under the spec's names (``STATE``: Optax's ``mu``, ``nu``, ``trace``, ... fields, found in the
chain's nested states), and ``count`` (Adan: ``t``) as ``step`` where the alias keeps one.
"""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:  # pragma: no cover - only without JAX
    raise ImportError(f"--backend=optax needs JAX and Optax (pip install -e '.[optax]'): {exc}") from exc

jax.config.update("jax_enable_x64", True)

from spec.dialects import OPTAX_MIN_DIM_TO_FACTOR  # noqa: E402

from ..backend import Case, StepOutput  # noqa: E402

#: spec name → (Optax alias, the spec's hyperparameter names → the alias's keyword arguments)
ARGS = {
    "adam@optax": (optax.adam, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps",
                                "eps_root": "eps_root"}),
    "adamw@optax": (optax.adamw, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps",
                                  "eps_root": "eps_root", "weight_decay": "weight_decay"}),
    "nadam@optax": (optax.nadam, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps",
                                  "eps_root": "eps_root"}),
    "adamax@optax": (optax.adamax, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps"}),
    "sgd@optax": (optax.sgd, {"lr": "learning_rate", "momentum": "momentum", "nesterov": "nesterov"}),
    "rmsprop@optax": (optax.rmsprop, {"lr": "learning_rate", "alpha": "decay", "eps": "eps",
                                      "initial_scale": "initial_scale", "momentum": "momentum",
                                      "centered": "centered", "eps_in_sqrt": "eps_in_sqrt"}),
    "adagrad@optax": (optax.adagrad, {"lr": "learning_rate", "initial_accumulator_value":
                                      "initial_accumulator_value", "eps": "eps"}),
    "adadelta@optax": (optax.adadelta, {"lr": "learning_rate", "rho": "rho", "eps": "eps",
                                        "weight_decay": "weight_decay"}),
    "lion@optax": (optax.lion, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "weight_decay": "weight_decay"}),
    "adan@optax": (optax.adan, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "beta3": "b3", "eps": "eps",
                                "eps_root": "eps_root", "weight_decay": "weight_decay"}),
    "ademamix@optax": (optax.contrib.ademamix, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "beta3": "b3",
                                                "alpha": "alpha", "eps": "eps", "eps_root": "eps_root",
                                                "weight_decay": "weight_decay"}),
    "lamb@optax": (optax.lamb, {"lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps",
                                "eps_root": "eps_root", "weight_decay": "weight_decay"}),
    "schedulefree_adamw@optax": (optax.contrib.schedule_free_adamw, {
        "lr": "learning_rate", "beta1": "b1", "beta2": "b2", "eps": "eps", "weight_decay": "weight_decay",
        "warmup_steps": "warmup_steps"}),
    "adafactor@optax": (optax.adafactor, {
        "lr": "learning_rate", "eps": "eps", "clip_threshold": "clipping_threshold", "decay_rate": "decay_rate",
        "momentum": "momentum", "weight_decay": "weight_decay_rate",
        "multiply_by_parameter_scale": "multiply_by_parameter_scale", "factored": "factored"}),
}

#: the public name of each spec's alias, where it is not ``optax.<spec's base name>``
NAMES = {"ademamix@optax": "optax.contrib.ademamix", "schedulefree_adamw@optax": "optax.contrib.schedule_free_adamw"}

#: hyperparameters whose value here the alias spells None (off): passed as None, and a None default read as it
NONE_MEANS = {"momentum": 0, "warmup_steps": 0}
#: the same, per spec, beyond NONE_MEANS: adafactor's None clip and weight decay are none (0); its None learning
#: rate scales by nothing, the spec's lr = 1 (a default read so; lr itself is always passed as a float)
NONE_MEANS_OF = {"adafactor@optax": {"lr": 1.0, "clip_threshold": 0, "weight_decay": 0}}

#: Optax state fields → the spec's state names, per spec (fields not listed are not reported)
STATE = {
    "adam@optax": {"count": "step", "mu": "exp_avg", "nu": "exp_avg_sq"},
    "adamw@optax": {"count": "step", "mu": "exp_avg", "nu": "exp_avg_sq"},
    "nadam@optax": {"count": "step", "mu": "exp_avg", "nu": "exp_avg_sq"},
    "adamax@optax": {"count": "step", "mu": "exp_avg", "nu": "exp_inf"},
    "sgd@optax": {"trace": "momentum_buffer"},
    "rmsprop@optax": {"nu": "square_avg", "mu": "grad_avg", "trace": "momentum_buffer"},
    "adagrad@optax": {"sum_of_squares": "sum"},
    "adadelta@optax": {"e_g": "square_avg", "e_x": "acc_delta"},
    "lion@optax": {"mu": "exp_avg"},
    "adan@optax": {"t": "step", "m": "exp_avg", "v": "exp_avg_diff", "n": "exp_avg_sq", "g": "prev_grad"},
    "ademamix@optax": {"count": "step", "m1": "exp_avg_fast", "m2": "exp_avg_slow", "nu": "exp_avg_sq"},
    "lamb@optax": {"count": "step", "mu": "exp_avg", "nu": "exp_avg_sq"},
    "schedulefree_adamw@optax": {"z": "z", "nu": "exp_avg_sq"},  # weight_sum, max_lr: one scalar per state
    "adafactor@optax": {"count": "step", "v_row": "v_row", "v_col": "v_col", "v": "v", "ema": "ema"},
}

#: state fields that are step counts, reported as a float
COUNTS = {"count", "t"}

_JNP = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64}


#: JAX's CPU flushes subnormals to zero in these (see above), which the tolerance model does not describe yet
FLUSHED = ("bfloat16", "float32", "float64")


class OptaxBackend:
    name = "optax"
    specs = tuple(ARGS)  # what a run checks when no --spec is given

    def __init__(self, dtypes: tuple = ("float16",)):
        self._dtypes = tuple(dtypes)

    def __repr__(self) -> str:
        return f"OptaxBackend(optax {optax.__version__}, jax {jax.__version__}, dtypes {list(self._dtypes)})"

    def paths(self, optimizer: str) -> tuple:
        return ("optax",) if optimizer in ARGS else ()

    def dtypes(self, optimizer: str, path: str) -> tuple:
        return self._dtypes

    def scalar_precision(self, optimizer: str, path: str) -> str:
        return "float32"  # Optax casts some scalars to the moments' dtype, others not: float32 covers both

    def implementation(self, name: str, path: str):
        if name not in ARGS:
            return None
        return NAMES.get(name, f"optax.{name.split('@')[0]}"), optax.__version__  # the alias's public name

    def defaults(self, optimizer: str) -> dict:
        """The alias's own keyword defaults under the spec's names (a None default as the value it stands for,
        ``NONE_MEANS``: ``momentum=None`` as 0, adafactor's ``learning_rate=None`` as 1; no lr where the alias
        requires one)."""
        import inspect

        alias, names = ARGS[optimizer]
        params = inspect.signature(alias).parameters
        none_means = _none_means(optimizer)
        out = {}
        for name, optax_name in names.items():
            p = params.get(optax_name)
            if p is None or p.default is inspect.Parameter.empty:
                continue
            out[name] = none_means[name] if name in none_means and p.default is None else p.default
        return out

    def transformation(self, optimizer: str, hyper: dict, lr: float):
        alias, names = ARGS[optimizer]
        kwargs = {names[k]: v for k, v in hyper.items() if k in names and k != "lr"}
        for name, value in _none_means(optimizer).items():
            if name in names and kwargs.get(names[name], None) == value:
                kwargs[names[name]] = None
        # lr always as a float, 1 included (× 1.0 is exact): a case that changes lr (lrs) rebuilds the alias, whose
        # chain must keep the state's structure, and adafactor's None would drop scale_by_learning_rate from it
        kwargs[names["lr"]] = float(lr)
        if kwargs.get("warmup_steps") is not None:
            kwargs["warmup_steps"] = int(kwargs["warmup_steps"])
        return alias(**kwargs)

    def run(self, case: Case) -> list:
        dtype = _JNP[case.dtype]
        groups = []
        for hyper, params in case.groups:
            ps = [jnp.asarray(np.asarray(p), dtype=dtype) for p in params]
            tx = self.transformation(case.optimizer, hyper, hyper["lr"])
            groups.append([hyper, ps, [tx.init(p) for p in ps]])
        outputs = []
        for s, row in enumerate(case.grads):
            for i, (hyper, ps, states) in enumerate(groups):
                lr = hyper["lr"] if case.lrs is None or case.lrs[s][i] is None else case.lrs[s][i]
                hyper["lr"] = lr
                tx = self.transformation(case.optimizer, hyper, lr)
                for j, g in enumerate(row[i]):
                    if g is None:
                        continue
                    grad = jnp.asarray(np.asarray(g), dtype=dtype)
                    updates, states[j] = tx.update(grad, states[j], ps[j])
                    ps[j] = optax.apply_updates(ps[j], updates)
            outputs.append(StepOutput(
                params=[[_numpy(p, case.dtype) for p in ps] for _, ps, _ in groups],
                state=[[self._state(case.optimizer, st, case.dtype, hyper, p.shape) for st, p in zip(states, ps)]
                       for hyper, ps, states in groups]))
        return outputs

    def _state(self, optimizer: str, state, dtype: str, hyper: dict, shape: tuple) -> dict:
        names = STATE[optimizer]
        out = {}

        def walk(node):  # Optax states are named tuples, nested in chains' plain tuples
            if hasattr(node, "_fields"):
                for field in node._fields:
                    value = getattr(node, field)
                    if field in names and names[field] not in out:
                        out[names[field]] = float(value) if field in COUNTS else _numpy(value, dtype)
                    else:
                        walk(value)
            elif isinstance(node, tuple):
                for item in node:
                    walk(item)

        walk(state)
        if optimizer == "adafactor@optax":
            _factored_as_the_spec(out, tuple(shape), bool(hyper.get("factored", True)))
        return out


def _none_means(optimizer: str) -> dict:
    return {**NONE_MEANS, **NONE_MEANS_OF.get(optimizer, {})}


def _factored_as_the_spec(out: dict, shape: tuple, factored: bool) -> None:
    """``optax.adafactor``'s state in the dialect's terms, in place.  ``scale_by_factored_rms`` keeps all three of
    v_row, v_col and v for every parameter, the unused ones as ``(1,)`` placeholders: those are left out.  A factored
    tensor's v_row is the mean over its largest axis d0 with that axis removed, v_col over the second largest d1
    (``_factored_dims``); the spec's v_row is the mean over the last axis, kept as length 1 (``State.reduced_axis``
    −1), its v_col over the second-to-last (−2).  Where d0 is the last axis they are Optax's, reshaped; where d0 is
    the second-to-last (a 130 × 128 matrix) Optax's v_row is the spec's v_col and the other way round.  Two largest
    axes elsewhere the dialect does not describe: a clear error."""
    from optax._src.factorized import _factored_dims

    dims = _factored_dims(shape, factored, OPTAX_MIN_DIM_TO_FACTOR)
    if dims is None:
        del out["v_row"], out["v_col"]
        return
    del out["v"]
    n = len(shape)
    d1, d0 = dims
    if (d1, d0) == (n - 2, n - 1):
        row, col = out["v_row"], out["v_col"]
    elif (d1, d0) == (n - 1, n - 2):
        row, col = out["v_col"], out["v_row"]
    else:
        raise ValueError(f"adafactor@optax: a parameter of shape {shape} is factored over axes {d1} and {d0}; the "
                         "dialect describes factoring over the last two only")
    out["v_row"], out["v_col"] = np.expand_dims(row, -1), np.expand_dims(col, -2)


def _numpy(a, dtype: str) -> np.ndarray:
    """A JAX array as a NumPy array of the case's dtype (bfloat16 as ml_dtypes', as the other backends)."""
    from reference.formats import FORMATS
    return np.asarray(a).astype(FORMATS[dtype].dtype, copy=True)


backend = OptaxBackend()
all_dtypes = OptaxBackend(tuple(_JNP))
