"""The TensorBoard reader's histograms: the fast path (bucket arrays read straight from the record
bytes, rundoctor/readers/tensorboard/histograms.py) equal bit for bit to the protobuf path and to
protobuf's own decoding, on written, hand-made, generated and damaged files; and the columns a
run keeps them in (rundoctor.series.HistogramColumns)."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tensorboard import layouts as tb_layouts
from rundoctor.readers.tensorboard import windows as tb_windows
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.series import Histogram, HistogramColumns, NoteKind, Run
from tests.readers import tb_writer as w

T0 = 1_700_000_000.0
EVENT_NAME = "events.out.tfevents.1700000000.host.1.0"


def read(path: Path, *, reference: bool = False) -> Run:
    return read_tensorboard_run(path.parent, [(path, "")], reference=reference)


def bits(histogram: Histogram) -> tuple[object, ...]:
    """Everything a histogram holds, as bytes where it is a number (NaNs and -0.0 told apart)."""
    return (
        histogram.step,
        struct.pack("<3d", histogram.wall_time, histogram.min, histogram.max),
        np.asarray(histogram.bucket_limits, "<f8").tobytes(),
        np.asarray(histogram.bucket_counts, "<f8").tobytes(),
    )


def histogram_bits(run: Run) -> dict[str, list[tuple[object, ...]]]:
    return {tag: [bits(histogram) for histogram in items] for tag, items in run.histograms.items()}


def assert_same_reads(path: Path) -> Run:
    """The fast path's run equals the protobuf path's: histograms bit for bit, points and notes."""
    fast, reference = read(path), read(path, reference=True)
    assert histogram_bits(fast) == histogram_bits(reference)
    assert fast.notes == reference.notes
    assert fast.tag_names == reference.tag_names
    assert np.array_equal(fast.values, reference.values, equal_nan=True)
    assert np.array_equal(fast.steps, reference.steps)
    return fast


def protobuf_histograms(events: list[event_pb2.Event], plugins: dict[str, str]) -> dict[str, list[tuple[object, ...]]]:
    """What protobuf itself reads from the events, decoded here without the reader's code."""
    found: dict[str, list[tuple[object, ...]]] = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("histo"):
                histo = value.histo
                histogram = Histogram(event.step, event.wall_time, np.array(histo.bucket_limit, "<f8"),
                                      np.array(histo.bucket, "<f8"), histo.min, histo.max)
            elif value.HasField("tensor") and plugins.get(value.tag) == "histograms":
                dtype = {1: "<f4", 2: "<f8"}[value.tensor.dtype]
                rows = np.frombuffer(value.tensor.tensor_content, dtype).astype("<f8").reshape(-1, 3)
                histogram = Histogram(event.step, event.wall_time, rows[:, 1].copy(), rows[:, 2].copy(),
                                      float(rows[0, 0]), float(rows[-1, 1]))
            else:
                continue
            found.setdefault(value.tag, []).append(bits(histogram))
    return found


def count_protobuf_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = event_pb2.Event.FromString

    class CountingEvent:
        @staticmethod
        def FromString(payload: bytes) -> object:
            calls[0] += 1
            return original(payload)

    monkeypatch.setattr(event_pb2, "Event", CountingEvent)
    return calls


def tensor_histogram_event(tag: str, rows: np.ndarray, step: int, wall_time: float, *, dtype: str = "<f8",
                           with_metadata: bool = True) -> event_pb2.Event:
    """A TF2 histogram tensor of either float dtype."""
    event = w.tensor_histogram_event(tag, rows, step, wall_time, with_metadata=with_metadata)
    tensor = event.summary.value[0].tensor
    tensor.dtype = 1 if dtype == "<f4" else 2
    tensor.tensor_content = np.asarray(rows, dtype).tobytes()
    return event


def layer_events(layers: int, steps: int, *, encoding: str, bins: int = 12) -> Iterator[event_pb2.Event]:
    """Histograms of ``layers`` layers over ``steps`` steps, with a loss, as a training loop logs them."""
    for step in range(steps):
        yield w.scalar_event("loss", 1.0 / (step + 1), step, T0 + step)
        for layer in range(layers):
            values = np.random.default_rng(layer * 1000 + step).normal(0, 1 + layer, 200)
            tag = f"layers.{layer}.weight"
            if encoding == "proto":
                yield w.histogram_event(tag, values, step, T0 + step + 0.5, bins=bins)
            else:
                counts, edges = np.histogram(values, bins=bins)
                rows = np.stack([edges[:-1], edges[1:], counts], axis=1)
                yield tensor_histogram_event(tag, rows, step, T0 + step + 0.5, dtype="<f4" if encoding == "tf2-f32" else "<f8",
                                             with_metadata=step == 0)


# ---------------------------------------------------------------------------------------
# Written files


@pytest.mark.parametrize("encoding", ["proto", "tf2", "tf2-f32"])
def test_histograms_take_the_fast_path_and_equal_protobufs_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    events = [w.header_event(), *layer_events(12, 40, encoding=encoding)]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    expected = protobuf_histograms(events, dict.fromkeys((f"layers.{i}.weight" for i in range(12)), "histograms"))
    calls = count_protobuf_parses(monkeypatch)

    run = read(path)

    assert calls[0] < 100  # a template or two per tag, not one parse per record (12 x 40 histograms)
    assert histogram_bits(run) == expected
    assert list(run.histograms) == [f"layers.{layer}.weight" for layer in range(12)]
    assert all(isinstance(items, HistogramColumns) for items in run.histograms.values())
    monkeypatch.undo()
    assert_same_reads(path)


def test_more_tags_of_one_length_than_a_round_takes(tmp_path: Path) -> None:
    # layers.10 to layers.99 share a length: 90 templates, more than one round holds.
    events = [w.header_event(), *layer_events(100, 3, encoding="tf2")]
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    run = assert_same_reads(path)
    assert len(run.histograms) == 100 and {len(items) for items in run.histograms.values()} == {3}


def test_windows_find_the_templates_of_earlier_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [w.header_event(), *layer_events(5, 1000, encoding="proto")]  # 5 tags of one length
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    whole = histogram_bits(read(path))
    window = 1 << 17
    windows = path.stat().st_size // window + 1
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", window)
    calls = count_protobuf_parses(monkeypatch)
    assert histogram_bits(read(path)) == whole
    cached = calls[0]
    calls[0] = 0
    monkeypatch.setattr(tb_layouts.TemplateCache, "_MAX_ENTRIES", 0)  # remembers nothing for long
    assert histogram_bits(read(path)) == whole
    # Each window parses its first template; the other 4 tags' are found again by their bytes.
    assert cached <= calls[0] - 3 * (windows - 1), (cached, calls[0], windows)


def test_a_zero_minimum_left_out_by_proto3_reads_as_zero(tmp_path: Path) -> None:
    events = [w.header_event()]
    for step in range(80):
        values = np.abs(np.random.default_rng(step).normal(size=50))
        values[0] = 0.0  # a ReLU's output: min is 0.0, which proto3 does not write
        events.append(w.histogram_event("relu", values, step, T0 + step))
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    run = assert_same_reads(path)
    assert all(histogram.min == 0.0 for histogram in run.histograms["relu"])


def _field(number: int, wire: int, body: bytes) -> bytes:
    key = bytes([(number << 3) | wire])
    if wire == 2:
        size, length = len(body), b""
        while True:
            length += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
            size >>= 7
            if not size:
                break
        return key + length + body
    return key + body


def _event_with_histo(histo: bytes, step: int) -> bytes:
    value = _field(1, 2, b"hand") + _field(5, 2, histo)
    return _field(1, 1, struct.pack("<d", T0 + step)) + _field(2, 0, bytes([step])) + _field(5, 2, _field(1, 2, value))


@pytest.mark.parametrize("shape", ["min written twice", "unpacked edges", "edges after counts", "no counts"])
def test_hand_made_histograms_read_as_protobuf_reads_them(tmp_path: Path, shape: str) -> None:
    records = [w.header_event().SerializeToString()]
    for step in range(1, 100):
        edges = [struct.pack("<d", edge) for edge in (0.5 * step, 1.0 * step, 2.0 * step)]
        counts = [struct.pack("<d", count) for count in (1.0, 2.0 + step, 3.0)]
        numbers = _field(1, 1, struct.pack("<d", -1.0)) + _field(2, 1, struct.pack("<d", 2.0 * step))
        packed_edges, packed_counts = _field(6, 2, b"".join(edges)), _field(7, 2, b"".join(counts))
        histo = {
            "min written twice": numbers + packed_edges + packed_counts + _field(1, 1, struct.pack("<d", -7.0)),
            "unpacked edges": numbers + b"".join(_field(6, 1, edge) for edge in edges) + packed_counts,
            "edges after counts": numbers + packed_counts + packed_edges,
            "no counts": numbers + packed_edges,
        }[shape]
        records.append(_event_with_histo(histo, step))
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, records)
    expected = protobuf_histograms([event_pb2.Event.FromString(record) for record in records], {})
    with mock.patch.object(tb_layouts, "_FAST_MIN_GROUP", 1):
        run = assert_same_reads(path)
    assert histogram_bits(run) == expected
    if shape == "min written twice":
        assert {histogram.min for histogram in run.histograms["hand"]} == {-7.0}  # the last one, as protobuf


def test_tensor_histograms_follow_their_tags_plugin(tmp_path: Path) -> None:
    rows = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    events = [w.header_event()]
    for step in range(100):
        events.append(tensor_histogram_event("kept", rows * step, step, T0 + step, with_metadata=step == 0))
        events.append(tensor_histogram_event("no plugin", rows * step, step, T0 + step, with_metadata=False))
        scalars = tensor_histogram_event("scalars plugin", rows * step, step, T0 + step, with_metadata=False)
        if step == 0:
            scalars.summary.value[0].metadata.plugin_data.plugin_name = "scalars"
        events.append(scalars)
        text = tensor_histogram_event("text plugin", rows * step, step, T0 + step, with_metadata=False)
        if step == 0:
            text.summary.value[0].metadata.plugin_data.plugin_name = "text"
        events.append(text)
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    run = assert_same_reads(path)
    assert list(run.histograms) == ["kept"] and len(run.histograms["kept"]) == 100
    skipped = [note for note in run.notes if note.kind == NoteKind.SKIPPED]
    assert len(skipped) == 1 and skipped[0].count == 300
    assert "100 text values (text plugin)" in skipped[0].message
    assert "100 tensors without plugin metadata (no plugin)" in skipped[0].message
    assert "100 unreadable histograms or tensors (scalars plugin)" in skipped[0].message


@pytest.mark.parametrize("where", ["bucket", "tag"])
def test_a_damaged_histogram_record_is_reported_as_the_protobuf_path_reports_it(tmp_path: Path, where: str) -> None:
    events = [w.header_event(), *layer_events(3, 60, encoding="proto")]
    path = tmp_path / EVENT_NAME
    ends = w.write_event_file(path, events)
    data = bytearray(path.read_bytes())
    record = 100
    start = ends[record - 1]
    offset = data.index(b"layers", start) + (1 if where == "tag" else 40)
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    run = assert_same_reads(path)
    corrupt = [note for note in run.notes if note.kind == NoteKind.CORRUPT]
    assert len(corrupt) == 1 and corrupt[0].location == f"offset {start}"
    assert sum(len(items) for items in run.histograms.values()) == 3 * 60 - 1


# ---------------------------------------------------------------------------------------
# Generated files


SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1e-300])


@st.composite
def histogram_files(draw: st.DrawFn) -> list[event_pb2.Event]:
    """A few layouts (tag, encoding, bucket count), each logged many times with values of every
    kind (NaN, infinities, -0.0, subnormals), steps of every width, in a shuffled order."""
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    layouts = draw(st.lists(st.tuples(
        st.sampled_from(["w", "fc1.weight", "layers.10.weight", "layers.11.weight", "é/grad"]),
        st.sampled_from(["proto", "tf2", "tf2-f32"]),
        st.integers(1, 40),
    ), min_size=1, max_size=4, unique_by=lambda layout: layout[0]), label="layouts")
    events = []
    for tag, encoding, buckets in layouts:
        for index in range(draw(st.integers(0, 90), label=f"records of {tag}")):
            numbers = rng.normal(0, 10.0 ** rng.integers(-5, 6), (buckets, 3))
            special = rng.random((buckets, 3)) < 0.05
            numbers[special] = rng.choice(SPECIAL, int(special.sum()))
            step = int(rng.choice([0, index, 2**20 + index, 2**62 + index]))
            wall_time = float(rng.choice([T0 + index, np.nan, -0.0]))
            if encoding == "proto":
                histo = summary_pb2.HistogramProto(min=float(numbers[0, 0]), max=float(numbers[-1, 1]),
                                                   num=float(buckets), sum=float(numbers[0, 2]))
                histo.bucket_limit.extend(numbers[:, 1].tolist())
                histo.bucket.extend(numbers[:, 2].tolist())
                value = summary_pb2.Summary.Value(tag=tag, histo=histo)
                events.append(event_pb2.Event(step=step, wall_time=wall_time, summary=summary_pb2.Summary(value=[value])))
            else:
                events.append(tensor_histogram_event(tag, numbers, step, wall_time,
                                                     dtype="<f4" if encoding == "tf2-f32" else "<f8",
                                                     with_metadata=index == 0))
    order = rng.permutation(len(events)) if events else []
    return [w.header_event(), *(events[i] for i in order)]


fuzz = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(events=histogram_files(), min_group=st.sampled_from([1, 64]))
def test_generated_histograms_read_bit_for_bit(tmp_path: Path, events: list[event_pb2.Event], min_group: int) -> None:
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    first_plugins = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("metadata"):
                first_plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
    with mock.patch.object(tb_layouts, "_FAST_MIN_GROUP", min_group):
        run = assert_same_reads(path)
    assert histogram_bits(run) == protobuf_histograms(events, first_plugins)


@fuzz
@given(events=histogram_files(), damage=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_damaged_generated_histograms_read_as_the_protobuf_path_reads_them(
    tmp_path: Path, events: list[event_pb2.Event], damage: list[tuple[float, int]]
) -> None:
    path = tmp_path / EVENT_NAME
    w.write_event_file(path, events)
    data = bytearray(path.read_bytes())
    for where, mask in damage:
        data[min(int(where * len(data)), len(data) - 1)] ^= mask
    path.write_bytes(bytes(data))
    with mock.patch.object(tb_layouts, "_FAST_MIN_GROUP", 1):
        try:
            assert_same_reads(path)
        except UnreadableInput as error:  # the damage left no record: both paths say so alike
            with pytest.raises(UnreadableInput) as reference:
                read(path, reference=True)
            assert str(reference.value) == str(error)


# ---------------------------------------------------------------------------------------
# The columns a run keeps histograms in


def some_histograms() -> list[Histogram]:
    return [
        Histogram(3, 1.0, np.array([1.0, 2.0]), np.array([4.0, 5.0]), 0.0, 2.0),
        Histogram(1, 2.0, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0]), 0.5, 3.0),
        Histogram(3, 3.0, np.array([7.0]), np.array([1.0, 2.0]), np.nan, np.nan),  # malformed: kept as logged
        Histogram(2, 4.0, np.empty(0), np.empty(0)),
    ]


def test_columns_hand_back_the_histograms_they_were_made_of() -> None:
    items = some_histograms()
    columns = HistogramColumns.of(items)
    assert len(columns) == 4
    assert [bits(h) for h in columns] == [bits(h) for h in items]
    assert bits(columns[-1]) == bits(items[-1]) and bits(columns[1]) == bits(items[1])
    with pytest.raises(IndexError):
        columns[4]
    assert [bits(h) for h in columns[1:3]] == [bits(h) for h in items[1:3]]
    with pytest.raises(ValueError):
        columns[0].bucket_counts[0] = 9.0  # read-only: no measurement changes another's buckets


def test_columns_reorder_join_and_compact_without_changing_a_histogram() -> None:
    items = some_histograms()
    columns = HistogramColumns.of(items)
    by_step = columns.by_step()
    assert [h.step for h in by_step] == [1, 2, 3] and by_step[2].wall_time == 3.0  # the last of step 3
    taken = columns.take(np.array([2, 0]))
    assert [bits(h) for h in taken.compact()] == [bits(items[2]), bits(items[0])]
    assert taken.compact().limits.size == 3
    joined = HistogramColumns.concat([taken, items[1:2], columns])
    assert [bits(h) for h in joined] == [bits(h) for h in [items[2], items[0], items[1], *items]]
    parts: list[Sequence[Histogram]] = [taken, items[1:2], columns]
    drained = HistogramColumns.drain(parts)
    assert parts == [] and [bits(h) for h in drained] == [bits(h) for h in joined]  # let go as it joins
    compact = joined.compact()
    assert [bits(h) for h in compact] == [bits(h) for h in joined]
    assert compact.compact() is compact


def test_columns_of_one_bucket_count_move_as_rows() -> None:
    items = [Histogram(step, 0.0, np.arange(3.0) + step, np.ones(3) * step) for step in range(5)]
    columns = HistogramColumns.of(items).take(np.array([4, 1, 3]))
    assert [bits(h) for h in columns.compact()] == [bits(items[i]) for i in (4, 1, 3)]


def test_columns_refuse_spans_outside_their_buckets() -> None:
    one = np.zeros(1, np.int64)
    with pytest.raises(ValueError):
        HistogramColumns(one, np.zeros(1), np.zeros(1), np.zeros(1), (one, one + 3, one, one), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError):
        HistogramColumns(one, np.zeros(2), np.zeros(1), np.zeros(1), (one, one, one, one), np.zeros(2), np.zeros(2))


def test_columns_pickle_checked_and_read_only() -> None:
    items = some_histograms()
    columns = pickle.loads(pickle.dumps(HistogramColumns.of(items).take(np.array([1, 0]))))
    assert [bits(h) for h in columns] == [bits(items[1]), bits(items[0])]
    assert not columns.limits.flags.writeable and not columns.counts.flags.writeable
