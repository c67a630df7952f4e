"""``rundoctor plot``: a PNG of one run, and every exit path of the command."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rundoctor import cli
from rundoctor.findings import Severity
from rundoctor.plot import DPI, INSTALL_HINT, WIDTH_INCHES, pick_run, write_png
from rundoctor.reporters.panels import NON_FINITE_COLOR, SEVERITY_COLORS
from tests.conftest import SAMPLE_LOGS
from tests.curves import HOSTILE, decay, make_run, steps
from tests.reporters.reports import finding

NON_FINITE = SAMPLE_LOGS / "problems" / "non_finite_tb"


@pytest.fixture
def matplotlib_installed() -> None:
    """matplotlib is in the test extra: skip without it locally, fail in CI."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("matplotlib is not installed; CI installs the test extra")
        pytest.skip("matplotlib is not installed (pip install 'rundoctor[plot]')")


@dataclass
class Result:
    code: int
    out: str
    err: str


def invoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """The command line in-process, through ``main()`` so usage errors become exit 2."""
    monkeypatch.setattr(sys, "argv", ["rundoctor", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    out, err = capsys.readouterr()
    return Result(code, out, err)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def pixels_near(path: Path, hex_colour: str, tolerance: int = 40) -> int:
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.int32)
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image - target).max(axis=2) <= tolerance).sum())


def test_plot_writes_a_png_of_the_run_with_its_nan_steps_marked(
    matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "curve.png"
    result = invoke(monkeypatch, capsys, "plot", str(NON_FINITE), "--output", str(output))
    assert result.code == 0, result.err
    assert result.out.startswith(f"{output}: ")
    width, height = png_size(output)
    assert width == round(WIDTH_INCHES * DPI) and height > 2 * DPI
    # The NaN stretch (steps 600..999) is marked in red under the loss axis.
    assert pixels_near(output, NON_FINITE_COLOR, tolerance=10) > 300


def test_findings_are_shaded_and_numbered_and_a_clean_run_has_no_shading(matplotlib_installed: None, tmp_path: Path) -> None:
    run = make_run({"train/loss": (steps(200), decay(200)), "val/loss": (steps(10, every=20), decay(10))}, run_id="r")
    warned = finding("r", "loss-plateau", "C003", Severity.WARNING, steps=(100, 199), message="the loss stalled")
    with_finding, clean = tmp_path / "warned.png", tmp_path / "clean.png"
    assert write_png(run, [warned], with_finding) == 1
    assert write_png(run, [], clean) == 1
    amber = SEVERITY_COLORS[Severity.WARNING]
    assert pixels_near(with_finding, amber, tolerance=12) > 200  # the band's edges, number and header
    assert pixels_near(clean, amber, tolerance=12) == 0


def test_a_run_with_only_unplottable_findings_still_draws(matplotlib_installed: None, tmp_path: Path) -> None:
    run = make_run({"epoch": (steps(10), np.arange(10.0))}, run_id="counters")
    note = finding("counters", "truncated-log", "L002", Severity.WARNING, tags=(), message="the file ends early")
    output = tmp_path / "x.png"
    assert write_png(run, [note], output) == 0
    assert png_size(output)[0] == round(WIDTH_INCHES * DPI)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_curves_still_draw(matplotlib_installed: None, tmp_path: Path, name: str) -> None:
    run = make_run({"train/loss": HOSTILE[name]}, run_id=name)
    output = tmp_path / "x.png"
    drawn = write_png(run, [finding(name, "x", "X001", Severity.ERROR, steps=(3, 7))], output)
    assert drawn == (0 if name == "empty" else 1)
    assert png_size(output)[0] == round(WIDTH_INCHES * DPI)


def test_without_matplotlib_plot_exits_2_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    output = tmp_path / "x.png"
    result = invoke(monkeypatch, capsys, "plot", str(NON_FINITE), "--output", str(output))
    assert result.code == 2
    assert "install rundoctor[plot]" in result.err and INSTALL_HINT in result.err
    assert not output.exists()


def test_a_path_with_several_runs_needs_run_and_lists_them(
    matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "x.png"
    problems = SAMPLE_LOGS / "problems"
    result = invoke(monkeypatch, capsys, "plot", str(problems), "--output", str(output))
    assert result.code == 2 and not output.exists()
    assert "runs found; choose one with --run" in result.err
    assert "problems/non_finite_tb\n" in result.err and "problems/truncated_tb\n" in result.err
    result = invoke(monkeypatch, capsys, "plot", str(problems), "--run", "non_finite_tb", "--output", str(output))
    assert result.code == 0, result.err
    assert png_size(output)[0] == round(WIDTH_INCHES * DPI)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--run", "no_such_run"], "no run 'no_such_run' here"),
        (["--output", "curve.svg"], "--output must be a .png file"),
    ],
)
def test_bad_plot_options_exit_2(
    matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path, arguments: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    options = arguments if "--output" in arguments else [*arguments, "--output", "x.png"]
    result = invoke(monkeypatch, capsys, "plot", str(SAMPLE_LOGS / "problems"), *options)
    assert result.code == 2 and message in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_path_exits_2(matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = invoke(monkeypatch, capsys, "plot", str(tmp_path / "nothing"), "--output", str(tmp_path / "x.png"))
    assert result.code == 2 and "no such file or directory" in result.err


def test_pick_run_by_id_or_unique_ending() -> None:
    runs = [make_run({"loss": (steps(5), decay(5))}, run_id=name) for name in ("a/run_1", "b/run_1", "b/run_2")]
    assert pick_run(runs[:1], None) is runs[0]
    assert pick_run(runs, "b/run_1") is runs[1]
    assert pick_run(runs, "run_2") is runs[2]
    with pytest.raises(ValueError, match=r"--run 'run_1' matches 2 runs:\n  a/run_1\n  b/run_1$"):
        pick_run(runs, "run_1")
    with pytest.raises(ValueError, match="3 runs found; choose one with --run"):
        pick_run(runs, None)
    with pytest.raises(ValueError, match="no run 'run_3' here"):
        pick_run(runs, "run_3")
