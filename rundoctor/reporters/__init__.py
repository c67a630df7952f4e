"""Reporters: one module per output format, each a pure function of a report.

Modules are imported only when their format is asked for, so ``rundoctor --help`` stays fast.
Each module exposes ``render(report, options) -> str``; one whose text grows with the number of
runs may also expose ``chunks(report, options)``, the same text in pieces, so that the command
line writes it without holding it whole (:func:`render_chunks`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rundoctor.report import Report

REPORTERS: dict[str, str] = {
    "text": "rundoctor.reporters.text",
    "json": "rundoctor.reporters.json_report",
    "markdown": "rundoctor.reporters.markdown",
    "github": "rundoctor.reporters.github",
    "junit": "rundoctor.reporters.junit",
    "html": "rundoctor.reporters.html",
    "concise": "rundoctor.reporters.concise",
}

# The formats people read in a terminal or a CI log: only they honour ``quiet``,
# ``statistics`` and ``verbose``.
TERMINAL_FORMATS = ("text", "concise")
# The formats that show the sweep view of ``check --by`` (``Report.sweep``).
SWEEP_FORMATS = ("text", "json", "html")
# The formats that draw curves (the HTML report's panels), and those that do with ``verbose``
# (the text report's sparklines): only for them does a report keep curves (rundoctor.summary).
CURVE_FORMATS = ("html",)
VERBOSE_CURVE_FORMATS = ("text",)


@dataclass(frozen=True)
class RenderOptions:
    """Layout for the reporters that care: ``width`` in terminal columns, ``color`` for ANSI
    styles; for the :data:`TERMINAL_FORMATS`, what to show: ``quiet`` only what fails
    ``--fail-on``, ``statistics`` counts per check instead of the findings, ``verbose`` each
    finding whole (message, its own advice, sparklines) and every healthy run by name.
    ``workspace`` (an absolute directory, empty for none) is what the GitHub annotations' file
    paths are made relative to, a relative run path being taken from ``cwd`` (absolute).  The
    command line fills them in, so reporters stay pure functions of what they are given."""

    width: int = 80
    color: bool = False
    quiet: bool = False
    statistics: bool = False
    verbose: bool = False
    workspace: str = ""
    cwd: str = ""


def draws_curves(format: str, options: RenderOptions) -> bool:
    """Whether the report in ``format`` with ``options`` draws curves (see :data:`CURVE_FORMATS`)."""
    return format in CURVE_FORMATS or (options.verbose and format in VERBOSE_CURVE_FORMATS)


def render_chunks(format: str, report: Report, options: RenderOptions = RenderOptions()) -> Iterator[str]:
    """:func:`render`'s text in the pieces the reporter makes it in (one piece when it makes
    it whole)."""
    module = importlib.import_module(REPORTERS[format])
    if hasattr(module, "chunks"):
        made: Iterator[str] = module.chunks(report, options)
        return made
    return iter((render(format, report, options),))


def render(format: str, report: Report, options: RenderOptions = RenderOptions()) -> str:
    """The report in ``format`` (a key of :data:`REPORTERS`); the reporter's module is imported only
    when it is asked for."""
    module = importlib.import_module(REPORTERS[format])
    text: str = module.render(report, options)
    return text
