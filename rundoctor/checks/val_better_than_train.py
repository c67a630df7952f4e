"""Validation loss persistently far below the training loss.

What it detects
---------------
At more than ``min_fraction`` of the evaluations the validation loss is below
``ratio_threshold`` times the training loss at the same point of training.  Lags are
accounted for: when the training loss is logged about once per evaluation it is an average
over the epoch (Keras, Lightning ``_epoch``, Hugging Face ``logging_steps``) that trails the
end-of-epoch validation by half an epoch, so the validation loss of epoch e is compared with
the training loss of epoch e + 1; a training loss logged every step is smoothed and read at
the evaluation step.  The validation loss is a rolling median of three evaluations, so
one lucky evaluation does not count.  Only total losses are compared: detection loss terms
(YOLO ``val/obj_loss`` against ``train/obj_loss``) are measured under training-time
augmentation such as mosaic and sit 2-5x apart in healthy runs.  Below ``extreme_ratio``
at most evaluations, and at most of the first quarter of them, the finding is a warning,
otherwise information: strong dropout keeps a training loss of 0.15 over a validation loss
of 0.03 late in a healthy run, but not from its first epochs, when both are large.

Noise principle: the validation loss is a rolling median of three evaluations and a
per-step training loss a rolling median of ``smooth_fraction`` of the run, so neither one
lucky evaluation nor the heavy-tailed batches of a small-batch loss set a ratio; the
finding needs more than ``min_fraction`` of all evaluations, and severity follows the size
of the gap (warning only below ``extreme_ratio``, beyond what dropout or augmentation
explain).

Why it matters
--------------
A model should not do much better on data it has never seen.  A validation loss far below
the training loss usually means the validation set leaks training data (duplicates, the
same subjects or scenes, augmented copies), evaluation runs on the training split, or the
two losses are computed differently (reduction, weighting, label smoothing on one side).
Dropout and heavy augmentation do raise the training loss legitimately, hence the generous
threshold.

What to try
-----------
Check that the validation split is disjoint from the training split (hash the samples,
group by subject or source), that the evaluation loop really reads the validation loader,
and that both losses use the same reduction and weighting.  To rule out regularisation,
evaluate the training set in eval mode (no dropout, no augmentation) and compare again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``val-better-than-train``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    # 0.7x: dropout and augmentation keep healthy validation losses at 0.8-1.0x the training
    # loss (R31 0.90, R39 0.84, R40 0.94 by median); 30% lower is beyond what they explain.
    ratio_threshold: float = field(
        default=0.7, metadata={"help": "Validation/training loss ratio below which an evaluation counts."}
    )
    # More than half: a few evaluations early on, before the training average catches up,
    # are expected.
    min_fraction: float = field(
        default=0.5, metadata={"help": "Share of evaluations that must be below the ratio."}
    )
    # 0.4x: less than half the training loss is hard to explain with regularisation alone.
    extreme_ratio: float = field(
        default=0.4, metadata={"help": "Ratio below which (at most evaluations) the finding is a warning."}
    )
    # Fewer training points than this per evaluation means epoch averages, compared one
    # evaluation later.
    epoch_mean_density: float = field(
        default=2.0,
        metadata={
            "help": "Training points per evaluation below which the training loss is taken "
            "to be an epoch average."
        },
    )
    smooth_fraction: float = field(
        default=0.05, metadata={"help": "Rolling-median window for a per-step training loss, as a fraction."}
    )
    min_points: int = field(
        default=5, metadata={"help": "Fewest evaluations (inside the training range) to judge."}
    )


@dataclass(frozen=True)
class Compared:
    """A validation loss and the training loss at the same point of training."""

    val: str
    train: str
    evaluations: int
    first_step: int
    last_step: int
    epoch_means: bool
    lag: float  # steps the training loss is read after each evaluation
    median_ratio: float
    below: float  # share of evaluations below ratio_threshold
    extreme: float  # share below extreme_ratio
    extreme_early: float  # share below extreme_ratio among the first quarter of the evaluations


def compare(ctx: RunContext, pair: measures.LossPair, params: Params) -> Compared | None:
    """How far one validation loss sits below the training loss at each evaluation; None when either
    is too short or ever non-positive (ratios of signed losses mean nothing) or they barely overlap."""
    val = ctx.curve(pair.val).finite
    train = ctx.curve(pair.train).finite
    if len(val) < params.min_points or len(train) < params.min_points:
        return None
    if val.values.min() <= 0 or train.values.min() <= 0:
        return None  # ratios of signed losses mean nothing
    at = measures.steps_on_axis_of(
        val.steps, train.steps, ctx.run.axis_of(pair.val) == ctx.run.axis_of(pair.train)
    )
    inside = (at >= train.steps[0]) & (at <= train.steps[-1])
    if np.count_nonzero(inside) < params.min_points:
        return None
    density = np.count_nonzero((train.steps >= at[0]) & (train.steps <= at[-1])) / len(val)
    epoch_means = bool(density < params.epoch_mean_density)
    if epoch_means:
        lag = measures.median(np.diff(at))
        reference = np.interp(at + lag, train.steps, train.values)
    else:
        lag = 0.0
        reference = measures.smoothed_at(ctx, pair.train, at, params.smooth_fraction)
    # A rolling median of three evaluations: one lucky evaluation must not count.
    smooth_val = measures.rolling_median(val.values, 3)
    ratios = smooth_val[inside] / reference[inside]
    steps = val.steps[inside]
    return Compared(
        val=pair.val,
        train=pair.train,
        evaluations=int(ratios.size),
        first_step=int(steps[0]),
        last_step=int(steps[-1]),
        epoch_means=epoch_means,
        lag=lag,
        median_ratio=measures.median(ratios),
        below=float(np.mean(ratios < params.ratio_threshold)),
        extreme=float(np.mean(ratios < params.extreme_ratio)),
        extreme_early=float(np.mean(ratios[: max(1, ratios.size // 4)] < params.extreme_ratio)),
    )


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding, on the pair whose validation loss is below training most often."""
    pairs = measures.loss_pairs(ctx, components=False)
    compared = [c for c in (compare(ctx, pair, params) for pair in pairs) if c is not None]
    firing = [c for c in compared if c.below > params.min_fraction]
    if not firing:
        return
    head = max(firing, key=lambda c: (c.below, -c.median_ratio))
    # A leak puts the validation loss far below training from the first evaluations on;
    # dropout's gap is a ratio of two small losses late in training, after both fell.
    extreme = head.extreme > params.min_fraction and head.extreme_early > params.min_fraction
    reading = (
        "the training loss one evaluation later (epoch averages trail by half an epoch)"
        if head.epoch_means
        else "the smoothed training loss at the same step"
    )
    yield check.finding(
        ctx,
        tags=[head.val, head.train, *(c.val for c in firing if c is not head)],
        steps=(head.first_step, head.last_step),
        message=(
            f"{head.val} is below {params.ratio_threshold:g}x {head.train} at {head.below:.0%} of "
            f"{head.evaluations} evaluations (median ratio {head.median_ratio:.2f}; threshold: more than "
            f"{params.min_fraction:.0%} of evaluations)"
        ),
        evidence={
            "val_tag": head.val,
            "train_tag": head.train,
            "median_ratio": round(head.median_ratio, 4),
            "fraction_below_threshold": round(head.below, 4),
            "fraction_below_extreme": round(head.extreme, 4),
            "fraction_below_extreme_first_quarter": round(head.extreme_early, 4),
            "evaluations": head.evaluations,
            "compared_with": reading,
            "lag_steps": head.lag,
            "ratio_threshold": params.ratio_threshold,
            "extreme_ratio": params.extreme_ratio,
            "min_fraction": params.min_fraction,
        },
        severity=Severity.WARNING if extreme else Severity.INFO,
        confidence=Confidence.HIGH if extreme else Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A validation loss far below the training loss at every epoch (the training loss is 1.6 to 1.0)."""
    steps = np.arange(30)
    return steps, 0.5 - 0.006 * steps


CHECK = Check(
    code="G002",
    name="val-better-than-train",
    title="Validation loss far below training loss",
    severity=Severity.INFO,
    needs=(Role.TRAIN_LOSS, Role.VAL_LOSS),
    params=Params,
    advice=(
        "Check that the validation split is disjoint from the training split and that evaluation reads "
        "the validation loader; compare both losses with the same reduction, in eval mode (no dropout, "
        "no augmentation)."
    ),
    detect=detect,
    doc=__doc__,
    example=_example,
)
