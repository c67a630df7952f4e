"""The words every report format uses for the same fact, so text, markdown, GitHub and JUnit
never disagree on how a step range, a count or a verdict reads."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from rundoctor.findings import Finding, Severity
from rundoctor.report import OutcomeStatus, Report, Verdict
from rundoctor.series import Run, XAxis

# Most severe first: the order counts are listed in everywhere.
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)

# Above this many healthy runs a summary lists them on one folded line instead of a row
# each: a sweep of 200 runs must not bury the 20 with findings under 180 "healthy" rows.
FOLD_HEALTHY_ABOVE = 10


def plural(count: int, word: str) -> str:
    """``1 error``, ``2 errors``; ``info`` has no plural."""
    suffix = "" if count == 1 or word == "info" else "s"
    return f"{count:,} {word}{suffix}"


def step_range(finding: Finding, run: Run | None) -> str | None:
    """``steps 600..999``, ``epoch 12``, ``steps 600..``, or None when the finding has no steps.

    The word is the x axis of the finding's first curve in ``run``: a YOLO ``results.csv``
    counts epochs, and "steps 167..177" would send the reader to the wrong place.
    """
    first, last = finding.first_step, finding.last_step
    if first is None and last is None:
        return None
    axis = XAxis.STEP if run is None else run.axis_of(finding.tags[0]) if finding.tags else run.x_axis
    if first == last:
        return f"{axis.value} {first}"
    return f"{axis.value}s {'' if first is None else first}..{'' if last is None else last}"


def severity_counts(findings: Sequence[Finding]) -> dict[Severity, int]:
    counter = Counter(finding.severity for finding in findings)
    return {severity: counter.get(severity, 0) for severity in SEVERITIES}


def counts_phrase(findings: Sequence[Finding]) -> str:
    """``1 error, 2 warnings`` (zero counts left out), or ``no findings``."""
    parts = [plural(n, severity.value) for severity, n in severity_counts(findings).items() if n]
    return ", ".join(parts) or "no findings"


def runs_by_verdict(report: Report) -> dict[Verdict, list[Run]]:
    """Every verdict (healthy first) with the runs that got it, in run order."""
    grouped: dict[Verdict, list[Run]] = {verdict: [] for verdict in Verdict}
    for run in report.runs:
        grouped[report.verdict(run.id)].append(run)
    return grouped


def fail_on_name(report: Report) -> str:
    return "never" if report.fail_on is None else report.fail_on.value


def outcome_count(report: Report, status: OutcomeStatus, run_id: str | None = None) -> int:
    return sum(
        1 for o in report.outcomes if o.status is status and (run_id is None or o.run == run_id)
    )


def result_line(report: Report) -> str:
    """The last word: what decided the exit code."""
    if report.fail_on is None:
        return f"Result: --fail-on never (exit {report.exit_code})"
    failing = len(report.failing())
    threshold = report.fail_on.value
    if failing:
        return f"Result: {plural(failing, 'finding')} at or above {threshold} (exit {report.exit_code})"
    return f"Result: no findings at or above {threshold} (exit {report.exit_code})"


def skipped_line(report: Report) -> str | None:
    """Skipped checks are counted, not listed: the JSON report says which and why."""
    skipped = outcome_count(report, OutcomeStatus.SKIPPED)
    if not skipped:
        return None
    return f"{plural(skipped, 'check')} skipped for missing series; see --format json"
