"""Gradients orders of magnitude smaller in the first layers than in the last: vanishing gradients.

What it detects
---------------
For every layer whose gradient is logged as a histogram (``fc1.weight.grad``,
``grad/fc1.weight``, ...; the weight's gradient when both weight and bias are logged), its
gradient scale: the mean |gradient| over the values that are not exactly zero (exact zeros
are rows nothing flowed into, dead units or embedding rows outside the batch, which are
``dead-units``' business), from bucket centres, the median over the logged steps.  Layers are
taken in the order they were first logged, which is the model's order from input to output
when the parameters are logged in the usual loop over ``named_parameters()`` or Keras layers.

A layer's gradient has vanished when its scale is under ``max_ratio`` (1e-3) times the last
logged layer's: at one learning rate it learns a thousand times slower than the output
layer.  The healthy networks of the calibration corpus, up to ten ReLU layers with He
initialisation, keep every layer at 0.11 times the last or more; plain stacks of 8 and 12
sigmoid layers fall to 3e-7 and below, and one of 4 to 6e-4-8e-4.  A vanished layer whose
scale is below ``min_scale`` (1e-7, SageMaker Debugger's VanishingGradient threshold) makes
the finding an error: in float32, a learning rate under 1 moves those weights by less than
their rounding.

The finding names the layers, the ratio from the last layer to the first, and its trend: the
ratio at the first and the last logged step when it changed more than tenfold.

Noise principle: per-layer medians over the logged steps, and a threshold three orders of
magnitude from the ratio; per-batch gradient noise moves a layer's scale by a factor of a
few, not a thousand.

Why it matters
--------------
The layers near the input get almost no learning signal, so they stay near their random
initialisation: a deep network trains as if only its last layers existed, the loss falls
slowly or plateaus early, and more epochs do not help.

What to try
-----------
Use ReLU-family activations instead of sigmoid/tanh in deep stacks, initialise with He
(ReLU) or Xavier/Glorot (tanh), add batch or layer normalisation, add residual (skip)
connections, or make the network shallower; for RNNs use LSTM/GRU cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import histograms
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``vanishing-gradients``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    max_ratio: float = field(
        default=1e-3, metadata={"help": "A layer's gradient scale under this times the last layer's has vanished."}
    )
    min_scale: float = field(
        default=1e-7, metadata={"help": "A vanished layer's mean |gradient| under this makes the finding an error."}
    )
    trend_factor: float = field(
        default=10.0, metadata={"help": "The ratio's change from the first to the last logged step that is quoted."}
    )


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding for the layers whose gradient scale is far under the last layer's."""
    layers = histograms.layer_scales(ctx.run)
    if len(layers) < 2:
        return
    last = layers[-1]
    reference = last.level
    vanished = [layer for layer in layers[:-1] if layer.level <= params.max_ratio * reference]
    if not vanished:
        return
    smallest = min(vanished, key=lambda layer: layer.level)
    first = layers[0]
    ratio = first.level / reference
    severity = Severity.ERROR if smallest.level < params.min_scale else Severity.WARNING
    trend, trend_evidence = _trend(first, last, params)
    listed = histograms.layer_list(layer.layer for layer in vanished)
    message = (
        f"mean |gradient| of {first.layer} is {fmt(first.level, 3)}, {fmt(ratio, 2)} times {last.layer}'s "
        f"{fmt(reference, 3)} (threshold {params.max_ratio:g}): the gradient vanishes toward the input; "
        f"{len(vanished)} of {len(layers)} layers under the threshold ({listed}), the smallest {smallest.layer} "
        f"at {fmt(smallest.level, 3)}{trend}"
    )
    yield check.finding(
        ctx,
        tags=tuple(layer.tag for layer in (*vanished, last)),
        steps=(int(min(layer.steps[0] for layer in layers)), int(max(layer.steps[-1] for layer in layers))),
        message=message,
        evidence={
            "layers": {layer.layer: {"tag": layer.tag, "grad_scale": layer.level,
                                     "ratio_to_last": layer.level / reference} for layer in layers},
            "last_layer": last.layer,
            "first_to_last_ratio": ratio,
            "threshold_max_ratio": params.max_ratio,
            "threshold_min_scale": params.min_scale,
            **trend_evidence,
        },
        severity=severity,
        confidence=Confidence.HIGH if len(vanished) > 1 or ratio < params.max_ratio**2 else Confidence.MEDIUM,
        advice=(
            f"{listed} barely learn. Use ReLU-family activations instead of sigmoid/tanh, He or Xavier "
            "initialisation, batch or layer normalisation, residual connections, or fewer layers "
            "(LSTM/GRU cells for recurrent networks)."
        ),
    )


def _trend(first: histograms.LayerScale, last: histograms.LayerScale, params: Params) -> tuple[str, dict[str, float]]:
    """The first-to-last ratio at the first and last step both logged, when it moved ``trend_factor``-fold."""
    shared = np.intersect1d(first.steps, last.steps)
    if shared.size < 2:
        return "", {}
    at = {int(step): float(scale) for step, scale in zip(first.steps, first.scales)}
    out = {int(step): float(scale) for step, scale in zip(last.steps, last.scales)}
    begin, end = int(shared[0]), int(shared[-1])
    start, finish = at[begin] / out[begin], at[end] / out[end]
    evidence = {"ratio_first_step": start, "ratio_last_step": finish}
    if finish <= start / params.trend_factor:
        return f"; the ratio fell from {fmt(start, 2)} at step {begin} to {fmt(finish, 2)} at step {end}", evidence
    if finish >= start * params.trend_factor:
        return f"; the ratio rose from {fmt(start, 2)} at step {begin} to {fmt(finish, 2)} at step {end}", evidence
    return "", evidence


def _example() -> tuple[np.ndarray, np.ndarray]:
    """The first layer's mean |gradient| over the last layer's, in a deep sigmoid stack as it trains."""
    steps = np.arange(0, 2000, 50)
    return steps, 1e-6 * np.exp(-steps / 800.0)


CHECK = Check(
    code="D002",
    name="vanishing-gradients",
    title="Gradients vanish toward the input layers",
    severity=Severity.WARNING,
    needs=(Role.GRADIENT_HISTOGRAM,),
    params=Params,
    advice=(
        "Use ReLU-family activations, He/Xavier initialisation, normalisation layers or residual connections, "
        "or a shallower network."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
