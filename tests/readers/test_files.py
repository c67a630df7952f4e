"""The file access layer: only regular files opened, reads stopped at the size at open, and
text read with a bound on each line (a line over it left out, its line end kept)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rundoctor.readers import files
from tests.hostile.bounds import no_hang, requires_fifo
from tests.hostile.corpus import fuzz_settings

# ---------------------------------------------------------------------------------------------
# Only regular files are opened
# ---------------------------------------------------------------------------------------------


@requires_fifo
def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "metrics.csv"
    os.mkfifo(fifo)
    with no_hang(), pytest.raises(files.NotRegularFile, match="a FIFO, not a regular file: not opened"):
        files.open_binary(fifo)


@requires_fifo
def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before the open passes (as for a regular file replaced by a FIFO in between):
    the non-blocking open returns at once and the descriptor's own status stops the read."""
    fifo = tmp_path / "metrics.csv"
    os.mkfifo(fifo)
    real_kind_of = files.kind_of
    checks: list[int] = []

    def first_check_passes(mode: int) -> str | None:
        checks.append(mode)
        return None if len(checks) == 1 else real_kind_of(mode)

    monkeypatch.setattr(files, "kind_of", first_check_passes)
    with no_hang(), pytest.raises(files.NotRegularFile, match="a FIFO"):
        files.open_binary(fifo)
    assert len(checks) == 2  # the path, then the open descriptor


def test_a_directory_and_a_device_are_not_opened(tmp_path: Path) -> None:
    with pytest.raises(files.NotRegularFile, match="a directory"):
        files.read_bytes(tmp_path)
    if Path("/dev/zero").exists():  # endless: a read of it would never end
        with no_hang(), pytest.raises(files.NotRegularFile, match="a character device"):
            files.read_bytes(Path("/dev/zero"))


def test_a_regular_file_opened_through_a_symlink_reads_normally(tmp_path: Path) -> None:
    target = tmp_path / "a.csv"
    target.write_bytes(b"step,loss\n0,1\n")
    (tmp_path / "b.csv").symlink_to(target)
    assert files.read_bytes(tmp_path / "b.csv") == b"step,loss\n0,1\n"
    assert files.read_head(tmp_path / "b.csv", 4) == b"step"


def test_files_below_never_lists_links_out_of_the_folder_or_what_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "loss").write_text("1 0.5 0\n", encoding="utf-8")
    (tmp_path / "secret").write_text("x\n", encoding="utf-8")
    (folder / "escape").symlink_to(tmp_path / "secret")
    (folder / "inside").symlink_to(folder / "loss")
    (folder / "loop").symlink_to(folder / "loop")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe")
    assert [path.name for path in files.files_below(folder)] == ["inside", "loss"]


# ---------------------------------------------------------------------------------------------
# Reads stop at the size the file had when opened
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("how", ["read", "readall", "readinto", "chunks"])
def test_bytes_appended_after_the_open_are_not_read(tmp_path: Path, unbuffered: bool, how: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"a" * 1000)
    with files.open_binary(path, unbuffered=unbuffered) as handle:
        with path.open("ab") as writer:
            writer.write(b"b" * 5000)
        if how == "read":
            got = handle.read()
        elif how == "readall":
            got = handle.readall() if isinstance(handle, io.FileIO) else handle.read(-1)
        elif how == "readinto":
            buffer = bytearray(8000)
            got = bytes(buffer[: handle.readinto(buffer)])
        else:
            got = b"".join(iter(lambda: handle.read(300), b""))
    assert got == b"a" * 1000


def test_a_file_cut_after_the_open_ends_where_it_was_cut(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"a" * 1000)
    with files.open_binary(path, unbuffered=True) as handle:
        assert handle.read(100) == b"a" * 100
        os.truncate(path, 400)
        assert handle.read() == b"a" * 300


# ---------------------------------------------------------------------------------------------
# Text read with a bound on each line
# ---------------------------------------------------------------------------------------------

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")


def _reference(data: bytes, max_line: int) -> tuple[bytes, list[tuple[int, int, int]]]:
    """What reading with the bound must give, line by line: every line longer than
    ``max_line`` emptied, its line end kept; and (number, offset, length) of each."""
    kept, long_lines = [], []
    for number, match in enumerate(_LINE.finditer(data), start=1):
        body, end = match.group(1), match.group(2)
        if not body and not end and match.start() == len(data):
            break
        if len(body) > max_line:
            long_lines.append((number, match.start(), len(body)))
        else:
            kept.append(body)
        kept.append(end)
        if not end:
            break
    return b"".join(kept), long_lines


_PIECES = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\r", b""])), max_size=14
)


@fuzz_settings(300)
@given(
    pieces=_PIECES,
    max_line=st.integers(2, 12),
    chunk_fraction=st.floats(0.0, 0.999),
    read_size=st.one_of(st.none(), st.integers(1, 9)),
)
def test_lines_over_the_bound_are_left_out_with_their_line_end_kept(
    tmp_path: Path, pieces: list[tuple[int, bytes]], max_line: int, chunk_fraction: float, read_size: int | None
) -> None:
    """Any line ends (LF, CR, CR LF, cut between chunks or not), any chunk size under the
    bound, read whole or in small pieces: the bytes are the file's with every over-long line
    emptied, and each such line is listed with its number, offset and length."""
    data = b"".join(b"x," * (length // 2) + b"y" * (length % 2) + end for length, end in pieces)
    path = tmp_path / "log.csv"
    path.write_bytes(data)
    chunk = 1 + int(chunk_fraction * (max_line - 1))
    raw = files.open_binary(path, unbuffered=True)
    assert isinstance(raw, files.SizedFile)
    with files.LineCappedFile(raw, max_line=max_line, chunk=chunk) as capped:
        if read_size is None:
            got = capped.readall()
        else:
            got = b"".join(iter(lambda: capped.read(read_size), b""))
        long_lines = [(line.line, line.offset, line.length) for line in capped.long_lines()]
    assert (got, long_lines) == _reference(data, max_line)


def test_a_gigantic_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    """64 MiB of NUL bytes with no line end (a sparse hole, as a crash leaves) between two
    short lines: read a chunk at a time, never held."""
    import tracemalloc

    path = tmp_path / "log.csv"
    path.write_bytes(b"step,loss\n0,1.0\n")
    with path.open("r+b") as handle:
        handle.truncate(16 + (64 << 20))
    with path.open("ab") as handle:
        handle.write(b"\n1,0.5\n")
    tracemalloc.start()
    try:
        data, long_lines = files.read_lines_bytes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data == b"step,loss\n0,1.0\n\n1,0.5\n"
    assert long_lines == [files.LongLine(3, 16, 64 << 20)]
    assert peak < files.MAX_LINE_BYTES + (8 << 20)


def test_a_chunk_must_be_shorter_than_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"x\n")
    raw = files.open_binary(path, unbuffered=True)
    assert isinstance(raw, files.SizedFile)
    with pytest.raises(ValueError, match="shorter"):
        files.LineCappedFile(raw, max_line=4, chunk=4)
    raw.close()
