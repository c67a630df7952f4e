"""N002 loss-divergence: the loss explodes, or climbs steadily late in the run."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks import measures
from rundoctor.checks.loss_divergence import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 1_000
STEPS = curves.steps(N)


def _train(values: np.ndarray) -> dict[str, curves.Series]:
    return {"train/loss": (STEPS, values)}


def test_fires_on_an_exploding_training_loss() -> None:
    # Decays to 0.38 by 60% of the run, then grows 50x: above 10x its best from ~84%.
    (finding,) = curves.find(CHECK, _train(curves.noisy(curves.diverge(N), 0.01)))
    assert (finding.code, finding.severity, finding.confidence) == (
        "N002",
        Severity.ERROR,
        Confidence.HIGH,
    )
    assert finding.tags == ("train/loss",)
    assert 820 <= finding.first_step <= 850 and finding.last_step == N - 1
    evidence = finding.evidence
    assert evidence["reference"] == "best level so far"
    assert evidence["reference_level"] == pytest.approx(0.385, rel=0.03)
    assert evidence["ratio"] == pytest.approx(50, rel=0.1)
    assert evidence["peak_step"] > 990 and evidence["recovered"] is False
    assert "exploded" in finding.message and "had not come back down" in finding.message
    curves.assert_well_formed(finding)


def test_a_huge_negative_loss_is_an_explosion_too() -> None:
    # mmdetection's GIoU term went to -7e28 for a few iterations: magnitude, not value.
    loss = curves.noisy(curves.decay(N), 0.01)
    loss[700:705] = -np.logspace(8, 28, 5)
    (finding,) = curves.find(CHECK, _train(loss))
    assert (finding.first_step, finding.last_step) == (700, 704)
    assert finding.evidence["peak_value"] == pytest.approx(-1e28)
    assert finding.evidence["recovered"] is True
    assert "numerical corruption" in finding.message


def test_validation_loss_is_compared_with_its_initial_level() -> None:
    val = curves.decay(50, start=1.0, end=0.4)
    val[40:] = 20.0  # 20x its first value, to the end
    series = {**_train(curves.decay(N)), "val/loss": (curves.steps(50, 20), val)}
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("val/loss",) and finding.evidence["split"] == "validation"
    assert finding.evidence["reference"] == "initial level"
    assert (finding.first_step, finding.last_step) == (800, 980)


def test_an_overfitting_validation_loss_is_not_a_divergence() -> None:
    # Rises 4x above its minimum, as the worst real overfitting runs do: another check's job.
    series = {
        **_train(curves.decay(N)),
        "val/loss": (curves.steps(50, 20), curves.overfit(50, rise=3.0)),
    }
    assert curves.find(CHECK, series) == []


def test_components_are_judged_when_no_total_is_logged() -> None:
    box = curves.noisy(curves.diverge(300, turn=0.5, factor=100), 0.01)
    series = {
        "train/box_loss": (curves.steps(300), box),
        "train/cls_loss": (curves.steps(300), curves.decay(300)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("train/box_loss",)


def test_components_are_ignored_when_a_total_is_logged() -> None:
    series = {
        **_train(curves.decay(N)),
        "train/aux_loss": (STEPS, curves.diverge(N, factor=100)),
    }
    assert curves.find(CHECK, series) == []


def test_signed_gan_losses_do_not_fire() -> None:
    # A critic and a generator swinging around zero, as in a Wasserstein GAN.
    t = np.linspace(0, 30, 320)
    series = {
        "train_disc_loss": (
            curves.steps(320),
            0.3 * np.sin(t) + 0.05 * curves.rng(1).standard_normal(320),
        ),
        "train_gen_loss": (
            curves.steps(320),
            -0.2 + 0.8 * np.cos(t / 3) * curves.rng(2).random(320),
        ),
    }
    assert curves.find(CHECK, series) == []


def test_a_spike_that_recovers_is_not_a_divergence() -> None:
    loss = curves.with_spikes(curves.noisy(curves.decay(N), 0.01), at=[500], height=20.0, width=3)
    assert curves.find(CHECK, _train(loss)) == []


def test_near_miss_below_the_factor_then_override() -> None:
    loss = curves.noisy(curves.decay(N), 0.01)
    loss[600:] = loss[599] * 8.0  # 8x its best for the rest of the run, under the 10x bar
    assert curves.find(CHECK, _train(loss)) == []
    (finding,) = curves.find(CHECK, _train(loss), explode_factor=5.0)
    # The smoothed level (a rolling median of 1% of the points) crosses within a few points.
    assert 600 <= finding.first_step <= 605
    # Against the best level the loss held (a median of 5% of the points, a little behind a
    # curve still falling), not its best three points.
    assert finding.evidence["ratio"] == pytest.approx(8.0, rel=0.1)


def test_steady_late_rise_is_a_warning() -> None:
    loss = curves.noisy(curves.decay(N, start=2.0, end=0.5), 0.01)
    loss[750:] *= np.linspace(1.0, 1.4, 250)  # x1.4 over the last quarter, on a 5% fall
    (finding,) = curves.find(CHECK, _train(loss))
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.first_step == 750 and finding.last_step == N - 1
    assert finding.evidence["rise"] == pytest.approx(0.33, abs=0.03)
    assert "climbed steadily" in finding.message


def test_mild_late_rise_is_a_near_miss_until_the_threshold_is_lowered() -> None:
    loss = curves.noisy(curves.decay(N, start=2.0, end=0.5), 0.01)
    loss[750:] *= np.linspace(1.0, 1.2, 250)  # +14% net over the last quarter
    assert curves.find(CHECK, _train(loss)) == []
    (finding,) = curves.find(CHECK, _train(loss), late_rise=0.1)
    assert finding.evidence["rise"] == pytest.approx(0.14, abs=0.02)


def _few_epochs(n: int) -> dict[str, curves.Series]:
    """A per-epoch loss of ``n`` epochs that falls, then rises 40% over its last quarter."""
    loss = curves.noisy(curves.decay(n, start=2.0, end=0.5), 0.01, seed=2)
    tail = n // 4
    loss[-tail:] *= np.linspace(1.0, 1.4, tail)
    return {"train/loss": (curves.steps(n), loss)}


def test_a_late_rise_needs_eight_points_to_be_called_steady() -> None:
    # Six points of a 24-epoch run can lie near a line by chance: no claim on them.
    assert curves.find(CHECK, _few_epochs(24)) == []
    # Near miss: eight points of a 32-epoch run show the same rise with its own noise.
    (finding,) = curves.find(CHECK, _few_epochs(32))
    assert "climbed steadily" in finding.message and finding.evidence["tail_points"] == 8
    # Params override: six points are enough when asked.
    assert len(curves.find(CHECK, _few_epochs(24), late_min_points=6)) == 1


def test_a_late_rise_of_a_very_noisy_short_loss_needs_99_9_percent() -> None:
    # 56 logs scattering by 35%, the last 14 climbing 1.7x: 3.1 standard errors over ~14
    # points, which one healthy run in a few hundred shows by chance somewhere among its
    # checks at 99%; a divergence stands far further out.
    loss = curves.decay(56, start=4.0, end=1.8, rate=3.0) * np.exp(0.35 * curves.rng(1).standard_normal(56))
    loss[-14:] *= np.linspace(1.0, 1.7, 14)
    series = {"train/loss": (curves.steps(56), loss)}
    assert [f for f in curves.find(CHECK, series) if "steadily" in f.message] == []
    (finding,) = [f for f in curves.find(CHECK, series, late_confidence=0.99) if "steadily" in f.message]
    assert finding.evidence["threshold_confidence"] == 0.99


def test_explosion_in_a_start_written_over_by_a_restart() -> None:
    # A first start blows up within 5 logs and is abandoned; the restart logs the same steps.
    first = np.array([2.0, 1.8, 3e6, 8e12, 5e20])
    steps = np.concatenate((curves.steps(5), STEPS))
    values = np.concatenate((first, curves.noisy(curves.decay(N), 0.01)))
    (finding,) = curves.find(CHECK, {"train/loss": (steps, values)})
    assert finding.evidence["overwritten_by_restart"] is True
    assert (finding.first_step, finding.last_step) == (2, 4)
    assert "a later restart wrote over" in finding.message


def test_restarts_from_scratch_are_not_explosions() -> None:
    # Three starts appended to one log, each from an untrained model (detectron2 R07).
    steps = curves.restarted((0, 300), (0, 300), (0, N))
    values = np.concatenate(
        (curves.decay(300, 2.1, 0.5), curves.decay(300, 2.9, 0.9), curves.decay(N, 2.7, 0.02))
    )
    assert curves.find(CHECK, {"total_loss": (steps, values)}) == []


def test_healthy_noisy_run_is_silent() -> None:
    series = {
        **_train(curves.noisy(curves.decay(N), 0.05)),
        "val/loss": (curves.steps(50, 20), curves.noisy(curves.decay(50, 2.2, 0.3), 0.03, seed=3)),
    }
    assert curves.find(CHECK, series) == []


def test_an_explosion_into_nan_within_a_few_logs_is_an_error() -> None:
    # Raw regression targets: 1e8 at the start, 1e16 four logs later, NaN from then on.
    values = [1.06e8, 9.7e7, 5.5e7, 3.6e10, 9.5e16] + [np.nan] * 6
    (finding,) = curves.find(CHECK, {"loss": (curves.steps(11, 2, start=2), values)})
    assert (finding.severity, finding.confidence) == (Severity.ERROR, Confidence.HIGH)
    assert "exploded into NaN" in finding.message
    assert finding.evidence["first_non_finite_step"] == 12
    assert finding.evidence["ratio"] == pytest.approx(9.5e16 / 5.5e7)
    assert (finding.first_step, finding.last_step) == (10, 22)
    curves.assert_well_formed(finding)


def test_nan_after_a_loss_that_did_not_climb_is_not_a_divergence() -> None:
    # The non-finite check reports the NaN; without a climb before it there is no explosion.
    values = curves.with_nan(curves.noisy(curves.decay(200), 0.02), at=150)
    assert curves.find(CHECK, {"train/loss": (curves.steps(200), values)}) == []
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(200), values)}, explode_factor=1.0)
    assert finding.evidence["first_non_finite_step"] == 150


def test_heavy_tailed_batches_of_a_converged_loss_are_not_an_explosion() -> None:
    # Batch size 4 on noisy labels: a converged per-step loss of 1e-3 with 3% of batches at
    # 10-50x and lognormal scatter; no stretch of the smoothed level leaves its best by 10x.
    for seed in range(4):
        loss = curves.heavy_tailed(curves.decay(N, start=2.3, end=1e-3, rate=8.0), spread=1.0, outliers=0.03, seed=seed)
        assert curves.find(CHECK, _train(loss)) == [], seed


def test_a_late_rise_under_a_warm_restart_is_info() -> None:
    loss = curves.noisy(curves.decay(N, start=2.0, end=0.5), 0.01)
    loss[750:] *= np.linspace(1.0, 1.4, 250)
    rates = np.where(STEPS < 750, 1e-4, 1e-3)  # the schedule restarted at its peak
    (finding,) = curves.find(CHECK, {**_train(loss), "lr": (STEPS, rates)})
    assert finding.severity is Severity.INFO and "warm restart" in finding.message


def test_a_late_rise_over_few_autocorrelated_points_is_not_shown() -> None:
    # Twelve epochs of a running-mean loss wandering up 25% in the last three: not enough
    # independent evidence for a trend.
    loss = np.array([2.0, 1.2, 0.9, 0.8, 0.74, 0.7, 0.69, 0.68, 0.66, 0.8, 0.7, 0.85])
    assert curves.find(CHECK, {"train/loss": (curves.steps(12), loss)}) == []


def test_too_few_points() -> None:
    assert curves.find(CHECK, {"train/loss": (curves.steps(4), [1.0, 50.0, 500.0, 5000.0])}) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["N002"]


def test_stretches_lists_every_run_of_true() -> None:
    starts, lengths = measures.stretches(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool))
    assert starts.tolist() == [0, 4, 6] and lengths.tolist() == [2, 1, 3]
    starts, lengths = measures.stretches(np.zeros(3, dtype=bool))
    assert starts.size == lengths.size == 0


MMDET_EXPLODED = (
    "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/"
    "#13. 10082359_cascade_rcnn_x101_32x4d_swin_imgscale_720_PAFPN_loss_GIoULoss_labelsmoothing_1x_trash"
    "/None.log.json"
)
GAN = "AIRI-Institute__genrisk__lightning-wgan/lightning_logs/version_10/metrics.csv"


def test_real_mmdetection_starts_that_exploded(real_logs) -> None:
    # R42: four starts reach -6e8 .. -7.4e28 within 150 iterations before a fifth trains.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / MMDET_EXPLODED))
    assert finding.tags == ("loss",) and finding.severity is Severity.ERROR
    assert finding.evidence["peak_value"] == pytest.approx(-7.4254e28, rel=1e-3)
    assert finding.evidence["overwritten_by_restart"] is True


def test_real_gan_losses_do_not_fire(real_logs) -> None:
    # R24: Wasserstein critic and generator losses, signed, no trend expected.
    assert curves.run_check(CHECK, curves.real_run(real_logs / GAN)) == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def _wild_plateau(n: int, seed: int, spread: float = 1.2) -> np.ndarray:
    """A per-step loss of batch 4 at a high constant learning rate: it falls to 0.5 and then
    scatters over an order of magnitude around it (single batches from 0.02 to 5)."""
    base = np.concatenate([curves.decay(40, 2.0, 0.5), np.full(n - 40, 0.5)])
    return curves.heavy_tailed(base, spread=spread, outliers=0.0, seed=seed)


def test_a_wildly_scattering_plateau_is_not_an_explosion() -> None:
    # Three easy batches in a row sit at a tenth of the level, and three hard ones at the
    # end at 2-3x: neither is a level, and 10x between them is noise.
    for seed in range(20):
        for spread in (1.2, 2.0):
            findings = curves.find(CHECK, {"train/loss": (curves.steps(225, 20), _wild_plateau(225, seed, spread))})
            assert [f for f in findings if f.evidence.get("reference") == "best level so far"] == [], (seed, spread)


def test_a_loss_that_ends_far_above_its_start_diverged() -> None:
    loss = _wild_plateau(225, 0, spread=1.0)
    loss[120:] *= np.linspace(1.0, 40.0, 105)  # ends ~5 (the median batch ~0.3 held), start ~1
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(225, 20), loss)})
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["ratio"] >= 3.0 and "ended worse than it started" in finding.message
    curves.assert_well_formed(finding)


def test_a_loss_ending_near_its_start_is_a_near_miss_then_override() -> None:
    loss = _wild_plateau(225, 0, spread=1.0)
    loss[120:] *= np.linspace(1.0, 8.0, 105)  # ends ~1.4x its start: noisy, not diverged
    findings = curves.find(CHECK, {"train/loss": (curves.steps(225, 20), loss)})
    assert [f for f in findings if "ended worse" in f.message] == []
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(225, 20), loss)}, above_start=1.0)
    assert "ended worse than it started" in finding.message


def test_the_envelope_shortcut_changes_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shortcut skips the smoothing only where no smoothed point can pass the factor; with
    # the shortcut disabled (an envelope that bounds nothing) the findings must be the same.
    rng = curves.rng(5)
    runs = []
    for seed in range(12):
        n = int(rng.integers(40, 3000))
        loss = curves.heavy_tailed(curves.decay(n, 2.3, 0.3), seed=seed)
        if seed % 3 == 0:
            loss = curves.diverge(n, factor=float(rng.uniform(5.0, 30.0)))
        elif seed % 3 == 1:
            loss[n // 2 : n // 2 + max(3, n // 15)] *= float(rng.uniform(5.0, 15.0))
        val = curves.noisy(curves.decay(30, 2.0, 0.8), 0.05, seed=seed) * (1.0 if seed % 2 else float(rng.uniform(1.0, 15.0)))
        runs.append(curves.make_run({"train/loss": (curves.steps(n), loss), "val/loss": (curves.steps(30, 100), val)}))
    shortcut = [curves.run_check(CHECK, run) for run in runs]
    assert any(shortcut), "some of the curves are chosen to explode"

    def unbounded(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full(np.size(values), -np.inf), np.full(np.size(values), np.inf)

    monkeypatch.setattr(measures, "window_envelope", unbounded)
    assert [curves.run_check(CHECK, run) for run in runs] == shortcut
