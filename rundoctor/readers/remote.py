"""Files in object stores and on web servers: fsspec URLs, read through :mod:`~rundoctor.readers.files`.

Paths reach discovery as ``Path`` objects, which fold the ``//`` after a scheme into one
separator (``s3://bucket/runs`` becomes ``s3:/bucket/runs``).  Such a path keeps working as a
path (``/``, ``name``, ``parent`` and ``suffix`` mean what they mean in the bucket), and
:func:`url_of` tells it from a local one by its scheme, one fsspec knows.  Nothing else in
rundoctor sees the difference: :mod:`~rundoctor.readers.files` sends what is remote here.

The guarantees of local files hold in their remote form:

- **Only objects are opened**: what the store lists as a file; a prefix ("directory") or
  anything else is refused like a FIFO is locally.
- **A file is read up to the size it had when listed**: fsspec files read in ranges up to the
  size known at open; the size comes from the listing when the path was walked.
- **Read in ranges, streamed**: each file is an fsspec file object read block by block
  (:data:`BLOCK_BYTES`, read ahead), never downloaded whole first.

Credentials and endpoints are each store's own (for S3, botocore's: the ``AWS_*`` environment
variables and ``~/.aws`` files, ``AWS_ENDPOINT_URL`` included); rundoctor has no options of
its own for them.  A store whose fsspec package is not installed is an OSError naming the
extra that brings it (``pip install 'rundoctor[s3]'``).
"""

from __future__ import annotations

import io
import os
import re
import stat as stat_module
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Schemes read through fsspec, and the extra that installs each one's file system.  file://
# is no remote: it names a local path, read with every local guarantee (see local_path).
EXTRAS = {
    "s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
    "abfss": "azure", "adl": "azure", "hf": "hf", "http": "http", "https": "http",
}
# Bytes fetched per range request; the file object reads one block ahead.  Large enough that
# the per-request latency of a store (~10-50 ms) is a small part of reading a block, small
# enough that a sniff of a file's head costs one small request.
BLOCK_BYTES = 4 << 20
# An object no larger than this (what discovery sniffs of a file) is fetched in one request
# and kept for the next reads of it: a small log is opened several times (sniffed during
# discovery, read later), and each open would be a request of its own.  The most recently
# read are kept, SMALL_KEPT_BYTES in all: a sweep of thousands of tiny runs costs one request
# a run, and memory stays bounded whatever the number of runs.
SMALL_OBJECT_BYTES = 64 << 10
SMALL_KEPT_BYTES = 16 << 20
_SMALL: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_small_kept = [0]  # the bytes in _SMALL
# A path as discovery holds a URL: the scheme, then the rest after one or more separators.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):[\\/]+(.*)", re.DOTALL)


class MissingExtra(OSError):
    """The file system of a URL's scheme is not installed: the message names the extra."""


def _split(path: Path | str) -> tuple[str, str] | None:
    match = _URL.fullmatch(str(path))
    if match is None:
        return None
    scheme, rest = match.groups()
    return scheme.lower(), rest.replace(os.sep, "/")


def url_of(path: Path | str) -> str | None:
    """The URL a path stands for when it is one of a remote scheme (``s3:/bucket/k`` is
    ``s3://bucket/k``); None for a local path, ``file://`` URLs included."""
    parts = _split(path)
    if parts is None or parts[0] not in EXTRAS:
        return None
    return f"{parts[0]}://{parts[1]}"


def local_path(path: Path) -> Path:
    """A ``file://`` URL as the local path it names (``file:///runs`` is ``/runs``); any other
    path unchanged."""
    parts = _split(path)
    if parts is None or parts[0] != "file":
        return path
    rest = parts[1]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost/"):]
    return Path("/" + rest)


def shown(path: Path | str) -> str:
    """The path as reports show it: a URL written out again (``s3://bucket/k``), a local path as is."""
    url = url_of(path)
    if url is not None:
        return url
    parts = _split(path)
    if parts is not None and parts[0] == "file":
        return f"file:///{parts[1].removeprefix('localhost/')}"
    return str(path)


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` (one per scheme, cached by fsspec) and the path in it."""
    scheme = url.partition(":")[0]
    try:
        import fsspec

        fs = fsspec.filesystem(scheme)
    except ImportError as error:
        extra = EXTRAS.get(scheme, scheme)
        raise MissingExtra(
            f"{scheme}:// URLs need the {extra} extra: pip install 'rundoctor[{extra}]' ({error})"
        ) from None
    except ValueError as error:  # a scheme fsspec does not know
        raise MissingExtra(f"{scheme}:// URLs cannot be read: {error}") from None
    return fs, url if scheme in ("http", "https") else fs._strip_protocol(url)


# What the last walk listed, so that discovery's and the readers' questions about a file
# (its size, whether it is there) cost no request of their own: URL -> (is a file, size,
# modification time).  Below a listed root, what the listing did not hold is not there.
_LISTED: dict[str, tuple[bool, int, float]] = {}
_LISTED_ROOTS: set[str] = set()


def _mtime(info: dict[str, Any]) -> float:
    value = info.get("LastModified", info.get("mtime", info.get("last_modified", 0.0)))
    timestamp = getattr(value, "timestamp", None)
    try:
        return float(timestamp() if callable(timestamp) else value)
    except (TypeError, ValueError):
        return 0.0


def _status(is_file: bool, size: int, mtime: float) -> os.stat_result:
    mode = (stat_module.S_IFREG | 0o444) if is_file else (stat_module.S_IFDIR | 0o555)
    return os.stat_result((mode, 0, 0, 1, 0, 0, size, int(mtime), int(mtime), int(mtime)))


def stat(url: str) -> os.stat_result:
    """The status of the object (or prefix) at ``url``: a regular file's or a folder's mode,
    its size; FileNotFoundError when nothing is there."""
    known = _LISTED.get(url.rstrip("/"))
    if known is not None:
        return _status(*known)
    if any(url.startswith(root + "/") for root in _LISTED_ROOTS):
        raise FileNotFoundError(2, "no such object", url)
    fs, where = _filesystem(url)
    try:
        info = fs.info(where)
    except FileNotFoundError:
        raise FileNotFoundError(2, "no such object", url) from None
    except OSError:
        raise
    except Exception as error:  # a store's own errors (permissions, endpoint) as unreadable input
        raise OSError(f"{type(error).__name__}: {error}") from error
    is_file = info.get("type") == "file"
    if is_file and url.startswith(("http:", "https:")):
        # Every URL of a web server is a file; a page of links (a server's listing of a
        # folder) is walked as the folder, as fsspec lists it.
        is_file = not _lists_links(fs, where)
    return _status(is_file, int(info.get("size") or 0), _mtime(info))


def _lists_links(fs: Any, where: str) -> bool:
    try:
        return bool(fs.isdir(where))
    except Exception:  # a page that cannot be listed is a file
        return False


def _listing(url: str) -> dict[str, tuple[bool, int | None, float]]:
    """Every object and prefix below ``url`` (URL -> is a file, size, time), from one listing;
    a size the listing does not give (a web server's page of links) is None."""
    fs, where = _filesystem(url)
    try:
        fs.invalidate_cache(where)  # a walk lists afresh: objects come and go between walks
        found = fs.find(where, withdirs=True, detail=True)
    except FileNotFoundError:
        return {}
    except OSError:
        raise
    except Exception as error:
        raise OSError(f"{type(error).__name__}: {error}") from error
    base, root = where.rstrip("/"), url.rstrip("/")
    entries: dict[str, tuple[bool, int | None, float]] = {}
    for name, info in found.items():
        relative = str(name).rstrip("/")
        if "://" in relative:  # http listings name whole URLs
            relative = relative.removeprefix(base)
        else:
            relative = relative.removeprefix(base.split("://")[-1])
        relative = relative.strip("/")
        if not relative:
            continue
        is_file = info.get("type") == "file"
        size = info.get("size")
        entries[f"{root}/{relative}"] = (is_file, None if size is None else int(size), _mtime(info))
        for parent in PurePosixPath(relative).parents:  # prefixes implied by the keys
            if str(parent) != ".":
                entries.setdefault(f"{root}/{parent}", (False, 0, 0.0))
    return entries


def walk(root: Path, on_error: Callable[[OSError], None]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of a remote prefix, top-down, from one recursive listing (the store's
    ``find``); the caller may prune the folder names it is given, as with ``os.walk``."""
    url = url_of(root)
    assert url is not None
    url = url.rstrip("/")
    for known in [entry for entry in _LISTED if entry.startswith(url + "/")]:
        del _LISTED[known]
    _LISTED_ROOTS.discard(url)
    try:
        entries = _listing(url)
    except OSError as error:
        error.filename = error.filename or str(root)
        on_error(error)
        return
    sized = {entry: (is_file, size, mtime) for entry, (is_file, size, mtime) in entries.items() if size is not None}
    _LISTED.update(sized)
    if len(sized) == len(entries):  # the listing is whole: what it does not hold is not there
        _LISTED_ROOTS.add(url)
    children: dict[str, tuple[list[str], list[str]]] = {url: ([], [])}
    for entry, (is_file, _, _) in sorted(entries.items()):
        parent, _, name = entry.rpartition("/")
        folders, found = children.setdefault(parent, ([], []))
        (found if is_file else folders).append(name)
        if not is_file:
            children.setdefault(entry, ([], []))

    def visit(folder_url: str, folder: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        folders, found = children.get(folder_url, ([], []))
        folders = sorted(folders)
        yield str(folder), folders, sorted(found)
        for name in folders:
            yield from visit(f"{folder_url}/{name}", folder / name)

    yield from visit(url, root)


def files_below(folder: Path) -> list[Path]:
    """Every object below a remote prefix, sorted (see :func:`walk`)."""
    found: list[Path] = []
    for directory, _, names in walk(folder, lambda error: None):
        found.extend(Path(directory) / name for name in names)
    return sorted(found)


def _small_object(fs: Any, where: str, url: str, status: os.stat_result) -> bytes:
    """A small object's bytes, fetched once for its next few reads (see SMALL_OBJECT_BYTES)."""
    key = (url, status.st_size, status.st_mtime_ns)
    body = _SMALL.get(key)
    if body is None:
        try:
            body = bytes(fs.cat_file(where, start=0, end=status.st_size))[: status.st_size]
        except OSError:
            raise
        except Exception as error:
            raise OSError(f"{type(error).__name__}: {error}") from error
        _SMALL[key] = body
        _small_kept[0] += len(body)
        while _small_kept[0] > SMALL_KEPT_BYTES:
            _small_kept[0] -= len(_SMALL.popitem(last=False)[1])
    _SMALL.move_to_end(key)
    return body


class RemoteFile(io.RawIOBase):
    """An object opened for reading in ranges: an fsspec file object (one block read ahead),
    ending at the size the object had when listed or opened."""

    def __init__(self, path: Path, url: str) -> None:
        super().__init__()
        status = stat(url)
        if not stat_module.S_ISREG(status.st_mode):
            from rundoctor.readers.files import NotRegularFile

            raise NotRegularFile(path, "a prefix (folder) of the store")
        self.name = str(path)
        self.size = status.st_size
        fs, where = _filesystem(url)
        if self.size <= SMALL_OBJECT_BYTES:
            self._file: Any = io.BytesIO(_small_object(fs, where, url, status))
            return
        try:
            try:  # the size known from the listing spares a request per file
                self._file = fs.open(where, "rb", block_size=BLOCK_BYTES, cache_type="readahead", size=status.st_size)
            except TypeError:  # a file system that takes no size
                self._file = fs.open(where, "rb", block_size=BLOCK_BYTES, cache_type="readahead")
        except OSError:
            raise
        except Exception as error:
            raise OSError(f"{type(error).__name__}: {error}") from error

    def readable(self) -> bool:
        """Always: opened for reading."""
        return True

    def seekable(self) -> bool:
        """Always: a range can start anywhere."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` (no request until the next read)."""
        return int(self._file.seek(offset, whence))

    def tell(self) -> int:
        """The position in the object."""
        return int(self._file.tell())

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` from the current position, up to the size at open."""
        view = memoryview(buffer).cast("B")
        room = max(self.size - self.tell(), 0)
        if not room or not len(view):
            return 0
        view = view[: min(len(view), room)]
        try:
            data = self._file.read(len(view))
        except OSError:
            raise
        except Exception as error:  # a store's errors mid-read: the file cannot be read further
            raise OSError(f"{type(error).__name__}: {error}") from error
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the fsspec file too."""
        if not self.closed:
            self._file.close()
        super().close()
