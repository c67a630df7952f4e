"""The versioned JSON report for pipes and tools; its JSON Schema is ``schema.json``.

Findings, check outcomes and input errors are separate lists; each run carries its
``diagnosis`` (verdict, primary problem, what it explains, what it superseded and why, its
sources), which refers to findings by their index in ``findings``.  ``findings`` holds what
the report asserts: a finding the diagnosis superseded (contradicted by a higher-priority
finding, or the same story told once) is not there, so a script that counts or gates on
``findings`` sees what the exit code sees; it is kept, whole, under its run's
``diagnosis.superseded`` with the finding that superseded it and why.

One run written in several formats (:mod:`rundoctor.twins`) keeps a ``runs[]`` entry per
format read, with that format's findings under its own id in ``findings`` (a finding found in
two formats is listed for each: each is a true statement about its file); every member's
entry carries the same ``diagnosis``, made from the findings of all members, whose
``members`` lists their ids (the leader first) and ``sources`` every member's files.  The
summary counts training runs: such a group once.  Order is deterministic (the
report's own order), there are no timestamps, and non-finite numbers are the strings "NaN",
"Infinity" and "-Infinity", so the output is strict JSON any parser accepts.  It is valid
UTF-8 even when a file name is not: each undecodable byte is written ``\\xNN`` and the run or
error carries ``path_base64``, the raw bytes of its path (:mod:`rundoctor.reporters.jsonable`).
Adding a field is a minor ``schema_version`` bump; renaming or removing one is a major bump.

Gating (schema 1.2): a finding a suppression rule set aside is not in ``findings`` but in
``suppressed``, whole, with the rule (where it is written, what it covers, the selector that
named the check, the reason).  With ``--baseline``, every finding carries ``baselined`` (true
when the baseline holds it: listed, since it is still true of the run, but not counted for
the exit code), and ``baseline`` says which file was used and which of its entries no finding
matched any more (``fixed``).

Sweep (schema 1.3): with ``--by``, ``sweep`` holds which logged settings go with which
diagnosis (:mod:`rundoctor.sweep`); without it, null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rundoctor.diagnosis import Diagnosis, Link
from rundoctor.findings import Finding, Severity
from rundoctor.report import SCHEMA_VERSION, CheckOutcome, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.inventory import error_summary, run_summary
from rundoctor.reporters.jsonable import Items, dump_chunks
from rundoctor.reporters.wording import fail_on_name, runs_by_verdict, severity_counts
from rundoctor.summary import RunSummary

if TYPE_CHECKING:
    from rundoctor.baseline import BaselineMatch
    from rundoctor.suppress import Suppressed

# The keys of ``ls``'s run summary a check report repeats; sources and metadata stay in ls.
# ``path_base64`` is there only for a path that is not valid UTF-8.
RUN_KEYS = ("id", "path", "path_base64", "format", "x_axis", "points")
# Schema 1.0's per-run ``verdict``, kept for the scripts that read it: the level of the
# diagnosis (a run with no data is "warnings", one too short to judge "info").
LEVEL_VERDICT = {None: "healthy", Severity.INFO: "info", Severity.WARNING: "warnings", Severity.ERROR: "errors"}


def render(report: Report, options: RenderOptions) -> str:
    """The ``check --format json`` output: :func:`report_document` as strict JSON."""
    return "".join(chunks(report, options))


def chunks(report: Report, options: RenderOptions) -> Iterator[str]:
    """:func:`render`'s text in pieces, each run's entry, finding and check outcome made as it is
    written: a report of 10,000 runs is written without holding its document or its text."""
    return dump_chunks(_document(report, Items))


def report_document(report: Report) -> dict[str, Any]:
    """The ``check --format json`` document (schema :data:`SCHEMA_VERSION`): only the findings the
    diagnosis kept are listed, and each run's diagnosis points to them by index."""
    return _document(report, list)


def _document(report: Report, listed: Callable[[Iterator[Any]], Any]) -> dict[str, Any]:
    """The document, its long lists (runs, findings, check outcomes) made by ``listed``."""
    from rundoctor import __version__

    active = report.active_findings
    index = {id(finding): number for number, finding in enumerate(active)}
    levels = [report.diagnosis(run.id).level for run in report.leaders]  # a twin group counts once
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "rundoctor", "version": __version__},
        "runs": listed(_run(report, run, index) for run in report.runs),
        "findings": listed(_finding(finding, report.is_baselined(finding)) for finding in active),
        "checks": listed(_outcome(outcome) for outcome in report.outcomes),
        "errors": [error_summary(error) for error in report.errors],
        "suppressed": [_suppressed(item) for item in report.suppressed],
        "baseline": None if report.baseline is None else _baseline(report.baseline),
        "sweep": None if report.sweep is None else report.sweep.as_dict(),
        "summary": {
            "runs": len(report.groups),
            "runs_by_verdict": {name: levels.count(level) for level, name in LEVEL_VERDICT.items()},
            "runs_by_diagnosis": {
verdict.value: len(runs) for verdict, runs in runs_by_verdict(report).items()},
            "findings_by_severity": {s.value: n for s, n in severity_counts(report.active_findings).items()},
            "findings_superseded": len(report.superseded_findings),
            "findings_suppressed": len(report.suppressed),
            "findings_baselined": len(report.baselined_findings),
            "baseline_fixed": 0 if report.baseline is None else report.baseline.fixed_count,
            "fail_on": fail_on_name(report),
            "exit_code": report.exit_code,
        },
    }


def _run(report: Report, run: RunSummary, index: dict[int, int]) -> dict[str, Any]:
    summary = run_summary(run)
    diagnosis = report.diagnosis(run.id)
    return {
        **{key: summary[key] for key in RUN_KEYS if key in summary},
        "roles": {tag: run.roles[tag].value for tag in sorted(run.roles)},
        "tags": summary["tags"],
        "notes": summary["notes"],
        "verdict": LEVEL_VERDICT[diagnosis.level],
        "diagnosis": _diagnosis(diagnosis, index),
    }


def _diagnosis(diagnosis: Diagnosis, index: dict[int, int]) -> dict[str, Any]:
    primary = diagnosis.primary
    return {
        "verdict": diagnosis.verdict.value,
        "level": None if diagnosis.level is None else diagnosis.level.value,
        "problem": diagnosis.problem,
        "primary": None if primary is None else _ref(primary, index),
        "explains": [{**_ref(link.finding, index), "by": link.by.check, "reason": link.reason}
                     for link in diagnosis.explains],
        "superseded": [_superseded(link) for link in diagnosis.superseded],
        "sources": list(diagnosis.sources),
        "members": list(diagnosis.members),
        "summary": diagnosis.summary,
        "advice": diagnosis.advice,
    }


def _ref(finding: Finding, index: dict[int, int]) -> dict[str, Any]:
    return {"check": finding.check, "code": finding.code, "finding": index[id(finding)]}


def _superseded(link: Link) -> dict[str, Any]:
    return {
        "check": link.finding.check,
        "code": link.finding.code,
        "by": link.by.check,
        "relation": link.relation.value,
        "reason": link.reason,
        "finding": _finding(link.finding),
    }


def _suppressed(item: Suppressed) -> dict[str, Any]:
    rule = item.rule
    return {
        "check": item.finding.check,
        "code": item.finding.code,
        "run": item.finding.run,
        "rule": {"kind": rule.kind.value, "source": rule.source, "scope": rule.scope,
                 "selector": item.selector, "reason": rule.reason},
        "finding": _finding(item.finding),
    }


def _baseline(match: BaselineMatch) -> dict[str, Any]:
    return {"source": match.source, "entries": match.entries, "fixed": [entry.as_dict() for entry in match.fixed]}


def _finding(finding: Finding, baselined: bool = False) -> dict[str, Any]:
    return {
        "check": finding.check,
        "code": finding.code,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "run": finding.run,
        "tags": list(finding.tags),
        "steps": {"first": finding.first_step, "last": finding.last_step},
        "message": finding.message,
        "evidence": dict(finding.evidence),
        "advice": finding.advice,
        "baselined": baselined,
    }


def _outcome(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "check": outcome.check,
        "code": outcome.code,
        "run": outcome.run,
        "status": outcome.status.value,
        "reason": outcome.reason,
    }
