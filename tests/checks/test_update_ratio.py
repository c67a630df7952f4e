"""W001 update-ratio: weights frozen, barely moving, or changing too fast between logged steps."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.update_ratio import CHECK
from rundoctor.findings import Severity
from tests import curves
from tests.checks import histogram_logs as logs

STEPS = list(range(0, 1000, 100))
BASE = logs.rng(0).normal(0.0, 0.07, 8192)


def _weights(rate: float, *, frozen_from: int | None = None, seed: int = 1, encode=logs.torch_histogram,
             steps=STEPS):
    """Weights whose spread grows by ``rate`` per step (a drift of the distribution), plus a little
    jitter, identical from ``frozen_from`` on."""
    jitter = logs.rng(seed).normal(0.0, 1.0, BASE.size)

    def at(index: int, step: int) -> np.ndarray:
        moved = step if frozen_from is None else min(step, frozen_from)
        return BASE * (1 + rate * moved) + 0.07 * rate * np.sqrt(moved) * jitter

    return logs.over_steps(at, steps, encode)


def _find(histograms, **params):
    return list(curves.run_check(CHECK, logs.run_with(histograms), CHECK.make_params(params) if params else None))


def test_healthy_layers_are_silent() -> None:
    assert _find({"fc1.weight": _weights(5e-4), "fc2.weight": _weights(1e-3, seed=2)}) == []


def test_a_frozen_layer_beside_moving_ones_is_a_warning_naming_it() -> None:
    [finding] = _find({"fc1.weight": _weights(0.0), "fc2.weight": _weights(1e-3)})
    assert finding.severity is Severity.WARNING and finding.evidence["direction"] == "frozen"
    assert finding.message.startswith("fc1 never changes: identical weight histograms at all 10 logged steps")
    assert "while fc2 changes" in finding.message and "fc1" in finding.advice


def test_keras_tags_and_tf2_histograms_read_the_same() -> None:
    histograms = {"train/dense/kernel_0": _weights(0.0, encode=logs.tf2_histogram),
                  "train/dense_1/kernel_0": _weights(1e-3, encode=logs.tf2_histogram)}
    [finding] = _find(histograms)
    assert finding.message.startswith("dense never changes") and finding.tags == ("train/dense/kernel_0",)


def test_no_layer_changing_is_an_error_and_layers_that_stopped_say_when() -> None:
    [never] = _find({"fc1.weight": _weights(0.0), "fc2.weight": _weights(0.0, seed=3)})
    assert never.severity is Severity.ERROR and "nothing trains" in never.message
    [stopped] = _find({"fc1.weight": _weights(1e-3, frozen_from=400), "fc2.weight": _weights(1e-3, frozen_from=400)})
    assert stopped.severity is Severity.WARNING and "stopped changing at step 400" in stopped.message


def test_two_identical_histograms_in_a_row_are_not_yet_frozen() -> None:
    assert _find({"fc1.weight": _weights(1e-3, frozen_from=800), "fc2.weight": _weights(1e-3)}) == []


@pytest.mark.parametrize("encode", [logs.torch_histogram, logs.tf2_histogram], ids=["torch", "tf2"])
def test_weights_that_barely_move_are_a_learning_rate_too_low(encode) -> None:
    [finding] = _find({"fc1.weight": _weights(2e-7, encode=encode), "fc2.weight": _weights(2e-7, seed=2, encode=encode)})
    assert finding.severity is Severity.WARNING and finding.evidence["direction"] == "low"
    assert "the learning rate is too low for the model" in finding.message


def test_one_slow_layer_among_several_is_information() -> None:
    [finding] = _find({"fc1.weight": _weights(2e-7), "fc2.weight": _weights(1e-3, seed=2),
                       "fc3.weight": _weights(1e-3, seed=3)})
    assert finding.severity is Severity.INFO and "fc1" in finding.message and "fc2" not in finding.message


def test_near_miss_and_the_whole_run_reading_when_steps_are_epochs() -> None:
    # logged once an epoch (steps 0..39): per logged step the ratio is large, over the run tiny
    epochs = list(range(40))
    slow = {"dense/kernel_0": _weights(1e-4, steps=epochs), "dense_1/kernel_0": _weights(1e-4, seed=2, steps=epochs)}
    [finding] = _find(slow)
    assert finding.evidence["layers"]["dense"]["update_ratio_per_step"] > 1e-5
    assert finding.evidence["layers"]["dense"]["total_change"] < 0.005
    near = {"dense/kernel_0": _weights(2e-4, steps=epochs), "dense_1/kernel_0": _weights(2e-4, seed=2, steps=epochs)}
    assert _find(near) == []  # about 0.6% over the run
    assert len(_find(near, min_total_change=0.01)) == 1


def test_weights_that_change_wholesale_every_step_are_a_hint_of_a_rate_too_high() -> None:
    def shuffled(index: int, step: int) -> np.ndarray:
        return logs.rng(step).normal(0.0, 0.07 * (1 + index), 8192)

    [finding] = _find({"fc1.weight": logs.over_steps(shuffled, list(range(10)))})
    assert finding.severity is Severity.INFO and finding.evidence["direction"] == "high"


def test_few_histograms_are_not_judged() -> None:
    assert _find({"fc1.weight": _weights(0.0)[:2], "fc2.weight": _weights(1e-3)[:2]}) == []
