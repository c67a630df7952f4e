"""The smoothing helpers equal pandas' definitions, which the thresholds were tuned with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rundoctor.checks.measures import ema, rolling_median

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
