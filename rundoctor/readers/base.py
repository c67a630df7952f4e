"""What a reader is: one protocol for every log format.

A :class:`Reader` says

- its **name** (the run's ``format``, what ``--reader`` takes);
- what it **claims**: a directory that is one run (``claims_dir``), a file by its name
  alone, never opened to decide (``claims_name``), or a file by its name and first
  64 KiB (``sniff``); and how the files it claimed group into runs (``group``);
- how it **reads** a run (``read``): everything readable, with what was not as read notes;
  :class:`UnreadableInput` only when the source holds nothing of this format at all;
- how ``watch`` **follows** a run still being written (``follow``, a factory of
  :class:`~rundoctor.readers.follow.Follower`);
- for runs that are not files (a tracking server's), the **URL schemes** it answers for
  (``url_schemes``) and how it **locates** the runs at such a URL (``locate``).

The registry is one tuple, :data:`rundoctor.readers.READERS`; discovery and ``watch`` only
ever ask it.  Claiming must be cheap and must never raise (an exception means "not mine").
A format's reading code is imported when a run of it is first read (:func:`deferred`), so
the registry costs only what claiming needs: reading a TensorBoard run never imports the
CSV and JSON readers (nor PyYAML), nor reading a CSV file TensorBoard's protos.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rundoctor.series import ReadNote, Run

if TYPE_CHECKING:
    from rundoctor.readers.follow import FollowContext, Follower


class UnreadableInput(Exception):
    """Raised by a reader when nothing at all can be read from an input; the reason is shown."""


@dataclass
class RunSource:
    """One run to read: which reader, where, and which files (each with its tag prefix).

    A run that is no file (a run on a tracking server) has a ``url`` instead, from which its
    reader reads it and which reports show, and a ``name``, its id in reports (a file's run is
    named by its path); its ``path`` is the argument it was found under, ``files`` is empty.
    """

    reader: str
    path: Path
    files: list[tuple[Path, str]]
    notes: list[ReadNote] = field(default_factory=list)
    url: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """Where the run is, as messages name it: its URL, else its path."""
        return self.url if self.url is not None else str(self.path)


class ReadRun(Protocol):
    """How a reader reads one run source; raises UnreadableInput when it cannot."""

    def __call__(self, source: RunSource) -> Run:
        """The run of ``source``, every point as logged (roles are assigned later)."""


def deferred(module: str, function: str) -> Callable[..., Any]:
    """``module.function``, imported when first called (see the module docstring)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__qualname__ = call.__name__ = function
    return call


def one_run_per_file(name: str) -> Callable[[Sequence[Path], bool], list[RunSource]]:
    """The usual grouping: each claimed file is a run of its own."""

    def group(files: Sequence[Path], explicit: bool) -> list[RunSource]:
        return [RunSource(name, file, [(file, "")]) for file in files]

    return group


def file_read(read: Callable[[Path], Run]) -> ReadRun:
    """A reader of one file as a reader of a source whose run is that file."""

    def read_source(source: RunSource) -> Run:
        return read(source.files[0][0])

    read_source.__doc__ = read.__doc__
    return read_source


@dataclass(frozen=True)
class Reader:
    """One log format: see the module docstring.  At least one of ``claims_dir``,
    ``claims_name``, ``sniff`` and ``url_schemes`` is set."""

    name: str
    read: ReadRun
    follow: Callable[[FollowContext], Follower]
    sniff: Callable[[Path, bytes], bool] | None = None
    claims_name: Callable[[str], bool] | None = None
    claims_dir: Callable[[Path], bool] | None = None
    # (claimed files in walk order, named on the command line) -> runs; None: one run a file
    group: Callable[[Sequence[Path], bool], list[RunSource]] | None = None
    # URL schemes (lower case) of runs that are no files, and the runs at such a URL, found
    # by asking where they are (a tracking server); raises UnreadableInput when it cannot.
    url_schemes: tuple[str, ...] = ()
    locate: Callable[[str], list[RunSource]] | None = None

    def runs(self, files: Sequence[Path], *, explicit: bool) -> list[RunSource]:
        """The runs that ``files``, claimed by this reader, make up."""
        return (self.group or one_run_per_file(self.name))(files, explicit)

    def read_file(self, path: Path) -> Run:
        """The run of one file (or folder) named as on the command line, read with this reader."""
        return self.read(self.runs([Path(path)], explicit=True)[0])
