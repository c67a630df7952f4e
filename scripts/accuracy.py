"""Measure diagnosis against labelled runs and write docs/accuracy.md.

    python scripts/accuracy.py                      # corpus test half + ../shared/labelled -> docs/accuracy.md
    python scripts/accuracy.py --split tune --print # the tuning half, printed (for choosing thresholds)
    python scripts/accuracy.py --check              # exit 1 unless the issue's targets hold on the test half

A label names a run (a file, or a run directory) relative to a root, the problem categories
a good doctor must report (``expect``, at any severity) and those that are wrong for it at
warning or error (``forbid``).  Healthy runs expect nothing and forbid everything, so on
them *any* warning or error counts, whichever check raised it.

Findings become categories through :data:`SPEAKS_FOR`: the problem each check's finding is
evidence of.  A check that speaks for no category (``still-improving``) is still counted
when it warns on a healthy run.  Findings the diagnosis marks as superseded (a
contradiction it resolved) are not counted: the report does not count them either.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# The problem categories a finding of each check is evidence of (the vocabulary of the
# labels).  A check missing here makes the script fail: a new check must say what it means.
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
}

# Problems the issue wants reported at warning or above whenever they are present.
SERIOUS = frozenset({"nan_inf", "loss_explosion", "stalled_loss", "cannot_overfit", "overfitting", "metric_bug"})
RANK = {"info": 1, "warning": 2, "error": 3}


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
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode not in (0, 1):
        raise SystemExit(f"rundoctor check {root} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def _paths(run: dict[str, Any]) -> list[str]:
    """Every file or directory a reported run came from (a merged run names several)."""
    found: list[str] = []
    for key in ("path", "paths", "sources"):
        value = run.get(key)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v if isinstance(v, str) else str(v.get("path", "")) for v in value)
    diagnosis = run.get("diagnosis") or {}
    for source in diagnosis.get("sources", []) or []:
        found.append(source if isinstance(source, str) else str(source.get("path", "")))
    return [p for p in found if p]


def match_runs(report: dict[str, Any], labels: list[dict[str, Any]], root: Path) -> dict[int, str | None]:
    """Label index -> report run id: the run whose source is the labelled path, or lies in it.

    A run directory label matches a run reported by a file inside it (event files), and a
    Keras ``train``/``validation`` label matches the run they were merged into.
    """
    where: dict[str, str] = {}
    for run in report.get("runs", []):
        for path in _paths(run):
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
    """Findings per run id, without those the diagnosis superseded."""
    per_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in report.get("findings", []):
        if finding.get("superseded_by") or finding.get("superseded"):
            continue
        per_run[finding["run"]].append(finding)
    return per_run


def score(name: str, report: dict[str, Any], labels: list[dict[str, Any]], root: Path) -> Scored:
    unknown = {f["check"] for f in report.get("findings", [])} - set(SPEAKS_FOR)
    if unknown:
        raise SystemExit(f"checks without a category in SPEAKS_FOR: {', '.join(sorted(unknown))}")
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
            for category in SPEAKS_FOR[finding["check"]]:
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
        if label.get("scenario") and label.get("strength") is not None:
            primary = sorted(set(label.get("expect", [])) or {label.get("planted", "?")})
            for category in primary:
                result.limits[(label["scenario"], category)].append((label["strength"], bool(worst.get(category))))
        for finding in findings:
            loud = RANK.get(finding["severity"], 0) >= RANK["warning"]
            if not loud:
                continue
            speaks = set(SPEAKS_FOR[finding["check"]])
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
    """
    every = {category for categories in SPEAKS_FOR.values() for category in categories}
    forbidden = set(label.get("forbid", []))
    return not label.get("expect") and label.get("manifest") is not False and len(every - forbidden) <= 2


def load_labels(path: Path, split: str | None) -> list[dict[str, Any]]:
    labels = json.loads(path.read_text(encoding="utf-8"))
    return [label for label in labels if split is None or label.get("split") == split]


def corpus_root(cache: Path | None) -> Path:
    """The corpus logs, unpacked from the committed archive (once per cache directory)."""
    sys.path.insert(0, str(REPO))
    from corpus import extract  # the corpus package's own unpacker

    target = cache or Path(tempfile.mkdtemp(prefix="rundoctor-corpus-"))
    return Path(extract(target))


# --- the markdown --------------------------------------------------------------------------


def _pct(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} ({100 * numerator / denominator:.0f}%)" if denominator else "-"


def summary_rows(results: Iterable[Scored]) -> list[str]:
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


def category_rows(r: Scored) -> list[str]:
    rows = ["| category | planted | reported | recall | at warning+ |", "| --- | ---: | ---: | ---: | ---: |"]
    for category in sorted(r.expected):
        n, hit, loud = r.expected[category], r.found_any[category], r.found_warning[category]
        rows.append(f"| {category}{' (serious)' if category in SERIOUS else ''} | {n} | {hit} | {100 * hit / n:.0f}% | {loud} |")
    return rows


def check_rows(r: Scored) -> list[str]:
    rows = [
        "| check | speaks for | true alarms (warning+) | false alarms (warning+) | precision | info on healthy runs | runs where it fired |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for check, categories in SPEAKS_FOR.items():
        true, false = r.check_true[check], r.check_false[check]
        precision = f"{100 * true / (true + false):.0f}%" if true + false else "-"
        rows.append(
            f"| {check} | {', '.join(categories) or '-'} | {true} | {false} | {precision} | {r.check_info[check]} | {r.check_fired[check]} |"
        )
    return rows


def limit_rows(r: Scored) -> list[str]:
    rows = ["| scenario | category | strengths detected | strengths missed |", "| --- | --- | --- | --- |"]
    for (scenario, category), seen in sorted(r.limits.items()):
        hit = sorted({str(s) for s, ok in seen if ok})
        miss = sorted({str(s) for s, ok in seen if not ok})
        rows.append(f"| {scenario} | {category} | {', '.join(hit) or '-'} | {', '.join(miss) or '-'} |")
    return rows


def render(results: list[Scored], corpus_result: Scored | None) -> str:
    lines = [
        "# Accuracy",
        "",
        "Written by `python scripts/accuracy.py` (do not edit by hand). How often rundoctor reports",
        "the problems planted in labelled runs, and how often it raises a warning or an error on runs",
        "that have none. The calibration corpus (`corpus/`, real training runs with labels from",
        "construction) is split by seed: thresholds were chosen on the tuning half only; the figures",
        "below are for the **test half**, which no threshold was fitted to. `../shared/labelled`",
        "holds 25 labelled real runs and labels for 48 public runs; they show direction, not",
        "generalisation.",
        "",
        "A healthy run may get info notes (a run still improving at its end); any warning or error on",
        "it counts as a false alarm, whichever check raised it. A planted problem counts as reported",
        "when a check that speaks for its category fires at any severity; serious problems (NaN,",
        "divergence, no learning, overfitting, metric bugs) should come at warning or above.",
        "",
        "## Summary",
        "",
        *summary_rows(results),
        "",
    ]
    for r in results:
        lines += [f"## {r.name}", "", "### Per category", "", *category_rows(r), "", "### Per check", "", *check_rows(r), ""]
        if r.misses or r.healthy_warned or r.forbidden or r.weak or r.unmatched:
            lines += ["### What went wrong", ""]
            lines += [f"- missed: {m}" for m in r.misses]
            lines += [f"- warning on a healthy run: {w}" for w in r.healthy_warned]
            lines += [f"- forbidden: {f}" for f in r.forbidden if not any(f.startswith(w.split(':')[0]) for w in r.healthy_warned)]
            lines += [f"- serious, only info: {w}" for w in r.weak]
            lines += [f"- not found in the report: {u}" for u in r.unmatched]
            lines.append("")
    if corpus_result is not None and corpus_result.limits:
        lines += [
            "## Detection limits (corpus, test half)",
            "",
            "Each faulty recipe is planted at graded strengths; a strength whose fault did not show in",
            "the logged numbers is labelled as not manifest and is listed as missed here without",
            "counting against recall.",
            "",
            *limit_rows(corpus_result),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def print_result(r: Scored) -> None:
    print(f"== {r.name}")
    print("\n".join(summary_rows([r])))
    for m in r.misses:
        print("  missed:", m)
    for w in r.healthy_warned:
        print("  healthy warned:", w)
    for f in r.forbidden:
        print("  forbidden:", f)
    for w in r.weak:
        print("  weak:", w)
    for u in r.unmatched:
        print("  unmatched:", u)
    print("\n".join(check_rows(r)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=("tune", "test", "all"), help="which half of the corpus")
    parser.add_argument("--corpus", type=Path, help="an unpacked corpus tree (default: unpack corpus/runs.tar.xz)")
    parser.add_argument("--print", action="store_true", help="print the tables instead of writing docs/accuracy.md")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets hold")
    parser.add_argument("--no-shared", action="store_true", help="skip ../shared/labelled")
    args = parser.parse_args()

    results: list[Scored] = []
    split = None if args.split == "all" else args.split
    corpus_result = None
    if (REPO / "corpus" / "labels.json").is_file():
        root = args.corpus or corpus_root(None)
        labels = load_labels(REPO / "corpus" / "labels.json", split)
        corpus_result = score(f"corpus, {args.split} half" if split else "corpus, all", run_report(root), labels, root)
        results.append(corpus_result)
    labelled = SHARED / "labelled"
    if not args.no_shared and labelled.is_dir():
        runs_root = labelled
        results.append(score("shared/labelled runs", run_report(runs_root / "runs"), load_labels(labelled / "runs_labels.json", None), runs_root))
        real = SHARED / "real_logs"
        if real.is_dir():
            results.append(score("shared/real_logs", run_report(real), load_labels(labelled / "real_logs_labels.json", None), real))
    if args.print:
        for r in results:
            print_result(r)
    else:
        target = REPO / "docs" / "accuracy.md"
        target.write_text(render(results, corpus_result), encoding="utf-8")
        print("wrote docs/accuracy.md")
    if args.check:
        bad = [r.name for r in results if r.healthy_warned or r.forbidden or r.recall < 0.95 or r.weak]
        if bad:
            print("targets not met on:", ", ".join(bad))
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
