"""L-BFGS as torch 2.13's ``torch/optim/lbfgs.py`` computes it (read in the code, not the docstring).

LBFGS is **closure-driven**: one ``step(closure)`` runs up to ``max_iter`` iterations, calls the closure for the
loss and the gradient as often as its control flow decides, and works on *one* vector: every parameter's
gradient flattened in parameter order (a complex tensor as its real view, ``view_as_real``: re, im interleaved)
and concatenated.  Its directions are whole-vector dot products, and what it stores depends on comparisons of
those.  It has no element-wise update rule, so it is not an ``OptimizerSpec`` and the trajectory tests do not
apply; ``conformance/test_lbfgs.py`` checks it by properties (``docs/optimizers/lbfgs.md`` says which).

The functions below are the algorithm, on vectors given as sequences of numbers: with ``fractions.Fraction``
they run it exactly (the properties' reference); the NumPy port (``conformance/backends/numpy_lbfgs.py``) is
a separate transliteration of torch's code.  Names follow torch's: ``old_dirs`` holds the y's (gradient
changes), ``old_stps`` the s's (steps), ``ro`` the 1/(yᵀs)'s, oldest first.
"""
from __future__ import annotations

from dataclasses import dataclass

#: torch's literal curvature threshold: a pair is stored iff yᵀs > 1e-10 (absolute, whatever the scale or dtype)
CURVATURE_EPS = 1e-10


@dataclass(frozen=True)
class LBFGSHyper:
    name: str
    default: object
    domain: str  # what torch's constructor accepts, in words
    doc: str


HYPERPARAMETERS = (
    LBFGSHyper("lr", 1, "lr ≥ 0 (a float, or a 1-element tensor); checked", "step length t after the first iteration"),
    LBFGSHyper("max_iter", 20, "not checked; ≤ 0 runs no iteration", "iterations per `step()`"),
    LBFGSHyper("max_eval", None, "not checked; None means ⌊5·max_iter/4⌋ (`max_iter * 5 // 4`)",
               "closure calls per `step()`, see *Counting* (it can be exceeded by one)"),
    LBFGSHyper("tolerance_grad", 1e-7, "not checked", "stop when max|g| ≤ tolerance_grad"),
    LBFGSHyper("tolerance_change", 1e-9, "not checked",
               "stop when gᵀd > −tol, max|t·d| ≤ tol or |Δloss| < tol"),
    LBFGSHyper("history_size", 100, "not checked; 0 raises IndexError at the first pair stored (finding 66)",
               "pairs kept, oldest dropped first"),
    LBFGSHyper("line_search_fn", None, "None or 'strong_wolfe' (anything else raises RuntimeError in `step`)",
               "None: fixed step t; 'strong_wolfe': `_strong_wolfe`, c₁ = 1e-4, c₂ = 0.9, at most "
               "max_eval − (calls so far) extra calls"),
)
DEFAULTS = {h.name: h.default for h in HYPERPARAMETERS}

#: The state torch keeps (``optimizer.state[params[0]]``: one global state, registered on the first parameter).
STATE = (
    ("func_evals", "closure calls over all `step()` calls"),
    ("n_iter", "iterations over all `step()` calls; the first iteration ever (n_iter = 1) is the first step"),
    ("d", "the last direction, d = −H·prev_flat_grad"),
    ("t", "the last step length"),
    ("old_dirs", "list of y = g − g_prev, oldest first"),
    ("old_stps", "list of s = t·d, oldest first"),
    ("ro", "list of 1/(yᵀs)"),
    ("H_diag", "γ = yᵀs / yᵀy of the newest stored pair (1 before any)"),
    ("prev_flat_grad", "the gradient d was computed from"),
    ("prev_loss", "the loss at prev_flat_grad"),
)

#: The statements of one iteration, for the docs (LaTeX, in torch's order).
STATEMENTS = (
    ("first iteration ever (n_iter = 1)", [
        r"d \leftarrow -g,\quad \mathcal{H} \leftarrow [\,],\quad \gamma \leftarrow 1",
        r"t \leftarrow \min\!\left(1, \frac{1}{\lVert g \rVert_1}\right)\cdot \mathrm{lr}"
        r"\qquad \lVert g \rVert_1 = \textstyle\sum_i |g_i| \text{ (\texttt{abs().sum()})}"]),
    ("later iterations: the pair", [
        r"y \leftarrow g - g_{\mathrm{prev}},\quad s \leftarrow t\,d",
        r"\text{if } y^\top s > 10^{-10}:\ \text{drop the oldest pair if } |\mathcal{H}| = m;\ "
        r"\text{append } (y, s, \rho = 1/(y^\top s));\ \gamma \leftarrow \frac{y^\top s}{y^\top y}"]),
    ("later iterations: the two-loop recursion (d = −H g), k = |H|", [
        r"q \leftarrow -g",
        r"\text{for } i = k-1, \dots, 0:\ \alpha_i \leftarrow \rho_i\, s_i^\top q,\quad q \leftarrow q - \alpha_i y_i",
        r"r \leftarrow \gamma\, q",
        r"\text{for } i = 0, \dots, k-1:\ \beta_i \leftarrow \rho_i\, y_i^\top r,\quad "
        r"r \leftarrow r + (\alpha_i - \beta_i)\, s_i",
        r"d \leftarrow r,\qquad t \leftarrow \mathrm{lr}"]),
    ("every iteration: move and test", [
        r"\text{if } g^\top d > -\mathrm{tolerance\_change}: \text{ stop (before moving)}",
        r"\theta \leftarrow \theta + t\,d \ \text{(no line search) or the strong-Wolfe } t",
        r"\text{stop if } n = \mathrm{max\_iter},\ \text{calls} \ge \mathrm{max\_eval},\ "
        r"\max_i |g_i| \le \mathrm{tolerance\_grad},\ \max_i |t\,d_i| \le \mathrm{tolerance\_change},\ "
        r"|f - f_{\mathrm{prev}}| < \mathrm{tolerance\_change}"]),
)


# --------------------------------------------------------------------------- the algorithm, exact

def dot(a, b):
    return sum((x * y for x, y in zip(a, b, strict=True)), 0)


def axpy(alpha, x, y):
    """y + α·x (torch's ``y.add_(x, alpha=α)``)."""
    return [yi + alpha * xi for xi, yi in zip(x, y, strict=True)]


def first_step_size(g, lr):
    """t of the first iteration ever: min(1, 1/‖g‖₁)·lr, ‖g‖₁ = Σ|gᵢ| (``flat_grad.abs().sum()``)."""
    return min(1, 1 / sum(abs(x) for x in g)) * lr


def curvature_ok(y, s) -> bool:
    """The pair (y, s) is stored iff yᵀs > 1e-10."""
    return dot(y, s) > CURVATURE_EPS


def store(history: list, y, s, history_size: int) -> list:
    """``history`` (a list of (y, s, ρ), oldest first) with (y, s, 1/yᵀs) appended, the oldest dropped at
    ``history_size`` pairs.  The caller tests ``curvature_ok`` first."""
    kept = history[1:] if len(history) == history_size else history
    return [*kept, (list(y), list(s), 1 / dot(y, s))]


def h_diag(y, s):
    """γ = yᵀs / yᵀy of the newest stored pair: the initial inverse Hessian γ·I."""
    return dot(y, s) / dot(y, y)


def two_loop(g, history, gamma):
    """d = −H·g: H is the L-BFGS inverse Hessian of ``history`` (oldest first) on H₀ = γ·I, in torch's order
    (newest to oldest, then oldest to newest).  With exact ρ = 1/yᵀs, H·y = s for the newest pair (secant)."""
    q = [-x for x in g]
    alphas = [None] * len(history)
    for i in reversed(range(len(history))):
        y, s, rho = history[i]
        alphas[i] = dot(s, q) * rho
        q = axpy(-alphas[i], y, q)
    r = [x * gamma for x in q]
    for i, (y, s, rho) in enumerate(history):
        beta = dot(y, r) * rho
        r = axpy(alphas[i] - beta, s, r)
    return r


def max_closure_calls(max_iter: int, max_eval: int, line_search: bool) -> int:
    """An upper bound on the closure calls of one ``step()`` that torch's control flow guarantees.

    No line search: 1 + one per iteration but the last, and the loop stops once calls ≥ max_eval; so
    min(max_iter, max(max_eval, 2)) for max_iter ≥ 1 (max_eval = 1 still gives 2).  Strong Wolfe: the
    line search may call max_eval − calls + 1 times (its first trial is outside its ``max_ls`` count), so
    max_eval + 1 in all."""
    if max_iter <= 0:
        return 1
    if line_search:
        return max(max_eval, 1) + 1
    return min(max_iter, max(max_eval, 2))


@dataclass(frozen=True)
class ClosureSpec:
    """An optimizer whose ``step`` takes a closure and whose update is no element-wise rule: what the registry,
    ``--spec``/``--optimizer`` and the docs need of it.  ``checked_by`` names the tests that check it instead of
    the trajectory tests; ``why`` is the reason those show when asked to run it."""

    name: str
    title: str
    torch_class: str
    hyperparameters: tuple
    checked_by: str
    why: str


LBFGS = ClosureSpec(
    name="lbfgs", title="L-BFGS (closure-driven, optional strong-Wolfe line search)", torch_class="LBFGS",
    hyperparameters=HYPERPARAMETERS, checked_by="conformance/test_lbfgs.py",
    why="lbfgs is closure-driven (whole-vector dot products, data-dependent control flow), so it has no "
        "element-wise trajectory to compare: conformance/test_lbfgs.py checks it by properties")


# --------------------------------------------------------------------------- what the docs say (reports/docs.py)

#: How torch computes what the statements leave open.
NOTES = (
    "**One vector.** Every gradient is flattened (`p.grad.view(-1)`; a missing gradient is zeros, a sparse one "
    "densified, a complex one its real view: re, im interleaved) and concatenated in parameter order; every dot "
    "product, norm and max is over that vector.  One parameter group only: a second raises ValueError in the "
    "constructor.  The state is global, kept in `state[params[0]]`.",
    "**The first step** is the first iteration ever (state n_iter = 1), not the first of each `step()`: later "
    "calls go on with the stored history, d and t.",
    "**Curvature test.** yᵀs > 1e-10, an absolute threshold in the gradient's dtype whatever the problem's "
    "scale: a pair that fails it is dropped, H and γ stay as they were.",
    "**Returned loss.** `step()` returns the closure's first value (before any iteration), not the last.",
    "**No line search.** θ ← θ + t·d with t = lr (the first step's t above); the closure is called again after "
    "each iteration but the last of a `step()` (the last one's loss and gradient are left to the next call).",
    "**Strong Wolfe** (`_strong_wolfe`, a port of minFunc's lswolfe; c₁ = 1e-4, c₂ = 0.9, its own "
    "tolerance_change = 1e-9, max_ls = max_eval − calls so far): tries t, extrapolates by cubic interpolation "
    "(`_cubic_interpolate` of two points with values and slopes, clamped to [t + 0.01(t − t_prev), 10t]) until "
    "the Armijo test fails, the slope turns non-negative or |gᵀd| ≤ −c₂·g₀ᵀd; then zooms in the bracket by the "
    "same interpolation (a trial within 10% of the bracket's width from an end is moved to that 10% mark when the "
    "previous trial was too close as well, or when it lies at or outside an end).  The "
    "NumPy port runs it statement for statement; it has no exact statement here (the interpolation takes a "
    "square root), so it is checked through its effects only (see below).",
    "**Counting.** state func_evals counts closure calls, n_iter iterations, over all `step()` calls.  A step "
    "ends after an iteration when n = max_iter, calls ≥ max_eval, max|g| ≤ tolerance_grad, max|t·d| ≤ "
    "tolerance_change or |Δloss| < tolerance_change; before moving when gᵀd > −tolerance_change; and before "
    "any iteration when the first call's max|g| ≤ tolerance_grad (θ and the state but func_evals unchanged).",
)

#: Where torch's docstring and its code differ.
DOCSTRING_VS_CODE = (
    "`max_eval` \"maximal number of function evaluations per optimization step\": the code checks it only "
    "after an iteration, so max_eval = 1 still gives 2 calls without a line search, and with strong Wolfe the "
    "line search's first trial comes on top of its max_ls = max_eval − calls: up to max_eval + 1 calls "
    "(`max_closure_calls`; `tests/test_lbfgs_spec.py` reaches both).",
    "`max_eval` \"default: max_iter * 1.25\": the code takes ⌊5·max_iter/4⌋ (`max_iter * 5 // 4`): 3, not "
    "3.75, for max_iter = 3.",
    "\"Parameters must be real\": complex parameters are accepted and stepped as their real views.",
    "`tolerance_grad` \"termination tolerance on first order optimality\": it is max|gᵢ| ≤ tolerance_grad "
    "(`abs().max()`, inclusive); `tolerance_change` is used three ways (gᵀd > −tol before moving, max|t·d| ≤ tol, "
    "|Δloss| < tol, the last strict).",
    "Not in the docstring at all: the first step's scaling min(1, 1/‖g‖₁)·lr with the L1 norm, the curvature "
    "threshold 1e-10, the scaling γ = yᵀs/yᵀy, that the loss returned is the first call's, that the state "
    "persists across `step()` calls, and that the strong-Wolfe constants are fixed.",
)

#: What conformance/test_lbfgs.py checks (binary64 parameters; the backend's class: torch.optim.LBFGS, the
#: NumPy port, or an --optimizer class) and tests/test_lbfgs_spec.py proves on the spec.
CHECKED = (
    "the first step: d = −g bit for bit, t = min(1, 1/‖g‖₁)·lr and θ₁ = θ₀ + t·d within the bound of any binary64 "
    "evaluation (in any summation order), one call, no pair stored;",
    "after every `step()`, both line-search modes, max_iter up to 5: state d = −H·prev_flat_grad through the "
    "two-loop recursion of the stored pairs in torch's order, ρᵢ = 1/yᵢᵀsᵢ and γ of the newest pair, within that "
    "bound; prev_flat_grad is a gradient the closure returned, bit for bit;",
    "the pairs: y = g − g_prev and s = t·d bit for bit, stored iff yᵀs > 1e-10 (either way within the bound of "
    "yᵀs), the oldest dropped beyond history_size; the threshold itself with yᵀs = k·2⁻⁵³ on both sides of 1e-10;",
    "the secant equation H·yₖ = sₖ for the newest pair through the implementation's own recursion (a step with "
    "lr = 0, then a closure that returns yₖ as the gradient), within the bound;",
    "stopping: max|g| ≤ tolerance_grad (and just above it) at the first call, gᵀd > −tolerance_change before "
    "moving, the closure calls per `step()` against `max_closure_calls`, func_evals and n_iter, the loss "
    "returned;",
    "one vector: a complex, a (2, 2) and a (1,) tensor step bit for bit as the one 9-element vector;",
    "on the spec, exactly (rationals): with an exact line search the iteration reaches the minimum of an "
    "n-dimensional quadratic in n iterations for any memory m ≥ 1, and H·y = s holds for every newest pair.",
)

NOT_CHECKED = (
    "**n-step termination on an implementation.** It holds for an exact line search (the two-loop direction is "
    "then a multiple of the conjugate-gradient direction whatever m ≥ 1 and γ).  torch's steps are not exact "
    "line searches: without one t = lr, and strong Wolfe accepts the first point that meets c₁ = 1e-4, "
    "c₂ = 0.9 (on a quadratic any t within [0.1, 1.9] of the minimiser's).  It is proved on the spec; on an "
    "implementation, the per-step checks above stand for it.  No derived bound on how binary64 rounding "
    "delays termination is given.",
    "**The strong-Wolfe step length** is not compared with an exact value: its decisions compare rounded "
    "function values and its interpolation takes a square root.  Its effects are checked (counts, the two-loop "
    "invariant and the pairs after it).",
    "**Trajectories over many steps** against an exact run: not compared (data-dependent control flow; each "
    "step's direction is checked from the implementation's own state instead).",
    "**tolerance_change's** max|t·d| and |Δloss| exits are stated, not tested on their boundaries.",
    "**Other dtypes** (float32, the half formats), CUDA, sparse and missing gradients: not drawn.  All checks "
    "are in binary64 with contiguous parameters (finding 65 is why).",
)
