"""The picture model both renderers draw: which curves share a plot (never a loss beside a
percent accuracy), which short stretches get a zoom drawn from the run's own points, and when
the points a restart overwrote are drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rundoctor import discover, engine
from rundoctor.config import Settings
from rundoctor.findings import Finding, Severity
from rundoctor.reporters.panels import (
    MAX_POINTS,
    MAX_ZOOMS,
    ZOOM_BELOW,
    ZOOM_MAX_POINTS,
    ZOOMS_PER_ROW,
    Picture,
    Unit,
    picture,
    unit_of_values,
    zoom_cells,
    zoom_rows,
)
from rundoctor.roles import LOSS_ROLES
from rundoctor.series import Run
from rundoctor.summary import RunSummary
from tests.conftest import SAMPLE_LOGS
from tests.curves import decay, make_run, noisy, restarted, steps, with_spikes
from tests.reporters.pictures import LONG, MIXED, draw, long_run, loss_panel, resumed_run
from tests.reporters.reports import finding

# Zooms -------------------------------------------------------------------------------------------

def test_a_finding_on_one_percent_of_a_long_run_gets_a_zoom_drawn_from_every_point() -> None:
    run = long_run()
    spike = finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_999))
    panel = loss_panel(draw(run, [spike]))
    # On the panel the stretch is thinned away: a handful of the 1,000 points are kept.
    main = panel.traces[0]
    assert main.steps.size <= MAX_POINTS
    assert int(((main.steps >= 50_000) & (main.steps <= 50_999)).sum()) < 20
    (zoom,) = panel.zooms
    assert zoom.findings == (spike,)
    first, last = zoom.steps
    assert first < 50_000 and last > 50_999  # the stretch, with context on both sides
    assert last - first <= 4 * 1_000  # magnified, not a tenth of the run
    (zoomed,) = zoom.traces
    window = np.arange(first, last + 1)
    assert window.size <= ZOOM_MAX_POINTS
    assert np.array_equal(zoomed.steps, window)  # every point of the window, none thinned away
    curve = run.curve("train/loss")
    assert np.array_equal(zoomed.values, curve.values[first : last + 1])
    assert zoomed.points == window.size and not zoomed.breaks.any()


def test_a_zoom_of_a_huge_run_keeps_its_extremes_within_its_point_budget() -> None:
    n = 2_000_000
    values = with_spikes(noisy(decay(n), 0.05), at=[1_000_100], height=8.0, width=1)
    run = make_run({"train/loss": (steps(n), values)}, run_id="huge")
    spike = finding("huge", "loss-spikes", "S002", Severity.WARNING, steps=(990_000, 1_009_999))  # 1%
    (zoom,) = loss_panel(draw(run, [spike], reduce=False)).zooms
    (zoomed,) = zoom.traces
    assert zoomed.steps.size <= ZOOM_MAX_POINTS < zoomed.points
    assert int(zoomed.steps[np.argmax(zoomed.values)]) == 1_000_100  # the spike survives the cut
    assert float(zoomed.values.max()) == float(values[1_000_100])
    assert zoomed.steps[0] == zoom.steps[0] and zoomed.steps[-1] == zoom.steps[1]
    # From a report's summary, which kept the stretch's extremes and not its 40,000 points:
    # the same zoom, its spike, and no more points than the zoom draws.
    (reduced,) = loss_panel(draw(run, [spike])).zooms
    assert reduced.steps == zoom.steps
    (kept,) = reduced.traces
    assert kept.steps.size <= ZOOM_MAX_POINTS
    assert float(kept.values.max()) == float(values[1_000_100])
    assert zoom.steps[0] <= kept.steps[0] and kept.steps[-1] <= zoom.steps[1]


@pytest.mark.parametrize(
    ("last", "zoomed"),
    [(54_999, True), (55_000, False)],  # 4,999 steps of 99,999 are under 5%; 5,000 are not
)
def test_a_zoom_only_for_stretches_under_five_percent_of_the_panel(last: int, zoomed: bool) -> None:
    assert (last - 50_000 < ZOOM_BELOW * (LONG - 1)) == zoomed
    stretch = finding("long", "loss-plateau", "C003", Severity.WARNING, steps=(50_000, last))
    assert bool(loss_panel(draw(long_run(), [stretch])).zooms) == zoomed


@pytest.mark.parametrize(("points", "zoomed"), [(81, True), (80, False)])
def test_a_short_curve_gets_no_zoom_it_would_barely_magnify(points: int, zoomed: bool) -> None:
    """Ten points of context on each side of a one-step finding: 20 steps, a quarter of 80."""
    run = make_run({"train/loss": (steps(points), decay(points))}, run_id="short")
    one_step = finding("short", "loss-spikes", "S002", Severity.WARNING, steps=(40, 40))
    assert bool(loss_panel(draw(run, [one_step])).zooms) == zoomed


def test_a_finding_at_the_end_of_the_run_zooms_on_the_context_it_has() -> None:
    tail = finding("long", "still-improving", "C006", Severity.INFO, steps=(99_500, None))
    (zoom,) = loss_panel(draw(long_run(), [tail])).zooms
    assert zoom.steps == (99_250, 99_999)


def test_nearby_findings_share_a_zoom_and_distant_ones_get_their_own_left_to_right() -> None:
    near = [
        finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(50_390, 50_410)),
        finding("long", "non-finite", "N001", Severity.ERROR, steps=(50_400, 50_402)),
    ]
    far = finding("long", "loss-plateau", "C003", Severity.INFO, steps=(10_000, 10_500))
    zooms = loss_panel(draw(long_run(), [*near, far])).zooms
    assert [zoom.findings for zoom in zooms] == [(far,), tuple(near)]
    assert zooms[0].steps[1] < zooms[1].steps[0]
    assert zooms[1].holds((50_390, 50_410)) and zooms[1].holds((50_400, 50_402))
    assert not zooms[0].holds((50_390, 50_410))


def test_beyond_max_zooms_the_most_severe_findings_keep_theirs() -> None:
    severities = [Severity.INFO] * 3 + [Severity.ERROR, Severity.WARNING, Severity.INFO]
    findings = [
        finding("long", f"check-{i}", f"X00{i}", severity, steps=(10_000 * (i + 1), 10_000 * (i + 1) + 10))
        for i, severity in enumerate(severities)
    ]
    zooms = loss_panel(draw(long_run(), findings)).zooms
    assert len(zooms) == MAX_ZOOMS
    kept = [zoom.findings[0] for zoom in zooms]
    assert findings[3] in kept and findings[4] in kept  # the error and the warning
    assert [f.first_step for f in kept] == sorted(f.first_step for f in kept)  # left to right


def test_a_zoom_keeps_every_curve_of_its_panel_in_the_panels_order() -> None:
    run = make_run(
        {"train/loss": (steps(LONG), decay(LONG)), "val/loss": (steps(100, every=1_000), decay(100))},
        run_id="two",
    )
    spike = finding("two", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_100))
    panel = loss_panel(draw(run, [spike]))
    (zoom,) = panel.zooms
    assert [t.tag for t in zoom.traces] == [t.tag for t in panel.traces]  # colours by position stay
    assert zoom.traces[1].points <= 1  # val/loss has at most one evaluation in the window


def test_zoom_cells_fill_rows_left_to_right() -> None:
    assert ZOOMS_PER_ROW == 2
    assert zoom_cells(1) == [(0, 0, 1)]
    assert zoom_cells(3) == [(0, 0, 2), (0, 1, 2), (1, 0, 1)]
    assert [zoom_rows(n) for n in range(5)] == [0, 1, 1, 2, 2]


# Restarts ----------------------------------------------------------------------------------------

def test_a_finding_on_a_restarted_stretch_shows_the_overwritten_points() -> None:
    run = resumed_run()
    stitched = finding("resumed", "duplicate-steps", "L001", Severity.WARNING, steps=(451, 599))
    drawn = loss_panel(draw(run, [stitched])).traces[0]
    assert drawn.overwritten is not None and drawn.restarted == (300, 599)
    assert drawn.overwritten.steps.tolist() == list(range(300, 451))
    assert np.array_equal(drawn.overwritten.values, decay(600)[300:451])  # attempt 1's points
    assert drawn.overwritten.points == 151 and not drawn.overwritten.breaks.any()
    # The curve itself is the analysis' view: attempt 2 where it wrote, then attempt 1's tail.
    assert np.array_equal(drawn.values, run.curve("train/loss").by_step.values[drawn.steps])
    assert run.curve("train/loss").by_step.values[300] == 0.5 * decay(151)[0]


@pytest.mark.parametrize(
    "unrelated",
    [
        finding("resumed", "loss-plateau", "C003", Severity.WARNING, steps=(0, 299)),  # before the restart
        finding("resumed", "overfitting", "G002", Severity.WARNING, tags=("val/loss",), steps=(300, 599)),
        finding("resumed", "short-run", "R001", Severity.INFO),  # no steps
    ],
)
def test_without_a_finding_about_the_restart_the_plot_shows_what_the_analysis_saw(unrelated: Finding) -> None:
    for drawn in loss_panel(draw(resumed_run(), [unrelated])).traces:
        assert drawn.overwritten is None


def test_a_restart_finding_on_a_short_stretch_of_a_long_run_zooms_on_the_overwritten_segment() -> None:
    attempts = restarted((0, 80_000), (79_000, LONG))
    values = np.concatenate((noisy(decay(80_000), seed=1), 0.6 + noisy(decay(21_000, 0.6, 0.2), seed=2)))
    run = make_run({"train/loss": (attempts, values)}, run_id="restart")
    repeated = finding("restart", "duplicate-steps", "L001", Severity.WARNING, steps=(79_000, 79_999))
    panel = loss_panel(draw(run, [repeated]))
    (zoom,) = panel.zooms
    assert zoom.holds((79_000, 79_999))
    overwritten = zoom.traces[0].overwritten
    assert overwritten is not None
    assert overwritten.steps.tolist() == list(range(79_000, 80_000))  # every overwritten point
    assert np.array_equal(overwritten.values, values[79_000:80_000])


def test_steps_that_go_back_without_repeating_overwrite_nothing() -> None:
    unsorted = make_run({"train/loss": (np.random.default_rng(1).permutation(200), decay(200))}, run_id="u")
    anything = finding("u", "duplicate-steps", "L001", Severity.INFO, steps=(0, 199))
    drawn = loss_panel(draw(unsorted, [anything])).traces[0]
    assert drawn.overwritten is None and drawn.restarted is None


# Units -------------------------------------------------------------------------------------------

def test_no_panel_mixes_units_or_puts_a_loss_beside_a_percent_accuracy() -> None:
    run = make_run(MIXED, run_id="mixed")
    everything = finding("mixed", "duplicate-steps", "L001", Severity.INFO, tags=tuple(MIXED), steps=(0, 199))
    drawn = draw(run, [everything])
    assert {tag for panel in drawn.panels for tag in (t.tag for t in panel.traces)} == set(MIXED)
    for panel in drawn.panels:
        tags = [t.tag for t in panel.traces]
        assert {unit_of(run, tag) for tag in tags} == {panel.unit}, panel.title
        has_loss = any(run.roles[tag] in LOSS_ROLES for tag in tags)
        assert not (has_loss and panel.unit is Unit.PERCENT)
    units = {panel.title: panel.unit for panel in drawn.panels}
    # The key accuracy panel splits a fraction from a percentage, each titled by its curve.
    assert units["Accuracy: train/acc"] is Unit.FRACTION and units["Accuracy: val/acc"] is Unit.PERCENT
    assert units["loss_cls"] is Unit.LOSS and units["top5"] is Unit.PERCENT
    assert units["Learning rate"] is Unit.LEARNING_RATE
    assert units["false_negative_rate"] is Unit.FRACTION
    assert units["epoch, tokens_seen"] is Unit.OTHER


def test_the_log_scale_is_offered_for_losses_learning_rates_and_gradient_norms() -> None:
    drawn = draw(make_run(MIXED, run_id="mixed"), [])
    scales = {panel.title: (panel.log_scale, panel.starts_on_log_scale) for panel in drawn.panels}
    assert scales["Learning rate"] == (True, True)  # 1e-2 down to 1e-6: four decades
    assert scales["Loss"] == (True, False)
    assert scales["Accuracy: train/acc"] == (False, False)
    assert Unit.GRAD_NORM.log_scale and not Unit.PERCENT.log_scale and not Unit.OTHER.log_scale


@pytest.mark.parametrize(
    ("tag", "values", "expected"),
    [
        ("val_perplexity", np.linspace(62.0, 35.0, 20), Unit.SCORE),  # lower is better: never percent
        ("val/accuracy", np.linspace(30.0, 92.0, 20), Unit.PERCENT),
        ("val/accuracy", np.linspace(0.3, 0.92, 20), Unit.FRACTION),
        ("val/accuracy", np.linspace(0.3, 1.9, 20), Unit.SCORE),  # summed over batches: no unit fits
        ("val/accuracy", np.full(20, np.nan), Unit.SCORE),
        ("mean_confidence", np.linspace(0.5, 0.9, 20), Unit.FRACTION),
        ("something", np.linspace(0.0, 1.0, 20), Unit.FRACTION),
        ("something", np.linspace(0.0, 1.5, 20), Unit.OTHER),
        ("epoch", np.linspace(0.0, 1.0, 20), Unit.OTHER),  # a counter, whatever its values
        ("grad_norm", np.linspace(0.1, 0.5, 20), Unit.GRAD_NORM),
    ],
)
def test_unit_of_a_curve(tag: str, values: np.ndarray, expected: Unit) -> None:
    assert unit_of(make_run({tag: (steps(20), values)}), tag) is expected


def unit_of(run: Run, tag: str) -> Unit:
    """The unit a summary reads from the whole curve."""
    values = run.curve(tag).values
    return unit_of_values(run.roles.get(tag), tag, values[np.isfinite(values)])


def test_train_and_val_perplexity_share_a_plot() -> None:
    run = make_run({"train_perplexity": (steps(300), np.geomspace(2_000, 31, 300)),
                    "val_perplexity": (steps(10, every=30), np.linspace(62, 35, 10))}, run_id="lm")
    (panel,) = draw(run, []).panels
    assert [t.tag for t in panel.traces] == ["train_perplexity", "val_perplexity"]


def test_curves_on_different_x_axes_never_share_a_plot() -> None:
    run = make_run({"train/loss": (steps(100), decay(100)), "val/loss": (steps(10), decay(10))}, run_id="axes")
    run.tag_axes = {"val/loss": run.x_axis.EPOCH}
    titles = [(panel.title, panel.axis.value) for panel in draw(run, []).panels]
    assert titles == [("Loss: train/loss", "step"), ("Loss: val/loss", "epoch")]


def sample_pictures() -> list[tuple[RunSummary, Picture]]:
    runs, errors = discover.load_runs([SAMPLE_LOGS])
    report = engine.diagnose(runs, errors, Settings(), curves=True)
    return [(run, picture(run, report.findings_for(run.id))) for run in report.runs]


def test_every_sample_log_panel_holds_one_unit_on_one_axis_and_every_zoom_lies_inside_its_panel() -> None:
    pictures = sample_pictures()
    assert pictures
    for run, drawn in pictures:
        for panel in drawn.panels:
            tags = [t.tag for t in panel.traces]
            assert {run.curves[tag].unit for tag in tags} == {panel.unit}, (run.id, panel.title)
            assert {run.axis_of(tag) for tag in tags} == {panel.axis}, (run.id, panel.title)
            low, high = panel.step_range
            for zoom in panel.zooms:
                assert low <= zoom.steps[0] < zoom.steps[1] <= high
                assert (zoom.steps[1] - zoom.steps[0]) * 4 <= high - low


def test_sample_logs_restart_is_drawn_with_the_points_it_overwrote() -> None:
    resumed = next(drawn for run, drawn in sample_pictures() if Path(run.id).name == "resumed_tb")
    overwritten = [t.overwritten for panel in resumed.panels for t in panel.traces if t.overwritten is not None]
    assert [(int(o.steps[0]), int(o.steps[-1]), o.points) for o in overwritten] == [(300, 450, 151)]


def test_a_cut_curve_keeps_its_first_and_last_step_so_the_panel_spans_the_run() -> None:
    run = long_run()
    panel = loss_panel(draw(run, []))
    assert panel.traces[0].steps.size <= MAX_POINTS
    assert panel.step_range == (0, LONG - 1)
    assert panel.traces[0].values[-1] == run.curve("train/loss").values[-1]
