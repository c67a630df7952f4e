"""The training loss is still clearly falling when the run ends: it could train longer.

What it detects
---------------
A main training loss whose last ``tail_fraction`` of points (at least ``min_tail_points``)
falls in a straight-line fit by ``min_gain`` or more of its level and by ``min_sigmas``
standard errors or more of the fit, while still above ``converged_fraction`` of where it
started (a loss memorising its data keeps creeping towards zero; that is not a reason to
train longer).  This is information, never more, not a fault: healthy runs that stop early
get it.

Noise principle: the fall is a robust trend (Theil-Sen on block medians, so 10-50x
batches of a small-batch loss move nothing) whose standard error is widened by the
effective sample size of autocorrelated residuals (running averages logged by HF and
Keras); the fall must reach ``min_sigmas`` standard errors and ``confidence`` by Student's
t on those effective points, so a short tail (three epochs) needs a larger fall
(``checks/trend.py``).

Why it matters
--------------
A loss still falling at the end means the model had not converged: the same run, given
more steps, would very likely end lower.  Comparing it with runs that did converge (or
choosing among settings on it) compares unfinished work.

What to try
-----------
Train longer if the validation metrics are also still improving, and extend the learning
rate schedule with it (a cosine or linear decay that already reached zero must be
stretched, not continued at zero).  If validation has stopped improving, the falling
training loss is the start of overfitting instead: keep the best checkpoint and stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import measures, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``still-improving``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=8, metadata={"help": "Finite training-loss points needed before judging."}
    )
    tail_fraction: float = field(
        default=0.2, metadata={"help": "Final share of the points whose trend is measured."}
    )
    min_tail_points: int = field(
        default=4, metadata={"help": "Fewest points in the final stretch."}
    )
    min_gain: float = field(
        default=0.02,
        metadata={"help": "Least fall over the final stretch, as a fraction of its level."},
    )
    min_sigmas: float = field(
        default=3.0, metadata={"help": "Least fall over the final stretch, in standard errors."}
    )
    confidence: float = field(
        default=0.99,
        metadata={
            "help": "Confidence of the fall by Student t on the effective points (fewer or "
            "autocorrelated points need a larger fall)."
        },
    )
    edge_fraction: float = field(
        default=0.05, metadata={"help": "Share of the points whose median is the initial level."}
    )
    converged_fraction: float = field(
        default=0.05,
        metadata={"help": "Below this fraction of its start the loss has converged."},
    )


# Defaults: the last 20% of a run is what anyone looks at to judge convergence; 2% of the
# level is visible on a plot, and 3 standard errors of a straight-line fit rules out noise.
# Below 5% of its starting level a training loss is memorising its data (real runs seen:
# 0.03-0.2% of their start while still creeping down).


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding on the primary training loss: still falling significantly in its final
    stretch when the run ends."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    count = measures.window(level.size, params.tail_fraction, params.min_tail_points)
    x, y = steps[-count:], level[-count:]
    curve = ctx.curve(tag).finite
    inside = curve.steps >= x[0]
    stretch_steps, stretch_values = curve.steps[inside], curve.values[inside]
    # A first look at the fitted change alone: a fall below ``min_gain`` of the level needs
    # no error bars (most runs), so the full trend is taken only for a large one.
    first_look = trend.line(stretch_steps, stretch_values)
    if first_look is None:
        return
    initial = measures.initial_level(level, params.edge_fraction)
    end = measures.median(stretch_values)  # the trend's level
    if not (end > 0 and initial > 0) or not -first_look.change / end >= params.min_gain:
        return
    fit = first_look.trend()
    fall = -fit.change
    gain = fall / end
    sigmas = -fit.sigmas
    if not (
        gain >= params.min_gain
        and sigmas >= params.min_sigmas
        and fit.falling(params.confidence)
        and fall > 2.0 * measures.resolution(y)
        and end > params.converged_fraction * initial
    ):
        return
    axis = ctx.run.axis_of(tag).value
    message = (
        f"{tag} is still falling at the end of the run: -{gain:.1%} of its level over the last "
        f"{count} points ({axis}s {x[0]:,.0f}-{x[-1]:,.0f}), {min(sigmas, 999):.1f} standard "
        f"errors over {fit.effective:.0f} effective points (thresholds {params.min_gain:.0%} and "
        f"{params.min_sigmas:g}, Student t); more steps "
        f"would likely lower it further"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "tail_points": int(count * binned.size),
        "tail_fall": fall,
        "tail_gain": gain,
        "standard_errors": min(sigmas, 1e6),
        "end_level": end,
        "initial_level": initial,
        "threshold_gain": params.min_gain,
        "threshold_standard_errors": params.min_sigmas,
        "effective_points": fit.effective,
    }
    rate = measures.learning_rate(ctx)
    if rate is not None:
        rate_tag, _, rates = rate
        last, peak = float(rates[-1]), float(rates.max())
        evidence.update(lr_tag=rate_tag, lr_last=last, lr_max=peak)
        if peak > 0 and last <= 0.01 * peak:
            message += (
                f"; the learning rate had already decayed to {fmt(last)} (peak {fmt(peak)}): "
                f"stretch the schedule rather than adding steps at the end"
            )
    # Info by nature: a run still improving at its end is healthy, only unfinished.
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(x[0], x[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.INFO,
        confidence=Confidence.HIGH if sigmas >= 2 * params.min_sigmas else Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss still falling steadily when the run stops."""
    steps = np.arange(0, 10000, 20)
    return steps, 0.2 + 1.8 * np.exp(-steps / 6000.0)


CHECK = Check(
    code="C006",
    name="still-improving",
    title="Training loss still falling at the end",
    severity=Severity.INFO,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Train longer if validation is also still improving, stretching the learning-rate "
        "schedule with the run; if validation has stopped improving, keep the best checkpoint "
        "instead."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)

