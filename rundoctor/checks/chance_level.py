"""Accuracy stuck at chance or at a constant rate, with the loss at the prior's level.

What it detects
---------------
An accuracy series stuck for at least half of the run while the matching loss sits flat
at the level of a model that ignores its input:

- at chance (C known from ``--num-classes``, the run's hyper-parameters, or inferred): the
  smoothed accuracy stays within a half-point band (or its own noise) around 1/C and the
  loss is within 5% of ln C.  With no loss logged the accuracy alone is reported, with
  medium confidence;
- at a constant rate a: the accuracy repeats the bit-identical value a (strictly between 0
  and 1) at every evaluation of the stretch, and the loss lies between the entropy of a
  label prior whose majority class has frequency a (at least max(h(a), -ln a), h the
  binary entropy) and ln C (C unknown: ln round(1/a), at least ln 2).  A model predicting
  the prior for every input has exactly this loss, and its accuracy, the majority rate,
  does not move by a single sample between evaluations.  The loss level alone would not
  do: a calibrated model that learned also has a loss near h(a).  The training loss must
  not lie below that band either: no constant prediction fits its training data better
  than the prior's entropy, so a converged model that repeats its score on a small
  evaluation set (351/359, validation loss high from a few confident errors) while its
  training loss is far below is not a prior predictor.

Not reported: a stretch that ended before the run did (the model was stuck, then learned:
a hard task early in training, or delayed generalisation, which its own check reports), a
loss that still falls significantly over the stretch (learning has started), and an
accuracy at its ceiling (``ceiling``: a converged model repeats 199/200 on a small set).

Severity follows the evidence: an error when the accuracy sat at chance with the loss at
ln C for ``strong_points`` evaluations or more and ``strong_fraction`` of the run; a
warning otherwise (fewer points, or a constant rate that only matches a prior).

Noise principle: the stuck band is the larger of ``stuck_tolerance`` and three noise
sigmas of the smoothed accuracy (MAD of differences); the loss's flatness compares quarter
medians against the noise of such a median, so per-batch heavy tails neither fake a fall
nor hide one.

Why it matters
--------------
The model is predicting the class prior: its outputs do not depend on the input, so
nothing has been learned.  Usual causes: a learning rate too low (or zero, or a frozen
model), inputs or labels broken by the data pipeline (shuffled labels, constant inputs,
wrong columns), a dead network (all-zero activations), or a loss that does not reach the
parameters being trained.

What to try
-----------
Overfit one small batch first: if the loss does not go to zero, the model, loss or
optimizer wiring is broken.  Check the learning rate actually applied (warm-up, scheduler,
LoRA or frozen layers), that inputs vary and labels match them, and that gradients are
non-zero.  Try a 10x larger learning rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import classification, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES


@dataclass(frozen=True)
class Params:
    """Thresholds of ``chance-level``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Stuck accuracy points needed before the check judges."}
    )
    smoothing: float = field(
        default=0.05, metadata={"help": "EMA span as a fraction of the accuracy points."}
    )
    stuck_tolerance: float = field(
        default=0.005,
        metadata={"help": "Half-width of the band (accuracy units) a stuck curve stays in."},
    )
    min_stuck_fraction: float = field(
        default=0.5, metadata={"help": "Share of the run the accuracy must stay stuck."}
    )
    chance_tolerance: float = field(
        default=0.2, metadata={"help": "At chance: accuracy within this fraction of 1/C."}
    )
    loss_tolerance: float = field(
        default=0.05,
        metadata={"help": "Relative slack on the loss band (ln C, label entropy)."},
    )
    loss_flat: float = field(
        default=0.03,
        metadata={"help": "Largest relative loss change between the halves of the stuck stretch."},
    )
    min_loss_fall: float = field(
        default=0.01,
        metadata={"help": "A loss falling this much (and 3 noise sigmas) over the stretch is learning: not stuck."},
    )
    ceiling: float = field(
        default=0.98, metadata={"help": "A constant accuracy at or above this is saturated, not a prior."}
    )
    end_gap: float = field(
        default=0.05,
        metadata={"help": "The stuck stretch must reach within this share of the run of its end."},
    )
    strong_points: int = field(
        default=10, metadata={"help": "Stuck evaluations needed (with strong_fraction) for an error."}
    )
    strong_fraction: float = field(
        default=0.8, metadata={"help": "Share of the run stuck needed (with strong_points) for an error."}
    )


# Defaults: a model that predicts the prior scores the same accuracy at every evaluation of
# a fixed set (R01-R04 vary by 0.0015), so half a point of band is generous while a model
# that learns moves by more.  Half of the run rules out the first epochs before training
# takes hold.  20% of 1/C and 5% on the loss absorb an evaluation set whose class mix is
# not exactly the training prior; a 3% loss change separates a flat loss from one still
# falling toward the prior.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding per accuracy series stuck at chance or a constant rate (see the module docstring)."""
    for tag in ctx.tags(*ACCURACY_ROLES):
        finding = _judge(check, ctx, params, tag)
        if finding is not None:
            yield finding


@dataclass(frozen=True)
class _Stretch:
    """Where an accuracy curve is stuck: steps first..last, its level and band."""

    first: float
    last: float
    points: int  # logged points in the stretch
    share: float  # of the accuracy curve's step range
    level: float
    band: float


def _judge(check: Check[Params], ctx: RunContext, params: Params, tag: str) -> Finding | None:
    curve = ctx.curve(tag).finite
    accuracy = ctx.measure(measures.fraction_values, curve.values)
    if accuracy.size < params.min_points or curve.steps[-1] == curve.steps[0]:
        return None
    end, span = float(curve.steps[-1]), float(curve.steps[-1] - curve.steps[0])
    if ctx.num_classes:
        stretch = _at_chance(ctx, tag, params, ctx.num_classes.value)
        if stretch is not None and _long(stretch, params, end, span):
            finding = _report(check, ctx, params, tag, stretch, at_chance=True)
            if finding is not None:
                return finding
    stretch = _bit_identical(curve.steps, accuracy, params.ceiling)
    if stretch is not None and _long(stretch, params, end, span):
        return _report(check, ctx, params, tag, stretch, at_chance=False)
    return None


def _at_chance(ctx: RunContext, tag: str, params: Params, classes: int) -> _Stretch | None:
    """The final stretch where the smoothed accuracy stays flat, if its level is 1/C."""
    steps, accuracy = measures.accuracy_levels(ctx, tag)
    span = measures.window(accuracy.size, params.smoothing)
    band = measures.flat_tolerance(ctx, accuracy, span, params.stuck_tolerance)
    start = measures.trailing_flat_start(ctx.measure(measures.ema, accuracy, span), band)
    if start >= accuracy.size:
        return None
    level = measures.median(accuracy[start:])
    if abs(level * classes - 1.0) > params.chance_tolerance:
        return None
    logged = ctx.curve(tag).finite.steps
    points = logged.size - int(np.searchsorted(logged, steps[start]))
    share = (steps[-1] - steps[start]) / (steps[-1] - steps[0])
    return _Stretch(float(steps[start]), float(steps[-1]), points, float(share), level, band)


def _bit_identical(steps: np.ndarray, accuracy: np.ndarray, ceiling: float) -> _Stretch | None:
    """The longest run of bit-identical values, strictly between 0 and 1.

    A model that ignores its input scores exactly the same accuracy at every evaluation of a
    fixed set; a model that learns, even one that has converged, moves by a sample or two.
    Exactly 0 is a broken metric; at or above ``ceiling`` a converged model on a small set
    repeats its score too (199/200), so only levels below it are read as a prior.
    """
    start, length = measures.longest_run(accuracy[1:] == accuracy[:-1])
    level = float(accuracy[start])
    if length == 0 or not 0.0 < level < ceiling:
        return None
    first, last = float(steps[start]), float(steps[start + length])
    share = (last - first) / float(steps[-1] - steps[0])
    return _Stretch(first, last, length + 1, share, level, 0.0)


def _long(stretch: _Stretch, params: Params, end: float, span: float) -> bool:
    """Long enough, and still stuck at the end of the run (not a phase it learned out of)."""
    return (
        stretch.points >= params.min_points
        and stretch.share >= params.min_stuck_fraction
        and end - stretch.last <= params.end_gap * span
    )


def _report(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    stretch: _Stretch,
    *,
    at_chance: bool,
) -> Finding | None:
    first, last, level, points, share = (
        int(stretch.first),
        int(stretch.last),
        stretch.level,
        stretch.points,
        stretch.share,
    )
    evidence: dict[str, float | int | str] = {
        "accuracy_tag": tag,
        "accuracy_level": level,
        "stuck_band": stretch.band,
        "stuck_from_step": first,
        "stuck_to_step": last,
        "stuck_points": points,
        "stuck_fraction": share,
        "threshold_stuck_fraction": params.min_stuck_fraction,
    }
    known = ctx.num_classes
    classes = known.value if known else None
    if known:
        evidence.update(
            num_classes=known.value, num_classes_source=known.source, chance_level=1.0 / known.value
        )
    # ``at_chance`` is only ever set with the number of classes known.
    chance = (
        f"at chance 1/{known.value} = {fmt(1.0 / known.value, 3)} ({known.source})" if known else ""
    )
    how = f"(±{fmt(stretch.band, 2)})" if at_chance else "(bit-identical)"
    head = (
        f"{tag} stuck at {fmt(level, 4)} {how} for {points} points "
        f"({share:.0%} of the run, threshold {params.min_stuck_fraction:.0%})"
    )
    loss = measures.loss_between(ctx, tag, stretch.first, stretch.last)
    if loss is None or loss[1].size < 2:
        if not at_chance:
            return None
        message = f"{head} {chance}; no loss is logged to corroborate"
        return check.finding(
            ctx,
            tags=(tag,),
            steps=(first, last),
            message=message,
            evidence=evidence,
            severity=Severity.WARNING,
            confidence=Confidence.MEDIUM,
        )
    loss_tag, values = loss
    early, late = measures.edge_levels(values, 0.5, 1)
    change = abs(late - early) / late if late > 0 else float("inf")
    if at_chance and classes is not None:
        uniform = float(np.log(classes))
        lower = (1.0 - params.loss_tolerance) * uniform
    else:
        # A prior predictor's loss is the prior's entropy: at least h(a) and -ln a when its
        # majority rate is a, at most ln C (C unknown: ln round(1/a), at least ln 2); the
        # evaluation set's class mix may differ a little from the training prior.
        uniform = float(np.log(classes or max(2, round(1.0 / level))))
        entropy_floor = classification.min_prior_entropy(level)
        lower = (1.0 - params.loss_tolerance) * min(uniform, entropy_floor)
    upper = (1.0 + params.loss_tolerance) * uniform
    evidence.update(
        loss_tag=loss_tag,
        loss_level=late,
        loss_change=change,
        prior_loss_low=float(lower),
        prior_loss_high=float(upper),
        threshold_loss_flat=params.loss_flat,
        threshold_loss_tolerance=params.loss_tolerance,
    )
    if change > params.loss_flat or not lower <= late <= upper:
        return None
    train = classification.train_loss_level(ctx, tag, stretch.first, stretch.last)
    if not at_chance and train is not None and train[0] != loss_tag:
        evidence.update(train_loss_tag=train[0], train_loss_level=train[1])
        if train[1] < lower:
            return None  # it fits its training data better than any prior: the outputs use the input
    if classification.still_falling(values, params.min_loss_fall):
        return None  # learning has started: a hard task early on, not a model that ignores its input
    strong = at_chance and points >= params.strong_points and share >= params.strong_fraction
    if at_chance and classes is not None:
        where = f"{chance} with {loss_tag} flat at {fmt(late)} ≈ ln {classes} = {fmt(uniform)}"
    else:
        where = (
            f"with {loss_tag} flat at {fmt(late)}, the loss of a constant prediction "
            f"({fmt(float(lower), 3)}..{fmt(float(upper), 3)})"
        )
    return check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(first, last),
        message=(
            f"{head} {where}: the model predicts the class prior "
            f"(loss change {change:.1%}, threshold {params.loss_flat:.0%})"
        ),
        evidence=evidence,
        severity=Severity.ERROR if strong else Severity.WARNING,
        confidence=Confidence.HIGH if at_chance else Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """Accuracy stuck at 1/10 for a 10-class problem."""
    steps = np.arange(30)
    return steps, 0.1 + 0.0004 * np.sin(steps * 1.3)


CHECK = Check(
    code="M003",
    name="chance-level",
    title="Accuracy at chance: the model predicts the class prior",
    severity=Severity.ERROR,
    needs=(ACCURACY_ROLES,),
    params=Params,
    advice=(
        "Nothing is being learned: the outputs ignore the input. Overfit a single batch to test "
        "the wiring, check the learning rate actually applied (scheduler, warm-up, frozen or "
        "LoRA layers), check inputs vary and labels match them, and try a 10x larger learning rate."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
