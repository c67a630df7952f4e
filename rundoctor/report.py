"""The report: what was read, what every check concluded, the diagnosis of each run, and
what could not be read.

Reporters are pure functions of a :class:`Report`; this module holds the record and the
derived views they share (diagnoses, active findings, counts, ordering), so no reporter
re-derives them.  A finding that the diagnosis superseded (a higher-priority finding
contradicts it, or tells the same story) stays in :attr:`Report.findings` but not in the
active views: :meth:`Report.active_findings_for`, :meth:`Report.counts` and ``--fail-on``
leave it out (:meth:`Report.findings_for` is every finding of a run: what the checks said).  A run diagnosed ``no_data`` or ``too_short`` fails ``--fail-on`` at its verdict's level.

One run written in several formats (:mod:`rundoctor.twins`) stays one :class:`Run` per format,
each with its own findings, and has one diagnosis: :meth:`Report.diagnosis` returns it for
any member.  Human reports show such a group once, under its leader (:attr:`Report.groups`),
with the group's findings told once (:meth:`Report.shown_findings_for`): a finding of a later
member whose check already has a finding as severe on a member shown before it is not
repeated; the shown one names the formats that also have it (:meth:`Report.also_in`).

Gating (:mod:`rundoctor.suppress`, :mod:`rundoctor.baseline`): a finding a suppression rule set
aside never reaches :attr:`Report.findings` nor the diagnosis; it is kept, with its rule, in
:attr:`Report.suppressed`.  A finding the ``--baseline`` holds stays an active finding (it is
still true of the run, and the diagnosis may rest on it) but is *baselined*
(:meth:`Report.is_baselined`): it does not count for ``--fail-on``, and human reports, which
list :meth:`Report.shown_findings`, leave it out (they count it; the JSON report lists it).

The sweep view (``check --by``, :mod:`rundoctor.sweep`), made from the runs' logged
hyper-parameters and their diagnoses, is :attr:`Report.sweep` (None without ``--by``).

A report holds no run's points: :attr:`Report.runs` are :class:`~rundoctor.summary.RunSummary`
records, made as each run is diagnosed (:mod:`rundoctor.summary`), so a report of 10,000 runs
costs their findings and summaries, not their curves.  A report built by hand from full runs
(as tests do) summarises them itself, with their curves, after diagnosing them when no
``diagnoses`` are given.
"""

from __future__ import annotations

import bisect
import enum
import functools
import itertools
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, cast, overload

from rundoctor.findings import Finding, Severity
from rundoctor.series import ReadError, Run
from rundoctor.summary import RunSummary, summarize

if TYPE_CHECKING:
    from rundoctor.baseline import BaselineMatch
    from rundoctor.diagnosis import Diagnosis, Link, Verdict
    from rundoctor.suppress import Suppressed
    from rundoctor.sweep import Sweep

SCHEMA_VERSION = "1.3"


class OutcomeStatus(str, enum.Enum):
    """Whether a check ran on a run, was skipped (it could not run there) or raised an error."""

    RAN = "ran"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What one check did on one run: ran, was skipped (and why), or raised (and what).

    A report of 10,000 runs holds some 200,000 of these, most with one of a few skip reasons:
    their texts are interned (one copy each), also when they come back from a worker."""

    check: str
    code: str
    run: str
    status: OutcomeStatus
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", sys.intern(self.check))
        object.__setattr__(self, "code", sys.intern(self.code))
        if self.reason is not None:
            object.__setattr__(self, "reason", sys.intern(self.reason))

    def __reduce__(self) -> tuple[type[CheckOutcome], tuple[str, str, str, OutcomeStatus, str | None]]:
        """Unpickled through the constructor, so that a worker's outcomes are interned here too."""
        return CheckOutcome, (self.check, self.code, self.run, self.status, self.reason)


# What an outcome says apart from its run: check, code, status, reason.
_Said = tuple[str, str, OutcomeStatus, "str | None"]


class Outcomes(Sequence[CheckOutcome]):
    """A report's check outcomes, by run, then check code.

    A report of 10,000 runs has some 280,000 outcomes, and the runs of a sweep mostly have the
    same ones.  Each run's are held as what they say apart from the run, one tuple for every run
    whose outcomes say the same (:func:`_said_once`), and are made :class:`CheckOutcome` records
    as they are read: a run costs a few pointers here, not 28 records."""

    __slots__ = ("_ends", "_runs", "_said")

    def __init__(self, outcomes: Iterable[CheckOutcome] = ()) -> None:
        by_run: dict[str, list[CheckOutcome]] = {}
        for outcome in outcomes:
            by_run.setdefault(outcome.run, []).append(outcome)
        runs = sorted(by_run)
        said = [tuple((o.check, o.code, o.status, o.reason) for o in sorted(by_run[run], key=attrgetter("code")))
                for run in runs]
        self._hold(tuple(runs), said)

    def _hold(self, runs: tuple[str, ...], said: Iterable[tuple[_Said, ...]]) -> None:
        self._runs = runs
        self._said = tuple(_said_once(items) for items in said)
        self._ends = tuple(itertools.accumulate(len(items) for items in self._said))

    @classmethod
    def joined(cls, parts: Iterable[Sequence[CheckOutcome]]) -> Outcomes:
        """The outcomes of several reports of different runs (the batches of one check) as one,
        without making their records."""
        chosen = list(parts)
        held = [part for part in chosen if isinstance(part, Outcomes)]
        pairs = sorted((pair for part in held for pair in part._pairs()), key=itemgetter(0))
        if len(held) != len(chosen) or len({run for run, _ in pairs}) != len(pairs):
            return cls(outcome for part in chosen for outcome in part)  # gathered again, by run
        made = cls()
        made._hold(tuple(run for run, _ in pairs), (said for _, said in pairs))
        return made

    def _pairs(self) -> Iterator[tuple[str, tuple[_Said, ...]]]:
        return zip(self._runs, self._said)

    def for_run(self, run_id: str) -> list[CheckOutcome]:
        """The outcomes of one run, by check code; empty for a run it does not hold."""
        at = bisect.bisect_left(self._runs, run_id)
        if at == len(self._runs) or self._runs[at] != run_id:
            return []
        return [CheckOutcome(check, code, run_id, status, reason) for check, code, status, reason in self._said[at]]

    def __iter__(self) -> Iterator[CheckOutcome]:
        for run, said in self._pairs():
            for check, code, status, reason in said:
                yield CheckOutcome(check, code, run, status, reason)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> CheckOutcome: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[CheckOutcome, ...]: ...

    def __getitem__(self, index: int | slice) -> CheckOutcome | tuple[CheckOutcome, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("outcome index out of range")
        at = bisect.bisect_right(self._ends, index)
        check, code, status, reason = self._said[at][index - (self._ends[at - 1] if at else 0)]
        return CheckOutcome(check, code, self._runs[at], status, reason)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Outcomes):
            return self._runs == other._runs and self._said == other._said
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._runs, self._said))

    def __repr__(self) -> str:
        return f"Outcomes({len(self):,} of {len(self._runs):,} runs)"

    def __reduce__(self) -> tuple[Callable[..., Outcomes], tuple[tuple[str, ...], tuple[tuple[_Said, ...], ...]]]:
        """Unpickled through :meth:`_of`, so that a worker's outcomes share their tuples here too."""
        return Outcomes._of, (self._runs, self._said)

    @staticmethod
    def _of(runs: tuple[str, ...], said: tuple[tuple[_Said, ...], ...]) -> Outcomes:
        made = Outcomes()
        made._hold(runs, said)
        return made


@functools.lru_cache(maxsize=4096)
def _said_once(items: tuple[_Said, ...]) -> tuple[_Said, ...]:
    """One tuple for all equal ones: the outcomes of a sweep's runs say the same."""
    return tuple((sys.intern(check), sys.intern(code), status, None if reason is None else sys.intern(reason))
                 for check, code, status, reason in items)


@dataclass(frozen=True)
class Report:
    """``diagnoses`` holds one :class:`~rundoctor.diagnosis.Diagnosis` per run; when not given
    (a report built by hand from full runs, e.g. in tests) they are derived from the findings."""

    runs: tuple[RunSummary, ...]
    findings: tuple[Finding, ...]
    outcomes: Sequence[CheckOutcome] = ()  # an Outcomes once made
    errors: tuple[ReadError, ...] = ()
    fail_on: Severity | None = Severity.ERROR  # None: never fail
    diagnoses: tuple[Diagnosis, ...] | None = None
    suppressed: tuple[Suppressed, ...] = ()  # set aside before the diagnosis, with their rules
    baseline: BaselineMatch | None = None  # what --baseline made of the active findings
    sweep: Sweep | None = None  # with --by: which logged settings go with which diagnosis

    def __post_init__(self) -> None:
        ordered = sorted(self.findings, key=finding_order)
        object.__setattr__(self, "findings", tuple(ordered))
        self._summarise_full_runs()
        object.__setattr__(self, "runs", tuple(sorted(self.runs, key=lambda run: run.id)))
        if not isinstance(self.outcomes, Outcomes):
            object.__setattr__(self, "outcomes", Outcomes(self.outcomes))
        object.__setattr__(self, "errors", tuple(sorted(self.errors, key=lambda e: e.path)))
        object.__setattr__(self, "suppressed", tuple(sorted(self.suppressed, key=lambda s: finding_order(s.finding))))
        if self.diagnoses is None and self.runs:
            raise ValueError("a report of run summaries needs their diagnoses")
        object.__setattr__(self, "diagnoses", tuple(sorted(self.diagnoses or (), key=lambda d: d.run)))

    @classmethod
    def from_runs(cls, runs: Sequence[Run], findings: Sequence[Finding], **fields: Any) -> Report:
        """A report of full runs and their findings (a report built by hand): the runs are
        diagnosed unless ``diagnoses`` is given, then summarised with their curves kept."""
        return cls(runs=cast("tuple[RunSummary, ...]", tuple(runs)), findings=tuple(findings), **fields)

    def _summarise_full_runs(self) -> None:
        """Full runs given (a report built by hand): diagnosed when no diagnoses are given, then
        summarised with their findings' curves kept, so reporters read one kind of run."""
        given = cast("tuple[RunSummary | Run, ...]", tuple(self.runs))
        full = [run for run in given if isinstance(run, Run)]
        if not full:
            return
        if self.diagnoses is None:
            from rundoctor.diagnosis import diagnose_all  # the diagnosis imports this module

            object.__setattr__(self, "diagnoses", diagnose_all(full, self.findings))
        by_run: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_run.setdefault(finding.run, []).append(finding)
        summaries = tuple(summarize(run, by_run.get(run.id, ()), curves=True) if isinstance(run, Run) else run
                          for run in given)
        object.__setattr__(self, "runs", summaries)

    def outcomes_for(self, run_id: str) -> list[CheckOutcome]:
        """The check outcomes of the run ``run_id`` alone, by check code (looked up, not filtered
        out of every run's: reports that go run by run stay linear in the number of runs)."""
        return cast(Outcomes, self.outcomes).for_run(run_id)

    def group_outcomes(self, run_id: str) -> list[CheckOutcome]:
        """The check outcomes of every member of ``run_id``'s group, in report order."""
        return [outcome for member in sorted(run.id for run in self.members(run_id))
                for outcome in self.outcomes_for(member)]

    def _all_for(self, run_id: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.run == run_id]

    @cached_property
    def _diagnosis_of(self) -> dict[str, Diagnosis]:
        """Every member's id (the leader's too) -> its group's diagnosis."""
        return {member: diagnosis for diagnosis in self.diagnoses or () for member in diagnosis.members}

    @cached_property
    def _run_of(self) -> dict[str, RunSummary]:
        return {run.id: run for run in self.runs}

    def run(self, run_id: str) -> RunSummary:
        """The run with id ``run_id``; KeyError when the report has no such run."""
        return self._run_of[run_id]

    @cached_property
    def groups(self) -> tuple[tuple[RunSummary, ...], ...]:
        """The training runs: each twin group's runs, its leader first, groups by leader id
        (a run with no twin is a group of one).  Reports that show a run once go by these."""
        made = [tuple(self._run_of[member] for member in d.members) for d in self.diagnoses or ()]
        covered = {run.id for group in made for run in group}
        made += [(run,) for run in self.runs if run.id not in covered]
        return tuple(sorted(made, key=lambda group: group[0].id))

    @property
    def leaders(self) -> list[RunSummary]:
        """One run per training run: the one each group is shown under."""
        return [group[0] for group in self.groups]

    def members(self, run_id: str) -> tuple[RunSummary, ...]:
        """The runs of ``run_id``'s group, its leader first: ``(run,)`` for a run with no twin."""
        return self._group_of[run_id]

    @cached_property
    def _group_of(self) -> dict[str, tuple[RunSummary, ...]]:
        return {run.id: group for group in self.groups for run in group}

    @cached_property
    def _shown(self) -> tuple[dict[str, list[Finding]], dict[int, tuple[RunSummary, ...]]]:
        """Per leader id the group's findings as human reports list them, and per shown
        finding the other members whose finding of its check it stands for."""
        shown: dict[str, list[Finding]] = {}
        also: dict[int, tuple[RunSummary, ...]] = {}
        active = self._active_by_run
        for group in self.groups:
            primary = self._diagnosis_of[group[0].id].primary if group[0].id in self._diagnosis_of else None
            told: list[Finding] = []
            for member in group:
                before = list(told)
                for finding in active.get(member.id, []):
                    host = next((f for f in before if f.check == finding.check
                                 and f.severity.rank >= finding.severity.rank), None)
                    if host is None or finding is primary:
                        told.append(finding)
                    elif all(other is not member for other in also.get(id(host), ())):
                        also[id(host)] = (*also.get(id(host), ()), member)
            shown[group[0].id] = told
        return shown, also

    @cached_property
    def _active_by_run(self) -> dict[str, list[Finding]]:
        """Per run the active findings human reports list: those the baseline does not hold."""
        by_run: dict[str, list[Finding]] = {}
        for finding in self.active_findings:
            if id(finding) not in self._baselined:
                by_run.setdefault(finding.run, []).append(finding)
        return by_run

    def shown_findings_for(self, run_id: str) -> list[Finding]:
        """The active findings of ``run_id``'s whole group that the baseline does not hold,
        each told once (see the module docstring), in report order within each member, the
        leader's first."""
        return list(self._shown[0][self.members(run_id)[0].id])

    @property
    def shown_findings(self) -> list[Finding]:
        """Every group's :meth:`shown_findings_for`: what human reports list and count."""
        return [finding for leader in self.leaders for finding in self._shown[0][leader.id]]

    def also_in(self, finding: Finding) -> tuple[RunSummary, ...]:
        """The other members of the finding's group whose finding of the same check is not
        shown because ``finding`` tells it (empty for most findings)."""
        return self._shown[1].get(id(finding), ())

    @cached_property
    def _superseded(self) -> dict[int, Link]:
        # Findings hold dicts (unhashable): identity stands in for a hash.
        return {id(link.finding): link for d in self.diagnoses or () for link in d.superseded}

    def diagnosis(self, run_id: str) -> Diagnosis:
        """The diagnosis of the training run ``run_id`` belongs to (any member of a twin group)."""
        return self._diagnosis_of[run_id]

    def verdict(self, run_id: str) -> Verdict:
        """The verdict of the training run ``run_id`` belongs to (twins share their group's)."""
        return self._diagnosis_of[run_id].verdict

    def superseded_by(self, finding: Finding) -> Link | None:
        """The link that superseded ``finding`` (with the finding above it and the reason), or None."""
        return self._superseded.get(id(finding))

    @property
    def active_findings(self) -> list[Finding]:
        """The findings the diagnosis kept: what counts and what reports list."""
        return [finding for finding in self.findings if id(finding) not in self._superseded]

    @property
    def superseded_findings(self) -> list[Finding]:
        """The findings the diagnosis dropped: another finding contradicts them or tells the same story
        (:meth:`superseded_by` says which and why)."""
        return [finding for finding in self.findings if id(finding) in self._superseded]

    def findings_for(self, run_id: str) -> list[Finding]:
        """Every finding of the run, superseded ones included, most severe first."""
        return self._all_for(run_id)

    def active_findings_for(self, run_id: str) -> list[Finding]:
        """The run's findings the diagnosis kept, most severe first: what reports list."""
        return [finding for finding in self.active_findings if finding.run == run_id]

    def counts(self) -> dict[str, int]:
        """Active findings per severity name, every severity present (zeros kept)."""
        counter = Counter(finding.severity.value for finding in self.active_findings)
        return {severity.value: counter.get(severity.value, 0) for severity in Severity}

    @cached_property
    def _baselined(self) -> frozenset[int]:
        return frozenset(id(finding) for finding in (self.baseline.baselined if self.baseline else ()))

    def is_baselined(self, finding: Finding) -> bool:
        """Whether the ``--baseline`` holds ``finding``: known, listed, not gating."""
        return id(finding) in self._baselined

    @property
    def baselined_findings(self) -> list[Finding]:
        """The active findings the baseline holds, in report order."""
        return [finding for finding in self.active_findings if id(finding) in self._baselined]

    def failing(self) -> list[Finding]:
        """Active findings at or above ``fail_on`` that the baseline does not hold."""
        if self.fail_on is None:
            return []
        return [f for f in self.active_findings
                if f.severity.rank >= self.fail_on.rank and id(f) not in self._baselined]

    def failing_runs(self) -> list[Diagnosis]:
        """Runs that could not be judged (no data, too short) whose verdict's level is at or
        above ``fail_on``: an empty artifact must not pass a CI gate as healthy."""
        if self.fail_on is None:
            return []
        threshold = self.fail_on.rank
        return [
            d for d in self.diagnoses or ()
            if not d.verdict.judged and d.level is not None and d.level.rank >= threshold
        ]

    def to_json(self) -> str:
        """The report as ``rundoctor check --format json`` prints it (schema: ``rundoctor schema``)."""
        from rundoctor.reporters import render  # reporters import this module

        return render("json", self)

    @property
    def exit_code(self) -> int:
        """1 when an active finding or an unjudged run is at or above ``fail_on``, else 0."""
        return 1 if self.failing() or self.failing_runs() else 0


def finding_order(finding: Finding) -> tuple[Any, ...]:
    """Deterministic order: run, then most severe first, then step, then check code."""
    return (
        finding.run,
        -finding.severity.rank,
        finding.first_step if finding.first_step is not None else -(2**63),
        finding.code,
        finding.tags,
        finding.message,
    )
