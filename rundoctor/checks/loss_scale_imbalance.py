"""Loss terms of very different scales: one term drowns the others.

What it detects
---------------
The logged terms of the training loss (``loss_cls``, ``loss_box_reg``, ``train/box_loss``,
...) differ by ``ratio_threshold`` or more (largest over smallest median), or, with three
terms or more, one term is more than ``dominant_share`` of their sum, both at the start
(first ``edge_fraction`` of the run) and at the end (last ``edge_fraction``). A term that
fell ``learned_factor`` or more from its start was driven down by the optimiser: it is
small because it is solved (detectron2's RPN objectness after fine-tuning), not drowned:
it is never the small side (a large term that fell as far still drowns others). Terms
logged twice (Lightning ``_step`` and ``_epoch``) count once. Runs whose terms go negative
(GAN players, Wasserstein critics) are not judged: they are not parts of one sum.

Severity follows the size of the gap: ``ratio_threshold`` (100x) or a dominant term is a
warning; terms ``note_ratio`` (10x) to 100x apart at both ends are an informational note,
since healthy detectors keep their box, objectness and class terms within about 10x (a
single-class YOLOv5 run's class term sits 46x below its box term: nothing to classify).
A term that drowned the others at the start only (``ratio_threshold`` apart, or with three
terms or more over ``dominant_share`` of their sum) and is still the largest, with most of
the sum, at the end is a note too: a box loss in pixels that the optimiser drove down 25x
while the class and DFL terms waited (95% of the sum at the start, 78% at the end); healthy
detectors start with their largest term at 60-80% of the sum.

Noise principle: a term's level is the median of a third of the run, so per-batch spikes
and heavy tails do not set it, and the ratio must hold at the start and at the end.

Why it matters
--------------
The gradient of a sum is dominated by its largest terms.  A term a hundred times smaller
than the others barely steers the weights: that head trains slowly or not at all while its
metric stalls, and the loss weights in the config are what decides it, not the data.

What to try
-----------
Rescale the terms: set the loss weights so that the terms are of similar size early in
training (or normalise each by its initial value), use uncertainty weighting or GradNorm
for many tasks, and check that a term is not summed where it should be averaged (over
pixels, anchors or tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor import roles
from rundoctor.checks import measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``loss-scale-imbalance``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    # Two orders of magnitude.  Healthy real runs span 1.4x (YOLOv8) to 46x (YOLOv5 cls
    # against box) and 83x over the 80 terms of a Co-DETR (R45).
    ratio_threshold: float = field(
        default=100.0, metadata={"help": "Largest over smallest term median that counts as imbalanced."}
    )
    # 90%: the largest term of healthy real runs is at most 71% of the sum (R18).
    dominant_share: float = field(
        default=0.9, metadata={"help": "Share of the summed terms that makes one term dominant."}
    )
    # 10x: terms of healthy runs fall 1.2-3x over training; detectron2's RPN objectness falls
    # 27x (R07) because it is solved, not drowned.
    learned_factor: float = field(
        default=10.0, metadata={"help": "Fall from start to end that marks a term as learned (never the small side)."}
    )
    # 10x: YOLO's box, objectness, class and DFL terms sit within about 10x of each other.
    note_ratio: float = field(
        default=10.0, metadata={"help": "Largest over smallest term median reported as a note (info)."}
    )
    edge_fraction: float = field(
        default=1 / 3, metadata={"help": "Share of the run whose median is a term's start or end level."}
    )
    min_points: int = field(default=5, metadata={"help": "Fewest finite points of a term to judge it."})


@dataclass(frozen=True)
class Term:
    """One loss term: its tag and the medians of its first and last points, in the term's units."""

    tag: str
    start: float
    end: float


def terms(ctx: RunContext, params: Params) -> list[Term] | None:
    """Start and end levels of the non-negative loss terms, one per name; None when signed."""
    # Lightning logs a term twice (_step, _epoch): the densest, the first on ties
    groups = roles.series_groups(ctx.tags(Role.LOSS_COMPONENT))
    densest = [max(group, key=lambda tag: len(ctx.curve(tag))) for group in groups]
    found = []
    for tag in densest:
        values = ctx.curve(tag).finite.values
        if values.size < params.min_points:
            continue
        if values.min() < 0:
            return None
        start, end = measures.edge_levels(values, params.edge_fraction)
        found.append(Term(tag, start, end))
    return found


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding: a loss term drowned by the others; terms that fell by
    ``learned_factor`` are solved, never the drowned one."""
    found = terms(ctx, params)
    if not found:
        return
    judged = [t for t in found if t.start > 0 and t.end > 0]
    # A term that fell learned_factor is small because it is solved: never the drowned one,
    # but a large term that fell as far (a box loss in pixels) still drowns the others.
    learned = [t.tag for t in judged if t.end * params.learned_factor <= t.start]
    candidates = [i for i, t in enumerate(judged) if t.tag not in learned]
    if len(judged) < 2 or not candidates:
        return
    start = np.array([t.start for t in judged])
    end = np.array([t.end for t in judged])
    big = int(np.argmax(end))
    small = min(candidates, key=lambda i: end[i])
    if small == big:
        return
    ratio_end, ratio_start = end[big] / end[small], start.max() / start[small]
    share_end, share_start = end[big] / end.sum(), start[big] / start.sum()
    spread = ratio_end >= params.ratio_threshold and ratio_start >= params.ratio_threshold
    # With two terms a share is the ratio restated (90% is 9x): the ratio alone judges them.
    dominant = len(judged) > 2 and share_end > params.dominant_share and share_start > params.dominant_share
    noted = ratio_end >= params.note_ratio and ratio_start >= params.note_ratio
    # Drowning at the start: the optimiser first works on the large term alone.  Once it has
    # driven that term down the others may catch up, so unless the imbalance holds at the end
    # too it is a note; the term must still be the largest, with most of the sum, at the end.
    early = (
        int(np.argmax(start)) == big
        and share_end > 0.5
        and (ratio_start >= params.ratio_threshold or (len(judged) > 2 and share_start > params.dominant_share))
    )
    if not (spread or dominant or noted or early):
        return
    severity = Severity.WARNING if spread or dominant else Severity.INFO
    early = early and not (spread or dominant or noted)
    spread = not early and (spread or not dominant)
    run_steps = [ctx.curve(t.tag).steps for t in judged]
    first, last = min(s[0] for s in run_steps), max(s[-1] for s in run_steps)
    largest, smallest = judged[big], judged[small]
    tags = [largest.tag, smallest.tag] if spread else [t.tag for t in sorted(judged, key=lambda t: -t.end)]
    if spread:
        message = (
            f"loss term {smallest.tag} is {ratio_end:,.0f}x smaller than {largest.tag} (medians "
            f"{fmt(smallest.end)} vs {fmt(largest.end)} at the end, {ratio_start:,.0f}x at the start; "
            f"threshold {params.ratio_threshold:g}x"
            + (f", noted from {params.note_ratio:g}x)" if severity is Severity.INFO else ")")
        )
    elif early:
        message = (
            f"loss term {largest.tag} was {share_start:.0%} of the summed loss terms at the start "
            f"({ratio_start:,.0f}x {smallest.tag}) and is still {share_end:.0%} at the end: it "
            f"drowned the others while they should have been learning (a warning needs "
            f"{params.dominant_share:.0%} or {params.ratio_threshold:g}x at both ends)"
        )
    else:
        message = (
            f"loss term {largest.tag} is {share_end:.0%} of the summed loss terms at the end and "
            f"{share_start:.0%} at the start (threshold {params.dominant_share:.0%})"
        )
    yield check.finding(
        ctx,
        tags=tags,
        steps=(first, last),
        message=message,
        evidence={
            "largest_term": largest.tag,
            "smallest_term": smallest.tag,
            "ratio_end": round(float(ratio_end), 3),
            "ratio_start": round(float(ratio_start), 3),
            "largest_share_end": round(float(share_end), 4),
            "largest_share_start": round(float(share_start), 4),
            "term_medians_end": {t.tag: t.end for t in judged},
            "term_medians_start": {t.tag: t.start for t in judged},
            "learned_terms_left_out": learned,
            "ratio_threshold": params.ratio_threshold,
            "note_ratio": params.note_ratio,
            "dominant_share": params.dominant_share,
        },
        severity=severity,
        # Loss values are not gradients: a small term can still have large gradients.
        confidence=Confidence.MEDIUM if severity is Severity.WARNING else Confidence.LOW,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss term a thousand times smaller than its sibling (loss_cls is about 2 to 6)."""
    steps = np.arange(50, 15050, 50)
    return steps, 0.002 + 0.0001 * np.exp(-steps / 4000.0)


CHECK = Check(
    code="T001",
    name="loss-scale-imbalance",
    title="Loss terms of very different scales",
    severity=Severity.WARNING,
    needs=(Role.LOSS_COMPONENT,),
    params=Params,
    advice=(
        "Set the loss weights so the terms are of similar size early in training (or normalise each by "
        "its initial value); for many tasks try uncertainty weighting or GradNorm."
    ),
    detect=detect,
    doc=__doc__,
    example=_example,
)
