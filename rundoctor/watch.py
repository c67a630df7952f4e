"""``rundoctor watch``: follow runs that are still being written; report each finding once.

Every poll rediscovers the runs under PATH (runs that appear later are picked up), reads
what each log gained since the last poll, checks again the runs that changed, and prints
the findings that were not printed before, each with the step where it starts.  Runs are
checked by the incremental engine the training callbacks use (:mod:`rundoctor.live.engine`),
fed with the points each log gained: a poll costs the same at step 1,000 and at step
1,000,000, and a run no longer than the engine keeps (about two thousand points a tag) gets
exactly the findings ``check`` gives.

What a poll reads is each reader's business (its ``follow``, see
:mod:`rundoctor.readers.follow`): TensorBoard event files and logs that grow by lines are
read from where the last poll stopped, a record or line still being written waiting for
the next poll; documents that are rewritten and MLflow runs are read again whole once they
hold still.  PATH may be a tracking server's URL (``mlflow://host:5000/#experiment``, as
``check`` takes it): its runs are located again at every poll, and each is read again when
its points changed.

``--once`` is one poll that reads every log whole, as it is, as ``check`` does: the same
findings as ``check``, a truncated last record or line included.

Which findings are new is :class:`~rundoctor.live.tracker.FindingTracker`'s business (a
finding is known by its run, check, tags and first step; a first step that moves as points
arrive is the same finding).  A finding is printed again only if its severity rises: a
transient NaN is a warning, and when the loss goes NaN for good the same finding (same first
step) becomes an error, which is what ``--exit-on error`` waits for.

A path that does not exist yet (a run about to start) is waited for: "waiting for PATH ..."
once on stderr, then the watch starts when it appears.  A path that cannot appear (a parent
is a file) is a usage error, and so is one still missing when ``--timeout`` passes.

``--exec CMD`` runs a command once per new finding at or above ``--fail-on``: a supervisor's
hook (stop the job, page someone).  Log text never reaches a command line: the command is
split once, as a shell would split it, and never run by a shell; the finding travels on
stdin (as JSON) and in environment variables.  A command that fails or hangs (stopped after
its timeout) is reported on stderr and the watch goes on: a broken notifier must not end
the watch it notifies about.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rundoctor import roles
from rundoctor.config import Settings
from rundoctor.discover import RunSource, find_sources, read_source, run_id, url_reader
from rundoctor.engine import diagnose
from rundoctor.errors import UsageError
from rundoctor.findings import Finding, Severity
from rundoctor.live.engine import LiveRun
from rundoctor.live.tracker import FindingTracker
from rundoctor.readers import reader_named
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.follow import FollowContext, Follower, Rewritten
from rundoctor.report import Report, finding_order
from rundoctor.reporters.escape import visible
from rundoctor.reporters.json_report import report_document
from rundoctor.reporters.jsonable import dumps, jsonable
from rundoctor.series import Run


@dataclass(frozen=True)
class WatchOptions:
    """How ``rundoctor watch`` polls and when it stops: its command-line options, one field each."""

    interval: float = 5.0  # seconds between polls
    exit_on: Severity | None = None  # the lowest severity that stops the watch with exit 1
    timeout: float | None = None  # seconds after which the watch stops (exit 0; 2 while still waiting for the path)
    once: bool = False  # one poll, then stop
    json_lines: bool = False  # one JSON object a finding instead of one line of text
    reader: str | None = None  # as --reader: force a reader instead of detecting the format
    on_finding: FindingCommand | None = None  # --exec, with --fail-on and --exec-timeout


def watch(path: Path, settings: Settings, options: WatchOptions, out: TextIO, err: TextIO) -> int:
    """Poll ``path`` until a finding reaches ``options.exit_on`` (exit code 1), the timeout
    passes or one poll is done with ``once`` (exit code 0).  A ``path`` that does not exist
    yet is waited for; UsageError when it cannot appear or the timeout passes first."""
    started = time.monotonic()
    if url_reader(path) is None and not os.path.exists(path):  # a tracking server's runs are asked for, not waited for
        _wait_for(path, options, started, err)
    with tempfile.TemporaryDirectory(prefix="rundoctor-watch-") as scratch:
        watcher = Watcher(
            path, settings, scratch=Path(scratch), reader=options.reader, problems=err, once=options.once
        )
        while True:
            found = watcher.poll()
            for finding in found:
                out.write(finding_json(finding) if options.json_lines else finding_line(finding))
                out.flush()
                if options.on_finding is not None:
                    options.on_finding.run(finding, err)
            exit_on = options.exit_on
            if exit_on is not None and any(finding.severity.rank >= exit_on.rank for finding in found):
                return 1
            left = _time_left(options, started)
            if options.once or (left is not None and left <= 0):
                return 0
            time.sleep(options.interval if left is None else min(options.interval, left))


def _time_left(options: WatchOptions, started: float) -> float | None:
    """Seconds before ``--timeout`` passes; None without one."""
    return None if options.timeout is None else options.timeout - (time.monotonic() - started)


def _wait_for(path: Path, options: WatchOptions, started: float, err: TextIO) -> None:
    """Return once ``path`` exists, polling at the watch's interval (a run directory is
    usually created when training starts, after the supervisor launched the watch).

    UsageError, at once, for a path that cannot appear: with ``--once`` (one poll does not
    wait) or when its nearest existing ancestor is not a directory; and when the timeout
    passes before it appears (nothing was watched: not a clean exit)."""
    if options.once:
        raise UsageError(f"no such file or directory: {path}")
    ancestor = next((parent for parent in path.parents if os.path.exists(parent)), None)
    if ancestor is None or not os.path.isdir(ancestor):
        raise UsageError(f"{path} cannot exist: {ancestor or 'its directory'} is not a directory")
    err.write(f"rundoctor: waiting for {visible(str(path))} ...\n")
    err.flush()
    while not os.path.exists(path):
        left = _time_left(options, started)
        if left is not None and left <= 0:
            raise UsageError(f"{path} did not appear within {options.timeout:g} s")
        time.sleep(options.interval if left is None else min(options.interval, left))


def finding_line(finding: Finding) -> str:
    """One finding as ``watch`` prints it: ``[step N] run: SEVERITY code check: message`` and a newline."""
    step = "-" if finding.first_step is None else str(finding.first_step)
    return (
        f"[step {step}] {visible(finding.run)}: {finding.severity.value.upper()} {finding.code} "
        f"{finding.check}: {visible(finding.message)}\n"
    )


def finding_json(finding: Finding, *, ascii_only: bool = False) -> str:
    """The finding as ``check --format json`` writes it, on one line.  ``ascii_only``: every
    other character as a JSON escape, so that any byte stream carries the line, a lone
    surrogate (a file name's undecodable byte) included."""
    document = report_document(Report(runs=(), findings=(finding,)))["findings"][0]
    if ascii_only:
        return json.dumps(jsonable(document), ensure_ascii=True, allow_nan=False) + "\n"
    return dumps(document, indent=None)


# How long an --exec command may run when --exec-timeout is not given: enough for a webhook
# or a job scheduler's CLI, short enough that a hung notifier does not blind the watch.
EXEC_TIMEOUT = 30.0


@dataclass(frozen=True)
class FindingCommand:
    """``--exec``: the command run for each new finding at or above ``fail_on``."""

    argv: tuple[str, ...]
    fail_on: Severity
    timeout: float = EXEC_TIMEOUT

    @classmethod
    def parse(cls, command: str, fail_on: Severity | None, timeout: float | None) -> FindingCommand:
        """``command`` split as a POSIX shell splits words (quotes honoured, nothing expanded):
        split once, here, from what the user typed, never from anything a log holds.
        UsageError when it is empty or unbalanced, names no program on PATH, or can never run
        (``--fail-on never``)."""
        try:
            argv = tuple(shlex.split(command))
        except ValueError as error:
            raise UsageError(f"--exec: {error}: {command!r}") from None
        if not argv:
            raise UsageError("--exec needs a command")
        if shutil.which(argv[0]) is None:
            raise UsageError(f"--exec: command not found: {argv[0]}")
        if fail_on is None:
            raise UsageError("--exec with fail-on never (from --fail-on or the config) would never run: choose error, warning or info")
        return cls(argv, fail_on, EXEC_TIMEOUT if timeout is None else timeout)

    def run(self, finding: Finding, err: TextIO) -> None:
        """Run the command for ``finding`` if it is severe enough: the finding as one JSON line
        on stdin and in ``RUNDOCTOR_*`` variables, its output to ``err`` (stdout carries only
        findings), a failure or timeout reported there.  Never raises for the command's sake."""
        if finding.severity.rank < self.fail_on.rank:
            return
        about = visible(f"{finding.run} {finding.check}")
        try:
            process = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={**os.environ, **finding_environment(finding)},
                start_new_session=True,  # its own process group, so a timeout stops its children too
            )
        except OSError as error:
            err.write(f"rundoctor: --exec {self.argv[0]} could not start for {about}: {error.strerror or error}\n")
            err.flush()
            return
        try:
            output, _ = process.communicate(finding_json(finding, ascii_only=True).encode("ascii"), self.timeout)
            failure = None if process.returncode == 0 else _exit_status(process.returncode)
        except subprocess.TimeoutExpired:
            output, failure = _stop(process), f"timed out after {self.timeout:g} s and was stopped"
        if output:
            err.write(output.decode("utf-8", "replace"))
        if failure is not None:
            err.write(f"rundoctor: --exec {self.argv[0]} {failure} for {about}; watching on\n")
        err.flush()


def finding_environment(finding: Finding) -> dict[str, str]:
    """The variables an --exec command gets: what a notifier needs to word a message.  Values
    as the text report shows them (control characters escaped: an environment variable
    cannot hold a NUL, and a raw newline or escape would reach whatever the command prints
    to); the JSON on stdin holds them exactly."""
    return {
        "RUNDOCTOR_RUN": visible(finding.run),
        "RUNDOCTOR_CHECK": finding.check,
        "RUNDOCTOR_SEVERITY": finding.severity.value,
        "RUNDOCTOR_MESSAGE": visible(finding.message),
    }


def _exit_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _stop(process: subprocess.Popen[bytes]) -> bytes:
    """Kill a command that overran its timeout, and whatever it started in its group; what it
    printed before."""
    if sys.platform == "win32":
        process.kill()
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:  # already gone
            process.kill()
    try:
        output, _ = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a child left the group and holds the pipe: let it be
        return b""
    return output


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
        self.live: dict[tuple[str, Path], LiveRun] = {}  # each followed run, checked incrementally
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
        changed: list[tuple[tuple[str, Path], Run]] = []
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
                    run,
                    id=source.name if source.name is not None else run_id(source.path, self.root),
                    notes=[*source.notes, *run.notes],
                )
                changed.append((key, roles.assign(run, dict(self.settings.roles))))
        self.polls += 1
        found: list[Finding] = []
        for key, run in changed:
            found.extend(self.tracker.new(run.id, self._check(key, run).findings_for(run.id)))
        return sorted(found, key=finding_order)

    def _check(self, key: tuple[str, Path], run: Run) -> Report:
        """The report of one changed run: with ``once`` the whole run, as ``check`` reads it;
        else through the run's incremental engine, given what the run gained."""
        if self.once:
            return diagnose([run], [], self.settings)
        live = self.live.get(key)
        if live is None:
            live = self.live[key] = LiveRun(run.id, self.settings)
        live.sync(run)
        return live.check()

    def _follower(self, source: RunSource) -> Follower:
        if self.once:  # one poll: every log read whole, as it is, as check reads it
            return Rewritten(read_source, settled=True)
        context = FollowContext(source, read_source, self.scratch, first_poll=self.polls == 0)
        return reader_named(source.reader).follow(context)

    def _problem(self, path: str, reason: str) -> None:
        """Say once on stderr that a log could not be read (the watch goes on)."""
        if self.problems is not None and (path, reason) not in self.reported:
            self.reported.add((path, reason))
            self.problems.write(f"rundoctor: {visible(path)}: {visible(reason)}\n")
            self.problems.flush()
