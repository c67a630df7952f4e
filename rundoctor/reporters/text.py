"""The terminal report: each run led by its diagnosis, then its findings with advice and a
sparkline of the curve.

A run's header line is its diagnosis (``runs/a  SERIOUS: training diverged — train/loss
turned non-finite at step 600 ...``); the primary finding comes first, then the findings it
explains (marked "explained by ..."), then the rest.  Findings the diagnosis superseded are
not printed, only counted.  Runs that are not healthy are shown in full; healthy runs of a
sweep fold into one line, so a report over 200 runs leads with the 20 that need attention.
One run written in several formats is shown once, under its leader, with "also written as"
naming the other formats, and a finding found in several formats is printed once.
Every line fits ``options.width``.
"""

from __future__ import annotations

import io
import re

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from rundoctor.diagnosis import Verdict
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.sparkline import sparkline, value_range
from rundoctor.reporters.wording import (
    FOLD_HEALTHY_ABOVE,
    SEVERITIES,
    also_written,
    checks_ran,
    counts_phrase,
    diagnosis_line,
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
from rundoctor.series import Curve, Run

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_STYLE = {
    Verdict.HEALTHY: "green",
    Verdict.MINOR: "cyan",
    Verdict.TOO_SHORT: "cyan",
    Verdict.PROBLEM: "yellow",
    Verdict.NO_DATA: "yellow",
    Verdict.SERIOUS: "bold red",
}
COLUMN_NAMES = {Severity.ERROR: "errors", Severity.WARNING: "warnings", Severity.INFO: "info"}
FINDING_INDENT = 4  # message, advice and sparklines sit under the finding's header
MAX_SPARKLINES = 3  # per finding; a check about ten loss terms shows the first three
MAX_SPARK_WIDTH = 60  # wider sparklines add columns, not information
MAX_LABEL_WIDTH = 20
HEALTHY_LIST_LINES = 2  # folded healthy ids: this many lines, then "+N more"
_COLUMN_GAP = 3  # between two columns of the summary table: padding on both sides, the box's separator
_FOLD_INDENT = 2  # a run id folded over lines indents the lines after the first


def render(report: Report, options: RenderOptions) -> str:
    """The terminal report: a section per run that is not healthy (or the one run), a summary when
    there are several, then the result line; ANSI styles only with ``options.color``."""
    output = io.StringIO()
    console = Console(
        file=output,
        record=True,
        width=options.width,
        force_terminal=options.color,
        no_color=not options.color,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    several = len(report.groups) > 1
    for run in report.leaders:
        if report.verdict(run.id) is not Verdict.HEALTHY or not several:
            console.print(_run_section(report, run, options.width))
            console.print()
    if several:
        console.print(_summary(report, options.width))
        console.print()
    for block in _problems(report):
        console.print(block)
        console.print()
    for line in (superseded_phrase(report), skipped_line(report)):
        if line:
            console.print(Text(line, style="dim"))
    console.print(Text(result_line(report), style="bold"))
    text = console.export_text(styles=options.color)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def _verdict_line(report: Report, run: Run) -> Text:
    """The run's diagnosis, then (dim) its counts or how many checks found nothing."""
    diagnosis = report.diagnosis(run.id)
    findings = report.shown_findings_for(run.id)
    if findings:
        detail = counts_phrase(findings)
    else:
        detail = f"no findings from {plural(checks_ran(report, run.id), 'check')}"
    if diagnosis.superseded:
        detail += f"; {len(diagnosis.superseded)} superseded"
    if diagnosis.verdict is Verdict.HEALTHY:
        return Text.assemble((run.id, "bold"), "  ", (diagnosis.verdict.label, VERDICT_STYLE[diagnosis.verdict]), f": {detail}")
    return Text.assemble(
        (run.id, "bold"), "  ", (diagnosis_line(diagnosis), VERDICT_STYLE[diagnosis.verdict]), (f"  ({detail})", "dim")
    )


def _run_section(report: Report, run: Run, width: int) -> Group:
    parts: list[RenderableType] = [_verdict_line(report, run)]
    also = also_written(report, run.id)
    if also:
        parts.append(Padding(Text("also written as " + ", ".join(also), style="dim"), (0, 0, 0, 2)))
    diagnosis = report.diagnosis(run.id)
    if diagnosis.advice and diagnosis.primary is None and diagnosis.verdict is not Verdict.HEALTHY:
        parts.append(Padding(Text.assemble(("Advice: ", "bold"), diagnosis.advice), (0, 0, 0, FINDING_INDENT)))
    parts += [
        _finding(report.run(finding.run), finding, width, explained_by(report, finding), written_in(report, finding))
        for finding in diagnosis_order(report, run.id)
    ]
    return Group(*parts)


def _finding(run: Run, finding: Finding, width: int, cause: Finding | None = None, where: str | None = None) -> Group:
    header = Text("  ")
    header.append(f"{finding.severity.value.upper():<8}", SEVERITY_STYLE[finding.severity])
    header.append(f" {finding.code} {finding.check}", "bold")
    steps = step_range(finding, run)
    if steps:
        header.append(f"  {steps}")
    if finding.confidence is not Confidence.HIGH:
        header.append(f"  ({finding.confidence.value} confidence)", "dim")
    if cause is not None:
        header.append(f"  (explained by {cause.check})", "dim")
    if where is not None:
        header.append(f"  ({where})", "dim")
    body: list[RenderableType] = [Text(finding.message)]
    if finding.advice and cause is None:  # an explained finding's advice is its cause's
        body.append(Text.assemble(("Advice: ", "bold"), finding.advice))
    body.extend(_sparklines(run, finding, width - FINDING_INDENT))
    return Group(header, Padding(Group(*body), (0, 0, 0, FINDING_INDENT)))


def _sparklines(run: Run, finding: Finding, width: int) -> list[Text]:
    """The curves the finding is about, with its steps marked; tags without points are left out."""
    tags = [tag for tag in finding.tags if tag in run.tags]
    label_width = min(MAX_LABEL_WIDTH, max((len(tag) for tag in tags[:MAX_SPARKLINES]), default=0))
    drawn = [
        line
        for tag in tags[:MAX_SPARKLINES]
        if (line := _sparkline_text(run.curve(tag).by_step, finding, width, label_width)) is not None
    ]
    if len(tags) > MAX_SPARKLINES:
        drawn.append(Text(f"+{len(tags) - MAX_SPARKLINES} more curves", style="dim"))
    return drawn


def _sparkline_text(curve: Curve, finding: Finding, width: int, label_width: int) -> Text | None:
    """``label ▁▂▃  low..high`` and, under it, ``^^^`` beneath the finding's steps."""
    scale = value_range(curve.values)
    spark_width = min(MAX_SPARK_WIDTH, width - label_width - 1 - 2 - len(scale))
    if spark_width < 8:  # too narrow to show a shape: the message says it all
        return None
    line = sparkline(curve.steps, curve.values, spark_width, (finding.first_step, finding.last_step))
    style = SEVERITY_STYLE[finding.severity]
    label = curve.tag if len(curve.tag) <= label_width else curve.tag[: label_width - 1] + "…"
    bars = Text(line.bars)
    if line.region is not None:
        bars.stylize(style, line.region[0], line.region[1] + 1)
    text = Text.assemble((f"{label:<{label_width}} ", "dim"), bars, (f"  {scale}", "dim"))
    if line.region is not None:
        text.append("\n" + " " * (label_width + 1) + line.marks, style=style)
    return text


def _summary(report: Report, width: int) -> Group:
    grouped = runs_by_verdict(report)
    healthy = grouped[Verdict.HEALTHY]
    fold = len(healthy) > FOLD_HEALTHY_ABOVE
    rows = []
    for run in report.leaders:
        verdict = report.verdict(run.id)
        if fold and verdict is Verdict.HEALTHY:
            continue
        counts = severity_counts(report.shown_findings_for(run.id))
        rows.append((run.id, verdict, [str(counts[severity]) if counts[severity] else "-" for severity in SEVERITIES]))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    # The other columns take what they need; the run ids fold at '/' into the rest.
    verdict_width = max([len("verdict"), *(len(verdict_name(verdict)) for _, verdict, _ in rows)])
    count_widths = [max([len(COLUMN_NAMES[severity]), *(len(cells[i]) for _, _, cells in rows)])
                    for i, severity in enumerate(SEVERITIES)]
    room = max(width - verdict_width - sum(count_widths) - _COLUMN_GAP * (1 + len(count_widths)), 16)
    folded = [_fold_path(run_id, room) for run_id, _, _ in rows]
    table.add_column("run", width=max([len("run"), *(len(line) for ids in folded for line in ids.splitlines())]))
    table.add_column("verdict", no_wrap=True)
    for severity in SEVERITIES:
        table.add_column(COLUMN_NAMES[severity], justify="right", no_wrap=True)
    for ids, (_, verdict, cells) in zip(folded, rows):
        table.add_row(ids, Text(verdict_name(verdict), VERDICT_STYLE[verdict]), *cells)
    parts: list[RenderableType] = [Text(_headline(report, grouped), style="bold")]
    if table.row_count:
        parts.append(table)
    if fold:
        parts.append(_folded_healthy(healthy, width))
    return Group(*parts)


def _fold_path(path: str, width: int) -> str:
    """``path`` in lines of at most ``width``, broken after a '/' where one fits (else
    inside a name too long for a line); the lines after the first are indented."""
    indent = " " * _FOLD_INDENT
    lines: list[str] = []
    line = ""
    for part in re.findall(r"[^/]*/|[^/]+", path):  # each part keeps its trailing '/'
        if line.strip() and len(line) + len(part) > width:
            lines.append(line)
            line = indent
        while len(line) + len(part) > width:
            room = width - len(line)
            lines.append(line + part[:room])
            line, part = indent, part[room:]
        line += part
    lines.append(line)
    return "\n".join(lines)


def _headline(report: Report, grouped: dict[Verdict, list[Run]]) -> str:
    by_verdict = ", ".join(f"{len(runs):,} {verdict_name(verdict)}" for verdict, runs in grouped.items() if runs)
    return f"{plural(len(report.groups), 'run')}: {by_verdict}; {counts_phrase(report.shown_findings)}"


def _folded_healthy(healthy: list[Run], width: int) -> Text:
    """``180 healthy runs: a, b, c, ... +170 more`` in at most HEALTHY_LIST_LINES lines."""
    prefix = f"{len(healthy):,} healthy runs: "
    budget = width * HEALTHY_LIST_LINES - len(prefix)
    shown: list[str] = []
    for index, run in enumerate(healthy):
        rest = len(healthy) - index - 1
        tail = f", +{rest:,} more" if rest else ""
        if len(", ".join([*shown, run.id])) + len(tail) > budget:
            break
        shown.append(run.id)
    more = len(healthy) - len(shown)
    listed = ", ".join(shown) + (f"{', ' if shown else ''}+{more:,} more" if more else "")
    return Text.assemble((prefix, VERDICT_STYLE[Verdict.HEALTHY]), listed)


def _problems(report: Report) -> list[Group]:
    """Inputs that could not be read and checks that raised: both make the report incomplete."""
    blocks: list[Group] = []
    if report.errors:
        blocks.append(_titled_list(
            f"Could not read ({len(report.errors):,}):", [f"{e.path}: {e.reason}" for e in report.errors]
        ))
    failed = [o for o in report.outcomes if o.status is OutcomeStatus.ERROR]
    if failed:
        blocks.append(_titled_list(
            f"Checks that failed ({len(failed):,}); the rest of the report stands:",
            [f"{o.code} {o.check} on {o.run}: {o.reason}" for o in failed],
        ))
    return blocks


def _titled_list(title: str, items: list[str]) -> Group:
    """A red title and its items indented under it (wrapped lines keep the indent)."""
    return Group(Text(title, style="bold red"), *(Padding(Text(item), (0, 0, 0, 2)) for item in items))
