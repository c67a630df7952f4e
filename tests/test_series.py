"""The common time series keeps every point and gives checks a clean per-step view."""

from __future__ import annotations

import numpy as np

from rundoctor.series import RunBuilder


def build(**series: tuple[list[int], list[float]]):
    builder = RunBuilder()
    for tag, (steps, values) in series.items():
        builder.add(tag, steps, values)
    return builder.build(id="r", path="r", format="test", sources=["r"])


def test_points_are_kept_in_log_order_with_non_finite_values() -> None:
    run = build(loss=([0, 1, 2], [1.0, np.nan, np.inf]), acc=([0], [0.5]))
    curve = run.curve("loss")
    assert run.points == 4
    assert curve.steps.tolist() == [0, 1, 2]
    assert np.isnan(curve.values[1]) and curve.values[2] == np.inf
    assert np.isnan(curve.wall_times).all()
    assert run.tags == ["loss", "acc"]


def test_by_step_sorts_and_keeps_the_last_write_of_a_repeated_step() -> None:
    # A resume rewrote steps 2 and 3: the newer values are what training continued from.
    run = build(loss=([0, 1, 2, 3, 2, 3, 4], [5.0, 4.0, 3.0, 2.0, 3.5, 2.5, 1.0]))
    raw = run.curve("loss")
    view = raw.by_step
    assert len(raw) == 7
    assert view.steps.tolist() == [0, 1, 2, 3, 4]
    assert view.values.tolist() == [5.0, 4.0, 3.5, 2.5, 1.0]


def test_finite_drops_nan_and_inf_only() -> None:
    run = build(loss=([0, 1, 2, 3], [1.0, np.nan, -np.inf, 0.5]))
    assert run.curve("loss").finite.values.tolist() == [1.0, 0.5]


def test_missing_tag_is_an_empty_curve_and_frame_is_categorical() -> None:
    run = build(loss=([0, 1], [1.0, 0.5]))
    assert len(run.curve("nope")) == 0
    frame = run.frame()
    assert list(frame.columns) == ["tag", "step", "wall_time", "value"]
    assert frame["tag"].dtype.name == "category"
    assert frame["value"].tolist() == [1.0, 0.5]


def test_points_are_grouped_by_tag_in_log_order_and_curves_are_views() -> None:
    builder = RunBuilder()
    a, b = builder.code("a"), builder.code("b")
    codes = np.array([a, b, a, b, b, a], np.int32)
    steps = np.array([0, 0, 1, 1, 2, 2])
    values = np.array([1.0, 10.0, 2.0, 20.0, 30.0, 3.0])
    builder.add_coded(codes, steps, values, np.full(6, np.nan))
    run = builder.build(id="r", path="r", format="test", sources=["r"])
    assert run.tag_codes.tolist() == [0, 0, 0, 1, 1, 1]
    assert run.values.tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]
    curve = run.curve("b")
    assert curve.values.tolist() == [10.0, 20.0, 30.0]
    assert np.shares_memory(curve.values, run.values)  # a view, not a copy
