"""Discovery: which runs a tree holds, which reader reads each, and what could not be read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rundoctor.discover import load_runs
from tests.conftest import SAMPLE_LOGS
from tests.readers.tb_writer import header_event, scalar_event, write_event_file


def _ids(runs) -> list[str]:
    return [run.id for run in runs]


def test_sample_logs_hold_every_format() -> None:
    runs, errors = load_runs([SAMPLE_LOGS])
    assert errors == []
    formats = {run.format for run in runs}
    assert formats >= {
        "tensorboard", "lightning-csv", "keras-csv", "ultralytics-csv", "wide-csv", "long-csv",
        "hf-trainer", "detectron2-json", "mmdet-json", "mmengine-json", "keras-history-json",
        "wandb-jsonl", "jsonl", "mlflow",
    }
    assert all(run.id.startswith("sample_logs/") for run in runs)


def test_keras_train_and_validation_siblings_are_one_run() -> None:
    runs, _ = load_runs([SAMPLE_LOGS / "problems" / "overfitting_keras_tf2"])
    (run,) = runs
    assert run.id == "overfitting_keras_tf2"
    assert {"train/epoch_loss", "validation/epoch_loss"} <= set(run.tags)
    assert len(run.sources) == 2


def test_only_the_newest_hf_checkpoint_is_read(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_LOGS / "healthy" / "hf_trainer", tmp_path / "out")
    runs, errors = load_runs([tmp_path / "out"])
    (run,) = runs
    assert errors == []
    assert run.path.endswith("checkpoint-600/trainer_state.json")
    assert any("not merged" in note.message for note in run.notes)


def test_a_trainer_state_beside_the_checkpoints_wins(tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_LOGS / "healthy" / "hf_trainer", tmp_path / "out")
    shutil.copy(tmp_path / "out" / "checkpoint-300" / "trainer_state.json", tmp_path / "out" / "trainer_state.json")
    (run,), _ = load_runs([tmp_path / "out"])
    assert Path(run.path) == tmp_path / "out" / "trainer_state.json"


def test_missing_path_and_empty_directory_are_errors_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    runs, errors = load_runs([tmp_path / "nope", tmp_path / "empty"])
    assert runs == []
    reasons = {Path(error.path).name: error.reason for error in errors}
    assert reasons["nope"] == "no such file or directory"
    assert "no training logs found" in reasons["empty"]


def test_unrecognised_and_empty_log_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text("just some words\nnothing numeric here\n", encoding="utf-8")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps({"model": "resnet"}), encoding="utf-8")
    runs, errors = load_runs([tmp_path])
    assert runs == []
    reasons = {Path(error.path).name: error.reason for error in errors}
    assert reasons == {"notes.csv": "not a recognised training-log format", "empty.jsonl": "empty file"}


def test_an_explicit_unrecognised_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": "resnet"}), encoding="utf-8")
    runs, errors = load_runs([path])
    assert runs == [] and errors[0].reason == "not a recognised training-log format"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlinks_never_lead_outside_the_tree_or_loop(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(SAMPLE_LOGS / "problems" / "loss_magnitude.csv", outside / "secret.csv")
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(SAMPLE_LOGS / "problems" / "val_better_than_train.csv", tree / "run.csv")
    (tree / "escape.csv").symlink_to(outside / "secret.csv")
    (tree / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    runs, errors = load_runs([tree])
    assert _ids(runs) == ["tree/run.csv"]
    reasons = {Path(error.path).name: error.reason for error in errors}
    assert "outside" in reasons["escape.csv"]
    assert reasons["dangling.csv"] == "broken symlink"


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: CI runs as root, which reads files whatever their mode.
    path = tmp_path / "metrics.csv"
    shutil.copy(SAMPLE_LOGS / "problems" / "val_better_than_train.csv", path)
    real_open = os.open

    def denied(file: object, *args, **kwargs):
        if Path(str(file)) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    runs, errors = load_runs([tmp_path])
    assert runs == []
    assert [(e.path, e.reason) for e in errors] == [(str(path), "Permission denied")]


def test_a_tree_of_tens_of_thousands_of_files_opens_only_what_may_be_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Image dumps and checkpoints beside the logs: 20,000 files, images and weights never
    opened, text files sniffed and passed over without a complaint."""
    for experiment in range(100):
        folder = tmp_path / f"exp{experiment:03d}"
        (folder / "images").mkdir(parents=True)
        for i in range(100):
            (folder / "images" / f"val_{i}.png").write_bytes(b"step,loss\n0,1.0\n")  # would sniff as a CSV
            (folder / f"note_{i}.txt").write_bytes(b"x")
    shutil.copy(SAMPLE_LOGS / "problems" / "val_better_than_train.csv", tmp_path / "exp000" / "run.csv")
    opened: list[Path] = []
    real_open = os.open

    def counting_open(file: object, *args, **kwargs):
        opened.append(Path(str(file)))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    runs, errors = load_runs([tmp_path])
    assert _ids(runs) == [f"{tmp_path.name}/exp000/run.csv"] and errors == []
    assert not any(path.suffix == ".png" for path in opened)
    assert sum(path.suffix == ".txt" for path in opened) == 10_000
    named = tmp_path / "exp001" / "images" / "val_0.png"
    _, errors = load_runs([named])  # a file named on the command line is always opened
    assert named in opened and errors[0].reason == "not a recognised training-log format"


def test_event_files_of_one_directory_are_one_run_in_time_order(tmp_path: Path) -> None:
    later = tmp_path / "run" / "events.out.tfevents.1700000900.host.a.b.1"
    earlier = tmp_path / "run" / "events.out.tfevents.1700000100.host.a.b.0"
    later.parent.mkdir()
    write_event_file(later, [header_event(), scalar_event("loss", 0.5, 3, 3.0), scalar_event("loss", 0.4, 4, 4.0)])
    write_event_file(earlier, [header_event(), scalar_event("loss", 0.9, 1, 1.0), scalar_event("loss", 0.7, 2, 2.0)])
    (run,), errors = load_runs([tmp_path])
    assert errors == [] and run.id == f"{tmp_path.name}/run"
    assert run.sources == [str(earlier), str(later)]
    assert run.curve("loss").steps.tolist() == [1, 2, 3, 4]
