"""What every registered check must do, whatever it measures: one test over the registry.

A new check gets these for free: it survives every hostile series in every series it
reads (empty, one point, constant, all NaN, unsorted, repeated steps, 1e30, infinities),
its findings are well formed and carry its own code, and each of its parameters can be set
from configuration (unknown names, wrong types and values outside the parameter's range,
NaN and infinity included, are refused with the check's name).
What a check finds, and its near misses, are tested in its own module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rundoctor.checks.base import Check
from rundoctor.checks.registry import REGISTRY
from rundoctor.roles import Role
from tests import curves

N = 60

# One ordinary run holding a series of every role a check can ask for, by role override so
# that no tag name decides anything here.
BASE: dict[Role, curves.Series] = {
    Role.TRAIN_LOSS: (curves.steps(N, 10), curves.noisy(curves.decay(N, 2.3, 0.3), 0.05, seed=1)),
    Role.VAL_LOSS: (curves.steps(N, 10), curves.noisy(curves.decay(N, 2.3, 0.4), 0.02, seed=2)),
    Role.LOSS_COMPONENT: (curves.steps(N, 10), curves.noisy(curves.decay(N, 1.2, 0.2), 0.05, seed=3)),
    Role.VAL_LOSS_COMPONENT: (curves.steps(N, 10), curves.noisy(curves.decay(N, 1.2, 0.25), 0.02, seed=4)),
    Role.TRAIN_ACCURACY: (curves.steps(N, 10), curves.rise(N, 0.1, 0.92)),
    Role.VAL_ACCURACY: (curves.steps(N, 10), curves.rise(N, 0.1, 0.88)),
    Role.PER_CLASS_METRIC: (curves.steps(N, 10), curves.rise(N, 0.05, 0.8)),
    Role.BALANCED_METRIC: (curves.steps(N, 10), curves.rise(N, 0.1, 0.85)),
    Role.VAL_METRIC: (curves.steps(N, 10), curves.rise(N, 0.0, 0.6)),
    Role.AUC: (curves.steps(N, 10), curves.rise(N, 0.5, 0.95)),
    Role.CONFIDENCE: (curves.steps(N, 10), curves.rise(N, 0.1, 0.9)),
    Role.LEARNING_RATE: (curves.steps(N, 10), np.full(N, 1e-3)),
    Role.GRAD_NORM: (curves.steps(N, 10), curves.noisy(np.full(N, 1.5), 0.1, seed=5)),
}
TAG = {role: f"series_{role.value}" for role in BASE}
ROLE_OF = {role.value: tag for role, tag in TAG.items()}  # --role ROLE=TAG


def _roles_read(check: Check[Any]) -> list[Role]:
    """Every role the check may read: its needs, or every role for checks that read any tag."""
    needed = [role for need in check.needs for role in (need if isinstance(need, tuple) else (need,))]
    return [role for role in (needed or BASE) if role in BASE]


CASES = [
    pytest.param(check, role, name, id=f"{check.name}-{role.value}-{name}")
    for check in REGISTRY
    for role in _roles_read(check)
    for name in curves.HOSTILE
]


def _run(replaced: Role, series: curves.Series) -> Any:
    data = {TAG[role]: (series if role is replaced else BASE[role]) for role in BASE}
    return curves.make_run(data, role_overrides=ROLE_OF)


@pytest.mark.parametrize("check, role, name", CASES)
def test_hostile_series_in_any_role(check: Check[Any], role: Role, name: str) -> None:
    findings = curves.run_check(check, _run(role, curves.HOSTILE[name]))
    for finding in findings:
        assert finding.check == check.name and finding.code == check.code
        curves.assert_well_formed(finding)


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_hostile_series_in_every_role_at_once(check: Check[Any], name: str) -> None:
    run = curves.make_run(dict.fromkeys(TAG.values(), curves.HOSTILE[name]), role_overrides=ROLE_OF)
    for finding in curves.run_check(check, run):
        assert finding.code == check.code
        curves.assert_well_formed(finding)


@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_an_ordinary_run_gives_no_error(check: Check[Any]) -> None:
    findings = curves.run_check(check, curves.make_run(
        {TAG[role]: BASE[role] for role in BASE}, role_overrides=ROLE_OF))
    assert [f.message for f in findings if f.severity.value == "error"] == []


@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_every_parameter_can_be_overridden_and_is_validated(check: Check[Any]) -> None:
    for name, default, _ in check.param_docs():
        assert check.make_params({name: default}) == check.default_params()
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            other = _another_allowed(default, check.param_range(name))
            changed = check.make_params({name.replace("_", "-"): other})
            assert getattr(changed, name) == other
            with pytest.raises(ValueError, match=check.name):
                check.make_params({name: "a string"})
    with pytest.raises(ValueError, match="unknown parameter"):
        check.make_params({"no_such_parameter": 1})


@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_every_numeric_parameter_has_a_range_that_holds_its_default(check: Check[Any]) -> None:
    for name, default, _ in check.param_docs():
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            allowed = check.param_range(name)
            assert allowed is not None and default in allowed, f"{check.name}.{name} = {default!r} outside {allowed}"


@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_values_outside_a_parameter_range_are_refused_naming_it_and_the_range(check: Check[Any]) -> None:
    for name, default, _ in check.param_docs():
        allowed = check.param_range(name)
        if allowed is None:
            continue
        outside = [allowed.low - 1] + ([allowed.high + 0.5] if allowed.high is not None else [])
        if allowed.low_open:
            outside.append(allowed.low)  # the open end itself: a confidence of 0 or 1
        if isinstance(default, float):
            outside += [float("nan"), float("inf"), float("-inf")]
        for value in outside:
            value = int(value) if isinstance(default, int) and value == int(value) else value
            with pytest.raises(ValueError, match=rf"{check.name}: parameter '{name}' must be a finite number .*{_re(allowed)}"):
                check.make_params({name: value})


def _another_allowed(default: float, allowed: Any) -> float:
    """A value in the range other than the default: halfway to the upper end when there is one."""
    if isinstance(default, int) or allowed.high is None:
        return default * 2 + 1
    return (default + (allowed.high if default != allowed.high else allowed.low)) / 2


def _re(allowed: Any) -> str:
    return str(allowed).replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
