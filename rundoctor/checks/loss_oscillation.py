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
- **scatter without progress**: no swing of the smoothed loss, but point-to-point scatter of
  at least ``min_scatter`` of the level and no fall the robust trend can show at
  ``progress_confidence``.  Only info: small batches scatter that much in healthy runs, and a
  flat loss is the stall checks' business; with a high learning rate it is worth a look.

A run whose smoothed loss falls steadily is never oscillating, however noisy its batches.

Noise principle: robust scale (MAD around a rolling median, in log space), persistence
(block medians: a heavy batch moves none), effective sample size from autocorrelation
(``trend.trend`` for progress, ``noise.fit`` for block errors); severity by the strength of
the swing.

Why it matters
--------------
Steps that are too large for the curvature of the loss bounce from one side of a valley to
the other instead of going down it; batches too small for the task give gradients so noisy
that each step undoes the last.  Either way the run spends its compute moving around, and
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

from rundoctor.checks import noise, signal, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    min_points: int = field(
        default=20, metadata={"help": "Finite training-loss points needed before judging."}
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


# Defaults: twelve blocks resolve a few swings of a run; five points per block let a median
# ignore two heavy batches.  A 30% rebound is a swing anyone sees on a smoothed plot, and four
# standard errors is beyond what noise does across 66 pairs of blocks.  Healthy per-step
# losses of small batches scatter 10-170% in log units while falling; scatter alone is info.


@dataclass(frozen=True)
class Swing:
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


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    loaded = signal.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    values, steps = binned.level, binned.steps
    logged = noise.log_values(values, 0.1)
    if logged is None:
        return  # a signed loss (GAN, log-density) has no level to swing around
    width = signal.window(values.size, 0.05, minimum=9)
    fitted = noise.fit(logged, width, floor=0.01)
    count = min(params.blocks, values.size // params.min_block)
    if count < 4:
        return
    block_steps, block_levels, size = trend.blocks(steps, logged, count)
    swing = _swing(block_levels, size, fitted.scale, fitted.tau, params)
    fitted_trend = trend.trend(steps, logged)
    if swing is None or fitted_trend is None:
        return
    first, last = signal.edge_levels(logged, 0.25)
    fall = first - last  # log units, positive when the loss went down
    progressing = fitted_trend.falling(params.progress_confidence)
    shift = 0.1 * float(np.median(values))
    level = float(np.median(values))
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
    swung = (
        swing.rebound >= math.log1p(params.min_swing)
        and swing.sigmas >= params.swing_sigmas
        and swing.rebound > max(fall, 0.0)
    )
    axis = ctx.run.axis_of(tag).value
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
        return
    peak = signal.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += f"; learning rate up to {fmt(peak)}"
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
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
