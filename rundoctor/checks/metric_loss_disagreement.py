"""An evaluation metric that does not behave like a measurement of the model being trained.

What it detects
---------------
- Frozen: a validation metric (accuracy or other) repeats the bit-identical value at five
  or more consecutive evaluations, at least half of all evaluations, while its loss moves
  (first- and last-quarter medians more than 1% and three noise sigmas apart; with no
  loss logged, only a note).  A frozen accuracy a beside a loss that ends at the entropy of
  a prior with majority share a (at least 0.85 x H_min(a)) is a model predicting the prior,
  not a broken metric, and is left to ``class-imbalance`` and ``chance-level``.  Values at a bound or sentinel (0, 1, 100, -1) are not
  counted: a metric stuck at 0 has not started, one at 1 is saturated, and COCO reports -1 for an
  empty size bucket; nor are values at the ceiling of a higher-is-better metric (at least
  ``ceiling`` of its scale, 1 or 100: mAP50 0.995 on a small set repeats by nature).
  A frozen metric with a frozen loss is no learning, not a disagreement, and is left to
  ``chance-level`` and the plateau checks.  An accuracy that moves in whole examples (every
  value a multiple of 1/n, n read from its smallest step) and stays with at most
  ``max_errors`` examples wrong is a converged model on a small evaluation set: the loss
  keeps falling on the examples it gets right while the few hard ones stay wrong (33/36 for
  27 epochs); that is only a note.  So is a frozen value beside a loss that changed by less
  than ``min_loss_factor`` (first- against last-quarter median): a model fine-tuned from a
  good start, or converged, sharpens its confidence for many evaluations without flipping
  one example (347/359 at nine evaluations while the loss creeps 1-4%), which a cached
  metric cannot be told apart from; a loss that fell by half or more while not one example
  changed its answer is the stale metric.  Nor is a frozen accuracy a evidence while its
  loss stays more than ``max_floor_factor`` times (1 - a) x ln 2, the least its errors cost:
  calibration (an evaluation temperature, label smoothing, a model sharpening) scales the
  confidence of every answer without changing which class ranks first, so it moves a loss
  freely above that floor, never below it.  A cached 0.708 beside a loss that fell to 1.5x
  its floor contradicts it; a fine-tuned 0.967 beside a loss 5x its floor does not: a note.
- Below its loss: a validation accuracy that ends more than ``bound_margin`` below
  1 - L / ln 2, the least accuracy its cross-entropy L allows (each error costs at least
  ln 2), and rose less than ``max_followed`` of the way from its start to that bound: it is
  scored against other labels or predictions than the loss (permuted labels, a shuffled
  loader).  An accuracy that climbs with its loss while staying under the bound (a loss
  that is not a cross-entropy, a stricter metric) is left alone.
- Copied: a validation metric bit-identical to a training metric at every shared step
  (five at least).
- Against its loss: the smoothed validation accuracy and validation loss both falling at
  every evaluation of a stretch of at least 30% of the evaluations (four at least), the
  accuracy by at least two points (or its own noise) and the loss by at least 5%.  A loss
  that ends more than ``max_floor_factor`` times the least the final accuracy allows is set
  by confidence (a tempered or smoothed evaluation loss keeps falling as an overfitting
  model sharpens while a few answers flip): only a note.

Evaluations logged after any loss of the run turned NaN or inf are not judged: a NaN
model predicts one class, its metric collapses and freezes, and ``non-finite`` names the
cause.

Noise principle: "frozen" is bit-identity, which no noisy measurement of a changing model
produces by chance over half the evaluations; the fall against the loss compares smoothed
curves (EMA, rolling median) and needs a drop beyond three noise sigmas of the accuracy.
The loss bound compares medians of the first and last quarter of the evaluations with the
mean loss (top 1% clipped) over the last quarter.

Why it matters
--------------
Each points at the evaluation code rather than the model: a metric computed once and
cached, a model left in training mode or not reloaded, predictions taken from the wrong
tensor, the validation loader pointing at the training data, or a metric that
accumulates across evaluations without being reset.  Decisions taken from such a metric
(early stopping, checkpoint selection, hyper-parameter search) are random.

What to try
-----------
Evaluate one saved checkpoint by hand and compare with the logged value.  Check that the
metric object is reset between evaluations, that the evaluation loader is the validation
set, that the model is in evaluation mode and is the one being trained, and that the
value logged is the one computed in this evaluation (not a stale variable).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor import roles
from rundoctor.checks import classification, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import LOSS_ROLES, Role
from rundoctor.series import Curve

EVALUATION_ROLES = (Role.VAL_ACCURACY, Role.VAL_METRIC)
TRAINING_ROLES = (Role.TRAIN_ACCURACY, Role.TRAIN_METRIC)
# A frozen accuracy a beside a loss ending at least this share of H_min(a), the least entropy
# of a prior with majority share a, is a model predicting the prior (class-imbalance and
# chance-level report it): its loss may still settle while its answers never change.
PRIOR_SHARE = 0.85
# A value counts as k/n when it lies within this share of one step 1/n of a whole multiple:
# float32 rounding of k/n is far finer, a value off the grid by chance passes 4% of the time.
GRID_TOLERANCE = 0.02
# Bounds and sentinels a metric legitimately repeats (see the module docstring).
SENTINELS = np.array([-1.0, 0.0, 1.0, 100.0])


@dataclass(frozen=True)
class Params:
    """Thresholds of ``metric-loss-disagreement``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_evaluations: int = field(
        default=5, metadata={"help": "Identical (or shared) evaluations needed before judging."}
    )
    min_identical_fraction: float = field(
        default=0.5, metadata={"help": "Share of all evaluations the identical stretch must cover."}
    )
    loss_constant: float = field(
        default=0.01,
        metadata={"help": "Relative loss range below which the loss is frozen too (no report)."},
    )
    window_fraction: float = field(
        default=0.3,
        metadata={
            "help": "Shortest stretch (share of evaluations) of accuracy and loss both falling."
        },
    )
    min_accuracy_drop: float = field(
        default=0.02, metadata={"help": "Least accuracy fall over the stretch (or 3 noise sigmas)."}
    )
    min_loss_fall: float = field(
        default=0.05, metadata={"help": "Least relative loss fall over the same stretch."}
    )
    ceiling: float = field(
        default=0.99,
        metadata={"help": "A higher-is-better metric at this share of its scale is saturated, not frozen."},
    )
    max_errors: int = field(
        default=5,
        metadata={
            "help": "A frozen accuracy with at most this many wrong evaluation examples (read "
            "from its 1/n steps) is a converged model on a small set: a note."
        },
    )
    min_loss_factor: float = field(
        default=1.5,
        metadata={
            "help": "A frozen metric is a warning only when its loss changed by at least this "
            "factor over the stretch (first- against last-quarter median); below it, a note."
        },
    )
    max_floor_factor: float = field(
        default=3.0,
        metadata={
            "help": "A frozen or falling accuracy contradicts its loss only when the loss is within "
            "this factor of the least that accuracy allows ((1 - accuracy) x ln 2); a loss further "
            "above it is set by confidence, which calibration moves without flipping an answer: a note."
        },
    )
    bound_margin: float = field(
        default=0.1,
        metadata={
            "help": "An accuracy this far below 1 - loss / ln 2 (the least its cross-entropy "
            "allows) at the end of the run contradicts its loss."
        },
    )
    max_followed: float = field(
        default=0.25,
        metadata={
            "help": "... unless it rose at least this share of the way from its start to that bound."
        },
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final (and first) share of the evaluations whose medians are compared."}
    )
    smoothing: float = field(
        default=0.1,
        metadata={"help": "Smoothing window (accuracy EMA, loss median) as a share of the points."},
    )


# Defaults: metrics of small evaluation sets are quantised (recall = k/18 in a YOLO run
# repeats 8 times in 400 healthy epochs; mmdetection rounds mAP to 3 decimals), so a frozen
# stretch must also cover half of all evaluations.  A 1% loss range is what a frozen model's
# loss shows (R01-R04: eval loss constant to 4 digits).  30% of the evaluations makes a
# "long stretch"; two accuracy points and 5% of loss are beyond evaluation noise.  Five
# examples left wrong: the hard or mislabelled few a converged model never flips (3/36 and
# 4/114 stay put for 8-27 epochs), while a cached accuracy of a real evaluation set leaves
# dozens wrong.  The loss bound holds for every cross-entropy, so 0.1 only absorbs an
# accuracy and loss measured on slightly different sets; a quarter of the way to the bound
# separates an accuracy that learned (healthy runs sit at or above the bound) from one that
# stayed where it began.  A loss factor of 1.5 (a third of the loss gone, or half again
# added): healthy frozen stretches move their loss 1.01-1.2x (fine-tuning, early stopping,
# one-cycle on 114 examples), while a metric computed once sits beside a loss that fell
# 2.5x and more.  A floor factor of 3: a loss that close to (1 - a) x ln 2 has its errors
# near a coin flip and its right answers near certainty, where no calibration takes a real
# model (cached metrics sit at 1.5-1.9x; calibrated and fine-tuned models at 4x and more,
# tempered or smoothed evaluation losses at 10x and more).


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Findings on each evaluation metric that is frozen, copies a training series, or contradicts
    its loss; points after the loss turned non-finite are not judged."""
    training = [(tag, ctx.curve(tag).finite) for tag in ctx.tags(*TRAINING_ROLES)]
    for tag in ctx.tags(*EVALUATION_ROLES):
        curve = _before_non_finite_loss(ctx, tag)
        if len(curve) < params.min_evaluations:
            continue
        frozen = list(_frozen(check, ctx, params, tag, curve))
        others: list[Finding] = []
        for train_tag, train in training:
            others += _copied(check, ctx, params, tag, train_tag, train)
        if ctx.run.roles.get(tag) is Role.VAL_ACCURACY:
            others += _against_loss(check, ctx, params, tag, float(curve.steps[-1]))
            if not _warns(frozen):
                # a frozen value is the one symptom: its distance from the loss bound is the same fault
                others += _below_loss_bound(check, ctx, params, tag, curve)
        if _warns(others):
            # a note that a frozen value may be a converged model does not stand beside a
            # warning that the same metric left its loss (collapsed, copied, below its bound)
            frozen = [finding for finding in frozen if finding.severity is not Severity.INFO]
        yield from frozen
        yield from others


def _warns(findings: list[Finding]) -> bool:
    return any(finding.severity is not Severity.INFO for finding in findings)


def _before_non_finite_loss(ctx: RunContext, tag: str) -> Curve:
    """The finite evaluations of ``tag`` logged before any loss of the run turned NaN or inf.

    A model whose weights went NaN predicts one class for every input: its metric freezes or
    collapses while the loss is no longer a number.  The non-finite check reports the cause;
    what the metric does afterwards is no evidence about the evaluation code.
    """
    curve = ctx.curve(tag).finite
    cut = np.inf
    for loss_tag in ctx.tags(*LOSS_ROLES):
        loss = ctx.curve(loss_tag)
        bad = ~np.isfinite(loss.values)
        if bad.any():
            at = measures.steps_on_axis_of_tag(ctx, loss_tag, tag, loss.steps[bad][:1])
            cut = min(cut, float(at[0]))
    if not np.isfinite(cut):
        return curve
    keep = curve.steps < cut
    return Curve(tag, curve.steps[keep], curve.values[keep], curve.wall_times[keep])


def _frozen(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, curve: Curve
) -> Iterator[Finding]:
    values = curve.values
    repeats = values[1:] == values[:-1]
    if np.count_nonzero(repeats) + 1 < params.min_evaluations:
        return  # too few repeated values for a frozen stretch, whatever is left out of them
    repeats &= ~np.isin(values[1:], SENTINELS)
    if roles.higher_is_better(tag) and values.min() >= 0 and values.max() <= 100:
        repeats &= values[1:] < params.ceiling * measures.accuracy_scale(values)
    start, length = measures.longest_run(repeats)
    identical = length + 1 if length else 0
    if (
        identical < params.min_evaluations
        or identical / values.size < params.min_identical_fraction
    ):
        return
    first, last = int(curve.steps[start]), int(curve.steps[start + length])
    evidence: dict[str, float | int | str] = {
        "metric_tag": tag,
        "value": float(values[start]),
        "identical_evaluations": identical,
        "evaluations": int(values.size),
        "threshold_evaluations": params.min_evaluations,
        "threshold_fraction": params.min_identical_fraction,
    }
    loss = measures.loss_between(ctx, tag, first, last)
    tags: tuple[str, ...] = (tag,)
    severity = Severity.WARNING
    if loss is None or loss[1].size < 2:
        moved, confidence = "with no loss logged beside it", Confidence.LOW
        severity = Severity.INFO  # a fixed prediction or a cached metric: nothing to tell them apart
    else:
        loss_tag, loss_values = loss
        centre = max(measures.median(np.abs(loss_values)), 1e-12)
        spread = float(np.ptp(loss_values)) / centre
        moved_by, noise = _moved(loss_values, centre)
        evidence.update(
            loss_tag=loss_tag,
            loss_relative_range=spread,
            loss_relative_change=moved_by,
            loss_relative_noise=noise,
            threshold_loss_constant=params.loss_constant,
        )
        if moved_by <= max(params.loss_constant, 3.0 * noise):
            return  # the loss did not move beyond its noise: no learning, not a disagreement
        if ctx.run.roles.get(tag) is Role.VAL_ACCURACY:
            fraction = float(values[start]) / measures.accuracy_scale(values)
            entropy = classification.min_prior_entropy(fraction) if 0 < fraction < 1 else 0.0
            level = classification.mean_loss(loss_values[-measures.window(loss_values.size, 0.25, 1) :])
            evidence.update(min_prior_entropy=entropy)
            if entropy > 0 and level >= PRIOR_SHARE * entropy:
                return  # a fixed prediction of the prior: its loss still settles, its accuracy cannot move
        moved = (
            f"while {loss_tag} moved {moved_by:.1%} between the first and last quarter of the "
            f"stretch (threshold {params.loss_constant:.0%} and 3 noise sigmas)"
        )
        confidence, tags = Confidence.MEDIUM, (tag, loss_tag)
        errors = _errors_left(values, float(values[start]))
        factor = _loss_factor(loss_values)
        evidence.update(loss_factor=factor, threshold_loss_factor=params.min_loss_factor)
        if errors is not None and errors[0] <= params.max_errors:
            # A converged model on a small evaluation set: its loss still falls on the
            # examples it gets right, its few errors stay the same examples.
            left, size = errors
            evidence.update(errors_left=left, evaluation_examples=size, threshold_errors=params.max_errors)
            moved += (
                f"; but the metric moves in steps of 1/{size} and only {left}/{size} "
                f"evaluation examples are wrong (threshold {params.max_errors}): a model that "
                f"converged on a small evaluation set keeps such a count"
            )
            severity, confidence = Severity.INFO, Confidence.LOW
        elif factor < params.min_loss_factor:
            # A model that is already good (fine-tuned from a pretrained start, converged)
            # sharpens or loosens its confidence without flipping one evaluation example: a
            # loss that creeps a few percent beside a fixed accuracy is ordinary, and the
            # same picture as a cached metric.  Only a loss that changed by a large factor
            # (the model clearly changed) makes the frozen value evidence of a stale metric.
            moved += (
                f"; but the loss changed only {factor:.2f}x (threshold {params.min_loss_factor:g}x): "
                f"a model sharpens or loosens its confidence that much without flipping any "
                f"evaluation example (a fine-tuned or converged model): a note"
            )
            severity, confidence = Severity.INFO, Confidence.LOW
        elif ctx.run.roles.get(tag) is Role.VAL_ACCURACY:
            fraction = float(values[start]) / measures.accuracy_scale(values)
            room = _calibration_room(fraction, min(measures.edge_levels(loss_values, 0.25, 1)))
            evidence.update(floor_factor=room, threshold_floor_factor=params.max_floor_factor)
            if room > params.max_floor_factor:
                moved += (
                    f"; but the loss stayed {room:.1f}x the least a {fraction:.3f} accuracy allows "
                    f"(threshold {params.max_floor_factor:g}x): a loss set by the confidence of right "
                    f"answers moves with calibration (a temperature, label smoothing, sharpening) "
                    f"without flipping one: a note"
                )
                severity, confidence = Severity.INFO, Confidence.LOW
    yield check.finding(
        ctx,
        tags=tags,
        steps=(first, last),
        message=(
            f"{tag} repeated the bit-identical value {float(values[start])!r} at {identical} "
            f"consecutive evaluations (steps {first:,}..{last:,}, {identical}/{values.size} "
            f"evaluations, threshold {params.min_evaluations} and "
            f"{params.min_identical_fraction:.0%}) {moved}"
        ),
        evidence=evidence,
        severity=severity,
        confidence=confidence,
    )


def _calibration_room(fraction: float, loss: float) -> float:
    """How many times the least loss an accuracy ``fraction`` allows, (1 - fraction) x ln 2
    (each error costs at least ln 2, a right answer at least 0), ``loss`` is; inf at a
    perfect accuracy, 0 for a loss at or below the floor.

    Calibration (an evaluation temperature, label smoothing, a model sharpening) scales the
    confidence of every answer without changing which class ranks first: it moves the loss
    freely above this floor and never below it.  A loss far above the floor is mostly the
    confidence of right answers, so its moving says nothing about whether answers flipped.
    """
    floor = (1.0 - fraction) * classification.LN2
    if floor <= 0:
        return float("inf")
    return max(float(loss), 0.0) / floor


def _errors_left(values: np.ndarray, value: float) -> tuple[int, int] | None:
    """(examples misclassified at ``value``, evaluation-set size n) when every value of the
    metric is a whole multiple of 1/n, else None.

    n is read from the smallest step between distinct values and accepted only when it puts
    every distinct value on the grid: a metric that jumped once (a cached value updated one
    time) has no grid, and neither has one with fewer than two distinct values.
    """
    scale = measures.accuracy_scale(values)
    distinct = measures.distinct(values) / scale
    if distinct.size < 2 or distinct[0] < 0 or distinct[-1] > 1:
        return None
    size = round(1.0 / float(np.diff(distinct).min()))
    counts = distinct * size
    if size < 2 or np.abs(counts - np.round(counts)).max() > GRID_TOLERANCE:
        return None
    return round((1.0 - value / scale) * size), size


def _loss_factor(values: np.ndarray) -> float:
    """How many times larger the higher of the first- and last-quarter medians of a loss is
    than the lower (inf when the lower is not positive: a signed loss is not judged by it)."""
    first, last = measures.edge_levels(values, 0.25, 1)
    low, high = min(first, last), max(first, last)
    return high / low if low > 0 else float("inf")


def _moved(values: np.ndarray, centre: float) -> tuple[float, float]:
    """(relative change between first- and last-quarter medians, relative noise of such a
    median): a loss jittering around a constant does not count as moving."""
    width = measures.window(values.size, 0.25, 1)
    first, last = measures.edge_levels(values, 0.25, 1)
    noise = measures.noise_sigma(values) * float(np.sqrt(np.pi / 2.0)) / float(np.sqrt(width))
    return abs(last - first) / centre, noise / centre


def _copied(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, train_tag: str, train: Curve
) -> Iterator[Finding]:
    curve = ctx.curve(tag).finite
    if len(curve) < params.min_evaluations or len(train) == 0:
        return
    # Both are sorted by step: a binary search per evaluation, not a sort of a per-step series.
    in_train = np.minimum(np.searchsorted(train.steps, curve.steps), len(train) - 1)
    in_val = np.flatnonzero(train.steps[in_train] == curve.steps)
    shared = curve.steps[in_val]
    if shared.size < params.min_evaluations:
        return
    values = curve.values[in_val]
    if (
        not np.array_equal(values, train.values[in_train[in_val]])
        or np.isin(values, SENTINELS).all()
    ):
        return
    yield check.finding(
        ctx,
        tags=(tag, train_tag),
        steps=(shared[0], shared[-1]),
        message=(
            f"{tag} is bit-identical to {train_tag} at all {shared.size} shared steps "
            f"(threshold {params.min_evaluations}): the evaluation probably runs on the training "
            f"data or logs the training value"
        ),
        evidence={
            "metric_tag": tag,
            "training_tag": train_tag,
            "shared_steps": int(shared.size),
            "threshold_evaluations": params.min_evaluations,
        },
    )


def _against_loss(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, until: float
) -> Iterator[Finding]:
    loss_tag = measures.matching_loss(ctx, tag)
    if loss_tag is None or ctx.run.roles.get(loss_tag) not in (
        Role.VAL_LOSS,
        Role.VAL_LOSS_COMPONENT,
    ):
        return
    loss = ctx.curve(loss_tag).finite
    steps, accuracy = measures.accuracy_levels(ctx, tag)
    if accuracy.size == 0 or len(loss) < 3:
        return
    before = steps <= until
    if not before.all():  # (the shared accuracy itself when nothing is cut: its EMA is shared too)
        steps, accuracy = steps[before], accuracy[before]
    at = measures.steps_on_axis_of_tag(ctx, tag, loss_tag, steps)
    covered = (at >= loss.steps[0]) & (at <= loss.steps[-1])
    if not covered.all():
        steps, at, accuracy = steps[covered], at[covered], accuracy[covered]
    width = measures.window(accuracy.size, params.window_fraction, params.min_evaluations - 1)
    if accuracy.size < params.min_evaluations or width >= accuracy.size:
        return
    span = measures.window(accuracy.size, params.smoothing)
    smooth = ctx.measure(measures.ema, accuracy, span)
    accuracy_falls = np.diff(smooth) < 0
    if measures.longest_run(accuracy_falls)[1] < width:
        return  # the accuracy never fell that long: the loss is not smoothed to compare
    loss_smooth = measures.smoothed_at(ctx, loss_tag, at, params.smoothing)
    # Both smoothed curves falling at every evaluation of a stretch: a start-of-run outlier
    # (an evaluation before training) cannot make a rising loss look like a falling one.
    both_fall = accuracy_falls & (np.diff(loss_smooth) < 0)
    first, length = measures.longest_run(both_fall)
    last = first + length
    drop = measures.flat_tolerance(ctx, accuracy, span, params.min_accuracy_drop)
    if length < width or loss_smooth[first] <= 0:
        return
    accuracy_fall = float(smooth[first] - smooth[last])
    loss_fall = float((loss_smooth[first] - loss_smooth[last]) / loss_smooth[first])
    if accuracy_fall < drop or loss_fall < params.min_loss_fall:
        return
    room = _calibration_room(float(smooth[last]), float(loss_smooth[last]))
    severity, confidence, why = Severity.WARNING, Confidence.MEDIUM, ""
    if room > params.max_floor_factor:
        # A loss far above the least its accuracy allows is set by confidence: a tempered or
        # smoothed evaluation loss keeps falling as the model sharpens while it overfits.
        severity, confidence = Severity.INFO, Confidence.LOW
        why = (
            f"; but {loss_tag} stayed {room:.1f}x the least that accuracy allows (threshold "
            f"{params.max_floor_factor:g}x): a loss set by confidence (an evaluation temperature, "
            f"label smoothing) falls as the model sharpens while a few answers flip: a note"
        )
    yield check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(steps[first], steps[last]),
        message=(
            f"{tag} fell {fmt(accuracy_fall, 3)} ({fmt(float(smooth[first]), 3)} -> "
            f"{fmt(float(smooth[last]), 3)}) while {loss_tag} fell {loss_fall:.0%} over steps "
            f"{int(steps[first]):,}..{int(steps[last]):,} (thresholds: accuracy drop "
            f"{fmt(drop, 2)}, loss fall {params.min_loss_fall:.0%}, over {width}+ evaluations){why}"
        ),
        evidence={
            "metric_tag": tag,
            "loss_tag": loss_tag,
            "accuracy_start": float(smooth[first]),
            "accuracy_end": float(smooth[last]),
            "accuracy_fall": accuracy_fall,
            "loss_fall": loss_fall,
            "evaluations": length + 1,
            "threshold_evaluations": width,
            "threshold_accuracy_drop": drop,
            "threshold_loss_fall": params.min_loss_fall,
            "floor_factor": room,
            "threshold_floor_factor": params.max_floor_factor,
        },
        severity=severity,
        confidence=confidence,
    )


def _below_loss_bound(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, curve: Curve
) -> Iterator[Finding]:
    """An accuracy far below the least its cross-entropy allows that did not follow its loss."""
    fractions = measures.fraction_values(curve.values)
    if fractions.size < params.min_evaluations:
        return
    width = measures.window(fractions.size, params.tail_fraction, 1)
    first = float(curve.steps[-width])
    loss = measures.loss_between(ctx, tag, first, float(curve.steps[-1]))
    if loss is None or loss[1].size == 0 or ctx.run.roles.get(loss[0]) is not Role.VAL_LOSS:
        return
    loss_tag, values = loss
    if float(values.min()) < 0:
        return  # not a cross-entropy
    level = classification.mean_loss(values)
    bound = classification.min_accuracy_for_loss(level)
    start, end = measures.edge_levels(fractions, params.tail_fraction, 1)
    gap = bound - end
    # How far the accuracy went of the way from its start to the least its loss allows: an
    # accuracy that follows its loss (a loss other than cross-entropy, a looser metric) rises.
    followed = (end - start) / (bound - start) if bound > start else 1.0
    if not (np.isfinite(gap) and gap > params.bound_margin and followed < params.max_followed):
        return
    yield check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(first, curve.steps[-1]),
        message=(
            f"{tag} ends at {fmt(end, 3)} (from {fmt(start, 3)}) while {loss_tag} at "
            f"{fmt(level, 3)} allows no accuracy below 1 - loss/ln 2 = {fmt(bound, 3)} "
            f"(margin {params.bound_margin:g}); the accuracy covered {max(followed, 0.0):.0%} of "
            f"the way to that bound (threshold {params.max_followed:.0%}): it is not measuring "
            f"the predictions the loss is computed on (wrong labels, a shuffled loader?)"
        ),
        evidence={
            "metric_tag": tag,
            "loss_tag": loss_tag,
            "accuracy_start": start,
            "accuracy_end": end,
            "loss_level": level,
            "accuracy_bound": bound,
            "followed": followed,
            "threshold_margin": params.bound_margin,
            "threshold_followed": params.max_followed,
        },
        confidence=Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """An evaluation accuracy that repeats one value at every evaluation."""
    steps = np.arange(0, 10000, 500)
    return steps, np.full(steps.size, 0.5625)


CHECK = Check(
    code="M007",
    name="metric-loss-disagreement",
    title="Evaluation metric frozen, copied, or moving against its loss",
    severity=Severity.WARNING,
    needs=(EVALUATION_ROLES,),
    params=Params,
    advice=(
        "Suspect the evaluation code: evaluate a checkpoint by hand, reset the metric between "
        "evaluations, check the loader is the validation set and the model is in eval mode, "
        "and log the value computed in this evaluation."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
