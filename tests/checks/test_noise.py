"""Noise of heavy-tailed curves and the disturbances that persist beyond it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks import noise
from tests import curves


def _disturbances(values: np.ndarray, persist: int = 9, sigmas: float = 5.0) -> list[noise.Disturbance]:
    logged = noise.log_values(values)
    assert logged is not None
    fitted = noise.fit(logged, 51, floor=0.01)
    return noise.disturbances(
        logged, fitted, baseline=51, persist=persist, sigmas=sigmas, min_excess=math.log(1.25)
    )


def test_log_values_only_for_positive_curves() -> None:
    assert noise.log_values(np.array([1.0, np.e, np.nan])) == pytest.approx([0.0, 1.0, np.nan], nan_ok=True)
    assert noise.log_values(np.array([1.0, 0.0])) is None
    assert noise.log_values(np.array([np.nan])) is None
    assert noise.log_values(np.array([1.0, -0.5]), 0.1) is None


def test_an_exact_zero_has_a_logarithm_with_an_offset() -> None:
    # A batch the model got right to float precision is not a signed loss.
    logged = noise.log_values(np.array([2.0, 0.0, 4.0]), 0.5)
    assert logged == pytest.approx(np.log([3.0, 1.0, 5.0]))
    assert noise.log_values(np.array([0.0, 0.0, 1.0]), 0.1) is None  # median 0: no offset


def test_moving_medians_look_ahead_and_behind() -> None:
    values = np.array([1.0, 5.0, 2.0, 4.0, 3.0])
    assert noise.leading_median(values, 3).tolist() == [2.0, 4.0, 3.0, 3.5, 3.0]
    assert noise.trailing_median(values, 3).tolist() == [1.0, 3.0, 2.0, 4.0, 3.0]


def test_the_scale_ignores_heavy_tailed_batches() -> None:
    trend = np.log(curves.decay(2000, start=2.0, end=0.05))
    clean = noise.fit(trend + 0.3 * curves.rng(1).standard_normal(2000), 51)
    tailed = np.log(curves.heavy_tailed(np.exp(trend), spread=0.3, outliers=0.02, seed=1))
    heavy = noise.fit(tailed, 51)
    assert clean.scale == pytest.approx(0.3, rel=0.15)
    assert heavy.scale == pytest.approx(clean.scale, rel=0.2)  # 2% of 10-50x batches barely move it


def test_the_scale_is_local() -> None:
    jitter = curves.rng(2).standard_normal(2000)
    fitted = noise.fit(np.where(np.arange(2000) < 1000, 0.05, 0.5) * jitter, 51)
    assert fitted.sigma[500] == pytest.approx(0.05, rel=0.3) and fitted.sigma[1500] == pytest.approx(0.5, rel=0.3)


def test_a_smooth_monotone_curve_has_the_noise_of_its_steps() -> None:
    # A rolling median of a monotone curve is the curve itself: no residual, but its
    # point-to-point changes are its scale.
    fitted = noise.fit(np.linspace(1.0, 0.0, 101), 9)
    assert fitted.scale == pytest.approx(0.01 * 1.4826 / math.sqrt(2.0))


def test_the_floor_applies_to_a_quantised_curve() -> None:
    assert noise.fit(np.full(100, 0.5), 11, floor=0.01).scale == 0.01


def test_autocorrelation_widens_the_error_of_a_median() -> None:
    white = noise.Noise(np.zeros(1), np.zeros(1), sigma=np.ones(1), tau=1.0)
    smooth = noise.Noise(np.zeros(1), np.zeros(1), sigma=np.ones(1), tau=9.0)
    assert white.median_error(9)[0] == pytest.approx(math.sqrt(math.pi / 2) / 3)
    assert smooth.median_error(9)[0] == pytest.approx(3 * white.median_error(9)[0])


def test_healthy_heavy_tailed_batch_size_4_loss_has_no_disturbance() -> None:
    for seed in range(5):
        loss = curves.heavy_tailed(curves.decay(3000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        assert _disturbances(loss) == []


def test_a_persistent_jump_is_a_disturbance_that_recovers() -> None:
    loss = curves.heavy_tailed(curves.decay(3000, start=2.3, end=0.05), spread=0.5, seed=3)
    loss[2000:2040] *= 8.0
    (found,) = _disturbances(loss)
    assert 1995 <= found.start <= 2005 and 2030 <= found.end <= 2050
    assert found.recovered and math.exp(found.excess) == pytest.approx(8.0, rel=0.4)
    assert found.sigmas > 5


def test_a_few_neighbouring_bad_batches_are_not_a_disturbance() -> None:
    loss = curves.heavy_tailed(curves.decay(3000, start=2.3, end=0.05), spread=0.5, seed=3)
    loss[2000:2004] *= 40.0  # four of the nine points of the short median: it does not move
    assert _disturbances(loss) == []


def test_a_jump_to_the_end_is_not_recovered() -> None:
    loss = curves.heavy_tailed(curves.decay(1000, start=2.3, end=0.05), spread=0.3, seed=4)
    loss[900:] *= 20.0
    (found,) = _disturbances(loss)
    assert not found.recovered and found.end == 999


def test_a_healthy_running_mean_of_heavy_tailed_batches_has_no_disturbance() -> None:
    # An epoch's running mean carries a heavy batch to the end of the epoch: whole epochs sit
    # above their neighbours, and the shift's own spread over the curve says so.
    for seed in range(5):
        batches = curves.heavy_tailed(curves.decay(3000, start=2.3, end=0.05), spread=1.0, outliers=0.03, seed=seed)
        logged = np.log(curves.epoch_running_mean(batches, 100))
        fitted = noise.fit(logged, 150, floor=0.01)
        found = noise.disturbances(logged, fitted, baseline=150, persist=30, sigmas=5.0, min_excess=math.log(1.25))
        assert found == []


def test_seams_of_a_restarted_log() -> None:
    assert noise.seams(np.arange(10)).size == 0
    steps = curves.restarted((0, 600), (300, 451))
    assert noise.seams(steps).tolist() == [300, 450]


def test_a_falling_start_and_a_step_decay_drop_are_not_disturbances() -> None:
    loss = curves.heavy_tailed(curves.step_decay(3000, start=5.0), spread=0.4, seed=2)
    assert _disturbances(loss) == []


def test_too_short_a_curve_has_none() -> None:
    fitted = noise.fit(np.zeros(5), 3)
    assert noise.disturbances(np.zeros(5), fitted, baseline=3, persist=5, sigmas=5, min_excess=0.1) == []


def test_heavy_tailed_chance_counts() -> None:
    assert float(noise.t3_tail(0.0)) == pytest.approx(0.5)
    # Far heavier than Gaussian: about 1 in 170 points beyond 5 sigma.
    assert 1 / 250 < float(noise.t3_tail(5.0)) < 1 / 100
    assert noise.expected_exceedances(1000, 5.0) == pytest.approx(1000 * float(noise.t3_tail(5.0)))
    z = noise.chance_threshold(10_000, 0.01)
    assert noise.expected_exceedances(10_000, z) == pytest.approx(0.01, rel=1e-3)
    assert noise.chance_threshold(100, 0.01) < z


def test_poisson_tail() -> None:
    assert noise.poisson_tail(0, 3.0) == 1.0
    assert noise.poisson_tail(1, 2.0) == pytest.approx(1 - math.exp(-2.0))
    assert noise.poisson_tail(3, 0.0) == 0.0
    assert noise.poisson_tail(10, 1.0) < 1e-6


def test_a_trailing_median_handed_in_is_the_one_computed() -> None:
    loss = np.log(curves.heavy_tailed(np.full(1500, 0.5), seed=4))
    loss[700:760] += 1.0
    fitted = noise.fit(loss, 75, floor=0.01)
    own = noise.disturbances(loss, fitted, baseline=75, persist=15, sigmas=5.0, min_excess=0.2)
    handed = noise.disturbances(
        loss, fitted, baseline=75, persist=15, sigmas=5.0, min_excess=0.2, trailing=noise.trailing_median(loss, 75)
    )
    assert own and handed == own
    # A baseline shorter than ``persist`` is widened: a median of the shorter one is not used.
    wrong = np.zeros(loss.size)
    widened = noise.disturbances(loss, fitted, baseline=10, persist=15, sigmas=5.0, min_excess=0.2, trailing=wrong)
    assert widened == noise.disturbances(loss, fitted, baseline=10, persist=15, sigmas=5.0, min_excess=0.2)
