"""JUnit XML for CI test-report views: one test case per run, a failure per failing finding.

Findings at or above ``fail_on`` are ``<failure type="check-name">`` elements (message as the
attribute, evidence and advice as the text); findings below it go to ``<system-out>``, so
the test views agree with the exit code.  A run with no data or too short to judge is a
``<failure>`` when its verdict's level is at or above ``fail_on``; superseded findings are left
out.  A check that raised is an ``<error>`` of its run's
test case, and an input that could not be read is a test case of its own with an ``<error>``.
One run written in several formats is one test case, named by its leader: a finding found in
several formats is one ``<failure>``, and ``<system-out>`` names the other formats.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from rundoctor.findings import Finding
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.jsonable import jsonable
from rundoctor.reporters.wording import also_written, step_range, written_in
from rundoctor.series import Run

# Characters XML 1.0 cannot hold even escaped; a tag name with a stray control byte must not
# make the whole report unparseable.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: Report, options: RenderOptions) -> str:
    """A JUnit XML test suite: a test case per training run, failing at ``fail_on``, and an error case
    per unreadable input, so that CI systems show rundoctor like tests."""
    failing = set(map(id, report.failing()))  # findings hold dicts: identity stands in for a hash
    unjudged = {d.run for d in report.failing_runs()}
    suite = ET.Element("testsuite", name="rundoctor")
    for run in report.leaders:
        suite.append(_run_case(report, run, failing, run.id in unjudged))
    for error in report.errors:
        case = ET.SubElement(suite, "testcase", classname="rundoctor.unreadable", name=_clean(error.path))
        ET.SubElement(case, "error", type="unreadable-input", message=_clean(error.reason))
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
    suite.set("errors", str(sum(1 for case in cases if case.find("error") is not None)))
    suite.set("skipped", "0")
    root = ET.Element("testsuites", name="rundoctor")
    for key in ("tests", "failures", "errors"):
        root.set(key, suite.get(key, "0"))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _run_case(report: Report, run: Run, failing: set[int], unjudged: bool) -> ET.Element:
    case = ET.Element("testcase", classname=f"rundoctor.{run.format}", name=_clean(run.id))
    passing = [f"also written as {item}" for item in also_written(report, run.id)]
    members = {member.id for member in report.members(run.id)}
    if unjudged:
        diagnosis = report.diagnosis(run.id)
        failure = ET.SubElement(case, "failure", type=diagnosis.verdict.value, message=_clean(diagnosis.summary))
        failure.text = _clean(diagnosis.advice)
    for finding in report.shown_findings_for(run.id):
        home = report.run(finding.run)
        if id(finding) in failing:
            failure = ET.SubElement(case, "failure", type=finding.check, message=_clean(finding.message))
            failure.text = _clean(_details(finding, home, written_in(report, finding)))
        else:
            passing.append(_one_line(finding, home, written_in(report, finding)))
    for outcome in report.outcomes:
        if outcome.run in members and outcome.status is OutcomeStatus.ERROR:
            ET.SubElement(case, "error", type=outcome.check, message=_clean(f"the check raised {outcome.reason}"))
    if passing:
        ET.SubElement(case, "system-out").text = _clean("\n".join(passing))
    return case


def _details(finding: Finding, run: Run, written: str | None = None) -> str:
    lines = [f"{finding.code} {finding.check} ({finding.severity.value}, {finding.confidence.value} confidence)"
             + (f" ({written})" if written else "")]
    where = [part for part in (step_range(finding, run), ", ".join(finding.tags)) if part]
    if where:
        lines.append("; ".join(where))
    lines += [f"{key}: {_value(value)}" for key, value in finding.evidence.items()]
    if finding.advice:
        lines.append(f"advice: {finding.advice}")
    return "\n".join(lines)


def _one_line(finding: Finding, run: Run, where: str | None = None) -> str:
    steps = step_range(finding, run)
    notes = ", ".join(part for part in (steps, where) if part)
    return f"{finding.severity.value} {finding.code} {finding.check}{f' ({notes})' if notes else ''}: {finding.message}"


def _value(value: Any) -> str:
    plain = jsonable(value)
    return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
