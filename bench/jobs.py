"""How `rundoctor check --jobs N` scales: wall time and peak memory with 1 and 2 jobs.

    python bench/jobs.py --sweep DIR                 # a tree already made (workload c)
    python bench/jobs.py --runs 1000,10000 --out DIR  # generated trees of small runs

``--runs`` writes trees of event files, each run 16 tags x 200 steps (3,200 points, as
TensorBoard's SummaryWriter writes them), with ``make_logs.py``'s writer (``--make-logs``),
into ``DIR/runs-<N>/`` (reused when it holds that many runs).  Every measurement is one
fresh ``python -m rundoctor check TREE --jobs J --format json --output FILE``; the reports
of every job count are compared byte for byte.  Peak memory is sampled every 20 ms over the
whole process tree (the parent and its workers, summed) and for the parent alone.
``--tbparse`` also times ``tbparse.SummaryReader(TREE).scalars`` (bench/peers.py) on trees
of at most ``--tbparse-max`` runs.  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MAKE_LOGS = REPO.parent / "shared" / "bench" / "make_logs.py"
KINDS = ("loss", "acc", "lr", "norm", "ppl", "flat")
TAGS = [(f"{split}/{name}_{i}", kind) for i in range(2) for split in ("train", "val")
        for name, kind in (("loss", "loss"), ("acc", "acc"))] + [
    ("lr", "lr"), ("grad_norm", "norm"), ("ppl", "ppl"), ("throughput", "flat"),
    ("train/aux_loss", "loss"), ("val/top5", "acc"), ("momentum", "flat"), ("memory", "flat")]
STEPS = 200
SAMPLE_SECONDS = 0.02


def load_make_logs(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_logs", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"make_logs.py not found at {path}: pass --make-logs PATH")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tree(out: Path, runs: int, make_logs: ModuleType) -> Path:
    tree = out / f"runs-{runs}"
    if tree.is_dir() and sum(1 for _ in tree.iterdir()) == runs:
        return tree
    steps = np.arange(STEPS, dtype=np.int64)
    for index in range(runs):
        rng = np.random.default_rng([7, index])
        t0 = 1.7e9 + 600.0 * index
        payloads = make_logs.scalar_payloads(TAGS, steps, rng, t0)
        make_logs.write_event_file(make_logs.event_file_name(str(tree / f"run_{index:05d}"), t0, 100 + index), payloads)
    return tree


def measure(command: list[str]) -> tuple[float, float, float, int]:
    """Wall seconds, peak RSS (MB) of the process tree summed and of the first process, exit code."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    top = psutil.Process(process.pid)
    peak_tree = peak_parent = 0
    while process.poll() is None:
        try:
            parent = top.memory_info().rss
            children = sum(child.memory_info().rss for child in top.children(recursive=True))
        except psutil.Error:
            continue
        peak_parent = max(peak_parent, parent)
        peak_tree = max(peak_tree, parent + children)
        time.sleep(SAMPLE_SECONDS)
    elapsed = time.perf_counter() - start
    return elapsed, peak_tree / 2**20, peak_parent / 2**20, process.returncode


def check_row(tree: Path, jobs: int, report: Path) -> tuple[str, float, float, float]:
    command = [sys.executable, "-m", "rundoctor", "check", str(tree), "--jobs", str(jobs),
               "--format", "json", "--output", str(report)]
    seconds, tree_mb, parent_mb, code = measure(command)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {code}")
    return f"rundoctor check --jobs {jobs}", seconds, tree_mb, parent_mb


def tbparse_row(tree: Path) -> tuple[str, float, float, float]:
    seconds, tree_mb, parent_mb, code = measure([sys.executable, str(REPO / "bench" / "peers.py"), "tbparse", str(tree)])
    if code != 0:
        raise SystemExit(f"tbparse exited {code}")
    return "tbparse SummaryReader(...).scalars", seconds, tree_mb, parent_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=Path, action="append", default=[], help="a tree already made (repeatable)")
    parser.add_argument("--runs", default="", help="comma list of run counts to generate, e.g. 1000,10000")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "jobs", help="where generated trees go")
    parser.add_argument("--jobs", default="1,2", help="comma list of --jobs values")
    parser.add_argument("--make-logs", type=Path, default=DEFAULT_MAKE_LOGS)
    parser.add_argument("--tbparse", action="store_true", help="also time tbparse loading each tree")
    parser.add_argument("--tbparse-max", type=int, default=1000, help="largest tree tbparse is timed on")
    args = parser.parse_args(argv)
    trees = list(args.sweep)
    if args.runs:
        make_logs = load_make_logs(args.make_logs)
        trees += [make_tree(args.out, int(count), make_logs) for count in args.runs.split(",")]
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print("\n| tree | runs | tool | wall s | s per 1k runs | peak RSS MB, all processes | peak RSS MB, parent |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for tree in trees:
            count = sum(1 for _ in tree.iterdir() if _.is_dir())
            reports: list[bytes] = []
            rows = []
            for jobs in (int(value) for value in args.jobs.split(",")):
                report = Path(scratch) / f"report-{jobs}.json"
                rows.append(check_row(tree, jobs, report))
                reports.append(report.read_bytes())
            if any(report != reports[0] for report in reports):
                raise SystemExit(f"{tree}: the reports of --jobs {args.jobs} differ")
            if args.tbparse and count <= args.tbparse_max:
                rows.append(tbparse_row(tree))
            for tool, seconds, tree_mb, parent_mb in rows:
                print(f"| {tree.name} | {count:,} | {tool} | {seconds:.1f} | {1000 * seconds / count:.1f} "
                      f"| {tree_mb:.0f} | {parent_mb:.0f} |", flush=True)
    print(f"\n- load average {os.getloadavg()[0]:.1f} at the end; reports byte-identical across --jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
