"""NaN or infinite values in any logged scalar: losses and metrics first, but every tag.

What it detects
---------------
Every logged point that is NaN, +inf or -inf in any scalar series of the run (a loss, an
accuracy or other metric, the learning rate, the gradient norm, a confidence series, and
also tags whose role is not known, such as a custom ``kl_term`` or ``reward``): the step where it first happened,
how many points, the last finite value before it, and whether finite values came back
(transient) or not (permanent).  A series that is non-finite at every point was never
computed at all and gets a message of its own.  Tags that turn bad at the same step are
one event (a NaN in the forward pass reaches every loss term at once) and are reported
together.

The points are read in the order they were logged, including points a resumed run later
wrote again: a NaN that made someone restart the run is part of its history.

Severity follows the role, because what a NaN means depends on what the series is.  A loss
or metric (and a learning rate, gradient norm or confidence) that turns non-finite and stays
so to the end is an error; one that recovers is a warning (info when only gradient norms or
learning rates are affected: fp16 loss scaling skips those steps by design).  A tag of
unknown role is a warning when it stays non-finite and info when it recovers or was never
finite (it may be a diagnostic the run does not depend on).  Those info cases become a
warning when a training loss blows up in the same steps (from the last finite point before
the bad ones to the last bad one, in every segment of a restarted log): a loss value there
that is non-finite or ``blow_up_factor`` times the loss's median magnitude shows the
optimisation breaking, not a loss scaler skipping a step; the message names it.  Bookkeeping counters (epoch,
runtime) are not scanned: some loggers write NaN there by design.
Never finite: an error for a training loss, a warning for another loss or metric.  The
message says whether the values recovered ("finite again afterwards") or persisted to the
end ("never recovered"); a series that recovered once and then ended non-finite never
recovered, from the stretch it ends in.

No noise principle is needed: a single NaN is a fact, not a sample of noise.

Why it matters
--------------
A NaN loss means the gradients were NaN too: without a loss scaler that skips such steps,
every weight becomes NaN and nothing after that step is training.  A permanent NaN is a
dead run still burning compute; a transient one is a warning that the optimisation is on
the edge of blowing up (learning rate too high, log of zero, division by a tiny number).
A series that is NaN from the first point (a validation loss that is never computed) leaves
you blind on what it should measure.  An infinite gradient norm on a few steps is normal
with fp16 and dynamic loss scaling (the scaler skips those steps) and is reported as info.

What to try
-----------
Go to the first bad step.  Lower the learning rate or add warm-up, clip gradients
(``clip_grad_norm_`` at 1.0), guard logs and divisions in custom losses (``log(x + eps)``,
``clamp``), check the batch at that step for NaN or extreme inputs, use bf16 or a loss
scaler for fp16, and run ``torch.autograd.set_detect_anomaly(True)`` to find the operation.
For a series that is never finite, check the code that computes it (an empty validation
set, missing targets, a metric that needs labels the loader does not return).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import LOSS_ROLES, METRIC_ROLES, Role

# Series whose non-finite values are judged at full severity; every other tag is still
# scanned (see ``_severity``).
WATCHED_ROLES = (*LOSS_ROLES, *METRIC_ROLES, Role.LEARNING_RATE, Role.GRAD_NORM, Role.CONFIDENCE)
TRAINING_LOSS_ROLES = (Role.TRAIN_LOSS, Role.LOSS_COMPONENT)


@dataclass(frozen=True)
class Params:
    """Thresholds of ``non-finite``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    group_min_tags: int = field(
        default=2,
        metadata={"help": "Tags turning bad at the same step, alike, reported as one finding."},
    )
    max_named_tags: int = field(
        default=4, metadata={"help": "Tags named in a grouped message before '+N more'."}
    )
    blow_up_factor: float = field(
        default=1000.0,
        metadata={
            "help": "A training loss this many times its median magnitude in the same steps makes a transient non-finite gradient norm, learning rate or unknown tag a warning."
        },
    )


# Defaults: tags failing at one step are one event (one NaN in the forward pass reaches the
# total and every term), so even two are told once.  Four names keep a grouped message on
# one line.  Per-batch losses of small batches reach 5-50x their median; 1000x is beyond any
# batch, the factor at which the divergence check calls a loss exploded.


@dataclass(frozen=True)
class BlowUp:
    """A training loss far beyond its usual magnitude, or non-finite, in a stretch of steps."""

    tag: str
    step: int
    value: float
    factor: float  # |value| / the loss's median magnitude (inf for a non-finite value)


@dataclass(frozen=True)
class BadValues:
    """What one tag's non-finite points look like, in log order."""

    tag: str
    points: int
    bad: int
    nan: int
    pos_inf: int
    neg_inf: int
    first_bad_step: int  # in log order
    lowest_bad_step: int
    highest_bad_step: int
    last_finite: float | None  # the value logged just before the first bad point
    last_finite_step: int | None
    recovered_step: int | None  # the first finite point logged after the first bad one
    # Where the non-finite stretch the series ends in begins (log order); None when it ends finite.
    final_bad_step: int | None = None

    @property
    def never_finite(self) -> bool:
        """True when the tag has no finite point at all."""
        return self.bad == self.points

    @property
    def permanent(self) -> bool:
        """True when the series ends non-finite (in log order): it never recovered from its last
        bad stretch, even if it recovered from an earlier one."""
        return self.final_bad_step is not None


def measure(tag: str, steps: np.ndarray, values: np.ndarray) -> BadValues | None:
    """The non-finite points of one series in log order, or None when all are finite."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    bad_index = np.flatnonzero(bad)
    first = int(bad_index[0])
    after = np.flatnonzero(~bad[first:])
    return BadValues(
        tag=tag,
        points=int(values.size),
        bad=int(bad.sum()),
        nan=int(np.isnan(values).sum()),
        pos_inf=int(np.isposinf(values).sum()),
        neg_inf=int(np.isneginf(values).sum()),
        first_bad_step=int(steps[first]),
        lowest_bad_step=int(steps[bad_index].min()),
        highest_bad_step=int(steps[bad_index].max()),
        last_finite=float(values[first - 1]) if first > 0 else None,
        last_finite_step=int(steps[first - 1]) if first > 0 else None,
        recovered_step=int(steps[first + after[0]]) if after.size else None,
        final_bad_step=_final_bad_step(steps, bad),
    )


def _final_bad_step(steps: np.ndarray, bad: np.ndarray) -> int | None:
    """The step where the non-finite stretch at the end of the series begins; None when its
    last point is finite."""
    if not bad[-1]:
        return None
    finite = np.flatnonzero(~bad)
    return int(steps[int(finite[-1]) + 1 if finite.size else 0])


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """Findings for every tag (counters excepted) with a NaN or infinity, read in log order so that a
    resume cannot hide one; tags turning bad alike at one step are grouped."""
    run = ctx.run
    # One pass over the whole run finds the tags with a bad point; only those are gathered.
    bad_codes = set(np.flatnonzero(np.bincount(run.tag_codes[~np.isfinite(run.values)])).tolist())
    bad_tags = {run.tag_names[code] for code in bad_codes}
    found = []
    # Every scalar tag, in the run's order: a NaN in a tag of unknown role is still a NaN.
    # Bookkeeping counters (epoch, runtime) are left out: loggers write NaN there by design.
    for tag in ctx.run.tags:
        if tag not in bad_tags or ctx.run.roles.get(tag) is Role.COUNTER:
            continue
        # Log order on purpose (see the module docstring): a resume must not hide a NaN.
        curve = ctx.raw_curve(tag)
        bad = measure(tag, curve.steps, curve.values)
        if bad is not None:
            found.append(bad)
    yield from judge(check, ctx, params, found)


def judge(check: Check[Params], ctx: RunContext, params: Params, found: list[BadValues]) -> Iterator[Finding]:
    """Findings for the measured series: tags turning bad alike at one step grouped, severity by
    role.  Apart from :func:`detect` so that measurements made elsewhere (streamed exactly, point
    by point, during training: :mod:`rundoctor.live`) are judged the same way."""
    groups: dict[tuple[int, bool, bool], list[BadValues]] = {}
    for values in found:
        key = (values.first_bad_step, values.permanent, values.never_finite)
        groups.setdefault(key, []).append(values)
    for members in groups.values():
        if len(members) >= params.group_min_tags:
            yield _finding(check, ctx, params, members)
        else:
            for member in members:
                yield _finding(check, ctx, params, [member])


def loss_blow_up(ctx: RunContext, member: BadValues, factor: float) -> BlowUp | None:
    """The largest value of a training loss (the main one first) logged in the steps of
    ``member``'s bad stretch (from its last finite point to its last bad one, in every segment
    of a restarted log) when it is non-finite or at least ``factor`` times that loss's median
    magnitude; else None."""
    before = member.last_finite_step
    low = member.lowest_bad_step if before is None else min(member.lowest_bad_step, before)
    high = member.highest_bad_step
    main = ctx.primary(Role.TRAIN_LOSS)
    # The main loss first: the total is what a reader watches; a term only when it held.
    ordered = sorted(ctx.tags(*TRAINING_LOSS_ROLES), key=lambda tag: tag != main)
    for tag in ordered:
        if tag == member.tag:
            continue
        curve = ctx.raw_curve(tag)
        magnitude = np.abs(curve.values)
        finite = np.isfinite(magnitude)
        if not finite.any():
            continue
        typical = measures.median(magnitude[finite])
        inside = np.flatnonzero((curve.steps >= low) & (curve.steps <= high))
        if inside.size == 0 or typical <= 0.0:
            continue
        # NaN sorts as the largest: a non-finite loss in the stretch is a blow-up too.
        ranked = np.where(np.isnan(magnitude[inside]), np.inf, magnitude[inside])
        at = int(inside[int(np.argmax(ranked))])
        ratio = float(ranked.max()) / typical
        if ratio >= factor:
            return BlowUp(tag, int(curve.steps[at]), float(curve.values[at]), ratio)
    return None


def _severity(ctx: RunContext, members: list[BadValues], blow_up: BlowUp | None) -> Severity:
    """The most severe of the members' severities (see the module docstring)."""
    return max(
        (_member_severity(ctx, member, blow_up is not None) for member in members),
        key=lambda sev: sev.rank,
    )


def _member_severity(ctx: RunContext, member: BadValues, loss_blew_up: bool = False) -> Severity:
    role = ctx.run.roles.get(member.tag)
    if role not in WATCHED_ROLES:
        # Unknown role: it may be a diagnostic the run does not depend on, unless the loss
        # blew up at the same steps.
        if member.permanent and not member.never_finite:
            return Severity.WARNING
        return Severity.WARNING if loss_blew_up and not member.never_finite else Severity.INFO
    if member.never_finite:
        return Severity.ERROR if role in TRAINING_LOSS_ROLES else Severity.WARNING
    if member.permanent:
        return Severity.ERROR
    if role in (Role.GRAD_NORM, Role.LEARNING_RATE):
        # Loss scaling skips such steps with the loss unharmed; a loss blown up at the same
        # steps shows the values were the optimisation breaking, not the scaler at work.
        return Severity.WARNING if loss_blew_up else Severity.INFO
    return Severity.WARNING


def _blow_up(ctx: RunContext, params: Params, members: list[BadValues]) -> BlowUp | None:
    """A training-loss blow-up in the steps of a transient member that is otherwise only info
    (see :func:`loss_blow_up`); None when no member is of that kind or the loss held."""
    for member in members:
        if member.permanent or member.never_finite or _member_severity(ctx, member) is not Severity.INFO:
            continue
        found = loss_blow_up(ctx, member, params.blow_up_factor)
        if found is not None:
            return found
    return None


def _step_range(members: list[BadValues]) -> tuple[int, int]:
    return min(s.lowest_bad_step for s in members), max(s.highest_bad_step for s in members)


def _kinds(members: list[BadValues]) -> str:
    counts = (
        ("NaN", sum(s.nan for s in members)),
        ("+inf", sum(s.pos_inf for s in members)),
        ("-inf", sum(s.neg_inf for s in members)),
    )
    return ", ".join(f"{name} x{count}" for name, count in counts if count)


def _finding(
    check: Check[Params], ctx: RunContext, params: Params, members: list[BadValues]
) -> Finding:
    first = members[0]
    tags = [member.tag for member in members]
    axis = ctx.run.axis_of(first.tag).value
    shown = ", ".join(tags[: params.max_named_tags])
    if len(tags) > params.max_named_tags:
        shown += f" (+{len(tags) - params.max_named_tags} more)"
    subject = shown if len(tags) == 1 else f"{len(tags)} series ({shown})"
    bad = sum(s.bad for s in members)
    before = (
        f"; last finite value {fmt(first.last_finite)} at {axis} {first.last_finite_step:,}"
        if len(members) == 1 and first.last_finite is not None
        else ""
    )
    advice = None
    if first.never_finite:
        points = sum(s.points for s in members)
        message = (
            f"{subject} {'is' if len(tags) == 1 else 'are'} non-finite at every one of "
            f"{points:,} logged points ({_kinds(members)}): the value was never computed, "
            f"a missing signal rather than a blow-up"
        )
        advice = (
            "Check the code that computes this series: an empty or unlabelled evaluation set, "
            "targets the loader does not return, or a metric whose denominator is always 0."
        )
    elif first.permanent:
        final = first.final_bad_step if first.final_bad_step is not None else first.first_bad_step
        earlier = (
            f", after recovering from non-finite values first seen at {axis} {first.first_bad_step:,}"
            if final != first.first_bad_step else ""
        )
        message = (
            f"{subject} turned non-finite at {axis} {final:,} and never "
            f"recovered{earlier} ({bad:,} points, {_kinds(members)}){before if not earlier else ''}"
        )
    else:
        low, high = _step_range(members)
        where = f"at {axis} {low:,}" if low == high else f"between {axis} {low:,} and {high:,}"
        message = (
            f"{subject} non-finite at {bad:,} point{'s' if bad != 1 else ''} {where} ({_kinds(members)}), "
            f"finite again afterwards{before}"
        )
    blow_up = _blow_up(ctx, params, members)
    if blow_up is not None:
        message += (
            f"; in the same steps {blow_up.tag} reached {fmt(blow_up.value)} at {axis} "
            f"{blow_up.step:,}"
            + (f", {blow_up.factor:.3g}x its median magnitude" if np.isfinite(blow_up.factor) else "")
            + ": the optimisation blew up, not a loss scaler skipping a step"
        )
    evidence: dict[str, Any] = {
        "first_bad_step": first.first_bad_step,
        "bad_points": bad,
        "nan": sum(s.nan for s in members),
        "pos_inf": sum(s.pos_inf for s in members),
        "neg_inf": sum(s.neg_inf for s in members),
        "permanent": first.permanent,
        "never_finite": first.never_finite,
        "recovered_step": first.recovered_step,
        "final_bad_step": first.final_bad_step,
    }
    if blow_up is not None:
        evidence.update(
            loss_blow_up_tag=blow_up.tag,
            loss_blow_up_step=blow_up.step,
            loss_blow_up_value=blow_up.value,
            loss_blow_up_factor=blow_up.factor if np.isfinite(blow_up.factor) else None,
            threshold_blow_up=params.blow_up_factor,
        )
    if len(members) == 1:
        evidence.update(
            tag=first.tag,
            points=first.points,
            last_finite=first.last_finite,
            last_finite_step=first.last_finite_step,
        )
    else:
        evidence.update(
            tags=tags,
            bad_points_by_tag={s.tag: s.bad for s in members},
            last_finite_by_tag={s.tag: s.last_finite for s in members},
        )
    return check.finding(
        ctx,
        tags=tags,
        steps=_step_range(members),
        message=message,
        evidence=evidence,
        severity=_severity(ctx, members, blow_up),
        confidence=Confidence.HIGH,
        advice=advice,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss that falls, then turns NaN for good at 70% of the run."""
    steps = np.arange(0, 3000, 10)
    values = 0.3 + 1.7 * np.exp(-steps / 600.0)
    values[210:] = np.nan
    return steps, values


CHECK = Check(
    code="N001",
    name="non-finite",
    title="NaN or infinite values",
    severity=Severity.ERROR,
    needs=(),
    params=Params,
    advice=(
        "Find the first bad step: lower the learning rate or add warm-up, clip gradients, guard "
        "log/division/sqrt in custom losses with an epsilon, check that batch for NaN or extreme "
        "inputs, use bf16 or a loss scaler with fp16, and locate the operation with "
        "torch.autograd.set_detect_anomaly(True)."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
