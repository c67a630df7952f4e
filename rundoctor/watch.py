"""``rundoctor watch``: follow runs that are still being written; report each finding once.

Every poll rediscovers the runs under PATH (runs that appear later are picked up), reads
what each log gained since the last poll, checks again the runs that changed, and prints
the findings that were not printed before, each with the step where it starts.

What a poll reads:

- TensorBoard event files: only the bytes after each file's offset
  (:func:`rundoctor.readers.tensorboard.read_event_file_increment`); a record still being
  written is left for the next poll, never reported as truncation.
- CSV and JSON-lines logs that grow by appended lines (Lightning, Ultralytics, Keras
  CSVLogger, wide and long CSV; mmengine, detectron2, wandb, generic JSON lines): only the
  complete lines appended since the last poll, a CSV's header line in front, go through
  the log's own reader, and their points are appended to the run.  A line still being
  written waits for its newline (writers flush in buffer-sized pieces, so a cut line can
  sit there for minutes).  A log whose header line changed was rewritten (Lightning
  rewrites its file when a new metric appears) and is read again whole.  The readers take
  paths, not bytes, so the new lines pass through a scratch file named like the log.
  Their notes would count lines from that file's start: when the new lines give any note
  but an informational one (a junk cell, a bad line, a repeated step), the log's complete
  lines are read again whole instead, so that every line number is right.  Informational
  notes (which tags a Lightning log keeps on the validation counter, ...) stay as the last
  whole read found them.
- Read again whole when they change: mmdetection logs (a train point's step depends on the
  largest iteration in the whole file), Hugging Face ``trainer_state.json`` and Keras
  history JSON (rewritten, not appended) and MLflow runs.  After the first poll, such a
  file is read once it has not changed for one poll, so that a file caught half-rewritten
  is not read.

``--once`` is one poll that reads every log whole, as it is, as ``check`` does: the same
findings as ``check``, a truncated last record or line included.

Which findings are new.  A finding is known by its run, check, tags and first step; a
finding whose step range grows (more NaN points, a longer plateau) keeps its first step
and is the same finding.  Smoothed checks can move a first step as points arrive (a
plateau's start shifts while the smoothing window fills), and a finding can drop out of a
report for a while (a still-improving curve that hit a NaN) and come back elsewhere: a
report's findings of a check on some tags with first steps not seen before are the same
findings as the known ones missing from the report, paired in step order.  Only findings
beyond that number are new: the latest ones by first step, since new events happen at the
end of a growing run.  A finding is printed again only if its severity rises: a transient
NaN is a warning, and when the loss goes NaN for good the same finding (same first step)
becomes an error, which is what ``--exit-on error`` waits for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np

from rundoctor import roles
from rundoctor.findings import Finding, Severity
from rundoctor.config import Settings
from rundoctor.discover import RunSource, find_sources, read_source, run_id
from rundoctor.engine import diagnose
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tensorboard import TensorBoardFollower
from rundoctor.report import Report, finding_order
from rundoctor.reporters.json_report import report_document
from rundoctor.reporters.jsonable import jsonable
from rundoctor.series import NoteKind, Run, RunBuilder

# Readers of logs that grow by whole lines, read a poll's new lines at a time.
CSV_READERS = frozenset({"lightning-csv", "ultralytics-csv", "keras-csv", "long-csv", "wide-csv"})
JSON_LINES_READERS = frozenset({"mmengine-json", "detectron2-json", "wandb-jsonl", "jsonl"})
# Logs that grow by lines but whose points depend on the whole file: read whole each time.
WHOLE_LINE_READERS = frozenset({"mmdet-json"})
# Every other format (documents that are rewritten, MLflow runs) is read again when it changed.


@dataclass(frozen=True)
class WatchOptions:
    interval: float = 5.0  # seconds between polls
    exit_on: Severity | None = None  # the lowest severity that stops the watch with exit 1
    timeout: float | None = None  # seconds after which the watch stops with exit 0
    once: bool = False  # one poll, then stop
    json_lines: bool = False  # one JSON object a finding instead of one line of text
    reader: str | None = None  # as --reader: force a reader instead of detecting the format


def watch(path: Path, settings: Settings, options: WatchOptions, out: TextIO, err: TextIO) -> int:
    """Poll ``path`` until a finding reaches ``options.exit_on`` (exit code 1), the timeout
    passes or one poll is done with ``once`` (exit code 0)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rundoctor-watch-") as scratch:
        watcher = Watcher(
            path, settings, scratch=Path(scratch), reader=options.reader, problems=err, once=options.once
        )
        while True:
            found = watcher.poll()
            for finding in found:
                out.write(finding_json(finding) if options.json_lines else finding_line(finding))
                out.flush()
            exit_on = options.exit_on
            if exit_on is not None and any(finding.severity.rank >= exit_on.rank for finding in found):
                return 1
            left = None if options.timeout is None else options.timeout - (time.monotonic() - started)
            if options.once or (left is not None and left <= 0):
                return 0
            time.sleep(options.interval if left is None else min(options.interval, left))


def finding_line(finding: Finding) -> str:
    step = "-" if finding.first_step is None else str(finding.first_step)
    return (
        f"[step {step}] {finding.run}: {finding.severity.value.upper()} {finding.code} "
        f"{finding.check}: {finding.message}\n"
    )


def finding_json(finding: Finding) -> str:
    """The finding as ``check --format json`` writes it, on one line."""
    document = report_document(Report(runs=(), findings=(finding,)))["findings"][0]
    return json.dumps(jsonable(document), ensure_ascii=False, allow_nan=False) + "\n"


class Watcher:
    """What a watch keeps between polls: a follower per run and the findings printed."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        scratch: Path,
        reader: str | None = None,
        problems: TextIO | None = None,
        once: bool = False,
    ) -> None:
        """``once``: a single poll, which reads every log whole, as ``check`` does."""
        self.root = root
        self.once = once
        self.settings = settings
        self.scratch = scratch
        self.reader = reader
        self.problems = problems
        self.followers: dict[tuple[str, Path], _Follower] = {}
        self.tracker = FindingTracker()
        self.reported: set[tuple[str, str]] = set()  # read problems already written
        self.discovery_problems: set[tuple[str, str]] = set()  # found by the last poll
        self.polls = 0

    def poll(self) -> list[Finding]:
        """Read what the runs gained, check the runs that changed; the new findings."""
        sources, errors = find_sources(self.root, reader=self.reader)
        # A file that is not a log yet may be one being created (empty, or its first line
        # half-written): say so only when a second poll finds it the same.
        problems = {(error.path, error.reason) for error in errors}
        for path, reason in problems if self.once else problems & self.discovery_problems:
            self._problem(path, reason)
        self.discovery_problems = problems
        changed: list[Run] = []
        for source in sources:
            key = (source.reader, source.path)
            follower = self.followers.get(key)
            if follower is None:
                follower = _follower(source, self.scratch, first_poll=self.polls == 0, once=self.once)
                self.followers[key] = follower
            try:
                run = follower.update(source)
            except UnreadableInput as error:
                self._problem(str(source.path), str(error))
                continue
            except (OSError, MemoryError) as error:
                self._problem(str(source.path), f"{type(error).__name__}: {error}")
                continue
            if run is not None:
                run = dataclasses.replace(
                    run, id=run_id(source.path, self.root), notes=[*source.notes, *run.notes]
                )
                changed.append(roles.assign(run, dict(self.settings.roles)))
        self.polls += 1
        if not changed:
            return []
        report = diagnose(changed, [], self.settings)
        found: list[Finding] = []
        for run in changed:
            found.extend(self.tracker.new(run.id, report.findings_for(run.id)))
        return sorted(found, key=finding_order)

    def _problem(self, path: str, reason: str) -> None:
        """Say once on stderr that a log could not be read (the watch goes on)."""
        if self.problems is not None and (path, reason) not in self.reported:
            self.reported.add((path, reason))
            self.problems.write(f"rundoctor: {path}: {reason}\n")
            self.problems.flush()


@dataclass
class FindingTracker:
    """The findings known so far: for each run, check and tags, the first step of each
    finding and the highest severity printed for it."""

    known: dict[tuple[str, str, tuple[str, ...]], dict[int | None, int]] = field(default_factory=dict)

    def new(self, run: str, findings: list[Finding]) -> list[Finding]:
        """The findings of a run's latest report to print: those not known before (see the
        module docstring for first steps that move) and those whose severity rose."""
        groups: dict[tuple[str, str, tuple[str, ...]], list[Finding]] = {}
        for finding in sorted(findings, key=_step_order):
            groups.setdefault((run, finding.code, finding.tags), []).append(finding)
        new: list[Finding] = []
        for key, group in groups.items():
            known = self.known.setdefault(key, {})
            steps = {finding.first_step for finding in group}
            unknown = [finding for finding in group if finding.first_step not in known]
            # Known findings missing from this report, as many as unknown ones, are those
            # findings with their first step moved: each takes the place of one, in order.
            missing = sorted((step for step in known if step not in steps), key=_none_first)
            for finding, was in zip(unknown, missing):
                known[finding.first_step] = known.pop(was)
            new.extend(unknown[len(missing) :])
            for finding in group:
                shown = known.get(finding.first_step, 0)
                if shown and finding.severity.rank > shown:  # a transient NaN became permanent
                    new.append(finding)
                known[finding.first_step] = max(shown, finding.severity.rank)
        return sorted(new, key=finding_order)


def _none_first(step: int | None) -> tuple[bool, int]:
    return (step is not None, step or 0)


def _step_order(finding: Finding) -> tuple[bool, int]:
    return _none_first(finding.first_step)


# ---------------------------------------------------------------------------------------
# Followers: one per run, each reading what its logs gained since the last poll.


class _Follower(Protocol):
    def update(self, source: RunSource) -> Run | None:
        """The run as read so far if it changed since the last call, else None."""


def _follower(source: RunSource, scratch: Path, *, first_poll: bool, once: bool) -> _Follower:
    if once:  # one poll: every log read whole, as it is, as check reads it
        return _Rewritten(settled=True)
    if source.reader == "tensorboard":
        return _TensorBoardRun(source.path)
    if source.reader in CSV_READERS or source.reader in JSON_LINES_READERS:
        return _LineLog(scratch, header=source.reader in CSV_READERS, whole=False)
    if source.reader in WHOLE_LINE_READERS:
        return _LineLog(scratch, header=False, whole=True)
    # Documents there at the start are taken as complete; later ones once they hold still.
    return _Rewritten(settled=first_poll)


class _TensorBoardRun:
    def __init__(self, run_dir: Path) -> None:
        self.follower = TensorBoardFollower(run_dir)

    def update(self, source: RunSource) -> Run | None:
        if not self.follower.poll(source.files):
            return None
        try:
            return self.follower.run()
        except UnreadableInput:  # no file holds a record yet
            return None


class _LineLog:
    """A log that grows by lines: the first read and any read after damage take the whole
    file, the others the complete lines appended since (see the module docstring)."""

    def __init__(self, scratch: Path, *, header: bool, whole: bool) -> None:
        self.scratch = scratch
        self.with_header = header
        self.whole = whole
        self.offset = 0  # bytes of complete lines read
        self.header = b""
        self.run: Run | None = None
        self.scratch_file: Path | None = None

    def update(self, source: RunSource) -> Run | None:
        path = source.files[0][0]
        size = path.stat().st_size
        if size == self.offset and self.run is not None:
            return None
        with path.open("rb") as file:
            header = file.readline() if self.with_header else b""
            if self.run is None or self.whole or size < self.offset or header != self.header:
                return self._read_whole(source, size)  # the first read, or the log was rewritten
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
        run = read_source(source)
        if path.stat().st_size != size:
            return None  # lines were appended while it was read: next poll
        with path.open("rb") as file:
            self.header = file.readline() if self.with_header else b""
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
            return read_source(part_source)
        except UnreadableInput:
            return None


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as file:
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
    )


class _Rewritten:
    """A log read again whole when it changed: at once at the first poll, later once it has
    not changed for one poll (a document caught half-rewritten is not read)."""

    def __init__(self, settled: bool) -> None:
        self.settled = settled
        self.seen: tuple[tuple[str, int, int], ...] | None = None
        self.read: tuple[tuple[str, int, int], ...] | None = None

    def update(self, source: RunSource) -> Run | None:
        signature = _signature(source)
        if signature == self.read:
            return None
        if signature != self.seen and not self.settled:
            self.seen = signature  # changed since the last poll: read it when it holds still
            return None
        self.settled = False
        run = read_source(source)
        if _signature(source) != signature:
            return None
        self.seen = self.read = signature
        return run


def _signature(source: RunSource) -> tuple[tuple[str, int, int], ...]:
    """Size and modification time of every file of the run (an MLflow run's whole tree)."""
    files = [path for path, _ in source.files] or sorted(
        Path(directory) / name for directory, _, names in os.walk(source.path) for name in names
    )
    signature = []
    for path in files:
        try:
            status = path.stat()
        except OSError:
            continue
        signature.append((str(path), status.st_size, status.st_mtime_ns))
    return tuple(signature)
