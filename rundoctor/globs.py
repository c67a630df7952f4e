"""Path patterns for ``exclude`` and ``per-path-ignores``, as ruff and .gitignore read them.

A pattern is matched against a path in POSIX form, one name at a time: ``*`` and ``?``
stay inside one name, ``**`` spans any number of directories, ``[...]`` is a character
class.  It matches a path when it matches the path itself or one of the directories on it,
counted from any level: ``debug`` (a single name) matches every file or directory named
``debug`` and everything below it, ``sweep-*/old`` matches ``runs/sweep-3/old/a.csv``, and
``runs/exp1/**`` matches everything under ``runs/exp1``.  So a pattern copied from the run ids
a report prints works, and so does one written relative to the directory given on the
command line.  Patterns are relative: one that starts at the file system's root is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PathPatterns:
    """A set of glob patterns; :meth:`match` names the first one a path falls under."""

    patterns: tuple[str, ...]
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(_compile(pattern) for pattern in self.patterns))

    @classmethod
    def parse(cls, values: Iterable[str]) -> PathPatterns:
        """Patterns from repeated options or a config list, each of which may be a comma list;
        ValueError for an absolute or empty pattern."""
        patterns = []
        for value in values:
            for part in str(value).split(","):
                pattern = part.strip()
                if not pattern:
                    continue
                if not _names(pattern):
                    raise ValueError(f"{pattern!r} names no file or directory")
                if pattern.startswith("/") or re.match(r"[A-Za-z]:[\\/]", pattern):
                    raise ValueError(f"{pattern!r}: patterns are relative to the runs' paths, not absolute")
                patterns.append(pattern)
        return cls(tuple(patterns))

    def match(self, path: str) -> str | None:
        """The first pattern that ``path`` (POSIX, relative) or a directory on it matches, or None."""
        names = path.split("/")
        ancestors = ["/".join(names[: end]) for end in range(1, len(names) + 1)]
        return next((pattern for pattern, compiled in zip(self.patterns, self._compiled)
                     if any(compiled.fullmatch(candidate) for candidate in ancestors)), None)

    def match_entry(self, path: str) -> str | None:
        """The first pattern that ``path`` itself matches, or None: for a walk, which has tested
        the directories above ``path`` already (and never tests the directory it starts from)."""
        return next((pattern for pattern, compiled in zip(self.patterns, self._compiled)
                     if compiled.fullmatch(path)), None)

    def __bool__(self) -> bool:
        return bool(self.patterns)


def _compile(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression over a whole path: any leading directories, then
    the pattern's names (what lies below a matched directory is :meth:`PathPatterns.match`'s)."""
    names = _names(pattern)
    if all(name == "**" for name in names):
        return re.compile(".*", re.DOTALL)
    body, after_name = "", False
    for name in names:
        if name == "**":  # any number of whole names, none included
            body += "(?:/[^/]+)*" if after_name else "(?:[^/]+/)*"
        else:
            body += ("/" if after_name else "") + _name(name)
            after_name = True
    return re.compile(r"(?:.*/)?" + body, re.DOTALL)


def _names(pattern: str) -> list[str]:
    """The names of a pattern between its slashes; ``.`` and empty ones (``./a``, ``a//b``) dropped."""
    return [name for name in pattern.split("/") if name not in ("", ".")]


def _name(name: str) -> str:
    """One name of a pattern: ``*`` and ``?`` never cross a ``/``."""
    out: list[str] = []
    index = 0
    while index < len(name):
        char = name[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (close := name.find("]", index + 2)) != -1:
            inner = name[index + 1 : close]
            negate = inner.startswith("!")
            members = re.escape(inner[1 if negate else 0 :]).replace(r"\-", "-")
            out.append(f"[^/{members}]" if negate else f"[{members}]")
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
