"""N003 loss-magnitude: a loss scale that points to unnormalised targets or a summed loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks.loss_magnitude import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 500
STEPS = curves.steps(N)


def test_fires_on_a_regression_loss_in_the_thousands() -> None:
    # "Predict 10,000, output 0": a squared error around 1e8 that falls to 4e3.
    series = {
        "train/loss": (STEPS, curves.noisy(curves.decay(N, start=1e8, end=4e3), 0.02)),
        "val/loss": (
            curves.steps(25, 20),
            curves.noisy(curves.decay(25, start=9e7, end=5e3), 0.02),
        ),
    }
    (finding,) = curves.find(CHECK, series)
    assert (finding.code, finding.severity, finding.confidence) == (
        "N003",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert finding.tags == ("train/loss", "val/loss")
    assert (finding.first_step, finding.last_step) == (0, 499)
    assert finding.evidence["initial_level"]["train/loss"] > 5e7
    assert finding.evidence["median_level"]["train/loss"] > 1e3
    assert finding.evidence["threshold_level"] == 1000.0
    assert "thousands" in finding.message
    curves.assert_well_formed(finding)


def test_a_loss_that_starts_large_but_learns_its_scale_is_a_near_miss() -> None:
    # Starts in the thousands but spends most of the run below: median under the bar.
    loss = curves.decay(N, start=5e3, end=0.5, rate=30.0)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, large_level=0.4)
    assert finding.tags == ("train/loss",)


def test_an_explosion_is_not_a_design_error() -> None:
    # Small at the start, huge later: loss-divergence reports it, not this check.
    assert curves.find(CHECK, {"train/loss": (STEPS, curves.diverge(N, factor=1e6))}) == []


def test_a_validation_loss_first_evaluated_after_a_divergence_is_not_a_design_error() -> None:
    # A learning rate 10x too high: training starts at ln 10 and climbs 10x every 13 steps;
    # the first evaluation, at step 45, already sees 7e3.
    train = 2.3 * np.exp(np.linspace(0.0, 80.0, 450)) * np.exp(0.3 * curves.rng(1).standard_normal(450))
    val_steps = np.arange(45, 450, 45)
    series = {
        "train/loss": (curves.steps(450), train),
        "val/loss": (val_steps, np.interp(val_steps, curves.steps(450), train)),
    }
    assert curves.find(CHECK, series) == []
    # The same validation curve alone (no training loss to show a normal start) is judged
    # on its own start.
    (finding,) = curves.find(CHECK, {"val/loss": series["val/loss"]})
    assert finding.tags == ("val/loss",)


def test_a_large_first_loss_then_non_finite_is_a_low_confidence_note() -> None:
    # Raw targets around 3e5: the first loss is 1e11, the next overflows, then NaN.
    loss = np.full(200, np.nan)
    loss[:2] = [9.7e10, 1.7e28]
    (finding,) = curves.find(CHECK, {"loss": (curves.steps(200, 2, start=2), loss)})
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["finite_points"] == 2
    assert "only 2 finite points" in finding.message
    curves.assert_well_formed(finding)
    # Fewer points than min_points is what makes it a note: one point fewer needed, a warning.
    (finding,) = curves.find(CHECK, {"loss": (curves.steps(200, 2, start=2), loss)}, min_points=2)
    assert finding.severity is Severity.WARNING


@pytest.mark.parametrize("batch", [2, 8, 16])
def test_fires_when_the_first_loss_is_a_multiple_of_ln_c(batch: int) -> None:
    first = batch * math.log(10) * 1.01
    loss = curves.decay(N, start=first, end=0.3 * batch)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10)
    assert finding.evidence["multiple"] == batch
    assert finding.evidence["relative_gap"] == pytest.approx(0.01, abs=1e-6)
    assert finding.evidence["num_classes_source"] == "test"
    assert (finding.first_step, finding.last_step) == (0, 0)
    assert f"{batch} samples" in finding.message
    assert finding.confidence is (Confidence.LOW if batch <= 3 else Confidence.MEDIUM)


def test_a_first_loss_near_ln_c_is_the_normal_case() -> None:
    loss = curves.decay(N, start=math.log(10) * 1.02, end=0.2)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10) == []


def test_between_multiples_is_a_near_miss_until_the_tolerance_widens() -> None:
    loss = curves.decay(N, start=2.1 * math.log(10), end=0.2)  # 5% off 2 ln 10
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}, num_classes=10) == []
    (finding,) = curves.find(
        CHECK, {"train/loss": (STEPS, loss)}, num_classes=10, multiple_tolerance=0.06
    )
    assert finding.evidence["multiple"] == 2


def test_without_the_number_of_classes_no_multiple_is_claimed() -> None:
    loss = curves.decay(N, start=8 * math.log(10), end=0.2)
    assert curves.find(CHECK, {"train/loss": (STEPS, loss)}) == []


def test_healthy_noisy_run_is_silent() -> None:
    series = {
        "train/loss": (STEPS, curves.noisy(curves.decay(N, start=2.3), 0.05)),
        "val/loss": (curves.steps(25, 20), curves.noisy(curves.decay(25), 0.03, seed=2)),
    }
    assert curves.find(CHECK, series, num_classes=10) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["N003"]


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("tag", ["train/loss", "val/loss"])
def test_hostile_series_do_not_raise(name: str, tag: str) -> None:
    findings = curves.find(CHECK, {tag: curves.HOSTILE[name]}, num_classes=10)
    # Only the constant 1e30 series is a loss in the thousands.
    assert [f.tags for f in findings] == ([(tag,)] if name == "huge" else [])
    for finding in findings:
        curves.assert_well_formed(finding)


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_real_mmdetection_with_restarts_that_exploded_is_silent(real_logs) -> None:
    # R42 logs -7e28 in abandoned starts: an explosion (loss-divergence), not a scale choice.
    run = curves.real_run(
        real_logs
        / "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection"
        "/work_dirs/#13. 10082359_cascade_rcnn_x101_32x4d_swin_imgscale_720_PAFPN_loss_GIoULoss_"
        "labelsmoothing_1x_trash/None.log.json"
    )
    assert curves.run_check(CHECK, run) == []
