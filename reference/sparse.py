"""Sparse gradients with duplicate indices, and what coalescing them means.

A sparse gradient is a ``numpy.ma.MaskedArray`` masked outside its index set (``OptimizerSpec.sparse_gradients``).
An *uncoalesced* one (``Uncoalesced``) holds some of its indices twice, as a COO tensor built from two lookups of
one embedding row does: ``second`` holds the second value where ``twice`` is True.  torch's SparseAdam and
Adagrad ``coalesce()`` it first, which sums each index's values in the gradient's dtype
(``_coalesce_sparse_cpu``: one ``axpy`` per duplicate entry); with two values per index that sum is one
correctly rounded addition, whatever the order, so the coalesced gradient is defined exactly.  More than two
values per index would make the result depend on the order of the additions: not drawn.
"""
from __future__ import annotations

import numpy as np


class Uncoalesced(np.ma.MaskedArray):
    """A sparse gradient that holds the indices where ``twice`` is True a second time, with value ``second``.

    ``twice`` lies inside the index set (the unmasked elements); ``second`` is an array of the gradient's dtype
    and shape (its values outside ``twice`` mean nothing).  Build it with ``uncoalesced``: numpy operations on it
    return plain masked arrays without the duplicates (``coalesce`` first)."""

    twice: np.ndarray
    second: np.ndarray


def uncoalesced(values, held, twice, second) -> Uncoalesced:
    """The sparse gradient holding ``values`` where ``held``, and ``second`` once more where ``twice``."""
    held, twice = np.asarray(held, dtype=bool), np.asarray(twice, dtype=bool)
    if np.any(twice & ~held):
        raise ValueError("a duplicate index must be in the index set (twice ⊆ held)")
    out = np.ma.MaskedArray(np.asarray(values), mask=~held).view(Uncoalesced)
    out.twice = twice
    out.second = np.asarray(second, dtype=np.asarray(values).dtype)
    if out.second.shape != out.shape or out.twice.shape != out.shape:
        raise ValueError(f"second {out.second.shape} and twice {out.twice.shape} must have the values' shape "
                         f"{out.shape}")
    return out


def coalesce(g):
    """``g`` with each duplicate index's two values summed, rounded once to ``g``'s dtype (torch's ``coalesce()``);
    any other array as it is.  The sum is taken in binary64 and rounded to the dtype: for two values of a format of
    p ≤ 24 bits binary64's 53 ≥ 2p + 2 bits make that double rounding innocuous (the result is the correctly
    rounded sum, signed zeros and non-finite values as IEEE 754 adds them); float64 values are added directly."""
    if not isinstance(g, Uncoalesced):
        return g
    data = np.ma.getdata(g)
    with np.errstate(all="ignore"):  # inf + (−inf) = NaN and overflow to ±inf are the sum's own values
        wide = data.astype(np.float64) + g.second.astype(np.float64)
        summed = np.where(g.twice, wide.astype(data.dtype), data)
    return np.ma.MaskedArray(summed, mask=np.ma.getmaskarray(g).copy())


def first_entries(g):
    """``g`` without its duplicate indices: an ``Uncoalesced`` one's first entries (a plain masked array); any other
    array as it is."""
    if isinstance(g, Uncoalesced):
        return np.ma.MaskedArray(np.ma.getdata(g), mask=np.ma.getmaskarray(g))
    return g


def second_entries(g: Uncoalesced) -> np.ma.MaskedArray:
    """An ``Uncoalesced`` gradient's second entries: its ``second`` values, held where ``twice``."""
    return np.ma.MaskedArray(g.second, mask=~g.twice)


def duplicates(g) -> int:
    """How many indices ``g`` holds twice (0 for anything but an ``Uncoalesced``)."""
    return int(np.count_nonzero(g.twice)) if isinstance(g, Uncoalesced) else 0
