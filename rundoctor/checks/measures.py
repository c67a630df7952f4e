"""Vectorised curve measurements shared by the checks.

Real curves are noisy, logged at uneven steps, and of any length from 3 to millions of
points.  Windows are therefore a fraction of the number of points (with a floor), and
noise is measured robustly (median absolute deviation of step-to-step changes), so one
threshold works on a 30-point epoch curve and a 2M-point step curve alike.  Everything
here is O(n) or O(n log n) numpy; no Python loop per point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import bottleneck
import numpy as np

from rundoctor import roles
from rundoctor.checks.medians import distinct as distinct
from rundoctor.checks.medians import median as median
from rundoctor.checks.medians import quantile as quantile
from rundoctor.checks.medians import row_medians as row_medians
from rundoctor.roles import Role

if TYPE_CHECKING:
    from rundoctor.checks.base import RunContext

# 1.4826 turns a median absolute deviation into a standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826


# --- windows, smoothing and noise (every check) ---------------------------------------------


def window(n: int, fraction: float, minimum: int = 3) -> int:
    """A window of ``fraction`` of ``n`` points, at least ``minimum`` and at most ``n``."""
    return int(max(1, min(n, max(minimum, round(n * fraction)))))


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average, bias-corrected like TensorBoard's smoothing (pandas'
    ``ewm(span, adjust=True, ignore_na=True)``); a NaN repeats the last average.

    Written in numpy rather than with pandas: importing pandas costs ~0.4 s, more than all
    the checks take on a 2M-point run.  Each point's weighted sum is a cumulative sum scaled
    by ``decay**-k``, restarted every ``chunk`` points so the scale never overflows.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or span <= 1:
        return values.copy()
    decay = 1.0 - 2.0 / (span + 1.0)
    present = ~np.isnan(values)
    points = values[present]
    smooth = np.empty(points.size)
    chunk = max(1, int(600.0 / -math.log(decay)))  # decay**-chunk stays below e**600
    carried_sum = carried_weight = 0.0
    for start in range(0, points.size, chunk):  # a handful of chunks, not a loop per point
        part = points[start : start + chunk]
        k = np.arange(part.size, dtype=np.float64)
        rising, falling = decay**-k, decay**k
        sums, weights = np.cumsum(part * rising), np.cumsum(rising)
        if start == 0:  # nothing carried in: the carried terms are all +0.0
            smooth[: part.size] = (sums * falling + 0.0) / (weights * falling + 0.0)
        else:
            carry = decay ** (k + 1.0)
            smooth[start : start + part.size] = (sums * falling + carried_sum * carry) / (
                weights * falling + carried_weight * carry
            )
        last, through = decay ** (part.size - 1.0), decay**part.size
        carried_sum = sums[-1] * last + carried_sum * through
        carried_weight = weights[-1] * last + carried_weight * through
    if points.size == values.size:
        return smooth  # no NaN to carry the last average over
    out = np.full(values.size, np.nan)
    out[present] = smooth
    latest = np.where(present, np.arange(values.size), -1)
    np.maximum.accumulate(latest, out=latest)
    seen = latest >= 0
    out[seen] = out[latest[seen]]
    return out


def rolling_median(values: np.ndarray, width: int) -> np.ndarray:
    """Centred rolling median (edges use the available points, NaNs skipped); robust to
    spikes.  Equal to pandas' ``rolling(width, center=True, min_periods=1).median()``.

    bottleneck's moving median (a C double heap) is ~10x faster than pandas' and spares the
    pandas import; centring is a shift of its trailing window over NaN padding.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or width <= 1:
        return values.copy()
    width = int(width)
    ahead = (width - 1) // 2  # points after i inside the centred window
    before = max(0, width - (values.size + ahead))  # padding so the window fits the array
    padded = np.concatenate((np.full(before, np.nan), values, np.full(ahead, np.nan)))
    return np.asarray(bottleneck.move_median(padded, window=width, min_count=1)[before + ahead :])


def window_envelope(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(least, largest) value within ``width - 1`` points of each index of a curve: bounds on
    everything in the centred window of ``width`` points around it (as :func:`rolling_median`
    takes them), its median included, at the cost of two moving extremes (a tenth of a
    moving median).  A check that needs a median to pass a threshold can rule it out first."""
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    if count == 0:
        return values.copy(), values.copy()
    width = max(1, min(int(width), count))  # a window past the ends covers the whole curve
    ahead = np.minimum(np.arange(count) + width - 1, count - 1)
    least = bottleneck.move_min(values, window=width, min_count=1)  # over the points up to i
    largest = bottleneck.move_max(values, window=width, min_count=1)
    return np.minimum(least, least[ahead]), np.maximum(largest, largest[ahead])


def noise_sigma(values: np.ndarray) -> float:
    """Point-to-point noise level: MAD of first differences, as a Gaussian sigma per point."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return 0.0
    diffs = np.diff(values)
    mad = median(np.abs(diffs - median(diffs)))
    return float(mad * MAD_TO_SIGMA / np.sqrt(2.0))


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over x (NaN when undefined)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    x_centred = x - x.mean()
    denominator = float((x_centred**2).sum())
    if denominator == 0.0:
        return float("nan")
    return float((x_centred * (y - y.mean())).sum() / denominator)


def relative_change(start: float, end: float) -> float:
    """(end - start) / |start|, NaN when start is zero or either is not finite."""
    if not (np.isfinite(start) and np.isfinite(end)) or start == 0:
        return float("nan")
    return (end - start) / abs(start)


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest stretch of True in ``mask``; (0, 0) when none."""
    starts, lengths = stretches(mask)
    if starts.size == 0:
        return 0, 0
    best = int(np.argmax(lengths))
    return int(starts[best]), int(lengths[best])


# --- accuracy-like series and their losses (metric checks, number of classes) -------------

# A constant predictor's accuracy jitters with batch composition; smoothing with an EMA of
# span s divides white noise by about sqrt(s), which is how wide a "flat" band must be.
FLAT_NOISE_SIGMAS = 3.0


def accuracy_scale(values: np.ndarray) -> float:
    """100.0 when an accuracy series is logged in percent, else 1.0.

    mmdetection logs ``acc`` in 0..100.  Percent means every finite value in [0, 100], a peak
    above ``PERCENT_MIN_PEAK`` and the median above 1, so a [0, 1] series with a few glitches above 1 keeps its scale and the
    glitches stay visible to the range check.
    """
    finite = _finite(values)
    return _scale(finite, float(finite.min()), float(finite.max())) if finite.size else 1.0


def fraction_values(values: np.ndarray) -> np.ndarray:
    """Finite accuracy values as fractions in [0, 1]; empty when any lies outside.

    Out-of-range accuracies are the range check's business: the other checks would only
    misread them.
    """
    finite = _finite(values)
    if finite.size == 0:
        return finite
    low, high = float(finite.min()), float(finite.max())
    scale = _scale(finite, low, high)
    if low < 0 or high > scale:
        return np.empty(0)
    return finite / scale if scale != 1.0 else finite


# The median of this many evenly spaced values decides percent or fraction as well as the
# exact median does, at a fraction of its cost on a per-step series.
SCALE_SAMPLES = 10_000


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    mask = np.isfinite(values)
    return values if mask.all() else values[mask]


# A percent series peaks above this; an accuracy that climbs to 1.9 is a fraction counted
# wrongly (summed over batches), not a model stuck below 2% accuracy.
PERCENT_MIN_PEAK = 5.0


def _scale(finite: np.ndarray, low: float, high: float) -> float:
    if low < 0 or high > 100 or high <= PERCENT_MIN_PEAK:
        return 1.0
    sample = finite[:: max(1, finite.size // SCALE_SAMPLES)]
    return 100.0 if median(sample) > 1 else 1.0


def accuracy_levels(ctx: RunContext, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of an accuracy-like series ready to judge: finite, as fractions (see
    :func:`fraction_values`), binned to bin medians (see :func:`binned`) when longer than
    ``MAX_BINS``, so a per-step series costs no more than a per-epoch one."""
    curve = ctx.curve(tag).finite
    fractions = ctx.measure(fraction_values, curve.values)
    if fractions.size == 0:
        return np.empty(0), np.empty(0)
    bins = ctx.measure(binned, curve.steps, fractions)
    return bins.steps, bins.level


def trailing_flat_start(values: np.ndarray, tolerance: float) -> int:
    """Index where the last stretch begins whose values all fit in a band ``2 * tolerance`` wide.

    ``len(values)`` when there are none; ``values`` must be finite.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0
    backwards = values[::-1]
    width = np.maximum.accumulate(backwards) - np.minimum.accumulate(backwards)
    # ``width`` only grows as the stretch reaches further back: count the leading fits.
    return int(values.size - np.count_nonzero(width <= 2.0 * tolerance))


def flat_tolerance(ctx: RunContext, values: np.ndarray, span: int, floor: float) -> float:
    """Half-width of the band an EMA(span) of ``values`` wanders in from noise alone.

    ``values`` is a curve of ``ctx`` (or a shared measurement of one): its noise is measured
    once per run, however many checks draw a band around it.
    """
    return max(floor, FLAT_NOISE_SIGMAS * ctx.measure(noise_sigma, values) / float(np.sqrt(max(span, 1))))


def binary_entropy(probability: float) -> float:
    """Entropy in nats of a yes/no label that is yes with ``probability``."""
    p = min(max(float(probability), 1e-12), 1.0 - 1e-12)
    return float(-(p * np.log(p) + (1.0 - p) * np.log1p(-p)))


# Name words a metric shares with a loss, remembered: every run of a sweep asks about the
# same few pairs of names.
_shared_words = lru_cache(maxsize=4096)(roles.shared_words)


def matching_loss(ctx: RunContext, tag: str) -> str | None:
    """The loss that belongs with an accuracy-like series, or None.

    A validation metric pairs with a validation loss when the run logs one, else with the
    training loss; a training metric with a training loss.  Among those the loss sharing
    most name words wins (``eval_g0_accuracy`` -> ``eval_g0_loss``, ``val_acc_top1_epoch``
    -> ``val_loss_epoch``), then the main loss over a loss component, then the densest.
    """
    validation = ctx.run.roles.get(tag) in (Role.VAL_ACCURACY, Role.VAL_METRIC)
    groups = [(Role.VAL_LOSS, Role.VAL_LOSS_COMPONENT)] if validation else []
    groups.append((Role.TRAIN_LOSS, Role.LOSS_COMPONENT))
    for main, component in groups:
        candidates = ctx.tags(main, component)
        if candidates:
            return max(
                candidates,
                key=lambda loss: (
                    _shared_words(tag, loss),
                    ctx.run.roles.get(loss) is main,
                    len(ctx.curve(loss)),
                ),
            )
    return None


# --- loss curves: which to read, binning, levels (numerics and convergence checks) --------


def loss_tags(ctx: RunContext, total: Role, component: Role) -> list[str]:
    """The main ``total`` loss, or every ``component`` when the run logs no total.

    YOLO logs only ``train/box_loss``, ``train/cls_loss``, ... and no sum; a run that does
    log a total is judged on it alone, since its terms (GAN players, auxiliary heads) need
    not fall on their own.
    """
    main = ctx.primary(total)
    return [main] if main is not None else ctx.tags(component)


def stretches(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of every stretch of True in ``mask``, in order."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[::2], edges[1::2] - edges[::2]


# Curves longer than this are reduced to bins before smoothing: 2,000 bins keep every
# feature wider than 0.05% of the run and make a 2M-point curve as cheap as a short one.
MAX_BINS = 2000
# A bin's median is estimated from at most this many evenly spaced points, for speed; its
# error (about 1.25 sigma / 8) is far below the bin-to-bin noise the checks allow for.
MEDIAN_SAMPLES = 64


@dataclass(frozen=True)
class Binned:
    """A curve as at most ``MAX_BINS`` consecutive bins (the curve itself when shorter)."""

    steps: np.ndarray  # float64: the step in the middle of each bin
    level: np.ndarray  # each bin's median: the curve without its noise and spikes
    high: np.ndarray  # each bin's maximum: a one-point spike survives binning
    size: int  # points per bin; 1 means every point is its own bin


def binned(steps: np.ndarray, values: np.ndarray, max_bins: int = MAX_BINS) -> Binned:
    """Bin a finite, step-sorted curve into at most ``max_bins`` runs of consecutive points."""
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    if count <= max_bins:
        return Binned(steps.astype(np.float64), values, values, 1)
    size = -(-count // max_bins)
    full = (count // size) * size
    blocks = values[:full].reshape(-1, size)
    level = row_medians(blocks[:, :: max(1, size // MEDIAN_SAMPLES)])
    high = blocks.max(axis=1)
    middles = np.arange(full // size) * size + size // 2
    if full < count:
        rest = values[full:]
        level = np.append(level, median(rest))
        high = np.append(high, rest.max())
        middles = np.append(middles, (full + count - 1) // 2)
    return Binned(steps[middles].astype(np.float64), level, high, size)


def edge_levels(values: np.ndarray, fraction: float, minimum: int = 3) -> tuple[float, float]:
    """Medians of the first and of the last ``window(n, fraction, minimum)`` values.

    A median, not the first and last value: one lucky batch must not set the start or
    the end of the run.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    width = window(values.size, fraction, minimum)
    return median(values[:width]), median(values[-width:])


def value_at(steps: np.ndarray, values: np.ndarray, at: np.ndarray | Sequence[float]) -> np.ndarray:
    """The value in force at each step of ``at``: the last one logged at or before it.

    Learning rates are logged on their own schedule; before the first logged step the
    first value holds.  ``steps`` must be sorted; empty curves give NaN.
    """
    at = np.asarray(at, dtype=np.float64)
    if len(steps) == 0:
        return np.full(at.shape, np.nan)
    index = np.searchsorted(np.asarray(steps, dtype=np.float64), at, side="right") - 1
    return np.asarray(values, dtype=np.float64)[np.clip(index, 0, len(steps) - 1)]


# --- validation against training loss (generalisation checks) ------------------------------


@dataclass(frozen=True)
class LossPair:
    """A validation loss and the training loss it is judged against."""

    val: str
    train: str
    component: bool  # a term of the loss (``val/box_loss``), judged because no total is logged


def loss_pairs(ctx: RunContext, *, components: bool = True) -> list[LossPair]:
    """Every validation loss with the training loss to compare it with.

    Each total validation loss pairs with the main training loss (all of them, not only the
    densest: Lightning's ``val_loss_step`` has its own step counter and more points than
    ``val_loss_epoch``).  A run without a total (YOLO) pairs each validation term with the
    training term of the same name after the split (``val/box_loss`` with
    ``train/box_loss``), or with the main training loss when no term matches
    (``eval_g0_loss``: one of several evaluation sets, not a term).
    """
    train = ctx.primary(Role.TRAIN_LOSS)
    totals = ctx.tags(Role.VAL_LOSS)
    if totals:
        return [LossPair(tag, train, False) for tag in totals] if train else []
    if not components:
        return []
    terms = ctx.tags(Role.LOSS_COMPONENT)
    pairs = []
    for tag in ctx.tags(Role.VAL_LOSS_COMPONENT):
        same = [term for term in terms if roles.same_term(term, tag)]
        # Lightning logs a term twice (_step, _epoch): the densest, the first on ties
        partner = max(same, key=lambda term: len(ctx.curve(term))) if same else train
        if partner is not None:
            pairs.append(LossPair(tag, partner, True))
    return pairs


# Below this share of a series' step range lying inside the other's, the two count different
# things (validation on its own counter, epochs against iterations).
MIN_STEP_OVERLAP = 0.5


def steps_on_axis_of(steps: np.ndarray, reference: np.ndarray, same_axis: bool = True) -> np.ndarray:
    """``steps`` placed on the axis of ``reference`` (both sorted), as float64.

    Kept as they are when both count the same thing and their ranges mostly overlap.
    Otherwise (validation per epoch against training per iteration, Lightning's separate
    validation-step counter, Keras ``evaluation_*_vs_iterations``) the range is stretched
    linearly onto the reference's: both span the training run, so progress lines up.
    """
    steps = np.asarray(steps, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if steps.size < 2 or reference.size < 2:
        return steps
    low, high = steps[0], steps[-1]
    overlap = min(high, reference[-1]) - max(low, reference[0])
    if same_axis and high > low and overlap >= MIN_STEP_OVERLAP * (high - low):
        return steps
    if high == low:
        return np.full(steps.size, reference[-1])
    stretched: np.ndarray = reference[0] + (steps - low) * (reference[-1] - reference[0]) / (high - low)
    return stretched


def smoothed_at(ctx: RunContext, tag: str, at: np.ndarray, fraction: float) -> np.ndarray:
    """The rolling-median level of ``tag`` (its finite points), interpolated at the steps ``at``.

    Long curves are binned first (see :func:`binned`), so the cost does not grow with the
    window; before its first and after its last step the curve's edge level holds.  The
    smoothing is a shared measurement (see :meth:`RunContext.measure`): several checks read
    the same curve at the same fraction.
    """
    curve = ctx.curve(tag).finite
    if len(curve) == 0:
        return np.full(np.shape(at), np.nan)
    bins = ctx.measure(binned, curve.steps, curve.values)
    level = ctx.measure(rolling_median, bins.level, window(bins.level.size, fraction))
    return np.asarray(np.interp(np.asarray(at, dtype=np.float64), bins.steps, level), dtype=np.float64)


def steps_on_axis_of_tag(
    ctx: RunContext, tag: str, other: str, steps: np.ndarray | None = None
) -> np.ndarray:
    """Steps of ``tag`` (default: all its finite steps) placed on the axis of ``other``.

    See :func:`steps_on_axis_of`; steps between logged points (bin middles) are placed by
    interpolation.
    """
    own = ctx.curve(tag).finite.steps
    reference = ctx.curve(other).finite.steps
    at = np.asarray(own if steps is None else steps, dtype=np.float64)
    if own.size < 2 or reference.size < 2:
        return at
    # The placement is linear: place the two ends and interpolate, instead of converting
    # two per-step series.
    ends = np.array([own[0], own[-1]], dtype=np.float64)
    same_axis = ctx.run.axis_of(tag) == ctx.run.axis_of(other)
    placed = steps_on_axis_of(ends, np.array([reference[0], reference[-1]]), same_axis)
    return np.asarray(np.interp(at, ends, placed), dtype=np.float64)


def loss_between(
    ctx: RunContext, tag: str, first: float, last: float
) -> tuple[str, np.ndarray] | None:
    """The matching loss of ``tag`` and its finite values logged while ``tag`` went from step
    ``first`` to step ``last`` (placed on the loss's axis when the two count differently)."""
    loss_tag = matching_loss(ctx, tag)
    if loss_tag is None:
        return None
    loss = ctx.curve(loss_tag).finite
    low, high = steps_on_axis_of_tag(ctx, tag, loss_tag, np.array([first, last]))
    return loss_tag, loss.values[(loss.steps >= low) & (loss.steps <= high)]


# --- what a run logs: metric direction, its training loss and learning rate, levels, -----
# --- resolution and drift (convergence and numerics checks) --------------------------------


def train_loss(ctx: RunContext, min_points: int) -> tuple[str, Binned] | None:
    """The main training loss, finite and binned, or None when absent or too short."""
    tag = ctx.primary(Role.TRAIN_LOSS)
    if tag is None:
        return None
    curve = ctx.curve(tag).finite
    if len(curve) < max(min_points, 1):
        return None
    return tag, ctx.measure(binned, curve.steps, curve.values)


def learning_rate(ctx: RunContext) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(tag, steps, values) of the main finite learning-rate curve, or None when not logged."""
    tag = ctx.primary(Role.LEARNING_RATE)
    if tag is None:
        return None
    curve = ctx.curve(tag).finite
    if len(curve) == 0:
        return None
    return tag, curve.steps, curve.values


def peak_learning_rate(ctx: RunContext, evidence: dict[str, object]) -> float | None:
    """The largest logged learning rate, recorded in ``evidence`` (``lr_tag``, ``lr_max``) for
    the checks that quote it; None when no learning rate is logged."""
    rate = learning_rate(ctx)
    if rate is None:
        return None
    tag, _, rates = rate
    peak = float(rates.max())
    evidence.update(lr_tag=tag, lr_max=peak)
    return peak


def initial_level(values: np.ndarray, fraction: float) -> float:
    """Where a loss started: the higher of its first value and the median of its first few.

    The median alone would miss a fall inside the first few points (38 -> 8 within the
    first 1% of a run) and call the run stalled; the first value alone trusts one batch.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    return max(float(values[0]), edge_levels(values, fraction)[0])


def resolution(values: np.ndarray) -> float:
    """The smallest step between distinct finite values: how finely the log wrote them.

    Hugging Face rounds logged losses to 4 decimals, so a memorised loss alternates between
    0.0001 and 0.0002; changes of one such step are rounding, not signal.  Zero when fewer
    than two distinct values.
    """
    values = np.asarray(values, dtype=np.float64)
    levels = distinct(values[np.isfinite(values)])
    return float(np.diff(levels).min()) if levels.size > 1 else 0.0


def local_noise(values: np.ndarray, width: int) -> np.ndarray:
    """Point-to-point noise around each point, as a Gaussian sigma (rolling median of |diff|).

    Loss noise shrinks with the loss: a converged tail jitters far less than the first
    epochs, so one global sigma is too strict early and too lax late.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return np.zeros(values.size)
    changes = np.abs(np.diff(values))
    # Each point takes the change into it (the first the change out of it); the median of a
    # window of them ignores the two a spike itself produces.
    into = np.concatenate((changes[:1], changes))
    return np.asarray(rolling_median(into, width) * (MAD_TO_SIGMA / np.sqrt(2.0)), dtype=np.float64)


def drift(steps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Straight-line change over a stretch, and its standard error from the residual scatter.

    The error of a least-squares change over k evenly spread points is the residual sigma
    times sqrt(12 / k).  (0, 0) for fewer than 3 points or a single step.
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.size < 3 or steps[-1] == steps[0]:
        return 0.0, 0.0
    rate = slope(steps, values)
    fitted = values.mean() + rate * (steps - steps.mean())
    scatter = float(np.std(values - fitted))
    return float(rate * (steps[-1] - steps[0])), scatter * float(np.sqrt(12.0 / steps.size))
