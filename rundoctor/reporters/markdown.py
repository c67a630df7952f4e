"""GitHub-flavoured markdown for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

A table of runs (verdict, problem and counts by severity), then each run that is not
healthy led by its diagnosis, with its findings (the primary first, explained ones marked),
then what could not be read or checked.  Superseded findings are counted, not listed.  One
run written in several formats is one row and one section, under its leader, naming the other
formats; a finding found in several formats is listed once.  Healthy runs of a large sweep fold into a
``<details>`` list below the table.  Text from logs is escaped, so a tag or message holding
``|``, ``*`` or ``<`` cannot break the table or the page.
"""

from __future__ import annotations

import re

from rundoctor.diagnosis import Verdict
from rundoctor.findings import Confidence, Finding
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.wording import (
    FOLD_HEALTHY_ABOVE,
    SEVERITIES,
    also_written,
    counts_phrase,
    diagnosis_order,
    explained_by,
    plural,
    result_line,
    runs_by_verdict,
    severity_counts,
    skipped_line,
    step_range,
    superseded_phrase,
    verdict_name,
    written_in,
)
from rundoctor.series import Run

# Characters that start markup anywhere in a line (emphasis, code, links, inline HTML, table
# cells, entities).  Escaped text never starts a line, so line-start markers (#, -, 1.) are safe.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def render(report: Report, options: RenderOptions) -> str:
    """A Markdown summary (a pull-request comment, a job summary): a table of runs, then their findings;
    healthy runs are folded away when there are many."""
    healthy = runs_by_verdict(report)[Verdict.HEALTHY]
    fold = len(healthy) > FOLD_HEALTHY_ABOVE
    lines = [
        f"## rundoctor: {plural(len(report.groups), 'run')}, {counts_phrase(report.shown_findings)}",
        "",
        "| Run | Verdict | Problem | Errors | Warnings | Info |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for run in report.leaders:
        diagnosis = report.diagnosis(run.id)
        verdict = diagnosis.verdict
        if fold and verdict is Verdict.HEALTHY:
            continue
        counts = severity_counts(report.shown_findings_for(run.id))
        marker = verdict_name(verdict) if verdict is Verdict.HEALTHY else f"**{verdict_name(verdict)}**"
        problem = "" if verdict is Verdict.HEALTHY else escape(diagnosis.problem)
        lines.append(
            f"| {escape(run.id)} | {marker} | {problem} | " + " | ".join(str(counts[s]) for s in SEVERITIES) + " |"
        )
    if fold:
        lines += ["", f"<details><summary>{plural(len(healthy), 'healthy run')}</summary>", ""]
        lines += [f"- {escape(run.id)}" for run in healthy]
        lines += ["", "</details>"]
    for run in report.leaders:
        diagnosis = report.diagnosis(run.id)
        if diagnosis.verdict is Verdict.HEALTHY:
            continue
        lines += ["", f"### {escape(run.id)}", "", f"**{diagnosis.verdict.label}: {escape(diagnosis.problem)}** — "
                  + escape(diagnosis.detail)]
        if diagnosis.primary is None and diagnosis.advice:
            lines[-1] += f"<br>*Advice:* {escape(diagnosis.advice)}"
        also = also_written(report, run.id)
        if also:
            lines[-1] += "<br>*Also written as:* " + ", ".join(escape(item) for item in also)
        if len(diagnosis.sources) > 1:
            lines[-1] += "<br>*Sources:* " + ", ".join(escape(source) for source in diagnosis.sources)
        findings = diagnosis_order(report, run.id)
        if findings:
            lines.append("")
            lines += [_finding(finding, report.run(finding.run), explained_by(report, finding), written_in(report, finding))
                      for finding in findings]
    lines += _problems(report)
    notes = [line for line in (superseded_phrase(report), skipped_line(report)) if line]
    lines += ["", *(part for line in notes for part in (escape(line), "")), f"**{escape(result_line(report))}**"]
    return "\n".join(lines) + "\n"


def _finding(finding: Finding, run: Run, cause: Finding | None = None, where: str | None = None) -> str:
    steps = step_range(finding, run)
    head = f"- **{finding.severity.value}** `{finding.code}` {finding.check}"
    if steps:
        head += f" ({steps})"
    if finding.confidence is not Confidence.HIGH:
        head += f", {finding.confidence.value} confidence"
    if cause is not None:
        head += f", explained by {cause.check}"
    if where is not None:
        head += f", {escape(where)}"
    text = f"{head}: {escape(finding.message)}"
    if finding.advice and cause is None:
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
