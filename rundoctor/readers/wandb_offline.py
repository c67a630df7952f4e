"""W&B run files: ``run-<id>.wandb``, what ``WANDB_MODE=offline`` leaves in
``wandb/offline-run-*/`` (online runs write one too, in ``wandb/run-*/``).

The file is a LevelDB-style record log (wandb's ``core/pkg/leveldb``, CRC-32 where LevelDB
has CRC-32C), each record one ``Record`` message of the protobuf definitions the wandb
package ships (``wandb.proto.wandb_internal_pb2``)::

    header  ":W&B", magic 0xBEE1 (uint16), version 0 (uint8)       7 bytes, little-endian
    blocks  of 32 KiB (the first one after the header), packed with chunks:
      chunk   checksum (uint32, zlib CRC-32 of the type byte and the data), length (uint16),
              type (uint8: 1 a whole record, 2 its first chunk, 3 a middle one, 4 its last), data
      a block's tail too short for a chunk header is zeros
    record  one whole chunk, or a first chunk, middle ones and a last, in that order

What is read: each ``history`` record is one row of ``wandb.log``: ``_step`` its step,
``_timestamp`` its wall time, and every other number a point of its key.  Nested keys are
joined with ``/``, as the JSON reader flattens nested objects; keys starting with ``_`` are
wandb's bookkeeping and ``epoch`` an axis value, as in ``wandb-history.jsonl``.  NaN and
+/-inf are kept as logged (wandb writes ``NaN``, ``Infinity``, ``-Infinity``); values that are
not numbers (histograms, media, tables) are left out with one note.  The ``run`` and
``config`` records give the configuration, flattened to ``a.b`` keys as Lightning's
``hparams.yaml`` is, and the run's name, id, project and start.  Summaries are not read: they
repeat the history's last values.

Damage: every complete record before it is read, and it is reported as a read note with
its byte offset and the bytes lost, as the event-file reader reports it.  A file that ends
inside a chunk or a record was cut while being written (``truncated``); a chunk whose
checksum fails, whose length runs past its block or whose type is unknown is ``corrupt``,
and reading resumes at the next chunk that verifies (after the damaged chunk when its
length still fits its block, else at the next block), a record's later chunks without its
first counting as lost with it.  A record whose protobuf does not decode is reported and
skipped.  The file is read a window of blocks at a time, never whole.

wandb is an optional extra (``pip install 'rundoctor[wandb]'``), imported only when a
``.wandb`` file is read (importing it costs about a second); without it such a file is
reported as skipped with the hint, and the rest of the tree is read as ever.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from rundoctor.readers import files, sidefiles
from rundoctor.readers.base import Reader, UnreadableInput, file_read
from rundoctor.readers.follow import rewritten
from rundoctor.readers.text import MAX_STEP, NON_FINITE_NAMES, flatten, plural
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

NAME = "wandb"
SUFFIX = ".wandb"
INSTALL_HINT = "skipped: reading W&B run files needs the wandb package: pip install 'rundoctor[wandb]'"

FILE_HEADER = struct.Struct("<4sHB")
IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
CHUNK_HEADER = struct.Struct("<IHB")
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {kind: zlib.crc32(bytes([kind])) for kind in (FULL, FIRST, MIDDLE, LAST)}
WINDOW_BLOCKS = 32  # blocks read at once: 1 MiB, so a file of any size costs a window of memory
BOOKKEEPING = ("_",)  # keys wandb adds to every row (_step, _timestamp, _runtime, _wandb/...)
AXIS_KEYS = frozenset({"epoch"})
TYPE_FIELD = "_type"  # the field that makes a nested value one of wandb's objects
_LISTED_KEYS = 20  # keys a note names before it says "..."


@dataclass
class _Damage:
    """A stretch of the file that yielded no record, still open while reading goes past it."""

    kind: NoteKind
    start: int
    reason: str


@dataclass
class _RecordLog:
    """The records of one file in order, each with its offset; damage becomes ``notes``."""

    path: Path
    notes: list[ReadNote] = field(default_factory=list)
    _damage: _Damage | None = None
    _pending: list[bytes] = field(default_factory=list)  # chunks of a record not yet complete
    _pending_start: int = -1

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        with files.open_binary(self.path) as handle:
            head = handle.read(FILE_HEADER.size)
            if len(head) < FILE_HEADER.size:
                if IDENT.startswith(head[: len(IDENT)]):
                    self._close(NoteKind.TRUNCATED, 0, len(head), "the file ends inside its header (no record was written)")
                    return
                raise UnreadableInput("not a W&B run file: it does not start with the ':W&B' header")
            ident, magic, version = FILE_HEADER.unpack(head)
            if ident != IDENT or magic != MAGIC:
                raise UnreadableInput("not a W&B run file: it does not start with the ':W&B' header")
            if version != VERSION:
                raise UnreadableInput(f"a W&B run file of version {version}; version {VERSION} is the one known")
            offset, first = 0, head
            while True:
                window = first + handle.read(WINDOW_BLOCKS * BLOCK - len(first))
                first = b""
                final = len(window) < WINDOW_BLOCKS * BLOCK
                for start in range(0, len(window), BLOCK):
                    block = window[start : start + BLOCK]
                    yield from self._block(offset + start, block, final and start + BLOCK >= len(window))
                offset += len(window)
                if final:
                    break
        self._end(offset)

    def _block(self, base: int, block: bytes, last: bool) -> Iterator[tuple[int, bytes]]:
        """The records that complete in one block; ``last``: the file ends in it."""
        pos = FILE_HEADER.size if base == 0 else 0
        while len(block) - pos >= CHUNK_HEADER.size:
            checksum, length, kind = CHUNK_HEADER.unpack_from(block, pos)
            if not (checksum or length or kind):  # space the file was given but never written
                self._open(NoteKind.CORRUPT, base + pos, "zeros where a chunk should start")
                return
            end = pos + CHUNK_HEADER.size + length
            if end > len(block):
                if last and len(block) < BLOCK:
                    self._cut(base + pos, f"the file ends {len(block) - pos:,} bytes into a chunk of "
                              f"{end - pos:,} bytes (writer interrupted?)")
                    return
                self._open(NoteKind.CORRUPT, base + pos, "a chunk's length runs past its block")
                return
            data = block[pos + CHUNK_HEADER.size : end]
            seed = _TYPE_CRC.get(kind)
            if seed is None or zlib.crc32(data, seed) != checksum:
                self._open(NoteKind.CORRUPT, base + pos,
                           "a chunk of unknown type" if seed is None else "a chunk's checksum does not match")
                pos = end  # its length may be intact: the next chunk tells
                continue
            record = self._chunk(base + pos, kind, data)
            if record is not None:
                yield record
            pos = end
        if last and pos < len(block) and len(block) < BLOCK:
            self._cut(base + pos, f"the file ends {len(block) - pos} bytes into a chunk header (writer interrupted?)")

    def _chunk(self, offset: int, kind: int, data: bytes) -> tuple[int, bytes] | None:
        """A verified chunk into its record; the record once complete, with its offset."""
        if kind in (FULL, FIRST):
            if self._pending:
                self._open(NoteKind.CORRUPT, self._pending_start, "a record's last chunk is missing")
            if self._damage is not None:
                self._close_at(offset)
            if kind == FULL:
                return offset, data
            self._pending, self._pending_start = [data], offset
            return None
        if not self._pending:
            if self._damage is None:
                self._open(NoteKind.CORRUPT, offset, "a record's later chunk without its first")
            return None  # part of a record lost with the damage before it
        self._pending.append(data)
        if kind == MIDDLE:
            return None
        record, start = b"".join(self._pending), self._pending_start
        self._pending, self._pending_start = [], -1
        return start, record

    def _open(self, kind: NoteKind, offset: int, reason: str) -> None:
        """Damage from ``offset`` on, until a record begins again; a record being assembled is lost."""
        if self._pending:
            offset, self._pending = min(offset, self._pending_start), []
        if self._damage is None:
            self._damage = _Damage(kind, offset, reason)

    def _close_at(self, resumed: int) -> None:
        damage, self._damage = self._damage, None
        assert damage is not None
        self._close(damage.kind, damage.start, resumed - damage.start, f"{damage.reason}; resumed at offset {resumed}")

    def _cut(self, offset: int, reason: str) -> None:
        """The file ends in a record cut short (from its first chunk on); after damage still
        open, that damage runs to the end."""
        if self._damage is None:
            self._damage = _Damage(NoteKind.TRUNCATED, self._pending_start if self._pending else offset, reason)
        self._pending = []

    def _end(self, size: int) -> None:
        if self._pending:
            self._cut(size, "the file ends inside a record of several chunks (writer interrupted?)")
        damage, self._damage = self._damage, None
        if damage is not None:
            reason = damage.reason if damage.kind is NoteKind.TRUNCATED else f"{damage.reason}; no intact record after it"
            self._close(damage.kind, damage.start, size - damage.start, reason)

    def _close(self, kind: NoteKind, offset: int, lost: int, reason: str) -> None:
        self.notes.append(ReadNote(kind, str(self.path), reason, location=f"offset {offset}", count=lost))


@dataclass
class _History:
    """The points of the history rows: each row's step and wall time once, and per key the
    rows it has a value in and those values, as compact arrays (8 bytes a number)."""

    row_steps: array[int] = field(default_factory=lambda: array("q"))
    row_walls: array[float] = field(default_factory=lambda: array("d"))
    series: dict[str, tuple[array[int], array[float]]] = field(default_factory=dict)  # key -> (rows, values)
    nested: dict[str, int] = field(default_factory=dict)  # key -> values that are no numbers
    stepless: list[int] = field(default_factory=list)  # offsets of rows without a usable step

    def add(self, offset: int, history: Any) -> None:
        """One ``HistoryRecord``: its step and time, then each numeric value.

        wandb writes a histogram, an image or a table as the fields of an object with a
        ``_type`` (``hist/_type``, ``hist/bins``, ``img/width``, ...): such an object is one
        value that is no number, its numeric fields no points.  This runs once per logged
        value, hence the plain loop: it costs about a microsecond a value."""
        pairs: list[tuple[str, str]] = []
        objects: list[str] = []
        step = wall = math.nan
        for item in history.item:
            path = item.nested_key
            if len(path) == 1:
                key = path[0]
            elif path:
                key = "/".join(path)
                if path[-1] == TYPE_FIELD:
                    objects.append(key[: -len(TYPE_FIELD) - 1])
            else:
                key = item.key
            if key == "_step":
                step = _or_nan(self._number(key, item.value_json))
            elif key == "_timestamp":
                wall = _or_nan(self._number(key, item.value_json))
            elif not key.startswith(BOOKKEEPING) and key not in AXIS_KEYS:
                pairs.append((key, item.value_json))
        if objects:
            for name in objects:
                self.nested[name] = self.nested.get(name, 0) + 1
            pairs = [(key, text) for key, text in pairs if not any(key.startswith(name + "/") for name in objects)]
        if math.isnan(step) and history.HasField("step"):
            step = float(history.step.num)
        if not (step.is_integer() and abs(step) <= MAX_STEP):
            self.stepless.append(offset)
            return
        row = len(self.row_steps)
        self.row_steps.append(int(step))
        self.row_walls.append(wall)
        for key, text in pairs:
            value = self._number(key, text)
            if value is None:
                continue
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = (array("q"), array("d"))
            series[0].append(row)
            series[1].append(value)

    def _number(self, key: str, text: str) -> float | None:
        """The number a value's JSON holds: a number, or a string naming a non-finite one
        (as the JSON readers take it); None for anything else, objects and arrays counted."""
        try:
            return float(text)  # JSON numbers and wandb's NaN / Infinity / -Infinity
        except ValueError:
            pass
        try:
            value, _ = sidefiles.decode_json_bounded(text, 0)
        except ValueError:  # junk, or nested deeper than any value: not a number either way
            value = None
        if isinstance(value, str):
            return NON_FINITE_NAMES.get(value.lower())
        if isinstance(value, (dict, list)) and not key.startswith(BOOKKEEPING):
            self.nested[key] = self.nested.get(key, 0) + 1
        return None

    def notes(self, source: str) -> list[ReadNote]:
        """What the rows held that is not a point."""
        notes = []
        if self.stepless:
            notes.append(ReadNote(NoteKind.SKIPPED, source, f"{plural(len(self.stepless), 'history row')} without "
                                  "a whole-number _step; skipped", f"offset {self.stepless[0]}", len(self.stepless)))
        if self.nested:
            total = sum(self.nested.values())
            names = sorted(self.nested)
            listed = ", ".join(names[:_LISTED_KEYS]) + (", ..." if len(names) > _LISTED_KEYS else "")
            notes.append(ReadNote(NoteKind.SKIPPED, source, f"{plural(total, 'value')} of histograms, media or "
                                  f"tables (not numbers) skipped under {listed}", count=total))
        return notes


@dataclass
class _Config:
    """The run's configuration as its ``run`` and ``config`` records set and remove keys."""

    values: dict[tuple[str, ...], Any] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    def apply(self, config: Any) -> None:
        for item in config.update:
            path = tuple(item.nested_key) or (item.key,)
            try:
                self.values[path], _ = sidefiles.decode_json_bounded(item.value_json, 0)
            except ValueError:
                self.unread.append(".".join(path))
        for item in config.remove:
            self.values.pop(tuple(item.nested_key) or (item.key,), None)

    def metadata(self) -> dict[str, str]:
        """Flattened to ``a.b`` keys; text as it is, other values as JSON; wandb's own left out."""
        flat: dict[str, Any] = {}
        for path, value in self.values.items():
            if not path[0].startswith(BOOKKEEPING):
                flat.update(flatten({".".join(path): value}, ".", keep_empty=True))
        return {key: value if isinstance(value, str) else json.dumps(value, default=str)
                for key, value in flat.items()}


def read_wandb_run(path: Path) -> Run:
    """Every history row of a ``.wandb`` file, its configuration and run record; damage and
    values that are not numbers as notes."""
    record_type = _record_type()
    log = _RecordLog(path)
    history, config = _History(), _Config()
    about: dict[str, str] = {}
    undecodable: list[tuple[int, int]] = []
    for offset, data in log:
        try:
            record = record_type.FromString(data)
        except DecodeError:
            undecodable.append((offset, len(data)))
            continue
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.add(offset, record.history)
        elif kind == "config":
            config.apply(record.config)
        elif kind == "run":
            config.apply(record.run.config)
            about.update(_about(record.run))
    source = str(path)
    notes = [*log.notes, *_undecodable_notes(source, undecodable), *history.notes(source)]
    if config.unread:
        notes.append(ReadNote(NoteKind.SKIPPED, source, f"configuration values that are not JSON skipped: "
                              f"{', '.join(config.unread[:_LISTED_KEYS])}", count=len(config.unread)))
    builder = RunBuilder()
    row_steps = np.frombuffer(history.row_steps, np.int64)
    row_walls = np.frombuffer(history.row_walls, np.float64)
    for key, (rows, values) in history.series.items():
        where = np.frombuffer(rows, np.int64)
        builder.add(key, row_steps[where], np.frombuffer(values, np.float64), row_walls[where])
    return builder.build(id=source, path=source, format=NAME, sources=[source], x_axis=XAxis.STEP,
                         notes=notes, metadata={**config.metadata(), **about})


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _about(run: Any) -> dict[str, str]:
    """The run record's name, id, project and start, as run metadata."""
    about = {"run_name": run.display_name, "run_id": run.run_id, "project": run.project}
    if run.HasField("start_time"):
        start = run.start_time.seconds + run.start_time.nanos / 1e9
        try:
            moment = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc)
            about["start"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            pass
    return {key: value for key, value in about.items() if value}


def _undecodable_notes(source: str, records: list[tuple[int, int]]) -> list[ReadNote]:
    if not records:
        return []
    lost = sum(size for _, size in records)
    return [ReadNote(NoteKind.CORRUPT, source, f"{plural(len(records), 'record')} whose checksum holds but whose "
                     "protobuf does not decode as a W&B record; skipped", f"offset {records[0][0]}", lost)]


def _record_type() -> Any:
    """wandb's ``Record`` message; UnreadableInput with the install hint without wandb."""
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        raise UnreadableInput(INSTALL_HINT) from None
    return wandb_internal_pb2.Record


def is_wandb_file(name: str) -> bool:
    """wandb names its run files ``run-<id>.wandb``; the ending alone says what the file is."""
    return name.endswith(SUFFIX)


READER = Reader(NAME, file_read(read_wandb_run), rewritten, claims_name=is_wandb_file)
