"""Hostile event files: cut, flipped, spliced, re-framed; never a crash, never a lost record.

Each example writes a small event file of hypothesis-drawn records (simple values, pairs of
values, TF2 tensor scalars of four dtypes with the plugin metadata on a tag's first value,
text, images and histograms; any tags, steps and values, NaN and infinities included),
damages it once, reads it, and checks the run against what the test knows of every record:

1. only :class:`UnreadableInput` escapes, and only when no record can be found at all (the
   first header does not verify and no intact record follows); with a good file beside the
   damaged one, the run is always read, the good file whole;
2. every record wholly before the first damaged byte is read, exactly, each tag in log order;
3. the damage is reported: the first corrupt or truncated note of the file sits at the offset
   where an independent walk of the framing (length checksum, payload checksum, protobuf
   decoding) meets its first problem, with that kind; an intact file gets no such note;
4. reading resumes after the damage: every record the damage did not touch is read (exactly
   those when the damage cannot create a record; a duplicated range may hold whole records
   and a re-framed payload may decode as another event, so there the untouched records are a
   subset);
5. the fast path equals the protobuf path, and reading in small windows equals reading the
   whole file.

The fast path only takes groups of 64 records of one length; the files here are small, so
most examples lower that threshold to put their records through it.

A record that loses bytes near the end of a file, more than the records after it hold, has a
length that still verifies and now runs past the end: it looks like a writer cut short.  Such
inputs are rare among random damage, so a strategy of their own makes them, below.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.tensorboard import layouts as tb_layouts
from rundoctor.readers.tensorboard import windows as tb_windows
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.series import NoteKind, Run
from tests.hostile.corpus import (
    ByteMutation,
    Point,
    assert_consistent,
    assert_tag_prefixes,
    by_tag,
    byte_mutation,
    contains,
    damaged_span,
    fuzz_settings,
    note_offset,
    notes_about,
    point,
    run_points,
)
from tests.readers import tb_writer as w
from tests.readers.test_tensorboard import assert_same_runs

DAMAGED_NAME = "events.out.tfevents.1700000000.host.1.0"
GOOD_NAME = "events.out.tfevents.1700000001.host.1.0"
T0 = 1_700_000_000.0
SCALARS = "scalars"


@dataclass(frozen=True)
class Record:
    """One framed record and what reading it yields."""

    payload: bytes
    values: tuple[tuple[Point, bool], ...] = ()  # (point, is a TF2 tensor), in summary order
    plugins: tuple[tuple[str, str], ...] = ()  # (tag, plugin) named by the record's metadata


def expected_points(records: Sequence[Record], *, tensors_before: int | None = None) -> list[Point]:
    """The points of ``records`` read as one file: a tensor counts when the first metadata of
    its tag among them names the scalars plugin (``tensors_before``: and when its record is
    one of the first ``tensors_before``)."""
    plugins: dict[str, str] = {}
    for record in records:
        for tag, plugin in record.plugins:
            plugins.setdefault(tag, plugin)
    last = len(records) if tensors_before is None else tensors_before
    return [
        value
        for index, record in enumerate(records)
        for value, is_tensor in record.values
        if not is_tensor or (plugins.get(value[0]) == SCALARS and index < last)
    ]


# Tags: any text (protobuf strings are UTF-8), short so that records share lengths and layouts.
TAGS = st.text(st.characters(codec="utf-8"), max_size=8)
STEPS = st.integers(-(2**63), 2**63 - 1)
TENSOR_VALUES = {
    "float32": st.floats(width=32),
    "float64": st.floats(),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
}
RECORD_KINDS = ["simple", "simple", "simple", "pair", "tensor", "tensor", "text", "image", "histogram"]


@st.composite
def event_records(draw: st.DrawFn) -> list[Record]:
    """A header and up to 12 records.  Text, image and histogram records have tags of their
    own: a text record's plugin must not decide the plugin of a scalar tag."""
    scalar_tags = draw(st.lists(TAGS, min_size=1, max_size=3, unique=True))
    # One wall time for all records: wall times are compared path to path only, and not NaN,
    # which assert_same_runs cannot compare for histograms (a tuple ==).
    wall = draw(st.floats(allow_nan=False))
    records = [Record(w.header_event().SerializeToString())]
    tensor_tags: set[str] = set()
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(RECORD_KINDS))
        tag, step = draw(st.sampled_from(scalar_tags)), draw(STEPS)
        if kind == "simple":
            value = draw(st.floats(width=32))
            event = w.scalar_event(tag, value, step, wall)
            records.append(Record(event.SerializeToString(), ((point(tag, step, value), False),)))
        elif kind == "pair":
            pairs = [(draw(st.sampled_from(scalar_tags)), draw(st.floats(width=32))) for _ in range(2)]
            event = w.multi_scalar_event(pairs, step, wall)
            records.append(Record(event.SerializeToString(), tuple((point(t, step, v), False) for t, v in pairs)))
        elif kind == "tensor":
            dtype = draw(st.sampled_from(sorted(TENSOR_VALUES)))
            value = draw(TENSOR_VALUES[dtype])
            metadata = tag not in tensor_tags or draw(st.booleans())  # TF2: on a tag's first value
            tensor_tags.add(tag)
            event = w.tensor_scalar_event(tag, value, step, wall, dtype=dtype, typed=draw(st.booleans()),
                                          with_metadata=metadata)
            expected = float(np.array(value, dtype))
            records.append(Record(event.SerializeToString(), ((point(tag, step, expected), True),),
                                  ((tag, SCALARS),) if metadata else ()))
        elif kind == "text":
            event = w.text_event("notes/text_summary", "lr=0.1", step, wall)
            records.append(Record(event.SerializeToString(), (), (("notes/text_summary", "text"),)))
        elif kind == "image":
            records.append(Record(w.image_event("samples", step, wall).SerializeToString()))
        else:
            values = np.array([0.5, -1.0, step % 7])
            records.append(Record(w.histogram_event("weights", values, step, wall, bins=3).SerializeToString()))
    return records


def framed(records: Sequence[Record]) -> tuple[bytes, list[tuple[int, int]]]:
    """The file's bytes and each record's (start, end)."""
    frames = [w.frame(record.payload) for record in records]
    ends = np.cumsum([len(f) for f in frames]).tolist()
    return b"".join(frames), list(zip([0, *ends[:-1]], ends, strict=True))


# ---------------------------------------------------------------------------------------------
# An independent walk of the framing: where a correct reader must first complain.
# ---------------------------------------------------------------------------------------------


def _header_verifies(data: bytes, offset: int) -> bool:
    return len(data) - offset >= 12 and w.masked_crc32c(data[offset : offset + 8]) == struct.unpack_from(
        "<I", data, offset + 8)[0]


def _payload_verifies(data: bytes, offset: int, end: int) -> bool:
    """Whether the payload of the record from ``offset`` to ``end`` matches its checksum."""
    return w.masked_crc32c(data[offset + 12 : end - 4]) == struct.unpack_from("<I", data, end - 4)[0]


def first_problem(data: bytes) -> tuple[int, NoteKind] | None:
    """The offset and kind of the first record that is not a whole, intact, decodable Event."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            return offset, NoteKind.TRUNCATED
        if not _header_verifies(data, offset):
            return offset, NoteKind.CORRUPT
        length = struct.unpack_from("<Q", data, offset)[0]
        end = offset + 16 + length
        if end > len(data):  # cut by the end, unless a record that lost bytes hides intact ones
            return offset, NoteKind.CORRUPT if intact_record_from(data, offset + 1) else NoteKind.TRUNCATED
        if not _payload_verifies(data, offset, end):
            return offset, NoteKind.CORRUPT
        try:
            event_pb2.Event.FromString(data[offset + 12 : end - 4])
        except (DecodeError, RecursionError, ValueError):
            return offset, NoteKind.CORRUPT
        offset = end
    return None


def intact_record_from(data: bytes, start: int) -> bool:
    """Whether a whole record, both checksums verifying, starts at or after ``start``: where
    reading resumes after damage."""
    for offset in range(start, len(data) - 15):
        if _header_verifies(data, offset):
            end = offset + 16 + struct.unpack_from("<Q", data, offset)[0]
            if end <= len(data) and _payload_verifies(data, offset, end):
                return True
    return False


def holds_a_record(data: bytes) -> bool:
    """Whether a reader can find a record at all: the first header verifies (the walk starts
    there), or an intact record lies further on (where resynchronising finds one)."""
    return _header_verifies(data, 0) or intact_record_from(data, 1)


# ---------------------------------------------------------------------------------------------
# Damage
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reframed:
    """Record ``record``'s payload damaged by ``mutation`` and framed again with valid
    checksums: only protobuf decoding can tell (undecodable, or a different event)."""

    record: int
    mutation: ByteMutation

    def apply(self, records: Sequence[Record]) -> bytes:
        payloads = [record.payload for record in records]
        payloads[self.record] = self.mutation.apply(payloads[self.record])
        return b"".join(w.frame(payload) for payload in payloads)


FAMILIES = ("truncate", "flip", "insert", "delete", "duplicate", "reframe")
# Damage that cannot create a record (a flip, random bytes, a cut or a removal cannot make both
# checksums of a record verify): exactly the untouched records are read.
RESUMES_EXACTLY = ("truncate", "flip", "insert", "delete")


@st.composite
def damaged_files(draw: st.DrawFn, family: str) -> tuple[list[Record], bytes, ByteMutation | Reframed]:
    records = draw(event_records())
    data, _ = framed(records)
    damage: ByteMutation | Reframed
    if family == "reframe":
        index = draw(st.integers(0, len(records) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        damage = Reframed(index, draw(byte_mutation(len(records[index].payload), kind)))
        return records, damage.apply(records), damage
    damage = draw(byte_mutation(len(data), family))
    return records, damage.apply(data), damage


def read(run_dir: Path, files: list[Path], *, reference: bool = False) -> Run:
    return read_tensorboard_run(run_dir, [(path, "") for path in files], reference=reference)


def untouched(records: Sequence[Record], damaged: bytes) -> tuple[list[Record], list[Record]]:
    """The records wholly before the damage, and all records the damage left untouched."""
    original, spans = framed(records)
    start, end = damaged_span(original, damaged)
    before = [r for r, (_, stop) in zip(records, spans, strict=True) if stop <= start]
    intact = [r for r, (begin, stop) in zip(records, spans, strict=True) if stop <= start or begin >= end]
    return before, intact


GOOD_TAG = "beside/loss"  # longer than any drawn tag
GOOD_FILE = [w.header_event()] + [w.scalar_event(GOOD_TAG, 2.0**-step, step, T0 + step) for step in range(3)]
GOOD_CURVE = by_tag(point(GOOD_TAG, step, 2.0**-step) for step in range(3))[GOOD_TAG]


@pytest.mark.parametrize("family", FAMILIES)
@fuzz_settings(examples=350)
@given(case=st.data())
def test_damaged_event_file(tmp_path: Path, family: str, case: st.DataObject) -> None:
    records, damaged, damage = case.draw(damaged_files(family), label="records, damaged bytes, damage")
    beside = case.draw(st.booleans(), label="a good file beside it")
    fast_min_group = case.draw(st.sampled_from([1, 2, 64]), label="_FAST_MIN_GROUP")
    window = case.draw(st.integers(1, 512), label="_WINDOW_BYTES")
    path, good = tmp_path / DAMAGED_NAME, tmp_path / GOOD_NAME
    path.write_bytes(damaged)
    good.unlink(missing_ok=True)
    if beside:
        w.write_event_file(good, GOOD_FILE)
    files = [path, good] if beside else [path]
    readable = holds_a_record(damaged)
    before, intact = untouched(records, damaged)
    with mock.patch.object(tb_layouts, "_FAST_MIN_GROUP", fast_min_group):
        # 1. Only UnreadableInput escapes, and only when nothing at all can be read.
        try:
            run = read(tmp_path, files)
        except UnreadableInput as error:
            assert str(error) and not readable and not beside
            return
        assert_consistent(run, format="tensorboard", source=path, size=len(damaged))
        curves = by_tag(run_points(run))
        assert curves.pop(GOOD_TAG, None) == (GOOD_CURVE if beside else None), "the good file beside it"

        # 2. Every record before the damage, exactly.
        assert_tag_prefixes(run, expected_points(before))

        # 3. The damage reported where it starts, and only damage reported.
        problem = first_problem(damaged)
        reported = notes_about(run, path, (NoteKind.CORRUPT, NoteKind.TRUNCATED))
        if not readable:
            (note,) = reported
            assert note.message.startswith("not read:") and curves == {}
        elif problem is None:
            assert reported == [], "an intact file reported as damaged"
        else:
            offset, kind = problem
            assert reported, f"damage at offset {offset} not reported: {run.notes}"
            first = min(reported, key=lambda note: note_offset(note.location) or 0)
            assert (first.location, first.kind) == (f"offset {offset}", kind), reported

        # 4. Reading resumes after the damage.
        if family in RESUMES_EXACTLY:
            assert curves == by_tag(expected_points(intact)), "an untouched record was not read"
        else:  # a re-framed record may now name other tags and plugins: its later tensors may go
            own = [(tag, step, bits) for tag, points in curves.items() for step, bits in points]
            limit = damage.record if isinstance(damage, Reframed) else None
            assert contains(own, expected_points(intact, tensors_before=limit)), "an untouched record was not read"

        # 5. Both decoding paths and any window size read the same.
        assert_same_runs(run, read(tmp_path, files, reference=True))
        with mock.patch.object(tb_windows, "_WINDOW_BYTES", window):
            assert_same_runs(run, read(tmp_path, files))


def test_a_record_that_lost_a_byte_does_not_hide_the_next_one(tmp_path: Path) -> None:
    """Its header still verifies and claims bytes of the next record: reading must resume at
    the next record anyway, not at the end the damaged one's length claims."""
    events = [w.header_event()] + [w.scalar_event("loss", float(step), step, T0) for step in range(1, 6)]
    path = tmp_path / DAMAGED_NAME
    ends = w.write_event_file(path, events)
    data = path.read_bytes()
    cut = ends[1] + 20  # a byte of the payload of the record of step 2
    path.write_bytes(data[:cut] + data[cut + 1 :])

    run = read(tmp_path, [path])

    assert run.steps.tolist() == [1, 3, 4, 5]
    assert run.notes[0].location == f"offset {ends[1]}"


@st.composite
def bytes_lost_near_the_end(draw: st.DrawFn) -> tuple[list[Record], bytes, int]:
    """Records with a long text record before the last ones, which loses more bytes from its
    payload than all the records after it hold; and the text record's offset."""
    records = draw(event_records().filter(lambda records: len(records) >= 2))
    index = draw(st.integers(1, len(records) - 1))
    after = len(framed(records[index:])[0])
    text = "x" * (after + draw(st.integers(2, 40)))
    records.insert(index, Record(w.text_event("notes/text_summary", text, 0, T0).SerializeToString(), (),
                                 (("notes/text_summary", "text"),)))
    data, spans = framed(records)
    payload = spans[index][0] + 12
    lost = draw(st.integers(after + 1, len(records[index].payload) - 1))
    at = payload + draw(st.integers(0, len(records[index].payload) - lost))
    return records, data[:at] + data[at + lost :], spans[index][0]


@fuzz_settings(examples=30)
@given(case=st.data())
def test_a_record_whose_claim_runs_past_the_end_hides_no_record(tmp_path: Path, case: st.DataObject) -> None:
    records, damaged, damaged_at = case.draw(bytes_lost_near_the_end(), label="records, damaged bytes, offset")
    window = case.draw(st.integers(1, 512), label="_WINDOW_BYTES")
    path = tmp_path / DAMAGED_NAME
    path.write_bytes(damaged)
    _, intact = untouched(records, damaged)

    run = read(tmp_path, [path])

    assert by_tag(run_points(run)) == by_tag(expected_points(intact)), "an untouched record was not read"
    first = notes_about(run, path, (NoteKind.CORRUPT, NoteKind.TRUNCATED))[0]
    assert (first.kind, first.location) == (NoteKind.CORRUPT, f"offset {damaged_at}")
    with mock.patch.object(tb_windows, "_WINDOW_BYTES", window):
        assert_same_runs(run, read(tmp_path, [path]))


def test_a_record_that_lost_more_than_the_records_after_it_hides_none(tmp_path: Path) -> None:
    events = [w.header_event(), w.text_event("notes", "x" * 40, 0, T0), w.scalar_event("loss", 1.0, 1, T0)]
    path = tmp_path / DAMAGED_NAME
    ends = w.write_event_file(path, events)
    data = path.read_bytes()
    cut = ends[0] + 20  # inside the text record's payload; 50 bytes go, more than the record after it
    path.write_bytes(data[:cut] + data[cut + 50 :])

    run = read(tmp_path, [path])

    assert run.steps.tolist() == [1]
    (note,) = run.notes
    assert (note.kind, note.location) == (NoteKind.CORRUPT, f"offset {ends[0]}")
    assert "resumed at offset" in note.message
