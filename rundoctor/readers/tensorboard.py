"""TensorBoard event files: every scalar point, every histogram, and what could not be read.

Scalars come as ``simple_value`` (PyTorch, tensorboardX, TF1) or as one-element numeric
tensors of the ``scalars`` plugin (TF2, Keras, JAX), any dtype, in ``tensor_content`` or
in the typed fields.  TF2 often writes the plugin metadata only on a tag's first value, so
a tag's plugin is the one named by the first metadata logged for it in the run, and it
applies to all the tag's values (should it come after values of the tag, in a later window
of the file, the file is read again knowing it).

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

Memory.  A file is read in windows of 16 MiB through one reused buffer (``readinto``), not
mapped: mapped pages that were touched count in the process's memory, so a mapped 1 GB file
costs 1 GB, and a mapped file that another process truncates kills the reader (SIGBUS)
where a read just comes back short.  A record cut by a window's end is carried into the
next window; each window goes through the whole machinery above, and its points are
appended, in file order, to four growing columns (int32 tag code, int64 step, float64 wall
time and value: 28 bytes a point, nothing per point in Python objects).  A window's own
arrays are freed before the next one.  Measured on a 1 GB file of 20M points: peak RSS
645 MB for reading it (560 MB of points, 32 MB of imports), where mapping it whole and
merging at the end took 3.2 GB; the read time is unchanged.  A file that grows while it is
read is read up to the size it had when reading started.

Following a file that is still being written (``rundoctor watch``):
:func:`read_event_file_increment` reads only the bytes after an offset, leaves a record
still being written for the next read, and carries in an :class:`EventFileState` what later
records depend on.

Damage.  A file cut at any byte yields the records before the cut and a ``truncated`` note;
a corrupt header, a payload checksum mismatch or an undecodable record yields a ``corrupt``
note with its offset, and reading goes on at the next valid record.  A record whose payload
checksum fails may have lost or gained bytes, so its length is not trusted: reading resumes
at the first intact record after its header (records inside the span its length claims
included), which the decoder, finding the mismatch, has the window walked again to do.
"""

from __future__ import annotations

import io
import math
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
    FileData,
    Records,
    RecordWalker,
    crc32c_with_variable_bytes,
    mask_crcs,
    payload_crc_ok,
    unaligned,
)
from rundoctor.series import Histogram, NoteKind, ReadNote, Run, RunBuilder, XAxis

SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_LFS_REASON = "Git LFS pointer, not an event file (the real file was never fetched)"
_NO_HEADER_REASON = "no valid TFRecord header: not an event file"

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
    assembly = _RunAssembly()
    for path, prefix in files:
        try:
            content = _read_event_file(Path(path), prefix, assembly.plugins, reference)
        except _NotAnEventFile as problem:
            assembly.add_unreadable(Path(path), problem)
            continue
        assembly.add(content)
        del content  # the builder holds the only reference to the points: grouping can free them
    return assembly.build(run_dir, [path for path, _ in files])


class _RunAssembly:
    """The files of a run merged in order: points, notes, histograms, and the plugin each
    tag's first metadata in the run names (later files inherit it)."""

    def __init__(self) -> None:
        self.builder = RunBuilder()
        self.plugins: dict[str, str] = {}  # prefixed tag -> plugin named by its first metadata
        self.notes: list[ReadNote] = []
        self.histograms: dict[str, list[Histogram]] = {}
        self.unreadable: list[str] = []
        self.read_files: list[_FileScalars] = []

    def add_unreadable(self, path: Path, problem: _NotAnEventFile) -> None:
        self.unreadable.append(f"{path.name}: {problem.reason}")
        self.notes.append(ReadNote(problem.kind, str(path), f"not read: {problem.reason}"))

    def add(self, content: _FileContent) -> None:
        for tag, plugin in content.plugins.items():
            self.plugins.setdefault(tag, plugin)
        self.notes.extend(content.notes)
        for tag, items in content.histograms.items():
            self.histograms.setdefault(tag, []).extend(items)
        scalars = content.scalars
        self.notes.extend(_overlaps(scalars, self.read_files))
        self.read_files.append(scalars)
        lut = np.array([self.builder.code(tag) for tag in scalars.tags], np.int32)
        # The first file's tags are the run's first codes: its points need no recoding.
        same = bool(np.array_equal(lut, np.arange(lut.size)))
        codes = scalars.codes if same else lut[scalars.codes]
        self.builder.add_coded(codes, scalars.steps, scalars.values, scalars.wall_times)

    def build(self, run_dir: Path, sources: Sequence[Path]) -> Run:
        if not self.read_files:
            raise UnreadableInput("; ".join(self.unreadable) if self.unreadable else "no event files")
        self.read_files.clear()  # overlaps are noted; the builder holds the only copy of the points
        return self.builder.build(
            id=str(run_dir),
            path=str(run_dir),
            format="tensorboard",
            sources=[str(path) for path in sources],
            x_axis=XAxis.STEP,
            notes=self.notes,
            histograms=self.histograms,
        )


def _read_event_file(path: Path, prefix: str, run_plugins: dict[str, str], reference: bool) -> _FileContent:
    """Everything one event file holds, read window by window."""
    state = EventFileState(prefix, run_plugins, reference=reference)
    state.bind(path)
    try:
        with path.open("rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if handle.read(len(_LFS_POINTER)) == _LFS_POINTER:
                raise _NotAnEventFile(NoteKind.SKIPPED, _LFS_REASON)
            if size == 0:
                raise _NotAnEventFile(NoteKind.TRUNCATED, "empty file (the writer stopped before its first record)")
            _read_span(handle, state, 0, size, final=True)
    except OSError as error:
        raise _NotAnEventFile(NoteKind.SKIPPED, f"cannot read: {error.strerror or error}") from error
    if not state.walker.found_header:
        raise _NotAnEventFile(NoteKind.CORRUPT, _NO_HEADER_REASON)
    resolved = state.resolved_late()
    if resolved:
        # Tensors came before the first metadata naming their tag's plugin, in an earlier
        # window: read again knowing it (rare: writers put the metadata on the first value).
        return _read_event_file(path, prefix, {**run_plugins, **resolved}, reference)
    return state.content(final=True)


# Bytes read at a time.  Measured on the 2M-point benchmark file (in-process CPU time against
# the whole file mapped at once): 8-16 MiB windows read as fast as the mapped file, the copy
# that read() makes being paid back by later passes finding the window in the CPU caches;
# 32-64 MiB windows were ~10% slower, 4 MiB ones ~15% (per-window costs).  A window's own
# arrays (record offsets, decoded columns, their merge) take about 1.5x its size.
_WINDOW_BYTES = 1 << 24


def _read_span(handle: io.FileIO, state: EventFileState, start: int, stop: int, *, final: bool) -> int:
    """Feed the bytes ``start..stop`` of an open file to ``state`` through one reused
    buffer; return the offset just after the last record read.

    ``final``: the file ends at ``stop``, so a record cut there is truncated; otherwise it
    is left for a later read (a file still being written).  A file that turns out shorter
    than ``stop`` (cut by another process meanwhile) ends where reading stopped.
    """
    buffer = bytearray(max(min(_WINDOW_BYTES, stop - start), 1))
    handle.seek(start)
    base, filled = start, 0
    while True:
        want = min(len(buffer), stop - base)
        try:
            filled += _fill(handle, memoryview(buffer)[filled:want])
        except OSError as error:
            state.stopped(base + filled, error)
            want = filled + 1  # as if the file ended here
        short = filled < want
        at_stop = base + filled >= stop or short
        limit = base + filled if final and at_stop else (stop if final else None)
        records = state.feed(memoryview(buffer)[:filled], base, limit)
        consumed = records.end
        if records.finished or at_stop:
            return base + consumed
        carried = filled - consumed
        buffer[:carried] = buffer[consumed:filled]
        base, filled = base + consumed, carried
        needed = max(records.needed, 2 * len(buffer) if consumed == 0 else 0)
        if needed > len(buffer):
            if base + records.needed > stop:  # the record is not all there yet
                return base
            # A record larger than the window (or a window too small to advance): grow.
            grown = bytearray(min(needed, stop - base))
            grown[:filled] = buffer[:filled]
            buffer = grown


def _fill(handle: io.FileIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or the file ends; how many bytes were read."""
    got = 0
    while got < len(view):
        count = handle.readinto(view[got:])
        if not count:
            break
        got += count
    return got


@dataclass(frozen=True)
class PointsBlock:
    """Scalar points in file order; ``codes`` index ``tags`` (prefixed names, in the order
    of their first points; a tag keeps its code as the file grows)."""

    tags: tuple[str, ...]
    codes: np.ndarray  # int32
    steps: np.ndarray  # int64
    wall_times: np.ndarray  # float64
    values: np.ndarray  # float64


@dataclass(frozen=True)
class EventIncrement:
    """What one incremental read found: the new points, where the next read starts, and
    the damage seen in the new bytes."""

    points: PointsBlock
    offset: int
    notes: list[ReadNote]


def read_event_file_increment(path: Path, offset: int, state: EventFileState) -> EventIncrement:
    """The complete records written to ``path`` after ``offset``, for following a file that
    is still being written.

    ``offset`` must be 0 or an offset this function returned for the same ``state``.  A
    record still being written at the end is not an error: it is left for the next read,
    which starts at the returned offset.  The state carries what later records depend on:
    each tag's plugin (TF2 names it on a tag's first value only), the tag order, a
    corruption whose end is not written yet.  A tensor whose tag has no plugin yet is
    judged with what has been read so far (the whole-file read looks ahead to the file's
    end instead).
    """
    state.bind(path)
    before, damage_before = state.points.count, len(state.damage)
    try:
        with path.open("rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < offset:
                state.shrunk(offset, size)
            elif offset == 0 and handle.read(len(_LFS_POINTER)) == _LFS_POINTER:
                state.not_an_event_file = _NotAnEventFile(NoteKind.SKIPPED, _LFS_REASON)
            elif state.not_an_event_file is None:
                offset = _read_span(handle, state, offset, size, final=False)
    except OSError as error:
        state.stopped(offset, error)
    codes, steps, wall_times, values = (column[before:].copy() for column in state.points.columns)
    block = PointsBlock(tuple(state.prefix + tag for tag in state.tags), codes, steps, wall_times, values)
    return EventIncrement(block, offset, [note for _, note in state.damage[damage_before:]])


class TensorBoardFollower:
    """A TensorBoard run still being written, read a poll at a time: each poll reads only
    the bytes appended to its event files since the last one, files that appeared since
    included, and :meth:`run` builds the run from everything read so far."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.files: list[tuple[Path, str]] = []
        self.states: dict[Path, EventFileState] = {}
        self.offsets: dict[Path, int] = {}

    def poll(self, files: Sequence[tuple[Path, str]]) -> bool:
        """Read what was appended to ``files`` (the run's event files in run order, with
        their tag prefixes); whether anything new was read."""
        self.files = [(Path(path), prefix) for path, prefix in files]
        changed = False
        earlier: dict[str, str] = {}  # plugins named by the files before, as read so far
        for path, prefix in self.files:
            state = self.states.get(path)
            if state is None:
                state = self.states[path] = EventFileState(prefix, {})
                self.offsets[path] = 0
            for tag, plugin in earlier.items():
                state.run_plugins.setdefault(tag, plugin)
            offset = self.offsets[path]
            increment = read_event_file_increment(path, offset, state)
            changed |= increment.offset != offset or bool(increment.notes)
            self.offsets[path] = increment.offset
            for tag, (_, plugin) in state.first_metadata.items():
                earlier.setdefault(prefix + tag, plugin)
        return changed

    def run(self) -> Run:
        """The run as read so far; UnreadableInput while no file holds a record yet."""
        assembly = _RunAssembly()
        for path, _ in self.files:
            state = self.states[path]
            if state.not_an_event_file is not None:
                assembly.add_unreadable(path, state.not_an_event_file)
            elif state.walker.found_header:
                assembly.add(state.content())
            elif state.walker.corrupt_from is not None:
                assembly.add_unreadable(path, _NotAnEventFile(NoteKind.CORRUPT, _NO_HEADER_REASON))
            # else: nothing written yet
        return assembly.build(self.run_dir, [path for path, _ in self.files])


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

    def copy(self) -> _SkipTally:
        tally = _SkipTally()
        tally.counts = dict(self.counts)
        tally.tags = {kind: list(tags) for kind, tags in self.tags.items()}
        return tally

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


@dataclass(frozen=True)
class _Checkpoint:
    """An :class:`EventFileState` before a window was decoded (see ``_checkpoint``)."""

    walker: RecordWalker
    tag_codes: dict[str, int]
    codes: int  # how many local codes there were
    first_metadata: dict[str, tuple[int, str]]
    first_seen: dict[str, tuple[int, int]]
    histogram_counts: dict[str, int]
    tally: _SkipTally
    damage: int  # how many damage notes there were


@dataclass
class _Batch:
    """Points of one value slot of fast-path records that share a layout, one per record."""

    records: np.ndarray  # record numbers in the file
    slot: int  # which value of the record's summary
    codes: np.ndarray  # local tag codes
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray
    is_tensor: bool | np.ndarray  # for the protobuf path's batch, a mask


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


_EMPTY = np.empty(0)


def _place(column: np.ndarray, order: np.ndarray | None, out: np.ndarray) -> None:
    """Write ``column`` into ``out`` in the given order (None: as it is)."""
    if order is None:
        out[:] = column
    else:
        np.take(column, order, out=out)


class _PointColumns:
    """The points kept from a file: int32 tag code, int64 step, float64 wall time and value
    (28 bytes a point), grown window by window.

    Each column grows in place (``ndarray.resize``: a ``realloc`` that the C library serves
    for large blocks by remapping pages, so a column is never held twice, as growing by
    copying or concatenating at the end would); a column whose memory someone else still
    holds (a run built from it while the file is followed) is copied instead.
    """

    DTYPES = (np.int32, np.int64, np.float64, np.float64)

    def __init__(self) -> None:
        self.columns = [np.empty(0, dtype) for dtype in self.DTYPES]

    @property
    def count(self) -> int:
        return int(self.columns[0].size)

    def grow(self, added: int) -> list[np.ndarray]:
        """Room for ``added`` more points: the new slots of each column, to be filled."""
        start = self.count
        for index in range(len(self.columns)):
            try:
                # Called on the list item itself: a local name would be one reference too
                # many for resize's check that nothing else holds the array.
                self.columns[index].resize(start + added)
            except ValueError:
                grown = np.empty(start + added, self.DTYPES[index])
                grown[:start] = self.columns[index]
                self.columns[index] = grown
        return [column[start:] for column in self.columns]


class EventFileState:
    """What reading one event file has learnt so far, window after window: the record
    walk, the tags with their plugins and first appearances, what was skipped or damaged,
    the histograms and the points kept.

    ``run_plugins`` maps prefixed tags to the plugin named by earlier files of the run.
    """

    def __init__(self, prefix: str = "", run_plugins: dict[str, str] | None = None, *, reference: bool = False) -> None:
        self.prefix = prefix
        self.run_plugins = {} if run_plugins is None else run_plugins
        self.reference = reference
        self.path: Path | None = None
        self.walker = RecordWalker(predict=not reference)
        self.points = _PointColumns()
        self.tags: list[str] = []  # tags of the kept points' codes (unprefixed), first-logged order
        self.tag_codes: dict[str, int] = {}  # unprefixed tag -> local code
        self.final_codes: list[int] = []  # local code -> index in ``tags``, -1 before its first point
        self.first_metadata: dict[str, tuple[int, str]] = {}  # tag -> (record, plugin)
        self.first_seen: dict[str, tuple[int, int]] = {}  # tag -> (record, slot) of its first value
        self.histograms: dict[str, list[tuple[int, Histogram]]] = {}
        self.tally = _SkipTally()
        # Tensors dropped while their tag had no plugin yet: scalars and other tensors, by tag.
        self.unresolved_scalars: dict[str, int] = {}
        self.unresolved_tensors: dict[str, int] = {}
        self.damage: list[tuple[int, ReadNote]] = []  # (offset, note)
        self.not_an_event_file: _NotAnEventFile | None = None
        # The window being decoded; record numbers in it are local, ``first_record`` +
        # local in the file.
        self.data: FileData = b""
        self.base = 0
        self.first_record = 0
        self.records: Records | None = None
        self.batches: list[_Batch] = []
        self.slow = _SlowPoints()
        self.pending_tensors: list[tuple[int, str, int, float, tensor_pb2.TensorProto]] = []
        self.bad_payloads: list[int] = []  # file offsets of the window's records with a bad payload

    def bind(self, path: Path) -> None:
        """The file this state reads (notes name it); one state reads one file."""
        if self.path is not None and self.path != path:
            raise ValueError(f"this state reads {self.path}, not {path}")
        self.path = path

    def feed(self, data: FileData, base: int, limit: int | None) -> Records:
        """Decode the records of ``data``, the file's bytes from offset ``base`` (``limit``:
        where the file ends, None if unknown); the caller goes on at ``Records.end``."""
        while True:
            before = self._checkpoint()
            records = self.walker.walk(data, base, limit=limit)
            for problem in records.problems:
                self._damaged(problem.offset, problem.kind, problem.reason, problem.bytes_lost)
            if not records.starts.size:
                return records
            bad_payloads = self._decode_window(data, base, records)
            if not bad_payloads:
                self.first_record += int(records.starts.size)
                return records
            # The walk trusted the lengths of records whose payload is bad, and may have
            # skipped intact records inside them: forget this window's decoding and walk it
            # again, resynchronising after each (only damaged windows pay for this).
            self._restore(before)
            self.walker.mark_bad_payloads(bad_payloads)

    def _decode_window(self, data: FileData, base: int, records: Records) -> list[int]:
        """Decode and keep the records of a window; when some have a bad payload, keep
        nothing and return their file offsets."""
        self.data, self.base, self.records = data, base, records
        try:
            slow = np.arange(records.starts.size) if self.reference else self._decode_fast()
            self._decode_slow(slow)
            bad_payloads = self.bad_payloads
            if not bad_payloads:
                self._keep_window()
            return bad_payloads
        finally:
            self.data, self.records, self.bad_payloads = b"", None, []
            self.batches, self.slow, self.pending_tensors = [], _SlowPoints(), []

    def _checkpoint(self) -> _Checkpoint:
        """What decoding a window changes before its points are kept, to go back to."""
        return _Checkpoint(
            self.walker.copy(),
            dict(self.tag_codes),
            len(self.final_codes),
            dict(self.first_metadata),
            dict(self.first_seen),
            {tag: len(items) for tag, items in self.histograms.items()},
            self.tally.copy(),
            len(self.damage),
        )

    def _restore(self, checkpoint: _Checkpoint) -> None:
        """Go back to ``checkpoint`` (taken over: it is used once)."""
        self.walker = checkpoint.walker
        self.tag_codes = checkpoint.tag_codes
        del self.final_codes[checkpoint.codes:]
        self.first_metadata = checkpoint.first_metadata
        self.first_seen = checkpoint.first_seen
        for tag in list(self.histograms):
            if tag in checkpoint.histogram_counts:
                del self.histograms[tag][checkpoint.histogram_counts[tag] :]
            else:
                del self.histograms[tag]
        self.tally = checkpoint.tally
        del self.damage[checkpoint.damage :]

    def stopped(self, offset: int, error: OSError) -> None:
        """Reading failed at ``offset``: say so once (a followed file is read again and again)."""
        message = f"reading stopped: {error.strerror or error}"
        if not any(note.message == message for _, note in self.damage):
            self._note(offset, NoteKind.SKIPPED, message, None)

    def shrunk(self, offset: int, size: int) -> None:
        """A followed file became shorter than what was read of it (rewritten?)."""
        message = f"the file shrank to {size} bytes after {offset} had been read; the points read are kept"
        if not any(note.message == message for _, note in self.damage):
            self._note(size, NoteKind.INFO, message, None)

    def resolved_late(self) -> dict[str, str]:
        """Plugins that, known from the start, would have kept tensors this read dropped:
        prefixed tag -> plugin."""
        late = {tag: self._plugin_of(tag) for tag in self.unresolved_scalars}
        resolved = {tag: plugin for tag, plugin in late.items() if plugin == SCALARS_PLUGIN}
        for tag in self.unresolved_tensors:
            if self._plugin_of(tag) == HISTOGRAMS_PLUGIN:
                resolved[tag] = HISTOGRAMS_PLUGIN
        return {self.prefix + tag: plugin for tag, plugin in resolved.items()}

    def content(self, *, final: bool = False) -> _FileContent:
        """Everything read so far.  ``final``: reading is over, the columns are handed over
        (not copied) and the state is done."""
        assert self.path is not None
        codes, steps, wall_times, values = self.points.columns
        tags = self.tags
        order = sorted(range(len(tags)), key=lambda code: self.first_seen[tags[code]])
        if order != list(range(len(tags))):
            # A tag first seen among dropped tensors got its code when it had its first
            # point: recode so tags go in first-seen order.
            renumber = np.empty(len(tags), np.int32)
            renumber[order] = np.arange(len(tags), dtype=np.int32)
            codes, tags = renumber[codes], [tags[code] for code in order]
        scalars = _FileScalars(self.path, [self.prefix + tag for tag in tags], codes, steps, wall_times, values)
        if final:
            self.points = _PointColumns()
        histograms = {
            self.prefix + tag: [histogram for _, histogram in sorted(items, key=lambda item: item[0])]
            for tag, items in self.histograms.items()
        }
        notes = [note for _, note in sorted(self.damage, key=lambda item: item[0])]
        skipped = self._tally_with_unresolved().note(self.path)
        if skipped is not None:
            notes.append(skipped)
        plugins = {self.prefix + tag: plugin for tag, (_, plugin) in self.first_metadata.items()}
        return _FileContent(scalars, histograms, plugins, notes)

    def _tally_with_unresolved(self) -> _SkipTally:
        """The skip tally, with the tensors dropped for want of a plugin counted under the
        plugin their tag has now."""
        tally = self.tally.copy()
        for tag, count in self.unresolved_scalars.items():
            plugin = self._plugin_of(tag)
            tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)
        for tag, count in self.unresolved_tensors.items():
            plugin = self._plugin_of(tag)
            if plugin in (HISTOGRAMS_PLUGIN, SCALARS_PLUGIN):
                tally.add("malformed", tag, count)
            else:
                tally.add(_PLUGIN_SKIP_KIND.get(plugin, plugin), tag, count)
        return tally

    # -- helpers -------------------------------------------------------------------------

    def _code(self, tag: str) -> int:
        code = self.tag_codes.setdefault(tag, len(self.tag_codes))
        if code == len(self.final_codes):
            self.final_codes.append(-1)
        return code

    def _saw_point(self, tag: str, record: int, slot: int) -> None:
        seen = (self.first_record + record, slot)
        if tag not in self.first_seen or seen < self.first_seen[tag]:
            self.first_seen[tag] = seen

    def _saw_template(self, template: _Template, record: int) -> None:
        for slot, value in enumerate(template.slots):
            self._saw_point(value.tag, record, slot)
            self._saw_metadata(value.tag, record, value.plugin)

    def _saw_metadata(self, tag: str, record: int, plugin: str) -> None:
        record += self.first_record
        if plugin and (tag not in self.first_metadata or record < self.first_metadata[tag][0]):
            self.first_metadata[tag] = (record, plugin)

    def _note(self, offset: int, kind: NoteKind, reason: str, count: int | None) -> None:
        assert self.path is not None
        self.damage.append((offset, ReadNote(kind, str(self.path), reason, location=f"offset {offset}", count=count)))

    def _damaged(self, offset: int, kind: NoteKind, reason: str, bytes_lost: int) -> None:
        self._note(offset, kind, reason, bytes_lost)

    def _bad_payload(self, record: int) -> None:
        assert self.records is not None
        self.bad_payloads.append(self.base + int(self.records.starts[record]))

    def _corrupt_record(self, record: int, reason: str) -> None:
        assert self.records is not None
        start = self.base + int(self.records.starts[record])
        length = int(self.records.lengths[record])
        self._damaged(start, NoteKind.CORRUPT, f"{reason}; record skipped", length + FRAMING_BYTES)

    def _plugin_of(self, tag: str) -> str:
        """The plugin of an unprefixed tag: named by earlier files of the run, else by this
        one so far; "" while none is known."""
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
                self._bad_payload(record)
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
                self._bad_payload(record)
                continue
            payload = bytes(data[start + HEADER_BYTES : start + HEADER_BYTES + length])
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
                    (self.first_record + record, _proto_histogram(step, wall_time, value.histo))
                )
            elif kind in ("image", "audio"):
                self.tally.add("images" if kind == "image" else "audio")
            elif kind is None:  # plugin data without a value (hparams, ...)
                plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
                self.tally.add(plugin or "empty", tag)
            else:
                self.tally.add(kind, tag)

    # -- keeping a window's points -------------------------------------------------------

    def _keep_window(self) -> None:
        """Append the window's points to the columns in file order, tensors of tags outside
        the scalars plugin left out, and resolve its other tensors."""
        scalar_tag = np.array([self._plugin_of(tag) == SCALARS_PLUGIN for tag in self.tag_codes], bool)
        # Values of a record in summary order: fast batches by slot, then the protobuf path's
        # points (already in record and slot order; no record is in both).
        batches = [self._kept(batch, scalar_tag) for batch in sorted(self.batches, key=lambda b: b.slot)]
        batches.append(self._kept(self._slow_batch(), scalar_tag))
        self.batches = []
        batches = [batch for batch in batches if batch.records.size]
        if batches:
            self._append(batches)
        self._resolve_tensors()

    def _append(self, batches: list[_Batch]) -> None:
        def joined(name: str) -> np.ndarray:
            """One column of all batches; the batches let go of it (so a column's parts
            are freed once it is placed, whichever batches shared them)."""
            parts = [getattr(batch, name) for batch in batches]
            for batch in batches:
                setattr(batch, name, _EMPTY)
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        # One stable sort merges the batches (each sorted by record) into file order.
        order = None if len(batches) == 1 else np.argsort(joined("records"), kind="stable")
        local_codes = joined("codes")
        # Tags with their first points in this window take the next codes, in first-seen order.
        local_tags = list(self.tag_codes)
        present = np.flatnonzero(np.bincount(local_codes, minlength=len(local_tags))).tolist()
        new = [code for code in present if self.final_codes[code] < 0]
        for code in sorted(new, key=lambda code: self.first_seen[local_tags[code]]):
            self.final_codes[code] = len(self.tags)
            self.tags.append(local_tags[code])
        codes = np.array(self.final_codes, np.int32).take(local_codes)
        del local_codes
        # Column by column, so that the transient arrays of one column exist at a time.
        slots = self.points.grow(codes.size)
        _place(codes, order, slots[0])
        del codes
        for name, out in zip(("steps", "wall_times", "values"), slots[1:]):
            _place(joined(name), order, out)

    def _kept(self, batch: _Batch, scalar_tag: np.ndarray) -> _Batch:
        """The batch without tensor values of tags outside the scalars plugin: counted as
        skipped, or as unresolved while their tag has no plugin yet."""
        if batch.is_tensor is False:
            return batch
        keep = scalar_tag.take(batch.codes)
        if batch.is_tensor is not True:  # a mask: the protobuf path's mix of both
            keep |= ~batch.is_tensor
        if bool(keep.all()):
            return batch
        local_tags = list(self.tag_codes)
        for code, count in enumerate(np.bincount(batch.codes[~keep], minlength=len(local_tags)).tolist()):
            if not count:
                continue
            tag = local_tags[code]
            if self._plugin_of(tag):
                self._skip_tensor(tag, count)
            else:
                self.unresolved_scalars[tag] = self.unresolved_scalars.get(tag, 0) + count
        return _Batch(
            batch.records[keep],
            batch.slot,
            batch.codes[keep],
            batch.steps[keep],
            batch.wall_times[keep],
            batch.values[keep],
            True,
        )

    def _slow_batch(self) -> _Batch:
        """The protobuf path's points as one batch."""
        slow = self.slow
        return _Batch(
            np.frombuffer(slow.records, np.int64),
            0,
            np.frombuffer(slow.codes, np.int64).astype(np.int32),
            np.frombuffer(slow.steps, np.int64),
            np.frombuffer(slow.wall_times, np.float64),
            np.frombuffer(slow.values, np.float64),
            np.frombuffer(slow.is_tensor, np.int8).astype(bool),
        )

    def _resolve_tensors(self) -> None:
        """Histograms (TF2 tensor form) of the window; other tensors are counted as skipped,
        or as unresolved while their tag has no plugin yet."""
        for record, tag, step, wall_time, tensor in self.pending_tensors:
            plugin = self._plugin_of(tag)
            if not plugin:
                self.unresolved_tensors[tag] = self.unresolved_tensors.get(tag, 0) + 1
                continue
            histogram = _tensor_histogram(step, wall_time, tensor) if plugin == HISTOGRAMS_PLUGIN else None
            if histogram is not None:
                self.histograms.setdefault(tag, []).append((self.first_record + record, histogram))
            elif plugin in (HISTOGRAMS_PLUGIN, SCALARS_PLUGIN):
                self.tally.add("malformed", tag)
            else:
                self._skip_tensor(tag)
