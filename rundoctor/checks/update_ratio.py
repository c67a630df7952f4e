"""How much each layer's weights change between logged steps, against the healthy band: frozen, too slow, too fast.

What it detects
---------------
A weight histogram has lost which value is which, so the update of step t cannot be read
from it; what it keeps is the distribution.  Between two logged steps the change of the
distribution, measured as the Wasserstein-1 distance between the two histograms (the area
between their cumulative curves), is the least mean |change| per weight that any pairing of
old and new values allows: a lower bound on the mean |update|, zero only when nothing moved.
Divided by the weights' spread (standard deviation) and by the steps between the two logs, it
is this check's update ratio per step, the histogram's stand-in for the usual
||lr * update|| / ||weights||, whose healthy band is around 1e-3 per step.  On the
calibration corpus it reads 2-10 times under the ratio measured on the raw tensors; healthy
layers sit at 7e-5 to 1e-2 per logged step and move at least 0.9% over the run, while Adam at
a learning rate of 1e-6 moves layers 3e-6 to 8e-6 per step and 0.1-0.6% over the run.

Per weight layer (``fc1.weight``, ``dense/kernel_0``), over its logged histograms:

- **frozen**: identical histograms (edges, counts, min and max) at every logged step, at least
  ``min_histograms`` of them, while another layer changes: the layer is not trained; or
  identical from some step to the end (``stopped changing``: units died, gradients vanished
  below float32 rounding, the learning rate reached zero).  A warning; an error when no
  layer's weights ever change;
- **too slow**: the median update ratio per step is under ``low_ratio`` (2e-5, fifty times
  under the band, leaving room for the histogram's understatement), or the weights moved by
  less than ``min_total_change`` (0.5%) of their spread over the whole logged run (both
  thresholds halfway, on a log scale, between the healthy and the too-slow layers above).
  The second reading does not depend on how often histograms were logged or on what a step
  counts (Keras logs them once an epoch, so its "step" is an epoch).  A warning when at least
  half the layers are that slow (the learning rate is too low for the model); information
  when only some are;
- **too fast**: the median update ratio per step is above ``high_ratio`` (10%): weights
  change by a tenth of their spread every step (healthy layers of the corpus stay under
  1.2%, even logged once an epoch).  Information: a histogram cannot tell a large update
  from a reshuffle of values, so it is a hint that the learning rate is too high, for the
  diagnosis to weigh with the loss.

This is what tells "learning rate too low" from "plateau, lower it" when the loss alone
cannot: a flat loss with weights that barely move needs a larger learning rate; a flat loss
with weights that move a lot needs a smaller one.

Noise principle: medians over the logged intervals; per-batch noise makes weights jitter,
which raises the distance, never lowers it to zero.

Why it matters
--------------
A frozen layer is a bug (``requires_grad=False``, ``trainable=False``, left out of the
optimiser, a learning rate of zero for its parameter group) or a symptom (dead units,
vanished gradients); its random weights cap what the model can learn.  Weights that barely
move mean the learning rate is too low: training is slow and looks like a plateau.  Weights
that change wholesale every step mean a learning rate too high: the loss oscillates.

What to try
-----------
Frozen: check ``requires_grad`` / ``trainable`` and that every parameter group is in the
optimiser with a non-zero learning rate (unfreeze after warm-up if freezing was meant).  Too
slow: raise the learning rate (try 3-10x; a learning-rate range test finds it), shorten the
warm-up, check the schedule did not decay to nothing.  Too fast: lower the learning rate,
warm it up, clip gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import histograms, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``update-ratio``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    low_ratio: float = field(
        default=2e-5, metadata={"help": "Median update ratio per step under which a layer's weights barely move."}
    )
    min_total_change: float = field(
        default=0.005, metadata={"help": "Change over the whole logged run (share of the spread) under which they barely move."}
    )
    high_ratio: float = field(
        default=0.1, metadata={"help": "Median update ratio per step above which the weights change too fast (info)."}
    )
    min_histograms: int = field(
        default=3, metadata={"help": "Logged histograms a layer needs; identical ones in a row that make it frozen."}
    )


@dataclass(frozen=True)
class _Layer:
    """One weight layer's movement: per-step ratio, change over the run, where it froze."""

    tag: str
    layer: str
    ratio: float  # median update ratio per step
    total: float  # change over the whole logged run, share of the spread
    frozen_from: int | None  # logged step from which every histogram is identical
    first_step: int
    last_step: int
    logged: int


def measure(item: histograms.Series, params: Params) -> _Layer | None:
    """The layer's movement from its (judged) weight histograms; None with too few of them."""
    judged = item.judged()
    if len(judged) < params.min_histograms:
        return None
    spreads = [histograms.spread(histogram)[1] for histogram in judged]
    distances = histograms.consecutive_distances(judged)
    ratios = []
    same = []
    for index in range(len(judged) - 1):
        a, b = judged[index], judged[index + 1]
        identical = histograms.same(a, b)
        same.append(identical)
        scale = max(spreads[index], spreads[index + 1])
        if identical:
            ratios.append(0.0)
        elif scale > 0 and b.step > a.step:
            ratios.append(distances[index] / scale / (b.step - a.step))
    ratios = [ratio for ratio in ratios if np.isfinite(ratio)]
    if not ratios:
        return None
    unchanged_tail = 0
    for identical in reversed(same):
        if not identical:
            break
        unchanged_tail += 1
    frozen_from = judged[len(judged) - 1 - unchanged_tail].step if unchanged_tail >= params.min_histograms - 1 else None
    scale = max(spreads[0], spreads[-1])
    total = histograms.distance(judged[0], judged[-1]) / scale if scale > 0 else float("nan")
    return _Layer(item.tag, item.layer, measures.median(ratios), total, frozen_from, judged[0].step, judged[-1].step,
                  len(judged))


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Findings for frozen layers, layers that barely move, and layers that move too fast."""
    layers = [layer for item in histograms.series(ctx.run, Role.WEIGHT_HISTOGRAM)
              if (layer := measure(item, params)) is not None]
    if not layers:
        return
    frozen = [layer for layer in layers if layer.frozen_from is not None]
    if frozen:
        yield _frozen(check, ctx, params, layers, frozen)
    moving = [layer for layer in layers if layer.frozen_from is None]
    slow = [layer for layer in moving if layer.ratio < params.low_ratio or layer.total < params.min_total_change]
    if slow:
        yield _slow(check, ctx, params, layers, slow)
    fast = [layer for layer in moving if layer.ratio > params.high_ratio]
    if fast:
        names = histograms.layer_list(layer.layer for layer in fast)
        top = max(fast, key=lambda layer: layer.ratio)
        yield check.finding(
            ctx,
            tags=tuple(layer.tag for layer in fast),
            steps=(min(layer.first_step for layer in fast), max(layer.last_step for layer in fast)),
            message=(
                f"weights change fast: {names} move by {fmt(top.ratio, 2)} of their spread per logged step "
                f"(median; threshold {params.high_ratio:g}, healthy around 1e-3): the learning rate may be too "
                "high for these layers"
            ),
            evidence={"direction": "high", "layers": _layer_evidence(fast), "threshold_high_ratio": params.high_ratio},
            severity=Severity.INFO,
            confidence=Confidence.LOW,
            advice=f"{names} change fast: lower the learning rate, warm it up, or clip gradients.",
        )


def _frozen(check: Check[Params], ctx: RunContext, params: Params, layers: list[_Layer],
            frozen: list[_Layer]) -> Finding:
    never = [layer for layer in frozen if layer.frozen_from == layer.first_step]
    stopped = [layer for layer in frozen if layer.frozen_from != layer.first_step]
    parts = []
    if never:
        parts.append(f"{histograms.layer_list(layer.layer for layer in never)} never "
                     f"{'changes' if len(never) == 1 else 'change'}: identical weight histograms at all "
                     f"{max(layer.logged for layer in never)} logged steps")
    if stopped:
        since = min(layer.frozen_from or 0 for layer in stopped)
        parts.append(f"{histograms.layer_list(layer.layer for layer in stopped)} stopped changing at step {since}: "
                     "identical weight histograms from there on")
    every = len(frozen) == len(layers)
    moving = [layer.layer for layer in layers if layer.frozen_from is None]
    context = ("no layer's weights change: nothing trains" if every and len(never) == len(layers)
               else f"every weight layer is still (of {len(layers)})" if every
               else f"while {histograms.layer_list(moving)} {'changes' if len(moving) == 1 else 'change'}")
    names = histograms.layer_list(layer.layer for layer in frozen)
    return check.finding(
        ctx,
        tags=tuple(layer.tag for layer in frozen),
        steps=(min(layer.frozen_from or 0 for layer in frozen), max(layer.last_step for layer in frozen)),
        message="; ".join(parts) + f", {context}",
        evidence={"direction": "frozen", "layers": _layer_evidence(frozen),
                  "threshold_min_histograms": params.min_histograms},
        severity=Severity.ERROR if every and len(never) == len(layers) else Severity.WARNING,
        advice=(
            f"{names} {'does' if len(frozen) == 1 else 'do'} not train. Check requires_grad / trainable, that their parameters are in the optimiser "
            "with a non-zero learning rate; if they stopped, look for dead units or vanished gradients."
        ),
    )


def _slow(check: Check[Params], ctx: RunContext, params: Params, layers: list[_Layer], slow: list[_Layer]) -> Finding:
    most = 2 * len(slow) >= len(layers)
    names = histograms.layer_list(layer.layer for layer in slow)
    ratio = measures.median([layer.ratio for layer in slow])
    totals = [layer.total for layer in slow if np.isfinite(layer.total)]
    total = measures.median(totals) if totals else float("nan")
    verdict = ("the learning rate is too low for the model" if most
               else "those layers learn far slower than the rest")
    per_step = (f"{fmt(ratio, 2)} of their spread per logged step (median; threshold {params.low_ratio:g}, "
                "healthy around 1e-3)")
    over_run = f"{total:.2%} over the whole logged run (threshold {params.min_total_change:.1%})"
    if not np.isfinite(total):
        measured = f"by {per_step}"
    elif ratio < params.low_ratio:
        measured = f"by {per_step} and {over_run}"
    else:
        measured = f"by {over_run}, {per_step}"
    return check.finding(
        ctx,
        tags=tuple(layer.tag for layer in slow),
        steps=(min(layer.first_step for layer in slow), max(layer.last_step for layer in slow)),
        message=f"weights barely move: {names} ({len(slow)} of {len(layers)} layers) change {measured}: {verdict}",
        evidence={"direction": "low", "layers": _layer_evidence(slow), "threshold_low_ratio": params.low_ratio,
                  "threshold_min_total_change": params.min_total_change, "layers_judged": len(layers)},
        severity=Severity.WARNING if most else Severity.INFO,
        confidence=Confidence.MEDIUM,
        advice=(
            f"{names} barely move: raise the learning rate (3-10x; a learning-rate range test finds it), shorten the "
            "warm-up, and check the schedule has not decayed to nothing."
        ),
    )


def _layer_evidence(layers: list[_Layer]) -> dict[str, dict[str, object]]:
    return {layer.layer: {"tag": layer.tag, "update_ratio_per_step": layer.ratio,
                          "total_change": layer.total if np.isfinite(layer.total) else None,
                          "frozen_from_step": layer.frozen_from, "histograms": layer.logged} for layer in layers}


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A layer's update ratio per step (log scale): healthy around 1e-3, too low two orders under."""
    steps = np.arange(0, 2000, 50)
    return steps, np.full(steps.size, 3e-6)


CHECK = Check(
    code="W001",
    name="update-ratio",
    title="Weights frozen, barely moving, or changing too fast",
    severity=Severity.WARNING,
    needs=(Role.WEIGHT_HISTOGRAM,),
    params=Params,
    advice=(
        "Frozen: check requires_grad/trainable and the optimiser's parameter groups. Too slow: raise the learning "
        "rate. Too fast: lower it, warm it up, clip gradients."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
