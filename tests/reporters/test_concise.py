"""``--format concise`` (one grep-able line per finding) and ``--statistics`` (counts per check)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions, render
from tests.curves import make_run
from tests.reporters.reports import finding, healthy_run, sample_report, sweep_report, twin_report
from tests.reporters.test_text import assert_safe, hostile_report


def concise(report: Report, **options: bool) -> list[str]:
    return render("concise", report, RenderOptions(**options)).splitlines()


def test_one_line_per_finding_path_then_check_then_the_message() -> None:
    lines = concise(sample_report())
    assert lines[:4] == [
        './sweep/lr_0.001:loss-plateau: warning P001 step 120: train/loss: 50% of | steps, a: b\\nsecond line '
        '<tag> & "quoted" [bold]x[/bold]',
        "./sweep/lr_0.1:non-finite: error N001 steps 600..999: train/loss is NaN from step 600 to the end "
        "(400 of 1,000 points)",
        "./sweep/lr_0.1:overfitting: warning G002 steps 500..950: val/loss rose 38% above its minimum at step 500 "
        "while train/loss kept falling",
        "./sweep/lr_0.1:short-run: info R001: the run is short",
    ]
    assert lines[-1] == "Result: 1 finding at or above error (exit 1)"
    # Superseded findings are not listed; what cannot be read and what failed are.
    assert not any("still-improving" in line for line in lines)
    assert "./broken/events.out.tfevents.1:unreadable: truncated record at offset 40" in lines
    assert "./sweep/lr_0.1:loss-spike: failed: ValueError: boom" in lines


def test_lines_can_be_grepped_by_check() -> None:
    lines = concise(sweep_report(runs=30, sick_every=10))
    matched = [line for line in lines if ":non-finite: " in line]
    assert [line.split(":non-finite:")[0] for line in matched] == ["./sweep/run_000", "./sweep/run_010", "./sweep/run_020"]
    assert all(re.fullmatch(r"\./\S+:[a-z-]+: (error|warning|info) [A-Z]\d{3}( \S+ \S+)?: .+", line) for line in matched)


def test_verbose_gives_the_whole_message() -> None:
    run = healthy_run()
    long = "val_loss rose 22% above its minimum (best 1.8 at step 34); and a second clause that the short form drops"
    report = Report(runs=(run,), findings=(finding(run.id, "overfitting", "G001", Severity.WARNING, message=long),))
    assert concise(report)[0].endswith("val_loss rose 22% above its minimum (best 1.8 at step 34)")
    assert concise(report, verbose=True)[0].endswith(long)


def test_a_run_that_cannot_be_judged_is_a_line_and_absolute_paths_stay_absolute() -> None:
    empty = dataclasses.replace(make_run({}, run_id="runs/empty"), path="/data/runs/empty")
    lines = concise(Report(runs=(empty, healthy_run("runs/ok")), findings=()))
    assert lines == ["/data/runs/empty:no-data: warning: the log holds no points",
                     "Result: no findings at or above error (exit 0)"]


def test_quiet_lists_only_what_fails() -> None:
    assert concise(sample_report(), quiet=True) == [
        "./sweep/lr_0.1:non-finite: error N001 steps 600..999: train/loss is NaN from step 600 to the end "
        "(400 of 1,000 points)",
        "Result: 1 finding at or above error (exit 1)",
    ]
    assert concise(sample_report(fail_on=None), quiet=True) == ["Result: --fail-on never (exit 0)"]


def test_a_finding_told_once_over_two_formats_is_one_line() -> None:
    lines = concise(twin_report())
    assert sum(":non-finite:" in line for line in lines) == 1
    assert "./out/train/results.csv:class-imbalance: info M004 steps 30..49: metrics/mAP50(B) pinned at 0.95" in lines


@pytest.mark.parametrize("options", [{}, {"quiet": True}, {"verbose": True}, {"statistics": True}])
def test_no_line_starts_with_text_from_the_logs(options: dict[str, bool]) -> None:
    text = render("concise", hostile_report(), RenderOptions(**options))
    assert_safe(text)
    if not options.get("statistics"):
        assert all(line.startswith(("./", "Result:")) for line in text.splitlines())


# Statistics --------------------------------------------------------------------------------

def test_statistics_count_findings_per_check_most_first() -> None:
    report = sweep_report(runs=30, sick_every=10)
    run = report.runs[1]
    extra = [finding(run.id, "overfitting", "G001", Severity.WARNING), finding(run.id, "loss-scale-imbalance", "T001", Severity.INFO)]
    runs = [healthy_run(summary.id) for summary in report.runs]  # the same runs, diagnosed again
    report = Report.from_runs(runs, (*report.findings, *extra))
    for format in ("text", "concise"):
        assert render(format, report, RenderOptions(statistics=True)).splitlines() == [
            "3  N001  non-finite            3 errors",
            "1  G001  overfitting           1 warning",
            "1  T001  loss-scale-imbalance  1 info",
            "5 findings in 4 runs (3 errors, 1 warning, 1 info)",
            "Result: 3 findings at or above error (exit 1)",
        ]
    assert render("text", report, RenderOptions(statistics=True, quiet=True)).splitlines()[:2] == [
        "3  N001  non-finite  3 errors",
        "3 findings in 3 runs (3 errors)",
    ]


def test_statistics_of_a_clean_report() -> None:
    report = Report(runs=(healthy_run(),), findings=())
    assert render("text", report, RenderOptions(statistics=True)).splitlines() == [
        "0 findings in 0 runs",
        "Result: no findings at or above error (exit 0)",
    ]


def test_the_sample_report_in_concise_matches_its_golden_file(golden: Callable[[str, str], None]) -> None:
    golden("sample_report.concise.txt", render("concise", sample_report(), RenderOptions()))
