"""Gradient norm exploding, spiking, vanishing, or pinned at the clipping threshold.

What it detects
---------------
Four patterns in every gradient-norm series (``grad_norm``, ``train/grad_norm``):

- exploding: the median of the last ``edge_fraction`` of the run is ``explode_factor``
  times the median of the first;
- spikes: points ``spike_factor`` times above the running median (a window of
  ``spike_window_fraction`` of the run).  They are a warning only when they persist (the
  median of 1% of the steps, at least 5, stands ``spike_factor`` / 2 times above the level
  before it, beyond four standard errors of the norm's own noise) or when one reaches
  ``extreme_spike`` times the median; isolated spikes, however many, are information, with
  how many heavy-tailed noise of the norm's scale (a Student-t in log space) would give by
  chance (``chance_p`` marks the count as beyond chance).  Gradient norms of small batches
  are heavy-tailed: isolated 10-50x norms are normal there;
- vanishing: the end level is below ``vanish_ratio`` times the start level or below the
  absolute floor ``vanish_floor``;
- clipping on most steps: the norm equals one value (the clipping threshold, from
  ``max_grad_norm`` / ``gradient_clip_val`` / ``grad_clip.max_norm`` in the run's
  hyper-parameters when present) at more than ``pinned_fraction`` of the steps, which is
  what a logger that records the norm after clipping shows.

Noise principle: robust scale of the log norm around its running median, and a count test
(how many such spikes would its heavy-tailed noise give by chance); severity follows it.

Hugging Face and mmengine log the norm before clipping, so a norm above ``max_grad_norm``
on every step is normal there (healthy fine-tuning runs sit at 2-20x it) and is not
reported.

Why it matters
--------------
An exploding norm precedes a diverging loss or NaN; repeated spikes are steps where one
batch moved the weights far (often the cause of loss spikes).  A vanishing norm means the
weights have stopped moving: the loss is detached from the parameters, layers are frozen or
saturated, or the learning signal is gone.  A norm clipped at every step turns clipping into
a hidden learning-rate cut: every update is rescaled to the same length.

What to try
-----------
Exploding or spiking: lower the learning rate or lengthen warm-up, clip gradients
(``clip_grad_norm_`` at 1.0), look at the batches at the spike steps, use bf16 or loss
scaling, add normalisation.  Vanishing: check that the loss reaches the parameters
(``requires_grad``, ``detach``, frozen layers), the learning-rate schedule, saturating
activations and initialisation.  Pinned: raise the clipping threshold or lower the learning
rate so that clipping only catches spikes, and log the norm before clipping.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import measures, noise
from rundoctor.checks.base import Check, RunContext
from rundoctor.checks.trend import robust_sigma
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role

# Hyper-parameter names (last part of a dotted key) holding the clipping threshold.
CLIP_KEYS = frozenset(
    {
        "max_grad_norm",
        "gradient_clip_val",
        "clip_grad_norm",
        "clip_grad",
        "max_norm",
        "clip_norm",
        "clipnorm",
        "gradient_clipping",
        "grad_clip",
    }
)

EXPLODING_ADVICE = (
    "Lower the learning rate or lengthen warm-up, clip gradients (clip_grad_norm_ at 1.0), look at the "
    "batches at the spike steps, use bf16 or loss scaling, add normalisation."
)
VANISHING_ADVICE = (
    "Check that the loss reaches the parameters (requires_grad, detach, frozen layers), the learning-rate "
    "schedule, saturating activations and the initialisation."
)
CLIPPING_ADVICE = (
    "Raise the clipping threshold or lower the learning rate so clipping only catches spikes; log the "
    "gradient norm before clipping."
)


@dataclass(frozen=True)
class Params:
    """Thresholds of ``grad-norm``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    # Two orders of magnitude: healthy runs drift by 1.5-5x from start to end (R38, R43, R44).
    explode_factor: float = field(
        default=100.0, metadata={"help": "End level over start level that counts as exploding."}
    )
    # 10x the running median: healthy noisy norms reach 2-6x (R40, R44); one-off spikes of
    # real runs are 15x (R36) and the unstable R43 has dozens at 10-130x.
    spike_factor: float = field(
        default=10.0, metadata={"help": "Point over running median that counts as a spike."}
    )
    # A spike or two in a long run is worth a note, not an alarm.
    max_isolated_spikes: int = field(
        default=2, metadata={"help": "Separate spikes reported as information rather than a warning."}
    )
    # Three orders of magnitude above the median is a blow-up even if it happens once (R42).
    extreme_spike: float = field(
        default=1000.0, metadata={"help": "Spike over running median that is a warning even when alone."}
    )
    vanish_ratio: float = field(
        default=1e-6,
        metadata={"help": "End level below this fraction of the start level counts as vanished."},
    )
    # float32 gradients of a trained network rarely fall below 1e-7 in norm unless nothing flows.
    vanish_floor: float = field(default=1e-7, metadata={"help": "End level below this counts as vanished."})
    # 80%: a norm logged after clipping sits exactly at the threshold on the steps it clipped.
    pinned_fraction: float = field(
        default=0.8, metadata={"help": "Share of steps at one value that means clipping on most steps."}
    )
    # float32 logs of the same threshold differ in the 7th digit.
    pinned_tolerance: float = field(
        default=1e-4, metadata={"help": "Relative tolerance for two norms to count as the same value."}
    )
    edge_fraction: float = field(
        default=0.1, metadata={"help": "Share of the run whose median is the start or end level."}
    )
    # 0.02: Student-t noise with 3 degrees of freedom already has heavier tails than the
    # gradient norms of healthy runs, so the count it allows is generous; a count it makes a
    # one-in-fifty accident is not that noise.
    chance_p: float = field(
        default=0.02,
        metadata={"help": "Spike counts less likely than this under heavy-tailed noise are marked beyond chance (evidence)."},
    )
    spike_window_fraction: float = field(
        default=0.1, metadata={"help": "Running-median window for spikes, as a fraction of the run."}
    )
    min_points: int = field(default=8, metadata={"help": "Fewest finite points to judge a series."})


def clip_threshold(metadata: Mapping[str, str]) -> tuple[float, str] | None:
    """The gradient-clipping threshold in the run's hyper-parameters and its key, if any."""
    for key, text in metadata.items():
        if key.lower().rsplit(".", 1)[-1] not in CLIP_KEYS:
            continue
        try:
            value = float(text)
        except (TypeError, ValueError):
            continue
        if np.isfinite(value) and value > 0:
            return value, key
    return None


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Trend, spike and clipping findings of every gradient-norm series; a series with a negative
    value is no norm and is skipped."""
    clip = clip_threshold(ctx.run.metadata)
    for tag in ctx.tags(Role.GRAD_NORM):
        curve = ctx.curve(tag).finite
        if len(curve) < params.min_points or curve.values.min() < 0:
            continue  # a norm is never negative: this series is something else
        yield from _trend(check, ctx, tag, curve.steps, curve.values, params)
        yield from _spikes(check, ctx, tag, curve.steps, curve.values, params)
        yield from _pinned(check, ctx, tag, curve.steps, curve.values, clip, params)


def _trend(
    check: Check[Params], ctx: RunContext, tag: str, steps: np.ndarray, values: np.ndarray, params: Params
) -> Iterator[Finding]:
    start, end = measures.edge_levels(values, params.edge_fraction)
    evidence = {
        "start_level": start,
        "end_level": end,
        "edge_fraction": params.edge_fraction,
        "points": int(values.size),
    }
    if end < params.vanish_floor or (start > 0 and end < params.vanish_ratio * start):
        yield check.finding(
            ctx,
            tags=[tag],
            steps=(steps[0], steps[-1]),
            message=(
                f"{tag} vanished: {fmt(end)} at the end against {fmt(start)} at the start (threshold: below "
                f"{params.vanish_ratio:g}x the start or below {params.vanish_floor:g})"
            ),
            evidence={
                **evidence,
                "pattern": "vanishing",
                "vanish_ratio": params.vanish_ratio,
                "vanish_floor": params.vanish_floor,
            },
            advice=VANISHING_ADVICE,
        )
    elif start > 0 and end >= params.explode_factor * start:
        yield check.finding(
            ctx,
            tags=[tag],
            steps=(steps[0], steps[-1]),
            message=(
                f"{tag} exploded: {end / start:,.0f}x from {fmt(start)} at the start to {fmt(end)} "
                f"at the end (threshold {params.explode_factor:g}x)"
            ),
            evidence={
                **evidence,
                "pattern": "exploding",
                "growth": end / start,
                "explode_factor": params.explode_factor,
            },
            advice=EXPLODING_ADVICE,
        )


def _spikes(
    check: Check[Params], ctx: RunContext, tag: str, steps: np.ndarray, values: np.ndarray, params: Params
) -> Iterator[Finding]:
    # Bins keep a one-point spike (their maximum) and make the running median cheap.
    bins = measures.binned(steps, values)
    width = measures.window(bins.level.size, params.spike_window_fraction, 5)
    if _below_spikes(bins, width, params.spike_factor):
        return
    base = measures.rolling_median(bins.level, width)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, bins.high / base, 0.0)
    spiking = ratio >= params.spike_factor
    starts, _ = measures.stretches(spiking)
    if starts.size == 0:
        return
    top = int(np.argmax(ratio))
    at = _peak(values, top, bins.size)
    spiked = np.flatnonzero(spiking)
    chance = _chance(bins.level, base, params)
    beyond_chance = noise.poisson_tail(int(starts.size), chance) < params.chance_p
    lasting = _lasting(bins.level, params)
    # Isolated spikes, however many, are the scatter of small batches; a norm that stays up
    # (the median of several steps), or one absurd spike, is a warning.
    severe = lasting or ratio[top] >= params.extreme_spike
    yield check.finding(
        ctx,
        tags=[tag],
        steps=(steps[spiked[0] * bins.size], steps[min((spiked[-1] + 1) * bins.size, values.size) - 1]),
        message=(
            f"{tag} spiked {starts.size:,} time{'s' if starts.size > 1 else ''} above its "
            f"running median (largest {ratio[top]:,.0f}x: {fmt(values[at])} at step {int(steps[at]):,}; "
            f"threshold {params.spike_factor:g}x)"
        ),
        evidence={
            "pattern": "spikes",
            "spikes": int(starts.size),
            "largest_ratio": float(ratio[top]),
            "largest_value": float(values[at]),
            "largest_step": int(steps[at]),
            "running_median_at_largest": float(base[top]),
            "spike_steps": [int(steps[_peak(values, int(i), bins.size)]) for i in starts[:10]],
            "spike_factor": params.spike_factor,
            "max_isolated_spikes": params.max_isolated_spikes,
            "extreme_spike": params.extreme_spike,
            "expected_by_chance": chance,
            "beyond_chance": bool(beyond_chance),
            "lasting": bool(lasting),
        },
        severity=Severity.WARNING if severe else Severity.INFO,
        confidence=Confidence.HIGH if severe else Confidence.MEDIUM,
        advice=EXPLODING_ADVICE,
    )


def _below_spikes(bins: measures.Binned, width: int, factor: float) -> bool:
    """Whether no bin can stand ``factor`` times above its running median of ``width`` bins,
    shown without that median: a median is at least the least value of its window (see
    :func:`measures.window_envelope`); most gradient norms pass this way."""
    floor, _ = measures.window_envelope(bins.level, width)
    if not bool(np.all(floor > 0)):
        return False
    with np.errstate(over="ignore"):
        return not bool(np.any(bins.high / floor >= factor))


def _chance(level: np.ndarray, base: np.ndarray, params: Params) -> float:
    """How many points above ``spike_factor`` x the running median heavy-tailed noise of the
    norm's own scale would give over the curve: gradient norms of small batches scatter a
    lot, and a few 10x norms among thousands are that scatter, not spikes."""
    positive = (level > 0) & (base > 0)
    if positive.sum() < 3:
        return 0.0
    residual = np.log(level[positive]) - np.log(base[positive])
    sigma = max(robust_sigma(residual), 0.01)
    return noise.expected_exceedances(int(positive.sum()), math.log(params.spike_factor) / sigma)


def _lasting(level: np.ndarray, params: Params) -> bool:
    """Whether the median of several consecutive norms stood ``spike_factor`` / 2 times or more
    above the level before them, beyond the norm's own noise (see :mod:`noise`)."""
    logged = noise.log_values(level)
    if logged is None or logged.size < 20:
        return False
    width = measures.window(logged.size, params.spike_window_fraction, 9)
    persist = max(5, round(0.01 * logged.size))
    fitted = noise.fit(logged, width, floor=0.01)
    found = noise.disturbances(
        logged, fitted, baseline=width, persist=persist, sigmas=4.0, min_excess=math.log(params.spike_factor / 2.0)
    )
    return bool(found)


def _peak(values: np.ndarray, index: int, size: int) -> int:
    """The point with the largest value in bin ``index`` of ``size`` points."""
    first = index * size
    return first + int(np.argmax(values[first : first + size]))


def _pinned(
    check: Check[Params],
    ctx: RunContext,
    tag: str,
    steps: np.ndarray,
    values: np.ndarray,
    clip: tuple[float, str] | None,
    params: Params,
) -> Iterator[Finding]:
    # A value held on most steps is the median, so the median is the candidate threshold.
    value = clip[0] if clip else measures.median(values)
    pinned = np.isclose(values, value, rtol=params.pinned_tolerance, atol=0.0)
    if clip and pinned.mean() <= params.pinned_fraction:
        value = measures.median(values)  # the metadata's threshold is not the one in force
        pinned = np.isclose(values, value, rtol=params.pinned_tolerance, atol=0.0)
    fraction = float(pinned.mean())
    if value <= 0 or fraction <= params.pinned_fraction:
        return
    matches = clip is not None and np.isclose(value, clip[0], rtol=params.pinned_tolerance)
    where = np.flatnonzero(pinned)
    source = f" ({clip[1]} = {fmt(clip[0])} in the hyper-parameters)" if matches and clip else ""
    yield check.finding(
        ctx,
        tags=[tag],
        steps=(steps[where[0]], steps[where[-1]]),
        message=(
            f"{tag} is pinned at {fmt(value)}{source} on {fraction:.0%} of {values.size:,} steps "
            f"(threshold {params.pinned_fraction:.0%}): gradients are clipped at almost every step"
        ),
        evidence={
            "pattern": "clipping",
            "pinned_value": value,
            "pinned_fraction": round(fraction, 4),
            "points": int(values.size),
            "clip_from_metadata": clip[0] if clip else None,
            "clip_metadata_key": clip[1] if clip else None,
            "pinned_threshold": params.pinned_fraction,
        },
        confidence=Confidence.HIGH if matches else Confidence.MEDIUM,
        advice=CLIPPING_ADVICE,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A gradient norm wandering around 2 with three spikes of 15-30x."""
    steps = np.arange(0, 5000, 10)
    values = 2.0 + 0.3 * np.sin(steps / 37.0)
    values[[120, 310, 420]] = [40.0, 65.0, 30.0]
    return steps, values


CHECK = Check(
    code="D001",
    name="grad-norm",
    title="Gradient norm exploding, spiking, vanishing or always clipped",
    severity=Severity.WARNING,
    needs=(Role.GRAD_NORM,),
    params=Params,
    advice="Exploding or spiking: " + EXPLODING_ADVICE + " Vanishing: " + VANISHING_ADVICE,
    detect=detect,
    doc=__doc__,
    example=_example,
)
