"""A NumPy port of torch 2.13's ``torch.optim.LBFGS`` (``torch/optim/lbfgs.py``), statement for statement.

It is not a ``run(case)`` of the element-wise backend protocol (``conformance/backend.py``): L-BFGS is driven by
a closure and works on the whole flattened vector (``spec/lbfgs.py`` says why).  It has torch's shape instead:
``NumpyLBFGS(params, **hyper).step(closure)`` with ``params`` a list of NumPy arrays (complex ones stepped as
their real view, as torch does) updated in place, and ``closure()`` returning ``(loss, grads)``, one gradient
array per parameter (None: zero).  ``state`` holds torch's names with flat float arrays.

The small methods ``first_step_size`` and ``direction`` are the two statements a deliberately broken port
overrides (``tests/broken_lbfgs.py``).
"""
from __future__ import annotations

import math

import numpy as np

from spec.lbfgs import CURVATURE_EPS, DEFAULTS


def _real(a: np.ndarray) -> np.ndarray:
    """The array's real view, flattened (complex: re, im interleaved, as ``torch.view_as_real``)."""
    a = np.ascontiguousarray(a)
    return (a.view(a.real.dtype) if np.iscomplexobj(a) else a).reshape(-1)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """torch's ``_strong_wolfe`` (a port of minFunc's lswolfe): bracket, then zoom by cubic interpolation."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new @ d
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None  # torch leaves them unbound (finding 66)
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new @ d
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    if bracket is None:
        raise UnboundLocalError("torch: cannot access local variable 'bracket_f' (max_ls < 0, finding 66)")
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new @ d
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class NumpyLBFGS:
    """torch.optim.LBFGS over NumPy arrays (one group; the closure returns ``(loss, grads)``)."""

    def __init__(self, params, lr=DEFAULTS["lr"], max_iter=DEFAULTS["max_iter"], max_eval=None,
                 tolerance_grad=DEFAULTS["tolerance_grad"], tolerance_change=DEFAULTS["tolerance_change"],
                 history_size=DEFAULTS["history_size"], line_search_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        self.params = list(params)
        self.group = dict(lr=lr, max_iter=max_iter, max_eval=max_iter * 5 // 4 if max_eval is None else max_eval,
                          tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                          history_size=history_size, line_search_fn=line_search_fn)
        self.state: dict = {}

    # ---- the flat vector
    def _flat_grad(self, grads):
        return np.concatenate([_real(np.zeros_like(p) if g is None else g) for p, g in zip(self.params, grads)])

    def _add_grad(self, step_size, update):
        offset = 0
        for p in self.params:
            view = _real(p) if p.flags.c_contiguous else None
            n = 2 * p.size if np.iscomplexobj(p) else p.size
            step = step_size * update[offset:offset + n]
            if view is not None and np.shares_memory(view, p):
                view += step
            else:  # a non-contiguous parameter: torch refuses it (finding 65); the port steps it anyway
                flat = _real(p) + step
                p[...] = flat.view(p.dtype).reshape(p.shape) if np.iscomplexobj(p) else flat.reshape(p.shape)
            offset += n

    def _evaluate(self, closure):
        loss, grads = closure()
        return loss, self._flat_grad(grads)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss, flat_grad = self._evaluate(closure)
        for p, saved in zip(self.params, x):
            p[...] = saved
        return float(loss), flat_grad

    # ---- the two statements a broken port replaces
    def first_step_size(self, flat_grad, lr):
        return min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr

    def direction(self, flat_grad, old_dirs, old_stps, ro, H_diag, al):
        q = -flat_grad
        num_old = len(old_dirs)
        for i in range(num_old - 1, -1, -1):
            al[i] = (old_stps[i] @ q) * ro[i]
            q = q + (-al[i]) * old_dirs[i]
        r = q * H_diag
        for i in range(num_old):
            be_i = (old_dirs[i] @ r) * ro[i]
            r = r + (al[i] - be_i) * old_stps[i]
        return r

    def step(self, closure):
        group, state = self.group, self.state
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, flat_grad = self._evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        opt_cond = np.abs(flat_grad).max() <= tolerance_grad
        if opt_cond:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y @ s
                if ys > CURVATURE_EPS:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / (y @ y)
                al = state.setdefault("al", [None] * history_size)
                d = self.direction(flat_grad, old_dirs, old_stps, ro, H_diag, al)
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            t = self.first_step_size(flat_grad, lr) if state["n_iter"] == 1 else lr
            gtd = flat_grad @ d
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = [p.copy() for p in self.params]

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    loss, flat_grad = self._evaluate(closure)
                    loss = float(loss)
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
