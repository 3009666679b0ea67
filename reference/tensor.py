"""A per-element arithmetic lifted to whole tensors, for specs that reduce (``spec.reductions``).

The compiled program of a spec (``reference.program``) calls operations on an arithmetic object ``O``.  The
reference (``arith.Interval``, ``exact.ExactInterval``, ``arith.Special``) and the tolerance model
(``bound.Bound``) implement them for one element.  ``Lifted(O, shape)`` runs the same program over a whole
tensor at once: a value is either an object array of the tensor's shape (one ``O`` value per element) or a
single ``O`` value (a hyperparameter, the step counter, a reduction: the same for every element).  Elementwise
operations apply ``O``'s operation element by element; a reduction folds ``O``'s own operations over the
elements, so the reference encloses it exactly and the bound charges what ``O.add`` charges a sum of n terms:
n − 1 roundings, each at most u·Σ|terms|, which holds for any order of summation.  A reduction along an axis
(``spec.reductions.AxisNorm``, ``AxisMean``) does the same for each fiber of that axis and broadcasts the
result back over the fiber (an object array of the tensor's shape); a mean adds ``O.div``'s rounding by the
fiber's length.  ``numel`` and ``length`` are exact constants.
"""
from __future__ import annotations

import numpy as np

_ELEMENTWISE = ("add", "sub", "neg", "mul", "lerp", "div", "sqrt", "pow", "max", "min", "abs", "cos", "sin", "exp",
                "log", "floor", "ceil", "mod", "gt", "lt", "ge", "le", "eq", "ne", "all_", "any_", "select")


def all_finite(arrays) -> bool:
    """Every element of every array (exact inputs: Fractions, or floats where not finite) is finite."""
    from .driver import is_finite
    return all(is_finite(v) for a in arrays for v in np.asarray(a, dtype=object).flat)


def object_array(values, shape) -> np.ndarray:
    """An object array of ``shape`` holding ``values`` (an array of that shape or one value for every element)."""
    out = np.empty(shape, dtype=object)
    if isinstance(values, np.ndarray):
        out[...] = values
    else:
        for idx in np.ndindex(*shape):
            out[idx] = values
    return out


class Lifted:
    """``O`` over tensors of ``shape``: see the module's docstring.  Inputs, constants and hyperparameters are
    ``O``'s (pass them through ``O`` itself); ``each`` converts a whole array of element inputs."""

    def __init__(self, O, shape: tuple):
        self.O, self.shape = O, tuple(shape)

    def each(self, fn, values) -> np.ndarray:
        """``fn`` applied to every element of the array ``values``."""
        out = np.empty(self.shape, dtype=object)
        for idx in np.ndindex(*self.shape):
            out[idx] = fn(values[idx])
        return out

    def __getattr__(self, name):
        # Operations the program calls that are not elementwise (const, hyper, input) are O's own.
        op = getattr(self.O, name)
        if name not in _ELEMENTWISE:
            return op

        def elementwise(*args):
            if not any(isinstance(a, np.ndarray) for a in args):
                return op(*args)  # per-tensor values only: computed once
            out = np.empty(self.shape, dtype=object)
            for idx in np.ndindex(*self.shape):
                out[idx] = op(*(a[idx] if isinstance(a, np.ndarray) else a for a in args))
            return out

        return elementwise

    def _elements(self, x) -> list:
        return list(object_array(x, self.shape).flat)

    def sum_sq(self, x):
        """Σᵢ xᵢ² through ``O.mul`` and one n-ary ``O.add``; each square as |x|·|x|, so that an interval around 0
        squares to one that does not reach below 0 (|·| is exact in every arithmetic)."""
        return self._sum_sq_of(self._elements(x))

    def norm(self, x):
        """√(Σᵢ xᵢ²)."""
        return self.O.sqrt(self.sum_sq(x))

    def _fibers(self, axis: int):
        """Per fiber of ``axis``: the list of its indices (in order along the axis)."""
        if not -len(self.shape) <= axis < len(self.shape):
            raise ValueError(f"a reduction along axis {axis} of a tensor of shape {self.shape}: the spec applies it "
                             f"only to tensors with at least {-axis if axis < 0 else axis + 1} dimensions")
        axis %= len(self.shape)
        others = self.shape[:axis] + self.shape[axis + 1:]
        for rest in np.ndindex(*others):
            yield [rest[:axis] + (j,) + rest[axis:] for j in range(self.shape[axis])]

    def _per_fiber(self, x, axis: int, fold) -> np.ndarray:
        """``fold(values of a fiber)`` for each fiber of ``axis``, broadcast back over it."""
        values = object_array(x, self.shape)
        out = np.empty(self.shape, dtype=object)
        for fiber in self._fibers(axis):
            r = fold([values[idx] for idx in fiber])
            for idx in fiber:
                out[idx] = r
        return out

    def _sum_sq_of(self, elements: list):
        O = self.O
        squares = [O.mul(a, a) for a in (O.abs(v) for v in elements)]
        if not squares:
            return O.const(0, 1)
        return squares[0] if len(squares) == 1 else O.add(*squares)

    def norm_axis(self, x, axis: int):
        """√(Σⱼ xⱼ²) per fiber of ``axis``, broadcast over it (torch's ``keepdim=True``)."""
        return self._per_fiber(x, axis, lambda xs: self.O.sqrt(self._sum_sq_of(xs)))

    def mean_axis(self, x, axis: int):
        """(Σⱼ xⱼ)/n per fiber of ``axis``: one n-ary ``O.add``, then one ``O.div`` by the exact length."""
        O = self.O

        def mean(xs):
            return O.div(xs[0] if len(xs) == 1 else O.add(*xs), O.const(len(xs), 1))

        return self._per_fiber(x, axis, mean)

    def numel(self, x):
        """The tensor's number of elements (1 for a 0-d tensor), exactly."""
        return self.O.const(int(np.prod(self.shape, dtype=np.int64)), 1)

    def length(self, x, axis: int):
        """The tensor's length along ``axis``, exactly."""
        next(self._fibers(axis), None)  # the same clear error for an axis the tensor lacks
        return self.O.const(self.shape[axis], 1)

    def max_abs(self, x):
        """maxᵢ |xᵢ| (0 for an empty tensor)."""
        O = self.O
        values = [O.abs(v) for v in self._elements(x)]
        if not values:
            return O.const(0, 1)
        return values[0] if len(values) == 1 else O.max(*values)
