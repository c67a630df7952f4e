"""File access: every byte discovery, the readers and ``watch`` read goes through here.

One module so that another file system (fsspec, an object store) plugs in at one place:
these functions take the paths discovery found and return what the local file system
would.  Readers never call ``open``, ``Path.open``, ``read_bytes`` or ``os.walk`` themselves.

Two guarantees hold for every file opened here, because logs are untrusted input:

- **Only regular files are opened.**  A FIFO would block the open (and every read) until
  some writer came; a device can be endless (``/dev/zero``) or act on being opened (a tape
  rewinds, a watchdog arms); a socket cannot be opened at all.  The path is checked first,
  following symlinks, and what is not a regular file is never opened
  (:class:`NotRegularFile`).  A FIFO swapped in between that check and the open cannot
  block either: the open is non-blocking (``O_NONBLOCK``, returning at once on a FIFO with
  no writer) and the descriptor is checked again with ``fstat`` before a byte is read.
- **A file is read up to the size it had when opened.**  Bytes appended while it is read
  wait for the next read (``watch`` reads them), so a log written faster than it is read
  cannot keep a reader busy for ever; a file cut meanwhile just ends early.

Text logs are also read with a bound on a line (:func:`open_lines`): a line longer than
:data:`MAX_LINE_BYTES` is skipped in bounded memory, not gathered into one string.

Three more sources come through the same functions, so that every reader reads them:

- **URLs of object stores and web servers** (``s3://``, ``gs://``, ``az://``, ``hf://``,
  ``http(s)://``): :mod:`~rundoctor.readers.remote` opens, lists and stats them, with the
  same two guarantees in their remote form.  ``file://`` URLs are local paths.
- **Gzipped files** (a name ending ``.gz`` and bytes that start like gzip): read
  decompressed, as a bounded stream (:mod:`~rundoctor.readers.streams`).
- **Standard input** (``-``): spooled to a temporary file first (:mod:`~rundoctor.readers.streams`).
"""

from __future__ import annotations

import errno
import io
import os
import stat as stat_module
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rundoctor.readers import remote, streams

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# O_NONBLOCK: an open never waits for a FIFO's writer; O_NOCTTY: a terminal device never
# becomes the controlling terminal.  Both only matter in the race the check before the open
# cannot close; O_CLOEXEC keeps descriptors out of child processes.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# What a file that is not a regular file is, by the type bits of its mode.
_KINDS = (
    (stat_module.S_ISFIFO, "a FIFO"),
    (stat_module.S_ISSOCK, "a socket"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
    (stat_module.S_ISDIR, "a directory"),
)


class NotRegularFile(OSError):
    """Raised instead of opening what is not a regular file (a FIFO, socket, device or directory)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(errno.EINVAL, not_opened(kind), str(path))


def not_opened(kind: str) -> str:
    """What is said of a file of this kind (see :func:`kind_of`), never opened."""
    return f"{kind}, not a regular file: not opened"


def kind_of(mode: int) -> str | None:
    """What a file of this ``st_mode`` is ("a FIFO", "a character device", ...), None for a
    regular file."""
    if stat_module.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


class SizedFile(io.FileIO):
    """A file opened for reading that ends where it ended when opened (see the module
    docstring): reads stop at ``limit`` even when the file has grown since."""

    def __init__(self, fd: int, path: Path, limit: int) -> None:
        super().__init__(fd, "rb", closefd=True)
        self.name = str(path)
        self.limit = limit

    def _room(self) -> int:
        return max(self.limit - self.tell(), 0)

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer``, up to the size the file had when opened."""
        view = memoryview(buffer).cast("B")
        room = self._room()
        if room < len(view):
            view = view[:room]
        return super().readinto(view) if len(view) else 0

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative), not past the size at open."""
        if size is None or size < 0:
            return self.readall()
        room = self._room()
        return super().read(min(size, room)) if room else b""

    def readall(self) -> bytes:
        """The rest of the file, up to the size it had when opened (a read that comes back
        short, the file cut meanwhile, ends it)."""
        parts = []
        while room := self._room():
            part = super().read(room)  # one read(2) returns at most ~2 GiB: loop
            if not part:
                break
            parts.append(part)
        return b"".join(parts)


# What open_binary returns: all read, seek and readinto.
BinaryFile = io.BufferedReader | io.RawIOBase


def open_binary(path: Path, *, unbuffered: bool = False) -> BinaryFile:
    """The regular file (or object) at ``path`` opened for reading bytes, up to its size at
    open, decompressed when gzipped; ``unbuffered`` for readers that ``readinto`` their own
    buffer (no copy through a second one).  The caller closes it.  :class:`NotRegularFile`
    (an OSError) for anything else, which is never opened."""
    raw = _open_raw(path)
    try:
        if streams.is_gzip_name(path) and raw.read(len(streams.GZIP_MAGIC)) == streams.GZIP_MAGIC:
            raw.close()
            raw = streams.InflatingFile(lambda: _open_raw(path), path)
        else:
            raw.seek(0)
    except BaseException:
        raw.close()
        raise
    return raw if unbuffered else io.BufferedReader(raw, buffer_size=1 << 16)


def _open_raw(path: Path) -> io.RawIOBase:
    """The file's bytes as stored (see :func:`open_binary`)."""
    url = remote.url_of(path)
    if url is not None:
        return remote.RemoteFile(path, url)
    local = remote.local_path(Path(path))
    kind = kind_of(os.stat(local).st_mode)
    if kind is not None:
        raise NotRegularFile(path, kind)
    fd = os.open(local, _OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        kind = kind_of(status.st_mode)
        if kind is not None:  # swapped in since the check: a FIFO opened non-blocking is harmless
            raise NotRegularFile(path, kind)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # no meaning for a regular file; plain reads from here
        return SizedFile(fd, path, status.st_size)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path) -> bytes:
    """The whole file's bytes (see :func:`read_head` for only its start)."""
    with open_binary(path) as handle:
        return handle.read()


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes (fewer when the file is shorter)."""
    with open_binary(path) as handle:
        return handle.read(size)


def size_of(handle: BinaryFile) -> int:
    """The size of an open file, as it is now (of an object, as listed; of a gzipped file,
    the most it may give: its real size is known only once read)."""
    raw: object = handle.raw if isinstance(handle, io.BufferedReader) else handle
    if isinstance(raw, remote.RemoteFile):
        return raw.size
    if isinstance(raw, streams.InflatingFile):
        return raw.limit
    return os.fstat(handle.fileno()).st_size


def stat(path: Path) -> os.stat_result:
    """The file's status (size, modification time), following symlinks; OSError when it is gone."""
    url = remote.url_of(path)
    return remote.stat(url) if url is not None else os.stat(remote.local_path(Path(path)))


def lstat(path: Path) -> os.stat_result:
    """The status of ``path`` itself, a symlink not followed; OSError when it is gone."""
    url = remote.url_of(path)
    return remote.stat(url) if url is not None else os.lstat(remote.local_path(Path(path)))


def _is(path: Path, test: Callable[[int], bool]) -> bool:
    try:
        return test(stat(path).st_mode)
    except remote.MissingExtra:  # not "missing": the file system to ask is not installed
        raise
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """True for a regular file (or a symlink to one, or an object); False when missing."""
    return _is(path, stat_module.S_ISREG)


def is_dir(path: Path) -> bool:
    """True for a directory (or a symlink to one, or a prefix of a store); False when missing."""
    return _is(path, stat_module.S_ISDIR)


def exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a broken symlink counts: reading it says why);
    :class:`~rundoctor.readers.remote.MissingExtra` when a URL's file system is not installed."""
    if remote.url_of(path) is not None:
        return _is(path, lambda mode: True)
    local = remote.local_path(Path(path))
    return local.exists() or local.is_symlink()


def files_below(folder: Path) -> list[Path]:
    """Every regular file below ``folder``, at any depth, sorted; none when it is no folder.
    Symlinked folders are not entered, and a symlinked file counts only when it resolves
    inside ``folder`` (links never lead out of the tree being read)."""
    if remote.url_of(folder) is not None:
        return remote.files_below(folder)
    if not folder.is_dir():
        return []
    inside = folder.resolve()
    found = []
    for path in folder.rglob("*"):
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(inside):
                continue
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
            continue
        if path.is_file():
            found.append(path)
    return sorted(found)


def walk(root: Path, on_error: Callable[[OSError], None]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of ``root``, top-down, symlinked folders not followed (a store's prefix
    from one recursive listing)."""
    if remote.url_of(root) is not None:
        return remote.walk(root, on_error)
    return os.walk(root, onerror=on_error, followlinks=False)


# --------------------------------------------------------------------------------------------
# Text logs: lines read with a bound on each
# --------------------------------------------------------------------------------------------

# The longest line a text log may have: longer lines are skipped, never held whole.  A line
# parsed as CSV fields costs ~14x its size in Python objects (1.4 GB for a 100 MB line,
# measured), a JSON line ~6x: 4 MiB bounds one line at ~60 MB, and still passes a header of
# 100,000 column names or the ~200 KB config record mmdetection writes first.  Lines of real
# metric logs are a few hundred bytes.
MAX_LINE_BYTES = 4 << 20
# Bytes read from the file at a time; must stay under MAX_LINE_BYTES (see LineCappedFile).
_LINE_CHUNK = 1 << 20


@dataclass(frozen=True)
class LongLine:
    """A line skipped for being longer than the bound: its 1-based number, where it starts
    (a byte offset) and its length in bytes, line end excluded."""

    line: int
    offset: int
    length: int


class LineCappedFile(io.RawIOBase):
    """A text file read with every line longer than ``max_line`` bytes left out, its line
    end kept (so every later line keeps its number); :meth:`long_lines` lists the lines left
    out.  Memory is bounded by ``max_line`` plus one chunk, whatever the lines.

    Line ends are LF, CR and CR LF, as the readers count them.  A chunk is shorter than
    ``max_line``, so only the line that runs across chunk boundaries can be too long: a
    chunk costs four memchr-speed searches and no copy (its whole lines are handed out as
    a view), never a loop over its lines; only the start of the line it ends in is held.
    Lines are not counted while reading (a count costs ~3 ms a MiB): the number of a line
    left out is found when asked, in the rare file that has one.
    """

    def __init__(self, raw: io.RawIOBase, *, max_line: int = MAX_LINE_BYTES, chunk: int | None = None) -> None:
        super().__init__()
        chunk = _LINE_CHUNK if chunk is None else chunk
        if chunk >= max_line:
            raise ValueError("a chunk must be shorter than the longest line kept")
        self.raw = raw
        self.max_line = max_line
        self.chunk = chunk
        self._skipped: list[tuple[int, int]] = []  # (offset, length) of each line left out
        self._held = bytearray()  # the start of the current line, not handed out yet
        self._skipping = False  # the current line is over the bound: its bytes are dropped
        self._line_start = 0  # byte offset of the current line
        self._line_length = 0  # its bytes so far, held or dropped
        self._offset = 0  # bytes read from the file
        self._after_cr = False  # the last byte read is a CR (a LF right after it ends no line)
        self._ready: deque[memoryview] = deque()  # bytes to hand out, in order
        self._eof = False

    def readable(self) -> bool:
        """Always: the file is open for reading."""
        return True

    def close(self) -> None:
        """Close the file under it too."""
        if not self.closed:
            self.raw.close()
        super().close()

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` with the file's bytes, over-long lines left out."""
        view = memoryview(buffer).cast("B")
        while not self._ready and not self._eof:
            self._next_chunk()
        if not self._ready:
            return 0
        piece = self._ready[0]
        count = min(len(view), len(piece))
        view[:count] = piece[:count]
        if count == len(piece):
            self._ready.popleft()
        else:
            self._ready[0] = piece[count:]
        return count

    def readall(self) -> bytes:
        """The rest of the file, over-long lines left out."""
        while not self._eof:
            self._next_chunk()
        data = b"".join(self._ready)
        self._ready.clear()
        return data

    def long_lines(self) -> list[LongLine]:
        """The lines left out so far, numbered (the file is read again up to the last of
        them to count its line ends, the skipped lines excepted: they hold none)."""
        numbered: list[LongLine] = []
        lines, position, after_cr = 1, 0, False
        if not self._skipped:
            return numbered
        again: BinaryFile | None = None
        if isinstance(self.raw, SizedFile):
            read_at = _positional_reader(self.raw.fileno())
        else:  # a stream (an object, a gzipped file): read it again from the start
            again = open_binary(Path(str(getattr(self.raw, "name", ""))), unbuffered=True)
            read_at = _sequential_reader(again)
        try:
            for offset, length in self._skipped:
                ends, after_cr = _count_line_ends(read_at, position, offset, after_cr)
                lines += ends
                numbered.append(LongLine(lines, offset, length))
                position, after_cr = offset + length, False
        finally:
            if again is not None:
                again.close()
        return numbered

    def _next_chunk(self) -> None:
        chunk = self.raw.read(self.chunk)
        if not chunk:
            self._eof = True
            self._end_line()
            return
        view = memoryview(chunk)
        start = 0
        if self._after_cr and chunk.startswith(b"\n"):  # the LF of a CR LF cut between chunks
            self._ready.append(view[:1])
            start, self._line_start = 1, self._line_start + 1
        ends = [found for found in (chunk.find(b"\n", start), chunk.find(b"\r", start)) if found >= 0]
        if not ends:  # the whole chunk goes on with the current line
            self._extend_line(view[start:])
        else:
            first, last = min(ends), max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            self._extend_line(view[start:first])
            self._end_line()
            self._ready.append(view[first : last + 1])  # whole lines, each shorter than a chunk
            self._line_start, self._line_length = self._offset + last + 1, 0
            self._extend_line(view[last + 1 :])
        self._offset += len(chunk)
        self._after_cr = chunk.endswith(b"\r")

    def _extend_line(self, piece: memoryview) -> None:
        """``piece`` goes on with the current line."""
        self._line_length += len(piece)
        if not self._skipping:
            self._held += piece
            if len(self._held) > self.max_line:
                self._skipping, self._held = True, bytearray()

    def _end_line(self) -> None:
        """The current line ended (or the file did): hand it out, or note it left out."""
        if self._skipping:
            self._skipped.append((self._line_start, self._line_length))
            self._skipping = False
        elif self._held:
            self._ready.append(memoryview(self._held))
        self._held = bytearray()


def _positional_reader(fd: int) -> Callable[[int, int], bytes]:
    """``read_at(start, size)`` on a file descriptor, its position left where it is."""

    def read_at(start: int, size: int) -> bytes:
        return os.pread(fd, size, start)

    return read_at


def _sequential_reader(handle: BinaryFile) -> Callable[[int, int], bytes]:
    """``read_at(start, size)`` on a stream, for starts that only grow."""

    def read_at(start: int, size: int) -> bytes:
        if handle.tell() != start:
            handle.seek(start)
        return handle.read(size) or b""

    return read_at


def _count_line_ends(read_at: Callable[[int, int], bytes], start: int, stop: int, after_cr: bool) -> tuple[int, bool]:
    """The line ends (LF, CR, CR LF) in the bytes ``start..stop`` of an open file, read a
    chunk at a time (``read_at(start, size)``); and whether they end with a CR.
    ``after_cr``: the byte before ``start`` is a CR (a LF at ``start`` ends no line)."""
    ends = 0
    while start < stop:
        chunk = read_at(start, min(_LINE_CHUNK, stop - start))
        if not chunk:
            break
        ends += len(chunk) - len(chunk.replace(b"\n", b""))  # memchr-speed, unlike count
        if b"\r" in chunk:
            ends += chunk.count(b"\r") - chunk.count(b"\r\n")
        if after_cr and chunk.startswith(b"\n"):
            ends -= 1  # the CR before it was counted as this line end
        start, after_cr = start + len(chunk), chunk.endswith(b"\r")
    return ends, after_cr


def open_lines(path: Path, *, max_line: int = MAX_LINE_BYTES) -> io.BufferedReader:
    """A text log opened for reading bytes with every line longer than ``max_line`` left out
    (its line end kept); :func:`long_lines_of` lists those read past so far."""
    raw = open_binary(path, unbuffered=True)
    assert isinstance(raw, io.RawIOBase)
    return io.BufferedReader(LineCappedFile(raw, max_line=max_line), 1 << 16)


def read_lines_bytes(path: Path, *, max_line: int = MAX_LINE_BYTES) -> tuple[bytes, list[LongLine]]:
    """The whole text log, over-long lines left out (see :func:`open_lines`), and those lines."""
    with open_lines(path, max_line=max_line) as handle:
        data = handle.read()
        return data, list(long_lines_of(handle))


def long_lines_of(handle: io.BufferedReader) -> list[LongLine]:
    """The over-long lines an :func:`open_lines` handle has left out so far."""
    raw = handle.raw
    return raw.long_lines() if isinstance(raw, LineCappedFile) else []
