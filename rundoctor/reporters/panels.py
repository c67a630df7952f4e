"""What a picture of a run shows: which curves share a plot, which findings sit beside it,
which short stretches are drawn again, magnified.

The HTML report and ``rundoctor plot`` draw the same panels, so a screenshot pasted into an
issue shows what the report showed.  A run gets its key curves (loss, accuracy-like metric,
learning rate: the densest tag of each role, see :func:`rundoctor.roles.primary`) and every
curve a finding is about; each finding is listed beside the panel of its first curve and its
step range is shaded on every panel holding one of its curves.

Curves share a plot only when they share a unit (:class:`Unit`) and an x axis: a loss of 0.3
beside an accuracy of 95 (percent) would lie flat along the bottom of an axis the accuracy
stretches.  The unit comes from the tag's role (:mod:`rundoctor.roles`, the one place that
reads tag names) and, for scores, from the values: percent or a fraction, read as the checks
read them (:func:`rundoctor.checks.measures.accuracy_scale`).

Curves are cut down here to at most :data:`MAX_POINTS` points per curve, keeping the lowest
and the highest point of every bucket, so that a three-step spike in a million-step run
survives while the output stays small enough for a sweep of hundreds of runs.  What the cut
cannot keep is the shape of a short stretch: a finding on 1% of a long run would be a band of
a few pixels over a handful of kept points.  Such a finding gets a :class:`Zoom` under its
panel: the stretch with context on both sides, drawn again from the run's own points.

Panels are drawn from a :class:`~rundoctor.summary.RunSummary`, which keeps the curves a
picture can show already reduced (:mod:`rundoctor.summary`): each curve's :class:`Trace`, cut
here from every point, and for zooms every point of a curve of up to 2,000, and of a longer
one the extremes of its buckets and, around each finding's steps, the stretch its zoom can
show at the zoom's resolution.

A run whose steps go back (a restart from a checkpoint, a second start appended to the same
log) is analysed on the last-written point of each step (:attr:`rundoctor.series.Curve.by_step`).
The points a later start overwrote are drawn too, as a line of their own in a distinct style,
when a finding on the panel is about the stretch the restart touched; otherwise the plot shows
what the analysis saw.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from rundoctor.checks.measures import accuracy_scale
from rundoctor.findings import Finding, Severity
from rundoctor.roles import LOSS_ROLES, METRIC_ROLES, Role, lower_is_better
from rundoctor.series import XAxis

if TYPE_CHECKING:
    from rundoctor.summary import Overwritten, RunSummary

# Series colours by position in a panel: training first (blue), validation second (orange),
# then hues that stay apart for colour-blind readers.
SERIES_COLORS = ("#2563eb", "#ea580c", "#059669", "#9333ea", "#b45309", "#0891b2", "#db2777", "#4b5563")
SEVERITY_COLORS = {Severity.ERROR: "#dc2626", Severity.WARNING: "#d97706", Severity.INFO: "#0284c7"}
NON_FINITE_COLOR = "#dc2626"
ZOOM_EDGE_COLOR = "#6b7280"  # the dashed outline, on a panel, of the stretch a zoom magnifies

# Said where findings about no scalar curve are listed, in the page and in the PNG alike.
NO_CURVE_NOTE = "These findings are about the log itself or about histograms."
# Said beside the dashed line of points a restart overwrote, in the page and in the PNG alike.
OVERWRITTEN_NOTE = "dashed: points a later start overwrote"

# About one point per horizontal pixel of a plot: more would not show, fewer would smooth.
MAX_POINTS = 500

# Curves with at most this many points also get a dot per point: twenty evaluations should
# read as twenty measurements, not as a smooth line.
DOTS_UP_TO = 60

# A log-scale panel starts on a log scale when its positive values span this ratio or more:
# below three decades a linear axis shows the shape better; above it (a divergence, a loss
# that falls from 1e3 to 1e-1) everything but the extremes would be flat on a linear axis.
LOG_SCALE_SPAN = 1e3

# A finding whose steps cover less than this fraction of its panel's x range gets a zoom: on
# a plot some 560 pixels wide that is under 28 pixels, where a curve cut to MAX_POINTS keeps
# about 25 of the stretch's points, however many the run logged there.
ZOOM_BELOW = 0.05
# A zoom shows the finding's stretch in its middle half (on each side as much context as half
# the stretch is long) and at least this many points of context on each side, so that a
# one-step spike is seen against its neighbours rather than lost among them.
ZOOM_CONTEXT_POINTS = 10
# A zoom that would magnify less than this adds little the panel does not show.  With the
# context above it also leaves out curves of fewer than about 80 points, whose points the
# panel already draws several pixels apart.
ZOOM_MIN_MAGNIFICATION = 4
# A zoom draws every point of its stretch up to this many per curve, a few per pixel of its
# width: a finding on 1% of a 100k-step run, with its context, is 2,000 points.  Above that
# it keeps the lowest and highest point of buckets of a few points each, which at this width
# draws what every point would.
ZOOM_MAX_POINTS = 2_000
# Zooms per panel, most severe findings first, and how many sit side by side in a row under
# it: each stays wide enough (some 240 pixels) to read its shape and its tick labels.
MAX_ZOOMS = 4
ZOOMS_PER_ROW = 2


class Unit(str, enum.Enum):
    """What a curve's values measure: curves of different units never share a y axis."""

    LOSS = "loss"
    PERCENT = "percent"  # scores in 0..100
    FRACTION = "fraction"  # scores in 0..1, and curves no role names whose values all lie in 0..1
    SCORE = "score"  # other scores: perplexity, WER and other lower-is-better ones, a score above 100
    LEARNING_RATE = "learning rate"
    GRAD_NORM = "gradient norm"
    OTHER = "other"  # counters, and the other curves no role names

    @property
    def log_scale(self) -> bool:
        """Whether its plots offer a log scale: losses, learning rates and gradient norms span decades."""
        return self in _LOG_UNITS


_LOG_UNITS = frozenset({Unit.LOSS, Unit.LEARNING_RATE, Unit.GRAD_NORM})
_ROLE_UNITS = {**dict.fromkeys(LOSS_ROLES, Unit.LOSS), Role.LEARNING_RATE: Unit.LEARNING_RATE,
               Role.GRAD_NORM: Unit.GRAD_NORM}
# Roles whose unit the values tell: an accuracy is logged in 0..1 by one library, 0..100 by another.
_SCORE_ROLES = frozenset({*METRIC_ROLES, Role.CONFIDENCE})


def unit_of_values(role: Role | None, tag: str, finite: np.ndarray) -> Unit:
    """The unit of a tag's curve: from its role, and for scores and curves no role names from its
    finite values (the whole curve's: :mod:`rundoctor.summary` reads it before reducing the curve)."""
    if role is not None and role in _ROLE_UNITS:
        return _ROLE_UNITS[role]
    if role is Role.COUNTER:
        return Unit.OTHER
    fraction = bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0
    if role not in _SCORE_ROLES:  # a tag no role names: a rate in 0..1 (false negatives) is a fraction
        return Unit.FRACTION if fraction else Unit.OTHER
    # A perplexity of 35..62 would pass for percent; no lower-is-better score is one.
    if not finite.size or lower_is_better(tag):
        return Unit.SCORE
    if accuracy_scale(finite) == 100.0:
        return Unit.PERCENT
    return Unit.FRACTION if fraction else Unit.SCORE


def by_unit(run: RunSummary, tags: Sequence[str]) -> list[tuple[Unit, list[str]]]:
    """``tags`` split into groups that can share a plot (one unit, one x axis), in tag order."""
    groups: dict[tuple[Unit, XAxis], list[str]] = {}
    for tag in tags:
        groups.setdefault((run.curves[tag].unit, run.axis_of(tag)), []).append(tag)
    return [(unit, members) for (unit, _), members in groups.items()]


@dataclass(frozen=True)
class KeyPanel:
    """A panel every run gets when it has the curves: one slot per series, roles by preference."""

    title: str
    slots: tuple[tuple[Role, ...], ...]
    fallback_title: str = ""  # the title when no slot found its first-choice role

    def title_for(self, run: RunSummary, tags: Sequence[str]) -> str:
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
class Line:
    """Points drawn as one line: steps ascend within a piece, and the pen lifts at each break."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64, all finite
    breaks: np.ndarray  # bool per point: a new piece starts here
    points: int  # how many points it stands for before the cut to a drawable number


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
    # Set only when a finding on the curve is about its restart: the finite points a later start
    # overwrote, in log order, and the steps the restart touched, from the first overwritten
    # step to the last step of the attempts it cut short (whose tails the analysis may keep).
    overwritten: Line | None = None
    restarted: tuple[int, int] | None = None


@dataclass(frozen=True)
class Zoom:
    """A short stretch of a panel drawn again, magnified, from the run's own points."""

    steps: tuple[int, int]  # first and last step shown
    traces: tuple[Trace, ...]  # the panel's curves in that stretch, in the panel's order (and colours)
    findings: tuple[Finding, ...]  # the findings it was made for

    def holds(self, span: tuple[int, int]) -> bool:
        """Whether a shaded step range lies wholly in the zoom: such findings' numbers label it."""
        return self.steps[0] <= span[0] and span[1] <= self.steps[1]

    def caption(self, labels: Sequence[str], axis: XAxis) -> str:
        """``zoom on 3, 5: steps 49,001..50,998``, the words both renderers put above a zoom."""
        on = f"zoom on {', '.join(labels)}" if labels else "zoom"
        return f"{on}: {axis.value}s {self.steps[0]:,}..{self.steps[1]:,}"


@dataclass(frozen=True)
class Panel:
    """One chart of a run: its curves, and the findings listed beside it or shaded on it."""

    title: str
    traces: tuple[Trace, ...]
    axis: XAxis
    unit: Unit
    listed: tuple[Finding, ...]  # findings whose message sits beside this panel
    shaded: tuple[Finding, ...]  # findings whose step range is shaded on this panel
    zooms: tuple[Zoom, ...] = ()  # short stretches drawn again under it, left to right

    @cached_property
    def step_range(self) -> tuple[int, int]:
        """First and last step of any point of the panel's curves, finite or not."""
        lows = [int(t.steps[0]) for t in self.traces if t.steps.size]
        lows += [int(t.non_finite_steps[0]) for t in self.traces if t.non_finite_steps.size]
        highs = [int(t.steps[-1]) for t in self.traces if t.steps.size]
        highs += [int(t.non_finite_steps[-1]) for t in self.traces if t.non_finite_steps.size]
        return min(lows), max(highs)

    @property
    def log_scale(self) -> bool:
        """Whether the panel's unit offers a log scale (see :attr:`Unit.log_scale`)."""
        return self.unit.log_scale

    def positive_span(self) -> float:
        """max / min of the positive values (1 when there are none): how many decades it covers."""
        positive = [t.values[t.values > 0] for t in self.traces]
        joined = np.concatenate(positive) if positive else np.empty(0)
        return float(joined.max() / joined.min()) if joined.size else 1.0

    @property
    def starts_on_log_scale(self) -> bool:
        """True for a log-scale panel whose positive values span :data:`LOG_SCALE_SPAN` or more; the
        reader can still switch the scale."""
        return self.log_scale and self.positive_span() >= LOG_SCALE_SPAN


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


def overlap(span: tuple[int, int], window: tuple[int, int]) -> tuple[int, int] | None:
    """The part of ``span`` inside ``window``, or None when they do not meet."""
    first, last = max(span[0], window[0]), min(span[1], window[1])
    return (first, last) if first <= last else None


def picture(run: RunSummary, findings: Sequence[Finding]) -> Picture:
    """The panels of a run: key curves first, then the other curves findings are about.  Drawn
    from the curves the summary kept (:func:`rundoctor.summary.summarize` with ``curves=True``)."""
    drawable = set(run.curves)
    groups: list[tuple[str, Unit, list[str]]] = []
    for key in KEY_PANELS:
        tags = [tag for tag in key_tags(run.primary, key) if tag in run.curves]
        if tags:
            title = key.title_for(run, tags)
            parts = by_unit(run, tags)
            groups += [(title if len(parts) == 1 else f"{title}: {', '.join(part)}", unit, part) for unit, part in parts]
    placed = {tag for *_, tags in groups for tag in tags}
    unplotted: list[Finding] = []
    for finding in findings:
        tags = [tag for tag in dict.fromkeys(finding.tags) if tag in drawable]
        if not tags:
            unplotted.append(finding)
            continue
        new = [tag for tag in tags if tag not in placed]
        if new:
            groups += [(", ".join(part), unit, part) for unit, part in by_unit(run, new)]
            placed.update(new)
    panels = tuple(_panel(run, title, unit, tags, findings, drawable) for title, unit, tags in groups)
    return Picture(panels, tuple(unplotted))


def _panel(run: RunSummary, title: str, unit: Unit, tags: list[str], findings: Sequence[Finding], drawable: set[str]) -> Panel:
    members = set(tags)
    listed = tuple(f for f in findings if _home_tag(f, drawable) in members)
    shaded = tuple(f for f in findings if members.intersection(f.tags))
    panel = Panel(title, tuple(run.curves[tag].overview for tag in tags), run.axis_of(tags[0]), unit, listed, shaded)
    spans = [(f, span) for f in shaded if (span := shaded_range(f, panel.step_range)) is not None]
    traces = tuple(_with_restart(run, t, spans) for t in panel.traces)
    panel = dataclasses.replace(panel, traces=traces)
    return dataclasses.replace(panel, zooms=_zooms(run, panel, spans))


def key_tags(primary: Mapping[Role, str], key: KeyPanel) -> list[str]:
    """The curves a key panel draws, given the densest tag of each role a run has: per slot,
    that of the first of its roles the run has (the curves a summary keeps besides those
    findings name)."""
    tags: list[str] = []
    for slot in key.slots:
        tag = next((primary[role] for role in slot if role in primary), None)
        if tag is not None and tag not in tags:
            tags.append(tag)
    return tags


def _home_tag(finding: Finding, drawable: set[str]) -> str | None:
    return next((tag for tag in finding.tags if tag in drawable), None)


def _with_restart(run: RunSummary, drawn: Trace, spans: Sequence[tuple[Finding, tuple[int, int]]]) -> Trace:
    """``drawn`` with the points a restart overwrote when a finding on its curve meets the stretch
    the restart touched; as it is otherwise."""
    named = [span for finding, span in spans if drawn.tag in finding.tags]
    curve = run.curves[drawn.tag]
    restarted = curve.restarted
    if restarted is None or not any(overlap(span, restarted) is not None for span in named):
        return drawn
    return dataclasses.replace(drawn, overwritten=curve.overwritten_overview, restarted=restarted)


def _zooms(run: RunSummary, panel: Panel, spans: Sequence[tuple[Finding, tuple[int, int]]]) -> tuple[Zoom, ...]:
    """A zoom for every finding on a short stretch of a long curve (see :data:`ZOOM_BELOW`);
    findings whose zooms would overlap share one, and the most severe keep theirs when there
    are more than :data:`MAX_ZOOMS`."""
    low, high = panel.step_range
    width = high - low
    windows: list[tuple[tuple[int, int], list[Finding]]] = []
    for finding, span in spans:
        own = [t for t in panel.traces if t.tag in finding.tags]
        points = max(t.points for t in own)
        first, last = _focus(span, own)
        if width <= 0 or last - first >= ZOOM_BELOW * width:
            continue
        pad = zoom_pad(first, last, width, points)
        # At an end of the run the context is on one side only: the stretch keeps its share.
        # (Bounded by the stretch too: near 2**63 a step does not survive the trip through a float.)
        window = (min(max(low, math.floor(first - pad)), first), max(min(high, math.ceil(last + pad)), last))
        if (window[1] - window[0]) * ZOOM_MIN_MAGNIFICATION <= width:
            windows.append((window, [finding]))
    merged: list[tuple[tuple[int, int], list[Finding]]] = []
    for window, made_for in sorted(windows, key=lambda item: item[0]):
        if merged and window[0] <= merged[-1][0][1]:
            previous, joined = merged[-1]
            merged[-1] = ((previous[0], max(previous[1], window[1])), joined + made_for)
        else:
            merged.append((window, made_for))
    if len(merged) > MAX_ZOOMS:
        worst = sorted(range(len(merged)), key=lambda i: -max(f.severity.rank for f in merged[i][1]))
        merged = [merged[i] for i in sorted(worst[:MAX_ZOOMS])]
    return tuple(
        Zoom(window, tuple(_zoomed(run, t, window) for t in panel.traces), tuple(made_for))
        for window, made_for in merged
    )


def zoom_pad(first: int, last: int, width: int, points: int) -> float:
    """The context a zoom shows on each side of the steps ``first..last`` of a panel ``width``
    steps wide whose finding's densest curve has ``points`` points: half the stretch, and at
    least :data:`ZOOM_CONTEXT_POINTS` of those points' average spacing."""
    return max((last - first) / 2, ZOOM_CONTEXT_POINTS * width / max(points - 1, 1))


def _focus(span: tuple[int, int], own: Sequence[Trace]) -> tuple[int, int]:
    """The steps a finding is about, with the stretch a restart touched when it meets it: the
    overwritten points belong in its zoom."""
    first, last = span
    for drawn in own:
        if drawn.overwritten is not None and drawn.restarted is not None and overlap(span, drawn.restarted):
            first, last = min(first, drawn.restarted[0]), max(last, drawn.restarted[1])
    return first, last


def _zoomed(run: RunSummary, drawn: Trace, window: tuple[int, int]) -> Trace:
    """``drawn``'s curve in ``window`` at a zoom's resolution, with overwritten points when the panel has them."""
    curve = run.curves[drawn.tag]
    start, stop = np.searchsorted(curve.steps, window[0], side="left"), np.searchsorted(curve.steps, window[1], side="right")
    zoomed = trace(drawn.tag, curve.steps[start:stop], curve.values[start:stop], ZOOM_MAX_POINTS)
    if drawn.overwritten is None:
        return zoomed
    overwritten = overwritten_line(curve.overwritten, ZOOM_MAX_POINTS, window)
    return dataclasses.replace(zoomed, overwritten=overwritten, restarted=drawn.restarted)


def trace(tag: str, steps: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS) -> Trace:
    """A curve ready to draw from its points by step (the last write of each step, ascending):
    cut down to ``max_points``, gaps marked."""
    finite = np.isfinite(values)
    # Piece number of each finite point: how many non-finite points precede it.
    line = _cut(steps[finite], values[finite], np.cumsum(~finite)[finite], max_points)
    return Trace(
        tag=tag,
        steps=line.steps,
        values=line.values,
        breaks=line.breaks,
        non_finite_steps=thin_steps(steps[~finite], max_points),
        points=int(steps.size),
        non_finite=int((~finite).sum()),
    )


def _cut(steps: np.ndarray, values: np.ndarray, pieces: np.ndarray, max_points: int) -> Line:
    """At most ``max_points`` of the points (see :func:`extremes`), a break wherever the piece changes."""
    keep = extremes(values, max_points)
    kept = pieces[keep]
    breaks = np.zeros(keep.size, dtype=bool)
    breaks[1:] = kept[1:] != kept[:-1]
    return Line(steps[keep], values[keep], breaks, int(steps.size))


def overwritten_line(points: Overwritten | None, max_points: int, window: tuple[int, int] | None = None) -> Line | None:
    """The overwritten points of a curve (:class:`rundoctor.summary.Overwritten`) in ``window``,
    cut down to ``max_points``; None when there are none."""
    if points is None:
        return None
    chosen = np.ones(points.steps.size, dtype=bool)
    if window is not None:
        chosen = (points.steps >= window[0]) & (points.steps <= window[1])
    if not chosen.any():
        return None
    return _cut(points.steps[chosen], points.values[chosen], points.pieces[chosen], max_points)


def zoom_rows(count: int) -> int:
    """Rows of zooms under a panel with ``count`` of them."""
    return -(-count // ZOOMS_PER_ROW)


def zoom_cells(count: int) -> list[tuple[int, int, int]]:
    """(row, column, zooms in that row) of each of ``count`` zooms, left to right: the layout
    both renderers follow."""
    return [
        (index // ZOOMS_PER_ROW, index % ZOOMS_PER_ROW, min(ZOOMS_PER_ROW, count - index // ZOOMS_PER_ROW * ZOOMS_PER_ROW))
        for index in range(count)
    ]


def extremes(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Ascending indices of at most ``max_points`` points: the first and the last, and the lowest
    and highest of each bucket.

    Buckets are runs of consecutive points, so dense stretches of a log keep their detail.
    The ends are kept so that a cut curve spans the steps it spans: a panel's x range, the
    shading of a finding at the last step and a zoom's window are read off them.  The lowest
    and highest of each bucket come from argmin/argmax on a reshaped, padded copy: one pass
    over the data, where sorting by (bucket, value) would cost n log n on curves of millions
    of points.
    """
    n = int(values.size)
    if n <= max_points:
        return np.arange(n)
    size = -(-n // max((max_points - 2) // 2, 1))  # points per bucket, rounded up
    buckets = -(-n // size)  # only the last bucket can be short; none is empty
    offsets = np.arange(buckets) * size
    padded = np.full(buckets * size, np.inf)
    padded[:n] = values
    lowest = padded.reshape(buckets, size).argmin(axis=1) + offsets
    padded[n:] = -np.inf
    highest = padded.reshape(buckets, size).argmax(axis=1) + offsets
    return np.unique(np.concatenate(([0, n - 1], lowest, highest)))


def thin_steps(steps: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most ``max_points`` distinct steps spread over the same range (marks need no more)."""
    if steps.size <= max_points:
        return steps
    low, high = float(steps[0]), float(steps[-1])
    # In floats: (step - low) * max_points can overflow int64 for step counters near 2**63.
    bins = ((steps - low) / max(high - low, 1.0) * (max_points - 1)).astype(np.int64)
    first_in_bin = np.flatnonzero(np.diff(bins, prepend=-1))
    return steps[first_in_bin]
