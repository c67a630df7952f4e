"""The JSON readers: real logs, exact round trips per flavour, and hostile files."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rundoctor.readers.base import Reader, UnreadableInput
from rundoctor.readers.json import READERS, cells, hf_checkpoint_step
from rundoctor.readers.json import lines as json_lines
from rundoctor.series import NoteKind, Run, XAxis

BY_NAME = {reader.name: reader for reader in READERS}
# Values a lossy float parser gets wrong, and the non-finite ones Python's json writes bare.
HARD_VALUES = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, 2.718281828459045, -0.0,
               0.30000000000000004, 123456789.12345679, 9007199254740993, 1 / 3]


def sniffed(path: Path) -> Reader | None:
    head = path.read_bytes()[:65536]
    return next((reader for reader in READERS if reader.sniff(path, head)), None)


def bits(values: Iterable[float]) -> list[bytes]:
    """Bit patterns, so -0.0 differs from 0.0; every NaN is one (JSON writes them all "NaN")."""
    return [struct.pack("<d", math.nan if math.isnan(v) else float(v)) for v in values]


def write_lines(path: Path, records: Iterable[dict[str, Any] | str], ending: str = "\n") -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + ending for r in records))
    return path


def notes_of(run: Run, kind: NoteKind) -> list:
    return [note for note in run.notes if note.kind is kind]


def is_number(value: Any) -> bool:
    """A value the readers take as a point: a number (not a bool), or a non-finite float's name."""
    return type(value) in (int, float) or (type(value) is str and value.lower() in NON_FINITE)


def as_value(value: int | float | str) -> float:
    return float(value) if type(value) is str else cells._as_float(value)


NON_FINITE = {f"{sign}{name}" for sign in ("", "+", "-") for name in ("nan", "inf", "infinity")}


# --------------------------------------------------------------------------------------------
# Real logs: the sniffer picks the flavour; every number in the file is a point, exactly.
# --------------------------------------------------------------------------------------------

MMDET = "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs"
REAL = {
    "R06": ("AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/results/checkpoint-1200/trainer_state.json",
            "hf-trainer"),
    "R36": ("10844110__t5-summarization-demo__hf-trainer-t5-plateau/trainer_state.json", "hf-trainer"),
    "R38": ("aigoncharov__trainer_state_viz__hf-trainer-state-overfit/trainer_state.json", "hf-trainer"),
    "R39": ("NijatZeynalov__mT5-based-azerbaijani-news-summarize__hf-trainer-mt5-long/trainer_state.json",
            "hf-trainer"),
    "R40": (("paulohenriquecrs__RoBERTa_SEQ_CLS_LoRA_Portuguese__hf-trainer-lora/results/checkpoint-8610/"
             "trainer_state.json"), "hf-trainer"),
    "R41": ("P4P4N1CK__whisper-large-v2-japanese-5k-steps__hf-trainer-whisper-overfit/trainer_state.json",
            "hf-trainer"),
    "R08": ("Asad-Ismail__SMN__detectron2-maskrcnn/output/metrics.json", "detectron2-json"),
    "R10": ("Kevindic0214__detectron2_training__detectron2-maskrcnn-short/output/metrics.json", "detectron2-json"),
    "R11": ("Elbhnasy__Medical_Waste_Detection_Detectron2__detectron2-frcnn-plateau/output/metrics.json",
            "detectron2-json"),
    "R42": ((f"{MMDET}/#13. 10082359_cascade_rcnn_x101_32x4d_swin_imgscale_720_PAFPN_loss_GIoULoss_"
             "labelsmoothing_1x_trash/None.log.json"), "mmdet-json"),
    "R43": (f"{MMDET}/centernet_resnet18_dcnv2_140e_trash/None.log.json", "mmdet-json"),
    "R44": (f"{MMDET}/backbone_swin_rfp4step/None.log.json", "mmdet-json"),
    "R45": (("boostcampaitech6__level2-objectdetection-cv-02__mmengine-codetr-scalars/work_dirs/co-detr/"
             "20240116_160126/vis_data/scalars.json"), "mmengine-json"),
}
# Keys that place a record (step, epoch, ...) rather than being measured, per flavour.
AXIS_KEYS = {"hf-trainer": {"step", "epoch"}, "detectron2-json": {"iteration"},
             "mmdet-json": {"epoch", "iter"}, "mmengine-json": {"step", "epoch", "iter"}}


def expected_records(path: Path, reader: str) -> list[dict[str, Any]]:
    """The file's metric records, read independently with the json module."""
    if reader == "hf-trainer":
        return json.loads(path.read_text())["log_history"]
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "mode" in r] if reader == "mmdet-json" else records


@pytest.mark.parametrize("run_id", sorted(REAL))
def test_real_log_sniffed_and_every_number_is_a_point(real_logs: Path, run_id: str) -> None:
    relative, reader = REAL[run_id]
    path = real_logs / relative
    chosen = sniffed(path)
    assert chosen is not None and chosen.name == reader
    run = chosen.read_file(path)
    assert run.format == reader
    records = expected_records(path, reader)
    expected = [(key, value) for record in records for key, value in record.items()
                if is_number(value) and key not in AXIS_KEYS[reader]]
    assert run.points == len(expected) > 0
    # every value bit for bit: in log order per tag; a key split into a train tag and its
    # val/ twin (mmdet, mmengine) holds the same values between the two
    logged: dict[str, list[float]] = {}
    for key, value in expected:
        logged.setdefault(key, []).append(value)
    tags_of_key: dict[str, list[str]] = {}
    for tag in run.tags:
        key = tag if tag in logged else tag.removeprefix("val/")
        tags_of_key.setdefault(key, []).append(tag)
    assert tags_of_key.keys() == logged.keys()
    for key, tags in tags_of_key.items():
        got = [value for tag in tags for value in run.curve(tag).values.tolist()]
        if len(tags) == 1:
            assert bits(got) == bits(logged[key]), key
        else:
            assert sorted(bits(got)) == sorted(bits(logged[key])), key


def test_r42_infinity_and_explosion_survive_exactly(real_logs: Path) -> None:
    run = BY_NAME["mmdet-json"].read_file(real_logs / REAL["R42"][0])
    grad_norm = run.curve("grad_norm")
    assert int(np.isposinf(grad_norm.values).sum()) == 4
    assert -7.425402360985986e28 in run.curve("loss").values.tolist()
    assert run.x_axis is XAxis.ITERATION and run.tag_axes == {}  # no validation records
    # five starts: four go back to iteration 50, the first repeats it at once
    restarts = [n for n in notes_of(run, NoteKind.DUPLICATED) if "goes back" in n.message]
    assert [n.location for n in restarts] == ["line 5", "line 8", "line 11"]
    assert any(n.location == "line 2" for n in notes_of(run, NoteKind.DUPLICATED))


def test_r44_mmdet_axes(real_logs: Path) -> None:
    run = BY_NAME["mmdet-json"].read_file(real_logs / REAL["R44"][0])
    assert run.metadata["iters_per_epoch"] == "969"  # the epoch length val records carry
    assert run.axis_of("bbox_mAP") is XAxis.EPOCH and run.axis_of("loss") is XAxis.ITERATION
    assert run.curve("bbox_mAP").steps.tolist() == list(range(1, 21))
    assert run.axis_of("val/lr") is XAxis.EPOCH and len(run.curve("val/lr")) == 20
    lr_steps = run.curve("lr").steps
    assert lr_steps[0] == 50 and 969 + 50 in lr_steps.tolist()  # epoch 2, iter 50
    assert "bbox_mAP_copypaste" not in run.tags  # a string


def test_r45_mmengine_val_records_count_epochs(real_logs: Path) -> None:
    run = BY_NAME["mmengine-json"].read_file(real_logs / REAL["R45"][0])
    assert run.x_axis is XAxis.ITERATION
    assert run.curve("coco/bbox_mAP").steps.tolist() == list(range(1, 12))
    assert run.axis_of("coco/bbox_mAP") is XAxis.EPOCH
    assert run.axis_of("val/time") is XAxis.EPOCH and run.axis_of("time") is XAxis.ITERATION
    loss = run.curve("loss")
    assert loss.steps[0] == 50 and loss.steps[-1] == 45838 and len(loss) == 915
    assert not notes_of(run, NoteKind.DUPLICATED)  # epochs 1..11 are not a restart


def test_detectron2_restarts_and_repeated_record(real_logs: Path) -> None:
    r08 = BY_NAME["detectron2-json"].read_file(real_logs / REAL["R08"][0])
    assert [n.location for n in notes_of(r08, NoteKind.DUPLICATED)] == ["line 16", "line 31"]
    assert r08.curve("total_loss").steps.tolist()[:2] == [19, 39]
    r10 = BY_NAME["detectron2-json"].read_file(real_logs / REAL["R10"][0])
    (repeat,) = notes_of(r10, NoteKind.DUPLICATED)
    assert repeat.location == "line 2" and "iteration 19" in repeat.message
    assert r10.curve("total_loss").steps.tolist()[:3] == [19, 19, 39]  # both points kept


def test_hf_real_files(real_logs: Path) -> None:
    r38 = BY_NAME["hf-trainer"].read_file(real_logs / REAL["R38"][0])
    assert r38.curve("eval_g0_loss").steps[0] == 0  # eval before training
    assert "epoch" not in r38.tags and r38.metadata["logging_steps"] == "500"
    assert not notes_of(r38, NoteKind.DUPLICATED)  # train and eval records share steps by design
    r41 = BY_NAME["hf-trainer"].read_file(real_logs / REAL["R41"][0])
    assert r41.metadata["best_metric"] == "0.7431560204762965"
    assert r41.metadata["best_model_checkpoint"].endswith("checkpoint-3000")
    (summary,) = [n for n in notes_of(r41, NoteKind.INFO) if "summary" in n.message]
    assert "step 5000" in summary.message and summary.location is not None
    assert r41.curve("train_runtime").values.tolist() == [77350.9963]
    r06 = real_logs / REAL["R06"][0]
    assert hf_checkpoint_step(r06) == 1200


# --------------------------------------------------------------------------------------------
# Files written here, one per flavour, read back exactly.
# --------------------------------------------------------------------------------------------


def test_hf_round_trip_with_bare_nan_and_infinity(tmp_path: Path) -> None:
    history = [
        {"epoch": 0, "eval_loss": 2.5, "step": 0},
        {"epoch": 0.25, "grad_norm": float("nan"), "learning_rate": 1e-300, "loss": HARD_VALUES[0], "step": 10},
        {"epoch": 0.25, "eval_loss": float("inf"), "eval_accuracy": 0.5, "step": 10},
        {"epoch": 0.5, "grad_norm": float("-inf"), "learning_rate": 5e-324, "loss": 2.718281828459045, "step": 20},
        {"epoch": 0.5, "step": 20, "total_flos": 1.2e17, "train_loss": 1 / 3, "train_runtime": 12.5},
    ]
    state = {"best_metric": None, "epoch": 0.5, "eval_steps": 10, "global_step": 20, "is_world_process_zero": True,
             "log_history": history, "logging_steps": 10, "num_train_epochs": 1, "train_batch_size": 8,
             "best_model_checkpoint": "out/checkpoint-20", "stateful_callbacks": {"x": {}}}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2, sort_keys=True))
    assert "NaN" in path.read_text() and "-Infinity" in path.read_text()
    assert sniffed(path) is BY_NAME["hf-trainer"]
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.x_axis is XAxis.STEP and "epoch" not in run.tags and "step" not in run.tags
    assert bits(run.curve("grad_norm").values) == bits([float("nan"), float("-inf")])
    assert bits(run.curve("learning_rate").values) == bits([1e-300, 5e-324])
    assert run.curve("eval_loss").steps.tolist() == [0, 10]
    assert bits(run.curve("eval_loss").values) == bits([2.5, float("inf")])
    assert run.curve("train_loss").values.tolist() == [1 / 3]
    assert run.points == 12
    assert run.metadata == {"epoch": "0.5", "eval_steps": "10", "global_step": "20", "logging_steps": "10",
                            "num_train_epochs": "1", "train_batch_size": "8",
                            "best_model_checkpoint": "out/checkpoint-20"}
    assert not notes_of(run, NoteKind.DUPLICATED)
    (summary,) = notes_of(run, NoteKind.INFO)
    assert "run summary" in summary.message and "train_runtime" in summary.message


# Writers that cannot put NaN in JSON (a strict encoder, JavaScript) write its name as a string.
NON_FINITE_NAMES = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "-Infinity": -math.inf,
                    "inf": math.inf, "-inf": -math.inf}


def test_hf_non_finite_names_as_strings_are_points(tmp_path: Path) -> None:
    history = [{"epoch": 0.1 * i, "loss": name, "grad_norm": 1.0 + i, "learning_rate": 1e-4, "step": 10 * (i + 1)}
               for i, name in enumerate(NON_FINITE_NAMES)]
    history.append({"epoch": 1.0, "eval_loss": "Infinity", "eval_note": "n/a", "step": 60})
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"global_step": 60, "log_history": history}, indent=2))
    run = BY_NAME["hf-trainer"].read_file(path)
    assert bits(run.curve("loss").values) == bits(NON_FINITE_NAMES.values())
    assert run.curve("loss").steps.tolist() == [10 * (i + 1) for i in range(len(NON_FINITE_NAMES))]
    assert bits(run.curve("eval_loss").values) == bits([math.inf])
    assert "eval_note" not in run.tags  # any other string is no number
    assert run.notes == []  # what the writer meant, read as it meant it: nothing to say


@pytest.mark.parametrize("flavour", ["jsonl", "wandb-jsonl", "detectron2-json", "mmengine-json"])
def test_json_lines_non_finite_names_as_strings_are_points(tmp_path: Path, flavour: str) -> None:
    name, make = LINE_FLAVOURS[flavour]
    lines = []
    for i, text in enumerate(NON_FINITE_NAMES):
        record = make(i)
        record["loss"] = text
        lines.append(record)
    run = BY_NAME[flavour].read_file(write_lines(tmp_path / name, lines))
    assert bits(run.curve("loss").values) == bits(NON_FINITE_NAMES.values())
    assert not [note for note in run.notes if note.kind is not NoteKind.INFO]


def test_json_lines_integer_too_long_for_python_is_read_as_a_double(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": ' + "9" * 5_000 + '}\n'
                    '{"step": 3, "loss": ' + "9" * 300 + '}\n')
    run = BY_NAME["jsonl"].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, math.inf, float("9" * 300)]


def test_hf_metadata_keeps_numbers_and_strings_only(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": [{"loss": 1.0, "step": 1}], "best_metric": 0.9,
                                "best_model_checkpoint": "o/checkpoint-1", "trial_name": None,
                                "is_hyper_param_search": False, "stateful_callbacks": {}}))
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.metadata == {"best_metric": "0.9", "best_model_checkpoint": "o/checkpoint-1"}


@pytest.mark.parametrize("name, expected", [
    ("out/checkpoint-1200/trainer_state.json", 1200),
    ("checkpoint-7/trainer_state.json", 7),
    ("out/trainer_state.json", None),
    ("out/checkpoint-1200-final/trainer_state.json", None),
    ("checkpoint-1200/sub/trainer_state.json", None),
    ("out/checkpoint-x/trainer_state.json", None),
])
def test_hf_checkpoint_step(name: str, expected: int | None) -> None:
    assert hf_checkpoint_step(Path(name)) == expected


def test_keras_history_round_trip(tmp_path: Path) -> None:
    history = {"loss": [2.0, HARD_VALUES[0], float("nan")], "val_loss": [1e-300, 5e-324, float("inf")],
               "lr": [0.001, 0.001, 0.0001], "flag": [True, False, True]}
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    assert sniffed(path) is BY_NAME["keras-history-json"]
    run = BY_NAME["keras-history-json"].read_file(path)
    assert run.x_axis is XAxis.EPOCH and run.tags == ["loss", "val_loss", "lr"]  # bools are not metrics
    assert run.curve("loss").steps.tolist() == [0, 1, 2]
    assert bits(run.curve("loss").values) == bits(history["loss"])
    assert bits(run.curve("val_loss").values) == bits(history["val_loss"])


def test_keras_pretty_printed_and_cut_short(tmp_path: Path) -> None:
    text = json.dumps({"loss": [0.9, 0.8, 0.7], "val_loss": [1.0, 0.95, 0.97]}, indent=4)
    path = tmp_path / "history.json"
    path.write_text(text[: text.index("0.95") + 2])  # cut inside the second value of val_loss
    assert sniffed(path) is BY_NAME["keras-history-json"]
    run = BY_NAME["keras-history-json"].read_file(path)
    assert run.curve("loss").values.tolist() == [0.9, 0.8, 0.7]
    assert run.curve("val_loss").values.tolist() == [1.0]
    (cut,) = notes_of(run, NoteKind.TRUNCATED)
    assert cut.location == f"line {text[: text.index('0.95')].count(chr(10)) + 1}"


def mmdet_lines() -> list[dict[str, Any]]:
    return [
        {"env_info": "sys.platform: linux", "config": "model = dict()", "seed": 42, "exp_name": "cascade.py"},
        {"mode": "train", "epoch": 1, "iter": 50, "lr": 0.0002, "memory": 7325, "data_time": 0.05,
         "loss": 1.5, "grad_norm": float("inf"), "time": 0.47},
        {"mode": "train", "epoch": 1, "iter": 100, "lr": 0.0004, "memory": 7327, "data_time": 0.01,
         "loss": -7.425402360985986e28, "grad_norm": 2.5, "time": 0.46},
        {"mode": "val", "epoch": 1, "iter": 120, "lr": 0.0004, "bbox_mAP": 0.07, "bbox_mAP_copypaste": "0.070 0.1"},
        {"mode": "train", "epoch": 2, "iter": 50, "lr": 0.0004, "memory": 7327, "data_time": 0.01,
         "loss": 1e-300, "grad_norm": 2.0, "time": 0.45},
        {"mode": "val", "epoch": 2, "iter": 120, "lr": 0.0004, "bbox_mAP": 0.128, "bbox_mAP_copypaste": "x"},
        {"mode": "train", "epoch": 1, "iter": 50, "lr": 0.0002, "memory": 7000, "data_time": 0.05,
         "loss": 1.4, "grad_norm": 3.0, "time": 0.5},  # a new start appended
    ]


def test_mmdet_axes_metadata_and_restart(tmp_path: Path) -> None:
    directory = tmp_path / "#13. work dir (1)"
    directory.mkdir()
    path = write_lines(directory / "None.log.json", mmdet_lines())
    assert "Infinity" in path.read_text()
    assert sniffed(path) is BY_NAME["mmdet-json"]
    run = BY_NAME["mmdet-json"].read_file(path)
    assert run.x_axis is XAxis.ITERATION
    # iters per epoch = 120, the largest iter (the val records' epoch length)
    assert run.curve("loss").steps.tolist() == [50, 100, 120 + 50, 50]
    assert bits(run.curve("loss").values) == bits([1.5, -7.425402360985986e28, 1e-300, 1.4])
    assert bits(run.curve("grad_norm").values) == bits([float("inf"), 2.5, 2.0, 3.0])
    assert run.curve("bbox_mAP").steps.tolist() == [1, 2] and run.axis_of("bbox_mAP") is XAxis.EPOCH
    assert run.curve("val/lr").steps.tolist() == [1, 2] and run.axis_of("val/lr") is XAxis.EPOCH
    assert run.curve("lr").values.tolist() == [0.0002, 0.0004, 0.0004, 0.0002]
    assert {"memory", "time", "data_time", "lr"} <= set(run.tags)
    assert not {"epoch", "iter", "mode", "seed", "bbox_mAP_copypaste"} & set(run.tags)
    assert run.metadata == {"seed": "42", "exp_name": "cascade.py", "iters_per_epoch": "120"}
    assert run.points == 4 * 6 + 2 * 2
    (restart,) = [n for n in notes_of(run, NoteKind.DUPLICATED) if "goes back" in n.message]
    assert restart.location == "line 7" and "170 to 50" in restart.message
    assert any(n.location == "line 1" and "mode" in n.message for n in notes_of(run, NoteKind.INFO))


def test_mmdet_env_record_longer_than_the_head_is_sniffed(tmp_path: Path) -> None:
    lines = mmdet_lines()
    lines[0]["config"] = "x" * 70_000
    path = write_lines(tmp_path / "20240101.log.json", lines)
    assert sniffed(path) is BY_NAME["mmdet-json"]


def test_mmengine_round_trip(tmp_path: Path) -> None:
    lines = [
        {"base_lr": 0.0002, "lr": 2e-05, "data_time": 0.01, "loss": HARD_VALUES[0], "time": 0.3, "epoch": 1,
         "iter": 50, "memory": 100, "step": 50},
        {"base_lr": 0.0002, "lr": 4e-05, "data_time": 0.02, "loss": float("nan"), "time": 0.3, "epoch": 1,
         "iter": 100, "memory": 100, "step": 100},
        {"coco/bbox_mAP": 0.052, "coco/Plastic bag_precision": 1e-300, "data_time": 0.003, "time": 0.27, "step": 1},
        {"base_lr": 0.0002, "lr": 6e-05, "data_time": 0.02, "loss": 2.0, "time": 0.3, "epoch": 2,
         "iter": 150, "memory": 100, "step": 150},
        {"coco/bbox_mAP": 0.1, "coco/Plastic bag_precision": 0.2, "data_time": 0.004, "time": 0.26, "step": 2},
    ]
    path = write_lines(tmp_path / "scalars.json", lines)
    assert sniffed(path) is BY_NAME["mmengine-json"]
    run = BY_NAME["mmengine-json"].read_file(path)
    assert bits(run.curve("loss").values) == bits([HARD_VALUES[0], float("nan"), 2.0])
    assert run.curve("loss").steps.tolist() == [50, 100, 150]
    assert run.curve("coco/Plastic bag_precision").steps.tolist() == [1, 2]
    assert run.axis_of("coco/Plastic bag_precision") is XAxis.EPOCH
    assert run.curve("val/data_time").values.tolist() == [0.003, 0.004]
    assert run.curve("data_time").values.tolist() == [0.01, 0.02, 0.02]
    assert not {"step", "epoch", "iter"} & set(run.tags)
    assert run.points == 3 * 6 + 2 * 4


def test_detectron2_round_trip_with_eval_records(tmp_path: Path) -> None:
    lines = [
        {"data_time": 0.1, "eta_seconds": 100.0, "iteration": 19, "lr": 1e-300, "total_loss": HARD_VALUES[0]},
        {"data_time": 0.1, "eta_seconds": 90.0, "iteration": 39, "lr": 5e-324, "total_loss": float("nan")},
        {"bbox/AP": 31.5, "bbox/AP50": float("nan"), "iteration": 39},
        {"data_time": 0.1, "eta_seconds": 80.0, "iteration": 19, "lr": 2e-5, "total_loss": 2.0},
    ]
    path = write_lines(tmp_path / "metrics.json", lines)
    assert sniffed(path) is BY_NAME["detectron2-json"]
    run = BY_NAME["detectron2-json"].read_file(path)
    assert run.x_axis is XAxis.ITERATION
    assert run.curve("bbox/AP").steps.tolist() == [39]
    assert bits(run.curve("lr").values) == bits([1e-300, 5e-324, 2e-5])
    assert run.points == 3 * 4 + 2
    (restart,) = notes_of(run, NoteKind.DUPLICATED)  # the eval record at 39 is not a repeat
    assert restart.location == "line 4" and "from 39 to 19" in restart.message


def test_wandb_round_trip(tmp_path: Path) -> None:
    lines = [
        {"_step": 0, "_runtime": 1.5, "_timestamp": 1700000000.25, "epoch": 0, "train/loss": HARD_VALUES[0],
         "train/lr": 1e-300, "is_best": True, "note": "warm-up", "val/f1": None},
        {"_step": 1, "_runtime": 2.5, "_timestamp": 1700000001.5, "train/loss": float("nan"),
         "hist": {"_type": "histogram", "values": [1, 2], "bins": [0, 1, 2]}, "_wandb": {"runtime": 2}},
        {"_step": 2, "_runtime": 3.5, "_timestamp": 1700000002.75, "train/loss": 5e-324,
         "img": {"_type": "image-file", "path": "media/x.png"}},
    ]
    path = write_lines(tmp_path / "wandb-history.jsonl", lines)
    assert sniffed(path) is BY_NAME["wandb-jsonl"]
    run = BY_NAME["wandb-jsonl"].read_file(path)
    assert run.tags == ["train/loss", "train/lr"]  # epoch is an axis, not a series
    loss = run.curve("train/loss")
    assert bits(loss.values) == bits([HARD_VALUES[0], float("nan"), 5e-324])
    assert loss.steps.tolist() == [0, 1, 2] and loss.wall_times.tolist() == [1700000000.25, 1700000001.5,
                                                                               1700000002.75]
    (nested,) = notes_of(run, NoteKind.SKIPPED)
    assert nested.count == 2 and "hist" in nested.message and "img" in nested.message
    assert "_wandb" not in nested.message


def test_generic_jsonl_prefers_step_and_flattens(tmp_path: Path) -> None:
    lines = [
        {"epoch": 0, "step": 10, "train": {"loss": HARD_VALUES[0], "acc": 0.5}, "sizes": [1, 2]},
        {"epoch": 0, "step": 20, "train": {"loss": 1e-300, "acc": 0.75}},
        {"epoch": 1, "val": {"loss": 0.7}},  # no step: skipped, noted
    ]
    path = write_lines(tmp_path / "log.jsonl", lines)
    assert sniffed(path) is BY_NAME["jsonl"]
    run = BY_NAME["jsonl"].read_file(path)
    assert run.x_axis is XAxis.STEP and run.tags == ["epoch", "train/loss", "train/acc"]
    assert bits(run.curve("train/loss").values) == bits([HARD_VALUES[0], 1e-300])
    assert run.curve("train/acc").steps.tolist() == [10, 20]
    skipped = {note.location: note for note in notes_of(run, NoteKind.SKIPPED)}
    assert "'step'" in skipped["line 3"].message and skipped["line 3"].count == 1
    assert any("sizes" in note.message for note in skipped.values())


@pytest.mark.parametrize("key, axis", [("global_step", XAxis.STEP), ("iteration", XAxis.ITERATION),
                                       ("iter", XAxis.ITERATION), ("epoch", XAxis.EPOCH)])
def test_generic_jsonl_axis_follows_the_step_key(tmp_path: Path, key: str, axis: XAxis) -> None:
    path = write_lines(tmp_path / "log.jsonl", [{key: i, "loss": 1.0 / (i + 1)} for i in range(3)])
    run = BY_NAME["jsonl"].read_file(path)
    assert run.x_axis is axis and run.tags == ["loss"] and run.curve("loss").steps.tolist() == [0, 1, 2]


def test_fast_path_matches_the_careful_path_bit_for_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain numeric blocks skip the per-value loop; both paths must give the same run."""
    rng = np.random.default_rng(7)
    lines = []
    for step in range(3000):
        row: dict[str, Any] = {"_step": step, "_timestamp": 1.7e9 + step / 3}
        if step % 3:
            row.update({f"train/{k}": float(v) for k, v in zip("abcd", rng.standard_normal(4) * 10.0 ** rng.integers(-30, 30))})
        else:
            row.update({"val/loss": float(rng.random()), "epoch": step // 300})
        lines.append(row)
    lines[5]["train/a"] = HARD_VALUES[0]
    path = write_lines(tmp_path / "wandb-history.jsonl", lines)
    monkeypatch.setattr(json_lines, "_BLOCK_BYTES", 4096)  # many blocks, lines cut at block ends
    careful_calls = []
    real_careful = cells._CellTable.add_careful
    monkeypatch.setattr(cells._CellTable, "add_careful",
                        lambda self, *a: (careful_calls.append(1), real_careful(self, *a))[1])
    fast = BY_NAME["wandb-jsonl"].read_file(path)
    assert not careful_calls  # every block took the fast path
    monkeypatch.setattr(json_lines, "_add_block", lambda *args: False)
    careful = BY_NAME["wandb-jsonl"].read_file(path)
    assert fast.tags == careful.tags == ["val/loss", "train/a", "train/b", "train/c", "train/d"]
    expected_points = sum(len(row) - 2 - ("epoch" in row) for row in lines)  # epoch is an axis
    assert fast.points == careful.points == expected_points
    for a, b in [(fast.tag_codes, careful.tag_codes), (fast.steps, careful.steps)]:
        assert np.array_equal(a, b)
    assert bits(fast.values) == bits(careful.values)
    assert bits(fast.wall_times) == bits(careful.wall_times)
    # Points are grouped by tag, each tag's in line order.
    expected = [row[tag] for tag in fast.tag_names for row in lines if tag in row]
    assert bits(fast.values) == bits(expected)


def test_points_leave_the_reader_grouped_by_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run builder never has to regroup a reader's points (a pass over every point)."""
    from rundoctor import series

    regrouped = []
    real_group = series.group_by_tag
    monkeypatch.setattr(series, "group_by_tag",
                        lambda columns: (regrouped.append(not series.is_grouped(columns[0])), real_group(columns))[1])
    # the literal key "val/time" and the validation twin of "time" name one tag
    lines = [
        {"lr": 0.1, "loss": 2.0, "time": 0.5, "val/time": 9.0, "step": 10},
        {"acc": 0.3, "time": 0.25, "step": 1},
        {"lr": 0.2, "loss": 1.5, "time": 0.75, "step": 20},
        {"acc": 0.4, "time": 0.125, "step": 2},
    ]
    run = BY_NAME["mmengine-json"].read_file(write_lines(tmp_path / "scalars.json", lines))
    assert regrouped == [False]
    assert run.tags == ["lr", "loss", "time", "val/time", "acc"]
    assert run.curve("val/time").values.tolist() == [9.0, 0.25, 0.125]  # log order kept
    assert run.curve("time").steps.tolist() == [10, 20] and run.curve("acc").steps.tolist() == [1, 2]
    assert run.points == 11


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(
    st.sampled_from(["a", "b", "c:d", "e f"]),
    st.one_of(st.floats(allow_nan=True), st.integers(-2**70, 2**70), st.booleans(), st.none(),
              st.text(max_size=3), st.sampled_from(["NaN", "-Infinity", "inf", "Inf", "nan?"])), max_size=4),
    min_size=1, max_size=30))
def test_numbers_among_any_values_are_points_exactly(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / "log.jsonl"
    write_lines(path, [{"step": i, **row} for i, row in enumerate(rows)])
    run = BY_NAME["jsonl"].read_file(path)
    expected = [row[tag] for tag in run.tag_names for row in rows if is_number(row.get(tag))]  # by tag
    assert run.points == len(expected)
    assert bits(run.values) == bits(as_value(v) for v in expected)


# --------------------------------------------------------------------------------------------
# Hostile files: read what can be read, say what could not, with line numbers.
# --------------------------------------------------------------------------------------------

LINE_FLAVOURS = {
    "mmdet-json": ("None.log.json", lambda i: {"mode": "train", "epoch": 1, "iter": 10 * (i + 1), "loss": 1.0 + i}),
    "mmengine-json": ("scalars.json", lambda i: {"lr": 0.1, "loss": 1.0 + i, "step": i + 1}),
    "detectron2-json": ("metrics.json", lambda i: {"iteration": i, "loss": 1.0 + i, "data_time": 0.1}),
    "wandb-jsonl": ("wandb-history.jsonl", lambda i: {"_step": i, "loss": 1.0 + i}),
    "jsonl": ("log.jsonl", lambda i: {"step": i, "loss": 1.0 + i}),
}


def flavour_file(tmp_path: Path, flavour: str, lines: list[str], ending: str = "\n") -> Path:
    name, _ = LINE_FLAVOURS[flavour]
    path = tmp_path / name
    path.write_text(ending.join(lines) + ending if lines else "")
    return path


def good_lines(flavour: str, n: int) -> list[str]:
    return [json.dumps(LINE_FLAVOURS[flavour][1](i)) for i in range(n)]


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
def test_half_written_last_line_is_reported_not_fatal(tmp_path: Path, flavour: str) -> None:
    lines = good_lines(flavour, 4)
    path = tmp_path / LINE_FLAVOURS[flavour][0]
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    assert sniffed(path) is BY_NAME[flavour]
    run = BY_NAME[flavour].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, 2.0, 3.0]
    (cut,) = notes_of(run, NoteKind.TRUNCATED)
    assert cut.location == "line 4"
    assert not notes_of(run, NoteKind.CORRUPT)


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
def test_junk_lines_in_the_middle_are_skipped_with_their_numbers(tmp_path: Path, flavour: str) -> None:
    lines = good_lines(flavour, 6)
    lines[2] = "garbage {not json"
    lines[4] = lines[4][:-3]  # an object cut short, then the log went on
    path = flavour_file(tmp_path, flavour, lines)
    run = BY_NAME[flavour].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, 2.0, 4.0, 6.0]
    (corrupt,) = notes_of(run, NoteKind.CORRUPT)
    assert corrupt.location == "lines 3, 5" and corrupt.count == 2 and "line 3" in corrupt.message
    assert not notes_of(run, NoteKind.TRUNCATED)


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
@pytest.mark.parametrize("content", ["", "\n\n  \n", "\r\n"])
def test_empty_or_blank_file_is_an_empty_run_with_a_note(tmp_path: Path, flavour: str, content: str) -> None:
    path = tmp_path / LINE_FLAVOURS[flavour][0]
    path.write_text(content)
    run = BY_NAME[flavour].read_file(path)
    assert run.points == 0 and run.format == flavour
    (note,) = run.notes
    assert note.kind is NoteKind.INFO and "empty" in note.message


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
def test_bom_and_crlf_are_read(tmp_path: Path, flavour: str) -> None:
    path = tmp_path / LINE_FLAVOURS[flavour][0]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(good_lines(flavour, 3)).encode() + b"\r\n")
    assert sniffed(path) is BY_NAME[flavour]
    run = BY_NAME[flavour].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, 2.0, 3.0]
    assert run.notes == [] or all(n.kind is NoteKind.INFO and "iteration axis" in n.message for n in run.notes)


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
def test_non_utf8_bytes_are_replaced_and_noted(tmp_path: Path, flavour: str) -> None:
    lines = [line.encode() for line in good_lines(flavour, 3)]
    lines[1] = lines[1][:-1] + b', "name": "caf\xe9 \xff"}'
    path = tmp_path / LINE_FLAVOURS[flavour][0]
    path.write_bytes(b"\n".join(lines) + b"\n")
    run = BY_NAME[flavour].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, 2.0, 3.0]
    (note,) = [n for n in run.notes if "UTF-8" in n.message]
    assert note.location == "line 2" and note.kind is NoteKind.INFO


@pytest.mark.parametrize("flavour", ["detectron2-json", "wandb-jsonl", "jsonl", "mmengine-json"])
def test_records_without_a_step_are_skipped_and_noted(tmp_path: Path, flavour: str) -> None:
    lines = good_lines(flavour, 5)
    step_key = {"detectron2-json": "iteration", "wandb-jsonl": "_step", "jsonl": "step", "mmengine-json": "step"}[flavour]
    for index in (1, 3, 4):
        record = json.loads(lines[index])
        if index == 4:
            record[step_key] = 4.5  # not a whole number
        else:
            del record[step_key]
        lines[index] = json.dumps(record)
    run = BY_NAME[flavour].read_file(flavour_file(tmp_path, flavour, lines))
    assert run.curve("loss").values.tolist() == [1.0, 3.0]
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.location == "lines 2, 4-5" and skipped.count == 3


def test_mmdet_records_without_epoch_or_iter_are_skipped(tmp_path: Path) -> None:
    lines = good_lines("mmdet-json", 3)
    lines[1] = json.dumps({"mode": "train", "loss": 9.0})
    run = BY_NAME["mmdet-json"].read_file(flavour_file(tmp_path, "mmdet-json", lines))
    assert run.curve("loss").values.tolist() == [1.0, 3.0]
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.location == "line 2"


@pytest.mark.parametrize("flavour", LINE_FLAVOURS)
@pytest.mark.parametrize("content", [b"this is not json\nat all\n", b"\x00\x01\x02\xff" * 50, b"[1, 2]\n[3]\n"])
def test_not_json_lines_at_all_is_unreadable(tmp_path: Path, flavour: str, content: bytes) -> None:
    path = tmp_path / LINE_FLAVOURS[flavour][0]
    path.write_bytes(content)
    assert sniffed(path) is None
    with pytest.raises(UnreadableInput):
        BY_NAME[flavour].read_file(path)


@pytest.mark.parametrize("flavour", ["detectron2-json", "wandb-jsonl", "mmdet-json"])
def test_objects_of_another_flavour_are_unreadable(tmp_path: Path, flavour: str) -> None:
    path = write_lines(tmp_path / "other.jsonl", [{"time": 1.0, "value": 2.0}] * 3)
    with pytest.raises(UnreadableInput, match="no record"):
        BY_NAME[flavour].read_file(path)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    for reader in READERS:
        with pytest.raises(UnreadableInput):
            reader.read_file(tmp_path / "nope.json")


def test_a_line_longer_than_a_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_lines, "_BLOCK_BYTES", 64)
    lines = [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 2.0, "note": "x" * 500}, {"step": 2, "loss": 3.0}]
    run = BY_NAME["jsonl"].read_file(write_lines(tmp_path / "log.jsonl", lines))
    assert run.curve("loss").values.tolist() == [1.0, 2.0, 3.0] and run.notes == []


def test_truncated_trainer_state_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    losses = [2.0, 1.9, 1.8, 1.7, 1.6, 1.5]
    history = [{"epoch": i / 10, "loss": loss, "step": 10 * (i + 1)} for i, loss in enumerate(losses)]
    text = json.dumps({"best_metric": None, "epoch": 0.6, "log_history": history, "logging_steps": 10}, indent=2)
    cut_at = text.index('"loss": 1.6')  # inside the fifth record
    path = tmp_path / "trainer_state.json"
    path.write_text(text[:cut_at])
    assert sniffed(path) is BY_NAME["hf-trainer"]
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.curve("loss").values.tolist() == [2.0, 1.9, 1.8, 1.7]
    (cut,) = notes_of(run, NoteKind.TRUNCATED)
    assert cut.location == f"line {text[:cut_at].count(chr(10)) + 1}"
    assert "4 complete log_history records" in cut.message
    assert run.metadata == {"epoch": "0.6"}  # logging_steps came after the cut


def test_trainer_state_damaged_inside(tmp_path: Path) -> None:
    history = [{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}, {"loss": 0.25, "step": 3}]
    text = json.dumps({"log_history": history, "max_steps": 3}, indent=1).replace('"loss": 0.5', '"loss": 0.5 oops')
    path = tmp_path / "trainer_state.json"
    path.write_text(text)
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0]
    (corrupt,) = notes_of(run, NoteKind.CORRUPT)
    assert corrupt.location == f"line {text[: text.index('oops')].count(chr(10)) + 1}"


@pytest.mark.parametrize("content, why", [
    ("", None), ("  \n", None),
    ('{"log_history": [], "global_step": 0}', "log_history is empty"),
])
def test_trainer_state_with_nothing_logged(tmp_path: Path, content: str, why: str | None) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text(content)
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.points == 0 and any(n.kind is NoteKind.INFO for n in run.notes)
    assert why is None or any(why in n.message for n in run.notes)


@pytest.mark.parametrize("content", ['{"best_metric": 1.0}', "[1, 2, 3]", "not json", '{"log_history": 5}',
                                     '{"log_history": [{"loss": 1.0}]}'])
def test_trainer_state_without_history_is_unreadable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text(content)
    with pytest.raises(UnreadableInput):
        BY_NAME["hf-trainer"].read_file(path)


def test_trainer_state_records_without_step_and_non_objects(tmp_path: Path) -> None:
    text = '{"log_history": [\n{"loss": 1.0, "step": 1},\n{"loss": 2.0},\n7,\n{"loss": 3.0, "step": 3}\n]}'
    path = tmp_path / "trainer_state.json"
    path.write_text(text)
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0, 3.0]
    locations = {note.location for note in notes_of(run, NoteKind.SKIPPED)}
    assert locations == {"line 3", "line 4"}


def test_trainer_state_non_utf8_bom_and_crlf(tmp_path: Path) -> None:
    text = json.dumps({"log_history": [{"loss": 1.0, "step": 1}], "note": "café"}, indent=1, ensure_ascii=False)
    path = tmp_path / "trainer_state.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("latin-1"))
    run = BY_NAME["hf-trainer"].read_file(path)
    assert run.curve("loss").values.tolist() == [1.0]
    assert run.metadata["note"] == "caf\ufffd"
    (note,) = [n for n in run.notes if "UTF-8" in n.message]
    assert note.kind is NoteKind.INFO


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_never_raise_anything_but_unreadable(tmp_path: Path, data: st.DataObject) -> None:
    """Cut, overwrite or splice any flavour's file anywhere: a run or UnreadableInput."""
    flavour = data.draw(st.sampled_from([*LINE_FLAVOURS, "hf-trainer", "keras-history-json"]))
    if flavour == "hf-trainer":
        name, text = "trainer_state.json", json.dumps(
            {"log_history": [{"loss": 1.5, "step": 1, "epoch": 0.5}, {"eval_loss": 2.0, "step": 1}]}, indent=1)
    elif flavour == "keras-history-json":
        name, text = "h.json", json.dumps({"loss": [1.0, 0.5], "val_loss": [2.0, 1.0]})
    else:
        name, text = LINE_FLAVOURS[flavour][0], "\n".join(good_lines(flavour, 4)) + "\n"
    raw = bytearray(text.encode())
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.binary(max_size=6) | st.sampled_from([b"\n", b"{", b"}", b"NaN", b"[", b'"', b"\xef\xbb\xbf"]))
        raw[at:at + data.draw(st.integers(0, 3))] = junk
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / name
    path.write_bytes(bytes(raw))
    for reader in READERS:
        assert isinstance(reader.sniff(path, bytes(raw[:65536])), bool)
    try:
        run = BY_NAME[flavour].read_file(path)
    except UnreadableInput:
        return
    assert run.points == run.steps.size == run.values.size == run.tag_codes.size == run.wall_times.size


# --------------------------------------------------------------------------------------------
# Sniffing: each flavour to its reader, nothing else claimed.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, content, expected", [
    ("trainer_state.json", '{\n  "best_metric": null,\n  "log_history": []}', "hf-trainer"),
    ("state.json", '{"epoch": 1.0, "log_history": [{"loss": 1, "step": 1}]}', "hf-trainer"),
    ("history.json", '{"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]}', "keras-history-json"),
    ("history.json", '{\n    "accuracy": [\n        0.5,\n', "keras-history-json"),
    ("x.log.json", '{"mode": "train", "epoch": 1, "iter": 50, "loss": 1.0}\n', "mmdet-json"),
    ("scalars.json", '{"lr": 0.1, "loss": 1.0, "step": 50}\n', "mmengine-json"),
    ("s.json", '{"lr": 0.1, "data_time": 0.1, "time": 0.2, "epoch": 1, "iter": 5, "step": 5}\n', "mmengine-json"),
    ("metrics.json", '{"iteration": 19, "total_loss": 1.0}\n', "detectron2-json"),
    ("m.jsonl", '{"data_time": 0.1, "iteration": 19, "lr": 0.1}\n', "detectron2-json"),
    ("wandb-history.jsonl", '{"_step": 0, "loss": 1.0}\n', "wandb-jsonl"),
    ("log.jsonl", '{"step": 0, "loss": 1.0}\n{"step": 1, "loss": [1]}\n', "jsonl"),
    ("log.jsonl", '{"iteration": 0, "loss": 1.0}\n', "jsonl"),
    ("log.jsonl", '{"loss": 1.0}\n', None),
    ("config.json", '{"model": {"layers": 3}}', None),
    ("hparams.yaml", "{}\n", None),
    ("data.csv", "step,loss\n0,1.0\n", None),
    ("empty.jsonl", "", None),
    ("metrics.json", "", None),
])
def test_sniffing(tmp_path: Path, name: str, content: str, expected: str | None) -> None:
    path = tmp_path / name
    path.write_text(content)
    chosen = sniffed(path)
    assert (chosen.name if chosen else None) == expected
