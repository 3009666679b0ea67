"""Whole-tensor reductions: the statements that make an update more than elementwise.

Inside an ``Assign``, ``SumSq(x)``, ``Norm(x)`` and ``MaxAbs(x)`` stand for one number per tensor, computed from
the per-element expression ``x`` over every element of the parameter tensor::

    SumSq(x) = Σᵢ xᵢ²          Norm(x) = √(Σᵢ xᵢ²)          MaxAbs(x) = maxᵢ |xᵢ|

A symbol assigned such a value is the same for every element (LAMB's trust ratio reads ‖θ‖ and ‖u‖).  The
reduction's order of summation is not the spec's business: implementations sum in whatever order their kernel
uses (torch's CPU ``sum`` is cascaded, ``linalg.vector_norm`` is not), so the tolerance model charges a sum of
n terms the bound of *any* order, n − 1 roundings each at most u·Σ|terms| (Higham, *Accuracy and Stability*,
§4.2, the bound that holds for every ordering); max and |·| are exact.  A tensor is the unit of a reduction: a
spec that reduces is evaluated tensor by tensor (``reference.tensor``), not element by element.
"""
from __future__ import annotations

import sympy as sp


class Reduction(sp.Function):
    """A reduction over every element of the tensor (one argument: the per-element expression).  ``op`` names
    the arithmetic's operation that computes it (``reference.tensor.Lifted``)."""

    nargs = 1
    op = ""

    @property
    def is_real(self):
        return True


class SumSq(Reduction):
    """Σᵢ xᵢ²: the squared Euclidean norm."""

    op = "sum_sq"

    def _latex(self, printer):
        return rf"\sum_i \left({printer._print(self.args[0])}\right)_i^2"


class Norm(Reduction):
    """√(Σᵢ xᵢ²): the Euclidean norm of the whole tensor (torch's ``p.norm(2)``, ``linalg.vector_norm``)."""

    op = "norm"

    def _latex(self, printer):
        return rf"\left\lVert {printer._print(self.args[0])} \right\rVert_2"


class MaxAbs(Reduction):
    """maxᵢ |xᵢ|: the infinity norm (exact in any format)."""

    op = "max_abs"

    def _latex(self, printer):
        return rf"\left\lVert {printer._print(self.args[0])} \right\rVert_\infty"


REDUCTIONS = (SumSq, Norm, MaxAbs)


def reduces(expr) -> bool:
    """``expr`` contains a whole-tensor reduction."""
    return isinstance(expr, sp.Basic) and expr.has(*REDUCTIONS)
