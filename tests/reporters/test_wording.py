from __future__ import annotations

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters.wording import counts_phrase, plural, result_line, step_range
from rundoctor.series import XAxis
from tests.reporters.reports import finding, healthy_run, sample_report


def test_step_range_names_the_axis_of_the_findings_curve() -> None:
    run = healthy_run()
    made = finding(run.id, "x", "X001", Severity.INFO, steps=(3, 9))
    assert step_range(made, run) == "steps 3..9"
    run.x_axis = XAxis.EPOCH
    assert step_range(made, run) == "epochs 3..9"
    run.tag_axes["train/loss"] = XAxis.ITERATION
    assert step_range(made, run) == "iterations 3..9"
    assert step_range(finding(run.id, "x", "X001", Severity.INFO, tags=(), steps=(3, 9)), run) == "epochs 3..9"


def test_step_range_single_open_and_missing() -> None:
    run = healthy_run()
    assert step_range(finding(run.id, "x", "X001", Severity.INFO, steps=(7, 7)), run) == "step 7"
    assert step_range(finding(run.id, "x", "X001", Severity.INFO, steps=(7, None)), run) == "steps 7.."
    assert step_range(finding(run.id, "x", "X001", Severity.INFO, steps=(None, 7)), None) == "steps ..7"
    assert step_range(finding(run.id, "x", "X001", Severity.INFO), run) is None


def test_counts_and_plurals() -> None:
    assert plural(1, "error") == "1 error" and plural(2, "warning") == "2 warnings" and plural(3, "info") == "3 info"
    assert plural(1234, "run") == "1,234 runs"
    assert counts_phrase(sample_report().active_findings) == "1 error, 2 warnings, 1 info"
    assert counts_phrase(()) == "no findings"


def test_result_line() -> None:
    assert result_line(sample_report()) == "Result: 1 finding at or above error (exit 1)"
    clean = Report(runs=(healthy_run(),), findings=(), fail_on=Severity.INFO)
    assert result_line(clean) == "Result: no findings at or above info (exit 0)"
