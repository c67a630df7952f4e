"""M001 metric-flat-loss-falling: accuracy flat while its loss still falls."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.metric_flat_loss_falling import CHECK
from rundoctor.findings import Confidence, Severity
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
    assert len(curves.find(CHECK, _val(_flat_accuracy(level=0.95), loss), max_level=0.97, converged_share=1.0)) == 1


@pytest.mark.parametrize("num_classes", [10, None])
def test_quiet_on_an_accuracy_that_made_most_of_its_move(num_classes: int | None) -> None:
    # From 0.1 (chance of 10 classes) to 0.7: two thirds of the way to 1, past half; the loss
    # falls on from confidence in what it already gets right.
    loss = curves.decay(EVALS, start=2.0, end=0.5, rate=1.5)
    assert curves.find(CHECK, _val(_flat_accuracy(level=0.7), loss), num_classes=num_classes) == []
    (finding,) = curves.find(CHECK, _val(_flat_accuracy(level=0.7), loss), num_classes=num_classes,
                             converged_share=0.7)
    assert finding.evidence["flat_level"] == pytest.approx(0.7, abs=0.01)


def test_the_training_accuracy_shows_where_a_late_evaluated_one_started() -> None:
    # Validation first evaluated when already at 0.7 and flat from there; the training
    # accuracy, logged from the first step, started at 0.1: the model made its move.
    loss = curves.decay(EVALS, start=2.0, end=0.5, rate=1.5)
    flat = 0.7 + 0.002 * curves.rng(1).standard_normal(EVALS)
    series = _val(flat, loss)
    assert len(curves.find(CHECK, series)) == 1  # nothing shows it ever climbed
    series["train/accuracy"] = (curves.steps(EVALS, EVERY), curves.rise(EVALS, start=0.1, end=0.75, rate=8.0))
    assert [f.tags[0] for f in curves.find(CHECK, series)] == []


def test_fires_on_an_accuracy_stalled_short_of_half_way() -> None:
    # 0.1 to 0.5 is 44% of the way to 1: a first plateau, the kind a later jump leaves.
    loss = curves.decay(EVALS, start=2.0, end=0.5, rate=1.5)
    (finding,) = curves.find(CHECK, _val(_flat_accuracy(level=0.5), loss), num_classes=10)
    assert finding.evidence["flat_level"] == pytest.approx(0.5, abs=0.01)
    assert curves.find(CHECK, _val(_flat_accuracy(level=0.5), loss), num_classes=10, converged_share=0.4) == []


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


def test_an_oscillating_validation_loss_is_not_falling() -> None:
    # Twelve evaluations of a loss bouncing +-30% around a level: its smoothed ends may
    # differ by 7%, but its trend is not beyond its noise.
    n = 12
    loss = np.array([0.98, 1.24, 0.82, 1.23, 1.48, 1.46, 0.84, 1.04, 0.82, 1.02, 0.76, 0.91])
    accuracy = 0.75 + 0.03 * np.sin(np.arange(n) * 2.0)
    series = {
        "val_acc": (curves.steps(n, 45), accuracy),
        "val_loss": (curves.steps(n, 45), loss),
        "train_loss": (curves.steps(n, 45), np.full(n, 1.0)),
    }
    assert curves.find(CHECK, series, max_level=0.9) == []


def test_an_accuracy_impossible_next_to_its_cross_entropy_is_a_broken_metric() -> None:
    # eval_loss 0.22 implies accuracy >= 1 - 0.22 / ln 2 = 0.68: a flat 0.057 is a metric
    # summed over batches (metric checks' business), not an accuracy about to jump.
    loss = curves.noisy(curves.decay(EVALS, start=1.2, end=0.2, rate=3.0), 0.005)
    accuracy = np.full(EVALS, 0.057) + 0.002 * curves.rng(1).standard_normal(EVALS)
    assert curves.find(CHECK, _val(accuracy, loss)) == []


def test_a_fall_shown_by_a_few_evaluations_is_info() -> None:
    # Eleven evaluations: the loss falls, but not at 99% confidence on so few points.
    n = 11
    loss = np.array([0.781, 0.736, 0.715, 0.715, 0.709, 0.716, 0.715, 0.707, 0.701, 0.703, 0.705])
    accuracy = np.array([0.503, 0.494, 0.504, 0.483, 0.5, 0.506, 0.495, 0.503, 0.518, 0.521, 0.518])
    series = {
        "val_acc": (curves.steps(n, 250), accuracy),
        "val_loss": (curves.steps(n, 250), loss),
        "train_loss": (curves.steps(n, 250), np.linspace(0.76, 0.7, n)),
    }
    (finding,) = curves.find(CHECK, series, flat_tolerance=0.02)
    assert finding.severity is Severity.INFO
    assert "short of 99% confidence" in finding.message
    assert curves.find(CHECK, series, flat_tolerance=0.02, confidence=0.95) == []


def test_a_heavy_tailed_training_loss_under_a_flat_accuracy_needs_a_real_fall() -> None:
    # Per-step loss of batch size 4 with 10-50x batches, trend flat: no claim it is falling.
    n = 2000
    loss = curves.heavy_tailed(np.full(n, 0.9), spread=0.8, seed=4)
    accuracy = 0.6 + 0.002 * curves.rng(2).standard_normal(n // 20)
    series = {
        "train/accuracy": (curves.steps(n // 20, 20), accuracy),
        "train/loss": (curves.steps(n), loss),
    }
    assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == []


def test_a_coarse_accuracy_still_climbing_inside_its_noise_band_is_not_flat() -> None:
    # A sequence model scored on a few hundred sequences: 12 evaluations, the accuracy
    # climbs 0.62 -> 0.68 -> 0.74 -> 0.80 with +-0.02 scatter (its noise band +-0.05 holds
    # the last ten) while the validation loss falls 25%.
    steps = curves.steps(12, 100, 100)
    start = np.concatenate(([0.62, 0.68], np.linspace(0.74, 0.80, 10)))
    climb = start + 0.02 * curves.rng(3).standard_normal(12)
    loss = curves.decay(12, start=0.77, end=0.44, rate=2.0)
    series = {"val_accuracy": (steps, climb), "val_loss": (steps, loss), "loss": (steps, loss + 0.02)}
    assert curves.find(CHECK, series) == []
    # Near miss: an accuracy still at its starting level whose trend begins to lift is the
    # jump beginning: reported.
    level = np.linspace(0.50, 0.55, 12) + 0.02 * curves.rng(3).standard_normal(12)
    (finding,) = curves.find(CHECK, {**series, "val_accuracy": (steps, level)})
    assert finding.check == "metric-flat-loss-falling"
    # With a band of +-0.04 the 0.06 climb is no longer two bands wide, but it still moves
    # with its loss at the rate the run showed before: not flat either.
    assert curves.find(CHECK, series, flat_tolerance=0.04) == []
    # Params override: asking for more than the predicted gain, the same climb is a stall.
    (wide,) = curves.find(CHECK, series, flat_tolerance=0.04, min_coupling=3.0)
    assert wide.severity is Severity.WARNING


def _climb_then_creep(late_gain: float, late_fall: float = 0.3, seed: int = 5) -> dict[str, curves.Series]:
    """A language model's token accuracy: it climbs 0.05 -> 0.38 while the loss falls 10.4 ->
    4.0 (0.052 accuracy a nat), then for the last 70% of the run the loss falls ``late_fall``
    nats more and the accuracy gains ``late_gain``."""
    n, early = 200, 60
    loss = np.concatenate((np.linspace(10.4, 4.0, early), np.linspace(4.0, 4.0 - late_fall, n - early)))
    accuracy = np.concatenate((np.linspace(0.05, 0.38, early), np.linspace(0.38, 0.38 + late_gain, n - early)))
    noise = curves.rng(seed).standard_normal((2, n))
    steps = curves.steps(n, 100)
    return {
        "val/token_accuracy": (steps, accuracy + 0.002 * noise[0]),
        "val/loss": (steps, loss * (1 + 0.002 * noise[1])),
    }


def test_an_accuracy_creeping_up_with_its_loss_is_not_flat() -> None:
    # 0.3 nats at 0.052 a nat predict a gain of 0.0155: the creep of 0.015 inside a +-0.01
    # band is the accuracy following its loss, not a stall before a jump.
    assert curves.find(CHECK, _climb_then_creep(late_gain=0.015)) == []


def test_an_accuracy_stuck_while_its_loss_falls_far_is_flat() -> None:
    # 1.5 nats predict a gain of 0.077; the accuracy gains nothing: a stall.
    (finding,) = curves.find(CHECK, _climb_then_creep(late_gain=0.0, late_fall=1.5))
    assert finding.severity is Severity.WARNING
    assert finding.evidence["accuracy_tag"] == "val/token_accuracy"


def test_near_miss_an_accuracy_gaining_under_half_what_its_loss_predicts() -> None:
    # 1.5 nats predict a gain of 0.077 (past twice the flat band): 0.033 is under half of it
    # and stays a stall; 0.042 is over half and follows the loss.
    stalled = _climb_then_creep(late_gain=0.033, late_fall=1.5)
    assert [f.check for f in curves.find(CHECK, stalled)] == ["metric-flat-loss-falling"]
    assert curves.find(CHECK, _climb_then_creep(late_gain=0.042, late_fall=1.5)) == []
    # Params override: asking for under a third of the predicted gain, 0.033 follows the loss.
    assert curves.find(CHECK, stalled, min_coupling=0.3) == []


def test_an_accuracy_too_noisy_to_show_a_stall_is_not_called_flat() -> None:
    # 25 evaluations on a few dozen examples: the accuracy scatters +-0.12 around 0.35, a
    # noise band wider than a jump would be, while the loss falls 40%.
    steps = curves.steps(25, 200, 200)
    loss = curves.decay(25, start=2.2, end=1.3, rate=2.0)

    def scattered(sigma: float) -> dict[str, curves.Series]:
        accuracy = np.clip(0.35 + sigma * curves.rng(4).standard_normal(25), 0.0, 1.0)
        return {"val_accuracy": (steps, accuracy), "val_loss": (steps, loss)}

    assert curves.find(CHECK, scattered(0.12)) == []
    # Near misses on either side of the +-0.05 band: a scatter of 0.022 widens it to 0.052,
    # one of 0.02 to 0.047, which is still flat.
    assert curves.find(CHECK, scattered(0.022)) == []
    (finding,) = curves.find(CHECK, scattered(0.02))
    assert finding.evidence["flat_band"] <= 0.05
    # Params override: a band of up to 0.5 lets the bouncing accuracy be judged.
    assert len(curves.find(CHECK, scattered(0.12), max_band=0.5)) == 1
