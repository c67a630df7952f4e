"""What a CSV file's raw bytes say about its rows, counted a chunk at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rundoctor.readers import files

# Bytes scanned at a time when counting commas and line ends: small enough to stay in cache.
_SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class _ByteShape:
    """What the raw bytes say about rows: their commas, whether a row may span lines or have
    more fields than pandas kept, and NUL bytes (a crash's leftovers, reported by the line path)."""

    commas: int
    lines: int | None  # counted only when a quote could hide a line end inside a field
    last_line_commas: int | None  # set when the last line has no line end
    uneven: bool  # a data line with other commas than a row has
    nul: bool

    @classmethod
    def of(cls, path: Path, row_commas: int) -> _ByteShape:
        # Read in chunks, never memory-mapped: a file truncated while mapped (Lightning's
        # CSVLogger rewrites metrics.csv in place) would kill the process with SIGBUS.  The
        # bytes are those pandas parsed: over-long lines left out.
        with files.open_lines(path) as handle:
            scan = _ByteScan()
            for chunk in _chunks(handle):
                scan.add(chunk)
        lines: int | None = None
        # pandas silently drops the extra fields of the first row (and then takes later
        # rows of that length too); a later long row makes it raise.  A quoted comma
        # defeats counting, so a file with quotes has every line checked.
        uneven = scan.first_row_commas > row_commas
        if scan.quoted:
            with files.open_lines(path) as handle:
                line_scan = _LineScan(row_commas)
                for chunk in _chunks(handle):
                    line_scan.add(chunk)
            lines, uneven = line_scan.lines, line_scan.uneven
        return cls(scan.commas, lines, None if scan.terminated else scan.last_line_commas, uneven, scan.nul)

    def cut_last_line_fields(self, columns: int) -> int | None:
        """Fields on the last line when it was cut while being written (no line end, too few)."""
        if self.last_line_commas is None or self.last_line_commas >= columns - 1:
            return None
        return self.last_line_commas + 1


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The rest of an open file, ``_SCAN_CHUNK`` bytes at a time."""
    while chunk := handle.read(_SCAN_CHUNK):
        yield chunk


class _ByteScan:
    """One pass over a file's chunks: its commas, quotes, NUL bytes, the commas of its first
    data row and of its last line.  Each chunk costs a numpy count and a few memchr-speed
    finds (~10 ms each for 200 MB)."""

    def __init__(self) -> None:
        self.commas = 0
        self.quoted = False
        self.nul = False
        self.terminated = False  # the last byte read is a line end
        self.last_line_commas = 0  # commas after the last line end read
        self.first_row_commas = 0  # commas between the first and second line ends
        self._line_ends_seen = 0  # up to 2: where the first row is

    def add(self, chunk: bytes) -> None:
        commas = int(np.count_nonzero(np.frombuffer(chunk, np.uint8) == ord(",")))
        self.commas += commas
        self.quoted = self.quoted or chunk.find(b'"') >= 0
        self.nul = self.nul or chunk.find(b"\x00") >= 0
        self.terminated = chunk.endswith(b"\n")
        last_end = chunk.rfind(b"\n")
        self.last_line_commas = self.last_line_commas + commas if last_end < 0 else chunk.count(b",", last_end + 1)
        position = 0
        while self._line_ends_seen < 2:
            end = chunk.find(b"\n", position)
            if self._line_ends_seen == 1:
                self.first_row_commas += chunk.count(b",", position, len(chunk) if end < 0 else end)
            if end < 0:
                break
            self._line_ends_seen, position = self._line_ends_seen + 1, end + 1


class _LineScan:
    """Whether a data line (the header aside) has other than ``row_commas`` commas, and how
    many lines there are; a last line without a line end may have fewer commas (it was cut).
    Vectorised a chunk at a time: the commas before each line end come from one
    searchsorted, never a loop per line."""

    def __init__(self, row_commas: int) -> None:
        self.row_commas = row_commas
        self._uneven_line = False  # a line that ended had other commas than a row
        self._line_ends = 0
        self._commas_before = 0  # commas before the chunk
        self._last_end: int | None = None  # commas before the latest line end, None before the header's
        self._terminated = False

    def add(self, chunk: bytes) -> None:
        data = np.frombuffer(chunk, np.uint8)
        commas = np.flatnonzero(data == ord(","))
        line_ends = np.flatnonzero(data == ord("\n"))
        at_ends = np.searchsorted(commas, line_ends) + self._commas_before
        if at_ends.size:
            previous = at_ends[:-1] if self._last_end is None else np.concatenate(([self._last_end], at_ends[:-1]))
            ends_uneven = at_ends[len(at_ends) - len(previous) :] - previous != self.row_commas
            self._uneven_line = self._uneven_line or bool(ends_uneven.any())
            self._last_end = int(at_ends[-1])
        self._commas_before += commas.size
        self._line_ends += line_ends.size
        self._terminated = chunk.endswith(b"\n")

    @property
    def uneven(self) -> bool:
        """A line with other commas than a row, or a last line (no line end) with more."""
        tail = 0 if self._last_end is None else self._commas_before - self._last_end
        return self._uneven_line or tail > self.row_commas

    @property
    def lines(self) -> int:
        return self._line_ends + (0 if self._terminated else 1)
