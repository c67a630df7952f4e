"""T001 loss-scale-imbalance: loss terms two orders of magnitude apart, or one dominating."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.loss_scale_imbalance import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves as c

N = 500


def term(start: float, end: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return c.steps(N, every=20, start=19), c.noisy(c.decay(N, start, end, 3.0), 0.05, seed=seed)


def findings(series, **params):
    found = c.find(CHECK, series, **params)
    for finding in found:
        c.assert_well_formed(finding)
    return found


def test_terms_two_orders_of_magnitude_apart_fire():
    series = {
        "loss_box": term(2.0, 1.0, 1),
        "loss_cls": term(1.0, 0.5, 2),
        "loss_aux": term(0.008, 0.004, 3),
    }
    [finding] = findings(series)
    assert (finding.code, finding.severity, finding.confidence) == (
        "T001",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert finding.tags == ("loss_box", "loss_aux")
    assert (finding.first_step, finding.last_step) == (19, 19 + 20 * (N - 1))
    assert finding.evidence["ratio_end"] == pytest.approx(250, rel=0.1)
    assert finding.evidence["ratio_start"] > 100
    assert "loss_aux is 2" in finding.message and "threshold 100x" in finding.message


def test_detectron2_like_terms_within_an_order_of_magnitude_do_not_warn():
    series = {
        "loss_cls": term(0.7, 0.3, 1),
        "loss_box_reg": term(0.8, 0.6, 2),
        "loss_mask": term(0.6, 0.2, 3),
        "loss_rpn_cls": term(0.06, 0.03, 4),
        "loss_rpn_loc": term(0.05, 0.03, 5),
        "total_loss": term(2.2, 1.2, 6),
    }
    # The RPN terms sit 20x below the box term: a note at most.
    assert [f.severity for f in findings(series)] in ([], [Severity.INFO])
    assert findings(series, note_ratio=30.0) == []


def test_near_miss_just_under_a_hundredfold_and_a_lower_threshold_flips_it():
    series = {"loss_box": term(2.0, 1.0, 1), "loss_aux": term(0.022, 0.011, 2)}
    [note] = findings(series)  # 91x: a note, not a warning
    assert (note.severity, note.confidence) == (Severity.INFO, Confidence.LOW)
    [finding] = findings(series, ratio_threshold=50.0)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["ratio_threshold"] == 50.0


def test_a_learned_term_is_left_out():
    # Like detectron2's RPN objectness after fine-tuning: hundreds of times smaller than the
    # other term, but falling 30x: it is being solved, not drowned out.
    steps = c.steps(N, every=20, start=19)
    series = {
        "loss_box": term(1.0, 0.5, 1),
        "loss_rpn_cls": (steps, c.noisy(c.decay(N, 0.005, 0.00002, 6.0), 0.05, seed=2)),
    }
    assert findings(series) == []
    [finding] = findings(series, learned_factor=1e6)
    assert finding.evidence["smallest_term"] == "loss_rpn_cls"
    assert finding.evidence["learned_terms_left_out"] == []


def test_one_dominant_term_fires():
    series = {
        "loss_recon": term(40.0, 20.0, 1),
        "loss_kl": term(1.5, 1.0, 2),
        "loss_perc": term(1.2, 0.8, 3),
    }
    [finding] = findings(series)
    assert finding.evidence["largest_share_end"] > 0.9
    assert finding.tags[0] == "loss_recon"
    assert "of the summed loss terms" in finding.message


def test_signed_terms_of_a_gan_are_not_judged():
    steps = c.steps(N)
    series = {
        "train_disc_loss": (steps, 0.3 * np.sin(np.arange(N) / 7.0)),
        "train_gen_loss": (steps, 100.0 + np.cos(np.arange(N) / 5.0)),
    }
    assert findings(series) == []


def test_a_term_logged_per_step_and_per_epoch_counts_once():
    series = {
        "train_loss_cross_step": term(2.0, 1.0, 1),
        "train_loss_cross_epoch": term(2.0, 1.0, 2),
    }
    assert findings(series) == []
    assert findings({**series, "train_loss_aux_step": term(0.01, 0.005, 3)})[0].evidence[
        "term_medians_end"
    ].keys() == {
        "train_loss_cross_step",
        "train_loss_aux_step",
    }


@pytest.mark.parametrize(
    "relative",
    [
        "Asad-Ismail__SMN__detectron2-maskrcnn/output/metrics.json",
        "Elbhnasy__Medical_Waste_Detection_Detectron2__detectron2-frcnn-plateau/output/metrics.json",
        "1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp/results.csv",
        "DeepPicEI__Elderly-fall-detection__ultralytics-yolo11/runs/train/exp/results.csv",
        "AIRI-Institute__genrisk__lightning-wgan/lightning_logs/version_10/metrics.csv",
        (
            "boostcampaitech6__level2-objectdetection-cv-02__mmengine-codetr-scalars/work_dirs/co-detr/"
            "20240116_160126/vis_data/scalars.json"
        ),
    ],
)
def test_real_healthy_multi_task_runs_do_not_warn(real_logs, relative):
    # Detectron2's RPN terms sit 10-30x below its box term, Co-DETR spans 83x: a note at most.
    found = c.run_check(CHECK, c.real_run(real_logs / relative))
    assert [f for f in found if f.severity is not Severity.INFO] == []


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id


def test_yolo_terms_at_their_ordinary_ratios_are_quiet():
    # box ~0.05, obj ~0.03, cls ~0.02 (YOLOv5 per-step terms with heavy-tailed batches).
    n = 1500
    series = {
        f"train/{name}_loss": (c.steps(n), c.heavy_tailed(c.decay(n, 2 * level, level, 3.0), 0.3, 0.01, seed=k))
        for k, (name, level) in enumerate((("box", 0.05), ("obj", 0.03), ("cls", 0.02)))
    }
    assert findings(series) == []


def test_multitask_terms_a_thousandfold_apart_warn():
    series = {"loss_a": term(1.4, 1.35, 1), "loss_b": term(1e5, 800.0, 2)}
    [finding] = findings(series)
    assert (finding.severity, finding.evidence["smallest_term"]) == (Severity.WARNING, "loss_a")


def test_a_large_term_that_fell_tenfold_still_drowns_the_others():
    # A box loss in pixels weighted 100x: 3000 -> 200 over training, beside cls and dfl
    # terms near 1.  It fell 15x (learned), yet it is the one that drowns the others.
    steps = c.steps(N, every=20, start=19)
    series = {
        "train/box_loss": (steps, c.noisy(c.decay(N, 3000.0, 200.0, 5.0), 0.05, seed=1)),
        "train/cls_loss": term(1.2, 0.6, 2),
        "train/dfl_loss": term(1.5, 1.0, 3),
    }
    [finding] = findings(series)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["largest_term"] == "train/box_loss"


def _box_in_pixels(box_start: float, box_end: float) -> dict[str, c.Series]:
    """20 epochs of a detector whose box loss is in pixels: it starts far above the class
    and DFL terms (about 1.4 and 2.2) and the optimiser drives it down first."""
    epochs = c.steps(20, start=1)
    return {
        "train/box_loss": (epochs, c.noisy(c.decay(20, box_start, box_end, 6.0), 0.02, seed=1)),
        "train/cls_loss": (epochs, c.noisy(c.decay(20, 1.42, 0.74, 3.0), 0.01, seed=2)),
        "train/dfl_loss": (epochs, c.noisy(c.decay(20, 2.19, 1.13, 4.0), 0.01, seed=3)),
    }


def test_a_term_that_drowned_the_others_at_the_start_only_is_a_note():
    # 144 -> 5.8: over 90% of the summed terms at the start, still most of it at the end.
    [finding] = findings(_box_in_pixels(144.0, 5.8))
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)
    assert finding.evidence["largest_term"] == "train/box_loss"
    assert finding.evidence["largest_share_start"] > 0.9 and 0.5 < finding.evidence["largest_share_end"] < 0.9
    assert "at the start" in finding.message


def test_near_miss_a_term_large_at_the_start_that_ends_balanced_is_quiet():
    # The same box term ending near 1 is no longer most of the sum: the terms are balanced.
    assert findings(_box_in_pixels(144.0, 0.6)) == []
    # A box term 10x its siblings at the start (70% of the sum) is the ordinary spread.
    assert findings(_box_in_pixels(25.0, 5.8)) == []


def test_dominant_share_override_makes_the_early_drowning_a_warning():
    [finding] = findings(_box_in_pixels(144.0, 5.8), dominant_share=0.6)
    assert finding.severity is Severity.WARNING
