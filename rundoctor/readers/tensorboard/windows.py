"""Windowed I/O: an event file fed to its decoder through one reused buffer, whole or from an offset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rundoctor.readers import files
from rundoctor.readers.files import BinaryFile
from rundoctor.readers.tensorboard.columns import _FileContent
from rundoctor.readers.tensorboard.state import EventFileState
from rundoctor.readers.tensorboard.values import (
    _LFS_POINTER,
    _LFS_REASON,
    _NO_HEADER_REASON,
    _NotAnEventFile,
)
from rundoctor.series import NoteKind, ReadNote


def _read_event_file(path: Path, prefix: str, run_plugins: dict[str, str], reference: bool) -> _FileContent:
    """Everything one event file holds, read window by window."""
    state = EventFileState(prefix, run_plugins, reference=reference)
    state.bind(path)
    try:
        with files.open_binary(path, unbuffered=True) as handle:
            size = files.size_of(handle)
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


def _read_span(handle: BinaryFile, state: EventFileState, start: int, stop: int, *, final: bool) -> int:
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


def _fill(handle: BinaryFile, view: memoryview) -> int:
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
        with files.open_binary(path, unbuffered=True) as handle:
            size = files.size_of(handle)
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
