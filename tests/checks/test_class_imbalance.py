"""M004 class-imbalance: accuracy pinned at the majority-class rate."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.findings import Confidence, Severity
from rundoctor.checks.class_imbalance import CHECK
from rundoctor.roles import Role
from tests import curves

EPOCHS = 20
LAST = EPOCHS - 1


def _pinned(level: float = 0.9, seed: int = 0) -> np.ndarray:
    """An accuracy that moves by a sample or two around the majority rate."""
    return level + 0.001 * curves.rng(seed).standard_normal(EPOCHS)


def _series(
    accuracy: np.ndarray, loss: np.ndarray | None = None, **extra: np.ndarray
) -> dict[str, curves.Series]:
    epochs = curves.steps(EPOCHS)
    series: dict[str, curves.Series] = {
        "val_accuracy": (epochs, accuracy),
        "val_loss": (epochs, curves.decay(EPOCHS, 0.40, 0.30, rate=2.0) if loss is None else loss),
    }
    series.update({tag: (epochs, values) for tag, values in extra.items()})
    return series


def test_pinned_accuracy_alone_is_low_confidence() -> None:
    (finding,) = curves.find(CHECK, _series(_pinned()))
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M004",
        Severity.WARNING,
        Confidence.LOW,
    )
    assert (finding.first_step, finding.last_step) == (0, LAST)
    assert finding.evidence["pinned_level"] == pytest.approx(0.9, abs=0.002)
    assert finding.evidence["pinned_fraction"] == 1.0
    assert finding.evidence["loss_change"] < 0
    assert "no per-class metric" in finding.message


def test_a_minority_recall_near_zero_confirms_it() -> None:
    series = _series(
        _pinned(),
        **{
            "val/recall_class_0": np.full(EPOCHS, 0.99),
            "val/recall_class_1": np.full(EPOCHS, 0.01),
        },
    )
    run = curves.make_run(series)
    assert run.roles["val/recall_class_1"] is Role.PER_CLASS_METRIC
    (finding,) = curves.find(CHECK, series)
    assert finding.confidence is Confidence.HIGH
    assert finding.evidence["worst_class_tag"] == "val/recall_class_1"
    assert finding.evidence["worst_class_score"] == pytest.approx(0.01)


def test_balanced_accuracy_at_chance_confirms_it() -> None:
    (finding,) = curves.find(CHECK, _series(_pinned(), val_balanced_accuracy=np.full(EPOCHS, 0.51)))
    assert finding.confidence is Confidence.HIGH
    assert finding.evidence["worst_class_tag"] == "val_balanced_accuracy"


def test_per_class_metrics_that_show_learning_rule_it_out() -> None:
    series = _series(
        _pinned(),
        **{
            "val/recall_class_0": np.full(EPOCHS, 0.95),
            "val/recall_class_1": np.full(EPOCHS, 0.70),
        },
    )
    assert curves.find(CHECK, series) == []


def test_quiet_on_healthy_rising_accuracy() -> None:
    accuracy = curves.noisy(curves.rise(EPOCHS, 0.5, 0.92, rate=4.0), 0.005)
    assert curves.find(CHECK, _series(accuracy)) == []


def test_quiet_on_accuracy_that_climbed_to_its_plateau() -> None:
    # R34: 0.67 in the first epoch, then 0.999 for 80% of the run: learned, not pinned.
    accuracy = np.minimum(curves.rise(EPOCHS, 0.67, 1.0, rate=25.0), 0.999)
    assert curves.find(CHECK, _series(accuracy)) == []


def test_quiet_when_the_loss_rises() -> None:
    assert curves.find(CHECK, _series(_pinned(), loss=np.linspace(0.3, 0.6, EPOCHS))) == []


def test_near_miss_level_just_under_the_threshold() -> None:
    assert curves.find(CHECK, _series(_pinned(0.58))) == []
    (finding,) = curves.find(CHECK, _series(_pinned(0.58)), min_level=0.55)
    assert finding.evidence["pinned_level"] == pytest.approx(0.58, abs=0.002)


def test_percent_accuracy_is_read_as_a_fraction() -> None:
    (finding,) = curves.find(CHECK, _series(100.0 * _pinned()))
    assert finding.evidence["pinned_level"] == pytest.approx(0.9, abs=0.002)


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("role", ["val_accuracy", "val_loss", "val/recall_class_1"])
def test_hostile_series_do_not_raise(name: str, role: str) -> None:
    series = _series(_pinned(), **{"val/recall_class_1": np.full(EPOCHS, 0.01)})
    series[role] = curves.HOSTILE[name]
    assert all(finding.code == "M004" for finding in curves.find(CHECK, series))


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_fires_on_the_real_stalled_keras_run(real_logs) -> None:
    # R32: epoch_accuracy 0.8333 (5/6) at every epoch.
    run = curves.real_run(
        real_logs / "olegkleiman__tf_keras__keras-tf2-stalled/logs/fit/20191031-020333"
    )
    (finding,) = curves.run_check(CHECK, run)
    assert finding.confidence is Confidence.LOW
    assert finding.evidence["pinned_level"] == pytest.approx(0.8333, abs=1e-4)
