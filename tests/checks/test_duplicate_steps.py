"""L001 duplicate-steps: steps that go back or repeat in the raw log order."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.duplicate_steps import CHECK, tag_log
from rundoctor.findings import Confidence, Severity
from rundoctor.series import NoteKind, ReadNote
from tests import curves as c


def findings(series, notes=(), **params):
    run = c.make_run(series)
    run.notes.extend(notes)
    found = c.run_check(CHECK, run, CHECK.make_params(params))
    for finding in found:
        c.assert_well_formed(finding)
    return found


def three_starts():
    """detectron2 with three starts appended: 19..299, 19..299, 19..999 every 20 iterations."""
    steps = c.restarted((19, 300), (19, 300), (19, 1000), every=20)
    return {
        "total_loss": (steps, c.noisy(np.ones(steps.size), 0.1, seed=1)),
        "loss_cls": (steps, c.noisy(np.ones(steps.size), 0.1, seed=2)),
        "lr": (steps, np.full(steps.size, 0.001)),
    }


NOTE = ReadNote(
    NoteKind.DUPLICATED, "metrics.json", "iteration goes back from 299 to 19", "line 16", 1
)


def test_restarts_fire_once_per_run_with_their_segments():
    [finding] = findings(three_starts(), notes=[NOTE])
    assert finding.code == "L001"
    assert set(finding.tags) == {"total_loss", "loss_cls", "lr"}
    assert (finding.first_step, finding.last_step) == (19, 299)
    evidence = finding.evidence
    assert [(s["first_step"], s["last_step"], s["points"]) for s in evidence["segments"]] == [
        (19, 299, 15),
        (19, 299, 15),
        (19, 999, 50),
    ]
    assert evidence["step_goes_back"] == 2
    assert evidence["repeated_points"] == 3 * 30
    assert evidence["reader_notes"][0]["location"] == "line 16"
    assert "19..299, 19..299, 19..999" in finding.message
    assert "last-written point" in finding.message
    # The last start covers every step of the earlier ones: the analysis is one timeline.
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.HIGH)
    assert evidence["stitched_tags"] == [] and evidence["stale_steps"] is None


def test_a_restart_that_stops_short_of_an_abandoned_attempt_is_a_warning():
    steps = c.restarted((0, 1000), (0, 300), every=10)
    series = {"loss": (steps, np.ones(steps.size)), "acc": (steps, np.ones(steps.size))}
    [finding] = findings(series)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert (finding.first_step, finding.last_step) == (300, 990)
    assert finding.evidence["stale_steps"] == [300, 990]
    assert finding.evidence["stitched_tags"] == ["loss", "acc"]
    assert "tail of an abandoned one (steps 300..990)" in finding.message


def test_a_resume_from_a_mid_run_checkpoint_is_information():
    steps = c.restarted((0, 400), (300, 700))
    [finding] = findings({"train/loss": (steps, c.decay(steps.size))})
    assert finding.severity == Severity.INFO
    assert finding.evidence["repeated_points"] == 100


def test_consecutive_resumed_files_without_overlap_do_not_fire():
    # YOLOv5 resumed four times: epochs 0-3, 4-15, 16-18, 19-110, 111-299 in five files.
    steps = c.restarted((0, 4), (4, 16), (16, 19), (19, 111), (111, 300))
    assert (
        findings({"train/box_loss": (steps, c.decay(300)), "val/box_loss": (steps, c.decay(300))})
        == []
    )


def test_a_single_repeated_final_step_is_harmless():
    # Ultralytics writes the final validation a second time: 101 points for 100 epochs.
    steps = np.append(np.arange(1, 101), 100)
    series = {
        "metrics/mAP50(B)": (steps, c.rise(101)),
        "train/box_loss": (np.arange(1, 101), c.decay(100)),
    }
    assert findings(series) == []
    [finding] = findings(series, max_harmless_repeats=0)
    assert finding.severity == Severity.INFO
    assert finding.tags == ("metrics/mAP50(B)",)
    assert (finding.first_step, finding.last_step) == (100, 100)


def test_every_step_written_twice_in_place_is_information():
    steps = np.repeat(np.arange(50), 2)
    [finding] = findings({"loss": (steps, np.repeat(c.decay(50), 2))})
    assert finding.severity == Severity.INFO
    assert finding.evidence["repeated_points"] == 50
    assert finding.evidence["step_goes_back"] == 0
    assert "written more than once" in finding.message


def test_steps_out_of_order_without_repeats_are_information():
    [finding] = findings({"loss": (np.array([0, 1, 2, 10, 11, 5, 6]), np.ones(7))})
    assert finding.severity == Severity.INFO
    assert finding.evidence["repeated_points"] == 0
    assert "only the order is unusual" in finding.message


def test_bookkeeping_series_that_repeat_by_design_are_ignored():
    # Hugging Face writes ``epoch`` into its train record and its eval record at one step.
    steps = np.repeat(np.arange(100, 1300, 100), 2)
    series = {
        "train/epoch": (steps, steps / 1200),
        "train/loss": (np.arange(100, 1300, 100), c.decay(12)),
    }
    assert findings(series) == []


def test_a_reader_note_alone_is_not_a_finding():
    assert findings({"loss": (np.arange(10), c.decay(10))}, notes=[NOTE]) == []


def test_tag_log_segments():
    log = tag_log("x", np.array([5, 6, 7, 2, 3, 9]))
    assert log is not None
    assert log.segments == ((5, 7, 3), (2, 9, 3))
    assert (log.backs, log.repeated) == (1, 0)
    assert tag_log("x", np.arange(10)) is None


def test_two_writers_list_at_most_ten_segments():
    writers = np.ravel(np.column_stack([np.arange(50), np.arange(50, 100)]))  # 0 50 1 51 2 52 ...
    [finding] = findings({"loss": (writers, np.ones(100))})
    assert finding.evidence["segment_count"] == 50
    assert len(finding.evidence["segments"]) == 10
    assert "and 40 more" in finding.message


def real_findings(real_logs, relative):
    return c.run_check(CHECK, c.real_run(real_logs / relative))


@pytest.mark.parametrize(
    "relative",
    [
        "Asad-Ismail__SMN__detectron2-maskrcnn/output",
        "Asad-Ismail__SMN__detectron2-maskrcnn/output/metrics.json",
    ],
)
def test_real_detectron2_restarts_fire(real_logs, relative):
    [finding] = real_findings(real_logs, relative)
    assert finding.severity == Severity.INFO  # the third start covers the first two
    assert finding.evidence["segment_count"] == 3
    assert (finding.first_step, finding.last_step) == (19, 299)


@pytest.mark.parametrize(
    "relative",
    [
        "Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile/runs/train/exp",
        "DeepPicEI__Elderly-fall-detection__ultralytics-yolo11/runs/train/exp",
        "Kevindic0214__detectron2_training__detectron2-maskrcnn-short/output/metrics.json",
    ],
)
def test_real_clean_or_harmless_logs_do_not_fire(real_logs, relative):
    assert real_findings(real_logs, relative) == []


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id
