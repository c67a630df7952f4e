"""rundoctor: reads the logs a training run leaves behind and says, with evidence, what is wrong.

The public API is the names in ``__all__`` (see docs/api.md); everything else may change.
They are imported on first use (PEP 562), so ``import rundoctor`` and ``rundoctor --help``
stay fast: numpy, pandas, the readers and the checks load only when a name that needs them
is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rundoctor.api import Runs, diagnose, export, load
    from rundoctor.diagnosis import Diagnosis, Verdict
    from rundoctor.findings import Confidence, Finding, Severity
    from rundoctor.report import Report
    from rundoctor.series import ReadError, Run

# Public name -> the module that defines it.  A name removed from here breaks users:
# tests/test_api.py fails when one disappears.
_EXPORTS = {
    "load": "rundoctor.api",
    "diagnose": "rundoctor.api",
    "export": "rundoctor.api",
    "Runs": "rundoctor.api",
    "Run": "rundoctor.series",
    "ReadError": "rundoctor.series",
    "Finding": "rundoctor.findings",
    "Severity": "rundoctor.findings",
    "Confidence": "rundoctor.findings",
    "Diagnosis": "rundoctor.diagnosis",
    "Verdict": "rundoctor.diagnosis",
    "Report": "rundoctor.report",
}

__all__ = [
    "Confidence",
    "Diagnosis",
    "Finding",
    "ReadError",
    "Report",
    "Run",
    "Runs",
    "Severity",
    "Verdict",
    "__version__",
    "diagnose",
    "export",
    "load",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and kept here after that."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rundoctor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
