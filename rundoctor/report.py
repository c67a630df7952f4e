"""The report: what was read, what every check concluded, and what could not be read.

Reporters are pure functions of a :class:`Report`; this module holds the record and the
derived views they share (verdicts, counts, ordering), so no reporter re-derives them.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rundoctor.findings import Finding, Severity
from rundoctor.series import ReadError, Run

SCHEMA_VERSION = "1.0"


class OutcomeStatus(str, enum.Enum):
    RAN = "ran"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class CheckOutcome:
    """What one check did on one run: ran, was skipped (and why), or raised (and what)."""

    check: str
    code: str
    run: str
    status: OutcomeStatus
    reason: str | None = None


class Verdict(str, enum.Enum):
    HEALTHY = "healthy"
    INFO = "info"
    WARNINGS = "warnings"
    ERRORS = "errors"


@dataclass(frozen=True)
class Report:
    runs: tuple[Run, ...]
    findings: tuple[Finding, ...]
    outcomes: tuple[CheckOutcome, ...] = ()
    errors: tuple[ReadError, ...] = ()
    fail_on: Severity | None = Severity.ERROR  # None: never fail
    settings: dict[str, Any] = field(default_factory=dict)  # echo of the effective options

    def __post_init__(self) -> None:
        ordered = sorted(self.findings, key=finding_order)
        object.__setattr__(self, "findings", tuple(ordered))
        object.__setattr__(self, "runs", tuple(sorted(self.runs, key=lambda run: run.id)))
        object.__setattr__(
            self, "outcomes", tuple(sorted(self.outcomes, key=lambda o: (o.run, o.code)))
        )
        object.__setattr__(self, "errors", tuple(sorted(self.errors, key=lambda e: e.path)))

    def findings_for(self, run_id: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.run == run_id]

    def verdict(self, run_id: str) -> Verdict:
        worst = max((f.severity.rank for f in self.findings_for(run_id)), default=0)
        return {0: Verdict.HEALTHY, 1: Verdict.INFO, 2: Verdict.WARNINGS, 3: Verdict.ERRORS}[worst]

    def counts(self) -> dict[str, int]:
        counter = Counter(finding.severity.value for finding in self.findings)
        return {severity.value: counter.get(severity.value, 0) for severity in Severity}

    def failing(self) -> list[Finding]:
        """Findings at or above ``fail_on``: what makes the exit code 1."""
        if self.fail_on is None:
            return []
        return [f for f in self.findings if f.severity.rank >= self.fail_on.rank]

    @property
    def exit_code(self) -> int:
        return 1 if self.failing() else 0


def finding_order(finding: Finding) -> tuple[Any, ...]:
    """Deterministic order: run, then most severe first, then step, then check code."""
    return (
        finding.run,
        -finding.severity.rank,
        finding.first_step if finding.first_step is not None else -(2**63),
        finding.code,
        finding.tags,
        finding.message,
    )
