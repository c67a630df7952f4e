"""``--statistics``: how many findings each check made, most first, then the result line (as
``ruff check --statistics`` counts rules): which checks dominate a sweep, at a glance.

With ``--quiet`` only findings at or above ``--fail-on`` are counted.
"""

from __future__ import annotations

from rich.text import Text

from rundoctor.findings import Finding
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import visible
from rundoctor.reporters.layout import Span, export, flow, gutter
from rundoctor.reporters.wording import counts_phrase, plural, result_line


def render(report: Report, options: RenderOptions) -> str:
    """A row per check with findings, ``count  code  name  1 error, 2 warnings``, most first
    (then by code), a total, and the result line."""
    findings = counted(report, options.quiet)
    by_check: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        by_check.setdefault((finding.code, finding.check), []).append(finding)
    rows = sorted(by_check.items(), key=lambda item: (-len(item[1]), item[0]))
    count_width = len(f"{len(findings):,}")
    code_width = max((len(visible(code)) for code, _ in by_check), default=0)
    name_width = max((len(visible(name)) for _, name in by_check), default=0)
    hang = gutter(count_width + 2)
    lines: list[Text] = []
    for (code, name), group in rows:
        spans = [Span(f"{len(group):>{count_width},}  {visible(code):<{code_width}}  "),
                 Span(f"{visible(name):<{name_width}}", "bold", whole=True), Span("  " + counts_phrase(group))]
        lines += flow(spans, options.width, hang)
    runs = len({report.members(finding.run)[0].id for finding in findings})
    total = f"{plural(len(findings), 'finding')} in {plural(runs, 'run')}"
    if findings:
        total += f" ({counts_phrase(findings)})"
    lines += flow([Span(total)], options.width, hang)
    lines += flow([Span(result_line(report), "bold")], options.width, hang)
    return export(lines, options.color)


def counted(report: Report, quiet: bool) -> list[Finding]:
    """The findings human reports show (:attr:`Report.shown_findings`); with ``quiet`` only
    those at or above ``--fail-on`` (none when it is ``never``)."""
    if not quiet:
        return report.shown_findings
    threshold = report.fail_on
    if threshold is None:
        return []
    return [finding for finding in report.shown_findings if finding.severity.rank >= threshold.rank]
