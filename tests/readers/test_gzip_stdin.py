"""Gzipped logs (read decompressed by every reader, bounded) and ``-`` for standard input."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sys
import tracemalloc
from pathlib import Path

import pytest

from rundoctor import discover
from rundoctor.readers import files, streams
from rundoctor.series import NoteKind
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_logs"
CSV = "step,loss\n" + "".join(f"{step},{1 / (step + 1):.6f}\n" for step in range(2000))


def _gzipped_log(path: Path) -> bool:
    """The logs of the samples (side files such as hparams.yaml and MLflow's stores stay plain)."""
    return "mlruns" not in path.parts and (path.suffix in (".csv", ".jsonl", ".json", ".log") or "tfevents" in path.name)


def test_gzipped_samples_give_the_report_of_the_plain_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(SAMPLES, tmp_path / "sample_logs")
    squeezed = 0
    for path in sorted((tmp_path / "sample_logs").rglob("*")):
        if path.is_file() and _gzipped_log(path):
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
            squeezed += 1
    assert squeezed > 20
    monkeypatch.chdir(REPO)
    plain_code, plain, _ = run_cli(monkeypatch, capsys, "check", "sample_logs", "--format", "json")
    monkeypatch.chdir(tmp_path)
    code, report, err = run_cli(monkeypatch, capsys, "check", "sample_logs", "--format", "json")
    assert (code, err) == (plain_code, "")
    assert report.count(".gz") > 20
    assert report.replace(".gz", "") == plain


def _read_one(path: Path) -> tuple[int, list[tuple[str, str, str | None]]]:
    runs, errors = discover.load_runs([path])
    assert not errors and len(runs) == 1
    return runs[0].points, [(note.kind.value, note.message, note.location) for note in runs[0].notes]


def test_a_gzipped_csv_is_read_whole_without_a_note(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    assert _read_one(tmp_path / "metrics.csv.gz") == (2000, [])


def test_concatenated_gzip_members_are_read_on(tmp_path: Path) -> None:
    lines = CSV.encode().splitlines(keepends=True)
    half = len(lines) // 2
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(b"".join(lines[:half])) + gzip.compress(b"".join(lines[half:])))
    assert _read_one(path) == (2000, [])


def test_a_cut_gzip_file_reads_what_is_there_and_says_so(tmp_path: Path) -> None:
    packed = gzip.compress(CSV.encode())
    path = tmp_path / "metrics.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    points, notes = _read_one(path)
    assert 100 < points < 2000
    assert any(kind == "truncated" and "ends early" in message and location and location.startswith("decompressed byte")
               for kind, message, location in notes)


def test_corrupt_gzip_data_stops_with_a_note(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(CSV.encode()))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = bytes(64)
    path = tmp_path / "metrics.csv.gz"
    path.write_bytes(bytes(packed))
    points, notes = _read_one(path)
    assert points > 100  # what came before the damage
    assert any(kind == "truncated" and "corrupt compressed data" in message for kind, message, _ in notes)


def test_a_gz_name_on_plain_bytes_is_read_as_is(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv.gz").write_text(CSV)
    assert _read_one(tmp_path / "metrics.csv.gz") == (2000, [])


def test_decompression_stops_at_the_bound_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "MAX_INFLATED_BYTES", len(CSV) // 2)
    (tmp_path / "metrics.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    points, notes = _read_one(tmp_path / "metrics.csv.gz")
    assert 900 < points < 1100
    assert [kind for kind, message, _ in notes if "the most read of a .gz file" in message] == ["truncated"]
    monkeypatch.setattr(streams, "MAX_INFLATED_BYTES", len(CSV))  # near miss: exactly the bound
    assert _read_one(tmp_path / "metrics.csv.gz") == (2000, [])


def test_a_decompression_bomb_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """256 MiB of one line inflated from ~250 KB: streamed, the line skipped, never held."""
    bomb = tmp_path / "metrics.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"step,loss\n0,1.0\n1,0.5\n")
        block = b"7" * (1 << 20)
        for _ in range(256):
            out.write(block)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        points, notes = _read_one(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert points == 2  # the rows before the bomb's one line, which is skipped
    assert any("longer than" in message or "long" in message for _, message, _ in notes)
    assert peak < 64 << 20


def test_a_seek_back_in_a_gzipped_file_decompresses_again(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(CSV.encode()))
    with files.open_binary(path, unbuffered=True) as handle:
        assert handle.read(10) == CSV.encode()[:10]
        handle.seek(5)
        assert handle.read(5) == CSV.encode()[5:10]
        handle.seek(1000)
        assert handle.read(4) == CSV.encode()[1000:1004]


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin_is_read_as_one_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = SAMPLES / "problems" / "loss_magnitude.csv"
    monkeypatch.chdir(SAMPLES / "problems")
    file_code, from_file, _ = run_cli(monkeypatch, capsys, "check", log.name, "--format", "json")
    monkeypatch.setattr(sys, "stdin", _Stdin(log.read_bytes()))
    code, from_stdin, err = run_cli(monkeypatch, capsys, "check", "-", "--format", "json")
    assert (code, err) == (file_code, "")
    assert json.loads(from_file)["findings"]
    report = json.loads(from_stdin)
    assert [run["id"] for run in report["runs"]] == ["<stdin>"]
    assert from_stdin.replace("<stdin>", log.name) == from_file
    monkeypatch.setattr(sys, "stdin", _Stdin(gzip.compress(log.read_bytes())))  # gzipped: the same
    assert run_cli(monkeypatch, capsys, "check", "-", "--format", "json")[1] == from_stdin


def test_empty_stdin_is_unreadable_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b""))
    code, _, err = run_cli(monkeypatch, capsys, "check", "-")
    assert code == 2
    assert "<stdin>: empty file" in err


def test_stdin_past_its_bound_is_cut_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "STDIN_MAX_BYTES", len(CSV) // 2)
    monkeypatch.setattr(sys, "stdin", _Stdin(CSV.encode()))
    runs, errors = discover.load_runs([Path("-")])
    assert not errors and [run.id for run in runs] == ["<stdin>"]
    assert 900 < runs[0].points < 1100
    notes = [note for note in runs[0].notes if note.kind is NoteKind.SKIPPED]
    assert [note.source for note in notes] == ["<stdin>"] and "standard input held more than" in notes[0].message
