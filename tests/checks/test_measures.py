"""The smoothing helpers equal pandas' definitions, which the thresholds were tuned with, and
the fast medians equal numpy's to the bit (findings quote them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rundoctor.checks.measures import distinct, ema, median, quantile, rolling_median, row_medians, window_envelope

RNG = np.random.default_rng(11)


def _series(n: int, missing: float = 0.05) -> np.ndarray:
    values = RNG.normal(50.0, 10.0, n)
    values[RNG.random(n) < missing] = np.nan
    return values


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 57, 2000])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 10, 11, 100, 101, 3000])
def test_rolling_median_is_pandas_centred_rolling_median(n: int, width: int) -> None:
    values = _series(n)
    expected = pd.Series(values, dtype=np.float64).rolling(window=width, center=True, min_periods=1).median()
    assert np.array_equal(rolling_median(values, width), expected.to_numpy(), equal_nan=True)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 100, 2000, 200_000])
@pytest.mark.parametrize("span", [2, 3, 10, 100, 1000, 50_000])
def test_ema_is_pandas_bias_corrected_ewm(n: int, span: int) -> None:
    values = _series(n)
    expected = pd.Series(values, dtype=np.float64).ewm(span=span, adjust=True, ignore_na=True).mean().to_numpy()
    result = ema(values, span)
    assert np.array_equal(np.isnan(result), np.isnan(expected))
    assert np.allclose(result, expected, rtol=1e-12, atol=0.0, equal_nan=True)


# Values where a median could differ in its last bit or the sign of a zero: exact ties,
# both zeros, infinities whose average is NaN, NaN itself, and sums that overflow.
_AWKWARD = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324, 0.1, 0.2])


def _same(got: float | np.ndarray, expected: float | np.ndarray) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    return np.array_equal(got, expected, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 60, 61, 1770, 2000])
def test_median_is_numpy_median_to_the_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    for draw in (rng.normal(0.0, 1.0, n), rng.normal(0.0, 1.0, n).round(1), rng.choice(_AWKWARD[:6], n), rng.choice(_AWKWARD, n)):
        with np.errstate(all="ignore"):
            expected = np.median(draw)
        got = median(draw)
        assert isinstance(got, float)
        assert _same(got, expected), (draw, got, expected)


def test_median_of_zeros_of_either_sign_is_positive_zero_as_numpy_gives() -> None:
    assert _same(median(np.array([-0.0])), np.median(np.array([-0.0])))
    assert _same(median(np.array([-0.0, 1.0, -0.0])), 0.0)


def test_median_of_other_dtypes_and_of_nothing_is_numpy_median() -> None:
    assert median([3, 1, 2, 10]) == 2.5
    assert median(np.array([1.5, 2.5], dtype=np.float32)) == np.median(np.array([1.5, 2.5], dtype=np.float32))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(median(np.empty(0)))


@pytest.mark.parametrize("columns", [1, 2, 5, 64])
def test_row_medians_are_numpy_medians_along_rows_to_the_bit(columns: int) -> None:
    rng = np.random.default_rng(columns)
    matrix = rng.choice(_AWKWARD, (40, columns))
    with np.errstate(all="ignore"):
        expected = np.median(matrix, axis=1)
    assert _same(row_medians(matrix), expected)
    strided = rng.normal(0.0, 1.0, (30, 4 * columns))[:, ::4]
    assert _same(row_medians(strided), np.median(strided, axis=1))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 99, 100, 101, 2000])
@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 0.99, 1.0, 1 / 3])
def test_quantile_is_numpy_quantile_to_the_bit(n: int, q: float) -> None:
    rng = np.random.default_rng(n)
    for draw in (rng.exponential(1.0, n), rng.exponential(1.0, n).round(1), rng.choice(_AWKWARD[[0, 1, 2, 3, 7, 8, 9]], n)):
        with np.errstate(all="ignore"):
            expected = np.quantile(draw, q)
        got = quantile(draw, q)
        assert isinstance(got, float)
        assert _same(got, expected), (draw, q, got, expected)


def test_quantile_of_non_finite_values_is_numpy_quantile() -> None:
    values = np.array([1.0, np.nan, 3.0, np.inf])
    with np.errstate(invalid="ignore"):
        assert _same(quantile(values, 0.5), np.quantile(values, 0.5))
        assert _same(quantile(np.array([1.0, np.inf, 2.0]), 0.99), np.quantile(np.array([1.0, np.inf, 2.0]), 0.99))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 500])
def test_distinct_values_are_numpy_unique(n: int) -> None:
    rng = np.random.default_rng(n)
    for draw in (rng.choice(_AWKWARD[[2, 3, 4, 5, 6, 7, 10]], n), rng.integers(-3, 3, n), rng.normal(0.0, 1.0, n)):
        expected = np.unique(draw)
        got = distinct(draw)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected, equal_nan=True), (draw, got, expected)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 60, 501])
@pytest.mark.parametrize("width", [1, 2, 3, 10, 11, 100, 1000])
def test_window_envelope_bounds_every_centred_window_and_its_median(n: int, width: int) -> None:
    values = np.random.default_rng(n + width).standard_t(2, n)
    least, largest = window_envelope(values, width)
    assert least.shape == largest.shape == values.shape
    ahead = (width - 1) // 2
    for i in range(n):
        window = values[max(0, i - (width - 1 - ahead)) : i + ahead + 1]
        assert least[i] <= window.min() and largest[i] >= window.max()
        # never looser than the points within width - 1 of i
        near = values[max(0, i - width + 1) : i + width]
        assert least[i] >= near.min() and largest[i] <= near.max()
    smooth = rolling_median(values, width)
    assert np.all((least <= smooth) & (smooth <= largest))
