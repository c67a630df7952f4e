"""Find the runs under the paths a user gives, and read each with the right reader.

Formats are recognised by name and content, never by a flag (``--reader`` overrides):

- a directory holding event files is one TensorBoard run; Keras TF2 writes ``train/`` and
  ``validation/`` siblings, which become ONE run whose tags carry the split;
- an MLflow file-store run directory (``meta.yaml`` + ``metrics/``) is one run;
- every other file is offered to the file readers (JSON flavours first, then CSV) with its
  first 64 KiB; the first whose sniffer accepts it reads it (images, weights and archives,
  known by their endings, are passed over unopened);
- of Hugging Face ``checkpoint-N/trainer_state.json`` files under one output directory only
  one is read (a ``trainer_state.json`` beside the checkpoints, else the newest checkpoint):
  each holds the whole history up to N, so merging them would duplicate every point.

The walk never follows symlinked directories (no loops, no escape from the tree) and reads a
symlinked file only when it points inside the tree; nothing is ever written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from rundoctor import roles
from rundoctor.readers.base import FileReader, UnreadableInput
from rundoctor.series import NoteKind, ReadError, ReadNote, Run

SNIFF_BYTES = 64 * 1024
KERAS_SPLITS = ("train", "validation")
# Walked files with these endings are logs we are expected to understand; anything else that
# no reader claims (configs, checkpoints, images) is none of our business.
LOG_SUFFIXES = (".csv", ".jsonl", ".ndjson")
# Walked files with these endings are not opened at all: a run directory may hold thousands
# of images or checkpoints, and reading 64 KiB of each only to reject it costs more than the
# logs.  A file named on the command line is always read.
NEVER_LOGS = frozenset(
    ".png .jpg .jpeg .gif .bmp .webp .tif .tiff .mp4 .avi .mov .wav .mp3 "  # media
    ".pt .pth .ckpt .bin .safetensors .h5 .hdf5 .keras .onnx .tflite .npy .npz .pkl .pickle "  # weights, arrays
    ".zip .tar .gz .tgz .bz2 .xz .zst .7z".split()  # archives
)

Progress = Callable[[int, int, str], None]


@dataclass
class RunSource:
    """One run to read: which reader, where, and which files."""

    reader: str
    path: Path
    files: list[tuple[Path, str]]  # (file, tag prefix)
    notes: list[ReadNote] = field(default_factory=list)


def file_readers() -> tuple[FileReader, ...]:
    from rundoctor.readers import csv_logs, json_logs

    return (*json_logs.READERS, *csv_logs.READERS)


def reader_names() -> list[str]:
    return ["tensorboard", "mlflow", *(reader.name for reader in file_readers())]


def load_runs(
    paths: Sequence[Path],
    *,
    reader: str | None = None,
    role_overrides: dict[str, roles.Role] | None = None,
    verify: bool = False,
    progress: Progress | None = None,
) -> tuple[list[Run], list[ReadError]]:
    """Every run under ``paths``, roles assigned, sorted by id; and what could not be read."""
    sources: list[tuple[RunSource, Path]] = []
    errors: list[ReadError] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            errors.append(ReadError(str(path), "no such file or directory"))
            continue
        found, problems = find_sources(path, reader=reader)
        sources.extend((source, path) for source in found)
        errors.extend(problems)
        if not found and not problems:
            errors.append(ReadError(str(path), "no training logs found (no event files, CSV, JSON or MLflow runs)"))
    runs: list[Run] = []
    for done, (source, root) in enumerate(sources):
        if progress is not None:
            progress(done, len(sources), str(source.path))
        try:
            run = read_source(source, verify=verify)
        except UnreadableInput as error:
            errors.append(ReadError(str(source.path), str(error)))
            continue
        except (OSError, MemoryError) as error:
            errors.append(ReadError(str(source.path), f"{type(error).__name__}: {error}"))
            continue
        run.id = run_id(source.path, root)
        run.notes[:0] = source.notes
        runs.append(roles.assign(run, role_overrides))
    if progress is not None:
        progress(len(sources), len(sources), "")
    runs.sort(key=lambda r: r.id)
    return runs, errors


def run_id(path: Path, root: Path) -> str:
    """The run's path relative to the parent of the root the user named, in POSIX form."""
    base = root.resolve().parent if root.resolve() != Path(root.anchor or "/") else root.resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def read_source(source: RunSource, *, verify: bool = False) -> Run:
    if source.reader == "tensorboard":
        from rundoctor.readers.tensorboard import read_tensorboard_run

        return read_tensorboard_run(source.path, source.files, verify=verify)
    if source.reader == "mlflow":
        from rundoctor.readers.mlflow import read_mlflow_run

        return read_mlflow_run(source.path)
    by_name = {r.name: r for r in file_readers()}
    return by_name[source.reader].read(source.files[0][0])


def find_sources(root: Path, *, reader: str | None = None) -> tuple[list[RunSource], list[ReadError]]:
    """The runs under ``root`` (a file or a directory) and the paths that could not be walked."""
    from rundoctor.readers.mlflow import is_mlflow_run_dir
    from rundoctor.readers.tensorboard import is_event_file

    errors: list[ReadError] = []
    if root.is_file():
        return _explicit_file(root, reader, errors), errors
    if reader is not None and reader not in ("tensorboard", "mlflow"):
        files = sorted(p for p in _walk_files(root, errors))
        return [RunSource(reader, p, [(p, "")]) for p in files], errors

    sources: list[RunSource] = []
    event_files: dict[Path, list[Path]] = {}
    other_files: list[Path] = []
    for directory, files in _walk(root, errors):
        if is_mlflow_run_dir(directory):
            sources.append(RunSource("mlflow", directory, []))
            continue
        for file in files:
            (event_files.setdefault(directory, []).append(file) if is_event_file(file.name)
             else other_files.append(file))
    sources.extend(_tensorboard_sources(event_files))
    sources.extend(_file_sources(other_files, errors, explicit=False))
    return sources, errors


def _explicit_file(path: Path, reader: str | None, errors: list[ReadError]) -> list[RunSource]:
    from rundoctor.readers.tensorboard import is_event_file

    if reader is not None:
        return [RunSource(reader, path.parent if reader == "tensorboard" else path, [(path, "")])]
    if is_event_file(path.name):
        return [RunSource("tensorboard", path.parent, [(path, "")])]
    return _file_sources([path], errors, explicit=True)


def _walk(root: Path, errors: list[ReadError]):
    """(directory, files) for every directory under root, sorted; symlinked dirs not followed."""
    real_root = root.resolve()

    def on_error(error: OSError) -> None:
        errors.append(ReadError(str(error.filename or root), error.strerror or str(error)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        directory = Path(dirpath)
        files = []
        for name in sorted(filenames):
            file = directory / name
            if file.is_symlink():
                target = file.resolve()
                if not target.is_file():
                    errors.append(ReadError(str(file), "broken symlink"))
                    continue
                if not target.is_relative_to(real_root):
                    errors.append(ReadError(str(file), f"symlink points outside {root} (not followed)"))
                    continue
            files.append(file)
        yield directory, files


def _walk_files(root: Path, errors: list[ReadError]):
    for _, files in _walk(root, errors):
        yield from files


def _tensorboard_sources(event_files: dict[Path, list[Path]]) -> list[RunSource]:
    """One run per directory of event files; Keras train/validation siblings merged."""
    groups: dict[Path, list[tuple[Path, str]]] = {}
    for directory in sorted(event_files):
        files = sorted(event_files[directory], key=_event_file_order)
        split = directory.name
        if split in KERAS_SPLITS and directory.parent not in event_files:
            groups.setdefault(directory.parent, []).extend((f, f"{split}/") for f in files)
        else:
            groups.setdefault(directory, []).extend((f, "") for f in files)
    return [RunSource("tensorboard", path, files) for path, files in groups.items()]


def _event_file_order(path: Path) -> tuple[int, str]:
    """Event files sort by the creation time in their name (events.out.tfevents.<time>...)."""
    parts = path.name.split("tfevents.", 1)
    stamp = parts[1].split(".", 1)[0] if len(parts) == 2 else ""
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def _file_sources(files: list[Path], errors: list[ReadError], *, explicit: bool) -> list[RunSource]:
    if not files:
        return []
    from rundoctor.readers.json_logs import hf_checkpoint_step

    readers = file_readers()
    claimed: list[RunSource] = []
    hf_states: dict[Path, list[tuple[int, Path]]] = {}
    for file in files:
        if not explicit and file.suffix.lower() in NEVER_LOGS:
            continue
        head = _head(file, errors)
        if head is None:
            continue
        reader = next((r for r in readers if _sniffs(r, file, head)), None)
        if reader is None:
            if explicit or file.suffix.lower() in LOG_SUFFIXES:
                why = "empty file" if not head else "not a recognised training-log format"
                errors.append(ReadError(str(file), why))
            continue
        if reader.name == "hf-trainer":
            step = hf_checkpoint_step(file)
            output_dir = file.parent.parent if step is not None else file.parent
            hf_states.setdefault(output_dir, []).append((step if step is not None else 2**63 - 1, file))
            continue
        claimed.append(RunSource(reader.name, file, [(file, "")]))
    for output_dir, states in hf_states.items():
        states.sort()
        _, chosen = states[-1]
        source = RunSource("hf-trainer", chosen, [(chosen, "")])
        if len(states) > 1:
            source.notes.append(ReadNote(
                NoteKind.INFO, str(chosen),
                f"{len(states)} trainer_state.json files under {output_dir.name or output_dir}; "
                f"read {chosen.parent.name}/{chosen.name} (the newest holds the whole history), "
                "the others were not merged",
                count=len(states) - 1,
            ))
        claimed.append(source)
    return claimed


def _sniffs(reader: FileReader, file: Path, head: bytes) -> bool:
    try:
        return bool(reader.sniff(file, head))
    except Exception:  # a sniffer must never sink discovery; treat as "not mine"
        return False


def _head(file: Path, errors: list[ReadError]) -> bytes | None:
    try:
        with file.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError as error:
        errors.append(ReadError(str(file), error.strerror or str(error)))
        return None
