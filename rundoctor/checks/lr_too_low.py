"""The training loss creeps down in a slow straight line: the learning rate is too low.

What it detects
---------------
Either of two things.  A logged learning rate that never exceeds the floor of its optimizer
(``sgd_floor`` for SGD, ``adaptive_floor`` for Adam-like or unknown ones; the optimizer read
from the rate's tag, e.g. Lightning's ``lr-SGD``, or the run's hyper-parameters) under a loss
that moved less than ``max_drop``, or that fell further but in a straight line (no bend) and
still ends near chance: the cause is named from the log, a warning.  Or a
main training loss that falls by less than ``max_drop`` over the whole run, but falls
steadily and beyond its noise, and falls about as fast in the second half of the run as in
the first (no bend).  A healthy loss drops fast and then bends towards a floor; a loss that
moves in a slow straight line from the first step is limited by the size of its steps.
When a varying learning rate is logged (warm-up, decay) the halves and the trend are taken
against the learning rate spent (its integral over steps): under a rate too low the loss
falls in proportion to it, so a decay bends the curve in steps but not in rate spent.
When the training loss is too noisy to show any fall, the validation loss (a fixed set,
evaluated a few times) may show the crawl instead: info.  The largest logged learning rate
is quoted; at or above the usual rate of its optimizer (``ordinary_sgd``,
``ordinary_adaptive``) the rate is an unlikely cause (a task that generalises late creeps
too) and the finding is info.  Such a crawl is a warning only while the loss is still far
from any good level, near chance: above ``near_chance`` of ln C, or, with C unknown, a
classifier whose best accuracy stays at or below ``low_accuracy`` with a loss above ln 2.
A small rate under a loss already far below chance, or with nothing to say where chance is
(no class count, no accuracy: a language model, a regression), is info: fine-tuning a
pretrained model at 1e-5..1e-4 with Adam moves its loss little and in a straight line.  A
classifier that starts below ``good_start`` of ln C (ln 2
with C unknown) is a fine-tuned model with little left to learn: not reported.

Noise principle: "falls beyond its noise" is a robust trend (Theil-Sen on block medians)
whose error is widened by the effective sample size of its autocorrelated residuals (see
``checks/trend.py``); with under eight effective points (three epochs) the straight line is
ambiguous and the finding is info.

Why it matters
--------------
With a learning rate far too low the model does learn, just so slowly that the run ends
long before it gets anywhere: the compute is spent, the result looks like a bad model or a
bad idea, and the cause is one number.  Fine-tuning recipes copied between model sizes and
optimizers (an SGD rate used with Adam, a LoRA run at full-fine-tuning rates divided by
ten) are the usual source.

What to try
-----------
Run a short learning-rate range test (increase the rate exponentially over a few hundred
steps and pick about a tenth of the rate where the loss falls fastest), or try 3x and 10x
the current rate for a few hundred steps and keep the one whose loss falls fastest without
spiking.  Check the scheduler is not stuck in warm-up or starting from its final value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor import roles
from rundoctor.checks import measures, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role


@dataclass(frozen=True)
class Params:
    """Thresholds of ``lr-too-low``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    min_points: int = field(
        default=5, metadata={"help": "Finite training-loss points needed before judging."}
    )
    edge_fraction: float = field(
        default=0.1,
        metadata={"help": "Share of the points whose median is the level at each end."},
    )
    max_drop: float = field(
        default=0.2, metadata={"help": "A total relative fall below this is barely moving."}
    )
    min_linearity: float = field(
        default=0.5,
        metadata={"help": "Least ratio of the second half's rate of fall to the first's (no bend)."},
    )
    min_sigmas: float = field(
        default=3.0,
        metadata={"help": "Least total fall, in standard errors of a straight-line fit."},
    )
    sgd_floor: float = field(
        default=1e-4,
        metadata={"help": "A logged peak rate at or below this is tiny for plain SGD (momentum or not)."},
    )
    ordinary_sgd: float = field(
        default=1e-2,
        metadata={"help": "A logged peak rate at or above this is usual for SGD: a crawl under it is info."},
    )
    ordinary_adaptive: float = field(
        default=1e-3,
        metadata={
            "help": "A logged peak rate at or above this is usual for Adam-like or unknown "
            "optimizers: a crawl under it is info."
        },
    )
    good_start: float = field(
        default=0.5,
        metadata={
            "help": "A classifier whose loss starts below this fraction of ln C (ln 2 when C is "
            "unknown) has little left to learn: not reported."
        },
    )
    chance_margin: float = field(
        default=0.05,
        metadata={"help": "A validation loss within this fraction of ln C sits at chance: left to no-learning."},
    )
    adaptive_floor: float = field(
        default=1e-6,
        metadata={"help": "A logged peak rate at or below this is tiny for Adam-like or unknown optimizers."},
    )
    near_chance: float = field(
        default=0.5,
        metadata={
            "help": "A crawl is a warning only while the loss ends above this fraction of ln C "
            "(far from any good level); further below chance it is info."
        },
    )
    low_accuracy: float = field(
        default=0.5,
        metadata={
            "help": "With C unknown, a classifier whose best accuracy stays at or below this "
            "(and whose loss stays above ln 2) is still near chance."
        },
    )


# Defaults: healthy runs fall by 30-99% (slow fine-tunes of pretrained models 10-15%, with
# most of it early); under 20% with no bend is a crawl.  Real losses fall 3-100x slower in
# their second half than in their first (the few that bend less fell 40% or more); half as
# fast or more means no bend at all.  Three standard errors keeps a flat noisy loss
# (no-learning's business) out.


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding on the primary training loss: a slow straight-line fall, blamed on the
    logged learning rate itself when that rate is tiny."""
    loaded = measures.train_loss(ctx, params.min_points)
    if loaded is None:
        return
    tag, binned = loaded
    level, steps = binned.level, binned.steps
    span = float(steps[-1] - steps[0])
    start = trend.start_level(level, params.edge_fraction)
    if not (span > 0 and start > 0):
        return
    end = measures.edge_levels(level, params.edge_fraction)[1]
    drop = (start - end) / start
    tiny = tiny_rate(ctx, params)
    if tiny is not None and (
        drop < params.max_drop or _straight_near_chance(ctx, params, level, steps, end)
    ):
        yield _named_by_the_rate(check, ctx, params, tag, steps, start, end, drop, tiny)
        return
    if _good_start(ctx, params, start):
        return  # a classifier already far below any chance level: little left to learn
    curve = ctx.curve(tag).finite
    crawl = _crawl(ctx, params, level, steps, curve.steps, curve.values)
    witness = None
    if crawl is None and drop < params.max_drop and not _falls(ctx, curve.steps, curve.values, params):
        # A training loss too noisy to show a small fall: the validation loss, evaluated on a
        # fixed set, may show it (a few evaluations: info at most).
        witness = _validation_crawl(ctx, params)
        if witness is None:
            return
        tag, crawl = witness
    if crawl is None:
        return
    drop, start, end, first_rate, second_rate, fit, lr_time = crawl
    sigmas = -fit.sigmas
    axis = "the learning rate spent (cumulative)" if lr_time else "steps"
    message = (
        f"{tag} fell only {drop:.1%} over the run ({fmt(start)} -> {fmt(end)}, threshold "
        f"{params.max_drop:.0%}) in a straight line against {axis}: it still falls "
        f"{second_rate / first_rate:.0%} as fast in the second half as in the first "
        f"(no bend; threshold {params.min_linearity:.0%}), {min(sigmas, 999):.1f} standard errors "
        f"over {fit.effective:.0f} effective points"
    )
    if witness is not None:
        message += "; the training loss is too noisy to show this fall, the validation loss shows it"
    evidence: dict[str, Any] = {
        "tag": tag,
        "start_level": start,
        "end_level": end,
        "drop": drop,
        "first_half_rate": first_rate,
        "second_half_rate": second_rate,
        "rate_ratio": second_rate / first_rate,
        "standard_errors": min(sigmas, 1e6),
        "against_learning_rate_spent": lr_time,
        "threshold_drop": params.max_drop,
        "threshold_linearity": params.min_linearity,
    }
    peak = measures.peak_learning_rate(ctx, evidence)
    ordinary = _ordinary_rate(ctx, params, peak)
    if peak is not None:
        message += f"; the learning rate never exceeded {fmt(peak)}"
        if ordinary is not None:
            message += (
                f", a usual rate for {ordinary[0]} (at or above {fmt(ordinary[1])}): the crawl may "
                f"have another cause (a task that generalises late, a weak signal)"
            )
    # Evidence strength: few effective points (three epochs) leave the straight line
    # ambiguous, so the finding is info until the fall is several times its error; a logged
    # rate of the usual size makes the rate an unlikely cause; a fall only the validation
    # loss shows rests on a few evaluations.
    near, reference = _near_chance(ctx, params, end)
    evidence.update(near_chance=near, chance_reference=reference)
    if not near and witness is None:
        message += (
            f"; but the loss is not known to be near chance ({reference}): a small rate under a "
            f"loss already far from chance may be a fine-tune that has little left to learn"
        )
    short = fit.effective < 8
    weak = short or ordinary is not None or witness is not None or not near
    yield check.finding(
        ctx,
        tags=(tag,),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.INFO if weak else Severity.WARNING,
        confidence=Confidence.LOW if weak else Confidence.MEDIUM,
    )


Crawl = tuple[float, float, float, float, float, trend.Trend, bool]


def _crawl(
    ctx: RunContext,
    params: Params,
    level: np.ndarray,
    steps: np.ndarray,
    raw_steps: np.ndarray,
    raw_values: np.ndarray,
) -> Crawl | None:
    """(drop, start, end, first-half rate, second-half rate, trend, against LR time) when the
    curve falls by less than ``max_drop``, steadily beyond its noise and without a bend, else
    None.  Rates and the trend are taken against the learning rate spent when one is logged:
    under a rate too low the loss falls in proportion to it, so a warm-up or a decay bends
    the curve in steps but not in learning-rate time."""
    start = trend.start_level(level, params.edge_fraction)
    end = measures.edge_levels(level, params.edge_fraction)[1]
    if not start > 0:
        return None
    drop = (start - end) / start
    raw_x = _lr_time(ctx, raw_steps)
    halves = _halves(ctx, level, steps, against_rate=raw_x is not None)
    if halves is None:
        return None
    first_rate, second_rate, lr_time = halves
    if not (0 < drop < params.max_drop and first_rate > 0 and second_rate >= params.min_linearity * first_rate):
        return None  # not a small straight fall, whatever the trend: it is not taken
    if raw_x is not None and lr_time:
        fit = trend.trend(raw_x, raw_values)
    else:  # against steps, the trend of the whole curve is no-learning's too: a shared measurement
        fit = ctx.measure(trend.trend, raw_steps, raw_values)
    if fit is None or not -fit.sigmas >= params.min_sigmas:
        return None
    return drop, start, end, first_rate, second_rate, fit, lr_time


def _halves(
    ctx: RunContext, level: np.ndarray, steps: np.ndarray, against_rate: bool = True
) -> tuple[float, float, bool] | None:
    """(first-half rate of fall, second-half rate, against LR time): least-squares slopes of
    each half (the middle point belongs to both), against the learning rate spent when a
    varying rate is logged, else against steps; None with under two points a half."""
    x = _lr_time(ctx, steps) if against_rate else None
    lr_time = x is not None
    if x is None:
        x = steps.astype(np.float64)
    middle = x[0] + (x[-1] - x[0]) / 2
    first, second = x <= middle, x >= middle
    if first.sum() < 2 or second.sum() < 2:
        return None
    return -measures.slope(x[first], level[first]), -measures.slope(x[second], level[second]), lr_time


def _straight_near_chance(
    ctx: RunContext, params: Params, level: np.ndarray, steps: np.ndarray, end: float
) -> bool:
    """Whether a loss that fell more than ``max_drop`` under a tiny rate still falls in a
    straight line (no bend: the step size limits it) and ends near chance: a rate-limited
    loss far from any good level, however far it has come."""
    halves = _halves(ctx, level, steps)
    if halves is None:
        return False
    first_rate, second_rate, _ = halves
    return (
        first_rate > 0
        and second_rate >= params.min_linearity * first_rate
        and _near_chance(ctx, params, end)[0]
    )


def _near_chance(ctx: RunContext, params: Params, end: float) -> tuple[bool, str]:
    """(whether a loss ending at ``end`` is still near chance, the reference used).

    With C known: above ``near_chance`` of ln C.  With C unknown, a classifier (an accuracy
    is logged) whose best accuracy stayed at or below ``low_accuracy`` and whose loss is
    above ln 2, the chance loss of the fewest classes.  Without either nothing says where
    chance is (a language model's or a regression's loss): not near chance."""
    classes = ctx.num_classes
    if classes is not None and classes.value >= 2:
        chance = math.log(classes.value)
        return end >= params.near_chance * chance, (
            f"it ends at {end / chance:.0%} of ln {classes.value} = {fmt(chance)}, threshold "
            f"{params.near_chance:.0%}; C from {classes.source}"
        )
    best = _best_accuracy(ctx)
    if best is None:
        return False, "no class count and no accuracy logged"
    near = end > math.log(2.0) and best <= params.low_accuracy
    return near, (
        f"C unknown; best accuracy {fmt(best, 3)} (threshold {params.low_accuracy:.0%}), loss "
        f"{fmt(end)} {'above' if end > math.log(2.0) else 'below'} ln 2"
    )


def _best_accuracy(ctx: RunContext) -> float | None:
    """The highest smoothed value of any logged accuracy (fractions), or None."""
    best = None
    for tag in ctx.tags(Role.TRAIN_ACCURACY, Role.VAL_ACCURACY):
        _, values = measures.accuracy_levels(ctx, tag)
        if values.size == 0:
            continue
        smooth = ctx.measure(measures.ema, values, measures.window(values.size, 0.1))
        top = float(np.max(smooth))
        best = top if best is None else max(best, top)
    return best


def _falls(ctx: RunContext, steps: np.ndarray, values: np.ndarray, params: Params) -> bool:
    """Whether a curve of ``ctx``'s robust trend shows a fall of ``min_sigmas`` standard errors."""
    fit = ctx.measure(trend.trend, steps, values)
    return fit is not None and -fit.sigmas >= params.min_sigmas


def _validation_crawl(ctx: RunContext, params: Params) -> tuple[str, Crawl] | None:
    """The crawl of the validation loss (at least ``min_points`` evaluations), or None."""
    tag = ctx.primary(Role.VAL_LOSS)
    if tag is None:
        return None
    curve = ctx.curve(tag).finite
    if len(curve) < params.min_points:
        return None
    classes = ctx.num_classes
    if classes is not None and classes.value >= 2:
        chance = math.log(classes.value)
        if abs(measures.median(curve.values) - chance) <= params.chance_margin * chance:
            return None  # a loss at ln C predicts a uniform guess: no-learning's business
    crawl = _crawl(ctx, params, curve.values, curve.steps, curve.steps, curve.values)
    return None if crawl is None else (tag, crawl)


def _lr_time(ctx: RunContext, steps: np.ndarray) -> np.ndarray | None:
    """The learning rate spent up to each step (the integral of the logged rate over steps),
    or None when no usable rate is logged or it is constant (then steps say the same)."""
    rate = measures.learning_rate(ctx)
    if rate is None or len(steps) < 2:
        return None
    _, rate_steps, rates = rate
    at = measures.value_at(rate_steps, rates, np.asarray(steps, dtype=np.float64))
    if not (np.all(np.isfinite(at)) and at.min() >= 0 and at.max() > 0) or at.min() == at.max():
        return None
    widths = np.diff(np.asarray(steps, dtype=np.float64))
    spent = np.concatenate(([0.0], np.cumsum(widths * (at[1:] + at[:-1]) / 2.0)))
    return spent if spent[-1] > 0 else None


def _optimizer(ctx: RunContext, rate_tag: str) -> str:
    """"SGD", "adaptive" or "unknown", from the rate's tag (Lightning's ``lr-SGD``,
    ``lr-AdamW``) or the run's hyper-parameters (``optimizer: SGD``)."""
    hints = [value for key, value in ctx.run.metadata.items() if "optim" in key.lower()]
    return roles.optimizer_named([rate_tag, *hints])


def _ordinary_rate(ctx: RunContext, params: Params, peak: float | None) -> tuple[str, float] | None:
    """(optimizer, bound) when the logged peak rate is at or above the usual rate of its
    optimizer (``ordinary_sgd``, ``ordinary_adaptive`` for Adam-like or unknown), else None."""
    rate = measures.learning_rate(ctx)
    if rate is None or peak is None:
        return None
    optimizer = _optimizer(ctx, rate[0])
    bound = params.ordinary_sgd if optimizer == "SGD" else params.ordinary_adaptive
    kind = {"SGD": "SGD", "adaptive": "an adaptive optimizer", "unknown": "any optimizer"}[optimizer]
    return (kind, bound) if peak >= bound else None


def _good_start(ctx: RunContext, params: Params, start: float) -> bool:
    """A classifier (an accuracy is logged) whose loss starts below ``good_start`` of ln C, or
    of ln 2 with C unknown: a fine-tuned model with little left to learn, not a slow one."""
    if not ctx.tags(Role.TRAIN_ACCURACY, Role.VAL_ACCURACY):
        return False
    classes = ctx.num_classes
    chance = math.log(classes.value) if classes is not None and classes.value >= 2 else math.log(2.0)
    return start < params.good_start * chance


def tiny_rate(ctx: RunContext, params: Params) -> tuple[str, float, str, float] | None:
    """(lr tag, peak rate, optimizer, floor) when the logged rate never exceeds the floor of
    its optimizer, else None.  The optimizer comes from the rate's tag (Lightning's
    ``lr-SGD``, ``lr-AdamW``) or the run's hyper-parameters (``optimizer: SGD``)."""
    rate = measures.learning_rate(ctx)
    if rate is None:
        return None
    tag, _, rates = rate
    peak = float(rates.max())
    if not peak > 0:
        return None  # zero: nothing is trained at all (no-learning says so)
    optimizer = _optimizer(ctx, tag)
    floor = params.sgd_floor if optimizer == "SGD" else params.adaptive_floor
    return (tag, peak, optimizer, floor) if peak <= floor else None


def _named_by_the_rate(
    check: Check[Params],
    ctx: RunContext,
    params: Params,
    tag: str,
    steps: np.ndarray,
    start: float,
    end: float,
    drop: float,
    tiny: tuple[str, float, str, float],
) -> Finding:
    rate_tag, peak, optimizer, floor = tiny
    kind = {"SGD": "SGD", "adaptive": "an adaptive optimizer", "unknown": "any optimizer"}[optimizer]
    if drop < params.max_drop:
        moved = f"moved only {drop:+.1%} over the run ({fmt(start)} -> {fmt(end)}, threshold {params.max_drop:.0%})"
    else:
        moved = (
            f"fell {drop:.1%} over the run ({fmt(start)} -> {fmt(end)}) in a straight line, still "
            f"near chance ({_near_chance(ctx, params, end)[1]})"
        )
    message = (
        f"{tag} {moved} while the logged learning rate ({rate_tag}) never exceeded "
        f"{fmt(peak)}, at or below {fmt(floor)}, tiny for {kind}: the learning rate is too low"
    )
    evidence: dict[str, Any] = {
        "tag": tag,
        "start_level": start,
        "end_level": end,
        "drop": drop,
        "lr_tag": rate_tag,
        "lr_max": peak,
        "optimizer": optimizer,
        "threshold_lr": floor,
        "threshold_drop": params.max_drop,
    }
    return check.finding(
        ctx,
        tags=(tag, rate_tag),
        steps=(steps[0], steps[-1]),
        message=message,
        evidence=evidence,
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A loss creeping down in a straight line, 2.0 -> 1.85, with a little noise."""
    steps = np.arange(0, 5000, 25)
    return steps, np.linspace(2.0, 1.85, steps.size) + 0.004 * np.sin(steps / 7.0)


CHECK = Check(
    code="C002",
    name="lr-too-low",
    title="Learning rate too low",
    severity=Severity.WARNING,
    needs=(Role.TRAIN_LOSS,),
    params=Params,
    advice=(
        "Raise the learning rate: try 3x and 10x for a few hundred steps (or run a learning-rate "
        "range test) and keep the largest that falls fastest without spiking; check the "
        "scheduler is not stuck in warm-up."
    ),
    detect=detect,
    doc=__doc__ or "",
    example=_example,
)
