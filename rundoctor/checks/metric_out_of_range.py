"""Metrics outside the range they can take: accuracy outside [0, 1], negative losses, AUC < 0.5.

What it detects
---------------
- Accuracy series (training or validation), per-class and balanced metrics and AUCs with
  values below 0 or above 1.  A series logged in percent (every value in [0, 100], a peak
  above 5 and the median above 1, as mmdetection logs ``acc``) is not an error when its
  level agrees with the loss: it gets an informational finding, since thresholds written
  for [0, 1] would misread it.  It is a metric bug when the loss contradicts the percent
  reading: each misclassified example costs a cross-entropy of at least ln 2, so a mean
  loss L allows an accuracy no lower than 1 - L / ln 2.  An accuracy read as percent that
  lies more than ``bound_margin`` below that bound at the end of the run (e.g. 5.7 "%"
  with a validation loss of 0.22, which needs at least 68%) is a count summed over
  batches, not a percentage: a warning, an error when it lies more than half below.
- Negative values of the main training or validation loss.  Only those two roles are
  judged: loss components (GAN discriminator and generator terms, Wasserstein critics,
  KL or contrastive terms) are legitimately signed.  A loss that starts non-negative and
  turns negative is reported with high confidence (e.g. an mmdetection run exploding to
  -7e28); one negative from its first point with medium confidence, because some
  objectives are signed by design (the NLL of a continuous density, an ELBO).
- AUC series (role ``auc``) outside [0, 1], or persistently below
  0.5: the median of the second half of the run at least 0.03 below 0.5 with 80% of its
  points below 0.5.

Why it matters
--------------
Cross-entropy and squared error cannot be negative and accuracy cannot exceed 1: such
values come from a bug in the metric or loss code (wrong reduction, a sign flipped, a sum
over the wrong axis, a counter divided by the wrong total) or from a numerical blow-up, and
every conclusion drawn from the series is void.  Noise principle: the bound compares the
median of the accuracy's last quarter with the mean loss over the same steps (the mean,
since a cross-entropy is a mean; its top 1% clipped so one diverging batch cannot set it).  An AUC below 0.5 means the scores rank the
classes backwards: labels or scores are inverted.

What to try
-----------
Recompute the metric by hand on one batch.  For accuracy: check the denominator (samples,
not batches; masked tokens excluded) and the units.  For a negative loss: check the sign,
that probabilities (not logits) go into log-based losses, and, if the loss exploded, lower
the learning rate and clip gradients.  For AUC below 0.5: check the positive label and
which column of the scores is passed (``y_score[:, 1]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import classification, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES, CLASS_METRIC_ROLES, Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``metric-out-of-range``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    negative_tolerance: float = field(
        default=1e-6, metadata={"help": "Loss values above minus this count as non-negative."}
    )
    auc_min_points: int = field(
        default=3, metadata={"help": "AUC points needed before 'persistently below 0.5' is judged."}
    )
    auc_margin: float = field(
        default=0.03, metadata={"help": "Median AUC of the second half must be this far below 0.5."}
    )
    auc_below_share: float = field(
        default=0.8, metadata={"help": "Share of second-half AUC points that must be below 0.5."}
    )
    bound_margin: float = field(
        default=0.1,
        metadata={
            "help": "A percent accuracy this far below 1 - loss / ln 2 (the least accuracy its "
            "cross-entropy allows) is a metric bug."
        },
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final share of an accuracy whose median meets the loss bound."}
    )


# Defaults: 1e-6 absorbs the rounding of a loss that reaches 0 (MSE, KL of identical
# distributions); 0.03 below 0.5 over half the run is beyond the noise of an AUC measured on
# a few hundred examples, and 80% of the points keeps one lucky evaluation from hiding it.
# 0.1 below the loss bound: the bound holds for every cross-entropy, so the margin only
# absorbs an evaluation loss and accuracy measured on slightly different sets.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Accuracies, class metrics and AUCs outside [0, 1], AUCs persistently below 0.5, and negative
    training or validation losses."""
    for tag in ctx.tags(*ACCURACY_ROLES):
        yield from _range(check, ctx, params, tag, "an accuracy")
    for tag in ctx.tags(*CLASS_METRIC_ROLES):
        yield from _range(check, ctx, params, tag, "a per-class or balanced metric")
    for tag in ctx.tags(Role.AUC):
        yield from _range(check, ctx, params, tag, "an AUC")
        yield from _auc_below_half(check, ctx, params, tag)
    for tag in ctx.tags(Role.TRAIN_LOSS, Role.VAL_LOSS):
        yield from _negative_loss(check, ctx, params, tag)


def _range(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, kind: str
) -> Iterator[Finding]:
    """A [0, 1] metric outside [0, 1], or the same metric logged in percent."""
    curve = ctx.curve(tag).finite
    values = curve.values
    if values.size == 0:
        return
    if measures.accuracy_scale(values) == 100.0:
        contradicted = _percent_against_loss(check, ctx, params, tag) if kind == "an accuracy" else None
        if contradicted is not None:
            yield contradicted
            return
        median = measures.median(values)
        yield check.finding(
            ctx,
            tags=(tag,),
            steps=(curve.steps[0], curve.steps[-1]),
            message=(
                f"{tag} looks like {kind} in percent (values {fmt(float(values.min()), 3)}.."
                f"{fmt(float(values.max()), 3)}, median {fmt(median, 3)}, all within [0, 100]), "
                f"not a fraction in [0, 1]; read as percent by the other checks"
            ),
            evidence={
                "tag": tag,
                "min": float(values.min()),
                "max": float(values.max()),
                "median": median,
                "unit": "percent",
            },
            severity=Severity.INFO,
            advice=(
                f"Nothing to fix if {tag} is meant in percent; otherwise check its units, "
                f"or override its role if it is not {kind}."
            ),
        )
        return
    outside = (values < 0.0) | (values > 1.0)
    if not outside.any():
        return
    where = curve.steps[outside]
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(where[0], where[-1]),
        message=(
            f"{tag} is outside [0, 1] at {int(outside.sum())} of {values.size} points "
            f"(min {fmt(float(values.min()))}, max {fmt(float(values.max()))}, first at step "
            f"{int(where[0]):,}): {kind} must lie in [0, 1]"
        ),
        evidence={
            "tag": tag,
            "points_outside": int(outside.sum()),
            "points": int(values.size),
            "min": float(values.min()),
            "max": float(values.max()),
            "first_outside_step": int(where[0]),
            "range_low": 0.0,
            "range_high": 1.0,
        },
    )


def _percent_against_loss(
    check: Check[Params], ctx: RunContext, params: Params, tag: str
) -> Finding | None:
    """A metric bug when the loss rules out the percent reading of ``tag`` (see the docstring)."""
    curve = ctx.curve(tag).finite
    width = measures.window(len(curve), params.tail_fraction, 1)
    first = float(curve.steps[-width])
    loss = measures.loss_between(ctx, tag, first, float(curve.steps[-1]))
    if loss is None or loss[1].size == 0:
        return None
    loss_tag, values = loss
    mean = classification.mean_loss(values)
    bound = classification.min_accuracy_for_loss(mean)
    reading = measures.median(curve.values[-width:]) / 100.0
    gap = bound - reading
    if not (np.isfinite(gap) and gap > params.bound_margin):
        return None
    severe = gap > 0.5
    return check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(first, curve.steps[-1]),
        message=(
            f"{tag} ends at {fmt(reading * 100.0, 3)} (values {fmt(float(curve.values.min()), 3)}.."
            f"{fmt(float(curve.values.max()), 3)}): read as percent that is {reading:.1%}, but "
            f"{loss_tag} at {fmt(mean, 3)} allows no accuracy below 1 - loss/ln 2 = {bound:.0%} "
            f"(margin {params.bound_margin:g}): the metric is miscounted (summed over batches?), "
            f"not in percent"
        ),
        evidence={
            "tag": tag,
            "loss_tag": loss_tag,
            "final_value": reading * 100.0,
            "percent_reading": reading,
            "loss_level": mean,
            "accuracy_bound": bound,
            "min": float(curve.values.min()),
            "max": float(curve.values.max()),
            "threshold_margin": params.bound_margin,
        },
        severity=Severity.ERROR if severe else Severity.WARNING,
        confidence=Confidence.HIGH if severe else Confidence.MEDIUM,
    )


def _negative_loss(
    check: Check[Params], ctx: RunContext, params: Params, tag: str
) -> Iterator[Finding]:
    curve = ctx.curve(tag).finite
    negative = curve.values < -params.negative_tolerance
    if not negative.any():
        return
    where = curve.steps[negative]
    turned = bool(curve.values[0] >= -params.negative_tolerance)
    how = (
        f"turned negative at step {int(where[0]):,}"
        if turned
        else "is negative from its first point (a signed objective by design?)"
    )
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(where[0], where[-1]),
        message=(
            f"{tag} {how}: {int(negative.sum())} of {curve.values.size} points below 0 "
            f"(min {fmt(float(curve.values.min()))}, threshold -{params.negative_tolerance:g}); "
            f"cross-entropy and squared-error losses cannot be negative"
        ),
        evidence={
            "tag": tag,
            "negative_points": int(negative.sum()),
            "points": int(curve.values.size),
            "min": float(curve.values.min()),
            "first_negative_step": int(where[0]),
            "first_value": float(curve.values[0]),
            "threshold": -params.negative_tolerance,
        },
        confidence=Confidence.HIGH if turned else Confidence.MEDIUM,
    )


def _auc_below_half(
    check: Check[Params], ctx: RunContext, params: Params, tag: str
) -> Iterator[Finding]:
    curve = ctx.curve(tag).finite
    auc = ctx.measure(measures.fraction_values, curve.values)  # empty when out of range (reported above)
    if auc.size < params.auc_min_points:
        return
    half = auc.size // 2
    second = auc[half:]
    median = measures.median(second)
    below = float(np.mean(second < 0.5))
    if not (median <= 0.5 - params.auc_margin and below >= params.auc_below_share):
        return
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(curve.steps[half], curve.steps[-1]),
        message=(
            f"{tag} stays below 0.5 over the second half of the run (median {fmt(median, 3)}, "
            f"{below:.0%} of points below 0.5; thresholds {fmt(0.5 - params.auc_margin, 3)} and "
            f"{params.auc_below_share:.0%}): the scores rank the classes backwards"
        ),
        evidence={
            "tag": tag,
            "median_second_half": median,
            "share_below_half": below,
            "threshold_median": 0.5 - params.auc_margin,
            "threshold_share": params.auc_below_share,
        },
        advice=(
            "Check the positive label and which score column is passed (y_score[:, 1]); "
            "labels or scores are inverted somewhere between the model and the metric."
        ),
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """An accuracy summed over two batches instead of averaged: it climbs past 1."""
    steps = np.arange(25)
    return steps, 2.0 * (0.95 - 0.6 * np.exp(-steps / 5.0))


CHECK = Check(
    code="M006",
    name="metric-out-of-range",
    title="Metric outside its possible range",
    severity=Severity.ERROR,
    needs=(
        (
            *ACCURACY_ROLES,
            *CLASS_METRIC_ROLES,
            Role.AUC,
            Role.TRAIN_LOSS,
            Role.VAL_LOSS,
        ),
    ),
    params=Params,
    advice=(
        "Recompute the metric by hand on one batch: check the denominator and units of "
        "accuracies, the sign of the loss and that log-losses get probabilities or logits as "
        "documented; if the loss exploded, lower the learning rate and clip gradients."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
