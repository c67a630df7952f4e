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
  ``chance-level`` and the plateau checks.
- Copied: a validation metric bit-identical to a training metric at every shared step
  (five at least).
- Against its loss: the smoothed validation accuracy and validation loss both falling at
  every evaluation of a stretch of at least 30% of the evaluations (four at least), the
  accuracy by at least two points (or its own noise) and the loss by at least 5%.

Noise principle: "frozen" is bit-identity, which no noisy measurement of a changing model
produces by chance over half the evaluations; the fall against the loss compares smoothed
curves (EMA, rolling median) and needs a drop beyond three noise sigmas of the accuracy.

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

from dataclasses import dataclass, field
from collections.abc import Iterator

import numpy as np

from rundoctor.checks import classification, signal
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role
from rundoctor.series import Curve

EVALUATION_ROLES = (Role.VAL_ACCURACY, Role.VAL_METRIC)
TRAINING_ROLES = (Role.TRAIN_ACCURACY, Role.TRAIN_METRIC)
# A frozen accuracy a beside a loss ending at least this share of H_min(a), the least entropy
# of a prior with majority share a, is a model predicting the prior (class-imbalance and
# chance-level report it): its loss may still settle while its answers never change.
PRIOR_SHARE = 0.85
# Bounds and sentinels a metric legitimately repeats (see the module docstring).
SENTINELS = np.array([-1.0, 0.0, 1.0, 100.0])


@dataclass(frozen=True)
class Params:
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
    smoothing: float = field(
        default=0.1,
        metadata={"help": "Smoothing window (accuracy EMA, loss median) as a share of the points."},
    )


# Defaults: metrics of small evaluation sets are quantised (recall = k/18 in a YOLO run
# repeats 8 times in 400 healthy epochs; mmdetection rounds mAP to 3 decimals), so a frozen
# stretch must also cover half of all evaluations.  A 1% loss range is what a frozen model's
# loss shows (R01-R04: eval loss constant to 4 digits).  30% of the evaluations makes a
# "long stretch"; two accuracy points and 5% of loss are beyond evaluation noise.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    training = [(tag, ctx.curve(tag).finite) for tag in ctx.tags(*TRAINING_ROLES)]
    for tag in ctx.tags(*EVALUATION_ROLES):
        curve = ctx.curve(tag).finite
        if len(curve) < params.min_evaluations:
            continue
        yield from _frozen(check, ctx, params, tag)
        for train_tag, train in training:
            yield from _copied(check, ctx, params, tag, train_tag, train)
        if ctx.run.roles.get(tag) is Role.VAL_ACCURACY:
            yield from _against_loss(check, ctx, params, tag)


def _frozen(check: Check[Params], ctx: RunContext, params: Params, tag: str) -> Iterator[Finding]:
    curve = ctx.curve(tag).finite
    values = curve.values
    repeats = (values[1:] == values[:-1]) & ~np.isin(values[1:], SENTINELS)
    if signal.higher_is_better(tag) and values.min() >= 0 and values.max() <= 100:
        repeats &= values[1:] < params.ceiling * signal.accuracy_scale(values)
    start, length = signal.longest_run(repeats)
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
    loss = signal.loss_between(ctx, tag, first, last)
    tags: tuple[str, ...] = (tag,)
    severity = Severity.WARNING
    if loss is None or loss[1].size < 2:
        moved, confidence = "with no loss logged beside it", Confidence.LOW
        severity = Severity.INFO  # a fixed prediction or a cached metric: nothing to tell them apart
    else:
        loss_tag, loss_values = loss
        centre = max(float(np.median(np.abs(loss_values))), 1e-12)
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
            fraction = float(values[start]) / signal.accuracy_scale(values)
            entropy = classification.min_prior_entropy(fraction) if 0 < fraction < 1 else 0.0
            level = classification.mean_loss(loss_values[-signal.window(loss_values.size, 0.25, 1) :])
            evidence.update(min_prior_entropy=entropy)
            if entropy > 0 and level >= PRIOR_SHARE * entropy:
                return  # a fixed prediction of the prior: its loss still settles, its accuracy cannot move
        moved = (
            f"while {loss_tag} moved {moved_by:.1%} between the first and last quarter of the "
            f"stretch (threshold {params.loss_constant:.0%} and 3 noise sigmas)"
        )
        confidence, tags = Confidence.MEDIUM, (tag, loss_tag)
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


def _moved(values: np.ndarray, centre: float) -> tuple[float, float]:
    """(relative change between first- and last-quarter medians, relative noise of such a
    median): a loss jittering around a constant does not count as moving."""
    width = signal.window(values.size, 0.25, 1)
    first, last = signal.edge_levels(values, 0.25, 1)
    noise = signal.noise_sigma(values) * float(np.sqrt(np.pi / 2.0)) / float(np.sqrt(width))
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
    check: Check[Params], ctx: RunContext, params: Params, tag: str
) -> Iterator[Finding]:
    loss_tag = signal.matching_loss(ctx, tag)
    if loss_tag is None or ctx.run.roles.get(loss_tag) not in (
        Role.VAL_LOSS,
        Role.VAL_LOSS_COMPONENT,
    ):
        return
    loss = ctx.curve(loss_tag).finite
    steps, accuracy = signal.accuracy_levels(ctx, tag)
    if accuracy.size == 0 or len(loss) < 3:
        return
    at = signal.steps_on_axis_of_tag(ctx, tag, loss_tag, steps)
    covered = (at >= loss.steps[0]) & (at <= loss.steps[-1])
    steps, at, accuracy = steps[covered], at[covered], accuracy[covered]
    width = signal.window(accuracy.size, params.window_fraction, params.min_evaluations - 1)
    if accuracy.size < params.min_evaluations or width >= accuracy.size:
        return
    span = signal.window(accuracy.size, params.smoothing)
    smooth = signal.ema(accuracy, span)
    loss_smooth = signal.smoothed_at(loss.steps, loss.values, at, params.smoothing)
    # Both smoothed curves falling at every evaluation of a stretch: a start-of-run outlier
    # (an evaluation before training) cannot make a rising loss look like a falling one.
    both_fall = (np.diff(smooth) < 0) & (np.diff(loss_smooth) < 0)
    first, length = signal.longest_run(both_fall)
    last = first + length
    drop = signal.flat_tolerance(accuracy, span, params.min_accuracy_drop)
    if length < width or loss_smooth[first] <= 0:
        return
    accuracy_fall = float(smooth[first] - smooth[last])
    loss_fall = float((loss_smooth[first] - loss_smooth[last]) / loss_smooth[first])
    if accuracy_fall < drop or loss_fall < params.min_loss_fall:
        return
    yield check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(steps[first], steps[last]),
        message=(
            f"{tag} fell {fmt(accuracy_fall, 3)} ({fmt(float(smooth[first]), 3)} -> "
            f"{fmt(float(smooth[last]), 3)}) while {loss_tag} fell {loss_fall:.0%} over steps "
            f"{int(steps[first]):,}..{int(steps[last]):,} (thresholds: accuracy drop "
            f"{fmt(drop, 2)}, loss fall {params.min_loss_fall:.0%}, over {width}+ evaluations)"
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
