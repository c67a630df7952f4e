"""Readers for JSON training logs: one JSON document, or one JSON object a line.

Seven flavours, sniffed in the order of :data:`READERS` (the reader name is the run's format):

- ``hf-trainer``: Hugging Face ``trainer_state.json``; ``log_history`` interleaves train and eval
  records (often at one ``step``) and ends with a run summary; ``epoch`` is fractional, an axis
  value rather than a tag.  A file cut short keeps every ``log_history`` record before the cut.
- ``keras-history-json``: a Keras ``History.history`` dict of lists dumped as JSON; step = epoch.
- ``mmdet-json``: mmdetection 2.x ``*.log.json``; ``iter`` restarts every epoch (see
  :func:`~rundoctor.readers.json.flavours._read_mmdet` for the global iteration axis) and validation records count epochs.
- ``mmengine-json``: mmengine ``scalars.json``; ``step`` is the iteration on train records and
  the epoch on validation records.
- ``detectron2-json``: detectron2 ``metrics.json``; appended across restarts.
- ``wandb-jsonl``: wandb ``wandb-history.jsonl``; ``_``-keys are bookkeeping, ``_timestamp`` is
  the wall time, ``epoch`` is an axis as in Lightning's CSV (not a series), nested values
  (histograms, media) are skipped with one note.
- ``jsonl``: any JSON lines with a step-like key; nested objects are flattened with ``/``.

Every number (not bools, strings or nulls) becomes a point, NaN and +/-inf included, bit-exact;
so does a string that names a non-finite float (``"NaN"``, ``"Infinity"``, ``"-inf"``): writers
whose JSON encoder refuses NaN write that instead, and mean the float.
All flavours share one path: records become *cells* (key, value, record) in log order
(:class:`~rundoctor.readers.json.cells._CellTable`), the flavour *places* each record (step, wall time, axis), and
:func:`~rundoctor.readers.json.build._build` turns placed cells into points and notes restarts and repeated steps.

Speed: a million-line file is parsed a block of lines at a time with ``orjson`` (exact, and
about 6x faster than ``json`` here); blocks whose values are all numbers are turned into
arrays without a Python loop over values (:meth:`~rundoctor.readers.json.cells._CellTable.add_plain`).  Anything unusual
(NaN tokens, junk, nested values, strings) takes the per-line, per-value path.  A
byte-level numpy parse of flat numeric lines (keys located and verified with numpy, numbers
handed to orjson as one list) was measured no faster than this: its dozen passes over each
block's bytes cost what the dicts save.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from rundoctor.readers.base import Reader, ReadRun, RunSource, UnreadableInput, deferred
from rundoctor.readers.follow import appended_lines, rewritten, whole_lines
from rundoctor.readers.json import sniff
from rundoctor.series import NoteKind, ReadNote, Run


def _guarded(flavour: str) -> ReadRun:
    """The flavour's reader (``flavours._read_<flavour>``, imported when first called), which
    can fail only with UnreadableInput (a file that vanished, a directory)."""
    read: Callable[[Path], Run] = deferred("rundoctor.readers.json.flavours", f"_read_{flavour}")

    def read_source(source: RunSource) -> Run:
        path = Path(source.files[0][0])
        try:
            return read(path)
        except OSError as error:
            raise UnreadableInput(f"cannot read {path.name}: {error.strerror or error}") from error

    return read_source


def hf_checkpoint_step(path: Path) -> int | None:
    """N when ``path`` sits in a ``checkpoint-N`` folder (Trainer's save layout), else None."""
    match = re.fullmatch(r"checkpoint-(\d+)", Path(path).parent.name)
    return int(match.group(1)) if match else None


def _one_trainer_state(files: Sequence[Path], explicit: bool) -> list[RunSource]:
    """Of the ``checkpoint-N/trainer_state.json`` files under one output folder only one is
    read: one beside the checkpoints, else the newest checkpoint's.  Each holds the whole
    history up to N, so merging them would duplicate every point."""
    states: dict[Path, list[tuple[int, Path]]] = {}
    for file in files:
        step = hf_checkpoint_step(file)
        output_dir = file.parent.parent if step is not None else file.parent
        states.setdefault(output_dir, []).append((step if step is not None else 2**63 - 1, file))
    sources = []
    for output_dir, found in states.items():
        found.sort()
        _, chosen = found[-1]
        source = RunSource("hf-trainer", chosen, [(chosen, "")])
        if len(found) > 1:
            source.notes.append(ReadNote(
                NoteKind.INFO, str(chosen),
                f"{len(found)} trainer_state.json files under {output_dir.name or output_dir}; "
                f"read {chosen.parent.name}/{chosen.name} (the newest holds the whole history), "
                "the others were not merged",
                count=len(found) - 1,
            ))
        sources.append(source)
    return sources


# Sniffed in this order; the reader name is the run's format.
READERS: tuple[Reader, ...] = (
    Reader("hf-trainer", _guarded("hf"), rewritten, sniff=sniff._sniffer(sniff._sniff_hf),
           group=_one_trainer_state),
    Reader("keras-history-json", _guarded("keras"), rewritten, sniff=sniff._sniffer(sniff._sniff_keras)),
    Reader("mmdet-json", _guarded("mmdet"), whole_lines, sniff=sniff._sniffer(sniff._sniff_mmdet)),
    Reader("mmengine-json", _guarded("mmengine"), appended_lines(header=False),
           sniff=sniff._sniffer(sniff._sniff_mmengine)),
    Reader("detectron2-json", _guarded("detectron2"), appended_lines(header=False),
           sniff=sniff._sniffer(sniff._sniff_detectron2)),
    Reader("wandb-jsonl", _guarded("wandb"), appended_lines(header=False),
           sniff=sniff._sniffer(sniff._sniff_wandb)),
    Reader("jsonl", _guarded("generic"), appended_lines(header=False),
           sniff=sniff._sniffer(sniff._sniff_generic)),
)
