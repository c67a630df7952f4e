"""What ``rundoctor ls`` prints: every run as read, its tags, roles and read notes.

One run written in several formats is listed once per format, as read; the text listing
marks such twins (:mod:`rundoctor.twins`), which ``check`` diagnoses once."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from rundoctor.report import SCHEMA_VERSION
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.escape import guard_line_starts, visible
from rundoctor.reporters.jsonable import dumps, path_fields
from rundoctor.reporters.wording import plural
from rundoctor.roles import Role
from rundoctor.series import ReadError, Run
from rundoctor.summary import RunSummary, summarize
from rundoctor.twins import twin_groups


def tag_summaries(run: RunSummary) -> list[dict[str, Any]]:
    """Per tag: name as logged, role, point count and step range (in log order of first point)."""
    return [
        {"name": tag.name, "role": tag.role.value, "points": tag.points, "first_step": tag.first_step,
         "last_step": tag.last_step, "axis": tag.axis.value}
        for tag in run.tag_summaries
    ]


def run_summary(run: RunSummary) -> dict[str, Any]:
    """One run as ``rundoctor ls --format json`` lists it; step bounds are None for a run with no point."""
    return {
        "id": run.id,
        **path_fields(run.path),
        "format": run.format,
        "sources": list(run.sources),
        "x_axis": run.x_axis.value,
        "points": run.points,
        "first_step": run.first_step,
        "last_step": run.last_step,
        "tags": tag_summaries(run),
        "histograms": [
            {"name": tag, "role": run.roles.get(tag, Role.OTHER).value, "count": count}
            for tag, count in sorted(run.histogram_counts.items())
        ],
        "notes": [note.as_dict() for note in run.notes],
        "metadata": dict(sorted(run.metadata.items())),
    }


def ls_document(runs: Sequence[Run], errors: Sequence[ReadError]) -> dict[str, Any]:
    """The ``rundoctor ls --format json`` document: runs by id, then unreadable inputs by path."""
    from rundoctor import __version__

    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "rundoctor", "version": __version__},
        "runs": [run_summary(summarize(run)) for run in sorted(runs, key=lambda r: r.id)],
        "errors": [error_summary(error) for error in sorted(errors, key=lambda e: e.path)],
    }


def error_summary(error: ReadError) -> dict[str, str]:
    """An unreadable input as the JSON documents list it: its path (with ``path_base64`` when
    the name is not valid UTF-8) and the reason."""
    return {**path_fields(error.path), "reason": error.reason}


def render_json(runs: Sequence[Run], errors: Sequence[ReadError]) -> str:
    """The ``rundoctor ls --format json`` output."""
    return dumps(ls_document(runs, errors))


def render_text(runs: Sequence[Run], errors: Sequence[ReadError], options: RenderOptions) -> str:
    """The ``rundoctor ls`` text: each run with its twins, tags, roles and read notes, then the
    unreadable inputs and a total; names and notes from the logs neutralised
    (:func:`~rundoctor.reporters.escape.visible`), and no line, however a name folds, read as a
    workflow command (:func:`~rundoctor.reporters.escape.guard_line_starts`)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=options.width, record=True, file=io.StringIO(), force_terminal=options.color,
                      no_color=not options.color, highlight=False)
    twins = {run.id: [other for other in group if other is not run] for group in twin_groups(runs) for run in group}
    for run in sorted(runs, key=lambda r: r.id):
        summary = summarize(run)
        span = "no points" if summary.first_step is None else f"steps {summary.first_step}..{summary.last_step}"
        console.print(Text.assemble((visible(run.id), "bold"), f"  {run.format}  {run.points:,} points  {span}"))
        for other in twins.get(run.id, []):
            console.print(Text(f"  the same run as {visible(other.id)} ({other.format}): diagnosed once", style="dim"))
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        for column, justify in (("tag", "left"), ("role", "left"), ("points", "right"), ("steps", "right")):
            table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for series in summary.tag_summaries:
            table.add_row(visible(series.name), series.role.value, f"{series.points:,}",
                          f"{series.first_step}..{series.last_step}")
        for tag, items in sorted(run.histograms.items()):
            table.add_row(visible(tag), f"{run.roles.get(tag, Role.OTHER).value} (histogram)", f"{len(items):,}", "")
        if table.row_count:
            console.print(table)
        for note in run.notes:
            where = f" at {visible(note.location)}" if note.location else ""
            console.print(Text(f"  note [{note.kind.value}]{where}: {visible(note.message)}", style="yellow"))
        console.print()
    if errors:
        console.print(Text("Could not read:", style="bold red"))
        for error in sorted(errors, key=lambda e: e.path):
            console.print(Text(f"  {visible(error.path)}: {visible(error.reason)}"))
    total = int(np.sum([run.points for run in runs])) if runs else 0
    console.print(Text(f"{plural(len(runs), 'run')}, {plural(total, 'point')}, {plural(len(errors), 'unreadable input')}", style="bold"))
    return guard_line_starts(console.export_text(styles=options.color))  # a row may start with a tag name
