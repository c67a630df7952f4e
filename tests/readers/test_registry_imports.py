"""The registry imports a format's reading code only when a run of that format is read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"

# Modules that only reading a run of one family needs.
TENSORBOARD = ("rundoctor.readers.tensorboard.assembly", "tensorboard.compat.proto.event_pb2")
CSV = ("rundoctor.readers.csv.flavours",)
JSON = ("rundoctor.readers.json.flavours",)
YAML = ("yaml",)


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_registry_imports_no_format_reading_code() -> None:
    modules = imported_after("import rundoctor.readers")
    assert not modules & {*TENSORBOARD, *CSV, *JSON, *YAML}


@pytest.mark.parametrize(
    ("sample", "needed", "not_needed"),
    [
        ("healthy/pytorch_tb", TENSORBOARD, CSV + JSON + YAML),
        ("healthy/yolov8/results.csv", CSV, TENSORBOARD + JSON + YAML),
        ("problems/grokking/wandb-history.jsonl", JSON, TENSORBOARD + CSV + YAML),
        ("healthy/lightning", CSV + YAML, TENSORBOARD + JSON),  # hparams.yaml beside metrics.csv
    ],
)
def test_reading_a_run_imports_its_format_only(sample: str, needed: tuple[str, ...], not_needed: tuple[str, ...]) -> None:
    path = SAMPLES / sample
    modules = imported_after(f"from rundoctor import api\nassert api.load({str(path)!r})")
    assert set(needed) <= modules
    assert not modules & set(not_needed)
