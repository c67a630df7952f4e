"""Find the runs under the paths a user gives, and read each with the right reader.

Formats are recognised by name and content, never by a flag (``--reader`` overrides), by
asking the reader registry (:data:`rundoctor.readers.READERS`), in its order:

- a directory a reader claims is one run of it (an MLflow run directory); its own files are
  offered to no reader;
- a file whose name a reader claims is that reader's, unopened (TensorBoard event files);
- every other file is offered to the sniffers with its first 64 KiB; the first that accepts
  it claims it (images, weights and archives, known by their endings, are passed over
  unopened);
- each reader groups the files it claimed into runs (a folder of event files is one run,
  Keras ``train/`` + ``validation/`` siblings ONE run; of Hugging Face checkpoint copies of
  ``trainer_state.json`` one is read).

The walk never follows symlinked directories (no loops, no escape from the tree) and reads a
symlinked file only when it points inside the tree; nothing is ever written.  What is not a
regular file (a FIFO, a socket, a device), named or found, is never opened: it is reported
as not read, as are links out of the tree and broken links.  Files and directories that an
``exclude`` pattern (:mod:`rundoctor.globs`) matches are passed over unopened, matched by
their path as run ids print it; a path named on the command line is always read.

A URL whose scheme a reader answers for (``mlflow://``, a tracking server) is no path: that
reader locates its runs (:func:`url_reader` is the one place that tells the two apart).  A URL
of an object store or a web server (``s3://bucket/runs``, :mod:`rundoctor.readers.remote`) is
walked like a folder, each file read through :mod:`rundoctor.readers.files`; its runs are
named by their URLs.  A gzipped file (``metrics.csv.gz``) is claimed by its name without
``.gz`` and sniffed by its decompressed head.  ``-`` is standard input, read as one file named
on the command line (spooled to a temporary file first), its run named ``<stdin>``.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

from rundoctor import roles
from rundoctor.globs import PathPatterns
from rundoctor.readers import READERS, files, reader_named, remote, streams
from rundoctor.readers.base import Reader, RunSource, UnreadableInput
from rundoctor.series import NoteKind, ReadError, ReadNote, Run

SNIFF_BYTES = 64 * 1024
# Walked files with these endings are logs we are expected to understand; anything else that
# no reader claims (configs, checkpoints, images) is none of our business.
LOG_SUFFIXES = (".csv", ".jsonl", ".ndjson")
# Walked files with these endings are not opened at all: a run directory may hold thousands
# of images or checkpoints, and reading 64 KiB of each only to reject it costs more than the
# logs.  A file named on the command line is always read.
NEVER_LOGS = frozenset(
    [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".mp4", ".avi", ".mov", ".wav", ".mp3", ".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".h5", ".hdf5", ".keras", ".onnx", ".tflite", ".npy", ".npz", ".pkl", ".pickle", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z"]  # archives
)

Progress = Callable[[int, int, str], None]

__all__ = ["RunSource", "find_all_sources", "find_sources", "load_runs", "read_run", "read_runs", "read_source", "reader_names", "run_id"]

# The reason of a ReadError for a path that does not exist (the CLI makes it a usage error).
MISSING_PATH = "no such file or directory"
# The argument that stands for standard input, and the id of its run.
STDIN_ARGUMENT, STDIN_ID = "-", "<stdin>"
# A URL as it reaches us: a scheme of two characters or more (one is a Windows drive) and the
# rest, after the "//" that pathlib folds into one separator ("mlflow:/host:5000/#exp").
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):[\\/]+(.*)", re.DOTALL)


def reader_names() -> list[str]:
    """The names ``--reader`` accepts, in sniffing order."""
    return [reader.name for reader in READERS]


def load_runs(
    paths: Sequence[Path],
    *,
    reader: str | None = None,
    role_overrides: dict[str, roles.Role] | None = None,
    progress: Progress | None = None,
    exclude: PathPatterns | None = None,
) -> tuple[list[Run], list[ReadError]]:
    """Every run under ``paths``, roles assigned, sorted by id; and what could not be read.
    Nothing under ``paths`` that ``exclude`` matches is opened."""
    with ExitStack() as cleanup:  # standard input is spooled to a file removed at the end
        sources, errors = find_all_sources(paths, reader=reader, exclude=exclude, cleanup=cleanup)
        runs, unread = read_runs(sources, role_overrides, progress)
        return runs, errors + unread


def read_runs(
    sources: Sequence[tuple[RunSource, Path]],
    role_overrides: dict[str, roles.Role] | None = None,
    progress: Progress | None = None,
) -> tuple[list[Run], list[ReadError]]:
    """The runs of ``sources`` (each with the path it was found under), roles assigned, sorted
    by id; and those that could not be read, in source order."""
    runs: list[Run] = []
    errors: list[ReadError] = []
    for done, (source, root) in enumerate(sources):
        if progress is not None:
            progress(done, len(sources), source.label)
        read = read_run(source, root, role_overrides)
        if isinstance(read, ReadError):
            errors.append(read)
        else:
            runs.append(read)
    if progress is not None:
        progress(len(sources), len(sources), "")
    runs.sort(key=lambda r: r.id)
    return runs, errors


def find_all_sources(
    paths: Sequence[Path],
    *,
    reader: str | None = None,
    exclude: PathPatterns | None = None,
    cleanup: ExitStack | None = None,
) -> tuple[list[tuple[RunSource, Path]], list[ReadError]]:
    """The runs under every path, unread, each with the path it was found under (its id is
    relative to it); and the paths that do not exist, hold no logs or could not be walked.
    ``cleanup`` owns what reading standard input (``-``) leaves behind; without it, ``-`` is
    not accepted."""
    sources: list[tuple[RunSource, Path]] = []
    errors: list[ReadError] = []
    for path in paths:
        if str(path) == STDIN_ARGUMENT:
            if cleanup is None:
                errors.append(ReadError(STDIN_ARGUMENT, "standard input is read only by a single process"))
                continue
            found, problems = _stdin_sources(reader, cleanup)
            sources.extend((source, source.path) for source in found)
            errors.extend(problems)
            continue
        path = remote.local_path(path)
        try:
            present = files.exists(path)
        except remote.MissingExtra as error:
            errors.append(ReadError(remote.shown(path), str(error)))
            continue
        if not present and url_reader(path) is None:
            errors.append(ReadError(remote.shown(path), MISSING_PATH))
            continue
        found, problems = find_sources(path, reader=reader, exclude=exclude)
        sources.extend((source, path) for source in found)
        errors.extend(dataclasses.replace(error, path=remote.shown(error.path)) for error in problems)
        if not found and not problems:
            errors.append(ReadError(remote.shown(path), "no training logs found (no event files, CSV, JSON or MLflow runs)"))
    return sources, errors


def read_run(source: RunSource, root: Path, role_overrides: dict[str, roles.Role] | None = None) -> Run | ReadError:
    """The run of ``source`` (found under ``root``) with its id and roles, or why it could not be read."""
    sizes = _sizes(source)
    try:
        run = read_source(source)
    except UnreadableInput as error:
        return ReadError(_shown(source.label, source), str(error))
    except (OSError, MemoryError) as error:
        return ReadError(_shown(source.label, source), f"{type(error).__name__}: {error}")
    run.id = source.name if source.name is not None else run_id(source.path, root)
    run.notes[:0] = source.notes
    run.notes.extend(_size_changes(sizes, _sizes(source)))
    run.notes.extend(_stream_notes(source))
    if source.name is not None or remote.url_of(source.path) is not None:
        _show_names(run, source)
    return roles.assign(run, role_overrides)


def _stdin_sources(reader: str | None, cleanup: ExitStack) -> tuple[list[RunSource], list[ReadError]]:
    """The run on standard input: spooled to a temporary file (removed when the runs are
    read), read as a file named on the command line, named ``<stdin>``."""
    folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="rundoctor-stdin-")))
    spooled, cut = streams.spool_stdin(folder)
    if files.stat(spooled).st_size == 0:
        return [], [ReadError(STDIN_ID, "empty file")]
    spooled = spooled.rename(spooled.with_name(_stdin_name(spooled)))
    found, problems = find_sources(spooled, reader=reader)
    for source in found:
        source.name = STDIN_ID
        if cut:
            source.notes.append(ReadNote(NoteKind.SKIPPED, STDIN_ID, f"standard input held more than {streams.STDIN_MAX_BYTES:,} bytes: the rest is not read"))
    return found, [dataclasses.replace(error, path=STDIN_ID) for error in problems]


# Names standard input is tried under: sniffers go by a file's ending as well as its bytes.
_STDIN_ENDINGS = ("", ".csv", ".jsonl", ".json", ".log")


def _stdin_name(spooled: Path) -> str:
    """The name under which a sniffer takes standard input's bytes (``stdin.csv`` for a CSV
    log); its spool's own name when none does (reading then says why)."""
    try:
        head = files.read_head(spooled, SNIFF_BYTES)
    except OSError:
        return spooled.name
    gz = ".gz" if streams.logical_name(spooled.name) != spooled.name else ""
    for ending in _STDIN_ENDINGS:
        candidate = spooled.with_name(f"stdin{ending}")
        if any(r.sniff is not None and _claims(r.sniff, candidate, head) for r in READERS):
            return candidate.name + gz
    return spooled.name


def _shown(name: str, source: RunSource) -> str:
    """A file's name as reports show it: a URL written out again, standard input's spool as ``<stdin>``."""
    if source.name == STDIN_ID and source.url is None:
        return STDIN_ID
    return remote.shown(name)


def _show_names(run: Run, source: RunSource) -> None:
    """The run's path, sources and note sources as reports show them (see :func:`_shown`)."""
    run.path = _shown(run.path, source)
    run.sources = [_shown(name, source) for name in run.sources]
    run.notes = [dataclasses.replace(note, source=_shown(note.source, source)) for note in run.notes]


def _stream_notes(source: RunSource) -> list[ReadNote]:
    """Notes on the gzipped files of the source whose reading stopped before their end."""
    notes = []
    for path, _ in source.files:
        stopped = streams.take_stream_notes(path)
        if stopped is not None:
            read, reason = stopped
            notes.append(ReadNote(NoteKind.TRUNCATED, str(path), reason, f"decompressed byte {read:,}"))
    return notes


def run_id(path: Path, root: Path) -> str:
    """The run's path relative to the parent of the root the user named, in POSIX form; a
    remote run's, its URL."""
    if remote.url_of(path) is not None:
        return remote.shown(path)
    base = root.resolve().parent if root.resolve() != Path(root.anchor or "/") else root.resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _sizes(source: RunSource) -> dict[Path, int]:
    """The size of each file of the source now (a file gone is left out)."""
    sizes = {}
    for path, _ in source.files:
        try:
            sizes[path] = files.stat(path).st_size
        except OSError:
            continue
    return sizes


def _size_changes(before: dict[Path, int], after: dict[Path, int]) -> list[ReadNote]:
    """Notes on files whose size changed while the run was read.  Each file is read up to
    the size it had when opened (see :mod:`rundoctor.readers.files`), so a log still being
    written is read as it was; one cut meanwhile ends where the cut did."""
    notes = []
    for path, size in before.items():
        now = after.get(path, size)
        if now > size:
            message = (f"the file grew from {size:,} to {now:,} bytes while it was read: read as it was "
                       "when opened (`rundoctor watch` follows a log still being written)")
        elif now < size:
            message = (f"the file shrank from {size:,} to {now:,} bytes while it was read (rewritten or "
                       "cut by another process): what was read before is kept")
        else:
            continue
        notes.append(ReadNote(NoteKind.INFO, str(path), message))
    return notes


def read_source(source: RunSource) -> Run:
    """The run of ``source`` as its reader reads it; roles are not assigned yet (see :func:`load_runs`).
    Raises UnreadableInput when the reader cannot read it."""
    return reader_named(source.reader).read(source)


def find_sources(
    root: Path, *, reader: str | None = None, exclude: PathPatterns | None = None
) -> tuple[list[RunSource], list[ReadError]]:
    """The runs under ``root`` (a file or a directory) and the paths that could not be walked.

    ``reader`` forces one: a file named is read with it; in a directory, a reader that
    sniffs files is given every file, while one that claims names or directories finds its
    runs as discovery does.  Below ``root``, what ``exclude`` matches is not walked.
    """
    errors: list[ReadError] = []
    at_url = url_reader(root)
    if at_url is not None:
        return _located(*at_url, reader)
    forced = reader_named(reader) if reader is not None else None
    kind = _kind(root)
    if kind is not None and kind != "a directory":
        return [], [ReadError(str(root), files.not_opened(kind))]
    if files.is_file(root):
        if forced is not None:
            return forced.runs([root], explicit=True), errors
        return _claim_files([root], errors, explicit=True), errors
    if forced is not None and forced.sniff is not None:
        return [RunSource(forced.name, p, [(p, "")]) for p in sorted(_walk_files(root, errors, exclude))], errors

    dir_readers = [r for r in READERS if r.claims_dir is not None]
    sources: list[RunSource] = []
    other_files: list[Path] = []
    by_name: dict[str, list[Path]] = {}
    for directory, found in _walk(root, errors, exclude):
        owner = next((r for r in dir_readers if _claims(r.claims_dir, directory)), None)
        if owner is not None:
            sources.append(RunSource(owner.name, directory, []))
            continue
        for file in found:
            named = _name_owner(file)
            (by_name.setdefault(named.name, []).append(file) if named is not None else other_files.append(file))
    for name_reader in READERS:
        if name_reader.name in by_name:
            sources.extend(name_reader.runs(by_name[name_reader.name], explicit=False))
    sources.extend(_claim_files(other_files, errors, explicit=False))
    return sources, errors


def url_reader(path: Path) -> tuple[str, Reader] | None:
    """The URL ``path`` stands for and the reader that locates runs there, when ``path`` is a
    URL of a scheme a reader answers for and names nothing on the local disk; else None.

    Paths reach discovery as ``Path`` objects, which fold the ``//`` after a scheme into one
    separator (``mlflow://host`` becomes ``mlflow:/host``): the URL is written out again."""
    match = _URL.fullmatch(str(path))
    if match is None:
        return None
    scheme, rest = match.groups()
    owner = next((r for r in READERS if scheme.lower() in r.url_schemes), None)
    if owner is None or owner.locate is None or path.exists():
        return None
    return f"{scheme}://{rest.replace(os.sep, '/')}", owner


def _located(url: str, owner: Reader, reader: str | None) -> tuple[list[RunSource], list[ReadError]]:
    """The runs at ``url``, or why there are none: ``--reader`` names another reader, or the
    owner cannot locate them (the server cannot be asked)."""
    if reader is not None and reader != owner.name:
        return [], [ReadError(url, f"--reader {reader} does not read {url.partition(':')[0]}:// URLs ({owner.name} does)")]
    assert owner.locate is not None
    try:
        return owner.locate(url), []
    except UnreadableInput as error:
        return [], [ReadError(url, str(error))]


def _name_owner(file: Path) -> Reader | None:
    name = streams.logical_name(file.name)
    return next((r for r in READERS if r.claims_name is not None and _claims(r.claims_name, name)), None)


def _claims(test: Callable[..., bool] | None, *args: object) -> bool:
    """A claim must never sink discovery: an exception means "not mine"."""
    try:
        return test is not None and bool(test(*args))
    except Exception:
        return False


def _claim_files(found: list[Path], errors: list[ReadError], *, explicit: bool) -> list[RunSource]:
    """Files offered by name, then by their first bytes, to the readers; the runs they make.

    Runs of readers that take one file a run come in file order, then those of readers that
    group files, in registry order."""
    claimed: dict[str, list[Path]] = {}
    singles: list[RunSource] = []
    for file in found:
        named = _name_owner(file) if explicit else None
        if named is not None:
            claimed.setdefault(named.name, []).append(file)
            continue
        logical = file.with_name(streams.logical_name(file.name))  # metrics.csv.gz: a metrics.csv
        if not explicit and logical.suffix.lower() in NEVER_LOGS:
            continue
        head = _head(file, errors)
        if head is None:
            continue
        owner = next((r for r in READERS if r.sniff is not None and _claims(r.sniff, logical, head)), None)
        if owner is None:
            if explicit or logical.suffix.lower() in LOG_SUFFIXES:
                why = "empty file" if not head else "not a recognised training-log format"
                errors.append(ReadError(str(file), why))
            continue
        if owner.group is None:
            singles.extend(owner.runs([file], explicit=explicit))
        else:
            claimed.setdefault(owner.name, []).append(file)
    grouped = [source for r in READERS if r.name in claimed for source in r.runs(claimed[r.name], explicit=explicit)]
    return singles + grouped


def _walk(root: Path, errors: list[ReadError], exclude: PathPatterns | None) -> Iterator[tuple[Path, list[Path]]]:
    """(directory, files) for every directory under root, sorted; symlinked dirs not followed,
    excluded ones not entered and excluded files left out."""
    real_root = root.resolve()
    shown_root = run_id(root, root)  # the root as run ids begin, which exclude patterns match

    def on_error(error: OSError) -> None:
        errors.append(ReadError(str(error.filename or root), error.strerror or str(error)))

    def excluded(directory: Path, name: str) -> bool:
        if not exclude:
            return False
        shown = PurePosixPath(shown_root, *directory.relative_to(root).parts, name).as_posix()
        return exclude.match_entry(shown) is not None

    for dirpath, dirnames, filenames in files.walk(root, on_error):
        directory = Path(dirpath)
        dirnames[:] = sorted(name for name in dirnames if not excluded(directory, name))
        for name in dirnames:  # the walk does not enter symlinked folders; those leaving the tree are told
            folder = directory / name
            if folder.is_symlink() and not _inside(folder, real_root):
                errors.append(ReadError(str(folder), f"symlinked folder points outside {root} (not followed)"))
        found = []
        for name in sorted(filenames):
            if excluded(directory, name):
                continue
            file = directory / name
            why = _passed_over(file, real_root, root)
            if why is None:
                found.append(file)
            else:
                errors.append(ReadError(str(file), why))
        yield directory, found


def _passed_over(file: Path, real_root: Path, root: Path) -> str | None:
    """Why a file found in the tree is not read, or None to read it: links are followed only
    inside the tree, and only regular files are opened (one lstat for a plain file)."""
    try:
        status = files.lstat(file)
    except OSError as error:  # gone since the folder was listed
        return error.strerror or str(error)
    if stat.S_ISLNK(status.st_mode):
        try:
            status = files.stat(file)
        except OSError as error:
            reasons = {errno.ENOENT: "broken symlink", errno.ELOOP: "symlink loop"}
            return reasons.get(error.errno or 0, error.strerror or str(error))
        if not _inside(file, real_root):
            return f"symlink points outside {root} (not followed)"
    kind = files.kind_of(status.st_mode)
    return None if kind is None else files.not_opened(kind)


def _inside(link: Path, real_root: Path) -> bool:
    """Whether a symlink resolves inside the tree (a loop resolves nowhere: no)."""
    try:
        return link.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
        return False


def _kind(path: Path) -> str | None:
    """What ``path`` is when not a regular file ("a FIFO", "a directory", ...), following
    symlinks; None for a regular file or when it cannot be told (reading will say why)."""
    try:
        return files.kind_of(files.stat(path).st_mode)
    except OSError:
        return None


def _walk_files(root: Path, errors: list[ReadError], exclude: PathPatterns | None) -> Iterator[Path]:
    for _, found in _walk(root, errors, exclude):
        yield from found


def _head(file: Path, errors: list[ReadError]) -> bytes | None:
    try:
        return files.read_head(file, SNIFF_BYTES)
    except OSError as error:
        errors.append(ReadError(str(file), error.strerror or str(error)))
        return None
