"""M002 delayed-generalization: validation accuracy at chance long after train is near perfect."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.delayed_generalization import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

EVALS = 100
EVERY = 100


def _series(val: np.ndarray, train_rate: float = 25.0) -> dict[str, curves.Series]:
    """Training accuracy near perfect from about 12% of the run; ``val`` as given."""
    train = np.minimum(curves.rise(EVALS, start=0.1, end=1.02, rate=train_rate), 1.0)
    return {
        "train/accuracy": (curves.steps(EVALS, EVERY), train),
        "val/accuracy": (curves.steps(EVALS, EVERY), val),
    }


def _stuck_then_jump(at: float = 0.7, seed: int = 0) -> np.ndarray:
    noise = 0.005 * curves.rng(seed).standard_normal(EVALS)
    return np.clip(curves.jump(EVALS, low=0.1, high=0.92, at=at) + noise, 0.0, 1.0)


def test_reports_the_jump_after_a_long_stretch_at_chance() -> None:
    (finding,) = curves.find(CHECK, _series(_stuck_then_jump()), num_classes=10)
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M002",
        Severity.INFO,
        Confidence.HIGH,
    )
    perfect = finding.evidence["train_near_perfect_step"]
    assert 800 <= perfect <= 1_500 and finding.first_step == perfect
    assert 6_500 <= finding.evidence["jump_step"] <= 7_200
    assert finding.last_step == finding.evidence["jump_step"]
    assert finding.evidence["jump_size"] == pytest.approx(0.82, abs=0.03)
    assert finding.evidence["chance_level"] == pytest.approx(0.1)
    assert finding.evidence["stuck_fraction"] > 0.5
    assert "then jumped to 0.9" in finding.message and "delayed generalization" in finding.message


def test_reports_a_stretch_that_has_not_ended() -> None:
    val = np.full(EVALS, 0.1) + 0.005 * curves.rng(1).standard_normal(EVALS)
    (finding,) = curves.find(CHECK, _series(val), num_classes=10)
    assert finding.last_step == (EVALS - 1) * EVERY
    assert "has not risen yet" in finding.message
    assert "jump_step" not in finding.evidence


def test_without_classes_chance_is_the_first_evaluation() -> None:
    (finding,) = curves.find(CHECK, _series(_stuck_then_jump()))
    assert finding.confidence is Confidence.MEDIUM
    assert finding.evidence["chance_source"] == "first evaluation"
    assert finding.evidence["chance_level"] == pytest.approx(0.1, abs=0.02)


def test_quiet_when_validation_follows_training() -> None:
    val = curves.noisy(curves.rise(EVALS, start=0.1, end=0.85, rate=20.0), 0.01)
    assert curves.find(CHECK, _series(val), num_classes=10) == []


def test_quiet_when_training_is_not_near_perfect() -> None:
    series = _series(np.full(EVALS, 0.1))
    series["train/accuracy"] = (curves.steps(EVALS, EVERY), curves.rise(EVALS, 0.1, 0.9, rate=25.0))
    assert curves.find(CHECK, series, num_classes=10) == []


def test_quiet_on_plain_overfitting_far_above_chance() -> None:
    # R33/R34 shape: validation plateaus at 0.75 within a few epochs, far above its start.
    val = curves.noisy(curves.rise(EVALS, start=0.55, end=0.75, rate=40.0), 0.01)
    assert curves.find(CHECK, _series(val)) == []


def test_near_miss_stretch_just_shorter_than_threshold() -> None:
    # Near perfect from about 12% of the run, jump at 28%: a stretch of about 15%.
    val = _stuck_then_jump(at=0.28)
    assert curves.find(CHECK, _series(val), num_classes=10) == []
    (finding,) = curves.find(CHECK, _series(val), num_classes=10, min_stretch_fraction=0.1)
    assert 0.1 <= finding.evidence["stuck_fraction"] < 0.2


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


@pytest.mark.parametrize(
    "relative",
    [
        "AhmedImtiazPrio__irfanet-10__keras-tf1-tensorboard-overfit/logs191017",
        "AhmedImtiazPrio__irfanet-10__keras-tf1-tensorboard-overfit/logs221017",
    ],
)
def test_quiet_on_real_memorisation_without_grokking(real_logs, relative: str) -> None:
    # R33/R34: training accuracy reaches 0.99, validation sits at 0.72-0.81, far above its
    # first evaluation: overfitting, which the overfitting check reports, not grokking.
    assert curves.run_check(CHECK, curves.real_run(real_logs / relative)) == []
