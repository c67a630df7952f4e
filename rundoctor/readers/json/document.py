"""One JSON document (trainer_state.json, Keras history), read member by member so that a file cut
short still yields every complete value before the cut."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rundoctor.readers import files
from rundoctor.readers.sidefiles import NestedTooDeep, decode_json_bounded
from rundoctor.readers.text import BOM
from rundoctor.series import NoteKind, ReadNote

_LONGEST_METADATA = 200  # characters; env/config dumps (kilobytes) are not run metadata
_TOO_DEEP = object()  # a value read past because it nests too deeply
_SPACE = re.compile(r"[ \t\n\r]*")


# --------------------------------------------------------------------------------------------
# One JSON document (trainer_state.json, Keras history): read member by member so that a
# file cut short still yields every complete value before the cut.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Document:
    members: dict[str, Any]
    offsets: dict[str, list[int]]  # array members: the offset of each element
    stop: int | None  # where reading stopped early; None when the document was whole
    why: str = ""
    # Damage read past: (offset, what), e.g. a comma before a closing bracket.
    troubles: tuple[tuple[int, str], ...] = ()

    def notes(self, source: str, text: str, what: str) -> list[ReadNote]:
        """The damage read past, then where reading stopped (``what`` was read before it)."""
        notes = [ReadNote(NoteKind.CORRUPT, source, trouble, location=f"line {_line_at(text, offset)}")
                 for offset, trouble in self.troubles]
        if self.stop is None:
            return notes
        line = _line_at(text, self.stop)
        # A file whose last character still closes the document was damaged inside; one
        # that does not close was cut short (a crash or a copy mid-write).
        if text.rstrip().endswith("}"):
            notes.append(ReadNote(NoteKind.CORRUPT, source,
                                  f"unreadable from line {line} on ({self.why}); {what} before it",
                                  location=f"line {line}"))
        else:
            notes.append(ReadNote(NoteKind.TRUNCATED, source,
                                  f"the file is cut short at line {line} ({self.why}); {what} before the cut",
                                  location=f"line {line}", count=len(text) - self.stop))
        return notes


def _line_at(text: str, offset: int) -> int:
    """The 1-based line of the character at ``offset``."""
    return text.count("\n", 0, offset) + 1


def _walk_document(text: str) -> _Document:
    """A top-level JSON object read member by member, arrays element by element.

    A value counts only once the delimiter after it is read: a number cut short ("0.95"
    cut to "0.9") is itself valid JSON and must not pass for the value that was logged.
    Damage that leaves every value readable is read past and reported: a comma before a
    closing bracket (a value deleted), and a list written again with other values (a block
    of the file written twice).  A list holds points, so its first complete value is kept
    where JSON parsers keep the last: a later copy, whole or cut, must not replace records
    already read.  Other repeated members follow JSON: the last one wins.  Members beside
    the points are side data (:mod:`rundoctor.readers.sidefiles`): a member or element nested
    too deeply is read past and reported, so it never costs the members after it.
    """
    members: dict[str, Any] = {}
    offsets: dict[str, list[int]] = {}
    troubles: list[tuple[int, str]] = []

    def stopped(at: int | None, why: str = "") -> _Document:
        return _Document(members, offsets, at, why, tuple(troubles))

    def skip(at: int) -> int:
        return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # matches empty

    def skip_comma(at: int, closing: str) -> int:
        """Past the ',' at ``at`` (if it is one) and the space after it; a ``closing``
        bracket right after it is damage read past."""
        if not text.startswith(",", at):
            return at
        after = skip(at + 1)
        if text.startswith(closing, after):
            troubles.append((at, f"a ',' before '{closing}' is not valid JSON (a value deleted?); read past it"))
        return after

    def value_at(at: int, what: str) -> tuple[Any, int]:
        """The value at ``at`` and its end; :data:`_TOO_DEEP` (reported) for one nested too
        deeply that ends, NestedTooDeep for one that never does."""
        try:
            return decode_json_bounded(text, at)
        except NestedTooDeep as deep:
            if deep.end is None:
                raise
            troubles.append((at, f"{what} is {deep}; skipped"))
            return _TOO_DEEP, deep.end

    pos = skip(0)
    if not text.startswith("{", pos):
        return stopped(pos, "not a JSON object")
    pos = skip(pos + 1)
    while not text.startswith("}", pos):
        try:
            name_at = pos
            if not text.startswith('"', pos):
                return stopped(pos, "expected a member name")
            key, pos = decode_json_bounded(text, pos)
            pos = skip(pos)
            if not text.startswith(":", pos):
                return stopped(pos, "expected ':'")
            pos = skip(pos + 1)
            # A repeated member is read into a scratch value, compared, and dropped.
            repeated = key in members
            if text.startswith("[", pos):
                items: list[Any] = []
                starts: list[int] = []
                if not repeated:
                    members[key], offsets[key] = items, starts
                pos = skip(pos + 1)
                while not text.startswith("]", pos):
                    item, end = value_at(pos, f"an element of {key!r}")
                    after = skip(end)
                    if not text.startswith((",", "]"), after):
                        return stopped(after, "expected ',' or ']'")
                    if item is not _TOO_DEEP:
                        items.append(item)
                        starts.append(pos)
                    pos = skip_comma(after, "]")
                pos += 1
                value: Any = items
            else:
                value, pos = value_at(pos, f"the member {key!r}")
                if not text.startswith((",", "}"), skip(pos)):
                    return stopped(skip(pos), "expected ',' or '}'")
                if value is _TOO_DEEP:
                    pos = skip_comma(skip(pos), "}")
                    continue
            if not repeated or not isinstance(members[key], list):
                members[key] = value
            elif json.dumps(value) != json.dumps(members[key]):  # NaN-safe; an equal copy changes nothing
                troubles.append((name_at, f"the list {key!r} appears again with other values (a block "
                                          "written twice?); the first one is kept"))
        except json.JSONDecodeError as error:
            return stopped(error.pos, error.msg)
        except NestedTooDeep as deep:
            return stopped(pos, f"{deep} and never closed")
        pos = skip(pos)
        if not text.startswith((",", "}"), pos):
            return stopped(pos, "expected ',' or '}'")
        pos = skip_comma(pos, "}")
    pos = skip(pos + 1)
    return stopped(None) if pos == len(text) else stopped(pos, "extra data after the document")


def _read_text(path: Path) -> tuple[str, list[ReadNote]]:
    raw = files.read_bytes(path).removeprefix(BOM)
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1  # notes on text files name lines, as the others do
        note = ReadNote(NoteKind.INFO, str(path), "the file holds bytes that are not UTF-8; they "
                        "were decoded with replacement characters", location=f"line {line}")
        return raw.decode("utf-8", "replace"), [note]


def _scalar_metadata(members: dict[str, Any]) -> dict[str, str]:
    """Top-level numbers and short strings (not bools, nulls or containers) as metadata."""
    return {
        key: str(value) for key, value in members.items()
        if type(value) in (int, float) or (type(value) is str and len(value) <= _LONGEST_METADATA)
    }
