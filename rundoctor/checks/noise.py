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
  the effective size ``k (1 - rho) / (1 + rho)`` (see :mod:`rundoctor.checks.trend`).
- **Persistence.**  A disturbance is a shift of the median of ``persist`` consecutive
  points above the median of the points before them, beyond both the noise of the two
  medians and a least relative size.  Moving a median of k points needs more than half of
  them to be extreme: one unlucky batch, or two, cannot.
- **Chance counts.**  Single points are judged by how many of them a heavy-tailed
  (Student-t, 3 degrees of freedom) noise of the same scale would produce by chance over
  the whole curve: a point counts only when fewer than ``alpha`` such points are expected.

Everything is O(n log w) numpy (moving medians); no Python loop per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rundoctor.checks import signal
from rundoctor.checks.trend import effective_size, lag1, robust_sigma

# The standard deviation of the median of k Gaussian points is sqrt(pi / 2) sigma / sqrt(k).
MEDIAN_ERROR = math.sqrt(math.pi / 2.0)

# A Student-t with 3 degrees of freedom has a median absolute value of 0.7649: its scale is
# MAD / 0.7649, i.e. (MAD-sigma) / (1.4826 * 0.7649) = sigma / 1.134.
T3_PER_SIGMA = 1.0 / (signal.MAD_TO_SIGMA * 0.7649)

# A disturbance is over when the short median is back within this many standard errors of
# the level before it: two, so a shift that merely shrinks below the detection threshold
# is still going on.
RECOVERY_SIGMAS = 2.0


def log_values(values: np.ndarray) -> np.ndarray | None:
    """``log(values)`` when every finite value is positive, else None (a signed loss)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or float(finite.min()) <= 0.0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values)


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
    """A curve split into its level (centred rolling median) and its noise around it."""

    level: np.ndarray
    residual: np.ndarray
    sigma: float  # robust per-point scale of the residuals, at least the floor given to fit
    rho: float  # lag-1 autocorrelation of the residuals, in [0, 0.95]

    def median_error(self, points: int) -> float:
        """Standard error of the median of ``points`` consecutive points."""
        return MEDIAN_ERROR * self.sigma / math.sqrt(effective_size(max(int(points), 1), self.rho))

    def z(self) -> np.ndarray:
        """Residuals in units of ``sigma`` (inf where sigma is 0 and the residual is not)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.residual / self.sigma, dtype=np.float64)


def fit(values: np.ndarray, width: int, floor: float = 0.0) -> Noise:
    """The noise of a finite curve around its centred rolling median of ``width`` points.

    ``floor`` bounds the scale from below: a loss rounded to 4 decimals, or one that sits
    on the same value for most points, has a MAD of 0 but is not noiseless.
    """
    values = np.asarray(values, dtype=np.float64)
    level = signal.rolling_median(values, width)
    residual = values - level
    sigma = max(robust_sigma(residual), float(floor))
    return Noise(level, residual, sigma, lag1(residual))


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
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    persist = max(1, int(persist))
    baseline = max(persist, int(baseline))
    if count < persist + 2:
        return []
    after = leading_median(values, persist)
    before = np.concatenate(([np.nan], trailing_median(values, baseline)[:-1]))
    error = math.hypot(noise.median_error(persist), noise.median_error(baseline))
    threshold = max(sigmas * error, min_excess)
    recovery = max(RECOVERY_SIGMAS * error, min_excess)
    index = np.arange(count)
    # A full short window, and a baseline of at least ``persist`` points before it.
    judged = (index >= persist) & (index <= count - persist)
    shift = np.where(judged, after - before, -np.inf)
    above = shift > threshold
    starts, _ = signal.stretches(above)
    found: list[Disturbance] = []
    for start in starts.tolist():
        if found and start <= found[-1].end + persist:
            continue  # inside (or just after) the disturbance already found
        reference = float(before[start])
        # It lasts until the short median is back near the level before it (a trailing
        # baseline would catch up with a shift that never comes back).
        back = np.flatnonzero(after[start:] - reference <= recovery)
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
                sigmas=excess / error if error > 0 else math.inf,
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


def chance_threshold(count: int, alpha: float) -> float:
    """The least z (in sigmas) above which fewer than ``alpha`` of ``count`` heavy-tailed
    noise points are expected."""
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
