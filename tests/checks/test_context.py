"""The run context the checks of one run share: curves and measurements computed once, read-only.

The engine hands every check of a run one context, so what one check measures through
``RunContext.measure`` the next gets without measuring it again.  Sharing must change no
finding: a measurement is keyed by the very arrays it was taken of and by its parameters,
and nothing handed out can be written to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from rundoctor import engine
from rundoctor.checks import measures
from rundoctor.checks.base import RunContext
from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.roles import Role
from tests import curves
from tests.conftest import SAMPLE_LOGS


def _context() -> RunContext:
    n = 300
    return curves.context(
        curves.make_run(
            {
                "train/loss": (curves.steps(n), curves.noisy(curves.decay(n), 0.05)),
                "val/loss": (curves.steps(30, 10), curves.decay(30, 2.0, 0.5)),
                "train/acc": (curves.steps(n), curves.rise(n)),
            }
        )
    )


class _Counting:
    """A measurement that counts how often it is taken."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, values: np.ndarray, width: int) -> np.ndarray:
        self.calls += 1
        return measures.rolling_median(values, width)


def test_a_measurement_of_the_same_arrays_and_parameters_is_taken_once() -> None:
    ctx = _context()
    smooth = _Counting()
    values = ctx.curve("train/loss").finite.values
    first = ctx.measure(smooth, values, 15)
    assert ctx.measure(smooth, values, 15) is first
    assert ctx.measure(smooth, ctx.curve("train/loss").finite.values, 15) is first  # the same curve
    assert smooth.calls == 1
    assert np.array_equal(first, measures.rolling_median(values, 15))


def test_other_parameters_or_other_arrays_are_measured_anew() -> None:
    ctx = _context()
    smooth = _Counting()
    values = ctx.curve("train/loss").finite.values
    ctx.measure(smooth, values, 15)
    ctx.measure(smooth, values, 16)
    ctx.measure(smooth, values.copy(), 15)  # equal values, another array: identity decides
    ctx.measure(smooth, ctx.curve("val/loss").finite.values, 15)
    assert smooth.calls == 4


def test_a_parameter_is_matched_by_type_and_value() -> None:
    ctx = _context()
    smooth = _Counting()
    values = ctx.curve("train/loss").finite.values
    ctx.measure(smooth, values, 15)
    ctx.measure(smooth, values, np.int64(15))
    assert smooth.calls == 2


def test_what_a_context_hands_out_is_read_only() -> None:
    ctx = _context()
    curve = ctx.curve("train/loss")
    binned = ctx.measure(measures.binned, curve.finite.steps, curve.finite.values)
    smooth = ctx.measure(measures.rolling_median, binned.level, 9)
    levels = ctx.measure(measures.edge_levels, binned.level, 0.1)  # a tuple of floats: nothing to lock
    assert levels == measures.edge_levels(binned.level, 0.1)
    for array in (curve.values, curve.steps, curve.finite.values, binned.steps, binned.level, binned.high, smooth):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0


def test_a_tag_list_is_the_callers_own() -> None:
    ctx = _context()
    losses = ctx.tags(Role.TRAIN_LOSS, Role.VAL_LOSS)
    losses.append("extra")
    assert ctx.tags(Role.TRAIN_LOSS, Role.VAL_LOSS) == ["train/loss", "val/loss"]
    assert ctx.primary(Role.TRAIN_LOSS) == "train/loss" and ctx.primary(Role.GRAD_NORM) is None


def _findings_alone(run: Any) -> list[Any]:
    """Every check's findings, each check with a context of its own (nothing shared)."""
    return [finding for check in REGISTRY for finding in curves.run_check(check, run)]


def _findings_shared(run: Any, order: list[Any]) -> list[Any]:
    """Every check's findings, all of them sharing one context, run in ``order``, listed in
    registry order."""
    from rundoctor.checks.classes import resolve_num_classes

    ctx = RunContext(run, num_classes=resolve_num_classes(run))
    found = {
        check.name: list(check.detect(check, ctx, check.default_params()))
        for check in order
        if not check.missing(run)
    }
    return [finding for check in REGISTRY for finding in found.get(check.name, [])]


def _sample_runs() -> list[Any]:
    from rundoctor.discover import load_runs

    runs, _ = load_runs([SAMPLE_LOGS])
    return runs


@pytest.mark.parametrize("run", _sample_runs(), ids=lambda run: run.id)
def test_sharing_one_context_changes_no_finding_in_any_order(run: Any) -> None:
    alone = _findings_alone(run)
    assert _findings_shared(run, list(REGISTRY)) == alone
    assert _findings_shared(run, list(reversed(REGISTRY))) == alone


def test_the_sample_runs_give_findings_to_compare() -> None:
    assert sum(len(_findings_alone(run)) for run in _sample_runs()) >= 20


def test_the_engine_gives_the_checks_of_a_run_one_context_and_each_run_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []

    def spy(check: Any, ctx: RunContext, params: Any) -> list[Any]:
        seen.append((ctx.run.id, id(ctx)))
        return []

    checks = [dataclasses.replace(check, detect=spy) for check in REGISTRY[:3]]
    runs = [curves.make_run({"train/loss": (curves.steps(50), curves.decay(50))}, run_id=f"run{i}") for i in range(2)]
    engine.diagnose(runs, [], Settings(), checks)
    contexts = {run_id: {context for seen_id, context in seen if seen_id == run_id} for run_id in ("run0", "run1")}
    assert [len(found) for found in contexts.values()] == [1, 1]
    assert contexts["run0"] != contexts["run1"]
