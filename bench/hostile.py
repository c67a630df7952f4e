"""Hostile files: the time and peak memory of ``rundoctor check`` on garbage.

    python bench/hostile.py                      # every case, 4 GB of zeros; writes bench/RESULTS-hostile.md
    python bench/hostile.py --only zeros,tree    # some cases
    python bench/hostile.py --size-gb 1 --results /tmp/h.md

The bounds SECURITY.md and the README state are measured here.  Each case is built under
``bench/out/hostile/`` (git-ignored; reused while its size is right), then ``rundoctor
check CASE --format json -o /dev/null`` runs in a fresh process through the launcher of
``run_bench.py`` (wall time from fork to exit, CPU time and peak RSS of that process alone):

- ``zeros``: an event file of ``--size-gb`` GB of zero bytes, as a crashed file system
  leaves behind (sparse: it takes no disk and reads at memory speed);
- ``zero hole``: a real event file, 100,000 points, then a 1 GB hole of zeros (sparse),
  then 100,000 more points;
- ``random``: the same with 1 GB of random bytes in the middle;
- ``small integers``: the same with 256 MB of int64 values under 1,000, the worst garbage
  there is for the scan (a plausible record length every 8 bytes, each checksummed);
- ``csv line``: a Lightning CSV, 1,000 rows, one line of 1 GB of numbers and commas, 1,000
  rows;
- ``jsonl line``: JSON lines, 1,000 records, a record whose string value is 1 GB, 1,000
  records;
- ``tree``: 20,000 small logs of 20 points, a third each Lightning CSV, JSON lines and
  event files, each format in a tree of its own, 100 runs a folder.

Where the garbage has points around it, ``rundoctor ls --format json`` runs too and its
point count is checked: every point before and after the garbage must be read (JSON: the
text table's rendering would dominate the tree's time).  ``rundoctor
--version`` gives the floor of memory (the interpreter and rundoctor's imports); a bare read
of every byte of the case (``floor: read the bytes``) the floor of time.  Each case is read
once, untimed, before it is measured: every run finds it in the page cache (reading a
sparse file's holes the first time costs the kernel ~2 s of CPU a GB here, not rundoctor).
Nothing is asserted: the numbers are for reading (and for SECURITY.md).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import run_bench as rb
from tensorboard.compat.proto import event_pb2, summary_pb2

from rundoctor.readers.crc32c import masked_crc32c

OUT = Path(__file__).resolve().parent / "out" / "hostile"
EVENT_NAME = "events.out.tfevents.1700000000.bench.1.0"
GB = 1 << 30
MB = 1 << 20
T0 = 1_700_000_000.0
POINTS_AROUND = 100_000  # points before and after the garbage in the event files
TREE_FILES = 20_000


def records(first: int, count: int, tag: str = "train/loss") -> bytes:
    """Framed scalar events, steps ``first..first+count``."""
    out = bytearray()
    for step in range(first, first + count):
        payload = event_pb2.Event(
            wall_time=T0 + step, step=step,
            summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=2.0 / (1 + step))]),
        ).SerializeToString()
        length = struct.pack("<Q", len(payload))
        out += length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))
    return bytes(out)


def write_chunks(path: Path, chunk: Callable[[int], bytes], size: int) -> None:
    """Append ``size`` bytes made by ``chunk(n)``, 64 MB at a time."""
    with path.open("ab") as out:
        left = size
        while left:
            piece = chunk(min(left, 64 * MB))
            out.write(piece)
            left -= len(piece)


def hole(path: Path, size: int) -> None:
    """Append ``size`` zero bytes without writing them (a sparse hole)."""
    with path.open("r+b") as out:
        out.truncate(path.stat().st_size + size)


def make_zeros(folder: Path, size: int) -> None:
    (folder / EVENT_NAME).touch()
    hole(folder / EVENT_NAME, size)


def garbage_between_records(filler: Callable[[Path, int], None], size: int) -> Callable[[Path, int], None]:
    def make(folder: Path, _: int) -> None:
        path = folder / EVENT_NAME
        path.write_bytes(records(0, POINTS_AROUND))
        filler(path, size)
        with path.open("ab") as out:
            out.write(records(POINTS_AROUND, POINTS_AROUND))

    return make


def random_bytes(path: Path, size: int) -> None:
    rng = np.random.default_rng(0)
    write_chunks(path, lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes(), size)


def small_integers(path: Path, size: int) -> None:
    rng = np.random.default_rng(0)
    write_chunks(path, lambda n: rng.integers(0, 1000, n // 8).astype("<i8").tobytes(), size)


def rows(first: int, count: int) -> bytes:
    return "".join(f"{step},{2.0 / (1 + step)!r}\n" for step in range(first, first + count)).encode()


def make_csv_line(folder: Path, size: int) -> None:
    path = folder / "metrics.csv"
    path.write_bytes(b"step,train_loss\n" + rows(0, 1000))
    write_chunks(path, lambda n: (b"1234567," * (n // 8 + 1))[:n], size)
    with path.open("ab") as out:
        out.write(b"\n" + rows(1000, 1000))


def make_jsonl_line(folder: Path, size: int) -> None:
    path = folder / "history.jsonl"
    lines = "".join(json.dumps({"step": step, "loss": 2.0 / (1 + step)}) + "\n" for step in range(1000))
    path.write_text(lines + '{"step": 1000, "note": "', encoding="utf-8")
    write_chunks(path, lambda n: b"a" * n, size)
    with path.open("ab") as out:
        out.write(b'"}\n' + "".join(json.dumps({"step": step, "loss": 2.0 / (1 + step)}) + "\n"
                                   for step in range(1001, 2001)).encode())


def make_tree(folder: Path, files: int) -> None:
    """``files`` logs of 20 points, a third each Lightning CSV, JSON lines and event files,
    each format in a tree of its own, 100 runs a folder."""
    csv = b"step,train_loss\n" + rows(0, 20)
    jsonl = "".join(json.dumps({"step": step, "loss": 2.0 / (1 + step)}) + "\n" for step in range(20)).encode()
    event = records(0, 20)
    kinds = [("csv", "metrics.csv", csv), ("jsonl", "history.jsonl", jsonl), ("tensorboard", EVENT_NAME, event)]
    for index in range(files):
        kind, name, data = kinds[index % 3]
        number = index // 3
        run = folder / kind / f"group{number // 100:03d}" / f"run{number % 100:02d}"
        run.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    make: Callable[[Path, int], None]
    size: int  # what ``make`` is given: bytes of garbage, or files in the tree
    points: int | None = None  # what ``ls`` must count, when ls is run
    ls: bool = False


def cases(size_gb: float, garbage_gb: float, tree_files: int) -> list[Case]:
    around = 2 * POINTS_AROUND
    garbage, integers = int(garbage_gb * GB), int(garbage_gb * GB / 4) // 8 * 8
    sized = f"{garbage_gb:g} GB"
    return [
        Case("zeros", f"event file of {size_gb:g} GB of zero bytes (sparse)", make_zeros, int(size_gb * GB)),
        Case("zero hole", f"100k points, {sized} of zeros (sparse), 100k points",
             garbage_between_records(hole, garbage), garbage, around, ls=True),
        Case("random", f"100k points, {sized} of random bytes, 100k points",
             garbage_between_records(random_bytes, garbage), garbage, around, ls=True),
        Case("small integers", f"100k points, {integers / 1e6:,.0f} MB of int64 under 1,000, 100k points",
             garbage_between_records(small_integers, integers), integers, around, ls=True),
        Case("csv line", f"Lightning CSV: 1,000 rows, a {sized} line, 1,000 rows", make_csv_line, garbage, 2000,
             ls=True),
        Case("jsonl line", f"JSON lines: 1,000 records, a {sized} line, 1,000 records", make_jsonl_line, garbage,
             2000, ls=True),
        Case("tree", f"{tree_files:,} logs of 20 points (CSV, JSON lines, event files)", make_tree, tree_files,
             tree_files * 20, ls=True),
    ]


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def ensure(case: Case, out: Path) -> tuple[Path, float]:
    """The case's folder, built unless a complete one is there; and the seconds building took."""
    folder = out / case.name.replace(" ", "-")
    stamp = folder / "MANIFEST.json"
    expected = {"case": case.name, "size": case.size}
    if stamp.is_file() and json.loads(stamp.read_text()) == expected:
        return folder / "data", 0.0
    data = folder / "data"
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    data.mkdir(parents=True)
    start = time.perf_counter()
    case.make(data, case.size)
    stamp.write_text(json.dumps(expected))
    return data, time.perf_counter() - start


def json_points(stdout: str) -> int | None:
    """The points ``rundoctor ls --format json`` lists."""
    try:
        return sum(run["points"] for run in json.loads(stdout)["runs"])
    except (ValueError, KeyError, TypeError):
        return None


# The floor: every byte of the case read in 16 MiB pieces by a bare interpreter, what any
# reader pays before it looks at a byte.  Its first, untimed run also puts the case in the
# page cache (a sparse file's holes too), so that every timed run finds it there.
READ_BYTES = """
import os, sys
buffer = bytearray(1 << 24)
for folder, _, names in os.walk(sys.argv[1]):
    for name in names:
        with open(os.path.join(folder, name), "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass
"""


def measure(argv: list[str], cwd: Path, repeat: int, timeout: float, count: bool) -> rb.Sample:
    """The best of ``repeat`` runs (by wall time); the peak RSS is the largest seen."""
    samples = [rb.run_once(argv, cwd, timeout, json_points if count else None) for _ in range(repeat)]
    best = min(samples, key=lambda sample: sample.seconds)
    peak = max(sample.peak_rss for sample in samples)
    return rb.Sample(best.seconds, peak, best.exit_code, best.timed_out, best.points, best.message, best.cpu_seconds)


def row(case: str, what: str, command: str, sample: rb.Sample, size: int | None, status: str) -> list[str]:
    rate = f"{size / sample.cpu_seconds / 1e9:.2f} GB/s" if size and sample.cpu_seconds > 0 else "-"
    return [case, what, command, f"{sample.seconds:.2f}", f"{sample.cpu_seconds:.2f}", rate,
            f"{sample.peak_rss / 1e6:.0f}", str(sample.exit_code), status]


def status_of(sample: rb.Sample, ok_exits: tuple[int, ...], points: int | None) -> str:
    if sample.timed_out:
        return "TIMED OUT"
    if sample.exit_code not in ok_exits:
        return f"FAILED (exit {sample.exit_code}): {sample.message}"
    if points is not None and sample.points != points:
        return f"WRONG: {sample.points} points, expected {points:,}"
    return "ok" if points is None else f"ok, {points:,} points"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=4.0, help="size of the zero-filled event file (default 4)")
    parser.add_argument("--garbage-gb", type=float, default=1.0,
                        help="garbage between records and the enormous lines (default 1; small integers: a quarter)")
    parser.add_argument("--tree-files", type=int, default=TREE_FILES, help=f"logs in the tree (default {TREE_FILES:,})")
    parser.add_argument("--only", default="", help="comma-separated case names (zeros, zero-hole, random, "
                        "small-integers, csv-line, jsonl-line, tree); all by default")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest is shown")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a run counts as hung")
    parser.add_argument("--out", type=Path, default=OUT, help="where the cases are built (reused while complete)")
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS-hostile.md")
    parser.add_argument("--module", action="store_true", help="run python -m rundoctor, not the console script")
    args = parser.parse_args()
    chosen = [case for case in cases(args.size_gb, args.garbage_gb, args.tree_files)
              if not args.only or case.name.replace(" ", "-") in args.only.split(",")]
    commands = rb.rundoctor_command(args.module)
    rundoctor = list(commands.rundoctor)
    load_at_start = os.getloadavg()[0]
    header = ["case", "what", "command", "wall s", "CPU s", "garbage / CPU s", "peak RSS MB", "exit", "status"]
    table = []
    floor = measure([*rundoctor, "--version"], Path.cwd(), max(args.repeat, 3), args.timeout, count=False)
    table.append(row("floor", "interpreter and imports", "rundoctor --version", floor, None, "ok"))
    print("  ".join(header), flush=True)
    for case in chosen:
        data, built = ensure(case, args.out)
        if built:
            print(f"built {case.name} in {built:.0f} s ({folder_bytes(data) / 1e9:.2f} GB apparent)", flush=True)
        garbage = case.size if case.name != "tree" else None
        floor_argv = [sys.executable, "-S", "-c", READ_BYTES, str(data)]
        measure(floor_argv, data.parent, 1, args.timeout, count=False)  # the page cache, warmed
        read = measure(floor_argv, data.parent, args.repeat, args.timeout, count=False)
        table.append(row(case.name, case.what, "floor: read the bytes", read, garbage, status_of(read, (0,), None)))
        print("  ".join(table[-1]), flush=True)
        check = measure([*rundoctor, "check", str(data), "--format", "json", "-o", "/dev/null"], data.parent,
                        args.repeat, args.timeout, count=False)
        ok_exits = (2,) if case.name == "zeros" else rb.CHECK_EXITS  # nothing readable: a usage error
        table.append(row(case.name, case.what, "check", check, garbage, status_of(check, ok_exits, None)))
        print("  ".join(table[-1]), flush=True)
        if case.ls:
            listed = measure([*rundoctor, "ls", str(data), "--format", "json"], data.parent, args.repeat, args.timeout,
                             count=True)
            table.append(row(case.name, case.what, "ls (JSON)", listed, garbage, status_of(listed, (0,), case.points)))
            print("  ".join(table[-1]), flush=True)
    conditions = rb.machine(load_at_start)
    text = "\n".join([
        "# rundoctor on hostile files",
        "",
        f"Produced by `{' '.join(['python bench/hostile.py', *sys.argv[1:]])}` ({commands.rundoctor_shown}); "
        f"best of {args.repeat} "
        "run(s) a command, peak RSS the largest seen.  Wall time is from fork to exit on a shared machine "
        "(see the load average); CPU time is the process's own user + system time, the steadier figure.  "
        "Garbage / CPU s is the garbage's size over that CPU time.",
        "",
        *[f"- **{key}**: {value}" for key, value in conditions],
        "",
        rb.markdown_table(header, table),
        "",
    ])
    args.results.write_text(text, encoding="utf-8")
    print(f"\nwritten to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
