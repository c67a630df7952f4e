"""JSON lines: blocks of whole lines, a fast path per block and a careful path per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rundoctor.readers import files
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.files import LongLine
from rundoctor.readers.json.cells import _Cells, _CellTable
from rundoctor.readers.text import BOM, line_ranges, long_line_note, plural
from rundoctor.series import NoteKind, ReadNote

# Lines are parsed one block at a time: large enough that per-block numpy work is amortised,
# small enough that the parsed dicts of one block are freed (and their memory reused) before
# the next.  Parsing a whole 445 MB file into dicts at once was 2x slower in measurements,
# most of it spent faulting in fresh memory for a gigabyte of Python objects.
_BLOCK_BYTES = 4 << 20


# --------------------------------------------------------------------------------------------
# JSON lines: blocks of whole lines, a fast path per block and a careful path per line.
# --------------------------------------------------------------------------------------------


@dataclass
class _LineTrouble:
    """Lines that could not be read as they should, gathered into a few notes."""

    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    replaced: list[int] = field(default_factory=list)  # lines with bytes that are not UTF-8
    cut: tuple[int, str] | None = None  # a half-written last line

    def notes(self, source: str) -> list[ReadNote]:
        notes = []
        if self.bad:
            line, why = self.bad[0]
            notes.append(ReadNote(
                NoteKind.CORRUPT, source,
                f"{plural(len(self.bad), 'line')} could not be read as a JSON object and "
                f"{'was' if len(self.bad) == 1 else 'were'} skipped (line {line}: {why}); "
                "the lines around them were read",
                location=line_ranges([line for line, _ in self.bad]), count=len(self.bad),
            ))
        if self.cut is not None:
            line, why = self.cut
            notes.append(ReadNote(
                NoteKind.TRUNCATED, source,
                f"the last line is cut short ({why}): the file was probably still being "
                "written or was copied mid-write; everything before it was read",
                location=f"line {line}", count=1,
            ))
        if self.replaced:
            notes.append(ReadNote(
                NoteKind.INFO, source,
                f"{plural(len(self.replaced), 'line')} held bytes that are not UTF-8; "
                "they were decoded with replacement characters",
                location=line_ranges(self.replaced), count=len(self.replaced),
            ))
        return notes


def _read_lines(path: Path, table: _CellTable) -> tuple[_Cells, list[ReadNote]]:
    """Parse a JSON-lines file into ``table``; notes say what was skipped and why."""
    source = str(path)
    trouble = _LineTrouble()
    long_lines: list[LongLine] = []
    for block, first_line, lines, ends_with_newline in _line_blocks(path, long_lines):
        if not _add_block(table, block, first_line, lines, ends_with_newline):
            records, positions = _parse_lines(block, first_line, ends_with_newline, trouble)
            table.add_careful(records, positions)
    if table.records == 0 and trouble.bad:
        line, why = trouble.bad[0]
        raise UnreadableInput(f"no line is a JSON object (line {line}: {why})")
    notes = trouble.notes(source)
    long_lines_skipped = long_line_note(source, long_lines)
    if long_lines_skipped is not None:
        notes.append(long_lines_skipped)
    if table.records == 0 and trouble.cut is None:
        notes.append(ReadNote(NoteKind.INFO, source, "the file is empty: no records were logged", count=0))
    return table.cells(), notes


def _line_blocks(path: Path, long_lines: list[LongLine]) -> Iterator[tuple[bytes, int, int, bool]]:
    """The file in blocks of whole lines: (bytes, first line number, lines, ends with newline).

    Only the last block can end without a newline: its last line may be half-written.  A
    line over :data:`~rundoctor.readers.files.MAX_LINE_BYTES` comes as an empty line; once
    the blocks are done, ``long_lines`` lists those lines.
    """
    with files.open_lines(path) as stream:
        pending: list[bytes] = []  # the start of a line that goes on in the next chunk
        first_line = 1
        at_start = True
        while chunk := stream.read(_BLOCK_BYTES):
            if at_start:
                chunk, at_start = chunk.removeprefix(BOM), False
            cut = chunk.rfind(b"\n") + 1
            if not cut:  # a line longer than a chunk
                pending.append(chunk)
                continue
            block = b"".join([*pending, chunk[:cut]]) if pending else chunk[:cut]
            pending = [chunk[cut:]] if cut < len(chunk) else []
            # bytes.count walks byte by byte; replace finds newlines with memchr, 3x faster
            lines = len(block) - len(block.replace(b"\n", b""))
            yield block, first_line, lines, True
            first_line += lines
        if pending:
            rest = b"".join(pending)
            yield rest, first_line, rest.count(b"\n") + 1, False
        long_lines.extend(files.long_lines_of(stream))


def _add_block(table: _CellTable, block: bytes, first_line: int, lines: int, ends_with_newline: bool) -> bool:
    """The fast path: the whole block as one JSON array, one line per record.

    Returns False when the block needs the per-line path: a blank or junk line, a line with
    NaN or Infinity (which orjson rejects), bytes that are not UTF-8.
    """
    body = block[:-1] if ends_with_newline else block
    try:
        records = orjson.loads(b"[" + body.replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return False
    if len(records) != lines:  # "{...},{...}" on one line is not JSON lines
        return False
    positions = np.arange(first_line, first_line + lines, dtype=np.int64)
    if not table.add_plain(records, positions, body):
        if not all(type(record) is dict for record in records):
            return False
        table.add_careful(records, positions)
    return True


def _parse_lines(
    block: bytes, first_line: int, ends_with_newline: bool, trouble: _LineTrouble
) -> tuple[list[dict[str, Any]], list[int]]:
    """The careful path: each line on its own; what cannot be read goes to ``trouble``."""
    lines = block.split(b"\n")
    if ends_with_newline:
        lines.pop()  # the empty piece after the last newline
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    last = len(lines) - 1
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        line = first_line + offset
        record, why, replaced = _parse_line(raw)
        if replaced:
            trouble.replaced.append(line)
        if type(record) is dict:
            records.append(record)
            positions.append(line)
        elif why is not None and offset == last and not ends_with_newline and raw.lstrip().startswith(b"{"):
            trouble.cut = (line, why)  # an object begun and never finished
        else:
            trouble.bad.append((line, why or f"a JSON {type(record).__name__}, not an object"))
    return records, positions


def _parse_line(raw: bytes) -> tuple[Any, str | None, bool]:
    """(value, why it failed, had non-UTF-8 bytes); ``json`` reads what orjson refuses (NaN)."""
    try:
        return orjson.loads(raw), None, False
    except orjson.JSONDecodeError:
        pass
    try:
        text, replaced = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = raw.decode("utf-8", "replace"), True
    try:
        return json.loads(text, parse_int=_whole_number), None, replaced
    except json.JSONDecodeError as error:
        return None, f"{error.msg} at column {error.colno}", replaced
    except RecursionError:
        return None, "nested too deeply", replaced


# Python refuses to turn more digits than this into an int (a guard against quadratic time).
_LONGEST_INT = 4_300


def _whole_number(digits: str) -> int | float:
    """A JSON integer; one too long for Python's int conversion is read as a double, as
    JavaScript reads it (a 5,000-digit loss is +inf, which the non-finite check reports)."""
    return int(digits) if len(digits) <= _LONGEST_INT else float(digits)
