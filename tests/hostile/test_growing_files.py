"""Files that grow or shrink while they are read: no crash, no hang, no point lost of what
was there, and a note that the size changed.

The file is changed from inside the read (a hook on the file layer's reads), so the moment
is exact: after the first read, or at every read for a writer faster than the reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rundoctor.discover import load_runs
from rundoctor.readers import files
from rundoctor.readers.tensorboard import windows as tb_windows
from rundoctor.series import NoteKind, Run
from tests.hostile.bounds import no_hang, scalar_records

EVENT_NAME = "events.out.tfevents.1700000000.host"
WINDOW = 4096  # event files are read in windows this small here, so a read spans many


def _on_reads(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None], *, every: bool = False) -> list[int]:
    """Run ``change`` after the first read of any file (``every``: after each read); the
    list returned counts the reads."""
    reads: list[int] = []
    read, readinto = files.SizedFile.read, files.SizedFile.readinto

    def changed_after(method: Callable[..., object]) -> Callable[..., object]:
        def wrapped(self: files.SizedFile, *args: object) -> object:
            result = method(self, *args)
            reads.append(1)
            if every or len(reads) == 1:
                change()
            return result

        return wrapped

    monkeypatch.setattr(files.SizedFile, "read", changed_after(read))
    monkeypatch.setattr(files.SizedFile, "readinto", changed_after(readinto))
    return reads


def _size_notes(run: Run) -> list[str]:
    return [note.message for note in run.notes if "while it was read" in note.message]


def _one_run(path: Path) -> Run:
    """The run of ``path``, its reader named so that no sniffing reads it first (the first
    read is the reader's)."""
    reader = {".jsonl": "jsonl", ".csv": "lightning-csv"}.get(path.suffix, "tensorboard")
    with no_hang():
        runs, errors = load_runs([path], reader=reader)
    assert errors == [] and len(runs) == 1
    return runs[0]


def _append(path: Path, data: bytes) -> Callable[[], None]:
    def append() -> None:
        with path.open("ab") as handle:
            handle.write(data)

    return append


# ---------------------------------------------------------------------------------------------
# Event files
# ---------------------------------------------------------------------------------------------


def test_an_event_file_that_grows_while_read_is_read_as_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / EVENT_NAME
    path.write_bytes(scalar_records(range(300)))
    size = path.stat().st_size
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", WINDOW)
    _on_reads(monkeypatch, _append(path, scalar_records(range(300, 400))))
    run = _one_run(path)
    assert run.curve("loss").steps.tolist() == list(range(300))
    grown = path.stat().st_size
    assert _size_notes(run) == [
        f"the file grew from {size:,} to {grown:,} bytes while it was read: read as it was when opened "
        "(`rundoctor watch` follows a log still being written)"
    ]
    assert not [note for note in run.notes if note.kind in (NoteKind.CORRUPT, NoteKind.TRUNCATED)]


def test_an_event_file_written_faster_than_it_is_read_does_not_keep_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read appends more than it reads: the read ends at the size at open."""
    path = tmp_path / EVENT_NAME
    path.write_bytes(scalar_records(range(300)))
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", WINDOW)
    reads = _on_reads(monkeypatch, _append(path, scalar_records(range(100))), every=True)
    run = _one_run(path)
    assert run.curve("loss").steps.tolist() == list(range(300))
    assert len(reads) < 50


@pytest.mark.parametrize("cut_record", [100, 150])
@pytest.mark.parametrize("mid_record", [False, True])
def test_an_event_file_cut_while_read_keeps_what_was_read_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_record: int, mid_record: bool
) -> None:
    """Cut by another process after the first window: the records before the cut are read,
    the one cut in half is reported truncated, and the shrink is noted; no crash."""
    records = [scalar_records([step]) for step in range(300)]
    path = tmp_path / EVENT_NAME
    path.write_bytes(b"".join(records))
    size = path.stat().st_size
    cut = sum(len(record) for record in records[:cut_record]) + (7 if mid_record else 0)
    assert cut > WINDOW  # after the first window
    monkeypatch.setattr(tb_windows, "_WINDOW_BYTES", WINDOW)
    _on_reads(monkeypatch, lambda: os.truncate(path, cut))
    run = _one_run(path)
    assert run.curve("loss").steps.tolist() == list(range(cut_record))
    assert _size_notes(run) == [
        f"the file shrank from {size:,} to {cut:,} bytes while it was read (rewritten or cut by another "
        "process): what was read before is kept"
    ]
    truncated = [note for note in run.notes if note.kind is NoteKind.TRUNCATED]
    assert len(truncated) == (1 if mid_record else 0)


# ---------------------------------------------------------------------------------------------
# Text logs
# ---------------------------------------------------------------------------------------------


def _jsonl(steps: range) -> bytes:
    return b"".join(b'{"step": %d, "loss": %r}\n' % (step, 1.0 / (step + 1)) for step in steps)


def _csv_rows(steps: range) -> bytes:
    return b"".join(b"%d,%r\n" % (step, 1.0 / (step + 1)) for step in steps)


@pytest.mark.parametrize("every", [False, True])
def test_a_jsonl_log_that_grows_while_read_is_read_as_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: bool
) -> None:
    """JSON lines are read a block at a time: lines appended meanwhile, even at every read,
    wait for the next read."""
    path = tmp_path / "history.jsonl"
    path.write_bytes(_jsonl(range(2000)))
    monkeypatch.setattr(files, "_LINE_CHUNK", 4096)
    _on_reads(monkeypatch, _append(path, _jsonl(range(2000, 2500))), every=every)
    run = _one_run(path)
    assert run.curve("loss").steps.tolist() == list(range(2000))
    assert len(_size_notes(run)) == 1 and "grew from" in _size_notes(run)[0]


@pytest.mark.parametrize("every", [False, True])
def test_a_csv_log_that_grows_while_read_loses_none_of_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: bool
) -> None:
    """A CSV is read in several passes (its head, pandas, a count of its bytes), each opened
    on its own: rows appended between passes may be read or not, but every row there at the
    start is, and no pass runs for ever."""
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"step,loss\n" + _csv_rows(range(2000)))
    monkeypatch.setattr(files, "_LINE_CHUNK", 4096)
    _on_reads(monkeypatch, _append(path, _csv_rows(range(2000, 2100))), every=every)
    run = _one_run(path)
    assert run.curve("loss").steps.tolist()[:2000] == list(range(2000))
    assert len(_size_notes(run)) == 1 and "grew from" in _size_notes(run)[0]


@pytest.mark.parametrize("name", ["history.jsonl", "metrics.csv"])
def test_a_text_log_cut_while_read_keeps_its_lines_before_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    body = _jsonl(range(2000)) if name.endswith(".jsonl") else b"step,loss\n" + _csv_rows(range(2000))
    path.write_bytes(body)
    cut = body.index(b"\n", len(body) // 2) + 1  # at a line end: every line before is whole
    kept = body[:cut].count(b"\n") - (0 if name.endswith(".jsonl") else 1)
    monkeypatch.setattr(files, "_LINE_CHUNK", 4096)
    _on_reads(monkeypatch, lambda: os.truncate(path, cut))
    run = _one_run(path)
    assert run.curve("loss").steps.tolist()[:kept] == list(range(kept))
    assert len(_size_notes(run)) == 1 and "shrank from" in _size_notes(run)[0]


def test_a_file_of_the_same_size_gets_no_note(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(_jsonl(range(10)))
    assert _size_notes(_one_run(path)) == []
