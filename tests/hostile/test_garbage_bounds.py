"""Bounded time and memory on garbage: zeros and random bytes in an event file are skipped
without a checksum per byte, a header claiming an absurd length never allocates it, headers
made to be slow cost a bounded amount of work, and a text log with an enormous line is read
in bounded memory.

No test here times anything (the machine is shared): each counts the work that would grow
with the garbage (length checksums computed, payload bytes checksummed, walks of a window)
or measures Python's allocations with tracemalloc.  Sizes come from sparse files: nothing
large is written.  ``bench/hostile.py`` measures time and peak RSS on gigabytes.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rundoctor.discover import load_runs
from rundoctor.readers import files, reader_named, tfrecord
from rundoctor.readers.base import RunSource
from rundoctor.readers.crc32c import masked_crc32c
from rundoctor.readers.follow import FollowContext, appended_lines
from rundoctor.readers.tensorboard import state as tb_state
from rundoctor.readers.tensorboard import windows as tb_windows
from rundoctor.readers.tensorboard.assembly import read_tensorboard_run
from rundoctor.readers.tensorboard.state import EventFileState
from rundoctor.readers.tensorboard.windows import read_event_file_increment
from rundoctor.series import NoteKind, Run
from tests.hostile.bounds import append_hole, header, no_hang, scalar_records
from tests.hostile.corpus import fuzz_settings

EVENT_NAME = "events.out.tfevents.1700000000.host"


@contextmanager
def _peak_allocated() -> Iterator[list[int]]:
    """The peak of Python's (and numpy's) allocations in the block, in bytes, into the list."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _count_length_checksums(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many candidate headers get their length checksum computed while resynchronising."""
    counted: list[int] = []
    real = tfrecord._length_crcs

    def counting(byte_view: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        counted.append(int(candidates.size))
        return real(byte_view, candidates)

    monkeypatch.setattr(tfrecord, "_length_crcs", counting)
    return counted


def _read(path: Path) -> Run:
    with no_hang():
        return read_tensorboard_run(path.parent, [(path, "")])


def _problems(run: Run) -> list[tuple[NoteKind, str | None, int | None]]:
    return [(note.kind, note.location, note.count) for note in run.notes if note.kind in (NoteKind.CORRUPT, NoteKind.TRUNCATED)]


# ---------------------------------------------------------------------------------------------
# Zeros and random bytes
# ---------------------------------------------------------------------------------------------


def test_a_zero_filled_event_file_is_judged_without_a_checksum_per_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a crashed file system leaves: 256 MiB of zeros under an event file's name.  A
    zero length's checksum is not zero, so no header can sit in zeros: none is checked."""
    path = tmp_path / EVENT_NAME
    path.touch()
    append_hole(path, 256 << 20)
    checked = _count_length_checksums(monkeypatch)
    with no_hang():
        runs, errors = load_runs([tmp_path])
    assert runs == []
    assert [error.reason for error in errors] == [f"{EVENT_NAME}: no valid TFRecord header: not an event file"]
    assert sum(checked) == 0


@pytest.mark.parametrize("filler", ["zeros", "random", "small integers"])
def test_garbage_in_the_middle_of_an_event_file_is_skipped_and_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filler: str
) -> None:
    """Records, a stretch of garbage, records: every record is read, one corrupt note covers
    the garbage exactly, and only candidates that could be headers get a checksum."""
    path = tmp_path / EVENT_NAME
    before = scalar_records(range(100))
    path.write_bytes(before)
    size = 16 << 20 if filler == "zeros" else 1 << 20
    if filler == "zeros":
        append_hole(path, size)  # sparse: nothing written
    else:
        rng = np.random.default_rng(0)
        garbage = (
            rng.integers(1, 256, size, dtype=np.uint8).tobytes()  # no zero word: no candidate at all
            if filler == "random"
            else rng.integers(0, 1000, size // 8).astype("<i8").tobytes()  # a plausible length every 8 bytes
        )
        with path.open("ab") as handle:
            handle.write(garbage)
    with path.open("ab") as handle:
        handle.write(scalar_records(range(100, 200)))
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", 1 << 20)  # the garbage spans windows
    checked = _count_length_checksums(monkeypatch)
    run = _read(path)
    assert run.curve("loss").steps.tolist() == list(range(200))
    assert _problems(run) == [(NoteKind.CORRUPT, f"offset {len(before)}", size)]
    if filler != "small integers":
        assert sum(checked) < 1000  # the candidates next to the records, not one a byte
    else:
        assert sum(checked) <= size // 8 * 3  # the plausible lengths only


# A file of segments: zeros, random bytes, small integers, plausible and valid headers.
_SEGMENT = st.one_of(
    st.integers(1, 200).map(bytes),
    st.binary(min_size=1, max_size=200),
    st.lists(st.integers(0, 300), min_size=1, max_size=30).map(lambda values: np.array(values, "<i8").tobytes()),
    st.integers(0, 400).map(header),
    st.integers(0, 400).map(lambda length: struct.pack("<QI", length, 0)),  # a length whose checksum fails
    st.just(header(0)),
)


def _brute_force_headers(data: bytes, start: int, limit: int | None) -> list[int]:
    """Every offset from ``start`` whose header verifies, by the definition, one at a time."""
    found = []
    for offset in range(start, len(data) - tfrecord.HEADER_BYTES + 1):
        length, crc = struct.unpack_from("<QI", data, offset)
        fits = limit is None or offset + tfrecord.FRAMING_BYTES + length <= limit
        if length <= tfrecord.MAX_RECORD_BYTES and fits and masked_crc32c(data[offset : offset + 8]) == crc:
            found.append(offset)
    return found


@fuzz_settings(150)
@given(
    segments=st.lists(_SEGMENT, max_size=40),
    start_fraction=st.floats(0, 1),
    bounded=st.booleans(),
    dense=st.sampled_from([0, 64, 1 << 40]),
)
def test_the_fast_scan_finds_exactly_the_headers_a_byte_by_byte_scan_finds(
    segments: list[bytes], start_fraction: float, bounded: bool, dense: int
) -> None:
    """Both ways of finding candidates (gathered at zero words, or byte masks where zero
    words are dense) and the zero-stretch skip miss no header and invent none."""
    data = b"".join(segments)
    start = int(start_fraction * len(data))
    limit = len(data) if bounded else None
    expected = _brute_force_headers(data, start, limit)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfrecord, "_DENSE_ZERO_WORDS", dense)
        patch.setattr(tfrecord, "_FIRST_SCAN", 16)  # several stretches even in a short file
        found, position = [], start
        while (headers := tfrecord.valid_headers(data, position, limit)).size:
            found.extend(headers.tolist())
            position = int(headers[-1]) + 1
    assert found == expected


# ---------------------------------------------------------------------------------------------
# Absurd lengths
# ---------------------------------------------------------------------------------------------


def test_a_header_claiming_exabytes_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / EVENT_NAME
    path.write_bytes(scalar_records(range(10)) + header(1 << 62) + scalar_records(range(10, 20)))
    with _peak_allocated() as peak:
        run = _read(path)
    assert run.curve("loss").steps.tolist() == list(range(20))
    assert [kind for kind, _, _ in _problems(run)] == [NoteKind.CORRUPT]
    assert peak[0] < 32 << 20


def test_a_header_claiming_more_than_the_cap_is_damage_not_an_allocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified length under the file's size but over the cap (here 1 MiB, with windows of
    64 KiB): without the cap the window would grow to hold the record; with it the record is
    damage, scanned past, and the records after it are read."""
    monkeypatch.setattr(tfrecord, "MAX_RECORD_BYTES", 1 << 20)
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", 1 << 16)
    path = tmp_path / EVENT_NAME
    before = scalar_records(range(10))
    path.write_bytes(before + header(4 << 20))
    append_hole(path, (4 << 20) + 4)
    with path.open("ab") as handle:
        handle.write(scalar_records(range(10, 20)))
    with _peak_allocated() as peak:
        run = _read(path)
    assert run.curve("loss").steps.tolist() == list(range(20))
    corrupt = [note for note in run.notes if note.kind is NoteKind.CORRUPT]
    assert len(corrupt) == 1 and corrupt[0].location == f"offset {len(before)}"
    assert corrupt[0].message.startswith("a record header claims 4,194,304 bytes, over the 1,048,576 bytes a record may have")
    assert peak[0] < 3 << 20


def test_a_followed_file_whose_header_claims_too_much_does_not_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following a file (``watch``), a record is waited for until it is all written: one
    claiming more than the cap is damage at once, and the records after it are read."""
    monkeypatch.setattr(tfrecord, "MAX_RECORD_BYTES", 1 << 20)
    path = tmp_path / EVENT_NAME
    path.write_bytes(header(1 << 40) + scalar_records(range(5)))
    state = EventFileState()
    increment = read_event_file_increment(path, 0, state)
    assert increment.points.steps.tolist() == list(range(5))
    assert [note.kind for note in increment.notes] == [NoteKind.CORRUPT]


# ---------------------------------------------------------------------------------------------
# Files made to be slow
# ---------------------------------------------------------------------------------------------


def _count_payload_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The payload bytes checksummed one record at a time."""
    counted: list[int] = []
    real = tfrecord.payload_crc_ok

    def counting(data: tfrecord.FileData, starts: list[int], lengths: list[int]) -> list[bool]:
        counted.append(sum(lengths))
        return real(data, starts, lengths)

    monkeypatch.setattr(tfrecord, "payload_crc_ok", counting)
    return counted


def test_overlapping_headers_over_bad_payloads_cost_a_bounded_amount_of_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of copies of one 12-byte header that verifies, each claiming a 64 KiB payload
    whose checksum fails: each resynchronisation would checksum 64 KiB again, a quadratic
    amount of work.  The failed checks are charged to an allowance (here 1 MiB plus twice the
    bytes walked); past it the rest of the file is reported, not searched."""
    monkeypatch.setattr(tfrecord, "_FAILED_PAYLOAD_FLOOR", 1 << 20)
    path = tmp_path / EVENT_NAME
    blob = scalar_records(range(3)) + header(1 << 16) * 8000 + bytes((1 << 16) + 100) + scalar_records(range(3, 6))
    path.write_bytes(blob)
    checked = _count_payload_bytes(monkeypatch)
    run = _read(path)
    assert run.curve("loss").steps.tolist() == [0, 1, 2]
    assert sum(checked) <= (1 << 20) + 2 * len(blob) + (1 << 17)
    corrupt = [note for note in run.notes if note.kind is NoteKind.CORRUPT]
    assert len(corrupt) == 1 and "the rest of the file was not searched for records" in corrupt[0].message


def _nested(levels: int) -> bytes:
    """Each level: a header that verifies over a bad payload ending where all the others end,
    then an intact record.  Each walk of the window resynchronises into the next level, so
    learning of bad payloads only from the decoder takes a walk per level."""
    intact = scalar_records([1])
    unit = tfrecord.HEADER_BYTES + len(intact)
    end = levels * unit + 64
    body = b"".join(header(end - level * unit - tfrecord.FRAMING_BYTES) + intact for level in range(levels))
    return body + bytes(end - len(body)) + scalar_records(range(2, 10))


def test_nested_bad_records_cost_a_bounded_number_of_walks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / EVENT_NAME
    path.write_bytes(_nested(300))
    walks: list[int] = []
    real_walk = tfrecord.RecordWalker.walk

    def counting_walk(self: tfrecord.RecordWalker, *args: object, **kwargs: object) -> tfrecord.Records:
        walks.append(1)
        return real_walk(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tfrecord.RecordWalker, "walk", counting_walk)
    run = _read(path)
    assert run.curve("loss").steps.tolist() == [1] * 300 + list(range(2, 10))
    assert len(walks) <= tb_state._MAX_REWALKS + 2


@pytest.mark.parametrize("blob", [_nested(40), scalar_records(range(50)) + header(100) + bytes(90) + scalar_records(range(50, 60))])
def test_verifying_payloads_while_walking_reads_what_walking_again_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob: bytes
) -> None:
    """The walk that verifies every payload (after too many walks) is the same reading as
    walking again for each bad payload learnt from the decoder."""
    path = tmp_path / EVENT_NAME
    path.write_bytes(blob)
    monkeypatch.setattr(tb_state, "_MAX_REWALKS", 10**6)
    walked_again = _read(path)
    monkeypatch.setattr(tb_state, "_MAX_REWALKS", 0)
    verified = _read(path)
    assert verified.curve("loss").steps.tolist() == walked_again.curve("loss").steps.tolist()
    assert _problems(verified) == _problems(walked_again)


# ---------------------------------------------------------------------------------------------
# Text logs with an enormous line
# ---------------------------------------------------------------------------------------------


def _with_enormous_line(path: Path, first: bytes, last: bytes, size: int) -> None:
    """``first``, a line of ``size`` NUL bytes (a sparse hole: nothing written), ``last``."""
    path.write_bytes(first)
    append_hole(path, size)
    with path.open("ab") as handle:
        handle.write(last)


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("metrics.csv", b"step,loss\n0,1.0\n1,0.9\n", b"\n2,0.8\n3,0.7\n"),
        ("history.jsonl", b'{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.9}\n', b'\n{"step": 2, "loss": 0.8}\n'
                          b'{"step": 3, "loss": 0.7}\n'),
    ],
)
def test_an_enormous_line_is_skipped_in_bounded_memory_and_noted(
    tmp_path: Path, name: str, first: bytes, last: bytes
) -> None:
    """A 256 MiB line: before, the CSV reader held it whole and split it (14x its size), the
    JSON-lines reader joined it and parsed it (6x).  Now it is passed over a chunk at a time."""
    path = tmp_path / name
    _with_enormous_line(path, first, last, 256 << 20)
    with _peak_allocated() as peak, no_hang():
        runs, errors = load_runs([path])
    assert errors == [] and len(runs) == 1
    run = runs[0]
    assert run.curve("loss").steps.tolist() == [0, 1, 2, 3]
    long_line = first.count(b"\n") + 1
    assert [(note.kind, note.location, note.count, note.message) for note in run.notes if note.kind is NoteKind.CORRUPT] == [
        (NoteKind.CORRUPT, f"line {long_line}", 1,
         f"line {long_line} is 268,435,456 bytes long, over the 4 MiB a line may have: skipped without being "
         "parsed (log lines are a few hundred bytes; this is damage, or no log)")
    ]
    assert peak[0] < 64 << 20


def test_lines_under_the_bound_are_all_read(tmp_path: Path) -> None:
    """The near miss: a line just under the bound is a line like any other (a junk cell)."""
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"step,loss\n0,1.0\n1," + b"9" * (files.MAX_LINE_BYTES - 2) + b"\n2,0.8\n")
    runs, errors = load_runs([path])
    assert errors == [] and runs[0].curve("loss").steps.tolist() == [0, 1, 2]
    assert not any("a line may have" in note.message for note in runs[0].notes)


def test_an_enormous_line_appended_to_a_followed_log_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """``watch`` reads the lines appended since the last poll into memory: past 64 MiB of
    them it reads the log again whole through its reader instead, which skips the line."""
    path = tmp_path / "history.jsonl"
    path.write_bytes(b'{"step": 0, "loss": 1.0}\n')
    source = RunSource("jsonl", path, [(path, "")])
    follower = appended_lines(header=False)(FollowContext(source, reader_named("jsonl").read, tmp_path, True))
    assert follower.update(source) is not None
    _with_enormous_line(path, path.read_bytes(), b'\n{"step": 1, "loss": 0.5}\n', 256 << 20)
    with _peak_allocated() as peak, no_hang():
        run = follower.update(source)
    assert run is not None and run.curve("loss").steps.tolist() == [0, 1]
    assert any("a line may have" in note.message for note in run.notes)
    assert peak[0] < 64 << 20
