"""M007 metric-loss-disagreement: evaluation metric frozen, copied, or against its loss."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.metric_loss_disagreement import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

EVALS = 20
EVERY = 100


def _evals(values: np.ndarray) -> curves.Series:
    return curves.steps(values.size, EVERY), values


def _healthy() -> dict[str, curves.Series]:
    return {
        "val/accuracy": _evals(curves.noisy(curves.rise(EVALS, 0.4, 0.9), 0.01)),
        "val/loss": _evals(curves.noisy(curves.decay(EVALS, 1.5, 0.4), 0.01)),
        "train/accuracy": _evals(curves.noisy(curves.rise(EVALS, 0.4, 0.95), 0.01, seed=1)),
    }


def _frozen(identical: int = 14) -> np.ndarray:
    """A rising accuracy that repeats its value from ``identical`` evaluations before the end."""
    values = curves.noisy(curves.rise(EVALS, 0.4, 0.8), 0.01)
    values[EVALS - identical :] = values[EVALS - identical]
    return values


def test_frozen_metric_while_the_loss_moves() -> None:
    # Frozen at 0.8 from evaluation 6 while the loss goes on from 0.63 to 0.21 (2.6x).
    series = _healthy()
    series["val/accuracy"] = _evals(_frozen())
    series["val/loss"] = _evals(curves.noisy(curves.decay(EVALS, 2.3, 0.2), 0.01))
    (finding,) = curves.find(CHECK, series)
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M007",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert (finding.first_step, finding.last_step) == (600, 1900)
    assert finding.tags == ("val/accuracy", "val/loss")
    value = float(_frozen()[-1])
    assert finding.evidence["identical_evaluations"] == 14 and finding.evidence["value"] == value
    assert finding.evidence["loss_relative_range"] > 0.1
    assert f"bit-identical value {value!r} at 14 consecutive evaluations" in finding.message


def test_frozen_metric_without_any_loss_is_low_confidence() -> None:
    (finding,) = curves.find(CHECK, {"val/mAP": _evals(_frozen())})
    assert finding.confidence is Confidence.LOW and finding.tags == ("val/mAP",)
    assert finding.severity is Severity.INFO


def test_frozen_majority_rate_beside_a_loss_jittering_at_its_level_is_not_a_disagreement() -> None:
    # A prior predictor: accuracy 0.9 at every evaluation, validation loss at h(0.9) with
    # 0.3% evaluation noise (a 1.5% range over 20 evaluations, but no movement).
    series = {
        "val/accuracy": _evals(np.full(EVALS, 0.9)),
        "val/loss": _evals(0.327 * (1.0 + 0.003 * curves.rng(7).standard_normal(EVALS))),
    }
    assert curves.find(CHECK, series) == []
    # The loss falling to 0.12, 1.7x the least 10% errors cost (0.069): a cached metric.
    (finding,) = curves.find(CHECK, {**series, "val/loss": _evals(np.linspace(0.34, 0.12, EVALS))})
    assert finding.severity is Severity.WARNING


def test_frozen_metric_with_a_frozen_loss_is_not_a_disagreement() -> None:
    # R01-R04: nothing moves; chance-level reports it.
    series = {
        "eval/accuracy": _evals(np.full(EVALS, 0.2407)),
        "eval/loss": _evals(np.full(EVALS, 1.3911)),
    }
    assert curves.find(CHECK, series) == []


def test_metric_pinned_at_a_bound_is_not_frozen() -> None:
    series = _healthy()
    series["val/mAP_small"] = _evals(np.concatenate([np.zeros(15), np.linspace(0.01, 0.05, 5)]))
    series["val/precision"] = _evals(np.ones(EVALS))
    series["coco/bbox_mAP_s"] = _evals(np.full(EVALS, -1.0))
    assert curves.find(CHECK, series) == []


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_metric_saturated_at_its_ceiling_is_not_frozen(scale: float) -> None:
    # mAP50 0.995 on a small detection set, repeated at most evaluations while the loss falls.
    series = _healthy()
    series["metrics/mAP50(B)"] = _evals(scale * np.concatenate([np.linspace(0.6, 0.99, 6), np.full(14, 0.995)]))
    assert curves.find(CHECK, series) == []
    assert curves.find(CHECK, series, ceiling=0.999) != []


def test_near_miss_quantised_metric_repeats_in_a_short_stretch() -> None:
    # Recall = 7/18 on a small evaluation set repeats by itself; 9 of 20 is under half.
    series = _healthy()
    series["val/accuracy"] = _evals(_frozen(identical=9))
    assert curves.find(CHECK, series) == []
    (finding,) = curves.find(CHECK, series, min_identical_fraction=0.4)
    assert finding.evidence["identical_evaluations"] == 9


def test_metric_copied_from_training() -> None:
    series = _healthy()
    series["val/accuracy"] = series["train/accuracy"]
    (finding,) = curves.find(CHECK, series)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.tags == ("val/accuracy", "train/accuracy")
    assert (finding.first_step, finding.last_step) == (0, (EVALS - 1) * EVERY)
    assert finding.evidence["shared_steps"] == EVALS


def test_accuracy_falling_while_its_loss_falls() -> None:
    series = _healthy()
    series["val/accuracy"] = _evals(np.linspace(0.85, 0.6, EVALS))
    (finding,) = curves.find(CHECK, series)
    assert finding.confidence is Confidence.MEDIUM
    assert finding.evidence["accuracy_fall"] > 0.15 and finding.evidence["loss_fall"] > 0.4
    assert finding.first_step <= 300 and finding.last_step >= 1_500
    assert "fell" in finding.message


def test_accuracy_falling_while_the_loss_rises_is_overfitting_not_disagreement() -> None:
    # R38: the loss bottoms early and rises while accuracy slides.
    series = {
        "eval_g0_accuracy": _evals(np.linspace(0.71, 0.59, 30)),
        "eval_g0_loss": _evals(np.concatenate([[5.7], np.linspace(1.11, 2.7, 29)])),
    }
    assert curves.find(CHECK, series) == []


def test_quiet_on_a_healthy_run() -> None:
    assert curves.find(CHECK, _healthy()) == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    # Includes YOLO recall repeating 8 times (k/18 on a small validation set) and
    # mmdetection mAP rounded to three decimals.
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_quiet_on_the_real_stalled_run(real_logs) -> None:
    run = curves.real_run(
        real_logs / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run3"
    )
    assert curves.run_check(CHECK, run) == []


def test_frozen_majority_rate_beside_a_settling_prior_loss_is_left_to_class_imbalance() -> None:
    # 94.5% (the majority share) at every evaluation; the loss settles 0.25 -> 0.214 =
    # h(0.945): a fixed prediction of the prior, not a cached metric.
    series = {"val/accuracy": _evals(np.full(EVALS, 0.945)), "val/loss": _evals(curves.decay(EVALS, 0.25, 0.214))}
    assert curves.find(CHECK, series) == []


def test_accuracy_cached_at_its_first_value_while_the_loss_falls_far_below_the_prior() -> None:
    # The accuracy computed once (0.1 on 10 classes) and never updated; the loss falls to 0.2.
    series = {"val/accuracy": _evals(np.full(EVALS, 0.1)), "val/loss": _evals(curves.decay(EVALS, 2.3, 0.2))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING


def _small_set(errors_at_end: int, size: int = 36, evals: int = 30) -> np.ndarray:
    """Accuracy on ``size`` evaluation examples, logged as float32 k/size: it climbs in whole
    examples for five evaluations, then the same ``errors_at_end`` examples stay wrong."""
    wrong = np.concatenate([np.linspace(9, errors_at_end + 1, 5).round(), np.full(evals - 5, errors_at_end)])
    return ((size - wrong) / size).astype(np.float32).astype(np.float64)


def _small_set_run(errors_at_end: int) -> dict[str, curves.Series]:
    # The loss keeps falling on the examples the model already gets right (0.9 -> 0.14).
    loss = curves.noisy(curves.decay(30, 0.9, 0.1, rate=3.0), 0.01)
    return {"val_accuracy": _evals(_small_set(errors_at_end)), "val_loss": _evals(loss)}


def test_frozen_accuracy_of_a_converged_model_on_a_small_set_is_a_note() -> None:
    # 33/36 at 25 evaluations while the loss still falls 40%: three hard examples stay wrong.
    (finding,) = curves.find(CHECK, _small_set_run(3))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["errors_left"] == 3 and finding.evidence["evaluation_examples"] == 36
    assert "steps of 1/36" in finding.message


def test_near_miss_frozen_accuracy_with_many_errors_left_is_a_warning() -> None:
    # 6 of 36 wrong at every evaluation is beyond what a converged model keeps by chance.
    (finding,) = curves.find(CHECK, _small_set_run(6))
    assert finding.severity is Severity.WARNING and "errors_left" not in finding.evidence


def test_max_errors_override() -> None:
    (finding,) = curves.find(CHECK, _small_set_run(3), max_errors=2)
    assert finding.severity is Severity.WARNING
    (finding,) = curves.find(CHECK, _small_set_run(6), max_errors=6)
    assert finding.severity is Severity.INFO


def test_frozen_accuracy_with_no_grid_stays_a_warning() -> None:
    # A cached value updated once (0.3 then 0.708): two values do not make a 1/n grid.
    values = np.concatenate([[0.3], np.full(EVALS - 1, 0.7075209)])
    series = {"val/accuracy": _evals(values), "val/loss": _evals(curves.decay(EVALS, 1.1, 0.3))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING


def test_metric_after_the_loss_went_nan_is_left_to_non_finite() -> None:
    # Weights turn NaN at evaluation 6: the accuracy collapses to one class's share and stays
    # there while the loss is NaN; before that the run was healthy.
    accuracy = np.concatenate([curves.rise(6, 0.62, 0.955), np.full(6, 0.0919220075)])
    loss = curves.with_nan(curves.decay(12, 1.33, 0.23), 6)
    train = curves.with_nan(curves.heavy_tailed(curves.decay(540, 2.6, 0.1), 0.3), 270)
    series = {
        "val_acc": (curves.steps(12, 45, 44), accuracy),
        "val_loss": (curves.steps(12, 45, 44), loss),
        "train_loss_step": (curves.steps(540), train),
    }
    assert curves.find(CHECK, series) == []
    # The same collapse with a finite loss still falling is a broken metric.
    series["val_loss"] = (curves.steps(12, 45, 44), curves.decay(12, 1.33, 0.23))
    series["train_loss_step"] = (curves.steps(540), curves.heavy_tailed(curves.decay(540, 2.6, 0.1), 0.3))
    assert {finding.severity for finding in curves.find(CHECK, series)} == {Severity.WARNING}


def _wrong_labels(rise: float = 0.011) -> dict[str, curves.Series]:
    """Six evaluations of a 10-class model scored against permuted labels: the accuracy sits
    near chance while the validation loss falls 1.12 -> 0.30."""
    accuracy = np.linspace(0.092, 0.092 + rise, 6)
    loss = np.array([1.12, 0.594, 0.422, 0.344, 0.308, 0.297])
    return {"eval_accuracy": (curves.steps(6, 90, 90), accuracy), "eval_loss": (curves.steps(6, 90, 90), loss)}


def test_accuracy_far_below_what_its_loss_allows() -> None:
    (finding,) = curves.find(CHECK, _wrong_labels())
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.tags == ("eval_accuracy", "eval_loss")
    assert finding.evidence["accuracy_bound"] == pytest.approx(1 - 0.3025 / np.log(2), abs=0.01)
    assert finding.evidence["followed"] < 0.1
    assert "allows no accuracy below" in finding.message


def test_near_miss_accuracy_below_the_bound_that_follows_its_loss() -> None:
    # A looser loss (MSE over the classes, a subset accuracy): the accuracy stays below the
    # cross-entropy bound but climbs with its loss, 0.09 -> 0.25 of a 0.56 bound.
    assert curves.find(CHECK, _wrong_labels(rise=0.16)) == []
    (finding,) = curves.find(CHECK, _wrong_labels(rise=0.16), max_followed=0.5)
    assert finding.evidence["followed"] == pytest.approx(0.33, abs=0.05)


def test_accuracy_within_its_loss_bound_is_quiet() -> None:
    series = _wrong_labels()
    series["eval_accuracy"] = (series["eval_accuracy"][0], np.array([0.62, 0.84, 0.90, 0.93, 0.94, 0.95]))
    assert curves.find(CHECK, series) == []
    assert curves.find(CHECK, _wrong_labels(), bound_margin=0.5) == []


def _fine_tuned(creep: float, right: int = 347) -> dict[str, curves.Series]:
    """Nine evaluations of a model fine-tuned from a good start on 359 examples: ``right``/359
    right at every one (float32), while the loss creeps down by ``creep`` of its level."""
    steps = curves.steps(9, 30, 30)
    accuracy = np.full(9, np.float32(right / 359), dtype=np.float64)
    loss = 0.125 * (1.0 - creep * np.linspace(0.0, 1.0, 9)) * (1.0 + 0.002 * curves.rng(3).standard_normal(9))
    return {"eval_accuracy": (steps, accuracy), "eval_loss": (steps, loss)}


def test_frozen_accuracy_of_a_fine_tuned_model_whose_loss_creeps_is_a_note() -> None:
    # h-finetune: accuracy fixed at 0.9666 for all nine evaluations, the loss 4% lower.
    (finding,) = curves.find(CHECK, _fine_tuned(0.04))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["loss_factor"] == pytest.approx(1.04, abs=0.02)
    assert "changed only 1.04x (threshold 1.5x)" in finding.message


def test_near_miss_frozen_accuracy_whose_loss_fell_just_under_a_third() -> None:
    # A loss down 30% end to end (quarter medians 1.39x apart) stays a note; down 45%
    # (1.8x) to 0.07 with not one of 359 examples flipping, while 29 wrong cost at least
    # 0.056, is a stale metric: no calibration takes a loss that close to its floor.
    (finding,) = curves.find(CHECK, _fine_tuned(0.30, right=330))
    assert finding.severity is Severity.INFO and finding.evidence["loss_factor"] < 1.5
    (finding,) = curves.find(CHECK, _fine_tuned(0.45, right=330))
    assert finding.severity is Severity.WARNING and finding.evidence["loss_factor"] > 1.5
    assert finding.evidence["floor_factor"] < 1.5


def test_frozen_accuracy_of_a_sharpening_model_far_above_its_loss_floor_is_a_note() -> None:
    # The same 1.8x fall with 12 of 359 wrong: the loss ends at 0.07, 3x the 0.023 the
    # errors must cost; the rest is confidence in right answers, which sharpening (or an
    # evaluation temperature, label smoothing) moves without flipping an answer.
    (finding,) = curves.find(CHECK, _fine_tuned(0.45))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["loss_factor"] > 1.5 and finding.evidence["floor_factor"] > 3.0
    assert "the least a 0.967 accuracy allows (threshold 3x)" in finding.message


def test_min_loss_factor_override() -> None:
    (finding,) = curves.find(CHECK, _fine_tuned(0.04, right=330), min_loss_factor=1.01)
    assert finding.severity is Severity.WARNING
    (finding,) = curves.find(CHECK, _fine_tuned(0.45, right=330), min_loss_factor=2.0)
    assert finding.severity is Severity.INFO


def test_max_floor_factor_override() -> None:
    (finding,) = curves.find(CHECK, _fine_tuned(0.45), max_floor_factor=4.0)
    assert finding.severity is Severity.WARNING
    (finding,) = curves.find(CHECK, _fine_tuned(0.45, right=330), max_floor_factor=1.0)
    assert finding.severity is Severity.INFO


def _tempered(loss_end: float) -> dict[str, curves.Series]:
    """15 epochs on 359 examples: the accuracy climbs 0.90 -> 0.989, then slides to 0.947
    (fifteen answers flip as the model overfits) while the evaluation loss falls to ``loss_end``."""
    right = np.concatenate([np.linspace(323, 355, 8), np.linspace(354, 340, 7)]).round()
    accuracy = (right / 359).astype(np.float32).astype(np.float64)
    loss = np.geomspace(1.25, loss_end, 15)
    steps = curves.steps(15, 90, 89)
    return {"val_accuracy": (steps, accuracy), "val_loss": (steps, loss)}


def test_accuracy_sliding_beside_a_tempered_loss_is_a_note() -> None:
    # Logits divided by 3 at evaluation: the loss ends at 0.30, 10x the 0.032 the errors
    # must cost, and keeps falling as the model sharpens (the untempered loss would rise).
    (finding,) = curves.find(CHECK, _tempered(0.30))
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["floor_factor"] > 3.0 and "a note" in finding.message


def test_near_miss_accuracy_sliding_beside_a_loss_near_its_floor_is_a_warning() -> None:
    # The same slide while the loss falls to 0.04, 1.4x its floor: the accuracy contradicts
    # a loss no calibration explains.
    (finding,) = curves.find(CHECK, _tempered(0.04))
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["floor_factor"] < 3.0
    (finding,) = curves.find(CHECK, _tempered(0.30), max_floor_factor=20.0)
    assert finding.severity is Severity.WARNING


def test_collapsed_metric_is_one_warning_not_a_frozen_note_beside_it() -> None:
    # The accuracy collapses to 0.09 and stays there while the loss still falls 1.2x: the
    # fall against the loss is the finding; a "converged model" note would contradict it.
    accuracy = np.concatenate([curves.rise(6, 0.62, 0.955), np.full(6, 0.0919220075)])
    series = {
        "val_acc": (curves.steps(12, 45, 44), accuracy),
        "val_loss": (curves.steps(12, 45, 44), curves.decay(12, 1.33, 0.23)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING and "fell" in finding.message
