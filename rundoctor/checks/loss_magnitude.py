"""A loss whose scale points to a design error: unnormalised targets or a summed loss.

What it detects
---------------
Two scales no averaged, normalised loss has:

- a loss in the thousands or more from its first logged point and for most of the run
  (its first value, its initial level and its median all at or above ``large_level``): a
  regression on raw targets ("predict 10,000, output 0" gives a squared error of 1e8), or
  a loss summed over the batch, the pixels or the tokens.  The scale of a design error is
  there before any training: a loss that starts normal and grows is a divergence, and so
  is a validation loss first evaluated after the training loss had already climbed from a
  normal start.  A curve with fewer than ``min_points`` finite points (it overflowed right
  after the start) is only a low-confidence note: it has a start but no "most of the run";
- when the number of classes C is known, a first training loss that is an integer multiple
  k >= 2 of ln C, the loss of a uniform guess: cross-entropy summed over a batch (or over
  k positions) instead of averaged.

Why it matters
--------------
The scale of the loss is the scale of the gradients.  A loss in the thousands needs a
learning rate thousands of times smaller than usual, and the usual recipes (Adam at 1e-3,
gradient clipping at 1.0, weight decay) silently stop meaning what they say.  A summed loss
ties the effective learning rate to the batch size, so changing the batch breaks a tuned
run.  Unnormalised regression targets also make the output layer learn the offset before
anything else.

What to try
-----------
Standardise regression targets (subtract the mean, divide by the standard deviation of the
training set) and undo it at prediction time, or predict log(target) for quantities
spanning orders of magnitude.  Average losses over the batch (``reduction="mean"``) and
over positions; if a sum is intended (per-sample ELBO, a per-image pixel sum), scale the
learning rate down to match and ignore this warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import LOSS_ROLES, Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``loss-magnitude``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=3, metadata={"help": "Finite points needed before a curve is judged."}
    )
    large_level: float = field(
        default=1000.0,
        metadata={"help": "Initial and median loss magnitude at or above this is too large."},
    )
    edge_fraction: float = field(
        default=0.05,
        metadata={"help": "Share of the points whose median is the initial level."},
    )
    multiple_tolerance: float = field(
        default=0.03,
        metadata={"help": "Largest relative gap between the first loss and k * ln C."},
    )
    max_multiple: int = field(
        default=16,
        metadata={"help": "Largest k tested: beyond it every loss is near some multiple."},
    )


# Defaults: averaged cross-entropies sit below ~15 (ln of a 3M vocabulary) and normalised
# regression errors near 1; detection losses summed over a dozen terms reach the low
# hundreds.  A thousand is past all of them.  A first loss within 3% of k ln C is what an
# untrained model's summed loss looks like (its per-sample loss is ln C within a few
# percent); above k = 16 neighbouring multiples are less than 6% apart, so any value
# would match one and the test would say nothing.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """A too-large loss scale, and a summed loss (only when the number of classes is known)."""
    finding = _large(check, ctx, params)
    if finding is not None:
        yield finding
    if ctx.num_classes is not None:
        finding = _summed(check, ctx, params)
        if finding is not None:
            yield finding


def _large(check: Check[Params], ctx: RunContext, params: Params) -> Finding | None:
    tags = measures.loss_tags(ctx, Role.TRAIN_LOSS, Role.LOSS_COMPONENT)
    tags += measures.loss_tags(ctx, Role.VAL_LOSS, Role.VAL_LOSS_COMPONENT)
    # Where training started: the earliest finite training loss of the run.  A scale is a
    # design property only if it is there from the first step; a validation loss first
    # evaluated after the training loss had already climbed from a normal start is a
    # divergence seen late.
    started = _training_start(ctx)
    large: list[tuple[str, float, float, int, int, int]] = []
    for tag in tags:
        curve = ctx.curve(tag).finite
        if len(curve) == 0:
            continue
        first = abs(float(curve.values[0]))
        if first < params.large_level:
            continue  # a normal start: whatever it grew to later is a divergence
        if started is not None and started[0] < curve.steps[0] and started[1] < params.large_level:
            continue  # training began at a normal scale before this tag's first point
        magnitude = np.abs(measures.binned(curve.steps, curve.values).level)
        initial = min(first, measures.edge_levels(magnitude, params.edge_fraction)[0])
        median = measures.median(magnitude)
        if initial >= params.large_level and median >= params.large_level:
            large.append(
                (tag, initial, median, int(curve.steps[0]), int(curve.steps[-1]), len(curve))
            )
    if not large:
        return None
    described = ", ".join(
        f"{tag} (start {fmt(initial)}, median {fmt(median)})" for tag, initial, median, *_ in large
    )
    points = max(count for *_, count in large)
    # A curve that went non-finite after a point or two has only its start to show: the
    # scale is still far outside anything normalised, but there is no "for most of the run".
    few = points < params.min_points
    message = (
        f"loss scale in the thousands or more from its first logged point: {described} "
        f"(threshold {fmt(params.large_level)} for both): unnormalised regression targets "
        f"or a loss summed instead of averaged"
    )
    if few:
        message += f"; only {points} finite point{'s' if points != 1 else ''} before the log ends or turns non-finite"
    evidence = {
        "tags": [tag for tag, *_ in large],
        "initial_level": {tag: initial for tag, initial, *_ in large},
        "median_level": {tag: median for tag, _, median, *_ in large},
        "finite_points": points,
        "threshold_level": params.large_level,
    }
    return check.finding(
        ctx,
        tags=[tag for tag, *_ in large],
        steps=(min(item[3] for item in large), max(item[4] for item in large)),
        message=message,
        evidence=evidence,
        severity=Severity.INFO if few else None,
        confidence=Confidence.LOW if few else Confidence.MEDIUM,
    )


def _training_start(ctx: RunContext) -> tuple[float, float] | None:
    """(step, |value|) of the earliest finite training-loss point of the run, or None."""
    best: tuple[float, float] | None = None
    for tag in measures.loss_tags(ctx, Role.TRAIN_LOSS, Role.LOSS_COMPONENT):
        curve = ctx.curve(tag).finite
        if len(curve) and (best is None or curve.steps[0] < best[0]):
            best = (float(curve.steps[0]), abs(float(curve.values[0])))
    return best


def _summed(check: Check[Params], ctx: RunContext, params: Params) -> Finding | None:
    tag = ctx.primary(Role.TRAIN_LOSS)
    classes = ctx.num_classes
    if tag is None or classes is None or classes.value < 2:
        return None
    curve = ctx.curve(tag).finite
    if len(curve) < params.min_points or curve.values[0] <= 0:
        return None
    first = float(curve.values[0])
    chance = math.log(classes.value)
    multiple = round(first / chance)
    gap = abs(first - multiple * chance) / (multiple * chance) if multiple else math.inf
    if not (2 <= multiple <= params.max_multiple and gap <= params.multiple_tolerance):
        return None
    axis = ctx.run.axis_of(tag).value
    message = (
        f"first training loss {tag} = {fmt(first)} at {axis} {int(curve.steps[0]):,} is "
        f"{first / chance:.2f} x ln {classes.value} (= {fmt(chance)}, a uniform guess over "
        f"{classes.value} classes; C from {classes.source}): cross-entropy summed over "
        f"{multiple} samples or positions instead of averaged "
        f"(threshold: within {params.multiple_tolerance:.0%} of k x ln C, k >= 2)"
    )
    evidence = {
        "tag": tag,
        "first_loss": first,
        "first_step": int(curve.steps[0]),
        "num_classes": classes.value,
        "num_classes_source": classes.source,
        "ln_num_classes": chance,
        "multiple": multiple,
        "relative_gap": gap,
        "threshold_gap": params.multiple_tolerance,
    }
    # k = 2 or 3 can also be a badly initialised output layer; larger k rarely is.
    confidence = Confidence.LOW if multiple <= 3 else Confidence.MEDIUM
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(curve.steps[0], curve.steps[0]),
        message=message,
        evidence=evidence,
        confidence=confidence,
        advice=(
            "Average the loss over the batch and positions (reduction='mean'); with a sum, the "
            "effective learning rate scales with the batch size."
        ),
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A squared error on raw targets: 1e8 at the start, still 4,000 at the end."""
    steps = np.arange(0, 3000, 10)
    return steps, 4e3 + 1e8 * np.exp(-steps / 150.0) + 2e3 * np.exp(-steps / 2000.0)


CHECK = Check(
    code="N003",
    name="loss-magnitude",
    title="Loss scale points to a design error",
    severity=Severity.WARNING,
    needs=(LOSS_ROLES,),
    params=Params,
    advice=(
        "Standardise regression targets (or predict their log) and average losses over the batch "
        "and positions (reduction='mean'); if a sum is intended, scale the learning rate down to "
        "match."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
