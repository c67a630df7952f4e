"""Steps that go back or repeat in the log: resumed runs, restarts, two writers.

What it detects
---------------
In the order the log was written, a tag's step goes back (a restart from an earlier
checkpoint, a second start appended to the same file, two processes writing one run) or the
same step is written again.  The log is cut into segments wherever the step goes back; the
finding lists them (step range and points, in log order), how many points share their step
with a later point, and which tags are affected, one finding per run.  The readers' notes
of kind ``duplicated`` or ``overlap`` are added as evidence; a note alone, with steps that
never go back or repeat in the points themselves, is not reported.

Bookkeeping series (epoch, runtime) are left out: they repeat by design.  Up to
``max_harmless_repeats`` repeated steps per tag in a log that never goes back are not
reported: Ultralytics writes its final validation a second time at the last epoch and
detectron2 may flush its first record twice; the analysis keeps one point per step anyway.
Consecutive files of a resumed run whose step ranges do not overlap are one clean log.

The analysis keeps the last-written point of each step.  When that view is still one
timeline (a start that covers every step logged before it, as in detectron2's three
appended starts; a resume from a checkpoint half-way through an earlier attempt) the
finding is information.  It is a warning when the view stitches timelines together: an
earlier attempt's points come after a later attempt's in step order, because the later one
restarted below the earlier one's end and stopped before reaching it.

Why it matters
--------------
The earlier attempts disappear from every curve.  Where a restart stopped short of an
abandoned attempt, the curves jump from the new run to the old run's tail, and numbers read
off them (the best step, the final loss, a plateau) belong partly to a run nobody kept.

What to try
-----------
Give every start its own log directory (``--name``, ``version_N``, ``output_dir``) or delete
the old events before restarting; when resuming, restore the step counter from the
checkpoint so the new points continue where the old ones stopped; make sure only one
process (rank 0) writes the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.roles import Role
from rundoctor.series import NoteKind

# Segments quoted in a message and in the evidence; two writers can produce thousands.
MAX_SEGMENTS_SHOWN = 10


@dataclass(frozen=True)
class Params:
    """Thresholds of ``duplicate-steps``; ``--param <check>.<field>=<value>`` and the config's
    ``[tool.rundoctor.checks.<check>]`` table override them.  Each field's ``help`` says what it sets."""

    # One: the Ultralytics final validation written twice (R21) and the detectron2 first
    # record flushed twice (R10) are harmless; more repeats mean something else writes.
    max_harmless_repeats: int = field(
        default=1,
        metadata={"help": "Repeated steps per tag tolerated when the log never goes back."},
    )


@dataclass(frozen=True)
class TagLog:
    """How one tag's steps behave in log order."""

    tag: str
    points: int
    backs: int  # times the step goes back
    repeated: int  # points whose step is written again later
    segments: tuple[tuple[int, int, int], ...]  # (first step, last step, points), in log order
    repeated_low: int
    repeated_high: int
    stale: tuple[int, int] | None  # steps the analysis takes from an attempt abandoned later


def tag_log(tag: str, steps: np.ndarray) -> TagLog | None:
    """The segments and repeats of one tag's steps in log order; None when they only increase."""
    if steps.size < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return None
    unique, counts = np.unique(steps, return_counts=True)
    back = np.flatnonzero(np.diff(steps) < 0) + 1
    bounds = np.concatenate(([0], back, [steps.size]))
    firsts, lasts, sizes = steps[bounds[:-1]], steps[bounds[1:] - 1], np.diff(bounds)
    again = unique[counts > 1]
    low, high = (int(again[0]), int(again[-1])) if again.size else (int(unique[0]), int(unique[-1]))
    return TagLog(
        tag=tag,
        points=int(steps.size),
        backs=int(back.size),
        repeated=int(steps.size - unique.size),
        segments=tuple(zip(firsts.tolist(), lasts.tolist(), sizes.tolist())),
        repeated_low=low,
        repeated_high=high,
        # Without a step written twice no attempt replaced another: nothing is stitched.
        stale=_stale(steps, np.repeat(np.arange(sizes.size), sizes)) if again.size else None,
    )


def _stale(steps: np.ndarray, segment: np.ndarray) -> tuple[int, int] | None:
    """Step range of kept points that come from an earlier segment than a kept point before them.

    The kept point of a step is its last write (as in ``Curve.by_step``); read in step order,
    the segments they come from never decrease in one timeline.
    """
    reversed_steps = steps[::-1]
    kept_steps, first_in_reversed = np.unique(reversed_steps, return_index=True)
    source = segment[::-1][first_in_reversed]
    behind = source < np.maximum.accumulate(source)
    if not behind.any():
        return None
    return int(kept_steps[behind][0]), int(kept_steps[behind][-1])


def _segments_text(segments: tuple[tuple[int, int, int], ...]) -> str:
    shown = ", ".join(f"{first:,}..{last:,}" for first, last, _ in segments[:MAX_SEGMENTS_SHOWN])
    hidden = len(segments) - MAX_SEGMENTS_SHOWN
    return shown + (f" and {hidden:,} more" if hidden > 0 else "")


def detect(check: Check[Params], ctx: RunContext, params: Params) -> Iterator[Finding]:
    """At most one finding for the run: steps that go back or repeat beyond what is harmless;
    bookkeeping counters, which repeat by design, are never judged."""
    # Bookkeeping series repeat by design (Hugging Face writes ``epoch`` into its train and its
    # eval record at the same step; mmengine logs ``data_time`` per epoch on validation).
    tags = [tag for tag in ctx.run.tags if ctx.run.roles.get(tag) is not Role.COUNTER]
    logs = [log for log in (tag_log(tag, ctx.raw_curve(tag).steps) for tag in tags) if log is not None]
    affected = [log for log in logs if log.backs or log.repeated > params.max_harmless_repeats]
    # A reader's note alone (a first record flushed twice, a final evaluation in a file of its
    # own) describes nothing the analysis gets wrong.
    if not affected:
        return
    notes = [n for n in ctx.run.notes if n.kind in (NoteKind.DUPLICATED, NoteKind.OVERLAP)]
    stitched = [log for log in affected if log.stale is not None]
    # The tag with the most segments, then the most points, shows the run's history best.
    shown = max(stitched or affected, key=lambda log: (len(log.segments), log.points))
    repeated = sum(log.repeated for log in affected)
    backs = max(log.backs for log in affected)
    where = f"{len(affected)} of {len(tags)} tags"
    if backs:
        message = (
            f"steps go back {backs:,} time{'s' if backs > 1 else ''} in {where} "
            f"(segments in log order: {_segments_text(shown.segments)} in {shown.tag}); "
        )
    else:
        message = f"steps are written more than once in {where} ({shown.repeated:,} in {shown.tag}); "
    if shown.stale is not None:
        first, last = shown.stale
        message += (
            f"the analysis keeps the last-written point of each step, which joins a later start to the "
            f"tail of an abandoned one (steps {first:,}..{last:,})"
        )
        steps = shown.stale
    else:
        message += (
            f"{repeated:,} points share their step with a later point; the analysis keeps the "
            "last-written point of each step"
            if repeated
            else "no step is written twice, so only the order is unusual"
        )
        steps = (min(log.repeated_low for log in affected), max(log.repeated_high for log in affected))
    yield check.finding(
        ctx,
        tags=[log.tag for log in affected],
        steps=steps,
        message=message,
        evidence={
            "tags_affected": len(affected),
            "tags_judged": len(tags),
            "example_tag": shown.tag,
            "segments": [
                {"first_step": first, "last_step": last, "points": points}
                for first, last, points in shown.segments[:MAX_SEGMENTS_SHOWN]
            ],
            "segment_count": len(shown.segments),
            "step_goes_back": backs,
            "repeated_points": repeated,
            "repeated_points_per_tag": {log.tag: log.repeated for log in affected},
            "stitched_tags": [log.tag for log in stitched],
            "stale_steps": list(shown.stale) if shown.stale is not None else None,
            "analysis_keeps": "the last-written point of each step",
            "max_harmless_repeats": params.max_harmless_repeats,
            "reader_notes": [note.as_dict() for note in notes],
        },
        # One timeline in the analysis (superseded starts, resumes, repeats in place) loses
        # nothing that matters; stitched timelines mislead.
        severity=Severity.WARNING if stitched else Severity.INFO,
        confidence=Confidence.HIGH,
    )


def _example() -> tuple[np.ndarray, np.ndarray]:
    """A run resumed from step 300 after reaching 600: steps 300-450 logged twice, in log order."""
    steps = np.concatenate((np.arange(600), np.arange(300, 451)))
    return steps, np.concatenate((2.0 * np.exp(-np.arange(600) / 300.0), 1.4 * np.exp(-np.arange(300, 451) / 400.0)))


CHECK = Check(
    code="L001",
    name="duplicate-steps",
    title="Repeated or decreasing steps in the log",
    severity=Severity.WARNING,
    needs=(),
    params=Params,
    advice=(
        "Give every start its own log directory or delete old events before restarting; when resuming, "
        "restore the step counter from the checkpoint; let only rank 0 write the log."
    ),
    detect=detect,
    doc=__doc__,
    example=_example,
)
