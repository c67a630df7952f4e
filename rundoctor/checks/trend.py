"""Trends and flatness of training curves, with significance that survives real logs.

Training curves break the assumptions of a textbook regression in three ways, and every
claim made here ("still falling", "flat", "fell by 5%") accounts for each of them:

- **Heavy tails.**  A per-step loss of a small batch on noisy labels has single batches at
  5-50x its median.  A curve is therefore first reduced to block medians (at most
  ``BLOCKS`` of them, each of consecutive points), the line through them is a Theil-Sen fit
  (the median of pairwise slopes), and its scatter is a median absolute deviation: one
  unlucky batch moves none of them.
- **Autocorrelation.**  Running averages (Hugging Face and Keras log the mean since the
  epoch began), EMA-smoothed logs and slow wander around a trend make neighbouring points
  agree, so n points carry far less than n points of evidence.  The standard error of the
  fitted change is widened by the lag-1 autocorrelation rho of the residuals: an effective
  sample size ``n (1 - rho) / (1 + rho)``, or n over the integrated autocorrelation time
  when longer memory (an epoch's running mean) makes that smaller.
- **Few points.**  Five validation evaluations or three epochs cannot show a trend with
  confidence.  Critical values come from Student's t with the effective degrees of freedom,
  so fewer points widen the interval and a claim loses confidence instead of firing.

Everything here is O(n) plus O(BLOCKS^2); no Python loop per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rundoctor.checks import measures

# 1.4826 turns a median absolute deviation into a standard deviation for Gaussian noise.
MAD_TO_SIGMA = 1.4826

# Block medians a curve is reduced to before fitting.  60 blocks leave 6+ points per block
# for any curve over 360 points (enough for a median to ignore a 50x batch) and keep the
# Theil-Sen fit (1,770 pairwise slopes) cheap.
BLOCKS = 60

# Lag-1 autocorrelation is capped here: beyond it the estimate from a short residual series
# is mostly the trend the straight line missed, and n_eff would collapse to nothing.
MAX_RHO = 0.95


@dataclass(frozen=True)
class Trend:
    """A straight-line trend of a curve over a stretch, with its uncertainty.

    ``change`` is the fitted change from the first to the last step; ``error`` its
    standard error after the autocorrelation correction; ``level`` the median of the
    stretch; ``noise`` the robust scatter of the (blocked) points around the line.
    """

    change: float
    error: float
    level: float
    noise: float
    points: int  # points in the stretch
    blocks: int  # block medians the fit used
    rho: float  # lag-1 autocorrelation of the residuals (0 when negative)
    effective: float  # effective number of independent blocks (see correlation_time)

    @property
    def sigmas(self) -> float:
        """The change in standard errors (inf for a noiseless non-zero change, 0 for none)."""
        if self.error > 0:
            return self.change / self.error
        return 0.0 if self.change == 0 else math.copysign(math.inf, self.change)

    @property
    def relative(self) -> float:
        """The change as a fraction of the level (NaN when the level is 0)."""
        return self.change / abs(self.level) if self.level != 0 else float("nan")

    def critical(self, confidence: float) -> float:
        """Two-sided Student-t critical value at ``confidence`` for this trend's degrees of
        freedom (effective blocks minus the two fitted parameters, at least one)."""
        return t_critical(confidence, max(1.0, self.effective - 2.0))

    def interval(self, confidence: float) -> tuple[float, float]:
        """Confidence interval of ``change``."""
        half = self.critical(confidence) * self.error
        return self.change - half, self.change + half

    def falling(self, confidence: float, min_relative: float = 0.0) -> bool:
        """Whether the curve falls significantly, by at least ``min_relative`` of its level."""
        return self.interval(confidence)[1] < 0 and -self.relative >= min_relative

    def rising(self, confidence: float, min_relative: float = 0.0) -> bool:
        """Whether the curve rises significantly, by at least ``min_relative`` of its level."""
        return self.interval(confidence)[0] > 0 and self.relative >= min_relative

    def flat(self, confidence: float, tolerance: float) -> bool:
        """Whether the change is shown to lie within +-``tolerance`` (absolute units).

        An equivalence test: the whole confidence interval of the change must fit in the
        band.  Few or autocorrelated points widen the interval, so a short noisy stretch is
        "not shown flat" rather than flat.
        """
        low, high = self.interval(confidence)
        return -tolerance <= low and high <= tolerance


def t_critical(confidence: float, dof: float) -> float:
    """Two-sided Student-t quantile (Cornish-Fisher expansion; within 2% for dof >= 3,
    conservative below), without scipy."""
    z = normal_quantile(0.5 + confidence / 2.0)
    dof = max(float(dof), 1.0)
    return float(
        z
        + (z**3 + z) / (4.0 * dof)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96.0 * dof**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384.0 * dof**3)
    )


def normal_cdf(sigmas: float) -> float:
    """Standard normal cumulative probability at ``sigmas``."""
    return 0.5 * (1.0 + math.erf(sigmas / math.sqrt(2.0)))


def normal_quantile(p: float) -> float:
    """Standard normal quantile (Acklam's rational approximation, error < 1.2e-9)."""
    p = min(max(float(p), 1e-12), 1.0 - 1e-12)
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239)
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783)
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low or p > 1 - low:
        q = math.sqrt(-2 * math.log(p if p < low else 1 - p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
        return x if p < low else -x
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1
    )


def robust_sigma(values: np.ndarray) -> float:
    """Median absolute deviation from the median, as a Gaussian sigma (0 for < 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    if values.size < 2:
        return 0.0
    return measures.median(np.abs(values - measures.median(values))) * MAD_TO_SIGMA


def lag1(residuals: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``residuals``, clipped to [0, MAX_RHO] (0 for < 4 values).

    Negative autocorrelation (alternating noise) would inflate the effective size above
    the count; it is treated as none, which is the cautious side.
    """
    return autocorrelation(residuals)[0]


def effective_size(count: int, rho: float) -> float:
    """Independent points worth of ``count`` points with lag-1 autocorrelation ``rho``."""
    return max(1.0, count * (1.0 - rho) / (1.0 + rho))


def correlation_time(residuals: np.ndarray) -> float:
    """Integrated autocorrelation time 1 + 2 sum(rho_k), summed while rho_k stays positive
    (Geyer's initial positive sequence) up to lag n/4; at least the AR(1) time of lag 1.

    Lag 1 alone misses the long memory of running averages: a loss logged as the mean
    since the epoch began carries one heavy batch for the rest of the epoch, so blocks a
    few lags apart still agree.
    """
    return autocorrelation(residuals)[1]


def autocorrelation(residuals: np.ndarray) -> tuple[float, float]:
    """(:func:`lag1`, :func:`correlation_time`) of ``residuals``, centred once for both: a
    trend asks for both of two residual series."""
    residuals = np.asarray(residuals, dtype=np.float64)
    count = residuals.size
    if count < 4:
        return 0.0, 1.0
    centred = residuals - residuals.mean()
    denominator = float((centred**2).sum())
    rho1 = 0.0
    if denominator > 0:
        rho1 = min(max(float((centred[1:] * centred[:-1]).sum()) / denominator, 0.0), MAX_RHO)
    ar1 = (1.0 + rho1) / (1.0 - rho1)
    if count < 8:
        return rho1, ar1
    if denominator <= 0:
        return rho1, 1.0
    lags = max(1, count // 4)
    spectrum = np.fft.rfft(centred, n=2 * count)
    correlations = np.fft.irfft(spectrum * np.conj(spectrum))[1 : lags + 1] / denominator
    negative = np.flatnonzero(correlations <= 0)
    kept = correlations[: negative[0]] if negative.size else correlations
    geyer = 1.0 + 2.0 * float(kept.sum())
    # Batch means: the scatter of the means of ~sqrt(n) consecutive stretches against what
    # independent points would give.  It sees memory longer than the lags above resolve
    # (a heavy batch early in an epoch lifts that epoch's whole running mean).
    size = max(2, round(math.sqrt(count)))
    groups = count // size
    batch = 1.0
    if groups >= 5:
        means = residuals[: groups * size].reshape(groups, size).mean(axis=1)
        variance = denominator / count  # np.var(residuals), to the bit: the same sums
        if variance > 0:
            batch = float(np.var(means, ddof=1)) * size / variance
    return rho1, float(max(ar1, min(max(geyer, batch), count / 2.0)))


def blocks(steps: np.ndarray, values: np.ndarray, count: int = BLOCKS) -> tuple[np.ndarray, np.ndarray, int]:
    """(block middle steps, block medians, points per block) of a finite, sorted curve."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n <= count:
        return steps, values, 1
    size = -(-n // count)
    full = (n // size) * size
    level = measures.row_medians(values[:full].reshape(-1, size))
    middle = steps[:full].reshape(-1, size).mean(axis=1)
    if full < n:
        level = np.append(level, measures.median(values[full:]))
        middle = np.append(middle, steps[full:].mean())
    return middle, level, size


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the Theil-Sen line: median pairwise slope, median intercept."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    i, j = _pairs(x.size)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        return 0.0, measures.median(y) if y.size else float("nan")
    if keep.all():  # distinct x, as block middles are: no pair to leave out
        rate = measures.median((y[j] - y[i]) / dx)
    else:
        rate = measures.median((y[j] - y[i])[keep] / dx[keep])
    return rate, measures.median(y - rate * x)


@lru_cache(maxsize=64)
def _pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of ``count`` indices (i < j), read-only: the same few counts come back for
    every curve (at most ``BLOCKS`` blocks)."""
    first, second = np.triu_indices(count, k=1)
    first.flags.writeable = second.flags.writeable = False
    return first, second


def trend(steps: np.ndarray, values: np.ndarray, count: int = BLOCKS) -> Trend | None:
    """The robust straight-line trend of a curve (see the module docstring).

    None for fewer than three finite points or a single step.  Non-finite values are
    dropped; steps must be sorted.
    """
    fitted = line(steps, values, count)
    return None if fitted is None else fitted.trend()


@dataclass(frozen=True)
class Line:
    """The Theil-Sen line through a curve's block medians: a trend's change, before the noise
    and autocorrelation its error needs (two thirds of the cost of :func:`trend`).

    A first look for checks that need a large change before they ask how sure it is: most
    curves fail the size, and the error is never computed; :meth:`trend` completes the rest.
    """

    values: np.ndarray  # the finite values of the stretch
    scale: np.ndarray  # block positions, the stretch scaled to one unit
    medians: np.ndarray  # the block medians
    change: float  # the fitted change over the stretch (the slope per whole stretch)
    intercept: float

    def trend(self) -> Trend:
        """The whole :class:`Trend` of this line's curve, as :func:`trend` gives it."""
        y, scale, rate = self.medians, self.scale, self.change
        line = y - (self.intercept + rate * scale)
        residuals = line
        centred = scale - scale.mean()
        if y.size >= 8:
            # Noise is measured around a quadratic, not the line: the bend of a decaying loss is
            # trend, not noise.  Autocorrelation is the larger of the two fits' (the quadratic
            # alone would absorb the slow wander of a running average and call it trend).
            residuals = y - np.polyval(np.polyfit(centred, y, 2), centred)
        sigma = robust_sigma(residuals)
        if sigma == 0.0:
            # Half or more blocks sit exactly on the fit: fall back to the ordinary scatter so
            # a curve logged at coarse resolution still has an honest error.
            sigma = float(np.std(residuals))
        line_rho, line_time = autocorrelation(line)
        residual_rho, residual_time = (line_rho, line_time) if residuals is line else autocorrelation(residuals)
        rho = max(line_rho, residual_rho)
        effective = max(1.0, y.size / max(line_time, residual_time))
        spread = float((centred**2).sum())
        # Standard error of an OLS slope, widened by sqrt(n / n_eff) for autocorrelation; the
        # Theil-Sen slope is about as efficient for Gaussian noise and far better for heavy tails.
        error = sigma / math.sqrt(spread) * math.sqrt(y.size / effective) if spread > 0 else math.inf
        # Steps are scaled so the stretch is one unit wide: the slope is the whole change.
        return Trend(
            change=float(rate),
            error=float(error),
            level=measures.median(self.values),
            noise=float(sigma),
            points=int(self.values.size),
            blocks=int(y.size),
            rho=float(rho),
            effective=float(effective),
        )


def line(steps: np.ndarray, values: np.ndarray, count: int = BLOCKS) -> Line | None:
    """The :class:`Line` a trend starts from; None where :func:`trend` is None."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values) & np.isfinite(steps)
    if not finite.all():
        steps, values = steps[finite], values[finite]
    if values.size < 3 or steps[-1] == steps[0]:
        return None
    x, y, _ = blocks(steps, values, count)
    span = float(steps[-1] - steps[0])
    scale = x / span  # slopes per whole stretch: no overflow for steps in the millions
    rate, intercept = theil_sen(scale, y)
    return Line(values, scale, y, rate, intercept)


def tail(steps: np.ndarray, values: np.ndarray, fraction: float, minimum: int = 4) -> Trend | None:
    """The trend of the last ``fraction`` of a curve's step range (at least ``minimum`` points)."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.size == 0:
        return None
    cut = steps[-1] - fraction * (steps[-1] - steps[0])
    first = int(np.searchsorted(steps, cut, side="left"))
    first = min(first, max(0, steps.size - minimum))
    return trend(steps[first:], values[first:])


def relative_noise(values: np.ndarray) -> float:
    """Robust point-to-point noise of a curve as a fraction of its median level.

    Differences of neighbours remove a slow trend; their MAD ignores single heavy-tailed
    batches.  NaN when the level is 0 or there are fewer than three finite points.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return float("nan")
    level = measures.median(values)
    if level == 0:
        return float("nan")
    return robust_sigma(np.diff(values)) / math.sqrt(2.0) / abs(level)


def start_level(values: np.ndarray, fraction: float, minimum: int = 3) -> float:
    """Where a curve started: the higher of the median of its first three points and the
    median of its first ``fraction`` (at least ``minimum`` points).

    The first three catch a fall inside the first few points (38 -> 8 within 1% of a run);
    a median of three, not the first value, so one 30x batch at step 0 does not set it.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    width = int(max(1, min(values.size, max(minimum, round(values.size * fraction)))))
    return max(measures.median(values[:3]), measures.median(values[:width]))
