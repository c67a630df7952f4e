"""The training loss swings widely from point to point and makes no net progress.

What it detects
---------------
A main training loss whose point-to-point noise (robust standard deviation of its changes)
is at least ``min_swing`` of its level, while the median of its last quarter is not lower
than the median of its first quarter by more than ``max_progress`` of that noise: the
swings are larger than anything the run achieved.  A long curve is judged binned (bin
medians), at the resolution it is plotted at.

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

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from rundoctor.checks import signal
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    min_points: int = field(
        default=10, metadata={"help": "Finite training-loss points needed before judging."}
    )
    min_swing: float = field(
        default=0.1,
        metadata={"help": "Least point-to-point noise, as a fraction of the loss level."},
    )
    max_progress: float = field(
        default=1.0,
        metadata={"help": "Net fall (first to last quarter) below this many noise sigmas is none."},
    )
    edge_fraction: float = field(
        default=0.25, metadata={"help": "Share of the points at each end compared for progress."}
    )


# Defaults: real training losses swing 0.1-9% of their level from point to point (per-step
# logs of small batches reach 16% while falling 40 sigmas); 10% with no progress is a
# loss dominated by its steps.  Progress under one sigma between the first and the last
# quarter is not visible on a plot; every healthy run seen shows 4 sigmas or more.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    loaded = signal.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    # A long curve is judged at the resolution it is plotted at: per-step noise around a
    # flat median is no-learning's business, swings you can see are this check's.
    values, steps = binned.level, binned.steps
    level = float(np.median(np.abs(values)))
    sigma = signal.noise_sigma(values)
    if not (level > 0 and sigma > 0):
        return
    swing = sigma / level
    first, last = signal.edge_levels(values, params.edge_fraction)
    progress = (first - last) / sigma
    if not (swing >= params.min_swing and progress < params.max_progress):
        return
    message = (
        f"{tag} swings by {swing:.0%} of its level from point to point (sigma {fmt(sigma)} "
        f"around {fmt(level)}; threshold {params.min_swing:.0%}) with no net progress: "
        f"{fmt(first)} in the first quarter, {fmt(last)} in the last "
        f"({progress:+.2f} sigma; threshold {params.max_progress:g})"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "noise_sigma": sigma,
        "level": level,
        "swing": swing,
        "first_quarter_level": first,
        "last_quarter_level": last,
        "progress_sigmas": progress,
        "min_value": float(values.min()),
        "max_value": float(values.max()),
        "threshold_swing": params.min_swing,
        "threshold_progress_sigmas": params.max_progress,
    }
    peak = signal.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += f"; learning rate up to {fmt(peak)}"
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        confidence=Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss jumping between 1.3 and 3.1 around 2.3 with no trend."""
    steps = np.arange(49, 2500, 50)
    swings = np.random.default_rng(0).standard_normal(steps.size)
    return steps, 2.3 + 0.45 * swings


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
