"""Gzipped logs and standard input: byte streams that :mod:`~rundoctor.readers.files` hands
to the readers like any file.

A gzipped file (a name ending ``.gz`` whose bytes start like gzip) is read decompressed, as a
stream (:class:`InflatingFile`), never inflated whole: memory is one compressed chunk plus
what the reader asks for.  One file gives at most :data:`MAX_INFLATED_BYTES` decompressed
bytes, so a decompression bomb (1 MB of zeros inflates to 1 GB) costs no more than a plain
log of that size; where a stream stops before its end (cut at that bound, cut short, or
corrupt) :func:`take_stream_notes` says where and why, and discovery turns it into a read
note.  Its format is claimed by its name without ``.gz`` (:func:`logical_name`).

Standard input (``-``) is copied to a temporary file by :func:`spool_stdin`, up to
:data:`STDIN_MAX_BYTES`, so that the readers, which seek and read again, read it like a file.
"""

from __future__ import annotations

import io
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


GZIP_MAGIC = b"\x1f\x8b"
# The most decompressed bytes read from one .gz file: as much as the largest plain logs
# rundoctor is measured on, and what bounds a decompression bomb (a 1 MB file of zeros
# inflates to 1 GB): past it the rest is not read and a note says so.
MAX_INFLATED_BYTES = 1 << 30
# Compressed bytes read at a time; a call decompresses at most what its buffer holds.
_INFLATE_CHUNK = 1 << 16
# Compressed bytes given to zlib at a time: a call that meets corrupt data gives nothing back,
# so a corrupt stretch costs at most the output of this much input.
_FEED_BYTES = 4096
# The most bytes taken from standard input (spooled to a temporary file).
STDIN_MAX_BYTES = 1 << 30
# Why a gzip stream ended before its end (cut at the bound, cut short, corrupt), by file
# name: (decompressed bytes read, reason), until discovery takes them (take_stream_notes).
_STREAM_NOTES: dict[str, tuple[int, str]] = {}


def logical_name(name: str) -> str:
    """The name a file's format is claimed by: without a ``.gz`` ending (``metrics.csv.gz``
    is a ``metrics.csv``)."""
    return name[:-3] if name.lower().endswith(".gz") and len(name) > 3 else name


def is_gzip_name(path: Path) -> bool:
    """Whether the name says gzip (its bytes decide: see :func:`open_binary`)."""
    return logical_name(Path(path).name) != Path(path).name


def take_stream_notes(path: Path) -> tuple[int, str] | None:
    """Where and why the last read of a gzipped file stopped before its end, once; None
    when it was read to its end."""
    return _STREAM_NOTES.pop(str(path), None)


class InflatingFile(io.RawIOBase):
    """A gzipped file read decompressed, a buffer at a time (memory: one compressed chunk and
    what the caller asks for), up to ``limit`` decompressed bytes.  Concatenated members are
    read on; a stream cut short, corrupt, or cut at the bound ends reading there and is noted
    (:func:`take_stream_notes`).  Seeking forward reads on; seeking back starts again."""

    def __init__(self, open_compressed: Callable[[], io.RawIOBase], path: Path, *, limit: int | None = None) -> None:
        super().__init__()
        self._open_compressed = open_compressed
        self.name = str(path)
        self.limit = MAX_INFLATED_BYTES if limit is None else limit
        self._source = open_compressed()
        self._start()

    def _start(self) -> None:
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._chunk = b""  # compressed bytes read, from self._offset on not yet decompressed
        self._offset = 0
        self._position = 0
        self._done = False

    def readable(self) -> bool:
        """Always: opened for reading."""
        return True

    def seekable(self) -> bool:
        """Yes, by reading on or starting again."""
        return True

    def tell(self) -> int:
        """The position in the decompressed bytes."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a decompressed offset (back: decompress again from the start)."""
        target = offset + (self._position if whence == io.SEEK_CUR else 0)
        if whence == io.SEEK_END or target < 0:
            raise io.UnsupportedOperation("a gzipped file seeks only from its start")
        if target < self._position:
            self._source.close()
            self._source = self._open_compressed()
            self._start()
        scratch = bytearray(min(_INFLATE_CHUNK, max(target - self._position, 1)))
        while self._position < target:
            if not self.readinto(memoryview(scratch)[: target - self._position]):
                break
        return self._position

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` with decompressed bytes; 0 at the end (or where reading stopped)."""
        view = memoryview(buffer).cast("B")
        while not self._done and len(view):
            room = min(len(view), self.limit - self._position)
            if room <= 0:
                if self._more_follows():
                    self._stop(f"decompressed to {self.limit:,} bytes, the most read of a .gz file: the rest is not read")
                self._done = True
                break
            data = self._inflate(room)
            if data is None:
                self._done = True
                break
            if data:
                view[: len(data)] = data
                self._position += len(data)
                return len(data)
        return 0

    def _inflate(self, max_length: int) -> bytes | None:
        """Up to ``max_length`` decompressed bytes (empty when input went in and nothing came
        out yet); None at the end of the stream, noted when it ended early or is corrupt."""
        if self._offset >= len(self._chunk):
            self._chunk, self._offset = self._source.read(_INFLATE_CHUNK) or b"", 0
            if not self._chunk:
                if self._inflater.eof:
                    return None
                held = self._inflater.decompress(b"", max_length)  # output zlib still holds
                if held:
                    return held
                self._stop("the compressed stream ends early (a cut .gz file): read up to here")
                return None
        if self._inflater.eof:  # another member follows (concatenated gzip files)
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        feed = self._chunk[self._offset : self._offset + _FEED_BYTES]
        try:
            data = self._inflater.decompress(feed, max_length)
        except zlib.error as error:
            self._stop(f"corrupt compressed data ({error}): read up to here")
            return None
        left = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        self._offset += len(feed) - len(left)
        return data

    def _more_follows(self) -> bool:
        """Whether the stream gives another decompressed byte (it is lost: reading stops)."""
        while True:
            data = self._inflate(1)
            if data is None:
                return False
            if data:
                return True

    def _stop(self, reason: str) -> None:
        _STREAM_NOTES[self.name] = (self._position, reason)
        self._done = True

    def close(self) -> None:
        """Close the compressed file too."""
        if not self.closed:
            self._source.close()
        super().close()


def spool_stdin(folder: Path, stream: BinaryIO | None = None) -> tuple[Path, bool]:
    """Standard input copied to a file in ``folder`` (named ``stdin``, or ``stdin.gz`` when
    gzipped, so it is read decompressed), a chunk at a time, up to :data:`STDIN_MAX_BYTES`;
    and whether it held more (the rest is not read)."""
    source = stream if stream is not None else sys.stdin.buffer
    chunk = source.read(_INFLATE_CHUNK) or b""
    target = folder / ("stdin.gz" if chunk.startswith(GZIP_MAGIC) else "stdin")
    written = 0
    with open(target, "wb") as spool:
        while chunk:
            keep = chunk[: STDIN_MAX_BYTES - written]
            spool.write(keep)
            written += len(keep)
            if len(keep) < len(chunk):
                return target, True
            chunk = source.read(_INFLATE_CHUNK) or b""
    return target, False
