"""Medians and quantiles to the bit of numpy's, at a fraction of their cost on short arrays.

The checks take tens of thousands of medians of a few dozen to a few thousand points on a
sweep; numpy's functions spend most of that in argument handling (and ``np.median`` imports
``numpy.ma`` on first use).  :mod:`rundoctor.checks.measures` re-exports these; checks call
them through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import bottleneck
import numpy as np


def median(values: np.ndarray | Sequence[float]) -> float:
    """``float(np.median(values))`` to the bit, some forty times cheaper on short arrays.

    The checks take tens of thousands of medians of a few dozen to a few thousand points on
    a sweep; numpy's median spends ~40 us a call handling its arguments, bottleneck's
    selection ~1 us.  Both average the two middle values of an even count the same way;
    adding 0.0 turns a median of -0.0 into the +0.0 numpy returns (its average is a sum,
    which starts at +0.0).  Other dtypes than float64 (and empty input) go to numpy.
    """
    array = np.asarray(values)
    if array.dtype != np.float64 or array.size == 0:
        return float(np.median(array))
    return float(bottleneck.median(array)) + 0.0


def quantile(values: np.ndarray, q: float) -> float:
    """``float(np.quantile(values, q))`` (linear interpolation) to the bit, for finite values,
    without numpy's argument handling (~60 us a call): numpy's own steps, in its order.

    The same partition (numpy's, with the same order statistics asked for) gives the same
    neighbours, and the interpolation is numpy's ``_lerp``: from below for a fraction under
    one half, from above otherwise.  Non-finite or non-float64 values, or none, go to numpy.
    """
    array = np.asarray(values)
    if array.dtype != np.float64 or array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        return float(np.quantile(array, q))
    count = array.size
    virtual = (count - 1) * float(q)
    below = math.floor(virtual)
    above = below + 1
    if virtual >= count - 1:  # at (or past) the top: the largest value
        below = above = -1
    arranged = np.partition(array, np.array(sorted({0, -1, below, above}), dtype=np.intp))
    low, high = arranged[below], arranged[above]
    fraction = virtual - below
    difference = high - low
    if fraction >= 0.5:
        return float(high - difference * (1 - fraction))
    return float(low + difference * fraction)


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D array, NaNs as one at the end: ``np.unique``'s.

    Without ``np.unique``, whose first call in a process imports numpy's masked arrays (30-70
    ms of every ``check``).  Of a zero logged both as 0.0 and as -0.0 either may be kept (as
    with numpy's hashing): no caller reads the sign of a distinct zero.
    """
    ordered = np.sort(np.asarray(values).ravel())
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    if ordered.dtype.kind == "f" and np.isnan(ordered[-1]):  # NaNs sort last and are all one
        first_nan = int(np.searchsorted(ordered, ordered[-1], side="left"))
        keep[first_nan] = True
        keep[first_nan + 1 :] = False
    return ordered[keep]


def row_medians(matrix: np.ndarray) -> np.ndarray:
    """``np.median(matrix, axis=1)`` to the bit (see :func:`median`)."""
    if matrix.dtype != np.float64 or matrix.size == 0:
        return np.asarray(np.median(matrix, axis=1), dtype=np.float64)
    return np.asarray(bottleneck.median(matrix, axis=1), dtype=np.float64) + 0.0
