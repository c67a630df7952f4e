"""The library: load runs, diagnose them, get the report; the command line is built on this.

Three calls cover what ``rundoctor check`` does::

    runs = rundoctor.load("runs/")            # every run under runs/, and what could not be read
    report = rundoctor.diagnose(runs)          # every check, then one diagnosis per training run
    report.to_json()                           # the document ``check --format json`` prints

Arguments are plain Python values (strings, numbers, mappings) with the meaning the command
line's options and the config file's keys have; a wrong one raises ValueError with a "did
you mean", never exits.  Logs are untrusted input: what cannot be read is in
:attr:`Runs.errors`, not raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

from rundoctor.errors import UsageError
from rundoctor.findings import Severity
from rundoctor.series import ReadError, Run

if TYPE_CHECKING:
    import pandas as pd

    from rundoctor.config import Settings
    from rundoctor.globs import PathPatterns
    from rundoctor.report import Report
    from rundoctor.roles import Role

PathLike = str | os.PathLike[str]
# (done, total, path) while logs are read: what the command line draws its progress bar from.
Progress = Callable[[int, int, str], None]

# Formats ``export`` writes, and the file ending that implies each.
EXPORT_FORMATS = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
PARQUET_HINT = "Parquet needs pyarrow: pip install 'rundoctor[parquet]'"


class Runs(Sequence[Run]):
    """The runs :func:`load` found, sorted by id, and :attr:`errors`, the inputs that could not
    be read at all (a path that does not exist, a file of no known format, an unreadable log).

    A sequence of :class:`~rundoctor.series.Run`; :func:`diagnose` reports its errors beside
    the runs' findings, as ``rundoctor check`` does."""

    def __init__(self, runs: Iterable[Run], errors: Iterable[ReadError] = (), roots: Iterable[Path] = ()) -> None:
        self._runs = tuple(runs)
        self.errors: tuple[ReadError, ...] = tuple(errors)
        # The paths the runs were found under: where a run's suppression files may sit.
        self.roots: tuple[Path, ...] = tuple(roots)

    @overload
    def __getitem__(self, index: int) -> Run: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Run]: ...

    def __getitem__(self, index: int | slice) -> Run | Sequence[Run]:
        return self._runs[index]

    def __len__(self) -> int:
        return len(self._runs)

    def __repr__(self) -> str:
        return f"Runs({[run.id for run in self._runs]!r}, errors={len(self.errors)})"

    def named(self, name: str) -> Run:
        """The run whose id is ``name``, or the only one whose id ends with ``/name``; KeyError
        listing the ids otherwise."""
        exact = [run for run in self._runs if run.id == name]
        matches = exact or [run for run in self._runs if run.id.endswith("/" + name.strip("/"))]
        if len(matches) != 1:
            ids = ", ".join(run.id for run in matches or self._runs)
            raise KeyError(f"{name!r} matches {len(matches)} runs ({ids})")
        return matches[0]

    def to_pandas(self, *, wide: bool = False) -> pd.DataFrame:
        """Every run's :meth:`~rundoctor.series.Run.to_pandas` stacked, with a ``run`` column (the
        run's id) in front: the common time series ``rundoctor export`` writes."""
        import pandas as pd

        frames = [run.to_pandas(wide=wide) for run in self._runs]
        for run, frame in zip(self._runs, frames):
            frame.insert(0, "run", run.id)
        if not frames:
            return pd.DataFrame({"run": [], "step": [], "tag": [], "value": [], "wall_time": []})
        stacked = pd.concat(frames, ignore_index=True)
        stacked["run"] = pd.Categorical(stacked["run"], categories=[run.id for run in self._runs])
        if not wide:
            stacked["tag"] = stacked["tag"].astype("category")
        return stacked


def load(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    reader: str | None = None,
    roles: Mapping[str, str | Sequence[str]] | None = None,
    exclude: str | Iterable[str] | None = None,
    progress: Progress | None = None,
) -> Runs:
    """Every run under the paths (run directories, log files or trees of them), as
    ``rundoctor check`` finds and reads them.

    ``reader`` forces a reader by name instead of detecting the format (``rundoctor ls``
    shows the names).  ``roles`` assigns roles to tags, as the config's ``roles`` table:
    ``{"val_loss": "eval/my_loss"}`` or ``{"val_loss": ["a", "b*"]}`` (globs allowed).
    ``exclude``: path globs (a comma list or an iterable, as ``--exclude``) whose files and
    directories are never opened.  ``progress(done, total, path)`` is called as each log is read.  Nothing is raised for a
    log: what could not be read is in the result's :attr:`Runs.errors`.  ValueError for an
    unknown reader or role."""
    from rundoctor.discover import load_runs

    overrides, patterns = _load_options(reader, roles, exclude)
    paths = _paths(path_or_paths)
    found, errors = load_runs(paths, reader=reader, role_overrides=overrides, progress=progress, exclude=patterns)
    return Runs(found, errors, paths)


def check(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    reader: str | None = None,
    roles: Mapping[str, str | Sequence[str]] | None = None,
    exclude: str | Iterable[str] | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    executor: str | None = None,
    **options: Any,
) -> Report:
    """``diagnose(load(paths, ...), **options)``, what ``rundoctor check`` does, with the runs
    read and checked in ``jobs`` worker processes (None: every core) when there are enough
    of them to repay starting the workers (:mod:`rundoctor.parallel`), else in this process.
    Either way runs are read, diagnosed and let go a batch at a time, so memory does not grow
    with their points: the report holds summaries (:class:`~rundoctor.summary.RunSummary`);
    :func:`load` gives the runs themselves.  The report is the same, byte for byte, whatever
    ``jobs`` is.

    ``executor``: ``"local"`` (the default, processes on this machine), ``"dask"`` (a local
    Dask cluster of ``jobs`` processes) or ``"dask://HOST:PORT"`` (a Dask scheduler, whose
    workers must see the paths as this machine does); both need ``rundoctor[dask]``.
    ``reader``, ``roles``, ``exclude`` and ``progress`` are :func:`load`'s; ``options`` are
    :func:`diagnose`'s.  ValueError for a wrong argument, before anything is read."""
    from rundoctor import parallel
    from rundoctor.discover import find_all_sources

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be an int of at least 1, got {jobs!r}")
    kind, _ = parallel.parse_executor(executor)
    workers = parallel.default_jobs() if jobs is None else jobs
    overrides, patterns = _load_options(reader, roles, exclude)
    baseline = options.pop("baseline", None)
    by = options.pop("by", None)  # a sweep is taken over all runs, never per batch
    empty = diagnose((), **options, baseline=baseline)  # every option checked before any work
    paths = _paths(path_or_paths)
    with contextlib.ExitStack() as cleanup:  # standard input, read in this process only, is spooled to a file
        here = kind == "local" and workers == 1
        sources, errors = find_all_sources(paths, reader=reader, exclude=patterns, cleanup=cleanup if here else None)
        if kind == "local" and not here and len(sources) < parallel.MIN_RUNS_FOR_PROCESSES:
            # finding so few runs again (standard input included) costs less than starting workers
            here = True
            sources, errors = find_all_sources(paths, reader=reader, exclude=patterns, cleanup=cleanup)
        if here:
            report = parallel.check_here(sources, paths, errors, overrides, options, progress=progress,
                                         fail_on=empty.fail_on)
        else:
            report = parallel.check_in_workers(
                sources, paths, errors, overrides, options, jobs=workers, executor_spec=executor, progress=progress,
                fail_on=empty.fail_on,
            )
    return _with_sweep(_with_baseline(report, baseline), by)


def _load_options(
    reader: str | None, roles: Mapping[str, str | Sequence[str]] | None, exclude: str | Iterable[str] | None
) -> tuple[dict[str, Role] | None, PathPatterns | None]:
    """:func:`load`'s arguments validated: the role overrides and the exclude patterns."""
    from rundoctor.config import parse_patterns
    from rundoctor.discover import reader_names
    from rundoctor.roles import parse_overrides

    if reader is not None and reader not in reader_names():
        raise ValueError(f"reader must be one of {', '.join(reader_names())}, got {reader!r}")
    overrides = parse_overrides(_role_lists(roles)) if roles else None
    patterns = None
    if exclude is not None:
        try:
            patterns = parse_patterns([exclude] if isinstance(exclude, str) else list(exclude), "exclude")
        except UsageError as error:
            raise ValueError(str(error)) from None
    return overrides, patterns


def diagnose(
    runs: Run | Iterable[Run],
    *,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    severity: Mapping[str, str | Severity] | None = None,
    num_classes: int | None = None,
    fail_on: str | Severity | None = "error",
    per_path_ignores: Mapping[str, str | Iterable[str]] | None = None,
    suppression_files: bool = True,
    baseline: PathLike | None = None,
    config: PathLike | None = None,
    by: str | Iterable[str] | None = None,
    curves: bool = True,
) -> Report:
    """Run the checks on every run and diagnose each training run: the report ``rundoctor
    check`` renders.

    ``select`` / ``ignore``: checks by name, code or code prefix (``"N"``, ``"M00"``), a
    comma list or an iterable.  ``params``: ``{"loss-plateau": {"min_flat_fraction": 0.4}}``.
    ``severity``: a severity per check name, replacing the check's own.  ``num_classes``:
    for the checks that compare with chance (inferred from the run when not given).
    ``fail_on``: ``"error"``, ``"warning"``, ``"info"`` or ``"never"`` (None), which sets
    :attr:`Report.exit_code`.  ``per_path_ignores``: ``{"runs/bs1-*": ["loss-spikes"]}``, the
    config's table of that name.  ``suppression_files``: read the ``rundoctor.toml`` files with
    a ``reason`` in a run's directory or above it, up to the path it was loaded from (a
    :class:`Runs` remembers them), never ``config``, the project's configuration file.
    ``by``: hyper-parameter names (a comma list, an iterable, or ``"auto"``) for the sweep
    view, :attr:`Report.sweep`: which logged settings go with which diagnosis.
    ``baseline``: a file written by ``--write-baseline``; findings it holds are marked
    baselined and do not count for the exit code.  ``curves``: keep, in each run's summary,
    the curves the HTML report, ``--verbose`` sparklines and ``rundoctor plot`` draw, reduced
    for plotting (:mod:`rundoctor.summary`); False keeps a report of many runs smaller when
    it is rendered in another format.  The read errors of a :class:`Runs` are
    reported beside the findings.  ValueError, with a "did you mean", for a check, parameter or value that does
    not exist."""
    from rundoctor import roles
    from rundoctor.checks.registry import REGISTRY
    from rundoctor.engine import diagnose as run_checks
    from rundoctor.suppress import file_rules

    chosen = [runs] if isinstance(runs, Run) else list(runs)
    errors = runs.errors if isinstance(runs, Runs) else ()
    settings = settings_from(select, ignore, params, severity, num_classes, fail_on, per_path_ignores=per_path_ignores)
    if config is not None:  # where per-path-ignores came from, as suppressed findings name it
        settings = dataclasses.replace(settings, source=str(config))
    for run in chosen:
        if not run.roles:  # a run built by hand: name its tags as a reader's runs are named
            roles.assign(run)
    try:
        roots = runs.roots if isinstance(runs, Runs) and suppression_files else ()
        rules = file_rules(roots, chosen, REGISTRY, None if config is None else str(config)) if roots and chosen else []
    except UsageError as error:
        raise ValueError(str(error)) from None
    # the registry as it is now (tests swap it)
    return _with_sweep(_with_baseline(run_checks(chosen, errors, settings, REGISTRY, suppressions=rules, curves=curves), baseline), by)


def _with_sweep(report: Report, by: str | Iterable[str] | None) -> Report:
    """The report with its sweep view by ``by`` (see :func:`diagnose`), taken over all its runs."""
    if not by:
        return report
    from rundoctor.sweep import parse_by, sweep_report

    return dataclasses.replace(report, sweep=sweep_report(report, parse_by([by] if isinstance(by, str) else by)))


def _with_baseline(report: Report, baseline: PathLike | None) -> Report:
    """The report with its active findings matched against the ``baseline`` file, if any."""
    from rundoctor import baseline as baselines

    if baseline is None:
        return report
    try:
        accepted = baselines.load(Path(baseline))
    except UsageError as error:
        raise ValueError(str(error)) from None
    return dataclasses.replace(report, baseline=accepted.match(report.active_findings))


def export(runs: Iterable[Run], output: PathLike | IO[str] | IO[bytes], *, format: str | None = None) -> int:
    """Write the common time series of ``runs`` (columns ``run``, ``tag``, ``step``, ``value``,
    ``wall_time``; every point, repeats and non-finite values included) to ``output``, a path
    or an open file (text for csv and jsonl, binary for parquet).  ``format`` is ``csv``,
    ``jsonl`` or ``parquet`` (by default from the path's ending).  Returns the points written.

    Non-finite values survive every format: CSV writes ``nan``, ``inf`` and ``-inf`` (pandas
    and rundoctor read them back), JSON lines the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"`` (strict JSON; a missing wall time is ``null``), Parquet IEEE floats.
    ValueError for an unknown format; ImportError naming the extra when Parquet is asked for
    without pyarrow."""
    chosen = runs if isinstance(runs, Runs) else Runs(runs)
    if format is None:
        if not isinstance(output, (str, os.PathLike)):
            raise ValueError("give format= when writing to an open file")
        suffix = Path(output).suffix.lower()
        format = next((name for name, ending in EXPORT_FORMATS.items() if ending == suffix), None)
        if format is None:
            raise ValueError(f"cannot tell the format from {str(output)!r}: give format= ({', '.join(EXPORT_FORMATS)})")
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    if format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ImportError(PARQUET_HINT)  # before anything is read into a frame
    frame = chosen.to_pandas()[["run", "tag", "step", "value", "wall_time"]]
    if format == "parquet":
        frame.to_parquet(output, index=False)
    elif format == "csv":
        _write_text(output, lambda out: frame.to_csv(out, index=False, na_rep="nan", float_format=None))
    else:
        _write_text(output, lambda out: _write_json_lines(frame, out))
    return len(frame)


def _write_text(output: PathLike | IO[str] | IO[bytes], write: Callable[[IO[str]], Any]) -> None:
    if isinstance(output, (str, os.PathLike)):
        with open(output, "w", encoding="utf-8", newline="") as handle:
            write(handle)
    else:
        write(output)  # type: ignore[arg-type]


def _write_json_lines(frame: pd.DataFrame, out: IO[str]) -> None:
    """One strict-JSON object a point, non-finite values as the strings rundoctor's readers
    (and the Hugging Face Trainer) use; written in blocks so memory stays that of the frame."""
    columns = [frame[name].to_numpy() for name in ("run", "tag", "step", "value", "wall_time")]
    buffer = io.StringIO()
    for run, tag, step, value, wall in zip(*(column.tolist() for column in columns)):
        record = {"run": run, "tag": tag, "step": step, "value": _json_number(value),
                  "wall_time": None if math.isnan(wall) else wall}
        buffer.write(json.dumps(record, allow_nan=False, ensure_ascii=False))
        buffer.write("\n")
        if buffer.tell() > 1 << 20:
            out.write(buffer.getvalue())
            buffer = io.StringIO()
    out.write(buffer.getvalue())


def _json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _role_lists(roles: Mapping[str, str | Sequence[str]]) -> dict[str, str | list[str]]:
    return {name: tags if isinstance(tags, str) else list(tags) for name, tags in roles.items()}


def _paths(path_or_paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    return [Path(path) for path in path_or_paths]


def settings_from(
    select: str | Iterable[str] | None,
    ignore: str | Iterable[str] | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    severity: Mapping[str, str | Severity] | None,
    num_classes: int | None,
    fail_on: str | Severity | None,
    roles: Mapping[str, str | Sequence[str]] | None = None,
    *,
    per_path_ignores: Mapping[str, str | Iterable[str]] | None = None,
) -> Settings:
    """The engine's settings from :func:`diagnose`'s keyword arguments (and :func:`load`'s
    ``roles``), each validated against the registry; the config module's UsageError becomes
    ValueError (a library does not exit).  The live callbacks take the same arguments."""
    from dataclasses import replace

    from rundoctor.checks.registry import REGISTRY
    from rundoctor.config import Settings, _hint, parse_fail_on, parse_patterns, parse_selectors
    from rundoctor.roles import parse_overrides

    by_name = {check.name: check for check in REGISTRY}

    def check_named(name: str, where: str) -> str:
        if name not in by_name:
            raise ValueError(f"{where}: unknown check {name!r}{_hint(name, by_name)}")
        return name

    def selectors(value: str | Iterable[str] | None, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        return parse_selectors([value] if isinstance(value, str) else list(value), REGISTRY, where)

    try:
        chosen_fail_on = fail_on if isinstance(fail_on, Severity) or fail_on is None else parse_fail_on(fail_on)
        settings = Settings(
            fail_on=chosen_fail_on,
            select=selectors(select, "select"),
            ignore=selectors(ignore, "ignore"),
            severity={check_named(name, "severity"): Severity(level) for name, level in (severity or {}).items()},
            params={check_named(name, "params"): dict(values) for name, values in (params or {}).items()},
        )
        if per_path_ignores:
            ignores = []
            for pattern, names in per_path_ignores.items():
                where = f"per_path_ignores[{pattern!r}]"
                parse_patterns([pattern], where)
                ignores.append((pattern, selectors(names, where)))
            settings = replace(settings, per_path_ignores=tuple(ignores))
    except UsageError as error:
        raise ValueError(str(error)) from None
    for name, values in settings.params.items():
        by_name[name].make_params(values)  # ValueError with a hint on a wrong parameter
    if roles:
        settings = replace(settings, roles=parse_overrides(_role_lists(roles)))
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int of at least 2, got {num_classes!r}")
        settings = replace(settings, num_classes=num_classes, num_classes_source="given")
    return settings


__all__ = ["EXPORT_FORMATS", "Runs", "check", "diagnose", "export", "load"]
