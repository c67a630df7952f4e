"""C003 loss-plateau: the training loss fell, then stayed flat at an unchanged learning rate."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks import measures
from rundoctor.checks.loss_plateau import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 400
EVERY = 10
STEPS = curves.steps(N, EVERY)
LAST = (N - 1) * EVERY


def _plateau(seed: int = 0) -> np.ndarray:
    """2.0 -> 0.5 within the first 20% of the run, then flat with 1% noise."""
    return curves.noisy(curves.plateau(N, start=2.0, level=0.5, fall_fraction=0.2), 0.01, seed)


def _with_lr(rates: np.ndarray) -> dict[str, curves.Series]:
    return {"train/loss": (STEPS, _plateau()), "train/learning_rate": (STEPS, rates)}


# A per-batch loss of a small batch at a constant rate: 2.0 -> 0.5 within the first fifth of
# 4,000 steps, then bouncing +-30% (lognormal, 1% of batches 10-50x) around 0.5.
BOUNCING_N = 4000
BOUNCING_STEPS = curves.steps(BOUNCING_N, EVERY)


def _bouncing(spread: float = 0.3, seed: int = 2) -> np.ndarray:
    return curves.heavy_tailed(curves.plateau(BOUNCING_N, start=2.0, level=0.5, fall_fraction=0.2), spread, seed=seed)


def _bouncing_run(loss: np.ndarray, rate: float | None = 0.1) -> dict[str, curves.Series]:
    series = {"train/loss": (BOUNCING_STEPS, loss)}
    if rate is not None:
        series["train/learning_rate"] = (BOUNCING_STEPS, np.full(BOUNCING_N, rate))
    return series


def test_fires_on_a_loss_bouncing_on_a_plateau_at_a_constant_learning_rate() -> None:
    (finding,) = curves.find(CHECK, _bouncing_run(_bouncing()))
    assert (finding.code, finding.severity, finding.confidence) == ("C003", Severity.WARNING, Confidence.HIGH)
    evidence = finding.evidence
    assert evidence["shown_flat"] and evidence["flat_fraction"] == pytest.approx(0.5, abs=0.01)
    assert evidence["plateau_level"] == pytest.approx(0.5, rel=0.05)
    assert evidence["scatter_relative"] == pytest.approx(0.3, abs=0.05)
    assert evidence["lr_during_max"] == evidence["lr_during_min"] == pytest.approx(0.1)
    assert "learning rate stayed at 0.1" in finding.message and "scatter 31%" in finding.message
    assert f"from step {finding.first_step:,}" in finding.advice and finding.last_step == (BOUNCING_N - 1) * EVERY
    curves.assert_well_formed(finding)


def test_a_steady_plateau_has_settled_at_its_floor_and_is_info() -> None:
    # Label smoothing, slow memorising, window-median logs: flat at a constant rate with 1%
    # scatter.  Shown flat, but there is no bounce for a decay to settle.
    (finding,) = curves.find(CHECK, _with_lr(np.full(N, 1e-3)))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.MEDIUM)
    assert finding.evidence["shown_flat"] and finding.evidence["scatter_relative"] < 0.05
    assert 600 <= finding.first_step <= 1_400 and finding.last_step == LAST
    assert finding.evidence["fall"] == pytest.approx(0.75, abs=0.03)
    assert "settled at its floor" in finding.message


def test_near_miss_scatter_just_under_the_threshold_then_override() -> None:
    # 15% scatter: under the 20% a warning needs.
    series = _bouncing_run(_bouncing(spread=0.15))
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and 0.1 < finding.evidence["scatter_relative"] < 0.2
    (finding,) = curves.find(CHECK, series, min_scatter=0.1)
    assert finding.severity is Severity.WARNING


def test_without_a_logged_learning_rate_it_is_info() -> None:
    # A flat tail is also how a cosine schedule ends (h-long: 20k healthy steps at batch 8,
    # no rate logged): the log cannot tell which, so a note at most.
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, _plateau())})
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert "no learning rate logged" in finding.message
    findings = curves.find(CHECK, _bouncing_run(_bouncing(), rate=None))
    assert [f.severity for f in findings] in ([], [Severity.INFO])


def test_a_noisy_loss_flat_from_its_first_log_at_a_constant_rate_is_info() -> None:
    # A softmax regression at batch 4 converges before its first log, then bounces 60%
    # around its level for the whole run: the noise floor of its rate.
    n = 225
    loss = curves.heavy_tailed(np.full(n, 0.55), spread=0.6, seed=4)
    steps = curves.steps(n, 20, start=19)
    (finding,) = curves.find(CHECK, {"train/loss": (steps, loss), "lr": (steps, np.full(n, 0.2))})
    assert finding.severity is Severity.INFO and "no fall from its first logged level" in finding.message
    assert finding.evidence["scatter_relative"] >= 0.2
    # Steady at its start (a loss at chance): no-learning's business, not a plateau.
    steady = curves.noisy(np.full(n, 2.3), 0.01)
    assert curves.find(CHECK, {"train/loss": (steps, steady), "lr": (steps, np.full(n, 0.2))}) == []
    # Climbed far above its start and bounces there: divergence's business.
    climbed = curves.heavy_tailed(np.concatenate((np.full(20, 0.5), np.full(n - 20, 5e3))), spread=0.6, seed=4)
    assert curves.find(CHECK, {"train/loss": (steps, climbed), "lr": (steps, np.full(n, 0.2))}) == []


def test_a_learning_rate_lowered_during_the_plateau_is_not_reported() -> None:
    # ReduceLROnPlateau doing its job: x0.1 twice during the flat stretch.
    rates = np.where(STEPS < 2_000, 1e-3, np.where(STEPS < 3_000, 1e-4, 1e-5))
    assert curves.find(CHECK, _with_lr(rates)) == []
    # ... and so is a cosine schedule annealing over the whole run.
    cosine = 1e-3 * 0.5 * (1 + np.cos(np.pi * np.arange(N) / N))
    assert curves.find(CHECK, _with_lr(cosine)) == []


def test_a_curve_flat_from_its_first_point_is_never_a_warning() -> None:
    # Large swings around a constant level: no fall onto a plateau (loss-oscillation's case);
    # at a constant rate a note at most, and nothing without one.
    swings = 1.0 + 0.5 * np.sign(np.sin(np.arange(N) * 1.7)) * curves.rng(3).normal(0.8, 0.2, N)
    findings = curves.find(CHECK, {"train/loss": (STEPS, swings), "lr": (STEPS, np.full(N, 0.5))})
    assert [f.severity for f in findings] in ([], [Severity.INFO])
    assert curves.find(CHECK, {"train/loss": (STEPS, swings)}) == []


def test_a_learning_rate_of_zero_during_the_plateau_is_info() -> None:
    rates = np.where(STEPS < 500, 1e-3, 0.0)
    (finding,) = curves.find(CHECK, _with_lr(rates))
    assert finding.severity is Severity.INFO and "learning rate was 0" in finding.message


def test_a_learning_rate_cut_before_the_plateau_says_a_further_cut_will_not_help() -> None:
    # detectron2 R11: warm-up, a 20x cut early, then flat at the low rate: the schedule
    # already reacted, a note even when the loss bounces.
    rates = np.where(STEPS < 500, 5e-5, 2.5e-6)
    (finding,) = curves.find(CHECK, _with_lr(rates))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.HIGH)
    bouncing = _bouncing_run(_bouncing(), rate=None)
    bouncing["lr"] = (BOUNCING_STEPS, np.where(BOUNCING_STEPS < 5_000, 5e-5, 2.5e-6))
    assert [f.severity for f in curves.find(CHECK, bouncing)] == [Severity.INFO]
    assert finding.evidence["lr_peak_before"] == pytest.approx(5e-5)
    assert "already cut to 2.500e-06 (20x below" in finding.message
    assert "further cut is unlikely to help" in finding.advice


def test_near_miss_short_plateau_then_override() -> None:
    # Falls steadily over the first 75% of the run: flat for the last 25% only.
    loss = np.interp(np.linspace(0.0, 1.0, N), [0.0, 0.75, 1.0], [2.0, 0.5, 0.5])
    series = {"train/loss": (STEPS, curves.noisy(loss, 0.005)), "lr": (STEPS, np.full(N, 1e-3))}
    # The last half as a whole has levelled off at a constant rate: info, never a warning.
    assert [f.severity for f in curves.find(CHECK, series)] in ([], [Severity.INFO])
    (finding,) = curves.find(CHECK, series, min_flat_fraction=0.2, min_scatter=0.001)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["flat_fraction"] == pytest.approx(0.25, abs=0.03)


def test_a_slow_descent_inside_a_noisy_band_is_not_a_plateau() -> None:
    # After the fall the loss keeps sliding 15% more: noise widens the band, the drift test
    # still sees the trend.
    loss = curves.plateau(N, start=2.0, level=0.5, fall_fraction=0.2)
    loss[100:] *= np.linspace(1.0, 0.85, N - 100)
    series = {"train/loss": (STEPS, curves.noisy(loss, 0.04)), "lr": (STEPS, np.full(N, 1e-3))}
    assert curves.find(CHECK, series) == []


def test_a_loss_converged_near_zero_is_at_most_info() -> None:
    loss = curves.noisy(curves.plateau(N, start=2.0, level=0.01, fall_fraction=0.2), 0.01)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss), "lr": (STEPS, np.full(N, 1e-3))})
    assert finding.severity is Severity.INFO and "near convergence" in finding.message
    # Without a logged rate there is nothing to say about the schedule.
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_a_memorised_loss_is_never_a_plateau() -> None:
    loss = curves.noisy(curves.plateau(N, start=2.0, level=1e-4, fall_fraction=0.2), 0.01)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss), "lr": (STEPS, np.full(N, 1e-3))}) == []


def test_healthy_heavy_tailed_batch_of_four_is_not_a_warning() -> None:
    # Per-step loss of batch size 4 on a label-noise task: lognormal noise and 1% of
    # batches 10-50x the trend; the trend keeps falling to the noise floor.
    n = 3000
    loss = curves.heavy_tailed(curves.decay(n, start=1.2, end=0.35, rate=4.0), spread=0.8, seed=7)
    for series in (
        {"train/loss": (curves.steps(n), loss)},
        {"train/loss": (curves.steps(n), loss), "lr": (curves.steps(n), np.full(n, 1e-3))},
    ):
        assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == []


def test_a_short_noisy_tail_without_a_logged_rate_is_only_info() -> None:
    # 100 points, 40% per-step noise: the tail cannot be shown flat within 10% (the
    # confidence interval of its change is wider than that), so it is no warning.
    n = 100
    loss = curves.heavy_tailed(curves.plateau(n, start=0.7, level=0.15, fall_fraction=0.2), spread=0.4, seed=3)
    findings = curves.find(CHECK, {"train_loss": (curves.steps(n, 10), loss)})
    assert [f.severity for f in findings] in ([], [Severity.INFO])


def test_a_running_average_loss_still_falling_is_not_a_plateau() -> None:
    # HF/Keras log the mean since the epoch began: smooth, autocorrelated, sawtoothed.
    n = 2000
    per_step = curves.heavy_tailed(curves.decay(n, start=2.0, end=0.2, rate=3.0), seed=11)
    logged = curves.epoch_running_mean(per_step, 200)
    series = {"loss": (curves.steps(n), logged), "lr": (curves.steps(n), np.full(n, 5e-5))}
    assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == []


def test_a_noisy_constant_rate_run_that_levelled_off_is_info() -> None:
    # A constant-rate run whose loss bounces +-30% around a level for its second half: a
    # schedule would likely go lower, but a band is not shown, so it is said as info.
    n = 3000
    loss = curves.heavy_tailed(curves.plateau(n, start=1.5, level=0.012, fall_fraction=0.1), spread=0.3, seed=5)
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(n), loss), "lr": (curves.steps(n), np.full(n, 0.03))})
    assert finding.severity is Severity.INFO


def test_healthy_noisy_decay_is_silent() -> None:
    loss = curves.noisy(curves.decay(N, rate=3.0), 0.03)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss), "lr": (STEPS, np.full(N, 1e-3))}) == []


def test_too_few_points() -> None:
    assert (
        curves.find(
            CHECK, {"train/loss": (curves.steps(8), [2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])}
        )
        == []
    )


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["C003"]


def test_value_at_holds_the_last_logged_value() -> None:
    steps, rates = np.array([0, 100, 200]), np.array([1e-3, 1e-4, 1e-5])
    got = measures.value_at(steps, rates, [-5, 0, 50, 100, 150, 999])
    assert got.tolist() == [1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5]
    assert np.isnan(measures.value_at(np.empty(0), np.empty(0), [3])).all()


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(
        CHECK, {"train/loss": curves.HOSTILE[name], "lr": (STEPS, np.full(N, 1e-3))}
    )
    if name == "unsorted":
        # Sorted by step it is white noise scattering 125% around a level at a constant
        # rate: at most a note that it never fell.
        assert [f.severity for f in findings] in ([], [Severity.INFO])
    else:
        assert findings == []  # none of them fell and then flattened


DETECTRON_PLATEAU = (
    "Elbhnasy__Medical_Waste_Detection_Detectron2__detectron2-frcnn-plateau/output/metrics.json"
)
CENTERNET = (
    "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/"
    "centernet_resnet18_dcnv2_140e_trash/None.log.json"
)
REDUCE_LR = "4hmetcakmak__BraTS2020CapstoneProject__keras-csvlogger-unet-reducelr/training.log"


def test_real_detectron2_plateau_after_an_early_cut(real_logs) -> None:
    # R11: lr cut 20x at ~1,500 of 4,000 iterations; total_loss flat at ~1.0 from ~2,000.
    # The schedule already reacted: a note, no warning.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / DETECTRON_PLATEAU))
    assert finding.severity is Severity.INFO and finding.tags == ("total_loss",)
    assert 1_400 <= finding.first_step <= 2_100 and finding.last_step == 3_999
    assert finding.evidence["lr_peak_before"] == pytest.approx(5e-5)
    assert "already cut" in finding.message


def test_real_centernet_stalled_at_a_constant_learning_rate(real_logs) -> None:
    # R43: loss 38.6 -> ~7.8 in the first epoch, then flat for 13 epochs at lr 0.02, logged
    # as window medians scattering ~1%: noted (the stall is real), not a warning (nothing
    # shows a bounce a decay would settle).
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / CENTERNET))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.MEDIUM)
    assert finding.evidence["scatter_relative"] < 0.05
    assert finding.evidence["flat_fraction"] > 0.9
    assert finding.evidence["lr_during_max"] == pytest.approx(0.02)


def test_real_reduce_lr_on_plateau_is_not_reported(real_logs) -> None:
    # R28: Keras ReduceLROnPlateau cuts the rate during the flat stretch: working as meant.
    assert curves.run_check(CHECK, curves.real_run(real_logs / REDUCE_LR)) == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        findings = curves.run_check(CHECK, run)
        assert [f for f in findings if f.severity is not Severity.INFO] == [], run.id
