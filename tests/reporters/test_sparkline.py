from __future__ import annotations

import numpy as np
import pytest

from rundoctor.reporters.sparkline import BARS, MARK, NON_FINITE, sparkline, value_range
from tests.curves import decay, steps, with_nan, with_spikes


def test_one_column_per_point_when_the_curve_is_short() -> None:
    line = sparkline(steps(5), [1.0, 2.0, 3.0, 4.0, 5.0], 40)
    assert line.bars == "▁▃▅▇█"
    assert (line.low, line.high) == (1.0, 5.0)


def test_a_long_curve_is_squeezed_to_the_width_and_keeps_its_shape() -> None:
    line = sparkline(steps(10_000), decay(10_000), 50)
    assert len(line.bars) == 50
    assert line.bars[0] == BARS[-1] and line.bars[-1] == BARS[0]
    levels = [BARS.index(char) for char in line.bars]
    assert levels == sorted(levels, reverse=True)  # a decay never draws upward


def test_a_three_point_spike_in_a_long_curve_reaches_full_height() -> None:
    values = with_spikes(np.ones(100_000), at=[50_000], height=5.0, width=3)
    line = sparkline(steps(100_000), values, 60)
    assert line.bars.count(BARS[-1]) == 1
    assert set(line.bars) == {BARS[0], BARS[-1]}


def test_a_dip_shows_as_well_as_a_spike() -> None:
    values = np.ones(1000)
    values[500:502] = 0.2
    line = sparkline(steps(1000), values, 40)
    assert line.bars.count(BARS[0]) == 1


def test_one_nan_among_many_points_is_never_averaged_away() -> None:
    values = decay(100_000)
    values[77_777] = np.nan
    line = sparkline(steps(100_000), values, 60)
    assert line.bars.count(NON_FINITE) == 1
    assert line.low == pytest.approx(float(np.nanmin(values)), rel=1e-3)


def test_infinities_draw_as_non_finite() -> None:
    line = sparkline(steps(4), [1.0, np.inf, -np.inf, 2.0], 10)
    assert line.bars == f"▁{NON_FINITE}{NON_FINITE}█"


def test_a_constant_curve_draws_a_flat_line() -> None:
    line = sparkline(steps(100), np.full(100, 0.7), 20)
    assert len(set(line.bars)) == 1 and line.bars[0] in BARS


def test_a_nearly_flat_curve_is_not_stretched_to_full_height() -> None:
    # 1.386 +/- 0.3%: noise around ln 4, which must not look like wild swings.
    values = np.log(4) * (1 + 0.003 * np.sin(np.arange(40)))
    line = sparkline(steps(40), values, 40)
    assert set(line.bars) <= set(BARS[3:5])
    # A 20% move on the same level is drawn across the full height.
    moving = np.linspace(1.4, 1.12, 40)
    assert sparkline(steps(40), moving, 40).bars[::39] == BARS[-1] + BARS[0]


def test_all_nan_and_empty_curves() -> None:
    assert sparkline(steps(5), np.full(5, np.nan), 10).bars == NON_FINITE * 5
    empty = sparkline(np.empty(0, np.int64), np.empty(0), 10)
    assert (empty.bars, empty.region, empty.marks) == ("", None, "")


def test_values_near_the_float_limit_do_not_overflow() -> None:
    line = sparkline(steps(3), [-1e308, 0.0, 1e308], 10)
    assert line.bars == "▁▅█"


def test_unsorted_steps_are_drawn_in_step_order() -> None:
    line = sparkline(np.array([2, 0, 1]), [3.0, 1.0, 2.0], 10)
    assert line.bars == "▁▅█"


def test_the_region_marks_the_columns_of_its_steps() -> None:
    values = with_nan(decay(1000), 600)
    line = sparkline(steps(1000), values, 50, (600, 999))
    assert line.region == (30, 49)
    assert line.marks == " " * 30 + MARK * 20
    assert line.bars[30:] == NON_FINITE * 20
    assert NON_FINITE not in line.bars[:30]


def test_open_ended_and_single_step_regions() -> None:
    curve_steps = steps(100, every=10)
    values = decay(100)
    assert sparkline(curve_steps, values, 10, (500, None)).region == (5, 9)
    assert sparkline(curve_steps, values, 10, (None, 95)).region == (0, 0)
    assert sparkline(curve_steps, values, 100, (420, 420)).region == (42, 42)
    assert sparkline(curve_steps, values, 10, None).region is None
    assert sparkline(curve_steps, values, 10, (None, None)).region is None


def test_a_region_between_logged_steps_or_outside_them_marks_the_nearest_column() -> None:
    curve_steps = steps(10, every=100)  # 0, 100, ..., 900
    values = decay(10)
    assert sparkline(curve_steps, values, 10, (450, 460)).region == (5, 5)
    assert sparkline(curve_steps, values, 10, (5000, 6000)).region == (9, 9)
    assert sparkline(curve_steps, values, 10, (-50, -10)).region == (0, 0)


def test_value_range_uses_finite_values_only() -> None:
    assert value_range(np.array([np.nan, 0.5, 2.0, np.inf])) == "0.5..2"
    assert value_range(np.array([np.nan])) == "no finite values"
    assert value_range(np.array([0.24091, 0.24134])) == "0.2409..0.2413"  # digits until the ends differ
    assert value_range(np.array([3.0, 3.0])) == "3..3"
