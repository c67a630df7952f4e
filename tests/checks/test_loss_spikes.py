"""C005 loss-spikes: sudden spikes in the training loss, how often, and whether they recover."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks import measures
from rundoctor.checks.loss_spikes import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 1_000
STEPS = curves.steps(N, 10)


def _loss(at: list[int], height: float = 4.0, width: int = 3, noise: float = 0.02) -> np.ndarray:
    return curves.with_spikes(
        curves.noisy(curves.decay(N), noise), at=at, height=height, width=width
    )


def test_fires_on_spikes_with_learning_rate_and_gradient_norm_evidence() -> None:
    norms = curves.with_spikes(
        np.abs(curves.noisy(np.ones(N), 0.1, seed=5)), at=[300, 600, 800], height=30.0
    )
    series = {
        "train/loss": (STEPS, _loss([300, 600, 800])),
        "train/learning_rate": (STEPS, np.full(N, 1e-3)),
        "train/grad_norm": (STEPS, norms),
    }
    (finding,) = curves.find(CHECK, series)
    assert (finding.code, finding.severity, finding.confidence) == (
        "C005",
        Severity.WARNING,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (3_000, 8_020)
    evidence = finding.evidence
    assert evidence["spikes"] == 3 and evidence["unrecovered"] == 0
    peaks = sorted(evidence["spike_steps"])  # the highest of each spike's three points
    assert all(start <= peak <= start + 20 for start, peak in zip((3_000, 6_000, 8_000), peaks))
    assert evidence["median_recovery_steps"] == 30.0
    assert evidence["lr_at_spike"] == evidence["lr_before_spike"] == pytest.approx(1e-3)
    assert evidence["grad_norm_at_spike"] > 10 * evidence["grad_norm_median"]
    assert "spiked 3 times" in finding.message and "gradient norm" in finding.message
    curves.assert_well_formed(finding)


def test_a_single_recovered_spike_is_info() -> None:
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, _loss([500]))})
    assert finding.severity is Severity.INFO and finding.evidence["spikes"] == 1
    assert finding.evidence["spike_values"][0] == pytest.approx(4.0 * curves.decay(N)[500], rel=0.1)


def test_a_spike_still_going_at_the_end_is_a_warning() -> None:
    # Three points cannot show it will not come back: a warning, not an error.
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, _loss([997]))})
    assert finding.severity is Severity.WARNING and finding.evidence["unrecovered"] == 1
    assert "still above its level when the log ended" in finding.message


def test_many_spikes_are_an_error() -> None:
    at = list(range(100, 1_000, 80))  # 12 spikes
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, _loss(at, width=2))})
    assert finding.severity is Severity.ERROR and finding.evidence["spikes"] == 12
    assert len(finding.evidence["spike_steps"]) == 10  # max_listed


def test_a_spike_right_after_a_learning_rate_rise_says_so() -> None:
    rates = np.where(STEPS < 5_000, 1e-4, 1e-3)
    series = {"train/loss": (STEPS, _loss([500])), "lr": (STEPS, rates)}
    (finding,) = curves.find(CHECK, series)
    assert finding.evidence["lr_before_spike"] == pytest.approx(1e-4)
    assert finding.evidence["lr_at_spike"] == pytest.approx(1e-3)
    assert "had just risen" in finding.message


def test_near_miss_small_lasting_jump_then_override() -> None:
    # 20% above the level for 50 points: far beyond the noise, but under the 25% bar.
    series = {"train/loss": (STEPS, _loss([500], height=1.2, width=50, noise=0.005))}
    assert curves.find(CHECK, series) == []
    # The level before it is the median of the falling stretch behind it, a little higher
    # than where the loss was: the shift it measures is a little under 20%.
    (finding,) = curves.find(CHECK, series, min_relative=0.05)
    assert finding.evidence["persistent_spikes"] == 1
    assert 4_950 <= finding.first_step <= 5_020
    assert 1.05 < finding.evidence["spike_factors"][0] < 1.2


def test_healthy_batch_size_4_per_step_loss_with_heavy_tails_is_silent() -> None:
    # Lognormal scatter of a factor e either way and 3% of batches at 10-50x the trend (a
    # mislabelled example in a batch of 4): the normal texture of such a log, not spikes.
    for seed in range(6):
        loss = curves.heavy_tailed(curves.decay(3_000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        findings = curves.find(CHECK, {"train/loss": (curves.steps(3_000), loss)})
        assert [f for f in findings if f.severity is not Severity.INFO] == [], seed


def test_healthy_running_mean_of_heavy_tailed_batches_is_silent() -> None:
    # Keras and Hugging Face log the mean since the epoch began: one heavy batch lifts the
    # rest of its epoch, so whole epochs sit above their neighbours.
    for seed in range(6):
        batches = curves.heavy_tailed(curves.decay(3_000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        loss = curves.epoch_running_mean(batches, 100)
        findings = curves.find(CHECK, {"train/loss": (curves.steps(3_000), loss)})
        assert [f for f in findings if f.severity is not Severity.INFO] == [], seed


def test_a_lasting_jump_in_a_heavy_tailed_loss_fires() -> None:
    # The same noisy per-step loss, knocked 20x up for 60 steps by a bad update.
    loss = curves.heavy_tailed(curves.decay(3_000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=1)
    loss[2_000:2_060] *= 20.0
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(3_000), loss)})
    assert finding.severity is Severity.WARNING and finding.evidence["persistent_spikes"] == 1
    assert 1_980 <= finding.first_step <= 2_010 and 2_040 <= finding.last_step <= 2_120
    assert finding.evidence["spike_factors"][0] > 10


def test_a_smaller_lasting_jump_alone_is_info() -> None:
    loss = curves.heavy_tailed(curves.decay(3_000, start=2.3, end=0.05), spread=0.3, seed=2)
    loss[2_000:2_060] *= 3.0
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(3_000), loss)})
    assert finding.severity is Severity.INFO and finding.confidence is Confidence.MEDIUM


def _every_100(corrupt: int, spread: float = 0.3, seed: int = 3) -> np.ndarray:
    """A per-step loss of 700 batches (30% scatter) where ``corrupt`` batches, one every
    100 steps, carry scrambled labels: each 25-250x the level, none beyond chance alone."""
    trend = curves.decay(700, start=2.3, end=0.08, rate=15.0)
    loss = curves.heavy_tailed(trend, spread=spread, outliers=0.0, seed=seed)
    for k in range(corrupt):
        loss[99 + 100 * k] = 12.0 + 1.5 * k
    return loss


def test_recurring_bad_batches_are_a_note_with_their_period() -> None:
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(700), _every_100(6))})
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.HIGH)
    evidence = finding.evidence
    # The first, while the loss is still high, stands out less; any one high enough alone
    # is an isolated spike, the rest are the group.
    assert set(evidence["spike_steps"]) <= {99, 199, 299, 399, 499, 599}
    assert evidence["spikes"] >= 5 and evidence["recurring_spikes"] >= 4
    assert evidence["recurring_expected"] < 1.0 and evidence["recurring_chance"] < 1e-4
    assert evidence["recurring_period"] == 100.0
    assert "every 100 steps" in finding.message and "beyond chance only together" in finding.message
    curves.assert_well_formed(finding)


def test_a_recurring_bad_batch_at_the_last_point_does_not_raise_the_severity() -> None:
    loss = _every_100(6)
    loss[-1] = 20.0  # the last logged batch is one of them: it cannot show a recovery
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(700), loss)})
    assert finding.severity is Severity.INFO and finding.evidence["recurring_spikes"] >= 4


def test_two_bad_batches_are_a_near_miss() -> None:
    # Two points ~15 sigma out where such noise gives 0.5: not yet a pattern.
    assert curves.find(CHECK, {"train/loss": (curves.steps(700), _every_100(2))}) == []


def test_a_stricter_recurring_alpha_leaves_only_the_points_beyond_chance_alone() -> None:
    series = {"train/loss": (curves.steps(700), _every_100(6))}
    findings = curves.find(CHECK, series, recurring_alpha=1e-9)
    assert all(f.evidence["recurring_spikes"] == 0 for f in findings)


def test_healthy_heavy_tailed_batches_make_no_recurring_group() -> None:
    # Scatter of a factor e and 3% of batches at 10-50x: as many high points as such noise gives.
    for seed in range(6):
        loss = curves.heavy_tailed(curves.decay(700, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        findings = curves.find(CHECK, {"train/loss": (curves.steps(700), loss)})
        assert all(f.evidence["recurring_spikes"] == 0 for f in findings), seed


def _long_with_bad_batches(every: int | None, low: float, high: float, seed: int = 5) -> np.ndarray:
    """10,000 per-step losses (12% scatter), binned by the check, with a batch ``low``-``high``
    times the level every ``every`` steps: each alone within heavy-tailed noise of 10,000 points."""
    trend = curves.decay(10_000, start=0.9, end=0.35, rate=3.0)
    generator = curves.rng(seed)
    loss = trend * np.exp(0.12 * generator.standard_normal(trend.size))
    if every is not None:
        hit = np.arange(every - 1, trend.size, every)
        loss[hit] = trend[hit] * generator.uniform(low, high, hit.size)
    return loss


def test_recurring_bad_batches_of_a_long_binned_curve_are_found_on_its_single_points() -> None:
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(10_000), _long_with_bad_batches(50, 3.0, 10.0))})
    assert finding.severity is Severity.INFO and finding.evidence["recurring_spikes"] >= 10
    assert finding.evidence["recurring_chance"] < 1e-6
    assert "beyond chance only together" in finding.message


def test_a_long_binned_curve_without_bad_batches_or_with_mild_ones_is_quiet() -> None:
    for every, low, high in ((None, 1.0, 1.0), (50, 1.2, 1.4)):  # 1.4x is 2.8 sigmas of this scatter
        assert curves.find(CHECK, {"train/loss": (curves.steps(10_000), _long_with_bad_batches(every, low, high))}) == []


def test_a_long_healthy_heavy_tailed_loss_makes_no_recurring_group() -> None:
    for seed in range(3):
        loss = curves.heavy_tailed(curves.decay(6_000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        findings = curves.find(CHECK, {"train/loss": (curves.steps(6_000), loss)})
        assert all(f.evidence["recurring_spikes"] == 0 for f in findings), seed


def test_a_spike_after_a_warm_restart_of_the_learning_rate_is_info() -> None:
    loss = _loss([400, 700], height=3.0, width=30)
    rates = np.where((STEPS >= 4_000) & (STEPS < 5_000) | (STEPS >= 7_000), 1e-2, 1e-4)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss), "lr": (STEPS, rates)})
    assert finding.severity is Severity.INFO and finding.evidence["after_learning_rate_rise"] == 2
    assert "rise of the learning rate" in finding.message


def test_a_resume_seam_is_not_a_spike() -> None:
    # A run resumed from step 3,000 after reaching 6,000: the analysis joins the new start to
    # nothing older, but at its end it falls back to the abandoned tail, 4x higher.
    first = curves.noisy(curves.decay(600), 0.02) * 4.0
    second = curves.noisy(curves.decay(600)[300:450], 0.02, seed=3)
    steps = np.concatenate((curves.steps(600, 10), curves.steps(150, 10, start=3_000)))
    findings = curves.find(CHECK, {"train/loss": (steps, np.concatenate((first, second)))})
    assert [f for f in findings if f.severity is not Severity.INFO] == []


def test_noise_alone_is_not_a_spike() -> None:
    # Heavy noise (10% per point) on a falling loss: its largest points are not spikes.
    assert (
        curves.find(CHECK, {"train/loss": (STEPS, curves.noisy(curves.decay(N), 0.1, seed=7))})
        == []
    )


def test_the_steep_start_of_a_run_is_not_a_spike() -> None:
    loss = curves.noisy(curves.decay(N, start=46.0, end=0.6, rate=80.0), 0.02)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_a_rounded_converged_loss_is_not_spiking() -> None:
    # Written to 4 decimals, a memorised loss alternates between 0.0001 and 0.0002.
    loss = np.round(curves.decay(N, start=0.3, end=0.00015, rate=12.0), 4)
    loss[600::7] = 0.0002
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_a_one_point_spike_survives_binning_of_a_long_curve() -> None:
    n = 5_000  # more points than bins: three points per bin
    loss = curves.noisy(curves.decay(n), 0.02)
    loss[3_001] *= 6.0
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(n), loss)})
    assert abs(finding.evidence["spike_steps"][0] - 3_001) <= 2


def test_too_few_points() -> None:
    loss = curves.with_spikes(curves.decay(7), at=[4], height=10.0, width=1)
    assert curves.find(CHECK, {"train/loss": (curves.steps(7), loss)}) == []


def _fifteen_epochs(height: float, noise: float = 0.04) -> dict[str, curves.Series]:
    """Fifteen epoch means easing from 0.52 to 0.4, the tenth ``height`` times its level."""
    loss = 0.4 * np.exp(noise * curves.rng(1).standard_normal(15)) * np.linspace(1.3, 1.0, 15)
    loss[9] *= height
    return {"train/loss": (curves.steps(15), loss)}


def test_a_spike_among_fifteen_epoch_means_is_found() -> None:
    (finding,) = curves.find(CHECK, _fifteen_epochs(5.0))
    assert finding.evidence["spike_steps"] == [9] and finding.severity is Severity.INFO


def test_fifteen_smooth_epoch_means_and_a_small_bump_are_quiet() -> None:
    assert curves.find(CHECK, _fifteen_epochs(1.0)) == []
    assert curves.find(CHECK, _fifteen_epochs(1.15)) == []  # under min_relative's 25%


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["C005"]


def test_binning_keeps_each_bins_median_and_maximum() -> None:
    values = np.arange(10.0)
    values[4] = 100.0
    small = measures.binned(np.arange(10), values, max_bins=20)
    assert small.size == 1 and small.level is values
    binned = measures.binned(np.arange(10) * 10, values, max_bins=4)  # bins of 3, 3, 3 and 1
    assert binned.size == 3
    assert binned.level.tolist() == [1.0, 5.0, 7.0, 9.0]
    assert binned.high.tolist() == [2.0, 100.0, 8.0, 9.0]
    assert binned.steps.tolist() == [10.0, 40.0, 70.0, 90.0]


def test_resolution_and_local_noise() -> None:
    assert measures.resolution(np.array([0.0002, 0.0001, 0.0001, 0.0003])) == pytest.approx(1e-4)
    assert measures.resolution(np.array([1.0, 1.0])) == 0.0
    # Noise ten times larger in the second half is seen there, not averaged over the run.
    jitter = curves.rng(0).standard_normal(400)
    noise = measures.local_noise(np.where(np.arange(400) < 200, 0.01, 0.1) * jitter, 21)
    assert noise[100] == pytest.approx(0.01, rel=0.3) and noise[300] == pytest.approx(0.1, rel=0.3)


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]})
    for finding in findings:
        assert finding.code == "C005"
        curves.assert_well_formed(finding)
    if name != "unsorted":  # sorted by step, the shuffled decay is scatter with jumps
        assert findings == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        findings = curves.run_check(CHECK, run)
        assert [f for f in findings if f.severity is not Severity.INFO] == [], run.id


def _hard_batches(n: int, seed: int, share: float = 0.2) -> np.ndarray:
    """A per-step loss where a fifth of the batches are hard (5-30x the level), as a small
    sequence model's loss is once most sequences are easy: three hard batches side by side
    happen many times over a long run."""
    generator = curves.rng(seed)
    loss = curves.decay(n, start=0.6, end=0.008) * np.exp(0.3 * generator.standard_normal(n))
    hit = generator.random(n) < share
    loss[hit] *= generator.uniform(5.0, 30.0, int(hit.sum()))
    return loss


def test_chance_runs_of_hard_batches_are_not_a_lasting_spike() -> None:
    # Without the chance count (alpha huge), windows where 3 of 5 batches are hard pass for
    # lasting disturbances on nearly every seed.
    fired = []
    for seed in range(10):
        series = {"train/loss": (curves.steps(400, 5), _hard_batches(400, seed))}
        assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == [], seed
        fired += [f for f in curves.find(CHECK, series, disturbance_alpha=1e9) if f.evidence["persistent_spikes"]]
    assert len(fired) >= 8


def test_a_lasting_jump_among_hard_batches_fires() -> None:
    loss = _hard_batches(400, 0)
    loss[300:330] *= 20.0
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(400, 5), loss)})
    assert finding.severity is Severity.WARNING and finding.evidence["persistent_spikes"] == 1


def test_a_short_jump_among_hard_batches_is_a_near_miss() -> None:
    # Eight points at 10x: hard batches side by side do that by chance on this texture.
    loss = _hard_batches(400, 0)
    loss[300:308] *= 10.0
    findings = curves.find(CHECK, {"train/loss": (curves.steps(400, 5), loss)})
    assert all(f.evidence["persistent_spikes"] == 0 for f in findings)


def test_a_long_binned_heavy_tailed_loss_is_judged_point_by_point() -> None:
    # 200,000 single batches binned to 2,000: a bin maximum is the worst of 100 batches and
    # is judged against single-batch noise over all 200,000 chances, not the bin medians'.
    n = 200_000
    loss = curves.heavy_tailed(curves.decay(n), spread=0.5, outliers=0.01, seed=1)
    assert curves.find(CHECK, {"train/loss": (curves.steps(n), loss)}) == []
    # A lasting jump still shows in the bin medians (one that recovered: info).
    loss[120_000:126_000] *= 8.0
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(n), loss)})
    assert finding.evidence["persistent_spikes"] == 1 and finding.evidence["unrecovered"] == 0


def _single_examples(n: int, seed: int, errors: float = 0.1) -> np.ndarray:
    """A per-example loss (batch size 1): a right example costs ~0.01 (a factor e either
    way), a wrong one (``errors`` of them) ~5; ratios of 1000x between neighbours are the
    texture of the log.  A bursty stretch of 20 points where a fifth of the examples are
    wrong and the right ones cost 20x more, as the weights of a batch-1 run wander."""
    generator = curves.rng(seed)
    right = 0.01 * np.exp(generator.standard_normal(n))
    wrong = 5.0 * np.exp(0.3 * generator.standard_normal(n))
    loss = np.where(generator.random(n) < errors, wrong, right)
    burst = slice(n // 2, n // 2 + 20)
    loss[burst] = np.where(generator.random(20) < 0.2, wrong[burst], 20.0 * right[burst])
    return loss


def test_a_batch_size_1_loss_with_a_bursty_stretch_does_not_warn() -> None:
    for seed in range(6):
        series = {"train/loss": (curves.steps(1_800, 5), _single_examples(1_800, seed))}
        assert [f for f in curves.find(CHECK, series) if f.severity is not Severity.INFO] == [], seed
        # Even taken for a disturbance (every gate but the last relaxed), the stretch
        # stays inside the ordinary range of this loss: at most a note.
        loose = curves.find(CHECK, series, noise_sigmas=2.0, disturbance_alpha=1.0)
        assert [f for f in loose if f.severity is not Severity.INFO] == [], seed
        assert all(f.evidence["large_spikes"] == 0 for f in loose), seed


def test_a_knocked_up_batch_size_1_loss_fires() -> None:
    # 80 examples after an update that threw the weights off: nearly every one confidently
    # wrong (~15), so the median of the stretch is above what 95% of ordinary examples
    # cost, wrong ones included.
    loss = _single_examples(1_800, 0)
    loss[1_200:1_280] = 15.0 * np.exp(0.3 * curves.rng(9).standard_normal(80))
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(1_800, 5), loss)})
    assert finding.severity is Severity.WARNING and finding.evidence["large_spikes"] == 1
    assert any(6_000 <= step <= 6_400 for step in finding.evidence["spike_steps"])


def test_a_short_knocked_up_stretch_of_a_batch_size_1_loss_is_a_near_miss() -> None:
    # As high as the wrong examples, for 30 points: no higher than the ordinary worst.
    loss = _single_examples(1_800, 0)
    loss[1_200:1_230] = 3.0 * np.exp(0.3 * curves.rng(9).standard_normal(30))
    findings = curves.find(CHECK, {"train/loss": (curves.steps(1_800, 5), loss)})
    assert [f for f in findings if f.severity is not Severity.INFO] == []


def test_heavy_spread_override_restores_the_size_rule() -> None:
    # With the heavy-spread limit raised out of reach, a stretch 20x above a quiet level is
    # judged by its size again.
    loss = _single_examples(1_800, 0)
    loss[1_200:1_230] = 3.0 * np.exp(0.3 * curves.rng(9).standard_normal(30))
    (finding,) = curves.find(CHECK, {"train/loss": (curves.steps(1_800, 5), loss)}, heavy_spread=100.0)
    assert finding.severity is Severity.WARNING and finding.evidence["weak_spikes"] == 0
