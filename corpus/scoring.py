"""Score rundoctor's JSON report against labelled runs (the corpus, ../shared/labelled).

A label names a run (a file, or a run directory) relative to a root, the problem categories
a good doctor must report (``expect``, at any severity) and those that are wrong for it at
warning or error (``forbid``).  Healthy runs expect nothing and forbid everything, so on
them *any* warning or error counts, whichever check raised it.

Findings become categories through :data:`SPEAKS_FOR`: the problem each check's finding is
evidence of.  A check that speaks for no category (``still-improving``) is still counted
when it warns on a healthy run.  The report's ``findings`` hold only what it asserts (the
diagnosis keeps superseded findings under the run), so they are scored as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The problem categories a finding of each check is evidence of (the vocabulary of the
# labels).  A check missing here speaks for no category: it can only be a false alarm (when
# it warns on a healthy run), so give a new check its categories to measure its recall.
SPEAKS_FOR: dict[str, tuple[str, ...]] = {
    "non-finite": ("nan_inf",),
    "loss-divergence": ("loss_explosion",),
    "loss-magnitude": ("unnormalized_output",),
    "no-learning": ("stalled_loss", "cannot_overfit"),
    "lr-too-low": ("lr_too_low", "stalled_loss"),
    "loss-plateau": ("lr_plateau", "stalled_loss"),
    "loss-oscillation": ("lr_too_high_oscillation",),
    "loss-spikes": ("loss_spikes", "lr_too_high_oscillation"),
    "still-improving": (),
    "metric-flat-loss-falling": ("metric_flat_may_jump",),
    "delayed-generalization": ("metric_flat_may_jump",),
    "chance-level": ("stalled_loss", "cannot_overfit"),
    "class-imbalance": ("class_imbalance",),
    "underconfident": ("underconfident",),
    "metric-out-of-range": ("metric_bug",),
    "metric-loss-disagreement": ("metric_bug",),
    "overfitting": ("overfitting",),
    "val-better-than-train": (),
    "loss-scale-imbalance": ("loss_scale_imbalance",),
    "duplicate-steps": ("resumed_or_duplicate_steps",),
    "truncated-log": ("truncated_file",),
    "grad-norm": ("loss_spikes",),
    "vanishing-gradients": ("vanishing_gradients",),
    "exploding-gradients": ("exploding_gradients",),
    "dead-units": ("dead_units",),
    "saturated-activations": ("saturated_activations",),
    "update-ratio": ("frozen_layer", "updates_too_small", "lr_too_low", "lr_too_high_oscillation"),
    "weight-init": ("poor_weight_init",),
}

# A finding whose evidence says which way it points speaks for the categories of that way
# only: update-ratio's weights frozen or barely moving are a learning rate too low or a frozen
# layer, its weights changing too fast a learning rate too high.
SPEAKS_FOR_DIRECTION: dict[tuple[str, str], tuple[str, ...]] = {
    ("update-ratio", "frozen"): ("frozen_layer",),
    ("update-ratio", "low"): ("updates_too_small", "lr_too_low"),
    ("update-ratio", "high"): ("lr_too_high_oscillation",),
}

# Categories only histograms show (what happens inside the network).  A label written for a run
# that logs none neither expects nor forbids them, so they do not decide whether it is healthy.
HISTOGRAM_CATEGORIES = frozenset({"dead_units", "saturated_activations", "vanishing_gradients",
                                  "exploding_gradients", "frozen_layer", "updates_too_small", "poor_weight_init"})


def speaks_for(finding: dict[str, Any]) -> tuple[str, ...]:
    """The categories a finding is evidence of: its check's, narrowed by its direction when it has one."""
    direction = (finding.get("evidence") or {}).get("direction")
    return SPEAKS_FOR_DIRECTION.get((finding["check"], direction), SPEAKS_FOR.get(finding["check"], ()))

# Problems the issue wants reported at warning or above whenever they are present.
SERIOUS = frozenset({"nan_inf", "loss_explosion", "stalled_loss", "cannot_overfit", "overfitting", "metric_bug"})
RANK = {"info": 1, "warning": 2, "error": 3}
NOT_SHOWN = "(did not show in the logs)"


@dataclass
class Scored:
    """Everything measured on one labelled set."""

    name: str
    runs: int = 0
    healthy: int = 0
    healthy_warned: list[str] = field(default_factory=list)  # "run: check (severity)"
    healthy_info: int = 0
    expected: Counter[str] = field(default_factory=Counter)
    found_any: Counter[str] = field(default_factory=Counter)
    found_warning: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)  # serious problems reported only as info
    forbidden: list[str] = field(default_factory=list)  # "run reports category (check)"
    check_true: Counter[str] = field(default_factory=Counter)  # warning+ findings on runs expecting it
    check_false: Counter[str] = field(default_factory=Counter)  # warning+ on runs forbidding it
    check_info: Counter[str] = field(default_factory=Counter)  # info findings on healthy runs
    check_fired: Counter[str] = field(default_factory=Counter)  # runs where it fired at all
    unmatched: list[str] = field(default_factory=list)
    limits: dict[tuple[str, str], list[tuple[Any, bool]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def total_expected(self) -> int:
        return sum(self.expected.values())

    @property
    def recall(self) -> float:
        return sum(self.found_any.values()) / self.total_expected if self.total_expected else 1.0


def run_report(root: Path) -> dict[str, Any]:
    """The JSON report of ``rundoctor check root`` (every finding, whatever the gate)."""
    command = [sys.executable, "-m", "rundoctor", "check", str(root), "--format", "json", "--fail-on", "never"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO)
    if done.returncode not in (0, 1):
        raise SystemExit(f"rundoctor check {root} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def match_runs(report: dict[str, Any], labels: list[dict[str, Any]], root: Path) -> dict[int, str | None]:
    """Label index -> report run id: the run whose source is the labelled path, or lies in it.

    A run directory label matches a run reported by a file inside it (event files), and a
    Keras ``train``/``validation`` label matches the run they were merged into.
    """
    where: dict[str, str] = {}
    for run in report.get("runs", []):  # one entry per run read, twins included, each with its path
        path = run.get("path") or ""
        where.setdefault(os.path.realpath(REPO / path if not os.path.isabs(path) else path), run["id"])
    matched: dict[int, str | None] = {}
    for index, label in enumerate(labels):
        want = os.path.realpath(root / label["run"])
        candidates = [want, os.path.dirname(want) if os.path.basename(want) in ("train", "validation") else None]
        hit = next((where[c] for c in candidates if c and c in where), None)
        if hit is None:  # a run reported by a file inside the labelled directory
            hit = next((rid for path, rid in where.items() if os.path.dirname(path) == want), None)
        matched[index] = hit
    return matched


def counted_findings(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Findings per run id."""
    per_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in report.get("findings", []):
        per_run[finding["run"]].append(finding)
    return per_run


def score(name: str, report: dict[str, Any], labels: list[dict[str, Any]], root: Path) -> Scored:
    result = Scored(name)
    matched = match_runs(report, labels, root)
    per_run = counted_findings(report)
    for index, label in enumerate(labels):
        result.runs += 1
        run_id = matched[index]
        if run_id is None:
            result.unmatched.append(label["run"])
        findings = per_run.get(run_id, []) if run_id else []
        worst: dict[str, int] = {}
        for finding in findings:
            rank = RANK.get(finding["severity"], 0)
            result.check_fired[finding["check"]] += 1
            for category in speaks_for(finding):
                worst[category] = max(worst.get(category, 0), rank)
        expect = set(label.get("expect", []))
        forbid = set(label.get("forbid", [])) - expect
        healthy = is_healthy(label)
        if healthy:
            result.healthy += 1
            loud = [f for f in findings if RANK.get(f["severity"], 0) >= RANK["warning"]]
            result.healthy_warned.extend(f"{label['run']}: {f['check']} ({f['severity']})" for f in loud)
            result.healthy_info += sum(1 for f in findings if f["severity"] == "info")
            for finding in findings:
                if finding["severity"] == "info":
                    result.check_info[finding["check"]] += 1
        for category in sorted(expect):
            result.expected[category] += 1
            level = worst.get(category, 0)
            if level:
                result.found_any[category] += 1
            else:
                result.misses.append(f"{label['run']} expects {category}")
            if level >= RANK["warning"]:
                result.found_warning[category] += 1
            elif level and category in SERIOUS:
                result.weak.append(f"{label['run']}: {category} only at info")
        if label.get("scenario") and label.get("strength") is not None and not healthy:
            # a planted fault that did not show in the logs has nothing to detect: listed as such
            for category in sorted(expect) or [NOT_SHOWN]:
                result.limits[(label["scenario"], category)].append((label["strength"], bool(worst.get(category))))
        for finding in findings:
            loud = RANK.get(finding["severity"], 0) >= RANK["warning"]
            if not loud:
                continue
            speaks = set(speaks_for(finding))
            if speaks & expect:
                result.check_true[finding["check"]] += 1
            elif (speaks & forbid) or (healthy and not speaks):
                result.check_false[finding["check"]] += 1
                result.forbidden.append(f"{label['run']} reports {', '.join(sorted(speaks & forbid)) or finding['check']} ({finding['check']}, {finding['severity']})")
    return result


def is_healthy(label: dict[str, Any]) -> bool:
    """A run that expects nothing and forbids (nearly) every problem.

    Labels of ambiguous public runs expect nothing but forbid only a few categories: there
    only the forbidden ones count.  A planted fault that did not show is not healthy either.
    The categories only histograms show are left out of "every problem": labels of runs that
    log no histograms say nothing about them.
    """
    every = {category for categories in SPEAKS_FOR.values() for category in categories} - HISTOGRAM_CATEGORIES
    forbidden = set(label.get("forbid", []))
    return not label.get("expect") and label.get("manifest") is not False and len(every - forbidden) <= 2


def load_labels(path: Path, split: str | None) -> list[dict[str, Any]]:
    labels = json.loads(path.read_text(encoding="utf-8"))
    return [label for label in labels if split is None or label.get("split") == split]


def _pct(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} ({100 * numerator / denominator:.0f}%)" if denominator else "-"


def summary_rows(results: Iterable[Scored]) -> list[str]:
    """The summary table of docs/accuracy.md: one row per labelled set."""
    rows = [
        "| set | runs | healthy runs | healthy runs with a warning or error | planted problems | reported (any severity) | reported at warning+ | serious problems only at info | forbidden reports |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        warned_runs = len({entry.split(":")[0] for entry in r.healthy_warned})
        rows.append(
            f"| {r.name} | {r.runs} | {r.healthy} | {warned_runs} | {r.total_expected} | "
            f"{_pct(sum(r.found_any.values()), r.total_expected)} | {_pct(sum(r.found_warning.values()), r.total_expected)} | "
            f"{len(r.weak)} | {len(r.forbidden)} |"
        )
    return rows
