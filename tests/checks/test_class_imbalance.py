"""M004 class-imbalance: accuracy pinned at the majority-class rate."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.class_imbalance import CHECK
from rundoctor.findings import Confidence, Severity
from rundoctor.roles import Role
from tests import curves

EPOCHS = 20
LAST = EPOCHS - 1


def _pinned(level: float = 0.9, seed: int = 0) -> np.ndarray:
    """An accuracy that moves by a sample or two around the majority rate."""
    return level + 0.001 * curves.rng(seed).standard_normal(EPOCHS)


def _fixed(level: float = 0.9) -> np.ndarray:
    """What a fixed prediction scores on a fixed evaluation set: the same count every time
    (one evaluation off by a sample)."""
    values = np.full(EPOCHS, level)
    values[EPOCHS // 2] = level + 0.002
    return values


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


def test_pinned_accuracy_with_a_falling_loss_is_an_info_note() -> None:
    # Loss 0.40 -> 0.30 under h(0.9) = 0.325: near the prior's entropy but still falling.
    (finding,) = curves.find(CHECK, _series(_pinned()))
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == ("M004", Severity.INFO, Confidence.LOW)
    assert (finding.first_step, finding.last_step) == (0, LAST)
    assert finding.evidence["pinned_level"] == pytest.approx(0.9, abs=0.002)
    assert finding.evidence["pinned_fraction"] == 1.0
    assert finding.evidence["loss_change"] < 0
    assert "still falling" in finding.message


def _flat_loss(level: float, seed: int = 1) -> np.ndarray:
    return level * (1.0 + 0.01 * curves.rng(seed).standard_normal(EPOCHS))


def test_a_flat_loss_at_the_prior_entropy_makes_it_a_warning() -> None:
    # A 90/10 prior predictor: loss h(0.9) = 0.325 at every evaluation.
    (finding,) = curves.find(CHECK, _series(_fixed(), loss=_flat_loss(0.33)))
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["min_prior_entropy"] == pytest.approx(0.325, abs=0.002)
    assert finding.evidence["loss_to_prior_entropy"] == pytest.approx(1.0, abs=0.05)
    assert "predicting the class prior" in finding.message


def test_a_loss_far_below_the_prior_entropy_rules_it_out() -> None:
    # A well-trained classifier at 0.98 from its first evaluation (fine-tuned from a good
    # start) with loss 0.05: a 98/2 prior has entropy 0.098, so the outputs carry information.
    accuracy = _pinned(0.98)
    assert curves.find(CHECK, _series(accuracy, loss=_flat_loss(0.05))) == []


def test_near_miss_at_the_learned_ratio() -> None:
    entropy = 0.325  # h(0.9)
    assert curves.find(CHECK, _series(_pinned(), loss=_flat_loss(0.57 * entropy))) == []
    (finding,) = curves.find(CHECK, _series(_pinned(), loss=_flat_loss(0.66 * entropy)))
    assert finding.severity is Severity.INFO
    (finding,) = curves.find(CHECK, _series(_pinned(), loss=_flat_loss(0.57 * entropy)), learned_ratio=0.5)
    assert finding.severity is Severity.INFO


def test_near_miss_at_the_prior_ratio() -> None:
    entropy = 0.325
    (below,) = curves.find(CHECK, _series(_fixed(), loss=_flat_loss(0.8 * entropy)))
    (above,) = curves.find(CHECK, _series(_fixed(), loss=_flat_loss(0.9 * entropy)))
    assert (below.severity, above.severity) == (Severity.INFO, Severity.WARNING)
    (overridden,) = curves.find(CHECK, _series(_fixed(), loss=_flat_loss(0.8 * entropy)), prior_ratio=0.75)
    assert overridden.severity is Severity.WARNING


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_an_accuracy_saturated_at_its_ceiling_is_not_a_majority_rate(scale: float) -> None:
    # Grokking's train accuracy: 1.0 from the first evaluations on, loss falling to ~0.
    accuracy = np.ones(EPOCHS) * scale
    assert curves.find(CHECK, _series(accuracy, loss=curves.decay(EPOCHS, 0.01, 1e-4))) == []


def test_without_any_loss_it_is_an_info_note() -> None:
    epochs = curves.steps(EPOCHS)
    (finding,) = curves.find(CHECK, {"val_accuracy": (epochs, _pinned())})
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)


def test_a_heavy_tailed_per_step_loss_at_the_prior_entropy_is_judged_flat() -> None:
    # Batch-size-4 per-step training loss of a 95/5 prior predictor: lognormal batches and
    # a few 10-50x outliers around h(0.95) = 0.199; accuracy per epoch at 0.95.
    n = 2000
    loss = curves.heavy_tailed(np.full(n, 0.199), spread=0.6, outliers=0.01, seed=3)
    series = {
        "train/loss": (curves.steps(n), loss),
        "train/accuracy": (curves.steps(EPOCHS, every=100, start=99), _fixed(0.95)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING


def test_a_fine_tuned_model_whose_accuracy_moves_is_only_a_note() -> None:
    # 10 classes fine-tuned from a good start: 0.94 from the first evaluation, loss flat at
    # 0.2 (h(0.94) = 0.227), but the accuracy moves by a sample or two between evaluations.
    (finding,) = curves.find(CHECK, _series(_pinned(0.94), loss=_flat_loss(0.2)))
    assert finding.severity is Severity.INFO and "moves between evaluations" in finding.message
    (finding,) = curves.find(CHECK, _series(_pinned(0.94), loss=_flat_loss(0.2)), min_repeated=0.0)
    assert finding.severity is Severity.WARNING


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


def test_a_minority_recall_named_as_such_confirms_it() -> None:
    # The way a hand-written Lightning module logs it.
    series = _series(_pinned(0.945), val_minority_recall=np.linspace(0.0, 0.03, EPOCHS))
    (finding,) = curves.find(CHECK, series)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["worst_class_tag"] == "val_minority_recall"


def test_balanced_accuracy_at_chance_confirms_it() -> None:
    (finding,) = curves.find(CHECK, _series(_pinned(), val_balanced_accuracy=np.full(EPOCHS, 0.51)))
    assert finding.confidence is Confidence.HIGH
    assert finding.evidence["worst_class_tag"] == "val_balanced_accuracy"


def test_macro_f1_that_shows_learning_rules_it_out() -> None:
    assert curves.find(CHECK, _series(_pinned(), loss=_flat_loss(0.33), val_macro_f1=np.full(EPOCHS, 0.8))) == []


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
    loss = _flat_loss(0.68)
    assert curves.find(CHECK, _series(_pinned(0.58), loss=loss)) == []
    (finding,) = curves.find(CHECK, _series(_pinned(0.58), loss=loss), min_level=0.55)
    assert finding.evidence["pinned_level"] == pytest.approx(0.58, abs=0.002)


def test_percent_accuracy_is_read_as_a_fraction() -> None:
    (finding,) = curves.find(CHECK, _series(100.0 * _fixed(), loss=_flat_loss(0.33)))
    assert finding.severity is Severity.WARNING
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
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["pinned_level"] == pytest.approx(0.8333, abs=1e-4)


def test_quiet_on_the_real_segmentation_run_with_pixel_accuracy_near_one(real_logs) -> None:
    # BraTS U-Net: pixel accuracy 0.985-0.99 from epoch 0, but loss 0.026 against a 99/1
    # prior's entropy of 0.056: the model segments, it does not answer "background".
    run = curves.real_run(
        real_logs / "4hmetcakmak__BraTS2020CapstoneProject__keras-csvlogger-unet-reducelr/training.log"
    )
    assert [f for f in curves.run_check(CHECK, run) if f.severity is not Severity.INFO] == []


def test_quiet_on_a_healthy_fine_tuned_run_with_a_heavy_tailed_per_step_loss() -> None:
    # Fine-tuned from a good start: accuracy 0.97 from the first epoch; per-step loss of
    # batch size 4 around 0.05 with lognormal noise and 10-50x batches, against h(0.97) = 0.135.
    n = 2000
    loss = curves.heavy_tailed(curves.decay(n, 0.06, 0.04, rate=2.0), spread=0.8, outliers=0.01, seed=5)
    series = {
        "train/loss": (curves.steps(n), loss),
        "train/accuracy": (curves.steps(EPOCHS, every=100, start=99), _pinned(0.97, seed=6)),
    }
    assert curves.find(CHECK, series) == []


# --- a model that climbed to the majority rate (a logistic regression on a 90/10 split) -----

CLIMB = 15  # evaluations, one per epoch of 47 steps
CLIMB_STEPS = 47


def _collapse(
    majority: float = 0.886, repeats: int = 9, size: int = 1000, val_loss_end: float = 0.364
) -> np.ndarray:
    """Validation accuracy climbing from 0.58 to the majority rate of a set of ``size``
    examples, then the same count at the last ``repeats`` evaluations; the loss falls from
    0.85 towards the prior's entropy from above and slows down."""
    climb = np.round(np.linspace(0.58, majority - 0.01, CLIMB - repeats) * size) / size
    accuracy = np.concatenate([climb, np.full(repeats, round(majority * size) / size)])
    return accuracy.astype(np.float32).astype(np.float64)


def _collapse_series(
    accuracy: np.ndarray, val_loss_end: float = 0.364, train_level: float | None = None, **extra: curves.Series
) -> dict[str, curves.Series]:
    epochs = curves.steps(CLIMB, every=CLIMB_STEPS, start=CLIMB_STEPS - 1)
    val_loss = val_loss_end + (0.85 - val_loss_end) * np.exp(-np.arange(CLIMB) / 2.5)
    steps = curves.steps(CLIMB * 5, every=CLIMB_STEPS // 5 + 1)
    level = val_loss_end if train_level is None else train_level
    # Per-batch training loss of batch 64: lognormal scatter around a level that falls the same way.
    train = curves.heavy_tailed(
        level + (1.0 - level) * np.exp(-np.arange(steps.size) / 12.0), spread=0.3, outliers=0.0, seed=5
    )
    series: dict[str, curves.Series] = {
        "val_acc": (epochs, accuracy),
        "val_loss": (epochs, val_loss),
        "train_loss_step": (steps, train),
    }
    series.update(extra)
    return series


def test_a_climb_to_a_majority_rate_held_exactly_with_the_loss_above_its_entropy_fires() -> None:
    (finding,) = curves.find(CHECK, _collapse_series(_collapse()))
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["climbed"] == 1 and finding.evidence["final_repeats"] == 9
    assert finding.evidence["pinned_level"] == pytest.approx(0.886, abs=1e-6)
    assert finding.evidence["loss_to_prior_entropy"] >= 1.0
    assert finding.evidence["evaluation_size"] == 1000
    assert "after climbing" in finding.message and "predicting the class prior" in finding.message


def test_an_overfit_classifier_whose_training_loss_is_far_below_the_prior_entropy_is_quiet() -> None:
    # Digits at 0.978, the same count every epoch; validation loss 0.27 (above h(0.978) = 0.107,
    # its errors are confident) but training loss 0.006: outputs depend on the input.
    accuracy = _collapse(majority=0.978, size=359)
    assert curves.find(CHECK, _collapse_series(accuracy, val_loss_end=0.27, train_level=0.006)) == []


def test_near_miss_on_the_final_repeats_of_a_climbed_curve() -> None:
    # One example more right five evaluations before the end: the last four are identical.
    four = _collapse()
    four[-5] += 0.001
    assert [f for f in curves.find(CHECK, _collapse_series(four)) if f.severity is Severity.WARNING] == []
    (finding,) = curves.find(CHECK, _collapse_series(four), min_points=4)
    assert finding.severity is Severity.WARNING


def test_a_few_examples_short_of_perfect_on_a_small_set_is_saturated() -> None:
    # 113/114 at the last nine evaluations: one example is no minority class.
    accuracy = _collapse(majority=113 / 114, size=114)
    loss_end = 1.05 * 0.0503  # h(113/114)
    assert curves.find(CHECK, _collapse_series(accuracy, val_loss_end=loss_end)) == []
    (finding,) = curves.find(CHECK, _collapse_series(accuracy, val_loss_end=loss_end), min_minority=1)
    assert finding.evidence["examples_outside"] == 1


def test_a_frozen_model_under_a_zero_learning_rate_is_left_to_the_learning_rate_checks() -> None:
    epochs = curves.steps(CLIMB, every=CLIMB_STEPS, start=CLIMB_STEPS - 1)
    lr = np.where(epochs < 200, 0.01, 0.0)
    series = _collapse_series(_collapse(), lr=(epochs, lr))
    assert curves.find(CHECK, series) == []


def test_a_learned_validation_accuracy_rules_out_a_pinned_training_accuracy() -> None:
    # One model: its training accuracy repeats 143/144, but its validation accuracy sits beside
    # a training loss at a sixth of that prior's entropy.
    epochs = curves.steps(CLIMB)
    train_accuracy = np.concatenate([np.linspace(0.45, 0.985, 5), np.full(CLIMB - 5, 0.99305556)])
    series: dict[str, curves.Series] = {
        "accuracy": (epochs, train_accuracy),
        "loss": (epochs, np.linspace(0.12, 0.05, CLIMB)),
        "val_accuracy": (epochs, np.concatenate([np.linspace(0.78, 0.9, 4), np.full(CLIMB - 4, 0.9166667)])),
        "val_loss": (epochs, np.linspace(0.25, 0.195, CLIMB)),
    }
    assert curves.find(CHECK, series) == []
