"""The command line: parse options, read, diagnose, render, and choose the exit code.

Exit codes: 0 no finding at or above --fail-on; 1 findings at or above it (superseded findings
do not count; a run with no data counts as a warning, one too short to judge as info); 2
usage, config or unreadable input (nothing at all could be analysed); 3 internal error.  Heavy modules
(numpy, pandas, the readers and checks) are imported inside the commands so that
``rundoctor --help`` and ``--version`` start fast.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rundoctor.errors import UsageError
from rundoctor.reporters.escape import guard_line_starts, visible

if TYPE_CHECKING:
    from rundoctor.api import Runs
    from rundoctor.config import Settings
    from rundoctor.series import ReadError, Run
    from rundoctor.summary import RunSummary

# Exit codes: 0 clean, 1 findings at or above --fail-on (Report.exit_code), 2 usage, 3 internal.
EXIT_OK, EXIT_USAGE, EXIT_INTERNAL = 0, 2, 3
MIN_WIDTH = 20  # narrower than this no line holds a finding's severity and check name

app = typer.Typer(
    name="rundoctor",
    help=(
        "A doctor for deep-learning training runs: reads TensorBoard, CSV, JSON and MLflow logs, "
        "diagnoses the curves, and says what to do.\n\n"
        "Exit codes: 0 clean; 1 findings at or above --fail-on; 2 usage, config or unreadable "
        "input; 3 internal error."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_debug = False


def _version(value: bool) -> None:
    if value:
        from rundoctor import __version__

        typer.echo(f"rundoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for internal errors."),
) -> None:
    global _debug
    _debug = debug


PathsArg = typer.Argument(..., help="Run directories, log files, or trees of them.", show_default=False)
ReaderOpt = typer.Option(None, "--reader", help="Force a reader instead of detecting the format.")
RoleOpt = typer.Option([], "--role", help="Assign a role to a tag: ROLE=TAG (TAG may be a glob). Repeatable.")
# Options the commands that run checks share: which checks, with what configuration.
SelectOpt = typer.Option(
    [], "--select", help="Run only these checks: names, codes or code prefixes (N, M00), comma-separated or repeated."
)
IgnoreOpt = typer.Option(
    [], "--ignore", help="Skip these checks: names, codes or code prefixes, comma-separated or repeated."
)
ConfigOpt = typer.Option(
    None, "--config", help="Config file (default: nearest rundoctor.toml or pyproject.toml with [tool.rundoctor])."
)
NumClassesOpt = typer.Option(None, "--num-classes", min=2, help="Number of classes, for checks that compare with chance.")
ParamOpt = typer.Option([], "--param", help="Override a check parameter: CHECK.PARAM=VALUE. Repeatable.")


@app.command("ls")
def ls_command(
    paths: list[Path] = PathsArg,
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
    reader: str | None = ReaderOpt,
    role: list[str] = RoleOpt,
) -> None:
    """List the runs found under PATHS: format, tags and their roles, points, steps, read notes."""
    from rundoctor.reporters import inventory

    if format not in ("text", "json"):
        raise UsageError(f"--format for ls must be text or json, got {format!r}")
    runs, errors = _load(paths, reader, _role_overrides(role, {}))
    if format == "json":
        sys.stdout.write(inventory.render_json(runs, errors))
    else:
        sys.stdout.write(inventory.render_text(runs, errors, _render_options()))
    if not runs:
        raise typer.Exit(EXIT_USAGE)


@app.command("check")
def check_command(
    paths: list[Path] = PathsArg,
    format: str = typer.Option(
        "text", "--format", "--output-format", "-f", help="text, concise (one line per finding), json, markdown, github, junit or html."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of stdout."),
    fail_on: str | None = typer.Option(None, "--fail-on", help="error (default), warning, info or never: the lowest severity that makes the exit code 1."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="text, concise: only what fails --fail-on (findings at or above it, runs it fails unjudged), then the result line."),
    statistics: bool = typer.Option(False, "--statistics", help="text, concise: instead of the findings, how many each check made, most first."),
    verbose: bool = typer.Option(False, "--verbose", help="text: each finding in full (whole message, its own advice, sparklines), every healthy run named; concise: whole messages."),
    select: list[str] = SelectOpt,
    ignore: list[str] = IgnoreOpt,
    config: Path | None = ConfigOpt,
    role: list[str] = RoleOpt,
    num_classes: int | None = NumClassesOpt,
    param: list[str] = ParamOpt,
    reader: str | None = ReaderOpt,
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Never read files or directories matching these globs (a name, or a path as run ids print it), comma-separated or repeated; replaces the config's exclude."
    ),
    baseline: Path | None = typer.Option(None, "--baseline", help="Fail only on findings this baseline file does not hold; those it holds are reported as baselined."),
    write_baseline: Path | None = typer.Option(None, "--write-baseline", help="Write the findings of this check to FILE as the baseline that --baseline reads."),
    by: list[str] = typer.Option(
        [], "--by", help="Sweep view (text, json, html): which values of these logged hyper-parameters go with which diagnosis, as counts; names (a.b for nested keys) comma-separated or repeated, or auto for every one that differs between runs."
    ),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Read and check runs in N processes [default: every core]; 1 checks them in this process."),
    executor: str | None = typer.Option(None, "--executor", help="Where the processes run: local (default), dask (a local Dask cluster) or dask://HOST:PORT (a Dask scheduler; needs rundoctor[dask])."),
) -> None:
    """Diagnose every run under PATHS and report the findings."""
    from dataclasses import replace

    from rundoctor import baseline as baselines
    from rundoctor.api import check
    from rundoctor.config import _hint, parse_patterns
    from rundoctor.reporters import REPORTERS, TERMINAL_FORMATS, RenderOptions, draws_curves, render_chunks

    if format not in REPORTERS:
        raise UsageError(f"--format must be one of {', '.join(REPORTERS)}, got {format!r}{_hint(format, REPORTERS)}")
    chosen = [name for name, on in (("--quiet", quiet), ("--statistics", statistics), ("--verbose", verbose)) if on]
    if chosen and format not in TERMINAL_FORMATS:
        raise UsageError(f"{chosen[0]} applies to --format {' or '.join(TERMINAL_FORMATS)}, not {format}")
    sweep_by = _sweep_by(by, format, chosen)
    settings = _settings(config, fail_on, select, ignore, role, num_classes, param)
    if exclude:
        settings = replace(settings, exclude=parse_patterns(exclude, "--exclude"))
    _check_reader(reader)
    with _progress() as progress:
        try:
            report = check(
                paths, reader=reader, roles=_role_table(dict(settings.roles)), exclude=settings.exclude.patterns,
                progress=progress, jobs=jobs, executor=executor, **_diagnose_options(settings), baseline=baseline,
                by=sweep_by, curves=draws_curves(format, RenderOptions(verbose=verbose)),
            )
        except ValueError as error:  # a baseline or suppression file that is not valid, an unknown executor
            raise UsageError(str(error)) from None
        except ImportError as error:  # --executor dask without dask installed
            raise UsageError(str(error)) from None
    _check_loaded(paths, report.runs, list(report.errors), dict(settings.roles))
    if not report.runs:
        sys.stderr.write(_errors_text(list(report.errors)))
        raise typer.Exit(EXIT_USAGE)
    if write_baseline is not None:
        written = baselines.Baseline.of(report.active_findings, str(write_baseline))
        try:
            write_baseline.write_text(written.render(), encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write --write-baseline {write_baseline}: {error.strerror or error}") from None
        sys.stderr.write(f"rundoctor: wrote a baseline of {written.size:,} findings to {write_baseline}\n")
        report = replace(report, baseline=written.match(report.active_findings))
    options = _render_options() if output is None else _render_options(color=False)
    # Written as the reporter makes it (the JSON report a run at a time), never held whole.
    pieces = render_chunks(format, report, replace(options, quiet=quiet, statistics=statistics, verbose=verbose))
    if output is None:
        for piece in pieces:
            sys.stdout.write(piece)
    else:
        try:
            with output.open("w", encoding="utf-8") as handle:
                for piece in pieces:
                    handle.write(piece)
        except OSError as error:
            raise UsageError(f"cannot write --output {visible(str(output))}: {error.strerror or error}") from None
    raise typer.Exit(report.exit_code)


@app.command("export")
def export_command(
    paths: list[Path] = PathsArg,
    format: str = typer.Option("csv", "--format", "-f", help="csv, jsonl or parquet (needs rundoctor[parquet])."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout (parquet needs a file)."),
    reader: str | None = ReaderOpt,
) -> None:
    """Write the common time series of every run under PATHS: run, tag, step, value, wall_time; every point."""
    from rundoctor.api import EXPORT_FORMATS, PARQUET_HINT, export

    if format not in EXPORT_FORMATS:
        raise UsageError(f"--format for export must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    if format == "parquet" and output is None:
        raise UsageError("--format parquet writes binary: give --output FILE")
    runs, errors = _load(paths, reader, {})
    if not runs:
        sys.stderr.write(_errors_text(errors))
        raise typer.Exit(EXIT_USAGE)
    for error in errors:  # what was read is exported; what was not is said
        sys.stderr.write(f"rundoctor: {visible(error.path)}: {visible(error.reason)}\n")
    if output is None:
        export(runs, sys.stdout, format=format)
        return
    try:
        export(runs, output, format=format)
    except ImportError:
        raise UsageError(PARQUET_HINT) from None
    except OSError as error:
        raise UsageError(f"cannot write --output {output}: {error.strerror or error}") from None


def _sweep_by(by: list[str], format: str, chosen: list[str]) -> tuple[str, ...]:
    """The ``--by`` names, checked against the report it is asked of: a format that shows the
    sweep view, not narrowed by --quiet or --statistics."""
    from rundoctor.reporters import SWEEP_FORMATS
    from rundoctor.sweep import parse_by

    if not by:
        return ()
    if format not in SWEEP_FORMATS:
        raise UsageError(f"--by applies to --format {', '.join(SWEEP_FORMATS)}, not {format}")
    narrowed = [option for option in chosen if option != "--verbose"]
    if narrowed:
        raise UsageError(f"--by adds a section that {narrowed[0]} leaves out; drop one of them")
    try:
        return parse_by(by)
    except ValueError as error:
        raise UsageError(str(error)) from None


@app.command("checks")
def checks_command() -> None:
    """The check catalogue: code, name, default severity, what it needs, one line each."""
    from rundoctor.checks.registry import REGISTRY

    for check in REGISTRY:
        needs = ", ".join(
            "|".join(r.value for r in need) if isinstance(need, tuple) else need.value for need in check.needs
        ) or "-"
        typer.echo(f"{check.code}  {check.name:<26} {check.severity.value:<8} {check.title}  [needs: {needs}]")


@app.command("explain")
def explain_command(name: str = typer.Argument(..., help="Check name or code.")) -> None:
    """A check's full documentation, its parameters with defaults, and an example curve."""
    from rundoctor.checks.registry import REGISTRY
    from rundoctor.config import _hint

    check = next((c for c in REGISTRY if name.strip().lower() in (c.name, c.code.lower())), None)
    if check is None:
        names = [n for c in REGISTRY for n in (c.name, c.code)]
        raise UsageError(f"unknown check {name!r}{_hint(name, names)}; `rundoctor checks` lists them")
    typer.echo(f"{check.code} {check.name} ({check.severity.value}): {check.title}\n")
    typer.echo(check.doc.strip() + "\n")
    typer.echo("Parameters:")
    for param_name, default, help_text in check.param_docs():
        allowed = check.param_range(param_name)
        typer.echo(f"  {param_name} = {default!r}{f'  (allowed: {allowed})' if allowed else ''}\n      {help_text}")
    if check.example is not None:
        typer.echo("\n" + _example_curve(check.example, _render_options().width))


def _example_curve(example: Callable[[], tuple[Any, Any]], width: int) -> str:
    """The check's example curve as a sparkline, with its step and value range."""
    import numpy as np

    from rundoctor.reporters.sparkline import sparkline, value_range

    steps, values = (np.asarray(part) for part in example())
    scale = value_range(values.astype(np.float64))
    line = sparkline(steps, values, max(8, min(60, width - 4 - len(scale))))
    span = f"steps {int(steps.min())}..{int(steps.max())}" if steps.size else "no points"
    return f"Example: the kind of curve this check is about ({span})\n  {line.bars}  {scale}"


@app.command("plot")
def plot_command(
    path: Path = typer.Argument(..., help="A run directory or log file.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="The PNG file to write.", show_default=False),
    run: str | None = typer.Option(None, "--run", help="The run to draw when PATH holds several: its id as `rundoctor ls` prints it, or a unique end of it."),
    config: Path | None = ConfigOpt,
    role: list[str] = RoleOpt,
    reader: str | None = ReaderOpt,
) -> None:
    """Draw one run's key curves with its findings shaded, as a PNG (needs rundoctor[plot])."""
    from rundoctor import plot
    from rundoctor.api import diagnose

    try:
        plot.require_matplotlib()
    except ImportError:
        raise UsageError(plot.INSTALL_HINT) from None
    if output.suffix.lower() != ".png":
        raise UsageError(f"--output must be a .png file, got {str(output)!r}")
    settings = _settings(config, None, [], [], role, None, [])
    runs, errors = _load([path], reader, dict(settings.roles))
    if not runs:
        sys.stderr.write(_errors_text(errors))
        raise typer.Exit(EXIT_USAGE)
    try:
        chosen = plot.pick_run(runs, run)
    except ValueError as error:
        raise UsageError(str(error)) from None
    findings = diagnose(chosen, **_diagnose_options(settings)).active_findings_for(chosen.id)
    try:
        panels = plot.write_png(chosen, findings, output)
    except OSError as error:
        raise UsageError(f"cannot write --output {visible(str(output))}: {error.strerror or error}") from None
    typer.echo(f"{visible(str(output))}: {visible(chosen.id)}, {panels} plot{'s' if panels != 1 else ''}, {len(findings)} finding{'s' if len(findings) != 1 else ''}")


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the ``check --format json`` report."""
    from importlib import resources

    sys.stdout.write(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))


@app.command("watch")
def watch_command(
    path: Path = typer.Argument(..., help="A run directory, a log file, a tree of them, or a tracking server's URL (mlflow://HOST:PORT/#EXPERIMENT).", show_default=False),
    interval: float = typer.Option(5.0, "--interval", min=0.01, help="Seconds between polls."),
    exit_on: str = typer.Option("never", "--exit-on", help="error, warning, info or never: stop with exit code 1 at the first new finding at or above it."),
    timeout: float | None = typer.Option(None, "--timeout", min=0, help="Stop after S seconds (exit code 0; 2 if PATH has not appeared by then)."),
    once: bool = typer.Option(False, "--once", help="Poll once, print the findings, and exit."),
    format: str = typer.Option("text", "--format", "-f", help="text (one line a finding) or json (one JSON object a line)."),
    exec_command: str | None = typer.Option(
        None, "--exec", metavar="CMD",
        help="Run CMD once per new finding at or above --fail-on, the finding as JSON on stdin and in RUNDOCTOR_RUN, "
        "RUNDOCTOR_CHECK, RUNDOCTOR_SEVERITY and RUNDOCTOR_MESSAGE. Split like a shell command line, never run by a "
        "shell; a failing or slow command is reported and the watch goes on.",
    ),
    fail_on: str | None = typer.Option(None, "--fail-on", help="With --exec: error, warning or info, the lowest severity of a finding that runs CMD (default: the config's fail-on, else error)."),
    exec_timeout: float | None = typer.Option(None, "--exec-timeout", min=0.01, help="With --exec: seconds CMD may run before it is stopped [default: 30]."),
    select: list[str] = SelectOpt,
    ignore: list[str] = IgnoreOpt,
    config: Path | None = ConfigOpt,
    role: list[str] = RoleOpt,
    num_classes: int | None = NumClassesOpt,
    param: list[str] = ParamOpt,
    reader: str | None = ReaderOpt,
) -> None:
    """Follow runs still being written: re-check as logs grow, print each finding once, when it first appears.

    A PATH that does not exist yet is waited for."""
    from rundoctor.config import FAIL_ON_CHOICES, _hint, parse_fail_on
    from rundoctor.discover import reader_names
    from rundoctor.watch import FindingCommand, WatchOptions, watch

    if format not in ("text", "json"):
        raise UsageError(f"--format for watch must be text or json, got {format!r}")
    if exit_on.strip().lower() not in FAIL_ON_CHOICES:
        raise UsageError(f"--exit-on must be one of {', '.join(FAIL_ON_CHOICES)}{_hint(exit_on, FAIL_ON_CHOICES)}, got {exit_on!r}")
    if reader is not None and reader not in reader_names():
        raise UsageError(f"--reader must be one of {', '.join(reader_names())}, got {reader!r}")
    if exec_command is None and (fail_on is not None or exec_timeout is not None):
        raise UsageError("--fail-on and --exec-timeout choose when and how long --exec runs: give --exec CMD")
    settings = _settings(config, fail_on, select, ignore, role, num_classes, param)
    on_finding = None if exec_command is None else FindingCommand.parse(exec_command, settings.fail_on, exec_timeout)
    options = WatchOptions(interval, parse_fail_on(exit_on), timeout, once, format == "json", reader, on_finding)
    try:
        code = watch(path, settings, options, sys.stdout, sys.stderr)
    except KeyboardInterrupt:  # Ctrl-C is how a watch normally ends
        code = EXIT_OK
    raise typer.Exit(code)


def _settings(
    config: Path | None,
    fail_on: str | None,
    select: list[str],
    ignore: list[str],
    role: list[str],
    num_classes: int | None,
    param: list[str],
) -> Settings:
    """Config file first, CLI options on top; every name validated against the registry."""
    from dataclasses import replace

    from rundoctor.checks.registry import REGISTRY
    from rundoctor.config import find_config, load_settings, parse_fail_on, parse_param_options, parse_selectors

    if config is not None and not config.is_file():
        raise UsageError(f"config file not found: {visible(str(config))}")
    settings = load_settings(config or find_config(Path.cwd()), REGISTRY)
    changes: dict[str, Any] = {}
    if fail_on is not None:
        changes["fail_on"] = parse_fail_on(fail_on)
    if select:
        changes["select"] = parse_selectors(select, REGISTRY, "--select")
    if ignore:
        changes["ignore"] = parse_selectors(ignore, REGISTRY, "--ignore")
    if role:
        changes["roles"] = _role_overrides(role, settings.roles)
    if num_classes is not None:
        changes["num_classes"], changes["num_classes_source"] = num_classes, "--num-classes"
    if param:
        merged = {name: dict(values) for name, values in settings.params.items()}
        for name, values in parse_param_options(param, REGISTRY).items():
            merged.setdefault(name, {}).update(values)
        changes["params"] = merged
    return replace(settings, **changes)


def _role_overrides(pairs: list[str], base: Any) -> dict[str, Any]:
    from rundoctor.roles import parse_overrides

    overrides = dict(base)
    for pair in pairs:
        role_name, sep, tag = pair.partition("=")
        if not sep or not tag:
            raise UsageError(f"--role takes ROLE=TAG, got {pair!r}")
        try:
            overrides.update(parse_overrides({role_name: tag}))
        except ValueError as error:
            raise UsageError(f"--role: {error}") from None
    return overrides


def _load(
    paths: list[Path], reader: str | None, overrides: dict[str, Any], exclude: Sequence[str] = ()
) -> tuple[Runs, list[ReadError]]:
    """Every run under ``paths``, one per source read: one run written in two formats is two
    runs here, diagnosed once by the engine (:mod:`rundoctor.twins`).  A role override that
    names no tag of any run is warned about on stderr."""
    from rundoctor.api import load

    _check_reader(reader)
    with _progress() as progress:
        try:
            runs = load(paths, reader=reader, roles=_role_table(overrides), exclude=exclude, progress=progress)
        except ValueError as error:
            raise UsageError(str(error)) from None
    errors = list(runs.errors)
    _check_loaded(paths, runs, errors, overrides)
    return runs, errors


def _check_reader(reader: str | None) -> None:
    from rundoctor.discover import reader_names

    if reader is not None and reader not in reader_names():
        raise UsageError(f"--reader must be one of {', '.join(reader_names())}, got {reader!r}")


def _check_loaded(paths: list[Path], runs: Sequence[Run] | Sequence[RunSummary], errors: list[ReadError], overrides: dict[str, Any]) -> None:
    """Exit 2 on a mistyped path, even beside paths that exist (a CI gate given
    `artifacts/ artefacts/` must not pass on the half it found); warn about role overrides
    that match no tag."""
    from rundoctor.discover import MISSING_PATH
    from rundoctor.readers.remote import url_of

    given = {url_of(path) or str(path) for path in paths}  # a URL as errors name it (s3://, not s3:/)
    missing = [error.path for error in errors if error.reason == MISSING_PATH and error.path in given]
    if missing:
        raise UsageError(f"{MISSING_PATH}: " + ", ".join(map(visible, missing)))
    if runs:
        _warn_unmatched_roles(overrides, runs)


def _warn_unmatched_roles(overrides: dict[str, Any], runs: Sequence[Run] | Sequence[RunSummary]) -> None:
    """A warning, not an error: a config's roles table may name the tags of several loggers,
    and a tree that holds runs of only one of them is no mistake; a typo is, and shows here."""
    from rundoctor.config import _hint
    from rundoctor.roles import unmatched_overrides

    tags = sorted({tag for run in runs for tag in (*run.tag_names, *_histogram_tags(run))})
    for pattern in unmatched_overrides(overrides, tags):
        sys.stderr.write(
            f"rundoctor: warning: role override {overrides[pattern].value}={pattern} matches no tag "
            f"in the {len(runs):,} run{'s' if len(runs) != 1 else ''} read{_hint(pattern, tags)}\n"
        )


def _histogram_tags(run: Run | RunSummary) -> list[str]:
    from rundoctor.series import Run

    return list(run.histograms if isinstance(run, Run) else run.histogram_counts)


def _role_table(overrides: dict[str, Any]) -> dict[str, list[str]]:
    """``{pattern: Role}`` as the library takes roles: role name -> tag patterns."""
    table: dict[str, list[str]] = {}
    for pattern, role in overrides.items():
        table.setdefault(role.value, []).append(pattern)
    return table


def _diagnose_options(settings: Settings) -> dict[str, Any]:
    """The settings (config file and options) as the library's ``diagnose`` takes them."""
    return {
        "select": settings.select, "ignore": settings.ignore, "params": settings.params,
        "severity": settings.severity, "num_classes": settings.num_classes, "fail_on": settings.fail_on,
        "per_path_ignores": dict(settings.per_path_ignores), "config": settings.source,
    }


class _progress:
    """A progress bar on stderr while reading many logs; silent when stderr is not a terminal."""

    def __enter__(self) -> Any:
        self._bar: Any = None
        if not sys.stderr.isatty():
            return None
        from rich.progress import Progress

        self._bar = Progress(transient=True, console=_console(stderr=True))
        self._task = self._bar.add_task("reading logs", total=None)
        self._bar.start()
        return self._update

    def _update(self, done: int, total: int, path: str) -> None:
        self._bar.update(self._task, completed=done, total=total, description=f"reading {visible(Path(path).name) or 'logs'}"[:60])

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, no_color="NO_COLOR" in os.environ)


def _render_options(color: bool | None = None) -> Any:
    """Colour only on a terminal and without NO_COLOR; the width is COLUMNS when set (in a pipe
    too), else the terminal's, else 80; file paths of annotations relative to
    $GITHUB_WORKSPACE, else the working directory."""
    from rundoctor.reporters import RenderOptions

    tty = sys.stdout.isatty()
    use_color = tty and "NO_COLOR" not in os.environ if color is None else color
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    else:
        width = shutil.get_terminal_size().columns if tty else 80
    cwd = os.getcwd()
    workspace = os.path.abspath(os.environ.get("GITHUB_WORKSPACE") or cwd)
    return RenderOptions(width=max(MIN_WIDTH, width), color=use_color, workspace=workspace, cwd=cwd)


def _errors_text(errors: list[ReadError]) -> str:
    lines = ["rundoctor: nothing could be analysed"]
    lines += [f"  {error.path}: {error.reason}" for error in errors]
    return _neutral(lines)


def _neutral(lines: list[str]) -> str:
    """Lines for stderr, which a CI runner reads as it reads stdout: each neutralised (a path or
    tag in it holds no line break or control character) and none starting as a workflow command."""
    return guard_line_starts("".join(visible(line) + "\n" for line in lines))


def main() -> None:
    """Entry point: maps usage errors to exit 2 and unexpected exceptions to exit 3."""
    # rundoctor's arrays are curves and histograms, far too small for a threaded BLAS; the
    # thread pool OpenBLAS starts with numpy only spins (~0.07 s of CPU a command, and a
    # pool per --jobs worker competing for the same cores).  Set before numpy is imported;
    # a user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app(standalone_mode=True)
    except UsageError as error:
        # Line breaks in the message are ours (a list of runs); the names in it are neutralised.
        sys.stderr.write(_neutral(f"rundoctor: {error}".split("\n")))
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.stderr.write("rundoctor: interrupted\n")
        sys.exit(130)
    except Exception as error:  # an uncaught exception must never look like "findings"
        if _debug:
            import traceback

            traceback.print_exc()
            sys.exit(EXIT_INTERNAL)
        sys.stderr.write(
            f"rundoctor: internal error: {type(error).__name__}: {visible(str(error))}\n"
            "This is a bug; rerun with --debug for the traceback.\n"
        )
        sys.exit(EXIT_INTERNAL)
