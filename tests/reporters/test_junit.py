from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.dom import minidom

from hypothesis import given, settings
from hypothesis import strategies as st

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.junit import render
from tests.curves import make_run
from tests.reporters.reports import finding, healthy_run, sample_report, twin_report


def parse(report: Report) -> ET.Element:
    return ET.fromstring(render(report, RenderOptions()))


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def status(case: ET.Element) -> str:
    return next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")


def test_a_test_case_per_finding_per_run_without_findings_per_failed_check_and_per_unreadable_input() -> None:
    root = parse(sample_report())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["rundoctor"]
    assert {name: status(case) for name, case in cases(root).items()} == {
        "sweep/lr_0.001: P001 loss-plateau [train/loss]": "skipped",
        "sweep/lr_0.01": "passed",
        "sweep/lr_0.1: N001 non-finite [train/loss]": "failure",
        "sweep/lr_0.1: G002 overfitting [val/loss, train/loss]": "skipped",
        "sweep/lr_0.1: R001 short-run": "passed",
        "sweep/lr_0.1: S001 loss-spike": "error",
        "broken/events.out.tfevents.1": "error",
    }
    by_name = cases(root)
    assert by_name["sweep/lr_0.1: N001 non-finite [train/loss]"].get("classname") == "rundoctor.synthetic"
    assert by_name["broken/events.out.tfevents.1"].get("classname") == "rundoctor.unreadable"
    counts = ("7", "1", "2", "2")
    for element in (root, suites[0]):
        assert (element.get("tests"), element.get("failures"), element.get("errors"), element.get("skipped")) == counts


def test_findings_at_or_above_fail_on_are_failures_with_evidence_and_advice() -> None:
    case = cases(parse(sample_report()))["sweep/lr_0.1: N001 non-finite [train/loss]"]
    (failure,) = case.findall("failure")
    assert failure.get("type") == "non-finite"
    assert failure.get("message") == "train/loss is NaN from step 600 to the end (400 of 1,000 points)"
    body = (failure.text or "").splitlines()
    assert body[0] == "N001 non-finite (error, high confidence)"
    assert "steps 600..999; tags: train/loss" in body
    assert "first_nan_step: 600" in body and "last_finite: NaN" in body
    assert body[-1] == "advice: Lower the learning rate or clip gradients; check the data for NaN."


def test_warnings_below_fail_on_are_skipped_and_information_passes_with_its_text_in_system_out() -> None:
    by_name = cases(parse(sample_report()))
    warning = by_name["sweep/lr_0.1: G002 overfitting [val/loss, train/loss]"]
    skipped = warning.find("skipped")
    assert skipped is not None and skipped.get("message") == (
        "warning below --fail-on error: val/loss rose 38% above its minimum at step 500 while train/loss kept falling"
    )
    assert "advice: Stop earlier or regularise." in (warning.findtext("system-out") or "").splitlines()
    info = by_name["sweep/lr_0.1: R001 short-run"]
    assert [child.tag for child in info] == ["system-out"]
    assert (info.findtext("system-out") or "").splitlines()[:2] == [
        "R001 short-run (info, high confidence)", "message: the run is short",
    ]


def test_the_failure_threshold_follows_fail_on() -> None:
    warning_gate = cases(parse(sample_report(fail_on=Severity.WARNING)))
    assert status(warning_gate["sweep/lr_0.1: G002 overfitting [val/loss, train/loss]"]) == "failure"
    assert status(warning_gate["sweep/lr_0.001: P001 loss-plateau [train/loss]"]) == "failure"
    assert status(warning_gate["sweep/lr_0.1: R001 short-run"]) == "passed"  # info stays below warning
    info_gate = cases(parse(sample_report(fail_on=Severity.INFO)))
    assert status(info_gate["sweep/lr_0.1: R001 short-run"]) == "failure"
    never = parse(sample_report(fail_on=None))
    assert not list(never.iter("failure"))
    assert status(cases(never)["sweep/lr_0.1: N001 non-finite [train/loss]"]) == "skipped"
    assert never.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def test_failed_checks_and_unreadable_inputs_are_errors() -> None:
    by_name = cases(parse(sample_report()))
    error = by_name["sweep/lr_0.1: S001 loss-spike"].find("error")
    assert error is not None and error.get("type") == "loss-spike"
    assert error.get("message") == "the check raised ValueError: boom"
    unreadable = by_name["broken/events.out.tfevents.1"].find("error")
    assert unreadable is not None and unreadable.get("message") == "truncated record at offset 40"
    assert list(by_name["sweep/lr_0.01"]) == []  # a passing test case


def test_awkward_text_and_control_characters_give_well_formed_xml_with_visible_escapes() -> None:
    run = healthy_run("runs/<a & b>\x01\ufffe\u202e")
    message = 'loss "spiked" <here> & \x00 there\nagain\r\n::error::x'
    report = Report(runs=(run,), findings=(finding(run.id, "spike", "S001", Severity.ERROR, message=message),))
    text = render(report, RenderOptions())
    minidom.parseString(text)  # a second, stricter parser
    case = cases(ET.fromstring(text))["runs/<a & b>\\x01\\ufffe\\u202e: S001 spike [train/loss]"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == 'loss "spiked" <here> & \\x00 there\\nagain\\r\\n::error::x'
    assert not any(line.lstrip().startswith("::error::") for line in text.splitlines())


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet=st.characters(codec=None), max_size=20), message=st.text(max_size=20))
def test_any_character_in_a_name_or_message_gives_well_formed_xml(name: str, message: str) -> None:
    run = healthy_run(f"runs/{name}")
    report = Report(runs=(run,), findings=(finding(run.id, "spike", "S001", Severity.ERROR, message=message),))
    text = render(report, RenderOptions())
    root = ET.fromstring(text.encode("utf-8"))
    assert len(list(root.iter("testcase"))) == 1


def test_output_starts_with_an_xml_declaration() -> None:
    assert render(sample_report(), RenderOptions()).startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")


def test_a_run_with_no_data_fails_at_warning_and_is_skipped_at_error() -> None:
    empty = make_run({}, run_id="runs/empty")
    failing = ET.fromstring(render(Report(runs=(empty,), findings=(), fail_on=Severity.WARNING), RenderOptions()))
    (failure,) = failing.iter("failure")
    assert failure.get("type") == "no_data" and failure.get("message") == "no data — the log holds no points"
    passing = ET.fromstring(render(Report(runs=(empty,), findings=()), RenderOptions()))
    assert not list(passing.iter("failure"))
    (skipped,) = passing.iter("skipped")
    assert skipped.get("message") == "warning below --fail-on error: no data — the log holds no points"


def test_one_run_written_in_two_formats_is_shown_under_its_leader() -> None:
    by_name = cases(parse(twin_report()))
    assert list(by_name) == [
        "out/other.csv",
        "out/train: N001 non-finite [train/box_loss]",
        "out/train: M004 class-imbalance [metrics/mAP50(B)]",
    ]
    nan = by_name["out/train: N001 non-finite [train/box_loss]"]
    assert nan.get("classname") == "rundoctor.tensorboard" and status(nan) == "failure"
    assert "(also in ultralytics-csv)" in (nan.findtext("failure") or "")
    imbalance = by_name["out/train: M004 class-imbalance [metrics/mAP50(B)]"]
    assert imbalance.get("classname") == "rundoctor.ultralytics-csv"
    assert "(in ultralytics-csv)" in (imbalance.findtext("system-out") or "")
