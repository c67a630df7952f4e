"""M006 metric-out-of-range: accuracy outside [0, 1], negative losses, AUC below 0.5."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.metric_out_of_range import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 50


def _healthy() -> dict[str, curves.Series]:
    return {
        "val/accuracy": (curves.steps(N), curves.noisy(curves.rise(N, 0.3, 0.95), 0.01)),
        "train/loss": (curves.steps(N), curves.noisy(curves.decay(N), 0.02)),
        "val/loss": (curves.steps(N), curves.noisy(curves.decay(N, 2.0, 0.3), 0.02)),
    }


def test_accuracy_above_one_is_an_error() -> None:
    accuracy = curves.rise(N, 0.3, 0.9)
    accuracy[[30, 41]] = 1.2
    (finding,) = curves.find(CHECK, {"val/accuracy": (curves.steps(N, 10), accuracy)})
    curves.assert_well_formed(finding)
    assert (finding.code, finding.severity, finding.confidence) == (
        "M006",
        Severity.ERROR,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (300, 410)
    assert finding.evidence["points_outside"] == 2 and finding.evidence["max"] == pytest.approx(1.2)
    assert "outside [0, 1] at 2 of 50 points" in finding.message


def test_negative_accuracy_is_an_error() -> None:
    accuracy = curves.rise(N, 0.3, 0.9)
    accuracy[5] = -0.1
    (finding,) = curves.find(CHECK, {"train/accuracy": (curves.steps(N), accuracy)})
    assert finding.severity is Severity.ERROR and finding.evidence["min"] == pytest.approx(-0.1)


def test_percent_accuracy_is_information() -> None:
    # mmdetection logs ``acc`` in percent.
    (finding,) = curves.find(
        CHECK, {"s0.acc": (curves.steps(N), 100.0 * curves.rise(N, 0.6, 0.97))}
    )
    assert finding.severity is Severity.INFO
    assert finding.evidence["unit"] == "percent" and finding.evidence["max"] > 90
    assert "percent" in finding.message


def test_accuracy_climbing_past_one_but_not_five_is_a_counting_error_not_percent() -> None:
    # Correct predictions summed over two batches instead of averaged: 0.6 -> 1.9.
    (finding,) = curves.find(CHECK, {"accuracy": (curves.steps(N), 2.0 * curves.rise(N, 0.3, 0.95))})
    assert finding.severity is Severity.ERROR
    assert finding.evidence["max"] == pytest.approx(1.9, abs=0.01)
    assert "percent" not in finding.message


def test_accuracy_beyond_one_hundred_is_an_error() -> None:
    accuracy = 100.0 * curves.rise(N, 0.6, 0.97)
    accuracy[-1] = 150.0
    (finding,) = curves.find(CHECK, {"acc": (curves.steps(N), accuracy)})
    assert finding.severity is Severity.ERROR and finding.evidence["points_outside"] == N


def test_loss_turning_negative_is_an_error_with_high_confidence() -> None:
    loss = curves.decay(N, 2.0, 0.1)
    loss[40:] = -np.logspace(3, 28, 10)  # the mmdetection explosion to -7e28
    (finding,) = curves.find(CHECK, {"loss": (curves.steps(N, 50), loss)})
    assert (finding.severity, finding.confidence) == (Severity.ERROR, Confidence.HIGH)
    assert (finding.first_step, finding.last_step) == (2000, 2450)
    assert finding.evidence["negative_points"] == 10 and finding.evidence["min"] == pytest.approx(
        -1e28
    )
    assert "turned negative at step 2,000" in finding.message


def test_loss_negative_from_the_start_is_medium_confidence() -> None:
    (finding,) = curves.find(CHECK, {"val/loss": (curves.steps(N), -curves.decay(N, 1.0, 3.0))})
    assert finding.confidence is Confidence.MEDIUM
    assert "from its first point" in finding.message


def test_signed_gan_terms_are_not_judged() -> None:
    # R24: Wasserstein critic and generator terms swing around zero by design.
    signed = np.sin(np.linspace(0, 20, N))
    assert (
        curves.find(
            CHECK,
            {
                "train_disc_loss": (curves.steps(N), signed),
                "train_gen_loss": (curves.steps(N), -signed),
            },
        )
        == []
    )


def test_near_miss_loss_rounding_below_zero() -> None:
    loss = curves.decay(N, 1.0, 0.0)
    loss[-5:] = -1e-7
    assert curves.find(CHECK, {"train/loss": (curves.steps(N), loss)}) == []
    (finding,) = curves.find(
        CHECK, {"train/loss": (curves.steps(N), loss)}, negative_tolerance=1e-8
    )
    assert finding.evidence["negative_points"] == 5


def test_auc_persistently_below_one_half() -> None:
    auc = np.concatenate([np.full(10, 0.5), np.full(10, 0.38)]) + 0.01 * curves.rng(
        0
    ).standard_normal(20)
    (finding,) = curves.find(CHECK, {"val/auroc": (curves.steps(20, 100), auc)})
    assert finding.severity is Severity.ERROR
    assert (finding.first_step, finding.last_step) == (1000, 1900)
    assert finding.evidence["median_second_half"] == pytest.approx(0.38, abs=0.01)
    assert "backwards" in finding.message


def test_auc_in_percent_below_fifty() -> None:
    auc = np.concatenate([np.full(10, 50.0), np.full(10, 38.0)])
    found = curves.find(CHECK, {"val/auroc": (curves.steps(20), auc)})
    assert [(f.severity, f.tags) for f in found] == [
        (Severity.INFO, ("val/auroc",)),
        (Severity.ERROR, ("val/auroc",)),
    ]
    assert found[1].evidence["median_second_half"] == pytest.approx(0.38)


def test_auc_around_one_half_is_quiet() -> None:
    auc = 0.5 + 0.02 * curves.rng(1).standard_normal(20)
    assert curves.find(CHECK, {"val/roc_auc": (curves.steps(20), auc)}) == []
    assert (
        len(
            curves.find(
                CHECK, {"val/roc_auc": (curves.steps(20), auc)}, auc_margin=0.0, auc_below_share=0.0
            )
        )
        == 1
    )


def test_auc_above_one_is_out_of_range() -> None:
    (finding,) = curves.find(CHECK, {"val_auc": (curves.steps(5), [0.6, 0.7, 1.3, 0.8, 0.8])})
    assert finding.severity is Severity.ERROR and finding.evidence["first_outside_step"] == 2


def test_quiet_on_a_healthy_run() -> None:
    assert curves.find(CHECK, _healthy()) == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        found = curves.run_check(CHECK, run)
        assert [f for f in found if f.severity is not Severity.INFO] == [], run.id


def test_percent_accuracy_of_a_real_mmdetection_run(real_logs) -> None:
    run = curves.real_run(
        real_logs / "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson"
        "/mmdetection/work_dirs/backbone_swin_rfp4step/None.log.json"
    )
    found = {finding.tags[0]: finding for finding in curves.run_check(CHECK, run)}
    assert set(found) == {"s0.acc", "s1.acc", "s2.acc"}
    assert all(finding.severity is Severity.INFO for finding in found.values())
    assert found["s0.acc"].evidence["max"] == pytest.approx(97.27, abs=0.01)


def _summed(n: int = 12, loss_end: float = 0.22, accuracy_scale: float = 6.0) -> dict[str, curves.Series]:
    """Per-batch accuracies summed over 6 batches (5.1 -> 5.8) while the loss falls: the
    Hugging Face compute_metrics bug."""
    epochs = curves.steps(n, 30, 30)
    return {
        "eval_accuracy": (epochs, accuracy_scale * curves.rise(n, 0.85, 0.965)),
        "eval_loss": (epochs, curves.decay(n, 1.2, loss_end)),
        "loss": (curves.steps(5 * n, 6, 6), curves.decay(5 * n, 2.2, 0.18)),
    }


def test_percent_reading_contradicted_by_the_loss_is_a_metric_bug() -> None:
    (finding,) = curves.find(CHECK, _summed())
    curves.assert_well_formed(finding)
    assert (finding.severity, finding.confidence) == (Severity.ERROR, Confidence.HIGH)
    assert finding.tags == ("eval_accuracy", "eval_loss")
    assert finding.evidence["percent_reading"] == pytest.approx(0.058, abs=0.002)
    assert finding.evidence["accuracy_bound"] > 0.6
    assert "miscounted" in finding.message


def test_percent_accuracy_that_agrees_with_its_loss_is_information() -> None:
    # 92% with a loss of 0.3 (bound 1 - 0.3/ln 2 = 57%): an honest percentage.
    epochs = curves.steps(N)
    series = {
        "val_acc": (epochs, 100.0 * curves.rise(N, 0.4, 0.92)),
        "val_loss": (epochs, curves.decay(N, 1.5, 0.3)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.evidence["unit"] == "percent"


def test_near_miss_at_the_loss_bound() -> None:
    # Loss 0.55 allows 21% and up; a reading of 12% lies 0.09 below (margin 0.1).
    epochs = curves.steps(N)
    series = {"val_acc": (epochs, np.full(N, 12.0) + 0.01 * np.arange(N) % 0.2), "val_loss": (epochs, np.full(N, 0.55))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO
    (finding,) = curves.find(CHECK, series, bound_margin=0.05)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)


def test_a_high_loss_bounds_nothing() -> None:
    # A hard 100-class task: 8% accuracy with loss 3.9 is consistent.
    epochs = curves.steps(N)
    series = {"val_acc": (epochs, 100.0 * curves.rise(N, 0.01, 0.08)), "val_loss": (epochs, curves.decay(N, 4.6, 3.9))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO


def test_auc_is_judged_by_role_whatever_its_name() -> None:
    epochs = curves.steps(N)
    auc = np.full(N, 0.3)
    run = curves.make_run({"m3": (epochs, auc)}, role_overrides={"auc": "m3"})
    (finding,) = curves.run_check(CHECK, run)
    assert finding.evidence["tag"] == "m3" and finding.evidence["median_second_half"] == pytest.approx(0.3)
