"""Training accuracy near perfect while validation accuracy stays at chance (grokking).

What it detects
---------------
The training accuracy reaches near-perfect, yet the validation accuracy stays near chance
(1/C when the number of classes is known, else its first evaluation) for a long stretch
afterwards.  When the validation accuracy later jumps, the step and the size of the jump
are reported too.

Why it matters
--------------
A model that has memorised its training set can still generalise much later ("grokking",
delayed generalization): on small algorithmic and small-data tasks validation accuracy sits
at chance for thousands of steps after training accuracy hits 100%, then jumps.  Runs
stopped at the first sign of memorisation never see the jump; runs that did see it should
know how long it took, to budget the next one.

What to try
-----------
If no jump came yet: keep training well past the memorisation point, with weight decay
(grokking is much faster with it), and check that the validation set comes from the same
distribution as the training set.  If the jump came: budget at least that many steps
next time, and try stronger weight decay or more data to make it come sooner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``delayed-generalization``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Validation evaluations needed before the check judges."}
    )
    near_perfect: float = field(
        default=0.95, metadata={"help": "Smoothed training accuracy counted as near perfect."}
    )
    chance_margin: float = field(
        default=0.1,
        metadata={"help": "Near chance: at most chance + this share of the distance to 1."},
    )
    min_stretch_fraction: float = field(
        default=0.2,
        metadata={"help": "Shortest stuck stretch worth reporting, as a fraction of the run."},
    )
    min_stretch_evaluations: int = field(
        default=3, metadata={"help": "Fewest stuck validation evaluations worth reporting."}
    )
    min_jump: float = field(
        default=0.1,
        metadata={"help": "Rise above the stuck level (accuracy units) that counts as a jump."},
    )
    smoothing: float = field(
        default=0.05,
        metadata={"help": "EMA span of the training accuracy, fraction of its points."},
    )


# Defaults: 0.95 is where training accuracy curves of memorising models sit; a tenth of the
# headroom above chance (0.19 for 10 classes, 0.55 for 2) is well inside what a model that
# generalises at all reaches; a fifth of the run and three evaluations rule out a lag of one
# evaluation; a 10-point rise is far beyond evaluation noise.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding: the primary training accuracy near perfect while the primary
    validation accuracy stays near chance (see the module docstring)."""
    train_tag = ctx.primary(Role.TRAIN_ACCURACY)
    val_tag = ctx.primary(Role.VAL_ACCURACY)
    if train_tag is None or val_tag is None:
        return
    train_steps, train_accuracy = measures.accuracy_levels(ctx, train_tag)
    own_val_steps, val_accuracy = measures.accuracy_levels(ctx, val_tag)
    if train_accuracy.size < 3 or val_accuracy.size < params.min_points:
        return
    # Steps are those of the training accuracy; validation steps are placed on its axis.
    val_steps = measures.steps_on_axis_of_tag(ctx, val_tag, train_tag, own_val_steps)
    smooth = ctx.measure(measures.ema, train_accuracy, measures.window(train_accuracy.size, params.smoothing))
    reached = np.flatnonzero(smooth >= params.near_perfect)
    if reached.size == 0:
        return
    perfect_step = int(train_steps[reached[0]])
    if ctx.num_classes:
        chance, chance_source = 1.0 / ctx.num_classes.value, ctx.num_classes.source
    else:
        chance, chance_source = float(val_accuracy[0]), "first evaluation"
    threshold = chance + params.chance_margin * (1.0 - chance)
    after = val_steps >= perfect_step
    after_steps, after_values = val_steps[after], val_accuracy[after]
    above = np.flatnonzero(after_values > threshold)
    stuck = int(above[0]) if above.size else int(after_values.size)
    if stuck < params.min_stretch_evaluations:
        return
    run_span = float(max(train_steps[-1], val_steps[-1]) - min(train_steps[0], val_steps[0]))
    stuck_end = int(after_steps[stuck - 1])
    stretch = float(stuck_end - perfect_step)
    if run_span <= 0 or stretch / run_span < params.min_stretch_fraction:
        return
    stuck_level = measures.median(after_values[:stuck])
    evidence: dict[str, float | int | str] = {
        "train_tag": train_tag,
        "val_tag": val_tag,
        "train_near_perfect_step": perfect_step,
        "train_accuracy_at_end": float(smooth[-1]),
        "val_stuck_level": stuck_level,
        "chance_level": chance,
        "chance_source": chance_source,
        "near_chance_threshold": threshold,
        "stuck_until_step": stuck_end,
        "stuck_steps": int(stretch),
        "stuck_fraction": stretch / run_span,
        "stuck_evaluations": stuck,
        "threshold_near_perfect": params.near_perfect,
        "threshold_stretch_fraction": params.min_stretch_fraction,
    }
    head = (
        f"{val_tag} stayed near chance ({fmt(stuck_level, 3)}, threshold {fmt(threshold, 3)} "
        f"from chance {fmt(chance, 3)}: {chance_source}) for {stretch:,.0f} steps "
        f"({stretch / run_span:.0%} of the run, threshold {params.min_stretch_fraction:.0%}) "
        f"after {train_tag} reached {params.near_perfect:g} at step {perfect_step:,}"
    )
    last_step = stuck_end
    if stuck < after_values.size:
        peak = int(np.argmax(after_values[stuck:])) + stuck
        size = float(after_values[peak] - stuck_level)
        evidence.update(
            jump_step=int(after_steps[stuck]), jump_peak=float(after_values[peak]), jump_size=size
        )
        if size >= params.min_jump:
            last_step = int(after_steps[stuck])
            message = (
                f"{head}, then jumped to {fmt(float(after_values[peak]), 3)} (+{fmt(size, 3)}) "
                f"from step {int(after_steps[stuck]):,}: delayed generalization"
            )
        else:
            message = (
                f"{head}; it has risen only {fmt(size, 3)} since "
                f"(jump threshold {params.min_jump:g})"
            )
    else:
        message = f"{head}, and has not risen yet"
    yield check.finding(
        ctx,
        tags=(train_tag, val_tag),
        steps=(perfect_step, last_step),
        message=message,
        evidence=evidence,
        confidence=Confidence.HIGH if ctx.num_classes else Confidence.MEDIUM,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """Validation accuracy near chance (0.1) for most of the run, then the late jump."""
    steps = np.arange(0, 20000, 500)
    return steps, np.where(steps < 16000, 0.1 + 0.004 * np.sin(steps), 0.95)


CHECK = Check(
    code="M002",
    name="delayed-generalization",
    title="Validation accuracy at chance long after training accuracy is near perfect",
    severity=Severity.INFO,
    needs=(Role.TRAIN_ACCURACY, Role.VAL_ACCURACY),
    params=Params,
    advice=(
        "Validation accuracy can jump long after the training set is memorised: keep training "
        "with weight decay rather than stopping at the memorisation point, check the validation "
        "data matches the training distribution, and budget the steps the jump took next time."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
