"""What every layer shares about a result: severity, confidence, the finding record.

A leaf module (it imports nothing of rundoctor) so that the report, the configuration and
every reporter can name a finding without importing the checks package.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class Severity(str, enum.Enum):
    """How much a finding matters; ``--fail-on`` compares against it."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """1 for info, 2 for warning, 3 for error: ``--fail-on`` fails findings at or above its rank."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class Confidence(str, enum.Enum):
    """How sure the check is that what it measured is the problem it names."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Finding:
    """One symptom a check found in one run, with the numbers behind it and what to try.

    ``first_step``/``last_step`` bound the stretch the finding is about (None when it is
    about the whole run); ``evidence`` holds the measured numbers and the thresholds they
    crossed, so a reader of the JSON report can check the judgement.
    """

    check: str
    code: str
    severity: Severity
    confidence: Confidence
    run: str
    tags: tuple[str, ...]
    first_step: int | None
    last_step: int | None
    message: str
    evidence: Mapping[str, Any]
    advice: str


def fmt(value: float, digits: int = 4) -> str:
    """A number for a message: compact, exact enough to find it in the log."""
    if value is None or not np.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{max(digits - 1, 1)}e}"
    return f"{value:.{digits}g}"
