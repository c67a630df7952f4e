"""GitHub Actions workflow commands: one annotation per finding, then a summary line.

``::error file=runs/a,title=N001 nan-loss::runs/a: loss went NaN (steps 600..999). Lower...``
Warnings become ``::warning`` and info ``::notice``.  Findings the diagnosis superseded are
not annotated; a run with no data (``::warning``) or too short to judge (``::notice``) is.  Inputs that could not be read and checks
that raised are ``::warning`` annotations: they make the report incomplete without being
findings about a run.  One run written in several formats is annotated once: a finding found
in several formats is annotated on the first (the leader's file), with the others named, and
the summary counts training runs.  Escaping follows the runner's rules (actions/toolkit, command.ts):
``%``, CR and LF in the message; additionally ``:`` and ``,`` in properties.
"""

from __future__ import annotations

from collections.abc import Sequence

from rundoctor.findings import Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.wording import counts_phrase, outcome_count, plural, result_line, step_range
from rundoctor.series import Run

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render(report: Report, options: RenderOptions) -> str:
    """GitHub Actions workflow commands: an annotation per shown finding, per run that could not be
    judged and per unreadable input, then a plain summary line."""
    runs = {run.id: run for run in report.runs}
    lines = [_finding(finding, runs.get(finding.run), report.also_in(finding)) for finding in report.shown_findings]
    lines += [
        annotation(COMMAND[d.level], f"{d.run}: {d.summary}. {d.advice}", file=runs[d.run].path, title=d.problem)
        for d in report.diagnoses or ()
        if not d.verdict.judged and d.level is not None
    ]
    lines += [
        annotation("warning", f"unreadable input: {error.reason}", file=error.path, title="unreadable input")
        for error in report.errors
    ]
    lines += [
        annotation(
            "warning",
            f"{outcome.run}: the check raised {outcome.reason}; the rest of the report stands",
            title=f"{outcome.code} {outcome.check} failed",
        )
        for outcome in report.outcomes
        if outcome.status is OutcomeStatus.ERROR
    ]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _finding(finding: Finding, run: Run | None, also: Sequence[Run] = ()) -> str:
    steps = step_range(finding, run)
    text = f"{finding.run}: {finding.message.rstrip().rstrip('.')}" + (f" ({steps})." if steps else ".")
    if also:
        text += " Also in " + ", ".join(other.id for other in also) + "."
    if finding.advice:
        text += f" {finding.advice}"
    path = finding.run if run is None else run.path
    return annotation(COMMAND[finding.severity], text, file=path, title=f"{finding.code} {finding.check}")


def annotation(command: str, message: str, **properties: str) -> str:
    """``::command key=value,...::message`` with data and properties escaped."""
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{command}{' ' + rendered if rendered else ''}::{escape_data(message)}"


def escape_data(text: str) -> str:
    """A workflow command's message escaped (``%``, CR, LF), so that it cannot end the command early."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value escaped: as a message, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _summary(report: Report) -> str:
    """A plain log line (not a command): what was found and what decided the exit code."""
    parts = [plural(len(report.groups), "run"), counts_phrase(report.shown_findings)]
    if report.errors:
        parts.append(plural(len(report.errors), "unreadable input"))
    for status, word in ((OutcomeStatus.ERROR, "failed"), (OutcomeStatus.SKIPPED, "skipped")):
        if count := outcome_count(report, status):
            parts.append(f"{plural(count, 'check')} {word}")
    return f"rundoctor: {'; '.join(parts)}. {result_line(report)}"
