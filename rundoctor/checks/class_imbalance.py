"""Accuracy pinned at a high constant: the majority-class rate of an imbalanced dataset.

What it detects
---------------
An accuracy series (at least 0.6, below its ceiling) that sits at one level through the end
of the run, within a half-point band or its own noise, the signature of a model predicting
the majority class, reached either way:

- pinned from its first evaluations for ``min_flat_fraction`` of the run (the majority
  rate is learned within the first epoch); or
- climbed to it and held for ``min_plateau_fraction`` of the run (a weakly informative or
  strongly regularised model learns the class prior's bias over a few epochs, then
  predicts the majority for every input).

A pinned accuracy alone is ambiguous (a good model fine-tuned from a good start also starts
high, and a converged one stops moving), so the evidence decides:

- per-class or class-balanced metrics, when logged, decide: a class whose recall or F1
  stays near 0, or a balanced metric near its chance level (1/C, or 0.5 when C is
  unknown), confirms it (warning, high confidence); all classes learned rules it out;
- otherwise the losses.  A model that predicts the class prior has a cross-entropy equal
  to the prior's entropy, at least H_min(a), the entropy of the most concentrated prior
  whose majority share is the pinned accuracy a (h(a) for a >= 1/2), on the evaluation set
  and, since no constant prediction beats the prior's entropy on the data it was fitted
  to, on the training set too.  The matching loss or the training loss below
  ``learned_ratio`` x H_min(a) shows outputs that depend on the input: not reported, and,
  being one model, none of the run's other accuracies is either.  Both at ``prior_ratio``
  x H_min(a) or above, beside a fixed prediction, is a warning with medium confidence.  A
  fixed prediction scores the same count on a fixed set: a curve pinned from the start
  must repeat its exact value at ``min_repeated`` of consecutive evaluations; one that
  climbed, at its last ``min_points`` evaluations.  The loss must be flat (its last
  quarter not ``min_loss_fall`` and three noise sigmas below its first), or above H_min(a)
  and falling only towards it (a prior's bias still converging) while the accuracy holds
  one exact value.  Anything in between is an informational note; a curve that climbed
  and still moves is noted only when its loss is within ``entropy_match`` of H_min(a);
- not a majority rate: an accuracy at its ceiling, fewer than ``min_minority`` examples
  short of perfect when the evaluation set's size n can be read from the accuracies (all
  whole multiples of 1/n: a converged model on a small set repeats 113/114), and a
  stretch under a learning rate of exactly zero (frozen weights; the learning-rate checks
  name that cause).

Noise principle: the pinned band is the larger of ``flat_tolerance`` and three noise
sigmas of the smoothed curve (MAD of differences, robust to single bad evaluations); loss
levels are means with the top 1% clipped (a cross-entropy is a mean; heavy-tailed
per-batch losses are skewed) and a fall is judged by quarter medians against the noise of
such a median, so heavy tails neither hide a fall nor fake one; doubt lowers the severity
to info.

Why it matters
--------------
On imbalanced data a model that always answers the majority class scores the majority
rate: 0.9 accuracy on a 90/10 split means nothing has been learned about the minority
class, which is usually the one that matters (defects, disease, fraud).  Accuracy hides
it; per-class recall shows it.

What to try
-----------
Log per-class recall or balanced accuracy (or macro F1) instead of plain accuracy.
Rebalance: oversample the minority class or undersample the majority, or weight the loss
by inverse class frequency (focal loss for extreme ratios).  Move the decision threshold
(tune it on the validation set).  Check how the data was sampled: a balanced sample of an
unbalanced reality needs a threshold other than 0.5 in deployment, and vice versa.
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
    """Thresholds of ``class-imbalance``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Accuracy points needed before the check judges a curve."}
    )
    smoothing: float = field(
        default=0.05, metadata={"help": "EMA span as a fraction of the accuracy points."}
    )
    flat_tolerance: float = field(
        default=0.005,
        metadata={"help": "Half-width of the band (accuracy units) a pinned curve stays in."},
    )
    min_flat_fraction: float = field(
        default=0.8,
        metadata={"help": "Share of the run an accuracy pinned from its first evaluations stays pinned."},
    )
    min_plateau_fraction: float = field(
        default=0.5,
        metadata={"help": "Share of the run, through its end, an accuracy that climbed to its level stays there."},
    )
    min_level: float = field(
        default=0.6, metadata={"help": "Lowest pinned accuracy read as a majority-class rate."}
    )
    unlearned_score: float = field(
        default=0.05,
        metadata={"help": "A per-class recall or F1 at most this means the class is not learned."},
    )
    balanced_margin: float = field(
        default=0.05,
        metadata={"help": "A balanced metric within this of its chance level is at chance."},
    )
    max_loss_rise: float = field(
        default=0.1,
        metadata={"help": "Without per-class metrics: skip when the loss rose more than this."},
    )
    learned_ratio: float = field(
        default=0.6,
        metadata={
            "help": "A loss below this times H_min(a), the least entropy of a prior with majority "
            "share a, shows the outputs depend on the input: not reported."
        },
    )
    prior_ratio: float = field(
        default=0.85,
        metadata={"help": "A flat loss at or above this times H_min(a) makes the finding a warning."},
    )
    ceiling: float = field(
        default=0.999, metadata={"help": "An accuracy pinned at or above this is saturated, not a majority rate."}
    )
    min_repeated: float = field(
        default=0.5,
        metadata={
            "help": "Share of consecutive evaluations repeating the exact accuracy needed for a warning "
            "without per-class metrics (a fixed prediction scores the same count every time)."
        },
    )
    min_loss_fall: float = field(
        default=0.05,
        metadata={"help": "A loss whose last quarter is this much below its first (and 3 noise sigmas) still falls."},
    )
    entropy_match: float = field(
        default=0.05,
        metadata={
            "help": "An accuracy that climbed to its plateau and still moves is noted only when its "
            "loss is within this (relative) of H_min(a)."
        },
    )
    min_minority: int = field(
        default=5,
        metadata={
            "help": "Fewest evaluation examples outside the pinned class (when the set's size can be "
            "read from the accuracies, k/n) for a majority rate; fewer is a converged model."
        },
    )
    tail_fraction: float = field(
        default=0.25, metadata={"help": "Final share of a per-class curve whose median is judged."}
    )


# Defaults: a majority predictor scores the same accuracy at every evaluation, so a
# half-point band is generous; pinned from the start for 80% of the run separates it from
# a model that learned up to a high plateau (detectors' background accuracy rises from 0.5
# to 0.98 in healthy runs).  Below 0.6 a constant accuracy is not a convincing majority
# rate.  A recall of 0.05 is one minority example in twenty; 0.05 of balanced accuracy is
# beyond evaluation noise for sets of a few hundred examples.  A prior predictor's loss is
# H(prior) >= H_min(a); the evaluation set's mix may differ a little from the training
# prior, hence 0.85.  Below 0.6 x H_min(a) the model has at least 40% of the prior's entropy
# in information about the input, which no majority predictor has.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Accuracies pinned at a majority-class rate; none at all when any pinned series' losses rule
    out a prior predictor, since one model wrote them all."""
    findings = list(_judge_all(check, ctx, params))
    if any(finding is None for finding in findings):
        return  # one model: losses far below a prior's entropy rule a prior predictor out
    yield from (finding for finding in findings if finding is not None)


def _judge_all(
    check: Check[Params], ctx: RunContext, params: Params
) -> Iterator[Finding | None]:
    """A finding per pinned accuracy series, None for one its losses rule out."""
    per_class: classification.ClassMetrics | None = None
    for tag in ctx.tags(*ACCURACY_ROLES):
        steps, accuracy = measures.accuracy_levels(ctx, tag)
        if accuracy.size < params.min_points:
            continue
        span = measures.window(accuracy.size, params.smoothing)
        tolerance = measures.flat_tolerance(ctx, accuracy, span, params.flat_tolerance)
        # The smoothed curve lags a step behind a climb; the raw values of a fixed
        # prediction sit in the band from the evaluation it is first reached.
        start = min(
            measures.trailing_flat_start(ctx.measure(measures.ema, accuracy, span), tolerance),
            measures.trailing_flat_start(accuracy, tolerance),
        )
        run_span = float(steps[-1] - steps[0])
        pinned = float(steps[-1] - steps[start]) if start < steps.size else 0.0
        level = measures.median(accuracy[start:]) if start < steps.size else float("nan")
        early = measures.median(accuracy[: measures.window(accuracy.size, 0.05, 1)])
        climbed = abs(early - level) > 2.0 * tolerance
        needed = params.min_plateau_fraction if climbed else params.min_flat_fraction
        if (
            run_span <= 0
            or pinned / run_span < needed
            or not level >= params.min_level
            or level >= params.ceiling
        ):
            continue  # too short, too low or saturated: not pinned
        if _frozen(ctx, tag, steps[start], steps[-1]):
            continue  # no update reached the weights: the learning-rate checks name it
        if per_class is None:
            per_class = classification.class_metric_evidence(
                ctx, params.unlearned_score, params.balanced_margin, params.tail_fraction
            )
        entropy = classification.min_prior_entropy(level)
        evidence: dict[str, float | int | str] = {
            "accuracy_tag": tag,
            "pinned_level": level,
            "pinned_band": tolerance,
            "pinned_from_step": int(steps[start]),
            "pinned_fraction": pinned / run_span,
            "early_level": early,
            "climbed": int(climbed),
            "min_prior_entropy": entropy,
            "threshold_pinned_fraction": needed,
            "threshold_min_level": params.min_level,
        }

        since = (
            f"through its end, after climbing from {fmt(early, 3)}"
            if climbed
            else f"from step {int(steps[start]):,}"
        )
        head = (
            f"{tag} pinned at {fmt(level, 3)} (±{fmt(tolerance, 2)}) for {pinned / run_span:.0%} "
            f"of the run {since} (threshold {needed:.0%} "
            f"at >= {params.min_level:g}), as a majority-class rate would be"
        )
        severity = Severity.WARNING
        if per_class.unlearned:
            worst_tag, worst = min(per_class.unlearned, key=lambda item: item[1])
            evidence.update(
                unlearned_tags=", ".join(name for name, _ in per_class.unlearned),
                worst_class_tag=worst_tag,
                worst_class_score=worst,
            )
            message = (
                f"{head}, and {worst_tag} is at {fmt(worst, 3)}: "
                f"{len(per_class.unlearned)} per-class or balanced metric(s) show a class not learned"
            )
            confidence = Confidence.HIGH
        elif per_class.learned:
            continue
        else:
            judged = _loss_verdict(
                ctx, tag, steps[start], steps[-1], entropy, params, evidence, climbed=climbed
            )
            if judged is None:
                yield None
                continue
            size = classification.evaluation_size(
                ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
            )
            if size is not None:
                outside = round((1.0 - level) * size)
                evidence.update(evaluation_size=size, examples_outside=outside)
                if outside < params.min_minority:
                    continue  # a few examples short of perfect on a small set: saturated
            if judged[1] is None:
                continue
            message, severity, confidence = f"{head}; {judged[0]}", judged[1], judged[2]
        yield check.finding(
            ctx,
            tags=(tag,),
            steps=(steps[start], steps[-1]),
            message=message,
            evidence=evidence,
            severity=severity,
            confidence=confidence,
        )


def _final_repeats(values: np.ndarray) -> int:
    """How many evaluations at the end show one bit-identical value."""
    if values.size == 0:
        return 0
    differ = np.flatnonzero(values[1:] != values[:-1])
    return int(values.size - (differ[-1] + 1 if differ.size else 0))


def _frozen(ctx: RunContext, tag: str, first: float, last: float) -> bool:
    """Whether the learning rate logged over the stretch was exactly zero throughout."""
    lr = measures.learning_rate(ctx)
    if lr is None:
        return False
    lr_tag, steps, values = lr
    low, high = measures.steps_on_axis_of_tag(ctx, tag, lr_tag, np.array([first, last]))
    inside = values[(steps >= low) & (steps <= high)]
    return bool(inside.size > 0 and np.all(inside == 0.0))


def _loss_verdict(
    ctx: RunContext,
    tag: str,
    first: float,
    last: float,
    entropy: float,
    params: Params,
    evidence: dict[str, float | int | str],
    *,
    climbed: bool,
) -> tuple[str, Severity | None, Confidence] | None:
    """What the losses beside a pinned accuracy say: (clause, severity, confidence), with
    severity None when nothing points at a prior; None when they rule a prior predictor out."""
    raw = ctx.curve(tag).finite
    inside = raw.values[(raw.steps >= first) & (raw.steps <= last)]
    repeated = float(np.mean(inside[1:] == inside[:-1])) if inside.size > 1 else 0.0
    final = _final_repeats(inside)
    evidence.update(repeated_share=repeated, final_repeats=final)
    # A fixed prediction scores one count on a fixed set.  A curve that climbed to its level
    # learned something, so it must have repeated one exact value at its last ``min_points``
    # evaluations; one pinned from the start at ``min_repeated`` of them.
    fixed = final >= params.min_points if climbed else repeated >= params.min_repeated
    loss = measures.loss_between(ctx, tag, first, last)
    if loss is None or loss[1].size < 2:
        if climbed and not fixed:
            return "", None, Confidence.LOW
        return "no loss or per-class metric is logged to confirm it", Severity.INFO, Confidence.LOW
    loss_tag, values = loss
    change = measures.relative_change(*measures.edge_levels(values, 0.1, 1))
    level = classification.mean_loss(values[-measures.window(values.size, 0.25, 1) :])
    ratio = level / entropy if entropy > 0 else float("inf")
    evidence.update(loss_tag=loss_tag, loss_level=level, loss_change=change, loss_to_prior_entropy=ratio)
    if np.isfinite(change) and change > params.max_loss_rise:
        return None  # a rising loss is overfitting or divergence, reported elsewhere
    if ratio < params.learned_ratio:
        return None  # the outputs carry information about the input
    train = classification.train_loss_level(ctx, tag, first, last)
    train_ratio = float("inf")
    if train is not None and train[0] != loss_tag:
        train_ratio = train[1] / entropy if entropy > 0 else float("inf")
        evidence.update(train_loss_tag=train[0], train_loss_level=train[1], train_loss_to_prior_entropy=train_ratio)
        if train_ratio < params.learned_ratio:
            return None  # it fits its training data far better than any prior could
    falling = classification.still_falling(values, params.min_loss_fall)
    clause = (
        f"{loss_tag} at {fmt(level, 3)} is {ratio:.2f}x the least entropy of a prior with majority "
        f"share {fmt(float(evidence['pinned_level']), 3)} ({fmt(entropy, 3)})"
    )
    if np.isfinite(train_ratio):
        clause += f", {train[0]} {train_ratio:.2f}x"  # type: ignore[index]
    evidence.update(loss_falling=int(falling))
    lowest = min(ratio, train_ratio)
    # A loss above the prior's entropy that still falls is converging on it: only a loss
    # that goes below it would show information about the input.  A decision that changes
    # while the loss falls is learning, so the accuracy must have repeated one exact value
    # at its last ``min_points`` evaluations.
    settled = not falling or (lowest >= 1.0 and final >= params.min_points)
    if lowest >= params.prior_ratio and fixed and settled:
        how = "flat" if not falling else "falling only towards it while the accuracy repeats its exact value"
        return (
            f"{clause}, {how}: the loss of a model predicting the class prior",
            Severity.WARNING,
            Confidence.MEDIUM,
        )
    if climbed and not fixed and not (
        abs(ratio - 1.0) <= params.entropy_match and train_ratio >= params.prior_ratio
    ):
        # It learned up to a plateau it still moves on: only losses at the entropy of a
        # two-class prior with that majority share still suggest a prior.
        return clause, None, Confidence.LOW
    why = (
        f"below {params.prior_ratio:g}x" if lowest < params.prior_ratio
        else "still falling" if not settled
        else f"but the accuracy moves between evaluations ({repeated:.0%} repeats, "
        f"the last {final} identical)"
    )
    return f"{clause}, {why}: ambiguous without a per-class metric", Severity.INFO, Confidence.LOW


def _example() -> tuple[np.ndarray, np.ndarray]:
    """Accuracy pinned at 0.9, the majority-class rate, from the first evaluation."""
    steps = np.arange(0, 6000, 100)
    return steps, 0.9 + 0.0005 * np.sin(steps / 100.0)


CHECK = Check(
    code="M004",
    name="class-imbalance",
    title="Accuracy pinned at the majority-class rate",
    severity=Severity.WARNING,
    needs=(ACCURACY_ROLES,),
    params=Params,
    advice=(
        "Log per-class recall or balanced accuracy; rebalance with over-/under-sampling or "
        "class-weighted (or focal) loss; tune the decision threshold on validation data; and "
        "check the sampling: a balanced sample of an unbalanced reality needs a threshold "
        "other than 0.5."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
