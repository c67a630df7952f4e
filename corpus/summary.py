"""Markdown tables of the recipes and of the label counts, for corpus/README.md.

    python -m corpus.summary

Reads ``corpus/labels.json`` and the recipe definitions; needs no scikit-learn.
"""

from __future__ import annotations

import json
from collections import Counter

from corpus.archive import LABELS
from corpus.labels import CATEGORIES
from corpus.recipes import RECIPES


def recipe_table() -> str:
    lines = ["| scenario | category | model | data | optimiser / schedule | format | strengths | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in RECIPES:
        strengths = ", ".join(f"{s:g}" if isinstance(s, float) else str(s) for s in r.strengths)
        lines.append(f"| {r.scenario} | {r.category or 'healthy'} | {r.model} | {r.data} | {r.optim} | {r.fmt} | "
                     f"{strengths} | {len(r.seeds)} |")
    return "\n".join(lines)


def count_table(labels: list[dict]) -> str:
    rows = []
    for split in ("tune", "test"):
        mine = [lb for lb in labels if lb["split"] == split]
        healthy = sum(1 for lb in mine if lb["manifest"] and not lb["expect"])
        faulty = [lb for lb in mine if lb["expect"]]
        quiet = sum(1 for lb in mine if not lb["manifest"])
        rows.append((split, len(mine), healthy, len(faulty), quiet, Counter(c for lb in faulty for c in lb["expect"]),
                     Counter(lb["scenario"] for lb in mine)))
    lines = ["| | " + " | ".join(r[0] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    lines.append("| runs | " + " | ".join(str(r[1]) for r in rows) + " |")
    lines.append("| healthy | " + " | ".join(str(r[2]) for r in rows) + " |")
    lines.append("| faulty, manifest | " + " | ".join(str(r[3]) for r in rows) + " |")
    lines.append("| faulty, not manifest | " + " | ".join(str(r[4]) for r in rows) + " |")
    for category in CATEGORIES:
        lines.append(f"| expect {category} | " + " | ".join(str(r[5][category]) for r in rows) + " |")
    return "\n".join(lines)


def planted_table(labels: list[dict]) -> str:
    """Per planted category: runs, manifest, not manifest, per split."""
    category_of = {r.scenario: r.category for r in RECIPES}
    lines = ["| planted category | tune: manifest / planted | test: manifest / planted |", "|---|---|---|"]
    for category in CATEGORIES:
        cells = []
        for split in ("tune", "test"):
            mine = [lb for lb in labels if lb["split"] == split and category_of[lb["scenario"]] == category]
            cells.append(f"{sum(lb['manifest'] for lb in mine)} / {len(mine)}")
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_table(labels: list[dict]) -> str:
    counts = Counter(lb["format"] for lb in labels)
    return "\n".join(["| format | runs |", "|---|---|"] + [f"| {f} | {n} |" for f, n in sorted(counts.items())])


def main() -> None:
    labels = json.loads(LABELS.read_text())
    for title, table in (("Recipes", recipe_table()), ("Counts", count_table(labels)),
                         ("Planted faults", planted_table(labels)), ("Formats", format_table(labels))):
        print(f"### {title}\n\n{table}\n")


if __name__ == "__main__":
    main()
