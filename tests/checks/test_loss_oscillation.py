"""C004 loss-oscillation: large point-to-point swings with no net progress."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.findings import Confidence, Severity
from rundoctor.checks.loss_oscillation import CHECK
from tests import curves

N = 200
STEPS = curves.steps(N, 50, start=49)


def _swinging(relative: float, trend: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    base = np.full(N, 2.3) if trend is None else trend
    return curves.noisy(base, relative, seed)


def test_fires_on_large_swings_without_progress() -> None:
    series = {"loss": (STEPS, _swinging(0.2)), "train/lr": (STEPS, np.full(N, 3e-3))}
    (finding,) = curves.find(CHECK, series)
    assert (finding.code, finding.severity, finding.confidence) == (
        "C004",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert (finding.first_step, finding.last_step) == (49, 9_999)
    evidence = finding.evidence
    assert evidence["swing"] == pytest.approx(0.2, abs=0.04)
    assert abs(evidence["progress_sigmas"]) < 1.0
    assert evidence["lr_max"] == pytest.approx(3e-3)
    assert "no net progress" in finding.message
    curves.assert_well_formed(finding)


def test_a_noisy_loss_that_falls_is_silent() -> None:
    # Per-step losses of small batches swing 15% while falling by half: progress wins.
    assert curves.find(CHECK, {"loss": (STEPS, _swinging(0.15, curves.decay(N, 3.0, 1.5)))}) == []


def test_near_miss_below_the_swing_threshold_then_override() -> None:
    series = {"loss": (STEPS, _swinging(0.07))}
    assert curves.find(CHECK, series) == []
    (finding,) = curves.find(CHECK, series, min_swing=0.05)
    assert finding.evidence["swing"] == pytest.approx(0.07, abs=0.015)


def test_a_quiet_flat_loss_is_not_oscillating() -> None:
    # Flat with 0.2% noise is no-learning's business, not this check's.
    assert curves.find(CHECK, {"loss": (STEPS, _swinging(0.002))}) == []


def test_too_few_points() -> None:
    assert (
        curves.find(CHECK, {"loss": (curves.steps(8), [2.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 2.0])})
        == []
    )


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["C004"]


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]})
    # Sorted by step, the shuffled decay is pure scatter: that one does swing.
    assert [f.code for f in findings] == (["C004"] if name == "unsorted" else [])
    for finding in findings:
        curves.assert_well_formed(finding)


NOISY = "Melissasssss__TurnGPT__lightning-noisy-loss/lightning_logs/version_0/metrics.csv"


def test_real_noisy_lightning_loss_fires(real_logs) -> None:
    # R25: 2.37 -> 2.24 over one epoch, between 1.24 and 3.15.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / NOISY))
    assert finding.tags == ("loss",)
    assert finding.evidence["swing"] == pytest.approx(0.19, abs=0.02)
    assert finding.evidence["progress_sigmas"] < 0


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id
