"""The command line, one test per exit-code path, against a test-only check registry.

Runs come from the curve builders through a stand-in loader (names in ``RUNS``), so these
tests depend neither on the readers nor on the real checks; paths that are not in ``RUNS``
go through real discovery (missing paths, empty directories).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rundoctor import __version__, cli, discover, engine, roles
from rundoctor.checks.base import Check, RunContext
from rundoctor.findings import Finding, Severity
from rundoctor.readers.base import RunSource
from rundoctor.roles import Role
from rundoctor.series import Run
from tests.conftest import CliResult, run_cli
from tests.curves import decay, make_run, steps, with_nan
from tests.reporters.reports import written

ESC = "\x1b["


@dataclass(frozen=True)
class CeilingParams:
    max_loss: float = field(default=5.0, metadata={"help": "the largest acceptable training loss"})


def _detect_ceiling(check: Check[CeilingParams], ctx: RunContext, params: CeilingParams) -> Iterator[Finding]:
    for tag in ctx.tags(Role.TRAIN_LOSS):
        curve = ctx.curve(tag)
        above = ~(curve.values <= params.max_loss)  # NaN is above every ceiling
        if above.any():
            hit = curve.steps[above]
            yield check.finding(
                ctx, tags=[tag], steps=(hit[0], hit[-1]),
                message=f"{tag} is above {params.max_loss} at {int(above.sum())} points",
                evidence={"points": int(above.sum()), "max_loss": params.max_loss},
            )


@dataclass(frozen=True)
class NoParams:
    pass


CEILING = Check(
    code="T001", name="loss-ceiling", title="Training loss above a ceiling", severity=Severity.ERROR,
    needs=(Role.TRAIN_LOSS,), params=CeilingParams, advice="Lower the learning rate.",
    detect=_detect_ceiling, doc="What it detects: a training loss above max_loss, or NaN.",
    example=lambda: (steps(50), with_nan(decay(50), 40)),
)
NEEDS_ACCURACY = Check(
    code="T002", name="accuracy-gap", title="Needs a validation accuracy", severity=Severity.WARNING,
    needs=(Role.VAL_ACCURACY,), params=NoParams, advice="", detect=lambda check, ctx, params: iter(()),
    doc="What it detects: nothing; it is always skipped here.",
)
REGISTRY = (CEILING, NEEDS_ACCURACY)

def _twins() -> tuple[Run, Run]:
    """One run written twice beside each other: event files and a CSV with equal values."""
    loss = with_nan(decay(100, start=9.0), 60)
    events = written("twins", "tensorboard", ["twins/events.out.tfevents.1"], {"train/loss": (steps(100), loss)})
    csv = written("twins/log.csv", "wide-csv", ["twins/log.csv"], {"train/loss": (steps(100), loss.round(5))})
    return events, csv


RUNS: dict[str, Callable[[], Run | tuple[Run, ...]]] = {
    "healthy": lambda: make_run({"train/loss": (steps(100), decay(100))}, run_id="healthy"),
    "nan": lambda: make_run({"train/loss": (steps(100), with_nan(decay(100), 60))}, run_id="nan"),
    "high": lambda: make_run({"train/loss": (steps(100), decay(100, start=10.0))}, run_id="high"),
    "nodata": lambda: make_run({}, run_id="nodata"),
    "short": lambda: make_run({"train/loss": (steps(3), decay(3))}, run_id="short"),
    "twins": _twins,
}


Invoke = Callable[..., CliResult]


@pytest.fixture
def rundoctor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Invoke:
    """Run the command line in-process as ``main()`` does, with the test registry and runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    # The CLI hands the engine the registry it finds at call time: ours.
    monkeypatch.setattr("rundoctor.checks.registry.REGISTRY", REGISTRY)
    # The paths RUNS names are found as sources of the runs' own formats and paths (so that
    # work units keep twins together) and read as those runs; other paths as ever.
    real_find, real_read = discover.find_all_sources, discover.read_run
    made: dict[str, Run] = {}

    def find_all_sources(paths: list[Path], **options: Any) -> Any:
        others = [path for path in paths if str(path) not in RUNS]
        sources, errors = real_find(others, **options) if others else ([], [])
        for path in (path for path in paths if str(path) in RUNS):
            item = RUNS[str(path)]()
            for index, run in enumerate(item if isinstance(item, tuple) else (item,)):
                made[f"{path}#{index}"] = run
                sources.append((RunSource(run.format, Path(run.path), [], name=f"{path}#{index}"), path))
        return sources, errors

    def read_run(source: RunSource, root: Path, role_overrides: Any = None) -> Any:
        if source.name in made:
            return roles.assign(made[source.name], role_overrides)
        return real_read(source, root, role_overrides)

    monkeypatch.setattr(discover, "find_all_sources", find_all_sources)
    monkeypatch.setattr(discover, "read_run", read_run)

    def invoke(*args: str) -> CliResult:
        return run_cli(monkeypatch, capsys, *args)

    return invoke


# Exit 0 and 1 ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("options", "curves"),
    [(("--format", "json"), False), (("--format", "html"), True), (("--verbose",), True), ((), False),
     (("--format", "concise", "--verbose"), False)],
)
def test_the_report_keeps_curves_only_for_the_formats_that_draw_them(
    rundoctor: Invoke, monkeypatch: pytest.MonkeyPatch, options: tuple[str, ...], curves: bool
) -> None:
    from rundoctor import api

    asked: list[bool] = []
    real_check = api.check

    def check(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["curves"])
        return real_check(*args, **kwargs)

    monkeypatch.setattr(api, "check", check)
    assert rundoctor("check", "healthy", *options).code == 0
    assert asked == [curves]


def test_healthy_input_exits_0(rundoctor: Invoke) -> None:
    result = rundoctor("check", "healthy")
    assert result.code == 0
    assert result.out.startswith("HEALTHY    healthy\n           no findings from 1 check\n")
    assert "1 check skipped for missing series" in result.out


def test_a_finding_at_or_above_fail_on_exits_1(rundoctor: Invoke) -> None:
    result = rundoctor("check", "nan", "healthy")
    assert result.code == 1
    assert "  error    T001 loss-ceiling  steps 60..99" in result.out
    assert "Result: 1 finding at or above error (exit 1)" in result.out


def test_fail_on_never_exits_0_with_the_same_findings(rundoctor: Invoke) -> None:
    result = rundoctor("check", "nan", "--fail-on", "never")
    assert result.code == 0
    assert "T001 loss-ceiling" in result.out


def test_fail_on_decides_which_severities_fail(rundoctor: Invoke, tmp_path: Path) -> None:
    (tmp_path / "rundoctor.toml").write_text('[checks.loss-ceiling]\nseverity = "warning"\n')
    assert rundoctor("check", "nan").code == 0
    assert rundoctor("check", "nan", "--fail-on", "warning").code == 1


def test_a_config_file_found_by_walking_up_changes_a_threshold(
    rundoctor: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rundoctor("check", "high").code == 1
    (tmp_path / "rundoctor.toml").write_text("[checks.loss-ceiling]\nmax_loss = 50.0\n")
    nested = tmp_path / "project" / "sub"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    result = rundoctor("check", "high")
    assert result.code == 0 and "no findings" in result.out


def test_a_param_option_overrides_the_config(rundoctor: Invoke, tmp_path: Path) -> None:
    (tmp_path / "rundoctor.toml").write_text("[checks.loss-ceiling]\nmax_loss = 50.0\n")
    assert rundoctor("check", "high", "--param", "loss-ceiling.max_loss=2").code == 1


def test_output_writes_the_report_to_a_file(rundoctor: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = rundoctor("check", "nan", "--format", "json", "--output", str(target))
    assert result.code == 1 and result.out == ""
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["summary"]["exit_code"] == 1
    assert [f["code"] for f in document["findings"]] == ["T001"]


def test_an_output_that_cannot_be_written_exits_2(rundoctor: Invoke, tmp_path: Path) -> None:
    result = rundoctor("check", "nan", "--output", str(tmp_path / "no" / "such" / "dir" / "report.txt"))
    assert result.code == 2
    assert "cannot write --output" in result.err and "No such file or directory" in result.err


def test_json_on_stdout_is_only_json_and_matches_the_schema(rundoctor: Invoke, tmp_path: Path) -> None:
    (tmp_path / "empty-dir").mkdir()
    result = rundoctor("check", "nan", "healthy", "empty-dir", "--format", "json")
    document = json.loads(result.out)
    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["errors"] == [
        {"path": "empty-dir", "reason": "no training logs found (no event files, CSV, JSON or MLflow runs)"}
    ]
    statuses = sorted((o["run"], o["check"], o["status"]) for o in document["checks"])
    assert statuses == [
        ("healthy", "accuracy-gap", "skipped"), ("healthy", "loss-ceiling", "ran"),
        ("nan", "accuracy-gap", "skipped"), ("nan", "loss-ceiling", "ran"),
    ]


@pytest.mark.parametrize("format", ["markdown", "github", "junit"])
def test_every_format_renders_and_keeps_the_exit_code(rundoctor: Invoke, format: str) -> None:
    result = rundoctor("check", "nan", "--format", format)
    assert result.code == 1
    assert "loss-ceiling" in result.out


# Colour ---------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(rundoctor: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ESC not in rundoctor("check", "nan").out  # captured stdout is a pipe
    monkeypatch.setattr(os, "get_terminal_size", lambda *args: os.terminal_size((100, 30)))
    for no_color, expect_colour in ((None, True), ("1", False)):
        if no_color is None:
            monkeypatch.delenv("NO_COLOR", raising=False)
        else:
            monkeypatch.setenv("NO_COLOR", no_color)
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stdout", terminal)
        rundoctor("check", "nan")
        assert (ESC in terminal.getvalue()) is expect_colour


# Exit 2 ---------------------------------------------------------------------------------

def test_unknown_format_exits_2_with_a_hint(rundoctor: Invoke) -> None:
    result = rundoctor("check", "nan", "--format", "jsno")
    assert result.code == 2 and result.out == ""
    assert "--format must be one of text, json, markdown, github, junit" in result.err
    assert "did you mean 'json'?" in result.err


def test_unknown_select_exits_2_with_did_you_mean(rundoctor: Invoke) -> None:
    result = rundoctor("check", "nan", "--select", "loss-cieling")
    assert result.code == 2
    assert "--select: unknown check 'loss-cieling' (did you mean 'loss-ceiling'?)" in result.err


def test_select_by_code_and_ignore(rundoctor: Invoke) -> None:
    assert rundoctor("check", "nan", "--select", "T001").code == 1
    assert rundoctor("check", "nan", "--ignore", "loss-ceiling").code == 0


@pytest.mark.parametrize(("config", "code"), [
    ('select = ["T001"]\n', 1), ('select = ["accuracy-gap"]\n', 0), ('ignore = ["loss-ceiling"]\n', 0),
])
def test_select_and_ignore_in_the_config(rundoctor: Invoke, tmp_path: Path, config: str, code: int) -> None:
    (tmp_path / "rundoctor.toml").write_text(config)
    assert rundoctor("check", "nan").code == code


def test_a_missing_path_exits_2_and_says_why(rundoctor: Invoke) -> None:
    result = rundoctor("check", "no/such/run")
    assert result.code == 2
    assert "no such file or directory: no/such/run" in result.err


def test_a_missing_path_beside_readable_ones_is_still_a_usage_error(rundoctor: Invoke) -> None:
    # a CI gate given a mistyped directory must not pass on the runs it did find
    result = rundoctor("check", "healthy", "artefacts", "--fail-on", "never")
    assert result.code == 2 and result.out == ""
    assert "no such file or directory: artefacts" in result.err


def test_an_empty_directory_exits_2(rundoctor: Invoke, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = rundoctor("check", "empty")
    assert result.code == 2
    assert "empty: no training logs found" in result.err


def test_no_paths_is_a_usage_error(rundoctor: Invoke) -> None:
    assert rundoctor("check").code == 2


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('fail_on = "warning"\n', "unknown key 'fail_on' (did you mean 'fail-on'?)"),
        ("fail-on = 3\n", "fail-on must be a str, got 3"),
        ('[checks.loss-ceiling]\nmax_loss = "high"\n', "parameter 'max_loss' must be float"),
        ("[checks.loss-cieling]\nmax_loss = 1.0\n", "unknown check 'loss-cieling' (did you mean 'loss-ceiling'?)"),
    ],
)
def test_a_bad_config_exits_2_and_names_the_problem(
    rundoctor: Invoke, tmp_path: Path, config: str, expected: str
) -> None:
    (tmp_path / "rundoctor.toml").write_text(config)
    result = rundoctor("check", "healthy")
    assert result.code == 2
    assert expected in result.err


# Exit 3 ---------------------------------------------------------------------------------

def test_an_internal_error_exits_3_without_a_traceback(rundoctor: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(engine, "diagnose", broken)
    result = rundoctor("check", "nan")
    assert result.code == 3
    assert "internal error: RuntimeError: kaboom" in result.err
    assert "Traceback" not in result.err and result.out == ""
    debug = rundoctor("--debug", "check", "nan")
    assert debug.code == 3
    assert "Traceback" in debug.err and "RuntimeError: kaboom" in debug.err


def test_a_check_that_raises_is_reported_not_an_internal_error(
    rundoctor: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(check: Any, ctx: Any, params: Any) -> Iterator[Finding]:
        raise ValueError("bad curve")

    exploding = dataclasses.replace(CEILING, detect=explode)
    monkeypatch.setattr("rundoctor.checks.registry.REGISTRY", (exploding,))
    result = rundoctor("check", "nan")
    assert result.code == 0
    assert "T001 loss-ceiling on nan: ValueError: bad curve" in result.out


def test_a_bug_resolving_the_number_of_classes_is_an_error_outcome_not_exit_3(
    rundoctor: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("num_classes")

    monkeypatch.setattr(engine, "resolve_num_classes", broken)
    result = rundoctor("check", "nan", "--format", "json")
    assert result.code == 0, result.err
    outcomes = json.loads(result.out)["checks"]
    ran = [o for o in outcomes if o["status"] != "skipped"]
    assert [o["status"] for o in ran] == ["error"]
    assert "resolving the number of classes raised KeyError" in ran[0]["reason"]


@pytest.mark.parametrize("run, fail_on, code", [
    ("nodata", "error", 0), ("nodata", "warning", 1), ("short", "warning", 0), ("short", "info", 1),
])
def test_runs_that_cannot_be_judged_fail_at_their_verdict_level(rundoctor: Invoke, run: str, fail_on: str, code: int) -> None:
    result = rundoctor("check", run, "--fail-on", fail_on)
    assert result.code == code
    assert result.out.startswith(f"{'NO DATA' if run == 'nodata' else 'TOO SHORT':<9}  {run}\n")


# The other commands ---------------------------------------------------------------------

def test_checks_lists_the_catalogue(rundoctor: Invoke) -> None:
    result = rundoctor("checks")
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("T001  loss-ceiling") and "error" in lines[0] and "[needs: train_loss]" in lines[0]
    assert lines[1].startswith("T002  accuracy-gap") and "[needs: val_accuracy]" in lines[1]


def test_explain_shows_docs_params_and_the_example_curve(rundoctor: Invoke) -> None:
    result = rundoctor("explain", "loss-ceiling")
    assert result.code == 0
    assert result.out.startswith("T001 loss-ceiling (error): Training loss above a ceiling\n")
    assert "max_loss = 5.0  (allowed: >= 0)\n      the largest acceptable training loss" in result.out
    example = result.out.split("Example: the kind of curve this check is about (steps 0..49)\n")[1].splitlines()[0]
    assert example.strip().startswith("█") and "×" * 10 in example
    assert rundoctor("explain", "T001").out == result.out == rundoctor("explain", "t001").out == rundoctor("explain", "Loss-Ceiling").out


def test_explain_without_an_example_draws_nothing(rundoctor: Invoke) -> None:
    result = rundoctor("explain", "accuracy-gap")
    assert result.code == 0 and "Example" not in result.out


def test_explain_an_unknown_check_exits_2_with_a_hint(rundoctor: Invoke) -> None:
    result = rundoctor("explain", "loss-cieling")
    assert result.code == 2
    assert "unknown check 'loss-cieling' (did you mean 'loss-ceiling'?)" in result.err


def test_schema_prints_the_shipped_json_schema(rundoctor: Invoke) -> None:
    result = rundoctor("schema")
    assert result.code == 0
    schema = json.loads(result.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "rundoctor check report"


def test_version(rundoctor: Invoke) -> None:
    assert rundoctor("--version").out == f"rundoctor {__version__}\n"


# Real processes: the pipe and the terminal as a user's shell sets them up -------------------

def write_healthy_csv(directory: Path) -> Path:
    log = directory / "metrics.csv"
    loss = decay(200)
    log.write_text("step,train_loss\n" + "".join(f"{i},{value:.6f}\n" for i, value in enumerate(loss)))
    return log


def test_a_piped_report_has_no_escape_codes(tmp_path: Path) -> None:
    log = write_healthy_csv(tmp_path)
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "rundoctor", "check", str(log)],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith("  metrics.csv")  # the real checks decide the verdict
    assert "Result: no findings at or above error (exit 0)" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_a_terminal_gets_colour_unless_no_color_is_set(tmp_path: Path, no_color: str | None, coloured: bool) -> None:
    log = write_healthy_csv(tmp_path)
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    if no_color is not None:
        env["NO_COLOR"] = no_color
    code, out = run_in_terminal([sys.executable, "-m", "rundoctor", "check", str(log)], env, tmp_path)
    assert code == 0
    assert "metrics.csv" in out and "Result:" in out
    assert (ESC in out) is coloured


def run_in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal of 100 columns; the exit code and what it printed."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while select.select([master], [], [], 120)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        process.wait(timeout=120)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_python_dash_m_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rundoctor", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout == f"rundoctor {__version__}\n"


# One run written in two formats --------------------------------------------------------------

def test_two_formats_of_one_run_are_two_json_entries_with_one_diagnosis(rundoctor: Invoke) -> None:
    result = rundoctor("check", "twins", "--format", "json")
    assert result.code == 1
    document = json.loads(result.out)
    assert [(run["id"], run["format"]) for run in document["runs"]] == [("twins", "tensorboard"),
                                                                        ("twins/log.csv", "wide-csv")]
    events, csv = (run["diagnosis"] for run in document["runs"])
    assert events == csv and events["members"] == ["twins", "twins/log.csv"]
    assert events["sources"] == ["twins/events.out.tfevents.1", "twins/log.csv"]
    assert [f["run"] for f in document["findings"]] == ["twins", "twins/log.csv"]
    assert document["summary"]["runs"] == 1 and document["summary"]["findings_by_severity"]["error"] == 2


def test_two_formats_of_one_run_are_printed_once(rundoctor: Invoke) -> None:
    result = rundoctor("check", "twins", "healthy")
    assert result.code == 1
    assert result.out.count("T001 loss-ceiling") == 1
    assert "also written as log.csv (wide-csv)" in result.out
    assert "(also in wide-csv)" in result.out
    assert "2 runs: 1 serious, 1 healthy; 1 error" in result.out
    assert "Result: 1 finding at or above error (exit 1)" in result.out


def test_ls_lists_every_format_read_and_marks_twins(rundoctor: Invoke) -> None:
    result = rundoctor("ls", "twins")
    assert result.code == 0
    assert "twins  tensorboard" in result.out and "twins/log.csv  wide-csv" in result.out
    assert "the same run as twins/log.csv (wide-csv): diagnosed once" in result.out
    assert "2 runs, 200 points" in result.out
    listed = json.loads(rundoctor("ls", "twins", "--format", "json").out)
    assert [run["id"] for run in listed["runs"]] == ["twins", "twins/log.csv"]


def test_select_and_ignore_take_comma_lists_codes_in_any_case_and_code_prefixes() -> None:
    from rundoctor.checks.registry import REGISTRY as CHECKS
    from rundoctor.config import Settings, parse_selectors
    from rundoctor.engine import selected_checks
    from rundoctor.errors import UsageError

    chosen = parse_selectors(["NON-FINITE,n002", " M00 "], CHECKS, "--select")
    assert chosen == ("NON-FINITE", "n002", "M00")
    names = [check.name for check in selected_checks(Settings(select=chosen, ignore=("m001",)), CHECKS)]
    assert names[:2] == ["non-finite", "loss-divergence"]
    assert {c.code for c in CHECKS if c.name in names[2:]} == {c.code for c in CHECKS if c.code.startswith("M00")} - {"M001"}
    assert [c.code for c in selected_checks(Settings(select=("N",)), CHECKS)] == [
        c.code for c in CHECKS if c.code.startswith("N")
    ]
    with pytest.raises(UsageError, match="--select: unknown check 'Q'"):
        parse_selectors(["Q"], CHECKS, "--select")
    with pytest.raises(UsageError, match=r"unknown check 'loss-spike'.*did you mean 'loss-spikes'"):
        parse_selectors(["loss-spike"], CHECKS, "--ignore")


def test_a_broken_pyproject_is_an_error_only_when_it_holds_our_table(tmp_path: Path) -> None:
    from rundoctor.config import find_config
    from rundoctor.errors import UsageError

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "pyproject.toml").write_text('[tool.black\nline-length = "', encoding="utf-8")
    assert find_config(theirs) is None  # somebody else's broken file is not our config
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "pyproject.toml").write_text('[tool.rundoctor]\nfail-on = "warning\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"pyproject\.toml"):
        find_config(ours)


def test_a_runs_suppression_file_is_not_taken_for_the_project_config(tmp_path: Path) -> None:
    from rundoctor.config import find_config

    project = tmp_path / "project"
    run = project / "runs" / "exp7"
    run.mkdir(parents=True)
    (project / "rundoctor.toml").write_text('fail-on = "warning"\n', encoding="utf-8")
    (run / "rundoctor.toml").write_text('ignore = ["loss-spikes"]\nreason = "batch size 1"\n', encoding="utf-8")
    assert find_config(run) == project / "rundoctor.toml"
    assert find_config(project / "runs") == project / "rundoctor.toml"


@pytest.mark.parametrize(("given", "kept"), [(None, "1"), ("4", "4")])
def test_blas_runs_single_threaded_unless_the_user_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], given: str | None, kept: str
) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", given or "")  # restored afterwards, whatever main() does
    if given is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setattr(sys, "argv", ["rundoctor", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert os.environ["OPENBLAS_NUM_THREADS"] == kept
