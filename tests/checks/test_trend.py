"""The shared trend helpers: robust to heavy tails, honest about autocorrelation and few points."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks import trend
from tests import curves


def test_t_critical_matches_student_t() -> None:
    # Reference values of Student's t (two-sided 95%).
    assert trend.t_critical(0.95, 3) == pytest.approx(3.182, rel=0.02)
    assert trend.t_critical(0.95, 10) == pytest.approx(2.228, rel=0.01)
    assert trend.t_critical(0.95, 1e6) == pytest.approx(1.960, rel=0.001)
    assert trend.t_critical(0.99, 20) == pytest.approx(2.845, rel=0.01)


def test_heavy_tailed_flat_loss_is_not_a_trend() -> None:
    steps = curves.steps(3000)
    values = curves.heavy_tailed(np.full(3000, 0.3), seed=1)
    fit = trend.trend(steps, values)
    assert fit is not None
    assert not fit.falling(0.95) and not fit.rising(0.95)
    # A few 30x batches do not move the level or the noise estimate.
    assert fit.level == pytest.approx(0.3, rel=0.15)


def test_heavy_tailed_slow_fall_is_found() -> None:
    steps = curves.steps(3000)
    values = curves.heavy_tailed(np.linspace(0.5, 0.35, 3000), seed=2)
    fit = trend.trend(steps, values)
    assert fit is not None and fit.falling(0.95, min_relative=0.1)


def test_running_average_is_autocorrelated_and_loses_confidence() -> None:
    # Keras/HF log the mean since the epoch began: neighbouring points share most batches.
    per_step = curves.heavy_tailed(np.full(2000, 1.0), seed=3)
    logged = curves.epoch_running_mean(per_step, steps_per_epoch=200)
    fit = trend.trend(curves.steps(2000), logged)
    assert fit is not None
    assert fit.effective < 0.6 * fit.blocks
    assert not fit.falling(0.99)


def test_few_points_widen_the_interval() -> None:
    five = trend.trend(np.arange(5), np.array([1.0, 0.97, 0.99, 0.95, 0.96]))
    fifty = trend.trend(np.arange(50), np.linspace(1.0, 0.95, 50) + 0.01 * np.sin(np.arange(50)))
    assert five is not None and fifty is not None
    assert five.critical(0.95) > 1.4 * fifty.critical(0.95)
    assert five.critical(0.95) * five.error > 1.5 * fifty.critical(0.95) * fifty.error
    assert not five.flat(0.95, 0.02)


def test_flat_needs_the_whole_interval_inside_the_band() -> None:
    values = 0.5 + 0.002 * curves.rng(4).standard_normal(400)
    fit = trend.trend(curves.steps(400), values)
    assert fit is not None
    assert fit.flat(0.95, 0.01)
    assert not fit.flat(0.95, 0.0001)


def test_tail_measures_the_end_of_the_run() -> None:
    values = curves.plateau(500, start=2.0, level=0.5, fall_fraction=0.3)
    fit = trend.tail(curves.steps(500), values, 0.3)
    assert fit is not None and abs(fit.relative) < 0.01


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series(name: str) -> None:
    steps, values = curves.HOSTILE[name]
    order = np.argsort(np.asarray(steps), kind="stable")
    trend.trend(np.asarray(steps)[order], np.asarray(values, dtype=float)[order])
    trend.relative_noise(np.asarray(values, dtype=float))


def test_relative_noise_ignores_single_huge_batches() -> None:
    values = curves.heavy_tailed(np.full(1000, 1.0), seed=5)
    assert 0.1 < trend.relative_noise(values) < 1.5


# The textbook forms the shared statistics were first written in.  The helpers compute the
# same sums in a cheaper arrangement (one centring for both autocorrelations, cached index
# pairs, np.var as the sum of squares already taken); findings quote these numbers, so they
# must agree to the bit, not approximately.


def _textbook_lag1(residuals: np.ndarray) -> float:
    if residuals.size < 4:
        return 0.0
    centred = residuals - residuals.mean()
    denominator = float((centred**2).sum())
    if denominator <= 0:
        return 0.0
    return min(max(float((centred[1:] * centred[:-1]).sum()) / denominator, 0.0), trend.MAX_RHO)


def _textbook_correlation_time(residuals: np.ndarray) -> float:
    count = residuals.size
    rho1 = _textbook_lag1(residuals)
    ar1 = (1.0 + rho1) / (1.0 - rho1)
    if count < 8:
        return ar1
    centred = residuals - residuals.mean()
    denominator = float((centred**2).sum())
    if denominator <= 0:
        return 1.0
    spectrum = np.fft.rfft(centred, n=2 * count)
    correlations = np.fft.irfft(spectrum * np.conj(spectrum))[1 : max(1, count // 4) + 1] / denominator
    negative = np.flatnonzero(correlations <= 0)
    geyer = 1.0 + 2.0 * float((correlations[: negative[0]] if negative.size else correlations).sum())
    size = max(2, round(np.sqrt(count)))
    groups = count // size
    batch = 1.0
    if groups >= 5:
        means = residuals[: groups * size].reshape(groups, size).mean(axis=1)
        variance = float(np.var(residuals))
        if variance > 0:
            batch = float(np.var(means, ddof=1)) * size / variance
    return float(max(ar1, min(max(geyer, batch), count / 2.0)))


def _textbook_theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        return 0.0, float(np.median(y)) if y.size else float("nan")
    rate = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    return rate, float(np.median(y - rate * x))


def _residual_series() -> list[np.ndarray]:
    rng = curves.rng(7)
    series = [np.zeros(n) for n in (3, 4, 8, 30)]
    for n in (4, 5, 7, 8, 9, 24, 25, 60, 61, 500, 2000):
        white = rng.standard_normal(n)
        series += [white, np.cumsum(white), np.round(white, 1), curves.heavy_tailed(np.ones(n), seed=n) - 1.0]
    return series


def test_autocorrelation_helpers_equal_the_textbook_sums_to_the_bit() -> None:
    for residuals in _residual_series():
        assert trend.lag1(residuals) == _textbook_lag1(residuals)
        assert trend.correlation_time(residuals) == _textbook_correlation_time(residuals)
        assert trend.autocorrelation(residuals) == (_textbook_lag1(residuals), _textbook_correlation_time(residuals))


def test_theil_sen_equals_the_textbook_line_to_the_bit() -> None:
    rng = curves.rng(3)
    for n in (1, 2, 3, 10, 60):
        y = rng.standard_normal(n)
        for x in (np.arange(n, dtype=np.float64), np.round(rng.uniform(0, 4, n)), np.zeros(n)):
            got, expected = trend.theil_sen(x, y), _textbook_theil_sen(x, y)
            assert np.array_equal(got, expected, equal_nan=True), (x, y)


def test_a_line_is_the_trends_change_and_completes_to_the_trend() -> None:
    rng = curves.rng(9)
    cases = [
        (curves.steps(n), curves.heavy_tailed(curves.decay(n, 2.0, 0.5), seed=n)) for n in (3, 7, 60, 61, 500)
    ]
    cases += [(np.arange(2), np.ones(2)), (np.zeros(5), rng.standard_normal(5)), (np.arange(6), np.full(6, np.nan))]
    cases += [(np.arange(40.0), np.where(rng.random(40) < 0.2, np.nan, rng.standard_normal(40)))]
    for steps, values in cases:
        fit = trend.trend(steps, values)
        first_look = trend.line(steps, values)
        assert (first_look is None) == (fit is None)
        if first_look is not None:
            assert first_look.change == fit.change and first_look.trend() == fit
