"""C001 no-learning: the training loss never gets meaningfully below its initial level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks import measures
from rundoctor.checks.no_learning import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 200
STEPS = curves.steps(N, 10)


def _flat(level: float, relative_noise: float = 0.002, seed: int = 0) -> np.ndarray:
    return curves.noisy(np.full(N, level), relative_noise, seed)


def test_fires_on_a_flat_loss_at_chance() -> None:
    # RoBERTa at lr 5e-6: 1.398 -> 1.395 on 4 classes, ln 4 = 1.386.
    series = {
        "train/loss": (STEPS, _flat(1.395)),
        "train/learning_rate": (STEPS, np.linspace(5e-6, 0, N)),
    }
    (finding,) = curves.find(CHECK, series, num_classes=4)
    assert (finding.code, finding.severity, finding.confidence) == (
        "C001",
        Severity.ERROR,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (0, 1_990)
    evidence = finding.evidence
    assert evidence["progress"] == pytest.approx(0.0, abs=0.01)
    assert evidence["at_chance"] is True and evidence["ln_num_classes"] == pytest.approx(
        math.log(4)
    )
    assert evidence["lr_max"] == pytest.approx(5e-6)
    assert "ln 4" in finding.message and "learning rate at most 5.000e-06" in finding.message
    curves.assert_well_formed(finding)


def test_fires_without_the_number_of_classes_at_medium_confidence() -> None:
    loss = np.linspace(0.9, 0.87, N)  # -3.3%: below the 5% bar
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, curves.noisy(loss, 0.002))})
    assert finding.confidence is Confidence.MEDIUM
    assert finding.evidence["progress"] == pytest.approx(0.033, abs=0.005)
    assert "at_chance" not in finding.evidence


def test_stuck_at_chance_after_a_bad_start_fires() -> None:
    # Falls from an overconfident start (3.0) to ln 10 and stays: learned nothing useful.
    loss = curves.noisy(curves.plateau(N, start=3.0, level=math.log(10), fall_fraction=0.1), 0.002)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10)
    assert finding.evidence["progress"] > 0.2 and finding.evidence["at_chance"] is True
    assert finding.message.startswith("train/loss fell, but no further than chance")


def test_a_learning_rate_of_zero_is_named() -> None:
    series = {"train/loss": (STEPS, _flat(0.7)), "lr": (STEPS, np.zeros(N))}
    (finding,) = curves.find(CHECK, series)
    assert "learning rate is 0" in finding.message and finding.evidence["lr_max"] == 0.0


def test_near_miss_just_above_the_threshold_then_override() -> None:
    loss = curves.noisy(np.linspace(1.0, 0.93, N), 0.002)  # -7%
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, min_progress=0.1)
    assert finding.evidence["progress"] == pytest.approx(0.07, abs=0.01)


def test_a_fall_inside_the_first_points_counts_as_learning() -> None:
    # 38 -> 8 within the first 1% of the run, then flat: a plateau, not a run that never learned.
    loss = _flat(8.0, 0.01)
    loss[0] = 38.0
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_healthy_noisy_run_is_silent() -> None:
    loss = curves.noisy(curves.decay(N, start=math.log(10), end=0.3), 0.05)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10) == []


def test_a_detector_loss_above_ln_c_is_not_chance() -> None:
    # Never near ln C: the chance rule must not fire on a loss that is not a cross-entropy.
    loss = curves.noisy(curves.decay(N, start=40.0, end=7.8, rate=30.0), 0.01)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10) == []


def test_too_few_points() -> None:
    assert curves.find(CHECK, {"train/loss": (curves.steps(4), [1.0, 1.0, 1.0, 1.0])}) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()}, num_classes=4)
    assert [finding.code for finding in findings] == ["C001"]


def test_initial_level_takes_a_fall_within_the_first_points() -> None:
    values = np.array([38.0, 12.0, 8.0, 8.1, 7.9, 8.0, 8.0, 8.0, 8.0, 8.0])
    assert measures.edge_levels(values, 0.3) == (12.0, 8.0)
    assert measures.initial_level(values, 0.3) == 38.0
    # A lucky first batch does not set the start: the median of the first few does.
    assert measures.initial_level(np.array([1.0, 2.0, 2.1, 2.0, 1.9]), 0.6) == 2.0
    assert np.isnan(measures.initial_level(np.empty(0), 0.1))


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]}, num_classes=10)
    # A constant loss (0.7, 1e30, 1.0 between the infinities) has not learned anything.
    expected = name in ("constant", "huge", "inf")
    assert [f.code for f in findings] == (["C001"] if expected else [])
    for finding in findings:
        curves.assert_well_formed(finding)


LORA_SWEEP = "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs"


@pytest.mark.parametrize("attempt", ["run0", "run1", "run2", "run3"])
def test_real_lora_runs_at_a_tiny_learning_rate_fire(real_logs, attempt: str) -> None:
    # R01-R04: train/loss 1.39-1.40 for 1,200 steps on AG News (4 classes), lr 5e-6.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / LORA_SWEEP / attempt))
    assert finding.tags == ("train/loss",) and finding.severity is Severity.ERROR
    assert finding.evidence["num_classes"] == 4 and finding.evidence["at_chance"] is True


def test_real_stalled_keras_run_fires(real_logs) -> None:
    # R32: epoch_loss 0.5385 -> 0.5369 over 5 epochs.
    run = curves.real_run(
        real_logs / "olegkleiman__tf_keras__keras-tf2-stalled/logs/fit/20191031-020333"
    )
    (finding,) = curves.run_check(CHECK, run)
    assert finding.evidence["progress"] == pytest.approx(0.003, abs=0.001)


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_a_real_stall_at_ln_k_is_an_error() -> None:
    # A model that cannot learn: the loss sits at ln 10 from the first step.
    loss = curves.noisy(np.full(N, math.log(10)), 0.01, seed=2)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10)
    assert finding.severity is Severity.ERROR and finding.evidence["at_chance"] is True


def test_a_flat_loss_without_chance_information_is_at_least_a_warning() -> None:
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, _flat(0.7))})
    assert finding.severity in (Severity.WARNING, Severity.ERROR)


def test_fine_tuning_from_a_good_start_is_info() -> None:
    # A pretrained model fine-tuned on 10 classes: starts at 0.3 (13% of ln 10) and moves 3%.
    loss = curves.noisy(np.linspace(0.30, 0.291, N), 0.02, seed=4)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10)
    assert finding.severity is Severity.INFO and finding.evidence["good_start"] is True
    assert "good start" in finding.message
    # Params override: with good_start 0.1 it is a stall again.
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10, good_start=0.1)
    assert finding.severity is not Severity.INFO


def test_a_diverging_loss_is_not_a_stall() -> None:
    loss = np.geomspace(1e8, 1e16, N)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_healthy_heavy_tailed_batch_of_four_is_silent() -> None:
    n = 3000
    loss = curves.heavy_tailed(curves.decay(n, start=1.2, end=0.35, rate=4.0), spread=0.8, seed=7)
    assert curves.find(CHECK, {"train/loss": (curves.steps(n), loss)}, num_classes=3) == []


def test_a_label_noise_floor_after_a_clear_fall_is_learning() -> None:
    # 30% label noise: the loss falls from ln 3 to a high floor (0.75) and stays.
    n = 2000
    loss = curves.heavy_tailed(curves.plateau(n, start=math.log(3), level=0.75, fall_fraction=0.3), spread=0.6, seed=8)
    assert curves.find(CHECK, {"train/loss": (curves.steps(n), loss)}, num_classes=3) == []


def test_a_tiny_logged_rate_is_named_as_the_likely_cause() -> None:
    series = {"train/loss": (STEPS, _flat(2.4)), "lr-SGD": (STEPS, np.full(N, 1e-6))}
    (finding,) = curves.find(CHECK, series)
    assert "likely cause" in finding.message


# A frozen network whose per-batch loss scatters by 10-20% (batch 32, 135 logged steps): the
# lowest rolling median sits ~10% under the start by chance alone, which is not learning.
NOISY_STEPS = curves.steps(135, 5)


def _noisy_flat(level: float, spread: float = 0.12, seed: int = 3) -> np.ndarray:
    return curves.heavy_tailed(np.full(NOISY_STEPS.size, level), spread=spread, outliers=0.0, seed=seed)


def test_a_noisy_loss_that_never_moved_fires_despite_a_lucky_low_median() -> None:
    loss = _noisy_flat(2.8, seed=7)
    smooth = measures.rolling_median(loss, measures.window(loss.size, 0.05))
    assert (measures.initial_level(loss, 0.05) - smooth.min()) / 2.8 > 0.05  # the old measure passed it
    (finding,) = curves.find(CHECK, {"loss": (NOISY_STEPS, loss), "lr": (NOISY_STEPS, np.full(135, 1e-3))})
    assert finding.severity is Severity.WARNING
    assert finding.evidence["noise_allowance"] > 0.05 * 2.8
    assert finding.evidence["progress"] < 0.05 and finding.evidence["fall_hidden_by_noise"] is False
    assert "its noise gives by chance" in finding.message
    curves.assert_well_formed(finding)


def test_a_noisy_loss_that_really_fell_does_not_fire() -> None:
    # Near miss: the same noise around a 35% fall over the run is learning.
    for seed in (4, 5, 7):
        loss = curves.heavy_tailed(np.linspace(2.8, 1.8, 135), spread=0.12, outliers=0.0, seed=seed)
        assert curves.find(CHECK, {"loss": (NOISY_STEPS, loss)}) == []


def test_a_loss_too_noisy_to_rule_out_a_fall_is_not_judged() -> None:
    # Batch 4 at a high rate: per-batch scatter of ~90% hides a fall of 40%; the lowest
    # rolling median is no evidence either way, and the trend cannot rule a fall out.
    for seed in (7, 8, 9):
        loss = curves.heavy_tailed(np.linspace(0.5, 0.3, 225), spread=0.9, outliers=0.0, seed=seed)
        assert curves.find(CHECK, {"train/loss": (curves.steps(225, 20), loss)}) == []


def test_a_learning_rate_cut_to_zero_early_is_named_as_the_cause() -> None:
    # A step schedule with factor 0: the rate is 0.01 for the first steps, then 0.
    loss = _noisy_flat(2.5, spread=0.08, seed=4)
    loss[:3] = [2.7, 2.65, 2.6]
    rate = np.where(np.arange(135) < 2, 0.01, 0.0)
    (finding,) = curves.find(CHECK, {"train/loss": (NOISY_STEPS, loss), "lr": (NOISY_STEPS, rate)})
    assert finding.severity in (Severity.WARNING, Severity.ERROR)
    assert finding.evidence["lr_zero_from_step"] == 10 and finding.evidence["lr_zero_fraction"] > 0.95
    assert "learning rate is 0 from step 10 to the end" in finding.message
    # Override: a zero stretch must cover the whole run to be named.
    (plain,) = curves.find(
        CHECK, {"train/loss": (NOISY_STEPS, loss), "lr": (NOISY_STEPS, rate)}, zero_rate_fraction=1.0
    ) or (None,)
    assert plain is None or "lr_zero_from_step" not in plain.evidence


def test_a_decay_to_zero_at_the_end_is_not_a_zero_rate() -> None:
    rate = np.concatenate((np.linspace(1e-3, 0, 100), np.zeros(35)))
    loss = curves.noisy(curves.decay(135, 2.0, 0.3), 0.01)
    assert curves.find(CHECK, {"train/loss": (NOISY_STEPS, loss), "lr": (NOISY_STEPS, rate)}) == []


def test_a_classifier_fine_tuned_from_a_good_start_is_info_without_the_number_of_classes() -> None:
    # Fine-tuning a good classifier at 2e-5: the loss wanders 0.05 -> 0.1, val accuracy 0.98.
    steps = curves.steps(27, 10, 10)
    loss = curves.heavy_tailed(np.linspace(0.05, 0.09, 27), spread=0.5, outliers=0.0, seed=4)
    series = {"loss": (steps, loss), "eval_accuracy": (steps[::9], np.array([0.981, 0.981, 0.981]))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.evidence["good_start"] is True
    assert "of ln 2" in finding.message
    # Without an accuracy the loss could be a regression's: no claim about a good start.
    (plain,) = curves.find(CHECK, {"loss": (steps, loss)})
    assert plain.evidence["good_start"] is False


def test_a_batch_of_four_whose_noise_swamps_its_start_is_not_judged_then_override() -> None:
    # Softmax regression, SGD at 0.1 with batches of 4: the per-batch loss scatters by most of
    # its level.  The first batch sits at 0.71, the loss wanders 0.42 -> 0.51 -> 0.48.  The
    # fall noise alone reaches is 73% of the start: a loss that halved looks the same, so a
    # note at most.
    n = 237
    steps = curves.steps(n, 19, 19)
    level = np.interp(np.linspace(0.0, 1.0, n), [0.0, 0.5, 1.0], [0.42, 0.51, 0.48])
    loss = curves.heavy_tailed(level, spread=0.6, outliers=0.0, seed=2)
    loss[0] = 0.71
    series = {"train/loss": (steps, loss), "lr": (steps, np.full(n, 0.1))}
    (note,) = curves.find(CHECK, series)
    assert (note.severity, note.confidence) == (Severity.INFO, Confidence.LOW)
    assert note.evidence["noise_swamps_start"] is True and "would look the same" in note.message
    assert note.evidence["noise_allowance"] / note.evidence["initial_level"] == pytest.approx(0.73, abs=0.02)
    # Params override: allowing any noise, the same curve is a warning.
    (finding,) = curves.find(CHECK, series, max_noise_allowance=5.0)
    assert finding.severity is Severity.WARNING
    # Near miss: when the log shows the cause (the rate is 0) it is still reported.
    zero = {**series, "lr": (steps, np.zeros(n))}
    assert [f.severity for f in curves.find(CHECK, zero)] == [Severity.ERROR]


# A network frozen by a requires_grad bug (only the output bias trains), 10 classes, C not
# logged: the first batch of the overconfident initialisation sits at 3.6, the bias sheds that
# in a step or two, and the per-batch loss then scatters around 3.0 for 135 logged steps while
# the validation accuracy stays at 0.07-0.08 and the validation loss drifts 3.1 -> 3.0.
FROZEN_EVALS = curves.steps(15, 45, 44)


def _frozen(seed: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    loss = _noisy_flat(3.0, spread=0.07, seed=seed)
    loss[0] = 3.6
    return {
        "loss": (NOISY_STEPS, loss),
        "lr": (NOISY_STEPS, np.full(NOISY_STEPS.size, 1e-3)),
        "val_loss": (FROZEN_EVALS, np.linspace(3.13, 3.02, 15)),
        "val_acc": (FROZEN_EVALS, np.array([0.078, 0.078, 0.072, 0.07, 0.07, 0.07, 0.067, 0.072] + [0.07] * 7)),
    }


def test_a_frozen_classifier_at_chance_is_judged_from_its_early_level() -> None:
    series = _frozen()
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING
    evidence = finding.evidence
    assert evidence["accuracy_tag"] == "val_acc" and evidence["accuracy_max"] == pytest.approx(0.078)
    assert evidence["initial_level"] < 3.3  # the median of its first points, not the 3.6 batch
    assert evidence["progress"] < 0.05
    assert "no better than chance" in finding.message
    curves.assert_well_formed(finding)
    # Params override: counting accuracies up to 5% as chance, the run is a classifier that
    # learned something, judged from its first batch as before (a fall past the bar).
    assert curves.find(CHECK, series, max_chance_accuracy=0.05) == []


def test_the_same_curve_with_an_accuracy_that_climbed_is_not_judged_from_its_early_level() -> None:
    # Near miss: an accuracy past 0.5 is a classifier that learned; the first batch counts.
    series = {**_frozen(), "val_acc": (FROZEN_EVALS, np.linspace(0.2, 0.6, 15))}
    assert curves.find(CHECK, series) == []


def _short_frozen(val_end: float, seed: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # Three classes, 142 training examples, batch 32, 15 epochs: 15 per-batch losses that
    # scatter 0.7-1.6 (too few and too noisy for a flat claim of their own), and a
    # validation loss and a majority-class accuracy that do not move.
    steps = curves.steps(15, 5, 4)
    loss = curves.heavy_tailed(np.full(15, 1.3), spread=0.25, outliers=0.0, seed=seed)
    return {
        "loss": (steps, loss),
        "val_loss": (steps, np.linspace(1.59, val_end, 15)),
        "val_acc": (steps, np.full(15, 0.417)),
    }


def test_a_validation_loss_shown_flat_is_the_evidence_for_a_short_noisy_loss() -> None:
    (finding,) = curves.find(CHECK, _short_frozen(1.545))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["val_tag"] == "val_loss"
    assert finding.evidence["val_change"] == pytest.approx(-0.028, abs=0.002)
    assert "the weights are not moving" in finding.message
    # Near miss: a validation loss that fell 8% is learning, however noisy the training loss.
    assert curves.find(CHECK, _short_frozen(1.46)) == []
    # Params override: with a 10% band, that fall is within it.
    assert len(curves.find(CHECK, _short_frozen(1.46), min_progress=0.1)) == 1


def test_a_loss_that_fell_but_stays_near_chance_cannot_fit_its_data() -> None:
    # Shuffled labels, 10 classes: 3.0 -> 2.11 (92% of ln 10) in a steady fall; with C known
    # the best level is no better than a uniform guess.
    loss = curves.noisy(curves.decay(N, start=3.0, end=2.05, rate=3.0), 0.01, seed=5)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["no_better_than_chance"] is True and finding.evidence["at_chance"] is False
    assert "cannot fit its own training data" in finding.message
    # Near miss: a fall to 1.97 (86% of ln 10) fitted part of the (random) labels.
    lower = curves.noisy(curves.decay(N, start=3.0, end=1.9, rate=3.0), 0.01, seed=5)
    assert curves.find(CHECK, {"train/loss": (STEPS, lower)}, num_classes=10) == []
    # Params override: a 20% margin counts it as chance too.
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, lower)}, num_classes=10, chance_floor=0.2)
    assert finding.evidence["no_better_than_chance"] is True


def test_a_classifier_whose_training_accuracy_climbed_has_learned() -> None:
    # Binary, loss 0.69 -> 0.64 (92% of ln 2: "no better than chance" by the loss alone) while
    # the training accuracy climbs 0.5 -> 0.9: it learned; the loss's level is the
    # underconfident check's story, not a stall.
    loss = curves.noisy(curves.decay(N, math.log(2.0), 0.64, 5.0), 0.01, seed=2)
    climbed = curves.rise(N, 0.5, 0.9, 5.0)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss), "train/accuracy": (STEPS, climbed)}, num_classes=2) == []
    # Without the accuracy the same loss cannot fit its data.
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=2)
    assert finding.evidence["no_better_than_chance"] is True


def test_near_miss_an_accuracy_short_of_halfway_from_chance_is_no_proof_of_learning() -> None:
    loss = curves.noisy(curves.decay(N, math.log(2.0), 0.64, 5.0), 0.01, seed=2)
    # 0.5 -> 0.72: short of halfway (0.75) from chance to 1.
    short = curves.rise(N, 0.5, 0.72, 5.0)
    assert len(curves.find(CHECK, {"train/loss": (STEPS, loss), "train/accuracy": (STEPS, short)}, num_classes=2)) == 1
    # 0.85 -> 0.9: high, but it started there (a rise of a tenth of the way, not a quarter).
    flat_high = curves.rise(N, 0.85, 0.9, 5.0)
    assert len(curves.find(CHECK, {"train/loss": (STEPS, loss), "train/accuracy": (STEPS, flat_high)}, num_classes=2)) == 1
    # Params override: 0.65 -> 0.9 rose over a quarter of the way from chance, not half of it.
    partly = curves.rise(N, 0.65, 0.9, 5.0)
    series = {"train/loss": (STEPS, loss), "train/accuracy": (STEPS, partly)}
    assert curves.find(CHECK, series, num_classes=2) == []
    assert len(curves.find(CHECK, series, num_classes=2, learned_rise=0.5)) == 1
