"""The training loss creeps down in a slow straight line: the learning rate is too low.

What it detects
---------------
A main training loss that falls by less than ``max_drop`` over the whole run, but falls
steadily and beyond its noise, and falls about as fast in the second half of the run as in
the first (no bend).  A healthy loss drops fast and then bends towards a floor; a loss that
moves in a slow straight line from the first step is limited by the size of its steps.  The
largest logged learning rate is quoted when one is logged.

Why it matters
--------------
With a learning rate far too low the model does learn, just so slowly that the run ends
long before it gets anywhere: the compute is spent, the result looks like a bad model or a
bad idea, and the cause is one number.  Fine-tuning recipes copied between model sizes and
optimizers (an SGD rate used with Adam, a LoRA run at full-fine-tuning rates divided by
ten) are the usual source.

What to try
-----------
Run a short learning-rate range test (increase the rate exponentially over a few hundred
steps and pick about a tenth of the rate where the loss falls fastest), or try 3x and 10x
the current rate for a few hundred steps and keep the one whose loss falls fastest without
spiking.  Check the scheduler is not stuck in warm-up or starting from its final value.
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
        default=5, metadata={"help": "Finite training-loss points needed before judging."}
    )
    edge_fraction: float = field(
        default=0.1,
        metadata={"help": "Share of the points whose median is the level at each end."},
    )
    max_drop: float = field(
        default=0.2, metadata={"help": "A total relative fall below this is barely moving."}
    )
    min_linearity: float = field(
        default=0.5,
        metadata={"help": "Least ratio of the second half's rate of fall to the first's (no bend)."},
    )
    min_sigmas: float = field(
        default=3.0,
        metadata={"help": "Least total fall, in standard errors of a straight-line fit."},
    )


# Defaults: healthy runs fall by 30-99% (slow fine-tunes of pretrained models 10-15%, with
# most of it early); under 20% with no bend is a crawl.  Real losses fall 3-100x slower in
# their second half than in their first (the few that bend less fell 40% or more); half as
# fast or more means no bend at all.  Three standard errors keeps a flat noisy loss
# (no-learning's business) out.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    loaded = signal.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    span = float(steps[-1] - steps[0])
    start = signal.initial_level(level, params.edge_fraction)
    if not (span > 0 and start > 0):
        return
    end = signal.edge_levels(level, params.edge_fraction)[1]
    drop = (start - end) / start
    # Least-squares slopes of each half (by step; the middle point belongs to both).
    middle = steps[0] + span / 2
    first, second = steps <= middle, steps >= middle
    first_rate = -signal.slope(steps[first], level[first])
    second_rate = -signal.slope(steps[second], level[second])
    change, error = signal.drift(steps, level)
    sigmas = -change / error if error > 0 else float("inf")
    if not (
        0 < drop < params.max_drop
        and first_rate > 0
        and second_rate >= params.min_linearity * first_rate
        and sigmas >= params.min_sigmas
    ):
        return
    message = (
        f"{tag} fell only {drop:.1%} over the run ({fmt(start)} -> {fmt(end)}, threshold "
        f"{params.max_drop:.0%}) in a straight line: it still falls "
        f"{second_rate / first_rate:.0%} as fast in the second half as in the first "
        f"(no bend; threshold {params.min_linearity:.0%})"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "start_level": start,
        "end_level": end,
        "drop": drop,
        "first_half_rate": first_rate,
        "second_half_rate": second_rate,
        "rate_ratio": second_rate / first_rate,
        "standard_errors": min(sigmas, 1e6),
        "threshold_drop": params.max_drop,
        "threshold_linearity": params.min_linearity,
    }
    peak = signal.peak_learning_rate(ctx, evidence)
    if peak is not None:
        message += f"; the learning rate never exceeded {fmt(peak)}"
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        confidence=Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss creeping down in a straight line, 2.0 -> 1.85, with a little noise."""
    steps = np.arange(0, 5000, 25)
    return steps, np.linspace(2.0, 1.85, steps.size) + 0.004 * np.sin(steps / 7.0)


CHECK = Check(
    code="C002",
    name="lr-too-low",
    title="Learning rate too low",
    severity=Severity.WARNING,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Raise the learning rate: try 3x and 10x for a few hundred steps (or run a learning-rate "
        "range test) and keep the largest that falls fastest without spiking; check the "
        "scheduler is not stuck in warm-up."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
