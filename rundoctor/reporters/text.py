"""The terminal report: short, worst run first, and safe to print in a CI log.

On several runs it reads::

    39 runs under ../shared/real_logs/, worst first

    SERIOUS    lora-sweep/runs/run0
               stalled: no learning
      error    C001 no-learning  steps 100..1200  train/loss never got meaningfully
             │ below its initial level: 1.398 at the start (threshold 5%)
    ...
    Advice by check (rundoctor explain CHECK has more; --verbose, per finding):
      no-learning: Overfit one small batch first: ...

    Summary: 39 runs: 6 serious, 9 problem, ...; 10 errors, 13 warnings, 29 info
    Healthy (6): a, b, ...
    Result: 10 findings at or above error (exit 1)

- Runs come worst verdict first, then by name.  A run's header is its verdict and name, with
  its diagnosis (the root cause's plain name) under it; then one line per finding, most
  severe first (among equals as the diagnosis tells them): severity, code and check, steps,
  the message's key clause with the threshold crossed, and what qualifies it (confidence,
  the finding that explains it).  Several notes on a run with warnings or errors share one
  line.  Superseded findings are only counted.  With several runs, healthy ones have no
  section: the summary names them.
- Advice is told once per check, in a section after the runs, for the checks with a
  warning or an error; checks with notes only are named there, for ``rundoctor explain``.
  ``options.verbose`` puts each finding's own advice, whole message and sparklines under it
  instead.
- Names lose the directory prefix every run shares, stated once in the first line; a name
  is never broken across lines (it overflows the width instead).
- The summary always comes last, before the result line.  With ``--by``, the sweep view
  (:mod:`rundoctor.sweep`: which logged settings go with which diagnosis, as counts) is a
  short section before it.
- ``options.quiet``: only what fails ``--fail-on``, then the result line.
- Every string from the logs is passed through :func:`visible`, and lines are laid out by
  :mod:`rundoctor.reporters.layout`, which leads each line with text rundoctor wrote; styles
  are rich ``Text`` styles (log text is never parsed as markup), exported as ANSI only when
  ``options.color`` is on.
"""

from __future__ import annotations

import os
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from rundoctor.diagnosis import Diagnosis, Verdict
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions, statistics
from rundoctor.reporters.escape import visible
from rundoctor.reporters.layout import Span, export, flow, gutter
from rundoctor.reporters.sparkline import sparkline, value_range
from rundoctor.reporters.wording import (
    VERDICT_ORDER,
    checks_ran,
    counts_phrase,
    diagnosis_order,
    explained_by,
    plural,
    result_line,
    runs_by_verdict,
    short_message,
    skipped_line,
    step_range,
    superseded_phrase,
    verdict_name,
    written_in,
)
from rundoctor.summary import RunSummary
from rundoctor.sweep import Sweep

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_STYLE = {
    Verdict.HEALTHY: "green",
    Verdict.MINOR: "cyan",
    Verdict.TOO_SHORT: "cyan",
    Verdict.PROBLEM: "yellow",
    Verdict.NO_DATA: "yellow",
    Verdict.SERIOUS: "bold red",
}
LABEL_WIDTH = max(len(verdict.label) for verdict in Verdict)  # run names line up after the widest
NAME_COLUMN = LABEL_WIDTH + 2  # where a run's name, its diagnosis and a finding's message start
SEVERITY_WIDTH = max(len(severity.value) for severity in Severity)
BODY_GUTTER = NAME_COLUMN - 2  # a finding's continuation lines: the gutter, then its message column
TOP_GUTTER = 2  # continuation lines of everything else
MAX_SPARKLINES = 3  # per finding; a check about ten loss terms shows the first three
MAX_SPARK_WIDTH = 60  # wider sparklines add columns, not information
MIN_SPARK_WIDTH = 8  # narrower ones show no shape: the message says it all
FOLD_NOTES_FROM = 2  # notes on a run with problems share a line from this many (one is no longer)
HEALTHY_LIST_LINES = 16  # healthy runs named in this many lines, then "+N more" (all with verbose)
SWEEP_QUIET_NAMES = 12  # varying parameters that separate nothing, named under --by auto (JSON has all)
ADVICE_TITLE = "Advice by check (rundoctor explain CHECK has more; --verbose, per finding):"


@dataclass(frozen=True)
class Names:
    """How the report writes run names and paths: without the directory prefix every run
    shares, which the first line states once as ``root``."""

    root: str  # the shared directory as the user wrote it; "" when nothing is trimmed
    cut: int  # characters trimmed from the front of every run id

    def run(self, run_id: str) -> str:
        """A run's name as printed: its id without the shared prefix, made visible."""
        return visible(run_id[self.cut:])

    def path(self, path: str) -> str:
        """A path as printed (a read error's): without the shared root when it has it."""
        posix = path.replace(os.sep, "/")
        return visible(posix[len(self.root):] if self.root and posix.startswith(self.root) else path)


def render(report: Report, options: RenderOptions) -> str:
    """The terminal report (see the module docstring); ``--statistics`` replaces it with the
    counts per check."""
    if options.statistics:
        return statistics.render(report, options)
    lines = _quiet_lines(report, options) if options.quiet else _report_lines(report, options)
    return export(lines, options.color)


def _report_lines(report: Report, options: RenderOptions) -> list[Text]:
    width = options.width
    several = len(report.groups) > 1
    names = shared_names(report) if several else Names("", 0)
    lines: list[Text] = []
    if several:
        where = [Span(" under "), Span(visible(names.root), "bold", whole=True)] if names.root else []
        lines += _top([Span(plural(len(report.groups), "run")), *where, Span(", worst first")], width)
        lines.append(Text())
    shown: list[Finding] = []
    unjudged: list[Diagnosis] = []
    previous: Verdict | None = None
    for run in worst_first(report):
        verdict = report.verdict(run.id)
        if several and verdict is Verdict.HEALTHY:
            continue
        findings = worst_findings(report, run.id)
        if several and all_baselined(report, run.id, findings):
            continue  # known and accepted: named in the summary, not shown again
        if previous is not None and verdict is not previous:  # a blank line between verdicts
            lines.append(Text())
        previous = verdict
        lines += _run_lines(report, run, names, findings, options, fold_notes=not options.verbose)
        shown += findings
        if not verdict.judged:
            unjudged.append(report.diagnosis(run.id))
    if previous is not None:
        lines.append(Text())
    if not options.verbose:
        lines += _advice_lines(report, shown, unjudged, width)
    lines += _problem_lines(report, names, width)
    if report.sweep is not None:
        lines += _sweep_lines(report.sweep, width)
    if several:
        lines += _summary_lines(report, names, options)
    for note in (superseded_phrase(report), skipped_line(report)):
        if note:
            lines += _top([Span(note, "dim")], width)
    return lines + _top([Span(result_line(report), "bold")], width)


def _quiet_lines(report: Report, options: RenderOptions) -> list[Text]:
    """Only what fails ``--fail-on``: the findings at or above it under their runs, and the
    runs that could not be judged at or above it; then the result line."""
    lines: list[Text] = []
    threshold = report.fail_on
    if threshold is not None:
        unjudged = {diagnosis.run for diagnosis in report.failing_runs()}
        for run in worst_first(report):
            failing = [f for f in worst_findings(report, run.id) if f.severity.rank >= threshold.rank]
            if failing or run.id in unjudged:
                lines += _run_lines(report, run, Names("", 0), failing, options, fold_notes=False)
                lines.append(Text())
    return lines + _top([Span(result_line(report), "bold")], options.width)


def shared_names(report: Report) -> Names:
    """The directory prefix all run ids share (cut at a ``/``), and that directory as the user
    wrote it: ``real_logs/`` in the ids is ``../shared/real_logs/`` on the command line."""
    ids = [run.id for run in report.runs]
    try:
        common = posixpath.commonpath(ids)
    except ValueError:  # absolute and relative ids: nothing shared
        return Names("", 0)
    while common and not all(run_id.startswith(common + "/") for run_id in ids):  # a run is the directory itself
        common = posixpath.dirname(common)
    if not common:
        return Names("", 0)
    prefix = common + "/"
    roots = set()
    for run in report.runs:
        path, rest = run.path.replace(os.sep, "/"), run.id[len(prefix):]
        roots.add(path[: len(path) - len(rest)] if path.endswith("/" + rest) else prefix)
    return Names(roots.pop() if len(roots) == 1 else prefix, len(prefix))


def worst_first(report: Report) -> list[RunSummary]:
    """The training runs (one per twin group), worst verdict first, then by name."""
    return sorted(report.leaders, key=lambda run: (VERDICT_ORDER.index(report.verdict(run.id)), run.id))


def all_baselined(report: Report, run_id: str, shown: Sequence[Finding]) -> bool:
    """A judged run whose every finding the baseline holds: nothing new to show about it."""
    return (report.baseline is not None and report.verdict(run_id).judged and not shown
            and any(finding.run == run_id for finding in report.baselined_findings))


def worst_findings(report: Report, run_id: str) -> list[Finding]:
    """The run's findings as reports list them, most severe first; among equals in the order
    the diagnosis tells them (the primary, what it explains, the rest)."""
    return sorted(diagnosis_order(report, run_id), key=lambda finding: -finding.severity.rank)


def _top(spans: Sequence[Span], width: int) -> list[Text]:
    """A paragraph of the report's own: continuation lines behind the top-level gutter."""
    return flow(spans, width, gutter(TOP_GUTTER))


def _run_lines(
    report: Report, run: RunSummary, names: Names, findings: Sequence[Finding], options: RenderOptions, *, fold_notes: bool
) -> list[Text]:
    """The run's header (verdict and name), its diagnosis, the formats it was also written
    in, and a line per finding in ``findings``; with ``fold_notes``, the informational notes
    of a run that has warnings or errors share one line when there are several, naming their
    checks (its primary finding, the root cause, keeps its own)."""
    diagnosis = report.diagnosis(run.id)
    verdict = diagnosis.verdict
    style = VERDICT_STYLE[verdict]
    indent = Text(" " * NAME_COLUMN)
    hang = gutter(BODY_GUTTER)
    lines = [Text.assemble((f"{verdict.label:<{LABEL_WIDTH}}", style), "  ", (names.run(run.id), "bold"))]
    if not verdict.judged:
        lines += flow([Span(visible(diagnosis.summary), style)], options.width, hang, indent)
    elif verdict in (Verdict.SERIOUS, Verdict.PROBLEM) and diagnosis.primary is not None:
        lines += flow([Span(visible(diagnosis.problem), style)], options.width, hang, indent)
    elif verdict is Verdict.HEALTHY:
        lines.append(Text.assemble(indent, f"no findings from {plural(checks_ran(report, run.id), 'check')}"))
    members = report.members(run.id)[1:]
    if members:
        spans = [Span("also written as ", "dim")]
        for index, member in enumerate(members):
            spans += [Span(", " if index else ""), Span(_member_name(names, run.id, member.id), whole=True),
                      Span(f" ({visible(member.format)})", "dim")]
        lines += flow(spans, options.width, hang, indent)
    notes: list[Finding] = []
    if fold_notes and any(finding.severity.rank > Severity.INFO.rank for finding in findings):
        notes = [f for f in findings if f.severity is Severity.INFO and f is not diagnosis.primary]
        notes = notes if len(notes) >= FOLD_NOTES_FROM else []
    for finding in findings:
        if all(finding is not note for note in notes):
            lines += _finding_lines(report, finding, options)
    if notes:
        lines += _folded_notes(notes, options.width)
    return lines


def _folded_notes(notes: Sequence[Finding], width: int) -> list[Text]:
    """``info     4 notes: duplicate-steps, metric-out-of-range x3  (--verbose lists them)``."""
    checks = Counter(note.check for note in notes)
    named = ", ".join(visible(check) + (f" x{count}" if count > 1 else "") for check, count in checks.items())
    spans = [Span("  "), Span(f"{Severity.INFO.value:<{SEVERITY_WIDTH}}", SEVERITY_STYLE[Severity.INFO]),
             Span("  " + plural(len(notes), "note") + ": " + named), Span("  "), Span("(--verbose lists them)", "dim", whole=True)]
    return flow(spans, width, gutter(BODY_GUTTER))


def _member_name(names: Names, leader: str, member: str) -> str:
    """Another format's name, relative to the run's when it lies inside it (``results.csv``
    for ``exp/results.csv`` under ``exp``), else as every run is named."""
    inside = member.startswith(leader + "/")
    return visible(member[len(leader) + 1:]) if inside else names.run(member)


def _finding_lines(report: Report, finding: Finding, options: RenderOptions) -> list[Text]:
    """One line (flowed over more when narrow): severity, check, steps, the key clause, and in
    parentheses what qualifies it.  Verbose: the whole message, its advice and its curves under it."""
    run = report.run(finding.run)
    cause = explained_by(report, finding)
    spans = [Span("  "), Span(f"{finding.severity.value:<{SEVERITY_WIDTH}}", SEVERITY_STYLE[finding.severity]),
             Span("  "), Span(f"{visible(finding.code)} {visible(finding.check)}", "bold", whole=True)]
    steps = step_range(finding, run)
    if steps:
        spans += [Span("  "), Span(steps, whole=True)]
    qualifiers = [
        f"{finding.confidence.value} confidence" if finding.confidence is not Confidence.HIGH else None,
        f"explained by {visible(cause.check)}" if cause is not None else None,
        written_in(report, finding),
    ]
    said = "; ".join(visible(q) for q in qualifiers if q)
    hang = gutter(BODY_GUTTER)
    if not options.verbose:
        spans += [Span("  "), Span(short_message(finding))]
        if said:  # kept whole: "(explained by" on one line and its cause on the next reads badly
            spans += [Span("  "), Span(f"({said})", "dim", whole=True)]
        return flow(spans, options.width, hang)
    if said:
        spans += [Span("  "), Span(f"({said})", "dim", whole=True)]
    lines = flow(spans, options.width, hang)
    lines += flow([Span(visible(finding.message))], options.width, hang, hang)
    if finding.advice and cause is None:  # an explained finding's advice is its cause's
        lines += flow([Span("Advice: ", "bold"), Span(visible(finding.advice))], options.width, hang, hang)
    return lines + _sparklines(run, finding, options.width)


def _sparklines(run: RunSummary, finding: Finding, width: int) -> list[Text]:
    """The curves the finding is about, ``▁▂▃  low..high  tag`` with ``^^^`` under its steps, drawn
    from the curves the summary kept (every point of a curve of up to 2,000, the extremes of a
    longer one: :mod:`rundoctor.summary`); tags without points are left out, and so are
    sparklines too narrow to show a shape."""
    tags = [tag for tag in finding.tags if tag in run.curves]
    hang = gutter(BODY_GUTTER)
    lines: list[Text] = []
    for tag in tags[:MAX_SPARKLINES]:
        curve = run.curves[tag]
        scale = value_range(curve.values)
        label = visible(tag)
        room = width - NAME_COLUMN - 2 - len(scale) - 2 - min(cell_len(label), 20)
        spark_width = min(MAX_SPARK_WIDTH, room)
        if spark_width < MIN_SPARK_WIDTH:
            continue
        line = sparkline(curve.steps, curve.values, spark_width, (finding.first_step, finding.last_step))
        bars = Text(line.bars)
        style = SEVERITY_STYLE[finding.severity]
        if line.region is not None:
            bars.stylize(style, line.region[0], line.region[1] + 1)
        lines.append(Text.assemble(hang, bars, (f"  {scale}  ", "dim"), (label, "dim")))
        if line.region is not None:
            lines.append(Text.assemble(hang, (line.marks, style)))
    if len(tags) > MAX_SPARKLINES:
        lines.append(Text.assemble(hang, (f"+{plural(len(tags) - MAX_SPARKLINES, 'more curve')}", "dim")))
    return lines


def _advice_lines(report: Report, findings: Sequence[Finding], unjudged: Sequence[Diagnosis], width: int) -> list[Text]:
    """Advice once per check that has a warning or an error among ``findings`` (and once per
    verdict of the runs that could not be judged), in the order first shown; checks with notes
    only are named on one line, for ``rundoctor explain``.  An explained finding's advice is its
    cause's, so it adds none.  Findings of one check that advise the same say it once; when
    their advice differs (it names a run's own step or curve), the check's general advice
    stands for them all."""
    said: dict[str, list[str]] = {}
    noted: list[str] = []
    for finding in findings:
        if not finding.advice or explained_by(report, finding) is not None:
            continue
        if finding.severity.rank > Severity.INFO.rank:
            said.setdefault(finding.check, []).append(finding.advice)
        elif finding.check not in noted:
            noted.append(finding.check)
    for diagnosis in unjudged:
        if diagnosis.advice:
            said.setdefault(verdict_name(diagnosis.verdict), []).append(diagnosis.advice)
    noted = [check for check in noted if check not in said]
    if not said and not noted:
        return []
    general = _general_advice()
    lines = _top([Span(ADVICE_TITLE, "bold")], width)
    for key, texts in said.items():
        advice = texts[0] if len(set(texts)) == 1 else general.get(key) or Counter(texts).most_common(1)[0][0]
        lines += _top([Span("  "), Span(visible(key), "bold", whole=True), Span(": "), Span(visible(advice))], width)
    if noted:
        lines += _top([Span("  Notes only: " + ", ".join(visible(check) for check in noted))], width)
    return [*lines, Text()]


def _general_advice() -> dict[str, str]:
    """Each registered check's own advice, before any finding tailored it."""
    from rundoctor.checks import registry

    return {check.name: check.advice for check in registry.REGISTRY}


def _problem_lines(report: Report, names: Names, width: int) -> list[Text]:
    """Inputs that could not be read and checks that raised: both make the report incomplete."""
    lines: list[Text] = []
    if report.errors:
        lines += _top([Span(f"Could not read ({len(report.errors):,}):", "bold red")], width)
        for error in report.errors:
            lines += _top([Span("  - "), Span(names.path(error.path), whole=True), Span(": " + visible(error.reason))], width)
        lines.append(Text())
    failed = [o for o in report.outcomes if o.status is OutcomeStatus.ERROR]
    if failed:
        lines += _top([Span(f"Checks that failed ({len(failed):,}); the rest of the report stands:", "bold red")], width)
        for outcome in failed:
            spans = [Span(f"  - {visible(outcome.code)} {visible(outcome.check)} on "),
                     Span(names.run(outcome.run), whole=True), Span(": " + visible(outcome.reason or "failed"))]
            lines += _top(spans, width)
        lines.append(Text())
    return lines


def _sweep_lines(sweep: Sweep, width: int) -> list[Text]:
    """The sweep view (``--by``): each finding of each parameter on a line of its own, then the
    parameters asked for that separate nothing with their values, then (``--by auto``) the
    varying ones that separate nothing, by name."""
    lines = _top([Span(visible(sweep.headline()) + ":", "bold")], width)
    for note in sweep.notes():
        lines += _top([Span("  "), Span(note, "dim")], width)
    quiet: list[str] = []
    for param in sweep.params:
        if param.splits:
            for split in param.splits:
                lines += _top([Span("  "), Span(visible(split.sentence()))], width)
            if param.missing:
                lines += _top([Span("  "), Span(f"({visible(param.missing_note())})", "dim")], width)
        elif param.name in sweep.by:
            lines += _top([Span("  "), Span(visible(param.description()))], width)
        else:
            quiet.append(visible(param.name))
    if quiet:
        shown = ", ".join(quiet[:SWEEP_QUIET_NAMES]) + (f", +{len(quiet) - SWEEP_QUIET_NAMES:,} more" if len(quiet) > SWEEP_QUIET_NAMES else "")
        lines += _top([Span("  "), Span(f"Vary but separate no diagnosis: {shown}", "dim")], width)
    return [*lines, Text()]


def _summary_lines(report: Report, names: Names, options: RenderOptions) -> list[Text]:
    """``Summary: 48 runs: 3 serious, ...; 10 errors, ...`` and every healthy run by name (the
    first HEALTHY_LIST_LINES lines of them unless verbose)."""
    grouped = runs_by_verdict(report)
    by_verdict = ", ".join(f"{len(runs):,} {verdict_name(verdict)}" for verdict, runs in grouped.items() if runs)
    headline = f"{plural(len(report.groups), 'run')}: {by_verdict}; {counts_phrase(report.shown_findings)}"
    lines = _top([Span("Summary: ", "bold"), Span(headline)], options.width)
    budget = None if options.verbose else HEALTHY_LIST_LINES
    healthy = [names.run(run.id) for run in grouped[Verdict.HEALTHY]]
    if healthy:
        lines += _named_lines("Healthy", healthy, options.width, budget)
    known = [names.run(run.id) for run in worst_first(report)
             if all_baselined(report, run.id, worst_findings(report, run.id))]
    if known:
        lines += _named_lines("Only baselined findings", known, options.width, budget)
    return lines


def _named_lines(label: str, listed_names: list[str], width: int, budget: int | None) -> list[Text]:
    """``Healthy (14): a, b, c`` (or another label) over at most ``budget`` lines: as many names as fit, then
    ``+N more (--verbose names them all)``."""

    def listed(count: int) -> list[Text]:
        spans = [Span(f"{label} ({len(listed_names):,}): ", VERDICT_STYLE[Verdict.HEALTHY])]
        for index, name in enumerate(listed_names[:count]):
            spans += [Span(", " if index else ""), Span(name, whole=True)]
        if count < len(listed_names):
            spans.append(Span(f"{', ' if count else ''}+{len(listed_names) - count:,} more (--verbose names them all)", "dim"))
        return _top(spans, width)

    lines = listed(len(listed_names))
    if budget is None or len(lines) <= budget:
        return lines
    low, high = 0, len(listed_names) - 1  # the most names that fit: more names never take fewer lines
    while low < high:
        middle = (low + high + 1) // 2
        if len(listed(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return listed(low)
