"""Placing records and building the run: points from placed cells, restarts and repeated steps noted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.json.cells import _Cells, _CellTable, _Part
from rundoctor.readers.text import line_ranges, plural
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

_LISTED_RANGES = 20  # line ranges spelled out in one note; its count says how many in all
_LISTED_RESTARTS = 10  # restarts noted one by one; beyond this, one note sums them up


# --------------------------------------------------------------------------------------------
# Placing records and building the run.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """Where each record's numbers go; a NaN step leaves the record out (already noted)."""

    steps: np.ndarray  # float64 per record
    is_tag: np.ndarray  # bool per key: its numbers are points (not the step, not bookkeeping)
    walls: np.ndarray | None = None  # float64 per record
    on_epochs: np.ndarray | None = None  # bool per record: its tags count epochs (validation)


def _usable_steps(
    raw: np.ndarray, cells: _Cells, source: str, what: str, considered: np.ndarray | None = None
) -> tuple[np.ndarray, list[ReadNote]]:
    """Steps that are whole numbers; the ``considered`` records without one are noted."""
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(raw) & (raw == np.floor(raw)) & (np.abs(raw) < 2.0**62)
    missing = ~usable if considered is None else ~usable & considered
    steps = np.where(usable if considered is None else usable & considered, raw, np.nan)
    if not missing.any():
        return steps, []
    lines = cells.positions[missing]
    return steps, [ReadNote(
        NoteKind.SKIPPED, source,
        f"{plural(lines.size, 'record')} without a whole-number {what} "
        f"{'was' if lines.size == 1 else 'were'} skipped",
        location=line_ranges(lines.tolist()), count=int(lines.size),
    )]


def _build(
    path: Path,
    format: str,
    cells: _Cells,
    placement: _Placement,
    notes: list[ReadNote],
    *,
    x_axis: XAxis,
    step_name: str,
    metadata: dict[str, str] | None = None,
    hparams: dict[str, str] | None = None,
) -> Run:
    """Points from placed cells, in log order; epoch-axis twins of iteration tags get ``val/``."""
    source = str(path)
    placed = ~np.isnan(placement.steps)
    if cells.records and not placed.any():
        raise UnreadableInput(f"no record has a usable {step_name}: not a {format} log")
    steps = np.where(placed, placement.steps, 0).astype(np.int64)
    on_epochs = placement.on_epochs
    all_placed = bool(placed.all())

    def kept(part: _Part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cells kept, their records, their tag slots): slot 2k is key k on the run's
        axis, 2k+1 the same key on the epoch axis."""
        wanted = placement.is_tag[part.key]
        record = part.record
        keep = np.flatnonzero(wanted if all_placed else wanted & placed[record])
        owners = record[keep]
        slots = part.key[keep] * 2
        return keep, owners, slots + on_epochs[owners] if on_epochs is not None else slots

    # Two passes over the parts: the first sizes the run and finds its tags, the second
    # writes the points straight into the run's arrays (one allocation, no joining), each
    # tag's points together and in log order, so that the builder need not regroup them (a
    # regrouping pass over every point cost ~1 s for 10M points; ranking the cells of each
    # part within their tag costs a fifth of that).
    slot_points = np.zeros(2 * len(cells.keys), dtype=np.int64)
    for part in cells.parts:
        slot_points += np.bincount(kept(part)[2], minlength=slot_points.size)
    seen = slot_points > 0
    builder = RunBuilder()
    codes = np.zeros(seen.size, dtype=np.int32)
    tag_axes: dict[str, XAxis] = {}
    for slot in np.flatnonzero(seen).tolist():
        name = cells.keys[slot // 2]
        if slot % 2:  # a validation (epoch-axis) tag
            if seen[slot - 1]:  # the same key is also a train tag: keep them apart
                name = f"val/{name}"
            if x_axis is not XAxis.EPOCH:
                tag_axes[name] = XAxis.EPOCH
        codes[slot] = builder.code(name)
    tags = int(codes.max(initial=-1)) + 1  # codes are 0, 1, ... in slot order
    tag_points = np.bincount(codes[seen], weights=slot_points[seen], minlength=tags).astype(np.int64)
    cursor = np.cumsum(tag_points) - tag_points  # where each tag's next point goes
    total = int(tag_points.sum())
    run_steps = np.empty(total, np.int64)
    run_values = np.empty(total, np.float64)
    run_walls = np.full(total, np.nan) if placement.walls is None else np.empty(total, np.float64)
    for part in cells.parts:
        keep, owners, slots = kept(part)
        part_codes = codes[slots]
        order = np.argsort(part_codes, kind="stable")
        part_points = np.bincount(part_codes, minlength=tags)
        first_of_tag = np.cumsum(part_points) - part_points  # within the part, once sorted
        ranked = part_codes[order]
        destination = np.empty(keep.size, np.int64)
        destination[order] = cursor[ranked] + np.arange(keep.size) - first_of_tag[ranked]
        cursor += part_points
        run_steps[destination] = steps[owners]
        run_values[destination] = part.value[keep]
        if placement.walls is not None:
            run_walls[destination] = placement.walls[owners]
    run_codes = np.repeat(np.arange(tags, dtype=np.int32), tag_points)
    builder.add_coded(run_codes, run_steps, run_values, run_walls)
    notes = notes + _nested_note(cells, placement.is_tag, source) + _repeat_notes(
        cells, placement, placed if on_epochs is None else placed & ~on_epochs, source, step_name)
    return builder.build(id=source, path=source, format=format, sources=[source], x_axis=x_axis,
                         tag_axes=tag_axes, notes=notes, metadata=metadata or {}, hparams=hparams or {})


def _empty_run(path: Path, format: str, notes: list[ReadNote], x_axis: XAxis) -> Run:
    return _build(path, format, _CellTable().cells(), _Placement(np.empty(0), np.empty(0, bool)), notes,
                  x_axis=x_axis, step_name="step")


def _nested_note(cells: _Cells, is_tag: np.ndarray, source: str) -> list[ReadNote]:
    """One note for all object and array values (wandb histograms, media): not scalars."""
    skipped = {key: n for key, n in cells.nested.items()
               if key not in cells.keys or is_tag[cells.keys.index(key)]}
    skipped = {key: n for key, n in skipped.items() if not key.startswith("_")}  # wandb's own
    if not skipped:
        return []
    total = sum(skipped.values())
    names = ", ".join(sorted(skipped)[:_LISTED_RANGES]) + (", ..." if len(skipped) > _LISTED_RANGES else "")
    return [ReadNote(NoteKind.SKIPPED, source,
                     f"{plural(total, 'nested value')} (objects or arrays such as histograms or "
                     f"media, not scalars) skipped under {names}", count=total)]


def _repeat_notes(
    cells: _Cells, placement: _Placement, main: np.ndarray, source: str, step_name: str
) -> list[ReadNote]:
    """Restarts (the step goes back) and records that log their predecessor's step again.

    Only records on the run's own axis count (validation records stepping by epoch do not).
    Two records at one step are a repeat only if they share a tag: Hugging Face and
    detectron2 write a train and an eval record at the same step by design.
    """
    records = np.flatnonzero(main)
    if records.size < 2:
        return []
    steps = placement.steps[records]
    back = np.flatnonzero(steps[1:] < steps[:-1]) + 1
    notes = [
        ReadNote(NoteKind.DUPLICATED, source,
                 f"{step_name} goes back from {int(steps[i - 1]):,} to {int(steps[i]):,}: a new start "
                 "was appended to the same file; both starts are kept (analysis uses the "
                 "last-written point of each step)", location=f"line {cells.positions[records[i]]}")
        for i in back[:_LISTED_RESTARTS].tolist()
    ]
    if back.size > _LISTED_RESTARTS:
        notes.append(ReadNote(NoteKind.DUPLICATED, source,
                              f"{step_name} goes back {back.size:,} times in all",
                              location=line_ranges(cells.positions[records[back]].tolist()),
                              count=int(back.size)))
    same = np.flatnonzero(steps[1:] == steps[:-1]) + 1
    if same.size:
        # Record i repeats record i-1 when both have a tag key k: with each cell coded as
        # (rank of its record) * K + k, the repeats are the codes found both as they are
        # and shifted one record on.  Vectorised: a file can hold a million such pairs.
        involved = np.zeros(placement.steps.size, dtype=bool)
        involved[records[same]] = involved[records[same - 1]] = True
        owner, key, _ = cells.cells_of(involved)
        tagged = placement.is_tag[key]
        rank, key = np.searchsorted(records, owner[tagged]), key[tagged].astype(np.int64)
        width = len(cells.keys)
        shared = np.intersect1d(rank * width + key, (rank + 1) * width + key)
        repeats = np.unique(shared // width)
        if repeats.size:
            first = int(repeats[0])
            lines = cells.positions[records[repeats]].tolist()
            common = sorted(cells.keys[k] for k in (shared[shared // width == first] % width).tolist())
            names = ", ".join(common[:3]) + (", ..." if len(common) > 3 else "")
            notes.append(ReadNote(
                NoteKind.DUPLICATED, source,
                f"{plural(repeats.size, 'record')} {'logs' if repeats.size == 1 else 'log'} the same "
                f"{step_name} as the record before, with tags in common (first: {step_name} "
                f"{int(steps[first]):,} at lines {cells.positions[records[first - 1]]} and {lines[0]}, "
                f"both with {names}); both points are kept",
                location=line_ranges(lines), count=int(repeats.size)))
    return notes


