"""The words every report format uses for the same fact, so text, markdown, GitHub and JUnit
never disagree on how a step range, a count or a verdict reads."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rundoctor.diagnosis import Diagnosis, Verdict, headline
from rundoctor.findings import Finding, Severity
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters.escape import visible
from rundoctor.series import XAxis
from rundoctor.summary import RunSummary

# Most severe first: the order counts are listed in everywhere.
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)

# Worst first: the order of verdict tiles, headlines and sorted tables.  A run that could not
# be judged sits just below the judged verdict of its level.
VERDICT_ORDER = (
    Verdict.SERIOUS, Verdict.PROBLEM, Verdict.NO_DATA, Verdict.MINOR, Verdict.TOO_SHORT, Verdict.HEALTHY,
)

# Above this many healthy runs a summary lists them on one folded line instead of a row
# each: a sweep of 200 runs must not bury the 20 with findings under 180 "healthy" rows.
FOLD_HEALTHY_ABOVE = 10


def plural(count: int, word: str) -> str:
    """``1 error``, ``2 errors``; ``info`` has no plural."""
    suffix = "" if count == 1 or word == "info" else "s"
    return f"{count:,} {word}{suffix}"


_THRESHOLD = re.compile(r"\bthresholds?\b")
THRESHOLD_LIMIT = 50  # characters; a longer clause keeps the threshold's own words, then their first part


def threshold_phrase(message: str) -> str | None:
    """The clause of a message that names the threshold crossed, e.g. ``1.907 -> 1.771,
    threshold 20%`` out of ``... (1.907 -> 1.771, threshold 20%) ...``, or None when it names
    none.

    The clause is the part of the parenthesis (or of the sentence between semicolons) that
    holds the word, so the number the threshold is compared with comes with it; past
    :data:`THRESHOLD_LIMIT` characters only the threshold's own words are kept.
    ``the threshold (1000x at 3+ points)`` gives ``threshold 1000x at 3+ points``.
    """
    match = _THRESHOLD.search(message)
    if match is None:
        return None
    if message[match.end():].lstrip().startswith("("):  # "the threshold (...)": its value
        start = message.index("(", match.end()) + 1
        value = _clause_end(message, start).strip()
        return _first_part(f"{match.group()} {value}") if value else None
    before = message[_clause_start(message, match.start()):match.start()].lstrip()
    phrase = (match.group() + _clause_end(message, match.end())).strip(" ,.:")
    return before + phrase if len(before + phrase) <= THRESHOLD_LIMIT else _first_part(phrase)


def _first_part(phrase: str) -> str:
    """``phrase`` when short, else cut before its first ``, `` or `` (`` outside parentheses
    that leaves the word and its value: ``threshold 10.2x for 12+ points in a row, or to the
    end of the log (...)`` keeps ``threshold 10.2x for 12+ points in a row``."""
    if len(phrase) <= THRESHOLD_LIMIT:
        return phrase
    depth = 0
    for index, char in enumerate(phrase):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and index > len("threshold ") and phrase.startswith((", ", " ("), index):
            return phrase[:index]
    return phrase


def _clause_start(message: str, end: int) -> int:
    """Where the clause ending at ``end`` starts: after the ``(`` of the parenthesis it is in,
    or a ``;`` outside parentheses; ``end`` itself when the clause is the main sentence."""
    depth = 0
    for index in range(end - 1, -1, -1):
        char = message[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                return index + 1
            depth -= 1
        elif char == ";" and depth == 0:
            return index + 1
    return end


def _clause_end(message: str, start: int) -> str:
    """``message`` from ``start`` to the ``)`` closing the parenthesis it is in, or a ``;``
    outside parentheses, or its end."""
    depth = 0
    for index in range(start, len(message)):
        char = message[index]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return message[start:index]
            depth -= 1
        elif char == ";" and depth == 0:
            return message[start:index]
    return message[start:]


def short_message(finding: Finding) -> str:
    """What a one-line report says of a finding: its message cut to the clause with the key
    number (:func:`rundoctor.diagnosis.headline`), the threshold crossed when the cut left it
    out, and the curve it is about when the finding has one and the clause does not name it.
    Characters from the logs that could act on a terminal or a CI log are escaped
    (:func:`~rundoctor.reporters.escape.visible`), before the cut, so none is lost in it."""
    message = visible(finding.message)
    text = headline(message)
    if "threshold" not in text:
        threshold = threshold_phrase(message)
        if threshold:
            text = f"{text} ({threshold})"
    tag = visible(finding.tags[0]) if len(finding.tags) == 1 else None
    if tag is not None and tag not in text:
        text = f"{tag}: {text}"
    return text


def step_range(finding: Finding, run: RunSummary | None) -> str | None:
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
    """How many findings of each severity, every severity present (zeros kept), in :data:`SEVERITIES` order."""
    counter = Counter(finding.severity for finding in findings)
    return {severity: counter.get(severity, 0) for severity in SEVERITIES}


def counts_phrase(findings: Sequence[Finding]) -> str:
    """``1 error, 2 warnings`` (zero counts left out), or ``no findings``."""
    parts = [plural(n, severity.value) for severity, n in severity_counts(findings).items() if n]
    return ", ".join(parts) or "no findings"


def runs_by_verdict(report: Report) -> dict[Verdict, list[RunSummary]]:
    """Every verdict (worst first, :data:`VERDICT_ORDER`) with the training runs that got it,
    in run order: one run written in several formats counts once, as its leader."""
    grouped: dict[Verdict, list[RunSummary]] = {verdict: [] for verdict in VERDICT_ORDER}
    for run in report.leaders:
        grouped[report.verdict(run.id)].append(run)
    return grouped


def runs_worst_first(report: Report) -> list[RunSummary]:
    """Training runs (each under its leader), worst verdict first (:data:`VERDICT_ORDER`), by id
    within a verdict: the runs that need attention lead every summary."""
    rank = {verdict: index for index, verdict in enumerate(VERDICT_ORDER)}
    return sorted(report.leaders, key=lambda run: (rank[report.verdict(run.id)], run.id))


def also_written(report: Report, run_id: str) -> list[str]:
    """``exp/results.csv (ultralytics-csv)`` for every other format the run was written in."""
    return [f"{run.id} ({run.format})" for run in report.members(run_id)[1:]]


def written_in(report: Report, finding: Finding) -> str | None:
    """Where a finding shown under its group's leader comes from, when that needs saying:
    ``in ultralytics-csv`` (another member's finding), ``also in ultralytics-csv`` (the same
    check found in another format, not repeated), both, or None."""
    members = report.members(finding.run)
    if len(members) < 2:
        return None
    parts = []
    if finding.run != members[0].id:
        parts.append(f"in {report.run(finding.run).format}")
    also = report.also_in(finding)
    if also:
        parts.append("also in " + ", ".join(run.format for run in also))
    return "; ".join(parts) or None


def verdict_name(verdict: Verdict) -> str:
    """``serious``, ``no data``, ``too short``: the verdict as a word in a table or sentence."""
    return verdict.value.replace("_", " ")


def diagnosis_line(diagnosis: Diagnosis) -> str:
    """``SERIOUS: training diverged — train/loss turned non-finite at step 600 ...``."""
    if diagnosis.verdict is Verdict.HEALTHY:
        return diagnosis.verdict.label
    return f"{diagnosis.verdict.label}: {diagnosis.summary}"


def explained_by(report: Report, finding: Finding) -> Finding | None:
    """The finding that explains ``finding`` in its run's diagnosis (the primary's story), or None."""
    for link in report.diagnosis(finding.run).explains:
        if link.finding is finding:
            return link.by
    return None


def diagnosis_order(report: Report, run_id: str) -> list[Finding]:
    """The training run's findings as its diagnosis tells them: the primary, then what it
    explains, then the rest in report order; each told once over the formats the run was
    written in (:meth:`Report.shown_findings_for`)."""
    diagnosis = report.diagnosis(run_id)
    findings = report.shown_findings_for(run_id)
    if diagnosis.primary is None:
        return findings
    told = [diagnosis.primary, *(link.finding for link in diagnosis.explains)]
    told_ids = {id(finding) for finding in told}
    ordered = [finding for finding in findings if id(finding) == id(diagnosis.primary)]
    ordered += [finding for finding in findings if id(finding) in told_ids and finding is not diagnosis.primary]
    return ordered + [finding for finding in findings if id(finding) not in told_ids]


def superseded_phrase(report: Report, run_id: str | None = None) -> str | None:
    """``1 finding superseded by the diagnosis (contradicted or told once); see --format json``."""
    members = None if run_id is None else {run.id for run in report.members(run_id)}
    count = sum(1 for f in report.superseded_findings if members is None or f.run in members)
    if not count:
        return None
    return f"{plural(count, 'finding')} superseded by the diagnosis; see --format json"


def fail_on_name(report: Report) -> str:
    """``--fail-on`` as reports write it: a severity, or ``never``."""
    return "never" if report.fail_on is None else report.fail_on.value


def outcome_count(report: Report, status: OutcomeStatus, run_id: str | None = None) -> int:
    """How many check outcomes have ``status``, on one run or (``run_id`` None) on all runs."""
    outcomes = report.outcomes if run_id is None else report.outcomes_for(run_id)
    return sum(1 for o in outcomes if o.status is status)


def checks_ran(report: Report, run_id: str) -> int:
    """How many checks ran on the training run: on any of the formats it was written in."""
    return len({o.check for o in report.group_outcomes(run_id) if o.status is OutcomeStatus.RAN})


def result_line(report: Report) -> str:
    """The last word: what decided the exit code, and what a suppression or the baseline kept
    out of it (:func:`gated_phrase`)."""
    gated = gated_phrase(report)
    return _result(report) + (f"; {gated}" if gated else "")


def gated_phrase(report: Report) -> str | None:
    """``2 suppressed, 12 baselined, 1 fixed since the baseline``: findings that do not count
    for the exit code because a rule or the baseline holds them; None when there are none
    and no baseline was given."""
    parts = [f"{len(report.suppressed):,} suppressed"] if report.suppressed else []
    if report.baseline is not None:
        parts.append(f"{len(report.baselined_findings):,} baselined")
        if report.baseline.fixed_count:
            parts.append(f"{report.baseline.fixed_count:,} fixed since the baseline")
    return ", ".join(parts) or None


def _result(report: Report) -> str:
    if report.fail_on is None:
        return f"Result: --fail-on never (exit {report.exit_code})"
    shown = {id(finding) for finding in report.shown_findings}  # a finding told once counts once
    failing = sum(1 for finding in report.failing() if id(finding) in shown)
    unjudged = Counter(d.verdict for d in report.failing_runs())
    parts = [plural(failing, "finding")] if failing else []
    parts += [f"{plural(n, 'run')} {PROBLEM_WORDS[v]}" for v, n in sorted(unjudged.items(), key=lambda i: VERDICT_ORDER.index(i[0]))]
    threshold = report.fail_on.value
    if parts:
        return f"Result: {' and '.join(parts)} at or above {threshold} (exit {report.exit_code})"
    return f"Result: no findings at or above {threshold} (exit {report.exit_code})"


PROBLEM_WORDS = {Verdict.NO_DATA: "with no data", Verdict.TOO_SHORT: "too short to judge"}


def skipped_line(report: Report) -> str | None:
    """Skipped checks are counted, not listed: the JSON report says which and why."""
    skipped = outcome_count(report, OutcomeStatus.SKIPPED)
    if not skipped:
        return None
    return f"{plural(skipped, 'check')} skipped for missing series; see --format json"
