"""Vectorised curve measurements shared by the checks.

Real curves are noisy, logged at uneven steps, and of any length from 3 to millions of
points.  Windows are therefore a fraction of the number of points (with a floor), and
noise is measured robustly (median absolute deviation of step-to-step changes), so one
threshold works on a 30-point epoch curve and a 2M-point step curve alike.  Everything
here is O(n) or O(n log n) numpy; no Python loop per point.
"""

from __future__ import annotations

import numpy as np

# 1.4826 turns a median absolute deviation into a standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826


def window(n: int, fraction: float, minimum: int = 3) -> int:
    """A window of ``fraction`` of ``n`` points, at least ``minimum`` and at most ``n``."""
    return int(max(1, min(n, max(minimum, round(n * fraction)))))


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average (bias-corrected, like TensorBoard's smoothing); NaNs skipped."""
    import pandas as pd

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or span <= 1:
        return values.copy()
    return pd.Series(values).ewm(span=span, adjust=True, ignore_na=True).mean().to_numpy()


def rolling_median(values: np.ndarray, width: int) -> np.ndarray:
    """Centred rolling median (edges use the available points); robust to spikes."""
    import pandas as pd

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or width <= 1:
        return values.copy()
    return (
        pd.Series(values)
        .rolling(window=int(width), center=True, min_periods=1)
        .median()
        .to_numpy()
    )


def noise_sigma(values: np.ndarray) -> float:
    """Point-to-point noise level: MAD of first differences, as a Gaussian sigma per point."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return 0.0
    diffs = np.diff(values)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return mad * MAD_TO_SIGMA / np.sqrt(2.0)


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over x (NaN when undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    x_centred = x - x.mean()
    denominator = float((x_centred**2).sum())
    if denominator == 0.0:
        return float("nan")
    return float((x_centred * (y - y.mean())).sum() / denominator)


def relative_change(start: float, end: float) -> float:
    """(end - start) / |start|, NaN when start is zero or either is not finite."""
    if not (np.isfinite(start) and np.isfinite(end)) or start == 0:
        return float("nan")
    return (end - start) / abs(start)


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest stretch of True in ``mask``; (0, 0) when none."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0, 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[::2], edges[1::2]
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best] - starts[best])
