"""Seeded curve builders shared by the check tests, and a run factory.

Each builder returns values for ``steps``; ``make_run`` turns ``{tag: (steps, values)}`` into
a :class:`Run` with roles assigned, so a test reads like the curve it describes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rundoctor import roles
from rundoctor.checks.base import NumClasses, RunContext
from rundoctor.series import Histogram, Run, RunBuilder


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def decay(n: int, start: float = 2.0, end: float = 0.1, rate: float = 5.0) -> np.ndarray:
    """Exponential decay from ``start`` toward ``end`` over ``n`` points."""
    t = np.linspace(0.0, 1.0, n)
    return end + (start - end) * np.exp(-rate * t)


def rise(n: int, start: float = 0.3, end: float = 0.95, rate: float = 5.0) -> np.ndarray:
    """An accuracy-like curve rising from ``start`` to ``end``."""
    t = np.linspace(0.0, 1.0, n)
    return end - (end - start) * np.exp(-rate * t)


def noisy(values: np.ndarray, relative: float = 0.02, seed: int = 0) -> np.ndarray:
    """Multiplicative Gaussian noise of ``relative`` standard deviation."""
    return values * (1.0 + relative * rng(seed).standard_normal(values.size))


def plateau(n: int, start: float = 2.0, level: float = 0.5, fall_fraction: float = 0.2) -> np.ndarray:
    """Falls to ``level`` within ``fall_fraction`` of the run, then stays flat."""
    t = np.linspace(0.0, 1.0, n)
    return level + (start - level) * np.exp(-t / (fall_fraction / 5.0))


def with_spikes(values: np.ndarray, at: Sequence[int], height: float = 5.0, width: int = 3) -> np.ndarray:
    out = values.copy()
    for index in at:
        out[index : index + width] *= height
    return out


def with_nan(values: np.ndarray, at: int, until: int | None = None) -> np.ndarray:
    out = values.copy()
    out[at : (until if until is not None else values.size)] = np.nan
    return out


def diverge(n: int, start: float = 2.0, turn: float = 0.6, factor: float = 50.0) -> np.ndarray:
    """Decays, then from ``turn`` (fraction of the run) grows exponentially to ``factor`` x."""
    values = decay(n, start=start, end=0.3)
    k = int(n * turn)
    values[k:] = values[k] * np.exp(np.linspace(0.0, np.log(factor), n - k))
    return values


Series = tuple[Sequence[int] | np.ndarray, Sequence[float] | np.ndarray]


def make_run(
    series: Mapping[str, Series],
    *,
    run_id: str = "run",
    histograms: Mapping[str, list[Histogram]] | None = None,
    role_overrides: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Run:
    builder = RunBuilder()
    for tag, (steps, values) in series.items():
        builder.add(tag, steps, values)
    run = builder.build(
        id=run_id,
        path=run_id,
        format="synthetic",
        sources=[run_id],
        histograms=dict(histograms or {}),
        metadata=dict(metadata or {}),
    )
    overrides = roles.parse_overrides(dict(role_overrides)) if role_overrides else None
    return roles.assign(run, overrides)


def context(run: Run, num_classes: int | None = None) -> RunContext:
    known = NumClasses(num_classes, "test") if num_classes else None
    return RunContext(run, num_classes=known)


def steps(n: int, every: int = 1, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n * every, every, dtype=np.int64)


# Series every check must survive without raising.
HOSTILE: dict[str, Series] = {
    "empty": (np.empty(0, np.int64), np.empty(0)),
    "one point": ([0], [1.0]),
    "constant": (np.arange(100), np.full(100, 0.7)),
    "all nan": (np.arange(50), np.full(50, np.nan)),
    "unsorted": (rng(1).permutation(100), decay(100)),
    "duplicated steps": (np.repeat(np.arange(50), 2), np.repeat(decay(50), 2)),
    "huge": (np.arange(100), np.full(100, 1e30)),
    "inf": (np.arange(20), np.where(np.arange(20) % 3 == 0, np.inf, 1.0)),
}
