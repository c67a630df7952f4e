"""What a report keeps of a run once it is diagnosed: a :class:`RunSummary`.

A run's points are needed while its checks run and its diagnosis is made; after that the
reports read only a little of it: its id, path, format and sources, per tag the point count,
step range, role and axis, its read notes, metadata and hyper-parameters, and how many
histograms each histogram tag logged.  :func:`summarize` keeps that and lets the points go,
so checking a tree of 10,000 runs holds 10,000 summaries, not 10,000 runs: the engine
summarises each run as soon as it is diagnosed, and workers send summaries back, not runs.

Reports that draw curves (the HTML report, ``--verbose`` sparklines, ``rundoctor plot``) also
need the curves, so ``curves=True`` keeps each curve they can draw (the run's key curves and
every curve a finding is about) already reduced for plotting, as a :class:`PlotCurve`: the
trace a panel draws, cut from every point as before (at most
:data:`~rundoctor.reporters.panels.MAX_POINTS` points), and, for zooms and sparklines, points
of the curve:

- a curve of at most :data:`CURVE_POINTS` points keeps every point, so what is drawn from it
  is what the run's own points draw;
- a longer one keeps the first and last point and the lowest and highest of each of
  :data:`CURVE_POINTS` / 2 buckets (a three-step spike in a million-step run survives), and,
  around every finding's steps, the stretch a zoom of the HTML report can show
  (:func:`rundoctor.reporters.panels.zoom_pad`) at the zoom's own resolution: every point up
  to :data:`~rundoctor.reporters.panels.ZOOM_MAX_POINTS`, the extremes of buckets beyond;
- non-finite points are kept where a stretch of them starts and ends, so a line still breaks
  where the run's values were not finite; the counts of points and of non-finite points are
  the whole curve's.

The points a restart overwrote (drawn when a finding is about the restart) are reduced the
same way, and the histograms a heat strip draws are the ones it would pick of the run's.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from rundoctor.findings import Finding
from rundoctor.reporters import heatstrip
from rundoctor.reporters.panels import (
    KEY_PANELS,
    MAX_POINTS,
    ZOOM_MAX_POINTS,
    Line,
    Trace,
    Unit,
    extremes,
    key_tags,
    overwritten_line,
    trace,
    unit_of_values,
    zoom_pad,
)
from rundoctor.roles import Role, primary
from rundoctor.series import Curve, Histogram, ReadNote, Run, XAxis

# Every point of a curve up to this many is kept: four per pixel of a panel (MAX_POINTS is
# one), so the panel's own cut of a longer curve to its buckets' extremes picks nearly the
# points it would pick from the whole curve.
CURVE_POINTS = 2_000


@dataclass(frozen=True, slots=True)
class TagSummary:
    """One tag's inventory: what ``ls`` and the JSON report list of it.

    The runs of a sweep log the same tags over the same steps: :func:`tag_summary` makes one
    record for all the runs whose tag is the same in every field (unpickled the same way, so a
    worker's are shared too), which keeps a report of 10,000 such runs to a few hundred."""

    name: str
    role: Role
    points: int  # as logged, repeats included
    first_step: int
    last_step: int
    axis: XAxis

    def __reduce__(self) -> tuple[Callable[..., TagSummary], tuple[str, Role, int, int, int, XAxis]]:
        return tag_summary, (self.name, self.role, self.points, self.first_step, self.last_step, self.axis)


@functools.lru_cache(maxsize=4096)
def tag_summary(name: str, role: Role, points: int, first_step: int, last_step: int, axis: XAxis) -> TagSummary:
    """The :class:`TagSummary` of these fields, its name interned: the same record for every run
    (of the last 4,096 different ones made)."""
    return TagSummary(sys.intern(name), role, points, first_step, last_step, axis)


@dataclass(frozen=True)
class Overwritten:
    """The finite points of a curve that a later point of the same step replaced (a restart),
    in log order, reduced as the curve is; ``pieces`` numbers the stretches a line is drawn
    through without lifting the pen."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64, all finite
    pieces: np.ndarray  # int64, one per point


@dataclass(frozen=True)
class PlotCurve:
    """A tag's curve as the analysis saw it (by step, the last write of each step), reduced
    for plotting (see the module docstring): ``steps`` and ``values`` for zooms and
    sparklines, and ``overview``, the panel's trace, cut from every point."""

    steps: np.ndarray  # int64, ascending
    values: np.ndarray  # float64, NaN and inf where kept
    overview: Trace  # what a panel draws of the whole curve
    unit: Unit  # read from the whole curve's values
    overwritten: Overwritten | None = None  # reduced, for zooms
    overwritten_overview: Line | None = None  # what a panel draws of them, cut from all of them
    restarted: tuple[int, int] | None = None  # the steps a restart touched, when one overwrote points


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What reports read of a diagnosed run (see the module docstring); ``curves`` and
    ``strips`` are empty unless :func:`summarize` was asked for curves."""

    id: str
    path: str
    format: str
    sources: tuple[str, ...]
    x_axis: XAxis
    points: int
    first_step: int | None  # of any point; None for a run with no point
    last_step: int | None
    tag_summaries: tuple[TagSummary, ...]  # tags with points, in first-logged order
    tag_names: tuple[str, ...]  # every tag name the log used, with points or not
    notes: tuple[ReadNote, ...] = ()
    histogram_counts: Mapping[str, int] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    hparams: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, Role] = field(default_factory=dict)
    primary: Mapping[Role, str] = field(default_factory=dict)  # the densest tag of each role
    curves: Mapping[str, PlotCurve] = field(default_factory=dict)
    strips: Mapping[str, tuple[Histogram, ...]] = field(default_factory=dict)  # what heat strips draw

    @property
    def tags(self) -> list[str]:
        """Tags that have at least one point, in first-logged order."""
        return [tag.name for tag in self.tag_summaries]

    def axis_of(self, tag: str) -> XAxis:
        """What the tag's steps count (the run's axis for a tag it does not know)."""
        return next((summary.axis for summary in self.tag_summaries if summary.name == tag), self.x_axis)


def summarize(run: Run, findings: Sequence[Finding] = (), *, curves: bool = False, reduce: bool = True) -> RunSummary:
    """The run as reports read it after its diagnosis.  ``curves``: keep the curves reports draw
    (its key curves and those ``findings`` are about), reduced around ``findings``' steps unless
    ``reduce`` is False (``rundoctor plot``, which draws one run, keeps every point)."""
    inventory = tuple(_tag_summary(run, tag) for tag in run.tags)
    steps = run.steps
    primaries = {role: sys.intern(tag) for role in dict.fromkeys(run.roles.values())
                 if (tag := primary(run, role)) is not None}
    kept: dict[str, PlotCurve] = {}
    strips: dict[str, tuple[Histogram, ...]] = {}
    if curves:
        named = [tag for finding in findings for tag in finding.tags]
        keys = [tag for key in KEY_PANELS for tag in key_tags(primaries, key)]
        drawn = [tag for tag in dict.fromkeys([*keys, *named]) if run.point_count(tag)]
        raw = {tag: run.curve(tag) for tag in drawn}
        restarts = {tag: _overwritten(curve) for tag, curve in raw.items()}
        regions = _zoom_regions(findings, inventory, raw, restarts) if reduce else None
        for tag, curve in raw.items():
            kept[tag] = _plot_curve(curve, run.roles.get(tag), restarts[tag], regions)
        strips = {tag: tuple(heatstrip.strip_columns(run.histograms[tag])) for tag in dict.fromkeys(named)
                  if run.histograms.get(tag)}
    return RunSummary(
        id=run.id,
        path=run.path,
        format=run.format,
        sources=tuple(run.sources),
        x_axis=run.x_axis,
        points=run.points,
        first_step=int(steps.min()) if steps.size else None,
        last_step=int(steps.max()) if steps.size else None,
        tag_summaries=inventory,
        tag_names=tuple(sys.intern(name) for name in run.tag_names),
        notes=tuple(run.notes),
        histogram_counts=shared({tag: len(items) for tag, items in run.histograms.items()}),
        metadata=shared(run.metadata),
        hparams=shared(run.hparams),
        roles=shared({sys.intern(tag): role for tag, role in run.roles.items()}),
        primary=shared(primaries),
        curves=kept,
        strips=strips,
    )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)


def shared(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """One dictionary for every summary whose mapping is the same (the roles of a sweep's runs,
    their empty metadata): summaries never change their mappings, so they can share them."""
    try:
        return _shared(tuple(mapping.items()))
    except TypeError:  # a value that cannot be hashed: a mapping of this summary's own
        return dict(mapping)


@functools.lru_cache(maxsize=4096)
def _shared(items: tuple[tuple[Any, Any], ...]) -> Mapping[Any, Any]:
    return dict(items)


def _tag_summary(run: Run, tag: str) -> TagSummary:
    steps = run.curve(tag).steps
    return tag_summary(tag, run.roles.get(tag, Role.OTHER), int(steps.size), int(steps.min()), int(steps.max()),
                       run.axis_of(tag))


Regions = Sequence[tuple[int, int]]  # inclusive step ranges kept at a zoom's resolution


def _plot_curve(raw: Curve, role: Role | None, restart: tuple[Overwritten | None, tuple[int, int] | None],
                regions: Regions | None) -> PlotCurve:
    curve = raw.by_step
    keep = np.arange(curve.steps.size) if regions is None else _kept(curve.steps, curve.values, regions)
    overwritten, restarted = restart
    overview = overwritten_line(overwritten, MAX_POINTS)
    if overwritten is not None and regions is not None:
        chosen = _kept(overwritten.steps, overwritten.values, regions)
        overwritten = Overwritten(overwritten.steps[chosen], overwritten.values[chosen], overwritten.pieces[chosen])
    return PlotCurve(
        steps=curve.steps[keep],
        values=curve.values[keep],
        overview=trace(raw.tag, curve.steps, curve.values),
        unit=unit_of_values(role, raw.tag, raw.values[np.isfinite(raw.values)]),
        overwritten=overwritten,
        overwritten_overview=overview,
        restarted=restarted,
    )


def _kept(steps: np.ndarray, values: np.ndarray, regions: Regions) -> np.ndarray:
    """Ascending indices of the points kept: every point of a short curve, else the extremes of
    the whole and of each region (see the module docstring)."""
    if steps.size <= CURVE_POINTS:
        return np.arange(steps.size)
    everywhere = np.arange(steps.size)
    parts = [_extremes_of(everywhere, values, CURVE_POINTS)]
    for first, last in regions:
        inside = np.flatnonzero((steps >= first) & (steps <= last))
        parts.append(_extremes_of(inside, values, ZOOM_MAX_POINTS))
    return np.unique(np.concatenate(parts))


def _extremes_of(index: np.ndarray, values: np.ndarray, budget: int) -> np.ndarray:
    """``index`` when it holds at most ``budget`` points; else its finite points' extremes
    (:func:`~rundoctor.reporters.panels.extremes`) and the ends of each stretch of non-finite
    ones (at most ``budget`` of those, spread over the stretch)."""
    if index.size <= budget:
        return index
    chosen = values[index]
    finite = np.isfinite(chosen)
    finite_index = index[finite]
    kept = finite_index[extremes(chosen[finite], budget)]
    bad = index[~finite]
    if bad.size:
        # A stretch of non-finite points starts where the previous point was finite.
        ends = np.flatnonzero(np.diff(bad) != 1)
        bounds = np.unique(np.concatenate(([0, bad.size - 1], ends, ends + 1)))
        if bounds.size > budget:
            bounds = bounds[np.unique(np.linspace(0, bounds.size - 1, budget).round().astype(np.int64))]
        kept = np.concatenate((kept, bad[bounds]))
    return np.unique(kept)


def _overwritten(raw: Curve) -> tuple[Overwritten | None, tuple[int, int] | None]:
    """The finite points of a curve (in log order) that a later point of the same step replaced,
    the ones :attr:`Curve.by_step` leaves out, and the steps their restart touched: from the
    first overwritten step to the last step of the attempts it cut short."""
    steps = raw.steps
    if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return None, None
    replaced = np.ones(steps.size, dtype=bool)
    _, last_write_reversed = np.unique(steps[::-1], return_index=True)
    replaced[steps.size - 1 - last_write_reversed] = False
    if not replaced.any():  # steps go back but none is written twice: nothing was overwritten
        return None, None
    # A new attempt wherever the step goes back; the restart touched the attempts it overwrote.
    starts = np.concatenate(([0], np.flatnonzero(np.diff(steps) < 0) + 1))
    attempt = np.repeat(np.arange(starts.size), np.diff(np.append(starts, steps.size)))
    cut_short = np.bincount(attempt[replaced], minlength=starts.size) > 0
    restarted = (int(steps[replaced].min()), int(np.maximum.reduceat(steps, starts)[cut_short].max()))
    index = np.flatnonzero(replaced & np.isfinite(raw.values))
    if not index.size:
        return None, restarted
    # A new piece wherever a kept or non-finite point lies between two of them, or the step goes back.
    breaks = (np.diff(index) != 1) | (np.diff(steps[index]) < 0)
    pieces = np.concatenate(([0], np.cumsum(breaks)))
    return Overwritten(steps[index], raw.values[index], pieces), restarted


def _zoom_regions(
    findings: Iterable[Finding],
    inventory: Sequence[TagSummary],
    raw: Mapping[str, Curve],
    restarts: Mapping[str, tuple[Overwritten | None, tuple[int, int] | None]],
) -> list[tuple[int, int]]:
    """Per finding with steps, the widest stretch a zoom on it can show: its steps (with the
    stretch a restart of its curves touched, when they meet), padded as
    :func:`~rundoctor.reporters.panels.zoom_pad` pads them on the widest panel the run's drawn
    curves can make, for the sparsest of the finding's curves."""
    drawn = [tag for tag in inventory if tag.name in raw]
    if not drawn:
        return []
    low, high = min(tag.first_step for tag in drawn), max(tag.last_step for tag in drawn)
    points = {tag: int(curve.by_step.steps.size) for tag, curve in raw.items()}
    regions = []
    for finding in findings:
        if finding.first_step is None and finding.last_step is None:
            continue
        own = [tag for tag in finding.tags if tag in raw]
        if not own:
            continue
        first = low if finding.first_step is None else finding.first_step
        last = high if finding.last_step is None else finding.last_step
        for tag in own:
            touched = restarts[tag][1]
            if touched is not None and touched[0] <= last and first <= touched[1]:
                first, last = min(first, touched[0]), max(last, touched[1])
        pad = zoom_pad(first, last, high - low, min(points[tag] for tag in own))
        regions.append((max(low, math.floor(first - pad)), min(high, math.ceil(last + pad))))
    return regions
