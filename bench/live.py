"""The live checks: what one check costs as a run grows, and what they stop on the corpus.

    python bench/live.py                  # cost per call at 1k, 10k and 100k logged steps
    python bench/live.py --corpus         # and replay the calibration corpus through the callbacks' engine

Cost: a training loop logging a per-step loss, learning rate and gradient norm and a
validation loss every 100 steps is fed to :class:`rundoctor.live.LiveDoctor` up to N steps;
then ``--calls`` checks are timed (each after another ``every`` steps are recorded, as in
training), and the median is reported beside the cost of recording one step and of
``rundoctor.diagnose`` on the whole run so far (what re-running ``check`` would cost).

Corpus: every run of the calibration corpus (``corpus/runs.tar.xz``) is replayed in step
order with a check at 20 evenly spaced steps and the default stop policy; a healthy run
that is stopped is a false alarm, a run labelled with a NaN or a loss explosion that is
stopped is a catch.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import rundoctor
from rundoctor.live import LiveDoctor

STEPS = (1_000, 10_000, 100_000)
EVERY = 50


def training_log(steps: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A healthy run's metrics: a noisy falling loss, a cosine learning rate, a gradient norm
    every step, a validation loss every 100 steps."""
    rng = np.random.default_rng(seed)
    at = np.arange(1, steps + 1)
    progress = at / steps
    loss = (0.3 + 2.0 * np.exp(-5 * progress)) * np.exp(0.3 * rng.standard_normal(steps))
    val_at = at[at % 100 == 0]
    return {
        "train/loss": (at, loss),
        "train/lr": (at, 1e-3 * 0.5 * (1 + np.cos(math.pi * progress))),
        "train/grad_norm": (at, 1.0 + 0.2 * rng.standard_normal(steps)),
        "val/loss": (val_at, 0.35 + 2.0 * np.exp(-5 * val_at / steps)),
    }


def feed(doctor: LiveDoctor, log: dict[str, tuple[np.ndarray, np.ndarray]], low: int, high: int) -> None:
    """The points of steps low < step <= high, as a callback records them."""
    for tag, (steps, values) in log.items():
        inside = (steps > low) & (steps <= high)
        doctor.run.extend(tag, steps[inside], values[inside], np.full(int(inside.sum()), math.nan))


def cost(steps: int, calls: int) -> dict[str, float]:
    log = training_log(steps + calls * EVERY)
    doctor = LiveDoctor(every=EVERY)
    feed(doctor, log, 0, steps)
    doctor.checkup(steps)  # warm: imports, the first snapshot
    timings = []
    for call in range(calls):
        low = steps + call * EVERY
        feed(doctor, log, low, low + EVERY)
        started = time.perf_counter()
        doctor.checkup(low + EVERY)
        timings.append(time.perf_counter() - started)
    record = LiveDoctor(every=10**9)
    started = time.perf_counter()
    for step in range(1, 2001):
        record.observe(step, {"train/loss": 1.0 / step, "train/lr": 1e-3, "train/grad_norm": 1.0})
    per_step = (time.perf_counter() - started) / 2000
    kept = doctor.run.snapshot().points  # after the timed calls: steps + calls x every logged
    full = _whole_run(log, steps)
    started = time.perf_counter()
    rundoctor.diagnose(full)
    diagnose_all = time.perf_counter() - started
    return {
        "steps": steps, "check": statistics.median(timings), "check_max": max(timings), "record": per_step,
        "kept": float(kept), "logged": float(doctor.run.points), "points": float(full.points), "diagnose": diagnose_all,
    }


def _whole_run(log: dict[str, tuple[np.ndarray, np.ndarray]], steps: int) -> rundoctor.Run:
    from rundoctor.series import RunBuilder

    builder = RunBuilder()
    for tag, (at, values) in log.items():
        builder.add(tag, at[at <= steps], values[at <= steps])
    return builder.build(id="whole", path="whole", format="bench", sources=[])


def replay(run: rundoctor.Run) -> tuple[int | None, str]:
    """Replay ``run`` in step order with 20 checks; the step it was stopped at and why."""
    frame = run.to_pandas().sort_values("step", kind="stable")
    last = int(frame.step.max()) if len(frame) else 0
    every = max(1, math.ceil(last / 20))
    doctor = LiveDoctor(every=every, log_on=None)
    done = -(2**62)
    for check in [*range(every, last + 1, every), last]:
        chunk = frame[(frame.step > done) & (frame.step <= check)]
        for tag, points in chunk.groupby("tag", observed=True, sort=False):
            doctor.run.extend(str(tag), points.step.to_numpy(), points.value.to_numpy(), points.wall_time.to_numpy())
        done = check
        checkup = doctor.checkup(check)
        if checkup.stop is not None:
            return check, f"{checkup.stop.code} {checkup.stop.message[:100]}"
    return None, ""


def corpus_replay() -> list[str]:
    from corpus.archive import extract

    labels = json.loads((REPO / "corpus" / "labels.json").read_text())
    root = extract(Path(tempfile.mkdtemp(prefix="rundoctor-live-corpus-")))
    healthy = stopped_healthy = dead = caught = 0
    false_alarms: list[str] = []
    started = time.perf_counter()
    for label in labels:
        runs = rundoctor.load(root / label["run"])
        if not runs:
            continue
        step, why = replay(runs[0])
        if not label["expect"]:
            healthy += 1
            if step is not None:
                stopped_healthy += 1
                false_alarms.append(f"{label['run']}: stopped at {step}: {why}")
        elif {"nan_inf", "loss_explosion"} & set(label["expect"]):
            dead += 1
            caught += step is not None
    lines = [
        f"| healthy runs stopped | {stopped_healthy} of {healthy} |",
        f"| runs labelled NaN/inf or loss explosion stopped | {caught} of {dead} |",
        f"| replay time | {time.perf_counter() - started:.0f} s for {len(labels)} runs |",
    ]
    return lines + [f"- false alarm: {text}" for text in false_alarms]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=15, help="checks timed at each length")
    parser.add_argument("--corpus", action="store_true", help="replay the calibration corpus as well")
    args = parser.parse_args()
    print("| logged steps | points | one check (median, max) | points kept of points logged | recording a step | diagnose on the whole run |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for steps in STEPS:
        row = cost(steps, args.calls)
        print(
            f"| {steps:,} | {row['points']:,.0f} | {row['check'] * 1e3:.0f} ms, {row['check_max'] * 1e3:.0f} ms | "
            f"{row['kept']:,.0f} of {row['logged']:,.0f} | {row['record'] * 1e6:.0f} µs | {row['diagnose'] * 1e3:.0f} ms |",
            flush=True,
        )
    if args.corpus:
        print("\n| corpus replay | |\n| --- | --- |")
        print("\n".join(corpus_replay()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
