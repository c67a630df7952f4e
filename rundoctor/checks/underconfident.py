"""Predicted probabilities still near chance: the classifier has not separated the classes.

What it detects
---------------
Any of three signs that the predicted probabilities sit near chance, c = 1/C (0.5 when the
number of classes C is unknown, i.e. read as binary):

- probability histograms: in the last logged histograms most of the mass lies within 20%
  of c (0.4..0.6 for a binary classifier);
- a mean-confidence or max-softmax series whose final quarter stays below
  c + 0.2 * (1 - c) (0.6 for a binary classifier);
- the double-softmax floor (needs C): when softmax is applied to the outputs and again
  inside the cross-entropy, the second softmax sees probabilities in [0, 1], so even a
  perfect first softmax (1 for the right class, 0 elsewhere) gives the right class only
  e / (e + C - 1).  The loss cannot go below ln(1 + (C - 1) / e): 0.313 for C = 2, 0.744
  for C = 4, 0.905 for C = 5, 1.461 for C = 10.  Reported when the loss sits within 10%
  above that floor while accuracy is high enough that a model with a single softmax would
  have a loss at most two thirds of it: a model with accuracy a that gives its answer
  probability a and spreads the rest evenly has loss h(a) + (1 - a) ln(C - 1).

Underconfidence is confidence below accuracy, not confidence near chance: a classifier
still learning, or one on noisy labels (accuracy limited too), has probabilities near
chance and is calibrated.  So when an accuracy is logged, the histogram's mean confidence
(binary: mean of max(p, 1 - p)) or the confidence series must lie more than
``calibration_margin`` below it; within that margin nothing is reported.  The finding is
a warning only for a finished classifier (its loss no longer falling: the last quarter of
its second half within ``min_loss_fall`` or three noise sigmas of the first); a run still
learning, or one without an accuracy to compare with, gets an informational note.

A fourth sign needs no confidence series: a classifier whose accuracy is at least
``high_accuracy`` while its loss stays ``uniform_excess`` times what a model giving its
answer probability a would have, h(a) + (1 - a) ln(C - 1), and at least ``uniform_share``
of ln C (heavy label smoothing, a temperature at evaluation), or, with C known, at least
``near_uniform_share`` of ln C and ``near_uniform_excess`` times that expected loss
(probabilities about 1/C for answers that are mostly right).  The loss must sit at its
minimum (an overfit model's loss rises from it, with confidently wrong answers); label
noise limits the accuracy too, so its high loss is what the accuracy needs.  A warning
when C is known and the loss no longer falls; otherwise a note.

Noise principle: levels are medians of the final ``tail_fraction`` of each series and the
"no longer falling" test compares quarter medians with the noise of such a median, so
heavy-tailed per-batch losses neither fake nor hide a fall.

Why it matters
--------------
Accuracy only looks at the arg-max; the probabilities show whether the model is sure.
Probabilities stuck near chance mean the classes are not separated yet (more training, a
higher learning rate), too much regularisation (label smoothing, temperature, dropout at
evaluation), or, with the loss at the double-softmax floor, a bug that also shrinks the
gradients and slows training.

What to try
-----------
With the loss at the double-softmax floor: remove the softmax at the end of the model, or
use NLLLoss on log-softmax outputs; CrossEntropyLoss and
``SparseCategoricalCrossentropy(from_logits=True)`` expect raw logits.  Otherwise train
longer or with a larger learning rate, reduce label smoothing or temperature, check that
the model is in evaluation mode when confidences are measured, and calibrate afterwards
(temperature scaling) if accuracy is fine but confidences are not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import classification, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES, Role
from rundoctor.series import Histogram


@dataclass(frozen=True)
class Params:
    """Thresholds of ``underconfident``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Points of a confidence, loss or accuracy series needed."}
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final share of a series whose median is judged."}
    )
    last_histograms: int = field(
        default=3, metadata={"help": "How many of the last probability histograms are judged."}
    )
    band: float = field(
        default=0.2, metadata={"help": "Near chance: within this fraction of the chance level c."}
    )
    max_share: float = field(
        default=0.5, metadata={"help": "Share of histogram mass near chance that is reported."}
    )
    confidence_margin: float = field(
        default=0.2,
        metadata={"help": "Low confidence: below c + this share of the distance from c to 1."},
    )
    min_accuracy: float = field(
        default=0.5, metadata={"help": "Accuracy needed before the double-softmax floor is judged."}
    )
    floor_margin: float = field(
        default=0.1, metadata={"help": "Loss within this fraction above the floor is at the floor."}
    )
    loss_excess: float = field(
        default=1.5,
        metadata={"help": "The floor must be this many times the loss expected at that accuracy."},
    )
    calibration_margin: float = field(
        default=0.1,
        metadata={"help": "Confidence must be this far below accuracy to be underconfident."},
    )
    min_loss_fall: float = field(
        default=0.05,
        metadata={"help": "A loss falling this much over the second half of the run is still learning (a note)."},
    )
    high_accuracy: float = field(
        default=0.7, metadata={"help": "Accuracy needed before a near-uniform loss is judged."}
    )
    uniform_share: float = field(
        default=0.2, metadata={"help": "A too-uncertain loss is at least this share of ln C (C known)."}
    )
    uniform_excess: float = field(
        default=2.0,
        metadata={"help": "A too-uncertain loss is this many times what its accuracy needs."},
    )
    near_uniform_share: float = field(
        default=0.8,
        metadata={"help": "A loss at least this share of ln C (C known) is near a uniform guess."},
    )
    near_uniform_excess: float = field(
        default=1.25,
        metadata={"help": "A loss near a uniform guess is too uncertain at this many times what its accuracy needs."},
    )
    loss_at_minimum: float = field(
        default=1.1, metadata={"help": "The final loss must be within this factor of its smoothed minimum."}
    )


# Defaults: +-20% of chance is 0.4..0.6 for a binary classifier, the band practitioners read
# as "not separated"; half the mass there is a majority of the predictions.  0.6 mean
# confidence for a binary classifier is barely above a coin flip.  Below an accuracy of 0.5
# a loss near the floor is ordinary.  A factor 1.5 between the floor and the expected loss
# keeps a healthy but hard problem (loss naturally near the floor) from being reported.
# A loss at 80% of ln C or more is a near-uniform prediction: with an accuracy of 0.7 or
# more, 1.25x what that accuracy needs (0.53 at 0.85 for two classes, 1.18 at 0.8 for ten,
# which a calibrated model never loses) is already a model unsure of answers it gets right.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Findings on probability histograms, confidence series and accuracies whose loss sits near
    chance; an unknown number of classes is read as binary (chance 0.5), as the evidence says."""
    chance = 1.0 / ctx.num_classes.value if ctx.num_classes else 0.5
    classes_evidence: dict[str, float | int | str] = {"chance_level": chance}
    if ctx.num_classes:
        classes_evidence.update(
            num_classes=ctx.num_classes.value, num_classes_source=ctx.num_classes.source
        )
    else:
        classes_evidence.update(num_classes_source="unknown: read as binary")
    for tag in sorted(ctx.run.histograms):
        if ctx.run.roles.get(tag) is not Role.PROB_HISTOGRAM:
            continue
        finding = _histograms(check, ctx, params, tag, chance, classes_evidence)
        if finding is not None:
            yield finding
    for tag in ctx.tags(Role.CONFIDENCE):
        finding = _confidence(check, ctx, params, tag, chance, classes_evidence)
        if finding is not None:
            yield finding
    classes = ctx.num_classes.value if ctx.num_classes and ctx.num_classes.value >= 2 else None
    for tag in ctx.tags(*ACCURACY_ROLES):
        finding = (
            _double_softmax(check, ctx, params, tag, classes, classes_evidence) if classes else None
        ) or _near_uniform_loss(check, ctx, params, tag, classes, classes_evidence)
        if finding is not None:
            yield finding


def _accuracy(ctx: RunContext, params: Params) -> tuple[str, float] | None:
    """The accuracy to compare a confidence with (validation first) and its final median."""
    for role in ACCURACY_ROLES[::-1]:
        tag = ctx.primary(role)
        if tag is None:
            continue
        values = ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
        if values.size:
            return tag, measures.median(values[-measures.window(values.size, params.tail_fraction, 1) :])
    return None


def _still_learning(ctx: RunContext, params: Params, accuracy_tag: str | None) -> bool:
    """Whether the loss (beside the accuracy, else the training loss) still falls over the
    second half of the run."""
    loss_tag = measures.matching_loss(ctx, accuracy_tag) if accuracy_tag else ctx.primary(Role.TRAIN_LOSS)
    if loss_tag is None:
        return True  # nothing shows it finished: the milder verdict
    values = ctx.curve(loss_tag).finite.values
    return classification.still_falling(values[values.size // 2 :], params.min_loss_fall)


def _grade(
    ctx: RunContext, params: Params, confidence: float, evidence: dict[str, float | int | str]
) -> tuple[str, Severity, Confidence] | None:
    """Compare a confidence level with the accuracy: (clause, severity, confidence) or None
    when the model is calibrated (see the module docstring)."""
    accuracy = _accuracy(ctx, params)
    if accuracy is None:
        learning = _still_learning(ctx, params, None)
        evidence.update(still_learning=learning)
        return "no accuracy is logged to tell a calibrated model from an underconfident one", Severity.INFO, Confidence.LOW
    tag, level = accuracy
    gap = level - confidence
    learning = _still_learning(ctx, params, tag)
    evidence.update(accuracy_tag=tag, accuracy=level, calibration_gap=gap, still_learning=learning,
                    threshold_calibration_margin=params.calibration_margin)
    if gap <= params.calibration_margin:
        return None  # calibrated: a hard task, noisy labels, or a model still learning honestly
    clause = f"{fmt(gap, 2)} below {tag} {fmt(level, 3)} (margin {params.calibration_margin:g})"
    if learning:
        return f"{clause}, while the loss still falls: still learning", Severity.INFO, Confidence.MEDIUM
    return f"{clause} with the loss no longer falling", Severity.WARNING, (
        Confidence.HIGH if ctx.num_classes else Confidence.MEDIUM
    )


def mean_confidence(histogram: Histogram) -> float:
    """Mean of max(p, 1 - p) over a histogram of binary probabilities (bucket middles)."""
    counts = np.asarray(histogram.bucket_counts, dtype=np.float64)
    limits = np.asarray(histogram.bucket_limits, dtype=np.float64)
    total = counts.sum()
    if counts.size == 0 or limits.size != counts.size or not total > 0:
        return float("nan")
    first_left = histogram.min if np.isfinite(histogram.min) else limits[0]
    lefts = np.concatenate(([first_left], limits[:-1]))
    rights = np.minimum(limits, histogram.max) if np.isfinite(histogram.max) else limits
    middles = np.clip((np.maximum(lefts, 0.0) + np.minimum(rights, 1.0)) / 2.0, 0.0, 1.0)
    return float((counts * np.maximum(middles, 1.0 - middles)).sum() / total)


def share_within(histogram: Histogram, low: float, high: float) -> float:
    """Share of a histogram's mass in [low, high], spreading each bucket's count evenly."""
    counts = np.asarray(histogram.bucket_counts, dtype=np.float64)
    limits = np.asarray(histogram.bucket_limits, dtype=np.float64)
    total = counts.sum()
    if counts.size == 0 or limits.size != counts.size or not total > 0:
        return float("nan")
    first_left = histogram.min if np.isfinite(histogram.min) else limits[0]
    lefts = np.concatenate(([first_left], limits[:-1]))
    rights = np.minimum(limits, histogram.max) if np.isfinite(histogram.max) else limits
    lefts = np.minimum(lefts, rights)
    widths = rights - lefts
    overlap = np.clip(np.minimum(rights, high) - np.maximum(lefts, low), 0.0, None)
    point_inside = (rights >= low) & (rights <= high)
    fractions = np.where(widths > 0, overlap / np.where(widths > 0, widths, 1.0), point_inside)
    return float((counts * fractions).sum() / total)


def _is_probability(histogram: Histogram) -> bool:
    """Every occupied bucket lies within [0, 1] (not logits)."""
    counts = np.asarray(histogram.bucket_counts, dtype=np.float64)
    limits = np.asarray(histogram.bucket_limits, dtype=np.float64)
    occupied = counts > 0
    if limits.size != counts.size or not occupied.any():
        return False
    low = (
        histogram.min
        if np.isfinite(histogram.min)
        else np.concatenate(([limits[0]], limits[:-1]))[occupied].min()
    )
    high = histogram.max if np.isfinite(histogram.max) else limits[occupied].max()
    return bool(low >= -1e-6 and high <= 1.0 + 1e-6)


def _histograms(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    chance: float,
    classes_evidence: dict[str, float | int | str],
) -> Finding | None:
    histograms = sorted(ctx.run.histograms.get(tag, []), key=lambda histogram: histogram.step)
    last = [
        histogram
        for histogram in histograms[-params.last_histograms :]
        if _is_probability(histogram)
    ]
    if not last:
        return None
    low, high = chance * (1.0 - params.band), chance * (1.0 + params.band)
    shares = np.array([share_within(histogram, low, high) for histogram in last])
    share = float(np.nanmean(shares)) if np.isfinite(shares).any() else float("nan")
    if not share >= params.max_share:
        return None
    evidence: dict[str, float | int | str] = {
        "histogram_tag": tag,
        "share_near_chance": share,
        "band_low": low,
        "band_high": high,
        "histograms_judged": len(last),
        "threshold_share": params.max_share,
        **classes_evidence,
    }
    if chance == 0.5:
        confidence = float(np.nanmean([mean_confidence(histogram) for histogram in last]))
        evidence["mean_confidence"] = confidence
        graded = _grade(ctx, params, confidence, evidence)
        if graded is None:
            return None
        clause, severity, trust = graded
        clause = f"; their mean confidence {fmt(confidence, 3)} is {clause}"
    else:
        clause, severity, trust = "", Severity.INFO, Confidence.LOW
    message = (
        f"{share:.0%} of the predicted probabilities in the last {len(last)} {tag} histogram(s) "
        f"lie within {fmt(low, 3)}..{fmt(high, 3)} around chance {fmt(chance, 3)} "
        f"(threshold {params.max_share:.0%}){clause}"
    )
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(last[0].step, last[-1].step),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=trust,
    )


def _confidence(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    chance: float,
    classes_evidence: dict[str, float | int | str],
) -> Finding | None:
    curve = ctx.curve(tag).finite
    values = ctx.measure(measures.fraction_values, curve.values)
    if values.size < params.min_points:
        return None
    tail_start = values.size - measures.window(values.size, params.tail_fraction, 1)
    level = measures.median(values[tail_start:])
    limit = chance + params.confidence_margin * (1.0 - chance)
    if not level <= limit:
        return None
    evidence: dict[str, float | int | str] = {
        "confidence_tag": tag,
        "final_confidence": level,
        "threshold_confidence": limit,
        **classes_evidence,
    }
    graded = _grade(ctx, params, level, evidence)
    if graded is None:
        return None
    clause, severity, trust = graded
    message = (
        f"{tag} stays at {fmt(level, 3)} over the last {values.size - tail_start} points, below "
        f"{fmt(limit, 3)} (chance {fmt(chance, 3)} + {params.confidence_margin:g} of the way "
        f"to 1), {clause}"
    )
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(curve.steps[tail_start], curve.steps[-1]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=trust,
    )


def double_softmax_floor(classes: int) -> float:
    """The lowest cross-entropy reachable when softmax is applied twice: ln(1 + (C - 1) / e)."""
    return float(np.log1p((classes - 1) / math.e))


def _double_softmax(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    classes: int,
    classes_evidence: dict[str, float | int | str],
) -> Finding | None:
    accuracy_curve = ctx.curve(tag).finite
    accuracy = ctx.measure(measures.fraction_values, accuracy_curve.values)
    loss_tag = measures.matching_loss(ctx, tag)
    if accuracy.size < params.min_points or loss_tag is None:
        return None
    loss = ctx.curve(loss_tag).finite
    if len(loss) < params.min_points:
        return None
    accuracy_level = float(
        measures.median(accuracy[-measures.window(accuracy.size, params.tail_fraction, 1) :])
    )
    tail_start = len(loss) - measures.window(len(loss), params.tail_fraction, 1)
    loss_level = measures.median(loss.values[tail_start:])
    floor = double_softmax_floor(classes)
    expected = measures.binary_entropy(accuracy_level) + (1.0 - accuracy_level) * np.log(
        max(classes - 1, 1)
    )
    at_floor = floor * 0.98 <= loss_level <= floor * (1.0 + params.floor_margin)
    if not (
        accuracy_level >= params.min_accuracy
        and at_floor
        and floor >= params.loss_excess * expected
    ):
        return None
    message = (
        f"{loss_tag} sits at {fmt(loss_level)}, within {params.floor_margin:.0%} above the "
        f"double-softmax floor ln(1 + (C - 1)/e) = {fmt(floor)} for C = {classes}, while {tag} is "
        f"{fmt(accuracy_level, 3)} (a single softmax at that accuracy reaches about "
        f"{fmt(float(expected), 3)}): softmax is probably applied twice"
    )
    evidence = {
        "loss_tag": loss_tag,
        "accuracy_tag": tag,
        "final_loss": loss_level,
        "final_accuracy": accuracy_level,
        "double_softmax_floor": floor,
        "expected_loss_at_accuracy": float(expected),
        "threshold_floor_margin": params.floor_margin,
        **classes_evidence,
    }
    return check.finding(
        ctx,
        tags=(loss_tag, tag),
        steps=(loss.steps[tail_start], loss.steps[-1]),
        message=message,
        evidence=evidence,
        confidence=Confidence.MEDIUM,
        advice=(
            "Remove the softmax at the end of the model (or use NLLLoss on "
            "log-softmax outputs): the cross-entropy loss already applies it."
        ),
    )


def _near_uniform_loss(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    classes: int | None,
    classes_evidence: dict[str, float | int | str],
) -> Finding | None:
    """An accurate classifier whose loss stays far above what its accuracy needs (see the
    module docstring); C unknown is read as binary, the least loss an accuracy needs."""
    accuracy = ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
    loss_tag = measures.matching_loss(ctx, tag)
    if accuracy.size < params.min_points or loss_tag is None:
        return None
    loss = ctx.curve(loss_tag).finite
    if len(loss) < params.min_points or not loss.values.min() > 0:
        return None
    level = measures.median(accuracy[-measures.window(accuracy.size, params.tail_fraction, 1) :])
    tail_start = len(loss) - measures.window(len(loss), params.tail_fraction, 1)
    loss_level = measures.median(loss.values[tail_start:])
    uniform = float(np.log(classes)) if classes else float("nan")
    expected = measures.binary_entropy(level) + (1.0 - level) * np.log(max((classes or 2) - 1, 1))
    far_above = (classes is None or loss_level >= params.uniform_share * uniform) and (
        loss_level >= params.uniform_excess * expected
    )
    # Near a uniform guess itself, a smaller excess is already unmistakable: probabilities
    # about 1/C for answers that are mostly right.
    near_uniform = classes is not None and (
        loss_level >= params.near_uniform_share * uniform and loss_level >= params.near_uniform_excess * expected
    )
    if not (level >= params.high_accuracy and (far_above or near_uniform)):
        return None
    # The smoothed minimum (a rolling median) is taken only for a loss that got this far.
    width = measures.window(len(loss), 0.1)
    minimum = float(measures.rolling_median(loss.values, width).min())
    if not loss_level <= params.loss_at_minimum * minimum:
        return None
    learning = classification.still_falling(loss.values[len(loss) // 2 :], params.min_loss_fall)
    threshold = params.uniform_excess if far_above else params.near_uniform_excess
    near = "" if far_above else f" for a loss at {params.near_uniform_share:.0%} of ln C or more"
    where = (
        f" ({loss_level / uniform:.0%} of ln {classes} = {fmt(uniform)}, the loss of a uniform guess)"
        if classes
        else ""
    )
    if learning or classes is None:
        severity, trust = Severity.INFO, Confidence.LOW
        caveat = "; the loss still falls" if learning else "; the number of classes is unknown"
    else:
        severity, trust, caveat = Severity.WARNING, Confidence.MEDIUM, ""
    return check.finding(
        ctx,
        tags=(loss_tag, tag),
        steps=(loss.steps[tail_start], loss.steps[-1]),
        message=(
            f"{loss_tag} stays at {fmt(loss_level)}{where} while {tag} is {fmt(level, 3)}; a model giving "
            f"its answer probability {fmt(level, 3)} would reach {fmt(float(expected), 3)} "
            f"(threshold {threshold:g}x{near}): predictions are far less confident than they are "
            f"right{caveat}"
        ),
        evidence={
            "loss_tag": loss_tag,
            "accuracy_tag": tag,
            "final_loss": loss_level,
            "final_accuracy": level,
            "uniform_loss": uniform if classes else "unknown",
            "expected_loss_at_accuracy": float(expected),
            "still_learning": learning,
            "threshold_uniform_excess": threshold,
            **classes_evidence,
        },
        severity=severity,
        confidence=trust,
        advice=(
            "Reduce label smoothing or the softmax temperature (or divide the logits by it only at "
            "inference); calibrate afterwards with temperature scaling if accuracy is what matters."
        ),
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A mean predicted probability that stays near 0.5 on a binary task."""
    steps = np.arange(0, 1000, 10)
    return steps, 0.5 + 0.02 * (1 - np.exp(-steps / 300.0))


CHECK = Check(
    code="M005",
    name="underconfident",
    title="Predicted probabilities still near chance",
    severity=Severity.WARNING,
    needs=((Role.PROB_HISTOGRAM, Role.CONFIDENCE, Role.TRAIN_LOSS),),
    params=Params,
    advice=(
        "The classifier has not separated the classes: train longer or with a larger learning "
        "rate, reduce label smoothing or temperature, measure confidences in evaluation mode, "
        "and check the loss gets raw logits (softmax applied once)."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
