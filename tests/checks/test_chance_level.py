"""M003 chance-level: accuracy stuck at chance or a constant rate, loss at the prior's level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks.chance_level import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

EVALS = 12
EVERY = 100
FIRST, LAST = EVERY, EVALS * EVERY

STALLED = (
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run0",
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run1",
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run2",
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run3",
)


def _series(accuracy: np.ndarray, loss: np.ndarray | None) -> dict[str, curves.Series]:
    steps = curves.steps(EVALS, EVERY, start=EVERY)
    series: dict[str, curves.Series] = {"eval/accuracy": (steps, accuracy)}
    if loss is not None:
        series["eval/loss"] = (steps, loss)
    return series


def _chance(level: float = 0.245, seed: int = 0) -> np.ndarray:
    """An accuracy jittering by a few evaluation samples around ``level``."""
    return level + 0.001 * curves.rng(seed).standard_normal(EVALS)


def _flat_loss(level: float) -> np.ndarray:
    return level * (1.0 + 0.001 * curves.rng(3).standard_normal(EVALS))


def test_fires_at_chance_with_the_loss_at_ln_c() -> None:
    (finding,) = curves.find(CHECK, _series(_chance(), _flat_loss(1.391)), num_classes=4)
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M003",
        Severity.ERROR,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (FIRST, LAST)
    assert finding.tags == ("eval/accuracy", "eval/loss")
    assert finding.evidence["accuracy_level"] == pytest.approx(0.245, abs=0.002)
    assert finding.evidence["loss_level"] == pytest.approx(1.391, rel=0.01)
    assert finding.evidence["num_classes"] == 4 and finding.evidence["num_classes_source"] == "test"
    assert "≈ ln 4 = 1.386" in finding.message


def test_fires_on_a_bit_identical_majority_rate_without_classes() -> None:
    # R32: accuracy 5/6 at every epoch, loss between the label entropy (0.451) and ln 2.
    series = {
        "train/epoch_accuracy": (curves.steps(5), np.full(5, 0.8333333)),
        "train/epoch_loss": (curves.steps(5), np.linspace(0.5385, 0.5369, 5)),
    }
    (finding,) = curves.find(CHECK, series)
    # Five points and no class count: evidence enough to warn, not to call it an error.
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert (finding.first_step, finding.last_step) == (0, 4)
    assert finding.evidence["prior_loss_low"] == pytest.approx(0.95 * 0.4506, abs=1e-3)
    assert finding.evidence["prior_loss_high"] == pytest.approx(1.05 * math.log(2), abs=1e-3)
    assert "bit-identical" in finding.message


def test_accuracy_alone_at_chance_is_medium_confidence() -> None:
    (finding,) = curves.find(CHECK, _series(_chance(), None), num_classes=4)
    assert finding.confidence is Confidence.MEDIUM and finding.tags == ("eval/accuracy",)
    assert "no loss is logged" in finding.message


def test_quiet_on_a_healthy_run() -> None:
    # R05: accuracy 0.875 -> 0.914, loss 0.744 -> 0.290 and flat at the end.
    accuracy = np.array(
        [
            0.875,
            0.8981,
            0.8935,
            0.9074,
            0.909,
            0.9043,
            0.912,
            0.9136,
            0.9136,
            0.9105,
            0.9105,
            0.9136,
        ]
    )
    loss = np.array(
        [
            0.7436,
            0.3273,
            0.3153,
            0.3086,
            0.2966,
            0.3004,
            0.2948,
            0.2919,
            0.2896,
            0.2897,
            0.2914,
            0.29,
        ]
    )
    assert curves.find(CHECK, _series(accuracy, loss)) == []
    assert curves.find(CHECK, _series(accuracy, loss), num_classes=4) == []


def test_quiet_on_a_converged_model_with_a_constant_accuracy() -> None:
    # Bit-identical accuracy, but a loss far below the label entropy: the model learned.
    assert curves.find(CHECK, _series(np.full(EVALS, 0.99), _flat_loss(0.02))) == []


def test_quiet_on_a_memorised_training_set() -> None:
    assert curves.find(CHECK, _series(np.ones(EVALS), _flat_loss(0.3))) == []


def test_quiet_when_the_loss_still_falls() -> None:
    # Accuracy at chance but the loss falling: learning has started (metric-flat-loss-falling).
    assert curves.find(CHECK, _series(_chance(), np.linspace(1.6, 1.2, EVALS)), num_classes=4) == []


def test_near_miss_loss_just_outside_the_band() -> None:
    loss = _flat_loss(math.log(4) * 1.06)  # 6% above ln 4, tolerance 5%
    assert curves.find(CHECK, _series(_chance(), loss), num_classes=4) == []
    (finding,) = curves.find(CHECK, _series(_chance(), loss), num_classes=4, loss_tolerance=0.08)
    assert finding.evidence["loss_level"] == pytest.approx(math.log(4) * 1.06, rel=0.005)


def test_too_few_points() -> None:
    series = {
        "eval/accuracy": (curves.steps(4), np.full(4, 0.25)),
        "eval/loss": (curves.steps(4), np.full(4, 1.386)),
    }
    assert curves.find(CHECK, series, num_classes=4) == []


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("role", ["eval/accuracy", "eval/loss"])
def test_hostile_series_do_not_raise(name: str, role: str) -> None:
    series = _series(_chance(), _flat_loss(1.39))
    series[role] = curves.HOSTILE[name]
    assert all(finding.code == "M003" for finding in curves.find(CHECK, series, num_classes=4))


@pytest.mark.parametrize("relative", STALLED)
def test_fires_on_the_real_stalled_runs(real_logs, relative: str) -> None:
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / relative))
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.ERROR, Confidence.HIGH)
    assert (finding.first_step, finding.last_step) == (100, 1200)
    assert finding.evidence["num_classes"] == 4
    assert finding.evidence["num_classes_source"].startswith("inferred: initial loss")
    assert 0.23 < finding.evidence["accuracy_level"] < 0.245
    assert finding.evidence["loss_level"] == pytest.approx(1.39, abs=0.005)


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_fires_on_the_real_stalled_keras_run(real_logs) -> None:
    run = curves.real_run(
        real_logs / "olegkleiman__tf_keras__keras-tf2-stalled/logs/fit/20191031-020333"
    )
    (finding,) = curves.run_check(CHECK, run)
    assert finding.confidence is Confidence.MEDIUM
    assert finding.evidence["accuracy_level"] == pytest.approx(0.8333, abs=1e-4)


def test_a_saturated_accuracy_repeating_its_score_is_not_a_prior() -> None:
    # 199/200 at every evaluation of a converged model, loss flat at 0.05 (inside the band
    # h(0.995) .. ln 2 that a 99.5/0.5 prior predictor would have).
    accuracy = np.full(EVALS, 0.995)
    assert curves.find(CHECK, _series(accuracy, _flat_loss(0.05))) == []
    (finding,) = curves.find(CHECK, _series(accuracy, _flat_loss(0.05)), ceiling=0.999)
    assert finding.evidence["accuracy_level"] == pytest.approx(0.995)


def test_quiet_when_the_model_learned_after_a_stretch_at_chance() -> None:
    # A hard task: at chance with the loss at ln 2 for 60% of the run, then it learns.
    n = 40
    steps = curves.steps(n, EVERY, start=EVERY)
    accuracy = np.concatenate((0.5 + 0.002 * curves.rng(1).standard_normal(24), np.linspace(0.55, 0.99, 16)))
    loss = np.concatenate((np.full(24, 0.6935), np.linspace(0.6, 0.01, 16)))
    series = {"val_acc": (steps, accuracy), "val_loss": (steps, loss)}
    assert curves.find(CHECK, series, num_classes=2) == []
    cut = {tag: (steps[:24], values[:24]) for tag, (steps, values) in series.items()}
    (finding,) = curves.find(CHECK, cut, num_classes=2)  # the same run stopped before it learned
    assert finding.severity is Severity.ERROR


def test_quiet_when_the_loss_has_started_to_fall() -> None:
    # Early in a hard 10-class run: accuracy still at chance, loss 2.32 -> 2.28 (quarter
    # medians 1.7% apart, far beyond the noise): learning has begun.
    loss = np.linspace(2.32, 2.28, EVALS) * (1.0 + 0.0005 * curves.rng(2).standard_normal(EVALS))
    assert curves.find(CHECK, _series(_chance(0.1), loss), num_classes=10) == []
    (finding,) = curves.find(CHECK, _series(_chance(0.1), loss), num_classes=10, min_loss_fall=0.05)
    assert finding.severity is Severity.ERROR


def test_few_evaluations_at_chance_are_a_warning_not_an_error() -> None:
    steps = curves.steps(6, EVERY, start=EVERY)
    series = {"eval/accuracy": (steps, _chance()[:6]), "eval/loss": (steps, _flat_loss(1.391)[:6])}
    (finding,) = curves.find(CHECK, series, num_classes=4)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    (finding,) = curves.find(CHECK, series, num_classes=4, strong_points=6)
    assert finding.severity is Severity.ERROR


def test_a_heavy_tailed_per_step_loss_at_ln_c_is_still_an_error() -> None:
    # Shuffled labels, batch size 4: per-step loss around ln 10 with lognormal batches and
    # 10-50x outliers; validation accuracy at 1/10 for the whole run.
    n = 1200
    loss = curves.heavy_tailed(np.full(n, math.log(10)), spread=0.15, outliers=0.005, seed=9)
    series = {
        "train/loss": (curves.steps(n), loss),
        "val/acc": (curves.steps(EVALS, EVERY, start=EVERY), _chance(0.1)),
    }
    (finding,) = curves.find(CHECK, series, num_classes=10)
    assert finding.severity is Severity.ERROR


def _converged(train_level: float) -> dict[str, curves.Series]:
    """Digits at 351/359 on validation at every evaluation, validation loss 0.27 (its few
    errors are confident), and a per-batch training loss around ``train_level``."""
    series = _series(np.full(EVALS, np.float32(351 / 359)), _flat_loss(0.27))
    n = EVALS * EVERY
    series["train/loss"] = (
        curves.steps(n, start=1),
        curves.heavy_tailed(np.full(n, train_level), spread=0.5, outliers=0.01, seed=2),
    )
    return series


def test_a_constant_rate_beside_a_training_loss_far_below_the_prior_entropy_is_quiet() -> None:
    # h(0.978) = 0.107: a model predicting a prior with that majority cannot fit its training
    # data to 0.006; this one learned and has converged.
    assert curves.find(CHECK, _converged(0.006)) == []


def test_a_constant_rate_beside_a_training_loss_at_the_prior_entropy_still_fires() -> None:
    (finding,) = curves.find(CHECK, _converged(0.12))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["train_loss_tag"] == "train/loss"
    assert finding.evidence["train_loss_level"] >= finding.evidence["prior_loss_low"]


def test_near_miss_training_loss_just_under_the_prior_band() -> None:
    low = 0.95 * 0.1068  # (1 - loss_tolerance) x h(351/359)
    assert curves.find(CHECK, _converged(0.9 * low)) == []
    (finding,) = curves.find(CHECK, _converged(0.9 * low), loss_tolerance=0.2)
    assert finding.evidence["train_loss_level"] < low
