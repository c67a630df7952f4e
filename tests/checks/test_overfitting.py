"""G001 overfitting: validation loss rising or stalled while the training loss falls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rundoctor import roles
from rundoctor.checks import measures
from rundoctor.checks.overfitting import CHECK
from rundoctor.findings import Confidence, Severity
from rundoctor.series import XAxis
from tests import curves as c

TRAIN_STEPS = 2000
EVALS = c.steps(20, every=100, start=99)  # an evaluation at the end of every 100 steps


def findings(series, **params):
    found = c.find(CHECK, series, **params)
    for finding in found:
        c.assert_well_formed(finding)
    return found


def step_run(val: np.ndarray, train_end: float = 0.1, seed: int = 1):
    """A training loss logged every step and a validation loss every 100 steps."""
    train = c.noisy(c.decay(TRAIN_STEPS, 2.0, train_end, 4.0), 0.03, seed=seed)
    return {"train/loss": (c.steps(TRAIN_STEPS), train), "val/loss": (EVALS, val)}


def test_rising_validation_loss_fires_with_the_best_step():
    val = c.noisy(c.overfit(20, turn=0.4, low=0.5, rise=0.5), 0.01, seed=2)
    [finding] = findings(step_run(val))
    assert (finding.code, finding.severity, finding.confidence) == (
        "G001",
        Severity.WARNING,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (899, 1999)
    assert finding.tags[:2] == ("val/loss", "train/loss")
    evidence = finding.evidence
    assert evidence["signature"] == "rise"
    assert evidence["best_step"] == 899
    assert 35 < evidence["val_rise_pct"] < 50
    assert evidence["train_drop_pct"] > 50
    assert evidence["val_train_gap_ratio"] > 3
    assert "rose 42% above its minimum" in finding.message and "(threshold 10%)" in finding.message
    assert "899" in finding.advice


def test_healthy_noisy_run_does_not_fire():
    val = c.noisy(c.decay(20, 2.2, 0.3, 4.0), 0.02, seed=3)
    assert findings(step_run(val)) == []


def test_near_miss_below_the_rise_threshold_and_the_gap_does_not_fire():
    # 8% rise (threshold 10%); the training loss ends at 0.45, so the gap stays near 1.2x.
    val = c.noisy(c.overfit(20, turn=0.4, low=0.5, rise=0.08), 0.002, seed=4)
    series = step_run(val, train_end=0.45)
    assert findings(series) == []
    [finding] = findings(series, rise_threshold=0.05)
    assert finding.evidence["signature"] == "rise"
    assert finding.evidence["rise_threshold_pct"] == 5.0


def test_stalled_validation_with_a_widening_gap_fires_as_a_stall():
    val = c.noisy(c.overfit(40, turn=0.3, low=0.7, rise=0.03), 0.005, seed=5)
    epochs = c.steps(40)
    train = c.noisy(c.decay(40, 2.0, 0.1, 5.0), 0.01, seed=6)
    [finding] = findings({"loss": (epochs, train), "val_loss": (epochs, val)})
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["signature"] == "stall"
    assert finding.evidence["val_rise_pct"] < 10
    assert finding.evidence["train_drop_pct"] > 25
    assert finding.evidence["evaluations_after_best"] >= 12
    assert finding.first_step == finding.evidence["best_step"] and finding.last_step == 39
    assert "has not improved since step" in finding.message
    assert findings({"loss": (epochs, train), "val_loss": (epochs, val)}, min_gap_ratio=10.0) == []


def test_flat_training_loss_is_not_overfitting():
    # The validation loss rises, but training has stopped improving too (instability, not memorising).
    val = c.noisy(c.overfit(20, turn=0.3, low=0.5, rise=0.5), 0.01, seed=7)
    train = c.noisy(c.plateau(TRAIN_STEPS, 2.0, 0.6, 0.1), 0.02, seed=8)
    assert findings({"train/loss": (c.steps(TRAIN_STEPS), train), "val/loss": (EVALS, val)}) == []


def test_a_transient_early_spike_is_not_overfitting():
    val = c.with_spikes(
        c.noisy(c.decay(20, 2.2, 0.3, 4.0), 0.01, seed=9), at=[3], height=6.0, width=1
    )
    assert findings(step_run(val)) == []


def test_too_few_evaluations_are_not_judged():
    val = c.overfit(4, turn=0.3, low=0.5, rise=1.0)
    assert findings(step_run(np.concatenate([val, np.full(16, np.nan)]))) == []


def yolo_run(cls_level: float, map_fall: float):
    """YOLO-like run without a total loss: box terms fall, the val cls term rises 80%."""
    epochs = c.steps(60)
    val_cls = c.noisy(
        c.overfit(60, turn=0.4, low=cls_level, rise=0.8, start=3 * cls_level), 0.01, seed=10
    )
    peak = c.rise(60, 0.1, 0.8, 6.0)
    metric = np.where(np.arange(60) < 30, peak, peak[30] * (1 - map_fall * np.linspace(0, 1, 60)))
    return {
        "train/box_loss": (epochs, c.noisy(c.decay(60, 2.0, 0.8, 3.0), 0.01, seed=11)),
        "train/cls_loss": (
            epochs,
            c.noisy(c.decay(60, 3 * cls_level, 0.3 * cls_level, 3.0), 0.01, seed=12),
        ),
        "val/box_loss": (epochs, c.noisy(c.decay(60, 2.0, 1.0, 3.0), 0.01, seed=13)),
        "val/cls_loss": (epochs, val_cls),
        "metrics/mAP50(B)": (epochs, metric),
    }


def test_one_small_rising_term_with_metrics_holding_is_a_low_confidence_note():
    [finding] = findings(yolo_run(cls_level=0.01, map_fall=0.0))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.tags[:2] == ("val/cls_loss", "train/cls_loss")
    assert finding.evidence["summed_val_terms_rise_pct"] < 10
    assert abs(finding.evidence["val_metric_fall_pct"]) < 1


def test_a_rising_term_confirmed_by_a_falling_metric_is_a_warning():
    [finding] = findings(yolo_run(cls_level=0.01, map_fall=0.3))
    assert finding.severity == Severity.WARNING
    assert finding.evidence["val_metric_fall_pct"] > 5


def test_a_rising_term_confirmed_by_the_summed_terms_is_a_warning():
    [finding] = findings(yolo_run(cls_level=1.0, map_fall=0.0))
    assert finding.severity == Severity.WARNING
    assert finding.evidence["summed_val_terms_rise_pct"] > 10


def test_several_rising_validation_losses_make_one_finding():
    evals = c.steps(30, every=400)
    train = c.noisy(c.decay(12000, 1.1, 0.05, 6.0), 0.02, seed=14)
    series = {"loss": (c.steps(12000), train)}
    for group in range(3):
        series[f"eval_g{group}_loss"] = (
            evals,
            c.noisy(c.overfit(30, 0.1, 1.1 + group, 1.2), 0.02, seed=15 + group),
        )
    [finding] = findings(series)
    assert set(finding.evidence["tags"]) == {"eval_g0_loss", "eval_g1_loss", "eval_g2_loss"}
    assert "2 more validation losses likewise" in finding.message
    assert finding.evidence["train_tag"] == "loss"


def test_loss_pairs_match_terms_by_name_and_fall_back_to_the_training_loss():
    ones = (c.steps(10), np.ones(10))
    run = c.make_run(
        {"train/box_loss": ones, "val/box_loss": ones, "val/g0_loss": ones, "loss": ones}
    )
    pairs = measures.loss_pairs(c.context(run))
    assert [(p.val, p.train, p.component) for p in pairs] == [
        ("val/box_loss", "train/box_loss", True),
        ("val/g0_loss", "loss", True),
    ]
    assert measures.loss_pairs(c.context(run), components=False) == []
    totals = c.make_run({"train_loss_step": ones, "val_loss_epoch": ones, "val_loss_step": ones})
    assert [(p.val, p.train) for p in measures.loss_pairs(c.context(totals))] == [
        ("val_loss_epoch", "train_loss_step"),
        ("val_loss_step", "train_loss_step"),
    ]


def test_steps_on_another_axis_are_stretched_onto_the_training_steps():
    training = np.arange(50, 45_900, 50)
    assert np.array_equal(measures.steps_on_axis_of(np.array([99, 199]), np.arange(300)), [99, 199])
    stretched = measures.steps_on_axis_of(np.arange(1, 12), training, same_axis=False)
    assert stretched[0] == training[0] and stretched[-1] == training[-1]
    own_counter = measures.steps_on_axis_of(np.array([1500, 15000]), np.arange(10))
    assert np.array_equal(own_counter, [0, 9])


def test_smoothed_level_is_read_between_and_beyond_the_logged_steps():
    steps = np.arange(0, 100, 10)
    values = np.array([1.0, 1, 1, 1, 1, 3, 3, 20, 3, 3])  # a step up at 50, a spike at 70
    ctx = c.context(c.make_run({"train/loss": (steps, values), "val/loss": ([], [])}))
    level = measures.smoothed_at(ctx, "train/loss", np.array([-5.0, 45.0, 70.0, 500.0]), 0.3)
    assert level.tolist() == [1.0, 2.0, 3.0, 3.0]  # the spike is gone; the edges hold
    assert np.isnan(measures.smoothed_at(ctx, "val/loss", np.array([1.0]), 0.3)).all()


@pytest.mark.parametrize(
    ("tag", "higher"),
    [
        ("metrics/mAP50(B)", True),
        ("val_acc_top1_epoch", True),
        ("eval_wer", False),
        ("val_perplexity", False),
    ],
)
def test_metric_direction(tag, higher):
    assert roles.higher_is_better(tag) is higher


def test_validation_on_an_epoch_axis_is_compared_by_progress():
    val = c.noisy(c.overfit(20, turn=0.4, low=0.5, rise=0.5), 0.01, seed=2)
    run = c.make_run(step_run(val))
    epochs = c.make_run(
        {"train/loss": step_run(val)["train/loss"], "val/loss": (c.steps(20, start=1), val)}
    )
    epochs.tag_axes["val/loss"] = XAxis.EPOCH
    [on_steps] = c.run_check(CHECK, run)
    [on_epochs] = c.run_check(CHECK, epochs)
    assert on_epochs.evidence["val_steps_rescaled"] is True
    assert on_epochs.first_step == 9  # the epoch, as logged
    assert on_epochs.evidence["train_drop_pct"] == pytest.approx(
        on_steps.evidence["train_drop_pct"], abs=3
    )


def test_the_example_curve_fires():
    epochs, val = CHECK.example()
    [finding] = findings(
        {"val_loss": (epochs, val), "loss": (epochs, 2.0 * np.exp(-epochs / 10) + 0.05)}
    )
    assert finding.evidence["signature"] == "rise"


@pytest.mark.parametrize("role", ["val/loss", "train/loss"])
@pytest.mark.parametrize("name", sorted(c.HOSTILE))
def test_hostile_series_do_not_raise(name, role):
    healthy = step_run(c.noisy(c.decay(20, 2.2, 0.3, 4.0), 0.02, seed=3))
    series = {**healthy, role: c.HOSTILE[name]}
    assert isinstance(findings(series), list)
    assert isinstance(
        findings({"val/box_loss": c.HOSTILE[name], "train/box_loss": c.HOSTILE[name]}), list
    )


# Real runs: the overfit ones fire, the healthy ones stay silent.
KERAS_CNN = "BurakErguvn__Car-Prediction-CNN-Model__keras-csvlogger-cnn/training.log"
DENTAL = "Abhinaya35__dental-tooth-detection-yolov8__yolov8-ultralytics-short/runs/detect/train/results.csv"
BILLS = (
    "Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile/runs/train/exp/"
    "results.csv"
)
WHISPER = (
    "P4P4N1CK__whisper-large-v2-japanese-5k-steps__hf-trainer-whisper-overfit/trainer_state.json"
)
HEALTHY = [
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/results/checkpoint-1200/trainer_state.json",
    "DeepPicEI__Elderly-fall-detection__ultralytics-yolo11/runs/train/exp/results.csv",
    "0Xero7__slm_training__lightning-lm-long/lightning_logs/version_0/metrics.csv",
    "NijatZeynalov__mT5-based-azerbaijani-news-summarize__hf-trainer-mt5-long/trainer_state.json",
]


def real_findings(real_logs: Path, relative: str):
    return c.run_check(CHECK, c.real_run(real_logs / relative))


def test_real_keras_cnn_stalls_while_training_loss_falls(real_logs):
    [finding] = real_findings(real_logs, KERAS_CNN)
    assert (finding.severity, finding.evidence["signature"], finding.first_step) == (
        Severity.WARNING,
        "stall",
        42,
    )
    assert finding.evidence["best_val_loss"] == pytest.approx(0.717, abs=1e-3)


def test_real_yolov8_cls_loss_rises_while_map_falls(real_logs):
    [finding] = real_findings(real_logs, DENTAL)
    assert (finding.severity, finding.tags[0], finding.first_step) == (
        Severity.WARNING,
        "val/cls_loss",
        34,
    )


def test_real_yolov5_mild_late_overfit_is_only_a_note(real_logs):
    [finding] = real_findings(real_logs, BILLS)
    assert (finding.severity, finding.confidence, finding.tags[0]) == (
        Severity.INFO,
        Confidence.LOW,
        "val/cls_loss",
    )


def test_real_whisper_memorisation_fires(real_logs):
    [finding] = real_findings(real_logs, WHISPER)
    assert (finding.severity, finding.first_step, finding.last_step) == (
        Severity.WARNING,
        1000,
        5000,
    )
    assert finding.evidence["val_rise_pct"] > 15


@pytest.mark.parametrize("relative", HEALTHY)
def test_real_healthy_runs_do_not_fire(real_logs, relative):
    assert real_findings(real_logs, relative) == []


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id


def _per_step_train(n: int, start: float = 1.0, end: float = 0.05, seed: int = 1) -> np.ndarray:
    """Per-step training loss of batch size 4: lognormal batches and a few 10-50x ones."""
    return c.heavy_tailed(c.decay(n, start, end, 4.0), spread=0.5, outliers=0.01, seed=seed)


def test_six_evaluations_with_the_best_first_and_a_large_rise_fire():
    # Best evaluation loss at the first of six evaluations, +80% by the last, while the
    # heavy-tailed per-step training loss falls.
    val = np.array([0.5, 0.6, 0.68, 0.75, 0.82, 0.9])
    series = {"train/loss": (c.steps(600), _per_step_train(600)), "val/loss": (c.steps(6, 100, 99), val)}
    [finding] = findings(series)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["best_step"] == 99 and finding.evidence["evaluations"] == 6
    assert finding.evidence["strength"] == "large and persistent"


def _early_stopped(rise: float, evaluations: int = 40, seed: int = 3) -> dict[str, c.Series]:
    """Validation falls to its best at the 35th evaluation, then rises by ``rise`` over the
    last five (the patience of early stopping), while training keeps falling."""
    val = c.noisy(c.decay(evaluations, 2.0, 0.4, 6.0), 0.005, seed=seed)
    best = evaluations - 6
    val[best + 1 :] = val[best] * np.linspace(1.0 + rise / 5, 1.0 + rise, 5)
    n = evaluations * 50
    train = c.heavy_tailed(np.linspace(2.0, 0.2, n), spread=0.3, outliers=0.005, seed=seed)
    return {"train/loss": (c.steps(evaluations * 50), train), "val/loss": (c.steps(evaluations, 50, 49), val)}


def test_mild_overfitting_at_the_end_of_an_early_stopped_run_is_only_a_note():
    [finding] = findings(_early_stopped(0.18))
    assert (finding.severity, finding.evidence["strength"]) == (Severity.INFO, "mild and recent")


def test_near_miss_persistence_makes_the_same_rise_a_warning():
    series = _early_stopped(0.18)
    [finding] = findings(series, persist_fraction=0.1)
    assert finding.severity is Severity.WARNING and finding.evidence["strength"] == "persistent"


def test_quiet_on_a_label_noise_run_whose_validation_loss_is_flat():
    # 30% label noise: the validation loss settles at its floor within a few epochs and
    # stays there; the per-step training loss falls towards the same floor with heavy tails.
    val = c.noisy(c.plateau(30, 2.0, 0.9, 0.15), 0.02, seed=6)
    train = c.heavy_tailed(c.decay(1500, 2.2, 0.8, 3.0), spread=0.6, outliers=0.02, seed=7)
    assert findings({"train/loss": (c.steps(1500), train), "val/loss": (c.steps(30, 50, 49), val)}) == []


def test_quiet_on_a_dropout_run_whose_training_loss_stays_above_validation():
    val = c.noisy(c.decay(30, 2.0, 0.3, 5.0), 0.02, seed=4)
    train = c.heavy_tailed(c.decay(1500, 2.2, 0.45, 5.0), spread=0.4, outliers=0.01, seed=5)
    assert findings({"train/loss": (c.steps(1500), train), "val/loss": (c.steps(30, 50, 49), val)}) == []


def test_a_recent_stall_is_only_a_note():
    # Best at evaluation 28 of 40: stalled for 12 (30%), less than half the run.
    val = c.noisy(c.overfit(40, turn=0.7, low=0.7, rise=0.02), 0.003, seed=5)
    epochs = c.steps(40)
    train = c.noisy(c.decay(40, 2.0, 0.1, 3.0), 0.01, seed=6)
    found = findings({"loss": (epochs, train), "val_loss": (epochs, val)})
    assert all(f.severity is Severity.INFO for f in found)


def test_a_recent_stall_creeping_up_within_a_few_sigmas_is_a_note():
    # Best at evaluation 28 of 40, then +8% planted (+6.7% of the smoothed level, half the
    # rise threshold is 5%) at only 2.3 level sigmas: early stopping's business, not a warning.
    val = c.noisy(c.overfit(40, turn=0.7, low=0.7, rise=0.08), 0.003, seed=5)
    epochs = c.steps(40)
    train = c.noisy(c.decay(40, 2.0, 0.1, 3.0), 0.01, seed=6)
    [finding] = findings({"loss": (epochs, train), "val_loss": (epochs, val)})
    assert finding.severity is Severity.INFO
    assert finding.evidence["strength"] == "stalled, creeping up mildly"


def _creeping(noise: float, seed: int = 8, evaluations: int = 15) -> dict[str, c.Series]:
    """A digits MLP: the validation loss falls to 0.17 by the 7th of 15 evaluations, then
    creeps up 9% to the end with ``noise`` of relative scatter per evaluation, while the
    per-step training loss falls to 0.001 with heavy-tailed batches."""
    val = c.noisy(c.overfit(evaluations, turn=0.45, low=0.17, rise=0.09, start=1.2), noise, seed=seed)
    n = evaluations * 45
    train = c.heavy_tailed(c.decay(n, 1.6, 0.001, 6.0), spread=0.5, outliers=0.01, seed=seed + 1)
    return {"train/loss": (c.steps(n), train), "val/loss": (c.steps(evaluations, 45, 44), val)}


def test_a_mild_creep_at_two_to_three_sigma_is_only_a_note():
    # +6% over its smoothed minimum at 2.1 level sigmas (1.5% scatter per evaluation): early
    # stopping and the best checkpoint handle it.
    [finding] = findings(_creeping(0.015))
    assert finding.evidence["signature"] == "stall"
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["strength"] == "stalled, creeping up mildly"
    assert 2.0 < finding.evidence["val_rise_noise_sigmas"] < 3.0


def test_near_miss_a_creep_just_under_the_noise_sigmas_is_still_a_note():
    [finding] = findings(_creeping(0.008))
    assert 4.0 < finding.evidence["val_rise_noise_sigmas"] < 5.0
    assert finding.severity is Severity.INFO


def test_the_same_creep_far_beyond_its_noise_is_a_warning():
    [finding] = findings(_creeping(0.002))
    assert finding.evidence["val_rise_noise_sigmas"] > 5.0 and finding.evidence["val_rise_pct"] > 5.0
    assert (finding.severity, finding.evidence["strength"]) == (Severity.WARNING, "stalled and creeping up")


def test_noise_sigmas_override_makes_a_mild_creep_a_warning():
    [finding] = findings(_creeping(0.015), noise_sigmas=2.0)
    assert (finding.severity, finding.evidence["strength"]) == (Severity.WARNING, "stalled and creeping up")


def _creeping_with_accuracy(fall: float) -> dict[str, c.Series]:
    """The mild creep above, beside a validation accuracy that rose to 0.9 by the best
    evaluation and then lost ``fall`` of it (relative) by the end."""
    series = _creeping(0.015)
    steps = series["val/loss"][0]
    t = np.linspace(0.0, 1.0, steps.size)
    accuracy = np.where(t <= 0.45, 0.5 + 0.4 * t / 0.45, 0.9 * (1.0 - fall * (t - 0.45) / 0.55))
    return {**series, "val/accuracy": (steps, accuracy)}


def test_a_mild_creep_while_the_validation_accuracy_falls_is_a_warning():
    # The loss's creep alone is a note (2.1 sigmas); the accuracy losing 8% of its best while
    # the training loss falls on is the second sign.
    [finding] = findings(_creeping_with_accuracy(0.08))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["strength"] == "stalled and creeping up, the validation metric falling"
    assert finding.evidence["val_metric_fall_pct"] >= 5.0


def test_near_miss_a_mild_creep_while_the_accuracy_holds_is_a_note():
    for fall in (0.0, 0.03):  # under metric_drop's 5%
        [finding] = findings(_creeping_with_accuracy(fall))
        assert (finding.severity, finding.evidence["strength"]) == (Severity.INFO, "stalled, creeping up mildly")


def _jumped(after: float, evaluations: int = 12) -> dict[str, c.Series]:
    """A digits MLP whose validation loss is 0.17 at the first evaluation and 1.06 at the
    next (a few examples turned confidently wrong; the accuracy rose), then drifts by
    ``after`` of its level over the rest, while the per-step training loss falls 99%."""
    val = np.concatenate([[0.172], 1.06 * (1.0 + after * np.linspace(0.0, 1.0, evaluations - 1))])
    val[2:] *= 1.0 + 0.004 * c.rng(11).standard_normal(evaluations - 2)
    n = evaluations * 45
    return {
        "train/loss": (c.steps(n), _per_step_train(n, 2.1, 0.005)),
        "val/loss": (c.steps(evaluations, 45, 44), val),
    }


def test_one_jump_after_the_best_then_falling_is_only_a_note():
    [finding] = findings(_jumped(-0.05))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["strength"] == "one jump, not rising since"
    assert finding.evidence["jump_share"] > 0.9 and finding.evidence["after_jump_change_pct"] < 0
    assert "a change of level" in finding.message


def test_near_miss_one_jump_that_keeps_rising_is_overfitting():
    # The same jump followed by a further 5% climb: the loss goes on rising as training falls.
    [finding] = findings(_jumped(0.05))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["after_jump_change_pct"] > 0


def test_jump_share_override():
    [finding] = findings(_jumped(-0.05), jump_share=1.5)
    assert finding.severity is Severity.WARNING


def _resumed_at_a_floor(evaluations: int = 12) -> dict[str, c.Series]:
    """A run resumed from the checkpoint of its fourth evaluation, which logs steps 184..244
    again: its validation loss sits at a noisy floor (about 1%) from that evaluation on, and
    the best one happens to be the fourth, while the training loss falls to 0.008."""
    every = 45
    val = c.noisy(c.decay(evaluations, 0.34, 0.236, rate=12.0), 0.01, seed=21)
    val[3] = 0.2318  # the floor's luckiest evaluation falls just before the seam
    val_steps = c.steps(evaluations, every, 44)
    seam = val_steps[(val_steps > 180) & (val_steps < 247)]
    last = int(val_steps[-1])
    train_steps = np.concatenate([c.steps(50, 5, 4), np.arange(184, last + 1, 5)])
    train = c.heavy_tailed(c.decay(train_steps.size, 1.5, 0.008, rate=8.0), 0.3, 0.0, seed=22)
    return {
        "train/loss": (train_steps, train),
        "val/loss": (np.concatenate([val_steps, seam]), np.concatenate([val, val[np.isin(val_steps, seam)] * 1.01])),
    }


def test_a_flat_stall_over_a_few_evaluations_of_a_resumed_run_is_only_a_note():
    [finding] = findings(_resumed_at_a_floor())
    assert finding.evidence["signature"] == "stall"
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["evaluations"] == 12 and finding.evidence["evaluations_after_best"] == 8


def test_a_flat_stall_over_half_of_sixteen_evaluations_is_only_a_note():
    # Twelve evaluations without a new best, three quarters of the run, of a validation loss
    # flat at its floor: within the patience a practitioner gives a small-data run.
    [finding] = findings(_resumed_at_a_floor(evaluations=16))
    assert finding.evidence["evaluations_after_best"] == 12
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)


def test_near_miss_the_same_flat_stall_over_two_dozen_evaluations_is_a_warning():
    [finding] = findings(_resumed_at_a_floor(evaluations=24))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["strength"] == "stalled for half the run or more"


def test_min_stall_evaluations_override():
    [finding] = findings(_resumed_at_a_floor(), min_stall_evaluations=8)
    assert finding.severity is Severity.WARNING
