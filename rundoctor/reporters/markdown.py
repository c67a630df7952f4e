"""GitHub-flavoured markdown for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

A table of runs, worst verdict first (verdict, problem and counts by severity), then each run
that is not healthy, in the same order, led by its diagnosis, with its findings (the primary
first, explained ones marked), then what could not be read or checked.  Superseded findings
are counted, not listed.  One run written in several formats is one row and one section,
under its leader, naming the other formats; a finding found in several formats is listed
once.  Healthy runs of a large sweep fold into a ``<details>`` list below the table.

Text from the logs is untrusted: it is neutralised (control, format and separator characters
escaped visibly, :func:`~rundoctor.reporters.escape.visible`, so it holds no line break) and
markdown-escaped, so a tag or message holding ``|``, a backtick, ``*`` or ``<`` can neither
break the table nor add markup or HTML, and can never start a line of its own.

The whole document stays within :data:`MAX_CHARS`, GitHub's limit on a comment: what does not
fit is left out a whole table row, run section or list item at a time, worst runs kept first,
and a line says what was left out and where the full report is.  The result line is always
there.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rundoctor.diagnosis import Verdict
from rundoctor.findings import Confidence, Finding
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import visible
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
    runs_worst_first,
    severity_counts,
    skipped_line,
    step_range,
    superseded_phrase,
    verdict_name,
    written_in,
)
from rundoctor.summary import RunSummary

# GitHub refuses a pull-request or issue comment body longer than this many characters.
MAX_CHARS = 65_536
# Room kept for the line that says what was left out (its counts are a few digits each).
_NOTE_ROOM = 600

# Characters that start markup anywhere in a line (emphasis, code, links, inline HTML, table
# cells, entities).  Escaped text never starts a line, so line-start markers (#, -, 1.) are safe.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


@dataclass(frozen=True)
class Block:
    """Lines that are kept or left out together; ``noun`` names one of what it holds and
    ``count`` how many, for the line that says what was left out."""

    noun: str
    lines: tuple[str, ...]
    count: int = 1


def render(report: Report, options: RenderOptions) -> str:
    """A Markdown summary (a pull-request comment, a job summary): a table of runs, worst first,
    then their findings; healthy runs are folded away when there are many; at most
    :data:`MAX_CHARS` characters."""
    head = [
        f"## rundoctor: {plural(len(report.groups), 'run')}, {counts_phrase(report.shown_findings)}",
        "",
        "| Run | Verdict | Problem | Errors | Warnings | Info |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    notes = [line for line in (superseded_phrase(report), skipped_line(report)) if line]
    tail = ["", *(part for line in notes for part in (escape(line), "")), f"**{escape(result_line(report))}**"]
    return _document(fit(head, _blocks(report), tail, MAX_CHARS))


def _blocks(report: Report) -> list[Block]:
    """The body in document order: table rows, the healthy fold, run sections, problems."""
    runs = runs_worst_first(report)
    healthy = runs_by_verdict(report)[Verdict.HEALTHY]
    fold = len(healthy) > FOLD_HEALTHY_ABOVE
    blocks = [Block("table row", (_row(report, run),)) for run in runs
              if not (fold and report.verdict(run.id) is Verdict.HEALTHY)]
    if fold:
        lines = ["", f"<details><summary>{plural(len(healthy), 'healthy run')}</summary>", ""]
        lines += [f"- {escape(run.id)}" for run in healthy]
        blocks.append(Block("healthy run", (*lines, "", "</details>"), len(healthy)))
    blocks += [Block("run section", tuple(_section(report, run))) for run in runs
               if report.verdict(run.id) is not Verdict.HEALTHY]
    return blocks + _problems(report)


def _row(report: Report, run: RunSummary) -> str:
    diagnosis = report.diagnosis(run.id)
    verdict = diagnosis.verdict
    counts = severity_counts(report.shown_findings_for(run.id))
    marker = verdict_name(verdict) if verdict is Verdict.HEALTHY else f"**{verdict_name(verdict)}**"
    problem = "" if verdict is Verdict.HEALTHY else escape(diagnosis.problem)
    return f"| {escape(run.id)} | {marker} | {problem} | " + " | ".join(str(counts[s]) for s in SEVERITIES) + " |"


def _section(report: Report, run: RunSummary) -> list[str]:
    diagnosis = report.diagnosis(run.id)
    lead = f"**{diagnosis.verdict.label}: {escape(diagnosis.problem)}** — " + escape(diagnosis.detail)
    if diagnosis.primary is None and diagnosis.advice:
        lead += f"<br>*Advice:* {escape(diagnosis.advice)}"
    also = also_written(report, run.id)
    if also:
        lead += "<br>*Also written as:* " + ", ".join(escape(item) for item in also)
    if len(diagnosis.sources) > 1:
        lead += "<br>*Sources:* " + ", ".join(escape(source) for source in diagnosis.sources)
    lines = ["", f"### {escape(run.id)}", "", lead]
    findings = diagnosis_order(report, run.id)
    if findings:
        lines.append("")
        lines += [_finding(finding, report.run(finding.run), explained_by(report, finding), written_in(report, finding))
                  for finding in findings]
    return lines


def _finding(finding: Finding, run: RunSummary, cause: Finding | None = None, where: str | None = None) -> str:
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


def _problems(report: Report) -> list[Block]:
    """An item per unreadable input and per check that raised, each list's heading kept with
    its first item."""
    blocks: list[Block] = []
    items = [f"- {escape(error.path)}: {escape(error.reason)}" for error in report.errors]
    blocks += _headed("unreadable input", "### Could not read", items)
    failed = [o for o in report.outcomes if o.status is OutcomeStatus.ERROR]
    items = [f"- `{o.code}` {o.check} on {escape(o.run)}: {escape(o.reason or '')}" for o in failed]
    return blocks + _headed("failed check", "### Checks that failed", items)


def _headed(noun: str, heading: str, items: Sequence[str]) -> list[Block]:
    return [Block(noun, ("", heading, "", item) if index == 0 else (item,)) for index, item in enumerate(items)]


def fit(head: Sequence[str], blocks: Sequence[Block], tail: Sequence[str], limit: int) -> list[str]:
    """``head``, as many ``blocks`` as fit in ``limit`` characters, then ``tail``.

    A block that does not fit is left out, and so is every later block of its kind (a table
    cut after its tenth row does not go on with a shorter fifteenth); blocks of other kinds
    still get the room left.  When anything was left out, a line before ``tail`` says what and
    where the full report is.
    """
    every = [*head, *(line for block in blocks for line in block.lines), *tail]
    if _size(every) <= limit:
        return every
    room = limit - _size(head) - _size(tail) - _NOTE_ROOM
    kept: list[str] = []
    left_out: Counter[str] = Counter()
    for block in blocks:
        cost = _size(block.lines)
        if block.noun in left_out or cost > room:
            left_out[block.noun] += block.count
            continue
        kept += block.lines
        room -= cost
    what = ", ".join(plural(count, noun) for noun, count in left_out.items())
    note = (
        f"*Cut to fit a pull-request comment ({limit:,} characters): {what} not shown. "
        "The full report: run `rundoctor check` on the same paths with `--format markdown --output report.md` "
        "(or `--format html`), or see this job's artifacts.*"
    )
    return [*head, *kept, "", note, *tail]


def _size(lines: Sequence[str]) -> int:
    """Characters ``lines`` take in the document, a line end each."""
    return sum(len(line) + 1 for line in lines)


def _document(lines: Sequence[str]) -> str:
    """The lines joined: each is neutralised once more as a whole, so a log string that reached a
    line without :func:`escape` still cannot start a line or carry a control character."""
    return "".join(visible(line) + "\n" for line in lines)


def escape(text: str) -> str:
    """Log text as literal markdown on one line: control characters escaped visibly, then the
    markdown specials backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", visible(text))
