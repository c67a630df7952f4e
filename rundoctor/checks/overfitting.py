"""Overfitting: the validation loss turns up, or stops improving, while the training loss falls.

What it detects
---------------
The validation loss reached its minimum and then either rose well above it (by more than
``rise_threshold`` of the minimum and more than ``noise_sigmas`` times the noise of a
smoothed level) while the training loss kept falling (by ``min_train_drop``), or it has not
improved for the last ``stall_fraction`` of the evaluations while the training loss fell by
``stall_train_drop`` and ended ``min_gap_ratio`` times below it.  Either way the training
loss must fall by more than ``train_noise_sigmas`` times its own noise.  Levels are robust:
the minimum is taken on a rolling median and the end level is the median of the last
evaluations, so a transient spike, early or late, is not overfitting.  Validation and
training losses are compared by step (validation per epoch, training per step); a
validation series on an axis of its own (epochs against iterations) is stretched onto the
training steps.

Severity follows the strength of the evidence.  A rise is a warning when it is large
(``strong_factor`` times the rise threshold and twice the noise sigmas: +80% over five or
six evaluations with the best one first is caught) or persistent (``persist_fraction`` of
the evaluations, at least three, after the best one); a mild rise over the last few
evaluations of a run, what early stopping is for, is an informational note.  A stall is a
warning when it has lasted half the run and at least ``min_stall_evaluations``
evaluations, or when the validation loss already creeps up clearly (half the rise threshold
and ``noise_sigmas``, or half the rise threshold while the validation metrics fell
``metric_drop`` from their best); a mild creep of a few percent at 2-3 noise sigmas at the
end of a run, the metrics holding, is what early stopping and keeping the best checkpoint
handle, and a note; a stall
flat at its floor that is recent, or short in evaluations, is a note: on a loss at a noisy
floor the best evaluation falls anywhere, so a best early in a dozen evaluations (a resumed
run, a short run) is chance as often as not.  Dropout runs (training loss above the
validation loss) and label-noise runs (validation loss flat at its floor) show neither
signature: the training loss does not fall away from a validation loss that turned up.
Overfitting is progressive: a validation loss that rose past ``rise_threshold`` but took
``jump_share`` or more of that rise in the one step after its best evaluation and has not risen since (its straight-line trend
over the later evaluations is flat or falling) changed level once, while the training loss
fell on: the evaluation changed, or a few examples turned confidently wrong at once (the
loss jumped 6x in one epoch while the accuracy rose).  That is a note, not a warning.

Noise principle: the rise is measured in noise sigmas of a rolling-median level (MAD of
point-to-point changes), and the training loss must fall by ``train_noise_sigmas`` of a
level whose noise comes from second differences, so a steep curve is not noise and a
per-step loss with heavy-tailed batches (medians, not means) cannot fake a fall.

Every total validation loss is judged against the main training loss.  A run without one
(YOLO) has each validation term judged against the training term of the same name after
the split (``val/cls_loss`` against ``train/cls_loss``), or against the main training loss
when none matches (``eval_g0_loss``).  Such a finding is a low-confidence note unless the
sum of the validation terms also rose past the threshold or the validation metrics (mAP,
accuracy; median over them) fell ``metric_drop`` below their best: one small term creeping
up while the metrics hold is a mild, late overfit of one head, not a reason to stop.

Why it matters
--------------
Past the best step the model memorises the training set: every further step costs
generalisation and compute, and the last checkpoint is worse than an earlier one.

What to try
-----------
Keep the checkpoint of the best step (early stopping on the validation loss, with a
patience of a few evaluations); then add data or augmentation and regularise: weight decay,
dropout, label smoothing, or a smaller model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor import roles
from rundoctor.checks import measures, trend
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity, fmt
from rundoctor.roles import Role

# A median of w Gaussian points is sqrt(pi / 2) times noisier than their mean.
MEDIAN_NOISE = float(np.sqrt(np.pi / 2))


@dataclass(frozen=True)
class Params:
    """Thresholds of ``overfitting``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    # 10%: validation noise on real runs is 1-5% of the loss (R29, R30), so a 10% rise of the
    # smoothed level is a change of regime; overfit real runs rise 18-170% (R27, R33, R41).
    rise_threshold: float = field(
        default=0.10, metadata={"help": "Rise of the validation loss above its minimum, as a fraction of it."}
    )
    # 5 sigma of a smoothed level: the minimum picks the luckiest stretch of a noisy curve, so
    # on pure noise the end level sits 4.6-5 level sigmas above it in 1% of curves
    # (simulated, 55 to 2,000 points).
    noise_sigmas: float = field(
        default=5.0,
        metadata={
            "help": "The rise must also exceed this many noise sigmas of a smoothed level "
            "(point-to-point noise x 1.25 / sqrt(window))."
        },
    )
    # 4 sigma: two levels of pure noise differ by that much in 0.5% of curves; the training
    # losses of the overfit real runs fall 5.7 (R27, R30) to 1,500 sigma.
    train_noise_sigmas: float = field(
        default=4.0,
        metadata={
            "help": "The training-loss drop must also exceed this many noise sigmas of a smoothed level."
        },
    )
    # 5%: the training loss must still be going down, not just flat with noise.
    min_train_drop: float = field(
        default=0.05,
        metadata={"help": "Training-loss drop after the best step that counts as still falling."},
    )
    # A third of the evaluations without a new best is beyond any early-stopping patience.
    stall_fraction: float = field(
        default=0.30,
        metadata={"help": "Share of evaluations after the best one for a stalled validation loss."},
    )
    # 25%: healthy runs whose validation loss flattens (R05, R18) see the training loss fall
    # 13-18% over the flat stretch; overfit ones (R29, R30) 27-30%.
    stall_train_drop: float = field(
        default=0.25,
        metadata={"help": "Training-loss drop after the best step that makes a stall overfitting."},
    )
    # 1.5x: regularised healthy runs end with the validation loss within 1.0-1.25x of training.
    min_gap_ratio: float = field(
        default=1.5, metadata={"help": "Final validation/training loss ratio required for a stall."}
    )
    # 5%: metrics of healthy detection runs end within 1% of their best (R16, R18, R20, by
    # median over precision, recall and mAP); the overfit R22 ends 6.5% below.
    metric_drop: float = field(
        default=0.05,
        metadata={
            "help": "Median fall of the validation metrics below their best that confirms a rising loss term, or a validation loss creeping up in a stall."
        },
    )
    # A quarter of the evaluations (at least three) after the best one: beyond the patience
    # of an ordinary early stopping, so the rise is a regime, not the last few evaluations.
    persist_fraction: float = field(
        default=0.25,
        metadata={"help": "Share of evaluations after the best one that makes a rise persistent (a warning)."},
    )
    # 3x the rise threshold and 2x the noise sigmas: +30% over a 10-sigma change is
    # overwhelming even with only five or six evaluations.
    strong_factor: float = field(
        default=3.0,
        metadata={"help": "A rise this many times rise_threshold (and 2x noise_sigmas) is a warning at once."},
    )
    # Twenty evaluations: on a validation loss flat at a noisy floor the best evaluation falls
    # anywhere, so with a few dozen evaluations one early in the run is luck a good part of
    # the time, and a memorising model whose validation loss merely stopped improving (a
    # training loss 30x below it) is ordinary on small data; a flat stall that outlasts twenty
    # evaluations of a falling training loss is past any early-stopping patience (3-10) and a
    # regime (the overfit real run R29 stalls 57 of 100 evaluations).
    min_stall_evaluations: int = field(
        default=20,
        metadata={
            "help": "Evaluations since the best one that a flat (not creeping) stall needs, besides "
            "half the run, to be a warning."
        },
    )
    # Half the rise in the one step after the best, then a trend that does not rise: overfit
    # runs whose loss jumps right after its best (53-132% of the rise in that step) keep
    # rising 2.7-14% after it; a change of level (a loss that jumped 6x in one epoch while
    # the accuracy rose, then fell 2-9%) stays level or falls back.
    jump_share: float = field(
        default=0.5,
        metadata={
            "help": "A rise that took at least this share in the step after the best evaluation "
            "and has not risen since (straight-line trend <= 0) is a note, not overfitting."
        },
    )
    smooth_fraction: float = field(
        default=0.10, metadata={"help": "Rolling-median window, as a fraction of the evaluations."}
    )
    # Five evaluations: a minimum, something after it, and a tail of three to take a median of.
    min_points: int = field(default=5, metadata={"help": "Fewest validation points to judge a curve."})


@dataclass(frozen=True)
class Measured:
    """One validation loss against its training loss, and which signature (if any) it shows."""

    val: str
    train: str
    component: bool
    rescaled: bool  # validation steps stretched onto the training axis
    evaluations: int
    after_best: int  # evaluations after the best one
    best_step: int
    best_value: float  # the raw minimum: where early stopping would have stopped
    min_level: float  # the smoothed minimum the rise is measured from
    end_level: float
    last_step: int
    rise: float
    rise_sigmas: float
    train_at_best: float
    train_at_end: float
    train_drop: float
    gap_ratio: float
    # Read only when the pair fires (``kind`` set), NaN otherwise:
    jump_share: float  # share of the rise from the best to the end taken by the next evaluation
    after_jump: float  # relative trend of the evaluations after that one (NaN: too few)
    kind: str | None  # "rise", "stall" or None

    def summary(self) -> dict[str, object]:
        """The pair's entry in the finding's ``tags`` evidence, percentages rounded to 0.01."""
        return {
            "signature": self.kind,
            "train_tag": self.train,
            "best_step": self.best_step,
            "rise_pct": round(100 * self.rise, 2),
            "train_drop_pct": round(100 * self.train_drop, 2),
        }


def level_noise(values: np.ndarray, width: int) -> float:
    """Noise of a median of ``width`` points: the point noise times sqrt(pi / 2) / sqrt(width)."""
    return float(measures.noise_sigma(values) * MEDIAN_NOISE / np.sqrt(width))


def trend_free_noise(values: np.ndarray, width: int) -> float:
    """Like :func:`level_noise`, from second differences: a steep, curving loss is not noise.

    First differences of a falling curve change along it (fast at first, slow later), which
    inflates their spread; second differences cancel that, and for white noise of sigma
    they have a standard deviation of sqrt(6) sigma.
    """
    if values.size < 4:
        return 0.0
    second = np.diff(values, 2)
    mad = measures.median(np.abs(second - measures.median(second)))
    return float(mad * measures.MAD_TO_SIGMA / np.sqrt(6.0) * MEDIAN_NOISE / np.sqrt(width))


def in_sigmas(change: float, noise: float) -> float:
    """``change`` in units of ``noise``; with no noise, any rise is infinitely many sigmas and no
    rise is 0."""
    return change / noise if noise > 0 else float("inf") if change > 0 else 0.0


def _rise(values: np.ndarray, params: Params) -> tuple[float, float, float, float]:
    """(smoothed minimum, end level, relative rise, rise in level-noise sigmas) of a finite curve."""
    width = measures.window(values.size, params.smooth_fraction)
    minimum = float(measures.rolling_median(values, width).min())
    _, end = measures.edge_levels(values, params.smooth_fraction)
    sigmas = in_sigmas(end - minimum, level_noise(values, width))
    return minimum, end, (end - minimum) / abs(minimum), sigmas


def measure(ctx: RunContext, pair: measures.LossPair, params: Params) -> Measured | None:
    """How one validation loss rose or stalled against its training loss; None when either curve is
    too short or the validation loss is not positive (a relative rise needs a positive minimum)."""
    val = ctx.curve(pair.val).finite
    train = ctx.curve(pair.train).finite
    if len(val) < params.min_points or len(train) < params.min_points or val.values.min() <= 0:
        return None  # a relative rise needs a positive minimum
    same_axis = ctx.run.axis_of(pair.val) == ctx.run.axis_of(pair.train)
    at = measures.steps_on_axis_of(val.steps, train.steps, same_axis)
    best = int(np.argmin(val.values))
    minimum, end, rise, sigmas = _rise(val.values, params)
    # Both training levels are read the same way (smoothed, at the steps of validation
    # points), so the half-epoch lag of epoch-mean training losses cancels out.
    train_fraction = params.smooth_fraction / 2
    train_best, train_end = measures.smoothed_at(ctx, pair.train, at[[best, -1]], train_fraction)
    drop = (train_best - train_end) / abs(train_best) if train_best != 0 else 0.0
    falling = (
        in_sigmas(
            train_best - train_end, trend_free_noise(train.values, measures.window(len(train), train_fraction))
        )
        >= params.train_noise_sigmas
    )
    gap = end / train_end if train_end > 0 else float("nan")
    after = len(val) - 1 - best
    kind = None
    if (
        falling
        and drop >= params.min_train_drop
        and after >= 2
        and (rise >= params.rise_threshold and sigmas >= params.noise_sigmas)
    ):
        kind = "rise"
    elif (
        falling
        and drop >= params.stall_train_drop
        and after >= params.stall_fraction * len(val)
        and (end >= val.values[best] and gap >= params.min_gap_ratio)
    ):
        kind = "stall"
    # Only a pair that fires is described (its jump read): the trend is not taken for the others.
    share, after_jump = _jump(val.steps, val.values, best, end) if kind is not None else (math.nan, math.nan)
    return Measured(
        val=pair.val,
        train=pair.train,
        component=pair.component,
        rescaled=bool(at[0] != val.steps[0] or at[-1] != val.steps[-1]),
        evaluations=len(val),
        after_best=after,
        best_step=int(val.steps[best]),
        best_value=float(val.values[best]),
        min_level=minimum,
        end_level=end,
        last_step=int(val.steps[-1]),
        rise=rise,
        rise_sigmas=float(sigmas),
        train_at_best=float(train_best),
        train_at_end=float(train_end),
        train_drop=float(drop),
        gap_ratio=float(gap),
        jump_share=share,
        after_jump=after_jump,
        kind=kind,
    )


def _jump(steps: np.ndarray, values: np.ndarray, best: int, end: float) -> tuple[float, float]:
    """(share of the rise from the best evaluation to the end level taken by the very next
    evaluation, relative Theil-Sen change of the evaluations after that one).

    Overfitting is progressive: past its best the validation loss goes on rising while the
    training loss goes on falling.  A loss that stepped up once between two evaluations and
    has not risen since changed level (the evaluation changed, a few examples turned
    confidently wrong at once); NaN for the trend when fewer than three evaluations follow.
    """
    rise = end - float(values[best])
    if best + 1 >= values.size or rise <= 0:
        return float("nan"), float("nan")
    share = float(values[best + 1] - values[best]) / rise
    fit = trend.trend(steps[best + 1 :], values[best + 1 :]) if values.size - best - 1 >= 3 else None
    return share, (fit.relative if fit is not None else float("nan"))


def summed_rise(ctx: RunContext, tags: list[str], params: Params) -> tuple[float, float]:
    """(rise, rise in sigmas) of the sum of validation terms, over the steps all of them share."""
    curves = [ctx.curve(tag) for tag in tags]
    shared = curves[0].steps
    for curve in curves[1:]:
        shared = np.intersect1d(shared, curve.steps, assume_unique=True)  # steps of a by-step curve
    total = np.zeros(shared.size)
    for curve in curves:
        total += curve.values[np.searchsorted(curve.steps, shared)]
    total = total[np.isfinite(total)]
    if total.size < params.min_points or total.min() <= 0:
        return float("nan"), float("nan")
    _, _, rise, sigmas = _rise(total, params)
    return rise, sigmas


def metric_fall(ctx: RunContext, params: Params) -> tuple[float, dict[str, float]]:
    """Median relative fall of the validation metrics from their smoothed best to their end."""
    falls: dict[str, float] = {}
    for tag in ctx.tags(Role.VAL_ACCURACY, Role.VAL_METRIC):
        values = ctx.curve(tag).finite.values
        if values.size < params.min_points:
            continue
        sign = 1.0 if roles.higher_is_better(tag) else -1.0
        smooth = sign * measures.rolling_median(values, measures.window(values.size, params.smooth_fraction))
        best = float(smooth.max())
        _, end = measures.edge_levels(sign * values, params.smooth_fraction)
        if best != 0:
            falls[tag] = round((best - end) / abs(best), 4)
    return (measures.median(list(falls.values())) if falls else float("nan")), falls


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding for the run, led by the strongest validation/training loss pair."""
    measured = [m for m in (measure(ctx, pair, params) for pair in measures.loss_pairs(ctx)) if m is not None]
    firing = [m for m in measured if m.kind is not None]
    if not firing:
        return
    head = max(firing, key=lambda m: (m.kind == "rise", not m.rescaled, m.rise, m.train_drop))
    fall, falls = metric_fall(ctx, params)
    severity, confidence, strength = _strength(head, fall, params)
    evidence: dict[str, object] = {
        "val_tag": head.val,
        "train_tag": head.train,
        "signature": head.kind,
        "best_step": head.best_step,
        "best_val_loss": head.best_value,
        "val_min_smoothed": head.min_level,
        "val_end": head.end_level,
        "val_rise_pct": round(100 * head.rise, 2),
        "val_rise_noise_sigmas": _rounded(head.rise_sigmas, 2),
        "train_at_best": head.train_at_best,
        "train_at_end": head.train_at_end,
        "train_drop_pct": round(100 * head.train_drop, 2),
        "jump_share": _rounded(head.jump_share, 3),
        "after_jump_change_pct": _rounded(100 * head.after_jump, 2),
        "val_train_gap_ratio": _rounded(head.gap_ratio, 3),
        "evaluations": head.evaluations,
        "evaluations_after_best": head.after_best,
        "val_steps_rescaled": head.rescaled,
        "val_metric_fall_pct": _rounded(100 * fall, 2),
        "val_metric_falls": falls,
        "rise_threshold_pct": 100 * params.rise_threshold,
        "noise_sigmas_threshold": params.noise_sigmas,
        "strength": strength,
        "tags": {m.val: m.summary() for m in firing},
    }
    if head.component:
        rise, sigmas = summed_rise(ctx, [m.val for m in measured], params)
        evidence["summed_val_terms_rise_pct"] = _rounded(100 * rise, 2)
        confirmed = (
            rise >= params.rise_threshold and sigmas >= params.noise_sigmas
        ) or fall >= params.metric_drop
        if not confirmed:
            severity, confidence = Severity.INFO, Confidence.LOW
    yield check.finding(
        ctx,
        tags=[head.val, head.train, *(m.val for m in firing if m is not head)],
        steps=(head.best_step, head.last_step),
        message=_message(head, len(firing) - 1, params) + _jump_note(head, strength, params),
        evidence=evidence,
        severity=severity,
        confidence=confidence,
        advice=(
            f"Keep the checkpoint of step {head.best_step:,} (early stopping on {head.val} with a patience "
            "of a few evaluations); then add data or augmentation and regularise: weight decay, dropout, "
            "label smoothing, or a smaller model."
        ),
    )


def _strength(head: Measured, metric_fall: float, params: Params) -> tuple[Severity, Confidence, str]:
    """Severity and confidence from the strength of the evidence, and why.

    A rise is a warning when it is large against the noise (``strong_factor`` times both
    thresholds) or has persisted (``persist_fraction`` of the evaluations, at least three,
    since the best one); a mild rise over the last few evaluations is what early stopping
    is for, and only a note.  A stall is a warning when it has lasted half the run and
    ``min_stall_evaluations``, or when the validation loss already creeps up clearly (half the
    rise threshold and ``noise_sigmas``, or half the rise threshold while the validation metrics
    fell ``metric_drop`` from their best).  Either is only a note when the loss rose past
    ``rise_threshold``, took ``jump_share`` of that rise in the one step after its best and
    has not risen since.
    """
    severity, confidence, strength = _evidence_strength(head, metric_fall, params)
    if (
        severity is Severity.WARNING
        and head.rise >= params.rise_threshold
        and head.jump_share >= params.jump_share
        and head.after_jump <= 0
    ):
        # A rise taken in one step up, then level or falling while the training loss fell
        # on: not the progressive rise of memorisation, whatever the size of the step.  (A
        # flat stall has no rise to share out: its best is a lucky evaluation at the floor.)
        return Severity.INFO, Confidence.LOW, "one jump, not rising since"
    return severity, confidence, strength


def _evidence_strength(head: Measured, metric_fall: float, params: Params) -> tuple[Severity, Confidence, str]:
    persisted = head.after_best >= max(3, params.persist_fraction * head.evaluations)
    if head.kind == "rise":
        strong = (
            head.rise >= params.strong_factor * params.rise_threshold
            and head.rise_sigmas >= 2 * params.noise_sigmas
        )
        if strong and persisted:
            return Severity.WARNING, Confidence.HIGH, "large and persistent"
        if strong:
            return Severity.WARNING, Confidence.MEDIUM, "large"
        if persisted:
            return Severity.WARNING, Confidence.MEDIUM, "persistent"
        return Severity.INFO, Confidence.LOW, "mild and recent"
    if head.after_best >= max(params.min_stall_evaluations, 0.5 * head.evaluations):
        return Severity.WARNING, Confidence.MEDIUM, "stalled for half the run or more"
    if head.rise >= params.rise_threshold / 2 and head.rise_sigmas >= params.noise_sigmas:
        # Not flat at a floor (label noise): already creeping up far beyond its noise.  A
        # creep of a few percent at 2-3 sigma (+7.8% at 2.2, +8.5% at 2.35 sigma) is what
        # early stopping and keeping the best checkpoint are for: a note, not a warning.
        return Severity.WARNING, Confidence.MEDIUM, "stalled and creeping up"
    if head.rise >= params.rise_threshold / 2 and metric_fall >= params.metric_drop:
        # Two signs apart: the loss creeps up (its few evaluations hold its noise estimate
        # high) and the validation metric has lost what it gained while the training loss
        # fell on.  That is memorisation showing, not a floor.
        return Severity.WARNING, Confidence.MEDIUM, "stalled and creeping up, the validation metric falling"
    if head.rise >= params.rise_threshold / 2:
        return Severity.INFO, Confidence.LOW, "stalled, creeping up mildly"
    return Severity.INFO, Confidence.LOW, "stalled recently"


def _rounded(value: float, digits: int) -> float | None:
    """A number for the evidence; None where it is undefined (no noise, no metric)."""
    return round(float(value), digits) if np.isfinite(value) else None


def _message(head: Measured, others: int, params: Params) -> str:
    more = f"; {others} more validation loss{'es' if others > 1 else ''} likewise" if others else ""
    if head.kind == "rise":
        return (
            f"{head.val} rose {head.rise:.0%} above its minimum {fmt(head.min_level)} "
            f"(best {fmt(head.best_value)} at step {head.best_step:,}) while {head.train} fell "
            f"{head.train_drop:.0%} (threshold {params.rise_threshold:.0%}){more}"
        )
    return (
        f"{head.val} has not improved since step {head.best_step:,} (best {fmt(head.best_value)}, "
        f"{head.after_best} of {head.evaluations} evaluations ago) while {head.train} fell "
        f"{head.train_drop:.0%} and ended {head.gap_ratio:.1f}x below it (thresholds: train drop "
        f"{params.stall_train_drop:.0%}, gap {params.min_gap_ratio:g}x){more}"
    )


def _jump_note(head: Measured, strength: str, params: Params) -> str:
    if not strength.startswith("one jump"):
        return ""
    return (
        f"; but {head.jump_share:.0%} of that rise came in the one step after the best evaluation "
        f"(threshold {params.jump_share:.0%}) and the evaluations since changed "
        f"{head.after_jump:+.1%}: a change of level, not a validation loss that keeps rising as "
        f"the training loss falls (a note)"
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A validation loss that bottoms out a third of the way in and climbs back."""
    epochs = np.arange(50)
    progress = epochs / 49
    return epochs, 0.7 + 1.5 * np.exp(-progress / 0.08) + 1.2 * np.clip(progress - 0.3, 0.0, None)


CHECK = Check(
    code="G001",
    name="overfitting",
    title="Validation loss turns up while training loss falls",
    severity=Severity.WARNING,
    needs=((Role.TRAIN_LOSS, Role.LOSS_COMPONENT), (Role.VAL_LOSS, Role.VAL_LOSS_COMPONENT)),
    params=Params,
    advice=(
        "Keep the best checkpoint (early stopping on the validation loss); add data or augmentation; "
        "regularise: weight decay, dropout, label smoothing, or a smaller model."
    ),
    detect=detect,
    doc=__doc__,
    example=_example,
)
