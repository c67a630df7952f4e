"""Layers whose first logged weights are all zero, constant, or spread far from what their fan-in calls for.

What it detects
---------------
The first logged histogram of every weight layer (``fc1.weight``, ``dense/kernel_0``):

- **constant**: every weight the same value (min equals max, or all mass in one zero-width
  bucket).  All zero, or one value other than 1: every unit of the layer computes the same
  function and gets the same gradient, so they stay identical (a zero layer also passes no
  gradient to the layers before it).  A scale of exactly 1 is how every normalisation layer
  starts and is left alone;
- **spread far from the fan-in**: the common initialisations give a layer with fan-in n a
  standard deviation between 1/sqrt(3n) (LeCun/PyTorch's default uniform, the smallest) and
  sqrt(2/n) (He normal, the largest), or sqrt(2/(n + m)) with fan-out m (Xavier/Glorot, which
  can be smaller when m is much larger than n).  A spread ``spread_factor`` (3) times outside
  that range is reported: each layer then scales its outputs by about that factor, 3^L over
  L layers, saturating tanh/sigmoid units or blowing up ReLU activations, or shrinking them
  toward zero.  The healthy runs of the calibration corpus (PyTorch's default, He, Keras'
  Glorot) sit within 8% of the range; weights drawn N(0, 1) for a fan-in of 64 are 5.6 times
  above it.

The fan-in is not in the log, but it can often be read from it: a layer's bias histogram
counts its fan-out m (one bias per output unit, one per channel for a convolution) and its
weight histogram counts n * m weights (times the kernel size for a convolution, which is part
of the fan-in), so n = weights / biases.  Without a logged bias only the count N = n * m is
known, n anywhere from 1 to N, and the range widens to 1/sqrt(3N) .. sqrt(2): only spreads
absurd for any shape (a constant layer, 1e-6, 10) are reported, with low confidence.

Keras logs histograms at the end of each epoch, so its first histogram is after one epoch of
training; the finding then says so.  Spreads are estimated from bucket centres and widths
(TensorFlow's buckets are 10% wide: a few percent of error, far inside the factor 3).

Noise principle: one histogram of thousands of weights; its standard deviation is exact to
the bucket resolution, so no noise model is needed beyond the factor's margin.

Why it matters
--------------
A poor initialisation decides whether a deep network trains at all: too wide and
activations explode or saturate, too narrow and signals and gradients shrink to nothing;
constant layers never break their symmetry.  The symptoms (a loss that will not move, NaN
early on, dead or saturated units) show later on the curves, the cause shows here.

What to try
-----------
Use the initialiser made for the activation: He (Kaiming) for ReLU-family, Xavier/Glorot for
tanh/sigmoid, or the framework's default; never initialise weight matrices to zeros or a
constant (biases at zero are fine); when loading pretrained weights, check they were loaded
into the layers named.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import histograms
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role
from rundoctor.series import Histogram


@dataclass(frozen=True)
class Params:
    """Thresholds of ``weight-init``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    spread_factor: float = field(
        default=3.0, metadata={"help": "How many times outside the common inits' range a spread is reported."}
    )
    min_weights: int = field(
        default=16, metadata={"help": "Weights a layer needs before its spread is judged."}
    )


@dataclass(frozen=True)
class _Judged:
    layer: str
    tag: str
    step: int
    problem: str  # "zero", "constant", "narrow", "wide"
    clause: str
    known_fan_in: bool
    evidence: dict[str, object]


def expected_range(weights: float, biases: float | None) -> tuple[float, float, float | None]:
    """(lowest, highest) standard deviation of the common inits and the fan-in they assume (None when
    only the weight count is known: every fan-in from 1 to the count is possible)."""
    if biases is not None and biases >= 1 and weights >= biases and float(weights / biases).is_integer():
        fan_in, fan_out = weights / biases, biases
        low = min(1 / math.sqrt(3 * fan_in), math.sqrt(2 / (fan_in + fan_out)))
        return low, math.sqrt(2 / fan_in), fan_in
    return 1 / math.sqrt(3 * weights), math.sqrt(2.0), None


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding for the layers whose first logged weights are constant or spread far from the fan-in."""
    biases = {item.layer: item for item in histograms.series(ctx.run, Role.BIAS_HISTOGRAM)}
    judged = []
    for item in histograms.series(ctx.run, Role.WEIGHT_HISTOGRAM):
        first = item.histograms[0]
        bias = biases.get(item.layer)
        result = _judge(item, first, bias.histograms[0] if bias is not None else None, params)
        if result is not None:
            judged.append(result)
    if not judged:
        return
    constant = [item for item in judged if item.problem in ("zero", "constant")]
    known = [item for item in judged if item.known_fan_in or item.problem in ("zero", "constant")]
    late = min(item.step for item in judged) > 0
    note = (f" (first logged at step {min(item.step for item in judged)}, after that much training: "
            "Keras logs weights at the end of each epoch)") if late else ""
    names = histograms.layer_list(item.layer for item in judged)
    yield check.finding(
        ctx,
        tags=tuple(item.tag for item in judged),
        steps=(min(item.step for item in judged), max(item.step for item in judged)),
        message="; ".join(item.clause for item in judged[:4]) + (
            f"; and {len(judged) - 4} more layers" if len(judged) > 4 else "") + note,
        evidence={"layers": {item.layer: {"tag": item.tag, "problem": item.problem, **item.evidence} for item in judged},
                  "threshold_spread_factor": params.spread_factor},
        confidence=Confidence.HIGH if constant or (known and not late) else Confidence.MEDIUM if known else Confidence.LOW,
        advice=(
            f"Re-initialise {names}: He (Kaiming) for ReLU-family layers, Xavier/Glorot for tanh/sigmoid, or the "
            "framework's default; never zeros or a constant for weight matrices (zero biases are fine); check that "
            "pretrained weights were loaded into them."
        ),
    )


def _judge(item: histograms.Series, first: Histogram, bias: Histogram | None, params: Params) -> _Judged | None:
    count = first.total
    if not np.isfinite(count) or count < params.min_weights:
        return None
    if histograms.is_constant(first):
        value = first.min if np.isfinite(first.min) else float(np.asarray(first.bucket_limits)[-1])
        if value == 1.0:
            return None  # a normalisation layer's scale starts at exactly 1
        problem = "zero" if value == 0 else "constant"
        clause = (f"{item.layer} starts all zero at step {first.step}: its units stay identical and pass no gradient back"
                  if problem == "zero" else
                  f"{item.layer} starts with every weight {fmt(value)} at step {first.step}: its units stay identical")
        return _Judged(item.layer, item.tag, first.step, problem, clause, True, {"value": value, "weights": count})
    _, spread = histograms.spread(first)
    if not (np.isfinite(spread) and spread > 0):
        return None
    low, high, fan_in = expected_range(count, bias.total if bias is not None else None)
    if low / params.spread_factor <= spread <= high * params.spread_factor:
        return None
    wide = spread > high
    factor = spread / high if wide else low / spread
    where = (f"fan-in {fmt(fan_in, 6)}, from {int(count)} weights and {int(count / fan_in)} biases" if fan_in
             else f"fan-in unknown: no bias logged for it, {int(count)} weights")
    clause = (f"{item.layer} starts with a spread of {fmt(spread, 3)}, {fmt(factor, 3)} times "
              f"{'above' if wide else 'below'} the {fmt(low, 3)}..{fmt(high, 3)} common inits give ({where}; "
              f"threshold {params.spread_factor:g}x)")
    return _Judged(item.layer, item.tag, first.step, "wide" if wide else "narrow", clause, fan_in is not None,
                   {"spread": spread, "expected_low": low, "expected_high": high, "fan_in": fan_in, "weights": count,
                    "factor": factor})


def _example() -> tuple[np.ndarray, np.ndarray]:
    """The spread of a layer initialised to zeros, over its first steps (its fan-in calls for about 0.1)."""
    steps = np.arange(0, 2000, 50)
    return steps, 0.004 * np.sqrt(steps / 50.0)


CHECK = Check(
    code="W002",
    name="weight-init",
    title="Weights start constant or far from the fan-in's spread",
    severity=Severity.WARNING,
    needs=(Role.WEIGHT_HISTOGRAM,),
    params=Params,
    advice=(
        "Use He (Kaiming) init for ReLU-family layers, Xavier/Glorot for tanh/sigmoid, or the framework's default; "
        "never zeros or a constant for weight matrices."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
