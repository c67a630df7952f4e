"""The check contract: metadata next to logic, findings with evidence, params as data.

A check is one module holding a frozen params dataclass, a ``detect`` function and one
``CHECK = Check(...)`` record.  ``detect`` measures and compares against the params; it
yields :class:`Finding` records built with :meth:`Check.finding`, which fills in the
identity and default advice so every finding reads the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import numpy as np

from rundoctor.checks.bounds import Bounds, param_bounds
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.roles import Role, primary
from rundoctor.series import Curve, Run


@dataclass(frozen=True)
class NumClasses:
    """The number of classes and where it came from (quoted in evidence)."""

    value: int
    source: str  # "--num-classes", "config", "hparams.yaml: num_classes", "inferred: ..."


@dataclass
class RunContext:
    """What a check sees of a run: role lookups, analysis-ready curves, shared measurements.

    The engine hands every check of a run the same context, so a curve is sorted once per run
    and a measurement taken through :meth:`measure` (a curve binned, smoothed, its noise
    fitted) once however many checks take it.  What it hands out is read-only: no check can
    change what the next one sees.
    """

    run: Run
    num_classes: NumClasses | None = None
    _curves: dict[str, Curve] = field(default_factory=dict, init=False, repr=False)
    _tags: dict[tuple[Role, ...], tuple[str, ...]] = field(default_factory=dict, init=False, repr=False)
    _primary: dict[Role, str | None] = field(default_factory=dict, init=False, repr=False)
    _present: frozenset[Role | None] | None = field(default=None, init=False, repr=False)
    _measured: dict[tuple[Hashable, ...], tuple[tuple[Any, ...], Any]] = field(
        default_factory=dict, init=False, repr=False
    )

    def tags(self, *roles: Role) -> list[str]:
        """The run's tags with any of ``roles``, in the run's tag order (empty when none)."""
        if roles not in self._tags:
            self._tags[roles] = tuple(self.run.tags_with(*roles))
        return list(self._tags[roles])  # a list of the caller's own to extend

    def primary(self, role: Role) -> str | None:
        """The one tag that stands for ``role`` (the densest, see :func:`rundoctor.roles.primary`),
        or None when the run has no tag of that role."""
        if role not in self._primary:
            self._primary[role] = primary(self.run, role)
        return self._primary[role]

    def curve(self, tag: str) -> Curve:
        """Sorted by step, last write wins on repeated steps (see :attr:`Curve.by_step`)."""
        curve = self._curves.get(tag)
        if curve is None:  # not setdefault: that would gather the points on every call
            curve = _read_only(self.run.curve(tag).by_step)
            if curve.finite is not curve:  # most checks ask for it: locked as well
                _read_only(curve.finite)
            self._curves[tag] = curve
        return curve

    @property
    def present(self) -> frozenset[Role | None]:
        """The roles of the run's series and non-empty histograms (what :meth:`Check.missing`
        asks about), found once per run."""
        if self._present is None:
            run = self.run
            self._present = frozenset(
                {run.roles.get(tag) for tag in run.tags}
                | {run.roles.get(tag) for tag in run.histograms if run.histograms[tag]}
            )
        return self._present

    def raw_curve(self, tag: str) -> Curve:
        """Points in log order, repeats kept (for checks about the log itself)."""
        return self.run.curve(tag)

    def measure(self, function: Callable[..., R], *args: Hashable | np.ndarray) -> R:
        """``function(*args)``, computed once per run: checks that measure the same arrays (the
        same objects, as the curves and earlier measurements of this context are) with equal
        parameters share one result.

        ``function`` is a module-level function that does not change its arguments; the
        result is made read-only.  For measurements of curves as the checks judge them (at
        most a few thousand bins): the arguments and result are kept until the run is done.
        """
        # An array by identity (a bare id), anything else by type and value (a pair): the two
        # never compare equal.
        key = (function, *[id(arg) if isinstance(arg, np.ndarray) else (type(arg), arg) for arg in args])
        known = self._measured.get(key)
        if known is not None:
            return cast(R, known[1])
        result = _read_only(function(*args))
        self._measured[key] = (args, result)  # holding the arguments keeps their ids theirs
        return result


R = TypeVar("R")


def _read_only(value: R) -> R:
    """``value`` with every array in it (itself, a tuple's items, a dataclass's fields) made
    read-only, so a shared measurement cannot be changed by the check it is handed to."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
        return value
    if isinstance(value, tuple):
        items: Iterable[Any] = value
    else:  # a dataclass instance (or a number, a string, None: nothing to lock)
        items = (getattr(value, name) for name in getattr(type(value), "__dataclass_fields__", ()))
    for item in items:
        if isinstance(item, np.ndarray):
            item.flags.writeable = False
        elif isinstance(item, tuple) or hasattr(type(item), "__dataclass_fields__"):
            _read_only(item)
    return value


P = TypeVar("P")

# A selector that is a code or the start of one: a family letter and up to three digits.
_CODE_PREFIX = re.compile(r"[a-z]\d{0,3}")

# One requirement: a role, or a tuple of roles any one of which will do.
Need = Role | tuple[Role, ...]


@dataclass(frozen=True)
class Check(Generic[P]):
    """One check: permanent code and name, catalogue metadata, its params type and ``detect``.

    Each check module builds one and :mod:`rundoctor.checks.registry` lists it; the engine calls
    ``detect`` only when :meth:`missing` returns None."""

    code: str  # permanent: a family letter and a number, e.g. "N001"
    name: str  # permanent kebab-case name, part of the CLI/JSON contract
    title: str
    severity: Severity
    needs: tuple[Need, ...]
    params: type[P]  # a frozen dataclass; field metadata["help"] documents each field
    advice: str
    detect: Callable[[Check[P], RunContext, P], Iterable[Finding]] = field(repr=False)
    doc: str = ""  # the module docstring: what it detects, why it matters, what to try
    # (steps, values) of the kind of curve this check is about, drawn by ``rundoctor explain``.
    example: Callable[[], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def selected_by(self, selector: str) -> bool:
        """Whether ``--select``/``--ignore``/config ``selector`` names this check: its name or
        code in any case, or a code prefix as ruff takes them (``N`` for every numerics check,
        ``M00`` for M001-M009)."""
        wanted = selector.strip().lower()
        if wanted == self.name:
            return True
        return bool(_CODE_PREFIX.fullmatch(wanted)) and self.code.lower().startswith(wanted)

    def missing(self, run: Run | RunContext) -> str | None:
        """Why this check cannot run on the run (given as its context, which knows the roles
        present), or None when it can."""
        present = (run if isinstance(run, RunContext) else RunContext(run)).present
        for need in self.needs:
            options = need if isinstance(need, tuple) else (need,)
            if not present.intersection(options):
                names = " or ".join(role.value for role in options)
                return f"no {names} series in this run"
        return None

    def default_params(self) -> P:
        """Params with every default: what a run gets with no config table and no ``--param``."""
        return self.params()

    def make_params(self, overrides: Mapping[str, Any]) -> P:
        """Params with ``overrides`` applied; ValueError with a hint on unknown or mistyped keys,
        and naming the allowed range on a value outside it (NaN and infinity are never allowed)."""
        fields = {f.name: f for f in dataclasses.fields(self.params)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            name = key.replace("-", "_")
            if name not in fields:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{self.name}: unknown parameter {key!r}{hint}")
            default = getattr(self.params(), name)
            values[name] = _coerce(self.name, name, value, default)
            bounds = param_bounds(fields[name], default)
            if bounds is not None and values[name] not in bounds:
                raise ValueError(
                    f"{self.name}: parameter {name!r} must be a finite number {bounds.describe()}, got {value!r}"
                )
        return self.params(**values)

    def param_range(self, name: str) -> Bounds | None:
        """The values parameter ``name`` may take (:mod:`rundoctor.checks.bounds`); None when
        it is not a number."""
        declared = next(f for f in dataclasses.fields(self.params) if f.name == name)  # type: ignore[arg-type]
        return param_bounds(declared, getattr(self.params(), name))

    def param_docs(self) -> list[tuple[str, Any, str]]:
        """(name, default, help) for every parameter, for docs and ``explain``."""
        defaults = self.params()
        return [
            (f.name, getattr(defaults, f.name), str(f.metadata.get("help", "")))
            for f in dataclasses.fields(self.params)  # type: ignore[arg-type]
        ]

    def finding(
        self,
        ctx: RunContext,
        *,
        tags: Iterable[str],
        steps: tuple[Any, Any] | None,
        message: str,
        evidence: Mapping[str, Any],
        severity: Severity | None = None,
        confidence: Confidence = Confidence.HIGH,
        advice: str | None = None,
    ) -> Finding:
        """A finding of this check on ``ctx``'s run; severity and advice default to the check's,
        the step bounds become ints and the evidence strict JSON (a NaN becomes ``"NaN"``)."""
        first, last = (None, None) if steps is None else (_int(steps[0]), _int(steps[1]))
        return Finding(
            check=self.name,
            code=self.code,
            severity=severity or self.severity,
            confidence=confidence,
            run=ctx.run.id,
            tags=tuple(tags),
            first_step=first,
            last_step=last,
            message=message,
            evidence={key: _strict_json(value) for key, value in evidence.items()},
            advice=advice or self.advice,
        )


def _strict_json(value: Any) -> Any:
    """An evidence value as strict JSON: a non-finite number becomes the string the JSON report
    writes for it ("NaN", "Infinity", "-Infinity"), so no evidence can break a strict parser."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return "NaN" if math.isnan(float(value)) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _int(value: Any) -> int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if math.isfinite(number) else None


def _coerce(check: str, name: str, value: Any, default: Any) -> Any:
    """Accept a value of the default's type (ints widen to floats); reject anything else."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ValueError(
            f"{check}: parameter {name!r} must be {type(default).__name__}, got {value!r}"
        )
    return value
