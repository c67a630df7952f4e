from __future__ import annotations

import re

from rundoctor.findings import Finding, Severity
from rundoctor.report import CheckOutcome, OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.github import SHOWN_PER_LEVEL, annotation, escape_data, escape_property, render, workspace_path
from rundoctor.series import Run
from tests.curves import make_run, steps
from tests.reporters.reports import finding, healthy_run, sample_report, twin_report

# What the runner reads as a workflow command (actions/runner trims leading white space first).
COMMAND_LINE = re.compile(r"^::(error|warning|notice)( [^:]*)?::")


def test_one_annotation_per_run_worst_first_listing_its_findings_then_a_summary() -> None:
    lines = render(sample_report(), RenderOptions()).splitlines()
    assert lines == [
        "::error file=sweep/lr_0.1,title=SERIOUS%3A training diverged (NaN/inf)::sweep/lr_0.1: 1 error, 1 warning, "
        "1 info%0A- error N001 non-finite (steps 600..999): train/loss is NaN from step 600 to the end (400 of 1,000 "
        "points)%0A- warning G002 overfitting (steps 500..950): val/loss rose 38%25 above its minimum at step 500 "
        "while train/loss kept falling%0A- info R001 short-run: the run is short%0A- check S001 loss-spike raised "
        "ValueError: boom; the rest of the report stands%0AAdvice: Lower the learning rate or clip gradients; check "
        "the data for NaN.",
        "::warning file=sweep/lr_0.001,title=PROBLEM%3A loss plateaued at a fixed learning rate::sweep/lr_0.001: "
        '1 warning%0A- warning P001 loss-plateau (step 120): 50%25 of | steps, a: b\\nsecond line <tag> & "quoted" '
        '[bold]x[/bold]%0AAdvice: 50%25 of | steps, a: b\\nsecond line <tag> & "quoted" [bold]x[/bold]',
        "::warning file=broken/events.out.tfevents.1,title=unreadable input::unreadable input: truncated record at "
        "offset 40",
        "rundoctor: 3 runs; 1 error, 2 warnings, 1 info; 1 unreadable input; 1 check failed; 2 checks skipped. "
        "Result: 1 finding at or above error (exit 1)",
    ]


def test_every_line_is_an_annotation_of_ours_or_the_summary() -> None:
    text = render(sample_report(), RenderOptions())
    assert "\r" not in text
    assert all(COMMAND_LINE.match(line) or line.startswith("rundoctor: ") for line in text.splitlines())


def test_data_escapes_percent_cr_lf_and_properties_also_colon_and_comma() -> None:
    assert escape_data("100%\r\nok: a,b") == "100%25%0D%0Aok: a,b"
    assert escape_property("runs/a:b,c%\n") == "runs/a%3Ab%2Cc%25%0A"
    assert annotation("error", ["x"], file="a,b:c", title="T1 t") == "::error file=a%2Cb%3Ac,title=T1 t::x"
    assert annotation("notice", ["bare"]) == "::notice::bare"
    assert annotation("notice", ["one", "two"]) == "::notice::one%0Atwo"  # our line breaks stay line breaks


def test_log_text_cannot_end_the_command_or_start_a_line() -> None:
    hostile = "a\n::error::pwned\r%0A::warning::x\x1b[2J\u202e,b:c"
    run = make_run({f"{hostile}/loss": (steps(50), [1.0] * 50)}, run_id=hostile)
    report = Report(runs=(run,), findings=(
        finding(run.id, "spike", "S001", Severity.ERROR, tags=(f"{hostile}/loss",), message=f"{hostile}/loss spiked",
                advice=f"look at {hostile}"),
    ))
    text = render(report, RenderOptions())
    lines = text.splitlines()
    assert len(lines) == 2 and COMMAND_LINE.match(lines[0]) and lines[1].startswith("rundoctor: ")
    assert not any(line.lstrip().startswith(("::error::pwned", "::warning::x")) for line in text.splitlines())
    # Visible escapes, then the runner's: a literal "%0A" in a name is not decoded to a line break.
    assert "a\\n::error::pwned\\r%250A::warning::x\\x1b[2J\\u202e,b:c/loss spiked" in lines[0]
    assert "file=a\\n%3A%3Aerror%3A%3Apwned\\r%250A%3A%3Awarning%3A%3Ax\\x1b[2J\\u202e%2Cb%3Ac," in lines[0]
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text.replace("\n", ""))


def _sick(run_id: str, severity: Severity) -> tuple[Run, Finding]:
    run = healthy_run(run_id)
    return run, finding(run.id, "spike", "S001", severity, steps=(5, 9), message="spiked")


def _sweep(errors: int, warnings: int, notices: int) -> Report:
    made = [_sick(f"e{index:02d}", Severity.ERROR) for index in range(errors)]
    made += [_sick(f"w{index:02d}", Severity.WARNING) for index in range(warnings)]
    made += [_sick(f"n{index:02d}", Severity.INFO) for index in range(notices)]
    return Report(runs=tuple(run for run, _ in made), findings=tuple(item for _, item in made))


def test_github_caps_are_kept_worst_first_and_the_summary_says_how_many_were_folded() -> None:
    lines = render(_sweep(errors=13, warnings=11, notices=10), RenderOptions()).splitlines()
    commands = [line.split(" ", 1)[0] for line in lines[:-1]]
    assert commands == ["::error"] * SHOWN_PER_LEVEL + ["::warning"] * SHOWN_PER_LEVEL + ["::notice"] * SHOWN_PER_LEVEL
    assert [line.split("file=")[1].split(",")[0] for line in lines[:3]] == ["e00", "e01", "e02"]
    assert lines[-1].startswith("rundoctor: 34 runs; 13 errors, 11 warnings, 10 info; 4 annotations folded "
                                "(3 errors, 1 warning): GitHub shows 10 of each level per step;")


def test_exactly_the_cap_folds_nothing() -> None:
    text = render(_sweep(errors=SHOWN_PER_LEVEL, warnings=SHOWN_PER_LEVEL, notices=0), RenderOptions())
    assert text.count("::error ") == SHOWN_PER_LEVEL and text.count("::warning ") == SHOWN_PER_LEVEL
    assert "folded" not in text


def test_file_is_relative_to_the_workspace_when_inside_it() -> None:
    inside = RenderOptions(workspace="/ws/repo", cwd="/ws/repo/sub")
    assert workspace_path("runs/a", inside) == "sub/runs/a"
    assert workspace_path("/ws/repo/runs/a", inside) == "runs/a"
    assert workspace_path("../runs/a", inside) == "runs/a"
    assert workspace_path("/ws/repo-other/runs/a", inside) == "/ws/repo-other/runs/a"  # a prefix is not inside
    assert workspace_path("../../elsewhere/a", inside) == "../../elsewhere/a"  # outside: as given
    assert workspace_path("runs/a", RenderOptions()) == "runs/a"  # no workspace: as given
    run = healthy_run("sweep/a")
    run.path = "/ws/repo/logs/sweep/a"
    report = Report(runs=(run,), findings=(finding(run.id, "plateau", "P001", Severity.INFO, message="flat"),))
    assert render(report, inside).startswith("::notice file=logs/sweep/a,title=MINOR%3A plateau::sweep/a: 1 info%0A")


def test_a_healthy_report_is_only_the_summary_line() -> None:
    report = Report(runs=(healthy_run(),), findings=(), fail_on=Severity.WARNING)
    assert render(report, RenderOptions()) == (
        "rundoctor: 1 run; no findings. Result: no findings at or above warning (exit 0)\n"
    )


def test_a_healthy_run_whose_check_raised_is_a_warning() -> None:
    run = healthy_run("runs/a")
    outcome = CheckOutcome("loss-spike", "S001", run.id, OutcomeStatus.ERROR, "ValueError: boom")
    lines = render(Report(runs=(run,), findings=(), outcomes=(outcome,)), RenderOptions()).splitlines()
    assert lines[0] == ("::warning file=runs/a,title=check failed::runs/a: 1 check raised%0A"
                        "- check S001 loss-spike raised ValueError: boom; the rest of the report stands")


def test_a_run_with_no_data_is_a_warning_and_one_too_short_a_notice() -> None:
    empty = make_run({}, run_id="runs/empty")
    short = make_run({"train/loss": (steps(3), [2.0, 1.9, 1.8])}, run_id="runs/short")
    lines = render(Report(runs=(empty, short), findings=()), RenderOptions()).splitlines()
    assert lines[0].startswith("::warning file=runs/empty,title=NO DATA%3A no data::runs/empty: the log holds no "
                               "points%0AAdvice: Check that the run logged anything")
    assert lines[1].startswith(
        "::notice file=runs/short,title=TOO SHORT%3A too short to judge::runs/short: the longest loss or "
        "metric series, train/loss, has 3 finite points (the curve checks need 5)"
    )


def test_one_run_written_in_two_formats_is_annotated_once() -> None:
    lines = render(twin_report(), RenderOptions()).splitlines()
    assert len(lines) == 2 and lines[0].startswith("::error file=out/train,")
    assert "- error N001 non-finite (steps 20..30, also in ultralytics-csv)" in lines[0]
    assert "- info M004 class-imbalance (steps 30..49, in ultralytics-csv)" in lines[0]
    assert lines[-1].startswith("rundoctor: 2 runs; 1 error, 1 info.")
