"""The incremental engine: the checks run on a run while it is written, at a cost per call that
does not grow with the run.

A :class:`LiveRun` keeps each tag's curve bounded (:class:`~rundoctor.live.curves.BoundedCurve`:
the latest points whole, a doubling-stride sample of the history before them) and the
non-finite check's measurement exact (:class:`~rundoctor.live.curves.StreamedNonFinite`, every
point counted).  A check builds a run of the kept points (at most a few thousand a tag, however
long the run) and runs the selected checks on it as ``rundoctor check`` does, each in
isolation; the non-finite check judges the exact measurement instead of the sample, so a NaN
is never sampled away and its counts and steps are those of the whole run.  A run no longer
than the kept points (2 x 1,024 sampled plus up to 2 x 256 latest, a tag) is checked on every
point: the same findings as ``check``.  Longer runs are judged on the sample: the loss's level
and noise survive it (every kept point is a logged point), a divergence is seen at full
resolution in the latest points, and evidence that counts points counts the sample's.

:class:`LiveDoctor` is what the training callbacks share: it records the metrics a framework
logs, runs a check every ``every`` steps, reports each finding once (again when its severity
rises), and decides whether a finding stops the run (:class:`StopPolicy`).  ``rundoctor
watch`` checks each followed run through a :class:`LiveRun`, fed with what its logs gained.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rundoctor import roles as role_names
from rundoctor.checks import non_finite
from rundoctor.checks.base import Check, RunContext
from rundoctor.config import Settings
from rundoctor.engine import diagnose, selected_checks
from rundoctor.findings import Finding, Severity
from rundoctor.live.curves import HISTORY, RECENT, BoundedCurve, StreamedNonFinite
from rundoctor.live.tracker import FindingTracker
from rundoctor.report import CheckOutcome, OutcomeStatus, Report, finding_order
from rundoctor.roles import LOSS_ROLES, Role
from rundoctor.series import Run, RunBuilder
from rundoctor.summary import RunSummary

# The checks that may stop a run by default: the two with no false alarm at warning or above on
# the calibration corpus's healthy runs (docs/accuracy.md), whose findings at error level mean
# the run is dead (NaN weights, an exploded loss).  Every other finding is logged.
DEFAULT_STOP_CHECKS = ("non-finite", "loss-divergence")
# ...and only about a loss: a non-finite gradient norm is fp16's loss scaler skipping a step by
# design, a NaN metric an evaluation that had nothing to count; neither harms the weights.
DEFAULT_STOP_ROLES = tuple(role.value for role in LOSS_ROLES)


class LiveRun:
    """One run checked while it is written: bounded curves, exact non-finite measurements, and
    the context a reader gives a run (notes, histograms, metadata, axes) when there is one."""

    def __init__(
        self,
        run_id: str,
        settings: Settings | None = None,
        *,
        history: int = HISTORY,
        recent: int = RECENT,
        registry: Sequence[Check[Any]] | None = None,
    ) -> None:
        self.id = run_id
        self.settings = settings or Settings()
        self.registry = registry
        self._sizes = (history, recent)
        self._curves: dict[str, BoundedCurve] = {}
        self._non_finite: dict[str, StreamedNonFinite] = {}
        self._context: Run | None = None
        self._synced: dict[str, tuple[int, int, bytes]] = {}  # tag -> (points fed, last step, last value)

    @property
    def points(self) -> int:
        """Points added so far, every tag."""
        return sum(curve.count for curve in self._curves.values())

    def add(self, tag: str, step: int, value: float, wall_time: float = math.nan) -> None:
        """One point of ``tag``."""
        self._tag(tag)[0].add(step, value, wall_time)
        self._non_finite[tag].extend(np.array([step], dtype=np.int64), np.array([value], dtype=np.float64))

    def extend(self, tag: str, steps: np.ndarray, values: np.ndarray, wall_times: np.ndarray) -> None:
        """Points of ``tag`` in log order."""
        curve, streamed = self._tag(tag)
        curve.extend(steps, values, wall_times)
        streamed.extend(steps, values)

    def sync(self, run: Run) -> None:
        """Take in what ``run`` (the whole run as read so far) gained since the last call: the
        points appended to each tag.  A run that was not only appended to (a log rewritten or
        read again differently: a tag with fewer points, or another point where the last one
        fed was) is taken in again from scratch."""
        self._context = run
        if any(not self._continues(run, tag) for tag in self._synced):
            self._curves, self._non_finite, self._synced = {}, {}, {}
        for tag in run.tags:
            curve = run.curve(tag)
            fed = self._synced.get(tag, (0, 0, b""))[0]
            if curve.steps.size > fed:
                self.extend(tag, curve.steps[fed:], curve.values[fed:], curve.wall_times[fed:])
                last = curve.steps.size - 1
                self._synced[tag] = (last + 1, int(curve.steps[last]), curve.values[last : last + 1].tobytes())

    def _continues(self, run: Run, tag: str) -> bool:
        fed, step, value = self._synced[tag]
        if run.point_count(tag) < fed:
            return False
        curve = run.curve(tag)
        return int(curve.steps[fed - 1]) == step and curve.values[fed - 1 : fed].tobytes() == value

    def snapshot(self) -> Run:
        """The kept points as a run, roles assigned: what the checks see."""
        builder = RunBuilder()
        for tag, curve in self._curves.items():
            builder.add(tag, *curve.points())
        context = self._context
        extra: dict[str, Any] = {}
        if context is not None:
            extra = {
                "x_axis": context.x_axis, "tag_axes": dict(context.tag_axes), "notes": list(context.notes),
                "histograms": context.histograms, "metadata": dict(context.metadata),
            }
        run = builder.build(
            id=self.id,
            path=context.path if context is not None else self.id,
            format=context.format if context is not None else "live",
            sources=context.sources if context is not None else [],
            **extra,
        )
        return role_names.assign(run, dict(self.settings.roles))

    def check(self) -> Report:
        """Every selected check on the kept points, the non-finite check on the exact
        measurement; the report of this one run, diagnosed."""
        run = self.snapshot()
        streamed = non_finite.CHECK in selected_checks(self.settings, self.registry)
        others = self.settings
        if streamed:
            others = dataclasses.replace(self.settings, ignore=(*self.settings.ignore, non_finite.CHECK.name))
        report = diagnose([run], [], others, self.registry)
        if not streamed:
            return report
        findings, outcome = self._non_finite_findings(run)
        return Report.from_runs(
            (run,),
            (*report.findings, *findings),
            outcomes=(*report.outcomes, outcome),
            fail_on=self.settings.fail_on,
        )

    def _non_finite_findings(self, run: Run) -> tuple[list[Finding], CheckOutcome]:
        """The non-finite check's judgement of the exact measurements, isolated as the engine
        isolates a check."""
        check = non_finite.CHECK
        try:
            params = check.make_params(self.settings.params.get(check.name, {}))
            found = [
                measured
                for tag in run.tags
                if run.roles.get(tag) is not Role.COUNTER  # as the check leaves counters out
                and (measured := self._non_finite[tag].measured(tag)) is not None
            ]
            findings = list(non_finite.judge(check, RunContext(run), params, found))
        except Exception as error:  # isolation: a broken check must not stop the others
            status = CheckOutcome(check.name, check.code, run.id, OutcomeStatus.ERROR, f"{type(error).__name__}: {error}")
            return [], status
        override = self.settings.severity.get(check.name)
        if override is not None:
            findings = [dataclasses.replace(finding, severity=override) for finding in findings]
        return findings, CheckOutcome(check.name, check.code, run.id, OutcomeStatus.RAN)

    def _tag(self, tag: str) -> tuple[BoundedCurve, StreamedNonFinite]:
        curve = self._curves.get(tag)
        if curve is None:
            curve = self._curves[tag] = BoundedCurve(*self._sizes)
            self._non_finite[tag] = StreamedNonFinite()
        return curve, self._non_finite[tag]


@dataclass(frozen=True)
class StopPolicy:
    """Which findings stop a training run: those of ``checks`` at or above ``severity`` (None:
    never stop) about a tag of one of ``roles`` (empty: any tag)."""

    severity: Severity | None = Severity.ERROR
    checks: tuple[str, ...] = DEFAULT_STOP_CHECKS
    roles: tuple[Role, ...] = LOSS_ROLES

    def stops(self, finding: Finding, run: RunSummary) -> bool:
        """Whether ``finding`` (of ``run``) stops the run."""
        if self.severity is None or finding.severity.rank < self.severity.rank or finding.check not in self.checks:
            return False
        return not self.roles or any(run.roles.get(tag) in self.roles for tag in finding.tags)


@dataclass(frozen=True)
class Checkup:
    """What one check of a live run found: the findings not reported before (each once, again when
    its severity rises) and the finding that stops the run, if one does."""

    step: int
    findings: list[Finding]
    stop: Finding | None
    report: Report = field(repr=False)

    def stop_message(self) -> str:
        """Why the run is being stopped, in one paragraph: the step, the finding, what to try."""
        finding = self.stop
        if finding is None:
            return ""
        return (
            f"rundoctor stopped training at step {self.step:,}: {finding.severity.value} {finding.code} "
            f"{finding.check}: {finding.message}. {finding.advice}"
        )


def describe(finding: Finding) -> str:
    """One finding as the callbacks log it: ``rundoctor: [step N] SEVERITY code check: message``."""
    step = "-" if finding.first_step is None else f"{finding.first_step:,}"
    return f"rundoctor: [step {step}] {finding.severity.value.upper()} {finding.code} {finding.check}: {finding.message}"


class LiveDoctor:
    """What every training callback shares: it records the metrics the framework logs, checks
    the run every ``every`` steps, and says what is new and whether to stop.

    ``stop_on``: the lowest severity that stops the run (``"error"``, ``"warning"``,
    ``"info"``; ``None`` or ``"never"``: only log); ``stop_checks``: the checks whose findings
    may stop it (default: non-finite values and divergence, see :data:`DEFAULT_STOP_CHECKS`);
    ``stop_roles``: the roles a stopping finding must be about (default: the losses; empty:
    any).  ``log_on``: the lowest severity of a finding worth logging (default ``"warning"``: a
    half-run is often "still improving" or "flat so far", which only the end can settle).
    ``select``, ``ignore``, ``params``, ``severity``, ``num_classes`` and ``roles``
    mean what they mean for :func:`rundoctor.diagnose` and :func:`rundoctor.load`."""

    def __init__(
        self,
        *,
        every: int = 50,
        stop_on: str | Severity | None = "error",
        stop_checks: Iterable[str] = DEFAULT_STOP_CHECKS,
        stop_roles: Iterable[str] = DEFAULT_STOP_ROLES,
        log_on: str | Severity | None = "warning",
        select: str | Iterable[str] | None = None,
        ignore: str | Iterable[str] | None = None,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        severity: Mapping[str, str | Severity] | None = None,
        num_classes: int | None = None,
        roles: Mapping[str, str | Sequence[str]] | None = None,
        run_id: str = "live",
    ) -> None:
        from rundoctor.api import settings_from  # the library's validation, with its messages

        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of steps, at least 1, got {every!r}")
        settings = settings_from(select, ignore, params, severity, num_classes, "never", roles)
        self.policy = StopPolicy(_threshold(stop_on), _known_checks(stop_checks), _roles(stop_roles))
        self.log_on = _threshold(log_on)
        self.every = every
        self.run = LiveRun(run_id, settings, recent=max(RECENT, every))
        self.tracker = FindingTracker()
        self._next_check = every
        self._unchecked = 0  # points recorded since the last check

    def record(self, step: int, metrics: Mapping[str, Any], wall_time: float | None = None) -> None:
        """The metrics logged at ``step``: numbers (Python, numpy or one-element tensors) are kept,
        anything else (strings, lists, images) is passed over."""
        wall = math.nan if wall_time is None else float(wall_time)
        for tag, value in metrics.items():
            number = as_number(value)
            if number is not None:
                self.run.add(str(tag), int(step), number, wall)
                self._unchecked += 1

    def due(self, step: int) -> bool:
        """Whether a check is due at ``step``: the first step at or past each multiple of ``every``."""
        return step >= self._next_check

    def checkup(self, step: int) -> Checkup:
        """Check the run now (the step is the one the framework is at)."""
        self._next_check = (step // self.every + 1) * self.every
        self._unchecked = 0
        report = self.run.check()
        active = report.active_findings
        (run,) = report.runs
        stop = next((finding for finding in sorted(active, key=finding_order) if self.policy.stops(finding, run)), None)
        worth = [f for f in active if self.log_on is not None and f.severity.rank >= self.log_on.rank]
        return Checkup(step, self.tracker.new(self.run.id, worth), stop, report)

    def observe(self, step: int, metrics: Mapping[str, Any], wall_time: float | None = None) -> Checkup | None:
        """:meth:`record`, then :meth:`checkup` when one is due; None when none was."""
        self.record(step, metrics, wall_time)
        return self.checkup(step) if self.due(step) else None

    def final_checkup(self, step: int) -> Checkup | None:
        """A last check when training ends, if points came in since the previous one."""
        return self.checkup(step) if self._unchecked else None


def as_number(value: Any) -> float | None:
    """A logged value as a float: Python and numpy numbers and one-element tensors (anything with
    ``__float__`` or ``item()``); None for booleans, text and anything with several values."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        pass
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return float(item())
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


def _threshold(level: str | Severity | None) -> Severity | None:
    """``"error"``, ``"warning"``, ``"info"`` or ``"never"`` (None) as a severity."""
    if level is None or isinstance(level, Severity):
        return level
    from rundoctor.config import parse_fail_on
    from rundoctor.errors import UsageError

    try:
        return parse_fail_on(level)
    except UsageError as error:
        raise ValueError(str(error).replace("fail-on", "level", 1)) from None


def _known_checks(names: Iterable[str]) -> tuple[str, ...]:
    from rundoctor.checks.registry import REGISTRY

    chosen = tuple([names] if isinstance(names, str) else names)
    known = {check.name for check in REGISTRY}
    unknown = [name for name in chosen if name not in known]
    if unknown:
        from rundoctor.config import _hint

        raise ValueError(f"stop_checks: unknown check {unknown[0]!r}{_hint(unknown[0], known)}")
    return chosen


def _roles(names: Iterable[str]) -> tuple[Role, ...]:
    valid = {role.value: role for role in Role}
    chosen = [names] if isinstance(names, str) else list(names)
    for name in chosen:
        if name not in valid:
            raise ValueError(f"stop_roles: unknown role {name!r}; roles: {', '.join(valid)}")
    return tuple(valid[name] for name in chosen)
