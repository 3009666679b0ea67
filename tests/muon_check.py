"""Muon (spec/muon.py) against a torch.optim.Muon-like class: what "conforms" means for Muon, as code.

``observe`` wraps torch's module-level ``_zeropower_via_newtonschulz`` (which ``_single_tensor_muon`` calls by
name), so that each step's NS input U and output O become observable; ``run`` steps a class with torch.optim.Muon's
API and reports θ, the momentum buffer, U and O per step.  ``check_steps`` checks each step element by element
from the implementation's previous θ and buffer, with the O it applied, against the spec (the exact interval
reference and the derived bound of reference/bound.py, as the harness's single-step test does);
``check_newton_schulz`` checks each O by properties (tests/test_muon.py says which).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.optim._muon as muon_module

from conformance import newton_schulz as ns
from conformance.backends.torch_backend import _to_numpy
from conformance.backends.torch_backend import observe_newton_schulz
from conformance.check import _compare
from reference.bound import trajectory_bounds
from reference.formats import get_format
from reference.step import trajectory
from spec.muon import MUON

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


#: Record (input U, output O) of every NS call while active, in call order: the torch backend's own observer
observe = observe_newton_schulz


def torch_hyper(hyper: dict) -> dict:
    """The spec's hyperparameters as torch.optim.Muon's keyword arguments."""
    h = dict(hyper)
    kw = {k: h.pop(k) for k in ("lr", "weight_decay", "momentum", "nesterov", "eps", "ns_steps")}
    kw["ns_coefficients"] = (h.pop("ns_a"), h.pop("ns_b"), h.pop("ns_c"))
    kw["adjust_lr_fn"] = "match_rms_adamw" if h.pop("match_rms_adamw") else None
    assert not h, h
    return kw


def run(cls, hyper: dict, param: np.ndarray, grads: list, dtype: str) -> list:
    """Per step: dict theta, momentum_buffer, update (U), ortho (O, bfloat16 values as float32) as NumPy arrays."""
    p = torch.tensor(np.asarray(param, dtype=np.float64), dtype=DTYPES[dtype])
    opt = cls([p], **torch_hyper(MUON.complete(hyper)))
    rows = []
    for gr in grads:
        p.grad = torch.tensor(np.asarray(gr, dtype=np.float64), dtype=DTYPES[dtype])
        with observe() as calls:
            opt.step()
        assert len(calls) == 1, f"{len(calls)} NS calls for one tensor"
        u, o = calls[0]
        rows.append({"theta": _to_numpy(p), "momentum_buffer": _to_numpy(opt.state[p]["momentum_buffer"]),
                     "update": _to_numpy(u), "ortho": o.float().numpy().copy()})
    return rows


def check_steps(hyper: dict, param, grads: list, rows: list, dtype: str) -> list:
    """Failures (strings) of each step's θ, buffer and U against the spec, from the implementation's previous θ
    and buffer, with the O it applied (binary64 scalars: torch's Python floats)."""
    fmt = get_format(dtype)
    hyper = MUON.complete(hyper)
    failures = []
    prev = {"theta": np.asarray(param), "momentum_buffer": np.zeros(np.shape(param), dtype=rows[0]["theta"].dtype)}
    for s, row in enumerate(rows):
        given, seen = {"momentum_buffer": prev["momentum_buffer"]}, [{"ortho": row["ortho"]}]
        g = np.asarray(grads[s]).astype(row["theta"].dtype)
        ref = trajectory(MUON, hyper, prev["theta"], [g], state=given, formats=(fmt.name,), observed=seen)[0]
        bnd = trajectory_bounds(MUON, hyper, prev["theta"], [g], fmt, state=given, scalars="float64",
                                observed=seen)[0]
        for name in ("theta", "momentum_buffer", "update"):
            exact = ref.theta if name == "theta" else ref.state[name]
            for idx in np.ndindex(*np.shape(param)):
                verdict, ulp, ratio, why = _compare(row[name][idx], exact[idx], bnd[name][idx], fmt)
                if verdict == "fail":
                    failures.append(f"step {s + 1} {name}{list(idx)}: got {float(row[name][idx])!r}, exact "
                                    f"{float(exact[idx].value)!r}, {ratio:.3g}× the bound {why}")
        prev = row
    return failures


#: torch's bfloat16 operation sequence written out again (conformance/newton_schulz.py, which the harness's NS
#: property test uses too): (X = bfloat16(U) oriented m ≤ n, the iterates from the normalised one on, O)
rerun_newton_schulz = ns.rerun_torch
check_enclosures = ns.check_enclosures


def check_newton_schulz(u: torch.Tensor, o: torch.Tensor, a: float, b: float, c: float, steps: int,
                        eps: float) -> list:
    """Failures (strings) of one NS output ``o`` for input ``u``: a bfloat16 tensor, bit for bit the re-executed
    sequence, and each step's singular values within their derived enclosures (reference.newton_schulz)."""
    if o.dtype != torch.bfloat16:
        return [f"O has dtype {o.dtype}, not bfloat16"]
    return ns.check_applied(rerun_newton_schulz, u, o, a, b, c, steps, eps)


# ------------------------------------------------------------------------ re-implementations, faithful and broken


class FaithfulMuon(torch.optim.Muon):
    """torch.optim.Muon's ``_single_tensor_muon``, statement for statement (NS called through the module, so that
    ``observe`` sees it): the control that the broken versions below differ from in one statement each."""

    def _momentum(self, buf, grad, group):
        buf.lerp_(grad, 1 - group["momentum"])
        return grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf

    def _decay_lr(self, lr, adjusted_lr):
        return lr

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                update = self._momentum(state["momentum_buffer"], p.grad, group)
                update = muon_module._zeropower_via_newtonschulz(update, group["ns_coefficients"],
                                                                 group["ns_steps"], group["eps"])
                adjusted_lr = muon_module._adjust_lr(group["lr"], group["adjust_lr_fn"], p.shape)
                p.mul_(1 - self._decay_lr(group["lr"], adjusted_lr) * group["weight_decay"])
                p.add_(update, alpha=-adjusted_lr)


class DocstringMomentumMuon(FaithfulMuon):
    """The momentum of torch's docstring: B = μB + g and the Nesterov input g + μB (the code's EMA is (1 − μ) of
    that)."""

    def _momentum(self, buf, grad, group):
        buf.mul_(group["momentum"]).add_(grad)
        return grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf


class AdjustedDecayMuon(FaithfulMuon):
    """Decays θ with the shape-adjusted lr η' where torch uses the lr itself."""

    def _decay_lr(self, lr, adjusted_lr):
        return adjusted_lr


BROKEN = (DocstringMomentumMuon, AdjustedDecayMuon)
