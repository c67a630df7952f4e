"""The SVG of a panel with zooms and overwritten points: well-formed XML, zooms in rows under
the plot, each numbered like its findings and drawn from every point of its stretch."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import numpy as np
import pytest

from rundoctor.findings import Finding, Severity
from rundoctor.reporters.panels import OVERWRITTEN_NOTE, Panel, shaded_range
from rundoctor.reporters.svg import HEIGHT, LEFT, RIGHT, WIDTH, ZOOM_HEIGHT, Shade, chart
from rundoctor.series import Run
from tests.curves import decay, make_run, rise, steps
from tests.reporters.pictures import LONG, draw, long_run, resumed_run
from tests.reporters.reports import finding

PATH_DATA = re.compile(r"[MlhHVv0-9. -]*")


def shades(panel: Panel, findings: Sequence[Finding]) -> list[Shade]:
    """The bands the HTML report gives a panel, numbered by the findings' order."""
    made = []
    for number, f in enumerate(findings, start=1):
        span = shaded_range(f, panel.step_range)
        if f in panel.shaded and span is not None:
            made.append(Shade(f"f{number}", str(number), f.severity, span, f.check))
    return made


def drawn(run: Run, findings: Sequence[Finding], title: str = "Loss") -> tuple[Panel, ET.Element]:
    """The panel called ``title`` and its chart, parsed as XML (which fails on malformed markup)."""
    panel = next(p for p in draw(run, findings).panels if p.title == title)
    svg = chart(panel, shades(panel, findings), panel.title, "chart")
    root = ET.fromstring(svg)
    for path in root.iter("path"):
        assert PATH_DATA.fullmatch(path.attrib["d"]), path.attrib["d"][:80]
    return panel, root


def mapping(element: ET.Element) -> tuple[float, float, float, float]:
    low, high = map(float, element.attrib["data-steps"].split())
    left, right = map(float, element.attrib["data-x"].split())
    return low, high, left, right


def px(element: ET.Element, step: float) -> float:
    low, high, left, right = mapping(element)
    return left + (step - low) / (high - low) * (right - left)


def classes(element: ET.Element) -> set[str]:
    return set(element.attrib.get("class", "").split())


def zooms(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter("g") if "zoom" in classes(g)]


def polyline_points(d: str) -> int:
    """Points of a path of one piece, ``M x y l dx dy dx dy ...``."""
    assert d.count("M") == 1
    moves = re.findall(r"-?[\d.]+", d.split("l", 1)[1]) if "l" in d else []
    return 1 + len(moves) // 2


def test_a_zoom_is_drawn_under_its_plot_numbered_like_its_finding_from_every_point() -> None:
    spike = finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_999))
    panel, root = drawn(long_run(), [spike])
    (zoom,) = panel.zooms
    assert root.attrib["viewBox"] == f"0 0 {WIDTH} {HEIGHT + ZOOM_HEIGHT:g}"
    (group,) = zooms(root)
    assert group.attrib["data-steps"] == f"{zoom.steps[0]} {zoom.steps[1]}"
    assert group.attrib["data-x"] == f"{LEFT:g} {RIGHT:g}"  # alone in its row: the plot's width
    caption = next(t for t in group.iter("text") if "zoom-title" in classes(t))
    assert caption.text == zoom.caption(["1"], panel.axis) == f"zoom on 1: steps {zoom.steps[0]:,}..{zoom.steps[1]:,}"
    assert float(caption.attrib["y"]) > HEIGHT  # below the plot, inside the chart
    band = next(r for r in group.iter("rect") if r.attrib.get("data-finding") == "f1")
    x, width = float(band.attrib["x"]), float(band.attrib["width"])
    assert x == pytest.approx(px(group, 50_000), abs=0.1)
    assert x + width == pytest.approx(px(group, 50_999), abs=0.1)
    line = next(p for p in group.iter("path") if "line" in classes(p))
    assert polyline_points(line.attrib["d"]) == zoom.traces[0].steps.size == zoom.steps[1] - zoom.steps[0] + 1
    # On the plot above, the stretch the zoom magnifies is outlined.
    outline = next(r for r in root.iter("rect") if "zoom-window" in classes(r))
    assert float(outline.attrib["x"]) == pytest.approx(px(root, zoom.steps[0]), abs=0.1)
    assert float(outline.attrib["x"]) + float(outline.attrib["width"]) == pytest.approx(px(root, zoom.steps[1]), abs=0.1)


def test_a_panel_without_zooms_keeps_its_size_and_has_no_zoom_markup() -> None:
    early = finding("long", "loss-plateau", "C003", Severity.WARNING, steps=(0, 20_000))
    panel, root = drawn(long_run(), [early])
    assert panel.zooms == () and zooms(root) == []
    assert root.attrib["viewBox"] == f"0 0 {WIDTH} {HEIGHT}"
    assert not [r for r in root.iter("rect") if "zoom-window" in classes(r)]


def test_three_zooms_take_two_rows_the_first_two_side_by_side() -> None:
    findings = [
        finding("long", f"check-{i}", f"X00{i}", Severity.WARNING, steps=(step, step + 100))
        for i, step in enumerate((10_000, 40_000, 80_000))
    ]
    panel, root = drawn(long_run(), findings)
    assert len(panel.zooms) == 3
    assert root.attrib["viewBox"] == f"0 0 {WIDTH} {HEIGHT + 2 * ZOOM_HEIGHT:g}"
    frames = [(mapping(g)[2:], float(next(r for r in g.iter("rect")).attrib["y"])) for g in zooms(root)]
    (first, top), (second, same_top), (third, lower) = frames
    assert top == same_top < lower
    assert first[1] < second[0]  # side by side, apart
    assert third == (LEFT, RIGHT)  # alone in the second row
    captions = [next(t for t in g.iter("text") if "zoom-title" in classes(t)).text for g in zooms(root)]
    assert [c.split(":")[0] for c in captions] == ["zoom on 1", "zoom on 2", "zoom on 3"]


def test_a_zoom_on_a_log_scale_panel_follows_the_pages_log_toggle() -> None:
    steep = make_run({"train/loss": (steps(LONG), decay(LONG, start=1e3, end=0.1, rate=15.0))}, run_id="steep")
    spike = finding("steep", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_100))
    panel, root = drawn(steep, [spike])
    assert panel.starts_on_log_scale
    (group,) = zooms(root)
    assert [classes(g) for g in group.findall(".//g")] == [{"lin"}, {"log"}]
    accuracy = make_run({"val/accuracy": (steps(LONG), rise(LONG))}, run_id="acc")
    flat = finding("acc", "metric-flat", "M001", Severity.WARNING, tags=("val/accuracy",), steps=(50_000, 50_100))
    _, root = drawn(accuracy, [flat], title="Accuracy")
    (group,) = zooms(root)
    assert not group.findall(".//g")


def test_overwritten_points_are_a_dashed_line_of_their_curves_colour_with_a_note() -> None:
    stitched = finding("resumed", "duplicate-steps", "L001", Severity.WARNING, steps=(451, 599))
    _, root = drawn(resumed_run(), [stitched])
    # Once on each of the loss plot's scales, linear and log.
    linear, log = ([p for p in g.iter("path") if "overwritten" in classes(p)] for g in root.findall("g"))
    assert len(linear) == len(log) == 1
    overwritten = linear[0]
    assert classes(overwritten) == {"line", "overwritten", "c0"}
    assert overwritten.find("title").text == "train/loss: 151 points a later start overwrote (steps 300..450)"  # type: ignore[union-attr]
    assert polyline_points(overwritten.attrib["d"]) == 151
    assert [t.text for t in root.iter("text") if t.text == OVERWRITTEN_NOTE] == [OVERWRITTEN_NOTE]
    unrelated = finding("resumed", "loss-plateau", "C003", Severity.WARNING, steps=(0, 299))
    _, root = drawn(resumed_run(), [unrelated])
    assert not [p for p in root.iter("path") if "overwritten" in classes(p)]
    assert OVERWRITTEN_NOTE not in {t.text for t in root.iter("text")}


def test_the_overwritten_points_widen_the_y_axis_they_are_drawn_on() -> None:
    """A first attempt that blew up to 1e3 before the restart stays inside the plot."""
    first = decay(300)
    first[200:] = 1e3
    values = np.concatenate((first, decay(400)[200:]))
    run = make_run({"train/loss": (np.concatenate((steps(300), steps(200, start=200))), values)}, run_id="blown")
    restart = finding("blown", "duplicate-steps", "L001", Severity.WARNING, steps=(200, 399))
    _, root = drawn(run, [restart])
    linear = next(g for g in root.iter("g") if classes(g) == {"lin"})
    labels = [float(t.text or "nan") for t in linear.iter("text") if "tick" in classes(t)]
    assert max(labels) >= 900
