"""The TensorBoard reader: exact values, every encoding, damaged files, the fast path equal
to the protobuf path, reading in windows (equal to one window, files that change while they
are read, memory bounded by the points kept), incremental reads of a file still being
written, and the real logs of ../shared/real_logs."""

from __future__ import annotations

import math
import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as tensorboard_masked_crc32c,
)

from rundoctor.readers import crc32c, tfrecord
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tensorboard import follow as tb_follow
from rundoctor.readers.tensorboard import is_event_file
from rundoctor.readers.tensorboard import state as tb_state
from rundoctor.readers.tensorboard import values as tb_values
from rundoctor.readers.tensorboard import windows as tb_windows
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.series import NoteKind, Run, XAxis
from tests.conftest import REAL_LOGS, SAMPLE_LOGS
from tests.readers import tb_writer as w

T0 = 1_700_000_000.0
EVENT_NAME = "events.out.tfevents.1700000000.host.example.org.42.0"


def read(path: Path, *, reference: bool = False, prefix: str = "") -> Run:
    return read_tensorboard_run(path.parent, [(path, prefix)], reference=reference)


def notes_of(run: Run, kind: NoteKind) -> list:
    return [note for note in run.notes if note.kind == kind]


def assert_same_runs(fast: Run, reference: Run) -> None:
    assert fast.tag_names == reference.tag_names
    assert np.array_equal(fast.tag_codes, reference.tag_codes)
    assert np.array_equal(fast.steps, reference.steps)
    assert np.array_equal(fast.wall_times, reference.wall_times, equal_nan=True)
    assert np.array_equal(fast.values, reference.values, equal_nan=True)
    assert fast.notes == reference.notes
    assert fast.histograms.keys() == reference.histograms.keys()
    for tag, items in fast.histograms.items():
        for ours, theirs in zip(items, reference.histograms[tag], strict=True):
            assert (ours.step, ours.wall_time) == (theirs.step, theirs.wall_time)
            assert np.array_equal(ours.bucket_counts, theirs.bucket_counts)


def count_protobuf_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = tb_state.event_pb2.Event.FromString

    class CountingEvent:
        @staticmethod
        def FromString(payload: bytes) -> object:
            calls[0] += 1
            return original(payload)

    monkeypatch.setattr(tb_state.event_pb2, "Event", CountingEvent)
    return calls


# ---------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    "name",
    [
        "events.out.tfevents.1722344801.medusa.ia.unc.edu.1267162.0",
        "events.out.tfevents.1690483602.e-bnbobg-5l77j-0.61366.2.v2",
        "events.out.tfevents.1508353603.brain",
        "events.out.tfevents.1572480213.iMac.profile-empty",
    ],
)
def test_event_file_names_are_recognised(name: str) -> None:
    assert is_event_file(name)
    assert is_event_file(f"runs/exp/{name}")


@pytest.mark.parametrize("name", ["metrics.csv", "events.json", "tfevents_dir/metrics.csv", "results.txt"])
def test_other_names_are_not_event_files(name: str) -> None:
    assert not is_event_file(name)


# ---------------------------------------------------------------------------------------
# Scalars


def test_simple_values_round_trip_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    tags = ["train/loss", "val/acc", "lr"]
    steps = np.arange(10_000) * 3
    values = {tag: rng.normal(size=steps.size).astype(np.float32) for tag in tags}
    values["train/loss"][4321] = np.nan
    values["val/acc"][10] = np.inf
    values["lr"][20] = -np.inf
    events, expected = [w.header_event()], []
    for i, step in enumerate(steps.tolist()):
        for k, tag in enumerate(tags):
            wall = T0 + i * 0.5 + k * 1e-4
            events.append(w.scalar_event(tag, float(values[tag][i]), step, wall))
            expected.append((k, step, wall, float(values[tag][i])))
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)

    run = read(path)

    assert (run.format, run.path, run.id, run.x_axis) == (
        "tensorboard",
        str(tmp_path),
        str(tmp_path),
        XAxis.STEP,
    )
    assert run.sources == [str(path)]
    assert run.tag_names == tags
    assert run.points == 30_000
    # The run stores points grouped by tag, each tag's in file order: a stable sort by tag.
    expected.sort(key=lambda point: point[0])
    codes, point_steps, walls, point_values = (np.array(column) for column in zip(*expected))
    assert np.array_equal(run.tag_codes, codes)
    assert np.array_equal(run.steps, point_steps)
    assert np.array_equal(run.wall_times, walls)
    assert np.array_equal(run.values, point_values, equal_nan=True)
    assert int(np.isnan(run.values).sum()) == 1
    assert np.isnan(run.curve("train/loss").values[4321])
    assert run.curve("val/acc").values[10] == math.inf
    assert run.curve("lr").values[20] == -math.inf
    assert run.notes == []


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_tf2_tensor_scalars_with_metadata_on_the_first_value_only(tmp_path: Path, dtype: str) -> None:
    numbers = [1.5, -2.0, 3.25, 1e6] if dtype.startswith("float") else [1, -2, 3, 2**31 - 1]
    events = [w.header_event()]
    for step in range(200):  # enough records for the fast path
        for tag in ("epoch_loss", "epoch_accuracy"):
            events.append(
                w.tensor_scalar_event(
                    tag, numbers[step % 4], step, T0 + step, dtype=dtype, with_metadata=step == 0
                )
            )
    path = tmp_path / (EVENT_NAME + ".v2")
    w.write_event_file(path, events)

    run = read(path)

    assert run.tag_names == ["epoch_loss", "epoch_accuracy"]
    curve = run.curve("epoch_accuracy")
    assert np.array_equal(curve.steps, np.arange(200))
    assert curve.values.tolist() == [float(numbers[step % 4]) for step in range(200)]
    assert run.notes == []
    assert_same_runs(run, read(path, reference=True))


def test_tensors_of_tags_without_the_scalars_plugin_are_skipped(tmp_path: Path) -> None:
    events = [w.header_event()]
    events += [w.tensor_scalar_event("no_plugin", 1.0, step, T0, with_metadata=False) for step in range(100)]
    events += [w.scalar_event("loss", 0.5, step, T0) for step in range(3)]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)

    run = read(path)

    assert run.tags == ["loss"]
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.message == "skipped 100 tensors without plugin metadata (no_plugin)"
    assert_same_runs(run, read(path, reference=True))


def test_several_values_in_one_summary_keep_summary_order(tmp_path: Path) -> None:
    events = [w.header_event()]
    events += [w.multi_scalar_event([("loss", step), ("acc", -step)], step, T0 + step) for step in range(100)]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)

    run = read(path)

    assert run.tag_names == ["loss", "acc"]
    assert run.curve("loss").values[:2].tolist() == [0.0, 1.0]
    assert run.curve("acc").values[:2].tolist() == [-0.0, -1.0]
    assert run.curve("acc").values.tolist() == [-float(step) for step in range(100)]
    assert_same_runs(run, read(path, reference=True))


def test_scalar_events_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [w.header_event()] + [
        w.scalar_event("loss", 1.0 / (step + 1), step, T0 + step) for step in range(1000)
    ]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    calls = count_protobuf_parses(monkeypatch)

    fast = read(path)
    fast_parses = calls[0]
    read(path, reference=True)

    assert fast.points == 1000
    assert fast_parses < 20  # templates and the header, not one parse per record
    assert calls[0] - fast_parses == 1001


def test_a_length_shared_by_other_records_still_takes_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = [w.image_event("results", step, T0 + step) for step in range(1, 101)]
    length = len(images[0].SerializeToString())
    tag = "t"
    while len(w.scalar_event(tag, 1.0, 1, T0).SerializeToString()) < length:
        tag += "t"
    scalars = [w.scalar_event(tag, float(step), step, T0 + step) for step in range(1, 101)]
    assert {len(e.SerializeToString()) for e in images + scalars} == {length}
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, [w.header_event()] + [e for pair in zip(images, scalars) for e in pair])
    calls = count_protobuf_parses(monkeypatch)

    run = read(path)

    assert run.curve(tag).values.tolist() == [float(step) for step in range(1, 101)]
    assert notes_of(run, NoteKind.SKIPPED)[0].message == "skipped 100 images"
    assert calls[0] < 120  # the images and a template or two, not every scalar
    assert_same_runs(run, read(path, reference=True))


def test_malformed_tensors_are_not_numbers() -> None:
    huge = w.tensor_pb2.TensorProto(dtype=1)
    huge.tensor_shape.dim.add(size=10**12)  # no values: TensorFlow would fill it with zeros
    repeated = w.tensor_pb2.TensorProto(dtype=1, float_val=[2.0])
    repeated.tensor_shape.dim.add(size=3)  # TensorFlow repeats the last value
    short_content = w.tensor_pb2.TensorProto(dtype=2, tensor_content=b"\x00" * 4)
    text = w.tensor_pb2.TensorProto(dtype=7, string_val=[b"x"])

    assert tb_values.tensor_numbers(huge) is None
    assert tb_values.tensor_numbers(repeated).tolist() == [2.0, 2.0, 2.0]
    assert tb_values.tensor_numbers(short_content) is None
    assert tb_values.tensor_numbers(text) is None


# ---------------------------------------------------------------------------------------
# Several files


def test_overlapping_files_keep_both_segments_and_say_so(tmp_path: Path) -> None:
    first = tmp_path / "events.out.tfevents.100.host.1.0"
    second = tmp_path / "events.out.tfevents.200.host.2.0"
    w.write_event_file(
        first, [w.header_event()] + [w.scalar_event("loss", 2.0, s, T0 + s) for s in range(19, 300, 20)]
    )
    w.write_event_file(
        second, [w.header_event()] + [w.scalar_event("loss", 1.0, s, T0 + s) for s in range(19, 1000, 20)]
    )

    run = read_tensorboard_run(tmp_path, [(first, ""), (second, "")])

    assert run.points == 15 + 50
    assert run.steps[:15].tolist() == list(range(19, 300, 20))
    assert run.steps[15:].tolist() == list(range(19, 1000, 20))
    (overlap,) = notes_of(run, NoteKind.OVERLAP)
    assert first.name in overlap.message and second.name in overlap.message
    assert overlap.location == "steps 19..299"
    assert overlap.count == 15
    assert run.sources == [str(first), str(second)]


def test_consecutive_files_do_not_overlap(tmp_path: Path) -> None:
    first = tmp_path / "events.out.tfevents.100.host.1.0"
    second = tmp_path / "events.out.tfevents.200.host.2.0"
    w.write_event_file(first, [w.header_event()] + [w.scalar_event("loss", 2.0, s, T0) for s in range(4)])
    w.write_event_file(
        second, [w.header_event()] + [w.scalar_event("loss", 1.0, s, T0) for s in range(4, 16)]
    )

    run = read_tensorboard_run(tmp_path, [(first, ""), (second, "")])

    assert run.curve("loss").steps.tolist() == list(range(16))
    assert notes_of(run, NoteKind.OVERLAP) == []


def test_train_and_validation_directories_merge_with_prefixes(tmp_path: Path) -> None:
    train = tmp_path / "train" / (EVENT_NAME + ".v2")
    validation = tmp_path / "validation" / (EVENT_NAME + ".v2")
    w.write_event_file(
        train, [w.header_event()] + [w.tensor_scalar_event("epoch_loss", 1.0, s, T0) for s in range(5)]
    )
    w.write_event_file(
        validation, [w.header_event()] + [w.tensor_scalar_event("epoch_loss", 2.0, s, T0) for s in range(5)]
    )

    run = read_tensorboard_run(tmp_path, [(train, "train/"), (validation, "validation/")])

    assert run.tag_names == ["train/epoch_loss", "validation/epoch_loss"]
    assert run.curve("validation/epoch_loss").values.tolist() == [2.0] * 5
    assert notes_of(run, NoteKind.OVERLAP) == []  # different tags


# ---------------------------------------------------------------------------------------
# Histograms and what is skipped


def test_histograms_of_both_kinds_are_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = np.array([[-1.0, 0.0, 3.0], [0.0, 1.0, 5.0], [1.0, 2.0, 2.0]])
    events = [w.header_event()]
    for step in range(3):
        events.append(w.histogram_event("weights", rng.normal(size=100), step, T0 + step))
        events.append(
            w.tensor_histogram_event("dense/kernel", rows, step, T0 + step, with_metadata=step == 0)
        )
        events.append(w.scalar_event("loss", 1.0, step, T0 + step))
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)

    run = read(path)

    assert set(run.histograms) == {"weights", "dense/kernel"}
    proto = run.histograms["weights"]
    assert [h.step for h in proto] == [0, 1, 2]
    assert proto[0].total == 100.0 and proto[0].bucket_limits.size == 10
    assert proto[0].min < proto[0].bucket_limits[0] <= proto[0].max
    tensor = run.histograms["dense/kernel"]
    assert [h.step for h in tensor] == [0, 1, 2]
    assert tensor[2].bucket_limits.tolist() == [0.0, 1.0, 2.0]
    assert tensor[2].bucket_counts.tolist() == [3.0, 5.0, 2.0]
    assert (tensor[2].min, tensor[2].max) == (-1.0, 2.0)
    assert run.tags == ["loss"]
    assert notes_of(run, NoteKind.SKIPPED) == []


def test_text_images_and_graphs_are_skipped_with_one_note_per_file(tmp_path: Path) -> None:
    graph = w.header_event()
    graph.ClearField("file_version")
    graph.graph_def = b"\x0a\x00"
    events = [w.header_event(), graph]
    events += [
        w.text_event("args/text_summary", "lr=5e-6", 0, T0),
        w.text_event("model_config/text_summary", "{not JSON", 0, T0),  # a JSON object would be read
    ]
    events += [w.text_event("args/text_summary", "again", 1, T0)]
    events += [w.image_event("results", step, T0) for step in range(3)]
    events += [w.scalar_event("train/loss", 1.0, step, T0) for step in range(3)]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)

    run = read(path)

    assert run.tags == ["train/loss"]
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.message == (
        "skipped 3 text values (args/text_summary, model_config/text_summary), 3 images, 1 graph definition"
    )
    assert skipped.count == 7
    assert skipped.source == str(path)


def test_header_only_file_reads_as_an_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1654263241.DESKTOP"
    w.write_event_file(path, [w.header_event()])

    run = read(path)

    assert run.points == 0 and run.tags == [] and run.notes == []


# ---------------------------------------------------------------------------------------
# Damage


def small_file(tmp_path: Path, records: int = 20) -> tuple[Path, list[int]]:
    events = [w.header_event()] + [
        w.scalar_event("loss" if step % 2 else "acc", 1.0 / (step + 1), step, T0 + step)
        for step in range(records - 1)
    ]
    path = tmp_path / EVENT_NAME
    return path, w.write_event_file(path, events)


def record_ends_and_points(data: bytes) -> tuple[list[int], list[int]]:
    """Where each record of an intact event file ends, and how many summary values it holds
    (an independent walk of the framing, decoded with protobuf)."""
    ends, points, offset = [], [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        event = tb_state.event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += length + tfrecord.FRAMING_BYTES
        ends.append(offset)
        points.append(len(event.summary.value))
    assert offset == len(data)
    return ends, points


KERAS_TF2_SAMPLE = SAMPLE_LOGS / "problems" / "overfitting_keras_tf2" / "train"


@pytest.mark.parametrize("source", ["written", "keras-tf2-sample"])
def test_a_file_cut_at_any_byte_keeps_the_records_before_the_cut(tmp_path: Path, source: str) -> None:
    """Every cut: exactly the points of the records before it, and a truncation note at the
    start of the record it cuts (none at a record boundary)."""
    if source == "written":  # simple values
        path, _ = small_file(tmp_path)
    else:  # TF2 tensor scalars with their plugin metadata, as Keras writes them
        (path,) = KERAS_TF2_SAMPLE.glob("*tfevents*")
    data = path.read_bytes()
    ends, points = record_ends_and_points(data)
    assert sum(points) > 10
    cut_path = tmp_path / "cut" / EVENT_NAME
    cut_path.parent.mkdir()
    for cut in range(len(data) + 1):
        cut_path.write_bytes(data[:cut])
        complete = sum(end <= cut for end in ends)
        if cut < tfrecord.HEADER_BYTES:
            with pytest.raises(UnreadableInput):
                read(cut_path)
            continue
        run = read(cut_path)
        assert run.points == sum(points[:complete]), cut
        truncated = notes_of(run, NoteKind.TRUNCATED)
        boundary = ([0, *ends])[complete]
        if cut == boundary:
            assert truncated == [], cut
        else:
            (note,) = truncated
            assert (note.location, note.count, note.source) == (
                f"offset {boundary}",
                cut - boundary,
                str(cut_path),
            )


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x41
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "where, why",
    [
        (0, "record length checksum mismatch"),  # the length
        (9, "record length checksum mismatch"),  # the length's crc
        (-6, "payload checksum mismatch"),  # the value, inside the payload
        (-10, "payload checksum mismatch"),  # the tag's last byte: the record looks like another tag
        (-2, "payload checksum mismatch"),  # the payload's crc
    ],
)
@pytest.mark.parametrize("reference", [False, True])
def test_a_corrupt_record_is_reported_and_reading_goes_on(
    tmp_path: Path, where: int, why: str, reference: bool
) -> None:
    events = [w.header_event()] + [
        w.scalar_event("loss", float(step), step, T0 + step) for step in range(300)
    ]
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, events)
    damaged = 151  # a record in the middle
    start, end = ends[damaged - 1], ends[damaged]
    flip(path, start + where if where >= 0 else end + where)

    run = read(path, reference=reference)

    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert note.location == f"offset {start}"
    assert note.count == end - start
    assert why in note.message
    assert run.points == 299
    assert run.steps.tolist() == [s for s in range(300) if s != damaged - 1]


def test_a_corrupt_record_alone_in_its_layout_is_reported(tmp_path: Path) -> None:
    # "loss2" at a one-byte step has the length of "loss" at a two-byte step: one group of
    # records, two layouts, and the odd one is damaged.
    events = [w.scalar_event("loss", float(step), step, T0 + step) for step in range(128, 228)]
    events.insert(50, w.scalar_event("loss2", 5.0, 5, T0))
    assert len({len(event.SerializeToString()) for event in events}) == 1
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, [w.header_event(), *events])
    flip(path, ends[51] - 6)

    run = read(path)

    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert note.location == f"offset {ends[50]}" and "payload checksum mismatch" in note.message
    assert run.tags == ["loss"] and run.points == 100


def test_garbage_between_records_is_skipped(tmp_path: Path) -> None:
    events = [w.header_event()] + [
        w.scalar_event("loss", float(step), step, T0 + step) for step in range(100)
    ]
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, events)
    data = path.read_bytes()
    garbage = bytes(range(7, 250)) * 3
    path.write_bytes(data[: ends[50]] + garbage + data[ends[50] :])

    run = read(path)

    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert (note.location, note.count) == (f"offset {ends[50]}", len(garbage))
    assert run.points == 100


def test_an_undecodable_payload_is_reported(tmp_path: Path) -> None:
    events = [w.header_event(), b"\xff\xff\xff\xff", w.scalar_event("loss", 1.0, 1, T0)]
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, events)

    run = read(path)

    (note,) = notes_of(run, NoteKind.CORRUPT)
    assert note.location == f"offset {ends[0]}" and "undecodable" in note.message
    assert run.points == 1


def test_git_lfs_pointer_is_unreadable_with_a_clear_reason(tmp_path: Path) -> None:
    path = tmp_path / EVENT_NAME
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
    )
    with pytest.raises(UnreadableInput, match="Git LFS pointer, not an event file"):
        read(path)


def test_garbage_is_unreadable_but_does_not_hide_a_good_file(tmp_path: Path) -> None:
    garbage = tmp_path / "events.out.tfevents.1.host"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnreadableInput, match="no valid TFRecord header"):
        read(garbage)
    good = tmp_path / "events.out.tfevents.2.host"
    w.write_event_file(good, [w.header_event(), w.scalar_event("loss", 1.0, 0, T0)])

    empty = tmp_path / "events.out.tfevents.3.host"
    empty.write_bytes(b"")

    run = read_tensorboard_run(tmp_path, [(garbage, ""), (good, ""), (empty, "")])

    assert run.points == 1
    (corrupt,) = notes_of(run, NoteKind.CORRUPT)
    assert corrupt.source == str(garbage) and "no valid TFRecord header" in corrupt.message
    (truncated,) = notes_of(run, NoteKind.TRUNCATED)
    assert truncated.source == str(empty) and "empty file" in truncated.message


# ---------------------------------------------------------------------------------------
# Framing and checksums


def test_checksums_agree_with_tensorboards_own() -> None:
    for payload in [b"", b"\x00", b"event", bytes(range(256)) * 3]:
        assert w.masked_crc32c(payload) == tensorboard_masked_crc32c(payload)
        assert crc32c.masked_crc32c(payload) == tensorboard_masked_crc32c(payload)


def test_crc_of_records_that_differ_in_a_few_bytes() -> None:
    rng = np.random.default_rng(3)
    template = rng.integers(0, 256, 41, dtype=np.uint8)
    rows = np.tile(template, (50, 1))
    variable = [1, 2, 3, 17, 40]
    rows[:, variable] = rng.integers(0, 256, (50, len(variable)), dtype=np.uint8)
    zeroed = template.copy()
    zeroed[variable] = 0
    constant = np.full(50, w.google_crc32c.value(zeroed.tobytes()), np.uint32)

    crcs = crc32c.crc32c_with_variable_bytes(constant, 41, [(p, rows[:, p]) for p in variable])

    assert crcs.tolist() == [w.google_crc32c.value(row.tobytes()) for row in rows]


def test_predicted_record_walk_equals_the_plain_loop() -> None:
    rng = np.random.default_rng(5)
    payloads = []
    for _ in range(40):  # periodic stretches of varying period, broken by odd records
        pattern = rng.integers(1, 60, rng.integers(1, 12)).tolist()
        payloads += [bytes(n) for n in pattern] * int(rng.integers(1, 40))
        payloads.append(bytes(int(rng.integers(0, 300))))
    data = b"".join(w.frame(p) for p in payloads)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF  # somewhere: a header or a payload
    for blob in (data, bytes(damaged), data[:-7]):
        fast = tfrecord.find_records(blob)
        loop = tfrecord.find_records(blob, predict=False)
        assert np.array_equal(fast.starts, loop.starts)
        assert np.array_equal(fast.lengths, loop.lengths)
        assert fast.problems == loop.problems
    assert tfrecord.find_records(data).starts.size == len(payloads)


# ---------------------------------------------------------------------------------------
# The fast path equals the protobuf path


def mixed_events() -> list:
    """Many encodings in one file, odd tags, extreme steps, enough records for the fast path."""
    rng = np.random.default_rng(11)
    long_tag = "x" * 300
    events = [w.header_event()]
    steps = [0, 1, 127, 128, 16_383, 16_384, 2**21, 2**35, 2**56 - 1, 2**56, 2**62, -1, -(2**40)]
    for i in range(130):
        step = steps[i % len(steps)] if i % 3 == 0 else i
        wall = T0 + i * 0.25 if i % 17 else 0.0
        value = float(rng.normal()) if i % 29 else math.nan
        events.append(w.scalar_event("loss", value, step, wall))
        events.append(w.scalar_event("μετρική/ακρίβεια", value * 2, step, wall))
        events.append(w.scalar_event(long_tag, -value, step, wall))
        for dtype in w.TENSOR_DTYPES:
            number = (i % 2 == 0) if dtype == "bool" else (i % 100 if dtype.startswith("u") else i - 65)
            events.append(
                w.tensor_scalar_event(
                    f"tensor/{dtype}", number, step, wall, dtype=dtype, typed=i % 4 == 1, with_metadata=i < 2
                )
            )
        events.append(w.multi_scalar_event([("pair/a", value), ("pair/b", i)], step, wall))
        if i % 10 == 0:
            events.append(w.histogram_event("hist", rng.normal(size=50), step, wall))
            events.append(w.text_event("notes", f"step {i}", step, wall))
    return events


def test_fast_path_equals_protobuf_path_on_mixed_encodings(tmp_path: Path) -> None:
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, mixed_events())

    fast = read(path)
    reference = read(path, reference=True)

    assert_same_runs(fast, reference)
    assert len(fast.tag_names) == 3 + len(w.TENSOR_DTYPES) + 2
    assert fast.points == 130 * (3 + len(w.TENSOR_DTYPES) + 2)
    assert set(fast.steps.tolist()) >= {2**62, -1, -(2**40), 2**56, 0}
    assert fast.curve("tensor/bfloat16").values[:3].tolist() == [-65.0, -64.0, -63.0]


def test_fast_path_equals_protobuf_path_on_damaged_mixed_file(tmp_path: Path) -> None:
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, mixed_events())
    for record in (40, 400, 1200, 2000):
        flip(path, ends[record] - 3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])

    fast = read(path)

    assert_same_runs(fast, read(path, reference=True))
    assert len(notes_of(fast, NoteKind.CORRUPT)) == 4
    assert len(notes_of(fast, NoteKind.TRUNCATED)) == 1


# ---------------------------------------------------------------------------------------
# Windows: bounded memory, files that change while they are read


def damaged_mixed_file(tmp_path: Path) -> Path:
    """The mixed file with corrupt payloads, a corrupt header, garbage and a cut end."""
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, mixed_events())
    for record in (40, 400, 1200):
        flip(path, ends[record] - 3)
    flip(path, ends[700])  # the length of record 701
    data = path.read_bytes()
    garbage = bytes(range(7, 250)) * 2
    path.write_bytes(data[: ends[1500]] + garbage + data[ends[1500] : len(data) - 5])
    return path


@pytest.mark.parametrize("window", [4096, 50_000])
def test_reading_in_windows_equals_reading_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    path = damaged_mixed_file(tmp_path)
    whole = read(path)
    assert path.stat().st_size < tb_windows._WINDOW_BYTES  # one window
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", window)

    windowed = read(path)

    assert_same_runs(windowed, whole)
    assert len(notes_of(whole, NoteKind.CORRUPT)) == 5 and len(notes_of(whole, NoteKind.TRUNCATED)) == 1


@pytest.mark.parametrize("window", [1, 100])
def test_windows_smaller_than_a_record_still_read_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    path, ends = small_file(tmp_path, records=60)
    flip(path, ends[10])  # a corrupt header: resynchronising spans windows
    data = path.read_bytes()
    path.write_bytes(data[: ends[30]] + bytes(range(200)) + data[ends[30] : -3])
    whole = read(path)
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", window)

    windowed = read(path)

    assert_same_runs(windowed, whole)
    assert [note.kind for note in whole.notes] == [NoteKind.CORRUPT, NoteKind.CORRUPT, NoteKind.TRUNCATED]
    assert whole.points == 60 - 1 - 1 - 1  # the header, the corrupt record, the cut one


def late_plugin_events() -> list:
    """TF2 tensors of one tag whose plugin metadata comes only after 200 of its values."""
    events = [w.header_event()]
    for step in range(300):
        events.append(w.tensor_scalar_event("late", float(step), step, T0 + step, with_metadata=step == 200))
        events.append(w.tensor_scalar_event("never", 1.0, step, T0 + step, with_metadata=False))
        events.append(w.scalar_event("loss", 1.0 / (step + 1), step, T0 + step))
    return events


def test_a_plugin_named_in_a_later_window_applies_to_earlier_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / (EVENT_NAME + ".v2")
    w.write_event_file(path, late_plugin_events())
    whole = read(path)
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", 4096)

    windowed = read(path)

    assert_same_runs(windowed, whole)
    assert whole.curve("late").steps.tolist() == list(range(300))
    assert whole.tag_names == ["late", "loss"]
    (skipped,) = notes_of(windowed, NoteKind.SKIPPED)
    assert skipped.message == "skipped 300 tensors without plugin metadata (never)"


def test_a_file_cut_by_another_process_while_it_is_read_keeps_what_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ends = small_file(tmp_path, records=300)
    cut = ends[150] + 7
    fill = tb_windows._fill

    def fill_then_cut(handle, view):  # the first window is read, then the file shrinks
        got = fill(handle, view)
        os.truncate(path, cut)
        return got

    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", 4096)
    monkeypatch.setattr(tb_windows, "_fill", fill_then_cut)

    run = read(path)

    assert run.points == 150
    (truncated,) = notes_of(run, NoteKind.TRUNCATED)
    assert (truncated.location, truncated.count) == (f"offset {ends[150]}", 7)


def test_a_file_that_grows_while_it_is_read_is_read_to_its_size_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = small_file(tmp_path, records=300)
    more = b"".join(w.frame(w.scalar_event("later", 1.0, step, T0).SerializeToString()) for step in range(50))
    fill = tb_windows._fill

    def fill_then_grow(handle, view):
        got = fill(handle, view)
        with path.open("ab") as appended:
            appended.write(more)
        return got

    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", 4096)
    monkeypatch.setattr(tb_windows, "_fill", fill_then_grow)

    run = read(path)

    assert run.points == 299 and "later" not in run.tags and run.notes == []


def test_memory_is_bounded_by_the_points_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [w.header_event()] + [
        w.scalar_event("train/loss" if step % 2 else "val/acc", 1.0 / (step + 1), step, T0 + step)
        for step in range(60_000)
    ]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    window = 1 << 17
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", window)
    tracemalloc.start()  # numpy's allocations are traced too
    try:
        run = read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert run.points == 60_000
    # 28 bytes a point are kept (int32 code, int64 step, float64 wall time and value);
    # grouping them by tag moves one column at a time with an int32 destination, so the
    # issue's bound of 40 bytes a point holds, plus a few windows' buffers: neither the
    # file's bytes nor a second copy of the points.
    assert peak < 40 * run.points + 6 * window, (peak, run.points)
    assert peak < path.stat().st_size, (peak, path.stat().st_size)


# ---------------------------------------------------------------------------------------
# Following a file that is still being written


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def points_of(blocks: list[tb_windows.PointsBlock]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(tag of each point, steps, values) of increments read one after the other."""
    names = [block.tags[code] for block in blocks for code in block.codes.tolist()]
    return names, np.concatenate([b.steps for b in blocks]), np.concatenate([b.values for b in blocks])


def test_increments_return_complete_records_and_leave_a_half_written_one(tmp_path: Path) -> None:
    source = tmp_path / "source" / EVENT_NAME
    ends = w.write_event_file(source, mixed_events())
    data = source.read_bytes()
    path = tmp_path / EVENT_NAME
    path.write_bytes(b"")
    state = tb_state.EventFileState()
    rng = np.random.default_rng(2)
    cuts = [*sorted(rng.choice(len(data), 40, replace=False).tolist()), len(data)]
    offset, written, blocks = 0, 0, []
    for cut in cuts:
        append(path, data[written:cut])
        written = cut
        increment = tb_windows.read_event_file_increment(path, offset, state)
        # Everything up to the last record completed by now, not a byte more.
        assert increment.offset == max([0] + [end for end in ends if end <= cut]), cut
        assert increment.notes == []  # a half-written record is not damage
        offset = increment.offset
        blocks.append(increment.points)

    whole = read(path)
    names, steps, values = points_of(blocks)
    order = sorted(range(len(names)), key=lambda i: whole.tag_names.index(names[i]))  # stable: by tag
    assert [names[i] for i in order] == [whole.tag_names[code] for code in whole.tag_codes.tolist()]
    assert np.array_equal(np.asarray(steps)[order], whole.steps)
    assert np.array_equal(np.asarray(values)[order], whole.values, equal_nan=True)
    follower = tb_follow.TensorBoardFollower(tmp_path)
    follower.states[path], follower.offsets[path], follower.files = state, offset, [(path, "")]
    assert_same_runs(follower.run(), whole)


def test_a_tf2_plugin_named_in_an_earlier_increment_keeps_later_tensors(tmp_path: Path) -> None:
    path = tmp_path / (EVENT_NAME + ".v2")
    first = [w.header_event(), w.tensor_scalar_event("epoch_loss", 2.0, 0, T0, with_metadata=True)]
    later = [w.tensor_scalar_event("epoch_loss", 2.0**-step, step, T0, with_metadata=False) for step in range(1, 5)]
    w.write_event_file(path, first)
    state = tb_state.EventFileState()
    offset = tb_windows.read_event_file_increment(path, 0, state).offset
    append(path, b"".join(w.frame(event.SerializeToString()) for event in later))

    increment = tb_windows.read_event_file_increment(path, offset, state)

    assert increment.points.steps.tolist() == [1, 2, 3, 4]
    assert increment.points.values.tolist() == [0.5, 0.25, 0.125, 0.0625]
    # Without the first increment's state, the same bytes hold tensors of no known plugin.
    alone = tb_windows.read_event_file_increment(path, offset, tb_state.EventFileState())
    assert alone.points.steps.size == 0


def test_a_corruption_whose_end_comes_in_a_later_increment_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, [w.header_event()] + [w.scalar_event("loss", 1.0, s, T0) for s in range(5)])
    garbage = bytes(range(7, 250))
    append(path, garbage)
    state = tb_state.EventFileState()

    first = tb_windows.read_event_file_increment(path, 0, state)
    append(path, b"".join(w.frame(w.scalar_event("loss", 2.0, s, T0).SerializeToString()) for s in range(5, 8)))
    second = tb_windows.read_event_file_increment(path, first.offset, state)
    third = tb_windows.read_event_file_increment(path, second.offset, state)

    assert first.points.steps.tolist() == [0, 1, 2, 3, 4] and first.notes == []
    (note,) = second.notes
    assert (note.kind, note.location, note.count) == (NoteKind.CORRUPT, f"offset {ends[-1]}", len(garbage))
    assert second.points.steps.tolist() == [5, 6, 7]
    assert third.points.steps.size == 0 and third.notes == [] and third.offset == second.offset


# ---------------------------------------------------------------------------------------
# Real logs


def inventory_runs() -> list[tuple[str, list[str], int]]:
    """(run, files, numeric scalar points) of every TensorBoard run in INVENTORY.md."""
    inventory = REAL_LOGS / "INVENTORY.md"
    if not inventory.is_file():
        return []
    runs = []
    for section in re.split(r"\n### ", inventory.read_text())[1:]:
        run = section.split(":", 1)[0]
        if not re.search(r"^- Format: TensorBoard", section, re.MULTILINE):
            continue
        files = re.findall(r"`([^`]+)`", re.search(r"^- Files: (.*)$", section, re.MULTILINE).group(1))
        points = re.search(r"(\d+) numeric scalar points over all tags", section)
        runs.append((run, files, int(points.group(1))))
    return runs


INVENTORY_RUNS = inventory_runs()


def files_with_prefixes(files: list[str]) -> list[tuple[Path, str]]:
    """Keras TF2 splits a run into train/ and validation/ directories: prefix their tags."""
    paths = [REAL_LOGS / name for name in files]
    directories = {path.parent for path in paths}
    if len(directories) == 1:
        return [(path, "") for path in paths]
    return [(path, f"{path.parent.name}/") for path in paths]


@pytest.mark.parametrize("run_name, files, expected", INVENTORY_RUNS, ids=[run[0] for run in INVENTORY_RUNS])
def test_real_runs_read_every_scalar_point(
    real_logs: Path, run_name: str, files: list[str], expected: int
) -> None:
    pairs = files_with_prefixes(files)
    run = read_tensorboard_run(pairs[0][0].parent, pairs)

    assert run.points == expected
    assert notes_of(run, NoteKind.CORRUPT) == notes_of(run, NoteKind.TRUNCATED) == []
    assert_same_runs(run, read_tensorboard_run(pairs[0][0].parent, pairs, reference=True))
    if any(prefix for _, prefix in pairs):
        assert {
            "train/epoch_loss",
            "validation/epoch_loss",
            "validation/evaluation_loss_vs_iterations",
        } <= set(run.tags)


def test_the_inventory_lists_the_tensorboard_runs(real_logs: Path) -> None:
    counts = {run: points for run, _, points in INVENTORY_RUNS}
    assert len(counts) == 20
    assert (counts["R01"], counts["R07"], counts["R30"], counts["R47"], counts["R48"]) == (
        126,
        1600,
        60,
        1,
        0,
    )


def test_real_restarts_overlap_and_resumes_do_not(real_logs: Path) -> None:
    restarts = sorted(
        (real_logs / "Asad-Ismail__SMN__detectron2-maskrcnn" / "output").glob("events.out.tfevents.*")
    )
    run = read_tensorboard_run(
        restarts[0].parent, [(path, "") for path in restarts]
    )  # names sort by start time
    assert [note.location for note in notes_of(run, NoteKind.OVERLAP)] == ["steps 19..299"] * 3

    resumed = (
        real_logs
        / "Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile"
        / "runs/train/exp"
    )
    files = sorted(resumed.glob("events.out.tfevents.*"))
    run = read_tensorboard_run(resumed, [(path, "") for path in files])
    assert run.points == 3900
    assert notes_of(run, NoteKind.OVERLAP) == []


def test_real_nan_survives(real_logs: Path) -> None:
    path = next(
        (real_logs / "1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp2").glob(
            "*tfevents*"
        )
    )
    run = read(path)
    assert int(np.isnan(run.values).sum()) > 0
    (skipped,) = notes_of(run, NoteKind.SKIPPED)
    assert skipped.message == "skipped 5 images"


@pytest.mark.parametrize(
    "run_dir",
    sorted({path.parent for path in SAMPLE_LOGS.rglob("events.out.tfevents.*")}),
    ids=lambda path: path.relative_to(SAMPLE_LOGS).as_posix(),
)
def test_fast_path_equals_protobuf_path_on_every_sample_log(run_dir: Path) -> None:
    files = [(path, "") for path in sorted(run_dir.glob("events.out.tfevents.*"))]
    fast = read_tensorboard_run(run_dir, files)
    assert fast.points > 0
    assert_same_runs(fast, read_tensorboard_run(run_dir, files, reference=True))
