"""The default text report stays short on a tree of real size: in a pipe (80 columns) fewer
than 250 lines, and every error on the first screen (the first 50 lines).

Pinned on a tree written here in the shape of ../shared/real_logs (48 runs in Lightning
``metrics.csv`` files under long repository-like directory names: a few that went NaN or never
learned, some overfitting, many still improving, the rest healthy), and checked on the real
logs when they are beside the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.diagnosis import Verdict
from rundoctor.discover import load_runs
from rundoctor.engine import diagnose
from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions, render
from rundoctor.reporters.layout import GUTTER
from tests.curves import decay, linear, noisy, overfit, with_nan

PIPE = RenderOptions(width=80, color=False)  # what `rundoctor check ... | cat` gets
MAX_LINES = 250
FIRST_SCREEN = 50
POINTS = 200


def _columns(kind: str, seed: int) -> dict[str, np.ndarray]:
    if kind == "nan":
        return {"train_loss": with_nan(noisy(decay(POINTS), seed=seed), 120),
                "val_loss": noisy(decay(POINTS, start=2.2, end=0.3), seed=seed + 1)}
    if kind == "stalled":  # a loss at ln 10 and an accuracy at chance: no learning, chance level
        return {"train_loss": noisy(np.full(POINTS, np.log(10)), 0.002, seed=seed),
                "val_accuracy": noisy(np.full(POINTS, 0.1), 0.01, seed=seed + 1)}
    if kind == "overfit":
        return {"train_loss": noisy(decay(POINTS), seed=seed), "val_loss": noisy(overfit(POINTS), 0.01, seed=seed + 1)}
    if kind == "improving":
        return {"train_loss": noisy(linear(POINTS, 2.0, 1.0), 0.005, seed=seed)}
    return {"train_loss": noisy(decay(POINTS, rate=8), seed=seed),
            "val_loss": noisy(decay(POINTS, start=2.2, end=0.3, rate=8), seed=seed + 1)}


# As in real_logs: most runs are fine or carry a note, a few are serious.
KINDS = {"nan": 3, "stalled": 2, "overfit": 9, "improving": 14, "healthy": 20}


def write_tree(root: Path) -> Path:
    """48 runs, each ``owner__repo__kind-N/lightning_logs/version_0/metrics.csv``."""
    seed = 0
    for kind, count in KINDS.items():
        for index in range(count):
            seed += 2
            columns = _columns(kind, seed)
            header = "step," + ",".join(columns)
            rows = [f"{step * 10}," + ",".join(f"{columns[name][step]:.6g}" for name in columns) for step in range(POINTS)]
            path = root / f"some-user-{index}__a-rather-long-project-name__lightning-{kind}-{index}" / "lightning_logs"
            path = path / "version_0" / "metrics.csv"
            path.parent.mkdir(parents=True)
            path.write_text("\n".join([header, *rows]) + "\n")
    return root


def checked(root: Path) -> Report:
    runs, errors = load_runs([root])
    return diagnose(runs, errors, Settings(), REGISTRY)


def assert_short_with_errors_first(report: Report) -> None:
    lines = render("text", report, PIPE).splitlines()
    assert len(lines) < MAX_LINES, f"{len(lines)} lines"
    errors = [f for f in report.shown_findings if f.severity is Severity.ERROR]
    assert errors, "the tree must hold errors for the first-screen property to mean anything"
    # Each error is one line led by its severity, never folded away.
    error_lines = [index for index, line in enumerate(lines) if line.startswith("  error ")]
    assert len(error_lines) == len(errors)
    assert max(error_lines) < FIRST_SCREEN, f"an error on line {max(error_lines) + 1}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    root = write_tree(tmp_path_factory.mktemp("logs") / "tree")
    return root, checked(root)


def test_a_tree_the_size_of_the_real_logs_gets_a_short_report_with_errors_first(tree: tuple[Path, Report]) -> None:
    root, report = tree
    assert len(report.groups) == sum(KINDS.values())
    assert_short_with_errors_first(report)
    text = render("text", report, PIPE)
    assert " ".join(text.replace(GUTTER, "").split()).startswith(f"48 runs under {root}/, worst first")
    # Every healthy run is named, once; only a line holding a name too long for it is wider.
    names = {run.id: run.id.removeprefix("tree/") for run in report.leaders}
    healthy = [names[run.id] for run in report.leaders if report.verdict(run.id) is Verdict.HEALTHY]
    assert len(healthy) > 10
    assert all(len(re.findall(re.escape(name) + r"\b", text)) == 1 for name in healthy)
    wide = [line for line in text.splitlines()[2:] if len(line) > PIPE.width]
    assert all(any(name in line for name in names.values()) for line in wide)


def test_the_old_report_shape_would_not_have_fit(tree: tuple[Path, Report]) -> None:
    """A near miss for the length test: the same tree with every finding in full (the report
    as it was by default) is far longer, so the test above measures the default's brevity."""
    assert len(render("text", tree[1], RenderOptions(width=80, verbose=True)).splitlines()) > MAX_LINES


def test_the_real_logs_get_a_short_report_with_errors_first(real_logs: Path) -> None:
    assert_short_with_errors_first(checked(real_logs))


@pytest.mark.parametrize("width", [60, 120])
def test_errors_come_before_every_other_verdict_at_any_width(tree: tuple[Path, Report], width: int) -> None:
    lines = render("text", tree[1], RenderOptions(width=width)).splitlines()
    first_other = next(index for index, line in enumerate(lines) if line.startswith(("PROBLEM", "MINOR")))
    assert all(index < first_other for index, line in enumerate(lines) if line.startswith("  error "))
