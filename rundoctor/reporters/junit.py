"""JUnit XML for CI test-report views: a test case per finding, so that every consumer shows it.

Consumers read JUnit differently: GitHub's test reporters, GitLab and Jenkins list each test
case with its status and its failure message, and most show one failure per case and little
of a passing case.  So each fact is a test case of its own, named ``RUN: CODE check [tags]``
(class ``rundoctor.<format>``), and its status agrees with the exit code:

- a finding at or above ``fail_on`` is a ``<failure type="check-name">`` (the message as the
  attribute; severity, steps, tags, evidence and advice as the text);
- a warning or error below ``fail_on`` is ``<skipped>`` with the message: shown as "not
  passed" by every consumer without failing the build;
- information below ``fail_on`` is a passing case with its line in ``<system-out>``;
- a run that could not be judged (no data, too short) is a case named by the run, with the
  same rule at its verdict's level; a run with no finding is a passing case named by the
  run, so a clean report is not an empty suite;
- a check that raised, and an input that could not be read, are cases with an ``<error>``.

Superseded findings are left out.  One run written in several formats is shown under its
leader's id; a finding found in several formats is one case that names the other formats.
Every attribute and text is neutralised (:func:`~rundoctor.reporters.escape.visible`) and
the characters XML 1.0 cannot hold even escaped are written the same visible way, so the
document is well-formed whatever bytes a name holds.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from rundoctor.findings import Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import visible
from rundoctor.reporters.jsonable import jsonable
from rundoctor.reporters.wording import also_written, diagnosis_order, fail_on_name, step_range, written_in
from rundoctor.summary import RunSummary

# Characters XML 1.0 cannot hold even as references; after :func:`visible` only the
# noncharacters U+FFFE and U+FFFF are left of them.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report, options: RenderOptions) -> str:
    """A JUnit XML test suite: a test case per finding, per run with none, per check that raised
    and per unreadable input, failing at ``fail_on``."""
    suite = ET.Element("testsuite", name="rundoctor")
    for run in report.leaders:
        _run_cases(report, run, suite)
    for error in report.errors:
        case = _case(suite, "rundoctor.unreadable", error.path)
        _child(case, "error", type="unreadable-input", message=error.reason)
    cases = suite.findall("testcase")
    counts = {
        "tests": len(cases),
        "failures": sum(1 for case in cases if case.find("failure") is not None),
        "errors": sum(1 for case in cases if case.find("error") is not None),
        "skipped": sum(1 for case in cases if case.find("skipped") is not None),
    }
    root = ET.Element("testsuites", name="rundoctor")
    for element in (root, suite):
        for key, count in counts.items():
            element.set(key, str(count))
        element.set("time", "0")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _run_cases(report: Report, run: RunSummary, suite: ET.Element) -> None:
    """The training run's cases: its verdict when it could not be judged or has no finding,
    each finding, each check that raised."""
    diagnosis = report.diagnosis(run.id)
    findings = diagnosis_order(report, run.id)
    if not diagnosis.verdict.judged or not findings:
        case = _case(suite, f"rundoctor.{run.format}", run.id)
        also = [f"also written as {item}" for item in also_written(report, run.id)]
        if diagnosis.level is None:
            if also:
                _child(case, "system-out", also)
        else:
            details = [f"{diagnosis.verdict.value}: {diagnosis.summary}", f"advice: {diagnosis.advice}", *also]
            _status(report, case, diagnosis.level, diagnosis.verdict.value, diagnosis.summary, details)
    for finding in findings:
        home = report.run(finding.run)
        tags = f" [{', '.join(finding.tags)}]" if finding.tags else ""
        case = _case(suite, f"rundoctor.{home.format}", f"{run.id}: {finding.code} {finding.check}{tags}")
        details = _details(finding, home, written_in(report, finding))
        _status(report, case, finding.severity, finding.check, finding.message, details)
    for outcome in report.group_outcomes(run.id):
        if outcome.status is OutcomeStatus.ERROR:
            case = _case(suite, f"rundoctor.{report.run(outcome.run).format}", f"{run.id}: {outcome.code} {outcome.check}")
            _child(case, "error", type=outcome.check, message=f"the check raised {outcome.reason}")


def _status(report: Report, case: ET.Element, level: Severity, kind: str, message: str, details: list[str]) -> None:
    """A ``<failure>`` (with ``details``) at or above ``fail_on``; below it ``<skipped>`` for a
    warning or error and a passing case for information, ``details`` in ``<system-out>``."""
    if report.fail_on is not None and level.rank >= report.fail_on.rank:
        _child(case, "failure", details, type=kind, message=message)
        return
    if level.rank >= Severity.WARNING.rank:
        _child(case, "skipped", message=f"{level.value} below --fail-on {fail_on_name(report)}: {message}")
    _child(case, "system-out", details)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return _child(suite, "testcase", classname=classname, name=name, time="0")


def _child(parent: ET.Element, tag: str, lines: Sequence[str] = (), **attributes: str) -> ET.Element:
    """A sub-element whose attributes and text ``lines`` are neutralised: every string from the
    logs reaches the document through here, and only our own line breaks separate ``lines``."""
    element = ET.SubElement(parent, tag, {key: _xml(value) for key, value in attributes.items()})
    if lines:
        element.text = "\n".join(_xml(line) for line in lines)
    return element


def _details(finding: Finding, run: RunSummary, written: str | None = None) -> list[str]:
    """The finding in lines, each led by our own words: what and how sure, its message,
    where (steps, tags), its evidence, its advice."""
    lines = [f"{finding.code} {finding.check} ({finding.severity.value}, {finding.confidence.value} confidence)"
             + (f" ({written})" if written else ""), f"message: {finding.message}"]
    steps = step_range(finding, run)
    where = [part for part in (steps, f"tags: {', '.join(finding.tags)}" if finding.tags else None) if part]
    if where:
        lines.append("; ".join(where))
    lines += [f"{key}: {_value(value)}" for key, value in finding.evidence.items()]
    if finding.advice:
        lines.append(f"advice: {finding.advice}")
    return lines


def _value(value: Any) -> str:
    plain = jsonable(value)
    return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def _xml(text: str) -> str:
    """Text XML 1.0 can hold, on one line: neutralised, and U+FFFE and U+FFFF (which
    :func:`visible` leaves, being neither control nor format characters) escaped the same way."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", visible(text))
