"""W002 weight-init: first logged weights constant, or spread far from what the fan-in calls for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks.weight_init import CHECK, expected_range
from rundoctor.findings import Confidence, Severity
from tests import curves
from tests.checks import histogram_logs as logs

FAN_IN, FAN_OUT = 64, 128


def _layer(weights: np.ndarray, *, bias: bool = True, name: str = "fc1", step: int = 0, encode=logs.torch_histogram):
    histograms = {f"{name}.weight": [encode(weights, step), encode(weights * 1.01, step + 100)]}
    if bias:
        histograms[f"{name}.bias"] = [encode(np.zeros(FAN_OUT), step)]
    return histograms


def _default(seed: int = 0) -> np.ndarray:
    bound = 1 / math.sqrt(FAN_IN)  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    return logs.rng(seed).uniform(-bound, bound, (FAN_OUT, FAN_IN)).ravel()


def _find(histograms, **params):
    return curves.run_check(CHECK, logs.run_with(histograms), CHECK.make_params(params) if params else None)


def test_the_fan_in_is_read_from_the_bias_count() -> None:
    low, high, fan_in = expected_range(FAN_IN * FAN_OUT, FAN_OUT)
    assert fan_in == FAN_IN and high == pytest.approx(math.sqrt(2 / FAN_IN))
    assert low == pytest.approx(1 / math.sqrt(3 * FAN_IN))
    low, high, fan_in = expected_range(10 * 10_000, 10_000)  # Xavier with a wide fan-out is smaller
    assert low == pytest.approx(math.sqrt(2 / 10_010))
    assert expected_range(1000, None)[2] is None and expected_range(1000, 7)[2] is None


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_default_and_he_inits_are_silent(encode) -> None:
    assert _find(_layer(_default(), encode=encode)) == []
    he = logs.rng(1).normal(0, math.sqrt(2 / FAN_IN), FAN_IN * FAN_OUT)
    assert _find(_layer(he, encode=encode)) == []


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_an_all_zero_layer_fires_with_high_confidence(encode) -> None:
    [finding] = _find({**_layer(np.zeros(FAN_IN * FAN_OUT), name="fc2", encode=encode), **_layer(_default())})
    assert finding.severity is Severity.WARNING and finding.confidence is Confidence.HIGH
    assert finding.message.startswith("fc2 starts all zero at step 0") and finding.tags == ("fc2.weight",)
    assert "fc2" in finding.advice


def test_a_constant_layer_fires_but_a_scale_of_one_is_a_normalisation_layer() -> None:
    [finding] = _find(_layer(np.full(FAN_IN * FAN_OUT, 0.05)))
    assert finding.evidence["layers"]["fc1"]["problem"] == "constant"
    assert _find(_layer(np.ones(FAN_OUT), bias=False)) == []


def test_weights_far_too_wide_for_the_fan_in_fire() -> None:
    [finding] = _find(_layer(logs.rng(2).normal(0, 1.0, FAN_IN * FAN_OUT)))
    assert finding.evidence["layers"]["fc1"]["problem"] == "wide"
    assert "fan-in 64, from 8192 weights and 128 biases" in finding.message
    assert finding.confidence is Confidence.HIGH


def test_near_misses_at_the_spread_factor() -> None:
    high = math.sqrt(2 / FAN_IN)
    assert _find(_layer(logs.rng(3).normal(0, 2.8 * high, FAN_IN * FAN_OUT))) == []
    assert len(_find(_layer(logs.rng(3).normal(0, 3.3 * high, FAN_IN * FAN_OUT)))) == 1
    low = 1 / math.sqrt(3 * FAN_IN)
    assert _find(_layer(logs.rng(4).normal(0, low / 2.8, FAN_IN * FAN_OUT))) == []
    [narrow] = _find(_layer(logs.rng(4).normal(0, low / 3.3, FAN_IN * FAN_OUT)))
    assert narrow.evidence["layers"]["fc1"]["problem"] == "narrow"
    assert _find(_layer(logs.rng(3).normal(0, 3.3 * high, FAN_IN * FAN_OUT)), spread_factor=4.0) == []


def test_without_a_bias_only_absurd_spreads_fire_with_low_confidence() -> None:
    assert _find(_layer(logs.rng(5).normal(0, 1.0, FAN_IN * FAN_OUT), bias=False)) == []  # an embedding
    [finding] = _find(_layer(logs.rng(5).normal(0, 10.0, FAN_IN * FAN_OUT), bias=False))
    assert finding.confidence is Confidence.LOW and "fan-in unknown" in finding.message


def test_a_first_histogram_after_training_began_is_said() -> None:
    [finding] = _find(_layer(logs.rng(6).normal(0, 1e-3, FAN_IN * FAN_OUT), step=21, name="dense_1"))
    assert "first logged at step 21" in finding.message and finding.confidence is Confidence.MEDIUM
