"""A baseline: the findings a team has accepted for now, so that a gate fails only on new ones.

``rundoctor check runs/ --write-baseline .rundoctor-baseline.json`` records the findings the
report asserts (superseded and suppressed ones are not asserted, so not recorded);
``rundoctor check runs/ --baseline .rundoctor-baseline.json`` then counts a finding as
*baselined* when the baseline holds it, and only the others count for ``--fail-on``.  Entries
the baseline holds that no finding matches any more are *fixed*: counted, so the file can be
written again to tighten the gate.

A finding is matched on its run id (the run's path as every report prints it), its check's
name and its tags, never on numbers, steps, severity or message: a spike that moved by ten
steps or a loss that rose 31% instead of 30% is the same known problem.  When a run holds
several findings of one check on the same tags, the entry's ``count`` says how many are
known; one more is new.

The file, version 1::

    {
      "format": "rundoctor-baseline",
      "version": 1,
      "findings": [
        {"run": "runs/a", "check": "loss-spikes", "tags": ["train/loss"], "count": 1}
      ]
    }

Entries are sorted by run, check and tags and written one a line, keys in a fixed order, so
that the file is the same for the same findings and a change to it reads well in a diff.
A later version adds fields; a reader refuses a version it does not know.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rundoctor.errors import UsageError
from rundoctor.findings import Finding

FORMAT = "rundoctor-baseline"
VERSION = 1

Key = tuple[str, str, tuple[str, ...]]  # run id, check name, tags (sorted)


@dataclass(frozen=True, order=True)
class BaselineEntry:
    """``count`` findings of ``check`` on ``run`` about ``tags``."""

    run: str
    check: str
    tags: tuple[str, ...]
    count: int = 1

    @property
    def key(self) -> Key:
        """What findings are matched on (see :func:`key_of`)."""
        return (self.run, self.check, self.tags)

    def as_dict(self) -> dict[str, Any]:
        """The entry as the baseline file and the JSON report write it."""
        return {"run": self.run, "check": self.check, "tags": list(self.tags), "count": self.count}


@dataclass(frozen=True)
class BaselineMatch:
    """What a baseline made of a report's findings: those it holds, and its entries found no more."""

    source: str
    entries: int  # findings the baseline holds (the sum of the counts)
    baselined: tuple[Finding, ...]
    fixed: tuple[BaselineEntry, ...]  # each with the count no longer found

    @property
    def fixed_count(self) -> int:
        """How many findings the baseline holds that were not found (the sum of ``fixed`` counts)."""
        return sum(entry.count for entry in self.fixed)


@dataclass(frozen=True)
class Baseline:
    """The accepted findings, one entry per (run, check, tags) with how many there are."""

    entries: tuple[BaselineEntry, ...]
    source: str = ""

    @classmethod
    def of(cls, findings: Iterable[Finding], source: str = "") -> Baseline:
        """The baseline that holds exactly ``findings``."""
        counts = Counter(key_of(finding) for finding in findings)
        return cls(tuple(sorted(BaselineEntry(*key, count=n) for key, n in counts.items())), source)

    @property
    def size(self) -> int:
        """How many findings the baseline holds (the sum of its entries' counts)."""
        return sum(entry.count for entry in self.entries)

    def render(self) -> str:
        """The file's text: the same for the same findings (sorted entries, fixed key order, no
        timestamps), one entry a line so that a change reads well in a diff."""
        entries = ",\n".join(f"    {json.dumps(entry.as_dict(), ensure_ascii=False)}" for entry in self.entries)
        return (f'{{\n  "format": "{FORMAT}",\n  "version": {VERSION},\n  "findings": ['
                + (f"\n{entries}\n  " if entries else "") + "]\n}\n")

    def match(self, findings: Sequence[Finding]) -> BaselineMatch:
        """Which of ``findings`` (in report order) the baseline holds, up to each entry's count,
        and the entries, or parts of counts, that no finding matched."""
        left: Counter[Key] = Counter()
        for entry in self.entries:  # a file edited by hand may name one key twice: both count
            left[entry.key] += entry.count
        baselined = []
        for finding in findings:
            key = key_of(finding)
            if left.get(key, 0) > 0:
                left[key] -= 1
                baselined.append(finding)
        fixed = tuple(BaselineEntry(*key, count=n) for key, n in sorted(left.items()) if n > 0)
        return BaselineMatch(self.source, self.size, tuple(baselined), fixed)


def key_of(finding: Finding) -> Key:
    """What a baseline matches a finding on: run id, check name, tags (order-free)."""
    return (finding.run, finding.check, tuple(sorted(finding.tags)))


def load(path: Path) -> Baseline:
    """The baseline in ``path``; UsageError when it is missing, not a baseline, or of a version
    this rundoctor does not know."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read --baseline {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--baseline {path} is not JSON: {error}") from None
    return parse(document, str(path))


def parse(document: Any, source: str) -> Baseline:
    """A baseline from its decoded JSON; UsageError naming ``source`` on anything else."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(f"{source} is not a rundoctor baseline (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise UsageError(
            f"{source}: baseline version {document.get('version')!r} is not one this rundoctor reads ({VERSION}); "
            "write it again with --write-baseline"
        )
    raw = document.get("findings")
    if not isinstance(raw, list):
        raise UsageError(f"{source}: \"findings\" must be a list")
    entries = []
    for number, item in enumerate(raw):
        if not (isinstance(item, dict) and isinstance(item.get("run"), str) and isinstance(item.get("check"), str)
                and isinstance(item.get("tags", []), list) and all(isinstance(t, str) for t in item.get("tags", []))
                and _count(item.get("count", 1)) > 0):
            raise UsageError(f"{source}: findings[{number}] must have a run, a check, tags (strings) and a count >= 1")
        entries.append(BaselineEntry(item["run"], item["check"], tuple(sorted(item.get("tags", []))), item.get("count", 1)))
    return Baseline(tuple(entries), source)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
