"""File access: every byte discovery, the readers and ``watch`` read goes through here.

One module so that another file system (fsspec, an object store) plugs in at one place:
these functions take the paths discovery found and return what the local file system
would.  Readers never call ``open``, ``Path.open``, ``read_bytes`` or ``os.walk`` themselves.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

# What open_binary returns: both read, seek and readinto.
BinaryFile = io.BufferedReader | io.FileIO


def open_binary(path: Path, *, unbuffered: bool = False) -> BinaryFile:
    """The file opened for reading bytes; ``unbuffered`` for readers that ``readinto`` their
    own buffer (no copy through a second one).  The caller closes it."""
    if unbuffered:
        return Path(path).open("rb", buffering=0)
    return Path(path).open("rb")


def read_bytes(path: Path) -> bytes:
    """The whole file's bytes (see :func:`read_head` for only its start)."""
    with open_binary(path) as handle:
        return handle.read()


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes (fewer when the file is shorter)."""
    with open_binary(path) as handle:
        return handle.read(size)


def size_of(handle: BinaryFile) -> int:
    """The size of an open file, as it is now."""
    return os.fstat(handle.fileno()).st_size


def stat(path: Path) -> os.stat_result:
    """The file's status (size, modification time), following symlinks; OSError when it is gone."""
    return Path(path).stat()


def is_file(path: Path) -> bool:
    """True for a regular file (or a symlink to one); False when missing."""
    return Path(path).is_file()


def is_dir(path: Path) -> bool:
    """True for a directory (or a symlink to one); False when missing."""
    return Path(path).is_dir()


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, at any depth, sorted; none when it is no folder."""
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def walk(root: Path, on_error: Callable[[OSError], None]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of ``root``, top-down, symlinked folders not followed."""
    return os.walk(root, onerror=on_error, followlinks=False)
