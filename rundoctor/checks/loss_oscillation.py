"""The smoothed training loss swings up and down by more than it makes progress.

What it detects
---------------
The main training loss, in log space (so a swing from 0.6 to 0.9 counts like one from 6 to
9), reduced to block medians (``blocks`` of them, at least ``min_block`` points each):

- a **swing**: a block median climbs back above the lowest block median before it by at
  least ``min_swing`` of the level and by ``swing_sigmas`` standard errors of a difference
  of two block medians (noise from the curve's own robust scale, widened for
  autocorrelation), comes back down again afterwards, and that rebound is larger than the
  net fall from the first to the last quarter.  A warning; the smoothed loss goes up and
  down instead of down;
- **held above a uniform guess**: no swing, but after the first ``first_phase`` of the run
  the training loss (a cross-entropy, judged by its mean with the top 1% clipped, in
  ``blocks`` blocks) stays above the loss of a uniform guess: ln C when the number of
  classes C is known; otherwise, with an accuracy a logged (the training one first), what a
  model right with probability a loses when its errors are no more confident than a uniform
  guess over ``max_classes`` classes, h(a) + (1 - a) ln(max_classes - 1), never below ln 2.
  It fires when the mean is at least ``1 + min_excess`` times that reference, the last
  quarter is still above it, at least ``min_above`` of the blocks are, and the per-batch
  scatter is at least ``min_scatter`` (a smooth floor is label smoothing or a running mean,
  not confident errors).  A warning when a one-sided sign test puts that many blocks above
  by chance at no more than 1 - ``progress_confidence`` (info with fewer blocks); medium
  confidence with a logged learning rate held to the end, low without one.  Not when the
  learning rate decayed below ``lr_held`` of its peak (small steps cannot be bouncing), the
  loss rises significantly (a divergence, loss-divergence's business), or the loss is a sum
  of logged terms (box and mask losses are no cross-entropy);
- **scatter without progress**: no swing of the smoothed loss, but point-to-point scatter of
  at least ``min_scatter`` of the level and no fall the robust trend can show at
  ``progress_confidence``.  Only info: small batches scatter that much in healthy runs, and a
  flat loss is the stall checks' business; with a high learning rate it is worth a look.

- **bouncing epochs**: a loss too short for block medians (fewer than twice ``min_points``
  points, at least ``min_bounce_points``: epoch means, mostly) that rises by ``min_swing``
  or more between consecutive points at least ``min_bounces`` times and falls as often,
  while its first and last quarters lie within ``min_swing`` of each other (no progress).
  Only info: a few points cannot show a swing of the smoothed level, but epoch means of a
  healthy run move smoothly (a 30% rise is over two standard errors of a difference even at
  8% noise a point).

A run whose smoothed loss falls steadily is never oscillating, however noisy its batches.

Noise principle: robust scale (MAD around a rolling median, in log space), persistence
(block medians: a heavy batch moves none; a level held in most blocks, by a sign test),
effective sample size from autocorrelation (``trend.trend`` for progress, ``noise.fit`` for
block errors); severity by the strength of the swing or of the sign test.

Why it matters
--------------
Steps that are too large for the curvature of the loss bounce from one side of a valley to
the other instead of going down it; batches too small for the task give gradients so noisy
that each step undoes the last.  Adaptive optimisers at a far too large rate show it
differently: the loss falls at once and then sits, scattered, above what a uniform guess
would lose while the accuracy looks fine, because each step blows the logits up and the
few errors cost tens of nats each.  Either way the run spends its compute moving around, and
the final weights are whatever the last few steps happened to land on.

What to try
-----------
Lower the learning rate (by 3-10x) or add warm-up and a decay schedule; increase the batch
size or accumulate gradients over several batches; clip gradients.  If the swings follow
the data order (a periodic pattern), shuffle the data.  Check that the logged loss is not a
single-batch value logged once in a long while, which looks noisy even when training is
fine: log a running mean instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import classes, classification, measures, noise, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``loss-oscillation``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=20, metadata={"help": "Finite training-loss points needed before judging."}
    )
    min_bounce_points: int = field(
        default=8, metadata={"help": "Fewest points of a short loss (under twice min_points) judged point to point."}
    )
    min_bounces: int = field(
        default=2,
        metadata={"help": "Rises and falls (each) of min_swing between consecutive points of a short loss that make it bounce."},
    )
    blocks: int = field(
        default=12, metadata={"help": "Block medians the smoothed loss is reduced to."}
    )
    min_block: int = field(
        default=5, metadata={"help": "Fewest points per block (fewer blocks for short curves)."}
    )
    min_swing: float = field(
        default=0.3,
        metadata={"help": "Least rebound of a block median above the lowest before it, as a fraction of the level."},
    )
    swing_sigmas: float = field(
        default=4.0,
        metadata={"help": "Least rebound, in standard errors of a difference of two block medians."},
    )
    min_scatter: float = field(
        default=0.1,
        metadata={"help": "Point-to-point scatter (robust sigma of the log loss) for the info-level note."},
    )
    progress_confidence: float = field(
        default=0.95,
        metadata={"help": "Confidence at which a fall counts as progress (robust trend)."},
    )
    first_phase: float = field(
        default=0.15,
        metadata={"help": "Share of the run left out before judging the loss against a uniform guess."},
    )
    max_classes: int = field(
        default=classes.MAX_FROM_METADATA,
        metadata={"help": "Most classes a task can have, for the uniform-guess loss when the number of classes is unknown."},
    )
    min_excess: float = field(
        default=0.25,
        metadata={"help": "Least excess of the loss's mean level over the uniform-guess loss, as a fraction of it."},
    )
    min_above: float = field(
        default=0.75,
        metadata={"help": "Least share of blocks after the first phase whose mean loss is above the uniform-guess loss."},
    )
    lr_held: float = field(
        default=0.3,
        metadata={"help": "A learning rate whose last-quarter level is below this fraction of its peak counts as decayed."},
    )


# Defaults: twelve blocks resolve a few swings of a run; five points per block let a median
# ignore two heavy batches.  A 30% rebound is a swing anyone sees on a smoothed plot, and four
# standard errors is beyond what noise does across 66 pairs of blocks.  Healthy per-step
# losses of small batches scatter 10-170% in log units while falling; scatter alone is info.
# The first 15% holds the initial fall.  Ten million classes is the most any task has (the
# class-count reader's ceiling): a loss above the uniform-guess loss at that count cannot be
# explained by a large C.  A mean 25% above that loss is far beyond the error of a mean of
# hundreds of points, and three quarters of twelve blocks passes a sign test at 5%.  A rate
# decayed below 30% of its peak takes steps too small to keep bouncing out of the basin.


@dataclass(frozen=True)
class Swing:
    """The largest rebound of the block medians above an earlier low that comes back down again:
    which blocks, how far (log units) and in noise sigmas; zeros when there is none."""

    low_block: int
    high_block: int
    rebound: float  # log units
    sigmas: float
    ups: int  # significant climbs from one block to the next


def _swing(y: np.ndarray, size: int, sigma: float, tau: float, params: Params) -> Swing | None:
    count = y.size
    if count < 4:
        return None
    error = noise.MEDIAN_ERROR * sigma / math.sqrt(max(1.0, size / tau)) * math.sqrt(2.0)
    lows = np.minimum.accumulate(y)
    rebound = y[1:] - lows[:-1]
    # Up and then down again: a climb the loss never comes back from is a divergence (or a
    # late rise), another check's business.
    later_low = np.minimum.accumulate(y[::-1])[::-1]
    comes_back = np.concatenate((y[1:-1] - later_low[2:] > 2.0 * error, [False]))
    rebound = np.where(comes_back, rebound, -np.inf)
    if not np.isfinite(rebound).any():
        return Swing(0, 0, 0.0, 0.0, 0)
    best = int(np.argmax(rebound)) + 1
    low = int(np.argmin(y[:best]))
    ups = int(np.sum(np.diff(y) > 2.0 * error))
    amount = float(rebound[best - 1])
    return Swing(low, best, amount, amount / error if error > 0 else math.inf, ups)


@dataclass(frozen=True)
class AboveUniform:
    """The training loss after the first phase, against the loss of a uniform guess."""

    reference: float  # nats: ln C, or the most a model of the logged accuracy would lose
    basis: str  # where the reference comes from, quoted in the message
    level: float  # mean loss after the first phase (top 1% clipped)
    last_level: float  # the same over the last quarter of the run
    above: int  # blocks whose mean loss is above the reference
    blocks: int
    chance: float  # one-sided sign-test probability of that many blocks above by chance
    start: float  # first step judged
    lr_held: bool | None  # the learning rate kept its level to the end (None: not logged)


def _uniform_loss(ctx: RunContext, tag: str, start: float, params: Params) -> tuple[float, str] | None:
    """The loss of a uniform guess: ln C when C is known; otherwise, with an accuracy a
    logged, the loss of a model right with probability a whose errors are no more confident
    than a uniform guess over ``max_classes`` classes, h(a) + (1 - a) ln(max_classes - 1),
    and never below ln 2 (a uniform guess between two classes)."""
    if ctx.num_classes is not None:
        classes = ctx.num_classes
        return math.log(classes.value), f"ln {classes.value} ({classes.source})"
    for role in (Role.TRAIN_ACCURACY, Role.VAL_ACCURACY):  # the training pair first
        acc_tag = ctx.primary(role)
        if acc_tag is None:
            continue
        curve = ctx.curve(acc_tag).finite
        values = ctx.measure(measures.fraction_values, curve.values)
        if values.size != len(curve):
            continue  # out of range: the range check's business
        placed = measures.steps_on_axis_of_tag(ctx, acc_tag, tag)
        kept = values[placed >= start]
        if kept.size == 0:
            continue
        accuracy = measures.median(kept)
        bound = measures.binary_entropy(accuracy) + (1.0 - accuracy) * math.log(params.max_classes - 1)
        return max(bound, math.log(2.0)), (
            f"what a model at {acc_tag} {accuracy:.3g} loses when its errors are no more "
            f"confident than a uniform guess over {params.max_classes:,} classes"
        )
    return None


def _above_uniform(
    ctx: RunContext, tag: str, steps: np.ndarray, values: np.ndarray, params: Params
) -> AboveUniform | None:
    """The loss after the first phase against a uniform guess (see the module docstring)."""
    if steps.size < params.min_points or ctx.tags(Role.LOSS_COMPONENT):
        return None  # a sum of terms (box, mask, regularisers) is no cross-entropy
    start = float(steps[0] + params.first_phase * (steps[-1] - steps[0]))
    kept = steps >= start
    stretch, stretch_steps = values[kept], steps[kept]
    count = min(params.blocks, stretch.size // params.min_block)
    if count < 4 or float(stretch.min()) < 0.0:
        return None
    reference = _uniform_loss(ctx, tag, start, params)
    if reference is None:
        return None
    uniform, basis = reference
    # A cross-entropy is a mean: block means with the top 1% of the stretch clipped, so one
    # diverging batch sets no block's level (classification.mean_loss).
    clipped = np.minimum(stretch, measures.quantile(stretch, classification.CLIP_QUANTILE))
    block_means = np.array([part.mean() for part in np.array_split(clipped, count)])
    above = int(np.sum(block_means > uniform))
    # a sign test: each block lies above a level the loss sits at with probability 1/2
    chance = noise.binomial_tail(above, count, 0.5)
    last = clipped[-measures.window(clipped.size, 0.25, 1) :]
    lr_held: bool | None = None
    rate = measures.learning_rate(ctx)
    if rate is not None:
        lr_tag, _, rates = rate
        placed = measures.steps_on_axis_of_tag(ctx, lr_tag, tag)
        tail = rates[placed >= steps[-1] - 0.25 * (steps[-1] - steps[0])]
        peak = float(rates.max())
        lr_held = bool(tail.size and peak > 0 and measures.median(tail) >= params.lr_held * peak)
    return AboveUniform(
        reference=uniform,
        basis=basis,
        level=float(clipped.mean()),
        last_level=float(last.mean()),
        above=above,
        blocks=count,
        chance=chance,
        start=float(stretch_steps[0]),
        lr_held=lr_held,
    )


def _stuck_above_uniform(
    ctx: RunContext, tag: str, steps: np.ndarray, values: np.ndarray, scatter: float, params: Params
) -> AboveUniform | None:
    """The loss held above a uniform guess for most of the run (see the module docstring),
    or None when it is not, or when something other than the step size explains it."""
    if scatter < params.min_scatter:
        return None  # a smooth floor: label smoothing, or a running mean hiding the batches
    stuck = _above_uniform(ctx, tag, steps, values, params)
    if stuck is None or stuck.lr_held is False:
        return None  # a learning rate decayed to a fraction of its peak is not bouncing
    if not (
        stuck.level >= (1.0 + params.min_excess) * stuck.reference
        and stuck.last_level > stuck.reference
        and stuck.above >= params.min_above * stuck.blocks
    ):
        return None
    kept = steps >= stuck.start
    logged = noise.log_values(values[kept], 0.1)
    rising = trend.trend(steps[kept], logged) if logged is not None else None
    if rising is not None and rising.rising(params.progress_confidence):
        return None  # a climb is a divergence, the loss-divergence check's business
    return stuck


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding on the primary training loss; a signed loss (GAN, log-density) is never
    judged, as it has no level to swing around."""
    finding = _judge(check, ctx, params)
    if finding is None:
        finding = _bounces(check, ctx, params)
    if finding is not None:
        yield finding


def _bounces(check: Check[Params], ctx: RunContext, params: Params) -> Finding | None:
    """A short loss (epoch means, mostly: under twice ``min_points``, too few for block medians)
    that bounces from point to point: at least ``min_bounces`` rises and as many falls of
    ``min_swing`` between consecutive points, while its first and last quarters lie within
    ``min_swing`` of each other (no progress, and no climb: a divergence).  Epoch means move
    smoothly in a healthy run; a rise of 30% is over two standard errors of a difference even
    at 8% noise per point, and two each way by chance are rare.  Information: a few points
    cannot show a swing of the smoothed level."""
    loaded = measures.train_loss(ctx, params.min_bounce_points)
    if loaded is None:
        return None
    tag, binned = loaded
    values, steps = binned.level, binned.steps
    if values.size >= 2 * params.min_points or not bool(np.all(values > 0)):
        return None
    moves = np.diff(np.log(values))
    step_size = math.log1p(params.min_swing)
    rises, falls = int(np.sum(moves >= step_size)), int(np.sum(moves <= -step_size))
    first, last = measures.edge_levels(np.log(values), 0.25)
    fall = first - last
    largest = math.expm1(float(moves.max()))
    if not (rises >= params.min_bounces and falls >= params.min_bounces and abs(fall) < step_size):
        return None  # a loss that fell (or climbed) by a swing's size from quarter to quarter moved on
    axis = ctx.run.axis_of(tag).value
    evidence: dict[str, Any] = {
        "tag": tag,
        "points": int(values.size),
        "rises": rises,
        "falls": falls,
        "largest_rise": largest,
        "net_fall": -math.expm1(-fall),
        "threshold_swing": params.min_swing,
        "threshold_bounces": params.min_bounces,
    }
    message = (
        f"{tag} bounces from {axis} to {axis}: {rises} rises and {falls} falls of {params.min_swing:.0%} "
        f"or more between consecutive points over {values.size} points (the largest +"
        f"{largest:.0%}), with no progress: {-math.expm1(-fall):+.0%} from the "
        f"first quarter to the last (thresholds {params.min_swing:.0%}, {params.min_bounces} each way); "
        f"too few points to judge its smoothed level"
    )
    peak = measures.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += f"; learning rate up to {fmt(peak)}"
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.INFO,
        confidence=Confidence.LOW,
    )


def _judge(check: Check[Params], ctx: RunContext, params: Params) -> Finding | None:
    """The finding of a loss long enough for block medians (see the module docstring)."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return None
    tag, binned = loaded
    values, steps = binned.level, binned.steps
    logged = ctx.measure(noise.log_values, values, 0.1)
    if logged is None:
        return None  # a signed loss (GAN, log-density) has no level to swing around
    width = measures.window(values.size, 0.05, minimum=9)
    fitted = ctx.measure(noise.fit, logged, width, 0.01)
    count = min(params.blocks, values.size // params.min_block)
    if count < 4:
        return None
    block_steps, block_levels, size = trend.blocks(steps, logged, count)
    swing = _swing(block_levels, size, fitted.scale, fitted.tau, params)
    if swing is None:
        return None
    first, last = measures.edge_levels(logged, 0.25)
    fall = first - last  # log units, positive when the loss went down
    swung = (
        swing.rebound >= math.log1p(params.min_swing)
        and swing.sigmas >= params.swing_sigmas
        and swing.rebound > max(fall, 0.0)
    )
    raw = ctx.curve(tag).finite
    stuck = None if swung else _stuck_above_uniform(ctx, tag, raw.steps, raw.values, fitted.scale, params)
    if not (swung or stuck is not None or fitted.scale >= params.min_scatter):
        return None  # nothing to report, whatever the trend: it is not taken
    fitted_trend = trend.trend(steps, logged)
    if fitted_trend is None:
        return None
    progressing = fitted_trend.falling(params.progress_confidence)
    shift = 0.1 * measures.median(values)
    level = measures.median(values)
    evidence: dict[str, Any] = {
        "tag": tag,
        "level": level,
        "scatter": fitted.scale,
        "rebound": math.expm1(swing.rebound),
        "rebound_sigmas": min(swing.sigmas, 1e6),
        "significant_climbs": swing.ups,
        "net_fall": -math.expm1(-fall),
        "first_quarter_level": math.exp(first) - shift,
        "last_quarter_level": math.exp(last) - shift,
        "progress_significant": bool(progressing),
        "block_points": size,
        "threshold_swing": params.min_swing,
        "threshold_sigmas": params.swing_sigmas,
        "threshold_scatter": params.min_scatter,
    }
    axis = ctx.run.axis_of(tag).value
    if stuck is not None:
        evidence.update(
            uniform_loss=stuck.reference,
            uniform_basis=stuck.basis,
            level_after_first_phase=stuck.level,
            last_quarter_mean=stuck.last_level,
            blocks_above_uniform=stuck.above,
            blocks_judged=stuck.blocks,
            sign_test_chance=stuck.chance,
            threshold_excess=params.min_excess,
            threshold_above=params.min_above,
        )
    if swung:
        low, high = swing.low_block, swing.high_block
        message = (
            f"{tag} swings up and down: its smoothed level climbed {math.expm1(swing.rebound):.0%} "
            f"from {fmt(math.exp(block_levels[low]) - shift)} at {axis} {block_steps[low]:,.0f} back "
            f"to {fmt(math.exp(block_levels[high]) - shift)} at {axis} {block_steps[high]:,.0f} "
            f"({min(swing.sigmas, 999):.1f} standard errors; {swing.ups} significant climbs), more "
            f"than its net fall of {-math.expm1(-fall):.0%} from the first quarter to the last "
            f"(thresholds {params.min_swing:.0%} and {params.swing_sigmas:g} standard errors)"
        )
        severity = Severity.WARNING
        confidence = Confidence.MEDIUM if swing.ups >= 2 else Confidence.LOW
    elif stuck is not None:
        message = (
            f"{tag} stays above the loss of a uniform guess for most of the run: mean "
            f"{fmt(stuck.level)} from {axis} {stuck.start:,.0f}, {stuck.level / stuck.reference:.1f}x "
            f"{fmt(stuck.reference)}, {stuck.basis} (threshold {1 + params.min_excess:g}x), above "
            f"it in {stuck.above} of {stuck.blocks} blocks and at {fmt(stuck.last_level)} over the "
            f"last quarter, scattering by {math.expm1(fitted.scale):.0%} from batch to batch: "
            f"errors so confident that the steps keep throwing the weights out of the basin"
        )
        significant = stuck.chance <= 1.0 - params.progress_confidence
        severity = Severity.WARNING if significant else Severity.INFO
        confidence = Confidence.MEDIUM if significant and stuck.lr_held else Confidence.LOW
    elif fitted.scale >= params.min_scatter and not progressing:
        message = (
            f"{tag} scatters by {math.expm1(fitted.scale):.0%} from point to point around "
            f"{fmt(level)} with no fall the trend can show ({-math.expm1(-fall):+.0%} from the first "
            f"quarter to the last); its smoothed level does not swing, so this is per-batch noise "
            f"without progress (threshold {params.min_scatter:g} in log units)"
        )
        severity = Severity.INFO
        confidence = Confidence.LOW
    else:
        return None
    peak = measures.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += f"; learning rate up to {fmt(peak)}"
    return check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0] if stuck is None or swung else stuck.start, steps[-1]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=confidence,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A per-step loss whose smoothed level rises and falls between ~1 and ~4 three times."""
    steps = np.arange(49, 10_000, 50)
    t = np.linspace(0.0, 1.0, steps.size)
    scatter = np.exp(0.3 * np.random.default_rng(0).standard_normal(steps.size))
    return steps, 2.0 * np.exp(0.7 * np.sin(6 * np.pi * t)) * scatter


CHECK = Check(
    code="C004",
    name="loss-oscillation",
    title="Training loss oscillates without progress",
    severity=Severity.WARNING,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Lower the learning rate 3-10x (with warm-up and a decay schedule), use a larger batch or "
        "gradient accumulation, and clip gradients; log a running mean of the loss rather than "
        "single-batch values."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
