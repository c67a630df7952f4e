"""G002 val-better-than-train: validation loss persistently far below the training loss."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.val_better_than_train import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves as c


def findings(series, **params):
    found = c.find(CHECK, series, **params)
    for finding in found:
        c.assert_well_formed(finding)
    return found


def per_step(val_ratio: float, n: int = 2000, evals: int = 20):
    """Training loss every step, validation every 100 steps at ``val_ratio`` x the training level."""
    level = c.decay(n, 2.0, 0.3, 4.0)
    at = c.steps(evals, every=n // evals, start=n // evals - 1)
    return {
        "train/loss": (c.steps(n), c.noisy(level, 0.03, seed=1)),
        "val/loss": (at, c.noisy(val_ratio * level[at], 0.01, seed=2)),
    }


def test_validation_far_below_training_fires():
    [finding] = findings(per_step(0.5))
    assert (finding.code, finding.severity, finding.confidence) == (
        "G002",
        Severity.INFO,
        Confidence.MEDIUM,
    )
    assert (finding.first_step, finding.last_step) == (99, 1999)
    assert finding.evidence["median_ratio"] == pytest.approx(0.5, abs=0.03)
    assert finding.evidence["fraction_below_threshold"] == 1.0
    assert finding.evidence["evaluations"] == 20
    assert "below 0.7x train/loss at 100% of 20 evaluations" in finding.message


def test_extreme_gap_is_a_warning():
    [finding] = findings(per_step(0.25))
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["fraction_below_extreme"] == 1.0


def test_strong_dropout_late_in_training_is_only_a_note():
    # Dropout 0.5: the training loss (train mode) floors at 0.15 while the validation loss
    # falls on to 0.03; early on, with both large, they are close.
    n, evals = 2000, 20
    at = c.steps(evals, every=n // evals, start=n // evals - 1)
    train = c.heavy_tailed(c.decay(n, 2.0, 0.15, 4.0), spread=0.4, outliers=0.01, seed=3)
    val = c.decay(n, 1.7, 0.02, 8.0)[at]
    [finding] = findings({"train/loss": (c.steps(n), train), "val/loss": (at, val)})
    assert finding.severity is Severity.INFO
    assert finding.evidence["fraction_below_extreme"] > 0.5
    assert finding.evidence["fraction_below_extreme_first_quarter"] <= 0.5


def test_healthy_run_with_regularisation_does_not_fire():
    # Dropout keeps the validation loss a little below training: 0.9x is normal.
    assert findings(per_step(0.9)) == []


def test_near_miss_just_above_the_ratio_does_not_fire_and_a_lower_bar_flips_it():
    series = per_step(0.75)
    assert findings(series) == []
    [finding] = findings(series, ratio_threshold=0.8)
    assert finding.evidence["ratio_threshold"] == 0.8


def test_epoch_averages_are_compared_one_epoch_later():
    # Keras: the epoch-mean training loss trails the end-of-epoch validation by half an epoch.
    # Falling fast, epoch e's training mean is twice the validation of epoch e but equal to
    # the next epoch's: no finding, unless the lag is ignored.
    epochs = c.steps(10)
    series = {
        "loss": (epochs, np.exp(-0.7 * epochs)),
        "val_loss": (epochs, np.exp(-0.7 * (epochs + 1))),
    }
    assert findings(series) == []
    [finding] = findings(series, epoch_mean_density=0.0)
    assert finding.evidence["lag_steps"] == 0.0
    assert finding.evidence["median_ratio"] == pytest.approx(np.exp(-0.7), abs=1e-3)
    assert "same step" in finding.evidence["compared_with"]


def test_loss_terms_are_not_compared():
    # YOLO's terms are measured under training-time augmentation: val/obj_loss sits at 0.35x.
    epochs = c.steps(50)
    level = c.decay(50, 0.05, 0.02, 3.0)
    terms = {f"{split}/{term}_loss": (epochs, (0.35 if split == "val" else 1.0) * level)
             for split in ("train", "val") for term in ("box", "obj", "cls")}
    assert findings(terms) == []


def test_signed_losses_are_not_compared():
    series = per_step(0.5)
    steps, values = series["val/loss"]
    series["val/loss"] = (steps, values - 1.0)
    assert findings(series) == []


@pytest.mark.parametrize("role", ["val/loss", "train/loss"])
@pytest.mark.parametrize("name", sorted(c.HOSTILE))
def test_hostile_series_do_not_raise(name, role):
    series = {**per_step(0.5), role: c.HOSTILE[name]}
    assert isinstance(findings(series), list)


@pytest.mark.parametrize(
    "relative",
    [
        "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/results/checkpoint-1200/trainer_state.json",
        "TheCodeheadMT__TensorBoard-Tutorial__keras-tf2-tensorboard/archive/experiments/Exp_2_sgd_200_0.2",
        "NijatZeynalov__mT5-based-azerbaijani-news-summarize__hf-trainer-mt5-long/trainer_state.json",
    ],
)
def test_real_runs_with_regularisation_or_label_smoothing_do_not_fire(real_logs, relative):
    assert c.run_check(CHECK, c.real_run(real_logs / relative)) == []


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id
