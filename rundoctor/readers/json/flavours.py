"""The seven JSON flavours: how each places its records (see the package docstring)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rundoctor.readers import sidefiles
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.json.build import _build, _empty_run, _Placement, _usable_steps
from rundoctor.readers.json.cells import _CellTable
from rundoctor.readers.json.document import _read_text, _scalar_metadata, _walk_document
from rundoctor.readers.json.lines import _read_lines
from rundoctor.readers.json.sniff import _STEP_KEYS
from rundoctor.readers.text import line_ranges, number_text, plural
from rundoctor.series import NoteKind, ReadNote, Run, XAxis

_HF_SUMMARY_KEYS = frozenset({"train_loss", "train_runtime", "total_flos"})
# The TrainerState members copied from the TrainingArguments; the others say how far training got.
_HF_ARGUMENT_MEMBERS = ("train_batch_size", "num_train_epochs", "max_steps", "logging_steps", "eval_steps", "save_steps")


# --------------------------------------------------------------------------------------------
# The flavours.
# --------------------------------------------------------------------------------------------


def _read_hf(path: Path) -> Run:
    source = str(path)
    text, notes = _read_text(path)
    if not text.strip():
        return _empty_run(path, "hf-trainer", [*notes, ReadNote(NoteKind.INFO, source, "the file is empty", count=0)],
                          XAxis.STEP)
    document = _walk_document(text)
    history = document.members.get("log_history")
    if not isinstance(history, list):
        where = "" if document.stop is None else f" (unreadable from offset {document.stop}: {document.why})"
        raise UnreadableInput(f"no log_history list: not a Hugging Face trainer_state.json{where}")
    newlines = np.fromiter((match.start() for match in re.finditer("\n", text)), np.int64)
    lines = np.searchsorted(newlines, document.offsets["log_history"]) + 1
    records = [r for r in history if type(r) is dict]
    if len(records) < len(history):
        odd = [int(line) for r, line in zip(history, lines) if type(r) is not dict]
        notes.append(ReadNote(NoteKind.SKIPPED, source, f"{plural(len(odd), 'log_history entry')} "
                              "that are not objects were skipped", location=line_ranges(odd), count=len(odd)))
    notes += document.notes(source, text, f"{plural(len(records), 'complete log_history record')} were read")
    table = _CellTable()
    table.add_careful(records, [int(line) for r, line in zip(history, lines) if type(r) is dict])
    cells = table.cells()
    steps, skipped = _usable_steps(cells.column("step"), cells, source, "step")
    summary = [i for i, record in enumerate(records) if _HF_SUMMARY_KEYS & record.keys()]
    for i in summary:
        notes.append(ReadNote(
            NoteKind.INFO, source,
            f"the log_history record at step {records[i].get('step')} is the run summary "
            f"({', '.join(sorted(k for k in records[i] if k not in ('step', 'epoch')))}): "
            "its numbers are kept as points", location=f"line {cells.positions[i]}"))
    if not records:
        notes.append(ReadNote(NoteKind.INFO, source, "log_history is empty: nothing was logged", count=0))
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("step", "epoch")))
    return _build(path, "hf-trainer", cells, placement, notes + skipped, x_axis=XAxis.STEP,
                  step_name="step", metadata=_scalar_metadata(document.members),
                  hparams=_hf_hparams(document.members))


def _hf_hparams(members: dict[str, Any]) -> dict[str, str]:
    """The training arguments a ``trainer_state.json`` keeps, and the parameters of a
    hyper-parameter search's trial (``trial_params``, by their argument names)."""
    hparams = {}
    for key in _HF_ARGUMENT_MEMBERS:
        value = members.get(key)
        if type(value) is int:  # not a bool
            hparams[key] = str(value)
        elif isinstance(value, float):
            hparams[key] = number_text(value)
    trial = members.get("trial_params")
    if isinstance(trial, dict):
        hparams.update(sidefiles.flat_texts(trial))
    return hparams


def _read_keras(path: Path) -> Run:
    source = str(path)
    text, notes = _read_text(path)
    document = _walk_document(text)
    lists = {key: value for key, value in document.members.items() if isinstance(value, list)}
    if not lists:
        raise UnreadableInput("no lists of numbers: not a Keras history dumped as JSON")
    notes += document.notes(source, text, "the complete values were read")
    others = sorted(key for key, value in document.members.items() if isinstance(value, dict))
    if others:
        notes.append(ReadNote(NoteKind.SKIPPED, source, f"members that are not lists were skipped: {', '.join(others)}",
                              count=len(others)))
    epochs = max(map(len, lists.values()))
    table = _CellTable()
    table.add_careful([{key: values[i] for key, values in lists.items() if i < len(values)} for i in range(epochs)],
                      range(1, epochs + 1))
    cells = table.cells()
    placement = _Placement(np.arange(cells.records, dtype=np.float64), np.ones(len(cells.keys), dtype=bool))
    return _build(path, "keras-history-json", cells, placement, notes, x_axis=XAxis.EPOCH, step_name="epoch",
                  metadata=_scalar_metadata(document.members))


def _read_mmdet(path: Path) -> Run:
    """mmdetection 2.x: train points on a global iteration axis, validation on epochs.

    ``iter`` restarts every epoch, so a train record's step is ``(epoch - 1) * E + iter``
    where E, the iterations per epoch, is the largest ``iter`` in the file.  Validation
    records carry the epoch length as their ``iter`` (mmcv logs ``inner_iter + 1`` after the
    last batch), so E is exact when the file has one; otherwise it is the last logged
    iteration of an epoch, short by less than the logging interval.
    """
    source = str(path)
    cells, notes = _read_lines(path, _CellTable(text_keys=("mode", "exp_name")))
    train = np.zeros(cells.records, dtype=bool)
    evaluation = np.zeros(cells.records, dtype=bool)
    for record, mode in cells.texts["mode"].items():
        (train if mode == "train" else evaluation)[record] = True
    moded = train | evaluation
    epoch, inner = cells.column("epoch"), cells.column("iter")
    known = inner[moded & np.isfinite(inner)]
    per_epoch = float(known.max()) if known.size else math.nan
    with np.errstate(all="ignore"):  # inf * 0 from hostile epochs: NaN, then noted as unusable
        raw = np.where(train, (epoch - 1) * per_epoch + inner, epoch)
    steps, skipped = _usable_steps(raw, cells, source, "epoch and iter", considered=moded)
    metadata: dict[str, str] = {}
    bare = ~moded
    if bare.any():
        _, keys, values = cells.cells_of(bare)
        metadata = {cells.keys[k]: number_text(v) for k, v in zip(keys.tolist(), values.tolist())}
        metadata.update(("exp_name", name) for record, name in cells.texts["exp_name"].items() if bare[record])
        notes.append(ReadNote(NoteKind.INFO, source,
                              f"{plural(int(bare.sum()), 'record')} without a mode (environment and "
                              f"config) {'is' if bare.sum() == 1 else 'are'} not metrics; their numbers "
                              "went to the metadata",
                              location=line_ranges(cells.positions[bare].tolist()), count=int(bare.sum())))
    if math.isfinite(per_epoch):
        metadata["iters_per_epoch"] = str(int(per_epoch))
        notes.append(ReadNote(NoteKind.INFO, source,
                              f"train points are on a global iteration axis, (epoch - 1) x {int(per_epoch):,} + "
                              f"iter, {int(per_epoch):,} being the largest iter logged; validation "
                              "points are on the epoch axis"))
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("epoch", "iter")),
                           on_epochs=evaluation)
    return _build(path, "mmdet-json", cells, placement, notes + skipped, x_axis=XAxis.ITERATION,
                  step_name="iteration", metadata=metadata)


def _read_mmengine(path: Path) -> Run:
    """mmengine: a record with ``lr`` or ``loss`` is a train record (step = iteration);
    any other record is a validation record whose ``step`` is the epoch."""
    cells, notes = _read_lines(path, _CellTable())
    steps, skipped = _usable_steps(cells.column("step"), cells, str(path), "step")
    placement = _Placement(steps, cells.keys_where(lambda key: key not in ("step", "epoch", "iter")),
                           on_epochs=~(cells.has("lr") | cells.has("loss")))
    return _build(path, "mmengine-json", cells, placement, notes + skipped, x_axis=XAxis.ITERATION,
                  step_name="iteration")


def _read_single_step_key(path: Path, format: str, step_key: str | None, table: _CellTable,
                          is_tag: Callable[[str], bool], wall_key: str | None = None) -> Run:
    """Flavours with one step key per record (detectron2, wandb, generic JSON lines)."""
    cells, notes = _read_lines(path, table)
    if step_key is None:  # generic JSON lines: the most preferred step-like key present
        step_key = next((key for key in _STEP_KEYS if key in cells.keys), None)
        if step_key is None:
            if not cells.records:
                return _empty_run(path, format, notes, XAxis.STEP)
            raise UnreadableInput(f"no step-like key ({', '.join(_STEP_KEYS)}) in any record")
    steps, skipped = _usable_steps(cells.column(step_key), cells, str(path), repr(step_key))
    placement = _Placement(steps, cells.keys_where(lambda key: key != step_key and is_tag(key)),
                           walls=cells.column(wall_key) if wall_key else None)
    return _build(path, format, cells, placement, notes + skipped,
                  x_axis=_STEP_KEYS.get(step_key.lstrip("_"), XAxis.STEP), step_name=step_key)


def _read_detectron2(path: Path) -> Run:
    return _read_single_step_key(path, "detectron2-json", "iteration", _CellTable(), lambda key: True)


def _read_wandb(path: Path) -> Run:
    return _read_single_step_key(path, "wandb-jsonl", "_step", _CellTable(),
                                 lambda key: not key.startswith("_") and key != "epoch", wall_key="_timestamp")


def _read_generic(path: Path) -> Run:
    return _read_single_step_key(path, "jsonl", None, _CellTable(flatten=True), lambda key: True)
