"""Sudden spikes in the training loss, with how long each took to recover.

What it detects
---------------
Points of the main training loss that jump above the local level (a rolling median) by
more than ``noise_sigmas`` times the local noise (the typical point-to-point change around
them, which shrinks as the loss does) and by more than ``min_relative`` of the level,
having been below that a moment before.  Consecutive such
points are one spike.  For each: where, how high, how long until the loss was back at its
level, and, when logged, the learning rate at the spike against just before it and the
gradient norm at the spike against its median.  A long curve is binned first; a spike
keeps its height through the bin maximum.

Severity grows with the evidence: one spike that recovered is info, two or more a warning,
``error_count`` or more, or one still going when the log ends, an error.

Why it matters
--------------
A spike is one update that threw the weights far from where they were: a batch with
corrupt or extreme examples, a learning rate that is fine on average but too large where
the loss is sharp, or an fp16 overflow.  A run that recovers has lost the steps it took to
climb back; spikes that come more and more often are the usual prelude to a divergence,
and one that does not recover has ended the useful part of the run.

What to try
-----------
Clip gradients (``clip_grad_norm_`` at 1.0) and lower the peak learning rate or lengthen
warm-up, especially if the spikes follow a learning-rate increase or come with a
gradient-norm spike.  Log the indices of the batch at each spike step and look at those
examples.  With Adam, raising ``eps`` (1e-6..1e-8) or lowering ``beta2`` (0.95) steadies the
step size when rare gradients are large.
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
        default=20, metadata={"help": "Finite training-loss points needed before judging."}
    )
    window_fraction: float = field(
        default=0.05,
        metadata={"help": "Rolling-median window for the local level, as a fraction of the points."},
    )
    noise_sigmas: float = field(
        default=6.0, metadata={"help": "Least jump above the local level, in noise sigmas."}
    )
    min_relative: float = field(
        default=0.25,
        metadata={"help": "Least jump above the local level, as a fraction of that level."},
    )
    error_count: int = field(
        default=10, metadata={"help": "This many spikes or more make the finding an error."}
    )
    max_listed: int = field(
        default=10, metadata={"help": "Spikes listed in the evidence (largest first)."}
    )


# Defaults: six robust sigmas is far outside what Gaussian noise does in a million points,
# and 25% of the level is a jump anyone sees on a plot; both are needed, so a noisy curve's
# ordinary swings and a smooth curve's tiny blips are both left alone.  A 5% window follows
# the loss down without swallowing a spike of a few points.  Ten spikes in one run is a
# pattern, not bad luck.


@dataclass(frozen=True)
class Spike:
    start: int  # index of the first spiking point in the analysed curve
    end: int  # index of the last
    peak: int
    before: float  # the level just before the spike
    height: float  # peak value
    recovered: bool


def find_spikes(high: np.ndarray, level: np.ndarray, params: Params) -> list[Spike]:
    """Spikes of ``high`` (bin maxima) over the local level of ``level`` (bin medians)."""
    width = signal.window(level.size, params.window_fraction, minimum=5)
    base = signal.rolling_median(high, width)
    local = signal.rolling_median(level, width)
    # The log's own rounding is a floor too: a loss written to 4 decimals moves in 1e-4 steps.
    noise = np.maximum(params.noise_sigmas * signal.local_noise(high, width), 3.0 * signal.resolution(level))
    threshold = np.maximum(noise, params.min_relative * np.abs(local))
    starts, lengths = signal.stretches(high - base > threshold)
    spikes = []
    # One pass per candidate stretch, not per point: a curve has at most a few hundred.
    for start, length in zip(starts.tolist(), lengths.tolist()):
        if start == 0:
            continue  # nothing before it: the start of the run, not a jump
        end = start + length - 1
        peak = start + int(np.argmax(high[start : end + 1]))
        before = float(level[start - 1])
        # Above where the loss just was, too: a steep initial fall sits above the median;
        # and from a positive level, or "x times the level" means nothing.
        if before <= 0 or high[peak] - before <= threshold[start - 1]:
            continue
        spikes.append(Spike(start, end, peak, before, float(high[peak]), end < high.size - 1))
    return spikes


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    loaded = signal.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    spikes = find_spikes(binned.high, binned.level, params)
    if not spikes:
        return
    steps = binned.steps
    axis = ctx.run.axis_of(tag).value
    unrecovered = [spike for spike in spikes if not spike.recovered]
    largest = sorted(spikes, key=lambda spike: spike.height / spike.before, reverse=True)
    listed = largest[: params.max_listed]
    recoveries = [float(steps[s.end + 1] - steps[s.start]) for s in spikes if s.recovered]
    top = largest[0]
    ratio = top.height / top.before
    count = len(spikes)
    message = (
        f"{tag} spiked {count} time{'s' if count > 1 else ''}: the largest to {fmt(top.height)} "
        f"at {axis} {steps[top.peak]:,.0f}, {ratio:.3g}x the level before it ({fmt(top.before)})"
    )
    if recoveries:
        message += f"; back to its level after {np.median(recoveries):,.0f} {axis}s (median)"
    if unrecovered:
        message += f"; still spiking when the log ended at {axis} {steps[-1]:,.0f}"
    message += (
        f" (threshold: {params.noise_sigmas:g} noise sigmas and {params.min_relative:.0%} above "
        f"the local level)"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "spikes": count,
        "unrecovered": len(unrecovered),
        "spike_steps": [int(steps[s.peak]) for s in listed],
        "spike_values": [s.height for s in listed],
        "level_before": [s.before for s in listed],
        "median_recovery_steps": float(np.median(recoveries)) if recoveries else None,
        "threshold_sigmas": params.noise_sigmas,
        "threshold_relative": params.min_relative,
    }
    message += _correlate(ctx, steps, top, evidence)
    if unrecovered or count >= params.error_count:
        severity = Severity.ERROR
    elif count >= 2:
        severity = Severity.WARNING
    else:
        severity = Severity.INFO
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[spikes[0].start], steps[spikes[-1].end]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=Confidence.HIGH,
    )


def _correlate(ctx: RunContext, steps: np.ndarray, spike: Spike, evidence: dict[str, Any]) -> str:
    """What the learning rate and gradient norm did at the largest spike (fills evidence)."""
    notes = []
    at, before = steps[spike.peak], steps[spike.start - 1]
    rate = signal.learning_rate(ctx)
    if rate is not None:
        _, rate_steps, rates = rate
        now, then = signal.value_at(rate_steps, rates, [at, before])
        evidence.update(lr_at_spike=float(now), lr_before_spike=float(then))
        if now > then:
            notes.append(f"the learning rate had just risen ({fmt(then)} -> {fmt(now)})")
        else:
            notes.append(f"learning rate {fmt(now)}, not raised before it")
    grad_tag = ctx.primary(Role.GRAD_NORM)
    if grad_tag is not None:
        grad = ctx.curve(grad_tag).finite
        if len(grad):
            lo, hi = np.searchsorted(grad.steps, [before, steps[spike.end]], side="right")
            window = grad.values[max(lo - 1, 0) : max(hi, lo)]
            peak = float(window.max()) if window.size else float("nan")
            median = float(np.median(grad.values))
            evidence.update(grad_norm_at_spike=peak, grad_norm_median=median)
            notes.append(f"gradient norm {fmt(peak)} (median {fmt(median)})")
    return "; at the largest, " + ", ".join(notes) if notes else ""


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A falling loss with three spikes of 4-6x that recover within a few points."""
    steps = np.arange(0, 5000, 10)
    values = 0.2 + 1.8 * np.exp(-steps / 900.0)
    for index, height in ((150, 5.0), (290, 4.0), (430, 6.0)):
        values[index : index + 3] *= height
    return steps, values


CHECK = Check(
    code="C005",
    name="loss-spikes",
    title="Training loss spikes",
    severity=Severity.WARNING,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Clip gradients (max norm 1.0), lower the peak learning rate or lengthen warm-up, and look "
        "at the batches at the spike steps; with Adam, a larger eps or beta2 = 0.95 steadies rare "
        "large steps."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
