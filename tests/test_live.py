"""The incremental engine: bounded curves that keep what the checks need, exact streamed
non-finite measurements, the same findings as ``check`` on runs it holds whole, a stop policy
that stops on a dead loss and on nothing else, and checks every N steps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rundoctor
from rundoctor.checks.non_finite import measure
from rundoctor.config import Settings
from rundoctor.engine import diagnose
from rundoctor.findings import Finding, Severity
from rundoctor.live import LiveDoctor, LiveRun
from rundoctor.live.curves import BoundedCurve, StreamedNonFinite
from rundoctor.live.engine import as_number
from rundoctor.series import RunBuilder
from tests.conftest import SAMPLE_LOGS
from tests.curves import decay, heavy_tailed, make_run, noisy

# ---------------------------------------------------------------------------------------
# What a curve keeps


def fill(curve: BoundedCurve, count: int, *, one_by_one: bool) -> np.ndarray:
    steps = np.arange(count, dtype=np.int64)
    values = steps.astype(np.float64) * 0.5
    if one_by_one:
        for step in steps.tolist():
            curve.add(step, step * 0.5, math.nan)
    else:
        for block in np.array_split(steps, 7):
            curve.extend(block, block * 0.5, np.full(block.size, math.nan))
    return values


@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_curve_the_size_of_its_bounds_is_kept_whole(one_by_one: bool) -> None:
    curve = BoundedCurve(history=64, recent=16)
    values = fill(curve, 2 * 64 + 16, one_by_one=one_by_one)

    _, kept, _ = curve.points()

    np.testing.assert_array_equal(kept, values)
    assert curve.stride == 1


@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_long_curve_keeps_a_bounded_sample_of_real_points_and_its_latest_points_whole(one_by_one: bool) -> None:
    curve = BoundedCurve(history=64, recent=16)
    fill(curve, 100_000, one_by_one=one_by_one)

    steps, values, _ = curve.points()

    assert len(curve) == steps.size <= 2 * 64 + 2 * 16
    assert steps[0] == 0  # the initial level
    np.testing.assert_array_equal(steps[-16:], np.arange(100_000 - 16, 100_000))  # the latest, whole
    assert np.all(np.diff(steps) > 0) and np.all(values == steps * 0.5)  # logged points, in order
    assert np.all(steps[:-16] % curve.stride == 0) and curve.stride > 1
    with pytest.raises(ValueError):
        BoundedCurve(history=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.5, 1.5, math.nan, math.inf, -math.inf]), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20),
)
def test_the_streamed_measurement_is_the_check_s_measurement(values: list[float], blocks: list[int]) -> None:
    steps = np.arange(len(values), dtype=np.int64) * 10
    array = np.asarray(values)
    streamed = StreamedNonFinite()
    start = 0
    for size in blocks * len(values):
        if start >= len(values):
            break
        streamed.extend(steps[start : start + size], array[start : start + size])
        start += size

    assert streamed.measured("loss") == measure("loss", steps, array)


# ---------------------------------------------------------------------------------------
# A LiveRun gives check's findings on a run it holds whole


def finding_keys(findings: Sequence[Finding]) -> list[tuple[object, ...]]:
    return sorted((f.run, f.code, f.tags, f.first_step, f.last_step, f.severity.value, f.message) for f in findings)


def test_a_live_run_fed_a_sample_run_finds_what_check_finds() -> None:
    runs = rundoctor.load(SAMPLE_LOGS)
    compared = 0
    for run in runs:
        if max(run.point_count(tag) for tag in run.tags) > 2 * 1024 + 256:
            continue  # longer than the engine keeps whole
        live = LiveRun(run.id)
        live.sync(run)
        assert finding_keys(live.check().findings) == finding_keys(diagnose([run], [], Settings()).findings), run.id
        compared += 1
    assert compared >= 20


def test_a_run_fed_in_pieces_is_the_run_fed_whole_and_a_rewritten_one_starts_again() -> None:
    (run,) = rundoctor.load(SAMPLE_LOGS / "problems" / "non_finite_tb")
    whole, pieces = LiveRun(run.id), LiveRun(run.id)
    whole.sync(run)
    for end in (300, 650, 1000):
        builder = RunBuilder()
        for tag in run.tags:
            curve = run.curve(tag)
            builder.add(tag, curve.steps[:end], curve.values[:end], curve.wall_times[:end])
        pieces.sync(builder.build(id=run.id, path=run.path, format=run.format, sources=run.sources))

    assert finding_keys(pieces.check().findings) == finding_keys(whole.check().findings)
    assert pieces.points == whole.points == run.points

    builder = RunBuilder()
    builder.add("train/loss", np.arange(50), decay(50))  # rewritten shorter: no NaN any more
    pieces.sync(builder.build(id=run.id, path=run.path, format=run.format, sources=run.sources))
    assert pieces.points == 50 and not [f for f in pieces.check().findings if f.code == "N001"]


# ---------------------------------------------------------------------------------------
# What stops a run


def doctor_after(values: dict[str, np.ndarray], **options: object) -> LiveDoctor:
    doctor = LiveDoctor(every=10, **options)  # type: ignore[arg-type]
    for tag, series in values.items():
        doctor.run.extend(tag, np.arange(series.size), series, np.full(series.size, math.nan))
    return doctor


def test_a_loss_that_turns_nan_stops_the_run() -> None:
    loss = decay(100)
    loss[95:] = math.nan

    checkup = doctor_after({"train/loss": loss}).checkup(100)

    assert checkup.stop is not None and checkup.stop.code == "N001" and checkup.stop.severity is Severity.ERROR
    assert "rundoctor stopped training at step 100: error N001 non-finite: train/loss turned non-finite at step 95" in checkup.stop_message()


def test_a_nan_gradient_norm_or_a_transient_nan_loss_does_not_stop_it() -> None:
    grad_norm = np.ones(100)
    grad_norm[97:] = math.inf  # fp16's loss scaler skipping steps: an error finding, not about a loss
    transient = decay(100)
    transient[50] = math.nan  # a warning

    checkup = doctor_after({"train/loss": transient, "grad_norm": grad_norm}).checkup(100)

    assert {(f.tags, f.severity) for f in checkup.report.findings if f.code == "N001"} == {
        (("grad_norm",), Severity.ERROR), (("train/loss",), Severity.WARNING),
    }
    assert checkup.stop is None
    # a near miss: at stop_on="warning" the transient loss NaN stops it; with no role filter the norm does
    assert doctor_after({"train/loss": transient}, stop_on="warning").checkup(100).stop is not None
    assert doctor_after({"grad_norm": grad_norm}, stop_roles=()).checkup(100).stop is not None
    assert doctor_after({"grad_norm": grad_norm}, stop_roles=(), stop_on=None).checkup(100).stop is None


def test_an_exploding_loss_stops_a_long_run_at_the_first_check_after_it() -> None:
    doctor = LiveDoctor(every=1000)
    loss = noisy(decay(60_000, start=2.0, end=0.3, rate=3.0), 0.05, seed=1)
    loss[50_000:] *= np.exp(np.linspace(0.0, 6.0, 10_000))  # 400x over the last 10,000 steps
    stopped = None
    for end in range(1000, 60_001, 1000):
        doctor.run.extend("loss", np.arange(end - 1000, end), loss[end - 1000 : end], np.full(1000, math.nan))
        checkup = doctor.checkup(end)
        if checkup.stop is not None:
            stopped = checkup
            break

    assert stopped is not None and stopped.stop is not None and stopped.stop.code == "N002"
    # The loss passes 10x its best level at step 53,474; check on the whole log finds the
    # explosion first at the 55,000 check too (at 54,000 it has not lasted long enough).
    assert stopped.step == 55_000
    for end, expected in ((54_000, []), (55_000, ["N002"])):
        whole = make_run({"loss": (np.arange(end), loss[:end])})
        assert [f.code for f in diagnose([whole], [], Settings(select=("N002",))).findings] == expected
    assert len(doctor.run.snapshot().values) <= 2 * 1024 + 2 * 1000


def test_a_long_healthy_run_with_heavy_tailed_batches_is_never_stopped() -> None:
    doctor = LiveDoctor(every=2000)
    loss = heavy_tailed(decay(40_000, start=2.3, end=0.2, rate=4.0), seed=3)
    for end in range(2000, 40_001, 2000):
        doctor.run.extend("train_loss", np.arange(end - 2000, end), loss[end - 2000 : end], np.full(2000, math.nan))
        assert doctor.checkup(end).stop is None, end


# ---------------------------------------------------------------------------------------
# When checks run, what is logged, what is refused


def test_checks_run_at_the_first_step_at_or_past_each_multiple_of_every() -> None:
    doctor = LiveDoctor(every=10)
    checked = [step for step in range(7, 50, 7) if doctor.observe(step, {"loss": 1.0 / step}) is not None]

    assert checked == [14, 21, 35, 42]  # 10 -> 14, 20 -> 21, 30 -> 35, 40 -> 42
    assert doctor.final_checkup(49) is not None and doctor.final_checkup(49) is None  # nothing new since


def test_each_finding_is_logged_once_and_infos_only_when_asked() -> None:
    loss = decay(100)
    loss[60] = math.nan
    quiet = doctor_after({"train/loss": loss}, log_on="error")
    chatty = doctor_after({"train/loss": loss}, log_on="info")

    assert quiet.checkup(100).findings == []  # the transient NaN is a warning
    first = chatty.checkup(100).findings
    assert "N001" in [f.code for f in first] and chatty.checkup(100).findings == []


def test_numbers_are_taken_from_what_frameworks_log() -> None:
    class Tensor:
        def __init__(self, *values: float) -> None:
            self.values = values

        def item(self) -> float:
            if len(self.values) != 1:
                raise RuntimeError("a tensor with several values")
            return self.values[0]

    assert [as_number(v) for v in (1, 2.5, np.float32(0.5), Tensor(3.0), Tensor(1.0, 2.0), True, "x", None, [1.0])] == [
        1.0, 2.5, 0.5, 3.0, None, None, None, None, None,
    ]
    doctor = LiveDoctor(every=10)
    doctor.record(1, {"loss": Tensor(0.5), "note": "text", "image": Tensor(1.0, 2.0)})
    assert doctor.run.snapshot().tags == ["loss"]


def test_wrong_options_are_refused() -> None:
    with pytest.raises(ValueError, match="every must be"):
        LiveDoctor(every=0)
    with pytest.raises(ValueError, match="did you mean 'non-finite'"):
        LiveDoctor(stop_checks=["non-finit"])
    with pytest.raises(ValueError, match="unknown role 'loss'"):
        LiveDoctor(stop_roles=["loss"])
    with pytest.raises(ValueError, match="level must be one of"):
        LiveDoctor(stop_on="fatal")
    with pytest.raises(ValueError, match="unknown check"):
        LiveDoctor(select="nope")


# ---------------------------------------------------------------------------------------
# rundoctor watch checks followed runs through the same engine


def test_watch_checks_a_long_followed_run_at_a_bounded_cost_and_counts_its_nan_exactly(tmp_path: Path) -> None:
    from rundoctor.watch import Watcher

    run = tmp_path / "run"
    run.mkdir()
    log = run / "metrics.csv"
    loss = decay(20_000, start=2.3, end=0.3)
    log.write_text("step,train_loss\n" + "".join(f"{step},{value!r}\n" for step, value in enumerate(loss.tolist())))
    (tmp_path / "scratch").mkdir()
    watcher = Watcher(run, Settings(), scratch=tmp_path / "scratch")
    watcher.poll()
    with log.open("a") as handle:
        handle.write("".join(f"{step},nan\n" for step in range(20_000, 20_007)))

    (nan,) = [finding for finding in watcher.poll() if finding.code == "N001"]

    assert (nan.first_step, nan.severity, nan.evidence["bad_points"]) == (20_000, Severity.ERROR, 7)
    assert "(7 points, NaN x7)" in nan.message  # counted over every point, not the kept sample
    (live,) = watcher.live.values()
    assert live.points == 20_007 and live.snapshot().points <= 2 * 1024 + 2 * 256
