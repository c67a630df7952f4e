"""The training loop: real mini-batch optimisation that records what a logger would see.

One loop serves every recipe.  Faults are planted through ``Faults`` exactly where they
arise in real code (a corrupted batch, a division by a zero std, frozen parameters, a crash
and a resume from an epoch checkpoint), so what reaches the log is the genuine consequence.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corpus import optim, schedules
from corpus.data import Dataset
from corpus.trace import EPOCH, EVAL, TRAIN, Trace

TOTAL_AWARE = {"cosine", "onecycle", "warmup_linear", "warmup_cosine"}


@dataclass
class Faults:
    """What is planted.  Every field's default is 'nothing wrong'."""

    corrupt_every: int = 0          # every n-th batch is corrupted (scaled inputs, random labels)
    corrupt_scale: float = 1.0
    nan_at: int | None = None       # from this step a zero-std division turns inputs to inf
    train_last_bias_only: bool = False  # a detach/requires_grad bug: only the output bias learns
    crash_at: int | None = None     # the process dies after this step ...
    resume_epoch: int | None = None  # ... and restarts from this epoch's end-of-epoch checkpoint


@dataclass
class Plan:
    data: Dataset
    model: Any
    task: Any
    optimizer: str = "Adam"
    lr: float = 1e-3
    optimizer_kwargs: dict = field(default_factory=dict)
    schedule: str = "constant"
    schedule_kwargs: dict = field(default_factory=dict)
    batch_size: int = 32
    epochs: int = 10
    max_steps: int | None = None
    eval_every: int | None = None   # in steps; None: at the end of every ``eval_epochs`` epochs
    eval_epochs: int = 1
    log_every: int = 1
    loss_logging: str = "batch"     # batch (that batch's loss) | window (mean since last log) | running
    clip: float | None = None
    patience: int | None = None     # early stopping on val loss, counted in evaluations
    sampler: str = "shuffle"        # shuffle | balanced
    step_time: float = 0.03
    seed: int = 0
    log_train_acc: bool = False
    faults: Faults = field(default_factory=Faults)
    hparams: dict = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return int(np.ceil(len(self.data.x_train) / self.batch_size))

    @property
    def total_steps(self) -> int:
        full = self.epochs * self.steps_per_epoch
        return min(full, self.max_steps) if self.max_steps else full


def run(plan: Plan, start_wall: float) -> Trace:
    """Train and return everything that was logged."""
    return _Loop(plan, start_wall).run()


class _Loop:
    def __init__(self, plan: Plan, start_wall: float) -> None:
        self.p = plan
        self.rng = np.random.default_rng(plan.seed)
        self.clock_rng = np.random.default_rng(plan.seed + 99_991)
        self.params = plan.model.params
        self.opt = optim.make(plan.optimizer, self.params, **plan.optimizer_kwargs)
        kwargs = dict(plan.schedule_kwargs)
        if plan.schedule in TOTAL_AWARE:
            kwargs.setdefault("total", plan.total_steps)
        self.sched = schedules.make(plan.schedule, plan.lr, **kwargs)
        self.wall = start_wall
        self.segment = 0
        self.best, self.bad = np.inf, 0
        self.trace = Trace(steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps,
                           optimizer=self.opt.name, task=plan.task.kind, n_classes=plan.data.n_classes,
                           start_wall=start_wall, hparams=dict(plan.hparams),
                           info={"log_every": plan.log_every, "eval_every": plan.eval_every,
                                 "batch_size": plan.batch_size, "n_val": len(plan.data.x_val),
                                 "majority_rate": plan.data.majority_rate if plan.data.n_classes else None})
        self.snapshot: dict | None = None

    # -- batches -------------------------------------------------------------------------
    def _order(self) -> np.ndarray:
        n = len(self.p.data.x_train)
        if self.p.sampler == "balanced":
            y = self.p.data.y_train.astype(int)
            w = 1.0 / np.bincount(y)[y]
            return self.rng.choice(n, size=n, p=w / w.sum())
        return self.rng.permutation(n)

    def _batch(self, idx: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.p.data.x_train[idx], self.p.data.y_train[idx]
        f = self.p.faults
        if f.corrupt_every and step % f.corrupt_every == f.corrupt_every - 1:
            x = x * f.corrupt_scale
            y = self.rng.permutation(y) if y.ndim == 1 else y
        if f.nan_at is not None and step >= f.nan_at:
            with np.errstate(divide="ignore", invalid="ignore"):
                x = x.copy()
                x[:, 0] = x[:, 0] / 0.0
        return x, y

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Trace:
        p = self.p
        step, epoch = 0, 0
        stop = False
        while epoch < p.epochs and not stop:
            order = self._order()
            sums: dict[str, float] = {"n": 0}
            window: list[float] = []
            for start in range(0, len(order), p.batch_size):
                if p.max_steps and step >= p.max_steps:
                    stop = True
                    break
                if p.faults.crash_at is not None and step == p.faults.crash_at and self.segment == 0:
                    step, epoch = self._resume()
                    break
                parts = self._train_step(order[start:start + p.batch_size], step)
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                sums["n"] += 1
                window.append(parts["loss"])
                if (step + 1) % p.log_every == 0:
                    self._log_train(step, epoch, parts, window, sums)
                    window = []
                if p.eval_every and (step + 1) % p.eval_every == 0:
                    stop = self._evaluate(step, epoch)
                    if stop:
                        break
                step += 1
            else:
                self._end_epoch(step - 1, epoch, sums)
                if not p.eval_every and (epoch + 1) % p.eval_epochs == 0:
                    stop = self._evaluate(step - 1, epoch) or stop
                if self.segment == 0 and p.faults.resume_epoch == epoch:
                    self._save(step, epoch + 1)
                epoch += 1
                continue
            if stop and sums["n"]:
                self._end_epoch(step - 1, epoch, sums)
        return self.trace

    def _train_step(self, idx: np.ndarray, step: int) -> dict[str, float]:
        p = self.p
        x, y = self._batch(idx, step)
        lr = self.sched.lr(step)
        with np.errstate(all="ignore"):
            out = p.model.forward(x, True, self.rng)
            parts, dout = p.task.loss(out, y)
            grads = p.model.backward(dout)
            norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads)))
            if p.clip and np.isfinite(norm) and norm > p.clip:
                grads = [g * (p.clip / norm) for g in grads]
            if p.faults.train_last_bias_only:
                grads = [np.zeros_like(g) for g in grads[:-1]] + [grads[-1]]
            self.opt.step(grads, lr)
        self.wall += p.step_time * (1.0 + 0.1 * self.clock_rng.random())
        parts = dict(parts)
        parts["lr"], parts["grad_norm"] = lr, norm
        return parts

    def _log_train(self, step: int, epoch: int, parts: dict, window: list[float], sums: dict) -> None:
        mode = self.p.loss_logging
        loss = (parts["loss"] if mode == "batch" else float(np.mean(window)) if mode == "window"
                else sums["loss"] / sums["n"])
        values = {"loss": loss, "lr": parts["lr"], "grad_norm": parts["grad_norm"]}
        values.update({k: v for k, v in parts.items() if k.endswith("_loss")})
        if self.p.log_train_acc and "acc" in parts:
            values["acc"] = parts["acc"] if mode == "batch" else sums["acc"] / sums["n"]
        self.trace.add(TRAIN, step, epoch, self.wall, values, self.segment)

    def _end_epoch(self, step: int, epoch: int, sums: dict) -> None:
        n = max(1, sums["n"])
        values = {k: v / n for k, v in sums.items() if k == "acc" or k.endswith("loss")}
        values["lr"] = self.sched.lr(step)
        self.trace.add(EPOCH, step, epoch, self.wall, values, self.segment)

    def _evaluate(self, step: int, epoch: int) -> bool:
        """Log validation metrics; True when early stopping ends the run."""
        p = self.p
        data, bs = p.data, p.task.eval_batch
        outs, ys = [], []
        with np.errstate(all="ignore"):
            for i in range(0, len(data.x_val), bs):
                outs.append(p.model.forward(data.x_val[i:i + bs], False, self.rng))
                ys.append(data.y_val[i:i + bs])
            metrics = p.task.evaluate(outs, ys)
        self.wall += 0.4 + p.step_time * len(outs) * 0.3
        values = {(f"val_{k}" if k in ("loss", "acc", "mae") else k): v for k, v in metrics.items()}
        self.trace.add(EVAL, step, epoch, self.wall, values, self.segment)
        self.sched.on_eval(values["val_loss"])
        if p.patience is None:
            return False
        if values["val_loss"] < self.best:
            self.best, self.bad = values["val_loss"], 0
            return False
        self.bad += 1
        return self.bad >= p.patience

    # -- checkpoint and resume -----------------------------------------------------------
    def _save(self, step: int, next_epoch: int) -> None:
        self.snapshot = {
            "params": [a.copy() for a in self.params],
            "opt": self.opt.state(),
            "sched": copy.deepcopy(self.sched),
            "early": (self.best, self.bad),
            "step": step,
            "epoch": next_epoch,
        }

    def _resume(self) -> tuple[int, int]:
        snap = self.snapshot
        if snap is None:
            raise ValueError("crash_at is set but resume_epoch's checkpoint was never saved")
        for a, saved in zip(self.params, snap["params"]):
            a[...] = saved
        self.opt.load(snap["opt"])
        self.sched = copy.deepcopy(snap["sched"])
        self.best, self.bad = snap["early"]
        self.segment = 1
        self.rng = np.random.default_rng(self.p.seed + 5_003)  # a new process: new data order
        self.wall += 95.0 + 40.0 * self.clock_rng.random()  # the restart took a minute or two
        return snap["step"], snap["epoch"]
