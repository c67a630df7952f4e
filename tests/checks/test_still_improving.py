"""C006 still-improving: the training loss is still clearly falling when the run ends."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks import measures
from rundoctor.checks.still_improving import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 500
STEPS = curves.steps(N, 20)


def test_fires_on_a_loss_still_falling_at_the_end() -> None:
    loss = curves.noisy(curves.decay(N, start=2.0, end=0.2, rate=1.5), 0.01)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)})
    assert (finding.code, finding.severity, finding.confidence) == (
        "C006",
        Severity.INFO,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (8_000, 9_980)
    evidence = finding.evidence
    assert evidence["tail_points"] == 100
    # The exponential part falls ~21% of the end level over the last fifth of the run.
    assert evidence["tail_gain"] == pytest.approx(0.21, abs=0.03)
    assert evidence["standard_errors"] > 6
    assert "still falling" in finding.message
    curves.assert_well_formed(finding)


def test_a_schedule_that_already_reached_zero_is_named() -> None:
    series = {
        "train/loss": (STEPS, curves.noisy(curves.decay(N, rate=1.5), 0.01)),
        "train/learning_rate": (STEPS, np.linspace(1e-3, 0.0, N)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.evidence["lr_last"] == 0.0 and finding.evidence["lr_max"] == pytest.approx(1e-3)
    assert "stretch the schedule" in finding.message


def test_a_converged_loss_is_silent() -> None:
    loss = curves.noisy(curves.plateau(N, start=2.0, level=0.4, fall_fraction=0.3), 0.01)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_near_miss_small_gain_then_override() -> None:
    # Falls ~1.2% of its level over the last fifth: significant, but under the 2% bar.
    loss = curves.noisy(curves.decay(N, start=2.0, end=0.5, rate=6.5), 0.002)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, min_gain=0.01)
    assert finding.evidence["tail_gain"] == pytest.approx(0.012, abs=0.002)


def test_noise_alone_is_not_improvement() -> None:
    flat = curves.noisy(np.full(N, 1.0), 0.05, seed=3)
    assert curves.find(CHECK, {"train/loss": (STEPS, flat)}) == []


def test_a_memorising_loss_creeping_to_zero_is_silent() -> None:
    # Whisper fine-tune: 0.3 -> 0.0002, still creeping down at 0.1% of its start.
    loss = np.round(curves.decay(N, start=0.3, end=0.0, rate=12.0) + 1e-4, 4)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_too_few_points() -> None:
    assert curves.find(CHECK, {"train/loss": (curves.steps(6), curves.linear(6, 2.0, 1.0))}) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["C006"]


def test_drift_is_the_fitted_change_and_its_error() -> None:
    steps = np.arange(100.0)
    change, error = measures.drift(steps, 5.0 - 0.01 * steps)
    assert change == pytest.approx(-0.99) and error == pytest.approx(0.0, abs=1e-12)
    noisy = 5.0 + 0.1 * curves.rng(2).standard_normal(100)
    change, error = measures.drift(steps, noisy)
    assert abs(change) < 3 * error and error == pytest.approx(0.1 * np.sqrt(12 / 100), rel=0.2)
    assert measures.drift(steps[:2], noisy[:2]) == (0.0, 0.0)


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]})
    # Each step written twice, the 50-point decay left is still falling at its end.
    assert [f.code for f in findings] == (["C006"] if name == "duplicated steps" else [])
    for finding in findings:
        curves.assert_well_formed(finding)


def test_real_short_keras_runs_still_falling(real_logs) -> None:
    # R31: sgd, 10 epochs, train epoch_loss 0.763 -> 0.194 and still falling.
    run = curves.real_run(
        real_logs
        / "TheCodeheadMT__TensorBoard-Tutorial__keras-tf2-tensorboard/archive/experiments/Exp_2_sgd_200_0.2"
    )
    (finding,) = curves.run_check(CHECK, run)
    assert finding.severity is Severity.INFO and finding.last_step == 9


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_healthy_real_runs_get_info_at_most(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert all(f.severity is Severity.INFO for f in curves.run_check(CHECK, run)), run.id


def test_never_above_info_even_on_a_steep_fall() -> None:
    n = 500
    series = {"train/loss": (curves.steps(n), np.linspace(2.0, 0.5, n))}
    assert [f.severity for f in curves.find(CHECK, series)] == [Severity.INFO]


def test_a_flat_heavy_tailed_tail_is_not_still_falling() -> None:
    # Batch size 4 with 10-50x batches around a flat floor: no trend beyond the noise.
    n = 3000
    loss = curves.heavy_tailed(curves.plateau(n, start=1.2, level=0.4, fall_fraction=0.3), spread=0.8, seed=9)
    assert curves.find(CHECK, {"train/loss": (curves.steps(n), loss)}) == []


def test_a_running_average_of_a_flat_loss_is_not_still_falling() -> None:
    # Keras/HF: the mean since the epoch began sawtooths within each epoch.
    n = 2000
    per_step = curves.heavy_tailed(curves.plateau(n, start=1.5, level=0.5, fall_fraction=0.2), seed=12)
    logged = curves.epoch_running_mean(per_step, 100)
    assert curves.find(CHECK, {"loss": (curves.steps(n), logged)}) == []


def test_a_heavy_tailed_loss_still_falling_is_found() -> None:
    n = 6000
    loss = curves.heavy_tailed(curves.decay(n, start=2.0, end=0.2, rate=2.0), spread=0.3, seed=13)
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(n), loss)})
    assert finding.severity is Severity.INFO and finding.evidence["effective_points"] > 5
