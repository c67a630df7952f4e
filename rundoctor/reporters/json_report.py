"""The versioned JSON report for pipes and tools; its JSON Schema is ``schema.json``.

Findings, check outcomes and input errors are separate lists.  Order is deterministic (the
report's own order), there are no timestamps, and non-finite numbers are the strings "NaN",
"Infinity" and "-Infinity", so the output is strict JSON any parser accepts.  Adding a field
is a minor ``schema_version`` bump; renaming or removing one is a major bump.
"""

from __future__ import annotations

from typing import Any

from rundoctor.findings import Finding
from rundoctor.report import SCHEMA_VERSION, CheckOutcome, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.inventory import run_summary
from rundoctor.reporters.jsonable import dumps
from rundoctor.reporters.wording import fail_on_name, runs_by_verdict, severity_counts
from rundoctor.series import Run

# The keys of ``ls``'s run summary a check report repeats; sources and metadata stay in ls.
RUN_KEYS = ("id", "path", "format", "x_axis", "points")


def render(report: Report, options: RenderOptions) -> str:
    return dumps(report_document(report))


def report_document(report: Report) -> dict[str, Any]:
    from rundoctor import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "rundoctor", "version": __version__},
        "runs": [_run(report, run) for run in report.runs],
        "findings": [_finding(finding) for finding in report.findings],
        "checks": [_outcome(outcome) for outcome in report.outcomes],
        "errors": [error.as_dict() for error in report.errors],
        "summary": {
            "runs": len(report.runs),
            "runs_by_verdict": {verdict.value: len(runs) for verdict, runs in runs_by_verdict(report).items()},
            "findings_by_severity": {s.value: n for s, n in severity_counts(report.findings).items()},
            "fail_on": fail_on_name(report),
            "exit_code": report.exit_code,
        },
    }


def _run(report: Report, run: Run) -> dict[str, Any]:
    summary = run_summary(run)
    return {
        **{key: summary[key] for key in RUN_KEYS},
        "roles": {tag: run.roles[tag].value for tag in sorted(run.roles)},
        "tags": summary["tags"],
        "notes": summary["notes"],
        "verdict": report.verdict(run.id).value,
    }


def _finding(finding: Finding) -> dict[str, Any]:
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
    }


def _outcome(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "check": outcome.check,
        "code": outcome.code,
        "run": outcome.run,
        "status": outcome.status.value,
        "reason": outcome.reason,
    }
