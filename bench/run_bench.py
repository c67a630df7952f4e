"""Benchmark rundoctor against the tools a user would reach for instead, whole process each.

    python bench/run_bench.py --scale 1                  # everything; writes bench/RESULTS.md
    python bench/run_bench.py --scale 0.05 --repeat 2    # a quick look at a small workload
    python bench/run_bench.py --memory --size-gb 1       # peak RSS of check on a ~1 GB file

The workload comes from ``make_logs.py`` (``../shared/bench/make_logs.py`` beside the
checkout unless --make-logs says otherwise) and is generated into ``bench/out/`` once; a
directory whose MANIFEST.json and file sizes match is reused.  Every tool runs in a fresh
process, round-robin within a workload (A B C A B C ...) so that drift on the machine hits
all of them alike; a small launcher times each tool from fork to exit and takes its peak
RSS from the ``ru_maxrss`` that ``wait4`` reports for exactly that child.  Ratios between two
tools are taken pair by pair (the i-th run of one against the i-th run of the other) and
the median of those ratios is reported.  Nothing here asserts anything: the tables say
which targets are met.  Linux only (``os.waitid``, /proc).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
PEERS = BENCH / "peers.py"
DEFAULT_MAKE_LOGS = REPO.parent / "shared" / "bench" / "make_logs.py"
DEFAULT_RESULTS = BENCH / "RESULTS.md"
SEED = 0  # make_logs.py's default: the workload is byte-identical on every machine

# make_logs.py --only letter -> the MANIFEST.json workloads it writes
WORKLOADS = {"a": ("a_big",), "b": ("b_tf2",), "c": ("c_sweep",), "d": ("d_csv", "d_jsonl")}
CSV_FILE = "d_csv/lightning_logs/version_0/metrics.csv"
JSONL_FILE = "d_jsonl/wandb-history.jsonl"
# Columns of workload d that are axes, not metrics: MANIFEST.json does not count them.
CSV_AXES = ("epoch", "step")
JSONL_AXES = ("_step", "_runtime", "_timestamp", "epoch")
VERSIONED = ("rundoctor", "numpy", "pandas", "tensorboard", "protobuf", "tbparse", "polars")
# The memory budget of the hostile-input issue: 40 bytes per point kept (int64 step, float64
# value, float64 wall time, int32 tag code, and a float64 of working space) over the baseline.
BYTES_PER_POINT = 40

Manifest = dict[str, Any]  # make_logs.py's MANIFEST.json


# --------------------------------------------------------------------------------------------
# Running one process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One run of one tool: what it cost and what it said."""

    seconds: float
    peak_rss: int  # bytes, the child's own ru_maxrss
    exit_code: int
    timed_out: bool
    points: int | None  # the point count the tool printed, None if it prints none
    message: str  # the last line of stderr (or stdout), for failures
    cpu_seconds: float = float("nan")  # user + system time of the tool itself


# The process that starts each tool.  A child's ru_maxrss counts the pages of the process it
# was forked from (Linux copies the parent's resident set into the child and keeps that peak
# across exec), so spawning tools straight from this harness would put its own ~20 MB under
# every number.  This launcher, a bare interpreter (-S: no site imports), forks the tool,
# times it from fork to exit, and reaps it with wait4 for its own resource usage: the
# launcher's few MB are the only floor.  waitid(WNOWAIT) waits without reaping, so the alarm
# can never kill a recycled pid.  SIGTERM or SIGINT to the launcher kills the tool with it.
LAUNCHER = """
import json, os, signal, sys, time
result, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
killed = []
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        os.write(2, ("cannot run %s: %s\\n" % (argv[0], error)).encode())
    os._exit(127)
def kill(*_):
    killed.append(True)
    os.kill(pid, signal.SIGKILL)
for stop in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
    signal.signal(stop, kill)
signal.setitimer(signal.ITIMER_REAL, timeout)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
seconds = time.perf_counter() - start
signal.setitimer(signal.ITIMER_REAL, 0)
_, status, usage = os.wait4(pid, 0)
with open(result, "w") as handle:
    json.dump([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status), bool(killed),
               usage.ru_utime + usage.ru_stime], handle)
"""


def run_once(argv: Sequence[str], cwd: Path, timeout: float, count: Callable[[str], int | None] | None) -> Sample:
    """Run ``argv`` in ``cwd`` through the launcher; its wall time, peak RSS and output.

    Output goes to temporary files so that a chatty tool never blocks on a full pipe.
    """
    with tempfile.TemporaryDirectory() as scratch:
        result, out, err = (Path(scratch) / name for name in ("result.json", "stdout", "stderr"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(result), str(timeout), *argv],
                                        cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
            try:
                launcher.wait()
            except BaseException:  # interrupted or terminated: leave no tool running behind
                launcher.terminate()
                launcher.wait()
                raise
        seconds, max_rss_kib, exit_code, timed_out, cpu_seconds = json.loads(result.read_text())
        output = out.read_text("utf-8", "replace")
        errors = err.read_text("utf-8", "replace")
    return Sample(
        seconds=seconds,
        peak_rss=max_rss_kib * 1024,  # ru_maxrss is in KiB on Linux
        exit_code=exit_code,
        timed_out=timed_out,
        points=count(output) if count is not None else None,
        message=failure_line(errors or output),
        cpu_seconds=cpu_seconds,
    )


def failure_line(text: str) -> str:
    """The line of a tool's output that says what went wrong: the last that mentions an error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return scrub((errors or lines or [""])[-1])[:200]


def scrub(text: str) -> str:
    """A tool's message without this machine's paths: the report is committed."""
    for path, shown in ((sys.executable, "python"), (str(REPO), "."), (str(REPO.parent), "..")):
        text = text.replace(path, shown)
    return text


def rundoctor_ls_points(stdout: str) -> int | None:
    """The total from the summary line ``rundoctor ls`` ends with: 'N runs, P points, ...'."""
    found = re.findall(r"\b[\d,]+ runs?, ([\d,]+) points?\b", stdout)
    return int(found[-1].replace(",", "")) if found else None


def peer_points(stdout: str) -> int | None:
    """The ``{"points": N}`` line every peer in peers.py prints last."""
    lines = stdout.strip().splitlines()
    try:
        return int(json.loads(lines[-1])["points"]) if lines else None
    except (ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------------------------
# Tools, groups and their results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A command to time.  ``slow`` tools run --peer-repeat times and get no warm-up run;
    ``reads`` is False for start-up commands, which get no points/s."""

    name: str
    argv: tuple[str, ...]
    ok_exit: frozenset[int] = frozenset({0})
    slow: bool = False
    count: Callable[[str], int | None] | None = None
    reads: bool = True


@dataclass(frozen=True)
class Group:
    """Tools timed against each other on one workload; the first is the reference row."""

    key: str
    title: str
    workload: str | None  # MANIFEST.json key, for point counts and sizes
    tools: tuple[Tool, ...]


@dataclass(frozen=True)
class ToolResult:
    group: Group
    tool: Tool
    samples: tuple[Sample, ...]  # the successful runs, in round order
    failure: str  # why the tool stopped, "" if every run succeeded
    expected_points: int | None

    @property
    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def measured(self) -> bool:
        return not self.failure and bool(self.samples)

    @property
    def reported_points(self) -> int | None:
        counts = {s.points for s in self.samples}
        return counts.pop() if len(counts) == 1 else None

    @property
    def count_problem(self) -> str:
        """Why this tool's point count does not back up its time, "" when it does."""
        if self.tool.count is None or self.expected_points is None or not self.samples:
            return ""
        counts = sorted({s.points for s in self.samples}, key=lambda c: -1 if c is None else c)
        if counts == [None]:
            return "printed no point count"
        if len(counts) > 1:
            return "point counts differ between runs: " + ", ".join(map(str, counts))
        if counts[0] != self.expected_points:
            return f"read {counts[0]:,} points, MANIFEST.json has {self.expected_points:,}"
        return ""


Log = Callable[[str], None]


class Runner:
    """Runs the groups: warm-up, then rounds of every tool in turn."""

    def __init__(self, cwd: Path, repeat: int, peer_repeat: int, warmup: bool, timeout: float, log: Log):
        self.cwd, self.repeat, self.peer_repeat = cwd, repeat, peer_repeat
        self.warmup, self.timeout, self.log = warmup, timeout, log

    def runs_of(self, tool: Tool) -> int:
        return min(self.repeat, self.peer_repeat) if tool.slow else self.repeat

    def run_group(self, group: Group, manifest: Manifest) -> list[ToolResult]:
        samples: dict[str, list[Sample]] = {tool.name: [] for tool in group.tools}
        failures: dict[str, str] = {}
        if self.warmup:
            # one untimed run of each quick tool: .pyc files written, files in the page cache
            for tool in group.tools:
                if not tool.slow:
                    problem = judge(tool, self._run(group, tool, "warm-up"))
                    if problem:
                        failures[tool.name] = f"warm-up: {problem}"
        for round_index in range(max(self.runs_of(tool) for tool in group.tools)):
            for tool in group.tools:
                if tool.name in failures or len(samples[tool.name]) >= self.runs_of(tool):
                    continue
                sample = self._run(group, tool, f"run {round_index + 1}/{self.runs_of(tool)}")
                problem = judge(tool, sample)
                if problem:  # a failing tool fails again: stop it rather than pay for it
                    failures[tool.name] = f"run {round_index + 1}: {problem}"
                else:
                    samples[tool.name].append(sample)
        expected = points_of(manifest, group.workload)
        return [ToolResult(group, tool, tuple(samples[tool.name]), failures.get(tool.name, ""), expected)
                for tool in group.tools]

    def _run(self, group: Group, tool: Tool, label: str) -> Sample:
        sample = run_once(tool.argv, self.cwd, self.timeout, tool.count)
        self.log(f"[{group.key}] {tool.name:<24} {label:<9} {sample.seconds:8.3f} s "
                 f"{sample.peak_rss / 1e6:8.1f} MB  exit {sample.exit_code}")
        return sample


def judge(tool: Tool, sample: Sample) -> str:
    """Why a run does not count, "" when it does."""
    if sample.timed_out:
        return f"timed out after {sample.seconds:.0f} s"
    if sample.exit_code not in tool.ok_exit:
        return f"exit {sample.exit_code}" + (f": {sample.message}" if sample.message else "")
    return ""


def points_of(manifest: Manifest, workload: str | None) -> int | None:
    return manifest["workloads"][workload]["scalar_points"] if workload else None


def bytes_of(manifest: Manifest, workload: str) -> int:
    return int(manifest["workloads"][workload]["bytes"])


class Results:
    """Every tool's result, by group key and tool name."""

    def __init__(self, results: Iterable[ToolResult]):
        self.all = list(results)
        self._by_key = {(r.group.key, r.tool.name): r for r in self.all}

    def get(self, group: str, tool: str) -> ToolResult | None:
        return self._by_key.get((group, tool))


def paired_ratios(numerator: ToolResult, denominator: ToolResult) -> list[float]:
    """The i-th run of one over the i-th run of the other: both saw the same moment's machine."""
    return [a / b for a, b in zip(numerator.seconds, denominator.seconds)]


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: str  # "met", "NOT MET", "not measured", with "(counts differ)" appended if so
    measured: str


class Target(Protocol):
    @property
    def goal(self) -> str: ...

    def evaluate(self, results: Results, manifest: Manifest) -> Verdict: ...


def _verdict(ok: bool, measured: str, involved: Sequence[ToolResult]) -> Verdict:
    problems = [f"{r.tool.name} {r.count_problem}" for r in involved if r.count_problem]
    status = "met" if ok else "NOT MET"
    if problems:
        return Verdict(f"{status} (counts differ)", measured + "; " + "; ".join(problems))
    return Verdict(status, measured)


def _lookup(results: Results, group: str, tools: Sequence[str]) -> tuple[list[ToolResult], Verdict | None]:
    """The results of ``tools`` in ``group``, or the verdict that says why they are missing."""
    found = [results.get(group, tool) for tool in tools]
    if any(r is None for r in found):
        return [], Verdict("not measured", f"workload {group} was not run")
    present = [r for r in found if r is not None]
    broken = [r for r in present if not r.measured]
    if broken:
        return present, Verdict("not measured", "; ".join(f"{r.tool.name} failed ({r.failure})" for r in broken))
    return present, None


@dataclass(frozen=True)
class PairedTarget:
    """The median pairwise ratio of two tools' times, at least or at most a limit."""

    goal: str
    group: str
    numerator: str
    denominator: str
    limit: float
    at_least: bool

    def evaluate(self, results: Results, manifest: Manifest) -> Verdict:
        found, missing = _lookup(results, self.group, (self.numerator, self.denominator))
        if missing:
            return missing
        ratios = paired_ratios(found[0], found[1])
        ratio = statistics.median(ratios)
        ok = ratio >= self.limit if self.at_least else ratio <= self.limit
        measured = (f"{self.numerator} / {self.denominator} = {fmt_ratio(ratio)}x "
                    f"(median of {len(ratios)} pairs, {fmt_ratio(min(ratios))}..{fmt_ratio(max(ratios))}; "
                    f"{'need' if self.at_least else 'limit'} {'>=' if self.at_least else '<='} {self.limit:g}x)")
        return _verdict(ok, measured, found)


@dataclass(frozen=True)
class TimeTarget:
    """A tool's median wall time under a limit."""

    goal: str
    group: str
    tool: str
    limit_seconds: float

    def evaluate(self, results: Results, manifest: Manifest) -> Verdict:
        found, missing = _lookup(results, self.group, (self.tool,))
        if missing:
            return missing
        median = statistics.median(found[0].seconds)
        return _verdict(median < self.limit_seconds,
                        f"median {fmt_seconds(median)} s (limit < {self.limit_seconds:g} s)", found)


@dataclass(frozen=True)
class FileSizeTarget:
    """A tool's peak RSS at most ``factor`` times the size of the files it reads."""

    goal: str
    group: str
    tool: str
    workload: str
    factor: float

    def evaluate(self, results: Results, manifest: Manifest) -> Verdict:
        found, missing = _lookup(results, self.group, (self.tool,))
        if missing:
            return missing
        peak, size = max(s.peak_rss for s in found[0].samples), bytes_of(manifest, self.workload)
        return _verdict(peak <= self.factor * size,
                        f"peak RSS {fmt_mb(peak)} MB = {peak / size:.2f}x the {fmt_mb(size)} MB of "
                        f"{self.workload} (limit {self.factor:g}x)", found)


@dataclass(frozen=True)
class PointBudgetTarget:
    """Peak RSS at most the interpreter's baseline plus a fixed number of bytes per point."""

    goal: str
    group: str
    tool: str
    baseline_tool: str
    workload: str
    bytes_per_point: int

    def evaluate(self, results: Results, manifest: Manifest) -> Verdict:
        found, missing = _lookup(results, self.group, (self.tool, self.baseline_tool))
        if missing:
            return missing
        peak = max(s.peak_rss for s in found[0].samples)
        baseline = max(s.peak_rss for s in found[1].samples)
        points, size = points_of(manifest, self.workload) or 0, bytes_of(manifest, self.workload)
        budget = baseline + self.bytes_per_point * points
        return _verdict(peak <= budget,
                        f"peak RSS {fmt_mb(peak)} MB vs budget {fmt_mb(budget)} MB = baseline {fmt_mb(baseline)} MB "
                        f"+ {self.bytes_per_point} B x {points:,} points; {peak / size:.2f}x the "
                        f"{fmt_mb(size)} MB file", found)


# --------------------------------------------------------------------------------------------
# The benchmark: groups and targets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commands:
    """How to start rundoctor and a peer; both run from the workload directory."""

    rundoctor: tuple[str, ...]
    rundoctor_shown: str

    def rd(self, name: str, *args: str, ok_exit: Iterable[int] = (0,), count: bool = False) -> Tool:
        return Tool(name, (*self.rundoctor, *args), frozenset(ok_exit), count=rundoctor_ls_points if count else None)

    def startup(self, option: str) -> Tool:
        return Tool(f"rundoctor {option}", (*self.rundoctor, option), reads=False)

    @staticmethod
    def peer(name: str, peer: str, *args: str, slow: bool = False, count: bool = True) -> Tool:
        return Tool(name, (sys.executable, str(PEERS), peer, *args), slow=slow, count=peer_points if count else None)


def rundoctor_command(as_module: bool) -> Commands:
    """The console script users run (from this interpreter's scripts directory, not a shim)."""
    script = Path(sysconfig.get_path("scripts")) / "rundoctor"
    if not as_module and script.is_file():
        return Commands((str(script),), "the rundoctor console script")
    return Commands((sys.executable, "-m", "rundoctor"), "python -m rundoctor")


CHECK_EXITS = (0, 1)  # 1 means findings, which these workloads have on purpose


def benchmark_groups(cmd: Commands, only: str) -> list[Group]:
    groups = {
        "startup": Group("startup", "start-up", None, (
            Tool("python -c pass", (sys.executable, "-c", "pass"), reads=False),
            cmd.startup("--version"),
            cmd.startup("--help"),
        )),
        "a": Group("a", "one run, 20 tags x 100k steps at scale 1, simple_value", "a_big", (
            cmd.rd("rundoctor ls", "ls", "a_big", count=True),
            cmd.peer("EventAccumulator", "ea-scalars", "a_big", slow=True),
            cmd.peer("tbparse", "tbparse", "a_big", slow=True),
            cmd.peer("floor: read bytes", "read-bytes", "a_big", count=False),
            cmd.rd("rundoctor check", "check", "a_big", ok_exit=CHECK_EXITS),
        )),
        "b": Group("b", "one run, TF2 tensor-form scalars (tensor_content)", "b_tf2", (
            cmd.rd("rundoctor ls", "ls", "b_tf2", count=True),
            cmd.peer("EventAccumulator tensors", "ea-tensors", "b_tf2", slow=True),
        )),
        "c": Group("c", "a sweep of 200 runs at scale 1, 8 tags, some histograms", "c_sweep", (
            cmd.rd("rundoctor check", "check", "c_sweep", "--format", "json", "-o", os.devnull, ok_exit=CHECK_EXITS),
            cmd.peer("tbparse", "tbparse", "c_sweep", slow=True),
            cmd.rd("rundoctor ls", "ls", "c_sweep", count=True),
        )),
        "d-csv": Group("d-csv", "Lightning CSVLogger metrics.csv, sparse rows", "d_csv", (
            cmd.rd("rundoctor ls", "ls", CSV_FILE, count=True),
            cmd.peer("pandas.read_csv", "pandas-csv", CSV_FILE, *CSV_AXES),
        )),
        "d-jsonl": Group("d-jsonl", "wandb-style history, JSON lines", "d_jsonl", (
            cmd.rd("rundoctor ls", "ls", JSONL_FILE, count=True),
            cmd.peer("polars.read_ndjson", "polars-ndjson", JSONL_FILE, *JSONL_AXES),
        )),
    }
    selected = set(only.split(","))
    return [group for key, group in groups.items() if key.split("-")[0] in selected]


def letters_only(only: str) -> str:
    """The make_logs.py workload letters in an --only list such as 'a,c,startup'."""
    return "".join(part for part in only.split(",") if part in WORKLOADS)


BENCH_TARGETS: tuple[Target, ...] = (
    PairedTarget("a: `ls` at least 30x faster than EventAccumulator", "a", "EventAccumulator", "rundoctor ls", 30, True),
    PairedTarget("a: `ls` at least 30x faster than tbparse", "a", "tbparse", "rundoctor ls", 30, True),
    PairedTarget("a: `ls` within 2x of the floor (import numpy, pandas; read the bytes)", "a",
                 "rundoctor ls", "floor: read bytes", 2, False),
    PairedTarget("b: `ls` at least 25x faster than EventAccumulator reading tensors", "b",
                 "EventAccumulator tensors", "rundoctor ls", 25, True),
    PairedTarget("c: `check --format json` at least 20x faster than tbparse loading", "c",
                 "tbparse", "rundoctor check", 20, True),
    PairedTarget("d: `ls` on the CSV within 1.3x of pandas.read_csv", "d-csv", "rundoctor ls", "pandas.read_csv", 1.3, False),
    PairedTarget("d: `ls` on the JSON lines at least as fast as polars.read_ndjson", "d-jsonl",
                 "rundoctor ls", "polars.read_ndjson", 1.0, False),
    PairedTarget("a: all checks add at most 50% to `ls`", "a", "rundoctor check", "rundoctor ls", 1.5, False),
    TimeTarget("start-up: `rundoctor --help` under 0.15 s", "startup", "rundoctor --help", 0.15),
    TimeTarget("start-up: `rundoctor --version` under 0.15 s", "startup", "rundoctor --version", 0.15),
    FileSizeTarget("memory: peak RSS of `ls a_big` at most 3x the event file", "a", "rundoctor ls", "a_big", 3),
)


def memory_groups(cmd: Commands) -> list[Group]:
    return [Group("memory", "one run, one big simple_value event file", "a_big", (
        cmd.startup("--version"),
        cmd.rd("rundoctor check", "check", "a_big", "--format", "json", "-o", os.devnull, ok_exit=CHECK_EXITS),
        cmd.rd("rundoctor ls", "ls", "a_big", count=True),
    ))]


MEMORY_TARGETS: tuple[Target, ...] = (
    PointBudgetTarget(f"`check` peak RSS at most the baseline (`--version`) + {BYTES_PER_POINT} B per point",
                      "memory", "rundoctor check", "rundoctor --version", "a_big", BYTES_PER_POINT),
    FileSizeTarget("`ls` peak RSS at most 3x the event file", "memory", "rundoctor ls", "a_big", 3),
)


# --------------------------------------------------------------------------------------------
# The workload on disk
# --------------------------------------------------------------------------------------------


def read_manifest(data: Path) -> Manifest | None:
    try:
        manifest = json.loads((data / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else -1


def stale_letters(data: Path, manifest: Manifest | None, scale: float, letters: str) -> str:
    """The workloads among ``letters`` that are missing or whose files differ from the manifest."""
    if manifest is None or manifest.get("scale") != scale or manifest.get("seed") != SEED:
        return letters
    listed = manifest.get("workloads", {})
    return "".join(
        letter for letter in letters
        if any(name not in listed or tree_bytes(data / name) != listed[name].get("bytes") for name in WORKLOADS[letter])
    )


def ensure_workload(data: Path, scale: float, letters: str, make_logs: Path, log: Log) -> Manifest:
    """The workload's manifest, generating (only) what is missing or stale first."""
    manifest = read_manifest(data)
    stale = stale_letters(data, manifest, scale, letters)
    if not stale:
        log(f"reusing the workload in {shown_path(data)} (MANIFEST.json and file sizes match)")
        return manifest or {}
    if manifest is not None and manifest.get("scale") != scale:
        # make_logs.py would leave the other scale's extra files (run_150 of a larger sweep) behind
        if not data.resolve().is_relative_to(OUT.resolve()):
            raise SystemExit(f"{data} holds a workload of scale {manifest.get('scale')}, not {scale}: "
                             "give another --data directory or --scale")
        stale = letters
    for letter in stale:
        for name in WORKLOADS[letter]:
            if (data / name).exists() and data.resolve().is_relative_to(OUT.resolve()):
                shutil.rmtree(data / name)
    if not make_logs.is_file():
        raise SystemExit(f"make_logs.py not found at {make_logs}: pass --make-logs PATH or --data DIR")
    log(f"generating workloads {','.join(stale)} at scale {scale:g} into {shown_path(data)}")
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(make_logs), "--out", str(data), "--scale", repr(scale), "--only", stale],
                   check=True, stdout=sys.stderr)
    manifest = read_manifest(data)
    if manifest is None or stale_letters(data, manifest, scale, letters):
        raise SystemExit(f"make_logs.py did not leave a matching MANIFEST.json in {data}")
    return manifest


def memory_scale(size_bytes: float, make_logs: Path) -> float:
    """The make_logs.py --scale whose workload a is about ``size_bytes``, from a small probe."""
    probe_scale = 0.01
    with tempfile.TemporaryDirectory() as probe:
        subprocess.run([sys.executable, str(make_logs), "--out", probe, "--scale", str(probe_scale), "--only", "a"],
                       check=True, stdout=subprocess.DEVNULL)
        probe_bytes = bytes_of(json.loads((Path(probe) / "MANIFEST.json").read_text()), "a_big")
    # three significant digits keep the directory name and MANIFEST.json readable
    return float(f"{probe_scale * size_bytes / probe_bytes:.3g}")


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"


def fmt_mb(size: float) -> str:
    return f"{size / 1e6:,.1f}"


def fmt_rate(points: int, seconds: float) -> str:
    rate = points / seconds
    return f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:.1f} k/s"


def shown_path(path: Path) -> str:
    """A path as the report may show it: relative to the repository, never this machine's root."""
    resolved = path.resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        if resolved.is_relative_to(base):
            return prefix + resolved.relative_to(base).as_posix()
    return path.name


def shown_command(argv: Sequence[str], cmd: Commands) -> str:
    words = list(argv)
    if tuple(words[:len(cmd.rundoctor)]) == cmd.rundoctor:
        words[:len(cmd.rundoctor)] = ["rundoctor"] if len(cmd.rundoctor) == 1 else ["python", "-m", "rundoctor"]
    words = ["python" if w == sys.executable else shown_path(PEERS) if w == str(PEERS) else w for w in words]
    return " ".join(shlex.quote(w) for w in words)


def result_rows(results: Results, manifest: Manifest, cmd: Commands) -> list[list[str]]:
    rows = []
    references: dict[str, ToolResult] = {}
    for result in results.all:
        reference = references.setdefault(result.group.key, result)
        row = [result.group.key, result.tool.name, shown_command(result.tool.argv, cmd), str(len(result.samples))]
        if result.samples:
            seconds = result.seconds
            median = statistics.median(seconds)
            points = points_of(manifest, result.group.workload)
            row += [fmt_seconds(median), fmt_seconds(min(seconds)), fmt_seconds(max(seconds)),
                    fmt_rate(points, median) if points and result.tool.reads else "-",
                    fmt_mb(max(s.peak_rss for s in result.samples))]
        else:
            row += ["-"] * 5
        if result is reference:
            row.append("1 (ref)")
        elif result.samples and reference.samples:
            ratios = paired_ratios(result, reference)
            row.append(f"{fmt_ratio(statistics.median(ratios))} ({len(ratios)} pairs)")
        else:
            row.append("-")
        reported = result.reported_points
        row.append("-" if result.tool.count is None else f"{reported:,}" if reported is not None else "?")
        row.append("; ".join(filter(None, [f"FAILED {result.failure}" if result.failure else "",
                                             result.count_problem])) or "ok")
        rows.append(row)
    return rows


RESULT_HEADER = ["workload", "tool", "command", "runs", "median s", "min s", "max s", "points/s",
                 "peak RSS MB", "time / ref", "points read", "status"]
TARGET_HEADER = ["target", "status", "measured"]


def target_rows(targets: Sequence[Target], results: Results, manifest: Manifest) -> list[list[str]]:
    rows = []
    for target in targets:
        verdict = target.evaluate(results, manifest)
        rows.append([target.goal, verdict.status, verdict.measured])
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def machine(load_at_start: float) -> list[tuple[str, str]]:
    """What the numbers were measured on, and how busy it was (other work shifts every time)."""
    cpu = "unknown"
    memory = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        memory = f"{kib * 1024 / 2**30:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    versions = []
    for package in VERSIONED:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
        ("RAM", memory),
        ("load average", f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1 minute)"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(versions)),
    ]


def workload_rows(manifest: Manifest, groups: Sequence[Group]) -> list[list[str]]:
    rows = []
    for group in groups:
        if group.workload is not None:
            info = manifest["workloads"][group.workload]
            rows.append([group.workload, group.title, str(info.get("runs", 1)), fmt_mb(info["bytes"]),
                         f"{info['scalar_points']:,}"])
    return rows


Section = tuple[str, list[str], list[list[str]]]  # heading, header, rows


def sections(manifest: Manifest, results: Results, targets: Sequence[Target], groups: Sequence[Group],
             cmd: Commands) -> list[Section]:
    return [
        ("Workloads", ["workload", "what", "runs", "MB", "scalar points"], workload_rows(manifest, groups)),
        ("Results", RESULT_HEADER, result_rows(results, manifest, cmd)),
        ("Targets", TARGET_HEADER, target_rows(targets, results, manifest)),
    ]


def text_report(title: str, parts: Sequence[Section]) -> str:
    lines = [title, ""]
    for heading, header, rows in parts:
        lines += [heading, text_table(header, rows), ""]
    return "\n".join(lines)


def markdown_report(title: str, command: str, data: Path, manifest: Manifest, parts: Sequence[Section],
                    reading_notes: Sequence[str], load_at_start: float) -> str:
    source = (f" on the workload in `{shown_path(data)}` (make_logs.py scale {manifest['scale']:g}, "
              f"seed {manifest['seed']})" if "scale" in manifest else "")
    lines = [f"# {title}", "", f"Produced by `{command}`{source}.", ""]
    lines += [f"- **{key}**: {value}" for key, value in machine(load_at_start)]
    lines.append("")
    for heading, header, rows in parts:
        lines += [f"## {heading}", "", markdown_table(header, rows), ""]
    lines += ["## How to read this", ""] + [f"- {note}" for note in reading_notes] + [""]
    return "\n".join(lines)


def notes(runner: Runner, cmd: Commands, load_at_start: float) -> list[str]:
    busy = max(load_at_start, os.getloadavg()[0]) > (os.cpu_count() or 1)
    warning = (f"The machine was busy (load average above its {os.cpu_count()} cores, see above): absolute "
               "times, the start-up ones above all, are inflated; paired ratios suffer less, as both "
               "tools of a pair ran under the same load.")
    return [*([warning] if busy else []),
        (f"rundoctor runs as {cmd.rundoctor_shown}; every tool is a fresh process started from the "
         "workload directory, and its time is the whole process: start-up, imports, reading, output."),
        (f"Each quick tool ran {runner.repeat} times after one untimed warm-up run."
         if runner.warmup else f"Each quick tool ran {runner.repeat} times (no warm-up run)."),
        (f"EventAccumulator and tbparse ran {min(runner.repeat, runner.peer_repeat)} times (no warm-up: "
         "each run costs tens of seconds at scale 1); their pairs are the first rounds."),
        ("Tools of one workload run round-robin; *time / ref* is the median over rounds of "
         "(this tool's time / the first row's time) in the same round."),
        ("*points/s* is the workload's scalar points (MANIFEST.json) over the median time; for the "
         "floor it is the rate of merely importing numpy and pandas and reading the bytes. "
         "*points read* is what the tool itself printed, checked against MANIFEST.json."),
        ("*peak RSS* is the largest ru_maxrss of the tool's runs, from wait4 on that child alone; "
         "MB are 10^6 bytes."),
        ("Peers do the least work that hands the user every point (see bench/peers.py): "
         "EventAccumulator's events are counted, not converted to arrays."),
    ]


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, help="make_logs.py --scale (default 1, or the --data directory's)")
    parser.add_argument("--data", type=Path, help="workload directory (default bench/out/scale-<S>)")
    parser.add_argument("--make-logs", type=Path, default=DEFAULT_MAKE_LOGS, help="path to make_logs.py")
    parser.add_argument("--repeat", type=int, help="timed runs per tool (default 5; 1 with --memory)")
    parser.add_argument("--peer-repeat", type=int, default=3,
                        help="timed runs of the slow peers, EventAccumulator and tbparse (default 3)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the untimed first run of the quick tools (--memory never warms up)")
    parser.add_argument("--only", default="startup,a,b,c,d", help="workloads to run (default startup,a,b,c,d)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed (default 1800)")
    parser.add_argument("--module", action="store_true", help="run python -m rundoctor, not the console script")
    parser.add_argument("--results", type=Path,
                        help="markdown file to write (default bench/RESULTS.md; with --memory, RESULTS.md in the data)")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS on one big event file instead")
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of that file with --memory (default 1)")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - {"startup", *WORKLOADS}
    if unknown:
        parser.error(f"--only takes startup,a,b,c,d; unknown: {', '.join(sorted(unknown))}")
    if args.repeat is None:
        args.repeat = 1 if args.memory else 5
    if args.repeat < 1 or args.peer_repeat < 1:
        parser.error("--repeat and --peer-repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill` of the harness unwinds like Ctrl-C, so that the running tool is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cmd = rundoctor_command(args.module)
    load_at_start = os.getloadavg()[0]
    if args.memory:
        scale = memory_scale(args.size_gb * 1e9, args.make_logs)
        data = args.data or OUT / f"memory-{args.size_gb:g}gb"
        letters, groups, targets = "a", memory_groups(cmd), MEMORY_TARGETS
        title = f"rundoctor peak memory on a ~{args.size_gb:g} GB event file"
    else:
        existing = read_manifest(args.data) if args.data else None
        scale = args.scale if args.scale is not None else (existing or {}).get("scale", 1.0)
        data = args.data or OUT / f"scale-{scale:g}"
        letters, groups, targets = letters_only(args.only), benchmark_groups(cmd, args.only), BENCH_TARGETS
        title = "rundoctor benchmark results"
    manifest = ensure_workload(data, scale, letters, args.make_logs, log) if letters else {"workloads": {}}
    # a warm-up changes no peak RSS and would double the cost of the big memory workload
    runner = Runner(data, args.repeat, args.peer_repeat, args.warmup and not args.memory, args.timeout, log)
    results = Results(result for group in groups for result in runner.run_group(group, manifest))
    shown_args = [shown_path(Path(w)) if os.path.isabs(w) else w for w in (argv or sys.argv[1:])]
    command = " ".join(shlex.quote(w) for w in ["python", shown_path(Path(__file__)), *shown_args])
    parts = sections(manifest, results, targets, groups, cmd)
    print(text_report(title, parts))
    results_path = args.results or (data / "RESULTS.md" if args.memory else DEFAULT_RESULTS)
    markdown = markdown_report(title, command, data, manifest, parts, notes(runner, cmd, load_at_start), load_at_start)
    results_path.write_text(markdown, encoding="utf-8")
    log(f"wrote {shown_path(results_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
