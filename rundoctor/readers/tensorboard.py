"""TensorBoard event files: every scalar point, every histogram, and what could not be read.

Scalars come as ``simple_value`` (PyTorch, tensorboardX, TF1) or as one-element numeric
tensors of the ``scalars`` plugin (TF2, Keras, JAX), any dtype, in ``tensor_content`` or
in the typed fields.  TF2 often writes the plugin metadata only on a tag's first value, so
a tag's plugin is the one named by the first metadata logged for it in the run, and it
applies to all the tag's values.

Speed.  Decoding each record with protobuf reaches ~0.2-0.5M points/s; the fast path reads
~5M/s.  The records of one writer repeat a few layouts.  Records are grouped by length; in
each group the first record is decoded as a template by a small wire-format walker, which
finds where the wall time, the step varint and the values sit, and the walker's reading is
checked against protobuf's parse of the same bytes.  The group's records are gathered into
one ``(records, length)`` byte array (the only copy of their bytes) and compared with the
template, word by word, on every byte but those fields; records with other tags of the same
layout are told apart by a hash of those bytes, each hash bucket getting its own template,
and records of another layout wait for a later round or fall back to protobuf.  Fields are
then read for all matching records at once through strided views, and one stable sort
merges the groups back into file order.  Records that are not scalar events (histograms,
images, graphs, text) always take the protobuf path, which ``reference=True`` forces for
every record: the tests compare the two.

Checksums.  Length checksums are always verified (see :mod:`rundoctor.readers.tfrecord`).
Payload checksums are verified too, whatever ``verify`` says: for fast-path records from the
template's CRC and one table lookup per variable byte, for the others with ``google_crc32c``
(a dependency for this: the C crc32c with wheels for every platform; a pure-Python CRC costs
~0.13 s per MB, a third of tensorboard's own loading time without TensorFlow).
Measured on the 2M-point benchmark run (2 slow cores), verification costs ~45 ms of a
~350 ms read (CPU time): less than the fifth of the read time allowed for doing it always.

Measured (CPU time, make_logs.py workloads at scale 1): 2M simple_value points read in
~0.35 s in process (~0.9 s for a fresh interpreter, imports included) where tensorboard's
EventAccumulator takes 40 s; 0.5M TF2 tensor points in ~0.12 s (EventAccumulator 14 s).

Files are mapped, not read: the page cache already holds them, and the walk and the group
gathers touch each byte about once.

Damage.  A file cut at any byte yields the records before the cut and a ``truncated`` note;
a corrupt header, a payload checksum mismatch or an undecodable record yields a ``corrupt``
note with its offset, and reading goes on at the next valid record.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath

import google_crc32c
import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tfrecord import (
    FOOTER_BYTES,
    FRAMING_BYTES,
    HEADER_BYTES,
    Records,
    crc32c_with_variable_bytes,
    find_records,
    mask_crcs,
    payload_crc_ok,
    unaligned,
)
from rundoctor.series import Histogram, NoteKind, ReadNote, Run, RunBuilder, XAxis

SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"

# TensorProto dtype -> how one element is stored (little-endian); bfloat16 has no numpy type.
_TENSOR_DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    14: "bfloat16",  # DT_BFLOAT16
    17: "<u2",  # DT_UINT16
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
# Where a TensorProto without tensor_content keeps values of each dtype.
_TYPED_FIELDS: dict[int, str] = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    4: "int_val",
    5: "int_val",
    6: "int_val",
    9: "int64_val",
    10: "bool_val",
    14: "half_val",
    17: "int_val",
    19: "half_val",
    22: "uint32_val",
    23: "uint64_val",
}

# Scalars and histograms are small; a larger shape (which TensorFlow would fill with zeros
# when no values are stored) is not worth the memory.
_MAX_TENSOR_ELEMENTS = 1 << 20

# Fast path limits.  Scalar events are 30-300 bytes; a record below 16 bytes cannot hold a
# wall time, a step and a value, and records above 4 KB are images, graphs and histograms.
_FAST_MIN_LENGTH = 16
_FAST_MAX_LENGTH = 4095
# Below this many records of one length, protobuf (~3 us a record) is cheaper than a round
# of template matching (~0.2 ms of numpy calls).
_FAST_MIN_GROUP = 64
_CHUNK_RECORDS = 1 << 16  # records gathered at once: gathers run fastest in chunks this size
_MAX_ROUNDS = 8  # layouts tried per group before the rest falls back to protobuf
_MAX_TEMPLATES_PER_ROUND = 64  # tags of one layout told apart in one round
_HASH_BITS = 12  # 4096 buckets for telling templates apart (collisions cost another round)
_HASH_SHIFT = np.uint64(64 - _HASH_BITS)
_HASH_FACTOR = np.uint64(0x9E3779B97F4A7C15)
_WORD_DTYPES = {8: "<u8", 4: "<u4", 2: "<u2", 1: "u1"}


def is_event_file(name: str) -> bool:
    """TensorBoard's own test: the file name contains ``tfevents`` (``*.profile-empty`` too)."""
    return "tfevents" in PurePath(name).name


def read_tensorboard_run(
    run_dir: Path,
    files: Sequence[tuple[Path, str]],
    *,
    verify: bool = False,
    reference: bool = False,
) -> Run:
    """One run from its event files, merged in the given order with each file's tag prefix.

    Payload checksums are verified whatever ``verify`` says (cheap, see the module
    docstring); the flag stays for callers that ask for it.  ``reference=True`` decodes every
    record with protobuf.
    """
    del verify  # checksums are verified either way
    builder = RunBuilder()
    plugins: dict[str, str] = {}  # tag -> plugin named by its first metadata in the run
    notes: list[ReadNote] = []
    histograms: dict[str, list[Histogram]] = {}
    unreadable: list[str] = []
    read_files: list[_FileScalars] = []
    for path, prefix in files:
        try:
            content = _EventFile(Path(path), prefix, plugins, reference).read()
        except _NotAnEventFile as problem:
            unreadable.append(f"{Path(path).name}: {problem.reason}")
            notes.append(ReadNote(problem.kind, str(path), f"not read: {problem.reason}"))
            continue
        for tag, plugin in content.plugins.items():
            plugins.setdefault(tag, plugin)
        notes.extend(content.notes)
        for tag, items in content.histograms.items():
            histograms.setdefault(tag, []).extend(items)
        scalars = content.scalars
        notes.extend(_overlaps(scalars, read_files))
        read_files.append(scalars)
        lut = np.array([builder.code(tag) for tag in scalars.tags], np.int32)
        builder.add_coded(lut[scalars.codes], scalars.steps, scalars.values, scalars.wall_times)
    if not read_files:
        raise UnreadableInput("; ".join(unreadable) if unreadable else "no event files")
    return builder.build(
        id=str(run_dir),
        path=str(run_dir),
        format="tensorboard",
        sources=[str(path) for path, _ in files],
        x_axis=XAxis.STEP,
        notes=notes,
        histograms=histograms,
    )


def _map_file(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, mapped rather than copied (the page cache already holds them)."""
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return b""
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


class _NotAnEventFile(Exception):
    """A file that holds not even one valid record header."""

    def __init__(self, kind: NoteKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class _FileScalars:
    """One file's scalar points in file order; ``codes`` index ``tags`` (prefixed names,
    in first-logged order)."""

    path: Path
    tags: list[str]
    codes: np.ndarray
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray

    @cached_property
    def step_ranges(self) -> dict[str, tuple[int, int]]:
        """First and last step of each tag (only asked for when a run has several files)."""
        if self.steps.size == 0:
            return {}
        lows = np.full(len(self.tags), np.iinfo(np.int64).max)
        highs = np.full(len(self.tags), np.iinfo(np.int64).min)
        np.minimum.at(lows, self.codes, self.steps)
        np.maximum.at(highs, self.codes, self.steps)
        return {tag: (int(lo), int(hi)) for tag, lo, hi in zip(self.tags, lows, highs) if lo <= hi}


@dataclass(frozen=True)
class _FileContent:
    scalars: _FileScalars
    histograms: dict[str, list[Histogram]]
    plugins: dict[str, str]
    notes: list[ReadNote]


def _overlaps(later: _FileScalars, earlier_files: list[_FileScalars]) -> list[ReadNote]:
    """One note per earlier file whose steps the later file logs again for the same tags."""
    notes = []
    for earlier in earlier_files:
        shared: dict[str, tuple[int, int]] = {}
        for tag, (low, high) in earlier.step_ranges.items():
            if tag in later.step_ranges:
                start, end = max(low, later.step_ranges[tag][0]), min(high, later.step_ranges[tag][1])
                if start <= end:
                    shared[tag] = (start, end)
        if not shared:
            continue
        lows = np.array([shared.get(tag, (1, 0))[0] for tag in later.tags], np.int64)
        highs = np.array([shared.get(tag, (1, 0))[1] for tag in later.tags], np.int64)
        inside = (later.steps >= lows[later.codes]) & (later.steps <= highs[later.codes])
        start = min(low for low, _ in shared.values())
        end = max(high for _, high in shared.values())
        notes.append(
            ReadNote(
                NoteKind.OVERLAP,
                str(later.path),
                f"{later.path.name} logs steps {start}..{end} of {len(shared)} tag(s) again, "
                f"already logged in {earlier.path.name} (a restart?); both segments kept",
                location=f"steps {start}..{end}",
                count=int(inside.sum()),
            )
        )
    return notes


# ---------------------------------------------------------------------------------------
# Decoding values, shared by both paths.


def _storage_dtype(dtype: str) -> str:
    return "<u2" if dtype == "bfloat16" else dtype


def _as_float64(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    return raw.astype(np.float64)


def tensor_numbers(tensor: tensor_pb2.TensorProto) -> np.ndarray | None:
    """The elements of a numeric tensor as float64, or None for strings and malformed ones."""
    dtype = _TENSOR_DTYPES.get(tensor.dtype)
    if dtype is None:
        return None
    size = math.prod(dim.size for dim in tensor.tensor_shape.dim)
    if not 0 <= size <= _MAX_TENSOR_ELEMENTS:
        return None
    storage = _storage_dtype(dtype)
    if tensor.tensor_content:
        if len(tensor.tensor_content) != size * np.dtype(storage).itemsize:
            return None
        raw = np.frombuffer(tensor.tensor_content, storage)
    else:
        typed = getattr(tensor, _TYPED_FIELDS[tensor.dtype])
        try:
            if tensor.dtype in (14, 19):  # half_val holds the 16 bits of each value
                raw = np.array(typed, np.uint16).view(storage)
            else:
                raw = np.array(typed, storage)
        except OverflowError:  # a value out of the dtype's range: a malformed tensor
            return None
        if 0 < raw.size < size:  # TensorFlow repeats the last value to fill the shape
            raw = np.concatenate([raw, np.repeat(raw[-1:], size - raw.size)])
        elif raw.size == 0:
            raw = np.zeros(size, storage)
        if raw.size != size:
            return None
    return _as_float64(raw, dtype)


def _tensor_histogram(step: int, wall_time: float, tensor: tensor_pb2.TensorProto) -> Histogram | None:
    """A TF2 histogram: a k x 3 tensor of [left edge, right edge, count] rows."""
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    numbers = tensor_numbers(tensor)
    if numbers is None or len(dims) != 2 or dims[1] != 3:
        return None
    rows = numbers.reshape(dims)
    lowest = float(rows[0, 0]) if rows.size else math.nan
    highest = float(rows[-1, 1]) if rows.size else math.nan
    return Histogram(step, wall_time, rows[:, 1].copy(), rows[:, 2].copy(), lowest, highest)


def _proto_histogram(step: int, wall_time: float, histo: summary_pb2.HistogramProto) -> Histogram:
    return Histogram(
        step,
        wall_time,
        np.array(histo.bucket_limit, np.float64),
        np.array(histo.bucket, np.float64),
        histo.min,
        histo.max,
    )


# What the skip note calls each kind of value; other plugins are named after the plugin.
_SKIP_NOUNS: dict[str, tuple[str, str]] = {
    "text": ("text value", "text values"),
    "images": ("image", "images"),
    "audio": ("audio clip", "audio clips"),
    "graph": ("graph definition", "graph definitions"),
    "run_metadata": ("run metadata record", "run metadata records"),
    "session_log": ("session log event", "session log events"),
    "log_message": ("log message", "log messages"),
    "": ("tensor without plugin metadata", "tensors without plugin metadata"),
    "malformed": ("unreadable histogram or tensor", "unreadable histograms or tensors"),
    "empty": ("value without data", "values without data"),
    "obsolete_old_style_histogram": ("old-style histogram", "old-style histograms"),
}


class _SkipTally:
    """What a file held that is not a scalar or a histogram, for one summary note."""

    _SHOWN_TAGS = 3

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.tags: dict[str, list[str]] = {}

    def add(self, kind: str, tag: str | None = None, count: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count
        if tag is not None:
            tags = self.tags.setdefault(kind, [])
            if tag not in tags:
                tags.append(tag)

    def note(self, source: Path) -> ReadNote | None:
        if not self.counts:
            return None
        parts = []
        known = list(_SKIP_NOUNS)
        for kind, count in sorted(
            self.counts.items(), key=lambda item: known.index(item[0]) if item[0] in known else len(known)
        ):
            singular, plural = _SKIP_NOUNS.get(kind, (f"{kind} plugin value", f"{kind} plugin values"))
            part = f"{count} {singular if count == 1 else plural}"
            tags = self.tags.get(kind, [])
            if tags:
                shown = ", ".join(tags[: self._SHOWN_TAGS])
                part += f" ({shown}{', ...' if len(tags) > self._SHOWN_TAGS else ''})"
            parts.append(part)
        return ReadNote(
            NoteKind.SKIPPED, str(source), "skipped " + ", ".join(parts), count=sum(self.counts.values())
        )


_PLUGIN_SKIP_KIND = {
    "text": "text",
    "images": "images",
    "audio": "audio",
    "graph_keras_model": "graph",
    "graph_run_metadata": "run_metadata",
    "graph_run_metadata_graph": "run_metadata",
}
_EVENT_SKIP_KIND = {
    "graph_def": "graph",
    "meta_graph_def": "graph",
    "tagged_run_metadata": "run_metadata",
    "session_log": "session_log",
    "log_message": "log_message",
}


# ---------------------------------------------------------------------------------------
# Templates: the layout of one scalar event, found by walking its wire format.


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _wire_fields(buffer: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field in buffer[start:end]."""
    position = start
    while position < end:
        key, position = _varint(buffer, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value_end = _varint(buffer, position)[1]
        elif wire == 1:
            value_end = position + 8
        elif wire == 2:
            size, position = _varint(buffer, position)
            value_end = position + size
        elif wire == 5:
            value_end = position + 4
        else:
            raise ValueError("unsupported wire type")
        if value_end > end:
            raise ValueError("field runs past its message")
        yield number, wire, position, value_end
        position = value_end


@dataclass(frozen=True)
class _Slot:
    """Where one scalar value of a template sits."""

    tag: str
    offset: int
    dtype: str  # a _TENSOR_DTYPES value
    is_tensor: bool
    plugin: str

    @property
    def size(self) -> int:
        return np.dtype(_storage_dtype(self.dtype)).itemsize


@dataclass(frozen=True)
class _Template:
    """The layout of a scalar event: wall time at 1..9, step varint at 10.., values in slots."""

    payload: bytes
    step_width: int
    slots: tuple[_Slot, ...]

    @property
    def layout(self) -> tuple[object, ...]:
        return (self.step_width, tuple((s.offset, s.dtype, s.is_tensor) for s in self.slots))

    @property
    def variable_ranges(self) -> list[tuple[int, int]]:
        ranges = [(1, 9)]
        if self.step_width:
            ranges.append((10, 10 + self.step_width))
        ranges.extend((slot.offset, slot.offset + slot.size) for slot in self.slots)
        return ranges

    @property
    def fixed_start(self) -> int:
        """Where the bytes after the wall time, the next field key and the step start."""
        return 10 + self.step_width

    def variable_bytes(self) -> list[int]:
        return [position for start, end in self.variable_ranges for position in range(start, end)]

    def step_continuation(self) -> tuple[np.uint64, np.uint64]:
        """(mask, expected) of the continuation bits of an 8-byte word at the step: set in
        each byte of the varint but its last."""
        mask = sum(0x80 << (8 * byte) for byte in range(self.step_width))
        return np.uint64(mask), np.uint64(mask & ~(0x80 << (8 * (self.step_width - 1))))

    def fixed_words(self) -> list[tuple[int, str]]:
        """(offset, dtype) of words covering the bytes every record of this template shares
        with it: the keys of the wall time and step fields, then the widest words that fit
        each stretch between values, the last one overlapping its neighbour rather than
        reaching into a value."""
        stretches = [(0, 1), (9, 10)]
        position = self.fixed_start
        for slot in sorted(self.slots, key=lambda s: s.offset):
            if slot.offset > position:
                stretches.append((position, slot.offset))
            position = slot.offset + slot.size
        if position < len(self.payload):
            stretches.append((position, len(self.payload)))
        words = []
        for start, end in stretches:
            size = next(size for size in (8, 4, 2, 1) if size <= end - start)
            for offset in range(start, end, size):
                words.append((min(offset, end - size), _WORD_DTYPES[size]))
        return words

    def zeroed_crc(self) -> int:
        """crc32c of the payload with the variable bytes zeroed."""
        zeroed = bytearray(self.payload)
        for start, end in self.variable_ranges:
            zeroed[start:end] = bytes(end - start)
        return int(google_crc32c.value(bytes(zeroed)))


def _parse_template(payload: bytes) -> _Template | None:
    """The layout of a scalar event, or None if the record is anything else; the layout is
    checked against protobuf's parse of the same bytes."""
    try:
        fields = list(_wire_fields(payload, 0, len(payload)))
        step_width = fields[1][3] - 10 if len(fields) == 3 and fields[1][:3] == (2, 0, 10) else 0
        expected = [(1, 1, 1, 9)] + ([(2, 0, 10, 10 + step_width)] if step_width else [])
        if step_width > 8 or len(fields) != len(expected) + 1 or fields[:-1] != expected:
            return None
        number, wire, start, end = fields[-1]
        if (number, wire, end) != (5, 2, len(payload)):
            return None
        slots = []
        for number, wire, value_start, value_end in _wire_fields(payload, start, end):
            slot = _value_slot(payload, value_start, value_end) if (number, wire) == (1, 2) else None
            if slot is None:
                return None
            slots.append(slot)
    except (ValueError, IndexError):
        return None
    return _checked_template(payload, step_width, slots)


def _value_slot(payload: bytes, start: int, end: int) -> tuple[str, int, str, bool] | None:
    """(tag, value offset, dtype, is tensor) of a Summary.Value holding one scalar."""
    fields = list(_wire_fields(payload, start, end))
    if not fields or fields[0][:2] != (1, 2):
        return None
    try:
        tag = payload[fields[0][2] : fields[0][3]].decode("utf-8")
    except UnicodeDecodeError:
        return None
    slot: tuple[str, int, str, bool] | None = None
    for number, wire, value_start, value_end in fields[1:]:
        if (number, wire) == (2, 5) and slot is None:  # simple_value
            slot = (tag, value_start, "<f4", False)
        elif (number, wire) == (8, 2) and slot is None:  # tensor
            found = _tensor_slot(payload, value_start, value_end)
            if found is None:
                return None
            slot = (tag, found[0], found[1], True)
        elif (number, wire) != (9, 2):  # metadata is fine: it is part of the fixed bytes
            return None
    return slot


def _tensor_slot(payload: bytes, start: int, end: int) -> tuple[int, str] | None:
    """(offset, dtype) of the one value of a numeric tensor stored in fixed-width bytes."""
    dtype_code = None
    value: tuple[int, int, int] | None = None  # field number, start, end
    for number, wire, value_start, value_end in _wire_fields(payload, start, end):
        if (number, wire) == (1, 0):
            dtype_code = _varint(payload, value_start)[0]
        elif (number, wire) == (2, 2):
            continue  # the shape: one element is checked against protobuf's parse
        elif number in (4, 5, 6) and wire == 2 and value is None:
            value = (number, value_start, value_end)  # tensor_content, float_val, double_val
        else:
            return None
    dtype = _TENSOR_DTYPES.get(dtype_code) if dtype_code is not None else None
    if dtype is None or value is None:
        return None
    number, value_start, value_end = value
    if (number == 5 and dtype_code != 1) or (number == 6 and dtype_code != 2):
        return None
    if value_end - value_start != np.dtype(_storage_dtype(dtype)).itemsize:
        return None
    return value_start, dtype


def _checked_template(
    payload: bytes, step_width: int, slots: list[tuple[str, int, str, bool]]
) -> _Template | None:
    """The template, if protobuf reads the same wall time, step, tags and values from it."""
    try:
        event = event_pb2.Event.FromString(payload)
    except DecodeError:
        return None
    step = _varint(payload, 10)[0] if step_width else 0
    if (
        event.WhichOneof("what") != "summary"
        or struct.pack("<d", event.wall_time) != payload[1:9]
        or event.step != step
        or len(event.summary.value) != len(slots)
    ):
        return None
    checked = []
    for value, (tag, offset, dtype, is_tensor) in zip(event.summary.value, slots):
        storage = _storage_dtype(dtype)
        ours = float(_as_float64(np.frombuffer(payload, storage, 1, offset), dtype)[0])
        theirs = _scalar_of(value)
        if value.tag != tag or theirs is None or (value.WhichOneof("value") == "tensor") != is_tensor:
            return None
        if not (ours == theirs or (math.isnan(ours) and math.isnan(theirs))):
            return None
        plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
        checked.append(_Slot(tag, offset, dtype, is_tensor, plugin))
    return _Template(payload, step_width, tuple(checked))


def _scalar_of(value: summary_pb2.Summary.Value) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        numbers = tensor_numbers(value.tensor)
        if numbers is not None and numbers.size == 1:
            return float(numbers[0])
    return None


# ---------------------------------------------------------------------------------------
# One file.


@dataclass
class _Batch:
    """Points of one value slot of fast-path records that share a layout, one per record."""

    records: np.ndarray  # record numbers in the file
    slot: int  # which value of the record's summary
    codes: np.ndarray  # local tag codes
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray
    is_tensor: bool


@dataclass
class _SlowPoints:
    """Points of records decoded by protobuf, one entry per point."""

    records: array[int] = field(default_factory=lambda: array("q"))
    codes: array[int] = field(default_factory=lambda: array("q"))
    steps: array[int] = field(default_factory=lambda: array("q"))
    wall_times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    is_tensor: array[int] = field(default_factory=lambda: array("b"))

    def add(self, record: int, code: int, step: int, wall_time: float, value: float, is_tensor: bool) -> None:
        self.records.append(record)
        self.codes.append(code)
        self.steps.append(step)
        self.wall_times.append(wall_time)
        self.values.append(value)
        self.is_tensor.append(is_tensor)


class _EventFile:
    def __init__(self, path: Path, prefix: str, run_plugins: dict[str, str], reference: bool) -> None:
        self.path = path
        self.prefix = prefix
        self.run_plugins = run_plugins
        self.reference = reference
        self.data: bytes | mmap.mmap = b""
        self.records: Records | None = None
        self.tag_codes: dict[str, int] = {}  # unprefixed tag -> local code
        self.first_metadata: dict[str, tuple[int, str]] = {}  # tag -> (record, plugin)
        self.first_seen: dict[str, tuple[int, int]] = {}  # tag -> (record, slot) of its first value
        self.batches: list[_Batch] = []
        self.slow = _SlowPoints()
        self.pending_tensors: list[tuple[int, str, int, float, tensor_pb2.TensorProto]] = []
        self.histograms: dict[str, list[tuple[int, Histogram]]] = {}
        self.tally = _SkipTally()
        self.damage: list[tuple[int, ReadNote]] = []  # (offset, note)

    def read(self) -> _FileContent:
        try:
            self.data = _map_file(self.path)
        except OSError as error:
            raise _NotAnEventFile(NoteKind.SKIPPED, f"cannot read: {error.strerror or error}") from error
        if self.data[: len(_LFS_POINTER)] == _LFS_POINTER:
            raise _NotAnEventFile(
                NoteKind.SKIPPED, "Git LFS pointer, not an event file (the real file was never fetched)"
            )
        self.records = records = find_records(self.data, predict=not self.reference)
        if not self.data:
            raise _NotAnEventFile(
                NoteKind.TRUNCATED, "empty file (the writer stopped before its first record)"
            )
        if not records.found_header:
            raise _NotAnEventFile(NoteKind.CORRUPT, "no valid TFRecord header: not an event file")
        for problem in records.problems:
            self._damaged(problem.offset, problem.kind, problem.reason, problem.bytes_lost)
        slow = np.arange(records.starts.size) if self.reference else self._decode_fast()
        self._decode_slow(slow)
        scalars = self._scalars()
        histograms = self._resolve_histograms()
        notes = [note for _, note in sorted(self.damage, key=lambda item: item[0])]
        skipped = self.tally.note(self.path)
        if skipped is not None:
            notes.append(skipped)
        plugins = {self.prefix + tag: plugin for tag, (_, plugin) in self.first_metadata.items()}
        return _FileContent(scalars, histograms, plugins, notes)

    # -- helpers -------------------------------------------------------------------------

    def _code(self, tag: str) -> int:
        return self.tag_codes.setdefault(tag, len(self.tag_codes))

    def _saw_point(self, tag: str, record: int, slot: int) -> None:
        if tag not in self.first_seen or (record, slot) < self.first_seen[tag]:
            self.first_seen[tag] = (record, slot)

    def _saw_template(self, template: _Template, record: int) -> None:
        for slot, value in enumerate(template.slots):
            self._saw_point(value.tag, record, slot)
            self._saw_metadata(value.tag, record, value.plugin)

    def _saw_metadata(self, tag: str, record: int, plugin: str) -> None:
        if plugin and (tag not in self.first_metadata or record < self.first_metadata[tag][0]):
            self.first_metadata[tag] = (record, plugin)

    def _damaged(self, offset: int, kind: NoteKind, reason: str, bytes_lost: int) -> None:
        self.damage.append(
            (offset, ReadNote(kind, str(self.path), reason, location=f"offset {offset}", count=bytes_lost))
        )

    def _corrupt_record(self, record: int, reason: str) -> None:
        assert self.records is not None
        start = int(self.records.starts[record])
        length = int(self.records.lengths[record])
        self._damaged(start, NoteKind.CORRUPT, f"{reason}; record skipped", length + FRAMING_BYTES)

    def _plugin_of(self, tag: str) -> str:
        """The plugin of an unprefixed tag: named by earlier files of the run, else by this one."""
        earlier = self.run_plugins.get(self.prefix + tag)
        if earlier is not None:
            return earlier
        return self.first_metadata[tag][1] if tag in self.first_metadata else ""

    def _skip_tensor(self, tag: str, count: int = 1) -> None:
        plugin = self._plugin_of(tag)
        self.tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)

    # -- the fast path -------------------------------------------------------------------

    def _decode_fast(self) -> np.ndarray:
        """Decode the scalar events that share layouts; return the records left for protobuf."""
        assert self.records is not None
        lengths = self.records.lengths
        eligible = (lengths >= _FAST_MIN_LENGTH) & (lengths <= _FAST_MAX_LENGTH)
        left = [np.flatnonzero(~eligible)]
        members = np.flatnonzero(eligible)
        counts = np.bincount(lengths[members], minlength=_FAST_MAX_LENGTH + 1)
        distinct = np.flatnonzero(counts)
        if distinct.size > 1:  # group records by length, keeping file order in each group
            dense = np.zeros(_FAST_MAX_LENGTH + 1, np.int16)
            dense[distinct] = np.arange(distinct.size, dtype=np.int16)
            members = members[np.argsort(dense[lengths[members]], kind="stable")]
        start = 0
        for length, count in zip(distinct.tolist(), counts[distinct].tolist()):
            group = members[start : start + count]
            start += count
            if count < _FAST_MIN_GROUP:
                left.append(group)
                continue
            for chunk in range(0, count, _CHUNK_RECORDS):
                left.append(self._decode_length(length, group[chunk : chunk + _CHUNK_RECORDS]))
        return np.sort(np.concatenate(left))

    def _decode_length(self, length: int, members: np.ndarray) -> np.ndarray:
        """Decode the records of one payload length that equal a template outside its
        variable bytes, one round per layout; return the records left for protobuf."""
        assert self.records is not None
        row_bytes = length + FOOTER_BYTES  # the payload and its crc
        rows = unaligned(self.data, f"V{row_bytes}")[self.records.starts[members] + HEADER_BYTES]
        left = []
        for _ in range(_MAX_ROUNDS):
            template = _parse_template(rows[0].tobytes()[:length])
            if template is None:  # records equal to it after the wall time are no template either
                tail = unaligned(rows, f"V{length - 9}", offset=9, stride=row_bytes)
                done = tail == tail[0]
                left.append(members[done])
            else:
                done = self._match_round(length, template, rows, members)
            if bool(done.all()):
                return np.concatenate(left) if left else members[:0]
            rows, members = rows[~done], members[~done]
        left.append(members)
        return np.concatenate(left)

    def _match_round(
        self, length: int, template: _Template, rows: np.ndarray, members: np.ndarray
    ) -> np.ndarray:
        """Decode the records matching templates of ``template``'s layout; return which did."""
        row_bytes = length + FOOTER_BYTES
        words = template.fixed_words()
        views = [unaligned(rows, dtype, offset=offset, stride=row_bytes) for offset, dtype in words]
        # Rows whose field keys or step width differ from the template's are not candidates;
        # the others are told apart by a multiplicative hash of the bytes after the step.
        candidate = np.ones(members.size, bool)
        if template.step_width:
            mask, continued = template.step_continuation()
            candidate &= (unaligned(rows, "<u8", offset=10, stride=row_bytes) & mask) == continued
        digest = np.zeros(members.size, np.uint64)
        for view, (offset, dtype) in zip(views, words):
            if offset < template.fixed_start:
                candidate &= view == np.frombuffer(template.payload, dtype, 1, offset)[0]
            else:
                digest ^= view.astype(np.uint64, copy=False)
                digest *= _HASH_FACTOR
        no_bucket = 1 << _HASH_BITS
        buckets = np.where(candidate, (digest >> _HASH_SHIFT).astype(np.intp), no_bucket)
        firsts = np.full(no_bucket + 1, members.size)
        np.minimum.at(firsts, buckets, np.arange(members.size))
        bucket_template = np.full(no_bucket + 1, -1, np.intp)
        templates: list[_Template] = []
        occupied = np.flatnonzero(firsts[:no_bucket] < members.size)
        # Rows of another layout hash at random: parse the earliest buckets only, the rest
        # waits for a round whose template has their layout.
        occupied = occupied[np.argsort(firsts[occupied], kind="stable")[:_MAX_TEMPLATES_PER_ROUND]]
        for bucket in occupied.tolist():
            row = int(firsts[bucket])
            found = template if row == 0 else _parse_template(rows[row].tobytes()[:length])
            if found is not None and found.layout == template.layout:
                bucket_template[bucket] = len(templates)
                templates.append(found)
        which = bucket_template.take(buckets)
        matched = which >= 0
        safe = np.maximum(which, 0)
        for view, (offset, dtype) in zip(views, words):
            if offset >= template.fixed_start:
                expected = np.array([np.frombuffer(t.payload, dtype, 1, offset)[0] for t in templates], dtype)
                matched &= view == expected.take(safe)
        picked = None if bool(matched.all()) else np.flatnonzero(matched)
        self._emit(length, template, templates, rows, members, which, picked)
        return matched

    def _emit(
        self,
        length: int,
        template: _Template,
        templates: list[_Template],
        rows: np.ndarray,
        members: np.ndarray,
        which: np.ndarray,
        picked: np.ndarray | None,
    ) -> None:
        """Read wall time, step and values of the matched rows, check their CRCs, keep them."""
        row_bytes = length + FOOTER_BYTES

        def column(offset: int, dtype: str) -> np.ndarray:
            view = unaligned(rows, dtype, offset=offset, stride=row_bytes)
            return view if picked is None else view[picked]

        if picked is not None:
            members, which = members[picked], which[picked]
        if members.size == 0:
            return
        variable = [(position, column(position, "u1")) for position in template.variable_bytes()]
        zeroed = np.array([t.zeroed_crc() for t in templates], np.uint32).take(which)
        crcs = mask_crcs(crc32c_with_variable_bytes(zeroed, length, variable))
        intact = crcs == column(length, "<u4")
        keep = None
        if not bool(intact.all()):
            for record in members[~intact].tolist():
                self._corrupt_record(record, "payload checksum mismatch")
            keep = np.flatnonzero(intact)
            members, which = members[keep], which[keep]
            if members.size == 0:
                return
        for index, found in enumerate(templates):
            first = int(np.argmax(which == index))
            if first < which.size and which[first] == index:
                self._saw_template(found, int(members[first]))

        def kept(values: np.ndarray) -> np.ndarray:
            return values if keep is None else values[keep]

        if template.step_width:
            raw = kept(column(10, "<u8"))
            steps = np.zeros(raw.size, np.uint64)
            for byte in range(template.step_width):
                steps |= ((raw >> np.uint64(8 * byte)) & np.uint64(0x7F)) << np.uint64(7 * byte)
            steps = steps.view(np.int64)
        else:
            steps = np.zeros(members.size, np.int64)
        wall_times = kept(column(1, "<f8")).astype(np.float64)
        for index, slot in enumerate(template.slots):
            codes = np.array([self._code(t.slots[index].tag) for t in templates], np.int32)
            values = _as_float64(kept(column(slot.offset, _storage_dtype(slot.dtype))), slot.dtype)
            self.batches.append(
                _Batch(members, index, codes.take(which), steps, wall_times, values, slot.is_tensor)
            )

    # -- the protobuf path ---------------------------------------------------------------

    def _decode_slow(self, indices: np.ndarray) -> None:
        assert self.records is not None
        starts = self.records.starts[indices].tolist()
        lengths = self.records.lengths[indices].tolist()
        intact = payload_crc_ok(self.data, starts, lengths)
        data = self.data
        for record, start, length, ok in zip(indices.tolist(), starts, lengths, intact):
            if not ok:
                self._corrupt_record(record, "payload checksum mismatch")
                continue
            payload = data[start + HEADER_BYTES : start + HEADER_BYTES + length]
            try:
                event = event_pb2.Event.FromString(payload)
            except (DecodeError, RecursionError, ValueError):
                self._corrupt_record(record, "undecodable event (not an Event protobuf)")
                continue
            self._decode_event(record, event)

    def _decode_event(self, record: int, event: event_pb2.Event) -> None:
        what = event.WhichOneof("what")
        if what != "summary":
            if what in _EVENT_SKIP_KIND:
                self.tally.add(_EVENT_SKIP_KIND[what])
            return
        step, wall_time = event.step, event.wall_time
        slot = 0
        for value in event.summary.value:
            tag = value.tag
            if value.HasField("metadata"):
                self._saw_metadata(tag, record, value.metadata.plugin_data.plugin_name)
            kind = value.WhichOneof("value")
            scalar = _scalar_of(value)
            if scalar is not None:
                self.slow.add(record, self._code(tag), step, wall_time, scalar, kind == "tensor")
                self._saw_point(tag, record, slot)
                slot += 1
            elif kind == "tensor":
                self.pending_tensors.append((record, tag, step, wall_time, value.tensor))
            elif kind == "histo":
                self.histograms.setdefault(tag, []).append(
                    (record, _proto_histogram(step, wall_time, value.histo))
                )
            elif kind in ("image", "audio"):
                self.tally.add("images" if kind == "image" else "audio")
            elif kind is None:  # plugin data without a value (hparams, ...)
                plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
                self.tally.add(plugin or "empty", tag)
            else:
                self.tally.add(kind, tag)

    # -- putting the file together -------------------------------------------------------

    def _scalars(self) -> _FileScalars:
        """All points in file order, tensors of tags outside the scalars plugin left out."""
        local_tags = list(self.tag_codes)
        scalar_tag = np.array([self._plugin_of(tag) == SCALARS_PLUGIN for tag in local_tags], bool)
        # Values of a record in summary order: fast batches by slot, then the protobuf path's
        # points (already in record and slot order; no record is in both).
        batches = [self._kept(batch, scalar_tag) for batch in sorted(self.batches, key=lambda b: b.slot)]
        batches.append(self._kept_slow(scalar_tag))

        def joined(name: str) -> np.ndarray:
            parts = [getattr(batch, name) for batch in batches]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        records = joined("records")
        # One stable sort merges the batches (each sorted by record) into file order.
        order = np.argsort(records, kind="stable")
        codes = joined("codes")
        present = np.bincount(codes, minlength=len(local_tags)) > 0
        ordered_codes = sorted(
            (code for code, tag in enumerate(local_tags) if present[code]),
            key=lambda code: self.first_seen[local_tags[code]],
        )
        renumber = np.zeros(len(local_tags), np.int32)
        renumber[ordered_codes] = np.arange(len(ordered_codes), dtype=np.int32)
        return _FileScalars(
            self.path,
            [self.prefix + local_tags[code] for code in ordered_codes],
            renumber.take(codes).take(order),
            joined("steps").take(order),
            joined("wall_times").take(order),
            joined("values").take(order),
        )

    def _kept(self, batch: _Batch, scalar_tag: np.ndarray) -> _Batch:
        """The batch without tensor values of tags outside the scalars plugin (tallied)."""
        if not batch.is_tensor:
            return batch
        keep = scalar_tag.take(batch.codes)
        if bool(keep.all()):
            return batch
        self._skip_codes(batch.codes[~keep])
        return _Batch(
            batch.records[keep],
            batch.slot,
            batch.codes[keep],
            batch.steps[keep],
            batch.wall_times[keep],
            batch.values[keep],
            batch.is_tensor,
        )

    def _kept_slow(self, scalar_tag: np.ndarray) -> _Batch:
        """The protobuf path's points as one batch, tensor values of tags outside the scalars
        plugin left out (tallied)."""
        slow = self.slow
        records = np.frombuffer(slow.records, np.int64)
        codes = np.frombuffer(slow.codes, np.int64).astype(np.int32)
        keep = ~(np.frombuffer(slow.is_tensor, np.int8).astype(bool) & ~scalar_tag[codes])
        self._skip_codes(codes[~keep])
        return _Batch(
            records[keep],
            0,
            codes[keep],
            np.frombuffer(slow.steps, np.int64)[keep],
            np.frombuffer(slow.wall_times, np.float64)[keep],
            np.frombuffer(slow.values, np.float64)[keep],
            True,
        )

    def _skip_codes(self, codes: np.ndarray) -> None:
        local_tags = list(self.tag_codes)
        for code, count in enumerate(np.bincount(codes, minlength=len(local_tags)).tolist()):
            if count:
                self._skip_tensor(local_tags[code], count)

    def _resolve_histograms(self) -> dict[str, list[Histogram]]:
        """Histograms (proto and TF2 tensor) by prefixed tag; other tensors are tallied."""
        for record, tag, step, wall_time, tensor in self.pending_tensors:
            plugin = self._plugin_of(tag)
            histogram = _tensor_histogram(step, wall_time, tensor) if plugin == HISTOGRAMS_PLUGIN else None
            if histogram is not None:
                self.histograms.setdefault(tag, []).append((record, histogram))
            elif plugin in (HISTOGRAMS_PLUGIN, SCALARS_PLUGIN):
                self.tally.add("malformed", tag)
            else:
                self._skip_tensor(tag)
        return {
            self.prefix + tag: [histogram for _, histogram in sorted(items, key=lambda item: item[0])]
            for tag, items in self.histograms.items()
        }
