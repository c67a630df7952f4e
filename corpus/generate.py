"""Generate the corpus: train every recipe at every strength and seed, write the logs, label them.

    python -m corpus.generate --archive corpus/runs.tar.xz   # regenerate archive + labels.json
    python -m corpus.generate --out DIR                      # just write the tree into DIR

Runs are independent and deterministic (seeded data, init, batch order and wall clock), so
they are spread over worker processes without changing a byte.  BLAS is pinned to one thread
per process: threaded reductions may sum in a different order and change the last bits.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corpus import archive, labels
from corpus.recipes import RECIPES, Recipe
from corpus.recipes.base import describe, start_wall
from corpus.train import run
from corpus.writers import write

T = TypeVar("T")


def jobs(only: list[str] | None = None) -> list[tuple[int, object, int]]:
    """(recipe index, strength, seed) for every instance, in a fixed order."""
    out: list[tuple[int, object, int]] = []
    for i, recipe in enumerate(RECIPES):
        if only and recipe.scenario not in only:
            continue
        out.extend((i, strength, seed) for strength in recipe.strengths for seed in recipe.seeds)
    return out


def build(job: tuple[int, object, int], root: Path) -> tuple[dict, list[str]]:
    """Train one instance, write its log under root/runs, return its label and any warnings."""
    index, strength, seed = job
    recipe: Recipe = RECIPES[index]
    name = recipe.run_name(strength, seed)
    built = recipe.make(strength, seed)
    # Batch order and dropout masks also depend on the scenario and strength, so no two recipes
    # produce the same curve (identical numbers in two formats would rightly be read as twins).
    built.plan.seed = seed + 7919 * (zlib.crc32(name.rsplit("-s", 1)[0].encode()) % 1000)
    trace = run(built.plan, start_wall(name))
    post_text = ""
    if built.post is not None:
        trace, post_text = built.post(trace)
    run_dir = root / "runs" / recipe.fmt / name
    path = write(recipe.fmt, trace, run_dir, **built.options)
    how = describe(built)
    warnings: list[str] = []
    if recipe.category is None:
        expect, manifest = [], True
        forbid = labels.forbid(None, [], recipe.allowed)
        notes = f"{how}. Healthy: {labels.summary(trace)}."
        warnings = [f"{name}: {w}" for w in labels.healthy_issues(trace, finetune=built.finetune)]
    else:
        verdict = labels.judge(recipe.category, trace)
        expect, manifest = verdict.expect, verdict.manifest
        forbid, lifted = labels.faulty_forbid(recipe.category, verdict)
        shown = "Logged" if manifest else "Did not manifest by the criterion; logged"
        notes = f"{how}. Planted: {built.planted}{post_text}. {shown}: {verdict.evidence}.{lifted}"
    label = label_record(path.relative_to(root).as_posix(), recipe.fmt, expect, forbid, notes,
                         recipe.scenario, strength, seed, manifest)
    return label, warnings


def label_record(run: str, fmt: str, expect: list[str], forbid: list[str], notes: str, scenario: str,
                 strength: Any, seed: int, manifest: bool) -> dict[str, Any]:
    """One label as labels.json holds it; even seeds are the tuning half, odd ones the test half."""
    return {
        "run": run,
        "format": fmt,
        "expect": expect,
        "forbid": forbid,
        "notes": notes,
        "scenario": scenario,
        "strength": strength,
        "seed": seed,
        "split": "tune" if seed % 2 == 0 else "test",
        "manifest": manifest,
    }


def _build_star(args: tuple) -> tuple[dict, list[str]]:
    return build(*args)


def generate(root: Path, *, only: list[str] | None = None, workers: int = 2) -> list[dict]:
    """Write every run under ``root/runs``; return the labels sorted by run path."""
    return build_all(root, jobs(only), _build_star, workers)


def build_all(root: Path, todo: Sequence[T], build_star: Callable[[tuple[T, Path]], tuple[dict, list[str]]],
              workers: int) -> list[dict]:
    """Build each job under a fresh ``root/runs`` (in ``workers`` processes; ``build_star``
    must be a module-level function), print the warnings, return the labels sorted by run
    path.  The histogram corpus builds its runs the same way."""
    if (root / "runs").exists():
        shutil.rmtree(root / "runs")
    pairs = [(job, root) for job in todo]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(build_star, pairs, chunksize=1))
    else:
        results = [build_star(pair) for pair in pairs]
    for _, warnings in results:
        for warning in warnings:
            print("warning:", warning, file=sys.stderr)
    return sorted((label for label, _ in results), key=lambda label: label["run"])


def write_labels(items: list[dict], path: Path) -> None:
    path.write_text(json.dumps(items, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.generate", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the tree (runs/ and labels.json) into this folder")
    target.add_argument("--archive", type=Path, help="regenerate this archive and labels.json beside it")
    parser.add_argument("--only", nargs="*", help="scenarios to generate (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        items = generate(args.out, only=args.only, workers=args.workers)
        write_labels(items, args.out / "labels.json")
    else:
        args.archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            items = generate(Path(tmp), only=args.only, workers=args.workers)
            archive.pack(Path(tmp), args.archive)
        write_labels(items, args.archive.with_name("labels.json"))
    faulty = [i for i in items if i["expect"] or i["manifest"] is False]
    print(f"{len(items)} runs ({len(items) - len(faulty)} healthy, {len(faulty)} faulty) "
          f"in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
