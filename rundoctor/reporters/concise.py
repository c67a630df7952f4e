"""``--format concise``: one line per finding, for grep, sort and editors (as ruff's concise
output)::

    runs/a:non-finite: error N001 steps 600..999: train/loss is NaN from step 600 to the end ...

Each line is ``PATH:CHECK: SEVERITY CODE STEPS: MESSAGE``: the path of the log (file or run
directory) as the reader saw it, the check's name, and the message cut to its key clause
with the threshold crossed (all of it with ``--verbose``).  A run that could not be judged is a line with ``no-data`` or
``too-short`` for its check, an input that could not be read one with ``unreadable``, a
check that raised one with its name and ``failed``.  The result line comes last.  With
``--quiet`` only what fails ``--fail-on`` is listed; ``--statistics`` counts per check instead.

Lines start with the path, so a path is written so that it cannot pass for a CI command
(``::error::`` in a run directory's name): a relative path that does not start with ``.``
gets ``./``, and every string from the logs is made :func:`visible`.
"""

from __future__ import annotations

from pathlib import PurePath

from rundoctor.findings import Finding
from rundoctor.report import OutcomeStatus, Report
from rundoctor.reporters import RenderOptions, statistics
from rundoctor.reporters.escape import visible
from rundoctor.reporters.wording import result_line, short_message, step_range


def render(report: Report, options: RenderOptions) -> str:
    """One line per finding, run that could not be judged, unreadable input and failed check."""
    if options.statistics:
        return statistics.render(report, options)
    lines = [_finding_line(report, finding, options.verbose) for finding in statistics.counted(report, options.quiet)]
    unjudged = report.failing_runs() if options.quiet else [
        diagnosis for diagnosis in report.diagnoses or () if not diagnosis.verdict.judged
    ]
    for diagnosis in unjudged:
        level = diagnosis.level.value if diagnosis.level is not None else "info"
        slug = diagnosis.verdict.value.replace("_", "-")
        lines.append(f"{_path(report.run(diagnosis.run).path)}:{slug}: {level}: {visible(diagnosis.detail)}")
    if not options.quiet:
        lines += [f"{_path(error.path)}:unreadable: {visible(error.reason)}" for error in report.errors]
        lines += [
            f"{_path(report.run(outcome.run).path)}:{visible(outcome.check)}: failed: {visible(outcome.reason or '')}"
            for outcome in report.outcomes if outcome.status is OutcomeStatus.ERROR
        ]
    lines.append(result_line(report))
    return "".join(line + "\n" for line in lines)


def _finding_line(report: Report, finding: Finding, whole: bool) -> str:
    """``PATH:CHECK: SEVERITY CODE STEPS: MESSAGE``, the message's key clause or (``whole``) all of it."""
    run = report.run(finding.run)
    steps = step_range(finding, run)
    where = f" {steps}" if steps else ""
    message = visible(finding.message) if whole else short_message(finding)
    return f"{_path(run.path)}:{visible(finding.check)}: {finding.severity.value} {visible(finding.code)}{where}: {message}"


def _path(path: str) -> str:
    """``path`` in POSIX form, led by ``./`` when it is relative and does not start with ``.``:
    a line must not start with a name from the logs."""
    posix = PurePath(path).as_posix() if path else "."
    if not PurePath(path).is_absolute() and not posix.startswith("."):
        posix = "./" + posix
    return visible(posix)
