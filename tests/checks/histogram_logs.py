"""Histograms as the loggers write them, built from raw values in the tests (no torch, no TensorFlow).

``torch_histogram`` follows ``torch.utils.tensorboard.summary.make_histogram`` with the default
``bins="tensorflow"``: TensorFlow's exponential buckets (1e-12 growing by 10% to 1e20, mirrored,
with 0 as an edge), numpy's half-open buckets, the empty buckets outside the occupied range
dropped and one empty bucket kept on the left, exact min and max.  ``tf2_histogram`` follows
TensorBoard's ``histogram_pb`` (TF2): 30 equal-width buckets from min to max, and for a
constant tensor every edge at that value with the count in the last bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rundoctor.series import Histogram, Run
from tests import curves


def _tensorflow_edges() -> np.ndarray:
    positive = []
    value = 1e-12
    while value < 1e20:
        positive.append(value)
        value *= 1.1
    edges = np.array(positive)
    return np.concatenate((-edges[::-1], [0.0], edges))


TF_EDGES = _tensorflow_edges()


def torch_histogram(values: np.ndarray, step: int) -> Histogram:
    """What ``SummaryWriter.add_histogram(tag, values, step)`` logs."""
    values = np.asarray(values, dtype=np.float64).ravel()
    counts, limits = np.histogram(values, bins=TF_EDGES)
    occupied = np.cumsum(counts > 0)
    start, end = np.searchsorted(occupied, [0, occupied[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return Histogram(step, float("nan"), limits.astype(np.float64), counts.astype(np.float64),
                     float(values.min()), float(values.max()))


def tf2_histogram(values: np.ndarray, step: int, buckets: int = 30) -> Histogram:
    """What TF2's ``tf.summary.histogram`` logs, read as rundoctor reads a k x 3 tensor."""
    values = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(values.min()), float(values.max())
    if high == low:
        lefts = rights = np.full(buckets, low)
        counts = np.zeros(buckets)
        counts[-1] = values.size
    else:
        edges = np.linspace(low, high, buckets + 1)
        index = np.minimum(((values - low) / ((high - low) / buckets)).astype(int), buckets - 1)
        counts = np.bincount(index, minlength=buckets).astype(np.float64)
        lefts, rights = edges[:-1], edges[1:]
    return Histogram(step, float("nan"), np.asarray(rights, np.float64), counts, float(lefts[0]), float(rights[-1]))


Encoder = Callable[[np.ndarray, int], Histogram]
ENCODINGS: dict[str, Encoder] = {"torch": torch_histogram, "tf2": tf2_histogram}


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def over_steps(make: Callable[[int, int], np.ndarray], steps: Sequence[int], encode: Encoder = torch_histogram
               ) -> list[Histogram]:
    """One histogram per step of the values ``make(index, step)``."""
    return [encode(make(index, step), step) for index, step in enumerate(steps)]


def relu_outputs(size: int, dead: float, seed: int) -> np.ndarray:
    """Outputs of a ReLU layer of 64 units over a batch: live units active about half the time,
    a share ``dead`` of the units never."""
    generator = rng(seed)
    units = 64
    batch = size // units
    pre = generator.normal(0.0, 1.0, (batch, units))
    silent = round(dead * units)
    pre[:, :silent] = -np.abs(pre[:, :silent]) - 0.1
    return np.maximum(pre, 0.0).ravel()


def run_with(histograms: Mapping[str, list[Histogram]], scalars: Mapping[str, curves.Series] | None = None,
             *, role_overrides: Mapping[str, str] | None = None) -> Run:
    """A run holding these histograms (roles from their names) and scalar series."""
    return curves.make_run(dict(scalars or {}), histograms=histograms, role_overrides=role_overrides)
