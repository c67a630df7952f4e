"""The histogram runs of the calibration corpus: the archive unpacks, every label is well formed and
names a run that rundoctor reads with its histograms, both splits hold every problem, and
regenerating gives the archived bytes.

Only the last test needs torch and scikit-learn (it retrains two recipes); the rest read the
committed archive and labels.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from corpus import archive
from corpus import histograms as histogram_corpus
from corpus.histograms.labels import CATEGORIES, HISTOGRAM_CATEGORIES

pytestmark = pytest.mark.slow  # a whole corpus: 128 MB unpacked, and two recipes retrained

KEYS = {"run", "format", "expect", "forbid", "notes", "scenario", "strength", "seed", "split", "manifest"}


@pytest.fixture(scope="module")
def labels() -> list[dict]:
    return json.loads(histogram_corpus.LABELS.read_text())


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return histogram_corpus.extract(tmp_path_factory.mktemp("histograms"))


def test_labels_are_well_formed(labels: list[dict]) -> None:
    assert len({label["run"] for label in labels}) == len(labels)
    for label in labels:
        assert set(label) == KEYS, label["run"]
        assert set(label["expect"]) <= set(CATEGORIES) and set(label["forbid"]) <= set(CATEGORIES)
        assert not set(label["expect"]) & set(label["forbid"]), label["run"]
        assert label["split"] == ("tune" if label["seed"] % 2 == 0 else "test")
        if not label["manifest"]:
            assert label["expect"] == [], label["run"]


def test_every_histogram_problem_is_planted_in_both_splits_beside_healthy_runs(labels: list[dict]) -> None:
    for split in ("tune", "test"):
        chosen = [label for label in labels if label["split"] == split]
        seen = Counter(category for label in chosen for category in label["expect"])
        assert set(seen) >= set(HISTOGRAM_CATEGORIES), set(HISTOGRAM_CATEGORIES) - set(seen)
        healthy = [label for label in chosen if label["scenario"].startswith("h-")]
        assert len(healthy) >= 20 and all(label["forbid"] and not label["expect"] for label in healthy)


def test_every_run_is_read_with_its_histograms(root: Path, labels: list[dict]) -> None:
    listing = subprocess.run([sys.executable, "-m", "rundoctor", "ls", "runs", "--format", "json"],
                             cwd=root, capture_output=True, text=True, check=True)
    report = json.loads(listing.stdout)
    assert report["errors"] == []
    by_path = {Path(run["path"]).as_posix(): run for run in report["runs"]}
    assert set(by_path) == {label["run"] for label in labels}
    for label in labels:
        roles = {item["role"] for item in by_path[label["run"]]["histograms"]}
        assert "weight_histogram" in roles, label["run"]
        if label["run"].startswith("runs/pytorch/"):
            assert {"gradient_histogram", "activation_histogram"} <= roles, label["run"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("sklearn") is None,
                    reason="regenerating the histogram runs needs torch and scikit-learn")
def test_regenerating_two_recipes_gives_the_archived_bytes(tmp_path: Path, labels: list[dict]) -> None:
    from corpus.histograms.generate import generate

    scenarios = ["keras-frozen", "dead-relu-bias"]
    fresh = generate(tmp_path, only=scenarios, workers=1)
    assert fresh == [label for label in labels if label["scenario"] in scenarios]
    archived = {name: blob for name, blob in archive.member_bytes("runs/", histogram_corpus.ARCHIVE).items()
                if name.split("/")[2].rsplit("-", 2)[0] in scenarios}
    written = {path.relative_to(tmp_path).as_posix(): path.read_bytes()
               for path in (tmp_path / "runs").rglob("*") if path.is_file()}
    assert written.keys() == archived.keys()
    assert written == archived
