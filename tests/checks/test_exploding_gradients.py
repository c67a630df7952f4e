"""D003 exploding-gradients: gradients as large as the weights, growing toward the input or over time."""

from __future__ import annotations

import pytest

from rundoctor.checks.exploding_gradients import CHECK
from rundoctor.findings import Severity
from tests import curves
from tests.checks import histogram_logs as logs

STEPS = list(range(0, 800, 100))


def _layers(weight_scales, grad_scales, encode=logs.torch_histogram, grow=None):
    """Weights N(0, w^2) and gradients N(0, g^2) per layer; ``grow(index)`` multiplies the last layer's
    gradient at each logged step."""
    histograms = {}
    for k, (weight, grad) in enumerate(zip(weight_scales, grad_scales)):
        last = k == len(grad_scales) - 1
        histograms[f"net.{2 * k}.weight"] = logs.over_steps(
            lambda i, step, k=k, weight=weight: weight * logs.rng(step + k).standard_normal(2048), STEPS, encode)
        histograms[f"net.{2 * k}.weight.grad"] = logs.over_steps(
            lambda i, step, k=k, grad=grad, last=last: grad * (grow(i) if grow and last else 1.0)
            * logs.rng(7 * step + k).standard_normal(2048), STEPS, encode)
    return histograms


def _find(histograms, **params):
    return curves.run_check(CHECK, logs.run_with(histograms), CHECK.make_params(params) if params else None)


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_gradients_larger_than_the_weights_fire(encode) -> None:
    [finding] = _find(_layers([0.3, 0.3, 0.3], [0.6, 0.5, 0.1], encode))
    assert finding.severity is Severity.WARNING
    assert "2 of 3 layers" in finding.message and "net.0" in finding.message
    assert finding.evidence["grad_to_weight"]["net.0"] == pytest.approx(2.0, rel=0.1)
    assert "net.0" in finding.advice and "net.4" not in finding.advice


def test_a_healthy_network_is_silent() -> None:
    assert _find(_layers([0.07, 0.05, 0.07], [1e-3, 8e-4, 4e-3])) == []


def test_near_miss_just_under_the_weights() -> None:
    assert _find(_layers([0.3, 0.3], [0.27, 0.01])) == []
    assert len(_find(_layers([0.3, 0.3], [0.27, 0.01]), max_grad_to_weight=0.8)) == 1


def test_gradients_growing_toward_the_input_fire_without_weight_histograms() -> None:
    histograms = {tag: items for tag, items in _layers([1, 1, 1], [5e-1, 1e-2, 1e-4]).items() if "grad" in tag}
    [finding] = _find(histograms)
    assert "grows toward the input" in finding.message and finding.evidence["first_to_last_ratio"] > 1e3


def test_a_burst_over_time_fires_and_a_huge_one_is_an_error() -> None:
    [finding] = _find(_layers([0.1, 0.1], [1e-3, 1e-3], grow=lambda i: 1.0 if i < 5 else 3e3))
    assert "rose" in finding.message and finding.evidence["growth_layer"] == "net.2"
    assert finding.severity is Severity.WARNING
    [huge] = _find(_layers([0.1, 0.1], [1e-3, 1e-3], grow=lambda i: 1.0 if i < 5 else 1e6))
    assert huge.severity is Severity.ERROR
