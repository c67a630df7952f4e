"""The HTML report: structure parsed back with the standard library, the picture's geometry
checked against the findings, and one launch of headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rundoctor import discover, engine
from rundoctor.config import Settings
from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions, render
from rundoctor.reporters.escape import visible
from rundoctor.reporters.panels import MAX_POINTS, extremes, trace
from rundoctor.reporters.svg import (
    MIN_SHADE_WIDTH,
    log_ticks,
    nice_ticks,
    step_labels,
    value_labels,
)
from rundoctor.summary import summarize
from tests.conftest import SAMPLE_LOGS
from tests.curves import (
    HOSTILE,
    decay,
    make_run,
    noisy,
    rise,
    steps,
    with_nan,
    with_spikes,
)
from tests.reporters.pictures import draw
from tests.reporters.reports import AWKWARD, finding, healthy_run, sample_report, twin_report

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [n for n in self.walk() if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)]

    def ancestor(self, tag: str) -> Node | None:
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        return node


class TreeBuilder(HTMLParser):
    """A tree from the page, recording every end tag that does not close the open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.open[-1])
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.open[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.open[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self.open[-1].tag}> at {self.getpos()}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def parse(page: str) -> Node:
    """The page as a tree; fails on unbalanced markup."""
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.problems == []
    assert [node.tag for node in builder.open] == ["#document"], "elements left open at the end"
    return builder.root


def html(report: Report) -> str:
    return render("html", report, RenderOptions())


@dataclass(frozen=True)
class Axis:
    """A chart's x mapping, read back from its data attributes."""

    low: float
    high: float
    left: float
    right: float

    @classmethod
    def of(cls, svg: Node) -> Axis:
        low, high = map(float, svg.attrs["data-steps"].split())
        left, right = map(float, svg.attrs["data-x"].split())
        return cls(low, high, left, right)

    def px(self, step: float) -> float:
        clipped = min(max(step, self.low), self.high)
        return self.left + (clipped - self.low) / (self.high - self.low) * (self.right - self.left)


def assert_band_spans(rect: Node, axis: Axis, first: int | None, last: int | None) -> None:
    """The rectangle covers [first, last] (open ends run to the edge), at least MIN_SHADE_WIDTH wide."""
    left = axis.px(axis.low if first is None else first)
    right = axis.px(axis.high if last is None else last)
    x, width = float(rect.attrs["x"]), float(rect.attrs["width"])
    if right - left >= MIN_SHADE_WIDTH:
        assert x == pytest.approx(left, abs=0.1) and x + width == pytest.approx(right, abs=0.1)
    else:
        assert width == pytest.approx(MIN_SHADE_WIDTH, abs=0.1)
        assert x + width / 2 == pytest.approx((left + right) / 2, abs=0.1)


# The real pipeline on sample_logs -----------------------------------------------------------

@pytest.fixture(scope="module")
def sample_logs_report() -> tuple[Report, str]:
    runs, errors = discover.load_runs([SAMPLE_LOGS])
    report = engine.diagnose(runs, errors, Settings())
    return report, html(report)


def test_every_sample_logs_finding_is_listed_beside_its_plot_with_its_range_shaded(
    sample_logs_report: tuple[Report, str],
) -> None:
    report, page = sample_logs_report
    root = parse(page)
    assert report.findings, "sample_logs should give findings; is the check registry empty?"
    items = root.all("li", "finding")

    def key(run: str, check: str, first: object, last: object) -> tuple[str, str, str, str]:
        return run, check, "" if first is None else str(first), "" if last is None else str(last)

    expected = Counter(key(f.run, f.check, f.first_step, f.last_step) for f in report.active_findings)
    listed = Counter(key(i.attrs["data-run"], i.attrs["data-check"], i.attrs["data-first"], i.attrs["data-last"]) for i in items)
    assert listed == expected
    charts = {svg.attrs["id"]: svg for svg in root.all("svg", "chart")}
    runs = {run.id: run for run in report.runs}
    plotted = 0
    for item in items:
        run = runs[item.attrs["data-run"]]
        section = item.ancestor("details")
        assert section is not None and section.attrs["data-run"] == run.id
        matching = [
            f for f in report.active_findings_for(run.id)
            if f.check == item.attrs["data-check"] and f.message in item.text()
        ]
        assert matching, f"{item.attrs['id']}: message not shown"
        found = matching[0]
        curves = [tag for tag in found.tags if tag in run.tags]
        if not curves:  # about the log itself or a histogram: listed, not plotted
            assert item.attrs["data-chart"] == ""
            continue
        home = charts[item.attrs["data-chart"]]
        assert home.ancestor("details") is section
        # Every curve of the finding is drawn on a chart of its run that shades the finding.
        shading = [
            svg for svg in section.all("svg", "chart")
            if any(r.attrs.get("data-finding") == item.attrs["id"] for r in svg.all("rect", "band"))
        ]
        assert home in shading or (found.first_step is None and found.last_step is None)
        for tag in curves:
            assert any(tag in svg.all("title")[0].text() for svg in section.all("svg", "chart"))
        for svg in shading:
            rect = next(r for r in svg.all("rect", "band") if r.attrs["data-finding"] == item.attrs["id"])
            assert_band_spans(rect, Axis.of(svg), found.first_step, found.last_step)
            plotted += 1
    assert plotted >= len(report.findings) // 2  # most sample findings are about a curve's steps


def test_check_writes_the_html_report_to_output(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rundoctor.cli import app

    output = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["check", str(SAMPLE_LOGS / "problems" / "non_finite_tb"), "--format", "html", "--output", str(output)])
    assert result.exit_code == 1  # the NaN is an error finding
    assert result.output == ""
    root = parse(output.read_text(encoding="utf-8"))
    assert next(li.attrs["data-check"] for li in root.all("li", "finding")) == "non-finite"


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        reason = "chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it")
        pytest.skip(reason)
    return binary


# A console message as Chromium logs it with --enable-logging=stderr: every level (log,
# warning, error, uncaught exception) is written as an INFO:CONSOLE line naming its source.
CONSOLE_LINE = re.compile(r"^\[[^\]]*:CONSOLE(?:\(\d+\)|:\d+)?\] (?P<message>.*)$", re.MULTILINE)


def console_messages(stderr: str, page_url: str) -> list[str]:
    """Console output of the page: the report never writes to the console, so any is a fault."""
    return [m.group("message") for m in CONSOLE_LINE.finditer(stderr) if page_url in m.group("message")]


def test_console_messages_are_found_in_chromium_logs() -> None:
    url = "file:///tmp/report.html"
    stderr = (
        "[30924:30962:1127/065536.317226:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n"
        f'[30924:30924:1127/065537.559577:INFO:CONSOLE:2] "explicit console error", source: {url} (2)\n'
        f'[30924:30924:1127/065537.559621:INFO:CONSOLE(7)] "Uncaught ReferenceError: x is not defined", source: {url} (7)\n'
        '[1:1:1127/065537.6:INFO:CONSOLE:1] "from another page", source: file:///elsewhere.html (1)\n'
    )
    assert console_messages(stderr, url) == [
        f'"explicit console error", source: {url} (2)',
        f'"Uncaught ReferenceError: x is not defined", source: {url} (7)',
    ]
    assert console_messages("[1:1:0:ERROR:dbus/bus.cc:405] Failed to connect\n", url) == []


def test_the_page_opens_in_headless_chromium_without_console_errors(
    sample_logs_report: tuple[Report, str], tmp_path: Path
) -> None:
    """One launch: a screenshot, the DOM after scripts ran (--dump-dom on stdout) and the
    console log (stderr).  The DOM proves the inline script ran to its last line (it marks the
    summary table sortable); the log shows no message from the page, errors included."""
    binary = chromium_binary()
    report_file, screenshot = tmp_path / "report.html", tmp_path / "report.png"
    report_file.write_text(sample_logs_report[1], encoding="utf-8")
    url = report_file.as_uri()
    result = subprocess.run(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            f"--screenshot={screenshot}", "--dump-dom", "--window-size=1200,900", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr, url) == []
    assert re.search(r'<table id="summary" class="sortable">', result.stdout), "the inline script did not finish"
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1200, 900)
    image = pytest.importorskip("PIL.Image").open(screenshot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, badges and plots, not a blank page


# Hand-made reports ---------------------------------------------------------------------------

def test_the_page_is_self_contained_well_formed_and_deterministic() -> None:
    page = html(sample_report())
    parse(page)
    assert page == html(sample_report())
    assert page.startswith("<!DOCTYPE html>\n")
    # Nothing is fetched: no external scripts, styles, fonts or images; links are in-page.
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert re.findall(r'\b(?:src|href)="([^"]*)"', page) and all(
        ref.startswith("#") for ref in re.findall(r'\b(?:src|href)="([^"]*)"', page)
    )


def test_the_sample_report_matches_its_golden_file(golden: Callable[[str, str], None]) -> None:
    golden("sample_report.html", html(sample_report()))


def test_all_text_is_escaped() -> None:
    page = html(sample_report())
    assert "<tag>" not in page and "[bold]x[/bold]" in page
    item = next(li for li in parse(page).all("li", "finding") if li.attrs["data-check"] == "loss-plateau")
    assert item.all("p", "message")[0].text() == visible(AWKWARD)
    assert item.all("p", "advice")[0].text() == "Advice " + visible(AWKWARD)

    hostile = make_run({'<b>"loss"</b> & co': (steps(50), decay(50))}, run_id="runs/<script>alert(1)</script>")
    page = html(Report(runs=(hostile,), findings=(finding(hostile.id, "x", "X001", Severity.ERROR, tags=hostile.tags),)))
    assert "<script>alert" not in page and '<b>"loss"' not in page
    root = parse(page)
    assert root.all("details", "run")[0].attrs["data-run"] == hostile.id
    assert root.all("li", "finding")[0].attrs["data-run"] == hostile.id
    assert '<b>"loss"</b> & co' in root.all("svg", "chart")[0].all("title")[0].text()


def test_control_and_bidirectional_characters_are_escaped_visibly_everywhere() -> None:
    name = "runs/a\x1b[31m\u202eexe.txt\n::error::x\x00"
    tag = "loss\u2028\x85\u200b/train"
    run = make_run({tag: (steps(50), decay(50))}, run_id=name)
    page = html(Report(runs=(run,), findings=(finding(run.id, "x", "X001", Severity.ERROR, tags=(tag,),
                                                       message=f"{tag} spiked in {name}"),)))
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2028\u2029]", page)
    assert not any(line.lstrip().startswith("::error::") for line in page.splitlines())
    root = parse(page)
    assert root.all("details", "run")[0].attrs["data-run"] == "runs/a\\x1b[31m\\u202eexe.txt\\n::error::x\\x00"
    message = root.all("li", "finding")[0].all("p", "message")[0].text()
    assert message == "loss\\u2028\\x85\\u200b/train spiked in runs/a\\x1b[31m\\u202eexe.txt\\n::error::x\\x00"


def test_runs_with_findings_come_first_and_open_healthy_runs_are_folded() -> None:
    root = parse(html(sample_report()))
    sections = [(d.attrs["data-run"], "open" in d.attrs) for d in root.all("details", "run")]
    assert sections == [("sweep/lr_0.1", True), ("sweep/lr_0.001", True), ("sweep/lr_0.01", False)]
    healthy = root.all("details", "run")[2]
    assert healthy.all("svg", "chart") and not healthy.all("li", "finding")


def test_the_summary_table_has_a_sortable_row_per_run() -> None:
    root = parse(html(sample_report()))
    table = next(t for t in root.all("table") if t.attrs.get("id") == "summary")
    headers = [th.text() for th in table.all("th")]
    assert headers == ["Run", "Verdict", "Problem", "Errors", "Warnings", "Info", "Format", "Points"]
    rows = [[td.attrs["data-sort"] for td in tr.all("td")] for tr in table.all("tbody")[0].all("tr")]
    assert rows == [
        ["sweep/lr_0.1", "5", "training diverged (NaN/inf)", "1", "1", "1", "synthetic", "1020"],
        ["sweep/lr_0.001", "4", "loss plateaued at a fixed learning rate", "0", "1", "0", "synthetic", "200"],
        ["sweep/lr_0.01", "0", "", "0", "0", "0", "synthetic", "200"],
    ]
    links = [a.attrs["href"] for a in table.all("a")]
    ids = [d.attrs["id"] for d in root.all("details", "run")]
    assert links == [f"#{i}" for i in ids]


def test_problems_are_shown_above_the_table() -> None:
    page = html(sample_report())
    problems = parse(page).all("section", "problems")[0].text()
    assert "broken/events.out.tfevents.1: truncated record at offset 40" in problems
    assert "S001 loss-spike on sweep/lr_0.1: ValueError: boom" in problems
    assert page.index('class="problems"') < page.index('id="summary"')
    assert 'class="problems"' not in html(Report(runs=(healthy_run(),), findings=()))


def non_finite_ticks(svg: Node) -> list[float]:
    """x of every NaN mark under the axis (path data of ``M x y v h`` moves)."""
    marks = svg.all("path", "non-finite")
    return [float(x) for mark in marks for x in re.findall(r"M(-?[\d.]+) ", mark.attrs["d"])]


def test_nan_steps_are_marked_under_the_axis_and_named_in_the_legend() -> None:
    root = parse(html(sample_report()))
    sick = root.all("details", "run")[0]
    loss = sick.all("svg", "chart")[0]
    ticks, axis = non_finite_ticks(loss), Axis.of(loss)
    assert min(ticks) == pytest.approx(axis.px(600), abs=0.5)  # marks sit on whole pixels
    assert max(ticks) == pytest.approx(axis.px(999), abs=0.5)
    assert len(ticks) == len(set(ticks)) <= axis.right - axis.left
    assert "train/loss: 400 NaN/inf" in sick.text()
    healthy = root.all("details", "run")[2]
    assert all(non_finite_ticks(svg) == [] for svg in healthy.all("svg", "chart"))


def test_a_single_step_finding_still_shows_a_band_centred_on_its_step() -> None:
    root = parse(html(sample_report()))
    item = next(li for li in root.all("li", "finding") if li.attrs["data-check"] == "loss-plateau")
    svg = next(s for s in root.all("svg", "chart") if s.attrs["id"] == item.attrs["data-chart"])
    rect = next(r for r in svg.all("rect", "band") if r.attrs["data-finding"] == item.attrs["id"])
    assert float(rect.attrs["width"]) == pytest.approx(MIN_SHADE_WIDTH)
    assert_band_spans(rect, Axis.of(svg), 120, 120)


def test_curves_a_finding_is_about_get_a_plot_and_findings_without_one_are_listed_apart() -> None:
    run = make_run(
        {
            "train/loss": (steps(100), decay(100)),
            "val/accuracy": (steps(10, every=10), rise(10)),
            "grad_norm": (steps(100), np.ones(100)),
        },
        run_id="r",
    )
    clipped = finding("r", "grad-norm", "D001", Severity.WARNING, tags=("grad_norm",), steps=(0, 99))
    log = finding("r", "truncated-log", "L002", Severity.WARNING, tags=(), message="the file ends early")
    drawn = draw(run, [clipped, log])
    assert [(p.title, [t.tag for t in p.traces]) for p in drawn.panels] == [
        ("Loss", ["train/loss"]), ("Accuracy", ["val/accuracy"]), ("grad_norm", ["grad_norm"]),
    ]
    assert [p.listed for p in drawn.panels] == [(), (), (clipped,)] and drawn.unplotted == (log,)
    root = parse(html(Report(runs=(run,), findings=(clipped, log))))
    items = {li.attrs["data-check"]: li for li in root.all("li", "finding")}
    assert items["truncated-log"].attrs["data-chart"] == ""
    assert "No curve to draw" in items["truncated-log"].ancestor("div").text()
    chart = next(s for s in root.all("svg", "chart") if s.attrs["id"] == items["grad-norm"].attrs["data-chart"])
    assert chart.all("title")[0].text() == "grad_norm: grad_norm"


def log_toggle(report: Report) -> Node | None:
    inputs = parse(html(report)).all("input", "log-toggle")
    assert len(inputs) <= 1
    return inputs[0] if inputs else None


def test_a_loss_plot_offers_a_log_scale_and_starts_on_it_when_the_loss_spans_decades() -> None:
    gentle = make_run({"train/loss": (steps(100), decay(100, start=2.0, end=0.1))}, run_id="gentle")
    steep = make_run({"train/loss": (steps(100), decay(100, start=1e3, end=0.1, rate=15.0))}, run_id="steep")
    toggle = log_toggle(Report(runs=(gentle,), findings=()))
    assert toggle is not None and "checked" not in toggle.attrs
    toggle = log_toggle(Report(runs=(steep,), findings=()))
    assert toggle is not None and "checked" in toggle.attrs
    chart = parse(html(Report(runs=(steep,), findings=()))).all("svg", "chart")[0]
    assert len(chart.all("g", "lin")) == 1 and len(chart.all("g", "log")) == 1
    accuracy_only = make_run({"val/accuracy": (steps(20), rise(20))}, run_id="acc")
    assert log_toggle(Report(runs=(accuracy_only,), findings=())) is None
    negative = make_run({"train/loss": (steps(20), -decay(20))}, run_id="neg")
    assert log_toggle(Report(runs=(negative,), findings=())) is None


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_curves_render_to_a_well_formed_chart(name: str) -> None:
    run = make_run({"train/loss": HOSTILE[name], "val/loss": (steps(5), decay(5))}, run_id=name)
    flagged = finding(name, "x", "X001", Severity.WARNING, steps=(3, 7))
    root = parse(html(Report(runs=(run,), findings=(flagged,))))
    chart = root.all("svg", "chart")[0]
    assert "train/loss" in chart.all("title")[0].text() or name == "empty"
    for path in chart.all("path"):
        assert re.fullmatch(r"[MlhHVv0-9. -]*", path.attrs["d"]), path.attrs["d"][:80]
    if name in ("all nan", "inf"):
        assert non_finite_ticks(chart)


# Downsampling -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 499, 500, 501, 10_007, 1_000_000])
def test_extremes_keeps_at_most_max_points_and_every_extreme(n: int) -> None:
    values = np.random.default_rng(n).standard_normal(n)
    kept = extremes(values)
    assert kept.size <= MAX_POINTS and np.all(np.diff(kept) > 0)
    if n <= MAX_POINTS:
        assert kept.tolist() == list(range(n))
    else:
        assert int(np.argmax(values)) in kept and int(np.argmin(values)) in kept
        # Every point is within a bucket's reach: no stretch of the curve is dropped.
        assert np.max(np.diff(kept)) < 2 * -(-n // (MAX_POINTS // 2))


def test_a_three_step_spike_in_a_million_points_survives_and_the_page_stays_small() -> None:
    n = 1_000_000
    spiky = with_spikes(noisy(decay(n)), at=[700_001], height=40.0, width=3)
    big = make_run({"train/loss": (steps(n), spiky)}, run_id="big")
    drawn = summarize(big, curves=True).curves["train/loss"].overview
    assert drawn.steps.size <= MAX_POINTS
    assert float(drawn.values.max()) == float(spiky.max())
    assert 700_001 <= int(drawn.steps[np.argmax(drawn.values)]) <= 700_003
    small = make_run({"train/loss": (steps(10_000), noisy(decay(10_000)))}, run_id="big")
    assert len(html(Report(runs=(big,), findings=()))) < 1.2 * len(html(Report(runs=(small,), findings=())))


def test_a_trace_lifts_the_pen_over_non_finite_points() -> None:
    values = decay(100)
    values[40:45] = np.nan
    values[70] = np.inf
    drawn = trace("train/loss", steps(100), values)
    assert drawn.non_finite == 6 and drawn.non_finite_steps.tolist() == [40, 41, 42, 43, 44, 70]
    assert drawn.steps[drawn.breaks].tolist() == [45, 71]
    assert np.isfinite(drawn.values).all()


def test_a_200_run_sweep_folds_its_healthy_runs_and_stays_light() -> None:
    runs, findings = [], []
    for index in range(200):
        loss = noisy(decay(2_000), seed=index)
        if index % 10 == 0:
            loss = with_nan(loss, 1_500)
        run = make_run(
            {
                "train/loss": (steps(2_000), loss),
                "train/lr": (steps(2_000), np.linspace(1e-3, 1e-5, 2_000)),
                "val/loss": (steps(20, every=100), decay(20, start=2.2, end=0.4)),
                "val/accuracy": (steps(20, every=100), rise(20)),
            },
            run_id=f"sweep/run_{index:03d}",
        )
        runs.append(run)
        if index % 10 == 0:
            findings.append(finding(run.id, "non-finite", "N001", Severity.ERROR, steps=(1_500, 1_999)))
    started = time.perf_counter()
    page = html(Report(runs=tuple(runs), findings=tuple(findings)))
    elapsed = time.perf_counter() - started
    sections = parse(page).all("details", "run")
    assert [d.attrs["data-run"] for d in sections if "open" in d.attrs] == [f"sweep/run_{i:03d}" for i in range(0, 200, 10)]
    assert len(sections) == 200
    assert len(page) < 200 * 25_000  # about 15 KB a run: three plots of at most 500 points a curve
    assert elapsed < 20  # about 1 s on a laptop; generous for slow CI machines


# Tick labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ticks", "expected"),
    [
        (nice_ticks(0.25, 2.1, 5), ["0.5", "1.0", "1.5", "2.0"]),
        (nice_ticks(0.0195, 0.0205, 5), ["0.0196", "0.0198", "0.0200", "0.0202", "0.0204"]),
        (nice_ticks(0, 1, 4), ["0.00", "0.25", "0.50", "0.75", "1.00"]),
        (nice_ticks(0, 2.5e-5, 5), ["0", "5e-6", "1e-5", "1.5e-5", "2e-5", "2.5e-5"]),
        (nice_ticks(2e7, 1e8, 5), ["2e7", "4e7", "6e7", "8e7", "1e8"]),
        (log_ticks(0.5, 5e4), ["1", "10", "100", "1000", "10000"]),
        (log_ticks(1e-4, 0.5), ["1e-4", "1e-3", "1e-2", "1e-1"]),
        (log_ticks(0.3, 2.5), ["0.5", "1", "2"]),
    ],
)
def test_value_labels_use_one_notation_per_axis(ticks: tuple[np.ndarray, float], expected: list[str]) -> None:
    assert value_labels(*ticks) == expected


@pytest.mark.parametrize(
    ("high", "expected"),
    [(29, ["0", "5", "10", "15", "20", "25"]), (12_000, ["0", "2k", "4k", "6k", "8k", "10k", "12k"]),
     (3_000_000, ["0", "0.5M", "1M", "1.5M", "2M", "2.5M", "3M"])],
)
def test_step_labels_use_one_unit_per_axis(high: int, expected: list[str]) -> None:
    assert step_labels(nice_ticks(0, high, 7, integer=True)[0]) == expected


def test_active_findings_in_the_sample_report_all_reach_the_page() -> None:
    report = sample_report()
    items = parse(html(report)).all("li", "finding")
    assert sorted((i.attrs["data-code"], i.attrs["data-severity"]) for i in items) == sorted(
        (f.code, f.severity.value) for f in report.active_findings
    )


def test_each_run_leads_with_its_diagnosis_and_says_what_it_superseded() -> None:
    root = parse(html(sample_report()))
    sick = root.all("details", "run")[0]
    assert sick.all("span", "run-dx")[0].text().startswith("training diverged (NaN/inf) — train/loss is NaN")
    diagnosis = sick.all("div", "diagnosis")[0].text()
    assert "still-improving, superseded by non-finite" in diagnosis
    assert not [i for i in sick.all("li", "finding") if i.attrs["data-check"] == "still-improving"]


def test_one_run_written_in_two_formats_is_one_row_and_one_section() -> None:
    page = html(twin_report())
    parse(page)
    assert "<title>rundoctor report: 2 runs</title>" in page
    sections = re.findall(r'<details class="run [^"]*" id="[^"]*" data-run="([^"]*)"', page)
    assert sections == ["out/train", "out/other.csv"]  # worst first
    assert "<p>Also written as:</p><ul><li><code>out/train/results.csv (ultralytics-csv)</code></li></ul>" in page
    assert page.count('data-check="non-finite"') == 1 and "also in ultralytics-csv" in page
    assert "<h3 class=\"member\">In out/train/results.csv (ultralytics-csv)</h3>" in page
    assert 'data-check="class-imbalance"' in page
    assert '<td class="format" data-sort="tensorboard + ultralytics-csv">' in page


def test_the_page_written_in_pieces_is_the_page_and_each_run_is_a_piece() -> None:
    from rundoctor.reporters.html import chunks

    report = sample_report()
    pieces = list(chunks(report, RenderOptions()))
    assert "".join(pieces) == html(report)
    assert len(pieces) >= len(report.groups) + 2  # the head, a section per run, the script
