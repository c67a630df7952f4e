"""What a report keeps of a run (rundoctor.summary): its inventory always, its curves only when
asked and reduced for plotting, so that a report of many runs holds no run's points; and
``check`` reads, diagnoses and lets go of runs a batch at a time."""

from __future__ import annotations

import gc
import pickle
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rundoctor import api, discover, parallel
from rundoctor.findings import Severity
from rundoctor.report import CheckOutcome, Outcomes, OutcomeStatus
from rundoctor.reporters import RenderOptions, draws_curves, render
from rundoctor.reporters.panels import MAX_POINTS, ZOOM_MAX_POINTS, trace
from rundoctor.roles import Role
from rundoctor.series import Histogram, Run
from rundoctor.summary import CURVE_POINTS, summarize
from tests.curves import decay, make_run, noisy, restarted, steps, with_spikes
from tests.reporters.reports import finding, twin_report

LONG = 100_000


def long_loss(spike_at: int = 70_001) -> np.ndarray:
    return with_spikes(noisy(decay(LONG), 0.05), at=[spike_at], height=9.0, width=3)


# Inventory -----------------------------------------------------------------------------------------

def test_the_inventory_is_the_runs_and_no_curve_is_kept_unless_asked() -> None:
    run = make_run({"train/loss": (steps(50, every=2), decay(50)), "lr": (steps(10), np.full(10, 0.1))}, run_id="r")
    run.histograms["fc1.weight"] = [Histogram(0, 0.0, np.array([0.0, 1.0]), np.array([3.0, 4.0]))] * 3
    run.metadata["optimizer"] = "adam"
    run.hparams["lr"] = "0.1"
    summary = summarize(run)
    assert summary.tags == ["train/loss", "lr"] and summary.points == 60
    loss = summary.tag_summaries[0]
    assert (loss.points, loss.first_step, loss.last_step, loss.role) == (50, 0, 98, Role.TRAIN_LOSS)
    assert (summary.first_step, summary.last_step) == (0, 98)
    assert summary.histogram_counts == {"fc1.weight": 3} and summary.metadata == {"optimizer": "adam"}
    assert summary.hparams == {"lr": "0.1"} and summary.primary[Role.LEARNING_RATE] == "lr"
    assert not summary.curves and not summary.strips
    named = finding("r", "weight-init", "W002", Severity.WARNING, tags=("fc1.weight",))
    drawn = summarize(run, [named], curves=True)
    assert set(drawn.curves) == {"train/loss", "lr"}  # the key curves
    assert [h.step for h in drawn.strips["fc1.weight"]] == [0]  # the last histogram of each step


def test_only_the_curves_a_picture_draws_are_kept() -> None:
    run = make_run({"train/loss": (steps(50), decay(50)), "loss_cls": (steps(50), decay(50)),
                    "grad_norm": (steps(50), np.ones(50)), "lr": (steps(50), np.full(50, 0.1))}, run_id="r")
    assert set(summarize(run, curves=True).curves) == {"train/loss", "lr"}  # the key panels' first choices
    clipped = finding("r", "grad-norm", "D001", Severity.WARNING, tags=("grad_norm",), steps=(0, 49))
    assert set(summarize(run, [clipped], curves=True).curves) == {"train/loss", "lr", "grad_norm"}


def test_an_empty_run_has_no_step_range() -> None:
    summary = summarize(make_run({}, run_id="empty"), curves=True)
    assert summary.points == 0 and summary.first_step is None and summary.last_step is None
    assert not summary.tags and not summary.curves


# Curves ---------------------------------------------------------------------------------------------

def test_a_curve_of_up_to_curve_points_keeps_every_point_by_step() -> None:
    values = noisy(decay(CURVE_POINTS))
    values[[10, 11, 500]] = [np.nan, np.inf, np.nan]
    run = make_run({"train/loss": (steps(CURVE_POINTS), values)}, run_id="short")
    curve = summarize(run, curves=True).curves["train/loss"]
    assert np.array_equal(curve.steps, steps(CURVE_POINTS)) and np.array_equal(curve.values, values, equal_nan=True)


def test_a_long_curve_keeps_its_extremes_and_the_panel_draws_what_every_point_draws() -> None:
    values = long_loss()
    run = make_run({"train/loss": (steps(LONG), values)}, run_id="long")
    curve = summarize(run, curves=True).curves["train/loss"]
    assert curve.steps.size <= CURVE_POINTS
    assert float(curve.values.max()) == float(values.max())  # the three-step spike survives
    assert curve.steps[0] == 0 and curve.steps[-1] == LONG - 1
    whole = trace("train/loss", steps(LONG), values)
    assert np.array_equal(curve.overview.steps, whole.steps) and np.array_equal(curve.overview.values, whole.values)
    assert curve.overview.points == LONG and curve.overview.steps.size <= MAX_POINTS


def test_around_a_findings_steps_every_point_is_kept_for_its_zoom() -> None:
    run = make_run({"train/loss": (steps(LONG), long_loss())}, run_id="long")
    spike = finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(50_000, 50_499))
    kept = summarize(run, [spike], curves=True).curves["train/loss"].steps
    around = kept[(kept >= 49_750) & (kept <= 50_749)]  # the stretch and half its length each side
    assert np.array_equal(around, np.arange(49_750, 50_750))
    elsewhere = kept[(kept >= 20_000) & (kept < 21_000)]
    assert elsewhere.size < 100  # far from the finding: only extremes
    plain = summarize(run, curves=True).curves["train/loss"].steps
    assert plain[(plain >= 49_750) & (plain <= 50_749)].size < 100  # near miss: no finding, no detail


def test_a_findings_stretch_longer_than_a_zoom_keeps_its_extremes_within_the_zooms_budget() -> None:
    run = make_run({"train/loss": (steps(LONG), long_loss(spike_at=60_001))}, run_id="long")
    wide = finding("long", "loss-spikes", "S002", Severity.WARNING, steps=(59_000, 60_999))
    kept = summarize(run, [wide], curves=True).curves["train/loss"]
    inside = (kept.steps >= 58_000) & (kept.steps <= 61_999)
    assert ZOOM_MAX_POINTS // 2 < int(inside.sum()) <= ZOOM_MAX_POINTS + CURVE_POINTS // 10
    assert 60_001 in kept.steps[inside]


def test_non_finite_stretches_keep_their_ends_so_lines_still_break_there() -> None:
    values = noisy(decay(LONG))
    values[30_000:60_000] = np.nan
    values[80_000] = np.inf
    run = make_run({"train/loss": (steps(LONG), values)}, run_id="nan")
    curve = summarize(run, curves=True).curves["train/loss"]
    bad = curve.steps[~np.isfinite(curve.values)]
    assert {30_000, 59_999, 80_000} <= set(bad.tolist()) and bad.size < 10
    assert curve.overview.non_finite == 30_001  # counted over the whole curve
    breaks = curve.overview.steps[curve.overview.breaks]
    assert breaks.tolist() == trace("train/loss", steps(LONG), values).steps[
        trace("train/loss", steps(LONG), values).breaks].tolist()


def test_a_restart_keeps_the_points_it_overwrote() -> None:
    attempts = restarted((0, 3_000), (2_000, 4_000))
    values = np.concatenate((decay(3_000), 0.5 * decay(2_000)))
    run = make_run({"train/loss": (attempts, values)}, run_id="resumed")
    curve = summarize(run, curves=True).curves["train/loss"]
    assert curve.restarted == (2_000, 2_999)
    assert curve.overwritten_overview is not None and curve.overwritten_overview.points == 1_000
    assert curve.overwritten is not None and curve.overwritten.steps.size <= CURVE_POINTS


# Reports of many runs -------------------------------------------------------------------------------

def write_tree(root: Path, runs: int) -> Path:
    for index in range(runs):
        folder = root / f"run-{index:03d}"
        folder.mkdir(parents=True)
        loss = decay(120, start=2.0 + index / 10)
        rows = "".join(f"{step},{value:.6f}\n" for step, value in enumerate(loss))
        (folder / "metrics.csv").write_text("step,loss\n" + rows, encoding="utf-8")
    return root


def test_check_lets_go_of_each_batch_of_runs_before_reading_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write_tree(tmp_path / "tree", 24)
    monkeypatch.setattr(parallel, "MAX_RUNS_PER_BATCH", 4)
    alive: list[weakref.ref[Run]] = []
    most = 0
    real_read = discover.read_run

    def read_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal most
        gc.collect()
        read = real_read(*args, **kwargs)
        alive.append(weakref.ref(read))
        most = max(most, sum(1 for ref in alive if ref() is not None))
        return read

    monkeypatch.setattr(discover, "read_run", read_run)
    report = api.check(tree, jobs=1, curves=False)
    assert len(report.runs) == len(alive) == 24
    assert most <= 4  # a batch at a time, not the whole tree
    assert all(not summary.curves for summary in report.runs)
    loaded = api.load(tree)  # the library's way to the runs themselves
    assert len(loaded) == 24 and loaded[0].points == 120


def test_a_report_keeps_curves_for_the_formats_that_draw_them() -> None:
    assert draws_curves("html", RenderOptions())
    assert draws_curves("text", RenderOptions(verbose=True))
    assert not draws_curves("text", RenderOptions())
    assert not draws_curves("json", RenderOptions())
    assert not draws_curves("concise", RenderOptions(verbose=True))


def test_a_report_without_curves_renders_every_format_but_the_pictures_the_same(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", 3)
    kept, lean = api.check(tree, jobs=1), api.check(tree, jobs=1, curves=False)
    assert all(summary.curves for summary in kept.runs) and not any(summary.curves for summary in lean.runs)
    for format in ("json", "text", "markdown", "github", "junit", "concise"):
        assert render(format, lean) == render(format, kept), format
    assert "<svg" in render("html", kept)


def test_the_runs_of_a_sweep_share_their_tag_records_and_mappings_also_from_a_worker() -> None:
    first, second = (make_run({"train/loss": (steps(20), decay(20)), "lr": (steps(20), np.full(20, 0.1))},
                              run_id=f"sweep/{index}") for index in range(2))
    one, two = summarize(first), summarize(second)
    assert one.tag_summaries[0] is two.tag_summaries[0] and one.roles is two.roles
    assert one.metadata is two.metadata
    back = pickle.loads(pickle.dumps(two))  # what a worker sends back
    assert back.tag_summaries[0] is one.tag_summaries[0] and back == two
    longer = summarize(make_run({"train/loss": (steps(21), decay(21))}, run_id="sweep/2"))
    assert longer.tag_summaries[0] is not one.tag_summaries[0]  # near miss: one more point
    outcome = CheckOutcome("val-gap", "G001", "sweep/0", OutcomeStatus.SKIPPED, "".join(["no val_loss", " series"]))
    assert pickle.loads(pickle.dumps(outcome)).reason is sys.intern("no val_loss series")


def test_metadata_that_cannot_be_hashed_is_kept_as_it_is() -> None:
    run = make_run({"train/loss": (steps(20), decay(20))}, run_id="odd")
    run.metadata["layers"] = [64, 32]  # type: ignore[assignment]  # what a careless reader might leave
    assert summarize(run).metadata == {"layers": [64, 32]}


def test_a_groups_outcomes_are_looked_up_in_report_order() -> None:
    report = twin_report()
    members = {run.id for run in report.members("out/train")}
    assert len(members) == 2
    expected = [o for o in report.outcomes if o.run in members]
    assert report.group_outcomes("out/train") == expected and len(expected) == 2
    assert report.outcomes_for("out/other.csv") == [o for o in report.outcomes if o.run == "out/other.csv"]
    assert report.outcomes_for("nowhere") == []


def test_outcomes_are_held_by_run_and_code_and_equal_ones_are_shared() -> None:
    def made(run: str) -> list[CheckOutcome]:
        return [CheckOutcome("val-gap", "G001", run, OutcomeStatus.SKIPPED, "no val_loss series"),
                CheckOutcome("non-finite", "N001", run, OutcomeStatus.RAN)]

    given = [*made("b"), *made("a"), CheckOutcome("loss-spikes", "S002", "c", OutcomeStatus.ERROR, "boom")]
    outcomes = Outcomes(given)
    expected = sorted(given, key=lambda o: (o.run, o.code))
    assert list(outcomes) == expected and len(outcomes) == 5
    assert [outcomes[i] for i in range(5)] == expected and outcomes[-1] == expected[-1]
    assert outcomes[1:3] == tuple(expected[1:3])
    with pytest.raises(IndexError):
        outcomes[5]
    assert outcomes.for_run("a") == expected[:2] and outcomes.for_run("zz") == []
    assert outcomes._said[0] is outcomes._said[1]  # runs a and b say the same: one tuple
    back = pickle.loads(pickle.dumps(outcomes))
    assert back == outcomes and back._said[0] is outcomes._said[0]
    split = Outcomes.joined([Outcomes(made("b")), Outcomes(given[-1:]), Outcomes(made("a"))])
    assert list(split) == expected
    twice = Outcomes.joined([Outcomes(made("a")[:1]), Outcomes(made("a")[1:])])  # one run in two parts
    assert list(twice) == sorted(made("a"), key=lambda o: o.code)
