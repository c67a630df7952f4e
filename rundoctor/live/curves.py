"""What the live engine keeps of each curve: bounded in memory, so a check costs the same at
step 1,000 and at step 1,000,000.

- :class:`BoundedCurve`: the latest ``recent`` to ``2 * recent`` points exactly as logged,
  and before them a systematic sample of the history: every point whose index is a multiple
  of a stride that doubles whenever the sample passes ``2 * history`` points.  The sample
  holds real logged points (nothing averaged), so a curve keeps its noise and its level and
  the checks judge it as they judge a log; the first point is always kept (the initial
  level), and the recent points are whole, so what happened since the last check is seen
  point by point.
- :class:`StreamedNonFinite`: the exact measurement the non-finite check makes
  (:class:`~rundoctor.checks.non_finite.BadValues`), kept up to date point by point in
  constant memory, so a NaN is counted even when the sample has let its point go.
"""

from __future__ import annotations

import numpy as np

from rundoctor.checks.non_finite import BadValues

# Points a curve keeps: up to 2 x HISTORY sampled ones and up to 2 x RECENT latest ones.  A
# curve of up to MAX_BINS (2000) points is what the trend checks see of any longer curve
# anyway (they bin longer ones), so a sample of that size costs them little in power.
HISTORY = 1024
RECENT = 256


class BoundedCurve:
    """One tag's points, bounded: a doubling-stride sample of the history and the latest points whole."""

    def __init__(self, history: int = HISTORY, recent: int = RECENT) -> None:
        if history < 1 or recent < 1:
            raise ValueError("history and recent must be at least 1")
        self.history, self.recent = history, recent
        self.count = 0  # points ever added
        self.stride = 1
        self._sampled = _empty()
        self._sampled_index = np.empty(0, dtype=np.int64)
        self._steps: list[int] = []
        self._values: list[float] = []
        self._walls: list[float] = []

    def __len__(self) -> int:
        return int(self._sampled_index.size) + len(self._steps)

    def add(self, step: int, value: float, wall_time: float) -> None:
        """One point (a training loop's step): amortised constant time."""
        self._steps.append(step)
        self._values.append(value)
        self._walls.append(wall_time)
        self.count += 1
        if len(self._steps) >= 2 * self.recent:
            self._flush()

    def extend(self, steps: np.ndarray, values: np.ndarray, wall_times: np.ndarray) -> None:
        """Many points at once (a log read by ``watch``), in log order."""
        if steps.size == 0:
            return
        if self._steps:
            steps = np.concatenate((np.asarray(self._steps, dtype=np.int64), steps))
            values = np.concatenate((np.asarray(self._values, dtype=np.float64), values))
            wall_times = np.concatenate((np.asarray(self._walls, dtype=np.float64), wall_times))
        first_index = self.count - len(self._steps)
        self.count = first_index + int(steps.size)
        older = max(0, int(steps.size) - self.recent)
        self._sample((steps[:older], values[:older], wall_times[:older]), first_index)
        self._steps = steps[older:].astype(np.int64).tolist()
        self._values = values[older:].astype(np.float64).tolist()
        self._walls = wall_times[older:].astype(np.float64).tolist()

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, values, wall_times) kept, in log order: the sample, then the latest points."""
        steps, values, walls = self._sampled
        return (
            np.concatenate((steps, np.asarray(self._steps, dtype=np.int64))),
            np.concatenate((values, np.asarray(self._values, dtype=np.float64))),
            np.concatenate((walls, np.asarray(self._walls, dtype=np.float64))),
        )

    def _flush(self) -> None:
        """Move all but the latest ``recent`` points into the sample."""
        older = len(self._steps) - self.recent
        first_index = self.count - len(self._steps)
        block = (
            np.asarray(self._steps[:older], dtype=np.int64),
            np.asarray(self._values[:older], dtype=np.float64),
            np.asarray(self._walls[:older], dtype=np.float64),
        )
        del self._steps[:older], self._values[:older], self._walls[:older]
        self._sample(block, first_index)

    def _sample(self, block: tuple[np.ndarray, np.ndarray, np.ndarray], first_index: int) -> None:
        """Keep the block's points whose index is a multiple of the stride; halve the sample
        (double the stride) while it holds more than ``2 * history`` points."""
        size = int(block[0].size)
        if size == 0:
            return
        index = np.arange(first_index, first_index + size, dtype=np.int64)
        keep = index % self.stride == 0
        self._sampled_index = np.concatenate((self._sampled_index, index[keep]))
        self._sampled = _joined(self._sampled, (block[0][keep], block[1][keep], block[2][keep]))
        while self._sampled_index.size > 2 * self.history:
            self.stride *= 2
            keep = self._sampled_index % self.stride == 0
            self._sampled_index = self._sampled_index[keep]
            steps, values, walls = self._sampled
            self._sampled = (steps[keep], values[keep], walls[keep])


class StreamedNonFinite:
    """The non-finite check's measurement of one tag, exact, updated as points arrive."""

    def __init__(self) -> None:
        self.points = self.bad = self.nan = self.pos_inf = self.neg_inf = 0
        self.first_bad_step: int | None = None
        self.lowest_bad_step = self.highest_bad_step = 0
        self.last_finite: float | None = None
        self.last_finite_step: int | None = None
        self.recovered_step: int | None = None
        self.final_bad_step: int | None = None  # where the bad stretch the points so far end in began
        self._last: tuple[int, float] | None = None  # the latest point, finite until a bad one comes

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Account for points in log order (arrays of any length, one point included)."""
        if values.size == 0:
            return
        bad = ~np.isfinite(values)
        self.points += int(values.size)
        if bad.any():
            bad_steps = steps[bad]
            self._count_bad(values[bad], bad_steps)
            if self.first_bad_step is None:
                first = int(np.argmax(bad))
                self.first_bad_step = int(steps[first])
                before = (int(steps[first - 1]), float(values[first - 1])) if first > 0 else self._last
                self.last_finite_step, self.last_finite = before if before is not None else (None, None)
                self._recover(steps[first:], bad[first:])
            else:
                self._recover(steps, bad)
        elif self.first_bad_step is not None and self.recovered_step is None:
            self.recovered_step = int(steps[0])
        self._track_final_stretch(steps, bad)
        self._last = (int(steps[-1]), float(values[-1]))

    def _track_final_stretch(self, steps: np.ndarray, bad: np.ndarray) -> None:
        if not bad[-1]:
            self.final_bad_step = None
            return
        finite = np.flatnonzero(~bad)
        if finite.size:
            self.final_bad_step = int(steps[int(finite[-1]) + 1])
        elif self.final_bad_step is None:  # the whole block is bad: a stretch starts or goes on
            self.final_bad_step = int(steps[0])

    def _count_bad(self, values: np.ndarray, steps: np.ndarray) -> None:
        self.nan += int(np.isnan(values).sum())
        self.pos_inf += int(np.isposinf(values).sum())
        self.neg_inf += int(np.isneginf(values).sum())
        low, high = int(steps.min()), int(steps.max())
        if self.bad == 0:
            self.lowest_bad_step, self.highest_bad_step = low, high
        else:
            self.lowest_bad_step = min(self.lowest_bad_step, low)
            self.highest_bad_step = max(self.highest_bad_step, high)
        self.bad += int(values.size)

    def _recover(self, steps: np.ndarray, bad: np.ndarray) -> None:
        """The first finite point after the first bad one, if this block has it."""
        if self.recovered_step is None and self.first_bad_step is not None:
            finite = np.flatnonzero(~bad)
            if finite.size:
                self.recovered_step = int(steps[finite[0]])

    def measured(self, tag: str) -> BadValues | None:
        """What :func:`rundoctor.checks.non_finite.measure` gives for every point so far; None
        while all are finite."""
        if self.first_bad_step is None:
            return None
        return BadValues(
            tag=tag, points=self.points, bad=self.bad, nan=self.nan, pos_inf=self.pos_inf,
            neg_inf=self.neg_inf, first_bad_step=self.first_bad_step, lowest_bad_step=self.lowest_bad_step,
            highest_bad_step=self.highest_bad_step, last_finite=self.last_finite,
            last_finite_step=self.last_finite_step, recovered_step=self.recovered_step,
            final_bad_step=self.final_bad_step,
        )


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64)


def _joined(
    first: tuple[np.ndarray, np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.concatenate((first[0], second[0])), np.concatenate((first[1], second[1])), np.concatenate((first[2], second[2])))
