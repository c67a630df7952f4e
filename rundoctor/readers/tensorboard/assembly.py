"""Run assembly: the event files of a run merged in order, with their overlaps noted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tensorboard.columns import _FileContent, _FileScalars
from rundoctor.readers.tensorboard.values import _NotAnEventFile
from rundoctor.readers.tensorboard.windows import _read_event_file
from rundoctor.series import HistogramColumns, NoteKind, ReadNote, Run, RunBuilder, XAxis


def read_tensorboard_run(
    run_dir: Path,
    files: Sequence[tuple[Path, str]],
    *,
    reference: bool = False,
) -> Run:
    """One run from its event files, merged in the given order with each file's tag prefix.

    Payload checksums are always verified (cheap, see the module docstring).
    ``reference=True`` decodes every record with protobuf.
    """
    assembly = _RunAssembly()
    for path, prefix in files:
        try:
            content = _read_event_file(Path(path), prefix, assembly.plugins, reference)
        except _NotAnEventFile as problem:
            assembly.add_unreadable(Path(path), problem)
            continue
        assembly.add(content)
        del content  # the builder holds the only reference to the points: grouping can free them
    return assembly.build(run_dir, [path for path, _ in files])


class _RunAssembly:
    """The files of a run merged in order: points, notes, histograms, and the plugin each
    tag's first metadata in the run names (later files inherit it)."""

    def __init__(self) -> None:
        self.builder = RunBuilder()
        self.plugins: dict[str, str] = {}  # prefixed tag -> plugin named by its first metadata
        self.hparams: dict[str, str] = {}  # a key logged by several files keeps its first value
        self.notes: list[ReadNote] = []
        self.histograms: dict[str, list[HistogramColumns]] = {}  # each file's, in run order
        self.unreadable: list[str] = []
        self.read_files: list[_FileScalars] = []

    def add_unreadable(self, path: Path, problem: _NotAnEventFile) -> None:
        self.unreadable.append(f"{path.name}: {problem.reason}")
        self.notes.append(ReadNote(problem.kind, str(path), f"not read: {problem.reason}"))

    def add(self, content: _FileContent) -> None:
        for tag, plugin in content.plugins.items():
            self.plugins.setdefault(tag, plugin)
        for key, text in content.hparams.items():
            self.hparams.setdefault(key, text)
        self.notes.extend(content.notes)
        for tag, columns in content.histograms.items():
            self.histograms.setdefault(tag, []).append(columns)
        scalars = content.scalars
        self.notes.extend(_overlaps(scalars, self.read_files))
        self.read_files.append(scalars)
        lut = np.array([self.builder.code(tag) for tag in scalars.tags], np.int32)
        # The first file's tags are the run's first codes: its points need no recoding.
        same = bool(np.array_equal(lut, np.arange(lut.size)))
        codes = scalars.codes if same else lut[scalars.codes]
        self.builder.add_coded(codes, scalars.steps, scalars.values, scalars.wall_times)

    def build(self, run_dir: Path, sources: Sequence[Path]) -> Run:
        if not self.read_files:
            raise UnreadableInput("; ".join(self.unreadable) if self.unreadable else "no event files")
        self.read_files.clear()  # overlaps are noted; the builder holds the only copy of the points
        return self.builder.build(
            id=str(run_dir),
            path=str(run_dir),
            format="tensorboard",
            sources=[str(path) for path in sources],
            x_axis=XAxis.STEP,
            notes=self.notes,
            histograms={tag: HistogramColumns.concat(parts) for tag, parts in self.histograms.items()},
            hparams=self.hparams,
        )


def _overlaps(later: _FileScalars, earlier_files: list[_FileScalars]) -> list[ReadNote]:
    """One note per earlier file whose steps the later file logs again for the same tags."""
    notes = []
    for earlier in earlier_files:
        shared: dict[str, tuple[int, int]] = {}
        for tag, (low, high) in earlier.step_ranges.items():
            if tag in later.step_ranges:
                start, end = max(low, later.step_ranges[tag][0]), min(high, later.step_ranges[tag][1])
                if start <= end:
                    shared[tag] = (start, end)
        if not shared:
            continue
        lows = np.array([shared.get(tag, (1, 0))[0] for tag in later.tags], np.int64)
        highs = np.array([shared.get(tag, (1, 0))[1] for tag in later.tags], np.int64)
        inside = (later.steps >= lows[later.codes]) & (later.steps <= highs[later.codes])
        start = min(low for low, _ in shared.values())
        end = max(high for _, high in shared.values())
        notes.append(
            ReadNote(
                NoteKind.OVERLAP,
                str(later.path),
                f"{later.path.name} logs steps {start}..{end} of {len(shared)} tag(s) again, "
                f"already logged in {earlier.path.name} (a restart?); both segments kept",
                location=f"steps {start}..{end}",
                count=int(inside.sum()),
            )
        )
    return notes
