"""Spikes in the training loss: disturbances that persist, or points no noise explains.

What it detects
---------------
Two kinds of spike in the main training loss, each judged against the curve's own noise
(see :mod:`rundoctor.checks.noise`; a positive loss is judged in log space, so "3x the
level" means the same at a loss of 2 and of 0.002):

- a **persistent disturbance**: the median of ``persist_fraction`` of the points (at least
  ``min_persist``) stands above the median of the points just before it by more than
  ``noise_sigmas`` standard errors of that difference and by more than ``min_relative`` of
  the level, and the curve's own single points would put that many that high side by side
  fewer than ``disturbance_alpha`` times over the run (the share of points that high,
  counted on the rest of the curve, a binomial tail for the window and for the whole
  stretch, times the number of windows in the run: a 20,000-step per-step loss with many
  hard batches has many chances to put three of them together).  One heavy batch, or a
  few, cannot move a median; a loss that was knocked up and takes a while to come back
  does;
- an **isolated extreme point**: a point above both its rolling median and the level just
  before it by so much that heavy-tailed (Student-t) noise of the curve's own scale would
  produce fewer than ``chance_alpha`` such points over the whole curve.  On a per-step loss
  of small batches that takes tens of noise sigmas; on a smooth curve a few times the level;
- **recurring bad batches**: single points none of which need stand out alone, but of which
  there are too many that high together: the k highest (k from ``min_recurring``), when
  the same heavy-tailed noise would give k points that high with a Poisson probability of
  at most ``recurring_alpha`` after paying for every k tried.  A corrupt shard, or a few
  mislabelled examples, met again and again; when they are evenly spaced the period is
  given.  Judged on single logged points: a long curve's bin maxima are not, so its raw
  points are judged, each against its bin's level and the noise of single points around it.

For each: where, how high, how long until the loss was back at its level, and, when
logged, the learning rate at the spike against just before it and the gradient norm at the
spike against its median.  A long curve is binned first (bin medians, and bin maxima for
isolated points, each judged as the worst of its bin: against the noise of single points
inside the bins, over every point of the run).  Steps where a restarted log joins two starts are left out: that jump is
the restart (the duplicate-steps check reports it).

Severity follows the evidence: recurring bad batches alone are info (each cost one step
and the run went on), and never make a finding more severe; a single spike that recovered
is info; two or more, a
single large disturbance (``large_factor`` times the level and ``large_sigmas`` single-point
noise sigmas), or one still going when the log ends is a warning; ``error_count`` or more an
error.  On a loss whose single points scatter by more than ``heavy_spread`` in log space (a
batch of 1-4: a right example costs 0.001, a wrong one 5-10, and stretches of a few dozen
points wander 10-20x by themselves) a lasting disturbance needs more: it must last
``sustained_factor`` times its median window and the median of all its points must stand
``quantile_margin`` sigmas above the ``upper_quantile`` of the points around it (its typical
point above the ordinary worst); one that fails is reported as a note and never raises the
severity.  Spikes right after the logged learning
rate rose (a warm restart, a warm-up) are expected and make the finding info.

Noise principle: robust scale (MAD around a rolling median, log space; a disturbance's size
in single-point sigmas and, on very noisy losses, against the curve's own quantiles), persistence (a
median of several points, beyond what the curve's own tail puts side by side by chance over
its length), and chance counts under heavy-tailed noise for single points, one at a time and
as a group, over every logged point.

Why it matters
--------------
A spike is one update that threw the weights far from where they were: a batch with
corrupt or extreme examples, a learning rate that is fine on average but too large where
the loss is sharp, or an fp16 overflow.  A run that recovers has lost the steps it took to
climb back; spikes that come more and more often are the usual prelude to a divergence,
and one that does not recover has ended the useful part of the run.  Single batches at
5-50x the median are normal with small batches and noisy labels and are not reported.

What to try
-----------
Clip gradients (``clip_grad_norm_`` at 1.0) and lower the peak learning rate or lengthen
warm-up, especially if the spikes follow a learning-rate increase or come with a
gradient-norm spike.  Log the indices of the batch at each spike step and look at those
examples.  With Adam, raising ``eps`` (1e-6..1e-8) or lowering ``beta2`` (0.95) steadies the
step size when rare gradients are large.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import measures, noise
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``loss-spikes``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=8, metadata={"help": "Finite training-loss points needed before judging."}
    )
    window_fraction: float = field(
        default=0.05,
        metadata={"help": "Window for the level (rolling median) and the level before a spike, as a fraction of the points."},
    )
    persist_fraction: float = field(
        default=0.01,
        metadata={"help": "Points whose median must stand above the level, as a fraction of the points."},
    )
    min_persist: int = field(
        default=5, metadata={"help": "Fewest points whose median must stand above the level."}
    )
    noise_sigmas: float = field(
        default=4.0,
        metadata={"help": "Least rise of that median, in standard errors of the two medians' difference."},
    )
    min_relative: float = field(
        default=0.25,
        metadata={"help": "Least rise above the level before, as a fraction of that level."},
    )
    disturbance_alpha: float = field(
        default=0.01,
        metadata={"help": "A lasting disturbance counts when the curve's own single points would make fewer than this many as high over the run (see the docstring)."},
    )
    chance_alpha: float = field(
        default=0.05,
        metadata={"help": "An isolated point counts when heavy-tailed noise would give fewer than this many as high over the curve."},
    )
    large_factor: float = field(
        default=10.0,
        metadata={"help": "A single lasting disturbance is a warning by its size when its median stood this many times the level before it..."},
    )
    large_sigmas: float = field(
        default=3.0,
        metadata={"help": "... and rose this many single-point noise sigmas (the robust spread of single points of the log-loss)."},
    )
    heavy_spread: float = field(
        default=1.0,
        metadata={"help": "Robust spread of single points of the log-loss above which (a batch of 1-4: a factor e per point) a lasting disturbance needs the sustained test below for a warning; size alone is not enough."},
    )
    sustained_factor: float = field(
        default=2.0,
        metadata={"help": "The sustained test: the disturbance lasts at least this many times the points of its median window..."},
    )
    upper_quantile: float = field(
        default=0.95,
        metadata={"help": "... and the median of all its points stands above this quantile of the points around it (a window on each side)..."},
    )
    quantile_margin: float = field(
        default=0.5,
        metadata={"help": "... by at least this many single-point noise sigmas."},
    )
    error_count: int = field(
        default=10, metadata={"help": "This many spikes or more make the finding an error."}
    )
    min_recurring: int = field(
        default=3,
        metadata={"help": "Fewest points that stand out together (none alone beyond chance) for the recurring-batch note."},
    )
    recurring_alpha: float = field(
        default=0.001,
        metadata={"help": "The recurring-batch note needs heavy-tailed noise to give that many that high with at most this probability (over every count tried)."},
    )
    max_listed: int = field(
        default=10, metadata={"help": "Spikes listed in the evidence (largest first)."}
    )


# Defaults: five standard errors of a difference of medians is beyond anything noise does
# over a 2,000-bin curve (Gaussian tail 3e-7 per window); the median of 1% of the points (5
# at least) needs three or more bad batches in five to move.  A 25% rise is a jump anyone
# sees on a plot.  Student-t noise with 3 degrees of freedom has far heavier tails than any
# healthy loss seen (single batches 5-50x the median), so a point it makes unlikely over the
# whole curve (alpha 0.05: 25 sigma over 2,000 points) is no ordinary batch.  Ten spikes in
# one run is a pattern, not bad luck.  The rolling-median window of 5% follows the loss
# down without swallowing a disturbance of a few points.

# Logs are taken of the loss plus this fraction of its median: batches that cost almost
# nothing (1e-5 next to a typical 1e-2) would otherwise make the quiet stretches of a
# converged run look wildly noisy in log space and hide a jump from 0.01 to 0.4.
LOG_OFFSET = 0.1

# Relative scale below which a loss counts as noiseless in log space: 1% per point.  A loss
# written to 4 decimals, or sitting at one value, has a MAD of 0.
LOG_NOISE_FLOOR = 0.01


@dataclass(frozen=True)
class Spike:
    """One spike of the analysed training curve: indices into it, the level before and the peak
    (in the curve's units), and how :func:`find_spikes` classed it."""

    start: int  # index of the first spiking point in the analysed curve
    end: int  # index of the last
    peak: int
    before: float  # the level just before the spike (in the curve's units)
    height: float  # peak value (in the curve's units)
    recovered: bool
    persistent: bool  # a disturbance of the median, not isolated points
    factor: float  # how far above the level before: a ratio for a positive loss
    recurring: bool = False  # beyond chance only as a group (see :func:`rundoctor.checks.noise.recurring_extremes`)
    large: bool = False  # a lasting disturbance strong enough alone for a warning (:func:`_judge`)
    weak: bool = False  # a lasting disturbance inside the ordinary range of a very noisy loss


def find_spikes(
    ctx: RunContext,
    high: np.ndarray,
    level: np.ndarray,
    params: Params,
    raw: np.ndarray | None = None,
    size: int = 1,
) -> tuple[list[Spike], noise.Group | None]:
    """Spikes of a binned curve of ``ctx`` (``level`` the bin medians, ``high`` the bin maxima),
    and the group of points beyond chance together, if any (its members are spikes too).

    The curve's logarithm and noise are shared measurements (see :meth:`RunContext.measure`):
    loss-oscillation fits the same noise.

    ``raw`` (the finite points, in order) and ``size`` (points per bin) describe a binned
    curve: a bin maximum is then the largest of ``size`` single points, and it is judged
    against the noise of single points over every point of the run (see
    :func:`noise.binned_point_sigma`), not against the far smaller noise of the bin medians.
    """
    level = np.asarray(level, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    count = level.size
    if count < max(params.min_points, 3):
        return [], None
    logged = ctx.measure(noise.log_values, level, LOG_OFFSET)
    positive = logged is not None and bool(np.all(high > 0))
    if positive:
        assert logged is not None
        shift = LOG_OFFSET * measures.median(level)
        values, peaks = logged, np.log(high + shift)
        floor = max(LOG_NOISE_FLOOR, _resolution_floor(level))
        min_excess = math.log1p(params.min_relative)
    else:
        shift = 0.0
        values, peaks = level, high
        typical = measures.median(np.abs(level))
        floor = max(LOG_NOISE_FLOOR * typical, measures.resolution(level))
        min_excess = params.min_relative * typical
    if not (floor > 0 or min_excess > 0):
        return [], None  # a constant curve at zero: nothing to judge against
    width = measures.window(count, params.window_fraction, minimum=9)
    persist = max(params.min_persist, round(params.persist_fraction * count))
    fitted = ctx.measure(noise.fit, values, width, floor)
    # The size of a disturbance is judged in single-point noise: the robust spread of single
    # points (inside the bins of a long curve), never a fixed multiple of the level.
    spread = fitted.scale
    inside_bins = None
    if raw is not None and size > 1:
        inside_bins = noise.binned_point_sigma(raw, size, shift if positive else None, count)
        spread = max(spread, measures.median(inside_bins))
    heavy = positive and spread > params.heavy_spread
    trailing = noise.trailing_median(values, width)  # the level just before each point
    found = [
        _judge(
            _spike(values, peaks, d.start, d.end, d.before, d.recovered, True, positive, shift, d.excess),
            values, d.excess, width, persist, spread, heavy, params,
        )
        for d in noise.disturbances(
            values,
            fitted,
            baseline=width,
            persist=persist,
            sigmas=params.noise_sigmas,
            min_excess=min_excess,
            trailing=trailing,
        )
        if noise.disturbance_chance(values, fitted, d, persist) <= params.disturbance_alpha
    ]
    # Isolated points: above the rolling median and the level just before them by more than
    # heavy-tailed noise explains over the whole curve.
    scale, chances = fitted.sigma, count
    if raw is not None and inside_bins is not None:
        # Never below the noise of the bin medians: inside a bin of a running mean the
        # points barely differ, yet its bins wander as much as any point.
        scale = np.maximum(measures.rolling_median(inside_bins, width), fitted.sigma)
        chances = int(np.asarray(raw).size)
    limit = np.maximum(noise.chance_threshold(chances, params.chance_alpha) * scale, min_excess)
    before = np.concatenate(([np.inf], trailing[:-1]))
    extreme = (peaks - fitted.level > limit) & (peaks - before > limit)
    extreme[0] = False
    inside = np.zeros(count, dtype=bool)
    for spike in found:
        inside[spike.start : spike.end + 1] = True
    starts, lengths = measures.stretches(extreme & ~inside)
    for start, length in zip(starts.tolist(), lengths.tolist()):
        end = start + length - 1
        found.append(
            _spike(values, peaks, start, end, float(before[start]), end < count - 1, False, positive, shift, None)
        )
        inside[start : end + 1] = True
    group = None
    lasting = np.zeros(count, dtype=bool)
    for spike in found:
        lasting[spike.start : spike.end + 1] = spike.persistent
    if np.array_equal(high, level):  # every point one logged value (see noise.recurring_extremes)
        above = np.minimum(peaks - fitted.level, peaks - before)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where((above > min_excess) & ~lasting, above / fitted.sigma, -np.inf)
        z[0] = -np.inf
        group = noise.recurring_extremes(z, params.min_recurring, params.recurring_alpha)
    elif raw is not None and inside_bins is not None:
        # A long curve: its single points, by bin.  A bad batch every fifty steps of a
        # 10,000-step run is otherwise seen by nothing (each alone is within heavy-tailed
        # noise of 10,000 points, and bin maxima are maxima of many batches).
        group = noise.binned_recurring_extremes(
            raw, size, shift if positive else None, fitted.level, before, fitted.sigma, width,
            excluded=lasting, min_excess=min_excess, min_recurring=params.min_recurring, alpha=params.recurring_alpha,
        )
    if group is not None:
        for index in group.indices:
            if not inside[index]:
                spike = _spike(values, peaks, index, index, float(before[index]), index < count - 1, False, positive, shift, None)
                found.append(dataclasses.replace(spike, recurring=True))
    return sorted(found, key=lambda spike: spike.start), group


def _judge(
    spike: Spike,
    values: np.ndarray,
    excess: float,
    width: int,
    persist: int,
    spread: float,
    heavy: bool,
    params: Params,
) -> Spike:
    """Whether a lasting disturbance is strong enough alone for a warning (``large``), or, on
    a very noisy loss, too ordinary to raise the severity at all (``weak``).

    Large: its short median stood ``large_factor`` times the level before it and that rise
    is ``large_sigmas`` single-point noise sigmas (``spread``): ten times the level is
    ordinary where single points scatter by a factor e.  On a loss whose single points
    scatter by more than ``heavy_spread`` in log space (a batch of 1: a right example costs
    0.001, a wrong one 5-10) size says nothing: stretches of a few dozen points wander
    10-20x without anything happening, and the chance count, which takes points as
    independent, rates them 1e-4.  There a disturbance must be sustained: it lasts
    ``sustained_factor`` times its median window and the median of all its points stands
    above the ``upper_quantile`` of the points around it (``width`` on each side) by
    ``quantile_margin`` sigmas, i.e. its typical point is higher than the ordinary loss's
    worst.  One that fails is weak: reported, never more than a note.
    """
    stretch = values[spike.start : spike.end + 1]
    around = np.concatenate(
        (values[max(0, spike.start - width) : spike.start], values[spike.end + 1 : spike.end + 1 + width])
    )
    sustained = heavy and bool(
        stretch.size >= params.sustained_factor * persist
        and around.size >= persist
        and measures.median(stretch)
        >= measures.quantile(around, params.upper_quantile) + params.quantile_margin * spread
    )
    if heavy:
        return dataclasses.replace(spike, large=sustained, weak=not sustained)
    big = spike.factor >= params.large_factor and excess >= params.large_sigmas * spread
    return dataclasses.replace(spike, large=big)


def _resolution_floor(level: np.ndarray) -> float:
    """The log's own rounding as a relative noise floor: a loss written to 4 decimals moves
    in steps of 1e-4, which is a large fraction of a loss of 3e-4."""
    step = measures.resolution(level)
    typical = measures.median(level)
    return step / typical if typical > 0 else 0.0


def _spike(
    values: np.ndarray,
    peaks: np.ndarray,
    start: int,
    end: int,
    before: float,
    recovered: bool,
    persistent: bool,
    positive: bool,
    shift: float,
    excess: float | None,
) -> Spike:
    """A spike's record in the loss's own units.  ``factor`` is how far it stood above the
    level before it: the shifted median for a disturbance (one heavy batch inside it says
    nothing), the point itself for an isolated spike."""
    peak = start + int(np.argmax(peaks[start : end + 1]))
    height, level = float(peaks[peak]), float(before)
    top = height if excess is None else level + excess
    if positive:
        height = math.exp(min(height, 700.0)) - shift
        top = math.exp(min(top, 700.0)) - shift
        level = math.exp(min(level, 700.0)) - shift
    factor = top / level if level > 0 else float("inf")
    return Spike(start, end, peak, level, height, recovered, persistent, factor)


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Spikes of the primary training loss; spikes at a restart's seam are left out and said so."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    raw = ctx.curve(tag).finite.values if binned.size > 1 else None
    spikes, group = find_spikes(ctx, binned.high, binned.level, params, raw, binned.size)
    steps = binned.steps
    seams = noise.seams(ctx.raw_curve(tag).steps)
    restart_note = ""
    if seams.size and spikes:
        kept = [spike for spike in spikes if not _at_seam(steps, spike, seams)]
        if len(kept) < len(spikes):
            restart_note = (
                f"; {len(spikes) - len(kept)} jump(s) where a restarted log joins two starts left out"
            )
        spikes = kept
    if not spikes:
        return
    axis = ctx.run.axis_of(tag).value
    raised = _after_rate_rise(ctx, steps, spikes, params.window_fraction)
    unrecovered = [spike for spike in spikes if not spike.recovered]
    largest = sorted(spikes, key=lambda spike: spike.factor, reverse=True)
    listed = largest[: params.max_listed]
    recoveries = [float(steps[s.end + 1] - steps[s.start]) for s in spikes if s.recovered]
    top = largest[0]
    count = len(spikes)
    persistent = sum(spike.persistent for spike in spikes)
    recurring = sum(spike.recurring for spike in spikes)
    weak = sum(spike.weak for spike in spikes)
    kinds = []
    if persistent - weak:
        kinds.append(f"{persistent - weak} lasting")
    if count - persistent - recurring:
        kinds.append(f"{count - persistent - recurring} isolated")
    if recurring:
        kinds.append(f"{recurring} beyond chance only together")
    if weak:
        kinds.append(f"{weak} lasting but inside the ordinary range of this very noisy loss")
    message = (
        f"{tag} spiked {count} time{'s' if count > 1 else ''} ({', '.join(kinds)}): the largest "
        f"{'held its median at' if top.persistent else 'reached'} {top.factor:.3g}x the level before "
        f"it ({fmt(top.before)}), peaking at {fmt(top.height)} at {axis} {steps[top.peak]:,.0f}"
    )
    if recoveries:
        message += f"; back to its level after {measures.median(recoveries):,.0f} {axis}s (median)"
    if unrecovered:
        message += f"; still above its level when the log ended at {axis} {steps[-1]:,.0f}"
    message += (
        f" (thresholds: {params.noise_sigmas:g} standard errors of the median of "
        f"{max(params.min_persist, round(params.persist_fraction * steps.size))} points, or a point "
        f"heavy-tailed noise explains less than {params.chance_alpha:g} times; and "
        f"{params.min_relative:.0%} above the level){restart_note}"
    )
    if group is not None and recurring:
        members = [s for s in spikes if s.start in group.indices]
        message += (
            f"; {len(group.indices)} single points each {group.sigmas:.3g}+ noise sigmas above their level, "
            f"where heavy-tailed noise gives {group.expected:.2g} over the curve (chance "
            f"{group.chance:.1g}; threshold {params.recurring_alpha:g} after trying every count)"
        )
        period = _period(steps, members)
        if period is not None:
            message += (
                f", every {period:,.0f} {axis}s: the same kind of batch recurs (a corrupt shard or "
                f"example at a fixed place in the data order)"
            )
    else:
        period = None
    evidence: dict[str, Any] = {
        "tag": tag,
        "spikes": count,
        "persistent_spikes": persistent,
        "isolated_spikes": count - persistent,
        "unrecovered": len(unrecovered),
        "spike_steps": [int(steps[s.peak]) for s in listed],
        "spike_values": [s.height for s in listed],
        "level_before": [s.before for s in listed],
        "spike_factors": [s.factor if math.isfinite(s.factor) else None for s in listed],
        "median_recovery_steps": measures.median(recoveries) if recoveries else None,
        "after_learning_rate_rise": raised,
        "threshold_sigmas": params.noise_sigmas,
        "threshold_relative": params.min_relative,
        "threshold_chance_alpha": params.chance_alpha,
        "recurring_spikes": recurring,
        "weak_spikes": weak,
        "large_spikes": sum(spike.large for spike in spikes),
        "recurring_expected": group.expected if group is not None and recurring else None,
        "recurring_chance": group.chance if group is not None and recurring else None,
        "recurring_period": period,
        "threshold_recurring_alpha": params.recurring_alpha,
    }
    message += _correlate(ctx, steps, top, evidence)
    # Points beyond chance only as a group are single batches the run shrugged off: worth a
    # look at the data, not an alarm, and they never make a finding more severe.
    alone = count - recurring - weak
    if raised == count:
        severity = Severity.INFO
        message += "; every spike follows a rise of the learning rate (a restart or warm-up)"
    elif alone == 0:
        severity = Severity.INFO
    elif alone >= params.error_count:
        severity = Severity.ERROR
    elif (
        alone >= 2
        or any(not s.recovered and not s.recurring and not s.weak for s in spikes)
        or any(s.large for s in spikes)
    ):
        severity = Severity.WARNING
    else:
        severity = Severity.INFO
    # Nor do they make it more certain: a large spike counts only when it stands out alone.
    strong = severity is not Severity.INFO or any(
        s.factor >= params.large_factor and not s.weak and not s.recurring for s in spikes
    )
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[spikes[0].start], steps[spikes[-1].end]),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=Confidence.HIGH if strong else Confidence.MEDIUM,
    )


def _period(steps: np.ndarray, spikes: list[Spike]) -> float | None:
    """The spacing of three or more spikes when it is regular (every gap within 10% of the
    median gap), else None."""
    at = np.array([steps[s.peak] for s in spikes], dtype=np.float64)
    if at.size < 3:
        return None
    gaps = np.diff(np.sort(at))
    middle = measures.median(gaps)
    if middle <= 0 or np.max(np.abs(gaps - middle)) > 0.1 * middle:
        return None
    return middle


def _at_seam(steps: np.ndarray, spike: Spike, seams: np.ndarray) -> bool:
    """Whether a spike starts where a restarted log joins two starts (within a few points)."""
    low = steps[max(spike.start - 2, 0)]
    high = steps[min(spike.start + 2, steps.size - 1)]
    return bool(np.any((seams >= low) & (seams <= high)))


def _after_rate_rise(ctx: RunContext, steps: np.ndarray, spikes: list[Spike], fraction: float) -> int:
    """How many spikes start right after the learning rate rose by half or more (a warm
    restart, a warm-up): its value at the spike against its lowest over the ``fraction`` of
    the points before it."""
    rate = measures.learning_rate(ctx)
    if rate is None:
        return 0
    _, rate_steps, rates = rate
    back = max(1, round(fraction * steps.size))
    raised = 0
    for spike in spikes:
        low, start, end = steps[max(spike.start - back, 0)], steps[spike.start], steps[spike.end]
        earlier = rates[(rate_steps >= low) & (rate_steps <= start)]
        during = rates[(rate_steps >= start) & (rate_steps <= end)]
        then = float(earlier.min()) if earlier.size else float(measures.value_at(rate_steps, rates, [low])[0])
        now = max(float(during.max()) if during.size else -np.inf, float(measures.value_at(rate_steps, rates, [start])[0]))
        raised += bool(now > 1.5 * then)
    return raised


def _correlate(ctx: RunContext, steps: np.ndarray, spike: Spike, evidence: dict[str, Any]) -> str:
    """What the learning rate and gradient norm did at the largest spike (fills evidence)."""
    notes = []
    at, before = steps[spike.peak], steps[spike.start - 1]
    rate = measures.learning_rate(ctx)
    if rate is not None:
        _, rate_steps, rates = rate
        now, then = measures.value_at(rate_steps, rates, [at, before])
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
            median = measures.median(grad.values)
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
