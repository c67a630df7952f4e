from __future__ import annotations

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.github import annotation, escape_data, escape_property, render
from tests.reporters.reports import finding, healthy_run, sample_report, twin_report


def test_one_annotation_per_finding_then_warnings_for_what_is_missing_then_a_summary() -> None:
    lines = render(sample_report(), RenderOptions()).splitlines()
    assert lines == [
        "::warning file=sweep/lr_0.001,title=P001 loss-plateau::sweep/lr_0.001: 50%25 of | steps, a: b%0A"
        'second line <tag> & "quoted" [bold]x[/bold] (step 120). 50%25 of | steps, a: b%0A'
        'second line <tag> & "quoted" [bold]x[/bold]',
        "::error file=sweep/lr_0.1,title=N001 non-finite::sweep/lr_0.1: train/loss is NaN from step 600 to the end "
        "(400 of 1,000 points) (steps 600..999). Lower the learning rate or clip gradients; check the data for NaN.",
        "::warning file=sweep/lr_0.1,title=G002 overfitting::sweep/lr_0.1: val/loss rose 38%25 above its minimum "
        "at step 500 while train/loss kept falling (steps 500..950). Stop earlier or regularise.",
        "::notice file=sweep/lr_0.1,title=R001 short-run::sweep/lr_0.1: the run is short. try something else",
        "::warning file=broken/events.out.tfevents.1,title=unreadable input::"
        "unreadable input: truncated record at offset 40",
        "::warning title=S001 loss-spike failed::"
        "sweep/lr_0.1: the check raised ValueError: boom; the rest of the report stands",
        "rundoctor: 3 runs; 1 error, 2 warnings, 1 info; 1 unreadable input; 1 check failed; 2 checks skipped. "
        "Result: 1 finding at or above error (exit 1)",
    ]


def test_every_line_is_a_single_physical_line() -> None:
    text = render(sample_report(), RenderOptions())
    assert "\r" not in text
    assert all(line.startswith(("::", "rundoctor: ")) for line in text.splitlines())


def test_data_escapes_percent_cr_lf_and_properties_also_colon_and_comma() -> None:
    assert escape_data("100%\r\nok: a,b") == "100%25%0D%0Aok: a,b"
    assert escape_property("runs/a:b,c%\n") == "runs/a%3Ab%2Cc%25%0A"
    assert annotation("error", "x", file="a,b:c", title="T1 t") == "::error file=a%2Cb%3Ac,title=T1 t::x"
    assert annotation("notice", "bare") == "::notice::bare"


def test_the_file_is_the_run_path_and_a_message_period_is_not_doubled() -> None:
    run = healthy_run("sweep/a")
    run.path = "logs/sweep/a,1"
    report = Report(
        runs=(run,),
        findings=(finding(run.id, "plateau", "P001", Severity.INFO, steps=(5, 9), message="flat.", advice=""),),
    )
    first = render(report, RenderOptions()).splitlines()[0]
    assert first == "::notice file=logs/sweep/a%2C1,title=P001 plateau::sweep/a: flat (steps 5..9)."


def test_a_healthy_report_is_only_the_summary_line() -> None:
    report = Report(runs=(healthy_run(),), findings=(), fail_on=Severity.WARNING)
    assert render(report, RenderOptions()) == (
        "rundoctor: 1 run; no findings. Result: no findings at or above warning (exit 0)\n"
    )


def test_a_run_with_no_data_is_a_warning_and_one_too_short_a_notice() -> None:
    from tests.curves import make_run, steps

    empty = make_run({}, run_id="runs/empty")
    short = make_run({"train/loss": (steps(3), [2.0, 1.9, 1.8])}, run_id="runs/short")
    lines = render(Report(runs=(empty, short), findings=()), RenderOptions()).splitlines()
    assert lines[0].startswith("::warning file=runs/empty,title=no data::runs/empty: no data — the log holds no points.")
    assert lines[1].startswith(
        "::notice file=runs/short,title=too short to judge::runs/short: too short to judge — the longest loss or "
        "metric series, train/loss, has 3 finite points (the curve checks need 5)."
    )


def test_one_run_written_in_two_formats_is_annotated_once() -> None:
    lines = render(twin_report(), RenderOptions()).splitlines()
    nan = [line for line in lines if "title=N001 non-finite" in line]
    assert len(nan) == 1 and "file=out/train," in nan[0] and "Also in out/train/results.csv." in nan[0]
    assert any(line.startswith("::notice file=out/train/results.csv,title=M004") for line in lines)
    assert lines[-1].startswith("rundoctor: 2 runs; 1 error, 1 info.")
