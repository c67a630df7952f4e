"""Read and check runs a few at a time, in this process, in worker processes or on a Dask
cluster: ``rundoctor check --jobs N``.

The work is cut into *units* that can be read, checked and diagnosed apart from each other:
one run, or the runs that may be one run written in several formats (:mod:`rundoctor.twins`
diagnoses such twins as one group, from the findings of all its formats).  Which runs may be
twins is known before anything is read: twins lie near each other in the tree and are of
different formats, both facts of the sources; a unit holds every run of such a candidate pair,
so a twin group never spans two units.  A unit goes to a worker as paths (the sources and the
path each was found under), never as runs: the worker reads them itself, runs
:func:`rundoctor.api.diagnose` on them, and sends back the report of its runs.  The parent
merges those reports; since :class:`~rundoctor.report.Report` orders everything it holds
(runs by id, findings by run, severity and step, diagnoses by run), the merged report is the
one the runs read in one process make, byte for byte in every format.

Units are sent in batches of consecutive units, a few per worker, so that a sweep of 10,000
small runs is not 10,000 round trips; a batch is diagnosed in one call, which is correct for
any set of whole units.  Results come back in the order the batches were sent, so progress
and read errors keep the order of the sources.

Memory does not grow with the number of runs' points: a batch's runs are read, diagnosed and
let go before the next batch is read, and what comes back is the batch's report, which holds
each run's summary (:mod:`rundoctor.summary`), never its points.  ``--jobs 1`` goes the same
way in this process (:func:`check_here`), one batch after another.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rundoctor.readers.base import RunSource
from rundoctor.series import ReadError, Run

if TYPE_CHECKING:
    from rundoctor.checks.base import Check
    from rundoctor.findings import Severity
    from rundoctor.report import Report
    from rundoctor.roles import Role

# Below this many runs, `--jobs` stays in the calling process.  Measured on the 2-core test
# machine: a spawned worker (a fresh interpreter importing numpy, the readers and the checks)
# costs 0.42-0.50 s of CPU before its first run, and checking a small run (16 tags, 3,200
# points) about 26 ms; two workers' start-up is the cost of checking some 35 such runs here.
MIN_RUNS_FOR_PROCESSES = 32
# Batches per worker: enough that a slow batch does not leave the other workers idle at the
# end, few enough that the round trips stay negligible next to the reading.
BATCHES_PER_WORKER = 4
# A batch's runs are all in memory (in the worker, or in this process) until it is diagnosed.
MAX_RUNS_PER_BATCH = 64

Located = tuple[RunSource, Path]  # a run to read and the path it was found under
# Apply a function to every item, results in the items' order: the one thing an executor does.
MapInOrder = Callable[[Callable[["Batch"], "BatchResult"], Sequence["Batch"]], Iterator["BatchResult"]]


@dataclass(frozen=True)
class Batch:
    """What a worker needs to read, check and diagnose some whole units: their sources, how
    to assign roles, and :func:`rundoctor.api.diagnose`'s options (its baseline excepted:
    the parent matches the merged report against it)."""

    sources: tuple[Located, ...]
    roots: tuple[Path, ...]  # every path given, in order: where suppression files are looked for
    role_overrides: Mapping[str, Role] | None
    options: Mapping[str, Any]
    registry: tuple[Check[Any], ...]


@dataclass(frozen=True)
class BatchResult:
    """A batch's report (its runs, findings, outcomes, diagnoses, suppressed findings) and
    the sources that could not be read, in source order."""

    report: Report
    errors: tuple[ReadError, ...]
    sources: int


def work_units(sources: Sequence[Located]) -> list[list[Located]]:
    """The sources cut into units no twin group spans, in source order (a unit is placed
    where its first source is).  Two sources share a unit when :mod:`rundoctor.twins` would
    compare them at all (near in the tree, of different formats), whatever their data."""
    from rundoctor import twins

    # What twins reads of a run to find candidates, known before reading: its format (the
    # reader's name), its path, and whether it is one file.  A reader may list more files of
    # its run once read (Lightning's hparams.yaml beside metrics.csv); the run then stands for
    # its file's path, a directory deeper than its folder, so its candidates are a subset of
    # these and units stay whole.
    placeholders = [
        Run("", str(source.path), source.reader, [str(source.files[0][0])] if _one_file(source) else [], [],
            np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0), np.empty(0))
        for source, _ in sources
    ]
    parent = list(range(len(sources)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for i, j in twins._candidate_pairs(placeholders):  # the pairs the diagnosis would compare
        parent[max(root(i), root(j))] = min(root(i), root(j))
    units: dict[int, list[Located]] = {}
    for index, located in enumerate(sources):
        units.setdefault(root(index), []).append(located)
    return list(units.values())


def _one_file(source: RunSource) -> bool:
    return source.url is None and len(source.files) == 1 and source.files[0][0] == source.path


def batches(units: Sequence[Sequence[Located]], workers: int) -> list[tuple[Located, ...]]:
    """Consecutive units joined into batches of about the same number of runs."""
    total = sum(len(unit) for unit in units)
    size = max(1, min(MAX_RUNS_PER_BATCH, -(-total // max(1, workers * BATCHES_PER_WORKER))))
    made: list[tuple[Located, ...]] = []
    current: list[Located] = []
    for unit in units:
        current.extend(unit)
        if len(current) >= size:
            made.append(tuple(current))
            current = []
    if current:
        made.append(tuple(current))
    return made


def check_batch(batch: Batch) -> BatchResult:
    """Read a batch's sources and diagnose them: what a worker runs (a module-level function,
    so that it is sent to workers by name)."""
    from rundoctor.api import Runs, diagnose
    from rundoctor.checks import registry
    from rundoctor.discover import read_runs

    overrides = dict(batch.role_overrides) if batch.role_overrides else None
    runs, errors = read_runs(batch.sources, overrides)
    # api.diagnose reads the registry as it is in this process: the parent's (tests swap it)
    registry.REGISTRY = batch.registry
    report = diagnose(Runs(runs, (), batch.roots), **batch.options)
    return BatchResult(report, tuple(errors), len(batch.sources))


def merge(results: Sequence[BatchResult], errors: Sequence[ReadError], fail_on: Severity | None) -> Report:
    """One report from the batches' reports, with the errors of discovery before theirs."""
    from rundoctor.report import Outcomes, Report

    reports = [result.report for result in results]
    return Report(
        runs=tuple(run for report in reports for run in report.runs),
        findings=tuple(finding for report in reports for finding in report.findings),
        outcomes=Outcomes.joined(report.outcomes for report in reports),
        errors=(*errors, *(error for result in results for error in result.errors)),
        fail_on=fail_on,
        diagnoses=tuple(diagnosis for report in reports for diagnosis in report.diagnoses or ()),
        suppressed=tuple(suppressed for report in reports for suppressed in report.suppressed),
    )


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def parse_executor(spec: str | None) -> tuple[str, str | None]:
    """``local`` (None too), ``dask`` (a local Dask cluster) or ``dask://HOST:PORT`` (a
    scheduler's address) as (kind, address); ValueError for anything else."""
    if spec is None or spec == "local":
        return "local", None
    if spec == "dask":
        return "dask", None
    if spec.startswith("dask://") and len(spec) > len("dask://"):
        return "dask", "tcp://" + spec[len("dask://") :]
    raise ValueError(f"executor must be local, dask or dask://HOST:PORT, got {spec!r}")


@contextlib.contextmanager
def executor(spec: str | None, jobs: int) -> Iterator[MapInOrder]:
    """A map over batches in ``jobs`` worker processes, or on the Dask cluster ``spec`` names."""
    kind, address = parse_executor(spec)
    if kind == "dask":
        with _dask(address, jobs) as mapped:
            yield mapped
        return
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter, the same on every platform; fork would copy the parent's
    # threads and locks (a progress bar's, a server client's) into the workers.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda function, items: pool.map(function, items)


@contextlib.contextmanager
def _dask(address: str | None, jobs: int) -> Iterator[MapInOrder]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("the dask executor needs dask.distributed: pip install 'rundoctor[dask]'") from None
    with contextlib.ExitStack() as stack:
        if address is None:
            cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True))  # type: ignore[no-untyped-call]
            address = cluster.scheduler_address
        client = stack.enter_context(Client(address))  # type: ignore[no-untyped-call]

        def mapped(function: Callable[[Batch], BatchResult], items: Sequence[Batch]) -> Iterator[BatchResult]:
            futures = client.map(function, items, pure=False)
            for future in futures:
                yield future.result()

        yield mapped


def check_in_workers(
    sources: Sequence[Located],
    roots: Sequence[Path],
    errors: Sequence[ReadError],
    role_overrides: Mapping[str, Role] | None,
    options: Mapping[str, Any],
    *,
    jobs: int,
    executor_spec: str | None,
    progress: Callable[[int, int, str], None] | None,
    fail_on: Severity | None,
) -> Report:
    """The report of every source, read and diagnosed in workers; baseline not applied."""
    with executor(executor_spec, jobs) as map_in_order:
        work = _work(sources, roots, role_overrides, options, jobs)
        return merge(_in_order(map_in_order, work, len(sources), progress), errors, fail_on)


def check_here(
    sources: Sequence[Located],
    roots: Sequence[Path],
    errors: Sequence[ReadError],
    role_overrides: Mapping[str, Role] | None,
    options: Mapping[str, Any],
    *,
    progress: Callable[[int, int, str], None] | None,
    fail_on: Severity | None,
) -> Report:
    """The report of every source, read and diagnosed in this process one batch after
    another, each batch's runs let go before the next is read; baseline not applied."""
    work = _work(sources, roots, role_overrides, options, 1)
    return merge(_in_order(map, work, len(sources), progress), errors, fail_on)


def _work(
    sources: Sequence[Located], roots: Sequence[Path], role_overrides: Mapping[str, Role] | None,
    options: Mapping[str, Any], workers: int,
) -> list[Batch]:
    from rundoctor.checks import registry

    made = batches(work_units(sources), workers)
    return [Batch(batch, tuple(roots), role_overrides, options, tuple(registry.REGISTRY)) for batch in made]


def _in_order(
    map_in_order: MapInOrder, work: Sequence[Batch], total: int, progress: Callable[[int, int, str], None] | None
) -> list[BatchResult]:
    """Every batch's result, in the order of the batches, with progress as each comes back."""
    results: list[BatchResult] = []
    done = 0
    for batch, result in zip(work, map_in_order(check_batch, work)):
        results.append(result)
        done += result.sources
        if progress is not None:
            progress(done, total, batch.sources[-1][0].label)
    if progress is not None:
        progress(total, total, "")
    return results


__all__ = ["MIN_RUNS_FOR_PROCESSES", "check_here", "check_in_workers", "default_jobs", "parse_executor", "work_units"]

