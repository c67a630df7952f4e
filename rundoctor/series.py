"""The common time series every reader produces and every check consumes.

A run is one long table of scalar points ``(tag, step, wall_time, value)``: nothing is
resampled, deduplicated or purged.  Points are stored grouped by tag, each tag's points in
the order the log wrote them, so a curve is a view into the table rather than a copy.  Values are
float64 with NaN and +/-inf exactly as logged; wall_time is NaN where the format has none.
Tags are stored once and referenced by an int32 code per point (a categorical), which
keeps a run of millions of points at 28 bytes a point.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from rundoctor.roles import Role


class XAxis(str, enum.Enum):
    """What a step counts."""

    STEP = "step"
    EPOCH = "epoch"
    ITERATION = "iteration"


class NoteKind(str, enum.Enum):
    """What a read note is about; ``truncated`` and ``corrupt`` become findings."""

    SKIPPED = "skipped"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    DUPLICATED = "duplicated"
    OVERLAP = "overlap"
    INFO = "info"


@dataclass(frozen=True)
class ReadNote:
    """Something a reader wants the user to know about how a run was read."""

    kind: NoteKind
    source: str
    message: str
    location: str | None = None  # "offset 1234", "line 17", ...
    count: int | None = None  # how many records, lines or bytes the note is about

    def as_dict(self) -> dict[str, Any]:
        """The note as the JSON reports write it."""
        return {
            "kind": self.kind.value,
            "source": self.source,
            "location": self.location,
            "count": self.count,
            "message": self.message,
        }


@dataclass(frozen=True)
class ReadError:
    """An input that could not be read at all."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The error as the JSON reports write it."""
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Histogram:
    """One logged histogram: bucket right edges and counts (HistogramProto layout)."""

    step: int
    wall_time: float
    bucket_limits: np.ndarray
    bucket_counts: np.ndarray
    min: float = float("nan")
    max: float = float("nan")

    @property
    def total(self) -> float:
        """The number of values histogrammed: the sum of the bucket counts (0 for an empty histogram)."""
        return float(self.bucket_counts.sum())

    def mean(self) -> float:
        """Mean estimated from bucket centres (the edges of the outer buckets are min/max)."""
        limits = np.asarray(self.bucket_limits, dtype=np.float64)
        counts = np.asarray(self.bucket_counts, dtype=np.float64)
        if counts.sum() <= 0:
            return float("nan")
        lefts = np.concatenate(([self.min if np.isfinite(self.min) else limits[0]], limits[:-1]))
        rights = np.minimum(limits, self.max) if np.isfinite(self.max) else limits
        centres = (np.clip(lefts, -1e300, 1e300) + np.clip(rights, -1e300, 1e300)) / 2
        return float((centres * counts).sum() / counts.sum())


class HistogramColumns(Sequence[Histogram]):
    """One tag's histograms as columns: a run logging 100 layers 1,000 times holds 100 of these,
    not 100,000 objects of two arrays each.

    Each histogram's step, wall time, min and max are one element of a column; its bucket
    edges are ``limit_sizes[i]`` elements from ``limit_starts[i]`` of one shared flat array,
    its counts likewise in another (the two spans are the same for every histogram a writer
    makes; a malformed one keeps its unequal lengths, as logged).  A :class:`Histogram` is
    made when one is asked for, its arrays views into the flat ones, which are read-only so
    that no measurement can change another's buckets.  Checks that judge a few histograms of
    each tag make only those; :meth:`take` and :meth:`concat` reorder and join histograms
    without touching their buckets.
    """

    __slots__ = (
        "count_sizes",
        "count_starts",
        "counts",
        "limit_sizes",
        "limit_starts",
        "limits",
        "maxs",
        "mins",
        "steps",
        "wall_times",
    )

    def __init__(
        self,
        steps: np.ndarray,
        wall_times: np.ndarray,
        mins: np.ndarray,
        maxs: np.ndarray,
        spans: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        limits: np.ndarray,
        counts: np.ndarray,
    ) -> None:
        """``spans``: (limit starts, limit sizes, count starts, count sizes), one per histogram."""
        columns = (steps, wall_times, mins, maxs, *spans)
        if len({column.size for column in columns}) > 1:
            raise ValueError("the per-histogram columns must have one length")
        self.steps = steps.astype(np.int64, copy=False)
        self.wall_times = wall_times.astype(np.float64, copy=False)
        self.mins = mins.astype(np.float64, copy=False)
        self.maxs = maxs.astype(np.float64, copy=False)
        self.limit_starts, self.limit_sizes, self.count_starts, self.count_sizes = (
            span.astype(np.int64, copy=False) for span in spans
        )
        self.limits = limits.astype(np.float64, copy=False)
        self.counts = counts.astype(np.float64, copy=False)
        for starts, sizes, flat in ((self.limit_starts, self.limit_sizes, self.limits),
                                    (self.count_starts, self.count_sizes, self.counts)):
            if sizes.size and (int(starts.min()) < 0 or int(sizes.min()) < 0 or int((starts + sizes).max()) > flat.size):
                raise ValueError("a histogram's buckets lie outside the flat arrays")
            flat.flags.writeable = False

    @classmethod
    def of(cls, histograms: Iterable[Histogram]) -> HistogramColumns:
        """Columns holding copies of ``histograms``, in their order."""
        items = list(histograms)

        def flat(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            arrays = [np.asarray(getattr(h, name), np.float64).ravel() for h in items]
            sizes = np.array([array.size for array in arrays], np.int64)
            starts = np.cumsum(sizes) - sizes
            return starts, sizes, np.concatenate(arrays) if arrays else np.empty(0)

        limit_starts, limit_sizes, limits = flat("bucket_limits")
        count_starts, count_sizes, counts = flat("bucket_counts")
        return cls(
            np.array([h.step for h in items], np.int64),
            np.array([h.wall_time for h in items], np.float64),
            np.array([h.min for h in items], np.float64),
            np.array([h.max for h in items], np.float64),
            (limit_starts, limit_sizes, count_starts, count_sizes),
            limits,
            counts,
        )

    @classmethod
    def concat(cls, parts: Sequence[Sequence[Histogram]]) -> HistogramColumns:
        """The histograms of ``parts`` one after the other (a run's files, in order); each part's
        buckets are copied once, only those its histograms use."""
        if len(parts) == 1 and isinstance(parts[0], HistogramColumns):
            return parts[0]
        return cls.drain(list(parts))

    @classmethod
    def drain(cls, parts: list[Sequence[Histogram]]) -> HistogramColumns:
        """:meth:`concat` that empties ``parts``, letting each part go once its buckets are
        copied: a file's blocks of histograms and their join are then never all held at once
        (which would take twice their size at the end of reading)."""
        pieces = [part.compact() if isinstance(part, HistogramColumns) else cls.of(part) for part in parts]
        parts.clear()
        if len(pieces) <= 1:
            return pieces[0] if pieces else cls.of([])

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(piece, name) for piece in pieces])

        steps, wall_times, mins, maxs = joined("steps"), joined("wall_times"), joined("mins"), joined("maxs")
        limit_sizes, count_sizes = joined("limit_sizes"), joined("count_sizes")
        limits, counts = np.empty(int(limit_sizes.sum())), np.empty(int(count_sizes.sum()))
        limit_at = count_at = 0
        while pieces:
            piece = pieces.pop(0)
            limits[limit_at : limit_at + piece.limits.size] = piece.limits
            counts[count_at : count_at + piece.counts.size] = piece.counts
            limit_at, count_at = limit_at + piece.limits.size, count_at + piece.counts.size
        spans = (np.cumsum(limit_sizes) - limit_sizes, limit_sizes, np.cumsum(count_sizes) - count_sizes, count_sizes)
        return cls(steps, wall_times, mins, maxs, spans, limits, counts)

    def take(self, indices: np.ndarray) -> HistogramColumns:
        """The histograms at ``indices``, in that order, sharing these buckets (checked once, when
        these columns were made: a subset of valid spans is valid, so nothing is checked again)."""
        taken: HistogramColumns = object.__new__(HistogramColumns)
        for name in self.__slots__:
            column = getattr(self, name)
            setattr(taken, name, column if name in ("limits", "counts") else column[indices])
        return taken

    def compact(self) -> HistogramColumns:
        """These histograms with flat arrays of their own buckets only, in their order (a
        :meth:`take` of a few shares the flat arrays of all)."""
        if _dense(self.limit_starts, self.limit_sizes, self.limits) and _dense(
            self.count_starts, self.count_sizes, self.counts
        ):
            return self
        limit_starts, limits = _gathered(self.limit_starts, self.limit_sizes, self.limits)
        count_starts, counts = _gathered(self.count_starts, self.count_sizes, self.counts)
        return HistogramColumns(
            self.steps, self.wall_times, self.mins, self.maxs,
            (limit_starts, self.limit_sizes, count_starts, self.count_sizes), limits, counts,
        )

    def __reduce__(self) -> tuple[type[HistogramColumns], tuple[object, ...]]:
        """Pickled (``--jobs`` hands runs between processes) as the arguments that make it again,
        checked and read-only."""
        spans = (self.limit_starts, self.limit_sizes, self.count_starts, self.count_sizes)
        return HistogramColumns, (self.steps, self.wall_times, self.mins, self.maxs, spans, self.limits, self.counts)

    def __len__(self) -> int:
        return int(self.steps.size)

    def _at(self, index: int) -> Histogram:
        limit_start, count_start = int(self.limit_starts[index]), int(self.count_starts[index])
        return Histogram(
            int(self.steps[index]),
            float(self.wall_times[index]),
            self.limits[limit_start : limit_start + int(self.limit_sizes[index])],
            self.counts[count_start : count_start + int(self.count_sizes[index])],
            float(self.mins[index]),
            float(self.maxs[index]),
        )

    @overload
    def __getitem__(self, index: int) -> Histogram: ...

    @overload
    def __getitem__(self, index: slice) -> HistogramColumns: ...

    def __getitem__(self, index: int | slice) -> Histogram | HistogramColumns:
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        return self._at(range(len(self))[index])  # IndexError and negative indices as a list has them

    def __iter__(self) -> Iterator[Histogram]:
        limits, counts = self.limits, self.counts
        columns = zip(self.steps.tolist(), self.wall_times.tolist(), self.mins.tolist(), self.maxs.tolist(),
                      self.limit_starts.tolist(), self.limit_sizes.tolist(), self.count_starts.tolist(),
                      self.count_sizes.tolist())
        for step, wall_time, low, high, limit_start, limit_size, count_start, count_size in columns:
            yield Histogram(step, wall_time, limits[limit_start : limit_start + limit_size],
                            counts[count_start : count_start + count_size], low, high)

    def __repr__(self) -> str:
        return f"HistogramColumns({len(self)} histograms, {self.limits.size} bucket edges)"

    def by_step(self) -> HistogramColumns:
        """Sorted by step, the last-written histogram of a repeated step kept (as
        :attr:`Curve.by_step` keeps a repeated point)."""
        steps = self.steps
        if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
            return self
        _, first_in_reversed = np.unique(steps[::-1], return_index=True)
        return self.take(steps.size - 1 - first_in_reversed)


def _dense(starts: np.ndarray, sizes: np.ndarray, flat: np.ndarray) -> bool:
    """Whether spans tile ``flat`` exactly, one after the other."""
    ends = np.cumsum(sizes)
    return bool(flat.size == (int(ends[-1]) if ends.size else 0) and np.array_equal(starts, ends - sizes))


def _gathered(starts: np.ndarray, sizes: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(new starts, the spans' elements one after the other)."""
    ends = np.cumsum(sizes)
    new_starts = ends - sizes
    width = int(sizes[0]) if sizes.size else 0
    if width and flat.size % width == 0 and bool(np.all(sizes == width)) and not bool(np.any(starts % width)):
        # Histograms of one bucket count (a TF2 writer's, one layer's): rows of a table,
        # moved whole without an index per bucket.
        return new_starts, flat.reshape(-1, width)[starts // width].ravel()
    index_type = np.int32 if flat.size < 2**31 else np.int64
    index = np.repeat((starts - new_starts).astype(index_type), sizes) + np.arange(
        int(ends[-1]) if ends.size else 0, dtype=index_type
    )
    return new_starts, flat[index]


@dataclass(frozen=True)
class Curve:
    """One tag's points in the order they were logged."""

    tag: str
    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.steps.size)

    @cached_property
    def by_step(self) -> Curve:
        """The curve analysis uses: sorted by step, the last-written point of each step.

        A resumed run rewrites steps it had logged before; the newer point is the one the
        training continued from.  The overwritten points stay in the run and are reported by
        the duplicate-steps check; only analysis uses this view.
        """
        steps = self.steps
        if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
            return self
        reversed_steps = steps[::-1]
        _, first_in_reversed = np.unique(reversed_steps, return_index=True)
        keep = steps.size - 1 - first_in_reversed  # ascending step order
        return Curve(self.tag, steps[keep], self.values[keep], self.wall_times[keep])

    @cached_property
    def finite(self) -> Curve:
        """The points with a finite value (computed once: most checks ask for it)."""
        mask = np.isfinite(self.values)
        if bool(mask.all()):
            return self
        return Curve(self.tag, self.steps[mask], self.values[mask], self.wall_times[mask])


@dataclass
class Run:
    """One training run: its points, where they came from, and how they were read."""

    id: str
    path: str  # the run directory (TensorBoard, MLflow) or the log file
    format: str  # reader name, e.g. "tensorboard", "lightning-csv"
    sources: list[str]
    tag_names: list[str]
    tag_codes: np.ndarray  # int32, one per point, index into tag_names
    steps: np.ndarray  # int64
    wall_times: np.ndarray  # float64
    values: np.ndarray  # float64
    x_axis: XAxis = XAxis.STEP
    tag_axes: dict[str, XAxis] = field(default_factory=dict)  # tags whose axis differs
    notes: list[ReadNote] = field(default_factory=list)
    histograms: dict[str, Sequence[Histogram]] = field(default_factory=dict)  # a list, or HistogramColumns
    metadata: dict[str, str] = field(default_factory=dict)  # params, hparams, config
    # The hyper-parameters the run logged (Lightning's hparams.yaml, TensorBoard's hparams plugin,
    # Hugging Face's training arguments, MLflow's params), flattened to "a.b" keys, values as text:
    # what a sweep is compared by (rundoctor.sweep), apart from metadata that describes the run.
    hparams: dict[str, str] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)  # tag -> role, set by roles.assign

    @property
    def points(self) -> int:
        """Scalar points of the run, every tag, non-finite and repeated ones included."""
        return int(self.values.size)

    def axis_of(self, tag: str) -> XAxis:
        """What the tag's steps count: its own axis when the reader set one, else the run's."""
        return self.tag_axes.get(tag, self.x_axis)

    @cached_property
    def _slices(self) -> dict[str, slice | np.ndarray]:
        """Where each tag's points are: a slice when the run is grouped by tag (as
        :class:`RunBuilder` leaves it, so curves are views, not copies), else index arrays."""
        codes = self.tag_codes
        if codes.size == 0:
            return {}
        counts = np.bincount(codes, minlength=len(self.tag_names))
        if is_grouped(codes):
            bounds = np.concatenate(([0], np.cumsum(counts)))
            return {
                name: slice(int(bounds[i]), int(bounds[i + 1]))
                for i, name in enumerate(self.tag_names)
                if counts[i]
            }
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(counts)))
        return {
            name: order[bounds[i] : bounds[i + 1]]
            for i, name in enumerate(self.tag_names)
            if counts[i]
        }

    @property
    def tags(self) -> list[str]:
        """Tags that have at least one point, in first-logged order of their names."""
        return [name for name in self.tag_names if name in self._slices]

    def point_count(self, tag: str) -> int:
        """Points logged for the tag, repeats included, counted without gathering them; 0 for an
        unknown tag."""
        index = self._slices.get(tag)
        if index is None:
            return 0
        return index.stop - index.start if isinstance(index, slice) else int(index.size)

    def curve(self, tag: str) -> Curve:
        """The tag's points in log order, repeats kept (``RunContext.curve`` sorts them): views into
        the run when it is grouped, an empty curve for an unknown tag."""
        index = self._slices.get(tag)
        if index is None:
            empty = np.empty(0)
            return Curve(tag, empty.astype(np.int64), empty, empty)
        return Curve(tag, self.steps[index], self.values[index], self.wall_times[index])

    def tags_with(self, *roles: Role) -> list[str]:
        """Tags whose role is one of ``roles``, in the run's tag order; empty before roles are assigned."""
        return [tag for tag in self.tags if self.roles.get(tag) in roles]

    def frame(self) -> pd.DataFrame:
        """The long table as a DataFrame with a categorical tag column."""
        import pandas as pd

        tags = pd.Categorical.from_codes(self.tag_codes, categories=self.tag_names)
        return pd.DataFrame(
            {"tag": tags, "step": self.steps, "wall_time": self.wall_times, "value": self.values}
        )

    def to_pandas(self, *, wide: bool = False) -> pd.DataFrame:
        """The run as a DataFrame, every point kept and non-finite values as logged.

        Long (the default, tbparse's shape): one row a point, columns ``step``, ``tag`` (a
        categorical), ``value`` and ``wall_time`` (NaN where the format has none), each tag's
        points in the order they were logged, repeated steps (resumes, restarts) included.

        ``wide=True``: one row a step (sorted), a ``step`` column and one column a tag.  A step
        logged more than once keeps its last-written value, as the checks read it (the long
        shape has the others); a tag not logged at a step is NaN there, so in this shape a
        missing point and a logged NaN look alike.
        """
        import pandas as pd

        if not wide:
            tags = pd.Categorical.from_codes(self.tag_codes, categories=self.tag_names)
            return pd.DataFrame({"step": self.steps, "tag": tags, "value": self.values, "wall_time": self.wall_times})
        columns = []
        for tag in self.tags:
            curve = self.curve(tag).by_step
            columns.append(pd.Series(curve.values, index=pd.Index(curve.steps, name="step"), name=tag))
        if not columns:
            return pd.DataFrame({"step": np.empty(0, dtype=np.int64)})
        table = pd.concat(columns, axis=1, sort=True)
        return table.reset_index(allow_duplicates=True)


class RunBuilder:
    """Collects points block by block and builds a :class:`Run` with one concatenation."""

    def __init__(self) -> None:
        self._tag_index: dict[str, int] = {}
        self._codes: list[np.ndarray] = []
        self._steps: list[np.ndarray] = []
        self._walls: list[np.ndarray] = []
        self._values: list[np.ndarray] = []

    def code(self, tag: str) -> int:
        """The tag's integer code, assigned in order of first appearance."""
        return self._tag_index.setdefault(tag, len(self._tag_index))

    def add(
        self,
        tag: str,
        steps: Iterable[int] | np.ndarray,
        values: Iterable[float] | np.ndarray,
        wall_times: Iterable[float] | np.ndarray | None = None,
    ) -> None:
        """Add the points of one tag (any length, in log order)."""
        value_array = np.asarray(values, dtype=np.float64)
        step_array = np.asarray(steps, dtype=np.int64)
        wall_array = (
            np.full(value_array.size, np.nan)
            if wall_times is None
            else np.asarray(wall_times, dtype=np.float64)
        )
        self.add_coded(np.full(value_array.size, self.code(tag), np.int32), step_array, value_array, wall_array)

    def add_coded(
        self, codes: np.ndarray, steps: np.ndarray, values: np.ndarray, wall_times: np.ndarray
    ) -> None:
        """Add points of several tags at once; ``codes`` come from :meth:`code`."""
        if not (codes.size == steps.size == values.size == wall_times.size):
            raise ValueError("codes, steps, values and wall_times must have one length")
        self._codes.append(codes.astype(np.int32, copy=False))
        self._steps.append(steps.astype(np.int64, copy=False))
        self._walls.append(wall_times.astype(np.float64, copy=False))
        self._values.append(values.astype(np.float64, copy=False))

    def build(self, *, id: str, path: str, format: str, sources: Sequence[str], **extra: Any) -> Run:
        """The run of every point added, each tag's points contiguous in log order; the builder lets
        go of its blocks, so build once."""
        def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            if not parts:
                return np.empty(0, dtype=dtype)
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        columns = [
            joined(self._codes, np.int32),
            joined(self._steps, np.int64),
            joined(self._walls, np.float64),
            joined(self._values, np.float64),
        ]
        self._codes, self._steps, self._walls, self._values = [], [], [], []  # let grouping free them
        codes, steps, walls, values = group_by_tag(columns)
        return Run(
            id=id,
            path=path,
            format=format,
            sources=list(sources),
            tag_names=list(self._tag_index),
            tag_codes=codes,
            steps=steps,
            wall_times=walls,
            values=values,
            **extra,
        )


def is_grouped(codes: np.ndarray) -> bool:
    """True when each tag's points are contiguous with tags in code order."""
    return codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1]))


# Up to this many tags, one pass per tag beats a sort and needs no int64 index per point.
_TAGS_FOR_PASSES = 64


def group_by_tag(columns: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Reorder points so each tag's points are contiguous, each tag's in log order.

    ``columns`` is ``[codes, steps, wall_times, values]`` and is emptied as it goes: a stable
    counting sort gives each point an int32 destination, the old codes are dropped, then one
    column at a time is moved into place and its original let go.  Memory peaks at the kept
    points plus 8 bytes a point instead of twice the run, and a grouped run hands out curves
    as views (see ``Run._slices``).
    """
    codes = columns[0]
    if is_grouped(codes):
        return tuple(columns)
    counts = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    index_type = np.int32 if codes.size < 2**31 else np.int64
    destination = np.empty(codes.size, dtype=index_type)
    if counts.size <= _TAGS_FOR_PASSES:
        for code in np.flatnonzero(counts):
            destination[codes == code] = np.arange(starts[code], starts[code] + counts[code], dtype=index_type)
    else:
        destination[np.argsort(codes, kind="stable")] = np.arange(codes.size, dtype=index_type)
    columns[0] = codes = None  # type: ignore[assignment, call-overload]  # release the codes before the moves
    moved_columns = []
    for position in range(1, len(columns)):
        column, columns[position] = columns[position], None  # type: ignore[call-overload]
        moved = np.empty_like(column)
        moved[destination] = column
        moved_columns.append(moved)
        del column
    del destination
    return (np.repeat(np.arange(counts.size, dtype=np.int32), counts), *moved_columns)
