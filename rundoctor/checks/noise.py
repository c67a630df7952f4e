"""Noise of heavy-tailed training curves, and disturbances that stand out of it.

A per-step loss of small batches is not a smooth curve with a little Gaussian jitter: a
batch holding a mislabelled or rare example costs 5-50x the median, and that is the
normal texture of the curve, not an event.  The helpers here judge a curve against its own
noise, measured so that those batches do not inflate it, and call something a disturbance
only when it persists:

- **Log space for losses.**  Multiplicative noise (a batch at 3x the level) becomes
  additive, and one scale fits a curve that falls over three orders of magnitude.
- **Robust scale.**  The noise is the median absolute deviation of the residuals from a
  centred rolling median, as a Gaussian sigma: a few 50x batches move it by nothing.
- **Autocorrelation.**  Running averages (the mean since the epoch began, as Hugging Face
  and Keras log it) make neighbours agree; the standard error of a median of k points uses
  the effective size ``k / tau``, tau the integrated autocorrelation time of the residuals
  (see :func:`rundoctor.checks.trend.correlation_time`), at least ``k (1 - rho) / (1 + rho)``
  for lag-1 autocorrelation rho.
- **Persistence.**  A disturbance is a shift of the median of ``persist`` consecutive
  points above the median of the points before them, beyond the noise of the two medians,
  beyond how far such shifts stray anywhere else in the curve, and beyond a least size.  Moving a median of k points needs more than half of
  them to be extreme: one unlucky batch, or two, cannot.
- **Chance counts.**  Single points are judged by how many of them a heavy-tailed
  (Student-t, 3 degrees of freedom) noise of the same scale would produce by chance over
  the whole curve: a point counts only when fewer than ``alpha`` such points are expected.

Everything is O(n log w) numpy (moving medians); no Python loop per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.trend import correlation_time, robust_sigma

# The standard deviation of the median of k Gaussian points is sqrt(pi / 2) sigma / sqrt(k).
MEDIAN_ERROR = math.sqrt(math.pi / 2.0)

# A Student-t with 3 degrees of freedom has a median absolute value of 0.7649: its scale is
# MAD / 0.7649, i.e. (MAD-sigma) / (1.4826 * 0.7649) = sigma / 1.134.
T3_PER_SIGMA = 1.0 / (measures.MAD_TO_SIGMA * 0.7649)

# A disturbance is over when the short median is back within this many standard errors of
# the level before it: two, so a shift that merely shrinks below the detection threshold
# is still going on.
RECOVERY_SIGMAS = 2.0


def log_values(values: np.ndarray, offset: float = 0.0) -> np.ndarray | None:
    """``log(values + offset * median)`` when every finite value is non-negative (positive
    without an offset), else None.

    ``offset`` (a fraction of the median) keeps near-zero values from dominating: a loss
    whose easy batches cost 1e-5 and its typical ones 1e-2 scatters over three orders of
    magnitude in log space, although nothing happens at that scale.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or float(finite.min()) < 0.0:
        return None
    shift = offset * measures.median(finite)
    # An exact zero is a batch the model got right to float precision (common with a high
    # learning rate and saturated outputs), not a sign of a signed loss: with an offset it
    # has a finite logarithm like any other point.
    if float(finite.min()) + shift <= 0.0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values + shift)


def leading_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of the ``width`` points starting at each index (fewer near the end)."""
    import bottleneck

    values = np.asarray(values, dtype=np.float64)
    width = max(1, int(width))
    if values.size == 0 or width == 1:
        return values.copy()
    padded = np.concatenate((values, np.full(width - 1, np.nan)))
    moved = bottleneck.move_median(padded[::-1], window=width, min_count=1)[::-1]
    return np.asarray(moved[: values.size], dtype=np.float64)


def trailing_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of the ``width`` points ending at each index, inclusive (fewer near the start)."""
    import bottleneck

    values = np.asarray(values, dtype=np.float64)
    width = max(1, int(width))
    if values.size == 0 or width == 1:
        return values.copy()
    return np.asarray(bottleneck.move_median(values, window=width, min_count=1), dtype=np.float64)


@dataclass(frozen=True)
class Noise:
    """A curve split into its level (centred rolling median) and its noise around it.

    ``sigma`` is local (one value per point): the noise of a loss changes along the run (a
    per-step loss scatters more, in log space, once most batches are easy), so one global
    scale would be too strict in one part and too lax in another.
    """

    level: np.ndarray
    residual: np.ndarray
    sigma: np.ndarray  # robust per-point scale around each point, at least the floor
    tau: float  # integrated autocorrelation time of the residuals, in points (1: white)

    @cached_property
    def scale(self) -> float:
        """One number for the whole curve: the median of the local scales (taken once: checks
        sharing a fit ask for it several times)."""
        return measures.median(self.sigma) if self.sigma.size else 0.0

    def median_error(self, points: int) -> np.ndarray:
        """Standard error of the median of ``points`` consecutive points, at each point."""
        size = max(1.0, max(int(points), 1) / self.tau)
        return np.asarray(MEDIAN_ERROR * self.sigma / math.sqrt(size), dtype=np.float64)

    def z(self) -> np.ndarray:
        """Residuals in units of the local sigma (inf where it is 0 and the residual is not)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.residual / self.sigma, dtype=np.float64)


def fit(values: np.ndarray, width: int, floor: float = 0.0) -> Noise:
    """The noise of a finite curve around its centred rolling median of ``width`` points.

    The local scale is the larger of two robust estimates over a window of ``width``: the
    MAD of the residuals (which sees slow wander around the level) and the median
    point-to-point change (which sees the noise of a smooth stretch, where a rolling median
    of a monotone curve leaves no residual at all).  For white noise both equal its sigma.
    ``floor`` bounds it from below: a loss rounded to 4 decimals, or one that sits on the
    same value for most points, is not noiseless.
    """
    values = np.asarray(values, dtype=np.float64)
    level = measures.rolling_median(values, width)
    residual = values - level
    spread = measures.rolling_median(np.abs(residual), width) * measures.MAD_TO_SIGMA
    changes = measures.local_noise(values, width)
    sigma = np.maximum(np.maximum(spread, changes), float(floor))
    return Noise(level, residual, sigma, correlation_time(residual))


@dataclass(frozen=True)
class Disturbance:
    """A stretch where the curve's short median stood above its level just before.

    Indices into the analysed curve; ``excess`` is the largest shift of the short median in
    the curve's units (log units for a loss analysed in log space), ``sigmas`` the same in
    standard errors of that shift.
    """

    start: int
    end: int  # last index of the stretch (inclusive)
    peak: int  # the highest point inside it
    before: float  # the level just before it (median of the baseline window)
    excess: float
    sigmas: float
    recovered: bool  # the short median came back below the threshold before the log ended


def disturbances(
    values: np.ndarray,
    noise: Noise,
    *,
    baseline: int,
    persist: int,
    sigmas: float,
    min_excess: float,
    trailing: np.ndarray | None = None,
) -> list[Disturbance]:
    """Persistent upward shifts of a finite curve (see the module docstring).

    At each index i, the median of the ``persist`` points from i on is compared with the
    median of the ``baseline`` points before i.  The shift counts where it exceeds both
    ``sigmas`` standard errors of the difference of the two medians and ``min_excess`` (in
    the curve's units).  Stretches closer than ``persist`` points are one disturbance.  A
    falling curve makes the shift negative, so the steep start of a run never counts; a
    stretch needs ``persist`` points after its start, so the last few points cannot start one.
    A disturbance lasts until the short median is back within ``RECOVERY_SIGMAS`` standard
    errors (and ``min_excess``) of the level before it (``recovered``), or to the end.

    ``trailing`` is ``trailing_median(values, baseline)`` when the caller has it already; it
    is used only when ``baseline`` is at least ``persist`` (else the baseline is widened).
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    persist = max(1, int(persist))
    if int(baseline) < persist:
        trailing = None  # the baseline is widened to ``persist``: the caller's median is not its
    baseline = max(persist, int(baseline))
    if count < persist + 2:
        return []
    after = leading_median(values, persist)
    if trailing is None:
        trailing = trailing_median(values, baseline)
    before = np.concatenate(([np.nan], trailing[:-1]))
    index = np.arange(count)
    # A full short window, and a baseline of at least ``persist`` points before it.
    judged = (index >= persist) & (index <= count - persist)
    shift = np.where(judged, after - before, -np.inf)
    # Two errors of the shift, the larger wins.  The model's: the noise of the stretch before
    # each point (the disturbance itself must not widen it) through two medians.  The
    # curve's own: how far the shift typically strays from its local median over the curve,
    # which sees what no per-point model does (an epoch's running mean carries one heavy
    # batch to the end of the epoch, so whole epochs sit above or below their neighbours).
    shift_back = np.maximum(index - baseline // 2, 0)
    error = np.hypot(noise.median_error(persist), noise.median_error(baseline))[shift_back]
    if judged.sum() >= 3:
        # Around the shift's own rolling median: a trend that flattens moves the shift
        # slowly, and that is not noise.
        shifts = shift[judged]
        error = np.maximum(error, robust_sigma(shifts - measures.rolling_median(shifts, 2 * baseline + 1)))
    threshold = np.maximum(sigmas * error, min_excess)
    recovery = np.maximum(RECOVERY_SIGMAS * error, min_excess)
    above = shift > threshold
    starts, _ = measures.stretches(above)
    found: list[Disturbance] = []
    for start in starts.tolist():
        if found and start <= found[-1].end + persist:
            continue  # inside (or just after) the disturbance already found
        reference = float(before[start])
        # It lasts until the short median is back near the level before it (a trailing
        # baseline would catch up with a shift that never comes back).
        back = np.flatnonzero(after[start:] - reference <= recovery[start:])
        back = back[start + back <= count - persist]
        recovered = back.size > 0
        last_judged = start + int(back[0]) - 1 if recovered else count - persist
        end = min(last_judged + persist - 1, count - 1) if recovered else count - 1
        peak = start + int(np.argmax(values[start : end + 1]))
        excess = float(np.max(after[start : last_judged + 1]) - reference)
        found.append(
            Disturbance(
                start=int(start),
                end=int(end),
                peak=peak,
                before=reference,
                excess=excess,
                sigmas=excess / float(error[start]) if error[start] > 0 else math.inf,
                recovered=recovered,
            )
        )
    return found


def t3_tail(z: float | np.ndarray) -> np.ndarray:
    """P(X > z sigma) for Student-t noise of 3 degrees of freedom whose MAD-sigma is 1.

    The heavy-tailed model of single batches: far more 5-10 sigma points than Gaussian
    noise has (about 1 in 170 beyond 5 sigma), so a point is only remarkable far out.
    """
    t = np.asarray(z, dtype=np.float64) / T3_PER_SIGMA
    root3 = math.sqrt(3.0)
    cdf = 0.5 + (t / root3 / (1.0 + t * t / 3.0) + np.arctan(t / root3)) / math.pi
    return np.asarray(np.clip(1.0 - cdf, 0.0, 1.0), dtype=np.float64)


def expected_exceedances(count: int, z: float) -> float:
    """How many of ``count`` points heavy-tailed noise puts above ``z`` sigmas by chance."""
    return float(count * t3_tail(z))


@lru_cache(maxsize=256)
def chance_threshold(count: int, alpha: float) -> float:
    """The least z (in sigmas) above which fewer than ``alpha`` of ``count`` heavy-tailed
    noise points are expected.

    Remembered: every run of a sweep asks for the same few counts, and the bisection costs
    80 evaluations of the tail.
    """
    # For 3 degrees of freedom the tail is 2 sqrt(3) 3 / (pi t^3) far out; one Newton-free
    # bisection on the exact tail keeps it honest nearer the centre.
    low, high = 0.0, 1e6
    target = alpha / max(count, 1)
    for _ in range(80):
        middle = (low + high) / 2.0
        if float(t3_tail(middle)) > target:
            low = middle
        else:
            high = middle
    return high


def poisson_tail(observed: int, expected: float) -> float:
    """P(N >= observed) for a Poisson count of mean ``expected``: how surprising a count is."""
    if observed <= 0:
        return 1.0
    if expected <= 0:
        return 0.0
    term = math.exp(-expected)
    below = 0.0
    for k in range(observed):
        below += term
        term *= expected / (k + 1)
    return max(0.0, 1.0 - below)


def seams(logged_steps: np.ndarray) -> np.ndarray:
    """Steps where the by-step view of a restarted log switches from one start to another.

    ``logged_steps`` in log order.  Where the step goes back, a new start begins: the
    analysis (last write per step) joins the old start to the new one at the new start's
    first step, and back to the old one after the new start's last step when the new
    start stopped short of the old one's end.  A jump at a seam is the restart, not the
    training: checks that look for jumps leave these steps out.  Empty when the steps only
    increase.
    """
    steps = np.asarray(logged_steps, dtype=np.float64)
    if steps.size < 2:
        return np.empty(0)
    back = np.flatnonzero(np.diff(steps) < 0) + 1
    if back.size == 0:
        return np.empty(0)
    bounds = np.concatenate((back, [steps.size]))
    firsts = steps[back]
    lasts = steps[bounds[1:] - 1]
    return measures.distinct(np.concatenate((firsts, lasts)))


def binned_point_sigma(raw: np.ndarray, size: int, shift: float | None, bins: int) -> np.ndarray:
    """The robust noise of single points inside each bin (MAD around the bin's median, as a
    Gaussian sigma; in log space when ``shift`` is given), ``bins`` values laid out as
    :func:`rundoctor.checks.measures.binned` lays out its bins.  At most 64 evenly spaced
    points of each bin are read, as for the bin medians."""
    raw = np.asarray(raw, dtype=np.float64)
    values = np.log(np.maximum(raw + shift, 1e-300)) if shift is not None else raw
    full = (values.size // size) * size
    step = max(1, size // measures.MEDIAN_SAMPLES)
    blocks = values[:full].reshape(-1, size)[:, ::step]
    centre = measures.row_medians(blocks)[:, np.newaxis]
    sigma = measures.row_medians(np.abs(blocks - centre)) * measures.MAD_TO_SIGMA
    if full < values.size:
        rest = values[full:]
        sigma = np.append(sigma, measures.median(np.abs(rest - measures.median(rest))) * measures.MAD_TO_SIGMA)
    return np.asarray(sigma[:bins], dtype=np.float64)


def disturbance_chance(values: np.ndarray, fitted: Noise, found: Disturbance, persist: int) -> float:
    """How many shifts as large as ``found`` the curve's own single points would make by
    chance over its length.

    The median of ``persist`` points stands ``excess`` above the level only when more than
    half of them do.  How often one point stands that far above its level is read off the
    rest of the curve (its own tail, however heavy: a per-step loss whose hard batches cost
    10-30x the median has many), so the chance of a window of them is a binomial tail, over
    ``persist / tau`` effective points for autocorrelated curves, and there are ``count /
    persist`` such windows in the run: a 20,000-step log has many more chances than a short
    one to put three hard batches side by side.
    """
    count = values.size
    outside = np.ones(count, dtype=bool)
    outside[found.start : found.end + 1] = False
    residual = (values - fitted.level)[outside & np.isfinite(values)]
    if residual.size == 0:
        return 0.0
    stretch = values[found.start : found.end + 1]
    # The highest short median, and the whole stretch's median: a disturbance that lasts
    # many windows is far less likely than any one of them.
    tried = ((persist, found.excess), (stretch.size, measures.median(stretch) - found.before))
    least = math.inf
    for points, excess in tried:
        if points < persist or excess <= 0.0:
            continue
        # The share of single points that high, from a count: its upper one-sigma bound,
        # so a short curve (few points to count) lowers the confidence instead of firing.
        beyond = float(np.sum(residual >= excess))
        single = min(1.0, (beyond + 1.0 + math.sqrt(beyond + 1.0)) / residual.size)
        size = max(1, round(points / max(fitted.tau, 1.0)))
        least = min(least, binomial_tail(size // 2 + 1, size, single) * count / points)
    return least


def binomial_tail(needed: int, size: int, single: float) -> float:
    """P(at least ``needed`` of ``size`` independent points each beyond with ``single``)."""
    return float(
        sum(math.comb(size, k) * single**k * (1.0 - single) ** (size - k) for k in range(needed, size + 1))
    )


# A handful of bad batches each 10-15 sigma out is not remarkable one by one (heavy-tailed
# noise gives one such point in a few hundred), but five of them in 700 points is: the
# Poisson chance of that many where 0.3 are expected is 1e-5.  The count test tries every
# count from ``min_recurring`` to RECURRING_TRIED and pays for trying them all (Bonferroni);
# three is the fewest that makes a pattern rather than two unlucky batches.  0.001 after
# that correction keeps healthy heavy-tailed runs (the worst seen: 0.13 uncorrected) far off.
RECURRING_TRIED = 50


@dataclass(frozen=True)
class Group:
    """Points that stand out together though none need stand out alone."""

    indices: tuple[int, ...]
    sigmas: float  # the lowest of them, in noise sigmas
    expected: float  # how many that high heavy-tailed noise gives over the curve
    chance: float  # Poisson probability of at least this many, before the correction


def recurring_extremes(z: np.ndarray, min_recurring: int, alpha: float) -> Group | None:
    """The points that stand out as a group: the k highest (in noise sigmas), for the k from
    ``min_recurring`` up that heavy-tailed noise explains least, when even after paying for
    every k tried it would give k points that high with probability at most
    ``alpha``.  None otherwise.

    Only for a curve whose points are single logged values: the maxima of bins of a long
    curve are maxima of many batches, which the noise of the bin medians does not describe.
    """
    count = int(np.isfinite(z).sum())
    highest = min(RECURRING_TRIED, z.size)  # only the top ones are ever tried: linear in the points
    top = np.argpartition(z, z.size - highest)[z.size - highest :] if highest else np.empty(0, np.intp)
    order = top[np.argsort(z[top], kind="stable")[::-1]]
    ranked = z[order]
    tried = RECURRING_TRIED - min_recurring + 1
    best: Group | None = None
    for k in range(max(2, min_recurring), RECURRING_TRIED + 1):
        if k > count:
            break
        expected = expected_exceedances(z.size, float(ranked[k - 1]))
        chance = poisson_tail(k, expected)
        if best is None or chance < best.chance:
            best = Group(tuple(sorted(order[:k].tolist())), float(ranked[k - 1]), expected, chance)
    if best is None or best.chance * tried > alpha:
        return None
    return best
def binned_recurring_extremes(
    raw: np.ndarray,
    size: int,
    shift: float | None,
    level: np.ndarray,
    before: np.ndarray,
    floor: np.ndarray,
    width: int,
    *,
    excluded: np.ndarray,
    min_excess: float,
    min_recurring: int,
    alpha: float,
) -> Group | None:
    """:func:`recurring_extremes` on the single points of a binned curve (``raw``, ``size``
    points a bin; in log space after adding ``shift`` when it is given), as a group of the
    bins that hold them; bins where ``excluded`` is set take no part.

    A bin's maximum is the largest of many batches, which the group test cannot judge.  Each
    point is judged instead against its bin's smoothed ``level`` and the level ``before`` the
    bin, in sigmas of single points around that level: the MAD of the points of ``width`` bins
    about it (a bin of a few points says little of its own spread: the median of three is one
    of them), never below ``floor``, each bin's noise of its median.
    """
    points = np.log(np.maximum(np.asarray(raw, dtype=np.float64) + shift, 1e-300)) if shift is not None else raw
    index = np.arange(points.size)
    bins = np.minimum(index // size, level.size - 1)
    residual = points - level[bins]
    block = width * size
    full = (points.size // block) * block
    spread = measures.row_medians(np.abs(residual[:full]).reshape(-1, block)) if full else np.empty(0)
    if full < points.size:
        spread = np.append(spread, measures.median(np.abs(residual[full:])))
    sigma = np.maximum(spread[index // block] * measures.MAD_TO_SIGMA, floor[bins])
    above = np.minimum(residual, points - before[bins])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where((above > min_excess) & ~excluded[bins] & (bins > 0), above / sigma, -np.inf)
    group = recurring_extremes(z, min_recurring, alpha)
    if group is None:
        return None
    return Group(tuple(sorted({int(bins[index]) for index in group.indices})), group.sigmas, group.expected, group.chance)


