"""From a table to a run: the step axis, repeated steps, wall times and the points."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.csv.header import _MILLISECOND_TIMES, AXIS_COLUMNS, _normalise
from rundoctor.readers.csv.table import _Table
from rundoctor.readers.text import MAX_STEP, integral_steps, line_list
from rundoctor.series import NoteKind, Run, RunBuilder, XAxis

# --------------------------------------------------------------------------------------------
# From a table to a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """The step of each row, and which rows have one."""

    steps: np.ndarray  # int64 per row (0 where the row has none)
    usable: np.ndarray  # bool per row
    x_axis: XAxis
    column: int | None  # the axis column, or None when rows are numbered instead


def _axis(table: _Table, position: int, x_axis: XAxis) -> _Axis:
    """Steps from an axis column; rows whose cell is not an integer step lose their points.

    A column of fractional values (epoch 0.25, 0.5, ...) cannot be a step: the rows are then
    numbered in file order, and a wide file keeps the column as a tag so no value is lost.
    """
    raw = table.values[position]
    whole = integral_steps(raw)
    fractional = table.numeric[position] & np.isfinite(raw) & (np.abs(raw) <= MAX_STEP) & ~whole
    usable = table.numeric[position] & whole
    name = table.names[position]
    if fractional.any():
        first = int(table.lines[np.flatnonzero(fractional)[0]])
        table.note(NoteKind.INFO,
                   f"column '{name}' holds fractional values (first on line {first}), so it cannot be the "
                   "step; rows are numbered in file order instead", [first])
        return _Axis(np.arange(table.rows, dtype=np.int64), np.ones(table.rows, dtype=bool), XAxis.ITERATION, None)
    unusable = np.flatnonzero(~usable)
    has_points = np.zeros(unusable.size, dtype=bool)
    for other, cells in enumerate(table.numeric):
        if other != position:
            has_points |= cells[unusable]
    lost_lines = table.lines[unusable[has_points]]
    if lost_lines.size:
        table.note(NoteKind.SKIPPED,
                   f"{lost_lines.size} row(s) without a usable '{name}' value; their points were dropped "
                   f"({line_list(lost_lines)})", lost_lines, int(lost_lines.size))
    steps = np.where(usable, raw, 0).astype(np.int64)
    return _Axis(steps, usable, x_axis, position)


def _note_repeated_steps(table: _Table, axis: _Axis, *, same_step_repeats: bool) -> None:
    """One DUPLICATED note when the axis goes back (a resumed run appending to its log).

    ``same_step_repeats``: a row at the same step as an earlier one is a repeat too (files
    with one row per step); in sparse files several rows legitimately share a step.
    """
    steps = axis.steps[axis.usable]
    if steps.size < 2:
        return
    reached = np.maximum.accumulate(steps)[:-1]
    later = steps[1:]
    repeated = (later <= reached) if same_step_repeats else (later < reached)
    if not repeated.any():
        return
    repeated_rows = np.flatnonzero(axis.usable)[1:][repeated]
    repeated_steps = later[repeated]
    restarts = int(np.count_nonzero(np.diff(np.concatenate(([False], repeated)).astype(np.int8)) == 1))
    name = table.names[axis.column] if axis.column is not None else "step"
    lines = table.lines[repeated_rows]
    table.note(NoteKind.DUPLICATED,
               f"{name} {int(repeated_steps.min())}..{int(repeated_steps.max())} logged again "
               f"({repeated_rows.size} row(s) after {restarts} restart(s), from {line_list(lines)}); "
               "both copies kept, the later one is used in analysis", lines, int(repeated_rows.size))


def _wall_times(table: _Table, position: int) -> np.ndarray:
    """Seconds since the epoch from a wall-time column: numbers (s or ms) or date-time text."""
    import pandas as pd
    values: np.ndarray = table.values[position]
    if position in table.texts:
        cells = pd.Series(table.texts[position], dtype=object).replace("", None)
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(values).any():
            moments = pd.to_datetime(cells, errors="coerce", utc=True, format="mixed")
            values = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(
                dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.median(np.abs(finite))) > _MILLISECOND_TIMES:
        values = values / 1000.0
    return values


def _build_wide_run(
    table: _Table,
    *,
    format: str,
    axis: _Axis,
    not_tags: Iterable[int] = (),
    wall_column: int | None = None,
    tag_axes: dict[str, XAxis] | None = None,
    metadata: dict[str, str] | None = None,
    hparams: dict[str, str] | None = None,
    sources: Sequence[str] = (),
) -> Run:
    """Every numeric cell of every tag column becomes a point at its row's step.

    Each column's points are taken straight into their slice of the run's arrays: no
    concatenation of 10 million points at the end.  The row indices come from flatnonzero, so
    ``take`` skips its bounds checks (``mode="clip"``), which halves the copy time.
    """
    excluded = set(not_tags) | {i for i, name in enumerate(table.names) if not name}
    if axis.column is not None:
        excluded.add(axis.column)
    if wall_column is not None:
        excluded.add(wall_column)
    builder = RunBuilder()
    tags = [position for position in range(len(table.names)) if position not in excluded]
    masks = [table.numeric[position] if axis.usable.all() else table.numeric[position] & axis.usable
             for position in tags]
    counts = [int(np.count_nonzero(mask)) for mask in masks]
    total = sum(counts)
    values = np.empty(total, dtype=np.float64)
    steps = np.empty(total, dtype=np.int64)
    row_walls = _wall_times(table, wall_column) if wall_column is not None else None
    # Without a wall-time column every wall time is NaN: a read-only view of one NaN stands in
    # for the 80 MB a 10-million-point run would otherwise allocate and fill.
    walls = np.empty(total, dtype=np.float64) if row_walls is not None else np.broadcast_to(np.float64(np.nan), total)
    start = 0
    for position, mask, count in zip(tags, masks, counts, strict=True):
        end = start + count
        rows = np.flatnonzero(mask)
        np.take(table.values[position], rows, out=values[start:end], mode="clip")
        np.take(axis.steps, rows, out=steps[start:end], mode="clip")
        if row_walls is not None:
            np.take(row_walls, rows, out=walls[start:end], mode="clip")
        start = end
    codes = np.array([builder.code(table.names[position]) for position in tags], dtype=np.int32)
    builder.add_coded(np.repeat(codes, counts), steps, values, walls)
    return builder.build(
        id=str(table.path),
        path=str(table.path),
        format=format,
        sources=[str(table.path), *sources],
        x_axis=axis.x_axis,
        tag_axes=tag_axes or {},
        notes=table.notes,
        metadata=metadata or {},
        hparams=hparams or {},
    )


def _axis_or_fail(table: _Table, names: Sequence[str]) -> tuple[int, XAxis]:
    normalised = [_normalise(name) for name in table.names]
    for axis_name in names:
        if axis_name in normalised:
            return normalised.index(axis_name), AXIS_COLUMNS[axis_name]
    wanted = ", ".join(names)
    raise UnreadableInput(f"no {wanted} column in the header ({', '.join(table.names)})")
