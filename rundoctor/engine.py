"""Run every selected check on every run, each in isolation.

A check that raises becomes an ``error`` outcome for that check and run; the rest of the
report still stands.  A check whose roles are missing is ``skipped`` with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from rundoctor.checks.registry import REGISTRY
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Finding, Severity
from rundoctor.checks.classes import resolve_num_classes
from rundoctor.config import Settings
from rundoctor.report import CheckOutcome, OutcomeStatus, Report
from rundoctor.series import ReadError, Run


def selected_checks(settings: Settings, registry: Sequence[Check[Any]] | None = None) -> list[Check[Any]]:
    """The checks ``--select`` / ``--ignore`` leave, by name or code, in registry order."""
    registry = REGISTRY if registry is None else registry

    def named(check: Check[Any], names: Iterable[str]) -> bool:
        return any(name in (check.name, check.code) for name in names)

    chosen = [c for c in registry if not settings.select or named(c, settings.select)]
    return [c for c in chosen if not named(c, settings.ignore)]


def diagnose(runs: Sequence[Run], errors: Sequence[ReadError], settings: Settings) -> Report:
    checks = selected_checks(settings)
    params = {check.name: check.make_params(settings.params.get(check.name, {})) for check in checks}
    findings: list[Finding] = []
    outcomes: list[CheckOutcome] = []
    for run in runs:
        ctx = RunContext(run, num_classes=resolve_num_classes(run, *settings.num_classes_given()))
        for check in checks:
            reason = check.missing(run)
            if reason is not None:
                outcomes.append(CheckOutcome(check.name, check.code, run.id, OutcomeStatus.SKIPPED, reason))
                continue
            try:
                produced = list(check.detect(check, ctx, params[check.name]))
            except Exception as error:  # isolation: one broken check must not sink the report
                outcomes.append(
                    CheckOutcome(
                        check.name, check.code, run.id, OutcomeStatus.ERROR,
                        f"{type(error).__name__}: {error}",
                    )
                )
                continue
            outcomes.append(CheckOutcome(check.name, check.code, run.id, OutcomeStatus.RAN))
            override = settings.severity.get(check.name)
            findings.extend(_with_severity(f, override) for f in produced)
    return Report(
        runs=tuple(runs),
        findings=tuple(findings),
        outcomes=tuple(outcomes),
        errors=tuple(errors),
        fail_on=settings.fail_on,
    )


def _with_severity(finding: Finding, override: Severity | None) -> Finding:
    """A configured severity replaces the check's own choice for all its findings."""
    return finding if override is None else dataclasses.replace(finding, severity=override)
