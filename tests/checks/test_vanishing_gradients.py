"""D002 vanishing-gradients: gradient scale orders of magnitude smaller toward the input."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.vanishing_gradients import CHECK
from rundoctor.findings import Severity
from tests import curves
from tests.checks import histogram_logs as logs

STEPS = list(range(0, 800, 100))


def _gradients(scales, encode=logs.torch_histogram, style="{layer}.weight.grad", drift=None):
    """One gradient histogram per layer and step; layer k's values are N(0, scales[k]^2) (times
    ``drift(index)`` for the first layer)."""
    return {
        style.format(layer=f"fc{k + 1}"): logs.over_steps(
            lambda i, step, k=k, scale=scale: scale * (drift(i) if drift and k == 0 else 1.0)
            * logs.rng(1000 * k + step).standard_normal(2048), STEPS, encode)
        for k, scale in enumerate(scales)
    }


def _find(histograms, **params):
    return curves.run_check(CHECK, logs.run_with(histograms), CHECK.make_params(params) if params else None)


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_a_deep_sigmoid_stack_whose_first_layers_barely_get_gradient_fires(encode) -> None:
    scales = [1e-2 * 0.12 ** (7 - k) for k in range(8)]  # fc1 at 3.6e-9 of fc8... times 1e-2
    [finding] = _find(_gradients(scales, encode))
    assert finding.severity is Severity.ERROR  # fc1's mean |gradient| is ~3e-9 < 1e-7
    assert "fc1" in finding.message and "fc8" in finding.message
    assert finding.evidence["first_to_last_ratio"] == pytest.approx(0.12**7, rel=0.2)
    assert set(finding.evidence["layers"]) == {f"fc{k}" for k in range(1, 9)}
    assert "fc1" in finding.advice and finding.tags[-1] == "fc8.weight.grad"


def test_a_healthy_network_with_similar_scales_is_silent() -> None:
    assert _find(_gradients([2e-3, 1e-3, 5e-4, 3e-3])) == []


def test_near_miss_at_the_ratio_threshold_and_a_warning_above_the_absolute_floor() -> None:
    assert _find(_gradients([2e-3 * 1.5e-3, 1e-3, 2e-3])) == []
    [finding] = _find(_gradients([2e-3 * 0.6e-3, 1e-3, 2e-3]))
    assert finding.severity is Severity.WARNING  # 1.2e-6: vanished, but above 1e-7
    assert finding.evidence["layers"]["fc2"]["ratio_to_last"] > 1e-3
    [override] = _find(_gradients([2e-3 * 1.5e-3, 1e-3, 2e-3]), max_ratio=2e-3)
    assert override.tags == ("fc1.weight.grad", "fc3.weight.grad")


def test_exact_zeros_of_dead_units_do_not_count_as_vanishing() -> None:
    def sparse(index: int, step: int) -> np.ndarray:
        values = 1e-3 * logs.rng(step).standard_normal(4096)
        values[:4000] = 0.0  # rows of dead units or embedding rows outside the batch
        return values

    histograms = _gradients([1e-3, 2e-3])
    histograms["fc1.weight.grad"] = logs.over_steps(sparse, STEPS)
    assert _find(histograms) == []


def test_the_trend_of_the_ratio_is_quoted() -> None:
    [finding] = _find(_gradients([1e-7, 1e-3, 1e-2], drift=lambda i: 10.0 ** (-i / 2)))
    assert "the ratio fell from" in finding.message


def test_bias_gradients_stand_in_when_no_weight_gradient_is_logged() -> None:
    [finding] = _find(_gradients([1e-9, 1e-3], style="grad/{layer}.bias"))
    assert finding.evidence["first_to_last_ratio"] < 1e-5


def test_one_layer_or_all_zero_gradients_are_not_judged() -> None:
    assert _find(_gradients([1e-9])) == []
    zeros = {"fc1.weight.grad": logs.over_steps(lambda i, step: np.zeros(512), STEPS), **_gradients([0, 1e-3])}
    assert _find(zeros) == []
