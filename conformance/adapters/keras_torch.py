"""Keras 3 optimizers (torch backend) behind torch.optim's API, to check them against their dialect specs.

    KERAS_BACKEND=torch pytest conformance --backend=torch-cpu \\
        --optimizer adam@keras=conformance.adapters.keras_torch:Adam -k float32

Each class here is a ``torch.optim.Optimizer``: it takes ``params`` (tensors or
param groups) and the torch-style hyperparameters of the dialect spec
(``spec.dialects``: ``lr``, ``betas``, ``eps``, ``weight_decay``, ``alpha`` for
RMSprop's ρ, ...), and ``step()`` reads ``p.grad``.  Behind it, every parameter
gets its own ``keras.optimizers.X`` and ``keras.Variable`` (same dtype):
``step()`` copies the parameter into the variable, sets the Keras learning
rate from ``group["lr"]``, calls ``keras_optimizer.apply([grad], [variable])``
and copies the variable back.  All copies are exact.

What the adapter decides, and why:

* One Keras optimizer per parameter.  Keras counts ``iterations`` per
  optimizer, so with one optimizer for all variables a variable without a
  gradient would still see its step counter advance; the spec (and torch)
  count per parameter.  Per-parameter optimizers make the two agree whenever
  the dialect itself is well defined.
* ``weight_decay = 0`` is passed as Keras's ``None`` (off); to AdamW, which refuses None, as 0.0 (θ·(1 − 0) = θ).
* The learning rate: by default (``KERAS_ADAPTER_LR=variable``) as Keras
  keeps a float learning rate, in a ``keras.Variable`` of
  ``keras.config.floatx()`` (float32 unless changed), assigned from
  ``group["lr"]`` before every step.  So float64 parameters get a
  float32-rounded lr, which is Keras's behaviour and is outside the float64
  tolerance.  ``KERAS_ADAPTER_LR=callable`` passes a zero-argument callable
  returning ``group["lr"]`` (a Python float) instead, which Keras casts to the
  parameter's dtype directly.
* ``opt.state[p]`` holds the Keras variables under the spec's state names
  (``exp_avg`` for Keras's ``momentums``, ...) and ``step`` (Keras's
  ``iterations``), so the harness's single-step mode can restart the reference
  from them.  ``load_state_dict`` restores them into fresh Keras optimizers.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402

try:  # noqa: E402
    import keras
except ImportError as exc:  # pragma: no cover - only without keras
    raise ImportError(f"conformance.adapters.keras_torch needs Keras 3 (pip install keras): {exc}") from exc

if keras.backend.backend() != "torch":  # pragma: no cover - keras was imported before with another backend
    raise ImportError(f"Keras runs on the {keras.backend.backend()!r} backend; set KERAS_BACKEND=torch before "
                      "importing keras")

__all__ = ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adamax", "Nadam", "Adadelta", "Lamb", "Lion",
           "KerasOptimizer"]

_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32", torch.float64: "float64"}


def lr_mode() -> str:
    mode = os.environ.get("KERAS_ADAPTER_LR", "variable")
    if mode not in ("variable", "callable"):
        raise ValueError(f"KERAS_ADAPTER_LR={mode!r}: expected 'variable' or 'callable'")
    return mode


class KerasOptimizer(torch.optim.Optimizer):
    """Base class: ``keras_class`` run per parameter; subclasses give defaults, argument and state names."""

    keras_class: str = ""
    hyper_defaults: dict = {}
    #: Keras attribute holding the per-variable list (or one variable) → the spec's state name
    state_names: dict = {}
    counts_steps: bool = True

    def __init__(self, params, **hyper):
        unknown = set(hyper) - set(self.hyper_defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) {sorted(unknown)}; "
                            f"accepted: {sorted(self.hyper_defaults)}")
        defaults = {**self.hyper_defaults, **hyper}
        self._validate(defaults)
        super().__init__(params, defaults)
        self._keras: dict = {}  # param → (keras optimizer, keras variable)

    @classmethod
    def conformance_implementation(cls) -> tuple:
        """(qualified name, version) of what this adapter runs, for the known deviations of Keras."""
        return f"keras.optimizers.{cls.keras_class}", keras.__version__

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        # Keras checks its arguments when an optimizer is constructed; the per-parameter ones are built at the first
        # gradient, so construct one here too, that a group Keras refuses is refused at once, as torch.optim does
        group = self.param_groups[-1]
        getattr(keras.optimizers, self.keras_class)(learning_rate=float(group["lr"]), **self.keras_kwargs(group))

    # -- subclass hooks ---------------------------------------------------
    def _validate(self, group: dict) -> None:
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")

    def keras_kwargs(self, group: dict) -> dict:
        """The Keras constructor's arguments for this group (learning rate excluded)."""
        raise NotImplementedError

    # -- the torch.optim API ----------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                kopt, kvar = self._entry(p, group)
                kvar.assign(p.detach())
                if lr_mode() == "variable":
                    kopt.learning_rate = float(group["lr"])
                kopt.apply([p.grad.detach().clone()], [kvar])
                p.copy_(kvar.value)
                self._expose(p, kopt)
        return loss

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._keras = {}  # rebuilt from self.state on the next step

    # -- internals ----------------------------------------------------------
    def _entry(self, p, group):
        entry = self._keras.get(p)
        if entry is not None:
            return entry
        kwargs = self.keras_kwargs(group)
        if lr_mode() == "callable":
            kwargs["learning_rate"] = lambda group=group: float(group["lr"])
        else:
            kwargs["learning_rate"] = float(group["lr"])
        kopt = getattr(keras.optimizers, self.keras_class)(**kwargs)
        dtype = _DTYPES.get(p.dtype)
        if dtype is None:
            raise TypeError(f"{type(self).__name__}: unsupported dtype {p.dtype}")
        kvar = keras.Variable(p.detach().clone(), dtype=dtype, trainable=True)
        kopt.build([kvar])
        saved = self.state.get(p)
        if saved:  # restored by load_state_dict: put the values back into the Keras variables
            if "step" in saved:
                kopt.iterations.assign(int(float(saved["step"])))
            for attr, name in self.state_names.items():
                var = self._keras_var(kopt, attr)
                if var is not None and name in saved:
                    var.assign(torch.as_tensor(saved[name]).to(var.value.dtype))
        self._keras[p] = (kopt, kvar)
        return kopt, kvar

    @staticmethod
    def _keras_var(kopt, attr):
        value = getattr(kopt, attr, None)
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return value[0] if value else None
        return value

    def _expose(self, p, kopt):
        st = self.state[p]
        if self.counts_steps:
            st["step"] = torch.tensor(float(int(kopt.iterations.value)))
        for attr, name in self.state_names.items():
            var = self._keras_var(kopt, attr)
            if var is not None:
                st[name] = var.value.detach().clone()


def _wd(group) -> object:
    return None if group["weight_decay"] == 0 else float(group["weight_decay"])


class Adam(KerasOptimizer):
    """keras.optimizers.Adam; spec ``adam@keras``."""

    keras_class = "Adam"
    hyper_defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.0, amsgrad=False)
    state_names = {"_momentums": "exp_avg", "_velocities": "exp_avg_sq", "_velocity_hats": "max_exp_avg_sq"}

    def keras_kwargs(self, group):
        b1, b2 = group["betas"]
        return dict(beta_1=float(b1), beta_2=float(b2), epsilon=float(group["eps"]), amsgrad=bool(group["amsgrad"]),
                    weight_decay=_wd(group))


class AdamW(Adam):
    """keras.optimizers.AdamW; spec ``adamw@keras``."""

    keras_class = "AdamW"
    hyper_defaults = dict(Adam.hyper_defaults, weight_decay=0.004)

    def keras_kwargs(self, group):
        out = super().keras_kwargs(group)
        # AdamW refuses None ("Argument `weight_decay` must be a float"); 0.0 decays by θ·(1 − 0·lr) = θ exactly
        out["weight_decay"] = float(group["weight_decay"])
        return out


class SGD(KerasOptimizer):
    """keras.optimizers.SGD; spec ``sgd@keras``."""

    keras_class = "SGD"
    hyper_defaults = dict(lr=1e-2, momentum=0.0, weight_decay=0.0, nesterov=False)
    state_names = {"momentums": "momentum_buffer"}
    counts_steps = False

    def keras_kwargs(self, group):
        return dict(momentum=float(group["momentum"]), nesterov=bool(group["nesterov"]), weight_decay=_wd(group))


class RMSprop(KerasOptimizer):
    """keras.optimizers.RMSprop; spec ``rmsprop@keras`` (torch-style ``alpha`` is Keras's ``rho``)."""

    keras_class = "RMSprop"
    hyper_defaults = dict(lr=1e-3, alpha=0.9, eps=1e-7, weight_decay=0.0, momentum=0.0, centered=False)
    state_names = {"_velocities": "square_avg", "_momentums": "momentum_buffer", "_average_gradients": "grad_avg"}

    def keras_kwargs(self, group):
        return dict(rho=float(group["alpha"]), momentum=float(group["momentum"]), epsilon=float(group["eps"]),
                    centered=bool(group["centered"]), weight_decay=_wd(group))


class Adagrad(KerasOptimizer):
    """keras.optimizers.Adagrad; spec ``adagrad@keras``."""

    keras_class = "Adagrad"
    hyper_defaults = dict(lr=1e-3, weight_decay=0.0, initial_accumulator_value=0.1, eps=1e-7)
    state_names = {"_accumulators": "sum"}

    def keras_kwargs(self, group):
        return dict(initial_accumulator_value=float(group["initial_accumulator_value"]),
                    epsilon=float(group["eps"]), weight_decay=_wd(group))


class Adamax(KerasOptimizer):
    """keras.optimizers.Adamax; spec ``adamax@keras``."""

    keras_class = "Adamax"
    hyper_defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.0)
    state_names = {"_m": "exp_avg", "_u": "exp_inf"}

    def keras_kwargs(self, group):
        b1, b2 = group["betas"]
        return dict(beta_1=float(b1), beta_2=float(b2), epsilon=float(group["eps"]), weight_decay=_wd(group))


class Nadam(KerasOptimizer):
    """keras.optimizers.Nadam; spec ``nadam@keras``."""

    keras_class = "Nadam"
    hyper_defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.0)
    state_names = {"_momentums": "exp_avg", "_velocities": "exp_avg_sq", "_u_product": "mu_product"}

    def keras_kwargs(self, group):
        b1, b2 = group["betas"]
        return dict(beta_1=float(b1), beta_2=float(b2), epsilon=float(group["eps"]), weight_decay=_wd(group))


class Adadelta(KerasOptimizer):
    """keras.optimizers.Adadelta; spec ``adadelta@keras``."""

    keras_class = "Adadelta"
    hyper_defaults = dict(lr=1e-3, rho=0.95, eps=1e-7, weight_decay=0.0)
    state_names = {"_accumulated_grads": "square_avg", "_accumulated_delta_vars": "acc_delta"}

    def keras_kwargs(self, group):
        return dict(rho=float(group["rho"]), epsilon=float(group["eps"]), weight_decay=_wd(group))


class Lamb(KerasOptimizer):
    """keras.optimizers.Lamb; spec ``lamb@keras``."""

    keras_class = "Lamb"
    hyper_defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.0)
    state_names = {"_momentums": "exp_avg", "_velocities": "exp_avg_sq"}

    def keras_kwargs(self, group):
        b1, b2 = group["betas"]
        return dict(beta_1=float(b1), beta_2=float(b2), epsilon=float(group["eps"]), weight_decay=_wd(group))


class Lion(KerasOptimizer):
    """keras.optimizers.Lion; spec ``lion@keras``."""

    keras_class = "Lion"
    hyper_defaults = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    state_names = {"_momentums": "exp_avg"}

    def keras_kwargs(self, group):
        b1, b2 = group["betas"]
        return dict(beta_1=float(b1), beta_2=float(b2), weight_decay=_wd(group))
