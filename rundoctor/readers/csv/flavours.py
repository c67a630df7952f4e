"""The five CSV flavours (see the package docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rundoctor.readers import sidefiles
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.csv.build import (
    _Axis,
    _axis,
    _axis_or_fail,
    _build_wide_run,
    _note_repeated_steps,
    _wall_times,
)
from rundoctor.readers.csv.header import (
    AXIS_COLUMNS,
    LONG_TAG_COLUMNS,
    WALL_TIME_COLUMNS,
    _normalise,
)
from rundoctor.readers.csv.table import _read_table, _Table
from rundoctor.readers.text import line_list
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

# --------------------------------------------------------------------------------------------
# The five flavours
# --------------------------------------------------------------------------------------------


def read_lightning(path: Path) -> Run:
    """A Lightning ``metrics.csv``: steps from its ``step`` column, ``epoch`` not a tag, validation-step
    tags on their own axis, and ``hparams.yaml`` beside it as metadata when there is one."""
    table = _read_table(path)
    step_column, x_axis = _axis_or_fail(table, ["step"])
    axis = _axis(table, step_column, x_axis)
    epoch_columns = [i for i, name in enumerate(table.names) if _normalise(name) == "epoch"]
    tag_axes = _validation_step_tags(table, epoch_columns, axis)
    hparams, sources = _lightning_hparams(path, table)
    return _build_wide_run(table, format="lightning-csv", axis=axis, not_tags=epoch_columns,
                           tag_axes=tag_axes, metadata=hparams, hparams=hparams, sources=sources)


def _validation_step_tags(table: _Table, epoch_columns: list[int], axis: _Axis) -> dict[str, XAxis]:
    """Tags of Lightning's validation-step rows, which count steps on the validation loop's own
    counter, not the training step.

    Two kinds of rows have a step and no epoch: validation-step rows, and the rows of loggers
    called directly, such as ``LearningRateMonitor`` (``lr-Adam``), whose step is the training
    step.  A tag logged only in such rows counts validation batches when one of its rows has
    a step below that of the last row with an epoch before it: the training step reached.
    The learning-rate monitor logs at the step training is at (or at the next epoch's first),
    never behind it, while the validation counter starts at 0 after the first training rows
    and grows by the validation batches alone.  Rows before any row with an epoch say
    nothing either way.
    """
    if not epoch_columns or axis.column is None:
        return {}
    epochless = ~table.numeric[epoch_columns[0]]
    if not epochless.any():
        return {}
    trained = ~epochless & axis.usable
    last_trained = np.maximum.accumulate(np.where(trained, np.arange(table.rows), -1))
    reached = axis.steps[np.maximum(last_trained, 0)]
    behind = epochless & axis.usable & (last_trained >= 0) & (axis.steps < reached)
    skip = {axis.column, *epoch_columns}
    tags = [name for position, (name, cells) in enumerate(zip(table.names, table.numeric, strict=True))
            if name and position not in skip and cells[behind].any() and not cells[~epochless].any()]
    if not tags:
        return {}
    table.note(NoteKind.INFO,
               f"{len(tags)} tag(s) are logged only in rows without an epoch (validation steps), whose "
               f"step counts validation batches, not training steps: {', '.join(tags)}", count=len(tags))
    return dict.fromkeys(tags, XAxis.ITERATION)


def _lightning_hparams(path: Path, table: _Table) -> tuple[dict[str, str], list[str]]:
    """``hparams.yaml`` beside the metrics, flattened to "a.b" keys; a side file
    (:mod:`rundoctor.readers.sidefiles`), so one that cannot be read is a note, never a lost run."""
    hparams = path.with_name("hparams.yaml")
    if not sidefiles.is_present(hparams):
        return {}, []
    try:
        loaded = sidefiles.load_yaml_bounded(hparams, table.notes)
    except sidefiles.SideFileRefused as refused:
        table.notes.append(refused.note)
        return {}, []
    if loaded is None:
        return {}, [str(hparams)]
    if not isinstance(loaded, dict):
        table.notes.append(ReadNote(NoteKind.SKIPPED, str(hparams), "hparams.yaml is not a mapping; not read"))
        return {}, []
    return sidefiles.flat_texts(loaded), [str(hparams)]


def read_ultralytics(path: Path) -> Run:
    """An Ultralytics ``results.csv``: one row per epoch, cells padded; epochs repeated after a resume
    are noted, not dropped."""
    table = _read_table(path, padded=True)
    axis = _axis(table, *_axis_or_fail(table, ["epoch"]))
    _note_repeated_steps(table, axis, same_step_repeats=True)
    return _build_wide_run(table, format="ultralytics-csv", axis=axis)


def read_keras(path: Path) -> Run:
    """A Keras ``CSVLogger`` log: one row per epoch; a missing metric (``NA``) is no point."""
    table = _read_table(path)
    axis = _axis(table, *_axis_or_fail(table, ["epoch"]))
    _note_repeated_steps(table, axis, same_step_repeats=True)
    return _build_wide_run(table, format="keras-csv", axis=axis)


def read_wide(path: Path) -> Run:
    """Any CSV with a step-like column (the first of :data:`AXIS_COLUMNS` present is the axis, the
    others are no tags); a wall-time column, when present, gives the points' times."""
    table = _read_table(path, text_columns=WALL_TIME_COLUMNS)
    normalised = [_normalise(name) for name in table.names]
    axis_positions = [normalised.index(name) for name in AXIS_COLUMNS if name in normalised]
    chosen, x_axis = _axis_or_fail(table, list(AXIS_COLUMNS))
    axis = _axis(table, chosen, x_axis)
    if axis.column is not None:
        _note_repeated_steps(table, axis, same_step_repeats=False)
    wall = next((i for i, name in enumerate(normalised) if name in WALL_TIME_COLUMNS), None)
    other_axes = [i for i in axis_positions if i != chosen]
    return _build_wide_run(table, format="wide-csv", axis=axis, not_tags=other_axes, wall_column=wall)


def read_long(path: Path) -> Run:
    """A CSV of one point a row: a tag, a value and a step-like column; UnreadableInput when the tag
    or value column is missing."""
    import pandas as pd
    table = _read_table(path, text_columns=LONG_TAG_COLUMNS + WALL_TIME_COLUMNS)
    normalised = [_normalise(name) for name in table.names]
    tag_column = next((i for i, name in enumerate(normalised) if name in LONG_TAG_COLUMNS), None)
    if tag_column is None or "value" not in normalised:
        raise UnreadableInput(f"a long CSV needs a tag and a value column ({', '.join(table.names)})")
    value_column = normalised.index("value")
    axis_position, x_axis = _axis_or_fail(table, list(AXIS_COLUMNS))
    axis = _axis(table, axis_position, x_axis)
    tags = pd.Series(table.texts[tag_column], dtype=object).str.strip().to_numpy(dtype=object)
    has_value = table.numeric[value_column] & axis.usable
    untagged = has_value & (tags == "")
    if untagged.any():
        lines = table.lines[untagged]
        table.note(NoteKind.SKIPPED, f"{lines.size} row(s) with a value but no tag; skipped ({line_list(lines)})",
                   lines, int(lines.size))
    keep = has_value & ~untagged
    used = {tag_column, value_column, axis_position}
    wall = next((i for i, name in enumerate(normalised) if name in WALL_TIME_COLUMNS), None)
    ignored = [name for i, name in enumerate(table.names) if i not in used and i != wall]
    if ignored:
        table.note(NoteKind.INFO, f"columns not used by the long layout: {', '.join(ignored)}",
                   [table.header_line], len(ignored))
    builder = RunBuilder()
    codes_per_row, uniques = pd.factorize(tags[keep])  # codes in order of first appearance
    for tag in uniques.tolist():
        builder.code(str(tag))
    codes_per_row = codes_per_row.astype(np.int32)
    walls = _wall_times(table, wall)[keep] if wall is not None else np.full(int(keep.sum()), np.nan)
    builder.add_coded(codes_per_row, axis.steps[keep], table.values[value_column][keep], walls)
    return builder.build(id=str(path), path=str(path), format="long-csv", sources=[str(path)],
                         x_axis=axis.x_axis, notes=table.notes)
