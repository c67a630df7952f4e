"""A002 saturated-activations: tanh/sigmoid outputs piled at the bounds of their range."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.saturated_activations import CHECK, bounds
from rundoctor.findings import Confidence, Severity
from tests import curves
from tests.checks import histogram_logs as logs

STEPS = list(range(0, 1000, 100))


def _find(histograms, **params):
    return curves.run_check(CHECK, logs.run_with(histograms), CHECK.make_params(params) if params else None)


def _sigmoid(scale_by_index, encode=logs.torch_histogram):
    """Sigmoid outputs of pre-activations N(0, scale^2): scale 4 puts about 70% beyond the band."""
    return logs.over_steps(
        lambda i, step: 1 / (1 + np.exp(-scale_by_index(i) * logs.rng(step).standard_normal(4096))), STEPS, encode)


def _tanh(scale_by_index, encode=logs.torch_histogram):
    return logs.over_steps(lambda i, step: np.tanh(scale_by_index(i) * logs.rng(step).standard_normal(4096)),
                           STEPS, encode)


def test_bounds_are_where_the_slope_falls_under_a_fifth_of_its_peak() -> None:
    low, high = bounds("tanh", 0.2)
    assert 1 - high**2 == pytest.approx(0.2) and low == -high
    low, high = bounds("sigmoid", 0.2)
    assert low * (1 - low) == pytest.approx(0.05) and high == pytest.approx(1 - low)


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_a_layer_saturated_from_the_start_fires(encode) -> None:
    [finding] = _find({"activations/fc1": _sigmoid(lambda i: 8.0, encode), "activations/fc2": _tanh(lambda i: 0.5, encode)})
    assert finding.severity is Severity.WARNING and finding.confidence is Confidence.HIGH
    assert finding.tags == ("activations/fc1",)
    assert "of fc1's outputs saturated (sigmoid <=" in finding.message and "from the first histograms on" in finding.message
    assert finding.evidence["layers"]["fc1"]["saturated_share"] > 0.5


def test_a_tanh_layer_saturated_by_wide_weights_fires() -> None:
    [finding] = _find({"act/fc2": _tanh(lambda i: 6.0)})
    assert "of fc2's outputs saturated (|tanh| >= 0.894" in finding.message


def test_a_sigmoid_layer_that_grows_confident_while_learning_is_silent() -> None:
    # starts near 0.5, ends with about 55% of its outputs past the band, as trained sigmoid MLPs do
    assert _find({"activations/fc1": _sigmoid(lambda i: 0.3 + 0.6 * i)}) == []


def test_saturation_reached_late_at_a_high_level_fires_with_medium_confidence() -> None:
    [finding] = _find({"activations/fc1": _tanh(lambda i: 0.5 if i < 5 else 30.0)})
    assert finding.confidence is Confidence.MEDIUM and "by the end" in finding.message


def test_near_miss_just_under_half_of_the_outputs() -> None:
    shares = [np.mean(np.abs(np.tanh(1.95 * logs.rng(step).standard_normal(4096))) >= 0.894) for step in STEPS]
    assert 0.44 < np.median(shares) < 0.5
    assert _find({"act/fc1": _tanh(lambda i: 1.95)}) == []
    assert len(_find({"act/fc1": _tanh(lambda i: 1.95)}, max_share=0.4)) == 1


def test_relu_outputs_are_not_read_as_sigmoid() -> None:
    relu = logs.over_steps(lambda i, step: 0.5 * logs.relu_outputs(4096, 0.3, seed=step).clip(0, 0.9), STEPS)
    assert _find({"activations/fc1": relu}) == []
