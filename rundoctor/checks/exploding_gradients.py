"""Gradients as large as the weights they update, growing toward the input or over time: exploding gradients.

What it detects
---------------
From the gradient histograms of each layer (the weight's gradient when both are logged) and,
where the same layer's weights are logged too, its weight histograms, three signs:

- **gradients as large as the weights**: the median over logged steps of mean |gradient| /
  mean |weight| (matched step by step) is at least ``max_grad_to_weight`` (1).  A plain SGD
  step at a learning rate of 1 would then move every weight by more than its own size; in the
  healthy networks of the calibration corpus the ratio stays at 0.25 or less, while a stack
  of eight ReLU layers initialised 1.5-2.5 times wider than He sits at 1.3-7.5.  The ratio does not depend on how the
  loss or the weights are scaled, which an absolute gradient size does;
- **growing toward the input**: the first logged layer's gradient scale (mean |gradient| of
  the values not exactly zero) is at least ``max_depth_ratio`` (1,000) times the last
  layer's, as in a recurrent network or a deep stack whose layers amplify what flows back;
- **growing over time**: some layer's gradient scale rises at least ``max_growth`` (1,000)
  times above its level over the first quarter of its logged steps, the burst that comes
  before a divergence.

A sign ``error_factor`` (100) times beyond its threshold makes the finding an error.

Noise principle: medians over logged steps for the levels, thresholds orders of magnitude
away from the healthy range; per-batch gradient noise moves a layer's scale by a factor of a
few, not a thousand.

Why it matters
--------------
Exploding gradients make each update overshoot: the loss jumps, oscillates or turns NaN, and
the weights of the affected layers are thrown around instead of learning.  The usual causes
are initial weights too large for the depth, a learning rate too high, unnormalised inputs
or targets, and recurrent connections.

What to try
-----------
Initialise for the fan-in (He for ReLU, Xavier/Glorot for tanh), clip gradients
(``clip_grad_norm_`` at 1.0), lower the learning rate or warm it up, normalise inputs and
targets, add batch or layer normalisation, and for recurrent networks use LSTM/GRU cells with
clipping.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import histograms, measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``exploding-gradients``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    max_grad_to_weight: float = field(
        default=1.0, metadata={"help": "Median mean |gradient| / mean |weight| of a layer that is reported."}
    )
    max_depth_ratio: float = field(
        default=1e3, metadata={"help": "First layer's gradient scale over the last layer's that is reported."}
    )
    max_growth: float = field(
        default=1e3, metadata={"help": "Rise of a layer's gradient scale over its first quarter that is reported."}
    )
    error_factor: float = field(
        default=100.0, metadata={"help": "A sign this many times beyond its threshold makes the finding an error."}
    )


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding with every sign of exploding gradients in the run."""
    signs: list[tuple[str, float]] = []  # (clause, how many times beyond its threshold)
    evidence: dict[str, Any] = {
        "threshold_max_grad_to_weight": params.max_grad_to_weight,
        "threshold_max_depth_ratio": params.max_depth_ratio,
        "threshold_max_growth": params.max_growth,
    }
    tags: list[str] = []
    steps: list[int] = []
    relative = _grad_to_weight(ctx)
    large = {name: value for name, (value, _) in relative.items() if value >= params.max_grad_to_weight}
    if large:
        worst = max(large, key=lambda name: large[name])
        signs.append((
            f"mean |gradient| is {fmt(large[worst], 3)} times the mean |weight| in {worst} "
            f"(threshold {params.max_grad_to_weight:g}; {len(large)} of {len(relative)} layers at or above it: "
            f"{histograms.layer_list(large)})", large[worst] / params.max_grad_to_weight))
        evidence["grad_to_weight"] = {name: value for name, (value, _) in relative.items()}
        for name in large:
            tags.extend(relative[name][1])
    layers = histograms.layer_scales(ctx.run)
    if len(layers) >= 2:
        ratio = layers[0].level / layers[-1].level
        evidence["first_to_last_ratio"] = ratio
        if ratio >= params.max_depth_ratio:
            signs.append((
                f"the gradient grows toward the input: {layers[0].layer}'s scale {fmt(layers[0].level, 3)} is "
                f"{fmt(ratio, 3)} times {layers[-1].layer}'s (threshold {params.max_depth_ratio:g})",
                ratio / params.max_depth_ratio))
            tags.extend((layers[0].tag, layers[-1].tag))
    growth = _growth(layers, params)
    if growth is not None:
        grown, factor, early, peak, step = growth
        signs.append((
            f"{grown.layer}'s gradient scale rose {fmt(factor, 3)}-fold, from {fmt(early, 3)} over its first "
            f"quarter to {fmt(peak, 3)} at step {step} (threshold {params.max_growth:g})", factor / params.max_growth))
        evidence.update(growth_layer=grown.layer, growth_factor=factor, growth_step=step)
        tags.append(grown.tag)
        steps.append(step)
    if not signs:
        return
    signs.sort(key=lambda sign: -sign[1])
    beyond = signs[0][1]
    for scale in layers:
        steps.extend((int(scale.steps[0]), int(scale.steps[-1])))
    yield check.finding(
        ctx,
        tags=tuple(dict.fromkeys(tags)),
        steps=(min(steps), max(steps)) if steps else None,
        message="; ".join(clause for clause, _ in signs),
        evidence=evidence,
        severity=Severity.ERROR if beyond >= params.error_factor else Severity.WARNING,
        confidence=Confidence.HIGH if len(signs) > 1 or beyond >= 2 else Confidence.MEDIUM,
        advice=f"Layers involved: {histograms.layer_list(_layers_of(ctx, tags))}. {check.advice}",
    )


def _layers_of(ctx: RunContext, tags: list[str]) -> list[str]:
    return [item.layer for item in histograms.series(ctx.run, Role.GRADIENT_HISTOGRAM, Role.WEIGHT_HISTOGRAM)
            if item.tag in tags]


def _grad_to_weight(ctx: RunContext) -> dict[str, tuple[float, tuple[str, str]]]:
    """Per layer logging both, the median over shared steps of mean |gradient| / mean |weight| of its
    weight matrix, with the two tags."""
    weights = {item.layer: item for item in histograms.series(ctx.run, Role.WEIGHT_HISTOGRAM)}
    out = {}
    for item in histograms.series(ctx.run, Role.GRADIENT_HISTOGRAM):
        if item.name.tensor != "weight" or item.layer not in weights:
            continue
        ratios = []
        for histogram in item.judged():
            weight = weights[item.layer].at_step(histogram.step)
            if weight is None:
                continue
            scale = histograms.abs_mean(weight)
            if np.isfinite(scale) and scale > 0:
                ratios.append(histograms.abs_mean(histogram) / scale)
        ratios = [ratio for ratio in ratios if np.isfinite(ratio)]
        if ratios:
            out[item.layer] = (measures.median(ratios), (item.tag, weights[item.layer].tag))
    return out


def _growth(layers: list[histograms.LayerScale], params: Params
            ) -> tuple[histograms.LayerScale, float, float, float, int] | None:
    """The layer whose gradient scale rose most above its first quarter, when it rose ``max_growth``-fold."""
    best = None
    for layer in layers:
        if layer.scales.size < 4:
            continue
        head = max(1, math.ceil(layer.scales.size / 4))
        early = measures.median(layer.scales[:head])
        later = layer.scales[head:]
        peak_index = int(np.argmax(later))
        factor = float(later[peak_index]) / early if early > 0 else float("nan")
        if np.isfinite(factor) and factor >= params.max_growth and (best is None or factor > best[1]):
            best = (layer, factor, early, float(later[peak_index]), int(layer.steps[head + peak_index]))
    return best


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A layer's mean |gradient| over training, bursting before a divergence."""
    steps = np.arange(0, 2000, 50)
    return steps, 1e-3 * np.where(steps < 1500, 1.0, 10.0 ** ((steps - 1500) / 100.0))


CHECK = Check(
    code="D003",
    name="exploding-gradients",
    title="Gradients exploding: as large as the weights, or growing",
    severity=Severity.WARNING,
    needs=(Role.GRADIENT_HISTOGRAM,),
    params=Params,
    advice=(
        "Initialise for the fan-in (He for ReLU, Xavier for tanh), clip gradients (clip_grad_norm_ at 1.0), lower "
        "the learning rate or warm it up, normalise inputs and targets, add normalisation layers."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
