"""The check command's output options: the width (COLUMNS in a pipe), --output-format,
--quiet, --statistics and --verbose, and a hostile run directory end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rundoctor import cli
from tests.curves import decay, noisy, with_nan


def write_nan_csv(directory: Path) -> Path:
    """A run whose loss turns NaN: an error with a message too long for one 80-column line."""
    directory.mkdir(parents=True, exist_ok=True)
    loss = with_nan(noisy(decay(200)), 120)
    log = directory / "metrics.csv"
    log.write_text("step,train_loss\n" + "".join(f"{i},{value:.6f}\n" for i, value in enumerate(loss)))
    return log


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "NO_COLOR")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "rundoctor", *args], capture_output=True, text=True,
                          timeout=120, check=False, env=environment, cwd=cwd)


def test_columns_sets_the_width_in_a_pipe(tmp_path: Path) -> None:
    write_nan_csv(tmp_path / "run")
    wide = run("check", "run", cwd=tmp_path, COLUMNS="200")
    assert wide.returncode == 1, wide.stderr
    error = next(line for line in wide.stdout.splitlines() if line.startswith("  error "))
    assert len(error) > 80 and error.endswith("(80 points, NaN x80)")  # one line at 200 columns
    for columns in ({}, {"COLUMNS": "not a number"}, {"COLUMNS": "0"}):
        narrow = run("check", "run", cwd=tmp_path, **columns).stdout
        assert max(len(line) for line in narrow.splitlines()) <= 80  # 80 in a pipe without it


@pytest.mark.parametrize("columns, width", [("100", 100), ("5", cli.MIN_WIDTH), (None, 80), ("x", 80)])
def test_the_render_width(monkeypatch: pytest.MonkeyPatch, columns: str | None, width: int) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert cli._render_options().width == width


def test_output_format_is_the_same_option_as_format(tmp_path: Path) -> None:
    write_nan_csv(tmp_path / "run")
    concise = run("check", "run", "--output-format", "concise", cwd=tmp_path)
    assert concise.stdout == run("check", "run", "-f", "concise", cwd=tmp_path).stdout
    assert concise.stdout.startswith("./run/metrics.csv:non-finite: error N001 steps 120..199: ")
    assert concise.returncode == 1


def test_quiet_statistics_and_verbose_are_for_the_terminal_formats(tmp_path: Path) -> None:
    write_nan_csv(tmp_path / "run")
    for option in ("--quiet", "--statistics", "--verbose"):
        result = run("check", "run", "--format", "json", option, cwd=tmp_path)
        assert result.returncode == 2 and result.stdout == ""
        assert f"{option} applies to --format text or concise, not json" in result.stderr
    quiet = run("check", "run", "-q", "--fail-on", "never", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout) == (0, "Result: --fail-on never (exit 0)\n")
    statistics = run("check", "run", "--statistics", cwd=tmp_path)
    assert statistics.stdout.splitlines()[0] == "1  N001  non-finite  1 error"
    verbose = run("check", "run", "--verbose", cwd=tmp_path, COLUMNS="120")
    assert "Advice: " in verbose.stdout and "Advice by check" not in verbose.stdout
    assert any(line.endswith("  train_loss") and "×" in line for line in verbose.stdout.splitlines())  # its sparkline


@pytest.mark.skipif(sys.platform == "win32", reason="needs a newline in a file name")
@pytest.mark.parametrize("format", ["text", "concise"])
def test_a_run_directory_named_like_a_ci_command_cannot_start_a_line(tmp_path: Path, format: str) -> None:
    hostile = "x\n::error::pwned \x1b[2J\u202e"
    write_nan_csv(tmp_path / "artifacts" / hostile)
    write_nan_csv(tmp_path / "artifacts" / "::error::second")
    for cwd, target in ((tmp_path, "artifacts"), (tmp_path / "artifacts", ".")):
        result = run("check", target, "--format", format, cwd=cwd)
        assert result.returncode == 1, result.stderr
        assert "x\\n::error::pwned \\x1b[2J\\u202e" in result.stdout
        for line in result.stdout.splitlines():
            assert not line.lstrip().startswith(("::", "##")), line
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout


def test_a_piped_report_of_real_checks_is_sorted_and_short(tmp_path: Path) -> None:
    for name in ("b_nan", "a_fine"):
        directory = tmp_path / "runs" / name
        if name == "a_fine":
            directory.mkdir(parents=True)
            (directory / "metrics.csv").write_text(
                "step,train_loss\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(noisy(decay(200, rate=8)))))
        else:
            write_nan_csv(directory)
    lines = run("check", "runs", cwd=tmp_path).stdout.splitlines()
    assert lines[0] == "2 runs under runs/, worst first"
    assert lines[2] == "SERIOUS    b_nan/metrics.csv"
    assert not np.any([line.startswith("HEALTHY") for line in lines])
