"""GitHub Actions workflow commands: one annotation per run that needs attention, then a summary.

``::error file=runs/a,title=SERIOUS%3A training diverged (NaN/inf)::runs/a: 1 error, 1 info%0A- error N001 ...``

A training run (one run written in several formats is one, under its leader's file) with
findings, with a verdict that could not be judged (no data, too short) or with a check that
raised gets one annotation at its worst level (``::error``, ``::warning``, ``::notice`` for
information), titled by its diagnosis, listing each finding on a line of its own (severity,
code, check, steps, message; the formats that also have it), the checks that raised, and the
diagnosis's advice once.  Superseded findings are left out.  An input that could not be read
is a ``::warning`` of its own: it makes the report incomplete without being a finding.

GitHub shows at most :data:`SHOWN_PER_LEVEL` error, warning and notice annotations per step
(and 50 per job) and drops the rest without a word, in the order they were written; so the
annotations are written worst first (level, then verdict, then run id), at most that many of
each level (30 in all, within the job's 50), and the summary line says how many were folded
and where to read them all.
``file=`` is relative to the workspace (:attr:`RenderOptions.workspace`) so that GitHub can
link it; a path outside the workspace stays as given.

Log text is neutralised (:func:`~rundoctor.reporters.escape.visible`: no line break, no
control character) before the runner's own escaping (actions/toolkit, command.ts: ``%``, CR
and LF in the message; additionally ``:`` and ``,`` in properties), so every line written
here starts with an annotation of ours or with ``rundoctor: ``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rundoctor.diagnosis import Verdict
from rundoctor.findings import Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import visible
from rundoctor.reporters.wording import (
    VERDICT_ORDER,
    counts_phrase,
    diagnosis_order,
    outcome_count,
    plural,
    result_line,
    step_range,
    written_in,
)
from rundoctor.summary import RunSummary

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
# GitHub's display limit per step for each of error, warning and notice annotations.
SHOWN_PER_LEVEL = 10


@dataclass(frozen=True)
class Annotation:
    """One workflow command before escaping: its level, message lines and properties."""

    level: Severity
    lines: tuple[str, ...]
    file: str
    title: str
    order: tuple[int, str]  # within a level: the verdict's place in VERDICT_ORDER (inputs last), then the id

    def command(self) -> str:
        """The workflow command, escaped: one physical line."""
        return annotation(COMMAND[self.level], self.lines, file=self.file, title=self.title)


def render(report: Report, options: RenderOptions) -> str:
    """GitHub Actions workflow commands: an annotation per run that needs attention and per
    unreadable input, worst first within GitHub's display limits, then a plain summary line."""
    made = [_run_annotation(report, run, options) for run in report.leaders]
    made += [
        Annotation(Severity.WARNING, (f"unreadable input: {error.reason}",),
                   workspace_path(error.path, options), "unreadable input", (len(VERDICT_ORDER), error.path))
        for error in report.errors
    ]
    ordered = sorted((item for item in made if item is not None), key=lambda a: (-a.level.rank, a.order))
    shown: list[Annotation] = []
    folded: Counter[Severity] = Counter()
    for item in ordered:
        if sum(1 for other in shown if other.level is item.level) < SHOWN_PER_LEVEL:
            shown.append(item)
        else:
            folded[item.level] += 1
    return "".join(item.command() + "\n" for item in shown) + _summary(report, folded) + "\n"


def _run_annotation(report: Report, run: RunSummary, options: RenderOptions) -> Annotation | None:
    """The training run's annotation, or None when it has nothing to say (a healthy run whose
    checks all ran)."""
    diagnosis = report.diagnosis(run.id)
    failed = [o for o in report.group_outcomes(run.id) if o.status is OutcomeStatus.ERROR]
    level = diagnosis.level
    if failed and (level is None or level.rank < Severity.WARNING.rank):
        level = Severity.WARNING  # the report on this run is incomplete
    if level is None:
        return None
    verdict = diagnosis.verdict
    findings = diagnosis_order(report, run.id)
    # The title names the diagnosis; the first line says what the list below holds (or why the
    # run could not be judged), so the primary's message is not told twice.
    head = counts_phrase(findings) if verdict.judged else diagnosis.detail
    if verdict is Verdict.HEALTHY:
        head, title = f"{plural(len(failed), 'check')} raised", "check failed"
    elif verdict is Verdict.MINOR:  # a note does not establish a named cause: no problem in the title
        title = f"{verdict.label}: {findings[0].check if findings else diagnosis.problem}"
    else:
        title = f"{verdict.label}: {diagnosis.problem}"
    lines = [f"{run.id}: {head}"]
    lines += [_finding_line(report, finding) for finding in findings]
    lines += [f"- check {o.code} {o.check} raised {o.reason}; the rest of the report stands" for o in failed]
    if diagnosis.advice:
        lines.append(f"Advice: {diagnosis.advice}")
    order = (VERDICT_ORDER.index(verdict), run.id)
    return Annotation(level, tuple(lines), workspace_path(run.path, options), title, order)


def _finding_line(report: Report, finding: Finding) -> str:
    steps = step_range(finding, report.run(finding.run))
    notes = ", ".join(part for part in (steps, written_in(report, finding)) if part)
    return (f"- {finding.severity.value} {finding.code} {finding.check}{f' ({notes})' if notes else ''}: "
            f"{finding.message.rstrip()}")


def workspace_path(path: str, options: RenderOptions) -> str:
    """``path`` relative to the workspace when it lies inside it (a relative path is taken
    from :attr:`RenderOptions.cwd`), else as given: GitHub links ``file=`` to the repository
    only when it is relative to the checkout."""
    if not options.workspace:
        return path
    absolute = os.path.normpath(os.path.join(options.cwd or options.workspace, path))  # absolute stays absolute
    try:
        inside = os.path.commonpath([absolute, options.workspace]) == os.path.normpath(options.workspace)
    except ValueError:  # a relative path against an absolute workspace, or another drive
        return path
    return os.path.relpath(absolute, options.workspace) if inside else path


def annotation(command: str, lines: Sequence[str], **properties: str) -> str:
    """``::command key=value,...::message``: every line and property neutralised, then escaped
    as the runner wants; the message's line breaks are only ours, between ``lines`` (``%0A``,
    shown as line breaks in the annotation)."""
    rendered = ",".join(f"{key}={escape_property(visible(value))}" for key, value in properties.items())
    data = "\n".join(visible(line) for line in lines)
    return f"::{command}{' ' + rendered if rendered else ''}::{escape_data(data)}"


def escape_data(text: str) -> str:
    """A workflow command's message escaped (``%``, CR, LF), so that it cannot end the command early."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value escaped: as a message, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _summary(report: Report, folded: Counter[Severity]) -> str:
    """A plain log line (not a command): what was found, what GitHub does not show, and what
    decided the exit code."""
    parts = [plural(len(report.groups), "run"), counts_phrase(report.shown_findings)]
    if report.errors:
        parts.append(plural(len(report.errors), "unreadable input"))
    for status, word in ((OutcomeStatus.ERROR, "failed"), (OutcomeStatus.SKIPPED, "skipped")):
        if count := outcome_count(report, status):
            parts.append(f"{plural(count, 'check')} {word}")
    if folded:
        levels = ", ".join(plural(folded[level], COMMAND[level]) for level in sorted(folded, key=lambda s: -s.rank))
        parts.append(
            f"{plural(sum(folded.values()), 'annotation')} folded ({levels}): GitHub shows {SHOWN_PER_LEVEL} "
            "of each level per step; --format markdown, html or json lists every run"
        )
    return f"rundoctor: {'; '.join(parts)}. {result_line(report)}"
