"""Cells: every numeric value of a file's records, with its key and record, in log order."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, count
from typing import Any

import numpy as np

from rundoctor.readers.text import NON_FINITE_NAMES, flatten

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
                record = flatten(record, "/")
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


def _as_float(value: float) -> float:
    """A JSON number as float64; an integer beyond its range is +/-inf, as 1e400 parses."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
