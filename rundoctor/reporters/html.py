"""The HTML report: one self-contained page with a plot of every diagnosed curve.

``rundoctor check PATH --format html --output report.html`` writes a single file that opens
offline in any browser: a sortable summary table of all runs, then per run its key curves
(loss, accuracy-like metric, learning rate) and every curve a finding is about, each
finding's step range shaded on its plot and its message beside it.  Healthy runs are folded
(``<details>``) so a sweep of hundreds of runs leads with the ones that need attention;
with ``--by``, a table under the summary says which logged settings go with which diagnosis.
One run written in several formats is one row and one section, under its leader: the
leader's curves, then the findings only another format has on that format's curves; a
finding found in several formats is listed once.  Every string, the logs' names above all, is
written through :func:`~rundoctor.reporters.escape.html_text`: control and bidirectional
characters escaped visibly, markup characters as entities.

Why inline SVG written by us, not a plotting library:

- nothing to install or pin: a JavaScript charting library would have to be inlined into
  every report to work offline (hundreds of kilobytes to megabytes) and pinned, and
  matplotlib images would make a basic report depend on an optional extra;
- small and fast: a curve is at most 500 points of path data (about 3 KB), and the browser
  draws SVG as it parses the page, with no script to run first; a folded run costs parsing
  only, so a 200-run sweep opens in a few seconds;
- crisp at any zoom, printable, its text selectable and found by the browser's search;
- deterministic: the same report gives the same bytes, so the page is golden-tested.

The price is drawing axes and ticks ourselves (:mod:`rundoctor.reporters.svg`) and keeping
interaction to what CSS and a few lines of inline script do: sorting the summary table, a
log-scale toggle on loss plots, and highlighting a finding's band when its message is hovered.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from importlib import resources

from rundoctor.diagnosis import Diagnosis, Verdict
from rundoctor.findings import Confidence, Finding
from rundoctor.report import CheckOutcome, OutcomeStatus, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import html_text
from rundoctor.reporters.heatstrip import heat_strips
from rundoctor.reporters.panels import (
    NO_CURVE_NOTE,
    NON_FINITE_COLOR,
    SERIES_COLORS,
    SEVERITY_COLORS,
    Panel,
    picture,
    shaded_range,
)
from rundoctor.reporters.svg import CHART_STYLE, Shade, chart, has_log_view
from rundoctor.reporters.wording import (
    SEVERITIES,
    VERDICT_ORDER,
    also_written,
    counts_phrase,
    diagnosis_order,
    explained_by,
    outcome_count,
    plural,
    result_line,
    runs_by_verdict,
    runs_worst_first,
    severity_counts,
    step_range,
    superseded_phrase,
    verdict_name,
    written_in,
)
from rundoctor.summary import RunSummary

# The verdict column's sort key in the summary table: the worse the verdict (VERDICT_ORDER), the higher.
VERDICT_RANK = {verdict: rank for rank, verdict in enumerate(reversed(VERDICT_ORDER))}
# (header, numeric): the severity columns follow SEVERITIES.
SUMMARY_COLUMNS = (
    ("Run", False), ("Verdict", False), ("Problem", False), ("Errors", True), ("Warnings", True),
    ("Info", True), ("Format", False), ("Points", True),
)
# The sweep view's table (``--by``): a finding per row, the side where its diagnosis is more frequent first.
SWEEP_COLUMNS = (
    ("Parameter", False), ("Diagnosis", False), ("Settings", False), ("Runs with it", True),
    ("Other settings", False), ("Runs with it", True), ("Note", False),
)


def render(report: Report, options: RenderOptions) -> str:
    """The page; ``options`` (terminal width and colour) do not apply to HTML."""
    return "".join(chunks(report, options))


def chunks(report: Report, options: RenderOptions) -> Iterator[str]:
    """:func:`render`'s page in pieces, each run's section made as it is written: a page of
    thousands of runs is written without holding its whole text."""
    runs = runs_worst_first(report)
    anchors = {run.id: f"run-{index}" for index, run in enumerate(runs)}
    title = f"rundoctor report: {plural(len(report.groups), 'run')}"
    yield (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html_text(title)}</title>\n<style>{_asset('report.css')}{CHART_STYLE}{_palette()}</style>\n</head>\n"
        "<body>\n<main>\n"
    )
    parts = itertools.chain(
        (_header(report), _problems(report), _summary_table(report, runs, anchors), _sweep(report),
         '<section class="runs"><h2>Runs</h2>'),
        (_run_section(report, run, anchors[run.id]) for run in runs),  # each made when it is written
        ("</section>", _footer(report)),
    )
    written = False
    for text in parts:
        if text:  # parts joined by a line break, empty ones left out
            yield ("\n" if written else "") + text
            written = True
    yield f"\n</main>\n<script>{_asset('report.js')}</script>\n</body>\n</html>\n"


def _header(report: Report) -> str:
    grouped = runs_by_verdict(report)
    tiles = "".join(
        f'<div class="tile v-{verdict.value}{"" if grouped[verdict] else " none"}"><span class="tile-count">{len(grouped[verdict]):,}</span>'
        f'<span class="tile-label">{verdict_name(verdict)}</span></div>'
        for verdict in VERDICT_ORDER
    )
    failing = "failing" if report.exit_code else "passing"
    return (
        '<header>\n<h1>rundoctor report</h1>\n'
        f'<p class="headline">{html_text(plural(len(report.groups), "run"))} diagnosed; '
        f"{html_text(counts_phrase(report.shown_findings))}</p>\n"
        f'<div class="tiles">{tiles}</div>\n'
        f'<p class="result {failing}">{html_text(result_line(report))}</p>\n</header>'
    )


def _problems(report: Report) -> str:
    """Unreadable inputs and checks that raised: both make the report incomplete."""
    failed = [o for o in report.outcomes if o.status is OutcomeStatus.ERROR]
    blocks = []
    if report.errors:
        items = "".join(f"<li><code>{html_text(e.path)}</code>: {html_text(e.reason)}</li>" for e in report.errors)
        blocks.append(f"<h2>Could not read ({len(report.errors):,})</h2><ul>{items}</ul>")
    if failed:
        items = "".join(
            f"<li><code>{html_text(o.code)}</code> {html_text(o.check)} on <code>{html_text(o.run)}</code>: "
            f"{html_text(o.reason or '')}</li>"
            for o in failed
        )
        blocks.append(f"<h2>Checks that failed ({len(failed):,}); the rest of the report stands</h2><ul>{items}</ul>")
    return f'<section class="problems">{"".join(blocks)}</section>' if blocks else ""


def _summary_table(report: Report, runs: Sequence[RunSummary], anchors: dict[str, str]) -> str:
    """All runs, one row each; the inline script makes the columns sortable."""
    head = "".join(
        f'<th scope="col" class="num">{name}</th>' if numeric else f'<th scope="col">{name}</th>'
        for name, numeric in SUMMARY_COLUMNS
    )
    rows = []
    for run in runs:
        diagnosis = report.diagnosis(run.id)
        verdict = diagnosis.verdict
        counts = severity_counts(report.shown_findings_for(run.id))
        problem = "" if verdict is Verdict.HEALTHY else diagnosis.problem
        formats = " + ".join(member.format for member in report.members(run.id))
        cells = [
            f'<td data-sort="{html_text(run.id)}"><a href="#{anchors[run.id]}">{html_text(run.id)}</a></td>',
            f'<td data-sort="{VERDICT_RANK[verdict]}">{_badge(verdict)}</td>',
            f'<td data-sort="{html_text(problem)}">{html_text(problem)}</td>',
            *(
                f'<td class="num" data-sort="{counts[severity]}">'
                + (f'<span class="count sev-{severity.value}">{counts[severity]:,}</span>' if counts[severity] else "–")
                + "</td>"
                for severity in SEVERITIES
            ),
            f'<td class="format" data-sort="{html_text(formats)}">{html_text(formats)}</td>',
            f'<td class="num" data-sort="{run.points}">{run.points:,}</td>',
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section class="summary"><h2>Summary</h2>\n<div class="table-wrap">'
        f'<table id="summary"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div></section>"
    )


def _sweep(report: Report) -> str:
    """The sweep view (``--by``): a row per finding, then what separates nothing."""
    sweep = report.sweep
    if sweep is None:
        return ""
    rows = []
    for split in sweep.splits:
        cells = [
            f"<td><code>{html_text(split.param)}</code></td>", f"<td>{html_text(split.outcome)}</td>",
            *(f"<td><code>{html_text(side.condition(split.param))}</code></td>"
              f'<td class="num">{side.with_outcome:,} of {side.runs:,}</td>' for side in (split.more, split.less)),
            f'<td class="muted">{html_text("; ".join(split.qualifiers()))}</td>',
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f'<th scope="col" class="num">{name}</th>' if numeric else f'<th scope="col">{name}</th>'
                   for name, numeric in SWEEP_COLUMNS)
    parts = [f'<section class="sweep"><h2>Sweep</h2><p class="muted">{html_text(sweep.headline())}</p>']
    parts += [f'<p class="muted">{html_text(note)}</p>' for note in sweep.notes()]
    if rows:
        parts.append(f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    quiet = [param for param in sweep.params if not param.splits]
    items = [f"<li>{html_text(param.description())}</li>" for param in quiet if param.name in sweep.by]
    unasked = [html_text(param.name) for param in quiet if param.name not in sweep.by]
    if unasked:
        items.append(f"<li>Vary but separate no diagnosis: {', '.join(unasked)}</li>")
    if items:
        parts.append(f'<ul class="muted">{"".join(items)}</ul>')
    return "".join(parts) + "</section>"


def _badge(verdict: Verdict) -> str:
    return f'<span class="badge v-{verdict.value}">{verdict_name(verdict)}</span>'


def _diagnosis(report: Report, diagnosis: Diagnosis) -> str:
    """The run's diagnosis, above its plots: the problem and its key number, what it
    explains, what it superseded and why, the other formats it was written in, and (when
    there are several) the sources."""
    if diagnosis.verdict is Verdict.HEALTHY and len(diagnosis.sources) < 2:
        return ""
    parts = [f'<p class="dx-head"><b>{html_text(diagnosis.problem)}</b> — {html_text(diagnosis.detail)}</p>']
    if diagnosis.advice and diagnosis.verdict is not Verdict.HEALTHY:
        parts.append(f'<p class="advice"><b>Advice</b> {html_text(diagnosis.advice)}</p>')
    if diagnosis.explains:
        items = "".join(
            f"<li><code>{html_text(link.finding.code)}</code> {html_text(link.finding.check)}: {html_text(link.reason)}</li>"
            for link in diagnosis.explains
        )
        parts.append(f"<p>It explains:</p><ul>{items}</ul>")
    if diagnosis.superseded:
        items = "".join(
            f"<li><code>{html_text(link.finding.code)}</code> {html_text(link.finding.check)}, superseded by "
            f"{html_text(link.by.check)}: {html_text(link.reason)}</li>"
            for link in diagnosis.superseded
        )
        parts.append(f"<p>Not counted:</p><ul>{items}</ul>")
    also = also_written(report, diagnosis.run)
    if also:
        items = "".join(f"<li><code>{html_text(item)}</code></li>" for item in also)
        parts.append(f"<p>Also written as:</p><ul>{items}</ul>")
    if len(diagnosis.sources) > 1:
        items = "".join(f"<li><code>{html_text(source)}</code></li>" for source in diagnosis.sources)
        parts.append(f"<p>Read from:</p><ul>{items}</ul>")
    return f'<div class="diagnosis v-{diagnosis.verdict.value}">{"".join(parts)}</div>'


def _run_section(report: Report, run: RunSummary, anchor: str) -> str:
    findings = diagnosis_order(report, run.id)
    diagnosis = report.diagnosis(run.id)
    verdict = diagnosis.verdict
    numbers = {id(finding): index + 1 for index, finding in enumerate(findings)}
    body = [_diagnosis(report, diagnosis)]
    members = report.members(run.id)
    for number, member in enumerate(members):
        own = [finding for finding in findings if finding.run == member.id]
        if number and not own:
            continue
        if number:
            body.append(f'<h3 class="member">In {html_text(member.id)} ({html_text(member.format)})</h3>')
        body += _pictures(report, member, own, f"{anchor}-{number}" if number else anchor, numbers, quiet=not number)
    for member in members:
        body.append(_notes(member))
    body.append(_outcomes(report.group_outcomes(run.id)))
    span = "" if run.first_step is None else f" · {run.x_axis.value}s {run.first_step:,}..{run.last_step:,}"
    is_open = " open" if verdict is not Verdict.HEALTHY else ""
    headline = "no findings" if verdict is Verdict.HEALTHY else diagnosis.summary
    superseded = superseded_phrase(report, run.id)
    counts = counts_phrase(findings) + (f"; {len(diagnosis.superseded)} superseded" if superseded else "")
    return (
        f'<details class="run v-{verdict.value}" id="{anchor}" data-run="{html_text(run.id)}"{is_open}>'
        f'<summary>{_badge(verdict)}<span class="run-id">{html_text(run.id)}</span>'
        f'<span class="run-dx">{html_text(headline)}</span>'
        f'<span class="run-counts">{html_text(counts)}</span>'
        f'<span class="run-meta">{html_text(run.format)} · {run.points:,} points{span}</span></summary>\n'
        f'<div class="run-body">{"".join(part for part in body if part)}</div></details>'
    )


def _pictures(report: Report, run: RunSummary, findings: Sequence[Finding], anchor: str, numbers: dict[int, int],
              quiet: bool) -> list[str]:
    """The run's plots with its findings: those with findings, the findings with no curve,
    and (when ``quiet``) the key curves no finding is about."""
    drawn = picture(run, findings)
    charts = [_panel(report, run, panel, anchor, index, numbers) for index, panel in enumerate(drawn.panels)]
    body = [html for html, panel in zip(charts, drawn.panels, strict=True) if panel.listed]
    rest = [html for html, panel in zip(charts, drawn.panels, strict=True) if not panel.listed]
    if drawn.unplotted:
        body.append(
            '<div class="panel"><div class="plot no-curve"><h3>No curve to draw</h3>'
            f"<p>{NO_CURVE_NOTE}</p></div>"
            f"{_finding_list(report, run, drawn.unplotted, anchor, numbers, None)}</div>"
        )
    body.append(heat_strips(run, findings))
    if quiet and rest:
        body.append(f'<div class="gallery">{"".join(rest)}</div>')
    if quiet and not drawn.panels and not drawn.unplotted:
        body.append('<p class="muted">No loss, metric or learning-rate curve to draw.</p>')
    return body


def _panel(report: Report, run: RunSummary, panel: Panel, anchor: str, index: int, numbers: dict[int, int]) -> str:
    """A plot with its legend and log toggle, and beside it the findings listed on it."""
    chart_id = f"chart-{anchor}-{index}"
    shades = []
    for finding in panel.shaded:
        steps = shaded_range(finding, panel.step_range)
        if steps is not None:
            number = numbers[id(finding)]
            shades.append(Shade(
                finding_id=_finding_id(anchor, number),
                label=str(number),
                severity=finding.severity,
                steps=steps,
                title=f"{number}. {finding.code} {finding.check}: {step_range(finding, run)}",
            ))
    tags = ", ".join(trace.tag for trace in panel.traces)
    svg = chart(panel, shades, f"{panel.title}: {tags}", chart_id)
    toggle = label = ""
    if has_log_view(panel):
        checked = " checked" if panel.starts_on_log_scale else ""
        toggle = f'<input type="checkbox" class="log-toggle" id="log-{chart_id}"{checked}>'
        label = f'<label class="log-label" for="log-{chart_id}">log scale</label>'
    legend = "".join(
        f'<span class="key"><i class="swatch c{i % len(SERIES_COLORS)}"></i>{html_text(trace.tag)}</span>'
        for i, trace in enumerate(panel.traces)
    ) + "".join(
        f'<span class="key"><i class="swatch non-finite"></i>{html_text(trace.tag)}: '
        f"{trace.non_finite:,} NaN/inf</span>"
        for trace in panel.traces if trace.non_finite
    )
    plot = (
        f'<div class="plot">{toggle}<div class="plot-head"><h3>{html_text(panel.title)}</h3>'
        f'<span class="legend">{legend}</span>{label}</div>{svg}</div>'
    )
    if not panel.listed:
        return plot
    return f'<div class="panel">{plot}{_finding_list(report, run, panel.listed, anchor, numbers, chart_id)}</div>'


def _finding_id(anchor: str, number: int) -> str:
    return f"{anchor}-f{number}"


def _finding_list(
    report: Report, run: RunSummary, findings: Iterable[Finding], anchor: str, numbers: dict[int, int], chart_id: str | None
) -> str:
    items = []
    for finding in findings:
        number = numbers[id(finding)]
        severity = finding.severity.value
        steps = step_range(finding, run)
        data = {
            "run": finding.run,
            "check": finding.check,
            "code": finding.code,
            "severity": severity,
            "first": "" if finding.first_step is None else str(finding.first_step),
            "last": "" if finding.last_step is None else str(finding.last_step),
            "chart": chart_id or "",
        }
        attributes = "".join(f' data-{key}="{html_text(value)}"' for key, value in data.items())
        confidence = (
            f'<span class="confidence">{finding.confidence.value} confidence</span>'
            if finding.confidence is not Confidence.HIGH else ""
        )
        cause = explained_by(report, finding)
        if cause is not None:
            confidence += f'<span class="explained">explained by {html_text(cause.check)}</span>'
        where = written_in(report, finding)
        if where is not None:
            confidence += f'<span class="explained">{html_text(where)}</span>'
        advice = f'<p class="advice"><b>Advice</b> {html_text(finding.advice)}</p>' if finding.advice and cause is None else ""
        items.append(
            f'<li class="finding sev-{severity}" id="{_finding_id(anchor, number)}"{attributes}>'
            f'<div class="finding-head"><span class="num sev-{severity}">{number}</span>'
            f'<span class="sev sev-{severity}">{severity}</span><code>{html_text(finding.code)}</code>'
            f'<span class="check">{html_text(finding.check)}</span>'
            + (f'<span class="steps">{html_text(steps)}</span>' if steps else "")
            + f"{confidence}</div>"
            f'<p class="message">{html_text(finding.message)}</p>{advice}</li>'
        )
    return f'<ol class="findings">{"".join(items)}</ol>'


def _notes(run: RunSummary) -> str:
    """How the run was read: truncation, duplicates, files skipped."""
    if not run.notes:
        return ""
    items = "".join(
        f'<li><span class="note-kind">{html_text(note.kind.value)}</span>'
        + (f" at {html_text(note.location)}" if note.location else "")
        + f": {html_text(note.message)}</li>"
        for note in run.notes
    )
    return f'<div class="notes"><h3>Read notes</h3><ul>{items}</ul></div>'


def _outcomes(outcomes: Sequence[CheckOutcome]) -> str:
    """How many checks ran; the skipped and failed ones with their reasons, folded."""
    by_status = {status: [o for o in outcomes if o.status is status] for status in OutcomeStatus}
    phrase = ", ".join(
        f"{len(by_status[status]):,} {word}"
        for status, word in ((OutcomeStatus.RAN, "ran"), (OutcomeStatus.SKIPPED, "skipped"), (OutcomeStatus.ERROR, "failed"))
        if by_status[status] or status is OutcomeStatus.RAN
    )
    summary = f"Checks: {phrase}"
    listed = by_status[OutcomeStatus.SKIPPED] + by_status[OutcomeStatus.ERROR]
    if not listed:
        return f'<p class="outcomes">{summary}</p>'
    items = "".join(
        f"<li>{o.status.value} <code>{html_text(o.code)}</code> {html_text(o.check)}: {html_text(o.reason or '')}</li>"
        for o in listed
    )
    return f'<details class="outcomes"><summary>{summary}</summary><ul>{items}</ul></details>'


def _footer(report: Report) -> str:
    skipped = outcome_count(report, OutcomeStatus.SKIPPED)
    note = f"<p>{plural(skipped, 'check')} skipped for missing series; each run lists them.</p>" if skipped else ""
    return f"<footer>{note}<p>Generated by rundoctor.</p></footer>"


def _palette() -> str:
    """Series, severity and NaN colours, defined once in :mod:`panels` for HTML and PNG alike."""
    rules = [f".c{i}{{stroke:{color}}}.swatch.c{i}{{background:{color}}}" for i, color in enumerate(SERIES_COLORS)]
    rules += [
        f".band.sev-{s.value}{{fill:{color};stroke:{color}}}.band-label.sev-{s.value}{{fill:{color}}}"
        f".num.sev-{s.value}{{background:{color}}}"
        for s, color in SEVERITY_COLORS.items()
    ]
    rules.append(f".non-finite{{stroke:{NON_FINITE_COLOR}}}.swatch.non-finite{{background:{NON_FINITE_COLOR}}}")
    return "".join(rules)


@cache
def _asset(name: str) -> str:
    """A file of the report's own, shipped beside this module: ``report.css`` (the page's
    style) and ``report.js`` (progressive enhancement: without script the page reads the same,
    only the summary table does not sort)."""
    return resources.files("rundoctor.reporters").joinpath(name).read_text("utf-8")
