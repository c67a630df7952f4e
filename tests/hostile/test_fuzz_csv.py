"""Hostile CSV logs of every flavour: junk cells, cut lines, stray bytes; never a crash, never a
lost row.

Each example writes a small log of one flavour from hypothesis-drawn rows (any floats, NaN and
infinities included, empty and ``NA`` cells, any integer steps), damages it once or twice
(a junk cell, a dropped or added field, a blank line, a BOM, CRLF line ends, latin-1 bytes, the
header written again, a line written twice, or bytes cut, flipped, inserted, deleted or
duplicated), reads it with the flavour's reader and checks:

1. only :class:`UnreadableInput` escapes, and never while the header line is intact;
2. every row on a line before the first damaged line is read, exactly (each point's tag,
   step and value bits, each tag in log order);
3. the first damaged line is reported by its number when it is unreadable as a row (not
   UTF-8, too few or too many fields, a cell that is no number, a row that loses its points
   for want of a step, a line cut at the end of the file);
4. damage that changes nothing a CSV means (a BOM at the start, CRLF line ends, blank lines,
   a complete last line without a line end) reads exactly as the undamaged file, without
   damage notes.

Line numbers are counted as the reader counts them: CR, LF and CR LF each end a line.

Classes of input that once crashed a reader or lost rows are also tested on their own, below,
by a fuzz test of that class and a minimal case: the general test meets them too rarely.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.csv import READERS
from rundoctor.series import NoteKind, Run
from tests.hostile.corpus import (
    BOM,
    BYTE_KINDS,
    LINE_KINDS,
    FieldCodec,
    Point,
    assert_consistent,
    assert_same_points,
    assert_tag_prefixes,
    fuzz_settings,
    notes_about,
    point,
    text_damage,
)

READER = {reader.name: reader for reader in READERS}
CODEC = FieldCodec(split=lambda line: line.split(b","), join=b",".join)
JUNK = [b"oops", b"1.2.3", b"#N/A", b"0x1p3", b"--", b"1e", b"n/a", b"\xe2\x80\x94", b'"a,b"', b'"cut']
EXTRA = [b"7.5", b"", b"nan", b"x"]
# Column names as loggers write them; none is an axis, wall-time or long-layout name.
TAG_NAMES = ["loss", "val_loss", "acc", "val_acc", "lr", "train/box_loss", "metrics/mAP50(B)", "grad_norm",
             "top5-err", "\u03bc_metric"]
VALUES = st.floats()
STEPS = st.integers(-(2**20), 2**53)
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class CsvLog:
    """A generated log: its bytes, its header and what each data line holds."""

    name: str
    data: bytes
    header: tuple[str, ...]
    axis: int  # the step column
    text_columns: frozenset[int]  # tag and wall-time columns: any text is fine there
    rows: tuple[tuple[Point, ...], ...]  # the points of each data line, line 2 first
    padded: bool = False


def cell(value: float | None, missing: str = "") -> str:
    return missing if value is None else repr(value)


def render(header: list[str], rows: list[list[str]], padded: bool) -> bytes:
    if padded:  # Ultralytics right-aligns every cell
        header, rows = [f"{name:>20}" for name in header], [[f"{c:>20}" for c in row] for row in rows]
    return "".join(",".join(line) + "\n" for line in [header, *rows]).encode()


LONG_TAG_COLUMNS = ("tag", "name", "metric", "key")
FILE_NAMES = {"lightning-csv": "metrics.csv", "keras-csv": "training.log", "ultralytics-csv": "results.csv",
              "wide-csv": "log.csv", "long-csv": "scalars.csv"}


@st.composite
def csv_logs(draw: st.DrawFn, flavour: str) -> CsvLog:
    """Up to eight rows of one flavour.  Which cells of a row are empty is one draw (a bit
    mask), not one per cell: drawing is most of an example's cost."""
    names = TAG_NAMES if flavour != "keras-csv" else [name for name in TAG_NAMES if "/" not in name]
    tags = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    wall = flavour in ("wide-csv", "long-csv") and draw(st.booleans())
    if flavour == "long-csv":
        header = ["step", draw(st.sampled_from(LONG_TAG_COLUMNS)), "value"]
    elif flavour == "lightning-csv":
        header = ["epoch", "step"]
    elif flavour == "wide-csv":
        header = ["step"] + (["epoch"] if draw(st.booleans()) else [])
    else:
        header = ["epoch"]
    header += ["wall_time"] if wall else []
    axis, others = header.index("step") if "step" in header else 0, len(header)
    if flavour != "long-csv":
        header += sorted(tags) if flavour == "keras-csv" else tags
    missing = "NA" if flavour == "keras-csv" else ""
    rows: list[list[str]] = []
    points: list[tuple[Point, ...]] = []
    for index in range(draw(st.integers(0, 8))):
        step = draw(STEPS)
        epoch = step if axis == 0 else index // 3  # the step, or an epoch column beside the step
        fixed = {"step": str(step), "epoch": str(epoch), "wall_time": repr(1.7e9 + index)}
        row = [fixed.get(name, "") for name in header[:others]]
        if flavour == "long-csv":
            tag, value = draw(st.sampled_from(tags)), draw(st.none() | VALUES)
            row[1:3] = [tag, cell(value)]
            points.append(() if value is None else (point(tag, step, value),))
        else:
            present = draw(st.integers(0, 2 ** len(tags) - 1)) if flavour != "ultralytics-csv" else -1
            values = [draw(VALUES) if present >> position & 1 else None for position in range(len(tags))]
            row += [cell(value, missing) for value in values]
            named = zip(header[others:], values, strict=True)
            points.append(tuple(point(tag, step, value) for tag, value in named if value is not None))
        rows.append(row)
    text_columns = frozenset(i for i, name in enumerate(header) if name in ("wall_time", *LONG_TAG_COLUMNS))
    padded = flavour == "ultralytics-csv"
    data = render(header, rows, padded)
    return CsvLog(FILE_NAMES[flavour], data, tuple(header), axis, text_columns, tuple(points), padded)


# ---------------------------------------------------------------------------------------------
# What the damaged bytes say, line by line
# ---------------------------------------------------------------------------------------------


def lines_of(data: bytes) -> list[bytes]:
    """The file's lines as the reader splits them (CR, LF and CR LF end a line)."""
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def meaning(data: bytes) -> list[bytes]:
    """What a CSV says, without what does not matter: a BOM at the start, line ends, blank lines.
    A last line without a line end counts whatever it holds: it may be a padded row, cut."""
    lines = lines_of(data.removeprefix(BOM))
    cut = lines[-1:] if lines and not data.endswith((b"\n", b"\r")) else []
    return [line for line in lines[: len(lines) - len(cut)] if line.strip()] + cut


def first_damaged_line(original: bytes, damaged: bytes) -> int | None:
    """The 1-based number of the first line that differs, None when all lines are equal."""
    before, after = lines_of(original), lines_of(damaged)
    for number, (old, new) in enumerate(zip(before, after, strict=False), start=1):
        if old != new:
            return number
    return None if len(before) == len(after) else min(len(before), len(after)) + 1


_BOOLEANS = {"true": 1.0, "false": 0.0}


def _number(text: str) -> float | None:
    """A cell's number as the reader reads it (true and false are 1 and 0); None when empty.
    Raises ValueError for a cell that is no number."""
    if text in ("", "NA"):
        return None
    return _BOOLEANS.get(text.lower()) if text.lower() in _BOOLEANS else float(text)


def _is_number(text: str) -> bool:
    try:
        _number(text)
    except ValueError:
        return False
    return True


def cells_of(log: CsvLog, text: str) -> list[str]:
    """A line's cells as the line-by-line path splits them."""
    try:
        return [c.strip() for c in next(csv.reader([text], skipinitialspace=log.padded))]
    except csv.Error:
        return [c.strip() for c in text.split(",")]


def unreadable_row(log: CsvLog, raw: bytes, *, cut: bool) -> str | None:
    """Why a damaged data line cannot be read as a row (a reader must say so), or None.

    ``cut``: it is the last line and has no line end.  A cut line that still has all its
    fields cannot be told from a complete one, and a fractional step is a number (the reader
    then numbers rows itself and says so).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text.strip():
        return None
    cells = cells_of(log, text)
    if len(cells) != len(log.header):
        return "cut short" if cut and len(cells) < len(log.header) else "wrong number of fields"
    numeric = [position for position, c in enumerate(cells) if position not in log.text_columns and c not in ("", "NA")]
    if any(not _is_number(cells[position]) for position in numeric):
        return "a cell that is no number"
    step = _number(cells[log.axis])
    usable = step is not None and math.isfinite(step) and abs(step) <= 2.0**53  # whole, or all rows renumbered
    if not usable and any(position != log.axis for position in numeric):
        return "a row with points but no usable step"
    if log.name == "scalars.csv" and usable and not cells[1] and cells[2] not in ("", "NA"):
        return "a value without a tag"
    return None


def renumbered(run: Run, log: CsvLog, damaged: bytes) -> bool:
    """Whether the reader numbered rows itself, which it must do only when a step is fractional."""
    said = any(note.kind is NoteKind.INFO and "cannot be the step" in note.message for note in run.notes)
    if said:
        assert any(_fractional_step(log, line) for line in lines_of(damaged)[1:]), "rows renumbered for no reason"
    return said


def _fractional_step(log: CsvLog, raw: bytes) -> bool:
    cells = cells_of(log, raw.decode("utf-8", "replace"))
    try:
        step = _number(cells[log.axis]) if len(cells) > log.axis else None
    except ValueError:
        return False
    return step is not None and math.isfinite(step) and abs(step) <= 2.0**53 and step != math.floor(step)


FLAVOURS = ("lightning-csv", "keras-csv", "ultralytics-csv", "wide-csv", "long-csv")


@pytest.mark.parametrize("flavour", FLAVOURS)
@fuzz_settings(examples=420)
@given(case=st.data())
def test_damaged_csv_log(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(csv_logs(flavour), label="log")
    _, damaged = case.draw(text_damage(log.data, CODEC, BYTE_KINDS + LINE_KINDS, JUNK, EXTRA), label="damage")
    path = tmp_path / log.name
    path.write_bytes(damaged)
    first = first_damaged_line(log.data, damaged)
    every_point = [p for row in log.rows for p in row]

    # 1. Only UnreadableInput escapes, and only when the header itself is damaged.
    try:
        run = READER[flavour].read_file(path)
    except UnreadableInput as error:
        assert str(error)
        assert first == 1, f"the header is intact, yet nothing was read: {error}"
        return
    assert_consistent(run, format=flavour, source=path, lines=max(len(lines_of(damaged)), 1))

    # 4. Damage that means nothing to a CSV changes nothing.
    if meaning(damaged) == meaning(log.data):
        assert_same_points(run, every_point)
        assert notes_about(run, path) == [], "an intact file reported as damaged"
        return
    assert first is not None
    if first == 1:
        return  # a damaged header: what the columns are is anybody's guess

    # 2. Every row before the first damaged line, exactly.
    before = [p for row in log.rows[: first - 2] for p in row]
    assert_tag_prefixes(run, before, steps=not renumbered(run, log, damaged))

    # 3. The first damaged line reported by its number when it cannot be read as a row.
    lines = lines_of(damaged)
    if first <= len(lines):
        cut = first == len(lines) and not damaged.endswith((b"\n", b"\r"))
        why = unreadable_row(log, lines[first - 1], cut=cut)
        if why is not None:
            located = [note for note in run.notes if note.source == str(path) and note.location == f"line {first}"]
            assert located, f"line {first} ({why}) is not reported: {run.notes}"


# ---------------------------------------------------------------------------------------------
# Classes of input that once crashed a reader or lost rows: a fuzz test and a minimal case each.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
@fuzz_settings(examples=40)
@given(case=st.data())
def test_nul_bytes_after_the_header_keep_the_rows_before(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(csv_logs(flavour), label="log")
    header_end = log.data.index(b"\n") + 1
    at = case.draw(st.integers(header_end, len(log.data)), label="offset")
    damaged = log.data[:at] + case.draw(st.binary(min_size=1, max_size=16), label="bytes") + b"\x00" + log.data[at:]
    path = tmp_path / log.name
    path.write_bytes(damaged)
    run = READER[flavour].read_file(path)
    first = first_damaged_line(log.data, damaged)
    assert first is not None
    before = [p for row in log.rows[: first - 2] for p in row]
    assert_tag_prefixes(run, before, steps=not renumbered(run, log, damaged))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_tail_of_nul_bytes_keeps_the_rows_before(tmp_path: Path, flavour: str) -> None:
    header = b"step,tag,value\n" if flavour == "long-csv" else b"step,epoch,loss\n"
    rows = b"0,loss,0.5\n1,loss,0.4\n" if flavour == "long-csv" else b"0,0,0.5\n1,0,0.4\n"
    path = tmp_path / "log.csv"
    path.write_bytes(header + rows + b"\x00" * 32)  # what a crash leaves on many file systems

    run = READER[flavour].read_file(path)

    assert run.curve("loss").values.tolist() == [0.5, 0.4]
    assert any(note.location == "line 4" for note in notes_about(run, path))


@pytest.mark.parametrize("flavour", FLAVOURS)
@fuzz_settings(examples=10)
@given(case=st.data())
def test_blank_lines_before_the_header_are_no_crash(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(csv_logs(flavour), label="log")
    before = case.draw(st.sampled_from([b"", BOM]), label="BOM") + case.draw(
        st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=3).map(b"".join), label="line ends")
    path = tmp_path / log.name
    path.write_bytes(before + case.draw(st.sampled_from([b"", log.data]), label="the log after them"))
    try:
        run = READER[flavour].read_file(path)
    except UnreadableInput as error:
        assert str(error)
    else:
        assert_consistent(run, format=flavour, source=path, lines=len(lines_of(path.read_bytes())))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("data", [BOM, BOM + b"\r\n", b"\n\nstep,epoch,loss\n0,0,0.5\n"])
def test_a_blank_first_line_is_no_crash(tmp_path: Path, flavour: str, data: bytes) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(data)
    try:
        run = READER[flavour].read_file(path)
    except UnreadableInput as error:
        assert str(error)
    else:
        assert run.curve("loss").values.tolist() in ([], [0.5])


@pytest.mark.parametrize("flavour", FLAVOURS)
@fuzz_settings(examples=20)
@given(case=st.data())
def test_rows_that_trade_a_field_are_reported(tmp_path: Path, flavour: str, case: st.DataObject) -> None:
    log = case.draw(csv_logs(flavour).filter(lambda log: len(log.rows) >= 2), label="log")
    lines = log.data.split(b"\n")
    longer, shorter = case.draw(st.permutations(range(1, len(log.rows) + 1)), label="rows")[:2]
    lines[longer] += b",7.5"
    lines[shorter] = lines[shorter].rpartition(b",")[0]
    path = tmp_path / log.name
    path.write_bytes(b"\n".join(lines))
    run = READER[flavour].read_file(path)
    reported = {note.location for note in notes_about(run, path)}
    assert {f"line {longer + 1}", f"line {shorter + 1}"} <= reported, run.notes


def test_a_row_with_a_field_too_many_and_one_with_a_field_too_few(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"step,loss,acc\n0,0.5,0.1,7\n1,0.4\n2,0.3,0.2\n")

    run = READER["wide-csv"].read_file(path)

    assert {note.location for note in notes_about(run, path)} >= {"line 2", "line 3"}
