"""The values a check parameter may take: declared once, for every check, by what it measures.

A threshold set to NaN, infinity, a negative count or a "fraction" of 3 does not fail loudly
inside a check: the comparisons go quietly false and the check stops firing, which in a CI
gate is a pass.  So every value from a config file or ``--param`` is checked against its
parameter's range before any check runs, and the error names the parameter and the range.

The parameters of the registry follow a naming convention (``*_fraction``, ``*_quantile``,
``*_confidence``, ``*_factor``, ``min_*`` counts ...), and the unit a name
promises decides the range, so the ranges are declared here, in one table, rather than
repeated on 215 fields.  A parameter whose range the convention does not capture declares
its own in its field's metadata (``field(default=..., metadata={"help": ..., "range":
Bounds(...)})``), which wins over the table.  ``tests/checks/test_every_check.py`` checks
that every default lies in its range, so a new parameter that breaks the convention fails a
test until it declares its range.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bounds:
    """A closed or open interval of finite numbers; ``high`` None means no upper limit."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        """``in [0, 1]`` or ``>= 1``: what "must be a finite number ..." goes on with."""
        return str(self) if self.high is None else f"in {self}"

    def __str__(self) -> str:
        """``[0, 1]``, ``(0, 1)``, ``>= 1``: the range as error messages and ``explain`` write it."""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return (f"{'(' if self.low_open else '['}{_number(self.low)}, "
                f"{_number(self.high)}{')' if self.high_open else ']'}")


# A confidence level or a probability: 0 and 1 make a test that always or never passes.  (An
# ``*_alpha`` is not one: the spike checks' alphas are expected counts, "fewer than this many
# as high over the run", which a test may set to 1e9 to switch the test off.)
PROBABILITY = Bounds(0.0, 1.0, low_open=True, high_open=True)
# A fraction of the points or of the run, a quantile, an accuracy.  (A ``*_share`` is not
# always one: overfitting's jump_share compares one step's rise with the rise to the end,
# which is above 1 when the loss fell back after the jump.)
FRACTION = Bounds(0.0, 1.0)
FACTOR = Bounds(1.0)  # "this many times": below 1 it would read backwards
COUNT = Bounds(1.0)  # fewest points, evaluations, blocks: a check needs at least one
LIMIT = Bounds(0.0)  # most of something (``max_*``), a magnitude, a tolerance, a number of sigmas

# (pattern on the parameter's name, its bounds): the first match wins; ints and floats that
# no pattern names fall back to COUNT and LIMIT (see :func:`param_bounds`).
NAME_BOUNDS: tuple[tuple[re.Pattern[str], Bounds], ...] = (
    (re.compile(r"(^|_)(confidence|p)$"), PROBABILITY),
    (re.compile(r"(fraction|quantile|accuracy)$|^smoothing$"), FRACTION),
    (re.compile(r"_factor$"), FACTOR),
    (re.compile(r"^max_"), LIMIT),
)


def param_bounds(field: dataclasses.Field[Any], default: Any) -> Bounds | None:
    """The range of a numeric parameter: its own declaration, else the name table, else a
    count (an int) or a non-negative magnitude (a float).  None for a bool or a string."""
    declared = field.metadata.get("range")
    if isinstance(declared, Bounds):
        return declared
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return None
    for pattern, bounds in NAME_BOUNDS:
        if pattern.search(field.name):
            return bounds
    return COUNT if isinstance(default, int) else LIMIT


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
