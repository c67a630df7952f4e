"""M001 metric-flat-loss-falling: accuracy flat while its loss still falls."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.findings import Confidence, Severity
from rundoctor.checks.metric_flat_loss_falling import CHECK
from rundoctor.series import XAxis
from tests import curves

EVALS = 100
EVERY = 100
LAST = (EVALS - 1) * EVERY


def _flat_accuracy(level: float = 0.3, seed: int = 0) -> np.ndarray:
    """Climbs from 0.1 over the first 20% of the run, then flat at ``level`` with noise."""
    t = np.linspace(0.0, 1.0, EVALS)
    climb = 0.1 + (level - 0.1) * np.minimum(t / 0.2, 1.0)
    return climb + 0.002 * curves.rng(seed).standard_normal(EVALS)


def _val(accuracy: np.ndarray, loss: np.ndarray) -> dict[str, curves.Series]:
    return {
        "val/accuracy": (curves.steps(EVALS, EVERY), accuracy),
        "val/loss": (curves.steps(EVALS, EVERY), loss),
        "train/loss": (curves.steps(EVALS, EVERY), curves.decay(EVALS, 2.0, 0.1)),
    }


def test_fires_on_flat_accuracy_while_loss_falls() -> None:
    loss = curves.noisy(curves.decay(EVALS, start=2.0, end=0.5, rate=1.5), 0.005)
    (finding,) = curves.find(CHECK, _val(_flat_accuracy(), loss))
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M001",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert finding.tags == ("val/accuracy", "val/loss")
    assert 1_500 <= finding.first_step <= 3_000 and finding.last_step == LAST
    assert finding.evidence["flat_level"] == pytest.approx(0.3, abs=0.01)
    assert finding.evidence["flat_fraction"] >= 0.7
    assert finding.evidence["loss_fall"] > 0.3
    assert "flat at 0.3" in finding.message and "still falling" in finding.message


def test_near_chance_is_high_confidence() -> None:
    loss = curves.decay(EVALS, start=2.4, end=1.0, rate=1.5)
    (finding,) = curves.find(CHECK, _val(_flat_accuracy(level=0.12), loss), num_classes=10)
    assert finding.confidence is Confidence.HIGH
    assert finding.evidence["chance_level"] == pytest.approx(0.1)
    assert "near chance" in finding.message


def test_training_accuracy_pairs_with_training_loss() -> None:
    series = {
        "train/accuracy": (curves.steps(EVALS, EVERY), _flat_accuracy()),
        "train/loss": (curves.steps(EVALS, EVERY), curves.decay(EVALS, 2.0, 0.5, rate=1.5)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("train/accuracy", "train/loss")


def test_epoch_accuracy_is_placed_on_the_iteration_axis_of_its_loss() -> None:
    # Validation accuracy per epoch (0..99), no validation loss, training loss per iteration.
    iterations = curves.steps(5_000, 20)
    run = curves.make_run(
        {
            "val/accuracy": (curves.steps(EVALS), _flat_accuracy()),
            "train/loss": (iterations, curves.decay(iterations.size, start=2.0, end=0.5, rate=1.5)),
        }
    )
    run.tag_axes["val/accuracy"] = XAxis.EPOCH
    (finding,) = CHECK.detect(CHECK, curves.context(run), CHECK.default_params())
    assert finding.tags == ("val/accuracy", "train/loss")
    assert 15 <= finding.first_step <= 30 and finding.last_step == EVALS - 1  # epochs
    # Read at iterations 20%..100% of the run, the loss fell from about 1.6 to 0.83.
    assert finding.evidence["loss_at_flat_start"] == pytest.approx(1.6, abs=0.15)
    assert finding.evidence["loss_fall"] == pytest.approx(0.47, abs=0.05)


def test_quiet_on_healthy_rising_accuracy() -> None:
    accuracy = curves.noisy(curves.rise(EVALS, start=0.3, end=0.9, rate=3.0), 0.01)
    loss = curves.noisy(curves.decay(EVALS, 2.0, 0.3, rate=3.0), 0.02)
    assert curves.find(CHECK, _val(accuracy, loss)) == []


def test_quiet_when_the_loss_has_converged_too() -> None:
    loss = curves.plateau(EVALS, start=2.0, level=0.8, fall_fraction=0.2)
    assert curves.find(CHECK, _val(_flat_accuracy(), loss)) == []


def test_quiet_when_validation_loss_rises() -> None:
    # Overfitting: the validation loss, not the falling training loss, is the one to read.
    assert curves.find(CHECK, _val(_flat_accuracy(), curves.overfit(EVALS, turn=0.3))) == []


def test_quiet_on_a_saturated_accuracy() -> None:
    loss = curves.decay(EVALS, start=2.0, end=0.5, rate=1.5)
    assert curves.find(CHECK, _val(_flat_accuracy(level=0.95), loss)) == []
    assert len(curves.find(CHECK, _val(_flat_accuracy(level=0.95), loss), max_level=0.97)) == 1


def test_near_miss_loss_fell_just_under_the_threshold() -> None:
    # The loss falls linearly by 4.5% over the run, under 4% over the flat stretch.
    loss = np.linspace(1.0, 0.955, EVALS)
    assert curves.find(CHECK, _val(_flat_accuracy(), loss)) == []
    (finding,) = curves.find(CHECK, _val(_flat_accuracy(), loss), min_loss_fall=0.03)
    assert 0.03 <= finding.evidence["loss_fall"] < 0.05


def test_too_few_points() -> None:
    short = {
        "val/accuracy": (curves.steps(6), np.full(6, 0.3)),
        "val/loss": (curves.steps(6), curves.decay(6)),
    }
    assert curves.find(CHECK, short) == []


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("role", ["val/accuracy", "val/loss"])
def test_hostile_series_do_not_raise(name: str, role: str) -> None:
    series = _val(_flat_accuracy(), curves.decay(EVALS, 2.0, 0.5, rate=1.5))
    series[role] = curves.HOSTILE[name]
    assert all(finding.code == "M001" for finding in curves.find(CHECK, series))


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_quiet_on_the_overfitting_run_with_flat_validation_accuracy(real_logs) -> None:
    # R27: validation top-1 flat at 0.02-0.07, but the validation loss rises: do not say
    # "keep training".
    run = curves.real_run(
        real_logs / "Multimodal-Emotion-Recognition-Group__image_bind__lightning-val-acc-flat"
        "/lightning_logs/version_23/metrics.csv"
    )
    assert curves.run_check(CHECK, run) == []
