from __future__ import annotations

from collections.abc import Callable

import pytest
from rich.cells import cell_len

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.sparkline import MARK, NON_FINITE
from rundoctor.reporters.text import render
from rundoctor.series import ReadError
from tests.curves import decay, make_run, steps
from tests.reporters.reports import finding, healthy_run, nan_run, outcomes, sample_report, sweep_report, twin_report

PLAIN = RenderOptions(width=80, color=False)


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_plain_output_has_no_escape_codes_and_colour_output_has_them() -> None:
    assert "\x1b" not in render(sample_report(), PLAIN)
    assert "\x1b[" in render(sample_report(), RenderOptions(width=80, color=True))


def long_names_report() -> Report:
    tags = ("train/" + "deeply/nested/" * 4 + "loss",)
    run = make_run({tags[0]: (steps(100), decay(100))}, run_id="runs/" + "very_long_directory_name/" * 6 + "v0")
    long_word = "x" * 150
    made = finding(run.id, "non-finite", "N001", Severity.ERROR, tags=tags, steps=(1, 2), message=long_word)
    return Report(runs=(run, healthy_run()), findings=(made,), errors=(ReadError("a/" * 70, long_word),))


@pytest.mark.parametrize("width", [60, 80, 120])
def test_no_line_is_wider_than_the_width(width: int) -> None:
    for report in (sample_report(), sweep_report(), long_names_report()):
        text = render(report, RenderOptions(width=width, color=False))
        too_wide = [line for line in lines(text) if cell_len(line) > width]
        assert not too_wide
    assert "train/deeply/nested… █" in render(long_names_report(), RenderOptions(width=width))


def test_a_run_with_findings_is_led_by_its_diagnosis_then_every_finding_in_severity_order() -> None:
    text = render(sample_report(), RenderOptions(width=200, color=False))
    assert (
        "sweep/lr_0.1  SERIOUS: training diverged (NaN/inf) — train/loss is NaN from step 600 to the end "
        "(400 of 1,000 points)  (1 error, 1 warning, 1 info; 1 superseded)"
    ) in text
    section = text[text.index("sweep/lr_0.1  SERIOUS") :]
    positions = [section.index(code) for code in ("N001 non-finite", "G002 overfitting", "R001 short-run")]
    assert positions == sorted(positions)
    assert "ERROR    N001 non-finite  steps 600..999" in text
    assert "WARNING  G002 overfitting  steps 500..950  (medium confidence)" in text
    assert "Advice: Lower the learning rate or clip gradients" in text
    # The superseded finding is counted, not printed.
    assert "C006 still-improving" not in text
    assert "1 finding superseded by the diagnosis; see --format json" in text


def test_the_sparkline_shows_the_nan_region_and_marks_it() -> None:
    text = lines(render(sample_report(), PLAIN))
    header = next(i for i, line in enumerate(text) if "N001 non-finite" in line)
    spark = next(i for i in range(header, len(text)) if text[i].lstrip().startswith("train/loss █"))
    bars, marks = text[spark], text[spark + 1]
    assert NON_FINITE in bars and set(marks.strip()) == {MARK}
    # The marks sit exactly under the NaN columns.
    first_mark = marks.index(MARK)
    assert bars[first_mark:first_mark + len(marks.strip())] == NON_FINITE * len(marks.strip())
    assert bars.rstrip().endswith("0.189..2.01")


def test_a_finding_without_steps_or_known_tags_has_no_sparkline() -> None:
    text = render(sample_report(), PLAIN)
    after = text[text.index("R001 short-run") :].splitlines()[1:4]
    assert after[0].strip() == "the run is short"
    assert after[1].strip() == "Advice: try something else"
    assert not any(NON_FINITE in line or "▁" in line for line in after)


def test_only_the_first_three_curves_of_a_finding_are_drawn() -> None:
    run = nan_run()
    tags = ("train/loss", "val/loss", "train/loss", "val/loss", "missing/tag")
    report = Report(runs=(run,), findings=(finding(run.id, "x", "X001", Severity.WARNING, tags=tags),))
    text = render(report, PLAIN)
    assert "+1 more curves" in text  # the tag without points is not counted


def test_a_single_healthy_run_says_so_with_the_checks_that_ran() -> None:
    run = healthy_run()
    report = Report(runs=(run,), findings=(), outcomes=tuple(outcomes(run.id, skipped=True)))
    text = render(report, PLAIN)
    assert lines(text)[0] == "sweep/lr_0.01  HEALTHY: no findings from 1 check"
    assert "1 check skipped for missing series; see --format json" in text
    assert lines(text)[-1] == "Result: no findings at or above error (exit 0)"
    assert "run " not in text  # no summary table for a single run


def test_several_runs_get_a_summary_table_with_every_run_when_few() -> None:
    text = render(sample_report(), PLAIN)
    assert "3 runs: 1 serious, 1 problem, 1 healthy; 1 error, 2 warnings, 1 info" in text
    table = [line.split() for line in lines(text) if line.startswith("sweep/") and "  " in line]
    assert ["sweep/lr_0.01", "healthy", "-", "-", "-"] in table
    assert ["sweep/lr_0.1", "serious", "1", "1", "1"] in table
    # The healthy run has no section of its own.
    assert "sweep/lr_0.01  HEALTHY" not in text


def test_a_sweep_folds_its_healthy_runs_into_one_line() -> None:
    text = render(sweep_report(runs=200, sick_every=10), PLAIN)
    assert "200 runs: 20 serious, 180 healthy; 20 errors" in text
    rows = [line for line in lines(text) if line.startswith("sweep/run_") and "serious " in line]
    assert len(rows) == 20  # one row per run with findings, none for healthy runs
    folded = [line for line in lines(text) if line.startswith("180 healthy runs: sweep/run_001, sweep/run_002")]
    assert len(folded) == 1 and "more" in text[text.index(folded[0]) :].split("\n\n")[0]
    assert len(lines(text)) < 20 * 8 + 30  # 20 sections of a few lines, then the summary


def test_read_errors_and_failed_checks_are_listed_and_skips_only_counted() -> None:
    text = render(sample_report(), PLAIN)
    assert "Could not read (1):\n  broken/events.out.tfevents.1: truncated record at offset 40" in text
    assert "S001 loss-spike on sweep/lr_0.1: ValueError: boom" in text
    assert "2 checks skipped for missing series; see --format json" in text
    assert "no val_accuracy series" not in text


def test_the_result_line_follows_fail_on() -> None:
    assert lines(render(sample_report(), PLAIN))[-1] == "Result: 1 finding at or above error (exit 1)"
    warning = render(sample_report(fail_on=Severity.WARNING), PLAIN)
    assert lines(warning)[-1] == "Result: 3 findings at or above warning (exit 1)"
    never = render(sample_report(fail_on=None), PLAIN)
    assert lines(never)[-1] == "Result: --fail-on never (exit 0)"


def test_log_text_is_printed_literally_not_as_markup() -> None:
    text = render(sample_report(), PLAIN)
    assert "[bold]x[/bold]" in text


def test_the_sample_report_matches_its_golden_file(golden: Callable[[str, str], None]) -> None:
    golden("sample_report.txt", render(sample_report(), PLAIN))


def test_long_run_ids_fold_after_a_slash_in_the_summary_table() -> None:
    report = long_names_report()
    text = lines(render(report, PLAIN))
    header = next(i for i, line in enumerate(text) if line.startswith("run "))
    end = next(i for i, line in enumerate(text) if line.startswith("sweep/lr_0.01"))
    rows = text[header + 2 : end]
    assert "serious" in rows[0] and len(rows) > 1
    folded = [line.split("   ")[0] for line in rows]
    assert "".join(part.strip() for part in folded) == report.runs[0].id  # nothing lost
    assert all(part.endswith("/") for part in folded[:-1])
    assert all(part.startswith("  ") for part in folded[1:])


def test_an_explained_finding_is_marked_and_told_after_its_cause() -> None:
    run = nan_run()
    report = Report(runs=(run,), findings=(
        finding(run.id, "loss-spikes", "C005", Severity.WARNING, steps=(100, 120), message="spiked"),
        finding(run.id, "non-finite", "N001", Severity.WARNING, steps=(600, 603), message="went NaN"),
    ))
    text = render(report, RenderOptions(width=120, color=False))
    assert lines(text)[0].startswith("sweep/lr_0.1  PROBLEM: training diverged (NaN/inf) — went NaN")
    assert text.index("N001 non-finite") < text.index("C005 loss-spikes")
    assert "C005 loss-spikes  steps 100..120  (explained by non-finite)" in text


def test_a_run_without_data_is_not_healthy_and_fails_at_warning() -> None:
    empty = make_run({}, run_id="runs/empty")
    report = Report(runs=(empty, healthy_run()), findings=(), fail_on=Severity.WARNING)
    text = render(report, PLAIN)
    assert "runs/empty  NO DATA: no data — the log holds no points" in text
    assert "Advice: Check that the run logged anything" in text
    assert ["runs/empty", "no", "data", "-", "-", "-"] in [line.split() for line in lines(text)]
    assert lines(text)[-1] == "Result: 1 run with no data at or above warning (exit 1)"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_one_run_written_in_two_formats_is_shown_once_within_the_width(width: int) -> None:
    text = render(twin_report(), RenderOptions(width=width))
    assert all(cell_len(line) <= width for line in text.splitlines())
    assert text.count("N001 non-finite") == 1
    printed = text.splitlines()
    assert [line.split()[0] for line in printed if line and not line[0].isspace()][:1] == ["out/train"]
    assert not any(line.startswith("out/train/results.csv") for line in printed)
    assert "2 runs: 1 serious, 1 healthy; 1 error, 1 info" in text
