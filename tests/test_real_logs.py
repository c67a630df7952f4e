"""What rundoctor must and must not say about real training logs from public repositories.

../shared/real_logs/INVENTORY.md describes each run's curves (R01..R48); this file writes down
the diagnosis a practitioner reads in them, so a change to a reader, a role or a threshold that
loses one of these calls, or raises a false alarm on a healthy run, fails here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from rundoctor.config import Settings
from rundoctor.discover import load_runs
from rundoctor.engine import diagnose
from rundoctor.findings import Finding, Severity
from rundoctor.report import Report
from tests.conftest import REAL_LOGS

HF_SWEEP = "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep"
YOLOV5_NAN = "1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train"
MMDET = "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs"
KERAS_TF1 = "AhmedImtiazPrio__irfanet-10__keras-tf1-tensorboard-overfit"
KERAS_TF2 = "TheCodeheadMT__TensorBoard-Tutorial__keras-tf2-tensorboard/archive/experiments"

# A key names a run id below real_logs/, or a folder holding runs (every run below it).
# Run -> checks that must report it at warning or above.
MUST_REPORT: dict[str, set[str]] = {
    # R01-R04: peak lr 5e-6, loss stays at ln 4, eval accuracy at chance for 4 classes.
    **{f"{HF_SWEEP}/runs/run{i}": {"no-learning", "chance-level"} for i in range(4)},
    # R12/R13: NaN losses mid-run in both of its formats.
    f"{YOLOV5_NAN}/exp2": {"non-finite"},
    f"{YOLOV5_NAN}/exp2/results.csv": {"non-finite"},
    # R22, R27, R29, R33, R34, R38, R41: validation loss turns up while training falls.
    "Abhinaya35__dental-tooth-detection-yolov8__yolov8-ultralytics-short": {"overfitting"},
    "Multimodal-Emotion-Recognition-Group__image_bind__lightning-val-acc-flat": {"overfitting"},
    "BurakErguvn__Car-Prediction-CNN-Model__keras-csvlogger-cnn": {"overfitting"},
    f"{KERAS_TF1}/logs191017": {"overfitting"},
    f"{KERAS_TF1}/logs221017": {"overfitting"},
    "aigoncharov__trainer_state_viz__hf-trainer-state-overfit": {"overfitting"},
    "P4P4N1CK__whisper-large-v2-japanese-5k-steps__hf-trainer-whisper-overfit": {"overfitting"},
    # R23: the three validation losses are NaN at every epoch.
    "AJ-C22__CourtVision__yolov8-val-loss-all-nan": {"non-finite"},
    # R32: five epochs at 0.8333 accuracy, loss down 0.3%.
    "olegkleiman__tf_keras__keras-tf2-stalled": {"no-learning", "chance-level"},
    # R42: the loss explodes to -7e28 and Infinity.
    f"{MMDET}/#13. 10082359_cascade_rcnn_x101_32x4d_swin_imgscale_720_PAFPN_loss_GIoULoss_labelsmoothing_1x_trash": {
        "loss-divergence"
    },
}

# Run -> checks of which at least one must report it, at any severity: stalls a practitioner
# wants to hear about, where the logs alone cannot tell a flat noisy loss from a converged one
# with enough certainty for a warning.
MUST_NOTE: dict[str, set[str]] = {
    # R43: flat at 7.3-7.9 for 13 epochs at a constant lr of 0.02.
    f"{MMDET}/centernet_resnet18_dcnv2_140e_trash": {"loss-plateau", "no-learning"},
    # R30: the validation loss has not improved for the last 3 of 10 epochs and creeps up
    # +8.5% over its smoothed minimum, only 2.35 noise sigmas, while training fell 27.5%: a
    # mild late creep that early stopping handles, labelled overfitting at any severity.
    f"{KERAS_TF2}/Exp_0_adam_200_0.2": {"overfitting"},
}

# Runs a practitioner calls healthy (or that are too short to judge): nothing at warning or above.
NO_WARNING: tuple[str, ...] = (
    f"{HF_SWEEP}/runs/run4",  # R05, the healthy reference of the sweep
    f"{HF_SWEEP}/results/checkpoint-1200",  # R06
    "Asad-Ismail__SMN__detectron2-maskrcnn/output",  # R07/R08: restarts, info at most
    "Kevindic0214__detectron2_training__detectron2-maskrcnn-short",  # R09/R10
    f"{YOLOV5_NAN}/exp",  # R14/R15
    "Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile",  # R16/R17
    "AstilePeter__Raspberry-Quince-Detector__yolov5",  # R18/R19
    "DeepPicEI__Elderly-fall-detection__ultralytics-yolo11",  # R20/R21: an early val spike
    "AIRI-Institute__genrisk__lightning-wgan",  # R24: GAN losses, no trend expected
    "0Xero7__slm_training__lightning-lm-long",  # R26
    f"{KERAS_TF2}/Exp_2_sgd_200_0.2",  # R31
    f"{KERAS_TF1}/training.log",  # R35: three epochs
    "10844110__t5-summarization-demo__hf-trainer-t5-plateau",  # R36/R37: flat under a decaying lr
    "NijatZeynalov__mT5-based-azerbaijani-news-summarize__hf-trainer-mt5-long",  # R39
    "paulohenriquecrs__RoBERTa_SEQ_CLS_LoRA_Portuguese__hf-trainer-lora",  # R40
    f"{MMDET}/backbone_swin_rfp4step",  # R44
    "boostcampaitech6__level2-objectdetection-cv-02__mmengine-codetr-scalars",  # R45
    "10tanmay100__DEEPCNNCLASSIFIER__mlflow-filestore-single-epoch",  # R46: one point
    "DCBIA-OrthoLab__ShapeAXI__lightning-tb-hp-metric-only",  # R47: hp_metric only
    "MacCzarnecki__Deeplab__tensorboardx-empty-run",  # R48: header-only file
)


@pytest.fixture(scope="module")
def report() -> Report:
    if not REAL_LOGS.is_dir():
        pytest.skip(f"real logs not found at {REAL_LOGS} (../shared/real_logs beside the checkout)")
    runs, errors = load_runs([REAL_LOGS])
    return diagnose(runs, errors, Settings())


def _runs_matching(report: Report, prefix: str) -> list[str]:
    relative = [(run.id, run.id.removeprefix("real_logs/")) for run in report.runs]
    ids = [run_id for run_id, rel in relative if rel == prefix or rel.startswith(prefix + "/")]
    assert ids, f"no run id starts with {prefix!r}"
    return ids


def _serious(report: Report, run_id: str) -> list[Finding]:
    return [f for f in report.findings_for(run_id) if f.severity.rank >= Severity.WARNING.rank]


def test_every_run_is_read_and_nothing_is_an_error(report: Report) -> None:
    # INVENTORY: 48 run-format entries; the empty and hp_metric-only files are runs, not errors.
    assert len(report.runs) == 48
    assert report.errors == ()
    assert not [o for o in report.outcomes if o.status.value == "error"]


def test_tensorboard_points_match_the_inventory(report: Report) -> None:
    # Every numeric scalar point of both encodings, summed over the 20 TensorBoard rows.
    rows = re.findall(r"^\| R\d+ \| `[^`]+` \| TensorBoard[^|]*\| \d+ \| (\d+) \|",
                      (REAL_LOGS / "INVENTORY.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(rows) == 20
    tensorboard = [run for run in report.runs if run.format == "tensorboard"]
    assert len(tensorboard) == 20
    assert sum(run.points for run in tensorboard) == sum(map(int, rows))


@pytest.mark.parametrize("prefix, checks", MUST_REPORT.items(), ids=list(MUST_REPORT))
def test_problem_runs_are_diagnosed(report: Report, prefix: str, checks: set[str]) -> None:
    for run_id in _runs_matching(report, prefix):
        fired = {f.check for f in _serious(report, run_id)}
        assert checks <= fired, f"{run_id}: expected {sorted(checks)}, got {sorted(fired)}"


@pytest.mark.parametrize("prefix, checks", MUST_NOTE.items(), ids=list(MUST_NOTE))
def test_stalled_runs_are_noted(report: Report, prefix: str, checks: set[str]) -> None:
    for run_id in _runs_matching(report, prefix):
        fired = {f.check for f in report.active_findings_for(run_id)}
        assert checks & fired, f"{run_id}: expected one of {sorted(checks)}, got {sorted(fired)}"


@pytest.mark.parametrize("prefix", NO_WARNING)
def test_healthy_runs_get_no_warning(report: Report, prefix: str) -> None:
    for run_id in _runs_matching(report, prefix):
        assert _serious(report, run_id) == [], run_id


def test_findings_quote_their_evidence(report: Report) -> None:
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        by_check[finding.check].append(finding)
        assert finding.message and finding.advice and finding.evidence, finding
        assert any(ch.isdigit() for ch in finding.message), finding.message
    assert {"no-learning", "overfitting", "non-finite", "loss-divergence"} <= set(by_check)


def test_paths_in_ids_are_relative(report: Report) -> None:
    assert all(not Path(run.id).is_absolute() and run.id.startswith("real_logs/") for run in report.runs)
