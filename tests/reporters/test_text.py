"""The terminal report: worst run first, a short line per finding, advice once per check, the
summary last, names never broken, and nothing from the logs able to act on a terminal or a CI log."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest
from rich.cells import cell_len

from rundoctor.findings import Confidence, Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.layout import GUTTER
from rundoctor.reporters.sparkline import MARK, NON_FINITE
from rundoctor.reporters.text import HEALTHY_LIST_LINES, render, shared_names
from rundoctor.series import ReadError
from tests.curves import decay, make_run, steps
from tests.reporters.reports import finding, healthy_run, nan_run, outcomes, sample_report, sweep_report, twin_report

PLAIN = RenderOptions(width=80, color=False)
VERBOSE = dataclasses.replace(PLAIN, verbose=True)


def lines(text: str) -> list[str]:
    return text.splitlines()


def headers(text: str) -> list[str]:
    """The run header lines: a verdict label at the start of the line."""
    return [line for line in lines(text) if re.match(r"(SERIOUS|PROBLEM|NO DATA|MINOR|TOO SHORT|HEALTHY) ", line)]


# Colour and markup -------------------------------------------------------------------------

def test_plain_output_has_no_escape_codes_and_colour_output_has_them() -> None:
    assert "\x1b" not in render(sample_report(), PLAIN)
    assert "\x1b[" in render(sample_report(), RenderOptions(width=80, color=True))


def test_log_text_is_printed_literally_not_as_markup() -> None:
    for options in (PLAIN, VERBOSE, RenderOptions(width=80, color=True)):
        assert "[bold]x[/bold]" in render(sample_report(), options)


# Order and shape ---------------------------------------------------------------------------

def verdicts_report() -> Report:
    """One run of every verdict, named so that alphabetical order is not worst-first order."""
    runs = {name: healthy_run(f"zoo/{name}") for name in ("a_serious", "b_serious", "c_minor", "d_problem", "e_healthy")}
    runs["f_nodata"] = make_run({}, run_id="zoo/f_nodata")
    runs["g_short"] = make_run({"train/loss": (steps(3), decay(3))}, run_id="zoo/g_short")
    findings = [
        finding("zoo/a_serious", "non-finite", "N001", Severity.ERROR, steps=(10, 20), message="went NaN"),
        finding("zoo/b_serious", "non-finite", "N001", Severity.ERROR, steps=(10, 20), message="went NaN"),
        finding("zoo/c_minor", "still-improving", "C006", Severity.INFO, message="still falling"),
        finding("zoo/d_problem", "overfitting", "G001", Severity.WARNING, message="val rose"),
    ]
    return Report(runs=tuple(runs.values()), findings=tuple(findings))


def test_runs_come_worst_verdict_first_then_by_name_and_the_healthy_have_no_section() -> None:
    text = render(verdicts_report(), PLAIN)
    assert [line.split()[-1] for line in headers(text)] == [
        "a_serious", "b_serious", "d_problem", "f_nodata", "c_minor", "g_short",
    ]
    assert "e_healthy" not in "".join(headers(text))
    assert lines(text)[0] == "7 runs under zoo/, worst first"


def test_a_run_is_led_by_its_verdict_and_diagnosis_with_one_line_per_finding() -> None:
    text = render(sample_report(), RenderOptions(width=200, color=False))
    section = lines(text[text.index("SERIOUS    lr_0.1"):])
    assert section[:5] == [
        "SERIOUS    lr_0.1",
        "           training diverged (NaN/inf)",
        "  error    N001 non-finite  steps 600..999  train/loss is NaN from step 600 to the end (400 of 1,000 points)",
        "  warning  G002 overfitting  steps 500..950  val/loss rose 38% above its minimum at step 500 while "
        "train/loss kept falling  (medium confidence)",
        "  info     R001 short-run  the run is short",
    ]
    # Not repeated under each finding: the advice section says it once.
    assert "Advice:" not in text
    # The superseded finding is counted, not printed.
    assert "C006 still-improving" not in text
    assert "1 finding superseded by the diagnosis; see --format json" in text


def test_a_finding_line_carries_the_key_clause_and_the_threshold_the_message_names() -> None:
    run = healthy_run()
    message = ("val_loss rose 22% above its minimum 1.927 (best 1.842 at step 34) while train_loss fell "
               "31% over the last stretch of this rather long run of many epochs (threshold 10%); more words")
    report = Report(runs=(run,), findings=(finding(run.id, "overfitting", "G001", Severity.WARNING, message=message),))
    line = next(line for line in lines(render(report, RenderOptions(width=300))) if "G001" in line)
    assert line.endswith("(threshold 10%)")
    assert "val_loss rose 22% above its minimum 1.927" in line and "more words" not in line


def test_findings_are_listed_worst_first_and_an_explained_one_names_its_cause() -> None:
    run = nan_run()
    report = Report(runs=(run,), findings=(
        finding(run.id, "loss-spikes", "C005", Severity.ERROR, steps=(100, 120), message="spiked"),
        finding(run.id, "non-finite", "N001", Severity.WARNING, steps=(600, 603), message="went NaN"),
    ))
    text = render(report, RenderOptions(width=120))
    assert lines(text)[:2] == ["SERIOUS    sweep/lr_0.1", "           training diverged (NaN/inf)"]
    assert text.index("C005 loss-spikes") < text.index("N001 non-finite")  # the error first
    assert "  error    C005 loss-spikes  steps 100..120  train/loss: spiked  (explained by non-finite)" in text


def test_notes_on_a_run_with_problems_share_one_line_unless_verbose() -> None:
    run = nan_run()
    report = Report(runs=(run,), findings=(
        finding(run.id, "non-finite", "N001", Severity.ERROR, steps=(600, 999), message="went NaN"),
        *(finding(run.id, "metric-out-of-range", "M006", Severity.INFO, tags=(f"s{i}.acc",), message=f"s{i}.acc in percent")
          for i in range(3)),
        finding(run.id, "duplicate-steps", "L001", Severity.INFO, message="steps go back"),
    ))
    text = render(report, RenderOptions(width=120))
    assert "  info     4 notes: duplicate-steps, metric-out-of-range x3  (--verbose lists them)" in text
    assert "s1.acc in percent" not in text
    assert "s1.acc in percent" in render(report, VERBOSE)
    # A run with notes only lists each of them.
    minor = Report(runs=(run,), findings=report.findings[1:])
    assert "s1.acc in percent" in render(minor, PLAIN) and "notes:" not in render(minor, PLAIN)


def test_a_single_healthy_run_says_so_with_the_checks_that_ran_and_has_no_summary() -> None:
    run = healthy_run()
    report = Report(runs=(run,), findings=(), outcomes=tuple(outcomes(run.id, skipped=True)))
    text = render(report, PLAIN)
    assert lines(text)[:2] == ["HEALTHY    sweep/lr_0.01", "           no findings from 1 check"]
    assert "1 check skipped for missing series; see --format json" in text
    assert lines(text)[-1] == "Result: no findings at or above error (exit 0)"
    assert "Summary" not in text


def test_runs_that_cannot_be_judged_say_why_and_their_advice_is_told_once() -> None:
    empty = [make_run({}, run_id=f"runs/empty{i}") for i in range(3)]
    report = Report(runs=(*empty, healthy_run("runs/ok")), findings=(), fail_on=Severity.WARNING)
    text = render(report, PLAIN)
    assert headers(text) == ["NO DATA    empty0", "NO DATA    empty1", "NO DATA    empty2"]
    assert text.count("no data — the log holds no points") == 3
    assert text.count("Check that the run logged anything") == 1
    assert "  no data: Check that the run logged anything" in text
    assert lines(text)[-1] == "Result: 3 runs with no data at or above warning (exit 1)"


def test_one_run_written_in_two_formats_is_shown_once() -> None:
    text = render(twin_report(), RenderOptions(width=120))
    assert headers(text) == ["SERIOUS    train"]
    assert "           also written as results.csv (ultralytics-csv)" in text
    assert text.count("N001 non-finite") == 1 and "(also in ultralytics-csv)" in text
    assert "M004 class-imbalance  steps 30..49  metrics/mAP50(B) pinned at 0.95  (in ultralytics-csv)" in text
    assert "Summary: 2 runs: 1 serious, 1 healthy; 1 error, 1 info" in text


def test_read_errors_and_failed_checks_are_listed_and_skips_only_counted() -> None:
    text = render(sample_report(), PLAIN)
    assert "Could not read (1):\n  - broken/events.out.tfevents.1: truncated record at offset 40" in text
    assert "  - S001 loss-spike on lr_0.1: ValueError: boom" in text
    assert "2 checks skipped for missing series; see --format json" in text
    assert "no val_accuracy series" not in text


def test_the_result_line_follows_fail_on() -> None:
    assert lines(render(sample_report(), PLAIN))[-1] == "Result: 1 finding at or above error (exit 1)"
    warning = render(sample_report(fail_on=Severity.WARNING), PLAIN)
    assert lines(warning)[-1] == "Result: 3 findings at or above warning (exit 1)"
    never = render(sample_report(fail_on=None), PLAIN)
    assert lines(never)[-1] == "Result: --fail-on never (exit 0)"


# Advice ------------------------------------------------------------------------------------

def test_advice_is_told_once_per_check_after_the_runs() -> None:
    text = render(sweep_report(runs=30, sick_every=3), PLAIN)
    assert text.count("try something else") == 1
    assert "  non-finite: try something else" in text
    assert text.index("Advice by check") > max(text.index(header) for header in headers(text))


def test_advice_that_differs_between_findings_is_the_checks_general_advice() -> None:
    from rundoctor.checks.registry import REGISTRY

    runs = [healthy_run(f"sweep/{i}") for i in range(2)]
    report = Report(runs=tuple(runs), findings=tuple(
        finding(run.id, "overfitting", "G001", Severity.WARNING, advice=f"Keep the checkpoint of step {i}.")
        for i, run in enumerate(runs)
    ))
    text = " ".join(render(report, RenderOptions(width=1000)).split())
    general = next(check.advice for check in REGISTRY if check.name == "overfitting")
    assert f"overfitting: {general}" in text and "Keep the checkpoint of step" not in text
    assert "Keep the checkpoint of step 1." in render(report, VERBOSE)


def test_notes_and_explained_findings_add_no_advice_of_their_own() -> None:
    run = nan_run()
    report = Report(runs=(run,), findings=(
        finding(run.id, "non-finite", "N001", Severity.ERROR, steps=(600, 999), advice="Lower the rate."),
        finding(run.id, "loss-spikes", "C005", Severity.WARNING, steps=(600, 700), advice="Clip."),
        finding(run.id, "loss-scale-imbalance", "T001", Severity.INFO, advice="Weigh the terms."),
    ))
    text = render(report, PLAIN)
    assert "  non-finite: Lower the rate." in text
    assert "Clip." not in text and "Weigh the terms." not in text
    assert "  Notes only: loss-scale-imbalance" in text


def test_verbose_puts_each_findings_own_advice_whole_message_and_curves_under_it() -> None:
    text = render(sample_report(), dataclasses.replace(VERBOSE, width=120))
    assert "Advice by check" not in text
    assert f"         {GUTTER} Advice: Lower the learning rate or clip gradients; check the data for NaN." in text
    assert f"         {GUTTER} val/loss rose 38% above its minimum at step 500 while train/loss kept falling" in text


# Sparklines (verbose) ----------------------------------------------------------------------

def test_the_sparkline_shows_the_nan_region_and_marks_it() -> None:
    text = lines(render(sample_report(), VERBOSE))
    header = next(i for i, line in enumerate(text) if "N001 non-finite" in line)
    spark = next(i for i in range(header, len(text)) if text[i].endswith("train/loss"))
    bars, marks = text[spark], text[spark + 1]
    assert NON_FINITE in bars and set(marks.replace(GUTTER, "").strip()) == {MARK}
    first = marks.index(MARK)  # the marks sit exactly under the NaN columns
    count = marks.count(MARK)
    assert bars[first:first + count] == NON_FINITE * count
    assert bars.endswith("0.189..2.01  train/loss")


def test_only_the_first_three_curves_of_a_finding_are_drawn() -> None:
    run = nan_run()
    tags = ("train/loss", "val/loss", "train/loss", "val/loss", "missing/tag")
    report = Report(runs=(run,), findings=(finding(run.id, "x", "X001", Severity.WARNING, tags=tags),))
    text = render(report, VERBOSE)
    assert "+1 more curve" in text and "+1 more curves" not in text  # the tag without points is not counted


def test_a_finding_without_steps_or_known_tags_has_no_sparkline() -> None:
    text = render(sample_report(), VERBOSE)
    after = text[text.index("R001 short-run"):].splitlines()[1:3]
    assert after == [f"         {GUTTER} the run is short", f"         {GUTTER} Advice: try something else"]


# Names, prefixes and width -----------------------------------------------------------------

def long_names_report() -> Report:
    tags = ("train/" + "deeply/nested/" * 4 + "loss",)
    long_id = "runs/" + "very_long_directory_name/" * 6 + "#13. a name with spaces_and_more_words"
    run = make_run({tags[0]: (steps(100), decay(100))}, run_id=long_id)
    made = finding(run.id, "non-finite", "N001", Severity.ERROR, tags=tags, steps=(1, 2),
                   message="x" * 150 + " then words that wrap at spaces like any other message of a check")
    return Report(runs=(run, healthy_run("runs/ok")), findings=(made,), errors=(ReadError("runs/" + "a/" * 70, "y" * 40),))


@pytest.mark.parametrize("width", [40, 60, 80, 120])
@pytest.mark.parametrize("verbose", [False, True])
def test_lines_fit_the_width_except_a_name_too_long_for_any_line(width: int, verbose: bool) -> None:
    options = RenderOptions(width=width, verbose=verbose)
    for report in (sample_report(), sweep_report(), twin_report(), verdicts_report()):
        assert all(cell_len(line) <= width for line in lines(render(report, options)))
    text = render(long_names_report(), options)
    name = long_names_report().findings[0].run.removeprefix("runs/")
    assert f"SERIOUS    {name}" in lines(text)  # whole, on its own line, spaces and all
    too_wide = [line for line in lines(text) if cell_len(line) > width]
    # Only lines holding one unbreakable word (a name, a path, a word of 100 letters) overflow.
    unbreakable = (name, "a/a/a/a", "x" * 100, "y" * 40, "deeply/nested")
    assert all(any(word in line for word in unbreakable) for line in too_wide)


def test_the_prefix_every_run_shares_is_stated_once_as_the_user_wrote_it() -> None:
    runs = [dataclasses.replace(healthy_run(f"real_logs/{name}"), path=f"../shared/real_logs/{name}") for name in ("a/x", "b")]
    report = Report(runs=tuple(runs), findings=(finding("real_logs/a/x", "non-finite", "N001", Severity.ERROR),),
                    errors=(ReadError("../shared/real_logs/c/events.1", "truncated"),))
    text = render(report, PLAIN)
    assert lines(text)[0] == "2 runs under ../shared/real_logs/, worst first"
    assert headers(text) == ["SERIOUS    a/x"]
    assert "Healthy (1): b" in text and "  - c/events.1: truncated" in text


def test_a_run_that_is_the_shared_directory_itself_keeps_its_name() -> None:
    report = Report(runs=(healthy_run("r/a"), healthy_run("r/a/b")), findings=())
    assert shared_names(report).root == "r/"
    assert "Healthy (2): a, a/b" in render(report, PLAIN)


def test_nothing_is_trimmed_when_runs_share_no_directory() -> None:
    report = Report(runs=(healthy_run("one/a"), healthy_run("two/b")), findings=())
    assert shared_names(report).root == ""
    assert lines(render(report, PLAIN))[0] == "2 runs, worst first"
    assert "Healthy (2): one/a, two/b" in render(report, PLAIN)


def test_the_summary_comes_last_and_names_few_healthy_runs() -> None:
    text = render(sample_report(), PLAIN)
    tail = lines(text)[-5:]
    assert tail == [
        "Summary: 3 runs: 1 serious, 1 problem, 1 healthy; 1 error, 2 warnings, 1 info",
        "Healthy (1): lr_0.01",
        "1 finding superseded by the diagnosis; see --format json",
        "2 checks skipped for missing series; see --format json",
        "Result: 1 finding at or above error (exit 1)",
    ]


def test_a_sweep_names_its_healthy_runs_within_a_few_lines_and_all_of_them_when_verbose() -> None:
    text = render(sweep_report(runs=200, sick_every=10), PLAIN)
    assert "Summary: 200 runs: 20 serious, 180 healthy; 20 errors" in text
    assert len(headers(text)) == 20
    start = next(i for i, line in enumerate(lines(text)) if line.startswith("Healthy (180): run_001, run_002"))
    listed = lines(text)[start:start + HEALTHY_LIST_LINES + 1]
    end = next(i for i, line in enumerate(listed) if "more (--verbose names them all)" in line)
    assert end < HEALTHY_LIST_LINES
    assert len(lines(text)) < 120
    verbose = render(sweep_report(runs=200, sick_every=10), VERBOSE)
    assert "more (--verbose" not in verbose and "run_199" in verbose


# Quiet -------------------------------------------------------------------------------------

def test_quiet_prints_only_what_fails_and_the_result_line() -> None:
    quiet = RenderOptions(width=200, quiet=True)
    text = render(sample_report(), quiet)
    assert lines(text) == [
        "SERIOUS    sweep/lr_0.1",
        "           training diverged (NaN/inf)",
        "  error    N001 non-finite  steps 600..999  train/loss is NaN from step 600 to the end (400 of 1,000 points)",
        "",
        "Result: 1 finding at or above error (exit 1)",
    ]
    assert lines(render(sample_report(fail_on=None), quiet)) == ["Result: --fail-on never (exit 0)"]
    healthy = Report(runs=(healthy_run(),), findings=())
    assert lines(render(healthy, quiet)) == ["Result: no findings at or above error (exit 0)"]


def test_quiet_shows_a_run_that_fails_unjudged_only_at_its_level() -> None:
    runs = (make_run({}, run_id="runs/empty"), healthy_run("runs/ok"))
    quiet = RenderOptions(width=120, quiet=True)
    failing = render(Report(runs=runs, findings=(), fail_on=Severity.WARNING), quiet)
    assert headers(failing) == ["NO DATA    runs/empty"]
    assert headers(render(Report(runs=runs, findings=()), quiet)) == []


# Plurals -----------------------------------------------------------------------------------

_BAD_PLURAL = re.compile(r"(?<![\d,.])1 (runs|checks|findings|notes|errors|warnings|curves|healthy runs)\b")


def test_one_of_anything_is_singular() -> None:
    run = nan_run()
    one = Report(runs=(run, healthy_run()), findings=(
        finding(run.id, "non-finite", "N001", Severity.ERROR, tags=("train/loss", "val/loss", "train/loss", "val/loss")),
        finding(run.id, "loss-scale-imbalance", "T001", Severity.INFO),
        finding(run.id, "duplicate-steps", "L001", Severity.INFO),
    ), outcomes=tuple(outcomes(run.id, skipped=True)), errors=(ReadError("a", "b"),))
    for options in (PLAIN, VERBOSE, RenderOptions(statistics=True), RenderOptions(quiet=True)):
        text = render(one, options)
        assert not _BAD_PLURAL.search(text), text
    assert "2 notes:" in render(one, PLAIN) and "Summary: 2 runs" in render(one, PLAIN)
    assert "+1 more curve\n" in render(one, VERBOSE)


# Hostile names -----------------------------------------------------------------------------

HOSTILE = "x\n::error::pwned \x1b[2J\u202eevil ##vso[task.setvariable variable=a]b \r::warning::w"


def hostile_report() -> Report:
    """Every log-controlled string a text report prints, each carrying line breaks, CI commands,
    terminal escapes and a bidirectional override."""
    tag = "::error::tag" + HOSTILE
    run = make_run({tag: (steps(50), decay(50))}, run_id="root/" + HOSTILE)
    twin = dataclasses.replace(make_run({tag: (steps(50), decay(50))}, run_id=f"root/{HOSTILE}/twin"), format=HOSTILE)
    made = [
        finding(run.id, HOSTILE, "N001", Severity.ERROR, tags=(tag,), steps=(1, 30),
                message=f"{HOSTILE} " * 8 + "(threshold ::error::t)", advice=f"{HOSTILE} " * 5),
        finding(run.id, "still-improving", "C006", Severity.INFO, tags=(tag,), message=HOSTILE, advice=HOSTILE),
        finding(twin.id, "overfitting", "G001", Severity.WARNING, tags=(tag,), message=HOSTILE * 3, advice=HOSTILE),
    ]
    from rundoctor.report import CheckOutcome, OutcomeStatus

    return Report(
        runs=(run, twin, make_run({}, run_id="root/" + HOSTILE + "2"), healthy_run("root/::error::ok")),
        findings=tuple(made),
        outcomes=(CheckOutcome(HOSTILE, "X001", run.id, OutcomeStatus.ERROR, HOSTILE),),
        errors=(ReadError("root/" + HOSTILE + "/events", HOSTILE),),
    )


def assert_safe(text: str) -> None:
    """No line starts (after its indentation, which CI runners trim) with a CI command, and no
    character that acts on a terminal survives (but the line ends we wrote)."""
    for line in lines(text):
        assert not line.lstrip().startswith(("::", "##")), line
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)


@pytest.mark.parametrize("width", [20, 40, 80, 200])
@pytest.mark.parametrize("mode", [{}, {"verbose": True}, {"quiet": True}, {"statistics": True}])
def test_log_text_can_neither_start_a_line_nor_reach_the_terminal(width: int, mode: dict[str, bool]) -> None:
    for fail_on in (Severity.ERROR, Severity.INFO):
        report = dataclasses.replace(hostile_report(), fail_on=fail_on)
        assert_safe(render(report, RenderOptions(width=width, **mode)))
    text = render(hostile_report(), RenderOptions(width=width, **mode))
    if not mode:
        assert "x\\n::error::pwned" in text.replace(f"\n  {GUTTER} ", " ") and "\\u202eevil" in text
        assert "\\x1b[2J" in text


def test_colour_is_only_what_we_add() -> None:
    text = render(hostile_report(), RenderOptions(width=80, color=True))
    for line in lines(re.sub(r"\x1b\[[0-9;]*m", "", text)):
        assert not line.lstrip().startswith(("::", "##"))
    assert "\x1b[2J" not in text


# Golden files ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [
    ("sample_report.txt", PLAIN),
    ("sample_report.verbose.txt", VERBOSE),
    ("sample_report.statistics.txt", RenderOptions(width=80, statistics=True)),
])
def test_the_sample_report_matches_its_golden_file(golden: Callable[[str, str], None], name: str, options: RenderOptions) -> None:
    golden(name, render(sample_report(), options))


def test_low_confidence_is_said_beside_the_finding() -> None:
    run = healthy_run()
    report = Report(runs=(run,), findings=(
        finding(run.id, "lr-too-low", "C002", Severity.INFO, confidence=Confidence.LOW, message="fell 7%"),
    ))
    assert "  info     C002 lr-too-low  train/loss: fell 7%  (low confidence)" in render(report, PLAIN)
