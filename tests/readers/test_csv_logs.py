"""CSV readers: real logs of every flavour, files written here and read back, hostile files."""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rundoctor.readers import files
from rundoctor.readers.base import Reader, UnreadableInput
from rundoctor.readers.csv import READERS
from rundoctor.readers.csv import scan as csv_scan
from rundoctor.readers.csv import table as csv_table
from rundoctor.series import NoteKind, ReadNote, Run, XAxis

READER = {reader.name: reader for reader in READERS}


def sniffed(path: Path) -> Reader | None:
    """The first reader claiming the file, as the dispatcher picks it."""
    head = path.read_bytes()[:65536]
    return next((reader for reader in READERS if reader.sniff(path, head)), None)


def read(path: Path) -> Run:
    reader = sniffed(path)
    assert reader is not None, f"no CSV reader claims {path.name}"
    return reader.read_file(path)


def expected_curves(path: Path, axis: str, not_tags: Sequence[str] = ()) -> dict[str, list[tuple[int, float]]]:
    """Every numeric cell per tag, computed with the csv module alone (independent of the reader)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = [name.strip() for name in rows[0]]
    axis_position = header.index(axis)
    curves: dict[str, list[tuple[int, float]]] = {
        name: [] for name in header if name != axis and name not in not_tags
    }
    for row in rows[1:]:
        step = int(float(row[axis_position]))
        for name, cell in zip(header, row):
            cell = cell.strip()
            if name in curves and cell not in ("", "NA"):
                curves[name].append((step, float(cell)))
    return curves


def assert_curves(run: Run, expected: dict[str, list[tuple[int, float]]]) -> None:
    assert run.tags == [tag for tag, points in expected.items() if points]
    assert run.points == sum(len(points) for points in expected.values())
    for tag, points in expected.items():
        curve = run.curve(tag)
        np.testing.assert_array_equal(curve.steps, [step for step, _ in points], err_msg=tag)
        # array_equal holds NaN equal to NaN and nothing else: every value must match exactly.
        np.testing.assert_array_equal(curve.values, [value for _, value in points], err_msg=tag)


def notes_of(run: Run, kind: NoteKind) -> list[ReadNote]:
    return [note for note in run.notes if note.kind is kind]


# ------------------------------------------------------------------------------------------
# Real logs
# ------------------------------------------------------------------------------------------

ULTRALYTICS = ("ultralytics-csv", "epoch", ())  # (reader, axis column, columns that are no tag)
LIGHTNING = ("lightning-csv", "step", ("epoch",))
KERAS = ("keras-csv", "epoch", ())
REAL = {
    "R12": ("1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp2/results.csv", ULTRALYTICS),
    "R14": ("1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp/results.csv", ULTRALYTICS),
    "R16": ("Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile/"
            "runs/train/exp/results.csv", ULTRALYTICS),
    "R18": ("AstilePeter__Raspberry-Quince-Detector__yolov5/runs/train/exp/results.csv", ULTRALYTICS),
    "R20": ("DeepPicEI__Elderly-fall-detection__ultralytics-yolo11/runs/train/exp/results.csv", ULTRALYTICS),
    "R22": ("Abhinaya35__dental-tooth-detection-yolov8__yolov8-ultralytics-short/runs/detect/train/results.csv",
            ULTRALYTICS),
    "R23": ("AJ-C22__CourtVision__yolov8-val-loss-all-nan/runs/detect/train/results.csv", ULTRALYTICS),
    "R24": ("AIRI-Institute__genrisk__lightning-wgan/lightning_logs/version_10/metrics.csv", LIGHTNING),
    "R25": ("Melissasssss__TurnGPT__lightning-noisy-loss/lightning_logs/version_0/metrics.csv", LIGHTNING),
    "R26": ("0Xero7__slm_training__lightning-lm-long/lightning_logs/version_0/metrics.csv", LIGHTNING),
    "R27": ("Multimodal-Emotion-Recognition-Group__image_bind__lightning-val-acc-flat/"
            "lightning_logs/version_23/metrics.csv", LIGHTNING),
    "R28": ("4hmetcakmak__BraTS2020CapstoneProject__keras-csvlogger-unet-reducelr/training.log", KERAS),
    "R29": ("BurakErguvn__Car-Prediction-CNN-Model__keras-csvlogger-cnn/training.log", KERAS),
    "R35": ("AhmedImtiazPrio__irfanet-10__keras-tf1-tensorboard-overfit/training.log", KERAS),
}


@pytest.mark.parametrize("row", sorted(REAL))
def test_real_file_is_sniffed_and_every_numeric_cell_is_a_point(real_logs: Path, row: str) -> None:
    relative, (reader, axis, not_tags) = REAL[row]
    path = real_logs / relative
    chosen = sniffed(path)
    assert chosen is not None and chosen.name == reader
    run = chosen.read_file(path)
    assert run.format == reader
    assert run.x_axis is (XAxis.STEP if axis == "step" else XAxis.EPOCH)
    assert_curves(run, expected_curves(path, axis, not_tags))
    assert not notes_of(run, NoteKind.CORRUPT) and not notes_of(run, NoteKind.TRUNCATED)


def test_yolov5_transient_nans_survive(real_logs: Path) -> None:
    run = read(real_logs / REAL["R12"][0])
    box = run.curve("train/box_loss")
    assert box.steps[np.isnan(box.values)].tolist() == [167, 176, 177]
    val_box = run.curve("val/box_loss")
    assert val_box.steps[np.isnan(val_box.values)].tolist() == [170, 177]
    assert box.values[0] == 0.10684 and run.curve("x/lr0").values[0] == 0.1


def test_padded_ultralytics_all_nan_val_loss_stays_numeric(real_logs: Path) -> None:
    run = read(real_logs / REAL["R23"][0])
    assert run.tags[:3] == ["train/box_loss", "train/cls_loss", "train/dfl_loss"]
    for tag in ("val/box_loss", "val/cls_loss", "val/dfl_loss"):
        curve = run.curve(tag)
        assert curve.values.dtype == np.float64 and len(curve) == 225 and bool(np.isnan(curve.values).all())
    assert run.curve("train/box_loss").values[0] == 3.6966
    assert run.curve("train/box_loss").steps[[0, -1]].tolist() == [1, 225]


def test_ultralytics_8_time_column_is_a_tag(real_logs: Path) -> None:
    run = read(real_logs / REAL["R20"][0])
    assert run.tags[0] == "time" and run.curve("time").values[0] == 211.415
    assert run.curve("train/box_loss").steps[0] == 1


def test_keras_full_precision_and_old_names(real_logs: Path) -> None:
    run = read(real_logs / REAL["R29"][0])
    assert run.curve("accuracy").values[0] == 0.28529292345046997
    assert run.curve("val_loss").values[0] == 1.8974509239196777
    old = read(real_logs / REAL["R35"][0])
    assert old.tags == ["acc", "loss", "val_acc", "val_loss"]
    assert old.curve("loss").values.tolist() == [0.390387876078, 0.364386106274, 0.344507466851]


def test_lightning_validation_step_rows_and_hparams(real_logs: Path) -> None:
    run = read(real_logs / REAL["R27"][0])
    val_step_tags = {"val_acc_mean_pos_step", "val_acc_top1_step", "val_acc_top5_step",
                     "val_loss_cross_step", "val_loss_step"}
    assert set(run.tag_axes) == val_step_tags
    assert run.axis_of("val_loss_step") is XAxis.ITERATION and run.axis_of("val_loss_epoch") is XAxis.STEP
    assert run.curve("val_loss_step").steps[[0, -1]].tolist() == [0, 436]
    assert "validation" in notes_of(run, NoteKind.INFO)[0].message
    assert run.metadata["batch_size"] == "6"
    assert run.metadata["lr"] == "5e-06"
    assert run.metadata["lora_layer_idxs.audio"] == "null"
    assert run.metadata["lora_modality_names"] == '["vision", "text", "audio"]'
    assert run.sources[-1].endswith("hparams.yaml")


def test_lightning_without_validation_steps_has_no_axis_override(real_logs: Path) -> None:
    run = read(real_logs / REAL["R26"][0])
    assert run.tag_axes == {} and run.metadata["d_model"] == "768"
    assert "epoch" not in run.tags and "step" not in run.tags and "epoch_time" in run.tags


# ------------------------------------------------------------------------------------------
# Files written here, read back
# ------------------------------------------------------------------------------------------


def special_values(rng: np.random.Generator, size: int) -> list[float]:
    """Awkward floats: 17 significant digits, tiny and huge magnitudes, NaN and infinities."""
    values = (rng.standard_normal(size) * 10.0 ** rng.integers(-30, 30, size)).tolist()
    for position, special in zip(rng.choice(size, 3, replace=False), (math.nan, math.inf, -math.inf), strict=True):
        values[position] = special
    return values


def write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], line_end: str = "\n") -> None:
    def cell(value: object) -> str:
        return repr(value) if isinstance(value, float) else ("" if value is None else str(value))

    text = line_end.join(",".join(cell(value) for value in row) for row in [header, *rows]) + line_end
    path.write_text(text, encoding="utf-8", newline="")


def test_lightning_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = iter(special_values(rng, 60))
    header = ["epoch", "step", "train_loss_epoch", "train_loss_step", "val_loss"]
    rows, points = [], {"train_loss_epoch": [], "train_loss_step": [], "val_loss": []}
    step = 0
    for epoch in range(4):
        for _ in range(10):
            value = next(values)
            rows.append([epoch, step, None, value, None])
            points["train_loss_step"].append((step, value))
            step += 1
        for tag, column in (("val_loss", 4), ("train_loss_epoch", 2)):
            value = next(values)
            row: list[object] = [epoch, step - 1, None, None, None]
            row[column] = value
            rows.append(row)
            points[tag].append((step - 1, value))
    folder = tmp_path / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    write_rows(folder / "metrics.csv", header, rows, line_end="\r\n")  # csv.DictWriter's default
    (folder / "hparams.yaml").write_text("lr: 0.001\noptimizer:\n  name: adam\n  betas: [0.9, 0.99]\n")
    run = read(folder / "metrics.csv")
    assert run.format == "lightning-csv" and run.x_axis is XAxis.STEP and not run.notes
    assert_curves(run, {tag: points[tag] for tag in ("train_loss_epoch", "train_loss_step", "val_loss")})
    assert run.metadata == {"lr": "0.001", "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.99]"}
    assert np.isnan(run.wall_times).all()



def lightning_with_lr_monitor(interval: str, validation_steps: bool = False) -> tuple[list[str], list[list[object]]]:
    """A Lightning CSVLogger file as ``Trainer(log_every_n_steps=50)`` writes it, with a
    ``LearningRateMonitor(logging_interval=interval)``: the monitor calls the logger itself, so
    its rows have a step (the optimizer steps taken) and an empty epoch cell.  Validation
    logs ``val_loss`` at each epoch's end; with ``validation_steps`` also ``val_loss_step``
    every validation batch, on the validation loop's own counter and without an epoch either."""
    header = ["epoch", "step", "lr-Adam", "train_loss", "val_loss", *(["val_loss_step"] if validation_steps else [])]
    blank = [None] * len(header)
    rows: list[list[object]] = []
    batches, validated = 100, 0
    for epoch in range(3):
        lr = 1e-3 * 0.5**epoch
        if interval == "epoch":
            rows.append([None, epoch * batches, lr, *blank[3:]])
        for batch in range(49, batches, 50):
            step = epoch * batches + batch
            if interval == "step":
                rows.append([None, step, lr, *blank[3:]])
            rows.append([epoch, step, None, 1.0 / (step + 1), *blank[4:]])
        if validation_steps:
            for _ in range(4):
                rows.append([None, validated, None, None, None, 2.0 + validated])
                validated += 1
        rows.append([epoch, epoch * batches + batches - 1, None, None, 1.5 - epoch / 10, *blank[5:]])
    return header, rows


@pytest.mark.parametrize("interval, lr_steps", [("step", [49, 99, 149, 199, 249, 299]), ("epoch", [0, 100, 200])])
def test_lightning_lr_monitor_rows_are_on_the_step_axis(tmp_path: Path, interval: str, lr_steps: list[int]) -> None:
    header, rows = lightning_with_lr_monitor(interval)
    path = tmp_path / "metrics.csv"
    write_rows(path, header, rows)
    run = read(path)
    assert run.format == "lightning-csv" and run.x_axis is XAxis.STEP
    assert run.tag_axes == {} and run.axis_of("lr-Adam") is XAxis.STEP
    assert run.curve("lr-Adam").steps.tolist() == lr_steps
    assert run.curve("train_loss").steps.tolist() == [49, 99, 149, 199, 249, 299]
    assert run.curve("val_loss").steps.tolist() == [99, 199, 299]
    assert not run.notes


def test_lightning_lr_monitor_rows_beside_validation_step_rows(tmp_path: Path) -> None:
    header, rows = lightning_with_lr_monitor("step", validation_steps=True)
    path = tmp_path / "metrics.csv"
    write_rows(path, header, rows)
    run = read(path)
    assert run.tag_axes == {"val_loss_step": XAxis.ITERATION}
    assert run.curve("val_loss_step").steps.tolist() == list(range(12))
    assert run.axis_of("lr-Adam") is XAxis.STEP and run.curve("lr-Adam").steps.tolist()[:2] == [49, 99]
    (note,) = run.notes
    assert note.kind is NoteKind.INFO and "val_loss_step" in note.message and "lr-Adam" not in note.message


def test_ultralytics_round_trip_with_padding_and_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    header = ["epoch", "train/box_loss", "val/box_loss", "metrics/mAP50(B)"]
    epochs = [1, 2, 3, 4, 5, 3, 4, 5, 6]  # resumed from epoch 2's checkpoint
    rows = [[epoch, *special_values(rng, 3)] if index == 0 else [epoch, *rng.random(3).tolist()]
            for index, epoch in enumerate(epochs)]
    rows[4][2] = math.nan
    path = tmp_path / "results.csv"
    padded = "\n".join(",".join(f"{repr(v) if isinstance(v, float) else v:>24}" for v in row)
                       for row in [header, *rows]) + "\n"
    path.write_text(padded)
    run = read(path)
    assert run.format == "ultralytics-csv" and run.x_axis is XAxis.EPOCH
    expected = {tag: [(row[0], row[i + 1]) for row in rows] for i, tag in enumerate(header[1:])}
    assert_curves(run, expected)
    (duplicated,) = notes_of(run, NoteKind.DUPLICATED)
    assert "epoch 3..5" in duplicated.message and duplicated.location == "line 7" and duplicated.count == 3


def test_keras_round_trip_with_na_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    header = ["epoch", "accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    rows = [[epoch, *special_values(rng, 5)] for epoch in range(6)]
    rows[2][4] = "NA"  # the metric was not in the logs that epoch
    rows[3][5] = "NA"
    path = tmp_path / "training.log"
    write_rows(path, header, rows, line_end="\r\n")
    run = read(path)
    assert run.format == "keras-csv" and run.x_axis is XAxis.EPOCH
    expected = {tag: [(row[0], row[i + 1]) for row in rows if row[i + 1] != "NA"]
                for i, tag in enumerate(header[1:])}
    assert_curves(run, expected)
    assert len(run.curve("val_accuracy")) == 5


def test_wide_round_trip_uses_wall_time_and_prefers_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    header = ["epoch", "global_step", "wall_time", "loss", "acc"]
    steps = range(0, 1000, 50)
    columns = zip(special_values(rng, len(steps)), special_values(rng, len(steps)), strict=True)
    rows = [[step // 100, step, 1_700_000_000.25 + step, *pair] for step, pair in zip(steps, columns, strict=True)]
    rows[3][4] = None
    path = tmp_path / "log.csv"
    write_rows(path, header, rows)
    run = read(path)
    assert run.format == "wide-csv" and run.x_axis is XAxis.STEP
    assert run.tags == ["loss", "acc"]  # neither axis nor wall time is a tag
    assert_curves(run, {"loss": [(r[1], r[3]) for r in rows], "acc": [(r[1], r[4]) for r in rows if r[4] is not None]})
    np.testing.assert_array_equal(run.curve("loss").wall_times, [r[2] for r in rows])


@pytest.mark.parametrize(
    ("axis", "x_axis"), [("iteration", XAxis.ITERATION), ("epoch", XAxis.EPOCH), ("iter", XAxis.ITERATION)]
)
def test_wide_axis_names(tmp_path: Path, axis: str, x_axis: XAxis) -> None:
    path = tmp_path / "metrics_log.csv"
    write_rows(path, ["loss", axis], [[1.5, 0], [0.5, 1]])
    run = read(path)
    assert run.format == "wide-csv" and run.x_axis is x_axis and run.curve("loss").steps.tolist() == [0, 1]


def test_wide_millisecond_and_datetime_wall_times(tmp_path: Path) -> None:
    milliseconds = tmp_path / "ms.csv"
    write_rows(milliseconds, ["step", "timestamp", "loss"], [[0, 1_700_000_000_500, 1.0], [1, 1_700_000_001_500, 0.5]])
    assert read(milliseconds).wall_times.tolist() == [1_700_000_000.5, 1_700_000_001.5]
    dated = tmp_path / "dated.csv"
    write_rows(dated, ["step", "timestamp", "loss"],
               [[0, "2023-11-14T22:13:20Z", 1.0], [1, "2023-11-14T22:13:21Z", 0.5]])
    assert read(dated).wall_times.tolist() == [1_700_000_000.0, 1_700_000_001.0]


def test_wide_fractional_epochs_are_kept_as_a_tag(tmp_path: Path) -> None:
    path = tmp_path / "hf_log.csv"
    write_rows(path, ["epoch", "loss"], [[0.25, 2.0], [0.5, 1.0], [0.75, 0.5]])
    run = READER["wide-csv"].read_file(path)
    assert run.x_axis is XAxis.ITERATION
    assert run.curve("epoch").values.tolist() == [0.25, 0.5, 0.75]
    assert run.curve("loss").steps.tolist() == [0, 1, 2]
    assert notes_of(run, NoteKind.INFO)[0].location == "line 2"


@pytest.mark.parametrize("tag_column", ["tag", "name", "metric", "key"])
def test_long_round_trip(tmp_path: Path, tag_column: str) -> None:
    rng = np.random.default_rng(11)
    values = special_values(rng, 30)
    rows = [[step, tag, values[3 * step + offset], 1_700_000_000.0 + step]
            for step in range(10) for offset, tag in enumerate(["train/loss", "val/loss", "lr"])]
    path = tmp_path / "scalars.csv"
    write_rows(path, ["step", tag_column, "value", "wall_time"], rows)
    run = read(path)
    assert run.format == "long-csv"
    assert_curves(run, {tag: [(r[0], r[2]) for r in rows if r[1] == tag] for tag in ["train/loss", "val/loss", "lr"]})
    np.testing.assert_array_equal(run.curve("lr").wall_times, [1_700_000_000.0 + step for step in range(10)])


def test_long_rows_without_a_tag_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "scalars.csv"
    write_rows(path, ["step", "tag", "value"], [[0, "loss", 1.0], [1, None, 2.0], [2, "loss", 0.5]])
    run = read(path)
    assert run.curve("loss").values.tolist() == [1.0, 0.5]
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.location == "line 3" and skipped.count == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.one_of(st.none(), st.floats(width=64)), min_size=3, max_size=3), min_size=1, max_size=12))
def test_wide_round_trip_any_floats(cells: list[list[float | None]]) -> None:
    header = ["step", "a", "b", "c"]
    rows = [[step, *row] for step, row in enumerate(cells)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.csv"
        write_rows(path, header, rows)
        run = READER["wide-csv"].read_file(path)
    expected = {tag: [(row[0], row[i + 1]) for row in rows if row[i + 1] is not None] for i, tag in enumerate("abc")}
    assert_curves(run, expected)
    assert not run.notes


# ------------------------------------------------------------------------------------------
# Sniffing
# ------------------------------------------------------------------------------------------

MMDET_TEXT_LOG = (
    "2022-10-11 05:48:15,214 - mmdet - INFO - Environment info:\n"
    "------------------------------------------------------------\n"
    "sys.platform: linux\n"
    "2022-10-11 05:50:05,317 - mmdet - INFO - Epoch [1][50/1221]\tlr: 1.988e-03, eta: 3:33:28, "
    "time: 0.528, data_time: 0.053, memory: 4215, loss_rpn_cls: 0.5, loss: 1.2\n"
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("20221011_054815.log", MMDET_TEXT_LOG),
        ("train.log", "epoch 1 step 50 loss 0.5\nepoch 1 step 100 loss 0.4\n"),
        ("train.csv", "image,label\nimg_0001.png,cat\n"),
        ("notes.txt", "step, we went to the shop\n"),
        ("run.log", "Step 1, loss 0.5\n"),
        ("metrics.jsonl", '{"step": 1, "loss": 0.5}\n'),
        ("empty.log", ""),
    ],
)
def test_text_that_is_no_csv_log_is_not_claimed(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert sniffed(path) is None


def test_keras_log_is_not_a_wide_csv_and_results_csv_is_not_keras(tmp_path: Path) -> None:
    keras = tmp_path / "training.log"
    write_rows(keras, ["epoch", "loss", "val_loss"], [[0, 1.0, 1.1]])
    assert sniffed(keras) is READER["keras-csv"]
    renamed = tmp_path / "history.csv"  # any name: epoch first, then the keys sorted
    write_rows(renamed, ["epoch", "acc", "loss", "val_acc", "val_loss"], [[0, 0.5, 1.0, 0.4, 1.1]])
    assert sniffed(renamed) is READER["keras-csv"]
    unsorted = tmp_path / "custom.csv"
    write_rows(unsorted, ["epoch", "val_loss", "loss"], [[0, 1.0, 1.1]])
    assert sniffed(unsorted) is READER["wide-csv"]
    yolo = tmp_path / "results.csv"
    write_rows(yolo, ["epoch", "train/box_loss", "val/box_loss"], [[0, 1.0, 1.1]])
    assert sniffed(yolo) is READER["ultralytics-csv"]


def test_a_clean_csv_header_in_a_log_file_is_a_wide_csv(tmp_path: Path) -> None:
    path = tmp_path / "train_log.txt"
    write_rows(path, ["step", "train/loss", "lr"], [[0, 1.0, 0.1]])
    assert sniffed(path) is READER["wide-csv"] and read(path).curve("train/loss").values.tolist() == [1.0]


def test_lightning_needs_its_file_name_and_step_column(tmp_path: Path) -> None:
    lightning = tmp_path / "metrics.csv"
    write_rows(lightning, ["epoch", "loss", "step"], [[0, 1.0, 49]])
    assert sniffed(lightning) is READER["lightning-csv"]
    elsewhere = tmp_path / "log.csv"
    write_rows(elsewhere, ["epoch", "loss", "step"], [[0, 1.0, 49]])
    assert sniffed(elsewhere) is READER["wide-csv"]


def test_sniffers_never_raise_on_odd_heads(tmp_path: Path) -> None:
    for head in (b"", b"\x00\x01", b"\xff\xfe\x00s", b'"unclosed,quote\n', b"\xe9\xe9,step\n", b"," * 70000):
        for name in ("metrics.csv", "results.csv", "training.log", "x.csv", "x.txt"):
            for reader in READERS:
                assert reader.sniff(tmp_path / name, head) in (True, False)


# ------------------------------------------------------------------------------------------
# Hostile files: the readable part is read, each problem reported with its line
# ------------------------------------------------------------------------------------------


def hostile(tmp_path: Path, data: bytes, name: str = "log.csv") -> Run:
    path = tmp_path / name
    path.write_bytes(data)
    return read(path)


def test_junk_cells_one_note_per_column(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,loss,acc\n0,0.5,0.1\n1,abc,0.2\n2,0.4,0.3\n3,x,0.4\n4,0.3,oops\n")
    assert run.curve("loss").steps.tolist() == [0, 2, 4] and run.curve("loss").values.tolist() == [0.5, 0.4, 0.3]
    assert run.curve("acc").values.tolist() == [0.1, 0.2, 0.3, 0.4]
    loss, acc = notes_of(run, NoteKind.CORRUPT)
    assert (loss.location, loss.count) == ("line 3", 2) and "lines 3, 5" in loss.message and "'loss'" in loss.message
    assert (acc.location, acc.count) == ("line 6", 1)


def test_many_junk_cells_list_only_the_first_lines(tmp_path: Path) -> None:
    rows = b"".join(b"%d,%s\n" % (step, b"bad" if step % 2 else b"0.5") for step in range(20))
    (note,) = hostile(tmp_path, b"step,loss\n" + rows).notes
    assert note.count == 10 and "lines 3, 5, 7, 9, 11 and 5 more" in note.message


def test_text_column_is_skipped_not_reported_cell_by_cell(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,phase,loss\n0,train,0.5\n1,val,0.4\n")
    assert run.tags == ["loss"]
    (note,) = notes_of(run, NoteKind.SKIPPED)
    assert "'phase' holds text" in note.message and note.count == 2


def test_half_written_last_line(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,loss,acc,lr\n0,0.5,0.1,1\n1,0.4,0.2,1\n2,0.3,0.1")
    (note,) = notes_of(run, NoteKind.TRUNCATED)
    assert note.location == "line 4"
    assert run.curve("loss").values.tolist() == [0.5, 0.4, 0.3]  # complete fields of the cut line are kept
    assert run.curve("acc").values.tolist() == [0.1, 0.2]  # the cut field is not trusted
    assert run.curve("lr").values.tolist() == [1.0, 1.0]


def test_last_line_without_line_end_but_complete_is_fine(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,loss\n0,0.5\n1,0.4")
    assert run.curve("loss").values.tolist() == [0.5, 0.4] and not run.notes


def test_header_only_file_is_a_run_without_points(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"epoch,loss,step\n", name="metrics.csv")
    assert run.format == "lightning-csv" and run.points == 0 and run.tag_names == ["loss"]
    (note,) = run.notes
    assert note.kind is NoteKind.INFO and "no data rows" in note.message


def test_mixed_types_in_a_column(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"epoch,loss\n0,0.5\n1,high\n2,3\n3,1e-3\n4,1.2.3\n")
    assert run.curve("loss").values.tolist() == [0.5, 3.0, 0.001]
    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert note.count == 2 and "lines 3, 6" in note.message


@pytest.mark.parametrize("other", [b"", b"nan", b"0.5"])
def test_boolean_cells_read_as_one_and_zero_on_every_path(tmp_path: Path, other: bytes) -> None:
    """A flag column is 1/0 whether the file is clean, holds a nan, or has a bad line."""
    for extra_line in (b"", b"9,1,2,3,4\n"):
        data = b"step,flag,loss\n0,True,0.5\n1,false,%s\n2,,0.3\n" % other + extra_line
        run = hostile(tmp_path, data)
        assert run.curve("flag").values.tolist() == [1.0, 0.0]


def test_every_spelling_of_nan_and_infinity_is_kept(tmp_path: Path) -> None:
    spellings = [b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"-Infinity", b"1e400", b"", b"NA"]
    data = b"step,loss\n" + b"".join(b"%d,%s\n" % (step, cell) for step, cell in enumerate(spellings))
    run = hostile(tmp_path, data)
    expected = [math.nan, math.nan, math.inf, -math.inf, math.inf, -math.inf, math.inf]
    np.testing.assert_array_equal(run.curve("loss").values, expected)
    assert run.curve("loss").steps.tolist() == list(range(7)) and not run.notes


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"\xef\xbb\xbfstep,loss\r\n0,0.5\r\n1,nan\r\n2,-inf\r\n")
    run = read(path)
    assert run.format == "lightning-csv" and run.tags == ["loss"] and not run.notes
    np.testing.assert_array_equal(run.curve("loss").values, [0.5, math.nan, -math.inf])


@pytest.mark.parametrize("tail", [b"2,0.25,0.3\r", b"2,0.25,0.3", b"2,0.25"])
def test_lone_cr_line_ends(tmp_path: Path, tail: bytes) -> None:
    """Old Mac line ends (Excel's "CSV (Macintosh)"): the header ends at the first CR."""
    run = hostile(tmp_path, b"step,loss,acc\r0,1.0,0.1\r1,0.5,0.2\r" + tail)
    cut = tail.count(b",") < 2  # the last line lost a field: the one it ends in may be cut too
    assert run.tags == ["loss", "acc"]
    assert run.curve("loss").values.tolist() == [1.0, 0.5] + ([] if cut else [0.25])
    assert run.curve("acc").values.tolist() == [0.1, 0.2] + ([] if cut else [0.3])
    assert [note.location for note in run.notes] == (["line 4"] if cut else [])


def test_a_header_cut_at_a_lone_cr_is_the_whole_header(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,tag,value\rK", name="scalars.csv")
    assert run.points == 0 and [note.location for note in run.notes] == ["line 2"]


def test_non_utf8_bytes_are_replaced_and_noted(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,pr\xe9cision,loss\n0,0.5,1\n1,0.25,0.5\n")
    assert run.tags == ["pr\ufffdcision", "loss"] and run.curve("loss").values.tolist() == [1.0, 0.5]
    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert note.location == "line 1" and "UTF-8" in note.message
    in_data = hostile(tmp_path, b"step,loss\n0,0.5\n1,0.4\n2,0.3\xff\n", name="data.csv")
    decoding = [note for note in in_data.notes if "UTF-8" in note.message]
    assert decoding[0].location == "line 4" and in_data.curve("loss").values.tolist() == [0.5, 0.4]


def test_duplicated_header_names_are_both_kept(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,loss,loss,loss.1\n0,0.5,0.6,0.7\n")
    assert run.tags == ["loss", "loss.2", "loss.1"]
    assert [run.curve(tag).values[0] for tag in run.tags] == [0.5, 0.6, 0.7]
    (note,) = run.notes
    assert note.kind is NoteKind.INFO and "loss" in note.message and note.location == "line 1"


def test_rows_with_too_many_or_too_few_fields(tmp_path: Path) -> None:
    data = b"step,loss,acc\n0,0.5,0.1\n1,0.4\n2,0.3,0.2,9\n3,0.2,0.1,,\n4,0.1,0.0\n"
    run = hostile(tmp_path, data)
    assert run.curve("loss").steps.tolist() == [0, 1, 3, 4]  # line 4 skipped: which field is extra?
    assert run.curve("acc").steps.tolist() == [0, 3, 4]
    by_message = {note.message.split(" with ")[1].split(";")[0]: note for note in notes_of(run, NoteKind.CORRUPT)}
    assert by_message["fewer fields than the header"].location == "line 3"
    assert by_message["more fields than the header"].location == "line 4"
    assert by_message["more fields than the header, the extra ones empty"].location == "line 5"


def test_bad_lines_do_not_shift_the_good_ones(tmp_path: Path) -> None:
    """The line-by-line path reads the good rows exactly as the fast path does."""
    rng = np.random.default_rng(12)
    rows = [[step, *special_values(rng, 3)] for step in range(40)]
    clean = tmp_path / "clean.csv"
    write_rows(clean, ["step", "a", "b", "c"], rows)
    broken = tmp_path / "broken.csv"
    lines = clean.read_bytes().split(b"\n")
    broken.write_bytes(b"\n".join([*lines[:10], b"9999,1,2,3,4,5", *lines[10:]]))
    clean_run, broken_run = read(clean), read(broken)
    for tag in "abc":
        np.testing.assert_array_equal(clean_run.curve(tag).values, broken_run.curve(tag).values)
    (note,) = broken_run.notes
    assert note.location == "line 11"


def test_blank_lines_and_quoted_cells(tmp_path: Path) -> None:
    run = hostile(tmp_path, b'step,"loss, total",acc\n0,0.5,0.1\n\n1,"0.4",0.2\n')
    assert run.tags == ["loss, total", "acc"]
    assert run.curve("loss, total").values.tolist() == [0.5, 0.4] and run.curve("acc").steps.tolist() == [0, 1]


def test_rows_without_a_step_lose_their_points(tmp_path: Path) -> None:
    run = hostile(tmp_path, b"step,loss\n0,0.5\n,0.4\nlate,0.3\n3,0.2\n")
    assert run.curve("loss").steps.tolist() == [0, 3]
    skipped = [note for note in run.notes if note.kind is NoteKind.SKIPPED]
    assert skipped[0].location == "line 3" and skipped[0].count == 2


def test_lightning_hparams_are_loaded_safely(tmp_path: Path) -> None:
    folder = tmp_path / "version_0"
    folder.mkdir()
    write_rows(folder / "metrics.csv", ["epoch", "step", "loss"], [[0, 0, 1.0]])
    (folder / "hparams.yaml").write_text("model: !!python/object/apply:os.system ['touch pwned']\n")
    run = read(folder / "metrics.csv")
    assert run.metadata == {} and not (folder / "pwned").exists()
    (note,) = notes_of(run, NoteKind.SKIPPED)
    assert note.source.endswith("hparams.yaml")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"", "empty"),
        (b"\xff\xfes\x00t\x00e\x00p\x00", "UTF-16"),
    ],
)
def test_files_that_are_no_text_are_unreadable(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "metrics_export.csv"
    path.write_bytes(data)
    reader = sniffed(path)
    assert reader is READER["wide-csv"]  # claimed so that the reason is shown
    with pytest.raises(UnreadableInput, match=reason):
        reader.read_file(path)


def test_csv_without_an_axis_column_is_unreadable_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    write_rows(path, ["loss", "acc"], [[1.0, 0.5]])
    with pytest.raises(UnreadableInput, match="no step"):
        READER["wide-csv"].read_file(path)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput, match="cannot open"):
        READER["wide-csv"].read_file(tmp_path / "gone.csv")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=",\n\r 0123456789.-eEnaifNA\"x\u00e9", max_size=120))
def test_any_text_reads_or_is_unreadable(body: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(b"step,loss,acc\n" + body.encode("utf-8", errors="replace"))
        run = READER["wide-csv"].read_file(path)
    assert run.values.size == run.steps.size == run.tag_codes.size == run.wall_times.size
    lines = 2 + body.count("\n") + body.count("\r")
    for note in run.notes:
        assert note.location is None or 1 <= int(note.location.split()[1]) <= lines


# ------------------------------------------------------------------------------------------
# The fast path is the one taken for clean files
# ------------------------------------------------------------------------------------------


def test_big_file_whose_chunks_disagree_on_a_column_type(tmp_path: Path) -> None:
    """Over 5 MB pandas parses chunks in parallel, each inferring its own types: a late nan and a
    junk cell turn only their chunk of the column to text.  Every value must still be exact."""
    rows = 240_000
    values = np.random.default_rng(13).random(rows).tolist()
    values[rows - 1000] = math.nan
    lines = ["step,loss", *(f"{step},{value!r}" for step, value in enumerate(values))]
    lines[rows - 499] = f"{rows - 500},oops"
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 5 * 1024 * 1024
    run = read(path)
    kept = [step for step in range(rows) if step != rows - 500]
    assert run.curve("loss").steps.tolist() == kept
    np.testing.assert_array_equal(run.curve("loss").values, [values[step] for step in kept])
    (note,) = run.notes
    assert note.location == f"line {rows - 498}" and note.count == 1  # list index + 1


def test_clean_files_never_take_the_line_by_line_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("line-by-line path taken")

    monkeypatch.setattr(csv_table, "_line_table", refuse)
    path = tmp_path / "metrics.csv"
    write_rows(path, ["epoch", "step", "loss", "val_loss"],
               [[0, 0, 0.5, None], [0, 1, math.nan, None], [0, 1, None, 0.7], [1, 2, "junk", math.inf]])
    run = read(path)
    assert run.curve("loss").values.tolist()[0] == 0.5 and math.isnan(run.curve("loss").values[1])
    assert run.curve("val_loss").values.tolist() == [0.7, math.inf]
    assert notes_of(run, NoteKind.CORRUPT)[0].location == "line 5"
    monkeypatch.undo()
    broken = tmp_path / "log.csv"
    broken.write_bytes(b"step,loss\n0,0.5\n1,0.4,9\n")
    assert notes_of(read(broken), NoteKind.CORRUPT)[0].location == "line 3"


# ------------------------------------------------------------------------------------------
# The byte scan that decides between the paths
# ------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=80).map(lambda data: data.replace(b"\r", b"")) | st.sampled_from(
    [b"0,1,2\n1,2,3\n", b'0,"1,5",2\n1,2\n', b"0,1,2,3\n", b"0,1,2\n1,2,3,4", b"0,\x001,2\n"]),
       chunk=st.integers(1, 9), row_commas=st.integers(0, 3))
def test_the_byte_scan_is_the_same_in_chunks_of_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, chunk: int, row_commas: int
) -> None:
    """Chunk boundaries (inside a line, between a CR and its LF, on a quote) change nothing."""
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"step,loss,acc\n" + body)
    whole = csv_scan._ByteShape.of(path, row_commas)
    monkeypatch.setattr(csv_scan, "_SCAN_CHUNK", chunk)
    assert csv_scan._ByteShape.of(path, row_commas) == whole
    lines = body.split(b"\n")
    assert whole.commas == (b"step,loss,acc\n" + body).count(b",")
    assert whole.nul == (b"\x00" in body)
    assert whole.last_line_commas == (None if body.endswith(b"\n") or not body else lines[-1].count(b","))
    if b'"' in body:  # only then are lines counted
        assert whole.lines == 1 + body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    else:
        assert whole.lines is None


def test_a_file_cut_while_it_is_scanned_is_read_without_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CSVLogger rewrites metrics.csv in place: the file may shrink under the reader (a mapped
    file would kill the process with SIGBUS there)."""
    path = tmp_path / "metrics.csv"
    write_rows(path, ["step", "loss"], [[step, 1.0 / (step + 1)] for step in range(2000)])
    scan_chunk = csv_scan._ByteScan.add

    def cut_after_the_first_chunk(scan: csv_scan._ByteScan, chunk: bytes) -> None:
        scan_chunk(scan, chunk)
        with path.open("r+b") as handle:
            handle.truncate(100)

    monkeypatch.setattr(csv_scan, "_SCAN_CHUNK", 4096)
    monkeypatch.setattr(files, "_LINE_CHUNK", 4096)  # text logs are read a chunk at a time too
    monkeypatch.setattr(csv_scan._ByteScan, "add", cut_after_the_first_chunk)
    run = read(path)
    # pandas read all 2,000 rows before the cut; the counts no longer agree, so the line path
    # reads what is there now.
    assert 0 < run.curve("loss").steps.size < 2000
