"""The calibration corpus: the archive unpacks, every label is well formed and names a run that
rundoctor's discovery reads, the splits cover every category, and generation is reproducible.

Only the last test needs scikit-learn (it regenerates two recipes); the rest read the
committed archive and labels, so CI without the ``corpus`` extra still checks them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from corpus import LABELS, archive, extract

CATEGORIES = {
    "nan_inf", "loss_explosion", "stalled_loss", "lr_too_low", "lr_plateau", "lr_too_high_oscillation",
    "loss_spikes", "overfitting", "metric_flat_may_jump", "class_imbalance", "loss_scale_imbalance",
    "cannot_overfit", "underconfident", "metric_bug", "resumed_or_duplicate_steps", "truncated_file",
    "unnormalized_output",
}
FORMATS = {"tensorboard", "lightning_csv", "keras_csv", "hf_trainer_state", "jsonl", "ultralytics_csv", "mlflow"}
KEYS = {"run", "format", "expect", "forbid", "notes", "scenario", "strength", "seed", "split", "manifest"}


@pytest.fixture(scope="module")
def labels() -> list[dict]:
    return json.loads(LABELS.read_text())


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract(tmp_path_factory.mktemp("corpus"))


def test_labels_are_well_formed(labels: list[dict]) -> None:
    assert len({label["run"] for label in labels}) == len(labels)
    for label in labels:
        assert set(label) == KEYS, label["run"]
        assert label["format"] in FORMATS
        assert set(label["expect"]) <= CATEGORIES and set(label["forbid"]) <= CATEGORIES
        assert not set(label["expect"]) & set(label["forbid"]), label["run"]
        assert label["split"] == ("tune" if label["seed"] % 2 == 0 else "test")
        assert isinstance(label["manifest"], bool) and label["notes"].strip()
        assert not os.path.isabs(label["run"]) and ".." not in Path(label["run"]).parts
        if not label["manifest"]:
            assert label["expect"] == [], label["run"]


def test_counts_and_every_category_in_both_splits(labels: list[dict]) -> None:
    healthy = [lb for lb in labels if lb["manifest"] and not lb["expect"]]
    faulty = [lb for lb in labels if lb["expect"]]
    assert len(healthy) >= 120 and len(faulty) >= 80
    assert all(set(lb["forbid"]) >= CATEGORIES - {"metric_flat_may_jump"} for lb in healthy)
    for split in ("tune", "test"):
        seen = Counter(c for lb in faulty if lb["split"] == split for c in lb["expect"])
        assert set(seen) == CATEGORIES, CATEGORIES - set(seen)
        scenarios = {lb["scenario"] for lb in labels if lb["split"] == split}
        assert scenarios == {lb["scenario"] for lb in labels}


def test_every_run_exists_and_is_discovered(root: Path, labels: list[dict]) -> None:
    for label in labels:
        assert (root / label["run"]).exists(), label["run"]
    listing = subprocess.run(
        [sys.executable, "-m", "rundoctor", "ls", "runs", "--format", "json"],
        cwd=root, capture_output=True, text=True, check=True,
    )
    report = json.loads(listing.stdout)
    assert report["errors"] == []
    found = {os.path.realpath(root / run["path"]): run["format"] for run in report["runs"]}
    for label in labels:
        path = os.path.realpath(root / label["run"])
        assert path in found, label["run"]
        assert (found[path] == "tensorboard") == (label["format"] == "tensorboard"), label["run"]
    assert len(found) == len(labels)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="regenerating needs scikit-learn")
def test_regenerating_two_recipes_gives_the_archived_bytes(tmp_path: Path, labels: list[dict]) -> None:
    from corpus.generate import generate

    scenarios = ["h-short", "metric-bug"]
    fresh = generate(tmp_path, only=scenarios, workers=1)
    assert fresh == [lb for lb in labels if lb["scenario"] in scenarios]
    archived = {
        name: blob for name, blob in archive.member_bytes("runs/").items()
        if name.split("/")[2].rsplit("-s", 1)[0].startswith(tuple(scenarios))
    }
    written = {
        path.relative_to(tmp_path).as_posix(): path.read_bytes()
        for path in (tmp_path / "runs").rglob("*") if path.is_file()
    }
    assert written.keys() == archived.keys()
    assert written == archived
