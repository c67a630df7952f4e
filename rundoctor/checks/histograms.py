"""Measurements on logged histograms, shared by the checks that look inside the network.

A logged histogram is bucket right edges and counts (HistogramProto: PyTorch, tensorboardX,
TF1) or [left, right, count] rows (TF2's tensors, equal-width buckets); the raw values are
gone.  What survives, and what these functions estimate from it:

- **mass at exactly zero**: PyTorch's default ``bins="tensorflow"`` has buckets [0, 1e-12)
  and [-1e-12, 0), so exact zeros (a ReLU's inactive outputs, the gradient of a dead unit)
  sit in a bucket of their own; TF2's 30 equal-width buckets merge them with small values,
  so there the lowest bucket's share is an upper bound (:func:`zero_share` says which);
- **mass near the bounds** of a bounded function (a saturated tanh or sigmoid), each
  bucket's count spread evenly over its width;
- **scale**: the mean |value| from bucket centres (a bucket straddling zero contributes the
  mean |x| of a uniform spread over it), exact to the bucket width (10% for TensorFlow's
  exponential buckets);
- **spread**: the standard deviation from centres plus each bucket's own width;
- **change between two logged steps**: the Wasserstein-1 distance between the two
  distributions (the area between their cumulative curves), which is the least mean
  |change per value| any pairing of old and new values allows: a lower bound on the true
  mean |update|, zero only when the distribution did not move at all.

Every function takes untrusted input: malformed histograms (edges and counts of different
lengths, non-finite or negative counts, no mass) give NaN or are skipped, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rundoctor.checks import measures
from rundoctor.roles import HistogramName, Role, histogram_name, relu_family
from rundoctor.series import Histogram, HistogramColumns, Run

# Checks judge at most this many logged histograms per tag, evenly spaced and always with the
# first and the last: a trend or a median over 32 points is as good as over 1,000, and a run
# with hundreds of layers logged 1,000 times stays quick to check.
MAX_JUDGED = 32


# Where the quantile function is read to compare two distributions: the middles of 256 equal
# shares of the mass, so two histograms compare in one subtraction however many buckets they have.
_SHARES = (np.arange(256) + 0.5) / 256


@dataclass(frozen=True)
class Buckets:
    """A histogram's buckets as [left, right] with counts, outer edges clipped to min/max, and
    the mean and standard deviation of the values (each bucket a uniform spread over its width)."""

    lefts: np.ndarray
    rights: np.ndarray
    counts: np.ndarray
    total: float
    mean: float
    std: float
    # The value below which each of :data:`_SHARES` of the mass lies, linear within a bucket
    # (a zero-width bucket holds its share at its one value).
    quantiles: np.ndarray


# Checks measure the same histogram several times (its spread, then its distance to the one
# before and to the one after): the buckets of the most recent ones are kept.  Each entry holds
# its histogram, so an id is never reused while its entry lives.
_CACHE_SIZE = 4096
_cache: dict[int, tuple[Histogram, Buckets | None]] = {}
_EMPTY = np.empty(0)


def buckets(histogram: Histogram) -> Buckets | None:
    """The histogram's buckets, or None when it is malformed or holds no mass."""
    hit = _cache.get(id(histogram))
    if hit is not None and hit[0] is histogram:
        return hit[1]
    return measure_together([histogram])[0]


def measure_together(items: Sequence[Histogram]) -> list[Buckets | None]:
    """The buckets of each histogram (see :func:`buckets`), those not measured yet measured
    together: histograms of one bucket count are rows of one table, so measuring a layer's 32
    judged histograms costs a few numpy calls, not a few per histogram (each row gives the
    same numbers, bit for bit, as measured alone: sums along a row add as a row alone does)."""
    found: list[Buckets | None] = [None] * len(items)
    by_size: dict[int, list[int]] = {}
    for index, histogram in enumerate(items):
        hit = _cache.get(id(histogram))
        if hit is not None and hit[0] is histogram:
            found[index] = hit[1]
            continue
        size = np.size(histogram.bucket_limits)
        if size and size == np.size(histogram.bucket_counts):
            by_size.setdefault(size, []).append(index)
        else:
            _remember(histogram, None)
    for indices in by_size.values():
        group = [items[index] for index in indices]
        for index, histogram, measured in zip(indices, group, _measured(group)):
            found[index] = measured
            _remember(histogram, measured)
    return found


def _remember(histogram: Histogram, found: Buckets | None) -> None:
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[id(histogram)] = (histogram, found)


def _measured(group: Sequence[Histogram]) -> list[Buckets | None]:
    """The buckets of histograms of one bucket count (see :func:`measure_together`)."""
    limits = np.array([np.asarray(histogram.bucket_limits, dtype=np.float64).ravel() for histogram in group])
    counts = np.array([np.asarray(histogram.bucket_counts, dtype=np.float64).ravel() for histogram in group])
    mins = np.array([histogram.min for histogram in group], np.float64)
    maxs = np.array([histogram.max for histogram in group], np.float64)
    usable = np.isfinite(counts).all(axis=1) & ~(counts < 0).any(axis=1)
    usable &= ~(np.diff(limits, axis=1) < 0).any(axis=1)  # edges out of order: not a histogram any logger writes
    totals = counts.sum(axis=1)
    usable &= totals > 0
    low = np.where(np.isfinite(mins), mins, limits[:, 0])[:, None]
    lefts = np.maximum(np.concatenate((low, limits[:, :-1]), axis=1), low)
    rights = np.where(np.isfinite(maxs)[:, None], np.minimum(limits, maxs[:, None]), limits)
    lefts = np.minimum(lefts, rights)
    finite = np.isfinite(lefts).all(axis=1) & np.isfinite(rights).all(axis=1)
    means, stds, quantiles = _moments(lefts, rights, counts, totals, usable & finite)
    found: list[Buckets | None] = []
    for row in range(len(group)):
        if not usable[row]:
            found.append(None)
        elif finite[row]:
            found.append(Buckets(lefts[row], rights[row], counts[row], float(totals[row]), means[row], stds[row],
                                 quantiles[row]))
        else:  # infinite outer edges: only the buckets holding mass are kept, if those are finite
            occupied = counts[row] > 0
            kept_lefts, kept_rights, kept_counts = (array[row][occupied] for array in (lefts, rights, counts))
            if not (np.isfinite(kept_lefts).all() and np.isfinite(kept_rights).all()):
                found.append(None)
                continue
            mean, std, quantile = _moments(kept_lefts[None, :], kept_rights[None, :], kept_counts[None, :],
                                           totals[row : row + 1], np.ones(1, bool))
            found.append(Buckets(kept_lefts, kept_rights, kept_counts, float(totals[row]), mean[0], std[0], quantile[0]))
    return found


def _moments(
    lefts: np.ndarray, rights: np.ndarray, counts: np.ndarray, totals: np.ndarray, wanted: np.ndarray
) -> tuple[list[float], list[float], list[np.ndarray]]:
    """(means, standard deviations, quantiles at :data:`_SHARES`) of rows of buckets, each bucket
    a uniform spread over its width; quantiles of the ``wanted`` rows only (others: empty)."""
    with np.errstate(all="ignore"):
        centres = (lefts + rights) / 2
        weights = counts / totals[:, None]
        means = (weights * centres).sum(axis=1)
        variances = (weights * ((centres - means[:, None]) ** 2 + (rights - lefts) ** 2 / 12)).sum(axis=1)
        stds = np.sqrt(np.maximum(variances, 0.0))
        edges = np.concatenate((lefts[:, :1], rights), axis=1)
        cumulative = np.concatenate((np.zeros((len(totals), 1)), np.cumsum(counts, axis=1)), axis=1) / totals[:, None]
        quantiles = [np.interp(_SHARES, cumulative[row], edges[row]) if wanted[row] else _EMPTY
                     for row in range(len(totals))]
    return means.tolist(), stds.tolist(), quantiles


def zero_share(histogram: Histogram) -> tuple[float, bool]:
    """(share of the mass at exactly zero, whether exact): the buckets holding zero that are
    narrow next to the values' scale (under a millionth of it, as TensorFlow's [0, 1e-12)) hold
    only zeros; without such a bucket, a histogram whose values start at zero (a ReLU's) gives
    its lowest bucket's share as an upper bound; otherwise 0 with nothing at zero, NaN when
    malformed."""
    found = buckets(histogram)
    if found is None:
        return float("nan"), False
    if max(np.abs(found.lefts).max(), np.abs(found.rights).max()) == 0:
        return 1.0, True  # every value is exactly zero
    holds_zero = (found.lefts <= 0) & (found.rights >= 0)
    narrow = _narrow_zero(found)
    if narrow.any():
        return float(found.counts[narrow].sum() / found.total), True
    if holds_zero.any() and found.lefts[0] == 0:
        first = int(np.flatnonzero(found.counts > 0)[0])
        return float(found.counts[first] / found.total) if found.lefts[first] == 0 else 0.0, False
    return 0.0, True


def share_outside(histogram: Histogram, low: float, high: float) -> float:
    """Share of the mass at or below ``low`` or at or above ``high``, each bucket's count spread
    evenly over its width (a zero-width bucket counts whole where it sits); NaN when malformed."""
    found = buckets(histogram)
    if found is None:
        return float("nan")
    widths = found.rights - found.lefts
    safe = np.where(widths > 0, widths, 1.0)
    below = np.where(widths > 0, np.clip(low - found.lefts, 0, None) / safe, found.rights <= low)
    above = np.where(widths > 0, np.clip(found.rights - high, 0, None) / safe, found.lefts >= high)
    return float((found.counts * np.clip(below + above, 0.0, 1.0)).sum() / found.total)


def abs_mean(histogram: Histogram) -> float:
    """Mean |value| from the buckets (a uniform spread within each); NaN when malformed."""
    found = buckets(histogram)
    if found is None:
        return float("nan")
    return _abs_mean(found.lefts, found.rights, found.counts)


def nonzero_abs_mean(histogram: Histogram) -> float:
    """Mean |value| of the values that are not exactly zero (see :func:`zero_share`): the scale of a
    gradient whose exact zeros are rows nothing flowed into (dead units, embedding rows not in the
    batch), not small gradients.  NaN when malformed or when every value is zero."""
    found = buckets(histogram)
    if found is None:
        return float("nan")
    kept = ~_narrow_zero(found) & (found.counts > 0)
    if not kept.any():
        return float("nan")
    return _abs_mean(found.lefts[kept], found.rights[kept], found.counts[kept])


def _abs_mean(lefts: np.ndarray, rights: np.ndarray, counts: np.ndarray) -> float:
    """Mean |x| over buckets, each a uniform spread; one straddling zero gives (l^2 + r^2) / 2 (r - l)."""
    with np.errstate(all="ignore"):  # edges near the float limits give inf or NaN, never a warning
        straddles = (lefts < 0) & (rights > 0)
        width = np.where(straddles, rights - lefts, 1.0)
        mean_abs = np.where(straddles, (lefts**2 + rights**2) / (2 * width), np.abs(lefts + rights) / 2)
        return float((counts * mean_abs).sum() / counts.sum())


def _narrow_zero(found: Buckets) -> np.ndarray:
    """The buckets that hold only exact zeros: holding 0 and under a millionth of the values' scale wide."""
    scale = float(max(np.abs(found.lefts).max(), np.abs(found.rights).max()))
    holds_zero = (found.lefts <= 0) & (found.rights >= 0)
    narrow: np.ndarray = holds_zero & (found.rights - found.lefts <= 1e-6 * scale)
    return narrow


def spread(histogram: Histogram) -> tuple[float, float]:
    """(mean, standard deviation) from the buckets, each a uniform spread over its width."""
    found = buckets(histogram)
    if found is None:
        return float("nan"), float("nan")
    return found.mean, found.std


def is_constant(histogram: Histogram) -> bool:
    """Whether every value is the same: min equals max, or all mass in one zero-width bucket."""
    if np.isfinite(histogram.min) and histogram.min == histogram.max and histogram.total > 0:
        return True
    found = buckets(histogram)
    if found is None:
        return False
    occupied = found.counts > 0
    return bool(occupied.sum() == 1 and (found.rights - found.lefts)[occupied][0] == 0)


def same(a: Histogram, b: Histogram) -> bool:
    """Whether two logged histograms are identical: same edges, counts, min and max."""
    return (
        np.array_equal(np.asarray(a.bucket_limits), np.asarray(b.bucket_limits))
        and np.array_equal(np.asarray(a.bucket_counts), np.asarray(b.bucket_counts))
        and _same_number(a.min, b.min)
        and _same_number(a.max, b.max)
    )


def _same_number(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def distance(a: Histogram, b: Histogram) -> float:
    """Wasserstein-1 distance between two histograms' distributions (mass normalised): the mean
    gap between their quantile functions, each linear within a bucket, read at 256 equal shares
    of the mass (the area between the cumulative curves, to that resolution); NaN when malformed."""
    first, second = buckets(a), buckets(b)
    if first is None or second is None:
        return float("nan")
    with np.errstate(all="ignore"):
        return float(np.abs(first.quantiles - second.quantiles).mean())


def consecutive_distances(items: Sequence[Histogram]) -> list[float]:
    """:func:`distance` between each histogram and the next, the pairs measured together (the
    same numbers, bit for bit, as one pair at a time)."""
    found = measure_together(items)
    shares = [item.quantiles if item is not None else None for item in found]
    distances = [float("nan")] * max(len(items) - 1, 0)
    measured = [index for index in range(len(distances)) if shares[index] is not None and shares[index + 1] is not None]
    if measured:
        first = np.array([shares[index] for index in measured])
        second = np.array([shares[index + 1] for index in measured])
        with np.errstate(all="ignore"):
            gaps = np.abs(first - second).mean(axis=1).tolist()
        for index, gap in zip(measured, gaps):
            distances[index] = gap
    return distances


def cumulative(histogram: Histogram, points: np.ndarray) -> np.ndarray | None:
    """The share of the histogram's mass at or below each point (linear within a bucket), or None
    when it is malformed: what a plot of its distribution rebins from."""
    found = buckets(histogram)
    if found is None:
        return None
    with np.errstate(all="ignore"):
        return _cdf(found, np.asarray(points, dtype=np.float64))


def _cdf(found: Buckets, points: np.ndarray) -> np.ndarray:
    """The cumulative share at each point, linear within each bucket and, where a zero-width
    bucket makes it jump, taken just after the jump."""
    edges = np.concatenate((found.lefts[:1], found.rights))
    cumulative = np.concatenate(([0.0], np.cumsum(found.counts))) / found.total
    following = np.searchsorted(edges, points, side="right")
    index = np.clip(following - 1, 0, edges.size - 1)
    following = np.clip(following, 0, edges.size - 1)
    width = edges[following] - edges[index]
    within = np.clip((points - edges[index]) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    share: np.ndarray = np.where(width > 0, cumulative[index] + within * (cumulative[following] - cumulative[index]),
                                 cumulative[following])
    return share


# -- the histograms of a run, per layer ------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One tag's histograms sorted by step (the last written of a repeated step), what its name
    says, and its role."""

    tag: str
    name: HistogramName
    role: Role
    histograms: Sequence[Histogram]  # columns when the reader stores them so (most are never made)

    @property
    def layer(self) -> str:
        """The layer the tag belongs to, spelled as logged."""
        return self.name.layer

    @cached_property
    def steps(self) -> np.ndarray:
        """The logged steps, ascending."""
        items = self.histograms
        return items.steps if isinstance(items, HistogramColumns) else np.array([h.step for h in items], np.int64)

    def at_step(self, step: int) -> Histogram | None:
        """The histogram logged at ``step``, or None."""
        index = int(np.searchsorted(self.steps, step))
        return self.histograms[index] if index < self.steps.size and self.steps[index] == step else None

    def judged(self) -> tuple[Histogram, ...]:
        """At most :data:`MAX_JUDGED` histograms, evenly spaced, the first and the last included."""
        items = self.histograms
        if len(items) <= MAX_JUDGED:
            judged = tuple(items)
        else:
            spaced = np.linspace(0, len(items) - 1, MAX_JUDGED).round().astype(int)
            # Rising, so repeats sit side by side (np.unique would import numpy.ma: 7 ms of start-up)
            picks = spaced[np.concatenate(([True], np.diff(spaced) > 0))]
            judged = tuple(items.take(picks)) if isinstance(items, HistogramColumns) else tuple(items[i] for i in picks)
        measure_together(judged)  # the checks measure each of them, one after the other
        return judged


def series(run: Run, *roles: Role) -> list[Series]:
    """The run's histogram tags with one of ``roles``, in the order they were first logged (the
    order a model's layers are usually logged in: input to output)."""
    found = []
    for tag, items in run.histograms.items():
        role = run.roles.get(tag)
        if role not in roles or not items:
            continue
        found.append(Series(tag, histogram_name(tag), role, _by_step(items)))
    return found


def by_layer(items: Iterable[Series]) -> list[Series]:
    """One series per layer, in first-logged order: the weight's when a layer logs its weight and
    its bias (the weight holds most of the layer's parameters)."""
    chosen: dict[str, Series] = {}
    for item in items:
        current = chosen.get(item.layer)
        if current is None or (current.name.tensor != "weight" and item.name.tensor == "weight"):
            chosen[item.layer] = item
    return list(chosen.values())


def _by_step(items: Sequence[Histogram]) -> Sequence[Histogram]:
    """Sorted by step, the last-written histogram of a repeated step kept."""
    if isinstance(items, HistogramColumns):
        return items.by_step()
    latest: dict[int, Histogram] = {}
    for histogram in items:
        latest[histogram.step] = histogram
    return tuple(latest[step] for step in sorted(latest))


@dataclass(frozen=True)
class LayerScale:
    """A layer's gradient scale over the logged steps and its median."""

    tag: str
    layer: str
    steps: np.ndarray
    scales: np.ndarray

    @property
    def level(self) -> float:
        """The median scale over the logged steps."""
        return measures.median(self.scales) if self.scales.size else float("nan")


# A gradient with this share of exact zeros says its units are dead, not how large a gradient is:
# the scale of the few values left is noise.
MOSTLY_ZERO = 0.99


def layer_scales(run: Run) -> list[LayerScale]:
    """Every layer's gradient scale (mean |gradient| of the non-zero values), in first-logged order;
    steps where the gradient is (almost) all exact zeros, and layers with no other step, are left out."""
    found = []
    for item in by_layer(series(run, Role.GRADIENT_HISTOGRAM)):
        pairs = [(histogram.step, nonzero_abs_mean(histogram)) for histogram in item.judged()
                 if not zero_share(histogram)[0] >= MOSTLY_ZERO]
        kept = [(step, scale) for step, scale in pairs if np.isfinite(scale) and scale > 0]
        if kept:
            steps, scales = zip(*kept)
            found.append(LayerScale(item.tag, item.layer, np.array(steps), np.array(scales)))
    return found


# Where tanh and sigmoid pass back under a fifth of the gradient they pass at their centre:
# tanh' = 1 - a^2 <= 0.2 beyond |a| = sqrt(0.8); sigmoid' = p (1 - p) <= 0.05 below p = 0.053
# and above 0.947.  Coarser than SageMaker Debugger's input thresholds (|x| > 9.5, a slope
# under 1e-7), which an output histogram cannot resolve: TensorFlow's buckets near 1 are 10%
# wide and float32 rounds tanh to exactly 1 from |x| of about 9.
TANH_BAND = float(np.sqrt(0.8))
SIGMOID_BAND = float((1 - np.sqrt(0.8)) / 2)
_EDGE = 1e-6  # float32 outputs of a bounded function land on the bound itself


def activation_kind(item: Series) -> str:
    """What function a layer's activation histograms come from: ``relu`` (outputs >= 0 with
    mass at exactly zero, or unbounded above), ``tanh`` (within [-1, 1], some negative),
    ``sigmoid`` (within [0, 1], reaching its upper band or never exactly zero), or ``other``;
    the name decides when it names the function."""
    function = item.name.function
    if function is not None:
        if relu_family(function):
            return "relu"
        return {"tanh": "tanh", "hardtanh": "tanh", "sigmoid": "sigmoid"}.get(function, "other")
    judged = [histogram for histogram in item.judged() if buckets(histogram) is not None]
    if not judged:
        return "other"
    low = min(_lowest(histogram) for histogram in judged)
    high = max(_highest(histogram) for histogram in judged)
    if not (np.isfinite(low) and np.isfinite(high)):
        return "other"
    if low < 0:
        return "tanh" if low >= -1 - _EDGE and high <= 1 + _EDGE else "other"
    if high > 1 + _EDGE:
        return "relu"
    # Bounded in [0, 1]: a sigmoid layer's outputs reach its upper band, or are never exactly
    # zero; a ReLU layer with small outputs has its zeros and a thin top.
    reaches_top = any(share_outside(histogram, -np.inf, 1 - SIGMOID_BAND) >= 0.01 for histogram in judged)
    never_zero = all(zero_share(histogram)[0] == 0 for histogram in judged)
    return "sigmoid" if reaches_top or never_zero else "relu"


def _lowest(histogram: Histogram) -> float:
    found = buckets(histogram)
    return float(found.lefts[found.counts > 0].min()) if found is not None else float("nan")


def _highest(histogram: Histogram) -> float:
    found = buckets(histogram)
    return float(found.rights[found.counts > 0].max()) if found is not None else float("nan")


def layer_list(names: Iterable[str], limit: int = 4) -> str:
    """``fc1, fc2 and 3 more``: layer names for a message."""
    names = list(dict.fromkeys(names))
    if len(names) <= limit:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else ""
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
