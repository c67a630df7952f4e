"""Heat strips in the HTML report: one per histogram tag a finding names, and only those."""

from __future__ import annotations

import re

import numpy as np

from rundoctor.findings import Finding, Severity
from rundoctor.reporters import heatstrip
from rundoctor.reporters.heatstrip import COLUMNS, MAX_STRIPS, ROWS, _shares
from rundoctor.series import Run
from rundoctor.summary import summarize
from tests.checks import histogram_logs as logs
from tests.reporters.reports import finding


def heat_strips(run: Run, findings: list[Finding]) -> str:
    """The strips a report draws: from the run's summary, made with these findings."""
    return heatstrip.heat_strips(summarize(run, findings, curves=True), findings)


def _dying_relu() -> list:
    return logs.over_steps(lambda i, step: logs.relu_outputs(4096, 0.0 if i < 5 else 1.0, seed=step), range(0, 1000, 100))


def test_a_strip_is_drawn_for_each_histogram_a_finding_names() -> None:
    run = logs.run_with({"activations/fc1": _dying_relu(), "activations/fc2": _dying_relu()})
    named = finding(run.id, "dead-units", "A001", Severity.ERROR, tags=("activations/fc1", "train/loss"))
    html = heat_strips(run, [named])
    assert html.count("<figure") == 1 and "activations/fc1" in html and "activations/fc2" not in html
    assert heat_strips(run, []) == ""


def test_the_mass_moves_to_the_bottom_band_as_the_units_die() -> None:
    grid, low, high = _shares(_dying_relu())
    assert grid.shape == (ROWS, 10) and low == 0.0 and high > 1
    assert grid[0, -1] == 1.0 and grid[1:, -1].sum() == 0.0  # every value exactly zero
    assert grid[1:, 0].sum() > 0  # live units spread over the bands


def test_long_runs_and_many_layers_are_capped() -> None:
    long = logs.over_steps(lambda i, step: logs.rng(step).normal(0, 1, 256), range(500))
    run = logs.run_with({f"layer{k}.weight": long for k in range(MAX_STRIPS + 3)})
    named = finding(run.id, "update-ratio", "W001", Severity.WARNING, tags=tuple(run.histograms))
    html = heat_strips(run, [named])
    assert html.count("<figure") == MAX_STRIPS
    assert f'viewBox="0 0 {COLUMNS * 8} {ROWS * 5}"' in html  # 48 steps of 8 pixels
    short = heat_strips(logs.run_with({"fc1.weight": long[:6]}),
                        [finding(run.id, "update-ratio", "W001", Severity.WARNING, tags=("fc1.weight",))])
    assert f'viewBox="0 0 240 {ROWS * 5}"' in short  # few steps: wider cells
    assert len(html) < 40_000 * MAX_STRIPS


def test_unreadable_histograms_draw_nothing_and_tags_are_escaped() -> None:
    from rundoctor.series import Histogram

    bad = [Histogram(0, float("nan"), np.array([1.0, 0.5]), np.array([1.0, 1.0]))]
    run = logs.run_with({"fc1.weight": bad, "<b>.weight": logs.over_steps(lambda i, s: np.ones(8) * i, range(3))})
    html = heat_strips(run, [finding(run.id, "weight-init", "W002", Severity.WARNING, tags=("fc1.weight", "<b>.weight"))])
    assert html.count("<figure") == 1 and "&lt;b&gt;.weight" in html and not re.search(r"<b>", html)
