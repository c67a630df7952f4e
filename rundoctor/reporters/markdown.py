"""GitHub-flavoured markdown for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

A table of runs (verdict and counts by severity), then the findings of each run with
findings, then what could not be read or checked.  Healthy runs of a large sweep fold into a
``<details>`` list below the table.  Text from logs is escaped, so a tag or message holding
``|``, ``*`` or ``<`` cannot break the table or the page.
"""

from __future__ import annotations

import re

from rundoctor.findings import Confidence, Finding
from rundoctor.report import OutcomeStatus, Report, Verdict
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.wording import (
    FOLD_HEALTHY_ABOVE,
    SEVERITIES,
    counts_phrase,
    plural,
    result_line,
    runs_by_verdict,
    severity_counts,
    skipped_line,
    step_range,
)
from rundoctor.series import Run

# Characters that start markup anywhere in a line (emphasis, code, links, inline HTML, table
# cells, entities).  Escaped text never starts a line, so line-start markers (#, -, 1.) are safe.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def render(report: Report, options: RenderOptions) -> str:
    healthy = runs_by_verdict(report)[Verdict.HEALTHY]
    fold = len(healthy) > FOLD_HEALTHY_ABOVE
    lines = [
        f"## rundoctor: {plural(len(report.runs), 'run')}, {counts_phrase(report.findings)}",
        "",
        "| Run | Verdict | Errors | Warnings | Info |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for run in report.runs:
        verdict = report.verdict(run.id)
        if fold and verdict is Verdict.HEALTHY:
            continue
        counts = severity_counts(report.findings_for(run.id))
        marker = verdict.value if verdict is Verdict.HEALTHY else f"**{verdict.value}**"
        lines.append(f"| {escape(run.id)} | {marker} | " + " | ".join(str(counts[s]) for s in SEVERITIES) + " |")
    if fold:
        lines += ["", f"<details><summary>{plural(len(healthy), 'healthy run')}</summary>", ""]
        lines += [f"- {escape(run.id)}" for run in healthy]
        lines += ["", "</details>"]
    for run in report.runs:
        findings = report.findings_for(run.id)
        if findings:
            lines += ["", f"### {escape(run.id)}", ""]
            lines += [_finding(finding, run) for finding in findings]
    lines += _problems(report)
    skipped = skipped_line(report)
    lines += ["", *([escape(skipped), ""] if skipped else []), f"**{escape(result_line(report))}**"]
    return "\n".join(lines) + "\n"


def _finding(finding: Finding, run: Run) -> str:
    steps = step_range(finding, run)
    head = f"- **{finding.severity.value}** `{finding.code}` {finding.check}"
    if steps:
        head += f" ({steps})"
    if finding.confidence is not Confidence.HIGH:
        head += f", {finding.confidence.value} confidence"
    text = f"{head}: {escape(finding.message)}"
    if finding.advice:
        text += f"<br>*Advice:* {escape(finding.advice)}"
    return text


def _problems(report: Report) -> list[str]:
    lines: list[str] = []
    if report.errors:
        lines += ["", "### Could not read", ""]
        lines += [f"- {escape(error.path)}: {escape(error.reason)}" for error in report.errors]
    failed = [o for o in report.outcomes if o.status is OutcomeStatus.ERROR]
    if failed:
        lines += ["", "### Checks that failed", ""]
        lines += [f"- `{o.code}` {o.check} on {escape(o.run)}: {escape(o.reason or '')}" for o in failed]
    return lines


def escape(text: str) -> str:
    """Log text as literal markdown: specials backslash-escaped, line breaks as ``<br>``."""
    return _SPECIAL.sub(r"\\\1", text).replace("\r\n", "\n").replace("\n", "<br>")
