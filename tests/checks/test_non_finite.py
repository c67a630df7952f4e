"""N001 non-finite: NaN or infinite values in losses, metrics, learning rate, gradient norm."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.non_finite import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 1_000
EVERY = 10
STEPS = curves.steps(N, EVERY)


def _healthy() -> np.ndarray:
    return curves.noisy(curves.decay(N), 0.02)


def test_permanent_nan_is_an_error_with_the_last_finite_value() -> None:
    loss = curves.with_nan(_healthy(), at=600)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)})
    assert (finding.code, finding.severity, finding.confidence) == (
        "N001",
        Severity.ERROR,
        Confidence.HIGH,
    )
    assert finding.tags == ("train/loss",)
    assert (finding.first_step, finding.last_step) == (6_000, 9_990)
    evidence = finding.evidence
    assert evidence["permanent"] is True and evidence["recovered_step"] is None
    assert evidence["bad_points"] == 400 and evidence["nan"] == 400
    assert evidence["last_finite"] == pytest.approx(loss[599])
    assert evidence["last_finite_step"] == 5_990
    assert "never recovered" in finding.message and "step 6,000" in finding.message
    curves.assert_well_formed(finding)


def test_transient_nan_is_a_warning_and_says_training_went_on() -> None:
    loss = curves.with_nan(_healthy(), at=500, until=503)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)})
    assert finding.severity is Severity.WARNING
    assert (finding.first_step, finding.last_step) == (5_000, 5_020)
    assert finding.evidence["permanent"] is False
    assert finding.evidence["recovered_step"] == 5_030
    assert finding.evidence["bad_points"] == 3
    assert "finite again" in finding.message


def test_a_loss_that_recovers_once_and_then_ends_nan_never_recovered() -> None:
    loss = curves.with_nan(_healthy(), at=700)
    loss[400] = np.inf  # a transient infinity first, then NaN to the end
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)})
    assert finding.severity is Severity.ERROR
    assert finding.evidence["permanent"] is True and finding.evidence["final_bad_step"] == 7_000
    assert finding.evidence["first_bad_step"] == 4_000 and finding.evidence["recovered_step"] == 4_010
    assert "turned non-finite at step 7,000 and never recovered" in finding.message
    assert "first seen at step 4,000" in finding.message and "finite again" not in finding.message


def test_near_miss_a_loss_whose_last_point_is_finite_again_recovered() -> None:
    loss = curves.with_nan(_healthy(), at=700, until=N - 1)
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, loss)})
    assert finding.severity is Severity.WARNING and finding.evidence["final_bad_step"] is None


def test_infinities_are_counted_by_sign() -> None:
    loss = _healthy()
    loss[[100, 101]] = np.inf
    loss[102] = -np.inf
    (finding,) = curves.find(CHECK, {"val/loss": (STEPS, loss)})
    assert (finding.evidence["pos_inf"], finding.evidence["neg_inf"], finding.evidence["nan"]) == (
        2,
        1,
        0,
    )
    assert "+inf x2, -inf x1" in finding.message


def test_a_validation_loss_never_computed_is_its_own_message() -> None:
    series = {
        "train/loss": (STEPS, _healthy()),
        "val/loss": (curves.steps(50, 200), np.full(50, np.nan)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("val/loss",)
    assert finding.severity is Severity.WARNING  # a missing signal, training itself is fine
    assert finding.evidence["never_finite"] is True
    assert (finding.first_step, finding.last_step) == (0, 9_800)
    assert "never computed" in finding.message and "every one of 50" in finding.message


def test_a_training_loss_never_finite_is_an_error() -> None:
    (finding,) = curves.find(CHECK, {"train/loss": (STEPS, np.full(N, np.nan))})
    assert finding.severity is Severity.ERROR and finding.evidence["never_finite"] is True


def test_tags_failing_at_one_step_are_one_finding() -> None:
    series = {
        tag: (STEPS, curves.with_nan(_healthy(), at=700))
        for tag in ("train/loss", "train/loss_cls", "train/loss_box", "val/accuracy")
    }
    series["train/learning_rate"] = (STEPS, np.full(N, 1e-3))
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("train/loss", "train/loss_cls", "train/loss_box", "val/accuracy")
    assert finding.evidence["bad_points"] == 4 * 300
    assert finding.evidence["bad_points_by_tag"] == dict.fromkeys(finding.tags, 300)
    assert finding.message.startswith("4 series (train/loss, train/loss_cls")
    curves.assert_well_formed(finding)


def test_group_size_param_splits_the_group() -> None:
    series = {
        tag: (STEPS, curves.with_nan(_healthy(), at=700)) for tag in ("train/loss", "val/loss")
    }
    assert len(curves.find(CHECK, series)) == 1
    split = curves.find(CHECK, series, group_min_tags=3)
    assert sorted(finding.tags for finding in split) == [("train/loss",), ("val/loss",)]


def test_tags_failing_at_different_steps_are_separate() -> None:
    series = {
        "train/loss": (STEPS, curves.with_nan(_healthy(), at=700)),
        "val/loss": (STEPS, curves.with_nan(_healthy(), at=800)),
    }
    findings = curves.find(CHECK, series)
    assert sorted(f.first_step for f in findings) == [7_000, 8_000]


def test_a_few_infinite_gradient_norms_are_info() -> None:
    # fp16 loss scaling logs an infinite norm for each step it skips.
    norms = np.abs(curves.noisy(np.ones(N), 0.2))
    norms[[3, 40]] = np.inf
    series = {"train/loss": (STEPS, _healthy()), "train/grad_norm": (STEPS, norms)}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.tags == ("train/grad_norm",)


def _blown_up_norms(height: float, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Gradient norms infinite at steps 4,000-4,020 while the heavy-tailed per-batch loss
    around them reaches ``height`` times its level, then training goes on."""
    loss = curves.heavy_tailed(curves.decay(N, 2.3, 0.3), spread=0.5, outliers=0.02, seed=seed)
    norms = np.abs(curves.noisy(np.ones(N), 0.2, seed))
    norms[400:403] = np.inf
    loss[399:403] = loss[399:403] * np.array([height / 10, height / 3, height, height / 2])
    return {"train/loss": (STEPS, loss), "train/grad_norm": (STEPS, norms)}


def test_infinite_gradient_norms_where_the_loss_blows_up_are_a_warning() -> None:
    (finding,) = curves.find(CHECK, _blown_up_norms(1e9))
    assert (finding.severity, finding.tags) == (Severity.WARNING, ("train/grad_norm",))
    assert (finding.first_step, finding.last_step) == (4_000, 4_020)
    evidence = finding.evidence
    assert evidence["loss_blow_up_tag"] == "train/loss" and evidence["loss_blow_up_step"] == 4_010
    assert evidence["loss_blow_up_factor"] > 1e8
    assert "train/loss reached" in finding.message and "blew up" in finding.message
    curves.assert_well_formed(finding)


def test_a_loss_that_holds_while_norms_are_infinite_leaves_them_info() -> None:
    # Heavy batches of 10-50x the level are the normal texture of the loss, not a blow-up.
    for seed in range(3):
        (finding,) = curves.find(CHECK, _blown_up_norms(50.0, seed))
        assert finding.severity is Severity.INFO and "loss_blow_up_tag" not in finding.evidence


def test_near_miss_below_the_blow_up_factor_then_override() -> None:
    series = _blown_up_norms(500.0)
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO
    (finding,) = curves.find(CHECK, series, blow_up_factor=100.0)
    assert finding.severity is Severity.WARNING and finding.evidence["threshold_blow_up"] == 100.0


def test_a_loss_blown_up_in_a_restarted_segment_counts() -> None:
    # mmdetection appends each start to one log: the first start's norms go infinite while
    # its loss runs off to -1e28; the start written after it is healthy over the same steps.
    steps = curves.restarted((0, 30), (0, 300))
    first = np.concatenate((np.full(10, 1.0), -np.logspace(3, 28, 20)))
    loss = np.concatenate((first, curves.decay(300, 2.0, 0.5)))
    norms = np.concatenate((np.where(np.arange(30) >= 12, np.inf, 5.0), np.full(300, 5.0)))
    (finding,) = curves.find(CHECK, {"loss": (steps, loss), "grad_norm": (steps, norms)})
    assert finding.severity is Severity.WARNING and finding.evidence["loss_blow_up_value"] < -1e20


def test_a_nan_written_over_by_a_resume_is_still_reported() -> None:
    # Steps 0..599, then a resume from step 400 rewrites 400..599 and goes on: the NaN at
    # step 500 of the first attempt is gone from the by-step view but happened.
    first = curves.with_nan(curves.decay(600), at=500, until=520)
    steps = curves.restarted((0, 600), (400, 1_000))
    values = np.concatenate((first, curves.decay(600)))
    (finding,) = curves.find(CHECK, {"train/loss": (steps, values)})
    assert finding.first_step == 500 and finding.evidence["bad_points"] == 20
    assert finding.evidence["permanent"] is False


def test_healthy_noisy_run_is_silent() -> None:
    series = {
        "train/loss": (STEPS, _healthy()),
        "val/loss": (curves.steps(50, 200), curves.noisy(curves.decay(50), 0.05, seed=1)),
        "val/accuracy": (curves.steps(50, 200), curves.rise(50)),
        "train/learning_rate": (STEPS, np.full(N, 1e-3)),
    }
    assert curves.find(CHECK, series) == []


def test_huge_but_finite_values_are_not_this_checks_business() -> None:
    assert curves.find(CHECK, {"train/loss": (STEPS, np.full(N, 1e300))}) == []


def test_a_tag_of_unknown_role_that_turns_nan_for_good_is_a_warning() -> None:
    kl = curves.with_nan(curves.noisy(curves.decay(N, 0.5, 0.1), 0.02), at=700)
    series = {"train/loss": (STEPS, _healthy()), "kl_term": (STEPS, kl)}
    (finding,) = curves.find(CHECK, series)
    assert finding.tags == ("kl_term",) and finding.severity is Severity.WARNING
    assert "never recovered" in finding.message


def test_a_tag_of_unknown_role_with_a_transient_nan_is_info() -> None:
    reward = curves.noisy(np.linspace(0.0, 1.0, N), 0.02) + 1.0
    reward[[300, 301]] = np.nan
    series = {"train/loss": (STEPS, _healthy()), "reward": (STEPS, reward)}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and "finite again afterwards" in finding.message


def test_a_loss_and_an_unknown_tag_failing_together_take_the_loss_severity() -> None:
    series = {
        "train/loss": (STEPS, curves.with_nan(_healthy(), at=500)),
        "kl_term": (STEPS, curves.with_nan(np.ones(N), at=500)),
    }
    (finding,) = curves.find(CHECK, series)
    assert set(finding.tags) == {"train/loss", "kl_term"} and finding.severity is Severity.ERROR


def test_unwatched_roles_are_ignored() -> None:
    # Bookkeeping series (epoch, runtime) may well be NaN; nothing is diagnosed from them.
    series = {"train/loss": (STEPS, _healthy()), "epoch": (STEPS, np.full(N, np.nan))}
    assert curves.find(CHECK, series) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["N001"]


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize(
    "tag", ["train/loss", "val/accuracy", "train/learning_rate", "train/grad_norm"]
)
def test_hostile_series_do_not_raise(name: str, tag: str) -> None:
    steps, values = curves.HOSTILE[name]
    findings = curves.find(CHECK, {tag: (steps, values)})
    expected = int(np.count_nonzero(~np.isfinite(np.asarray(values, dtype=float))))
    assert sum(f.evidence["bad_points"] for f in findings) == expected
    for finding in findings:
        curves.assert_well_formed(finding)


YOLO_NAN = "1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp2/results.csv"
YOLO_VAL_NAN = "AJ-C22__CourtVision__yolov8-val-loss-all-nan/runs/detect/train/results.csv"


def test_real_yolov5_transient_nans(real_logs) -> None:
    # R12: NaN in train/box_loss and train/obj_loss at epochs 167, 176, 177 and in the
    # validation box/obj losses at 170 and 177; training went on each time.
    findings = curves.run_check(CHECK, curves.real_run(real_logs / YOLO_NAN))
    by_tags = {f.tags: f for f in findings}
    assert set(by_tags) == {("train/box_loss", "train/obj_loss"), ("val/box_loss", "val/obj_loss")}
    train = by_tags[("train/box_loss", "train/obj_loss")]
    assert (train.severity, train.first_step, train.last_step) == (Severity.WARNING, 167, 177)
    assert train.evidence["bad_points"] == 6 and train.evidence["permanent"] is False
    assert by_tags[("val/box_loss", "val/obj_loss")].first_step == 170


def test_real_yolov8_validation_loss_all_nan(real_logs) -> None:
    # R23: the three validation losses are NaN in all 225 epochs.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / YOLO_VAL_NAN))
    assert finding.tags == ("val/box_loss", "val/cls_loss", "val/dfl_loss")
    assert finding.evidence["never_finite"] is True and finding.evidence["bad_points"] == 675
    assert "never computed" in finding.message


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


MMDET_BLOW_UP = (
    "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/"
    "#13. 10082359_cascade_rcnn_x101_32x4d_swin_imgscale_720_PAFPN_loss_GIoULoss_labelsmoothing_1x_trash/None.log.json"
)


def test_real_mmdet_infinite_norms_during_the_blow_up_are_a_warning(real_logs) -> None:
    # R42: grad_norm is +inf at iterations 100-150 of starts whose loss runs off to -7e28.
    (finding,) = curves.run_check(CHECK, curves.real_run(real_logs / MMDET_BLOW_UP))
    assert (finding.severity, finding.tags) == (Severity.WARNING, ("grad_norm",))
    assert finding.evidence["loss_blow_up_tag"] == "loss"
    assert finding.evidence["loss_blow_up_value"] < -1e27
