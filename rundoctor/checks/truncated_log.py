"""A log file that ends mid-record, holds corrupt records or lines that could not be parsed.

What it detects
---------------
The readers record every place where a file could not be read in full: a TensorBoard event
file that ends inside a record or fails its checksum, a JSON-lines log with a broken line,
a CSV row with the wrong number of fields.  Each such read note of kind ``truncated`` or
``corrupt`` becomes part of one finding per file: where reading stopped or skipped (byte
offset or line), how many records, lines or bytes were lost, and how much of the run was
read.  The readers keep everything before and after the damage that they can.

Why it matters
--------------
The curves end earlier, or have holes, where the file is damaged: the last steps of a run
that crashed or was copied while still being written are exactly the ones that say how it
ended.  A corrupt record in the middle is rarer and points at a disk, a sync tool or two
processes writing one file.

What to try
-----------
If the run was still writing when the file was copied, copy it again once training has
stopped (or ignore the last record).  If it crashed, look at the last steps that were read
and at the training process's own log for the reason.  For corruption in the middle, keep
one writer per file and copy logs only when they are closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.series import NoteKind, ReadNote


@dataclass(frozen=True)
class Params:
    """This check has no thresholds: every truncated or corrupt record is worth knowing."""


def _file_name(source: str, run_path: str) -> str:
    """The damaged file as the message names it: relative to the run directory, else its name."""
    try:
        relative = Path(source).relative_to(run_path)
    except ValueError:
        return Path(source).name
    return relative.as_posix() if relative.parts else Path(source).name


def _describe(note: ReadNote) -> str:
    where = f" at {note.location}" if note.location else ""
    lost = f" ({note.count:,} lost)" if note.count else ""
    return f"{note.kind.value}{where}{lost}: {note.message}"


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """One finding per source file with truncated or corrupt records, from the readers' notes."""
    damaged = [note for note in ctx.run.notes if note.kind in (NoteKind.TRUNCATED, NoteKind.CORRUPT)]
    by_source: dict[str, list[ReadNote]] = {}
    for note in damaged:
        by_source.setdefault(note.source, []).append(note)
    steps = ctx.run.steps
    last_step = int(steps.max()) if steps.size else None
    for source, notes in by_source.items():
        kinds = sorted({note.kind.value for note in notes})
        lost = sum(note.count or 0 for note in notes)
        extra = (
            f"; {len(notes) - 1} more problem{'s' if len(notes) > 2 else ''} in this file"
            if len(notes) > 1
            else ""
        )
        read = f"{ctx.run.points:,} points read" + (
            f" up to step {last_step:,}" if last_step is not None else ""
        )
        yield check.finding(
            ctx,
            tags=(),
            steps=None,
            message=f"{_file_name(source, ctx.run.path)}: {_describe(notes[0])}{extra} ({read} from the run)",
            evidence={
                "source": source,
                "kinds": kinds,
                "locations": [note.location for note in notes],
                "lost": lost if any(note.count for note in notes) else None,
                "problems": len(notes),
                "notes": [note.as_dict() for note in notes],
                "points_read": ctx.run.points,
                "last_step_read": last_step,
                "run_sources": len(ctx.run.sources),
            },
            confidence=Confidence.HIGH,
        )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A curve that stops where the writer died mid-record."""
    steps = np.arange(500)
    return steps, 0.3 + 1.7 * np.exp(-steps / 100.0)


CHECK = Check(
    code="L002",
    name="truncated-log",
    title="Log file truncated or corrupt",
    severity=Severity.WARNING,
    needs=(),
    params=Params,
    advice=(
        "Copy the log again once training has stopped; if the run crashed, read its last steps and the "
        "training process's own log; keep one writer per file."
    ),
    detect=detect,
    doc=__doc__,
    example=_example,
)
