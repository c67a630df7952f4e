"""Accuracy pinned at a high constant: the majority-class rate of an imbalanced dataset.

What it detects
---------------
An accuracy series that sits at a high constant (at least 0.6, within a half-point band
or its own noise) from its first evaluations through most of the run, the signature of a
model predicting the majority class (a curve that climbed to its plateau learned it).
When per-class or class-balanced metrics are logged (per-class recall or F1, balanced
accuracy, macro averages), they decide: a class whose recall or F1 stays near 0, or a
balanced metric near its chance level (1/C, or 0.5 when C is unknown), confirms it (high
confidence); all classes learned rules it out.  Without them the pinned accuracy alone is
reported with low confidence, unless the loss rose meanwhile (that is overfitting or
divergence, reported elsewhere).

Why it matters
--------------
On imbalanced data a model that always answers the majority class scores the majority
rate: 0.9 accuracy on a 90/10 split means nothing has been learned about the minority
class, which is usually the one that matters (defects, disease, fraud).  Accuracy hides
it; per-class recall shows it.

What to try
-----------
Log per-class recall or balanced accuracy (or macro F1) instead of plain accuracy.
Rebalance: oversample the minority class or undersample the majority, or weight the loss
by inverse class frequency (focal loss for extreme ratios).  Move the decision threshold
(tune it on the validation set).  Check how the data was sampled: a balanced sample of an
unbalanced reality needs a threshold other than 0.5 in deployment, and vice versa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Iterator

import numpy as np

from rundoctor.checks import signal
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES, Role


@dataclass(frozen=True)
class Params:
    min_points: int = field(
        default=5, metadata={"help": "Accuracy points needed before the check judges a curve."}
    )
    smoothing: float = field(
        default=0.05, metadata={"help": "EMA span as a fraction of the accuracy points."}
    )
    flat_tolerance: float = field(
        default=0.005,
        metadata={"help": "Half-width of the band (accuracy units) a pinned curve stays in."},
    )
    min_flat_fraction: float = field(
        default=0.8, metadata={"help": "Share of the run, from its start, the accuracy is pinned."}
    )
    min_level: float = field(
        default=0.6, metadata={"help": "Lowest pinned accuracy read as a majority-class rate."}
    )
    unlearned_score: float = field(
        default=0.05,
        metadata={"help": "A per-class recall or F1 at most this means the class is not learned."},
    )
    balanced_margin: float = field(
        default=0.05,
        metadata={"help": "A balanced metric within this of its chance level is at chance."},
    )
    max_loss_rise: float = field(
        default=0.1,
        metadata={"help": "Without per-class metrics: skip when the loss rose more than this."},
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final share of a per-class curve whose median is judged."}
    )


# Defaults: a majority predictor scores the same accuracy at every evaluation, so a
# half-point band is generous; pinned from the start for 80% of the run separates it from
# a model that learned up to a high plateau (detectors' background accuracy rises from 0.5
# to 0.98 in healthy runs).  Below 0.6 a constant accuracy is not a convincing majority
# rate.  A recall of 0.05 is one minority example in twenty; 0.05 of balanced accuracy is
# beyond evaluation noise for sets of a few hundred examples.

_LOSS_WORDS = re.compile(r"loss|nll|xent|entropy")
_BALANCED_WORDS = re.compile(r"balanced|macro|(^|[^a-z])bal($|[^a-z])")


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    per_class: tuple[list[tuple[str, float]], list[tuple[str, float]]] | None = None
    for tag in ctx.tags(*ACCURACY_ROLES):
        steps, accuracy = signal.accuracy_levels(ctx, tag)
        if accuracy.size < params.min_points:
            continue
        span = signal.window(accuracy.size, params.smoothing)
        tolerance = signal.flat_tolerance(accuracy, span, params.flat_tolerance)
        start = signal.trailing_flat_start(signal.ema(accuracy, span), tolerance)
        run_span = float(steps[-1] - steps[0])
        pinned = float(steps[-1] - steps[start]) if start < steps.size else 0.0
        level = float(np.median(accuracy[start:])) if start < steps.size else float("nan")
        early = float(np.median(accuracy[: signal.window(accuracy.size, 0.05, 1)]))
        if (
            run_span <= 0
            or pinned / run_span < params.min_flat_fraction
            or not level >= params.min_level
            or abs(early - level) > 2.0 * tolerance
        ):
            continue  # too short, too low, or climbed to its level: learned, not pinned
        if per_class is None:
            per_class = _per_class(ctx, params)
        unlearned, learned = per_class
        evidence: dict[str, float | int | str] = {
            "accuracy_tag": tag,
            "pinned_level": level,
            "pinned_band": tolerance,
            "pinned_from_step": int(steps[start]),
            "pinned_fraction": pinned / run_span,
            "early_level": early,
            "threshold_pinned_fraction": params.min_flat_fraction,
            "threshold_min_level": params.min_level,
        }
        head = (
            f"{tag} pinned at {fmt(level, 3)} (±{fmt(tolerance, 2)}) for {pinned / run_span:.0%} "
            f"of the run from step {int(steps[start]):,} (threshold {params.min_flat_fraction:.0%} "
            f"at >= {params.min_level:g}), as a majority-class rate would be"
        )
        if unlearned:
            worst_tag, worst = min(unlearned, key=lambda item: item[1])
            evidence.update(
                unlearned_tags=", ".join(name for name, _ in unlearned),
                worst_class_tag=worst_tag,
                worst_class_score=worst,
            )
            message = (
                f"{head}, and {worst_tag} is at {fmt(worst, 3)}: "
                f"{len(unlearned)} per-class or balanced metric(s) show a class not learned"
            )
            confidence = Confidence.HIGH
        elif learned:
            continue
        else:
            loss = signal.loss_between(ctx, tag, steps[start], steps[-1])
            change = (
                signal.relative_change(*signal.edge_levels(loss[1], 0.1, 1))
                if loss is not None and loss[1].size >= 2
                else float("nan")
            )
            if loss is not None and np.isfinite(change):
                evidence.update(loss_tag=loss[0], loss_change=change)
                if change > params.max_loss_rise:
                    continue
            message = f"{head}; no per-class metric is logged to confirm it"
            confidence = Confidence.LOW
        yield check.finding(
            ctx,
            tags=(tag,),
            steps=(steps[start], steps[-1]),
            message=message,
            evidence=evidence,
            confidence=confidence,
        )


def _per_class(
    ctx: RunContext, params: Params
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(not learned, learned) per-class and balanced metrics with their final medians."""
    balanced_chance = 1.0 / ctx.num_classes.value if ctx.num_classes else 0.5
    unlearned: list[tuple[str, float]] = []
    learned: list[tuple[str, float]] = []
    for tag in ctx.tags(Role.PER_CLASS_METRIC):
        name = tag.lower()
        values = signal.fraction_values(ctx.curve(tag).finite.values)
        if _LOSS_WORDS.search(name) or values.size == 0:
            continue  # a loss misread as a per-class metric, or out of range
        tail = float(np.median(values[-signal.window(values.size, params.tail_fraction, 1) :]))
        if _BALANCED_WORDS.search(name):
            at_chance = tail <= balanced_chance + params.balanced_margin
        else:
            at_chance = tail <= params.unlearned_score
        (unlearned if at_chance else learned).append((tag, tail))
    return unlearned, learned


def _example() -> tuple[np.ndarray, np.ndarray]:
    """Accuracy pinned at 0.9, the majority-class rate, from the first evaluation."""
    steps = np.arange(0, 6000, 100)
    return steps, 0.9 + 0.0005 * np.sin(steps / 100.0)


CHECK = Check(
    code="M004",
    name="class-imbalance",
    title="Accuracy pinned at the majority-class rate",
    severity=Severity.WARNING,
    needs=(ACCURACY_ROLES,),
    params=Params,
    advice=(
        "Log per-class recall or balanced accuracy; rebalance with over-/under-sampling or "
        "class-weighted (or focal) loss; tune the decision threshold on validation data; and "
        "check the sampling: a balanced sample of an unbalanced reality needs a threshold "
        "other than 0.5."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
