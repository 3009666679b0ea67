"""What torch.optim (2.13, read in ``torch/optim/*.py``) does with three arguments the update rules have no
symbol for, per optimizer: a Tensor ``lr``, ``differentiable=True`` and complex parameters.

The statements of each spec are about real numbers.  ``COMPLEX[name]`` says how they apply to a complex
parameter: for every optimizer whose code takes ``torch.view_as_real`` of parameter, gradient and state, to
the real and the imaginary part separately (complex state likewise, as its real pairs); SGD has no such view
and is not specified for complex parameters.  ``TENSOR_LR[name]`` and ``DIFFERENTIABLE[name]`` say what those
arguments change.  ``CHECKED`` says what the conformance suite fuzzes of each (``reports.docs`` renders all of
it on each optimizer's page).
"""
from __future__ import annotations

_PER_PART = ("A complex parameter is stepped as the real pairs of `torch.view_as_real`: every statement above holds "
             "for its real and its imaginary part separately, the state too (complex state tensors, viewed as their "
             "real pairs).")
_WD_FIRST = ("The single-tensor code (for-loop and differentiable paths) applies weight decay before it takes that "
             "view, in complex arithmetic, where the real λ is (λ + 0i): where a part of θ is ±inf or NaN the "
             "other part becomes NaN (inf·0); foreach views first (known deviation "
             "`{name}-complex-weight-decay-in-complex-arithmetic`).")
_FUSED_REFUSES = ("The fused path refuses complex parameters (\"`fused=True` requires all the params to be floating "
                  "point Tensors\").")

COMPLEX = {
    "adadelta": f"{_PER_PART} {_WD_FIRST.format(name='adadelta')}",
    "adagrad": f"{_PER_PART} Both parts of the sum start at initial_accumulator_value (`complex(v, v)`). "
               f"{_WD_FIRST.format(name='adagrad')} {_FUSED_REFUSES}",
    "adam": f"{_PER_PART} {_WD_FIRST.format(name='adam')} {_FUSED_REFUSES}",
    "adamw": f"{_PER_PART} The decoupled decay θ·(1 − lr·λ) is taken before the view too. "
             f"{_WD_FIRST.format(name='adamw')} {_FUSED_REFUSES}",
    "adamax": f"{_PER_PART} The infinity norm is per part (max(β₂·u, |g| + ε) of each part, not the modulus). "
              f"{_WD_FIRST.format(name='adamax')}",
    "nadam": f"{_PER_PART} Weight decay (coupled or decoupled) comes after the view: per part on every path.",
    "radam": f"{_PER_PART} Weight decay (coupled or decoupled) comes after the view: per part on every path.",
    "rmsprop": f"{_PER_PART} The square average is per part (g_re², g_im², not |g|²). "
               f"{_WD_FIRST.format(name='rmsprop')}",
    "rprop": f"{_PER_PART} The step sizes start at `complex(lr, lr)`: each part has its own, and its own sign test.",
    "adafactor": ("Not specified: torch.optim.Adafactor refuses complex parameters at the first step "
                  "(\"Adafactor does not support complex parameters\"); the torch backend refuses the complex axis "
                  "with that reason."),
    "muon": ("Not specified: torch.optim.Muon refuses complex parameters at the first step (\"Muon does not "
             "support complex parameters\"); the torch backend's probe refuses the complex axis with that reason."),
    "sgd": ("Not specified: torch.optim.SGD has no `view_as_real` and steps a complex parameter in complex "
            "arithmetic, where a real scalar multiplies as (c + 0i), so an infinite or NaN part turns the other "
            "part NaN (inf·0) in weight decay, momentum and the step; for finite values that is the per-part update. "
            "The torch backend refuses the complex axis for SGD with that reason."),
}

_TENSOR_LR = ("lr may be a 1-element Tensor: `_to_scalar` keeps it a 0-d tensor, and the step uses its value (a "
              "float32 tensor, torch's default, is float32(lr), and the scalars formed from it, such as lr/bc₁, are "
              "then float32 tensors).")
TENSOR_LR = {name: _TENSOR_LR for name in COMPLEX}
_TENSOR_ADAM = (
    f"{_TENSOR_LR} foreach refuses it (\"lr as a Tensor is not supported for capturable=False and foreach=True\"). "
    "betas may be Tensors too (both or neither; the same foreach refusal), and then the single-tensor "
    "path rounds β₁ to the parameter's dtype before lerp(g, 1 − β₁) (known deviation "
    "`{name}-tensor-beta1-rounded-to-parameter-dtype`, within the tolerance: the `betas_tensor` axis draws them).")
TENSOR_LR["adam"], TENSOR_LR["adamw"] = _TENSOR_ADAM.format(name="adam"), _TENSOR_ADAM.format(name="adamw")
TENSOR_LR["sgd"] = f"{_TENSOR_LR} weight_decay may be a Tensor too (not drawn)."
TENSOR_LR["adafactor"] = ("lr may be a 1-element Tensor, on both paths (no foreach refusal): `_to_scalar` keeps a 0-d "
                          "tensor, and ρ_t = min(lr, 1/√t), α, 1 − lr·λ and −α/clip become 0-d tensors of lr's "
                          "dtype where lr enters them; a float64 lr holds the same binary64 values as a Python float.")
TENSOR_LR["muon"] = ("lr may be a 0-d Tensor: `_adjust_lr` returns lr·ratio, a 0-d tensor of lr's dtype, and "
                     "`mul_(1 - lr * weight_decay)` and `add_(update, alpha=-adjusted_lr)` take 0-d tensors; a "
                     "float64 lr holds the same binary64 values as a Python float (drawn: `lr_tensor`).")
TENSOR_LR["adagrad"] = f"{_TENSOR_LR} The decayed clr = lr/(1 + (t − 1)·lr_decay) is then a tensor of lr's dtype."

_SAME = "the same values as the for-loop"
DIFFERENTIABLE = {
    "adadelta": f"`delta.clone()` before the in-place divide and multiply: {_SAME}.",
    "adagrad": f"√s + ε out of place: {_SAME}.",
    "adam": ("the capturable branch (`if capturable or differentiable`): bias corrections from the float32 step "
             "tensor (float32 scalars; float64 θ float32-accurate), the step size folded into the denominator "
             "√v/(√bc₂·(−lr/bc₁)) + ε/(−lr/bc₁) formed in the parameter's dtype, AMSGrad's max by torch.maximum of "
             "a clone (known deviations `adam-capturable-float32-step-counter`, "
             "`adam-capturable-step-size-in-denominator`)."),
    "adamax": f"the running max by torch.amax over a stacked pair instead of torch.maximum(out=): {_SAME}, NaN included.",
    "nadam": ("g and m are multiplied by their step factors (0-d float32 tensors, from mu_product) before "
              "addcdiv_(·, d): each product is rounded to the parameter's dtype before the division, where the "
              "for-loop passes the factor as addcdiv's value; scalars float32, as on every NAdam path."),
    "radam": f"√v + ε out of place: {_SAME}.",
    "rmsprop": f"the ε addition out of place: {_SAME}.",
    "rprop": f"g·g_prev with a clone of g_prev: {_SAME}.",
    "sgd": "no branch of its own in the step (a Tensor lr or λ that requires grad takes addcmul): the for-loop's code.",
}
DIFFERENTIABLE["adafactor"] = ("not an argument of torch.optim.Adafactor (nor fused or capturable): only the for-loop "
                               "and foreach paths exist.")
DIFFERENTIABLE["muon"] = ("not an argument of torch.optim.Muon, nor foreach, fused or capturable: its one path is "
                          "`_single_tensor_muon`, and `muon(..., foreach=True)` raises RuntimeError \"Foreach is not "
                          "supported for Muon yet\" (the torch backend lists each path as refused: the class has no "
                          "such argument).")
DIFFERENTIABLE["adamw"] = DIFFERENTIABLE["adam"].replace("adam-capturable", "adamw-capturable")

CHECKED = ("The torch backend runs `differentiable=True, foreach=False` as the path `differentiable` of every "
           "optimizer (the value tests run it like any path; its scalar precision is the for-loop's, float32 for "
           "Adam, AdamW and NAdam; fused refuses the flag, \"`fused` does not support `differentiable`\", and foreach "
           "raises \"_foreach ops don't support autograd\", SGD's excepted).  Four case axes are drawn in "
           "`test_trajectory` and `test_single_steps` where the backend offers them (`case_axes`): `lr_tensor`, each "
           "group's lr a float64 0-d tensor (exact) changed with `fill_`; `complex`, every tensor with an even last "
           "dimension stepped as the complex tensor of its pairs (float16 as complex32; bfloat16 has no complex "
           "dtype) and compared part by part; and `mixed_dtype`, every tensor followed in its group by a companion "
           "of another dtype (float32 for float16, bfloat16 and float64 tensors, float64 for float32 ones) holding "
           "its values, which torch's foreach and fused paths put in a dtype group of their own "
           "(`_group_tensors_by_device_and_dtype`): the case's tensors are checked, the companions' values are "
           "not; and, for the optimizers with betas, `betas_tensor`, each group's betas float64 0-d tensors (exact; "
           "foreach Adam and AdamW refuse them with a ValueError, foreach Adamax, NAdam and RAdam accept them and "
           "fail at the first step, finding 108).  Where the backend refuses an axis, the run's summary lists it with "
           "the reason (torch's exception, or the reason above).")
