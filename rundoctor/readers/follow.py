"""Following a run still being written (``rundoctor watch``): how each reader's logs are read
a poll at a time.  A reader names one of these in its ``follow`` (TensorBoard has its own).

- :func:`appended_lines`: logs that grow by whole lines (CSV with its header line in front,
  JSON lines).  Only the complete lines appended since the last poll go through the log's
  own reader, and their points are appended to the run.  A line still being written waits
  for its newline (writers flush in buffer-sized pieces, so a cut line can sit there for
  minutes).  A log whose header line changed was rewritten (Lightning rewrites its file
  when a new metric appears) and is read again whole.  Readers take paths, not bytes, so
  the new lines pass through a scratch file named like the log.  Their notes would count
  lines from that file's start: when the new lines give any note but an informational one
  (a junk cell, a bad line, a repeated step), the log's complete lines are read again whole
  instead, so that every line number is right.  Informational notes stay as the last whole
  read found them.
- :func:`whole_lines`: logs that grow by lines but whose points depend on the whole file
  (mmdetection: a train point's step depends on the largest iteration in the file): read
  whole, once they end with a complete line.
- :func:`rewritten`: documents that are rewritten, not appended (``trainer_state.json``, a
  Keras history) and MLflow runs: read again whole when they change.  After the first
  poll, such a log is read once it has not changed for one poll, so that a file caught
  half-rewritten is not read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rundoctor.readers import files
from rundoctor.readers.base import ReadRun, RunSource, UnreadableInput
from rundoctor.series import NoteKind, Run, RunBuilder


class Follower(Protocol):
    """How ``watch`` reads one run a poll at a time; made by a reader's ``follow`` function."""

    def update(self, source: RunSource) -> Run | None:
        """The run as read so far if it changed since the last call, else None."""


@dataclass(frozen=True)
class FollowContext:
    """What a follower is made with: the run, how to read it, where scratch files go and
    whether the watch is at its first poll (logs there then are taken as complete)."""

    source: RunSource
    read: ReadRun
    scratch: Path
    first_poll: bool


FollowerFactory = Callable[[FollowContext], Follower]


def appended_lines(*, header: bool) -> FollowerFactory:
    """Logs that grow by lines, read a poll's new lines at a time; ``header``: a CSV, whose
    first line goes in front of the new lines."""
    return lambda context: _LineLog(context.read, context.scratch, header=header, whole=False)


def whole_lines(context: FollowContext) -> Follower:
    """A follower for logs that grow by lines but are read whole (once they end with a complete
    line), because a point depends on the whole file."""
    return _LineLog(context.read, context.scratch, header=False, whole=True)


def rewritten(context: FollowContext) -> Follower:
    """A follower for documents rewritten in place, read whole once they hold still for a poll
    (at once for those there at the first poll)."""
    # Documents there at the start are taken as complete; later ones once they hold still.
    return Rewritten(context.read, settled=context.first_poll)


# The most bytes appended since the last poll that are read into memory at once (to pass
# through a scratch file); more, and the log is read again whole by its reader, which reads
# a chunk at a time and skips over-long lines (see files.open_lines).
_MOST_APPENDED = 64 << 20


class _LineLog:
    """A log that grows by lines: the first read and any read after damage take the whole
    file, the others the complete lines appended since (see the module docstring)."""

    def __init__(self, read: ReadRun, scratch: Path, *, header: bool, whole: bool) -> None:
        self.read = read
        self.scratch = scratch
        self.with_header = header
        self.whole = whole
        self.offset = 0  # bytes of complete lines read
        self.header = b""
        self.run: Run | None = None
        self.scratch_file: Path | None = None

    def update(self, source: RunSource) -> Run | None:
        path = source.files[0][0]
        size = files.stat(path).st_size
        if size == self.offset and self.run is not None:
            return None
        with files.open_binary(path) as file:
            header = file.readline(files.MAX_LINE_BYTES + 1) if self.with_header else b""
            if self.run is None or self.whole or size < self.offset or header != self.header:
                return self._read_whole(source, size)  # the first read, or the log was rewritten
            if size - self.offset > _MOST_APPENDED:
                return self._read_whole(source, size)  # read by the reader, a bounded chunk at a time
            file.seek(self.offset)
            appended = file.read(size - self.offset)
        complete = appended.rfind(b"\n") + 1
        if not complete:
            return None  # a line still being written
        part = self._read_lines(source, appended[:complete])
        if part is None or any(note.kind is not NoteKind.INFO for note in part.notes):
            return self._read_whole(source, size)  # exact line numbers in the notes
        self.run = _appended(self.run, part)
        self.offset += complete
        return self.run

    def _read_whole(self, source: RunSource, size: int) -> Run | None:
        """The whole log, if it ends with a complete line and does not grow while read."""
        path = source.files[0][0]
        if size == 0 or not _ends_with_newline(path, size):
            return None  # a line still being written
        run = self.read(source)
        if files.stat(path).st_size != size:
            return None  # lines were appended while it was read: next poll
        with files.open_binary(path) as file:
            self.header = file.readline(files.MAX_LINE_BYTES + 1) if self.with_header else b""
        self.offset, self.run = size, run
        return run

    def _read_lines(self, source: RunSource, lines: bytes) -> Run | None:
        """The points of ``lines`` (complete lines of the log) through its reader."""
        path = source.files[0][0]
        if self.scratch_file is None:
            self.scratch_file = Path(tempfile.mkdtemp(dir=self.scratch)) / path.name
        self.scratch_file.write_bytes(self.header + lines)
        part_source = RunSource(source.reader, self.scratch_file, [(self.scratch_file, "")])
        try:
            return self.read(part_source)
        except UnreadableInput:
            return None


def _ends_with_newline(path: Path, size: int) -> bool:
    with files.open_binary(path) as file:
        file.seek(size - 1)
        return file.read(1) == b"\n"


def _appended(run: Run, part: Run) -> Run:
    """``run`` with the points of ``part`` after its own; the rest as ``run`` has it."""
    builder = RunBuilder()
    for piece in (run, part):
        lut = np.array([builder.code(tag) for tag in piece.tag_names], np.int32)
        builder.add_coded(lut[piece.tag_codes], piece.steps, piece.values, piece.wall_times)
    return builder.build(
        id=run.id,
        path=run.path,
        format=run.format,
        sources=run.sources,
        x_axis=run.x_axis,
        tag_axes={**part.tag_axes, **run.tag_axes},
        notes=run.notes,
        histograms=run.histograms,
        metadata=run.metadata,
        hparams=run.hparams,
    )


class Rewritten:
    """A log read again whole when it changed: at once while ``settled``, as at the first
    poll, later once it has not changed for one poll (a document caught half-rewritten is
    not read).  ``watch --once`` follows every log this way, settled: read whole, as it is."""

    def __init__(self, read: ReadRun, *, settled: bool) -> None:
        self.read = read
        self.settled = settled
        self.seen: tuple[tuple[str, int, int], ...] | None = None
        self.last_read: tuple[tuple[str, int, int], ...] | None = None

    def update(self, source: RunSource) -> Run | None:
        """The run read whole, or None when the log is unchanged, changed since the last poll (read
        when it holds still) or changed during the read."""
        signature = _signature(source)
        if signature == self.last_read:
            return None
        if signature != self.seen and not self.settled:
            self.seen = signature  # changed since the last poll: read it when it holds still
            return None
        self.settled = False
        run = self.read(source)
        if _signature(source) != signature:
            return None
        self.seen = self.last_read = signature
        return run


def _signature(source: RunSource) -> tuple[tuple[str, int, int], ...]:
    """Size and modification time of every file of the run (an MLflow run's whole tree)."""
    paths = [path for path, _ in source.files] or files.files_below(source.path)
    signature = []
    for path in paths:
        try:
            status = files.stat(path)
        except OSError:
            continue
        signature.append((str(path), status.st_size, status.st_mtime_ns))
    return tuple(signature)
