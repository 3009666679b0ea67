"""Whole-tensor reductions: the statements that make an update more than elementwise.

Inside an ``Assign``, ``SumSq(x)``, ``Norm(x)`` and ``MaxAbs(x)`` stand for one number per tensor, computed from
the per-element expression ``x`` over every element of the parameter tensor::

    SumSq(x) = Σᵢ xᵢ²          Norm(x) = √(Σᵢ xᵢ²)          MaxAbs(x) = maxᵢ |xᵢ|

A symbol assigned such a value is the same for every element (LAMB's trust ratio reads ‖θ‖ and ‖u‖).

Along one axis (``axis`` −1, the last, or −2, the one before it), ``AxisNorm(x, axis)`` and ``AxisMean(x, axis)``
stand for one number per fiber of that axis (a row for −1, a column for −2), broadcast back to every element of
the fiber, as torch's ``keepdim=True`` results broadcast::

    AxisNorm(x, a)[i] = √(Σⱼ x[i with its axis-a index replaced by j]²)      AxisMean(x, a)[i] = (Σⱼ x[…j…]) / n_a

``Numel(x)`` (the number of elements of the tensor) and ``Length(x, a)`` (its length n_a along axis a) are exact
integers, for specs that divide by a tensor's size (Adafactor's RMS and its row and column means).  The
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


class AxisReduction(Reduction):
    """A reduction along one axis (second argument: −1 or −2), broadcast back over that axis (keepdim)."""

    nargs = 2

    @property
    def axis(self) -> int:
        return int(self.args[1])


class AxisNorm(AxisReduction):
    """√(Σⱼ xⱼ²) over each fiber of the axis: torch's ``torch.norm(x, dim=axis, keepdim=True)``."""

    op = "norm_axis"

    def _latex(self, printer):
        return rf"\left\lVert {printer._print(self.args[0])} \right\rVert_{{2,\,\mathrm{{dim}}={self.axis}}}"


class AxisMean(AxisReduction):
    """(Σⱼ xⱼ)/n over each fiber of the axis: torch's ``x.mean(dim=axis, keepdim=True)``, a sum then one
    division."""

    op = "mean_axis"

    def _latex(self, printer):
        return rf"\operatorname{{mean}}_{{\mathrm{{dim}}={self.axis}}}\left({printer._print(self.args[0])}\right)"


class Numel(Reduction):
    """The number of elements of the tensor (exact; 1 for a 0-d tensor): torch's ``x.numel()``."""

    op = "numel"

    def _latex(self, printer):
        return rf"\operatorname{{numel}}\left({printer._print(self.args[0])}\right)"


class Length(AxisReduction):
    """The tensor's length along the axis (exact): torch's ``x.size(axis)``."""

    op = "length"

    def _latex(self, printer):
        return rf"\operatorname{{size}}_{{{self.axis}}}\left({printer._print(self.args[0])}\right)"


REDUCTIONS = (SumSq, Norm, MaxAbs, AxisNorm, AxisMean, Numel, Length)


def reduces(expr) -> bool:
    """``expr`` contains a whole-tensor reduction."""
    return isinstance(expr, sp.Basic) and expr.has(*REDUCTIONS)
