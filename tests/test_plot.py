"""``rundoctor plot``: a PNG of one run, and every exit path of the command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rundoctor.findings import Severity
from rundoctor.plot import DPI, INSTALL_HINT, WIDTH_INCHES, ZOOM_INCHES, pick_run, write_png
from rundoctor.reporters.panels import NON_FINITE_COLOR, SEVERITY_COLORS
from tests.conftest import SAMPLE_LOGS, run_cli
from tests.curves import HOSTILE, decay, make_run, steps
from tests.reporters.pictures import MIXED, draw, long_run, resumed_run
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
    result = run_cli(monkeypatch, capsys, "plot", str(NON_FINITE), "--output", str(output))
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


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures ``write_png`` saves, kept for a look at their axes."""
    from matplotlib.figure import Figure

    saved: list[Any] = []
    save = Figure.savefig

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def decoded(path: Path) -> tuple[int, int]:
    """The PNG's size once every pixel is decoded (a truncated or corrupt file raises)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.size


def test_a_short_stretch_of_a_long_run_gets_a_zoom_row_under_its_plot(
    matplotlib_installed: None, tmp_path: Path, figures: list[Any]
) -> None:
    run = long_run()
    spike = finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_999))
    zoomed, plain = tmp_path / "zoomed.png", tmp_path / "plain.png"
    assert write_png(run, [spike], zoomed) == 1
    assert write_png(run, [], plain) == 1
    width, height = decoded(zoomed)
    assert width == round(WIDTH_INCHES * DPI)
    assert height == pytest.approx(decoded(plain)[1] + ZOOM_INCHES * DPI, abs=1)
    main, zoom = figures[0].axes
    (expected,) = draw(run, [spike], reduce=False).panels[0].zooms
    assert zoom.get_title(loc="left") == expected.caption(["1"], run.axis_of("train/loss"))
    assert tuple(zoom.get_xlim()) == expected.steps
    # Every point of the window is drawn in the zoom, where the plot above keeps a handful.
    assert zoom.lines[0].get_xdata().size == expected.steps[1] - expected.steps[0] + 1
    assert main.lines[0].get_xdata().size <= 500
    assert zoom.get_position().y1 < main.get_position().y0  # under its plot


def test_zooms_follow_the_html_layout_two_to_a_row(matplotlib_installed: None, tmp_path: Path, figures: list[Any]) -> None:
    findings = [
        finding("long", f"check-{i}", f"X00{i}", Severity.WARNING, steps=(step, step + 100))
        for i, step in enumerate((10_000, 40_000, 80_000))
    ]
    write_png(long_run(), findings, tmp_path / "three.png")
    decoded(tmp_path / "three.png")
    main, *zooms = figures[0].axes
    assert [z.get_title(loc="left").split(":")[0] for z in zooms] == ["zoom on 1", "zoom on 2", "zoom on 3"]
    first, second, third = (z.get_position() for z in zooms)
    assert first.y0 == pytest.approx(second.y0) and first.x1 < second.x0  # side by side
    assert third.y1 < first.y0 and third.x0 == pytest.approx(first.x0)  # a row below
    assert third.width == pytest.approx(main.get_position().width)  # alone in its row: the plot's width


def test_the_points_a_restart_overwrote_are_a_dashed_line_in_the_legend(
    matplotlib_installed: None, tmp_path: Path, figures: list[Any]
) -> None:
    stitched = finding("resumed", "duplicate-steps", "L001", Severity.WARNING, steps=(451, 599))
    write_png(resumed_run(), [stitched], tmp_path / "resumed.png")
    decoded(tmp_path / "resumed.png")
    loss = figures[0].axes[0]
    dashed = [line for line in loss.lines if line.get_label().endswith("points a later start overwrote")]
    assert [line.get_label() for line in dashed] == ["train/loss: 151 points a later start overwrote"]
    assert dashed[0].get_linestyle() == "--" and dashed[0].get_color() == loss.lines[0].get_color()
    write_png(resumed_run(), [], tmp_path / "clean.png")
    assert not [line for line in figures[1].axes[0].lines if "overwrote" in str(line.get_label())]


def test_the_png_never_puts_a_loss_beside_a_percent_accuracy(matplotlib_installed: None, tmp_path: Path, figures: list[Any]) -> None:
    run = make_run(MIXED, run_id="mixed")
    everything = finding("mixed", "duplicate-steps", "L001", Severity.INFO, tags=tuple(MIXED), steps=(0, 199))
    drawn = draw(run, [everything], reduce=False)
    write_png(run, [everything], tmp_path / "mixed.png")
    decoded(tmp_path / "mixed.png")
    titles = [axes.get_title(loc="left") for axes in figures[0].axes]
    assert sorted(titles) == sorted(panel.title for panel in drawn.panels)
    for axes in figures[0].axes:
        curves = {line.get_label() for line in axes.lines} & set(MIXED)
        assert not ({"train/loss", "val/loss", "loss_cls"} & curves and {"val/acc", "top5"} & curves)


def test_without_matplotlib_plot_exits_2_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    output = tmp_path / "x.png"
    result = run_cli(monkeypatch, capsys, "plot", str(NON_FINITE), "--output", str(output))
    assert result.code == 2
    assert "install rundoctor[plot]" in result.err and INSTALL_HINT in result.err
    assert not output.exists()


def test_a_path_with_several_runs_needs_run_and_lists_them(
    matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "x.png"
    problems = SAMPLE_LOGS / "problems"
    result = run_cli(monkeypatch, capsys, "plot", str(problems), "--output", str(output))
    assert result.code == 2 and not output.exists()
    assert "runs found; choose one with --run" in result.err
    assert "problems/non_finite_tb\n" in result.err and "problems/truncated_tb\n" in result.err
    result = run_cli(monkeypatch, capsys, "plot", str(problems), "--run", "non_finite_tb", "--output", str(output))
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
    result = run_cli(monkeypatch, capsys, "plot", str(SAMPLE_LOGS / "problems"), *options)
    assert result.code == 2 and message in result.err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_path_exits_2(matplotlib_installed: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = run_cli(monkeypatch, capsys, "plot", str(tmp_path / "nothing"), "--output", str(tmp_path / "x.png"))
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
