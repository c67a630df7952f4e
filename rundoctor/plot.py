"""``rundoctor plot``: one run's picture as a PNG, for pasting into an issue or keeping as a
CI artifact.

The picture is the HTML report's: the same panels (:mod:`rundoctor.reporters.panels`), the
same colours, each finding's step range shaded and numbered on its curves and its message
beside the plot, the same zooms in rows under a panel (laid out by
:func:`~rundoctor.reporters.panels.zoom_cells`), the points a restart overwrote as a dashed
line.  It is drawn with matplotlib's Agg backend through a bare ``Figure`` (no pyplot, so no
global state and no display needed).  matplotlib is the optional extra ``rundoctor[plot]``
and is imported only when a picture is drawn.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rundoctor.findings import Finding
from rundoctor.reporters.escape import visible
from rundoctor.reporters.panels import (
    DOTS_UP_TO,
    NO_CURVE_NOTE,
    NON_FINITE_COLOR,
    SERIES_COLORS,
    SEVERITY_COLORS,
    ZOOM_EDGE_COLOR,
    Line,
    Panel,
    Trace,
    overlap,
    picture,
    shaded_range,
    zoom_cells,
    zoom_rows,
)
from rundoctor.reporters.wording import counts_phrase, step_range
from rundoctor.series import Run
from rundoctor.summary import RunSummary, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

INSTALL_HINT = "rundoctor plot needs matplotlib: install rundoctor[plot] (pip install 'rundoctor[plot]')"

WIDTH_INCHES = 12.0
DPI = 110
PLOT_HEIGHT = 2.6  # inches per panel; a panel grows when its messages need more room
TEXT_WRAP = 74  # characters per line of a message beside a plot at this width
FONT_SIZE = 8.5
LINE_INCHES = FONT_SIZE * 1.45 / 72  # height of one line of message text
TITLE_INCHES = 0.55
LABEL_ROWS = 3  # finding numbers stack in this many rows at the top of a plot
ZOOM_INCHES = 1.75  # per row of zooms under a panel: caption, plot and tick labels
PLOT_LEFT, PLOT_WIDTH = 0.055, 0.52  # of the figure's width: a panel's plot and its zooms' row
ZOOM_GAP = 0.05  # of the figure's width, between zooms side by side: room for tick labels


def require_matplotlib() -> None:
    """Raise ImportError early, before any log is read, when the extra is not installed."""
    import matplotlib  # noqa: F401


def pick_run(runs: Sequence[Run], wanted: str | None) -> Run:
    """The run to draw: the only one, or the one ``--run`` names (its id, or a unique end of it).

    ValueError lists the ids when the choice is missing or ambiguous.
    """
    if wanted is None:
        if len(runs) == 1:
            return runs[0]
        problem, candidates = f"{len(runs)} runs found; choose one with --run", runs
    else:
        exact = [run for run in runs if run.id == wanted]
        matches = exact or [run for run in runs if run.id.endswith("/" + wanted.strip("/"))]
        if len(matches) == 1:
            return matches[0]
        problem = f"--run {wanted!r} matches {len(matches)} runs" if matches else f"no run {wanted!r} here"
        candidates = matches or runs
    listing = "\n".join(f"  {visible(run.id)}" for run in candidates)  # a line each, whatever the names
    raise ValueError(f"{problem}:\n{listing}")


def write_png(run: Run, findings: Sequence[Finding], output: Path) -> int:
    """Draw ``run`` with its findings into ``output``; returns the number of panels drawn.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = summarize(run, findings, curves=True, reduce=False)  # one run: drawn from every point
    drawn = picture(summary, findings)
    numbers = {id(finding): index + 1 for index, finding in enumerate(findings)}
    # The HTML report's order: plots with findings, findings without a plot, then the rest.
    rows: list[tuple[Panel | None, tuple[Finding, ...]]] = [(p, p.listed) for p in drawn.panels if p.listed]
    if drawn.unplotted:
        rows.append((None, drawn.unplotted))
    rows += [(p, ()) for p in drawn.panels if not p.listed]
    heights = [_row_height(listed, panel) for panel, listed in rows]
    total = TITLE_INCHES + sum(heights) if rows else TITLE_INCHES + 0.6
    figure = Figure(figsize=(WIDTH_INCHES, total), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    figure.text(
        0.01, 1 - 0.18 / total, _plain(run.id), fontsize=11, fontweight="bold", va="top", ha="left",
    )
    figure.text(
        0.01, 1 - 0.40 / total, f"{run.format} · {run.points:,} points · {counts_phrase(findings)}",
        fontsize=8.5, color="#6b7280", va="top", ha="left",
    )
    if not rows:
        figure.text(0.01, 0.3 / total, "No loss, metric or learning-rate curve to draw.", fontsize=9)
    top = total - TITLE_INCHES
    for (panel, listed), height in zip(rows, heights, strict=True):
        bottom = top - height
        if panel is not None:
            zooms = zoom_rows(len(panel.zooms)) * ZOOM_INCHES
            axes = figure.add_axes((PLOT_LEFT, (bottom + zooms + 0.45) / total, PLOT_WIDTH, (height - zooms - 0.8) / total))
            _draw_panel(axes, panel, numbers)
            _draw_zooms(figure, panel, numbers, bottom + zooms, total)
        else:
            figure.text(0.055, (top - 0.35) / total, f"No curve to draw. {NO_CURVE_NOTE}",
                        fontsize=FONT_SIZE, color="#6b7280", va="top", ha="left", style="italic")
        _write_findings(figure, summary, listed, numbers, top / total, total)
        top = bottom
    # No "Software" entry: the same run gives the same bytes whatever matplotlib drew it.
    figure.savefig(output, format="png", dpi=DPI, metadata={"Software": None})
    return len(drawn.panels)


def _row_height(listed: Sequence[Finding], panel: Panel | None) -> float:
    """Inches for a panel: the plot's height and its zooms', or more when its messages need it."""
    lines = sum(len(_message_lines(f)) + 1.7 for f in listed)
    text_height = lines * LINE_INCHES + 0.5
    if panel is None:
        return max(0.4, text_height)
    zooms = zoom_rows(len(panel.zooms)) * ZOOM_INCHES
    return max(PLOT_HEIGHT + zooms, text_height)


def _message_lines(finding: Finding) -> list[str]:
    return textwrap.wrap(_plain(finding.message), TEXT_WRAP) or [""]


def _plain(text: str) -> str:
    """Log text as matplotlib draws it literally: neutralised, and ``$`` escaped, which would
    otherwise start mathtext (a tag holding ``$\\frac{$`` must not stop the plot)."""
    return visible(text).replace("$", r"\$")


def _draw_panel(axes: Axes, panel: Panel, numbers: dict[int, int]) -> None:
    _draw(axes, panel, panel.traces, panel.step_range, numbers)
    for zoom in panel.zooms:  # the stretch each zoom magnifies, outlined
        axes.axvspan(*zoom.steps, fill=False, edgecolor=ZOOM_EDGE_COLOR, linestyle=(0, (3, 3)), linewidth=0.8)
    axes.set_title(panel.title, loc="left", fontsize=9.5, fontweight="bold")
    axes.set_xlabel(panel.axis.value, fontsize=8, color="#6b7280", loc="right")
    axes.legend(fontsize=7.5, frameon=False, loc="best")


def _draw_zooms(figure: Any, panel: Panel, numbers: dict[int, int], top: float, total: float) -> None:
    """The panel's zooms in rows under it, ``top`` inches from the bottom of the figure, laid out
    as the HTML report lays them out."""
    spans = {id(f): span for f in panel.shaded if (span := shaded_range(f, panel.step_range)) is not None}
    for zoom, (row, column, columns) in zip(panel.zooms, zoom_cells(len(panel.zooms))):
        width = (PLOT_WIDTH - ZOOM_GAP * (columns - 1)) / columns
        bottom = top - (row + 1) * ZOOM_INCHES + 0.35
        axes = figure.add_axes((PLOT_LEFT + column * (width + ZOOM_GAP), bottom / total, width, (ZOOM_INCHES - 0.7) / total))
        _draw(axes, panel, zoom.traces, zoom.steps, numbers)
        labels = [str(numbers[id(f)]) for f in panel.shaded if id(f) in spans and zoom.holds(spans[id(f)])]
        axes.set_title(zoom.caption(labels, panel.axis), loc="left", fontsize=8, color="#374151")


def _draw(axes: Axes, panel: Panel, traces: Sequence[Trace], steps: tuple[int, int], numbers: dict[int, int]) -> None:
    """Curves, NaN marks and the shaded, numbered findings of ``panel`` over ``steps``: the panel
    itself or one of its zooms."""
    for index, trace in enumerate(traces):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        marker = "o" if trace.points <= DOTS_UP_TO else None
        axes.plot(*_with_gaps(trace), color=color, linewidth=1.3, marker=marker, markersize=2.5, label=_plain(trace.tag))
        if trace.overwritten is not None:
            axes.plot(*_with_gaps(trace.overwritten), color=color, linewidth=1.3, linestyle=(0, (4, 3)), alpha=0.6,
                      label=f"{_plain(trace.tag)}: {trace.overwritten.points:,} points a later start overwrote")
        if trace.non_finite:
            axes.plot(
                trace.non_finite_steps, np.zeros(trace.non_finite_steps.size), linestyle="none", marker="|",
                markersize=9, color=NON_FINITE_COLOR, transform=axes.get_xaxis_transform(), clip_on=False,
                label=f"{_plain(trace.tag)}: {trace.non_finite:,} NaN/inf",
            )
    row = 0
    for finding in panel.shaded:
        whole = shaded_range(finding, panel.step_range)
        span = None if whole is None else overlap(whole, steps)
        if span is None:
            continue
        color = SEVERITY_COLORS[finding.severity]
        if span[0] == span[1]:
            axes.axvline(span[0], color=color, alpha=0.5, linewidth=2)
        else:
            axes.axvspan(span[0], span[1], color=color, alpha=0.07, linewidth=0)
            for edge in span:
                axes.axvline(edge, color=color, alpha=0.45, linewidth=0.8)
        axes.text(
            span[0], 0.97 - 0.09 * (row % LABEL_ROWS), f" {numbers[id(finding)]}", color=color,
            fontsize=8, fontweight="bold", va="top", ha="left", transform=axes.get_xaxis_transform(),
        )
        row += 1
    if panel.starts_on_log_scale and any(bool((t.values > 0).any()) for t in traces):
        axes.set_yscale("log", nonpositive="mask")
    low, high = steps
    if low == high:
        low, high = low - 1, high + 1
    axes.set_xlim(low, high)
    axes.tick_params(labelsize=7.5, colors="#4b5563")
    axes.grid(color="#eef0f3", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _with_gaps(line: Trace | Line) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values with a NaN before every break, where matplotlib lifts the pen."""
    at = np.flatnonzero(line.breaks)
    steps = np.insert(line.steps.astype(np.float64), at, np.nan)
    values = np.insert(line.values, at, np.nan)
    return steps, values


def _write_findings(
    figure: Any, run: RunSummary, listed: Sequence[Finding], numbers: dict[int, int], top: float, total: float
) -> None:
    """The numbered findings beside their plot: header line in the severity's colour, then the message."""
    y = top - 0.35 / total
    for finding in listed:
        color = SEVERITY_COLORS[finding.severity]
        steps = step_range(finding, run)
        header = f"{numbers[id(finding)]}  {finding.severity.value.upper()}  {finding.code} {finding.check}"
        figure.text(0.615, y, header + (f"   {steps}" if steps else ""), color=color, fontsize=FONT_SIZE,
                    fontweight="bold", va="top", ha="left")
        lines = _message_lines(finding)
        figure.text(0.615, y - LINE_INCHES * 1.25 / total, "\n".join(lines), fontsize=FONT_SIZE,
                    color="#111827", va="top", ha="left", linespacing=1.3)
        y -= (len(lines) + 1.7) * LINE_INCHES / total
