from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.dom import minidom

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.junit import render
from tests.reporters.reports import finding, healthy_run, sample_report, twin_report


def parse(report: Report) -> ET.Element:
    return ET.fromstring(render(report, RenderOptions()))


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_one_suite_with_a_test_case_per_run_and_per_unreadable_input() -> None:
    root = parse(sample_report())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["rundoctor"]
    by_name = cases(root)
    assert list(by_name) == ["sweep/lr_0.001", "sweep/lr_0.01", "sweep/lr_0.1", "broken/events.out.tfevents.1"]
    assert by_name["sweep/lr_0.1"].get("classname") == "rundoctor.synthetic"
    assert by_name["broken/events.out.tfevents.1"].get("classname") == "rundoctor.unreadable"
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "2")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "2")


def test_findings_at_or_above_fail_on_are_failures_with_evidence_and_advice() -> None:
    case = cases(parse(sample_report()))["sweep/lr_0.1"]
    failures = case.findall("failure")
    assert len(failures) == 1
    failure = failures[0]
    assert failure.get("type") == "non-finite"
    assert failure.get("message") == "train/loss is NaN from step 600 to the end (400 of 1,000 points)"
    body = (failure.text or "").splitlines()
    assert body[0] == "N001 non-finite (error, high confidence)"
    assert "steps 600..999; train/loss" in body
    assert "first_nan_step: 600" in body and "last_finite: NaN" in body
    assert body[-1] == "advice: Lower the learning rate or clip gradients; check the data for NaN."


def test_findings_below_fail_on_go_to_system_out() -> None:
    case = cases(parse(sample_report()))["sweep/lr_0.1"]
    out = (case.findtext("system-out") or "").splitlines()
    assert out == [
        "warning G002 overfitting (steps 500..950): val/loss rose 38% above its minimum at step 500 "
        "while train/loss kept falling",
        "info R001 short-run: the run is short",
    ]


def test_the_failure_threshold_follows_fail_on() -> None:
    warning_gate = cases(parse(sample_report(fail_on=Severity.WARNING)))
    assert [f.get("type") for f in warning_gate["sweep/lr_0.1"].findall("failure")] == ["non-finite", "overfitting"]
    assert warning_gate["sweep/lr_0.001"].find("failure") is not None
    never = parse(sample_report(fail_on=None))
    assert not list(never.iter("failure"))
    assert never.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def test_failed_checks_and_unreadable_inputs_are_errors() -> None:
    by_name = cases(parse(sample_report()))
    error = by_name["sweep/lr_0.1"].find("error")
    assert error is not None and error.get("type") == "loss-spike"
    assert error.get("message") == "the check raised ValueError: boom"
    unreadable = by_name["broken/events.out.tfevents.1"].find("error")
    assert unreadable is not None and unreadable.get("message") == "truncated record at offset 40"
    healthy = by_name["sweep/lr_0.01"]
    assert list(healthy) == []  # a passing test case


def test_awkward_text_and_control_characters_still_give_well_formed_xml() -> None:
    run = healthy_run("runs/<a & b>\x01")
    message = 'loss "spiked" <here> & \x00 there\nagain'
    report = Report(runs=(run,), findings=(finding(run.id, "spike", "S001", Severity.ERROR, message=message),))
    text = render(report, RenderOptions())
    minidom.parseString(text)  # a second, stricter parser
    case = cases(ET.fromstring(text))["runs/<a & b>\ufffd"]
    assert case.find("failure").get("message") == 'loss "spiked" <here> & \ufffd there\nagain'  # type: ignore[union-attr]


def test_output_starts_with_an_xml_declaration() -> None:
    assert render(sample_report(), RenderOptions()).startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")


def test_a_run_with_no_data_fails_at_warning_but_not_at_error() -> None:
    from tests.curves import make_run

    empty = make_run({}, run_id="runs/empty")
    failing = ET.fromstring(render(Report(runs=(empty,), findings=(), fail_on=Severity.WARNING), RenderOptions()))
    (failure,) = failing.iter("failure")
    assert failure.get("type") == "no_data" and failure.get("message") == "no data — the log holds no points"
    passing = ET.fromstring(render(Report(runs=(empty,), findings=()), RenderOptions()))
    assert not list(passing.iter("failure"))


def test_one_run_written_in_two_formats_is_one_test_case() -> None:
    by_name = cases(parse(twin_report()))
    assert list(by_name) == ["out/other.csv", "out/train"]
    case = by_name["out/train"]
    assert [failure.get("type") for failure in case.findall("failure")] == ["non-finite"]
    out = case.findtext("system-out") or ""
    assert "also written as out/train/results.csv (ultralytics-csv)" in out
    assert "class-imbalance (steps 30..49, in ultralytics-csv)" in out
