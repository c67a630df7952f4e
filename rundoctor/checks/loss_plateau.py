"""The training loss fell, then stayed flat for a long stretch at an unchanged learning rate.

What it detects
---------------
A main training loss that fell by at least ``min_fall`` from its start and then stayed
flat for the last ``min_flat_fraction`` or more of the run: inside a narrow band
(``flat_tolerance`` of its level, widened to what its noise needs), or, at a constant logged
learning rate, levelled off over the last half.  A plateau that wants a lower learning rate
is a loss bouncing in a basin at the noise floor of its rate: the smoothed loss stops
improving while the point-to-point scatter around it stays large.  A warning needs all of:

- a logged learning rate that stayed constant (within ``lr_tolerance``) over the flat stretch
  and was not cut before it;
- the stretch shown flat with significance (see below);
- a scatter of at least ``min_scatter`` of the level: the bounce a decay would settle.

Everything weaker is info: a steady loss (label smoothing, label noise, a model memorising
slowly, a loss logged as a running or window mean) has settled at its floor, and a decay
would gain little; a rate already cut before the loss flattened has done what a decay
does; without a logged rate a flat tail is also how a cosine or step schedule ends.  A
learning rate lowered during the flat stretch (ReduceLROnPlateau, step or cosine decay) is
the schedule doing its job: no finding.  A rate of 0 over the stretch is info (nothing was
being trained).  A loss that fell to a small fraction of its start (``converged_fraction``)
is near convergence: info at a constant logged rate, else not reported; below
``memorised_fraction`` it is never reported.  A loss flat from its first logged point, at a
constant rate and scattering by ``min_scatter`` or more without climbing above its start,
is info: it learned before the first log (a loss at chance has about the same value on
every batch) and sits at its rate's noise floor.

Noise principle: a plateau is a claim of flatness, so it needs evidence of flatness, not
only the absence of a trend.  The stretch's trend is a Theil-Sen fit on block medians (one
50x batch moves nothing) whose error is widened by the effective sample size of its
autocorrelated residuals (running averages, slow wander; see ``checks/trend.py``).  A
stretch still falling significantly by more than ``max_drift`` is a slow descent, not a
plateau.  Shown flat means the whole ``confidence`` interval of the fitted change lies
inside +-``plateau_band`` of the level; a stretch too short or noisy to show that (small
batches, few points, a resumed run's short log) is info.  The scatter is the robust
(MAD) spread of neighbour differences, so neither the trend nor single 50x batches count.

Why it matters
--------------
Compute spent on a flat loss at a fixed learning rate is wasted: a learning rate that
brought the loss this far is now too large to settle into a narrower minimum, and the loss
bounces at the noise level of its steps.  Lowering the rate at the start of a plateau
usually buys a visible further drop; if it does not, the run could have stopped there.

What to try
-----------
Decay the learning rate from the start of the plateau: a step decay (x0.1), a cosine
schedule over the whole run, or ReduceLROnPlateau (factor 0.1-0.5, patience of a few
evaluations).  If the rate was already cut, stop the run at the plateau's start (early
stopping) or move the cut later; if the level itself is too high, look at capacity, data
or the loss rather than the schedule.
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
    """Thresholds of ``loss-plateau``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=10, metadata={"help": "Finite training-loss points needed before judging."}
    )
    smoothing: float = field(
        default=0.05, metadata={"help": "EMA span as a fraction of the points."}
    )
    flat_tolerance: float = field(
        default=0.02,
        metadata={"help": "Half-width of the flat band, as a fraction of the plateau level."},
    )
    min_flat_fraction: float = field(
        default=0.3,
        metadata={"help": "Shortest flat stretch worth reporting, as a fraction of the run."},
    )
    min_fall: float = field(
        default=0.1,
        metadata={"help": "Least relative fall from the start before the plateau."},
    )
    max_drift: float = field(
        default=0.06,
        metadata={
            "help": "A stretch still falling significantly by more than this fraction of its "
            "level is a slow descent, not a plateau."
        },
    )
    converged_fraction: float = field(
        default=0.05,
        metadata={
            "help": "A plateau below this fraction of the start has nearly converged: info at "
            "a constant logged learning rate, else not reported."
        },
    )
    lr_tolerance: float = field(
        default=0.01,
        metadata={"help": "Relative change of the learning rate still counted as constant."},
    )
    plateau_band: float = field(
        default=0.1,
        metadata={
            "help": "Warning only when the fitted change over the stretch is shown (whole "
            "confidence interval) within this fraction of its level; else info."
        },
    )
    confidence: float = field(
        default=0.9, metadata={"help": "Confidence level of the trend intervals."}
    )
    memorised_fraction: float = field(
        default=0.001,
        metadata={"help": "Below this fraction of its start the loss has memorised: never reported."},
    )
    min_scatter: float = field(
        default=0.2,
        metadata={
            "help": "Warning only when the point-to-point scatter over the flat stretch is at least "
            "this fraction of its level (the optimiser bouncing above a lower floor); a steadier "
            "loss has settled at its floor, and is info."
        },
    )


# Defaults: a band of +-2% is what reads as "flat" on a loss plot, and noise widens it as
# needed; 30% of the run is long enough that a schedule should have reacted.  A stretch
# still falling significantly by over 6% of its level is a slow descent (real plateaus drift
# 0.4-5%, still-falling tails 8-38%).  A warning needs the 90% interval of the change within
# +-10%: anything a decay could win back is bigger than that.  A loss that did not fall 10%
# is no-learning's business.  Below 5% of its start a training loss has all but memorised
# the data; below 0.1% there is nothing left to gain.  1% on the learning rate absorbs float
# rounding in logs.  Scatter of 20% (twice the flat band): a decay lowers a plateau by a part
# of the bounce around it, so a bounce under twice the band cannot buy a drop bigger than what
# is called flat.  Losses converged to a floor scatter 0.1-6% (label smoothing, memorising
# shuffled labels, detection losses logged as window medians); constant-rate plateaus of
# small batches 60-110%.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding on the primary training loss: a long flat stretch after it fell."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    run_span = float(steps[-1] - steps[0])
    initial = trend.start_level(level, params.smoothing)
    if not (run_span > 0 and initial > 0):
        return
    span = measures.window(level.size, params.smoothing)
    smooth = ctx.measure(measures.ema, level, span)
    final = measures.edge_levels(level, params.smoothing)[1]
    tolerance = measures.flat_tolerance(ctx, level, span, params.flat_tolerance * abs(final))
    start = measures.trailing_flat_start(smooth, tolerance)
    banded = 0 < start < level.size and (steps[-1] - steps[start]) / run_span >= params.min_flat_fraction
    constant = _constant_rate(ctx, params, float(steps[0]), float(steps[-1]))
    if not banded:
        if not constant:
            return
        # A noisy loss at a constant rate can level off without fitting a narrow band: judge
        # the last half by its trend instead (info at most: the band was not shown).
        start = int(np.searchsorted(steps, steps[-1] - 0.5 * run_span))
        if not 0 < start < level.size - 2:
            return
    curve = ctx.curve(tag).finite
    inside = curve.steps >= steps[start]
    flat_steps = float(steps[-1] - steps[start])
    plateau = measures.median(level[start:])
    fall = (initial - plateau) / initial
    # Point-to-point scatter over the stretch (neighbour differences, so a slow trend does not
    # count; a MAD, so single 50x batches do not either), as a fraction of its level.
    scatter = trend.relative_noise(curve.values[inside])
    noisy = bool(np.isfinite(scatter) and scatter >= params.min_scatter)
    if plateau <= params.memorised_fraction * initial:
        return
    # No visible fall: a loss flat from its first logged point is no-learning's business,
    # unless it bounces widely at a constant rate.  A loss at chance has nearly the same value
    # on every batch; one that scatters by a fifth of its level or more tells good batches
    # from bad, so it learned before the first log and sits at the noise floor of its rate.
    # It must have stayed at its start (within its own scatter, not rising): a loss that
    # climbed there is divergence's business.  (The trend is taken only past these tests.)
    fell = fall >= params.min_fall
    if not (fell or (constant and noisy)):
        return
    fit = trend.trend(curve.steps[inside], curve.values[inside])
    if fit is None:
        return
    stayed = -fall <= scatter and not fit.rising(params.confidence, params.max_drift)
    if not (fell or (constant and noisy and stayed)):
        return
    # Still falling significantly by more than max_drift of its level: a slow descent, not a
    # plateau (still-improving's business).
    if fit.falling(params.confidence, params.max_drift):
        return
    converged = plateau <= params.converged_fraction * initial
    if converged and not constant:
        return
    # Flat shown: the whole confidence interval of the fitted change over the stretch lies
    # within +-plateau_band of its level.  Otherwise the stretch is too noisy or too short to
    # call it flat with confidence, and the finding is info.
    shown = fell and not converged and fit.flat(params.confidence, params.plateau_band * abs(fit.level))
    axis = ctx.run.axis_of(tag).value
    first_flat = float(steps[start])
    low, high = fit.interval(params.confidence)
    if not fell:
        lead = f"{tag} showed no fall from its first logged level ({fmt(initial)}) and stayed at {fmt(plateau)}"
    elif banded:
        lead = f"{tag} fell {fall:.0%} ({fmt(initial)} -> {fmt(plateau)}) and then stayed within +-{fmt(tolerance, 2)}"
    else:
        lead = f"{tag} fell {fall:.0%} ({fmt(initial)} -> {fmt(plateau)}) and then levelled off"
    message = (
        f"{lead} for the last {flat_steps:,.0f} {axis}s "
        f"({flat_steps / run_span:.0%} of the run, from {axis} {first_flat:,.0f}; threshold "
        f"{params.min_flat_fraction:.0%}); fitted change over it {fit.relative:+.1%} of its level "
        f"({params.confidence:.0%} interval {low / abs(fit.level):+.1%} to {high / abs(fit.level):+.1%}, "
        f"{fit.effective:.0f} effective points; flat band +-{params.plateau_band:.0%}); "
        f"point-to-point scatter {scatter:.0%} of its level (threshold {params.min_scatter:.0%})"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "initial_level": initial,
        "plateau_level": plateau,
        "fall": fall,
        "flat_band": tolerance,
        "drift": fit.change,
        "drift_relative": fit.relative,
        "drift_interval": [low, high],
        "effective_points": fit.effective,
        "shown_flat": shown,
        "flat_from_step": int(first_flat),
        "flat_fraction": flat_steps / run_span,
        "threshold_flat_fraction": params.min_flat_fraction,
        "threshold_fall": params.min_fall,
        "scatter_relative": scatter,
        "threshold_scatter": params.min_scatter,
    }
    if converged:
        message += (
            f"; it is at {plateau / initial:.1%} of its start (below {params.converged_fraction:.0%}: "
            f"near convergence, so a decay may gain little)"
        )
    schedule = _schedule(ctx, params, first_flat, steps[-1], axis, evidence)
    if schedule is None:
        return
    severity, confidence, told, advice = schedule
    if constant and not noisy:
        told += (
            f"; a loss this steady (scatter under {params.min_scatter:.0%}) has settled at its "
            f"floor rather than bouncing above a lower one, so a decay would gain little"
        )
    # A warning needs all three: the rate logged and never lowered (the only schedule that
    # leaves it a warning), the stretch shown flat, and a bounce wide enough that a decay
    # could lower the level.
    if severity is Severity.WARNING and not (shown and noisy):
        severity, confidence = Severity.INFO, Confidence.MEDIUM
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(first_flat, steps[-1]),
        message=message + told,
        evidence=evidence,
        severity=severity,
        confidence=confidence,
        advice=advice,
    )


def _constant_rate(ctx: RunContext, params: Params, first: float, last: float) -> bool:
    """Whether a learning rate is logged and stays within ``lr_tolerance`` of one non-zero
    value over the last half of ``first``-``last`` (warm-up before that is allowed)."""
    rate = measures.learning_rate(ctx)
    if rate is None:
        return False
    _, rate_steps, rates = rate
    half = first + 0.5 * (last - first)
    during = np.concatenate((measures.value_at(rate_steps, rates, [half]), rates[rate_steps >= half]))
    high, low = float(during.max()), float(during.min())
    return high > 0 and low >= (1.0 - params.lr_tolerance) * high


def _schedule(
    ctx: RunContext, params: Params, first_flat: float, last: float, axis: str, evidence: dict[str, Any]
) -> tuple[Severity, Confidence, str, str] | None:
    """What the learning rate did over the flat stretch: severity, confidence, message tail
    and advice, or None when the schedule lowered it (see the module docstring); fills
    ``evidence``."""
    decay_advice = (
        f"Decay the learning rate from {axis} {first_flat:,.0f}: a step decay (x0.1), cosine over "
        f"the whole run, or ReduceLROnPlateau (factor 0.1-0.5, patience of a few evaluations); "
        f"if the loss does not respond, stop there."
    )
    rate = measures.learning_rate(ctx)
    if rate is None:
        # A flat tail is also how a decayed schedule ends: without the rate the log cannot
        # tell the two apart, so this is a note.
        return (
            Severity.INFO,
            Confidence.LOW,
            "; no learning rate logged, so whether a schedule already lowered it is unknown",
            decay_advice,
        )
    rate_tag, rate_steps, rates = rate
    inside = (rate_steps >= first_flat) & (rate_steps <= last)
    during = np.concatenate((measures.value_at(rate_steps, rates, [first_flat]), rates[inside]))
    before = rates[rate_steps < first_flat]
    high, low = float(during.max()), float(during.min())
    peak = float(before.max()) if before.size else high
    evidence.update(lr_tag=rate_tag, lr_during_max=high, lr_during_min=low, lr_peak_before=peak)
    if high <= 0:
        return (
            Severity.INFO,
            Confidence.HIGH,
            "; the learning rate was 0 over it: nothing was being trained",
            f"Stop the run at {axis} {first_flat:,.0f}, or give the schedule a non-zero floor if "
            f"the last phase was meant to train.",
        )
    if low < (1.0 - params.lr_tolerance) * high:
        return None
    if high < (1.0 - params.lr_tolerance) * peak:
        # The schedule already reacted: the loss settled at the rate it was given (a note).
        return (
            Severity.INFO,
            Confidence.HIGH,
            f"; the learning rate was already cut to {fmt(high)} ({peak / high:.3g}x below its "
            f"peak {fmt(peak)}) before the loss flattened and stayed there",
            f"A further cut is unlikely to help: the loss has settled at this rate. If the level "
            f"is too high, the cut came too early (decay later or use cosine over the whole run); "
            f"otherwise stop at {axis} {first_flat:,.0f}.",
        )
    return (
        Severity.WARNING,
        Confidence.HIGH,
        f"; the learning rate stayed at {fmt(high)} throughout",
        decay_advice,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A per-batch loss that falls within the first fifth of the run, then bounces +-30%
    around 0.5 (seeded lognormal noise)."""
    steps = np.arange(0, 40000, 10)
    noise = np.exp(0.3 * np.random.default_rng(2).standard_normal(steps.size) - 0.045)
    return steps, (0.5 + 1.5 * np.exp(-steps / 1600.0)) * noise


CHECK = Check(
    code="C003",
    name="loss-plateau",
    title="Training loss on a plateau",
    severity=Severity.WARNING,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Decay the learning rate from the start of the plateau (step decay x0.1, cosine, or "
        "ReduceLROnPlateau); if the loss does not respond, stop there."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
