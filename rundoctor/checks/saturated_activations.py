"""tanh or sigmoid layers whose outputs pile up at the bounds of their range: saturated units.

What it detects
---------------
For every activation histogram of a tanh or sigmoid layer (named so, or outputs within
[-1, 1] with negative values, or within [0, 1] reaching the top; see
``checks/histograms.py``), the share of outputs where the function's slope is under
``max_slope`` (a fifth) of its peak: |a| >= 0.894 for tanh (1 - a^2 <= 0.2), p <= 0.053 or
p >= 0.947 for sigmoid (p (1 - p) <= 0.05).  A layer is saturated when that share is at
least ``max_share`` (half the outputs, SageMaker Debugger's ``threshold_layer``) from its
first histograms on (the median of the first ``early_fraction`` of them) and over the run
(the median of all), or at least ``late_share`` at the end (the median of the last quarter).

Why the first histograms: a sigmoid layer that learns grows confident, and a well-trained
one has half its outputs near 0 or 1 (the healthy tanh and sigmoid MLPs of the calibration
corpus start at 15% or less and end at up to 54%; layers saturated by too wide an initial
spread sit at 49-90% from the first histogram on).  A layer saturated from the first logged step was pushed
there by its inputs' scale, its initial weights or the learning rate, not by learning.

SageMaker Debugger's SaturatedActivation rule judges the function's inputs (|x| > 9.5, where
the slope is under 1e-7); an output histogram cannot resolve that: TensorFlow's buckets near 1
are 10% wide and float32 rounds tanh to exactly 1 from |x| of about 9.  The band used here is
what a histogram can measure, with each bucket's count spread over its width.

Noise principle: medians over several logged steps; a saturated layer stays saturated
across them, so one batch does not fire.

Why it matters
--------------
A saturated unit passes back almost no gradient (under a fifth of what it passes at its
centre, and much less further out), so its incoming weights stop learning and the layers
before it get less signal: training slows to a crawl or stalls, and in deep stacks the
gradients vanish.

What to try
-----------
Initialise the weights for the fan-in (Xavier/Glorot for tanh and sigmoid: their spread
should be about 1/sqrt(fan-in)), standardise the inputs, lower the learning rate, add batch
or layer normalisation before the activation, or use a ReLU-family activation in hidden
layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import histograms, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``saturated-activations``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    max_slope: float = field(
        default=0.2, metadata={"help": "An output is saturated where the function's slope is under this share of its peak."}
    )
    max_share: float = field(
        default=0.5, metadata={"help": "Share of saturated outputs, from the first histograms on, that is reported."}
    )
    late_share: float = field(
        default=0.8, metadata={"help": "Share of saturated outputs at the end (last quarter) reported however it began."}
    )
    early_fraction: float = field(
        default=0.25, metadata={"help": "The first share of a layer's histograms whose median is its start."}
    )


@dataclass(frozen=True)
class _Layer:
    tag: str
    layer: str
    kind: str
    early: float
    overall: float
    late: float
    first_step: int
    last_step: int


def bounds(kind: str, max_slope: float) -> tuple[float, float]:
    """The outputs between these are unsaturated: tanh' = 1 - a^2, sigmoid' = p (1 - p) (peak 1/4)."""
    inner = math.sqrt(max(1.0 - max_slope, 0.0))
    return (-inner, inner) if kind == "tanh" else ((1 - inner) / 2, (1 + inner) / 2)


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding for the run's saturated tanh and sigmoid layers."""
    saturated: list[_Layer] = []
    for item in histograms.series(ctx.run, Role.ACTIVATION_HISTOGRAM):
        kind = histograms.activation_kind(item)
        if kind not in ("tanh", "sigmoid"):
            continue
        low, high = bounds(kind, params.max_slope)
        judged = item.judged()
        pairs = [(histogram.step, histograms.share_outside(histogram, low, high)) for histogram in judged]
        shares = np.array([share for _, share in pairs if np.isfinite(share)])
        steps = [step for step, share in pairs if np.isfinite(share)]
        if shares.size == 0:
            continue
        head = max(1, math.ceil(shares.size * params.early_fraction))
        tail = max(1, math.ceil(shares.size / 4))
        layer = _Layer(item.tag, item.layer, kind, measures.median(shares[:head]), measures.median(shares),
                       measures.median(shares[-tail:]), steps[0], steps[-1])
        if (layer.early >= params.max_share and layer.overall >= params.max_share) or layer.late >= params.late_share:
            saturated.append(layer)
    if not saturated:
        return
    saturated.sort(key=lambda layer: -layer.overall)
    from_start = [layer for layer in saturated if layer.early >= params.max_share]
    listed = ", ".join(f"{layer.overall:.0%} of {layer.layer}'s" for layer in saturated[:4]) + (
        f" and {len(saturated) - 4} more layers'" if len(saturated) > 4 else "")
    bands = "; ".join(sorted({_band(layer.kind, params.max_slope) for layer in saturated}))
    when = ("from the first histograms on" if len(from_start) == len(saturated)
            else f"reaching {params.late_share:.0%} or more by the end")
    message = (
        f"{listed} outputs saturated ({bands}: a slope under {params.max_slope:.0%} of its peak), {when} "
        f"(threshold {params.max_share:.0%}): those units pass back almost no gradient"
    )
    names = histograms.layer_list(layer.layer for layer in saturated)
    yield check.finding(
        ctx,
        tags=tuple(layer.tag for layer in saturated),
        steps=(min(layer.first_step for layer in saturated), max(layer.last_step for layer in saturated)),
        message=message,
        evidence={
            "layers": {layer.layer: {"tag": layer.tag, "function": layer.kind, "saturated_share": layer.overall,
                                     "early_share": layer.early, "late_share": layer.late} for layer in saturated},
            "threshold_max_slope": params.max_slope,
            "threshold_max_share": params.max_share,
            "threshold_late_share": params.late_share,
        },
        confidence=Confidence.HIGH if from_start else Confidence.MEDIUM,
        advice=(
            f"{names} saturate. Initialise their weights for the fan-in (Xavier/Glorot: spread about "
            "1/sqrt(fan-in)), standardise the inputs, lower the learning rate, add normalisation before the "
            "activation, or use a ReLU-family activation in hidden layers."
        ),
    )


def _band(kind: str, max_slope: float) -> str:
    low, high = bounds(kind, max_slope)
    return f"|tanh| >= {fmt(high, 3)}" if kind == "tanh" else f"sigmoid <= {fmt(low, 3)} or >= {fmt(high, 3)}"


def _example() -> tuple[np.ndarray, np.ndarray]:
    """The share of a sigmoid layer's outputs near 0 or 1, high from the first step."""
    steps = np.arange(0, 2000, 50)
    return steps, 0.85 - 0.02 * np.exp(-steps / 500.0)


CHECK = Check(
    code="A002",
    name="saturated-activations",
    title="tanh/sigmoid outputs piled at their bounds",
    severity=Severity.WARNING,
    needs=(Role.ACTIVATION_HISTOGRAM,),
    params=Params,
    advice=(
        "Initialise weights for the fan-in (Xavier/Glorot), standardise inputs, lower the learning rate, add "
        "normalisation before the activation, or use a ReLU-family activation in hidden layers."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
