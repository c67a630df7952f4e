"""Accuracy flat while its loss keeps falling.

What it detects
---------------
An accuracy series (training or validation) that has stayed flat, at a level well below
saturation, for a long final stretch of the run while the matching loss (validation loss
for validation accuracy when one is logged, else the training loss) fell over that stretch
and is still falling at its end.

Noise principle: the loss must fall beyond its own noise, and the accuracy's band (its
noise around the smoothed level, at least ``flat_tolerance``) must be narrower than
``max_band`` for flatness to mean anything.  Its trend over the flat stretch
is a Theil-Sen fit on block medians with an error widened by the effective sample size of
its autocorrelated residuals, judged with Student's t on those effective points (see
``checks/trend.py``), so a validation loss evaluated five or six times, or one that
oscillates, does not count as falling.  A fall at ``confidence`` is info; a warning needs
``strong_confidence``.  Nothing is said of an accuracy above ``max_level`` (saturated, at its
ceiling) or of one impossible next to its own split's cross-entropy (accuracy below
1 - loss / ln 2: a broken metric, which metric checks report), of an accuracy that
had already climbed above its first value and whose own robust trend over the stretch still
rises at ``confidence`` by two ``flat_tolerance`` (a coarse accuracy still climbing inside
its noise band is not flat; one still at its start that begins to lift is the jump), of an
accuracy that climbed and still moves with its loss at the rate the run itself showed before
the stretch (the gain that rate predicts from the loss's fall would sit inside the flat band,
or the accuracy's fitted change reaches ``min_coupling`` of it: a slowly converging run, a
language model's token accuracy late in training), or under a logged learning rate tiny for its optimizer
(lr-too-low's floors: the loss crawls and the accuracy will not jump; lr-too-low names the
cause), or of an accuracy that climbed more than ``converged_share`` of the way from chance
(when the classes are unknown, from the lowest opening level of the run's accuracies) to 1:
it made its move, and the loss falls on from confidence in what it already gets right.

Why it matters
--------------
Accuracy only moves when predictions cross the decision boundary; the loss moves as soon
as the model grows more confident in the right direction.  A falling loss under a flat
accuracy means the model is still learning, and accuracy often jumps after a long flat
stretch (phase changes, grokking).  Stopping now, or judging the run by its accuracy
alone, throws that away.

What to try
-----------
Do not stop yet: keep training while the loss falls, and judge progress by the loss.
If the budget is fixed, compare a checkpoint from later in the run before deciding.  Make
sure early stopping monitors the loss, or a patience long enough for the stretch seen here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import lr_too_low, measures, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import ACCURACY_ROLES, Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``metric-flat-loss-falling``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=8, metadata={"help": "Accuracy points needed before the check judges a curve."}
    )
    smoothing: float = field(
        default=0.05,
        metadata={"help": "Smoothing window (accuracy EMA, loss median) as a share of the points."},
    )
    flat_tolerance: float = field(
        default=0.01,
        metadata={"help": "Half-width of the band (accuracy units) a flat curve stays in."},
    )
    max_band: float = field(
        default=0.05,
        metadata={"help": "Widest noise band (accuracy units) in which an accuracy can still be shown flat."},
    )
    min_flat_fraction: float = field(
        default=0.3,
        metadata={"help": "Shortest flat stretch worth reporting, as a fraction of the run."},
    )
    max_level: float = field(
        default=0.8,
        metadata={"help": "Flat accuracy above this is saturation, not a stall."},
    )
    converged_share: float = field(
        default=0.5,
        metadata={
            "help": "Share of the way from chance (else the run's lowest opening accuracy) to 1 "
            "beyond which an accuracy that climbed there is converging, not stalled."
        },
    )
    min_loss_fall: float = field(
        default=0.05,
        metadata={"help": "Least relative fall of the smoothed loss over the flat stretch."},
    )
    confidence: float = field(
        default=0.8,
        metadata={"help": "Confidence that the loss falls over the flat stretch (else no finding)."},
    )
    strong_confidence: float = field(
        default=0.99,
        metadata={"help": "Confidence of that fall needed for a warning (else info)."},
    )
    min_coupling: float = field(
        default=0.5,
        metadata={
            "help": "Share of the gain its loss's fall predicts (at the run's own earlier rate) "
            "that an accuracy which climbed must fall short of to be flat."
        },
    )
    min_recent_fall: float = field(
        default=0.015,
        metadata={
            "help": "Least relative fall over the second half of the stretch (still falling)."
        },
    )


# Defaults: a one-point band (0.01) is below what anyone reads as progress on an accuracy
# plot; 30% of the run is long enough to tempt someone to stop.  Above 0.8 a flat curve is
# usually saturated (detector background accuracy, easy data) and healthy runs show it all
# the time.  Below it, an accuracy that rose more than half the way from chance to 1 is past
# the move the rulebook's flat stretches precede (grokking's validation accuracy sits at chance,
# a staged task's at a first plateau well under half way); its loss falls on by confidence.
# A 5% loss fall is beyond epoch-to-epoch noise of smoothed losses, and 1.5% over
# the last half separates "still falling" from a loss that has just converged.  An info note
# ("it may still jump") needs the fall at 80% confidence, which a validation loss evaluated
# ten times can show; a warning needs 99%.  An accuracy whose own noise widens the band past
# +-0.05 (a few dozen evaluation examples, a wildly bouncing run) cannot show a stall: the
# jump it would precede is the size of its noise.  An accuracy gaining half of what its loss's fall
# predicts is moving with it (noise and the bend of the accuracy-loss relation easily halve a
# prediction from one earlier rate); a stall gains a small fraction of it.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding per accuracy series that stays flat while its matching loss keeps falling."""
    for tag in ctx.tags(*ACCURACY_ROLES):
        finding = _judge(check, ctx, params, tag)
        if finding is not None:
            yield finding


def _judge(check: Check[Params], ctx: RunContext, params: Params, tag: str) -> Finding | None:
    steps, accuracy = measures.accuracy_levels(ctx, tag)
    loss_tag = measures.matching_loss(ctx, tag)
    if accuracy.size < params.min_points or loss_tag is None:
        return None
    span = measures.window(accuracy.size, params.smoothing)
    smooth = ctx.measure(measures.ema, accuracy, span)
    tolerance = measures.flat_tolerance(ctx, accuracy, span, params.flat_tolerance)
    if tolerance > params.max_band:
        return None  # so noisy that a jump of several points would hide in its band: not shown flat
    start = measures.trailing_flat_start(smooth, tolerance)
    run_span = float(steps[-1] - steps[0])
    flat_steps = float(steps[-1] - steps[start]) if start < steps.size else 0.0
    if run_span <= 0 or flat_steps / run_span < params.min_flat_fraction:
        return None
    level = measures.median(accuracy[start:])
    if level > params.max_level:
        return None
    classes = ctx.num_classes
    base = 1.0 / classes.value if classes is not None else _opening_level(ctx, params)
    if level - base > 2.0 * tolerance and base < 1.0 and (level - base) / (1.0 - base) > params.converged_share:
        # It made its move: most of the way from chance to 1 is behind it, and the loss falls
        # on from confidence in what it already gets right.  The jumps this check warns of
        # come from an accuracy that has not moved yet (at chance, or a little above).
        return None
    loss = ctx.curve(loss_tag).finite
    at = measures.steps_on_axis_of_tag(ctx, tag, loss_tag, steps)
    if len(loss) < 3 or loss.steps[0] > at[start] or loss.steps[-1] < at[-1]:
        return None  # the loss does not cover the flat stretch
    opening, first, middle, last = measures.smoothed_at(
        ctx, loss_tag, np.array([at[0], at[start], (at[start] + at[-1]) / 2.0, at[-1]]), params.smoothing
    )
    if first <= 0:
        return None
    fall = (first - last) / first
    recent_fall = (middle - last) / middle if middle > 0 else float("nan")
    if not (fall >= params.min_loss_fall and recent_fall >= params.min_recent_fall):
        return None
    # "Flat" is a claim too: an accuracy that had already climbed above where it started
    # (by more than its band) and whose own trend over the stretch still rises at
    # ``confidence`` by two points of accuracy is a climb that slowed, hidden in its noise
    # band (a coarse accuracy of a few hundred evaluation sequences wanders +-0.05), not a
    # stall.  One still at its starting level whose trend starts to lift is the jump itself.
    # (Asked after the cheaper tests of the loss, its trend only of an accuracy that climbed.)
    climbed = level - float(accuracy[0]) > 2.0 * tolerance
    first_look = trend.line(steps[start:], accuracy[start:]) if climbed else None
    if (
        first_look is not None
        and first_look.change >= 2.0 * params.flat_tolerance
        and first_look.trend().rising(params.confidence)
    ):
        return None
    if first_look is not None and _tracks_loss(
        opening, first, last, level - measures.median(accuracy[:span]), first_look.change, tolerance,
        params.min_coupling,
    ):
        return None
    # The fall must be beyond the loss's own noise: a robust trend over the flat stretch
    # whose error accounts for autocorrelation and few evaluations (see checks/trend.py).
    inside = (loss.steps >= at[start]) & (loss.steps <= at[-1])
    fit = trend.trend(loss.steps[inside], loss.values[inside])
    if fit is None or not fit.falling(params.confidence):
        return None
    if _inconsistent(ctx, tag, loss_tag, level, float(last)):
        return None  # a cross-entropy this low cannot go with this accuracy: the metric is broken
    tiny = lr_too_low.tiny_rate(ctx, lr_too_low.CHECK.default_params())
    if tiny is not None:
        # The log names the cause: a rate far below any its optimizer trains at moves the loss
        # a little and the accuracy not at all.  It will not jump; lr-too-low says why.
        return None
    strong = fit.sigmas <= -fit.critical(params.strong_confidence)
    # Less than half a chance level above 1/C: the accuracy has not left chance at all.
    near_chance = classes is not None and level <= 1.5 / classes.value
    evidence = {
        "accuracy_tag": tag,
        "loss_tag": loss_tag,
        "flat_level": level,
        "flat_band": tolerance,
        "flat_from_step": int(steps[start]),
        "flat_steps": int(flat_steps),
        "flat_fraction": flat_steps / run_span,
        "loss_at_flat_start": float(first),
        "loss_at_end": float(last),
        "loss_fall": float(fall),
        "loss_fall_second_half": float(recent_fall),
        "threshold_flat_fraction": params.min_flat_fraction,
        "threshold_loss_fall": params.min_loss_fall,
        "threshold_max_level": params.max_level,
        "loss_trend_standard_errors": max(fit.sigmas, -1e6),
        "loss_effective_points": fit.effective,
    }
    if classes is not None:
        evidence.update(chance_level=1.0 / classes.value, num_classes_source=classes.source)
    split = "validation" if ctx.run.roles.get(tag) is Role.VAL_ACCURACY else "training"
    at_chance = " (near chance)" if near_chance else ""
    message = (
        f"{split} accuracy {tag} flat at {fmt(level, 3)}{at_chance} (±{fmt(tolerance, 2)}) "
        f"for the last {flat_steps:,.0f} steps ({flat_steps / run_span:.0%} of the run) "
        f"while {loss_tag} fell {fall:.0%} ({fmt(first)} -> {fmt(last)}) and is still falling "
        f"(thresholds: flat >= {params.min_flat_fraction:.0%} of the run, "
        f"loss fall >= {params.min_loss_fall:.0%})"
    )
    if not strong:
        message += (
            f"; the loss trend is {-fit.sigmas:.1f} standard errors over {fit.effective:.0f} "
            f"effective points, short of {params.strong_confidence:.0%} confidence"
        )
    return check.finding(
        ctx,
        tags=(tag, loss_tag),
        steps=(steps[start], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.WARNING if strong else Severity.INFO,
        confidence=Confidence.HIGH if near_chance and strong else Confidence.MEDIUM if strong else Confidence.LOW,
    )


def _opening_level(ctx: RunContext, params: Params) -> float:
    """Where the run's accuracies started, when chance is unknown: the lowest opening level
    (median of the first ``smoothing`` of the points) of its accuracy series.  They share one
    chance level, and the one logged from the first step shows it best (a validation
    accuracy first evaluated after an epoch may already be most of the way up)."""
    openings = []
    for tag in ctx.tags(*ACCURACY_ROLES):
        _, values = measures.accuracy_levels(ctx, tag)
        if values.size:
            openings.append(measures.median(values[: measures.window(values.size, params.smoothing)]))
    return min(openings) if openings else 1.0


def _tracks_loss(
    loss_at_start: float,
    loss_at_flat_start: float,
    loss_at_end: float,
    accuracy_gain_before: float,
    accuracy_change: float,
    tolerance: float,
    min_coupling: float,
) -> bool:
    """Whether an accuracy that climbed is still moving with its loss, as it did before.

    Before the stretch the run itself showed how much accuracy one unit of loss buys (its
    gain over the loss's fall).  At that rate the loss's fall over the stretch predicts a
    gain; a stretch is a stall only when that prediction stands out of the flat band (twice
    its half-width) and the accuracy's fitted change falls short of ``min_coupling`` of it.
    Late in a long run (a language model's token accuracy, most slowly converging runs) the
    loss falls a few percent and the accuracy creeps up in proportion: slow, not stuck, and
    nothing is about to jump.
    """
    fall_before = loss_at_start - loss_at_flat_start
    if not (fall_before > 0 and accuracy_gain_before > 0):
        return False  # no coupling to go by
    expected = accuracy_gain_before / fall_before * (loss_at_flat_start - loss_at_end)
    if expected < 2.0 * tolerance:
        return True  # a gain this small would sit inside the band: flatness shows nothing
    return accuracy_change >= min_coupling * expected


def _inconsistent(ctx: RunContext, tag: str, loss_tag: str, accuracy: float, loss: float) -> bool:
    """Whether an accuracy is impossible next to the cross-entropy of the same split.

    Every misclassified example has a true-class probability of at most 1/2, so it adds at
    least ln 2 to the mean cross-entropy: accuracy >= 1 - loss / ln 2.  A flat accuracy far
    below that is a broken metric (summed over batches, wrong labels), not one about to jump.
    Only an accuracy against its own split's loss, and only when the loss is below ln 2
    (above it the bound says nothing).
    """
    roles = ctx.run.roles
    same_split = (roles.get(tag), roles.get(loss_tag)) in (
        (Role.VAL_ACCURACY, Role.VAL_LOSS),
        (Role.TRAIN_ACCURACY, Role.TRAIN_LOSS),
    )
    return same_split and 0 <= loss < math.log(2.0) and accuracy < 1.0 - loss / math.log(2.0) - 0.05


def _example() -> tuple[np.ndarray, np.ndarray]:
    """An accuracy that rises, then sits at 0.5 while the loss keeps falling."""
    steps = np.arange(0, 20000, 500)
    return steps, np.minimum(0.3 + steps / 20000.0, 0.5)


CHECK = Check(
    code="M001",
    name="metric-flat-loss-falling",
    title="Accuracy flat while the loss still falls",
    severity=Severity.WARNING,
    needs=(ACCURACY_ROLES, (Role.TRAIN_LOSS, Role.VAL_LOSS)),
    params=Params,
    advice=(
        "Do not stop yet: the falling loss says the model is still learning and accuracy often "
        "jumps after a flat stretch. Keep training while the loss falls, judge progress by the "
        "loss, and give early stopping on accuracy enough patience (or monitor the loss)."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
