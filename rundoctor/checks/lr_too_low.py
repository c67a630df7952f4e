"""The training loss creeps down in a slow straight line: the learning rate is too low.

What it detects
---------------
Either of two things.  A logged learning rate that never exceeds the floor of its optimizer
(``sgd_floor`` for SGD, ``adaptive_floor`` for Adam-like or unknown ones; the optimizer read
from the rate's tag, e.g. Lightning's ``lr-SGD``, or the run's hyper-parameters) under a loss
that moved less than ``max_drop``: the cause is named from the log, a warning.  Or a
main training loss that falls by less than ``max_drop`` over the whole run, but falls
steadily and beyond its noise, and falls about as fast in the second half of the run as in
the first (no bend).  A healthy loss drops fast and then bends towards a floor; a loss that
moves in a slow straight line from the first step is limited by the size of its steps.  The
largest logged learning rate is quoted when one is logged.

Noise principle: "falls beyond its noise" is a robust trend (Theil-Sen on block medians)
whose error is widened by the effective sample size of its autocorrelated residuals (see
``checks/trend.py``); with under eight effective points (three epochs) the straight line is
ambiguous and the finding is info.

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
    sgd_floor: float = field(
        default=1e-4,
        metadata={"help": "A logged peak rate at or below this is tiny for plain SGD (momentum or not)."},
    )
    adaptive_floor: float = field(
        default=1e-6,
        metadata={"help": "A logged peak rate at or below this is tiny for Adam-like or unknown optimizers."},
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
    start = trend.start_level(level, params.edge_fraction)
    if not (span > 0 and start > 0):
        return
    end = signal.edge_levels(level, params.edge_fraction)[1]
    drop = (start - end) / start
    tiny = _tiny_rate(ctx, params)
    if tiny is not None and drop < params.max_drop:
        yield _named_by_the_rate(check, ctx, params, tag, steps, start, end, drop, tiny)
        return
    # Least-squares slopes of each half (by step; the middle point belongs to both).
    middle = steps[0] + span / 2
    first, second = steps <= middle, steps >= middle
    first_rate = -signal.slope(steps[first], level[first])
    second_rate = -signal.slope(steps[second], level[second])
    curve = ctx.curve(tag).finite
    fit = trend.trend(curve.steps, curve.values)
    sigmas = -fit.sigmas if fit is not None else 0.0
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
        f"(no bend; threshold {params.min_linearity:.0%}), {min(sigmas, 999):.1f} standard errors "
        f"over {fit.effective if fit else 0:.0f} effective points"
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
    # Evidence strength: few effective points (three epochs) leave the straight line
    # ambiguous, so the finding is info until the fall is several times its error.
    short = fit is None or fit.effective < 8
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.INFO if short else Severity.WARNING,
        confidence=Confidence.LOW if short else Confidence.MEDIUM,
    )


def _tiny_rate(ctx: RunContext, params: Params) -> tuple[str, float, str, float] | None:
    """(lr tag, peak rate, optimizer, floor) when the logged rate never exceeds the floor of
    its optimizer, else None.  The optimizer comes from the rate's tag (Lightning's
    ``lr-SGD``, ``lr-AdamW``) or the run's hyper-parameters (``optimizer: SGD``)."""
    rate = signal.learning_rate(ctx)
    if rate is None:
        return None
    tag, _, rates = rate
    peak = float(rates.max())
    if not peak > 0:
        return None  # zero: nothing is trained at all (no-learning says so)
    names = [tag] + [value for key, value in ctx.run.metadata.items() if "optim" in key.lower()]
    text = " ".join(names).lower()
    adaptive = any(word in text for word in ("adam", "rmsprop", "adagrad", "adafactor", "lion", "lamb"))
    optimizer = "SGD" if "sgd" in text and not adaptive else ("adaptive" if adaptive else "unknown")
    floor = params.sgd_floor if optimizer == "SGD" else params.adaptive_floor
    return (tag, peak, optimizer, floor) if peak <= floor else None


def _named_by_the_rate(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    steps: np.ndarray,
    start: float,
    end: float,
    drop: float,
    tiny: tuple[str, float, str, float],
) -> Finding:
    rate_tag, peak, optimizer, floor = tiny
    kind = {"SGD": "SGD", "adaptive": "an adaptive optimizer", "unknown": "any optimizer"}[optimizer]
    message = (
        f"{tag} moved only {drop:+.1%} over the run ({fmt(start)} -> {fmt(end)}, threshold "
        f"{params.max_drop:.0%}) while the logged learning rate ({rate_tag}) never exceeded "
        f"{fmt(peak)}, at or below {fmt(floor)}, tiny for {kind}: the learning rate is too low"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "start_level": start,
        "end_level": end,
        "drop": drop,
        "lr_tag": rate_tag,
        "lr_max": peak,
        "optimizer": optimizer,
        "threshold_lr": floor,
        "threshold_drop": params.max_drop,
    }
    return check.finding(
        ctx,
        tags=(tag, rate_tag),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
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
