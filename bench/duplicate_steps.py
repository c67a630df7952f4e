"""Does ``rundoctor check`` stay linear on runs whose steps repeat?

    python bench/duplicate_steps.py                  # 250k, 1M and 4M points per format
    python bench/duplicate_steps.py --sizes 1e5,1e6  # other sizes

Restarted jobs and writers that never advance their step leave logs where one step holds
many points; a reader or check that sorted, merged or deduplicated them naively would turn
quadratic there.  This writes, for each size, one run per format where every point repeats
a step: an event file whose every record is at step 0, a Lightning CSV and a JSON-lines log
whose steps cycle through 0..9 (a job restarted again and again).  It times ``rundoctor
check --format json`` on each (a fresh process, best of ``--repeat``, through the launcher
of ``run_bench.py``) and prints how the time grows from one size to the next: with 4x the
points a linear path takes at most 4x the time (less, with start-up in every run), a
quadratic one 16x.  Nothing is asserted; the numbers are for reading.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import run_bench as rb
from tensorboard.compat.proto import event_pb2, summary_pb2

from rundoctor.readers.crc32c import masked_crc32c

CYCLE = 10  # the text logs restart at step 0 after this many steps
T0 = 1_700_000_000.0


def losses(points: int) -> np.ndarray:
    """A falling, noisy training loss."""
    rng = np.random.default_rng(0)
    return 2.0 * np.exp(-3.0 * np.arange(points) / points) + rng.normal(0.0, 0.01, points)


def write_event_file(run: Path, points: int) -> None:
    """Every record at step 0: the worst case for a step index."""
    run.mkdir(parents=True)
    with (run / "events.out.tfevents.1700000000.bench.1.0").open("wb") as out:
        header = event_pb2.Event(wall_time=T0, file_version="brain.Event:2")
        for event in [header] + [
            event_pb2.Event(wall_time=T0 + i, step=0,
                            summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="train/loss",
                                                                                          simple_value=value)]))
            for i, value in enumerate(losses(points).tolist())
        ]:
            payload = event.SerializeToString()
            length = struct.pack("<Q", len(payload))
            out.write(length + struct.pack("<I", masked_crc32c(length)) + payload
                      + struct.pack("<I", masked_crc32c(payload)))


def write_csv(run: Path, points: int) -> None:
    run.mkdir(parents=True)
    steps = np.arange(points) % CYCLE
    values = losses(points)
    rows = "".join(f"{step},{value:.6f}\n" for step, value in zip(steps.tolist(), values.tolist()))
    (run / "metrics.csv").write_text("step,train_loss\n" + rows, encoding="utf-8")


def write_jsonl(run: Path, points: int) -> None:
    run.mkdir(parents=True)
    steps = np.arange(points) % CYCLE
    lines = "".join(json.dumps({"step": step, "loss": value}) + "\n"
                    for step, value in zip(steps.tolist(), losses(points).tolist()))
    (run / "log.jsonl").write_text(lines, encoding="utf-8")


WRITERS = {"event file": write_event_file, "Lightning CSV": write_csv, "JSON lines": write_jsonl}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250e3,1e6,4e6", help="points per run, comma-separated, ascending")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size and format (the best is kept)")
    args = parser.parse_args()
    sizes = [int(float(size)) for size in args.sizes.split(",")]
    command = rb.rundoctor_command(as_module=False).rundoctor
    print("| format | points | check (s) | x points | x time | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, write in WRITERS.items():
            previous: tuple[int, float] | None = None
            for size in sizes:
                run = Path(scratch) / f"{name.replace(' ', '_')}-{size}"
                write(run, size)
                samples = [rb.run_once([*command, "check", str(run), "--format", "json", "-o", "/dev/null"],
                                       Path(scratch), timeout=600.0, count=None) for _ in range(args.repeat)]
                failed = [sample for sample in samples if sample.exit_code not in rb.CHECK_EXITS or sample.timed_out]
                if failed:
                    print(f"| {name} | {size:,} | FAILED: {failed[0].message} | | | |")
                    previous = None
                    continue
                seconds = min(sample.seconds for sample in samples)
                peak = max(sample.peak_rss for sample in samples)
                growth = ("", "") if previous is None else (f"{size / previous[0]:.1f}", f"{seconds / previous[1]:.2f}")
                print(f"| {name} | {size:,} | {seconds:.2f} | {growth[0]} | {growth[1]} | {peak / 1e6:.0f} |", flush=True)
                previous = size, seconds
    return 0


if __name__ == "__main__":
    sys.exit(main())
