"""Suppressions: findings a team has decided not to hear about on some runs, and why.

Two kinds of rule set a check's findings aside on the runs they cover:

- ``[tool.rundoctor.per-path-ignores]`` in the project's config (ruff's per-file-ignores):
  a glob (:mod:`rundoctor.globs`) over run ids, mapped to check names, codes or prefixes;
- a ``rundoctor.toml`` inside the checked tree, in a run's directory or any directory above
  it up to the path given on the command line, which travels with the runs it sits beside::

      ignore = ["loss-spikes", "S"]
      reason = "batch size 1: spikes are expected"

  A ``reason`` is required: a suppression that sits among the logs, far from any review,
  must say why it is there.  Only ``ignore`` and ``reason`` belong in such a file; the
  project's settings stay in the config found from the working directory (that file is
  never read as a suppression, even when it lies inside the checked tree).

A suppressed finding is set aside before the diagnosis, as if its check had not been
selected for that run: it neither names the run's problem nor contradicts another finding,
and it never counts for ``--fail-on``.  Reports count it, and the JSON report lists it with
the rule that set it aside (:class:`Suppressed`).  Rules are matched on run ids alone, so
the engine applies them without touching the file system; only :func:`file_rules` reads.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rundoctor.checks.base import Check
from rundoctor.config import Settings, _hint, parse_selectors
from rundoctor.discover import run_id
from rundoctor.errors import UsageError
from rundoctor.findings import Finding
from rundoctor.globs import PathPatterns
from rundoctor.readers import files
from rundoctor.series import Run

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SUPPRESSION_FILE = "rundoctor.toml"
SUPPRESSION_KEYS = ("ignore", "reason")


class RuleKind(str, enum.Enum):
    """Where a suppression rule is written: the project's per-path-ignores, or a file in the tree."""

    PER_PATH = "per-path-ignores"
    FILE = "file"


@dataclass(frozen=True)
class SuppressionRule:
    """Findings of the checks ``selectors`` name are set aside on the runs ``scope`` covers:
    for per-path-ignores a glob over run ids, for a file in the tree the run id of its
    directory (every run at or below it)."""

    kind: RuleKind
    scope: str
    selectors: tuple[str, ...]
    source: str  # the file the rule is written in, as given (a config file, or a rundoctor.toml)
    reason: str | None = None

    def covers(self, run_id: str) -> bool:
        """Whether the rule applies to the run with id ``run_id``."""
        if self.kind is RuleKind.PER_PATH:
            return PathPatterns((self.scope,)).match(run_id) is not None
        return run_id == self.scope or run_id.startswith(self.scope.rstrip("/") + "/")

    def selector_for(self, check: Check[Any]) -> str | None:
        """The selector of this rule that names ``check``, or None."""
        return next((selector for selector in self.selectors if check.selected_by(selector)), None)


@dataclass(frozen=True)
class Suppressed:
    """A finding a rule set aside, and which of the rule's selectors named its check."""

    finding: Finding
    rule: SuppressionRule
    selector: str


def per_path_rules(settings: Settings) -> list[SuppressionRule]:
    """The rules of the config's ``per-path-ignores`` table, in the table's order, each naming
    the config file relative to the working directory (as the user would type it)."""
    source = "config"
    if settings.source is not None:
        try:
            source = os.path.relpath(settings.source)
        except ValueError:  # another drive: no relative path to it
            source = settings.source
    return [SuppressionRule(RuleKind.PER_PATH, pattern, selectors, source) for pattern, selectors in settings.per_path_ignores]


def set_aside(
    findings: Iterable[Finding], rules: Sequence[SuppressionRule], registry: Sequence[Check[Any]]
) -> tuple[list[Finding], list[Suppressed]]:
    """``findings`` split into those that stand and those a rule suppresses; the first rule
    that covers a finding's run and names its check is the one recorded."""
    by_name = {check.name: check for check in registry}
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in findings:
        check = by_name.get(finding.check)
        hit = None if check is None else next(
            ((rule, selector) for rule in rules if rule.covers(finding.run)
             and (selector := rule.selector_for(check)) is not None), None)
        if hit is None:
            kept.append(finding)
        else:
            suppressed.append(Suppressed(finding, *hit))
    return kept, suppressed


def file_rules(
    roots: Sequence[Path], runs: Sequence[Run], registry: Sequence[Check[Any]], config: str | None
) -> list[SuppressionRule]:
    """The rules of every ``rundoctor.toml`` in a run's directory or above it, up to the root
    given on the command line that holds the run, nearest first; ``config`` (the project's
    config file) is never one of them.  UsageError for a file that is not a valid suppression."""
    skip = os.path.abspath(config) if config is not None else None
    given = [(root, Path(os.path.abspath(root)), files.is_dir(root)) for root in roots]
    read: dict[Path, SuppressionRule | None] = {}
    rules: list[SuppressionRule] = []
    for run in runs:
        run_path = Path(os.path.abspath(run.path))
        holder = next((g for g in given if run_path == g[1] or run_path.is_relative_to(g[1])), None)
        if holder is None:
            continue
        root, absolute, root_is_dir = holder
        run_dir = run_path if files.is_dir(run_path) else run_path.parent
        # a file named on the command line has its own directory and nothing above it
        chain = [d for d in (run_dir, *run_dir.parents) if d.is_relative_to(absolute)] if root_is_dir else [run_dir]
        for directory in chain:
            if directory not in read:
                if root_is_dir:
                    shown, scope = root / directory.relative_to(absolute), run_id(directory, root)
                else:
                    shown, scope = root.parent, run.id
                read[directory] = _read_file(directory, shown, scope, registry, skip)
            rule = read[directory]
            if rule is not None and rule not in rules:
                rules.append(rule)
    # nearest first for every run: a deeper directory's file speaks before one above it
    return sorted(rules, key=lambda rule: -rule.scope.count("/"))


def _read_file(
    directory: Path, shown_dir: Path, scope: str, registry: Sequence[Check[Any]], skip: str | None
) -> SuppressionRule | None:
    """The rule of ``directory``'s rundoctor.toml (``shown_dir`` is the directory as the user
    named it), or None when it has none or it is the project's config."""
    path = directory / SUPPRESSION_FILE
    if not files.is_file(path) or str(path) == skip:
        return None
    shown = str(shown_dir / SUPPRESSION_FILE)
    try:
        table = tomllib.loads(files.read_bytes(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read suppression file {shown}: {error}") from None
    for key in table:
        if key not in SUPPRESSION_KEYS:
            raise UsageError(
                f"{shown}: unknown key {key!r}{_hint(key, SUPPRESSION_KEYS)}; a rundoctor.toml inside the "
                "checked tree holds only `ignore` and `reason` (project settings belong in the config "
                "found from the working directory, or --config)"
            )
    ignore = table.get("ignore")
    if not isinstance(ignore, list) or not ignore:
        raise UsageError(f"{shown}: `ignore` must be a non-empty list of checks (names, codes or code prefixes)")
    reason = table.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"{shown}: `reason` is required: say why these checks do not apply to the runs here")
    selectors = parse_selectors(ignore, registry, f"{shown}: ignore")
    return SuppressionRule(RuleKind.FILE, scope, selectors, shown, reason.strip())
