"""The sweep view: which logged settings go with which diagnosis across the runs of a sweep.

``rundoctor check sweep/ --by lr`` adds to the report, after the runs, lines such as
``training diverged: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.01``.  This module
measures; the reporters only write what it found.

What is compared:

- **Runs**: the training runs (one run written in several formats counts once), each with the
  hyper-parameters its formats logged (:attr:`~rundoctor.series.Run.hparams`, the leader's
  first) and one **outcome**: the problem its diagnosis names (verdict ``problem`` or
  ``serious``, or the unjudged ``no data`` and ``too short to judge``).  Healthy runs and runs
  with notes only have none.  Besides each problem, the outcome :data:`ANY_PROBLEM` (a
  warning or an error, whichever problem) is compared when the runs have several problems,
  so that settings that go with trouble of several kinds (three runs NaN, three diverged)
  still show.
- **Parameters**: ``--by NAME`` finds NAME in a run's keys, or, when the run has no such
  key, the one key that ends with ``.NAME`` (``--by lr`` finds ``optimizer.lr``; a run with
  two such keys has neither).  ``--by auto`` takes every key whose values differ between runs,
  except text values no two runs share (names, output folders), which cannot put runs in
  groups.  A parameter is numeric when every value logged is a finite decimal number (the
  text ``1e-3`` too: ``1e-3`` and ``0.001`` are one setting), else its values are compared as
  text.  Runs that did not log it are left out of its counts, and counted.
- **Splits**: a numeric parameter's runs are sorted by value and every cut between two
  distinct values splits them in two; a text parameter's runs are split into one value and
  all the others, for each value.  For each outcome the split whose two sides differ most
  (the pooled two-proportion z statistic, which favours large sides over one odd run) is kept.

What is said:

- A split is a finding when each side holds at least :data:`MIN_SIDE_RUNS` runs and its
  *chance* is at most :data:`MAX_CHANCE`: the one-sided Fisher exact probability that outcomes
  shuffled at random among the runs split this unevenly, times the splits tried for the
  parameter (Bonferroni: the best of ten thousand thresholds of a parameter that does nothing
  is as uneven as one threshold's one-in-ten-thousand chance).  It is not corrected across
  outcomes and parameters: it screens out what a handful of runs or a long search shows by
  chance, it proves nothing.  A *clean* split (every run on one side has the outcome, none on
  the other) that fails only the screen is still said, with "too few runs to tell it from
  chance".
- Findings say counts and the settings seen on each side (``lr >= 0.03`` is the smallest
  value on one side, ``lr <= 0.01`` the largest on the other: nothing is claimed about the
  values between), never a cause: parameters that vary together split the runs alike, and
  each such finding names the others (:attr:`Split.same_runs_as`).
- A parameter that splits nothing has no finding: its values and their counts are still
  listed (:attr:`ParamSummary.values`).

Everything here is a pure function of the runs' hyper-parameters and diagnoses; values are
log text and are escaped by the reporters when written.
"""

from __future__ import annotations

import difflib
import enum
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rundoctor.findings import Severity
from rundoctor.readers.text import number_text, plural

if TYPE_CHECKING:
    from rundoctor.diagnosis import Diagnosis
    from rundoctor.report import Report

AUTO = "auto"  # ``--by auto``: every parameter whose values differ between runs
ANY_PROBLEM = "a warning or an error"  # the outcome of every run with a problem, whichever
# The fewest runs on either side of a split: one odd run at the end of a sorted parameter is
# no pattern, and its "all 1 run" would repeat for every parameter it happens to top.
MIN_SIDE_RUNS = 2
# The largest chance a finding may have (see the module docstring): six runs of twenty cleanly
# split at one of 9 thresholds give 0.0002; five of ten at one of 7, 0.03; three of six, 0.15.
MAX_CHANCE = 0.05
_LONGEST_NUMBER = 64  # characters: longer text is no setting anyone typed as a number
_LONGEST_TEXT = 80  # characters of a text value the sentences show
_SUGGESTIONS = 3  # keys offered for a name no run logged
_OUTCOMES_SHOWN = 4  # problems the headline names with their runs; the rest are counted
_VALUES_SHOWN = 6  # values a parameter without a finding lists with their runs; JSON has them all


class ParamKind(str, enum.Enum):
    """How a parameter's values are compared."""

    NUMERIC = "numeric"  # by value, split at a threshold
    CATEGORICAL = "categorical"  # as text, one value against the others
    ABSENT = "absent"  # no run logged it


@dataclass(frozen=True)
class SweepRun:
    """One training run as the sweep sees it: its id, its hyper-parameters (text as logged) and
    its outcome (the problem its diagnosis names; None for a run without a problem)."""

    run: str
    hparams: Mapping[str, str]
    outcome: str | None
    any_problem: bool = False  # a warning or an error (or no data): the run's level at warning or above


@dataclass(frozen=True)
class Side:
    """One side of a split: the settings (``op`` and ``value``: ``>=``/``<=`` a number, ``=``/``!=``
    a text), the runs that logged them and how many of those had the outcome."""

    op: str
    value: float | str
    runs: int
    with_outcome: int

    def condition(self, param: str) -> str:
        """``lr >= 0.03``, ``optimizer = sgd``."""
        return f"{param} {self.op} {value_text(self.value)}"

    def as_dict(self) -> dict[str, Any]:
        """The side as the JSON report writes it."""
        return {"op": self.op, "value": self.value, "runs": self.runs, "with_outcome": self.with_outcome}


@dataclass(frozen=True)
class Split:
    """A finding: ``outcome`` is more frequent among the runs on the ``more`` side of ``param``
    than on the ``less`` side.  ``chance`` is the one-sided Fisher exact probability of a
    split at least this uneven were the outcomes shuffled among the runs, times the splits
    tried for the parameter; ``same_runs_as`` the other parameters whose finding for this
    outcome puts the same runs on each side; ``sides`` the run ids on each side."""

    param: str
    outcome: str
    more: Side
    less: Side
    chance: float
    same_runs_as: tuple[str, ...] = ()
    sides: tuple[frozenset[str], frozenset[str]] = field(default=(frozenset(), frozenset()), repr=False, compare=False)

    @property
    def clean(self) -> bool:
        """Every run on one side had the outcome and none on the other."""
        return self.more.with_outcome == self.more.runs and self.less.with_outcome == 0

    @property
    def conclusive(self) -> bool:
        """The split passes the chance screen (:data:`MAX_CHANCE`); a clean split that does not
        is said with "too few runs to tell it from chance"."""
        return self.chance <= MAX_CHANCE

    def sentence(self) -> str:
        """``training diverged: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.01`` and what
        qualifies it; log text unescaped (the reporters escape it)."""
        more, less = self.more, self.less
        share = f"all {more.runs:,} runs" if more.with_outcome == more.runs else f"{more.with_outcome:,} of {more.runs:,} runs"
        text = (f"{self.outcome}: {share} with {more.condition(self.param)}; "
                f"{less.with_outcome:,} of {less.runs:,} with {less.condition(self.param)}")
        qualifiers = self.qualifiers()
        return text + (f" ({'; '.join(qualifiers)})" if qualifiers else "")

    def qualifiers(self) -> list[str]:
        """What tempers the finding: too few runs to pass the chance screen, other parameters that
        split the runs alike."""
        qualifiers = [] if self.conclusive else ["too few runs to tell it from chance"]
        if self.same_runs_as:
            qualifiers.append(f"{' and '.join(self.same_runs_as)} split{'s' if len(self.same_runs_as) == 1 else ''} "
                              "these runs alike")
        return qualifiers

    def as_dict(self) -> dict[str, Any]:
        """The finding as the JSON report writes it."""
        return {"outcome": self.outcome, "more": self.more.as_dict(), "less": self.less.as_dict(),
                "clean": self.clean, "chance": self.chance, "conclusive": self.conclusive,
                "same_runs_as": list(self.same_runs_as), "text": self.sentence()}


@dataclass(frozen=True)
class ValueCount:
    """One value of a parameter: the runs that logged it and their outcomes (problems only)."""

    value: float | str
    runs: int
    outcomes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ParamSummary:
    """What the sweep found for one parameter: the keys it was read from, how many runs logged
    it and did not, its values (numbers ascending, text most runs first) and its findings,
    the most convincing first.  ``suggestions``: for a name no run logged, keys close to it."""

    name: str
    kind: ParamKind
    keys: tuple[str, ...]
    runs: int
    missing: int
    values: tuple[ValueCount, ...]
    splits: tuple[Split, ...]
    suggestions: tuple[str, ...] = ()

    def description(self) -> str:
        """What the parameter's runs hold when it has no finding: ``optimizer separates no
        diagnosis: adam in 10 runs (4 training diverged), sgd in 10 (4 training diverged)``,
        ``lr separates no diagnosis: 12 values from 1e-05 to 0.3 over 20 runs``, ``lr has too few
        runs on a side to compare: ...``, ``lr: no run logged it (did you mean learning_rate?)``;
        log text unescaped."""
        if self.kind is ParamKind.ABSENT:
            hint = f" (did you mean {' or '.join(self.suggestions)}?)" if self.suggestions else ""
            return f"{self.name}: no run logged it{hint}"
        if self.kind is ParamKind.NUMERIC and len(self.values) > _VALUES_SHOWN:
            low, high = value_text(self.values[0].value), value_text(self.values[-1].value)
            held = f"{len(self.values):,} values from {low} to {high} over {self.runs:,} runs"
        else:
            held = ", ".join(_value_phrase(count, first=not index) for index, count in enumerate(self.values[:_VALUES_SHOWN]))
            more = len(self.values) - _VALUES_SHOWN
            held += f", +{more:,} more values" if more > 0 else ""
        verb = "separates no diagnosis" if self.comparable else "has too few runs on a side to compare"
        return f"{self.name} {verb}: {held}" + (f"; {self.missing_note()}" if self.missing else "")

    @property
    def comparable(self) -> bool:
        """Whether some split of its runs leaves :data:`MIN_SIDE_RUNS` on each side."""
        counts = [count.runs for count in self.values]
        if self.kind is ParamKind.NUMERIC:
            return any(MIN_SIDE_RUNS <= below <= self.runs - MIN_SIDE_RUNS for below in np.cumsum(counts)[:-1].tolist())
        return any(MIN_SIDE_RUNS <= runs <= self.runs - MIN_SIDE_RUNS for runs in counts)

    def missing_note(self) -> str:
        """``3 runs did not log lr`` (empty when every run did)."""
        return f"{plural(self.missing, 'run')} did not log {self.name}" if self.missing else ""

    def as_dict(self) -> dict[str, Any]:
        """The parameter as the JSON report writes it."""
        return {
            "name": self.name, "kind": self.kind.value, "keys": list(self.keys), "runs": self.runs,
            "missing": self.missing,
            "values": [{"value": count.value, "runs": count.runs, "outcomes": dict(count.outcomes)}
                       for count in self.values],
            "splits": [split.as_dict() for split in self.splits],
            "suggestions": list(self.suggestions),
        }


@dataclass(frozen=True)
class Sweep:
    """The sweep view of a report: the parameters asked for (``by``, ``auto`` as given), the
    training runs compared, how many logged no hyper-parameter at all, each outcome with its
    runs (most first) and each parameter's summary (asked order; with ``auto``, the
    parameters with findings first)."""

    by: tuple[str, ...]
    runs: int
    without_hparams: int
    outcomes: tuple[tuple[str, int], ...]
    params: tuple[ParamSummary, ...]

    @property
    def splits(self) -> list[Split]:
        """Every parameter's findings, in parameter order."""
        return [split for param in self.params for split in param.splits]

    def headline(self) -> str:
        """``Sweep by lr (20 runs: 6 training diverged, 14 without a problem; counts, not causes)``."""
        problems = sum(runs for _, runs in self.outcomes)
        parts = [f"{runs:,} {outcome}" for outcome, runs in self.outcomes[:_OUTCOMES_SHOWN]]
        others = self.outcomes[_OUTCOMES_SHOWN:]
        if others:
            parts.append(f"{sum(runs for _, runs in others):,} with {plural(len(others), 'other problem')}")
        if self.runs - problems:
            parts.append(f"{self.runs - problems:,} without a problem")
        told = f": {', '.join(parts)}" if parts else ""
        return f"Sweep by {', '.join(self.by)} ({plural(self.runs, 'run')}{told}; counts, not causes)"

    def notes(self) -> list[str]:
        """What limits the comparison: too few runs, runs with no hyper-parameter, nothing that varies."""
        notes = []
        if self.runs < 2 * MIN_SIDE_RUNS:
            notes.append(f"Too few runs to compare: a split needs {MIN_SIDE_RUNS} runs on each side.")
        if self.without_hparams:
            notes.append(f"{self.without_hparams:,} of the runs logged no hyper-parameter.")
        if AUTO in self.by and all(param.name in self.by for param in self.params):
            notes.append("No logged hyper-parameter differs between these runs.")
        return notes

    def as_dict(self) -> dict[str, Any]:
        """The ``sweep`` member of the JSON report (schema 1.3)."""
        return {"by": list(self.by), "runs": self.runs, "runs_without_hparams": self.without_hparams,
                "outcomes": dict(self.outcomes), "params": [param.as_dict() for param in self.params]}


def parse_by(values: Iterable[str]) -> tuple[str, ...]:
    """``--by`` values (repeated or comma-separated) as names, in order, each once; ValueError
    for an empty name."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                raise ValueError(f"--by takes parameter names or {AUTO!r}, comma-separated or repeated; got {value!r}")
            if name not in names:
                names.append(name)
    return tuple(names)


def value_text(value: float | str) -> str:
    """A value as the report writes it: whole numbers without a decimal point, others in the
    shortest form that reads back the same (``0.03``, ``3e-05``), text as logged, cut after
    :data:`_LONGEST_TEXT` characters (a whole config dumped into one value; JSON has it whole)."""
    if not isinstance(value, str):
        return number_text(value)
    return value if len(value) <= _LONGEST_TEXT else value[: _LONGEST_TEXT - 1] + "…"


def number(text: str) -> float | None:
    """The finite number ``text`` writes in ASCII decimal (``1e-3``, `` 32 ``), else None (``true``,
    ``nan``, ``inf``, ``[1, 2]``, ``1_000``, a number too long to be a setting)."""
    if len(text) > _LONGEST_NUMBER or not text.isascii() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def sweep_report(report: Report, by: Sequence[str]) -> Sweep:
    """The sweep view of ``report`` by the parameters ``by`` (names, or :data:`AUTO`)."""
    runs = []
    for group in report.groups:
        hparams: dict[str, str] = {}
        for member in group:  # the leader first: its value of a key shared with a twin stands
            for key, text in member.hparams.items():
                hparams.setdefault(key, text)
        diagnosis = report.diagnosis(group[0].id)
        level = diagnosis.level.rank if diagnosis.level is not None else -1
        runs.append(SweepRun(group[0].id, hparams, outcome_of(diagnosis), level >= Severity.WARNING.rank))
    return analyse(runs, by)


def outcome_of(diagnosis: Diagnosis) -> str | None:
    """The problem a diagnosis names, or None for a healthy run or one with notes only (a note
    establishes no named cause: see ``Diagnosis.summary``)."""
    from rundoctor.diagnosis import Verdict

    return None if diagnosis.verdict in (Verdict.HEALTHY, Verdict.MINOR) else diagnosis.problem


def analyse(runs: Sequence[SweepRun], by: Sequence[str]) -> Sweep:
    """The sweep view of ``runs`` by the parameters ``by`` (see the module docstring)."""
    outcomes = Counter(run.outcome for run in runs if run.outcome is not None)
    ranked = tuple(sorted(outcomes.items(), key=lambda item: (-item[1], item[0])))
    params = [_summary(name, runs, compare_any=len(outcomes) > 1) for name in by if name != AUTO]
    if AUTO in by:  # the keys that vary, but for those a name asked for was found under
        covered = {key for param in params for key in param.keys}
        found = [_summary(key, runs, compare_any=len(outcomes) > 1, exact=True)
                 for key in varying_keys(runs) if key not in covered]
        found.sort(key=lambda param: (not param.splits, min((s.chance for s in param.splits), default=1.0), param.name))
        params += found
    params = _mark_alike(params)
    without = sum(1 for run in runs if not run.hparams)
    return Sweep(tuple(by), len(runs), without, ranked, tuple(params))


def varying_keys(runs: Sequence[SweepRun]) -> list[str]:
    """Keys with at least two values among the runs that logged them (numbers compared as
    numbers), without text keys whose values no two runs share, sorted."""
    values: dict[str, list[str]] = {}
    for run in runs:
        for key, text in run.hparams.items():
            values.setdefault(key, []).append(text)
    varying = []
    for key, texts in sorted(values.items()):
        numbers = [number(text) for text in texts]
        if all(value is not None for value in numbers):
            varying += [key] if len(set(numbers)) > 1 else []
        elif 1 < len(set(texts)) < len(texts):
            varying.append(key)
    return varying


def lookup(hparams: Mapping[str, str], name: str, *, exact: bool = False) -> tuple[str, str] | None:
    """``(key, text)`` of ``name`` in one run's hyper-parameters: the key itself, else (unless
    ``exact``) the one key ending with ``.name``; None when neither (or several keys end so)."""
    if name in hparams:
        return name, hparams[name]
    if exact:
        return None
    suffix = "." + name
    found = [key for key in hparams if key.endswith(suffix)]
    return (found[0], hparams[found[0]]) if len(found) == 1 else None


def _summary(name: str, runs: Sequence[SweepRun], *, compare_any: bool, exact: bool = False) -> ParamSummary:
    logged: list[tuple[SweepRun, str]] = []
    keys: list[str] = []
    for run in runs:
        found = lookup(run.hparams, name, exact=exact)
        if found is not None:
            logged.append((run, found[1]))
            if found[0] not in keys:
                keys.append(found[0])
    missing = len(runs) - len(logged)
    if not logged:
        return ParamSummary(name, ParamKind.ABSENT, (), 0, missing, (), (), suggestions(name, runs))
    numbers = [number(text) for _, text in logged]
    if all(value is not None for value in numbers):
        values: list[float | str] = [float(value) for value in numbers if value is not None]
        kind = ParamKind.NUMERIC
    else:
        values = [text for _, text in logged]
        kind = ParamKind.CATEGORICAL
    members = [run for run, _ in logged]
    cuts = _Cuts(kind, values)
    tried = (_split(name, cuts, members, has, outcome) for outcome, has in _outcomes(members, compare_any))
    splits = _without_repeats([split for split in tried if split is not None])
    splits.sort(key=lambda split: (not split.conclusive, split.chance, split.outcome))
    return ParamSummary(name, kind, tuple(keys), len(logged), missing, _value_counts(kind, values, members),
                        tuple(splits))


def suggestions(name: str, runs: Sequence[SweepRun]) -> tuple[str, ...]:
    """Logged keys a name no run logged may have meant: the keys whose last part it abbreviates by
    initials (``lr`` for ``learning_rate``), then the keys spelled most like it."""
    every_key = sorted({key for run in runs for key in run.hparams})
    initials = [key for key in every_key
                if "".join(word[:1] for word in key.rsplit(".", 1)[-1].split("_")) == name.lower()]
    close = difflib.get_close_matches(name, every_key, n=_SUGGESTIONS)
    return tuple(dict.fromkeys(initials + close))[:_SUGGESTIONS]


def _outcomes(members: Sequence[SweepRun], compare_any: bool) -> list[tuple[str, np.ndarray]]:
    """Each outcome among the runs with which runs had it, most frequent first, then
    :data:`ANY_PROBLEM` when the runs have several kinds of outcome."""
    counted = Counter(run.outcome for run in members if run.outcome is not None)
    found = [(outcome, np.array([run.outcome == outcome for run in members], bool))
             for outcome, _ in sorted(counted.items(), key=lambda item: (-item[1], item[0]))]
    if compare_any:
        found.append((ANY_PROBLEM, np.array([run.any_problem for run in members], bool)))
    return found


def _split(name: str, cuts: _Cuts, members: Sequence[SweepRun], has: np.ndarray, outcome: str) -> Split | None:
    """The split of ``members`` among ``cuts`` that best separates the runs that had ``outcome``
    (``has``) from the others, when it is a finding (see the module docstring)."""
    total, marked = len(members), int(has.sum())
    if marked in (0, total) or not cuts.runs.size:
        return None
    hits = cuts.hits(has)
    z = _z(cuts.runs, hits, total, marked)
    # The largest |z|; between a split and its mirror (a text parameter of two values), the one
    # whose first side, the value itself or the low numbers, is where the outcome is.
    strength = np.round(np.abs(z), 9)
    best = int(np.flatnonzero(strength == strength.max())[np.argmax(z[strength == strength.max()] > 0)])
    (first_op, first_value), (second_op, second_value) = cuts.conditions(best)
    first = Side(first_op, first_value, int(cuts.runs[best]), int(hits[best]))
    second = Side(second_op, second_value, total - first.runs, marked - first.with_outcome)
    if first.with_outcome * second.runs == second.with_outcome * first.runs:  # equal shares: nothing separates
        return None
    first_more = first.with_outcome * second.runs > second.with_outcome * first.runs
    more, less = (first, second) if first_more else (second, first)
    # Bonferroni over the splits tried: the best of ten thousand thresholds of a noise parameter
    # is as uneven as one threshold's one-in-ten-thousand chance.
    chance = min(1.0, hypergeometric_tail(total, marked, more.runs, more.with_outcome) * cuts.runs.size)
    split = Split(name, outcome, more, less, chance)
    if not (split.conclusive or split.clean):
        return None
    in_first = cuts.on_first_side(best)
    inside = frozenset(run.run for run, on_first in zip(members, in_first) if on_first == first_more)
    outside = frozenset(run.run for run, on_first in zip(members, in_first) if on_first != first_more)
    return Split(name, outcome, more, less, chance, sides=(inside, outside))


class _Cuts:
    """The candidate splits of one parameter's runs, whichever the outcome: for a number, each cut
    between two distinct sorted values; for a text, each value against the others; only those
    that leave :data:`MIN_SIDE_RUNS` runs on each side.  ``runs`` counts each split's first side
    (the low numbers, or the value itself)."""

    def __init__(self, kind: ParamKind, values: Sequence[float | str]) -> None:
        total = len(values)
        if kind is ParamKind.NUMERIC:
            self.numbers = np.array(values, dtype=np.float64)
            self.order = np.argsort(self.numbers, kind="stable")
            ordered = self.numbers[self.order]
            ends = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1  # the first ``end`` runs lie below
            self.ends = ends[(ends >= MIN_SIDE_RUNS) & (ends <= total - MIN_SIDE_RUNS)]
            self.lows, self.highs = ordered[self.ends - 1], ordered[self.ends]
            self.runs = self.ends
        else:
            texts, self.codes = np.unique(np.array([str(value) for value in values], dtype=object), return_inverse=True)
            counts = np.bincount(self.codes, minlength=len(texts))
            order = sorted(range(len(texts)), key=lambda code: (-counts[code], texts[code]))  # most runs first
            self.texts = [str(texts[code]) for code in order]
            self.chosen = np.array(order, dtype=np.intp)
            kept = (counts[self.chosen] >= MIN_SIDE_RUNS) & (counts[self.chosen] <= total - MIN_SIDE_RUNS)
            self.chosen, self.texts = self.chosen[kept], [text for text, keep in zip(self.texts, kept) if keep]
            self.runs = counts[self.chosen]
        self.kind = kind

    def hits(self, has: np.ndarray) -> np.ndarray:
        """How many runs on each split's first side had the outcome."""
        if self.kind is ParamKind.NUMERIC:
            return np.cumsum(has[self.order])[self.ends - 1]
        return np.bincount(self.codes, weights=has, minlength=int(self.codes.max()) + 1)[self.chosen].astype(np.int64)

    def conditions(self, index: int) -> tuple[tuple[str, float | str], tuple[str, float | str]]:
        """The two sides' conditions of a split: ``<=`` and ``>=`` the values either side of the
        cut, or ``=`` and ``!=`` the value."""
        if self.kind is ParamKind.NUMERIC:
            return ("<=", float(self.lows[index])), (">=", float(self.highs[index]))
        return ("=", self.texts[index]), ("!=", self.texts[index])

    def on_first_side(self, index: int) -> list[bool]:
        """Which runs a split puts on its first side."""
        if self.kind is ParamKind.NUMERIC:
            return (self.numbers <= self.lows[index]).tolist()  # type: ignore[no-any-return]
        return (self.codes == self.chosen[index]).tolist()  # type: ignore[no-any-return]


def _z(first_runs: np.ndarray, first_hits: np.ndarray, total: int, marked: int) -> np.ndarray:
    """The pooled two-proportion z statistic of each split (positive: the first side has the
    larger share of the outcome); ``marked`` is neither 0 nor ``total``."""
    second_runs = total - first_runs
    share = marked / total
    spread = np.sqrt(share * (1 - share) * (1 / first_runs + 1 / second_runs))
    result: np.ndarray = (first_hits / first_runs - (marked - first_hits) / second_runs) / spread
    return result


def hypergeometric_tail(total: int, marked: int, drawn: int, hits: int) -> float:
    """P(X >= hits) for X the marked items among ``drawn`` taken at random from ``total`` of which
    ``marked`` are marked: the one-sided Fisher exact test of a 2x2 table, in logarithms so
    that ten thousand runs cost no big integers."""
    low, high = max(hits, drawn - (total - marked), 0), min(marked, drawn)
    if low > high:
        return 0.0
    whole = _log_choose(total, drawn)
    terms = [_log_choose(marked, x) + _log_choose(total - marked, drawn - x) - whole for x in range(low, high + 1)]
    peak = max(terms)
    return min(1.0, math.exp(peak) * math.fsum(math.exp(term - peak) for term in terms))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _without_repeats(splits: list[Split]) -> list[Split]:
    """The splits without an :data:`ANY_PROBLEM` split that says what a problem's split says
    (the same sides and counts: every run with a problem on the side had that one)."""
    said = {(split.more, split.less) for split in splits if split.outcome != ANY_PROBLEM}
    return [split for split in splits if split.outcome != ANY_PROBLEM or (split.more, split.less) not in said]


def _mark_alike(params: list[ParamSummary]) -> list[ParamSummary]:
    """Each finding with the other parameters whose finding for its outcome puts the same runs
    on each side: parameters that vary together, which the counts cannot tell apart."""
    by_sides: dict[tuple[str, frozenset[str], frozenset[str]], list[str]] = {}
    for param in params:
        for split in param.splits:
            by_sides.setdefault((split.outcome, *split.sides), []).append(param.name)
    return [
        replace(param, splits=tuple(
            replace(split, same_runs_as=tuple(name for name in by_sides[(split.outcome, *split.sides)] if name != param.name))
            for split in param.splits))
        for param in params
    ]


def _value_phrase(count: ValueCount, *, first: bool) -> str:
    """``sgd in 10 runs (4 training diverged)``; after the first value, ``adam in 10``."""
    runs = plural(count.runs, "run") if first else f"{count.runs:,}"
    told = ", ".join(f"{runs_with} {outcome}" for outcome, runs_with in count.outcomes)
    return f"{value_text(count.value)} in {runs}" + (f" ({told})" if told else "")


def _value_counts(kind: ParamKind, values: Sequence[float | str], members: Sequence[SweepRun]) -> tuple[ValueCount, ...]:
    """Each value with its runs and their outcomes: numbers ascending, text most runs first."""
    runs_of: dict[float | str, int] = {}
    outcomes_of: dict[float | str, Counter[str]] = {}
    for value, run in zip(values, members):
        runs_of[value] = runs_of.get(value, 0) + 1
        if run.outcome is not None:
            outcomes_of.setdefault(value, Counter())[run.outcome] += 1
    if kind is ParamKind.NUMERIC:
        order = sorted(runs_of, key=lambda value: float(value))
    else:
        order = sorted(runs_of, key=lambda value: (-runs_of[value], str(value)))
    return tuple(
        ValueCount(value, runs_of[value],
                   tuple(sorted(outcomes_of[value].items(), key=lambda item: (-item[1], item[0])))
                   if value in outcomes_of else ())
        for value in order
    )
