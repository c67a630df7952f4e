"""MLflow file store: the real sample run, runs written here, broken metric files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.mlflow import is_mlflow_run_dir, read_mlflow_run
from rundoctor.series import NoteKind, XAxis

REAL_RUN = "10tanmay100__DEEPCNNCLASSIFIER__mlflow-filestore-single-epoch/mlruns/0/cb0096518b0e4c66a94428555f05420b"


def test_real_run(real_logs: Path) -> None:
    run_dir = real_logs / REAL_RUN
    assert is_mlflow_run_dir(run_dir) and not is_mlflow_run_dir(run_dir.parent)
    run = read_mlflow_run(run_dir)
    assert run.format == "mlflow" and run.path == str(run_dir) and run.x_axis is XAxis.STEP
    assert run.tags == ["accuracy", "loss"] and not run.notes
    # Each value as written in the metric file, parsed independently of the reader.
    for tag in run.tags:
        timestamp, value, step = (run_dir / "metrics" / tag).read_text().split()
        curve = run.curve(tag)
        assert curve.values.tolist() == [float(value)] and curve.steps.tolist() == [int(step)]
        assert curve.wall_times.tolist() == [int(timestamp) / 1000]
    params = {f"params.{p.name}": p.read_text() for p in (run_dir / "params").iterdir()}
    assert len(params) == 8 and {key: run.metadata[key] for key in params} == params
    assert run.metadata["params.IMAGE_SIZE"] == "[224, 224, 3]"
    assert run.metadata["status"] == "RUNNING" and "end" not in run.metadata  # end_time: null
    assert run.metadata["start"] == "2022-09-28T11:20:07.025Z"


def write_run(root: Path, metrics: dict[str, str], params: dict[str, str] | None = None,
              tags: dict[str, str] | None = None, meta: str = "status: 3\n") -> Path:
    run_dir = root / "mlruns" / "1" / "0123abcd"
    for folder, files in (("metrics", metrics), ("params", params or {}), ("tags", tags or {})):
        (run_dir / folder).mkdir(parents=True, exist_ok=True)
        for key, text in files.items():
            path = run_dir / folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (run_dir / "meta.yaml").write_text(meta)
    (run_dir.parent / "meta.yaml").write_text("name: exp\nexperiment_id: '1'\n")
    return run_dir


def test_written_run_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = (rng.standard_normal(50) * 10.0 ** rng.integers(-20, 20, 50)).tolist()
    values[7], values[8], values[9] = math.nan, math.inf, -math.inf
    times = [1_700_000_000_000 + 1000 * i for i in range(50)]
    lines = "".join(f"{t} {v!r} {i * 10}\n" for i, (t, v) in enumerate(zip(times, values, strict=True)))
    run_dir = write_run(
        tmp_path,
        {"train/loss": lines, "val/acc/top1": "1700000000000 0.5 0\n1700000100000 0.75 10\n"},
        params={"lr": "0.001", "optimizer/name": "adam"},
        tags={"mlflow.runName": "bright-fox-42"},
        meta="run_name: bright-fox-42\nstatus: 3\nstart_time: 1700000000000\nend_time: 1700000100000\n",
    )
    run = read_mlflow_run(run_dir)
    assert run.tags == ["train/loss", "val/acc/top1"]  # keys with "/" are subfolders
    loss = run.curve("train/loss")
    np.testing.assert_array_equal(loss.values, values)
    assert loss.steps.tolist() == [i * 10 for i in range(50)]
    assert loss.wall_times.tolist() == [t / 1000 for t in times]
    assert run.curve("val/acc/top1").values.tolist() == [0.5, 0.75]
    assert run.metadata == {
        "run_name": "bright-fox-42", "status": "FINISHED",
        "start": "2023-11-14T22:13:20.000Z", "end": "2023-11-14T22:15:00.000Z",
        "params.lr": "0.001", "params.optimizer/name": "adam", "tags.mlflow.runName": "bright-fox-42",
    }
    assert not run.notes and len(run.sources) == 2


def test_bad_lines_are_reported_and_the_rest_read(tmp_path: Path) -> None:
    text = "1700000000000 0.5 0\n1700000001000 oops 1\n\n1700000002000 0.25 2\n1700000003000 0.1 2.5\n1700000004\n"
    run = read_mlflow_run(write_run(tmp_path, {"loss": text}))
    assert run.curve("loss").values.tolist() == [0.5, 0.25] and run.curve("loss").steps.tolist() == [0, 2]
    (note,) = run.notes
    assert note.kind is NoteKind.CORRUPT and note.location == "line 2" and note.count == 3
    assert "lines 2, 5, 6" in note.message and note.source.endswith("loss")


def test_old_lines_without_a_step_are_step_zero(tmp_path: Path) -> None:
    run = read_mlflow_run(write_run(tmp_path, {"loss": "1500000000000 0.5\n1500000001000 0.4\n"}))
    assert run.curve("loss").steps.tolist() == [0, 0] and run.curve("loss").values.tolist() == [0.5, 0.4]
    assert not run.notes


def test_run_without_metrics_and_with_broken_meta(tmp_path: Path) -> None:
    run = read_mlflow_run(write_run(tmp_path, {}, params={"seed": "1"}, meta="status: [unclosed\n"))
    assert run.points == 0 and run.metadata == {"params.seed": "1"}
    (note,) = run.notes
    assert note.kind is NoteKind.CORRUPT and note.source.endswith("meta.yaml")


def test_non_utf8_param_is_replaced_and_noted(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, {"loss": "1 0.5 0\n"})
    (run_dir / "params" / "name").write_bytes(b"caf\xe9")
    run = read_mlflow_run(run_dir)
    assert run.metadata["params.name"] == "caf\ufffd"
    assert run.notes[0].kind is NoteKind.CORRUPT and run.notes[0].location == "line 1"


def test_deleted_run_is_noted(tmp_path: Path) -> None:
    run = read_mlflow_run(write_run(tmp_path, {"loss": "1 0.5 0\n"}, meta="status: 4\nlifecycle_stage: deleted\n"))
    assert run.metadata["status"] == "FAILED"
    assert [note.kind for note in run.notes] == [NoteKind.INFO]


def test_what_is_not_a_run_folder(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, {"loss": "1 0.5 0\n"})
    assert is_mlflow_run_dir(run_dir)
    assert not is_mlflow_run_dir(run_dir.parent)  # the experiment folder
    assert not is_mlflow_run_dir(run_dir / "meta.yaml")
    assert not is_mlflow_run_dir(tmp_path / "missing")
    with pytest.raises(UnreadableInput):
        read_mlflow_run(tmp_path / "missing")
