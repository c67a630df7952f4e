"""Accuracy pinned at a high constant: the majority-class rate of an imbalanced dataset.

What it detects
---------------
An accuracy series that sits at a constant level (at least 0.6, within a half-point band
or its own noise) from its first evaluations through most of the run, the signature of a
model predicting the majority class (a curve that climbed to its plateau learned it).  A
pinned accuracy alone is ambiguous (a good model fine-tuned from a good start also starts
high), so the evidence decides the severity:

- per-class or class-balanced metrics, when logged, decide: a class whose recall or F1
  stays near 0, or a balanced metric near its chance level (1/C, or 0.5 when C is
  unknown), confirms it (warning, high confidence); all classes learned rules it out;
- otherwise the loss beside the accuracy: a model that predicts the class prior has a
  cross-entropy equal to the prior's entropy, at least H_min(a), the entropy of the most
  concentrated prior whose majority share is the pinned accuracy a (h(a) for a >= 1/2).
  A loss below ``learned_ratio`` x H_min(a) carries information about the input: not a
  majority predictor, no finding.  A loss at H_min(a) or above (``prior_ratio``), beside an
  accuracy that repeats its exact value at ``min_repeated`` of consecutive evaluations (a
  fixed prediction scores the same count on a fixed set; a fine-tuned model at 0.94 with
  loss 0.2 moves by a sample or two), that is also flat (its last quarter not
  ``min_loss_fall`` and three noise sigmas below its first) is a warning with medium
  confidence; anything in between, a loss still falling, or no loss at all is an
  informational note;
- an accuracy pinned at its ceiling (1.0, or 100%) is every class right, not a majority
  rate: never reported.

Noise principle: the pinned band is the larger of ``flat_tolerance`` and three noise
sigmas of the smoothed curve (MAD of differences, robust to single bad evaluations); the
loss is compared by quarter medians against the noise of such a median, so heavy-tailed
per-batch losses neither hide a fall nor fake one; doubt lowers the severity to info.

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

from dataclasses import dataclass, field
from collections.abc import Iterator

import numpy as np

from rundoctor.checks import classification, signal
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES


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
    learned_ratio: float = field(
        default=0.6,
        metadata={
            "help": "A loss below this times H_min(a), the least entropy of a prior with majority "
            "share a, shows the outputs depend on the input: not reported."
        },
    )
    prior_ratio: float = field(
        default=0.85,
        metadata={"help": "A flat loss at or above this times H_min(a) makes the finding a warning."},
    )
    ceiling: float = field(
        default=0.999, metadata={"help": "An accuracy pinned at or above this is saturated, not a majority rate."}
    )
    min_repeated: float = field(
        default=0.5,
        metadata={
            "help": "Share of consecutive evaluations repeating the exact accuracy needed for a warning "
            "without per-class metrics (a fixed prediction scores the same count every time)."
        },
    )
    min_loss_fall: float = field(
        default=0.05,
        metadata={"help": "A loss whose last quarter is this much below its first (and 3 noise sigmas) still falls."},
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final share of a per-class curve whose median is judged."}
    )


# Defaults: a majority predictor scores the same accuracy at every evaluation, so a
# half-point band is generous; pinned from the start for 80% of the run separates it from
# a model that learned up to a high plateau (detectors' background accuracy rises from 0.5
# to 0.98 in healthy runs).  Below 0.6 a constant accuracy is not a convincing majority
# rate.  A recall of 0.05 is one minority example in twenty; 0.05 of balanced accuracy is
# beyond evaluation noise for sets of a few hundred examples.  A prior predictor's loss is
# H(prior) >= H_min(a); the evaluation set's mix may differ a little from the training
# prior, hence 0.85.  Below 0.6 x H_min(a) the model has at least 40% of the prior's entropy
# in information about the input, which no majority predictor has.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    per_class: classification.ClassMetrics | None = None
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
            or level >= params.ceiling
            or abs(early - level) > 2.0 * tolerance
        ):
            continue  # too short, too low, saturated, or climbed to its level: not pinned
        if per_class is None:
            per_class = classification.class_metric_evidence(
                ctx, params.unlearned_score, params.balanced_margin, params.tail_fraction
            )
        entropy = classification.min_prior_entropy(level)
        evidence: dict[str, float | int | str] = {
            "accuracy_tag": tag,
            "pinned_level": level,
            "pinned_band": tolerance,
            "pinned_from_step": int(steps[start]),
            "pinned_fraction": pinned / run_span,
            "early_level": early,
            "min_prior_entropy": entropy,
            "threshold_pinned_fraction": params.min_flat_fraction,
            "threshold_min_level": params.min_level,
        }
        head = (
            f"{tag} pinned at {fmt(level, 3)} (±{fmt(tolerance, 2)}) for {pinned / run_span:.0%} "
            f"of the run from step {int(steps[start]):,} (threshold {params.min_flat_fraction:.0%} "
            f"at >= {params.min_level:g}), as a majority-class rate would be"
        )
        severity = Severity.WARNING
        if per_class.unlearned:
            worst_tag, worst = min(per_class.unlearned, key=lambda item: item[1])
            evidence.update(
                unlearned_tags=", ".join(name for name, _ in per_class.unlearned),
                worst_class_tag=worst_tag,
                worst_class_score=worst,
            )
            message = (
                f"{head}, and {worst_tag} is at {fmt(worst, 3)}: "
                f"{len(per_class.unlearned)} per-class or balanced metric(s) show a class not learned"
            )
            confidence = Confidence.HIGH
        elif per_class.learned:
            continue
        else:
            judged = _loss_verdict(ctx, tag, steps[start], steps[-1], entropy, params, evidence)
            if judged is None:
                continue
            message, severity, confidence = f"{head}; {judged[0]}", judged[1], judged[2]
        yield check.finding(
            ctx,
            tags=(tag,),
            steps=(steps[start], steps[-1]),
            message=message,
            evidence=evidence,
            severity=severity,
            confidence=confidence,
        )


def _loss_verdict(
    ctx: RunContext,
    tag: str,
    first: float,
    last: float,
    entropy: float,
    params: Params,
    evidence: dict[str, float | int | str],
) -> tuple[str, Severity, Confidence] | None:
    """What the loss beside a pinned accuracy says: (clause, severity, confidence), or None
    when it rules a majority-class model out."""
    loss = signal.loss_between(ctx, tag, first, last)
    if loss is None or loss[1].size < 2:
        return "no loss or per-class metric is logged to confirm it", Severity.INFO, Confidence.LOW
    loss_tag, values = loss
    change = signal.relative_change(*signal.edge_levels(values, 0.1, 1))
    level = classification.mean_loss(values[-signal.window(values.size, 0.25, 1) :])
    ratio = level / entropy if entropy > 0 else float("inf")
    evidence.update(loss_tag=loss_tag, loss_level=level, loss_change=change, loss_to_prior_entropy=ratio)
    if np.isfinite(change) and change > params.max_loss_rise:
        return None  # a rising loss is overfitting or divergence, reported elsewhere
    if ratio < params.learned_ratio:
        return None  # the outputs carry information about the input
    falling = classification.still_falling(values, params.min_loss_fall)
    clause = (
        f"{loss_tag} at {fmt(level, 3)} is {ratio:.2f}x the least entropy of a prior with majority "
        f"share {fmt(float(evidence['pinned_level']), 3)} ({fmt(entropy, 3)})"
    )
    raw = ctx.curve(tag).finite
    inside = raw.values[(raw.steps >= first) & (raw.steps <= last)]
    repeated = float(np.mean(inside[1:] == inside[:-1])) if inside.size > 1 else 0.0
    evidence.update(repeated_share=repeated)
    if ratio >= params.prior_ratio and not falling and repeated >= params.min_repeated:
        return (
            f"{clause} and flat: the loss of a model predicting the class prior",
            Severity.WARNING,
            Confidence.MEDIUM,
        )
    why = (
        "still falling" if falling
        else f"below {params.prior_ratio:g}x" if ratio < params.prior_ratio
        else f"but the accuracy moves between evaluations ({repeated:.0%} repeats)"
    )
    return f"{clause}, {why}: ambiguous without a per-class metric", Severity.INFO, Confidence.LOW


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
