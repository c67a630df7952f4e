"""Generate the histogram runs: train every recipe at every strength and seed, write, label, pack.

    python -m corpus.histograms.generate --archive corpus/histograms.tar.xz   # archive + labels
    python -m corpus.histograms.generate --out DIR                            # just the tree

Needs torch (CPU) and scikit-learn.  Each run trains on one CPU thread from its own seed, so
runs are spread over worker processes without changing a byte; on the same platform the
archive is identical from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from corpus import archive
from corpus.generate import build_all, label_record
from corpus.histograms import ARCHIVE, LABELS, labels, train, writers
from corpus.histograms.recipes import RECIPES, Recipe
from corpus.recipes.base import start_wall


def jobs(only: list[str] | None = None) -> list[tuple[int, Any, int]]:
    """(recipe index, strength, seed) for every instance, in a fixed order."""
    return [(index, strength, seed) for index, recipe in enumerate(RECIPES)
            if not only or recipe.scenario in only for strength in recipe.strengths for seed in recipe.seeds]


def build(job: tuple[int, Any, int], root: Path) -> tuple[dict[str, Any], list[str]]:
    """Train one instance, write its log under root/runs, return its label and any warnings."""
    index, strength, seed = job
    recipe: Recipe = RECIPES[index]
    name = recipe.run_name(strength, seed)
    built = recipe.make(strength, seed)
    # Batch order and dropout also depend on the scenario, so no two recipes log the same curve.
    built.plan.seed = seed + 7919 * (zlib.crc32(recipe.scenario.encode()) % 1000)
    record = train.run(built.plan, start_wall(name))
    run_dir = root / "runs" / recipe.fmt / name
    if recipe.fmt == "keras":
        writers.write_keras(record, run_dir)
    else:
        writers.write_pytorch(record, run_dir, style=built.style)
    how = (f"{built.model} on {built.plan.data.name}, {recipe.optim}, {built.plan.steps} steps of "
           f"{built.plan.batch}, {built.plan.init.describe()}, logged as "
           f"{'Keras TensorBoard(histogram_freq=1)' if recipe.fmt == 'keras' else 'PyTorch SummaryWriter (' + built.style + ' tags)'}")
    expect, forbid, manifest, evidence = labels.label(recipe.category, record)
    warnings = [f"{name}: {issue}" for issue in labels.healthy_issues(record)] if recipe.category is None else []
    if recipe.category is None:
        notes = f"{how}. Healthy: {evidence}."
    else:
        shown = "Logged" if manifest else "Did not manifest by the criterion"
        notes = f"{how}. Planted: {built.planted}. {shown}: {evidence}."
    label = label_record(run_dir.relative_to(root).as_posix(), "tensorboard", expect, forbid, notes,
                         recipe.scenario, strength, seed, manifest)
    return label, warnings


def _build_star(args: tuple[tuple[int, Any, int], Path]) -> tuple[dict[str, Any], list[str]]:
    return build(*args)


def generate(root: Path, *, only: list[str] | None = None, workers: int = 2) -> list[dict[str, Any]]:
    """Write every run under ``root/runs``; return the labels sorted by run path."""
    return build_all(root, jobs(only), _build_star, workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.histograms.generate",
                                     description=(__doc__ or "").split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the tree (runs/ and labels.json) into this folder")
    target.add_argument("--archive", type=Path, help=f"regenerate this archive (normally {ARCHIVE.name}) and its labels")
    parser.add_argument("--only", nargs="*", help="scenarios to generate (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        items = generate(args.out, only=args.only, workers=args.workers)
        (args.out / "labels.json").write_text(json.dumps(items, indent=1) + "\n")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            items = generate(Path(tmp), only=args.only, workers=args.workers)
            archive.pack(Path(tmp), args.archive)
        LABELS.write_text(json.dumps(items, indent=1) + "\n")
    faulty = [item for item in items if item["expect"] or item["manifest"] is False]
    print(f"{len(items)} runs ({len(items) - len(faulty)} healthy, {len(faulty)} faulty) "
          f"in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
