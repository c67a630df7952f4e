"""The registry is the public contract: names, codes, docs and params are checked as a whole."""

from __future__ import annotations

import dataclasses
import re

import pytest

from rundoctor.checks.base import Check
from rundoctor.checks.registry import REGISTRY
from rundoctor.docs import SECTIONS, render_checks
from tests.conftest import REPO

# Names published so far: part of the CLI/JSON contract, so none may disappear or change.
# A new check needs no line here (adding one is its module and its registry line).
PUBLISHED = (
    "non-finite", "loss-divergence", "loss-magnitude", "no-learning", "lr-too-low", "loss-plateau",
    "loss-oscillation", "loss-spikes", "still-improving", "metric-flat-loss-falling",
    "delayed-generalization", "chance-level", "class-imbalance", "underconfident",
    "metric-out-of-range", "metric-loss-disagreement", "overfitting", "val-better-than-train",
    "loss-scale-imbalance", "duplicate-steps", "truncated-log", "grad-norm",
    "vanishing-gradients", "exploding-gradients", "dead-units", "saturated-activations", "update-ratio",
    "weight-init",
)


def test_no_published_check_name_disappears() -> None:
    names = [check.name for check in REGISTRY]
    assert len(set(names)) == len(names)
    assert [name for name in PUBLISHED if name not in names] == []


def test_codes_are_unique_and_never_encode_severity() -> None:
    codes = [check.code for check in REGISTRY]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[NCMGTLDAW]\d{3}", code) for code in codes), codes


@pytest.mark.parametrize("check", REGISTRY, ids=lambda c: c.name)
def test_each_check_documents_itself(check: Check) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", check.name)
    positions = [check.doc.find(f"\n{section}\n") for section in SECTIONS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), check.name
    assert check.title and check.advice
    assert check.example is not None, f"{check.name} has no example curve for explain"
    steps, values = check.example()
    assert len(steps) == len(values) > 1
    assert dataclasses.is_dataclass(check.params)
    assert check.params.__dataclass_params__.frozen  # type: ignore[attr-defined]
    for name, default, help_text in check.param_docs():
        assert help_text, f"{check.name}.{name} has no help text"
        assert check.make_params({name: default}) == check.default_params()


def test_docs_checks_md_is_fresh() -> None:
    committed = (REPO / "docs" / "checks.md").read_text(encoding="utf-8")
    assert committed == render_checks(REGISTRY), "docs/checks.md is stale: run python scripts/render_docs.py"
