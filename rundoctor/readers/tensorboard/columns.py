"""What decoding one event file gathers: its points in growing columns, in file order."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from rundoctor.readers.tensorboard.values import _SkipTally
from rundoctor.readers.tfrecord import (
    RecordWalker,
)
from rundoctor.series import HistogramColumns, ReadNote


@dataclass(frozen=True)
class _FileScalars:
    """One file's scalar points in file order; ``codes`` index ``tags`` (prefixed names,
    in first-logged order)."""

    path: Path
    tags: list[str]
    codes: np.ndarray
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray

    @cached_property
    def step_ranges(self) -> dict[str, tuple[int, int]]:
        """First and last step of each tag (only asked for when a run has several files)."""
        if self.steps.size == 0:
            return {}
        lows = np.full(len(self.tags), np.iinfo(np.int64).max)
        highs = np.full(len(self.tags), np.iinfo(np.int64).min)
        np.minimum.at(lows, self.codes, self.steps)
        np.maximum.at(highs, self.codes, self.steps)
        return {tag: (int(lo), int(hi)) for tag, lo, hi in zip(self.tags, lows, highs) if lo <= hi}


@dataclass(frozen=True)
class _FileContent:
    scalars: _FileScalars
    histograms: dict[str, HistogramColumns]
    plugins: dict[str, str]
    notes: list[ReadNote]
    hparams: dict[str, str]  # the file's logged hyper-parameters (readers.tensorboard.hparams)


# ---------------------------------------------------------------------------------------
# One file.


@dataclass(frozen=True)
class _Checkpoint:
    """An :class:`EventFileState` before a window was decoded (see ``_checkpoint``)."""

    walker: RecordWalker
    tag_codes: dict[str, int]
    codes: int  # how many local codes there were
    first_metadata: dict[str, tuple[int, str]]
    first_seen: dict[str, tuple[int, int]]
    histogram_counts: tuple[int, int]  # HistogramStore.mark()
    tally: _SkipTally
    damage: int  # how many damage notes there were
    hparams: dict[str, str]


@dataclass
class _Batch:
    """Points of one value slot of fast-path records that share a layout, one per record."""

    records: np.ndarray  # record numbers in the file
    slot: int  # which value of the record's summary
    codes: np.ndarray  # local tag codes
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray
    is_tensor: bool | np.ndarray  # for the protobuf path's batch, a mask


@dataclass
class _SlowPoints:
    """Points of records decoded by protobuf, one entry per point."""

    records: array[int] = field(default_factory=lambda: array("q"))
    codes: array[int] = field(default_factory=lambda: array("q"))
    steps: array[int] = field(default_factory=lambda: array("q"))
    wall_times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    is_tensor: array[int] = field(default_factory=lambda: array("b"))

    def add(self, record: int, code: int, step: int, wall_time: float, value: float, is_tensor: bool) -> None:
        self.records.append(record)
        self.codes.append(code)
        self.steps.append(step)
        self.wall_times.append(wall_time)
        self.values.append(value)
        self.is_tensor.append(is_tensor)


_EMPTY = np.empty(0)


def _place(column: np.ndarray, order: np.ndarray | None, out: np.ndarray) -> None:
    """Write ``column`` into ``out`` in the given order (None: as it is)."""
    if order is None:
        out[:] = column
    else:
        np.take(column, order, out=out)


class _PointColumns:
    """The points kept from a file: int32 tag code, int64 step, float64 wall time and value
    (28 bytes a point), grown window by window.

    Each column grows in place (``ndarray.resize``: a ``realloc`` that the C library serves
    for large blocks by remapping pages, so a column is never held twice, as growing by
    copying or concatenating at the end would); a column whose memory someone else still
    holds (a run built from it while the file is followed) is copied instead.
    """

    DTYPES = (np.int32, np.int64, np.float64, np.float64)

    def __init__(self) -> None:
        self.columns = [np.empty(0, dtype) for dtype in self.DTYPES]

    @property
    def count(self) -> int:
        return int(self.columns[0].size)

    def grow(self, added: int) -> list[np.ndarray]:
        """Room for ``added`` more points: the new slots of each column, to be filled."""
        start = self.count
        for index in range(len(self.columns)):
            try:
                # Called on the list item itself: a local name would be one reference too
                # many for resize's check that nothing else holds the array.
                self.columns[index].resize(start + added)
            except ValueError:
                grown = np.empty(start + added, self.DTYPES[index])
                grown[:start] = self.columns[index]
                self.columns[index] = grown
        return [column[start:] for column in self.columns]
