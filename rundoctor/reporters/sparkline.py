"""A curve in one line of block characters, with the steps a finding is about marked.

Plain strings only (no rich), so the terminal report and ``rundoctor explain`` share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rundoctor.findings import fmt

BARS = "▁▂▃▄▅▆▇█"
NON_FINITE = "×"
MARK = "^"
# The bars never stretch less than 5% of the curve's magnitude over their eight levels: a loss
# that wanders 0.4% around ln C is flat, and stretching its noise to full height would draw
# a stalled run as wild swings next to a message saying it never moved.
MIN_RELATIVE_SPAN = 0.05


@dataclass(frozen=True)
class Sparkline:
    """A curve as one line of block characters for a terminal, with a step range marked under it
    (:attr:`marks`)."""

    bars: str  # one character per column
    region: tuple[int, int] | None  # first and last column (inclusive) of the marked steps
    low: float  # the finite value range the bars span; NaN when nothing is finite
    high: float

    @property
    def marks(self) -> str:
        """MARK under the region's columns, spaces elsewhere, no trailing spaces."""
        if self.region is None:
            return ""
        first, last = self.region
        return " " * first + MARK * (last - first + 1)


def sparkline(
    steps: np.ndarray,
    values: np.ndarray,
    width: int,
    region: tuple[int | None, int | None] | None = None,
) -> Sparkline:
    """Draw ``values`` (at ``steps``) in at most ``width`` columns, one per point if fewer.

    Points are bucketed by index, so every column holds points even when logging is uneven.
    A column shows the extreme of its bucket furthest from the curve's median: a three-point
    spike in a million-point curve still reaches full height, where a mean would hide it.
    A bucket holding any NaN or infinity draws as NON_FINITE for the same reason.
    ``region`` is a (first, last) step range; None at either end means open.
    """
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if steps.size > 1 and not bool(np.all(steps[1:] >= steps[:-1])):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
    n = int(values.size)
    if n == 0 or width < 1:
        return Sparkline("", None, float("nan"), float("nan"))
    columns = min(width, n)
    # Integer edges: strictly increasing because n >= columns, so no bucket is empty.
    edges = np.arange(columns + 1, dtype=np.int64) * n // columns
    starts = edges[:-1]
    finite = np.isfinite(values)
    any_non_finite = np.logical_or.reduceat(~finite, starts)
    highest = np.maximum.reduceat(np.where(finite, values, -np.inf), starts)
    lowest = np.minimum.reduceat(np.where(finite, values, np.inf), starts)
    median = float(np.median(values[finite])) if finite.any() else 0.0
    shown = np.where(highest / 2 - median / 2 > median / 2 - lowest / 2, highest, lowest)
    drawable = ~any_non_finite
    if drawable.any():
        low, high = float(shown[drawable].min()), float(shown[drawable].max())
    else:
        low = high = float("nan")
    # Halved values throughout, so that 1e308-scale values cannot overflow a difference.
    bottom, span = low / 2, high / 2 - low / 2
    least_span = MIN_RELATIVE_SPAN * max(abs(low), abs(high)) / 2
    if span < least_span:  # centre a nearly flat curve on a span of MIN_RELATIVE_SPAN
        bottom, span = bottom - (least_span - span) / 2, least_span
    with np.errstate(all="ignore"):  # non-finite buckets give NaN here and draw as NON_FINITE
        scaled = (shown / 2 - bottom) / span if span > 0 else np.full(columns, 0.5)
    levels = np.clip(np.nan_to_num(scaled * len(BARS), nan=0.0), 0, len(BARS) - 1).astype(np.int64)
    bars = "".join(
        BARS[level] if ok else NON_FINITE
        for level, ok in zip(levels.tolist(), drawable.tolist(), strict=True)
    )
    return Sparkline(bars, _region_columns(steps, edges, region), low, high)


def _region_columns(
    steps: np.ndarray, edges: np.ndarray, region: tuple[int | None, int | None] | None
) -> tuple[int, int] | None:
    if region is None or (region[0] is None and region[1] is None):
        return None
    first, last = region
    n = steps.size
    first_index = 0 if first is None else int(np.searchsorted(steps, first, side="left"))
    last_index = n - 1 if last is None else int(np.searchsorted(steps, last, side="right")) - 1
    if first_index > last_index:  # no point of this curve inside the range: mark the nearest
        first_index = last_index = min(first_index, n - 1)

    def column(index: int) -> int:
        return int(np.searchsorted(edges, index, side="right")) - 1

    return column(first_index), column(last_index)


def value_range(values: np.ndarray) -> str:
    """The finite range of a curve, e.g. ``0.1..2.1``, for the scale beside its sparkline.

    Three significant digits, more (up to six) when a nearly flat curve needs them to show
    that its ends differ.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "no finite values"
    low, high = float(finite.min()), float(finite.max())
    digits = 3
    while digits < 6 and low != high and fmt(low, digits) == fmt(high, digits):
        digits += 1
    return f"{fmt(low, digits)}..{fmt(high, digits)}"
