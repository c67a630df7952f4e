"""Heat strips: a layer's logged histograms over training, one small picture per layer a finding names.

A strip is the distribution of one histogram tag (a layer's weights, gradients or
activations) over its logged steps: steps run left to right, values bottom to top over the
range the tag ever took, and each cell's shade is the share of that step's mass in that value
band, so a layer whose ReLU outputs collapse to zero shows its mass falling into the bottom
band, a frozen layer a column pattern that never changes, a saturated sigmoid two bright
bands at its bounds.  The HTML report shows one for every histogram tag a finding is about
(at most :data:`MAX_STRIPS` per run), beside the run's curves.

Inline SVG written with numpy and string formatting only, like :mod:`rundoctor.reporters.svg`:
cells are grouped by shade into a few paths, so a strip is a few kilobytes whatever the run's
length (at most :data:`COLUMNS` steps are drawn, evenly spaced).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rundoctor.checks import histograms
from rundoctor.findings import Finding, fmt
from rundoctor.reporters.escape import html_text
from rundoctor.series import Histogram

if TYPE_CHECKING:
    from rundoctor.summary import RunSummary

ROWS = 16  # value bands
COLUMNS = 48  # logged steps drawn, at most
SHADES = 8  # levels of shade, each one path
CELL_H = 5  # pixels; a cell is at least 8 wide, wider when few steps were logged
MIN_WIDTH = 240  # a strip's least width in pixels
MAX_STRIPS = 8  # per run


def heat_strips(run: RunSummary, findings: Sequence[Finding]) -> str:
    """The strips of every histogram tag ``findings`` name, as one HTML block ("" when none);
    drawn from the histograms the summary kept (:func:`strip_columns` of each tag findings name)."""
    named = [tag for finding in findings for tag in finding.tags if run.strips.get(tag)]
    tags = list(dict.fromkeys(named))[:MAX_STRIPS]
    strips = [strip for strip in (_strip(tag, run.strips[tag]) for tag in tags) if strip]
    if not strips:
        return ""
    return ('<div class="panel heat-strips"><div class="plot"><h3>Histograms over training</h3>'
            '<p class="muted">Each strip: logged steps left to right, values bottom to top, darker where more '
            f'of the step\'s values lie.</p>{"".join(strips)}</div></div>')


def strip_columns(items: Sequence[Histogram]) -> list[Histogram]:
    """The histograms a strip draws, by step: the last logged of each step, at most
    :data:`COLUMNS` of them evenly spaced (all a report needs keep of a tag's histograms)."""
    latest = {histogram.step: histogram for histogram in items}
    ordered = [latest[step] for step in sorted(latest)]
    if len(ordered) > COLUMNS:
        picks = np.unique(np.linspace(0, len(ordered) - 1, COLUMNS).round().astype(int))
        ordered = [ordered[index] for index in picks]
    return ordered


def _strip(tag: str, items: Sequence[Histogram]) -> str:
    """One tag's strip, or "" when none of its histograms can be drawn."""
    ordered = strip_columns(items)
    shares = _shares(ordered)
    if shares is None:
        return ""
    grid, low, high = shares
    cell = max(8, MIN_WIDTH // grid.shape[1])
    width, height = grid.shape[1] * cell, ROWS * CELL_H
    levels = np.minimum((grid * SHADES).astype(int), SHADES - 1)
    paths = []
    for level in range(1, SHADES):
        rows, columns = np.nonzero((levels == level) & (grid > 0))
        if rows.size:
            cells = "".join(f"M{c * cell} {(ROWS - 1 - r) * CELL_H}h{cell}v{CELL_H}h-{cell}z"
                            for r, c in zip(rows.tolist(), columns.tolist()))
            paths.append(f'<path d="{cells}" fill="#1d4ed8" fill-opacity="{(level + 1) / SHADES:.3f}"/>')
    first, last = ordered[0].step, ordered[-1].step
    title = f"{tag}: steps {first:,}..{last:,}, values {fmt(low, 3)}..{fmt(high, 3)}"
    return (
        f'<figure class="heat-strip"><figcaption><code>{html_text(tag)}</code> '
        f'<span class="muted">{fmt(low, 3)} .. {fmt(high, 3)}, steps {first:,}..{last:,}</span></figcaption>'
        f'<svg role="img" aria-label="{html_text(title)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}"><title>{html_text(title)}</title><rect width="{width}" height="{height}" fill="#f8fafc"/>'
        f'{"".join(paths)}</svg></figure>'
    )


def _shares(ordered: Sequence[Histogram]) -> tuple[np.ndarray, float, float] | None:
    """(ROWS x columns shares of mass, lowest value, highest value) over the finite range the
    histograms span; None when no histogram is readable or the range is not finite."""
    found = [(histogram, histograms.buckets(histogram)) for histogram in ordered]
    usable = [(histogram, bucket) for histogram, bucket in found if bucket is not None]
    if not usable:
        return None
    low = min(float(bucket.lefts[bucket.counts > 0].min()) for _, bucket in usable)
    high = max(float(bucket.rights[bucket.counts > 0].max()) for _, bucket in usable)
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, ROWS + 1)
    grid = np.zeros((ROWS, len(ordered)))
    for column, histogram in enumerate(ordered):
        share = histograms.cumulative(histogram, edges)
        if share is None:
            continue
        mass = np.diff(share)
        mass[0] += share[0]  # the lowest band holds what sits exactly at the lowest edge
        grid[:, column] = mass / mass.max() if mass.max() > 0 else mass
    return grid, low, high
