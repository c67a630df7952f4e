"""ReLU layers whose outputs are almost all exactly zero: dead units.

What it detects
---------------
For every activation histogram of a ReLU-family layer (named ``relu``, or outputs >= 0 with
mass at exactly zero; see ``checks/histograms.py``), the share of its outputs that are
exactly zero, the median over its last ``last_histograms`` histograms.  PyTorch's default
TensorFlow buckets give exact zeros a bucket of their own, [0, 1e-12); TF2's 30 equal-width
buckets do not, and there the lowest bucket's share, an upper bound, is judged with medium
confidence.

A histogram pools every unit's outputs, so it cannot tell which units are dead; it can bound
how many.  SageMaker Debugger's DeadRelu rule calls a unit dead when it is active on fewer
than 1% of its inputs and a layer dead when over half its units are.  A live ReLU unit is
inactive about half the time (its input is roughly symmetric around zero), so a layer with a
share d of dead units outputs about d + (1 - d) / 2 zeros: over half the units dead reads as
over ``note_share`` = 75% zeros (information), ``max_zero_share`` = 90% means about 80% of
the units dead (a warning) and ``error_share`` = 99% a layer that passes almost no gradient
(an error).  Healthy ReLU layers of the calibration corpus output at most 57% zeros; layers
where SageMaker's rule holds on the raw tensors, 100%.

When a layer crossed into the dead range during the run, the finding says when, and what
happened just before: the learning rate rising ``lr_rise`` times above where it started
(warm-up, a cyclic or one-cycle schedule), or a training-loss spike ``spike_factor`` times
its median so far.  Those are the usual killers: one large step pushes a unit's bias and
weights so far that no input activates it again, and a dead unit gets no gradient to recover.

Noise principle: the level is a median over several logged steps and the thresholds leave a
wide margin to the healthy range, so one batch with many zeros does not fire.

Why it matters
--------------
A dead unit outputs zero for every input and gets zero gradient, so it never learns again;
a layer of dead units passes nothing forward and no gradient back, and the layers before it
stop learning too.  The loss plateaus or the model stays at chance, and no number of epochs
helps.

What to try
-----------
Lower the learning rate or warm it up more slowly, clip gradients, initialise with He
(Kaiming) and biases at zero (or slightly positive), or use a leaky ReLU, ELU or GELU in the
layers named; batch normalisation before the ReLU keeps its inputs centred.  Restart from a
checkpoint before the units died: they will not come back on their own.
"""

from __future__ import annotations

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
    """Thresholds of ``dead-units``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    last_histograms: int = field(
        default=3, metadata={"help": "How many of the last histograms of a layer are judged (their median)."}
    )
    note_share: float = field(
        default=0.75, metadata={"help": "Share of exact zeros that is reported as information (half the units dead)."}
    )
    max_zero_share: float = field(
        default=0.9, metadata={"help": "Share of exact zeros that is a warning (about 80% of the units dead)."}
    )
    error_share: float = field(
        default=0.99, metadata={"help": "Share of exact zeros that is an error (the layer passes almost nothing)."}
    )
    lr_rise: float = field(
        default=2.0, metadata={"help": "A learning rate this many times its start before the units died is named."}
    )
    spike_factor: float = field(
        default=3.0, metadata={"help": "A loss this many times its median so far before the units died is named."}
    )


@dataclass(frozen=True)
class _Layer:
    """One ReLU layer's zero share: judged level, first level, exact or an upper bound, onset."""

    tag: str
    layer: str
    level: float
    first: float
    first_step: int
    exact: bool
    onset: int | None  # first logged step at or above the note level, when it crossed later
    before: int | None  # the logged step before the onset
    last_step: int


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding for the run's ReLU layers whose outputs are mostly exact zeros."""
    dead: list[_Layer] = []
    for item in histograms.series(ctx.run, Role.ACTIVATION_HISTOGRAM):
        if histograms.activation_kind(item) != "relu":
            continue
        layer = _measure(item, params)
        if layer is not None and layer.level >= params.note_share:
            dead.append(layer)
    if not dead:
        return
    dead.sort(key=lambda layer: -layer.level)
    worst = dead[0]
    severity = (Severity.ERROR if worst.level >= params.error_share
                else Severity.WARNING if worst.level >= params.max_zero_share else Severity.INFO)
    threshold = {Severity.ERROR: params.error_share, Severity.WARNING: params.max_zero_share}.get(
        severity, params.note_share)
    story, story_evidence = _story(ctx, params, worst)
    bound = "" if all(layer.exact for layer in dead) else " (at most: equal-width buckets merge zeros with small outputs)"
    listed = ", ".join(f"{layer.level:.0%} of {layer.layer}'s" for layer in dead[:4]) + (
        f" and {len(dead) - 4} more layers'" if len(dead) > 4 else "")
    message = (
        f"{listed} ReLU outputs exactly zero in the last {params.last_histograms} histograms{bound} "
        f"(threshold {threshold:.0%}): most of {'its' if len(dead) == 1 else 'their'} units are dead{story}"
    )
    names = histograms.layer_list(layer.layer for layer in dead)
    evidence: dict[str, Any] = {
        "layers": {layer.layer: {"tag": layer.tag, "zero_share": layer.level, "first_zero_share": layer.first,
                                 "exact": layer.exact, "onset_step": layer.onset} for layer in dead},
        "threshold_note_share": params.note_share,
        "threshold_max_zero_share": params.max_zero_share,
        "threshold_error_share": params.error_share,
        **story_evidence,
    }
    yield check.finding(
        ctx,
        tags=tuple(layer.tag for layer in dead),
        steps=(worst.onset if worst.onset is not None else worst.first_step, worst.last_step),
        message=message,
        evidence=evidence,
        severity=severity,
        confidence=Confidence.HIGH if all(layer.exact for layer in dead) else Confidence.MEDIUM,
        advice=(
            f"Units of {names} are dead. Lower the learning rate or warm it up more slowly, clip gradients, "
            "initialise with He and biases at zero or slightly positive, or use a leaky ReLU/ELU/GELU there; "
            "restart from a checkpoint before they died: dead units do not come back."
        ),
    )


def _measure(item: histograms.Series, params: Params) -> _Layer | None:
    judged = item.judged()
    shares = [(histogram.step, *histograms.zero_share(histogram)) for histogram in judged]
    shares = [share for share in shares if np.isfinite(share[1])]
    if not shares:
        return None
    tail = shares[-max(params.last_histograms, 1):]
    level = measures.median([share for _, share, _ in tail])
    onset = before = None
    crossed = [index for index, (_, share, _) in enumerate(shares) if share >= params.note_share]
    if crossed and crossed[0] > 0:
        onset, before = shares[crossed[0]][0], shares[crossed[0] - 1][0]
    return _Layer(item.tag, item.layer, level, shares[0][1], shares[0][0], all(exact for *_, exact in tail),
                  onset, before, shares[-1][0])


def _story(ctx: RunContext, params: Params, layer: _Layer) -> tuple[str, dict[str, Any]]:
    """When the worst layer died and what happened just before: a learning rate rising, a loss spike."""
    if layer.onset is None or layer.before is None:
        if layer.first >= params.note_share:
            return f"; {layer.layer} was already at {layer.first:.0%} at step {layer.first_step}", {
                "dead_from_step": layer.first_step}
        return "", {}
    clause = (f"; {layer.layer} went from {layer.first:.0%} at step {layer.first_step} to "
              f"{layer.level:.0%}, crossing {params.note_share:.0%} by step {layer.onset}")
    evidence: dict[str, Any] = {"onset_step": layer.onset}
    rate = measures.learning_rate(ctx)
    if rate is not None:
        tag, steps, values = rate
        start = values[steps <= layer.first_step]
        start_rate = float(start[-1]) if start.size else float(values[0])
        window = values[(steps > layer.first_step) & (steps <= layer.onset)]
        peak = float(window.max()) if window.size else float("nan")
        if start_rate > 0 and peak >= params.lr_rise * start_rate:
            evidence.update(learning_rate_tag=tag, learning_rate_start=start_rate, learning_rate_peak=peak)
            return f"{clause}, after the learning rate rose from {fmt(start_rate)} to {fmt(peak)}", evidence
    loss_tag = ctx.primary(Role.TRAIN_LOSS)
    if loss_tag is not None:
        curve = ctx.curve(loss_tag).finite
        earlier = curve.values[curve.steps <= layer.before]
        window = curve.values[(curve.steps > layer.before) & (curve.steps <= layer.onset)]
        if earlier.size >= 3 and window.size:
            typical, top = measures.median(earlier), float(window.max())
            if typical > 0 and top >= params.spike_factor * typical:
                spike_step = int(curve.steps[(curve.steps > layer.before) & (curve.steps <= layer.onset)][window.argmax()])
                evidence.update(loss_tag=loss_tag, loss_spike=top, loss_spike_step=spike_step, loss_median_before=typical)
                return f"{clause}, after a loss spike to {fmt(top)} at step {spike_step} ({fmt(top / typical, 3)}x)", evidence
    return clause, evidence


def _example() -> tuple[np.ndarray, np.ndarray]:
    """The share of a ReLU layer's outputs that are exactly zero, jumping as the units die."""
    steps = np.arange(0, 2000, 50)
    return steps, np.where(steps < 600, 0.5, 0.99)


CHECK = Check(
    code="A001",
    name="dead-units",
    title="ReLU units dead: outputs exactly zero",
    severity=Severity.WARNING,
    needs=(Role.ACTIVATION_HISTOGRAM,),
    params=Params,
    advice=(
        "Lower the learning rate or warm it up, clip gradients, use He initialisation with biases at zero or "
        "slightly positive, or a leaky ReLU/GELU in the layers named; restart from before the units died."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
