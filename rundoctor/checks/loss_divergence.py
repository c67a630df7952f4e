"""The loss explodes, or climbs steadily through the late part of the run.

What it detects
---------------
Two shapes of divergence on the training loss (the total; each logged term when the run
logs no total, as YOLO does) and on the validation loss:

- an explosion: the smoothed loss magnitude (a rolling median of ``smoothing`` of the
  points, at least 3, so one heavy-tailed batch never counts) stays more than
  ``explode_factor`` times above a reference for a stretch of points.  On the training loss the reference is the
  best level reached so far (a running minimum of the smoothed curve, floored at a small
  fraction of the initial level so a loss converging to zero does not make every wobble an
  explosion, and taken as the best median of as many points as a lasting explosion needs,
  so a lucky run of three easy batches is not a level); on the validation loss it is the initial level, because a validation loss
  climbing back from its minimum is overfitting, a different check.  Magnitude, not value:
  a loss of -7e28 is an explosion too.  A short stretch counts only when it is still
  going when the log ends, or when ``min_consecutive`` points anywhere are absurd
  (``absurd_factor``); other short excursions are loss spikes;
- an explosion into non-finite values: the loss ends NaN or infinite, and its last finite
  values had already climbed ``explode_factor`` times above the reference (a regression on
  raw targets going 1e8 -> 1e16 -> NaN within a few logs is one, however few the points);
- a run that ended worse than it started: the training loss's mean over the last
  ``late_fraction`` of the run (top 1% clipped: a loss is a mean over examples, and a run
  whose batches split into saturated zeros and huge losses has a low median) is
  ``above_start`` times its mean over the first 5%.  A warning: a quarter of a run is too
  many points for noise, but a few times is not orders of magnitude;
- a steady late rise: over the last ``late_fraction`` of the run the training loss rises
  by ``late_rise`` or more of its level, significant at ``late_confidence`` by a robust
  trend (Theil-Sen on block medians, with an effective sample size from the residuals'
  autocorrelation, see :mod:`rundoctor.checks.trend`), on at least ``late_min_points``
  points of that stretch.  It is a warning; info when the
  logged learning rate rose over the same stretch (a warm restart raises the loss by design).

Noise principle: the level is a rolling median (persistence: several points must agree),
the reference is the best level held over as many points, a lasting explosion must pass its
factor by ``NOISE_SIGMAS`` standard errors of a short median of the curve's own log-space
noise (nothing on a smooth curve; much on a per-step loss that scatters over an order of
magnitude), and the late trend's significance accounts for autocorrelation and few points.  Severity: an explosion is an error (orders of magnitude,
or non-finite, is overwhelming evidence); ending worse than the start is a warning; a late
rise a warning or info.

Steps a restart wrote again are never a jump: the analysed curve keeps the last write of
each step.  Starts that a restart wrote over (the same steps logged again, so the analysed curve keeps
only the last start) are searched in the order they were logged, for absurd growth only: a
start that blew up and was abandoned is still worth knowing about.

Losses that are not positive (GAN players, Wasserstein critics, log-densities) have no
floor to compare with, and for them lower is not worse: they are only checked for absurd
growth (``absurd_factor``) over their typical size.

Why it matters
--------------
Once the loss has exploded the weights are garbage: the run will not come back by itself,
and everything it computes from there on is wasted.  A slow steady climb of the training
loss is the same failure in slow motion: the optimiser is taking steps the loss surface
does not allow.

What to try
-----------
Lower the learning rate (by 3-10x), add or lengthen warm-up, clip gradients
(``clip_grad_norm_`` at 1.0), and with fp16 check the loss scaler or switch to bf16.  Look
at the batch where it started for extreme inputs or labels, and check custom loss terms
for values that can go negative or unbounded (an IoU loss on degenerate boxes, a log of a
probability that reaches 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import classification, measures, noise, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``loss-divergence``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Finite points needed before a curve is judged."}
    )
    explode_factor: float = field(
        default=10.0,
        metadata={"help": "Loss magnitude above this many times the reference is exploded."},
    )
    floor_fraction: float = field(
        default=0.05,
        metadata={"help": "The reference never drops below this fraction of the initial level."},
    )
    min_consecutive: int = field(
        default=3, metadata={"help": "Fewest exploded points that can count."}
    )
    persist_fraction: float = field(
        default=0.05,
        metadata={"help": "Exploded stretch length (fraction of the points) that always counts."},
    )
    absurd_factor: float = field(
        default=1000.0,
        metadata={"help": "Points this many times above the reference count even when apart."},
    )
    signed_fraction: float = field(
        default=0.1,
        metadata={"help": "A curve with more than this fraction of points <= 0 is not positive."},
    )
    smoothing: float = field(
        default=0.01,
        metadata={"help": "Rolling-median window for the running best, as a fraction of the points."},
    )
    above_start: float = field(
        default=3.0,
        metadata={"help": "A training loss whose mean over the last late_fraction is this many times its mean over the first 5% diverged."},
    )
    late_fraction: float = field(
        default=0.25, metadata={"help": "Late part of the run searched for a steady rise."}
    )
    late_rise: float = field(
        default=0.2,
        metadata={"help": "Least rise over the late part, as a fraction of the loss level."},
    )
    late_confidence: float = field(
        default=0.999,
        metadata={"help": "Confidence that the late rise is not noise (robust trend, effective sample size)."},
    )
    late_min_points: int = field(
        default=8,
        metadata={"help": "Fewest points in the late part before a steady rise can be claimed."},
    )


# Defaults: healthy runs seen in practice never return to 10x their best smoothed level
# (restarts and resumes jump 1.5-3x; an initial drop from 46 to 0.6 is a fall, not a rise);
# validation losses of badly overfitted runs reach 4x their minimum, well below 10x their
# start.  A 5% floor ignores a loss that converges towards zero.  Three points rule out a
# single bad batch; 5% of the run separates a divergence from a spike the run recovers from;
# 1000x is beyond any noise.  A 20% climb over the last quarter, significant at 99.9% with the
# sample size its autocorrelation leaves, is a trend no resampling of the noise produces (at
# 99%, one healthy run in a hundred or two, a very noisy loss of a few dozen logs, showed one
# somewhere; real divergences stand far further out);
# below eight points the noise it is judged against is itself a guess (four or five points
# can lie near a line by chance and make a noisy rise look like sixteen standard errors).


# Standard errors of a short median (log space) a lasting explosion must stand beyond its
# factor: three, so the scatter of a heavy-tailed per-step loss never passes for a rise.
NOISE_SIGMAS = 3.0


@dataclass(frozen=True)
class Explosion:
    """Where a curve ran away, as indices into the analysed (binned) curve."""

    start: int
    last: int
    points: int  # exploded points between start and last
    peak: int  # the largest magnitude
    ratio: float  # magnitude / reference at the peak
    ends_run: bool  # still exploded at the last point
    threshold: str  # the rule it broke, for the message


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Findings of this check on every training and validation loss (terms included); see the module
    docstring for what counts as exploding or climbing."""
    judged = [(tag, True) for tag in measures.loss_tags(ctx, Role.TRAIN_LOSS, Role.LOSS_COMPONENT)]
    judged += [(tag, False) for tag in measures.loss_tags(ctx, Role.VAL_LOSS, Role.VAL_LOSS_COMPONENT)]
    for tag, training in judged:
        curve = ctx.curve(tag).finite
        if len(curve) < params.min_points:
            finding = _into_non_finite(check, ctx, params, tag, training)
            if finding is not None:
                yield finding
            continue
        binned = ctx.measure(measures.binned, curve.steps, curve.values)
        finding = _explosion(check, ctx, params, tag, binned, training)
        if finding is None and ctx.run.point_count(tag) > len(ctx.curve(tag)):
            # A restart wrote some steps again: read the log as written, overwritten starts too.
            raw = ctx.raw_curve(tag).finite
            if len(raw) >= params.min_points:
                in_order = measures.binned(raw.steps, raw.values)
                finding = _explosion(check, ctx, params, tag, in_order, training, overwritten=True)
        if finding is None:
            finding = _into_non_finite(check, ctx, params, tag, training)
        if finding is None and training:
            finding = _above_start(check, ctx, params, tag, binned)
        if finding is None and training:
            finding = _late_rise(check, ctx, params, tag, binned)
        if finding is not None:
            yield finding


def is_positive(values: np.ndarray, signed_fraction: float) -> bool:
    """True for a loss that is positive but for a few corrupt points (not a GAN or critic)."""
    return bool(np.mean(values > 0) >= 1.0 - signed_fraction)


def find_explosion(
    magnitude: np.ndarray,
    reference: np.ndarray,
    factor: float,
    params: Params,
    *,
    absurd_only: bool = False,
    raw: np.ndarray | None = None,
    margin: float = 1.0,
) -> Explosion | None:
    """The first place where ``magnitude`` ran away from ``reference``, or None.

    Either a stretch above ``factor`` x the reference that lasts (``persist_fraction``) or
    is still going at the end, or ``min_consecutive`` points anywhere above
    ``absurd_factor`` x: a run that blew up and was restarted from a checkpoint several
    times shows short stretches, but no noise reaches a thousand times the loss.  The
    lasting rule asks ``factor`` times ``margin`` (what the curve's noise allows a short
    median to stray).
    """
    ratio = magnitude / reference
    count = ratio.size
    starts, lengths = measures.stretches(ratio > factor * margin)
    persist = max(params.min_consecutive, round(params.persist_fraction * count))
    lasting = (lengths >= persist) | ((lengths >= params.min_consecutive) & (starts + lengths == count))
    lasting &= not absurd_only
    candidates = [
        (
            int(starts[i]),
            int(starts[i] + lengths[i] - 1),
            int(lengths[i]),
            f"{factor * margin:.3g}x for {persist}+ points in a row, or to the end of the log"
            + (f" ({factor:g}x beyond the noise of a short median)" if margin > 1.01 else ""),
        )
        for i in np.flatnonzero(lasting)[:1]
    ]
    absurd_factor = max(params.absurd_factor, factor)
    # Absurd points count one by one (``raw`` when given): no noise reaches 1000x.
    absurd_ratio = ratio if raw is None else raw / reference
    absurd = np.flatnonzero(absurd_ratio >= absurd_factor)
    if absurd.size >= params.min_consecutive:
        candidates.append(
            (
                int(absurd[0]),
                int(absurd[-1]),
                int(absurd.size),
                f"{absurd_factor:g}x at {params.min_consecutive}+ points",
            )
        )
    if not candidates:
        return None
    start, last, points, threshold = min(candidates)
    peak = start + int(np.argmax(absurd_ratio[start : last + 1]))
    return Explosion(
        start, last, points, peak, float(absurd_ratio[peak]), bool(ratio[-1] > factor), threshold
    )


def _explosion(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    binned: measures.Binned,
    training: bool,
    overwritten: bool = False,
) -> Finding | None:
    """An explosion in ``binned``; ``overwritten``: the curve in log order, restarts included.

    In log order a restart from scratch jumps back to the initial level, up to 1 /
    ``floor_fraction`` times the reference: only the absurd rule is safe there.
    """
    level = binned.level
    initial = abs(measures.edge_levels(level, 0.05)[0])
    signed = not is_positive(level, params.signed_fraction)
    if signed:
        # No floor to compare with: only absurd growth over the typical size counts.
        reference = np.full(level.size, measures.median(np.abs(level)))
        factor = params.absurd_factor
        kind = "typical size"
    elif training:
        # The best level the loss held: a median over as many points as a lasting explosion
        # needs, so the reference is a level and not a lucky run of easy batches (a per-step
        # loss of batch 4 dips to a tenth of its level for three points in a row by chance).
        held = max(params.min_consecutive, round(params.persist_fraction * level.size))
        smooth = ctx.measure(measures.rolling_median, level, max(measures.window(level.size, params.smoothing), held))
        best = np.minimum.accumulate(np.abs(smooth))
        reference = np.maximum(best, params.floor_fraction * initial)
        factor = params.explode_factor
        kind = "best level so far"
    else:
        reference = np.full(level.size, initial)
        factor = params.explode_factor
        kind = "initial level"
    if not (np.all(reference > 0) and np.all(np.isfinite(reference))):
        return None
    # Judged on a rolling median (3 points at least): one heavy-tailed batch is not a
    # divergence; the absurd rule on single points stays, for restarts seen in log order.
    width = max(3, measures.window(level.size, params.smoothing))
    if not overwritten:
        # No median of ``width`` points can pass ``factor`` where every point near it stays
        # below: then neither rule can fire (the absurd one asks more of single points), and
        # the curve is not smoothed at all.  Most curves end here.
        _, largest = measures.window_envelope(np.abs(level), width)
        if bool(np.all(largest / reference < factor)):
            return None
    magnitude = np.abs(level) if overwritten else np.abs(ctx.measure(measures.rolling_median, level, width))
    margin = 1.0
    # The margin (at least 1) only raises the lasting rule above ``factor``: on a curve that
    # never passes ``factor`` it changes nothing, and its noise fit is not taken.
    if training and not signed and not overwritten and bool(np.any(magnitude / reference > factor)):
        # A median of a few points of a loss that scatters over an order of magnitude (batch
        # 4 at a high constant rate) strays far from its level, and the best of many such
        # medians strays further: the factor is asked beyond NOISE_SIGMAS standard errors of
        # that median in log space.  Nothing on a smooth curve; a lot on a wild one.
        logged = np.log(np.abs(level[level > 0]))
        if logged.size >= 3:
            sigma = noise.fit(logged, measures.window(logged.size, 0.05, minimum=9)).scale
            margin = float(np.exp(NOISE_SIGMAS * noise.MEDIAN_ERROR * sigma / np.sqrt(width)))
    explosion = find_explosion(
        magnitude, reference, factor, params, absurd_only=overwritten, raw=np.abs(level), margin=margin
    )
    if explosion is None:
        return None
    steps = binned.steps
    stretch = steps[explosion.start : explosion.last + 1]  # in log order when overwritten
    axis = ctx.run.axis_of(tag).value
    peak_value = float(level[explosion.peak])
    points = explosion.points * binned.size
    approx = "~" if binned.size > 1 else ""
    ending = (
        "it had not come back down when the log ended"
        if explosion.ends_run
        else "it came back down afterwards"
    )
    corruption = (
        "; a negative loss this large is numerical corruption, not progress"
        if peak_value < 0 and not signed
        else ""
    )
    split = "training" if training else "validation"
    where = " in a start that a later restart wrote over" if overwritten else ""
    message = (
        f"{tag} exploded{where}: it reached {fmt(peak_value)} at {axis} "
        f"{steps[explosion.peak]:,.0f}, {explosion.ratio:.3g}x its {kind} "
        f"({fmt(reference[explosion.peak])}); {approx}{points:,} points between {axis}s "
        f"{stretch.min():,.0f} and {stretch.max():,.0f} exceed the threshold "
        f"({explosion.threshold}) and {ending}{corruption}"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "split": split,
        "peak_value": peak_value,
        "peak_step": int(steps[explosion.peak]),
        "reference": kind,
        "reference_level": float(reference[explosion.peak]),
        "initial_level": initial,
        "ratio": explosion.ratio,
        "exploded_points": points,
        "recovered": not explosion.ends_run,
        "overwritten_by_restart": overwritten,
        "threshold": explosion.threshold,
    }
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(stretch.min(), stretch.max()),
        message=message,
        evidence=evidence,
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
    )


def _into_non_finite(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, training: bool
) -> Finding | None:
    """A loss whose last finite values climbed ``explode_factor`` over its best and that is
    non-finite from there to the end of the log: it exploded into NaN or infinity."""
    curve = ctx.curve(tag)
    values = curve.values
    finite = np.isfinite(values)
    if values.size < 2 or finite.all() or not finite.any() or finite[-1]:
        return None
    last = int(np.flatnonzero(finite)[-1])
    before = values[: last + 1][finite[: last + 1]]
    if before.size < 2 or not is_positive(before, params.signed_fraction):
        return None
    # The best level before the last finite point: a running minimum of the values
    # logged so far, floored like the training reference (a loss near zero is no base).
    best = max(float(np.min(np.abs(before[:-1]))), params.floor_fraction * abs(float(before[0])))
    if training is False:
        best = abs(float(before[0]))  # validation: against where it started, as for explosions
    peak = float(abs(before[-1]))
    if not (best > 0 and peak >= params.explode_factor * best):
        return None
    ratio = peak / best
    axis = ctx.run.axis_of(tag).value
    steps = curve.steps
    first_bad = int(steps[last + 1])
    kinds = "NaN" if np.isnan(values[last + 1 :]).all() else "non-finite"
    message = (
        f"{tag} exploded into {kinds}: its last finite value {fmt(float(before[-1]))} at {axis} "
        f"{int(steps[last]):,} was {ratio:.3g}x its best level ({fmt(best)}), and every point from "
        f"{axis} {first_bad:,} to the end of the log is {kinds} (threshold {params.explode_factor:g}x)"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "split": "training" if training else "validation",
        "peak_value": float(before[-1]),
        "peak_step": int(steps[last]),
        "reference": "best level so far" if training else "initial level",
        "reference_level": best,
        "ratio": ratio,
        "first_non_finite_step": first_bad,
        "non_finite_points": int(values.size - last - 1),
        "recovered": False,
        "overwritten_by_restart": False,
        "threshold": f"{params.explode_factor:g}x before non-finite values to the end of the log",
    }
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(int(steps[last]), int(steps[-1])),
        message=message,
        evidence=evidence,
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
    )


def _above_start(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, binned: measures.Binned
) -> Finding | None:
    """A training loss whose mean over the last ``late_fraction`` of the points stands
    ``above_start`` times above its mean over the first 5%: the run ended worse than the
    model it started from, which per-batch noise does not do over a quarter of a run.

    Means, their top 1% clipped (:func:`rundoctor.checks.classification.mean_loss`): a loss
    is a mean over examples, and a run whose batches split into saturated zeros and huge
    losses has a low median and a high mean."""
    level, steps = binned.level, binned.steps
    if not is_positive(level, params.signed_fraction):
        return None
    count = level.size
    tail = max(params.min_consecutive, round(params.late_fraction * count))
    head = max(params.min_consecutive, round(0.05 * count))
    if count < max(params.min_points, tail + head):
        return None
    initial = classification.mean_loss(np.abs(level[:head]))
    end = classification.mean_loss(np.abs(level[-tail:]))
    if not (initial > 0 and end >= params.above_start * initial):
        return None
    held = max(params.min_consecutive, round(params.persist_fraction * count))
    smooth = measures.rolling_median(level[:-tail], held)
    best_at = int(np.argmin(smooth))
    axis = ctx.run.axis_of(tag).value
    message = (
        f"{tag} ended worse than it started: its mean over the last {params.late_fraction:.0%} of "
        f"the run ({fmt(end)}, {axis}s {steps[-tail]:,.0f}-{steps[-1]:,.0f}) is {end / initial:.3g}x "
        f"its mean over the first points ({fmt(initial)}), after holding {fmt(float(smooth[best_at]))} "
        f"at {axis} {steps[best_at]:,.0f} (threshold {params.above_start:g}x): the updates undid "
        f"what it learned and more"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "split": "training",
        "initial_level": initial,
        "end_level": end,
        "ratio": end / initial,
        "best_level": float(smooth[best_at]),
        "best_step": float(steps[best_at]),
        "tail_points": tail * binned.size,
        "threshold_above_start": params.above_start,
    }
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[-tail], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
    )


def _late_rise(
    check: Check[Params], ctx: RunContext, params: Params, tag: str, binned: measures.Binned
) -> Finding | None:
    level, steps = binned.level, binned.steps
    if not is_positive(level, params.signed_fraction):
        return None
    span = steps[-1] - steps[0]
    tail = steps >= steps[-1] - params.late_fraction * span
    count = int(tail.sum())
    # A trend's error measured on a handful of points can come out near zero by chance: a
    # "steady" climb needs enough of them to show its own noise.
    if span <= 0 or count < max(params.min_points, params.late_min_points):
        return None
    x, y = steps[tail], level[tail]
    # A first look at the fitted change alone: the full trend (its error) only for a rise of
    # ``late_rise`` or more, which most runs never make.
    first_look = trend.line(x, y)
    if first_look is None:
        return None
    rise = first_look.change
    start_level = measures.median(y) - rise / 2.0
    if not start_level > 0:
        return None
    relative = rise / start_level
    if not relative >= params.late_rise:
        return None
    fitted = first_look.trend()
    low, _ = fitted.interval(params.late_confidence)
    if not low > 0:
        return None
    axis = ctx.run.axis_of(tag).value
    sigmas = fitted.sigmas
    message = (
        f"{tag} climbed steadily over the last {params.late_fraction:.0%} of the "
        f"run: {fmt(start_level)} -> {fmt(start_level + fitted.change)} (+{relative:.0%}, "
        f"{min(sigmas, 999):.1f} standard errors over ~{fitted.effective:.0f} independent points) "
        f"from {axis} {x[0]:,.0f} to {x[-1]:,.0f} (thresholds +{params.late_rise:.0%} at "
        f"{params.late_confidence:.0%} confidence)"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "split": "training",
        "start_level": start_level,
        "end_level": start_level + fitted.change,
        "rise": float(relative),
        "standard_errors": min(float(sigmas), 1e6),
        "effective_points": fitted.effective,
        "tail_points": count,
        "threshold_rise": params.late_rise,
        "threshold_confidence": params.late_confidence,
    }
    severity = Severity.WARNING
    rate = measures.learning_rate(ctx)
    if rate is not None:
        _, rate_steps, rates = rate
        # The rate a little before the stretch (a restart just before it counts too)
        # against its peak inside it.
        lead = x[0] - 0.5 * params.late_fraction * span
        (at_start,) = measures.value_at(rate_steps, rates, [lead])
        inside = rates[(rate_steps >= lead) & (rate_steps <= x[-1])]
        peak = float(inside.max()) if inside.size else float(at_start)
        evidence.update(lr_at_start=float(at_start), lr_peak_in_stretch=peak)
        if peak > 1.5 * float(at_start):
            severity = Severity.INFO
            message += (
                f"; the learning rate rose over the same stretch ({fmt(float(at_start))} -> "
                f"{fmt(peak)}), which raises the loss by design (a warm restart)"
            )
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(x[0], x[-1]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss that falls for 60% of the run, then grows fifty-fold."""
    steps = np.arange(0, 3000, 10)
    values = 0.3 + 1.7 * np.exp(-steps / 400.0)
    turn = 180
    values[turn:] = values[turn] * np.exp(np.linspace(0.0, np.log(50.0), steps.size - turn))
    return steps, values


CHECK = Check(
    code="N002",
    name="loss-divergence",
    title="Loss explodes or climbs",
    severity=Severity.ERROR,
    needs=((Role.TRAIN_LOSS, Role.VAL_LOSS, Role.LOSS_COMPONENT, Role.VAL_LOSS_COMPONENT),),
    params=Params,
    advice=(
        "Lower the learning rate 3-10x, add or lengthen warm-up, clip gradients (max norm 1.0), "
        "and with fp16 check the loss scaler or use bf16; inspect the batch where it started and "
        "any custom loss term that can go negative or unbounded."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
