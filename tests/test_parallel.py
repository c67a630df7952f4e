"""``check --jobs`` and ``--executor``: runs read and checked in workers give the report one
process gives, byte for byte, in every format; twins stay in one work unit; few runs stay in
this process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rundoctor import api, parallel
from rundoctor.discover import find_all_sources
from rundoctor.reporters import REPORTERS, RenderOptions, render

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = ROOT / "sample_logs"
OPTIONS = RenderOptions(width=100, color=False, workspace="/", cwd="/")


def write_csv(path: Path, loss: np.ndarray, val: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{step},{a:.6f},{b:.6f}\n" for step, (a, b) in enumerate(zip(loss, val)))
    path.write_text("step,loss,val_loss\n" + rows, encoding="utf-8")


def write_jsonl(path: Path, loss: np.ndarray, val: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": step, "loss": round(float(a), 6), "val_loss": round(float(b), 6)})
             for step, (a, b) in enumerate(zip(loss, val))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 runs of every kind the merge must keep: healthy, diverging, overfitting, NaN, too
    short; twins (one run in CSV and JSON lines); an unreadable log; a suppression file."""
    root = tmp_path_factory.mktemp("sweep") / "sweep"
    rng = np.random.default_rng(17)
    steps = np.arange(120)
    for index in range(40):
        loss = 2.0 * np.exp(-steps / (20 + index)) + 0.05 * rng.standard_normal(steps.size) ** 2
        val = loss + 0.1
        kind = index % 5
        if kind == 1:
            loss = loss + np.where(steps > 80, (steps - 80) * 0.2, 0.0)
        elif kind == 2:
            val = val + np.where(steps > 50, (steps - 50) * 0.02, 0.0)
        elif kind == 3:
            loss[90:] = np.nan
        elif kind == 4 and index % 10 == 4:
            loss, val = loss[:3], val[:3]
        if index % 7 == 0:  # the same run written twice: one diagnosis for both formats
            run = root / "mixed" / "by" / "lr" / f"lr-{index:02d}"
            write_jsonl(run / "history.jsonl", loss, val)
        else:
            run = root / "plain" / f"lr-{index:02d}"
        write_csv(run / "metrics.csv", loss, val)
    (root / "plain" / "lr-05" / "broken.jsonl").write_bytes(b"\xff\xfe{not json\n")
    (root / "plain" / "lr-01" / "rundoctor.toml").write_text('ignore = ["loss-divergence"]\nreason = "known"\n')
    return root


@pytest.fixture
def always_in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers even for a few runs, so that small trees test the parallel path."""
    monkeypatch.setattr(parallel, "MIN_RUNS_FOR_PROCESSES", 0)


def every_format(report: Any) -> dict[str, str]:
    return {name: render(name, report, OPTIONS) for name in REPORTERS}


def assert_same_reports(one: Any, other: Any) -> None:
    for name, text in every_format(one).items():
        assert every_format(other)[name] == text, name


@pytest.mark.usefixtures("always_in_workers")
def test_sample_logs_in_two_processes_give_the_report_of_one() -> None:
    one = api.check(SAMPLE_LOGS, jobs=1)
    two = api.check(SAMPLE_LOGS, jobs=2)
    assert len(two.runs) == len(one.runs) > 20
    assert_same_reports(one, two)


@pytest.mark.usefixtures("always_in_workers")
def test_a_sweep_with_twins_suppressions_and_a_baseline_gives_the_report_of_one(sweep: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    first = api.check(sweep, jobs=1)
    from rundoctor.baseline import Baseline

    baseline.write_text(Baseline.of(first.active_findings[:5], str(baseline)).render(), encoding="utf-8")
    one = api.check(sweep, jobs=1, baseline=baseline, fail_on="warning")
    two = api.check(sweep, jobs=2, baseline=baseline, fail_on="warning")
    # the tree holds what the merge must keep: twins, suppressed and baselined findings, an error
    assert any(len(d.members) == 2 for d in one.diagnoses or ())
    assert one.suppressed and one.baselined_findings and one.errors
    assert_same_reports(one, two)
    assert two.exit_code == one.exit_code == 1


def test_the_command_line_with_jobs_prints_the_report_of_one_process(sweep: Path) -> None:
    """Through `python -m rundoctor`, whose module must not run again in spawned workers."""

    def run(jobs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rundoctor", "check", str(sweep), "--jobs", jobs, "-f", "json"],
            capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=300,
        )

    one, two = run("1"), run("2")  # 40 runs: past MIN_RUNS_FOR_PROCESSES, so two workers
    assert one.returncode == two.returncode == 1, two.stderr
    assert two.stdout == one.stdout


def test_twins_share_a_work_unit_and_a_one_format_sweep_is_one_run_a_unit(sweep: Path) -> None:
    sources, _ = find_all_sources([sweep])
    units = parallel.work_units(sources)
    assert sum(len(unit) for unit in units) == len(sources) == 40 + 6
    unit_of = {str(source.path.relative_to(sweep)): index for index, unit in enumerate(units) for source, _ in unit}
    twins = "mixed/by/lr/lr-07"
    assert unit_of[f"{twins}/metrics.csv"] == unit_of[f"{twins}/history.jsonl"]
    # runs of two formats within two levels of a common directory may be twins: one unit
    assert unit_of[f"{twins}/metrics.csv"] == unit_of["mixed/by/lr/lr-14/history.jsonl"]
    plain = [index for path, index in unit_of.items() if path.startswith("plain/")]
    assert len(set(plain)) == len(plain) == 34  # one format: every run a unit of its own
    assert len(units) == 34 + 1


def test_runs_of_two_formats_too_far_apart_to_be_twins_are_separate_units(tmp_path: Path) -> None:
    values = np.linspace(2, 1, 30)
    write_csv(tmp_path / "a" / "x" / "metrics.csv", values, values)
    write_jsonl(tmp_path / "a" / "y" / "z" / "deeper" / "history.jsonl", values, values)  # 3 levels below a/
    write_jsonl(tmp_path / "a" / "y" / "history.jsonl", values, values)  # within 2 of a/x
    sources, _ = find_all_sources([tmp_path / "a"])
    sizes = sorted(len(unit) for unit in parallel.work_units(sources))
    assert sizes == [1, 2]


def test_batches_keep_units_whole_and_in_order() -> None:
    units: list[list[Any]] = [[("u", Path(str(i)))] * size for i, size in enumerate([1, 3, 1, 1, 2, 1])]
    made = parallel.batches(units, workers=1)
    assert [item for batch in made for item in batch] == [item for unit in units for item in unit]
    # 9 runs, 4 batches a worker: about 3 runs a batch, a unit never cut
    assert [len(batch) for batch in made] == [4, 4, 1]
    assert [len(batch) for batch in parallel.batches(units, workers=3)] == [1, 3, 1, 1, 2, 1]
    many: list[list[Any]] = [[("u", Path(str(i)))] for i in range(1000)]
    assert {len(batch) for batch in parallel.batches(many, workers=1)} == {parallel.MAX_RUNS_PER_BATCH, 1000 % 64}


def test_few_runs_are_checked_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_workers(*args: object, **kwargs: object) -> None:
        raise AssertionError("workers started for a few runs")

    monkeypatch.setattr(parallel, "check_in_workers", no_workers)
    few = SAMPLE_LOGS / "healthy"
    runs = len(api.check(few, jobs=2).runs)
    assert 0 < runs < parallel.MIN_RUNS_FOR_PROCESSES
    monkeypatch.setattr(parallel, "MIN_RUNS_FOR_PROCESSES", runs)  # near miss: exactly enough runs
    with pytest.raises(AssertionError, match="workers started"):
        api.check(few, jobs=2)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [(None, ("local", None)), ("local", ("local", None)), ("dask", ("dask", None)),
     ("dask://scheduler:8786", ("dask", "tcp://scheduler:8786"))],
)
def test_executor_specs(spec: str | None, parsed: tuple[str, str | None]) -> None:
    assert parallel.parse_executor(spec) == parsed


@pytest.mark.parametrize("spec", ["dask://", "ray://head:10001", "Dask", ""])
def test_an_unknown_executor_is_a_value_error_before_anything_is_read(spec: str) -> None:
    with pytest.raises(ValueError, match="executor must be local, dask or dask://HOST:PORT"):
        api.check(Path("does-not-exist"), executor=spec)


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_jobs_must_be_a_positive_int(jobs: Any) -> None:
    with pytest.raises(ValueError, match="jobs must be an int of at least 1"):
        api.check(SAMPLE_LOGS, jobs=jobs)


def test_the_command_line_refuses_an_unknown_executor_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rundoctor", "check", str(SAMPLE_LOGS), "--executor", "spark"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120,
    )
    assert done.returncode == 2
    assert "executor must be local, dask or dask://HOST:PORT, got 'spark'" in done.stderr


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")


def test_a_dask_cluster_gives_the_report_of_one_process(dask_scheduler: str, sweep: Path) -> None:
    one = api.check([sweep, SAMPLE_LOGS], jobs=1)
    on_cluster = api.check([sweep, SAMPLE_LOGS], jobs=2, executor=dask_scheduler)
    assert_same_reports(one, on_cluster)
