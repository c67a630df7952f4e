"""Run every selected check on every run, each in isolation, then diagnose each run.

A check that raises becomes an ``error`` outcome for that check and run; the rest of the
report still stands.  A check whose roles are missing is ``skipped`` with the reason.  The
number of classes is resolved inside the same isolation: a bug there turns the checks of
that run into ``error`` outcomes instead of ending the whole report.  After the checks, the
diagnosis (:mod:`rundoctor.diagnosis`) relates each run's findings into one verdict; one run
written in several formats (:mod:`rundoctor.twins`) is checked per format and diagnosed once,
from the findings of all its formats.

Before the diagnosis, findings that a suppression rule covers (the config's per-path-ignores,
the ``rundoctor.toml`` files the CLI found in the checked tree) are set aside with their rule
(:mod:`rundoctor.suppress`); after it, a baseline marks the active findings it already holds
(:mod:`rundoctor.baseline`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from rundoctor.baseline import Baseline
from rundoctor.checks.base import Check, NumClasses, RunContext
from rundoctor.checks.classes import resolve_num_classes
from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.diagnosis import diagnose_all
from rundoctor.findings import Finding, Severity
from rundoctor.report import CheckOutcome, OutcomeStatus, Report
from rundoctor.series import ReadError, Run
from rundoctor.summary import summarize
from rundoctor.suppress import SuppressionRule, per_path_rules, set_aside


def selected_checks(settings: Settings, registry: Sequence[Check[Any]] | None = None) -> list[Check[Any]]:
    """The checks ``--select`` / ``--ignore`` leave (names, codes, code prefixes), in registry order."""
    registry = REGISTRY if registry is None else registry

    def named(check: Check[Any], names: Iterable[str]) -> bool:
        return any(check.selected_by(name) for name in names)

    chosen = [c for c in registry if not settings.select or named(c, settings.select)]
    return [c for c in chosen if not named(c, settings.ignore)]


def diagnose(
    runs: Sequence[Run],
    errors: Sequence[ReadError],
    settings: Settings,
    registry: Sequence[Check[Any]] | None = None,
    *,
    suppressions: Sequence[SuppressionRule] = (),
    baseline: Baseline | None = None,
    curves: bool = True,
) -> Report:
    """Check every run with the checks of ``registry`` (default: all registered) that the
    settings select, set aside what ``suppressions`` and the settings' per-path-ignores cover,
    diagnose each training run (a twin group) from the findings left, and mark those the
    ``baseline`` holds.  The report holds each run's summary (:func:`rundoctor.summary.summarize`,
    with the curves reports draw when ``curves``), not its points."""
    checks = selected_checks(settings, registry)
    params = {check.name: check.make_params(settings.params.get(check.name, {})) for check in checks}
    findings: list[Finding] = []
    outcomes: list[CheckOutcome] = []
    for run in runs:
        produced_for_run: list[Finding] = []
        # One context for all the checks of the run: curves and shared measurements (read-only)
        # are computed once per run, not once per check.
        ctx = RunContext(run)
        classes = _Classes(ctx, settings)
        for check in checks:
            reason = check.missing(ctx)
            if reason is not None:
                outcomes.append(CheckOutcome(check.name, check.code, run.id, OutcomeStatus.SKIPPED, reason))
                continue
            try:
                ctx.num_classes = classes.get()
                produced = list(check.detect(check, ctx, params[check.name]))
            except Exception as error:  # isolation: one broken check must not sink the report
                outcomes.append(
                    CheckOutcome(check.name, check.code, run.id, OutcomeStatus.ERROR, classes.describe(error))
                )
                continue
            outcomes.append(CheckOutcome(check.name, check.code, run.id, OutcomeStatus.RAN))
            override = settings.severity.get(check.name)
            produced_for_run.extend(_with_severity(f, override) for f in produced)
        findings.extend(produced_for_run)
    findings, suppressed = set_aside(findings, [*suppressions, *per_path_rules(settings)], checks)
    by_run: dict[str, list[Finding]] = {}
    for finding in findings:
        by_run.setdefault(finding.run, []).append(finding)
    report = Report(
        runs=tuple(summarize(run, by_run.get(run.id, ()), curves=curves) for run in runs),
        findings=tuple(findings),
        outcomes=tuple(outcomes),
        errors=tuple(errors),
        fail_on=settings.fail_on,
        diagnoses=diagnose_all(runs, findings),
        suppressed=tuple(suppressed),
    )
    if baseline is None:
        return report
    return dataclasses.replace(report, baseline=baseline.match(report.active_findings))


class _Classes:
    """The run's number of classes, resolved once, when the first check runs; an exception
    while resolving it is raised again for every check, inside that check's isolation."""

    def __init__(self, ctx: RunContext, settings: Settings) -> None:
        self._ctx, self._settings = ctx, settings
        self._done = False
        self._value: NumClasses | None = None
        self._error: Exception | None = None

    def get(self) -> NumClasses | None:
        if not self._done:
            self._done = True
            try:
                self._value = resolve_num_classes(self._ctx, *self._settings.num_classes_given())
            except Exception as error:
                self._error = error
        if self._error is not None:
            raise self._error
        return self._value

    def describe(self, error: Exception) -> str:
        text = f"{type(error).__name__}: {error}"
        return f"resolving the number of classes raised {text}" if error is self._error else text


def _with_severity(finding: Finding, override: Severity | None) -> Finding:
    """A configured severity replaces the check's own choice for all its findings."""
    return finding if override is None else dataclasses.replace(finding, severity=override)
