"""The framework-neutral record of one run: what the training loop logged, in order.

Writers turn a Trace into a framework's files; label criteria read the same Trace, so the
numbers quoted in a label are the numbers in the log.  A point's ``segment`` counts process
restarts (a resumed job logs from segment 1 on, possibly re-using steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Point kinds: "train" per logging step, "epoch" train aggregates at an epoch's end,
# "eval" validation metrics.
TRAIN, EPOCH, EVAL = "train", "epoch", "eval"


@dataclass
class Point:
    kind: str
    step: int
    epoch: int
    wall: float
    values: dict[str, float]
    segment: int = 0


@dataclass
class Trace:
    points: list[Point] = field(default_factory=list)
    steps_per_epoch: int = 1
    total_steps: int = 0
    hparams: dict[str, object] = field(default_factory=dict)
    optimizer: str = "SGD"
    task: str = "classification"
    n_classes: int | None = None
    start_wall: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # logging cadence, batch size, ... for writers

    def add(self, kind: str, step: int, epoch: int, wall: float, values: dict[str, float],
            segment: int = 0) -> None:
        self.points.append(Point(kind, step, epoch, wall, values, segment))

    def series(self, kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of ``key`` in points of ``kind``, in logging order."""
        pts = [(p.step, p.values[key]) for p in self.points if p.kind == kind and key in p.values]
        if not pts:
            return np.zeros(0, int), np.zeros(0)
        steps, values = zip(*pts)
        return np.asarray(steps), np.asarray(values, dtype=np.float64)

    def keys(self, kind: str) -> list[str]:
        seen: dict[str, None] = {}
        for p in self.points:
            if p.kind == kind:
                seen.update(dict.fromkeys(p.values))
        return list(seen)

    @property
    def last_step(self) -> int:
        return max((p.step for p in self.points), default=0)

    @property
    def n_epochs(self) -> int:
        return max((p.epoch for p in self.points), default=0) + 1
