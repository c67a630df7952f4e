"""What a picture of a run shows: which curves share a plot, which findings sit beside it.

The HTML report and ``rundoctor plot`` draw the same panels, so a screenshot pasted into an
issue shows what the report showed.  A run gets its key curves (loss, accuracy-like metric,
learning rate: the densest tag of each role, see :func:`rundoctor.roles.primary`) and every
curve a finding is about; each finding is listed beside the panel of its first curve and its
step range is shaded on every panel holding one of its curves.

Curves are cut down here to at most :data:`MAX_POINTS` points per curve, keeping the lowest
and the highest point of every bucket, so that a three-step spike in a million-step run
survives while the output stays small enough for a sweep of hundreds of runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rundoctor.findings import Finding, Severity
from rundoctor.roles import LOSS_ROLES, Role, primary
from rundoctor.series import Run, XAxis

# Series colours by position in a panel: training first (blue), validation second (orange),
# then hues that stay apart for colour-blind readers.
SERIES_COLORS = ("#2563eb", "#ea580c", "#059669", "#9333ea", "#b45309", "#0891b2", "#db2777", "#4b5563")
SEVERITY_COLORS = {Severity.ERROR: "#dc2626", Severity.WARNING: "#d97706", Severity.INFO: "#0284c7"}
NON_FINITE_COLOR = "#dc2626"

# Said where findings about no scalar curve are listed, in the page and in the PNG alike.
NO_CURVE_NOTE = "These findings are about the log itself or about histograms."

# About one point per horizontal pixel of a plot: more would not show, fewer would smooth.
MAX_POINTS = 500

# Curves with at most this many points also get a dot per point: twenty evaluations should
# read as twenty measurements, not as a smooth line.
DOTS_UP_TO = 60

# A loss panel starts on a log scale when its positive values span this ratio or more:
# below three decades a linear axis shows the shape better; above it (a divergence, a loss
# that falls from 1e3 to 1e-1) everything but the extremes would be flat on a linear axis.
LOG_SCALE_SPAN = 1e3


@dataclass(frozen=True)
class KeyPanel:
    """A panel every run gets when it has the curves: one slot per series, roles by preference."""

    title: str
    slots: tuple[tuple[Role, ...], ...]
    loss: bool = False
    fallback_title: str = ""  # the title when no slot found its first-choice role

    def title_for(self, run: Run, tags: Sequence[str]) -> str:
        """``fallback_title`` when none of ``tags`` has a slot's first-choice role (only loss terms, say),
        else ``title``."""
        preferred = {slot[0] for slot in self.slots}
        if self.fallback_title and not any(run.roles.get(tag) in preferred for tag in tags):
            return self.fallback_title
        return self.title


KEY_PANELS = (
    KeyPanel(
        "Loss",
        ((Role.TRAIN_LOSS, Role.LOSS_COMPONENT), (Role.VAL_LOSS, Role.VAL_LOSS_COMPONENT)),
        loss=True,
        fallback_title="Loss terms",
    ),
    KeyPanel(
        "Accuracy",
        ((Role.TRAIN_ACCURACY, Role.TRAIN_METRIC), (Role.VAL_ACCURACY, Role.VAL_METRIC)),
        fallback_title="Metric",
    ),
    KeyPanel("Learning rate", ((Role.LEARNING_RATE,),)),
)


@dataclass(frozen=True)
class Trace:
    """One curve as drawn: finite points cut down to MAX_POINTS, and where it was not finite."""

    tag: str
    steps: np.ndarray  # int64, ascending: the points kept
    values: np.ndarray  # float64, all finite
    breaks: np.ndarray  # bool per kept point: non-finite points lie between it and the previous
    non_finite_steps: np.ndarray  # int64: steps of NaN/inf points, at most MAX_POINTS distinct
    points: int  # points of the curve (one per step)
    non_finite: int  # how many of them are NaN or infinite


@dataclass(frozen=True)
class Panel:
    """One chart of a run: its curves, and the findings listed beside it or shaded on it."""

    title: str
    traces: tuple[Trace, ...]
    axis: XAxis
    loss: bool  # offered on a log scale
    listed: tuple[Finding, ...]  # findings whose message sits beside this panel
    shaded: tuple[Finding, ...]  # findings whose step range is shaded on this panel

    @cached_property
    def step_range(self) -> tuple[int, int]:
        """First and last step of any point of the panel's curves, finite or not."""
        lows = [int(t.steps[0]) for t in self.traces if t.steps.size]
        lows += [int(t.non_finite_steps[0]) for t in self.traces if t.non_finite_steps.size]
        highs = [int(t.steps[-1]) for t in self.traces if t.steps.size]
        highs += [int(t.non_finite_steps[-1]) for t in self.traces if t.non_finite_steps.size]
        return min(lows), max(highs)

    def positive_span(self) -> float:
        """max / min of the positive values (1 when there are none): how many decades it covers."""
        positive = [t.values[t.values > 0] for t in self.traces]
        joined = np.concatenate(positive) if positive else np.empty(0)
        return float(joined.max() / joined.min()) if joined.size else 1.0

    @property
    def starts_on_log_scale(self) -> bool:
        """True for a loss panel whose positive values span :data:`LOG_SCALE_SPAN` or more; the reader
        can still switch the scale."""
        return self.loss and self.positive_span() >= LOG_SCALE_SPAN


@dataclass(frozen=True)
class Picture:
    """Everything drawn for one run."""

    panels: tuple[Panel, ...]
    unplotted: tuple[Finding, ...]  # findings about no scalar curve (read notes, histograms)


def shaded_range(finding: Finding, step_range: tuple[int, int]) -> tuple[int, int] | None:
    """The finding's steps inside a panel's range (open ends run to the edge), or None."""
    if finding.first_step is None and finding.last_step is None:
        return None
    low, high = step_range
    first = low if finding.first_step is None else min(max(finding.first_step, low), high)
    last = high if finding.last_step is None else min(max(finding.last_step, low), high)
    return first, max(first, last)


def picture(run: Run, findings: Sequence[Finding]) -> Picture:
    """The panels of a run: key curves first, then the other curves findings are about."""
    drawable = set(run.tags)
    groups: list[tuple[str, list[str], bool]] = []  # (title, tags, loss)
    for key in KEY_PANELS:
        tags = _key_tags(run, key)
        if tags:
            groups.append((key.title_for(run, tags), tags, key.loss))
    placed = {tag for _, tags, _ in groups for tag in tags}
    unplotted: list[Finding] = []
    for finding in findings:
        tags = [tag for tag in dict.fromkeys(finding.tags) if tag in drawable]
        if not tags:
            unplotted.append(finding)
            continue
        new = [tag for tag in tags if tag not in placed]
        if new:
            loss = any(run.roles.get(tag) in LOSS_ROLES for tag in new)
            groups.append((", ".join(new), new, loss))
            placed.update(new)
    panels = []
    for title, tags, loss in groups:
        members = set(tags)
        listed = tuple(f for f in findings if _home_tag(f, drawable) in members)
        shaded = tuple(f for f in findings if members.intersection(f.tags))
        traces = tuple(trace(run, tag) for tag in tags)
        panels.append(Panel(title, traces, run.axis_of(tags[0]), loss, listed, shaded))
    return Picture(tuple(panels), tuple(unplotted))


def _key_tags(run: Run, key: KeyPanel) -> list[str]:
    tags: list[str] = []
    for slot in key.slots:
        tag = next((found for role in slot if (found := primary(run, role)) is not None), None)
        if tag is not None and tag not in tags:
            tags.append(tag)
    return tags


def _home_tag(finding: Finding, drawable: set[str]) -> str | None:
    return next((tag for tag in finding.tags if tag in drawable), None)


def trace(run: Run, tag: str, max_points: int = MAX_POINTS) -> Trace:
    """A curve ready to draw: sorted by step (last write wins), cut down, gaps marked."""
    curve = run.curve(tag).by_step
    finite = np.isfinite(curve.values)
    # Segment number of each finite point: how many non-finite points precede it.
    segments = np.cumsum(~finite)[finite]
    steps, values = curve.steps[finite], curve.values[finite]
    keep = extremes(values, max_points)
    kept_segments = segments[keep]
    breaks = np.empty(keep.size, dtype=bool)
    breaks[:1] = False
    breaks[1:] = kept_segments[1:] != kept_segments[:-1]
    return Trace(
        tag=tag,
        steps=steps[keep],
        values=values[keep],
        breaks=breaks,
        non_finite_steps=thin_steps(curve.steps[~finite], max_points),
        points=len(curve),
        non_finite=int((~finite).sum()),
    )


def extremes(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Ascending indices of at most ``max_points`` points: the lowest and highest of each bucket.

    Buckets are runs of consecutive points, so dense stretches of a log keep their detail.
    The lowest and highest of each bucket come from argmin/argmax on a reshaped, padded copy:
    one pass over the data, where sorting by (bucket, value) would cost n log n on curves of
    millions of points.
    """
    n = int(values.size)
    if n <= max_points:
        return np.arange(n)
    size = -(-n // max(max_points // 2, 1))  # points per bucket, rounded up
    buckets = -(-n // size)  # only the last bucket can be short; none is empty
    offsets = np.arange(buckets) * size
    padded = np.full(buckets * size, np.inf)
    padded[:n] = values
    lowest = padded.reshape(buckets, size).argmin(axis=1) + offsets
    padded[n:] = -np.inf
    highest = padded.reshape(buckets, size).argmax(axis=1) + offsets
    return np.unique(np.concatenate((lowest, highest)))


def thin_steps(steps: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most ``max_points`` distinct steps spread over the same range (marks need no more)."""
    if steps.size <= max_points:
        return steps
    low, high = float(steps[0]), float(steps[-1])
    # In floats: (step - low) * max_points can overflow int64 for step counters near 2**63.
    bins = ((steps - low) / max(high - low, 1.0) * (max_points - 1)).astype(np.int64)
    first_in_bin = np.flatnonzero(np.diff(bins, prepend=-1))
    return steps[first_in_bin]

