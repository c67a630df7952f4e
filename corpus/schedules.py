"""Learning-rate schedules with torch's shapes; ``lr(step)`` is the rate for that step.

ReduceLROnPlateau is the only stateful one: the trainer calls ``on_eval`` with the
validation loss after each evaluation, as ``scheduler.step(val_loss)`` would be called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Schedule:
    base_lr: float

    name = "constant"

    def lr(self, step: int) -> float:
        return self.base_lr

    def on_eval(self, val_loss: float) -> None:
        """Only ReduceLROnPlateau listens."""


@dataclass
class StepDecay(Schedule):
    step_size: int = 1000
    gamma: float = 0.1

    name = "step"

    def lr(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


@dataclass
class Cosine(Schedule):
    total: int = 1000
    min_lr: float = 0.0

    name = "cosine"

    def lr(self, step: int) -> float:
        t = min(step, self.total) / self.total
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


@dataclass
class OneCycle(Schedule):
    """torch.optim.lr_scheduler.OneCycleLR with cosine annealing; base_lr is max_lr."""

    total: int = 1000
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    name = "onecycle"

    def lr(self, step: int) -> float:
        initial = self.base_lr / self.div_factor
        final = initial / self.final_div_factor
        peak = self.pct_start * self.total
        if step <= peak:
            t, lo, hi = step / peak, initial, self.base_lr
        else:
            t, lo, hi = min(1.0, (step - peak) / (self.total - peak)), self.base_lr, final
        return hi + (lo - hi) * 0.5 * (1 + math.cos(math.pi * t))


@dataclass
class WarmupLinear(Schedule):
    """Hugging Face's get_linear_schedule_with_warmup."""

    warmup: int = 100
    total: int = 1000

    name = "warmup_linear"

    def lr(self, step: int) -> float:
        if step < self.warmup:
            return self.base_lr * step / max(1, self.warmup)
        return self.base_lr * max(0.0, (self.total - step) / max(1, self.total - self.warmup))


@dataclass
class WarmupCosine(Schedule):
    warmup: int = 100
    total: int = 1000

    name = "warmup_cosine"

    def lr(self, step: int) -> float:
        if step < self.warmup:
            return self.base_lr * (step + 1) / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * t))


@dataclass
class Plateau(Schedule):
    """ReduceLROnPlateau(mode='min', factor, patience, threshold=1e-4 relative)."""

    factor: float = 0.1
    patience: int = 3
    min_lr: float = 0.0

    name = "plateau"

    def __post_init__(self) -> None:
        self.current = self.base_lr
        self.best = math.inf
        self.bad = 0

    def lr(self, step: int) -> float:
        return self.current

    def on_eval(self, val_loss: float) -> None:
        if val_loss < self.best * (1 - 1e-4):
            self.best, self.bad = val_loss, 0
            return
        self.bad += 1
        if self.bad > self.patience:
            self.current = max(self.min_lr, self.current * self.factor)
            self.bad = 0


@dataclass
class ZeroAfter(Schedule):
    """A buggy step schedule whose gamma is 0: the rate drops to exactly 0 at ``at``."""

    at: int = 1000

    name = "step_gamma0"

    def lr(self, step: int) -> float:
        return self.base_lr if step < self.at else 0.0


SCHEDULES = {cls.name: cls for cls in (Schedule, StepDecay, Cosine, OneCycle, WarmupLinear,
                                       WarmupCosine, Plateau, ZeroAfter)}


def make(name: str, base_lr: float, **kwargs) -> Schedule:
    return SCHEDULES[name](base_lr, **kwargs)
