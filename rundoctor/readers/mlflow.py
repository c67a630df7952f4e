"""The MLflow file store: ``mlruns/<experiment>/<run_id>/`` is one run.

Layout (``mlflow.store.tracking.file_store``)::

    meta.yaml            run_name, status, start_time, end_time (ms), lifecycle_stage
    metrics/<key>        one line a point: "<timestamp_ms> <value> <step>" (old files: no step)
    params/<name>        the bare value, no line end
    tags/<name>          the bare value

Keys may hold ``/``, which the store turns into subdirectories, so all three folders are
walked recursively and a key is the file's path below its folder.  meta.yaml, params and tags
are side files (:mod:`rundoctor.readers.sidefiles`): read within its bounds, or left out with
a note, never at the cost of the metrics.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from rundoctor.readers import files, sidefiles
from rundoctor.readers.base import Reader, RunSource, UnreadableInput
from rundoctor.readers.follow import rewritten
from rundoctor.readers.text import integral_steps, line_list
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

# mlflow.entities.RunStatus: the store writes the number.
RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
# The store's own line ends; str.splitlines would also end a line at \v, \f, \x85, U+2028, ...
_LINE_END = re.compile(r"\r\n|\r|\n")


def is_mlflow_run_dir(path: Path) -> bool:
    """A run folder has a ``meta.yaml`` and a ``metrics`` folder (an experiment folder has no
    ``metrics``).  A ``meta.yaml`` that is no regular file still marks the run, whose metrics
    are read and its meta.yaml reported.  Never raises."""
    try:
        return sidefiles.is_present(path / "meta.yaml") and files.is_dir(path / "metrics")
    except OSError:
        return False


def read_mlflow_run(run_dir: Path) -> Run:
    """Every metric file of the run, its params, tags and meta.yaml; bad lines become notes."""
    if not files.is_dir(run_dir):
        raise UnreadableInput(f"{run_dir} is not a folder")
    notes: list[ReadNote] = []
    metadata = _meta(run_dir / "meta.yaml", notes)
    hparams = {}
    for folder in ("params", "tags"):
        for key, value in _key_files(run_dir / folder, notes):
            metadata[f"{folder}.{key}"] = value
            if folder == "params":  # what mlflow.log_params logged: the run's hyper-parameters
                hparams[key] = value
    builder = RunBuilder()
    sources = []
    for key, metric_file in _key_paths(run_dir / "metrics"):
        points = _metric_points(metric_file, notes)
        if points is None:
            continue
        steps, values, wall_times = points
        builder.add(key, steps, values, wall_times)
        sources.append(str(metric_file))
    return builder.build(
        id=str(run_dir),
        path=str(run_dir),
        format="mlflow",
        sources=sources,
        x_axis=XAxis.STEP,
        notes=notes,
        metadata=metadata,
        hparams=hparams,
    )


def _key_paths(folder: Path) -> list[tuple[str, Path]]:
    """Files below a folder with their keys (the relative path, ``/``-separated), sorted."""
    try:
        found = files.files_below(folder)
    except OSError:
        return []
    return [(path.relative_to(folder).as_posix(), path) for path in found]


def _key_files(folder: Path, notes: list[ReadNote]) -> list[tuple[str, str]]:
    """Each param or tag file's key and text; a file too large to be one is reported, not read."""
    pairs = []
    for key, path in _key_paths(folder):
        try:
            pairs.append((key, sidefiles.read_side_text(path, notes)))
        except sidefiles.SideFileRefused as refused:
            notes.append(refused.note)
    return pairs


def _read_text(path: Path, notes: list[ReadNote]) -> str | None:
    """A metric file's text, or None (with a note) when it cannot be read."""
    try:
        data = files.read_bytes(path)
    except OSError as error:
        notes.append(ReadNote(NoteKind.SKIPPED, str(path), f"cannot read: {error.strerror or error}"))
        return None
    return sidefiles.decode_text(data, path, notes)


def _meta(path: Path, notes: list[ReadNote]) -> dict[str, str]:
    """run_name, status, start and end (ISO 8601, UTC) from meta.yaml, when present."""
    if not sidefiles.is_present(path):
        return {}
    try:
        meta = sidefiles.load_yaml_bounded(path, notes)
    except sidefiles.SideFileRefused as refused:
        notes.append(refused.note)
        return {}
    if not isinstance(meta, dict):
        return {}
    metadata = {}
    if meta.get("run_name"):
        metadata["run_name"] = str(meta["run_name"])
    status = meta.get("status")
    if status is not None:
        metadata["status"] = RUN_STATUS.get(status, str(status)) if isinstance(status, int) else str(status)
    for key, name in (("start_time", "start"), ("end_time", "end")):
        moment = _iso_time(meta.get(key))
        if moment is not None:
            metadata[name] = moment
    if meta.get("lifecycle_stage") == "deleted":
        notes.append(ReadNote(NoteKind.INFO, str(path), "the run is marked deleted in MLflow"))
    return metadata


def _iso_time(milliseconds: object) -> str | None:
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)):
        return None
    try:
        moment = dt.datetime.fromtimestamp(milliseconds / 1000, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _metric_points(path: Path, notes: list[ReadNote]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(steps, values, wall times) of one metric file, or None when it cannot be opened.

    MLflow ends every line, so a last line without its line end was cut while being written:
    it is reported and not read (cut short, "<t> <v> 12" would read as step 1).  A file whose
    lines all hold three fields is converted in one go (numpy's object-to-float cast calls
    float() per token in C, so ``nan`` and ``inf`` read as MLflow wrote them); only a file
    with another line is walked line by line to say which lines were dropped.
    """
    text = _read_text(path, notes)
    if text is None:
        return None
    lines = _LINE_END.split(text)
    cut = lines.pop()  # "" when the file ends with a line end
    if cut:
        notes.append(ReadNote(NoteKind.TRUNCATED, str(path),
                              "the last line has no line end (cut while being written); not read",
                              f"line {len(lines) + 1}", 1))
    fields = [line.split() for line in lines]
    if fields and all(len(line_fields) == 3 for line_fields in fields):
        try:
            table = np.array(fields, dtype=object).astype(np.float64)
            if bool(np.all(integral_steps(table[:, 2]))):
                return table[:, 2].astype(np.int64), table[:, 1], table[:, 0] / 1000.0
        except ValueError:
            pass
    return _metric_points_by_line(path, fields, notes)


def _metric_points_by_line(
    path: Path, lines: list[list[str]], notes: list[ReadNote]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's fields on their own; lines that are no point are reported and skipped."""
    steps: list[int] = []
    values: list[float] = []
    wall_times: list[float] = []
    bad: list[int] = []
    for number, fields in enumerate(lines, start=1):
        if not fields:
            continue
        try:
            if len(fields) == 2:  # files written before MLflow 1.0 have no step; the store reads 0
                fields = [*fields, "0"]
            if len(fields) != 3:
                raise ValueError(fields)
            timestamp, value, step = float(fields[0]), float(fields[1]), float(fields[2])
            if not integral_steps(np.array([step]))[0]:
                raise ValueError(fields)
        except ValueError:
            bad.append(number)
            continue
        steps.append(int(step))
        values.append(value)
        wall_times.append(timestamp / 1000.0)
    if bad:
        notes.append(ReadNote(
            NoteKind.CORRUPT, str(path),
            f"{len(bad)} line(s) are not '<timestamp> <value> <step>' ({line_list(bad)}); skipped",
            f"line {bad[0]}", len(bad),
        ))
    return (np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64),
            np.array(wall_times, dtype=np.float64))


def _read(source: RunSource) -> Run:
    return read_mlflow_run(source.path)


READER = Reader("mlflow", _read, rewritten, claims_dir=is_mlflow_run_dir)
