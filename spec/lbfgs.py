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
    LBFGSHyper("history_size", 100, "not checked; 0 raises IndexError at the second stored pair (finding 66)",
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
