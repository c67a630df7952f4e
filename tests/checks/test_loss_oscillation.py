"""C004 loss-oscillation: large point-to-point swings with no net progress."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.loss_oscillation import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 200
STEPS = curves.steps(N, 50, start=49)


def _swinging(relative: float, trend: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    base = np.full(N, 2.3) if trend is None else trend
    return curves.noisy(base, relative, seed)


def _oscillating(amplitude: float = 0.8, scatter: float = 0.3, seed: int = 0) -> np.ndarray:
    """A per-step loss whose smoothed level goes up and down (a learning rate too high):
    a slow wave of ``amplitude`` in log units under lognormal batch scatter."""
    t = np.linspace(0.0, 1.0, N)
    return curves.heavy_tailed(1.0 * np.exp(amplitude * np.sin(2 * np.pi * 3 * t)), spread=scatter, outliers=0.0, seed=seed)


def test_fires_when_the_smoothed_loss_swings_more_than_it_falls() -> None:
    series = {"loss": (STEPS, _oscillating()), "train/lr": (STEPS, np.full(N, 3e-2))}
    (finding,) = curves.find(CHECK, series)
    assert (finding.code, finding.severity, finding.confidence) == (
        "C004",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert (finding.first_step, finding.last_step) == (49, 9_999)
    evidence = finding.evidence
    assert evidence["rebound"] > 1.0 and evidence["significant_climbs"] >= 2
    assert evidence["lr_max"] == pytest.approx(3e-2)
    assert "swings up and down" in finding.message
    curves.assert_well_formed(finding)


def test_a_batch_at_exactly_zero_does_not_hide_a_swing() -> None:
    # Saturated outputs at a learning rate far too high: some batches cost 0.0 exactly.
    loss = _oscillating()
    loss[[30, 95, 160]] = 0.0
    (finding,) = curves.find(CHECK, {"loss": (STEPS, loss)})
    assert finding.severity is Severity.WARNING and "swings up and down" in finding.message


def test_flat_per_batch_scatter_is_only_a_note() -> None:
    # 20% white scatter around a flat 2.3: per-batch noise without progress, not a swing.
    (finding,) = curves.find(CHECK, {"loss": (STEPS, _swinging(0.2))})
    assert finding.severity is Severity.INFO and "per-batch noise" in finding.message


def test_a_noisy_loss_that_falls_is_silent() -> None:
    # Per-step losses of small batches swing 15% while falling by half: progress wins.
    assert curves.find(CHECK, {"loss": (STEPS, _swinging(0.15, curves.decay(N, 3.0, 1.5)))}) == []


def test_healthy_batch_size_4_heavy_tailed_loss_is_silent() -> None:
    # Scatter of a factor e either way and 3% of batches at 10-50x, falling steadily.
    for seed in range(5):
        loss = curves.heavy_tailed(curves.decay(2_000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        assert curves.find(CHECK, {"loss": (curves.steps(2_000), loss)}) == [], seed


def test_a_healthy_step_decay_and_warm_up_are_not_swings() -> None:
    loss = curves.heavy_tailed(curves.step_decay(N, start=3.0), spread=0.3, seed=1)
    assert curves.find(CHECK, {"loss": (STEPS, loss)}) == []


def test_a_climb_that_never_comes_back_is_not_a_swing() -> None:
    loss = curves.heavy_tailed(curves.diverge(N, factor=50.0), spread=0.2, seed=2)
    assert [f for f in curves.find(CHECK, {"loss": (STEPS, loss)}) if f.severity is not Severity.INFO] == []


def test_near_miss_below_the_swing_threshold_then_override() -> None:
    series = {"loss": (STEPS, _oscillating(amplitude=0.12, scatter=0.05))}  # ~25% rebound
    assert [f for f in curves.find(CHECK, series) if f.severity is Severity.WARNING] == []
    (finding,) = curves.find(CHECK, series, min_swing=0.15)
    assert finding.severity is Severity.WARNING
    assert 0.15 < finding.evidence["rebound"] < 0.3


# Adam at 1000x a good rate on a 10-class MLP, batch 32: 180 per-batch losses logged every
# 3 steps, 12 epochs.  The loss falls from ~8 at once and then sits, scattered by a factor
# ~2, at a level ``level`` while the validation accuracy holds ~0.86 and the rate stays 1.0.
BOUNCE_STEPS = curves.steps(180, 3, start=2)
EPOCH_STEPS = BOUNCE_STEPS[14::15]


def _bouncing(
    level: float = 4.4, seed: int = 0, rate: np.ndarray | None = None, spread: float = 0.75
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t = np.linspace(0.0, 1.0, BOUNCE_STEPS.size)
    trend = level + (8.0 - level) * np.exp(-t / 0.03)
    loss = curves.heavy_tailed(trend, spread=spread, outliers=0.02, seed=seed)
    accuracy = np.clip(0.86 + 0.02 * curves.rng(seed).standard_normal(EPOCH_STEPS.size), 0.0, 1.0)
    rates = np.full(BOUNCE_STEPS.size, 1.0) if rate is None else rate
    return {"loss": (BOUNCE_STEPS, loss), "lr": (BOUNCE_STEPS, rates), "val_acc": (EPOCH_STEPS, accuracy)}


def test_fires_when_the_loss_stays_above_a_uniform_guess_at_a_high_rate() -> None:
    for seed in range(4):
        (finding,) = curves.find(CHECK, _bouncing(seed=seed))
        assert (finding.code, finding.severity, finding.confidence) == ("C004", Severity.WARNING, Confidence.MEDIUM), seed
        evidence = finding.evidence
        assert 2.0 < evidence["uniform_loss"] < 3.2 and "val_acc" in evidence["uniform_basis"]
        assert evidence["level_after_first_phase"] / evidence["uniform_loss"] > 1.4
        assert evidence["blocks_above_uniform"] >= 11 and evidence["sign_test_chance"] < 0.01
        assert "uniform guess" in finding.message and "learning rate up to 1" in finding.message
        curves.assert_well_formed(finding)


def test_a_known_number_of_classes_gives_the_uniform_loss() -> None:
    series = _bouncing(level=4.0)
    del series["val_acc"]
    (finding,) = curves.find(CHECK, series, num_classes=10)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["uniform_loss"] == pytest.approx(np.log(10)) and "ln 10" in finding.message


def test_a_noisy_loss_below_the_uniform_guess_is_at_most_a_note() -> None:
    # The same optimiser at 300x: the loss sits at ~1 with accuracy ~0.86, bumpy but well
    # below what confident errors would cost.
    for seed in range(4):
        found = curves.find(CHECK, _bouncing(level=1.0, seed=seed))
        assert [f for f in found if f.severity is not Severity.INFO] == [], seed


def test_near_miss_just_above_the_uniform_guess_then_override() -> None:
    # Scatter of 35%: the mean sits ~1.15x the reference of ~2.6 in every block, above a
    # uniform guess but not by the 25% asked for.
    series = _bouncing(level=2.9, spread=0.3)
    assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == []
    (finding,) = curves.find(CHECK, series, min_excess=0.1)
    assert finding.severity is Severity.WARNING and finding.evidence["threshold_excess"] == 0.1
    assert 1.1 < finding.evidence["level_after_first_phase"] / finding.evidence["uniform_loss"] < 1.25


def test_label_smoothing_floor_is_not_bouncing() -> None:
    # A smoothed-label loss at 1.75 with accuracy 0.97: high, but smooth from batch to batch.
    series = _bouncing()
    series["loss"] = (BOUNCE_STEPS, curves.noisy(curves.decay(BOUNCE_STEPS.size, 2.3, 1.75), 0.003))
    series["val_acc"] = (EPOCH_STEPS, np.full(EPOCH_STEPS.size, 0.97))
    assert curves.find(CHECK, series) == []


def test_a_decayed_rate_or_a_sum_of_terms_rules_it_out() -> None:
    cosine = 0.5 * (1.0 + np.cos(np.pi * np.linspace(0.0, 1.0, BOUNCE_STEPS.size)))
    found = curves.find(CHECK, _bouncing(rate=cosine))
    assert ["uniform guess" in f.message for f in found if f.severity is not Severity.INFO] == []
    series = _bouncing()
    series["loss_bbox"] = (BOUNCE_STEPS, np.full(BOUNCE_STEPS.size, 0.5))
    assert [f for f in curves.find(CHECK, series) if "uniform guess" in f.message] == []


def test_a_short_run_above_the_uniform_guess_is_only_a_note() -> None:
    # 26 points leave four blocks after the first phase: all four above is a 1-in-16
    # chance, not significant.
    series = {
        tag: (steps, values) if tag == "val_acc" else (steps[::7], values[::7])
        for tag, (steps, values) in _bouncing(level=5.0).items()
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.evidence["blocks_judged"] == 4
    assert "uniform guess" in finding.message


def test_a_quiet_flat_loss_is_not_oscillating() -> None:
    # Flat with 0.2% noise is no-learning's business, not this check's.
    assert curves.find(CHECK, {"loss": (STEPS, _swinging(0.002))}) == []


def test_too_few_points() -> None:
    bouncing = [2.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 2.0]
    assert curves.find(CHECK, {"loss": (curves.steps(7), bouncing[:7])}) == []
    assert curves.find(CHECK, {"loss": (curves.steps(8), bouncing)})[0].severity is Severity.INFO  # min_bounce_points


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [(finding.code, finding.severity) for finding in findings] == [("C004", Severity.WARNING)]


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]})
    assert all(f.code == "C004" for f in findings)
    # Sorted by step, the shuffled decay is pure scatter: at most a note.
    assert [f for f in findings if f.severity is not Severity.INFO] == []
    for finding in findings:
        curves.assert_well_formed(finding)


NOISY = "Melissasssss__TurnGPT__lightning-noisy-loss/lightning_logs/version_0/metrics.csv"


def test_real_noisy_lightning_loss_is_a_note(real_logs) -> None:
    # R25: 2.37 -> 2.24 over one epoch, between 1.24 and 3.15.
    # Scatter around a flat level, no swing of the smoothed loss: a note.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / NOISY))
    assert finding.tags == ("loss",) and finding.severity is Severity.INFO
    assert finding.evidence["scatter"] == pytest.approx(0.17, abs=0.03)
    assert finding.evidence["progress_significant"] is False


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def _epochs(moves: list[float], start: float = 2.0) -> dict[str, curves.Series]:
    """A training loss of one mean per epoch, each ``moves[i]`` times the one before."""
    values = start * np.cumprod([1.0, *moves])
    return {"train/loss": (curves.steps(values.size), values)}


BOUNCING = [0.7, 1.45, 0.65, 1.5, 0.7, 1.4, 0.75, 1.35, 0.8, 1.1, 0.9, 1.3, 0.75, 1.05]


def test_a_short_loss_bouncing_between_epochs_is_a_note() -> None:
    (finding,) = curves.find(CHECK, _epochs(BOUNCING))
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["rises"] >= 2 and finding.evidence["falls"] >= 2 and finding.evidence["points"] == 15
    assert "bounces from step to step" in finding.message


def test_a_short_smooth_or_noisy_falling_loss_is_silent() -> None:
    rng = curves.rng(3)
    for scatter in (0.0, 0.03, 0.08):
        moves = list(np.exp(-0.12 + scatter * rng.standard_normal(14)))
        assert curves.find(CHECK, _epochs(moves)) == []


def test_a_short_per_step_loss_scattering_on_its_way_down_is_silent() -> None:
    # 24 single batches scattering by 40% around a loss that halves: noise, and progress.
    values = curves.decay(24, start=2.0, end=0.8, rate=3.0) * np.exp(0.4 * curves.rng(2).standard_normal(24))
    assert curves.find(CHECK, {"train/loss": (curves.steps(24), values)}) == []


def test_near_miss_short_bounces_under_the_swing_threshold() -> None:
    gentle = [0.8, 1.25, 0.8, 1.25, 0.8, 1.25, 0.8, 1.2, 0.85, 1.2, 0.9, 1.1, 0.9, 1.0]  # rises of 25%
    assert curves.find(CHECK, _epochs(gentle)) == []
    (finding,) = curves.find(CHECK, _epochs(gentle), min_swing=0.2)
    assert finding.evidence["rises"] >= 2


def test_short_rises_one_way_only_or_a_climb_are_not_bounces() -> None:
    one_way = [0.6, 1.5, 0.95, 0.95, 1.4, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]  # one fall of 40%
    climbing = [1.4, 0.7, 1.5, 0.7, 1.5, 1.4, 1.3, 1.2, 1.1, 1.2, 1.1, 1.2, 1.1, 1.2]  # ends far above its start
    assert curves.find(CHECK, _epochs(one_way)) == []
    assert curves.find(CHECK, _epochs(climbing)) == []
