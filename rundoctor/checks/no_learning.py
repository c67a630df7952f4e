"""The training loss never gets meaningfully below where it started.

What it detects
---------------
The main training loss whose best smoothed level stays within ``min_progress`` of its
initial level for the whole run, or, when the number of classes C is known, sits at ln C,
the cross-entropy of a uniform guess over C classes (the model predicts nothing better than
chance, whatever the loss was at the very first step).

Severity follows the evidence: an error at chance, at a learning rate of 0, or for a loss
shown flat; a warning otherwise; info when the loss started far below chance
(``good_start`` of ln C: fine-tuning from a good model barely moves the loss).  A tiny
logged learning rate is named as the likely cause.

Noise principle: the best level is a rolling median, so single heavy batches do not set
it; the initial level is the higher of the first value and the median of the first
``edge_fraction`` (an initialised model predicts near-uniformly: its first batches agree);
"shown flat" is the robust trend's confidence interval (Theil-Sen on block medians, error
widened by the effective sample size of autocorrelated residuals; ``checks/trend.py``)
inside +-``min_progress`` of the level.

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
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from rundoctor.checks import signal, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
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
    max_rise: float = field(
        default=2.0,
        metadata={"help": "A loss ending above this multiple of its start diverged: not reported here."},
    )
    good_start: float = field(
        default=0.5,
        metadata={
            "help": "A start below this fraction of ln C is already a good model (fine-tuning): "
            "info, not a stall."
        },
    )


# Defaults: every healthy run seen falls by 30% or more, slow fine-tunes of pretrained
# models by 10% or more; 5% separates "learning slowly" from "not learning" with room for
# noise on the initial median.  Within 5% of ln C a classifier is no better than a guess.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    loaded = signal.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    # The first value counts: at initialisation a model predicts near-uniformly, so its first
    # batches agree; heavy tails come later, with confident mistakes.
    initial = signal.initial_level(level, params.edge_fraction)
    if not initial > 0:
        return
    smooth = signal.rolling_median(level, signal.window(level.size, params.smoothing))
    best_index = int(np.argmin(smooth))
    best = float(smooth[best_index])
    progress = (initial - best) / initial
    if float(smooth[-1]) > params.max_rise * initial:
        return  # it rose far above its start: divergence (loss-divergence's business), not a stall
    classes = ctx.num_classes
    chance = math.log(classes.value) if classes is not None and classes.value >= 2 else None
    at_chance = chance is not None and abs(best - chance) <= params.chance_margin * chance
    if progress >= params.min_progress and not at_chance:
        return
    axis = ctx.run.axis_of(tag).value
    opening = (
        f"{tag} never got meaningfully below its initial level"
        if progress < params.min_progress
        else f"{tag} fell, but no further than chance"
    )
    message = (
        f"{opening}: {fmt(initial)} at the start, best {fmt(best)} at {axis} "
        f"{steps[best_index]:,.0f} ({-progress:+.1%}; threshold -{params.min_progress:.0%}) over "
        f"{axis}s {steps[0]:,.0f}-{steps[-1]:,.0f}"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "initial_level": initial,
        "best_level": best,
        "best_step": int(steps[best_index]),
        "progress": progress,
        "points": int(level.size * binned.size),
        "threshold_progress": params.min_progress,
    }
    if chance is not None and classes is not None:
        evidence.update(
            num_classes=classes.value,
            num_classes_source=classes.source,
            ln_num_classes=chance,
            at_chance=at_chance,
        )
        if at_chance:
            message += (
                f"; it sits at ln {classes.value} = {fmt(chance)}, the loss of a uniform guess "
                f"over {classes.value} classes (C from {classes.source}; threshold within "
                f"{params.chance_margin:.0%})"
            )
    peak = signal.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += (
            "; the learning rate is 0 throughout: nothing is being trained"
            if peak == 0
            else f"; learning rate at most {fmt(peak)}"
        )
    # Severity follows the evidence.  Error: at chance, a rate of 0, or a loss shown flat
    # (the confidence interval of its robust trend within +-min_progress of its level) that
    # made next to no progress.  Info: a start already far below chance (fine-tuning from a
    # good model moves the loss little).  Otherwise a warning.
    curve = ctx.curve(tag).finite
    fit = trend.trend(curve.steps, curve.values)
    shown_flat = fit is not None and fit.flat(0.95, params.min_progress * abs(fit.level))
    good_start = chance is not None and not at_chance and initial < params.good_start * chance
    sure = at_chance or abs(progress) < 0.2 * params.min_progress
    if good_start:
        severity = Severity.INFO
        message += (
            f"; but it started at {fmt(initial)}, {initial / chance:.0%} of chance ln "
            f"{classes.value if classes else ''} (threshold {params.good_start:.0%}): a model "
            f"fine-tuned from a good start has little left to learn"
        )
    elif at_chance or peak == 0 or (sure and shown_flat):
        severity = Severity.ERROR
    else:
        severity = Severity.WARNING
    if peak is not None and 0 < peak <= 1e-6:
        message += " (a rate this small is the likely cause: see lr-too-low)"
    evidence.update(shown_flat=shown_flat, good_start=good_start)
    if fit is not None:
        evidence.update(trend_relative=fit.relative, effective_points=fit.effective)
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=Confidence.HIGH if sure and not good_start else Confidence.MEDIUM,
    )


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
