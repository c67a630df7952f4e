"""Line charts as inline SVG text, written with numpy and string formatting only.

A chart is one panel of a run (see :mod:`rundoctor.reporters.panels`): its curves, the grid
and tick labels, the step range of every finding about it shaded and numbered, and red ticks
under the x axis at the steps where a curve is NaN or infinite.  A panel offered on a log
scale carries a linear and a log version of its y axis and curves; the page's stylesheet
shows one of them, so the toggle needs no script.  Presentation (colours, fonts) lives in
that stylesheet (the page's, and :data:`CHART_STYLE` for what only charts use): the markup
holds only geometry and class names, which keeps it small.

A panel's zooms (:class:`rundoctor.reporters.panels.Zoom`) are drawn in rows under its plot,
inside the same SVG: each a small plot of its own, with the findings' bands and numbers, and
the stretch it magnifies outlined on the plot above.  Points a restart overwrote are a dashed
line in the colour of their curve.

Coordinates are written in tenths of a pixel and curves as relative moves, the shortest
form that stays exact to the tenth: a sweep of hundreds of runs stays a few megabytes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np

from rundoctor.findings import Severity
from rundoctor.reporters.escape import html_text
from rundoctor.reporters.panels import (
    DOTS_UP_TO,
    OVERWRITTEN_NOTE,
    SERIES_COLORS,
    ZOOM_EDGE_COLOR,
    Line,
    Panel,
    Trace,
    Zoom,
    overlap,
    zoom_cells,
    zoom_rows,
)
from rundoctor.reporters.sparkline import MIN_RELATIVE_SPAN

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 58.0, 622.0, 8.0, 196.0  # the plot area; room on the right for a centred last label
NON_FINITE_TICK = 8.0  # length of the mark under the x axis at a NaN or infinite point
MIN_SHADE_WIDTH = 3.0  # a finding about one step still shows as a visible band
LABEL_ROWS = 3  # finding numbers stack in this many rows so neighbouring ranges stay legible
Y_TICKS, X_TICKS = 5, 7  # how many tick labels to aim for
PAD = 0.05  # headroom above and below the curves, as a fraction of their range
SAFE = 1e300  # values are clipped to +-SAFE for drawing so that differences cannot overflow
# A row of zooms under a plot: room above each for its caption, below for its tick labels.
ZOOM_HEIGHT = 150.0
ZOOM_TOP, ZOOM_BOTTOM = 24.0, 24.0
ZOOM_Y_TICKS = 4
ZOOM_X_TICKS = 4  # per zoom in a full row; a zoom alone in its row gets X_TICKS

# Chart rules the page's stylesheet includes: zooms and overwritten points.
CHART_STYLE = (
    f".chart .zoom-window{{fill:none;stroke:{ZOOM_EDGE_COLOR};stroke-dasharray:3 3}}"
    ".chart .zoom-title{fill:#374151;font-size:11px}"
    ".chart .line.overwritten{stroke-dasharray:4 3;stroke-opacity:.6}"
)


@dataclass(frozen=True)
class Frame:
    """A plot area inside a chart, in pixels: the main plot's, or a zoom's."""

    left: float
    right: float
    top: float
    bottom: float


MAIN = Frame(LEFT, RIGHT, TOP, BOTTOM)


@dataclass(frozen=True)
class Shade:
    """A finding's step range on a chart."""

    finding_id: str  # id of the finding's element in the page
    label: str  # its number within the run, drawn at the top of the band
    severity: Severity
    steps: tuple[int, int]  # already clipped to the panel's step range
    title: str  # tooltip


@dataclass(frozen=True)
class Scale:
    """A linear or log map from data to pixels."""

    low: float
    high: float
    start: float
    end: float
    log: bool = False

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Pixel positions of ``values``; on a linear scale values are clipped first, so an infinity
        stays drawable.  A log scale needs positive values."""
        if self.log:
            data, low, high = np.log10(values), math.log10(self.low), math.log10(self.high)
        else:
            data, low, high = np.clip(values, -SAFE, SAFE), self.low, self.high
        return np.asarray(self.start + (data - low) / (high - low) * (self.end - self.start), dtype=np.float64)


def chart(panel: Panel, shades: Sequence[Shade], title: str, element_id: str) -> str:
    """The SVG of one panel, its zooms in rows under it; ``data-steps`` and ``data-x`` (on the
    chart, and on each zoom's group) let a reader map pixels to steps."""
    steps = _x_range(panel.step_range)
    x = _x_scale(steps, MAIN)
    height = HEIGHT + zoom_rows(len(panel.zooms)) * ZOOM_HEIGHT
    parts = [
        (
            f'<svg class="chart" id="{html_text(element_id)}" viewBox="0 0 {WIDTH} {_px(height)}" role="img" '
            f'data-steps="{steps[0]} {steps[1]}" data-x="{_px(LEFT)} {_px(RIGHT)}">'
        ),
        f"<title>{html_text(title)}</title>",
        _plot(panel, panel.traces, shades, x, MAIN, X_TICKS, Y_TICKS, panel.axis.value),
    ]
    if any(trace.overwritten is not None for trace in panel.traces):
        parts.append(f'<text class="axis-name" x="{_px(LEFT)}" y="{_px(HEIGHT - 1)}">{html_text(OVERWRITTEN_NOTE)}</text>')
    parts.extend(_zoom_window(zoom, x) for zoom in panel.zooms)
    parts.extend(
        _zoom(panel, zoom, shades, _zoom_frame(cell), cell[2]) for zoom, cell in zip(panel.zooms, zoom_cells(len(panel.zooms)))
    )
    parts.append("</svg>")
    return "".join(parts)


def _x_range(steps: tuple[int, int]) -> tuple[int, int]:
    """The steps an x axis spans: a single step sits in the middle of three."""
    low, high = steps
    return (low - 1, high + 1) if low == high else (low, high)


def _x_scale(steps: tuple[int, int], frame: Frame) -> Scale:
    low, high = steps
    return Scale(float(low), float(high), frame.left, frame.right)


def _plot(
    panel: Panel, traces: Sequence[Trace], shades: Sequence[Shade], x: Scale, frame: Frame, x_ticks: int,
    y_ticks: int, axis_name: str | None,
) -> str:
    """One plot area: its bands, grid, ticks, curves, NaN marks and band numbers."""
    parts = [
        (
            f'<rect class="area" x="{_px(frame.left)}" y="{_px(frame.top)}" width="{_px(frame.right - frame.left)}" '
            f'height="{_px(frame.bottom - frame.top)}"/>'
        ),
    ]
    bands = [_band(shade, x, frame) for shade in shades]
    parts.extend(band for band, _ in bands)
    parts.append(_x_axis(x, frame, x_ticks, axis_name))
    values = [line.values for line in _lines(traces)]
    linear = _curves(traces, x, _linear_scale(values, frame), frame, y_ticks)
    if _log_view(panel, traces):
        parts.append(f'<g class="lin">{linear}</g>')
        parts.append(f'<g class="log">{_curves(traces, x, _log_scale(values, frame), frame, y_ticks)}</g>')
    else:
        parts.append(linear)
    parts.extend(_non_finite_marks(trace, x, frame, panel.axis.value) for trace in traces if trace.non_finite)
    parts.append(f'<path class="axis" d="M{_px(frame.left)} {_px(frame.bottom)}H{_px(frame.right)}"/>')
    parts.extend(
        f'<text class="band-label sev-{shade.severity.value}" x="{_px(left + 3)}" '
        f'y="{_px(frame.top + 12 + 13 * (index % LABEL_ROWS))}">{html_text(shade.label)}</text>'
        for index, (shade, (_, left)) in enumerate(zip(shades, bands, strict=True))
    )
    return "".join(parts)


def _lines(traces: Sequence[Trace]) -> list[Trace | Line]:
    """Every line drawn for ``traces``: each curve, and the points a restart overwrote."""
    return [*traces, *(trace.overwritten for trace in traces if trace.overwritten is not None)]


def has_log_view(panel: Panel) -> bool:
    """Panels of a log-scale unit with positive values get a log view (values <= 0 are left out of it)."""
    return _log_view(panel, panel.traces)


def _log_view(panel: Panel, traces: Sequence[Trace]) -> bool:
    """Whether ``traces`` (the panel's, or a zoom's) are drawn on a log scale too."""
    return panel.log_scale and any(bool((line.values > 0).any()) for line in _lines(traces))


def _zoom_frame(cell: tuple[int, int, int]) -> Frame:
    """The plot area of the zoom in ``cell`` (row, column, zooms in the row): the main plot's margins
    in its share of the width."""
    row, column, columns = cell
    width = WIDTH / columns
    top = HEIGHT + row * ZOOM_HEIGHT
    return Frame(column * width + LEFT, (column + 1) * width - (WIDTH - RIGHT), top + ZOOM_TOP, top + ZOOM_HEIGHT - ZOOM_BOTTOM)


def _zoom_window(zoom: Zoom, x: Scale) -> str:
    """The dashed outline, on the main plot, of the stretch a zoom magnifies."""
    left, right = _columns(zoom.steps, x)
    return (
        f'<rect class="zoom-window" x="{_px(left)}" y="{_px(TOP)}" width="{_px(right - left)}" '
        f'height="{_px(BOTTOM - TOP)}"/>'
    )


def _zoom(panel: Panel, zoom: Zoom, shades: Sequence[Shade], frame: Frame, columns: int) -> str:
    """A zoom: its caption (numbered like the findings it holds) over a plot of its stretch."""
    steps = _x_range(zoom.steps)
    x = _x_scale(steps, frame)
    inside = [
        dataclasses.replace(shade, steps=part)
        for shade in shades
        if (part := overlap(shade.steps, zoom.steps)) is not None
    ]
    caption = zoom.caption([shade.label for shade in shades if zoom.holds(shade.steps)], panel.axis)
    x_ticks = X_TICKS if columns == 1 else ZOOM_X_TICKS
    return (
        f'<g class="zoom" data-steps="{steps[0]} {steps[1]}" data-x="{_px(frame.left)} {_px(frame.right)}">'
        f'<text class="zoom-title" x="{_px(frame.left)}" y="{_px(frame.top - 8)}">{html_text(caption)}</text>'
        f"{_plot(panel, zoom.traces, inside, x, frame, x_ticks, ZOOM_Y_TICKS, None)}</g>"
    )


def _band(shade: Shade, x: Scale, frame: Frame) -> tuple[str, float]:
    """The shaded rectangle of a finding, and its left edge for the label."""
    left, right = _columns(shade.steps, x)
    rect = (
        f'<rect class="band sev-{shade.severity.value}" data-finding="{html_text(shade.finding_id)}" '
        f'x="{_px(left)}" y="{_px(frame.top)}" width="{_px(right - left)}" height="{_px(frame.bottom - frame.top)}">'
        f"<title>{html_text(shade.title)}</title></rect>"
    )
    return rect, left


def _columns(steps: tuple[int, int], x: Scale) -> tuple[float, float]:
    """Left and right pixel of a step range, at least MIN_SHADE_WIDTH apart so one step still shows."""
    left, right = (float(v) for v in x(np.array(steps, dtype=np.float64)))
    if right - left < MIN_SHADE_WIDTH:
        middle = (left + right) / 2
        left, right = middle - MIN_SHADE_WIDTH / 2, middle + MIN_SHADE_WIDTH / 2
    return left, right


def _x_axis(x: Scale, frame: Frame, count: int, axis_name: str | None) -> str:
    ticks, _ = nice_ticks(x.low, x.high, count, integer=True)
    pixels = x(ticks)
    grid = "".join(f"M{_px(p)} {_px(frame.top)}V{_px(frame.bottom)}" for p in pixels)
    labels = "".join(
        f'<text class="tick" x="{_px(p)}" y="{_px(frame.bottom + 15)}" text-anchor="middle">{label}</text>'
        for p, label in zip(pixels.tolist(), step_labels(ticks), strict=True)
    )
    name = (
        f'<text class="axis-name" x="{_px(frame.right)}" y="{_px(HEIGHT - 1)}" text-anchor="end">{axis_name}</text>'
        if axis_name is not None else ""
    )
    return f'<path class="grid" d="{grid}"/>{labels}{name}'


def _linear_scale(values: Sequence[np.ndarray], frame: Frame) -> Scale:
    finite = np.clip(np.concatenate(values), -SAFE, SAFE) if values else np.empty(0)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    least = MIN_RELATIVE_SPAN * max(abs(low), abs(high)) or 1.0
    if high - low < least:  # centre a nearly flat curve on a span of MIN_RELATIVE_SPAN
        middle = low / 2 + high / 2
        low, high = middle - least / 2, middle + least / 2
    pad = (high - low) * PAD
    return Scale(low - pad, high + pad, frame.bottom, frame.top)


def _log_scale(values: Sequence[np.ndarray], frame: Frame) -> Scale:
    positive = np.concatenate([v[v > 0] for v in values])
    low, high = math.log10(float(positive.min())), math.log10(min(float(positive.max()), SAFE))
    if high - low < 0.1:  # less than a tenth of a decade: show one around it
        low, high = (low + high) / 2 - 0.05, (low + high) / 2 + 0.05
    pad = (high - low) * PAD
    return Scale(10 ** (low - pad), 10 ** (high + pad), frame.bottom, frame.top, log=True)


def _curves(traces: Sequence[Trace], x: Scale, y: Scale, frame: Frame, y_ticks: int) -> str:
    """Grid, y labels and every trace's line (and dots when sparse) on scale ``y``; the points a
    restart overwrote as a dashed line of the trace's colour."""
    ticks, step = log_ticks(y.low, y.high, y_ticks) if y.log else nice_ticks(y.low, y.high, y_ticks)
    pixels = y(ticks)
    grid = "".join(f"M{_px(frame.left)} {_px(p)}H{_px(frame.right)}" for p in pixels)
    labels = "".join(
        f'<text class="tick" x="{_px(frame.left - 6)}" y="{_px(p + 4)}" text-anchor="end">{label}</text>'
        for p, label in zip(pixels.tolist(), value_labels(ticks, step), strict=True)
    )
    parts = [f'<path class="grid" d="{grid}"/>', labels]
    for index, trace in enumerate(traces):
        color = f"c{index % len(SERIES_COLORS)}"
        drawn = _on_scale(trace, x, y)
        if drawn is not None:
            xs, ys, breaks = drawn
            parts.append(f'<path class="line {color}" d="{polyline(xs, ys, breaks)}"/>')
            if trace.points <= DOTS_UP_TO:
                dots = "".join(f"M{_px(px)} {_px(py)}h0" for px, py in zip(xs.tolist(), ys.tolist(), strict=True))
                parts.append(f'<path class="dots {color}" d="{dots}"/>')
        overwritten = None if trace.overwritten is None else _on_scale(trace.overwritten, x, y)
        if overwritten is not None and trace.overwritten is not None:
            first, last = int(trace.overwritten.steps.min()), int(trace.overwritten.steps.max())
            title = (
                f"{trace.tag}: {trace.overwritten.points:,} point{'s' if trace.overwritten.points != 1 else ''} "
                f"a later start overwrote (steps {first}..{last})"
            )
            parts.append(
                f'<path class="line overwritten {color}" d="{polyline(*overwritten)}"><title>{html_text(title)}</title></path>'
            )
    return "".join(parts)


def _on_scale(line: Trace | Line, x: Scale, y: Scale) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Pixel positions and breaks of a line's points on ``y``, or None when none can be drawn."""
    steps, values, breaks = line.steps, line.values, line.breaks
    if y.log:  # a value <= 0 has no place on a log axis: leave a gap where it was
        keep = values > 0
        dropped = np.cumsum(~keep)[keep]
        breaks = breaks[keep] | np.diff(dropped, prepend=dropped[:1]).astype(bool)
        steps, values = steps[keep], values[keep]
    if not steps.size:
        return None
    return x(steps.astype(np.float64)), y(values), breaks


def _non_finite_marks(trace: Trace, x: Scale, frame: Frame, axis: str) -> str:
    """Red ticks under the axis, one per pixel column holding a NaN or infinite point."""
    columns = np.unique(np.rint(x(trace.non_finite_steps.astype(np.float64))))
    d = "".join(f"M{_px(c)} {_px(frame.bottom + 1)}v{_px(NON_FINITE_TICK)}" for c in columns.tolist())
    first, last = int(trace.non_finite_steps[0]), int(trace.non_finite_steps[-1])
    where = f"{axis} {first}" if first == last else f"{axis}s {first}..{last}"
    title = f"{trace.tag}: {trace.non_finite:,} NaN or infinite point{'s' if trace.non_finite != 1 else ''} ({where})"
    return f'<path class="non-finite" d="{d}"><title>{html_text(title)}</title></path>'


def polyline(xs: np.ndarray, ys: np.ndarray, breaks: np.ndarray) -> str:
    """Path data through the points, a new subpath at every break; a lone point is a dot."""
    x_tenths = np.rint(xs * 10).astype(np.int64)
    y_tenths = np.rint(ys * 10).astype(np.int64)
    starts = np.flatnonzero(breaks).tolist()
    bounds = [0, *(s for s in starts if s > 0), int(xs.size)]
    pieces = []
    for start, end in pairwise(bounds):
        piece = f"M{_tenths(int(x_tenths[start]))} {_tenths(int(y_tenths[start]))}"
        if end - start == 1:
            pieces.append(piece + "h0")  # drawn as a dot by the round line caps
            continue
        moves = np.column_stack((np.diff(x_tenths[start:end]), np.diff(y_tenths[start:end]))).ravel()
        pieces.append(piece + "l" + " ".join(map(_tenths, moves.tolist())).replace(" -", "-"))
    return "".join(pieces)


@lru_cache(maxsize=65536)
def _tenths(value: int) -> str:
    """A coordinate given in tenths, in its shortest SVG spelling: 12 -> 1.2, -3 -> -.3."""
    whole, tenth = divmod(abs(value), 10)
    text = f"{whole}.{tenth}" if tenth else str(whole)
    if text.startswith("0."):
        text = text[1:]
    return "-" + text if value < 0 else text


def _px(value: float) -> str:
    return _tenths(round(value * 10))


def nice_ticks(low: float, high: float, count: int, *, integer: bool = False) -> tuple[np.ndarray, float]:
    """Round tick values inside [low, high], about ``count`` of them, and their spacing."""
    raw = (high - low) / max(count, 1)
    if not raw > 0 or not math.isfinite(raw):
        return np.array([low]), 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(step, 1.0)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return np.arange(first, last + 1, dtype=np.float64) * step, step


def log_ticks(low: float, high: float, count: int = Y_TICKS) -> tuple[np.ndarray, float]:
    """Powers of ten inside [low, high] (every k-th over many decades, about ``count``); 1-2-5 over few."""
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    if last - first >= 2:
        every = -(-(last - first + 1) // count)
        return 10.0 ** np.arange(first, last + 1, every, dtype=np.float64), 0.0
    candidates = [m * 10.0**e for e in range(first - 1, last + 2) for m in (1.0, 2.0, 5.0)]
    inside = np.array([c for c in candidates if low <= c <= high])
    if inside.size >= 2:
        return inside, 0.0
    return nice_ticks(low, high, count)


def value_labels(ticks: np.ndarray, step: float) -> list[str]:
    """Y tick labels in one notation for the whole axis (``step`` 0: log ticks).

    Plain decimals with as many places as the spacing needs; powers of ten and exponents
    once the values are too large or too small for that to stay short.
    """
    values = ticks.tolist()
    largest = max((abs(v) for v in values), default=0.0)
    smallest = min((abs(v) for v in values if v), default=1.0)
    if largest >= 1e5 or largest < 1e-3 or (step == 0 and smallest < 1e-3):
        return ["0" if v == 0 else _exponent(v) for v in values]
    if step == 0:  # log ticks between 0.001 and 10000: 1-2-5 values read fine as decimals
        return [f"{v:g}" for v in values]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10.0**decimals, 6) % 1:  # 2.5 x 10^k needs one more place
        decimals += 1
    return [f"{v:.{decimals}f}" for v in values]


def step_labels(ticks: np.ndarray) -> list[str]:
    """X tick labels in one unit for the whole axis: 800 1600 2400, or 5k 10k 15k, or 1M 2M."""
    values = ticks.tolist()
    largest = max((abs(v) for v in values), default=0.0)
    if largest >= 1e6:
        return [f"{v / 1e6:g}M" if v else "0" for v in values]
    if largest >= 1e4:
        return [f"{v / 1e3:g}k" if v else "0" for v in values]
    return [f"{v:.0f}" for v in values]


def _exponent(value: float) -> str:
    """``1e-05`` -> ``1e-5``, ``2.50e+06`` -> ``2.5e6``: three significant digits at most."""
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"
