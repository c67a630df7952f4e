"""A001 dead-units: ReLU layers whose outputs are almost all exactly zero."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.dead_units import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves
from tests.checks import histogram_logs as logs

STEPS = list(range(0, 1000, 100))


def _find(histograms, scalars=None, **params):
    run = logs.run_with(histograms, scalars)
    return curves.run_check(CHECK, run, CHECK.make_params(params) if params else None)


def _layer(dead_by_index, encode=logs.torch_histogram, steps=STEPS):
    return logs.over_steps(lambda index, step: logs.relu_outputs(4096, dead_by_index(index), seed=step), steps, encode)


def test_a_layer_whose_units_died_is_an_error_named_with_its_share() -> None:
    findings = _find({"activations/fc1": _layer(lambda i: 0.0), "activations/fc2": _layer(lambda i: 1.0)})
    assert len(findings) == 1
    finding = findings[0]
    assert finding.severity is Severity.ERROR and finding.confidence is Confidence.HIGH
    assert finding.tags == ("activations/fc2",)
    assert "100% of fc2's ReLU outputs" in finding.message and "fc1" not in finding.message
    assert finding.evidence["layers"]["fc2"]["zero_share"] == 1.0
    assert "fc2" in finding.advice


def test_healthy_relu_layers_are_silent() -> None:
    assert _find({"activations/fc1": _layer(lambda i: 0.0), "activations/fc2": _layer(lambda i: 0.05)}) == []


@pytest.mark.parametrize(("dead", "severity"), [(0.4, None), (0.6, Severity.INFO), (0.85, Severity.WARNING)])
def test_severity_follows_the_share_of_dead_units(dead: float, severity: Severity | None) -> None:
    # a share d of dead units reads as d + (1 - d) / 2 zeros: 0.7, 0.8 and 0.925
    findings = _find({"act/fc1": _layer(lambda i: dead)})
    assert [finding.severity for finding in findings] == ([severity] if severity else [])


def test_near_miss_just_under_the_warning_share() -> None:
    shares = [logs.relu_outputs(4096, 0.78, seed=step) for step in STEPS]  # ~0.89 zeros
    zero = float(np.mean([np.mean(values == 0) for values in shares[-3:]]))
    assert 0.85 < zero < 0.9
    [finding] = _find({"act/fc1": _layer(lambda i: 0.78)})
    assert finding.severity is Severity.INFO
    [finding] = _find({"act/fc1": _layer(lambda i: 0.78)}, max_zero_share=0.85)
    assert finding.severity is Severity.WARNING


def test_when_units_die_after_the_learning_rate_rises_the_finding_says_so() -> None:
    lr_steps = np.arange(0, 1000, 10)
    lr = np.where(lr_steps < 300, 1e-3, 0.5)
    findings = _find({"activations/fc1": _layer(lambda i: 0.0 if i < 4 else 1.0)}, {"lr": (lr_steps, lr)})
    [finding] = findings
    assert "crossing 75% by step 400" in finding.message
    assert "after the learning rate rose from 0.001 to 0.5" in finding.message
    assert finding.first_step == 400 and finding.evidence["learning_rate_peak"] == 0.5


def test_when_units_die_after_a_loss_spike_the_finding_says_so() -> None:
    loss_steps = np.arange(0, 1000, 10)
    loss = curves.decay(loss_steps.size, 2.3, 0.4)
    loss[loss_steps == 550] = 40.0
    findings = _find({"activations/fc1": _layer(lambda i: 0.0 if i < 6 else 1.0)},
                     {"train/loss": (loss_steps, loss), "lr": (loss_steps, np.full(loss_steps.size, 0.1))})
    [finding] = findings
    assert "after a loss spike to 40 at step 550" in finding.message


def test_dead_from_the_start_says_so() -> None:
    [finding] = _find({"activations/fc1": _layer(lambda i: 1.0)})
    assert "already at 100% at step 0" in finding.message


def test_tf2_buckets_give_an_upper_bound_with_medium_confidence() -> None:
    [finding] = _find({"activations/fc1": _layer(lambda i: 0.9, logs.tf2_histogram)})
    assert finding.severity is Severity.WARNING and finding.confidence is Confidence.MEDIUM
    assert "at most" in finding.message
    [all_zero] = _find({"activations/fc1": _layer(lambda i: 1.0, logs.tf2_histogram)})
    assert all_zero.severity is Severity.ERROR and all_zero.confidence is Confidence.HIGH  # exactly zero
    assert _find({"activations/fc1": _layer(lambda i: 0.0, logs.tf2_histogram)}) == []


def test_tanh_and_gelu_layers_are_not_judged() -> None:
    tanh = logs.over_steps(lambda i, step: np.tanh(logs.rng(step).normal(0, 1, 4096)), STEPS)
    assert _find({"activations/fc1": tanh}) == []
    assert _find({"fc1/gelu": _layer(lambda i: 1.0)}) == []


def test_a_relu_named_layer_is_judged_even_with_outputs_under_one() -> None:
    small = logs.over_steps(lambda i, step: 0.001 * logs.relu_outputs(4096, 1.0, seed=step), STEPS)
    [finding] = _find({"fc1/relu": small})
    assert finding.severity is Severity.ERROR
