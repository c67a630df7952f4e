"""``rundoctor watch``: follow runs that are still being written; report each finding once.

Every poll rediscovers the runs under PATH (runs that appear later are picked up), reads
what each log gained since the last poll, checks again the runs that changed, and prints
the findings that were not printed before, each with the step where it starts.

What a poll reads is each reader's business (its ``follow``, see
:mod:`rundoctor.readers.follow`): TensorBoard event files and logs that grow by lines are
read from where the last poll stopped, a record or line still being written waiting for
the next poll; documents that are rewritten and MLflow runs are read again whole once they
hold still.

``--once`` is one poll that reads every log whole, as it is, as ``check`` does: the same
findings as ``check``, a truncated last record or line included.

Which findings are new.  A finding is known by its run, check, tags and first step; a
finding whose step range grows (more NaN points, a longer plateau) keeps its first step
and is the same finding.  Smoothed checks can move a first step as points arrive (a
plateau's start shifts while the smoothing window fills), and a finding can drop out of a
report for a while (a still-improving curve that hit a NaN) and come back elsewhere: a
report's findings of a check on some tags with first steps not seen before are the same
findings as the known ones missing from the report, paired in step order.  Only findings
beyond that number are new: the latest ones by first step, since new events happen at the
end of a growing run.  A finding is printed again only if its severity rises: a transient
NaN is a warning, and when the loss goes NaN for good the same finding (same first step)
becomes an error, which is what ``--exit-on error`` waits for.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rundoctor import roles
from rundoctor.config import Settings
from rundoctor.discover import RunSource, find_sources, read_source, run_id
from rundoctor.engine import diagnose
from rundoctor.findings import Finding, Severity
from rundoctor.readers import reader_named
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.follow import FollowContext, Follower, Rewritten
from rundoctor.report import Report, finding_order
from rundoctor.reporters.json_report import report_document
from rundoctor.reporters.jsonable import jsonable
from rundoctor.series import Run


@dataclass(frozen=True)
class WatchOptions:
    """How ``rundoctor watch`` polls and when it stops: its command-line options, one field each."""

    interval: float = 5.0  # seconds between polls
    exit_on: Severity | None = None  # the lowest severity that stops the watch with exit 1
    timeout: float | None = None  # seconds after which the watch stops with exit 0
    once: bool = False  # one poll, then stop
    json_lines: bool = False  # one JSON object a finding instead of one line of text
    reader: str | None = None  # as --reader: force a reader instead of detecting the format


def watch(path: Path, settings: Settings, options: WatchOptions, out: TextIO, err: TextIO) -> int:
    """Poll ``path`` until a finding reaches ``options.exit_on`` (exit code 1), the timeout
    passes or one poll is done with ``once`` (exit code 0)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rundoctor-watch-") as scratch:
        watcher = Watcher(
            path, settings, scratch=Path(scratch), reader=options.reader, problems=err, once=options.once
        )
        while True:
            found = watcher.poll()
            for finding in found:
                out.write(finding_json(finding) if options.json_lines else finding_line(finding))
                out.flush()
            exit_on = options.exit_on
            if exit_on is not None and any(finding.severity.rank >= exit_on.rank for finding in found):
                return 1
            left = None if options.timeout is None else options.timeout - (time.monotonic() - started)
            if options.once or (left is not None and left <= 0):
                return 0
            time.sleep(options.interval if left is None else min(options.interval, left))


def finding_line(finding: Finding) -> str:
    """One finding as ``watch`` prints it: ``[step N] run: SEVERITY code check: message`` and a newline."""
    step = "-" if finding.first_step is None else str(finding.first_step)
    return (
        f"[step {step}] {finding.run}: {finding.severity.value.upper()} {finding.code} "
        f"{finding.check}: {finding.message}\n"
    )


def finding_json(finding: Finding) -> str:
    """The finding as ``check --format json`` writes it, on one line."""
    document = report_document(Report(runs=(), findings=(finding,)))["findings"][0]
    return json.dumps(jsonable(document), ensure_ascii=False, allow_nan=False) + "\n"


class Watcher:
    """What a watch keeps between polls: a follower per run and the findings printed."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        scratch: Path,
        reader: str | None = None,
        problems: TextIO | None = None,
        once: bool = False,
    ) -> None:
        """``once``: a single poll, which reads every log whole, as ``check`` does."""
        self.root = root
        self.once = once
        self.settings = settings
        self.scratch = scratch
        self.reader = reader
        self.problems = problems
        self.followers: dict[tuple[str, Path], Follower] = {}
        self.tracker = FindingTracker()
        self.reported: set[tuple[str, str]] = set()  # read problems already written
        self.discovery_problems: set[tuple[str, str]] = set()  # found by the last poll
        self.polls = 0

    def poll(self) -> list[Finding]:
        """Read what the runs gained, check the runs that changed; the new findings."""
        sources, errors = find_sources(self.root, reader=self.reader, exclude=self.settings.exclude)
        # A file that is not a log yet may be one being created (empty, or its first line
        # half-written): say so only when a second poll finds it the same.
        problems = {(error.path, error.reason) for error in errors}
        for path, reason in problems if self.once else problems & self.discovery_problems:
            self._problem(path, reason)
        self.discovery_problems = problems
        changed: list[Run] = []
        for source in sources:
            key = (source.reader, source.path)
            follower = self.followers.get(key)
            if follower is None:
                follower = self._follower(source)
                self.followers[key] = follower
            try:
                run = follower.update(source)
            except UnreadableInput as error:
                self._problem(str(source.path), str(error))
                continue
            except (OSError, MemoryError) as error:
                self._problem(str(source.path), f"{type(error).__name__}: {error}")
                continue
            if run is not None:
                run = dataclasses.replace(
                    run, id=run_id(source.path, self.root), notes=[*source.notes, *run.notes]
                )
                changed.append(roles.assign(run, dict(self.settings.roles)))
        self.polls += 1
        if not changed:
            return []
        report = diagnose(changed, [], self.settings)
        found: list[Finding] = []
        for run in changed:
            found.extend(self.tracker.new(run.id, report.findings_for(run.id)))
        return sorted(found, key=finding_order)

    def _follower(self, source: RunSource) -> Follower:
        if self.once:  # one poll: every log read whole, as it is, as check reads it
            return Rewritten(read_source, settled=True)
        context = FollowContext(source, read_source, self.scratch, first_poll=self.polls == 0)
        return reader_named(source.reader).follow(context)

    def _problem(self, path: str, reason: str) -> None:
        """Say once on stderr that a log could not be read (the watch goes on)."""
        if self.problems is not None and (path, reason) not in self.reported:
            self.reported.add((path, reason))
            self.problems.write(f"rundoctor: {path}: {reason}\n")
            self.problems.flush()


@dataclass
class FindingTracker:
    """The findings known so far: for each run, check and tags, the first step of each
    finding and the highest severity printed for it."""

    known: dict[tuple[str, str, tuple[str, ...]], dict[int | None, int]] = field(default_factory=dict)

    def new(self, run: str, findings: list[Finding]) -> list[Finding]:
        """The findings of a run's latest report to print: those not known before (see the
        module docstring for first steps that move) and those whose severity rose."""
        groups: dict[tuple[str, str, tuple[str, ...]], list[Finding]] = {}
        for finding in sorted(findings, key=_step_order):
            groups.setdefault((run, finding.code, finding.tags), []).append(finding)
        new: list[Finding] = []
        for key, group in groups.items():
            known = self.known.setdefault(key, {})
            steps = {finding.first_step for finding in group}
            unknown = [finding for finding in group if finding.first_step not in known]
            # Known findings missing from this report, as many as unknown ones, are those
            # findings with their first step moved: each takes the place of one, in order.
            missing = sorted((step for step in known if step not in steps), key=_none_first)
            for finding, was in zip(unknown, missing):
                known[finding.first_step] = known.pop(was)
            new.extend(unknown[len(missing) :])
            for finding in group:
                shown = known.get(finding.first_step, 0)
                if shown and finding.severity.rank > shown:  # a transient NaN became permanent
                    new.append(finding)
                known[finding.first_step] = max(shown, finding.severity.rank)
        return sorted(new, key=finding_order)


def _none_first(step: int | None) -> tuple[bool, int]:
    return (step is not None, step or 0)


def _step_order(finding: Finding) -> tuple[bool, int]:
    return _none_first(finding.first_step)
