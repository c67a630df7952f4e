"""The training loss never gets meaningfully below where it started.

What it detects
---------------
The main training loss whose best smoothed level stays within ``min_progress`` of its
initial level for the whole run, or, when the number of classes C is known, sits at ln C,
the cross-entropy of a uniform guess over C classes (the model predicts nothing better than
chance, whatever the loss was at the very first step).  A logged learning rate that is
exactly 0 over the last ``zero_rate_fraction`` of the run or more is named as the cause
(a step schedule with factor 0, a scheduler stepped per batch instead of per epoch); the
loss then has to fall ``zero_rate_progress`` to count as learning.

A best level at or above (1 - ``chance_floor``) of ln C (up to twice ln C: past that it is
not a mean cross-entropy over C classes) is no better than chance however far the loss fell
from an overconfident start: the model cannot fit its own training data.  With C unknown, a
classifier whose every logged accuracy stays at or below ``max_chance_accuracy`` over a loss
above ln 2 is still guessing: its loss is judged against its own early level (the median of
its first points: a first batch above it is the initialisation's overconfidence, shed in a
step by a bias finding the class prior), and when its training loss is too short and noisy to
be shown flat, a validation loss shown flat from its first evaluation (the trend's 95%
interval inside +-``min_progress``, no evaluation that far below the first) beside a
training trend that shows no fall is the evidence (frozen weights).

Severity follows the evidence: an error at chance, at a learning rate of 0, or for a loss
shown flat; a warning for a loss no better than chance and otherwise; info when the loss
started far below chance (``good_start`` of ln C; with C unknown, of ln 2, the chance loss of the fewest classes,
for a run that logs an accuracy): fine-tuning from a good model barely moves the loss.
A tiny logged learning rate is named as the likely cause.

Noise principle: the best level is a rolling median, so single heavy batches do not set
it; the initial level is the higher of the first value and the median of the first
``edge_fraction`` (an initialised model predicts near-uniformly: its first batches agree).
Both are moved by noise: the lowest of m rolling medians of w points sits about
sqrt(2 ln m) standard errors of one median below the true level by chance, and a start set
by the first value carries that point's noise, so only the fall beyond that allowance is
progress (robust point-to-point sigma); when that allowance exceeds ``max_noise_allowance`` of
the start, a halved loss cannot be told from a flat one and the finding is info (unless the
log shows the cause).  "Did not fall" is a flat claim and needs evidence:
the robust trend (Theil-Sen on block medians, error widened by the effective sample size
of autocorrelated residuals; ``checks/trend.py``) must rule out a fall of
``max_hidden_fall`` at 95%, or the loss is too noisy to judge and nothing is reported
(unless the log shows the cause: chance, a rate of 0).  "Shown flat" (an error) is that
interval inside +-``min_progress`` of the level.

Why it matters
--------------
Any model big enough to be worth training can memorise a small training set.  A training
loss that does not move means the network is not being trained on a learnable signal: the
gradients do not reach the weights, or the inputs and labels carry no relation the model
can see.  More epochs will not fix it, and the model is not too small: something upstream
of the architecture is broken.

What to try
-----------
Overfit one small batch (a few dozen examples) for a few hundred steps: the loss must go
to near zero.  If it does not, check in this order: the learning rate is not 0 or tiny and
the optimizer holds the model's parameters (``zero_grad``, ``backward``, ``step`` all
called; nothing frozen by mistake); inputs and labels line up (print a few, check shuffling
applies to both, labels are not constant); the loss gets what it expects (logits, not
softmax outputs, for cross-entropy; class indices vs one-hot); inputs are normalised.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import measures, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role

LN2 = math.log(2.0)
# An untrained classifier's cross-entropy sits near ln C, up to ~1.6 ln C for an
# overconfident initialisation; a loss above twice ln C is some other loss (a detector's sum
# of box, class and objectness terms, a sum over the batch) and says nothing about chance.
CROSS_ENTROPY_CEILING = 2.0


@dataclass(frozen=True)
class Params:
    """Thresholds of ``no-learning``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Finite training-loss points needed before judging."}
    )
    edge_fraction: float = field(
        default=0.05,
        metadata={"help": "Share of the points whose median (or first value if higher) starts it."},
    )
    smoothing: float = field(
        default=0.05,
        metadata={"help": "Rolling-median window for the best level, as a fraction of the points."},
    )
    min_progress: float = field(
        default=0.05,
        metadata={"help": "Least relative fall of the best level below the initial level."},
    )
    chance_margin: float = field(
        default=0.05,
        metadata={"help": "A best level within this fraction of ln C counts as chance."},
    )
    chance_floor: float = field(
        default=0.10,
        metadata={
            "help": "With C known, a best level at or above (1 - this) of ln C is no better "
            "than chance: the model cannot fit its own training data (a warning)."
        },
    )
    learned_rise: float = field(
        default=0.25,
        metadata={
            "help": "A training accuracy that rose this share of the way from chance to 1, to at "
            "least halfway, shows learning: no finding."
        },
    )
    max_chance_accuracy: float = field(
        default=0.5,
        metadata={
            "help": "With C unknown, a classifier whose every logged accuracy stays at or "
            "below this, over a loss above ln 2, looks like chance: its loss is judged "
            "against its own early level, and a validation loss shown flat is evidence."
        },
    )
    max_rise: float = field(
        default=2.0,
        metadata={"help": "A loss ending above this multiple of its start diverged: not reported here."},
    )
    zero_rate_fraction: float = field(
        default=0.5,
        metadata={
            "help": "A logged learning rate exactly 0 over this fraction of the run or more "
            "(to its end) is named as the cause."
        },
    )
    zero_rate_progress: float = field(
        default=0.3,
        metadata={
            "help": "With the rate 0 over most of the run, a fall below this is no learning "
            "(healthy runs fall 30% or more)."
        },
    )
    max_hidden_fall: float = field(
        default=0.2,
        metadata={
            "help": "The trend's 95% interval must rule out a fall this large (relative); a "
            "noisier loss is not judged unless the log shows the cause."
        },
    )
    good_start: float = field(
        default=0.5,
        metadata={
            "help": "A start below this fraction of ln C (of ln 2 when C is unknown and an "
            "accuracy is logged) is already a good model (fine-tuning): info, not a stall."
        },
    )
    max_noise_allowance: float = field(
        default=0.5,
        metadata={
            "help": "A fall chance alone reaches beyond this fraction of the initial level "
            "leaves a halved loss indistinguishable from a flat one: info unless the log "
            "shows the cause."
        },
    )


# Defaults: every healthy run seen falls by 30% or more, slow fine-tunes of pretrained
# models by 10% or more; 5% separates "learning slowly" from "not learning" with room for
# noise on the initial median.  Within 5% of ln C a classifier is no better than a guess.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding on the primary training loss: its best smoothed level never got
    meaningfully below where it started."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    # The first value counts: at initialisation a model predicts near-uniformly, so its first
    # batches agree; heavy tails come later, with confident mistakes.
    initial = measures.initial_level(level, params.edge_fraction)
    if not initial > 0:
        return
    width = measures.window(level.size, params.smoothing)
    smooth = ctx.measure(measures.rolling_median, level, width)
    best_index = int(np.argmin(smooth))
    best = float(smooth[best_index])
    if float(smooth[-1]) > params.max_rise * initial:
        return  # it rose far above its start: divergence (loss-divergence's business), not a stall
    classes = ctx.num_classes
    if _accuracy_learned(ctx, params, classes.value if classes is not None else None):
        return  # it learned: a loss that stays up beside it is underconfidence or a metric question
    # The lowest of m rolling medians of a flat noisy loss sits below its true level by chance
    # alone (about sqrt(2 ln m) standard errors of one median): only a fall beyond that is
    # progress, so a noisy loss that never moved does not pass for one that learned a little.
    luck = _selection_bias(level, width, first_sets_start=float(level[0]) >= initial)
    chance = math.log(classes.value) if classes is not None and classes.value >= 2 else None
    at_chance = chance is not None and abs(best - chance) <= params.chance_margin * chance
    # A best level at or above (1 - chance_floor) ln C is no better than a uniform guess: the
    # model cannot fit its own training data, whatever its fall from an overconfident start.
    # (A best level past CROSS_ENTROPY_CEILING ln C is not a mean cross-entropy over C classes.)
    no_better = (
        chance is not None
        and not at_chance
        and (1.0 - params.chance_floor) * chance <= best <= CROSS_ENTROPY_CEILING * chance
    )
    # With C unknown, an accuracy that never leaves the chance range (at most 0.5) over a loss
    # above ln 2 says the same.  Such a loss is judged against its own early level (the median
    # of its first points): a first batch above it is the initialisation's overconfidence
    # shed in one step (a bias finding the class prior), not learning.
    chance_accuracy = _accuracy_at_chance(ctx, params, best) if chance is None else None
    if chance_accuracy is not None:
        early = measures.edge_levels(level, params.edge_fraction)[0]
        if 0 < early < initial:
            initial = early
            luck = _selection_bias(level, width, first_sets_start=False)
    progress = (initial - best - luck) / initial
    zero_from = _zero_rate_from(ctx, float(steps[0]), float(steps[-1]), params.zero_rate_fraction)
    needed = params.zero_rate_progress if zero_from is not None else params.min_progress
    curve = ctx.curve(tag).finite
    # The robust trend of the whole curve (lr-too-low's too: a shared measurement), taken only
    # where it decides: most runs that learned return before it is needed.
    fit = ctx.measure(trend.trend, curve.steps, curve.values) if chance_accuracy is not None else None
    # A validation loss is computed on fixed data without dropout: it carries far less noise
    # than per-batch losses, so when a guessing classifier's training loss is too noisy to
    # judge (a few epochs on a small set), a validation loss shown flat from its first
    # evaluation, beside a training trend that shows no fall, is the evidence.
    val_flat = None
    if chance_accuracy is not None and fit is not None and fit.level > 0:
        no_fall = fit.interval(0.95)[1] >= 0 and fit.relative > -params.min_progress
        val_flat = _validation_flat(ctx, params) if no_fall else None
    if progress >= needed and not at_chance and not no_better and val_flat is None:
        return
    if chance_accuracy is None:
        fit = ctx.measure(trend.trend, curve.steps, curve.values)
    # A flat claim needs evidence of flatness: the robust trend over the run must rule out a
    # fall of ``max_hidden_fall`` (its confidence interval).  A loss so noisy that a real fall
    # may hide in it is not reported, unless the log shows the cause (chance, a rate of 0).
    hidden = fit is not None and -fit.interval(0.95)[0] > params.max_hidden_fall * abs(fit.level)
    rate = measures.learning_rate(ctx)
    zero_rate = rate is not None and float(rate[2].max()) == 0
    if hidden and not at_chance and not no_better and zero_from is None and not zero_rate and val_flat is None:
        return
    # Per-batch losses of batch size 4 scatter by most of their level: when the fall noise
    # alone reaches is over half the start, a loss that halved early and then wandered looks
    # no different from a flat one (its best median is set by the noise).  A note at most,
    # unless the log shows the cause.
    swamped = (
        luck > params.max_noise_allowance * initial
        and not (at_chance or no_better or zero_rate or val_flat is not None)
        and zero_from is None
    )
    axis = ctx.run.axis_of(tag).value
    if progress < needed:
        opening = f"{tag} never got meaningfully below its initial level"
    elif val_flat is not None and not (at_chance or no_better) and fit is not None:
        opening = f"{tag} shows no fall over the run (fitted change {fit.relative:+.1%}, not significant)"
    else:
        opening = f"{tag} fell, but no further than chance"
    message = (
        f"{opening}: {fmt(initial)} at the start, best {fmt(best)} at {axis} "
        f"{steps[best_index]:,.0f} over {axis}s {steps[0]:,.0f}-{steps[-1]:,.0f}, a fall of "
        f"{progress:.1%} beyond the {luck / initial:.1%} its noise gives by chance (threshold "
        f"{needed:.0%})"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "initial_level": initial,
        "best_level": best,
        "best_step": int(steps[best_index]),
        "progress": progress,
        "noise_allowance": luck,
        "points": int(level.size * binned.size),
        "threshold_progress": needed,
    }
    if chance is not None and classes is not None:
        evidence.update(
            num_classes=classes.value,
            num_classes_source=classes.source,
            ln_num_classes=chance,
            at_chance=at_chance,
        )
        evidence.update(no_better_than_chance=no_better)
        if at_chance:
            message += (
                f"; it sits at ln {classes.value} = {fmt(chance)}, the loss of a uniform guess "
                f"over {classes.value} classes (C from {classes.source}; threshold within "
                f"{params.chance_margin:.0%})"
            )
        elif no_better:
            message += (
                f"; its best level is {best / chance:.0%} of ln {classes.value} = {fmt(chance)}, "
                f"no better than a uniform guess over {classes.value} classes (C from "
                f"{classes.source}; threshold {1.0 - params.chance_floor:.0%}): it cannot fit its "
                f"own training data"
            )
    if chance_accuracy is not None:
        accuracy_tag, accuracy_max = chance_accuracy
        evidence.update(accuracy_tag=accuracy_tag, accuracy_max=accuracy_max)
        message += (
            f"; {accuracy_tag} never exceeds {accuracy_max:.3g} (threshold "
            f"{params.max_chance_accuracy:.0%}) over a loss above ln 2: no better than chance, so "
            f"the start is the median of its first points"
        )
    if val_flat is not None:
        val_tag, val_change, val_interval = val_flat
        evidence.update(val_tag=val_tag, val_change=val_change, val_interval=list(val_interval))
        message += (
            f"; {val_tag} changed {val_change:+.1%} from its first evaluation (95% interval "
            f"{val_interval[0]:+.1%} to {val_interval[1]:+.1%}, band +-{params.min_progress:.0%}): the "
            f"weights are not moving"
        )
    peak = measures.peak_learning_rate(ctx, evidence)
    if peak == 0:
        message += "; the learning rate is 0 throughout: nothing is being trained"
    elif zero_from is not None:
        share = (float(steps[-1]) - zero_from) / float(steps[-1] - steps[0])
        evidence.update(lr_zero_from_step=int(zero_from), lr_zero_fraction=share)
        message += (
            f"; the logged learning rate is 0 from {axis} {zero_from:,.0f} to the end ({share:.0%} "
            f"of the run; peak {fmt(peak) if peak is not None else 'not logged'}): nothing is trained there (a schedule that cut it to "
            f"0, e.g. a step decay with factor 0)"
        )
    elif peak is not None:
        message += f"; learning rate at most {fmt(peak)}"
    # Severity follows the evidence.  Error: at chance, a rate of 0, or a loss shown flat
    # (the confidence interval of its robust trend within +-min_progress of its level) that
    # made next to no progress.  Info: a start already far below chance (fine-tuning from a
    # good model moves the loss little).  Otherwise a warning.
    shown_flat = fit is not None and fit.flat(0.95, params.min_progress * abs(fit.level))
    good_start = _good_start(ctx, params, initial, chance, at_chance)
    sure = at_chance or abs(progress) < 0.2 * params.min_progress
    if good_start:
        severity = Severity.INFO
        reference = f"chance ln {classes.value}" if chance is not None and classes else "ln 2"
        message += (
            f"; but it started at {fmt(initial)}, {initial / (chance or LN2):.0%} of {reference} "
            f"(threshold {params.good_start:.0%}{'' if chance else ', the least chance of any classifier'}): "
            f"a model fine-tuned from a good start has little left to learn"
        )
    elif swamped:
        severity = Severity.INFO
        message += (
            f"; but the fall noise alone reaches is {luck / initial:.0%} of the start (threshold "
            f"{params.max_noise_allowance:.0%}): a loss that halved would look the same"
        )
    elif at_chance or peak == 0 or (sure and shown_flat) or (zero_from is not None and shown_flat):
        severity = Severity.ERROR
    elif no_better or chance_accuracy is not None:
        severity = Severity.WARNING  # no better than chance: it cannot fit its training data
    elif hidden:
        severity = Severity.WARNING  # too noisy to show flat, but the cause is in the log
    else:
        severity = Severity.WARNING
    if peak is not None and 0 < peak <= 1e-6:
        message += " (a rate this small is the likely cause: see lr-too-low)"
    evidence.update(
        shown_flat=shown_flat, good_start=good_start, fall_hidden_by_noise=hidden, noise_swamps_start=swamped
    )
    if fit is not None:
        evidence.update(trend_relative=fit.relative, effective_points=fit.effective)
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=(
            Confidence.LOW
            if swamped
            else Confidence.HIGH
            if sure and not good_start and not hidden
            else Confidence.MEDIUM
        ),
    )


def _selection_bias(level: np.ndarray, width: int, first_sets_start: bool) -> float:
    """How far a flat noisy curve's measured fall (start minus lowest rolling median) reaches
    by chance: the lowest of m rolling medians of ``width`` points sits sqrt(2 ln m) of their
    standard errors (1.2533 sigma / sqrt(width)) below the level, and a start set by the first
    value alone carries that one point's noise (sigma) too."""
    sigma = measures.noise_sigma(level)
    windows = level.size / max(width, 1)
    error = 1.2533 * sigma / math.sqrt(max(width, 1))
    lowest = math.sqrt(2.0 * math.log(windows)) * error if windows > 1 else 0.0
    return float(lowest + (sigma if first_sets_start else 0.0))


def _accuracy_at_chance(ctx: RunContext, params: Params, best: float) -> tuple[str, float] | None:
    """(tag, highest value) when every logged accuracy stays at or below
    ``max_chance_accuracy`` (over at least three evaluations) and the loss stays above ln 2;
    None otherwise.  A model that learned anything about C classes gets past 1/2 on at
    least its training data; an accuracy that never does over a loss above the chance loss of
    the fewest classes is a model that still guesses."""
    if not best > LN2:
        return None
    highest: tuple[str, float] | None = None
    for tag in ctx.tags(Role.TRAIN_ACCURACY, Role.VAL_ACCURACY):
        values = ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
        if values.size < 3:
            continue
        top = float(values.max())
        if top > params.max_chance_accuracy:
            return None
        if highest is None or top > highest[1]:
            highest = (tag, top)
    return highest


def _accuracy_learned(ctx: RunContext, params: Params, classes: int | None) -> bool:
    """Whether the training accuracy climbed well clear of chance: its last quarter at least
    halfway from chance (1/C, or 1/2 with C unknown) to 1, after rising by ``learned_rise`` of
    that way from its first quarter.  A model right that often has learned whatever its loss
    says: a loss near its start beside it is predictions too unsure (underconfident) or a
    metric that does not measure them (metric-loss-disagreement), not a stall."""
    tag = ctx.primary(Role.TRAIN_ACCURACY)
    if tag is None:
        return False
    values = ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
    if values.size < 8:
        return False
    chance = 1.0 / classes if classes is not None and classes >= 2 else 0.5
    first, last = measures.edge_levels(values, 0.25)
    room = 1.0 - chance
    return last >= chance + 0.5 * room and last - first >= params.learned_rise * room


def _validation_flat(ctx: RunContext, params: Params) -> tuple[str, float, tuple[float, float]] | None:
    """(tag, change of the best level from the first evaluation, 95% interval of the trend,
    both relative) when the validation loss is shown flat from its first evaluation: its
    robust trend inside +-``min_progress`` of its level and no evaluation ``min_progress``
    below the first; None otherwise."""
    tag = ctx.primary(Role.VAL_LOSS)
    if tag is None:
        return None
    curve = ctx.curve(tag).finite
    if len(curve) < params.min_points or not float(curve.values[0]) > 0:
        return None
    fit = trend.trend(curve.steps, curve.values)
    if fit is None or not fit.level > 0 or not fit.flat(0.95, params.min_progress * fit.level):
        return None
    first = float(curve.values[0])
    change = float(curve.values.min()) / first - 1.0
    if change <= -params.min_progress:
        return None
    low, high = fit.interval(0.95)
    return tag, change, (low / fit.level, high / fit.level)


def _zero_rate_from(ctx: RunContext, first: float, last: float, fraction: float) -> float | None:
    """The step from which the logged learning rate is exactly 0 to the end, when that
    stretch is at least ``fraction`` of the run (after a non-zero start), else None."""
    rate = measures.learning_rate(ctx)
    if rate is None or last <= first:
        return None
    _, rate_steps, rates = rate
    if not (rates.max() > 0 and rates[-1] == 0):
        return None
    nonzero = np.flatnonzero(rates != 0)
    start = float(rate_steps[nonzero[-1] + 1])
    return start if (last - start) / (last - first) >= fraction else None


def _good_start(
    ctx: RunContext, params: Params, initial: float, chance: float | None, at_chance: bool
) -> bool:
    """Whether the loss started far below chance: ``good_start`` of ln C, or, with C unknown,
    of ln 2 (the chance loss of the fewest classes) for a run that logs an accuracy (so its
    loss is a classifier's cross-entropy)."""
    if at_chance:
        return False
    if chance is not None:
        return initial < params.good_start * chance
    classifier = bool(ctx.tags(Role.TRAIN_ACCURACY, Role.VAL_ACCURACY))
    return classifier and initial < params.good_start * LN2


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A four-class cross-entropy that stays at ln 4 = 1.386 for the whole run."""
    steps = np.arange(100, 1300, 100)
    jitter = np.array([12, -5, 3, 9, -8, 14, -11, 6, 2, 5, 1, 0]) * 1e-4
    return steps, np.log(4.0) + 0.009 + jitter


CHECK = Check(
    code="C001",
    name="no-learning",
    title="Training loss does not fall",
    severity=Severity.ERROR,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Overfit one small batch first: a model that cannot drive a few dozen examples to near-zero "
        "loss is broken upstream of the architecture. Check that the learning rate is not 0 or "
        "tiny and the optimizer steps the model's parameters, that inputs and labels line up, and "
        "that the loss receives logits and the label format it expects."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
