"""Readers for JSON training logs: one JSON document, or one JSON object a line.

Seven flavours, sniffed in the order of :data:`READERS` (the reader name is the run's format):

- ``hf-trainer``: Hugging Face ``trainer_state.json``; ``log_history`` interleaves train and eval
  records (often at one ``step``) and ends with a run summary; ``epoch`` is fractional, an axis
  value rather than a tag.  A file cut short keeps every ``log_history`` record before the cut.
- ``keras-history-json``: a Keras ``History.history`` dict of lists dumped as JSON; step = epoch.
- ``mmdet-json``: mmdetection 2.x ``*.log.json``; ``iter`` restarts every epoch (see
  :func:`_read_mmdet` for the global iteration axis) and validation records count epochs.
- ``mmengine-json``: mmengine ``scalars.json``; ``step`` is the iteration on train records and
  the epoch on validation records.
- ``detectron2-json``: detectron2 ``metrics.json``; appended across restarts.
- ``wandb-jsonl``: wandb ``wandb-history.jsonl``; ``_``-keys are bookkeeping, ``_timestamp`` is
  the wall time, ``epoch`` is an axis as in Lightning's CSV (not a series), nested values
  (histograms, media) are skipped with one note.
- ``jsonl``: any JSON lines with a step-like key; nested objects are flattened with ``/``.

Every number (not bools, strings or nulls) becomes a point, NaN and +/-inf included, bit-exact;
so does a string that names a non-finite float (``"NaN"``, ``"Infinity"``, ``"-inf"``): writers
whose JSON encoder refuses NaN write that instead, and mean the float.
All flavours share one path: records become *cells* (key, value, record) in log order
(:class:`_CellTable`), the flavour *places* each record (step, wall time, axis), and
:func:`_build` turns placed cells into points and notes restarts and repeated steps.

Speed: a million-line file is parsed a block of lines at a time with ``orjson`` (exact, and
about 6x faster than ``json`` here); blocks whose values are all numbers are turned into
arrays without a Python loop over values (:meth:`_CellTable.add_plain`).  Anything unusual
(NaN tokens, junk, nested values, strings) takes the per-line, per-value path.  A
byte-level numpy parse of flat numeric lines (keys located and verified with numpy, numbers
handed to orjson as one list) was measured no faster than this: its dozen passes over each
block's bytes cost what the dicts save.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, count
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rundoctor.readers.base import FileReader, UnreadableInput
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

_BOM = b"\xef\xbb\xbf"
# Lines are parsed one block at a time: large enough that per-block numpy work is amortised,
# small enough that the parsed dicts of one block are freed (and their memory reused) before
# the next.  Parsing a whole 445 MB file into dicts at once was 2x slower in measurements,
# most of it spent faulting in fresh memory for a gigabyte of Python objects.
_BLOCK_BYTES = 4 << 20
# Step-like keys of generic JSON lines, most preferred first, with the axis each one counts.
_STEP_KEYS = {"step": XAxis.STEP, "global_step": XAxis.STEP, "iteration": XAxis.ITERATION,
              "iter": XAxis.ITERATION, "epoch": XAxis.EPOCH}
_HF_SUMMARY_KEYS = frozenset({"train_loss", "train_runtime", "total_flos"})
_LISTED_RANGES = 20  # line ranges spelled out in one note; its count says how many in all
_LISTED_RESTARTS = 10  # restarts noted one by one; beyond this, one note sums them up
_LONGEST_METADATA = 200  # characters; env/config dumps (kilobytes) are not run metadata
_JSON = json.JSONDecoder()  # accepts the NaN / Infinity / -Infinity tokens Python writes
_SPACE = re.compile(r"[ \t\n\r]*")
# A non-finite float written as its name in a string ("NaN", "Infinity", "-inf"): what a
# writer whose JSON encoder refuses NaN writes instead.  The value it names is the point.
NON_FINITE_NAMES = {f"{sign}{name}": float(f"{sign}{name}") for sign in ("", "+", "-")
                    for name in ("nan", "inf", "infinity")}


# --------------------------------------------------------------------------------------------
# Cells: every numeric value of a file's records, with its key and record, in log order.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """The cells of one block of records: one number each, with its key and record."""

    key: np.ndarray  # int32 per cell, index into _Cells.keys
    value: np.ndarray  # float64 per cell
    first_record: int  # index into _Cells.positions of the block's first record
    lengths: np.ndarray  # int64 per record: how many cells it has

    @property
    def record(self) -> np.ndarray:
        """The record of each cell (int64, ascending), computed when asked: storing it
        would cost 8 bytes a cell for a million-line file, more than the values."""
        return np.repeat(np.arange(self.first_record, self.first_record + self.lengths.size), self.lengths)


@dataclass(frozen=True)
class _Cells:
    """The numbers of all records in log order (record by record, key by key).

    Kept as one part per block: joining them would be one more pass over memory that
    ends up copied into the run anyway.
    """

    keys: list[str]  # key names, in first-seen order
    parts: list[_Part]
    positions: np.ndarray  # int64 per record: its line in the file
    texts: dict[str, dict[int, str]]  # requested string fields: key -> {record: text}
    nested: dict[str, int]  # key -> how many object/array values it had (not points)

    @property
    def records(self) -> int:
        return int(self.positions.size)

    def column(self, name: str) -> np.ndarray:
        """The value of ``name`` in each record, NaN where the record has no number there."""
        out = np.full(self.records, np.nan)
        if name in self.keys:
            key_id = self.keys.index(name)
            for part in self.parts:
                mask = part.key == key_id
                if mask.any():
                    out[part.record[mask]] = part.value[mask]
        return out

    def has(self, name: str) -> np.ndarray:
        """Whether each record has a number under ``name`` (NaN included)."""
        out = np.zeros(self.records, dtype=bool)
        if name in self.keys:
            key_id = self.keys.index(name)
            for part in self.parts:
                out[part.record[part.key == key_id]] = True
        return out

    def keys_where(self, predicate: Callable[[str], bool]) -> np.ndarray:
        return np.array([predicate(name) for name in self.keys], dtype=bool)

    def cells_of(self, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record, key, value) of every cell of the records chosen by a bool mask."""
        picked = [(record[mask], part.key[mask], part.value[mask])
                  for part in self.parts if (mask := chosen[record := part.record]).any()]
        if not picked:
            return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0)
        record, key, value = (np.concatenate(column) for column in zip(*picked))
        return record, key, value


class _CellTable:
    """Collects records block by block into :class:`_Cells`."""

    def __init__(self, *, flatten: bool = False, text_keys: tuple[str, ...] = ()) -> None:
        self.flatten = flatten  # generic JSON lines: {"a": {"b": 1}} -> "a/b"
        self.key_ids: dict[str, int] = {}
        self.texts: dict[str, dict[int, str]] = {key: {} for key in text_keys}
        self.nested: dict[str, int] = {}
        self.records = 0
        self._parts: list[_Part] = []
        self._positions: list[np.ndarray] = []

    def add_plain(self, records: list[Any], positions: np.ndarray, text: bytes) -> bool:
        """Add records whose every value is a number, without a Python loop over values.

        ``text`` is the JSON the records were parsed from: it must prove that no value is a
        string, bool, null, object or array (see :func:`_only_numbers`), which
        ``np.fromiter`` would otherwise turn into numbers or choke on.  Returns False,
        adding nothing, when it does not.
        """
        if not _only_numbers(text):
            return False
        try:
            lengths = np.fromiter(map(len, records), np.int64, len(records))
            total = int(lengths.sum())
            values = np.fromiter(chain.from_iterable(map(dict.values, records)), np.float64, total)
        except (TypeError, ValueError, OverflowError):  # a line that is not an object
            return False
        # One key list per distinct key order (a JSON-lines log has a handful), then every
        # cell's key by gathering from them: no per-value dict lookups.
        signatures: dict[tuple[str, ...], int] = {}
        first_record = np.fromiter(
            map(signatures.setdefault, map(tuple, records), count()), np.int64, len(records)
        )
        _, signature_of = np.unique(first_record, return_inverse=True)
        signature_keys = [np.array([self._key_id(k) for k in keys], np.int32) for keys in signatures]
        signature_lengths = np.fromiter(map(len, signatures), np.int64, len(signatures))
        signature_starts = np.cumsum(signature_lengths) - signature_lengths
        record_starts = np.cumsum(lengths) - lengths
        offsets = np.repeat(signature_starts[signature_of] - record_starts, lengths)
        keys = np.concatenate(signature_keys)[offsets + np.arange(total)]
        self._append(_Part(keys, values, self.records, lengths), positions)
        return True

    def add_careful(self, records: Sequence[dict[str, Any]], positions: Sequence[int] | np.ndarray) -> None:
        """Add records of any shape, value by value."""
        keys: list[int] = []
        values: list[float] = []
        owners: list[int] = []
        for index, record in enumerate(records, self.records):
            if self.flatten and any(type(v) is dict for v in record.values()):
                record = _flattened(record)
            for key, value in record.items():
                kind = type(value)
                if kind is float or kind is int:  # not bool: flags are not metrics
                    keys.append(self._key_id(key))
                    values.append(_as_float(value))
                    owners.append(index)
                elif kind is dict or kind is list:
                    self.nested[key] = self.nested.get(key, 0) + 1
                elif kind is str:
                    if key in self.texts:
                        self.texts[key][index] = value
                    elif (number := NON_FINITE_NAMES.get(value.lower())) is not None:
                        keys.append(self._key_id(key))
                        values.append(number)
                        owners.append(index)
        lengths = np.bincount(np.array(owners, np.int64) - self.records, minlength=len(records))
        self._append(_Part(np.array(keys, np.int32), np.array(values, np.float64), self.records, lengths),
                     np.asarray(positions, np.int64))

    def cells(self) -> _Cells:
        positions = np.concatenate(self._positions) if self._positions else np.empty(0, np.int64)
        return _Cells(list(self.key_ids), self._parts, positions, self.texts, self.nested)

    def _key_id(self, key: str) -> int:
        return self.key_ids.setdefault(key, len(self.key_ids))

    def _append(self, part: _Part, positions: np.ndarray) -> None:
        self._parts.append(part)
        self._positions.append(positions)
        self.records += int(positions.size)


# The bytes a JSON number can start with.
_NUMBER_START = np.zeros(256, dtype=bool)
_NUMBER_START[np.frombuffer(b"-0123456789", np.uint8)] = True


def _only_numbers(text: bytes) -> bool:
    """Whether every value after a ``:`` in ``text`` starts like a number.

    One vectorised look at the byte after each colon (after one space, as json.dumps
    writes ``": "``) rules out strings, bools, nulls, objects and arrays at once; it was
    5x cheaper than searching for ``"``, ``true``, ``false`` and ``null`` separately.  A
    colon inside a key, or unusual spacing, only sends the block to the careful path.
    """
    data = np.frombuffer(text, np.uint8)
    after = np.flatnonzero(data == ord(":")) + 1
    if after.size and after[-1] >= data.size:
        return False
    first = data[after]
    spaced = np.flatnonzero(first == ord(" "))
    if spaced.size:
        after = after[spaced] + 1
        if after.size and after[-1] >= data.size:
            return False
        first[spaced] = data[after]
    return bool(_NUMBER_START[first].all())


def _flattened(record: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a/b": 1}, in key order; iterative, so no nesting depth can sink it."""
    flat: dict[str, Any] = {}
    stack = [("", iter(record.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            if type(value) is dict:
                stack.append((f"{prefix}{key}/", iter(value.items())))
                break
            flat[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return flat


def _number_text(value: float) -> str:
    """42.0 -> "42" (a seed, a count), 0.1 -> "0.1"."""
    return str(int(value)) if value.is_integer() else repr(value)


def _as_float(value: float) -> float:
    """A JSON number as float64; an integer beyond its range is +/-inf, as 1e400 parses."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


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
                f"{_plural(len(self.bad), 'line')} could not be read as a JSON object and "
                f"{'was' if len(self.bad) == 1 else 'were'} skipped (line {line}: {why}); "
                "the lines around them were read",
                location=_lines_label([line for line, _ in self.bad]), count=len(self.bad),
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
                f"{_plural(len(self.replaced), 'line')} held bytes that are not UTF-8; "
                "they were decoded with replacement characters",
                location=_lines_label(self.replaced), count=len(self.replaced),
            ))
        return notes


def _read_lines(path: Path, table: _CellTable) -> tuple[_Cells, list[ReadNote]]:
    """Parse a JSON-lines file into ``table``; notes say what was skipped and why."""
    source = str(path)
    trouble = _LineTrouble()
    for block, first_line, lines, ends_with_newline in _line_blocks(path):
        if not _add_block(table, block, first_line, lines, ends_with_newline):
            records, positions = _parse_lines(block, first_line, ends_with_newline, trouble)
            table.add_careful(records, positions)
    if table.records == 0 and trouble.bad:
        line, why = trouble.bad[0]
        raise UnreadableInput(f"no line is a JSON object (line {line}: {why})")
    notes = trouble.notes(source)
    if table.records == 0 and trouble.cut is None:
        notes.append(ReadNote(NoteKind.INFO, source, "the file is empty: no records were logged", count=0))
    return table.cells(), notes


def _line_blocks(path: Path) -> Iterator[tuple[bytes, int, int, bool]]:
    """The file in blocks of whole lines: (bytes, first line number, lines, ends with newline).

    Only the last block can end without a newline: its last line may be half-written.
    """
    with path.open("rb") as stream:
        pending: list[bytes] = []  # the start of a line that goes on in the next chunk
        first_line = 1
        at_start = True
        while chunk := stream.read(_BLOCK_BYTES):
            if at_start:
                chunk, at_start = chunk.removeprefix(_BOM), False
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
        return json.loads(text), None, replaced
    except json.JSONDecodeError as error:
        return None, f"{error.msg} at column {error.colno}", replaced
    except RecursionError:
        return None, "nested too deeply", replaced


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
    already read.  Other repeated members follow JSON: the last one wins.
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

    pos = skip(0)
    if not text.startswith("{", pos):
        return stopped(pos, "not a JSON object")
    pos = skip(pos + 1)
    while not text.startswith("}", pos):
        try:
            name_at = pos
            key, pos = _JSON.raw_decode(text, pos)
            if not isinstance(key, str):
                return stopped(pos, "expected a member name")
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
                    item, end = _JSON.raw_decode(text, pos)
                    after = skip(end)
                    if not text.startswith((",", "]"), after):
                        return stopped(after, "expected ',' or ']'")
                    items.append(item)
                    starts.append(pos)
                    pos = skip_comma(after, "]")
                pos += 1
                value: Any = items
            else:
                value, pos = _JSON.raw_decode(text, pos)
                if not text.startswith((",", "}"), skip(pos)):
                    return stopped(skip(pos), "expected ',' or '}'")
            if not repeated or not isinstance(members[key], list):
                members[key] = value
            elif json.dumps(value) != json.dumps(members[key]):  # NaN-safe; an equal copy changes nothing
                troubles.append((name_at, f"the list {key!r} appears again with other values (a block "
                                          "written twice?); the first one is kept"))
        except json.JSONDecodeError as error:
            return stopped(error.pos, error.msg)
        except RecursionError:
            return stopped(pos, "nested too deeply")
        pos = skip(pos)
        if not text.startswith((",", "}"), pos):
            return stopped(pos, "expected ',' or '}'")
        pos = skip_comma(pos, "}")
    pos = skip(pos + 1)
    return stopped(None) if pos == len(text) else stopped(pos, "extra data after the document")


def _read_text(path: Path) -> tuple[str, list[ReadNote]]:
    raw = path.read_bytes().removeprefix(_BOM)
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


# --------------------------------------------------------------------------------------------
# Placing records and building the run.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """Where each record's numbers go; a NaN step leaves the record out (already noted)."""

    steps: np.ndarray  # float64 per record
    is_tag: np.ndarray  # bool per key: its numbers are points (not the step, not bookkeeping)
    walls: np.ndarray | None = None  # float64 per record
    on_epochs: np.ndarray | None = None  # bool per record: its tags count epochs (validation)


def _usable_steps(
    raw: np.ndarray, cells: _Cells, source: str, what: str, considered: np.ndarray | None = None
) -> tuple[np.ndarray, list[ReadNote]]:
    """Steps that are whole numbers; the ``considered`` records without one are noted."""
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**62)
    missing = ~usable if considered is None else ~usable & considered
    steps = np.where(usable if considered is None else usable & considered, raw, np.nan)
    if not missing.any():
        return steps, []
    lines = cells.positions[missing]
    return steps, [ReadNote(
        NoteKind.SKIPPED, source,
        f"{_plural(lines.size, 'record')} without a whole-number {what} "
        f"{'was' if lines.size == 1 else 'were'} skipped",
        location=_lines_label(lines.tolist()), count=int(lines.size),
    )]


def _build(
    path: Path,
    format: str,
    cells: _Cells,
    placement: _Placement,
    notes: list[ReadNote],
    *,
    x_axis: XAxis,
    step_name: str,
    metadata: dict[str, str] | None = None,
) -> Run:
    """Points from placed cells, in log order; epoch-axis twins of iteration tags get ``val/``."""
    source = str(path)
    placed = ~np.isnan(placement.steps)
    if cells.records and not placed.any():
        raise UnreadableInput(f"no record has a usable {step_name}: not a {format} log")
    steps = np.where(placed, placement.steps, 0).astype(np.int64)
    on_epochs = placement.on_epochs
    all_placed = bool(placed.all())

    def kept(part: _Part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cells kept, their records, their tag slots): slot 2k is key k on the run's
        axis, 2k+1 the same key on the epoch axis."""
        wanted = placement.is_tag[part.key]
        record = part.record
        keep = np.flatnonzero(wanted if all_placed else wanted & placed[record])
        owners = record[keep]
        slots = part.key[keep] * 2
        return keep, owners, slots + on_epochs[owners] if on_epochs is not None else slots

    # Two passes over the parts: the first sizes the run and finds its tags, the second
    # writes the points straight into the run's arrays (one allocation, no joining), each
    # tag's points together and in log order, so that the builder need not regroup them (a
    # regrouping pass over every point cost ~1 s for 10M points; ranking the cells of each
    # part within their tag costs a fifth of that).
    slot_points = np.zeros(2 * len(cells.keys), dtype=np.int64)
    for part in cells.parts:
        slot_points += np.bincount(kept(part)[2], minlength=slot_points.size)
    seen = slot_points > 0
    builder = RunBuilder()
    codes = np.zeros(seen.size, dtype=np.int32)
    tag_axes: dict[str, XAxis] = {}
    for slot in np.flatnonzero(seen).tolist():
        name = cells.keys[slot // 2]
        if slot % 2:  # a validation (epoch-axis) tag
            if seen[slot - 1]:  # the same key is also a train tag: keep them apart
                name = f"val/{name}"
            if x_axis is not XAxis.EPOCH:
                tag_axes[name] = XAxis.EPOCH
        codes[slot] = builder.code(name)
    tags = int(codes.max(initial=-1)) + 1  # codes are 0, 1, ... in slot order
    tag_points = np.bincount(codes[seen], weights=slot_points[seen], minlength=tags).astype(np.int64)
    cursor = np.cumsum(tag_points) - tag_points  # where each tag's next point goes
    total = int(tag_points.sum())
    run_steps = np.empty(total, np.int64)
    run_values = np.empty(total, np.float64)
    run_walls = np.full(total, np.nan) if placement.walls is None else np.empty(total, np.float64)
    for part in cells.parts:
        keep, owners, slots = kept(part)
        part_codes = codes[slots]
        order = np.argsort(part_codes, kind="stable")
        part_points = np.bincount(part_codes, minlength=tags)
        first_of_tag = np.cumsum(part_points) - part_points  # within the part, once sorted
        ranked = part_codes[order]
        destination = np.empty(keep.size, np.int64)
        destination[order] = cursor[ranked] + np.arange(keep.size) - first_of_tag[ranked]
        cursor += part_points
        run_steps[destination] = steps[owners]
        run_values[destination] = part.value[keep]
        if placement.walls is not None:
            run_walls[destination] = placement.walls[owners]
    run_codes = np.repeat(np.arange(tags, dtype=np.int32), tag_points)
    builder.add_coded(run_codes, run_steps, run_values, run_walls)
    notes = notes + _nested_note(cells, placement.is_tag, source) + _repeat_notes(
        cells, placement, placed if on_epochs is None else placed & ~on_epochs, source, step_name)
    return builder.build(id=source, path=source, format=format, sources=[source], x_axis=x_axis,
                         tag_axes=tag_axes, notes=notes, metadata=metadata or {})


def _empty_run(path: Path, format: str, notes: list[ReadNote], x_axis: XAxis) -> Run:
    return _build(path, format, _CellTable().cells(), _Placement(np.empty(0), np.empty(0, bool)), notes,
                  x_axis=x_axis, step_name="step")


def _nested_note(cells: _Cells, is_tag: np.ndarray, source: str) -> list[ReadNote]:
    """One note for all object and array values (wandb histograms, media): not scalars."""
    skipped = {key: n for key, n in cells.nested.items()
               if key not in cells.keys or is_tag[cells.keys.index(key)]}
    skipped = {key: n for key, n in skipped.items() if not key.startswith("_")}  # wandb's own
    if not skipped:
        return []
    total = sum(skipped.values())
    names = ", ".join(sorted(skipped)[:_LISTED_RANGES]) + (", ..." if len(skipped) > _LISTED_RANGES else "")
    return [ReadNote(NoteKind.SKIPPED, source,
                     f"{_plural(total, 'nested value')} (objects or arrays such as histograms or "
                     f"media, not scalars) skipped under {names}", count=total)]


def _repeat_notes(
    cells: _Cells, placement: _Placement, main: np.ndarray, source: str, step_name: str
) -> list[ReadNote]:
    """Restarts (the step goes back) and records that log their predecessor's step again.

    Only records on the run's own axis count (validation records stepping by epoch do not).
    Two records at one step are a repeat only if they share a tag: Hugging Face and
    detectron2 write a train and an eval record at the same step by design.
    """
    records = np.flatnonzero(main)
    if records.size < 2:
        return []
    steps = placement.steps[records]
    back = np.flatnonzero(steps[1:] < steps[:-1]) + 1
    notes = [
        ReadNote(NoteKind.DUPLICATED, source,
                 f"{step_name} goes back from {int(steps[i - 1]):,} to {int(steps[i]):,}: a new start "
                 "was appended to the same file; both starts are kept (analysis uses the "
                 "last-written point of each step)", location=f"line {cells.positions[records[i]]}")
        for i in back[:_LISTED_RESTARTS].tolist()
    ]
    if back.size > _LISTED_RESTARTS:
        notes.append(ReadNote(NoteKind.DUPLICATED, source,
                              f"{step_name} goes back {back.size:,} times in all",
                              location=_lines_label(cells.positions[records[back]].tolist()),
                              count=int(back.size)))
    same = np.flatnonzero(steps[1:] == steps[:-1]) + 1
    if same.size:
        # Record i repeats record i-1 when both have a tag key k: with each cell coded as
        # (rank of its record) * K + k, the repeats are the codes found both as they are
        # and shifted one record on.  Vectorised: a file can hold a million such pairs.
        involved = np.zeros(placement.steps.size, dtype=bool)
        involved[records[same]] = involved[records[same - 1]] = True
        owner, key, _ = cells.cells_of(involved)
        tagged = placement.is_tag[key]
        rank, key = np.searchsorted(records, owner[tagged]), key[tagged].astype(np.int64)
        width = len(cells.keys)
        shared = np.intersect1d(rank * width + key, (rank + 1) * width + key)
        repeats = np.unique(shared // width)
        if repeats.size:
            first = int(repeats[0])
            lines = cells.positions[records[repeats]].tolist()
            common = sorted(cells.keys[k] for k in (shared[shared // width == first] % width).tolist())
            names = ", ".join(common[:3]) + (", ..." if len(common) > 3 else "")
            notes.append(ReadNote(
                NoteKind.DUPLICATED, source,
                f"{_plural(repeats.size, 'record')} {'logs' if repeats.size == 1 else 'log'} the same "
                f"{step_name} as the record before, with tags in common (first: {step_name} "
                f"{int(steps[first]):,} at lines {cells.positions[records[first - 1]]} and {lines[0]}, "
                f"both with {names}); both points are kept",
                location=_lines_label(lines), count=int(repeats.size)))
    return notes


def _lines_label(lines: Sequence[int]) -> str:
    """"line 7", "lines 3, 7-9, 12", with at most ``_LISTED_RANGES`` ranges spelled out."""
    ranges: list[list[int]] = []
    for line in sorted(set(lines)):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges[:_LISTED_RANGES])
    more = f" and {len(ranges) - _LISTED_RANGES} more ranges" if len(ranges) > _LISTED_RANGES else ""
    return f"{'line' if len(lines) == 1 else 'lines'} {shown}{more}"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------------------------
# The flavours.
# --------------------------------------------------------------------------------------------


def _read_hf(path: Path) -> Run:
    source = str(path)
    text, notes = _read_text(path)
    if not text.strip():
        return _empty_run(path, "hf-trainer", notes + [ReadNote(NoteKind.INFO, source, "the file is empty", count=0)],
                          XAxis.STEP)
    document = _walk_document(text)
    history = document.members.get("log_history")
    if not isinstance(history, list):
        where = "" if document.stop is None else f" (unreadable from offset {document.stop}: {document.why})"
        raise UnreadableInput(f"no log_history list: not a Hugging Face trainer_state.json{where}")
    newlines = np.fromiter((match.start() for match in re.finditer("\n", text)), np.int64)
    lines = np.searchsorted(newlines, document.offsets["log_history"]) + 1
    records = [r for r in history if type(r) is dict]
    if len(records) < len(history):
        odd = [int(line) for r, line in zip(history, lines) if type(r) is not dict]
        notes.append(ReadNote(NoteKind.SKIPPED, source, f"{_plural(len(odd), 'log_history entry')} "
                              "that are not objects were skipped", location=_lines_label(odd), count=len(odd)))
    notes += document.notes(source, text, f"{_plural(len(records), 'complete log_history record')} were read")
    table = _CellTable()
    table.add_careful(records, [int(line) for r, line in zip(history, lines) if type(r) is dict])
    cells = table.cells()
    steps, skipped = _usable_steps(cells.column("step"), cells, source, "step")
    summary = [i for i, record in enumerate(records) if _HF_SUMMARY_KEYS & record.keys()]
    for i in summary:
        notes.append(ReadNote(
            NoteKind.INFO, source,
            f"the log_history record at step {records[i].get('step')} is the run summary "
            f"({', '.join(sorted(k for k in records[i] if k not in ('step', 'epoch')))}): "
            "its numbers are kept as points", location=f"line {cells.positions[i]}"))
    if not records:
        notes.append(ReadNote(NoteKind.INFO, source, "log_history is empty: nothing was logged", count=0))
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("step", "epoch")))
    return _build(path, "hf-trainer", cells, placement, notes + skipped, x_axis=XAxis.STEP,
                  step_name="step", metadata=_scalar_metadata(document.members))


def hf_checkpoint_step(path: Path) -> int | None:
    """N when ``path`` sits in a ``checkpoint-N`` folder (Trainer's save layout), else None."""
    match = re.fullmatch(r"checkpoint-(\d+)", Path(path).parent.name)
    return int(match.group(1)) if match else None


def _read_keras(path: Path) -> Run:
    source = str(path)
    text, notes = _read_text(path)
    document = _walk_document(text)
    lists = {key: value for key, value in document.members.items() if isinstance(value, list)}
    if not lists:
        raise UnreadableInput("no lists of numbers: not a Keras history dumped as JSON")
    notes += document.notes(source, text, "the complete values were read")
    others = sorted(key for key, value in document.members.items() if isinstance(value, dict))
    if others:
        notes.append(ReadNote(NoteKind.SKIPPED, source, f"members that are not lists were skipped: {', '.join(others)}",
                              count=len(others)))
    epochs = max(map(len, lists.values()))
    table = _CellTable()
    table.add_careful([{key: values[i] for key, values in lists.items() if i < len(values)} for i in range(epochs)],
                      range(1, epochs + 1))
    cells = table.cells()
    placement = _Placement(np.arange(cells.records, dtype=np.float64), np.ones(len(cells.keys), dtype=bool))
    return _build(path, "keras-history-json", cells, placement, notes, x_axis=XAxis.EPOCH, step_name="epoch",
                  metadata=_scalar_metadata(document.members))


def _read_mmdet(path: Path) -> Run:
    """mmdetection 2.x: train points on a global iteration axis, validation on epochs.

    ``iter`` restarts every epoch, so a train record's step is ``(epoch - 1) * E + iter``
    where E, the iterations per epoch, is the largest ``iter`` in the file.  Validation
    records carry the epoch length as their ``iter`` (mmcv logs ``inner_iter + 1`` after the
    last batch), so E is exact when the file has one; otherwise it is the last logged
    iteration of an epoch, short by less than the logging interval.
    """
    source = str(path)
    cells, notes = _read_lines(path, _CellTable(text_keys=("mode", "exp_name")))
    train = np.zeros(cells.records, dtype=bool)
    evaluation = np.zeros(cells.records, dtype=bool)
    for record, mode in cells.texts["mode"].items():
        (train if mode == "train" else evaluation)[record] = True
    moded = train | evaluation
    epoch, inner = cells.column("epoch"), cells.column("iter")
    known = inner[moded & np.isfinite(inner)]
    per_epoch = float(known.max()) if known.size else math.nan
    with np.errstate(all="ignore"):  # inf * 0 from hostile epochs: NaN, then noted as unusable
        raw = np.where(train, (epoch - 1) * per_epoch + inner, epoch)
    steps, skipped = _usable_steps(raw, cells, source, "epoch and iter", considered=moded)
    metadata: dict[str, str] = {}
    bare = ~moded
    if bare.any():
        _, keys, values = cells.cells_of(bare)
        metadata = {cells.keys[k]: _number_text(v) for k, v in zip(keys.tolist(), values.tolist())}
        metadata.update(("exp_name", name) for record, name in cells.texts["exp_name"].items() if bare[record])
        notes.append(ReadNote(NoteKind.INFO, source,
                              f"{_plural(int(bare.sum()), 'record')} without a mode (environment and "
                              f"config) {'is' if bare.sum() == 1 else 'are'} not metrics; their numbers "
                              "went to the metadata",
                              location=_lines_label(cells.positions[bare].tolist()), count=int(bare.sum())))
    if math.isfinite(per_epoch):
        metadata["iters_per_epoch"] = str(int(per_epoch))
        notes.append(ReadNote(NoteKind.INFO, source,
                              f"train points are on a global iteration axis, (epoch - 1) x {int(per_epoch):,} + "
                              f"iter, {int(per_epoch):,} being the largest iter logged; validation "
                              "points are on the epoch axis"))
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("epoch", "iter")),
                           on_epochs=evaluation)
    return _build(path, "mmdet-json", cells, placement, notes + skipped, x_axis=XAxis.ITERATION,
                  step_name="iteration", metadata=metadata)


def _read_mmengine(path: Path) -> Run:
    """mmengine: a record with ``lr`` or ``loss`` is a train record (step = iteration);
    any other record is a validation record whose ``step`` is the epoch."""
    cells, notes = _read_lines(path, _CellTable())
    steps, skipped = _usable_steps(cells.column("step"), cells, str(path), "step")
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("step", "epoch", "iter")),
                           on_epochs=~(cells.has("lr") | cells.has("loss")))
    return _build(path, "mmengine-json", cells, placement, notes + skipped, x_axis=XAxis.ITERATION,
                  step_name="iteration")


def _read_single_step_key(path: Path, format: str, step_key: str | None, table: _CellTable,
                          is_tag: Callable[[str], bool], wall_key: str | None = None) -> Run:
    """Flavours with one step key per record (detectron2, wandb, generic JSON lines)."""
    cells, notes = _read_lines(path, table)
    if step_key is None:  # generic JSON lines: the most preferred step-like key present
        step_key = next((key for key in _STEP_KEYS if key in cells.keys), None)
        if step_key is None:
            if not cells.records:
                return _empty_run(path, format, notes, XAxis.STEP)
            raise UnreadableInput(f"no step-like key ({', '.join(_STEP_KEYS)}) in any record")
    steps, skipped = _usable_steps(cells.column(step_key), cells, str(path), repr(step_key))
    placement = _Placement(steps, cells.keys_where(lambda key: key != step_key and is_tag(key)),
                           walls=cells.column(wall_key) if wall_key else None)
    return _build(path, format, cells, placement, notes + skipped,
                  x_axis=_STEP_KEYS.get(step_key.lstrip("_"), XAxis.STEP), step_name=step_key)


def _read_detectron2(path: Path) -> Run:
    return _read_single_step_key(path, "detectron2-json", "iteration", _CellTable(), lambda key: True)


def _read_wandb(path: Path) -> Run:
    return _read_single_step_key(path, "wandb-jsonl", "_step", _CellTable(),
                                 lambda key: not key.startswith("_") and key != "epoch", wall_key="_timestamp")


def _read_generic(path: Path) -> Run:
    return _read_single_step_key(path, "jsonl", None, _CellTable(flatten=True), lambda key: True)


# --------------------------------------------------------------------------------------------
# Sniffing: the file name and the first records of the head.
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _head_text(head: bytes) -> str:
    return head.removeprefix(_BOM).decode("utf-8", "replace")


@lru_cache(maxsize=4)
def _head_records(head: bytes) -> tuple[dict[str, Any], ...]:
    """The JSON objects among the first lines of the head (a cut last line is ignored)."""
    records = []
    for line in _head_text(head).splitlines()[:8]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if type(record) is dict:
            records.append(record)
    return tuple(records)


def _sniffer(test: Callable[[Path, bytes], bool]) -> Callable[[Path, bytes], bool]:
    """A sniffer must never raise: whatever goes wrong means "not this format"."""

    def sniff(path: Path, head: bytes) -> bool:
        try:
            return bool(test(path if isinstance(path, Path) else Path(path), head))
        except Exception:  # noqa: BLE001  # the contract: a sniffer never raises
            return False

    sniff.__doc__ = test.__doc__
    return sniff


def _any_record(head: bytes, test: Callable[[dict[str, Any]], bool]) -> bool:
    return any(test(record) for record in _head_records(head))


def _sniff_hf(path: Path, head: bytes) -> bool:
    text = _head_text(head).lstrip()
    return text.startswith("{") and (path.name == "trainer_state.json" or '"log_history"' in text)


def _sniff_keras(path: Path, head: bytes) -> bool:
    records = _head_records(head)
    if records:  # one line: a dict of lists, not the first of many JSON lines
        values = records[0].values()
        return len(records) == 1 and bool(values) and all(type(value) is list for value in values)
    return bool(re.match(r'\s*\{\s*"[^"\n]*"\s*:\s*\[\s*(-?[\d.]|NaN|-?Infinity|\])', _head_text(head)))


def _sniff_mmdet(path: Path, head: bytes) -> bool:
    if _any_record(head, lambda r: r.get("mode") in ("train", "val") and "epoch" in r):
        return True
    # the first record, environment and config, can be longer than the head
    return path.name.endswith(".log.json") and '"env_info"' in _head_text(head)[:200]


def _sniff_mmengine(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "step" in r and (
        path.name == "scalars.json" or {"iter", "epoch", "lr", "data_time", "time"} <= r.keys()))


def _sniff_detectron2(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "iteration" in r and (
        path.name == "metrics.json" or bool({"data_time", "eta_seconds", "total_loss"} & r.keys())))


def _sniff_wandb(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: "_step" in r)


def _sniff_generic(path: Path, head: bytes) -> bool:
    return _any_record(head, lambda r: any(key in r for key in _STEP_KEYS))


def _guarded(read: Callable[[Path], Run]) -> Callable[[Path], Run]:
    """Reading a file can fail only with UnreadableInput (a file that vanished, a directory)."""

    def guarded_read(path: Path) -> Run:
        try:
            return read(Path(path))
        except OSError as error:
            raise UnreadableInput(f"cannot read {Path(path).name}: {error.strerror or error}") from error

    guarded_read.__doc__ = read.__doc__
    return guarded_read


READERS: tuple[FileReader, ...] = (
    FileReader("hf-trainer", "Hugging Face Trainer trainer_state.json (log_history)",
               _sniffer(_sniff_hf), _guarded(_read_hf)),
    FileReader("keras-history-json", "Keras History.history dumped as JSON (a dict of lists, one per epoch)",
               _sniffer(_sniff_keras), _guarded(_read_keras)),
    FileReader("mmdet-json", "mmdetection 2.x *.log.json (JSON lines with mode, epoch, iter)",
               _sniffer(_sniff_mmdet), _guarded(_read_mmdet)),
    FileReader("mmengine-json", "mmengine vis_data/scalars.json (JSON lines with step)",
               _sniffer(_sniff_mmengine), _guarded(_read_mmengine)),
    FileReader("detectron2-json", "detectron2 metrics.json (JSON lines with iteration)",
               _sniffer(_sniff_detectron2), _guarded(_read_detectron2)),
    FileReader("wandb-jsonl", "wandb wandb-history.jsonl (JSON lines with _step)",
               _sniffer(_sniff_wandb), _guarded(_read_wandb)),
    FileReader("jsonl", "JSON lines with a step, global_step, iteration, iter or epoch key",
               _sniffer(_sniff_generic), _guarded(_read_generic)),
)
