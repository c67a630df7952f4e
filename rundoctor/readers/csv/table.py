"""The table: every cell of a CSV file as a number (or not), with its file line."""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rundoctor.readers import files
from rundoctor.readers.base import UnreadableInput
from rundoctor.readers.csv.header import (
    _BOOLEANS,
    _HEADER_LIMIT,
    _SNIFF_BYTES,
    MISSING_TOKENS,
    _binary_reason,
    _Header,
    _header_bytes,
    _header_start,
    _is_blank,
    _normalise,
    _parse_header,
)
from rundoctor.readers.csv.scan import _ByteShape
from rundoctor.readers.files import LongLine
from rundoctor.readers.text import LINE_END, line_list, long_line_note, undecodable_line
from rundoctor.series import NoteKind, ReadNote

if TYPE_CHECKING:  # pandas is imported where it is used: listing event files must not pay for it
    import pandas as pd


def _float_options() -> dict[str, Any]:
    """pandas 3.1 parses floats exactly like float() and deprecates the option; older pandas
    needs the round-trip converter for that (its default can be off by one ulp)."""
    import pandas as pd

    major, minor = (re.match(r"\d+", part) for part in pd.__version__.split(".")[:2])
    version = (int(major.group()) if major else 0, int(minor.group()) if minor else 0)
    return {} if version >= (3, 1) else {"float_precision": "round_trip"}


# --------------------------------------------------------------------------------------------
# The table: every cell of the file as a number (or not), with its file line
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A parsed CSV file as columns of numbers, one float64 and one bool array per column.

    ``numeric`` says a cell held a number (a logged NaN included); ``values`` is NaN wherever
    it did not.  A float column is pandas' own array, not a copy.  ``texts`` holds the raw
    cells of the columns asked for as text (missing cells as "").
    """

    path: Path
    names: list[str]  # header names, stripped; a duplicate renamed "name.1"; "" if unnamed
    values: list[np.ndarray]
    numeric: list[np.ndarray]
    lines: np.ndarray  # int64, the 1-based file line of each row
    texts: dict[int, np.ndarray]
    notes: list[ReadNote]
    header_line: int = 1  # after blank lines, when the file starts with some

    @property
    def rows(self) -> int:
        return int(self.lines.size)

    def note(self, kind: NoteKind, message: str, lines: Sequence[int] | np.ndarray = (),
             count: int | None = None) -> None:
        self.notes.append(_note(self.path, kind, message, lines, count))


def _note(
    path: Path, kind: NoteKind, message: str, lines: Sequence[int] | np.ndarray = (), count: int | None = None
) -> ReadNote:
    location = f"line {int(lines[0])}" if len(lines) else None
    return ReadNote(kind, str(path), message, location, count)


def _unique_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names made unique the way pandas does (``loss``, ``loss.1``), and the repeated ones."""
    taken = set(names)
    seen: set[str] = set()
    unique, repeated = [], []
    for name in names:
        if name and name in seen:
            repeated.append(name)
            suffix = 1
            while f"{name}.{suffix}" in taken:
                suffix += 1
            name = f"{name}.{suffix}"
            taken.add(name)
        seen.add(name)
        unique.append(name)
    return unique, repeated


def _read_head(path: Path) -> tuple[bytes, bytes, int]:
    """The first 64 KiB (to tell text from binary), the header line and its line number."""
    try:
        with files.open_binary(path) as handle:
            head = handle.read(_SNIFF_BYTES)
            start, line = _header_start(head)
            if LINE_END.search(head, start):
                return head, _header_bytes(head), line
            return head, LINE_END.split(head[start:] + handle.readline(_HEADER_LIMIT), 1)[0], line
    except OSError as error:
        raise UnreadableInput(f"cannot open {path}: {error.strerror or error}") from error


def _read_table(path: Path, *, padded: bool = False, text_columns: Sequence[str] = ()) -> _Table:
    """Parse a CSV file into a :class:`_Table`; raise UnreadableInput only for no text at all.

    ``padded`` skips the spaces after each comma (Ultralytics pads every cell);
    ``text_columns`` (normalised names) are kept as raw text instead of numbers.
    """
    head, first_line, header_line = _read_head(path)
    if _is_blank(head):
        raise UnreadableInput("the file is empty" if not head else "the file holds only blank lines, no header")
    reason = _binary_reason(head)
    if reason is not None:
        raise UnreadableInput(reason)
    header = _parse_header(first_line)
    names, repeated = _unique_names(header.names)
    text_positions = [i for i, name in enumerate(names) if _normalise(name) in text_columns]
    notes: list[ReadNote] = []
    if repeated:
        notes.append(_note(path, NoteKind.INFO,
                           f"repeated column names kept as name.1, name.2, ...: {', '.join(sorted(set(repeated)))}",
                           [header_line], len(repeated)))
    # pandas takes the first line for the header: blank lines before it need the line path.
    table = _fast_table(path, header, names, text_positions, padded, notes) if header_line == 1 else None
    if table is None:
        table = replace(_line_table(path, names, text_positions, padded, notes, header_line), header_line=header_line)
    for position, name in enumerate(names):
        if not name and bool(table.numeric[position].any()):
            table.note(NoteKind.SKIPPED, f"column {position + 1} has no name (a written row index?); skipped",
                       [header_line], int(table.numeric[position].sum()))
    if table.rows == 0:
        table.note(NoteKind.INFO, "the file has a header but no data rows", [header_line], 0)
    return table


def _fast_table(
    path: Path, header: _Header, names: list[str], text_positions: list[int], padded: bool, notes: list[ReadNote]
) -> _Table | None:
    """The whole file through pandas' C engine; None when its structure needs the line path."""
    import pandas as pd
    try:
        try:
            frame = _pandas_frame(path, len(names), text_positions, padded, "strict", notes)
        except UnicodeDecodeError:
            _add_decoding_note(path, notes)
            frame = _pandas_frame(path, len(names), text_positions, padded, "replace", notes)
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    shape = _ByteShape.of(path, len(names) - 1)
    if shape.uneven or shape.nul:
        return None
    rows = len(frame)
    cut_fields = shape.cut_last_line_fields(len(names)) if rows else None
    expected_commas = header.raw_commas + rows * (len(names) - 1)
    if cut_fields is not None:
        expected_commas -= len(names) - cut_fields
    # Every row has one comma fewer than it has fields, so the total is exact for a clean file.
    # No row has more (pandas raises for a long row after a first row that is not long), so an
    # exact total also means no row has fewer.  Rows must also be lines, or the line numbers in
    # notes would drift.
    if shape.commas != expected_commas or shape.lines not in (None, rows + 1):
        return None
    lines = np.arange(2, rows + 2, dtype=np.int64)
    columns = [_frame_column(frame.iloc[:, position]) for position in range(len(names))]
    # The cut field of a half-written last line, and the fields never written after it.
    blank = None if cut_fields is None else (rows - 1, cut_fields - 1)
    table = _table_from_cells(path, names, columns, pd.isna, lines, text_positions, notes, blank)
    if cut_fields is not None:
        _note_cut_line(table, int(lines[-1]), cut_fields)
    return table


def _frame_column(column: pd.Series) -> np.ndarray:
    """A parsed column as float64 (pandas' own array when it found floats), else objects."""
    cells: np.ndarray
    if column.dtype == np.float64:
        cells = column.to_numpy()
    elif column.dtype.kind in "iub":
        cells = column.to_numpy(dtype=np.float64)
    else:
        cells = column.to_numpy(dtype=object)
    return cells


def _pandas_frame(
    path: Path, columns: int, text_positions: list[int], padded: bool, errors: str, notes: list[ReadNote]
) -> pd.DataFrame:
    """One parse, types inferred per column (per chunk of rows for a big file, read in parallel).

    A column is float64 unless a cell is no float (a logged nan, junk, text); such a column
    or chunk comes back as text, mixed with floats when chunks disagree.  A line over the
    bound comes as an empty row, which sends the file to the line path (its comma count
    differs), and is noted.
    """
    import pandas as pd
    texts = {f"c{position}": object for position in text_positions}
    with warnings.catch_warnings():
        # Chunks that disagree on a column's type are expected and handled (DtypeWarning).  A
        # first row longer than the header makes pandas drop fields with a warning; the byte
        # count in _fast_table sees that row and sends the file to the line path.
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        with files.open_lines(path) as handle:
            frame = pd.read_csv(
                handle,
                header=0,
                names=[f"c{position}" for position in range(columns)],
                index_col=False,
                dtype=texts or None,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
                skipinitialspace=padded,
                encoding="utf-8",
                encoding_errors=errors,
                **_float_options(),
            )
            _note_long_lines(path, files.long_lines_of(handle), notes)
            return frame


def _note_long_lines(path: Path, long_lines: list[LongLine], notes: list[ReadNote]) -> None:
    """Say which lines were skipped for their length (once, whichever path met them first)."""
    note = long_line_note(str(path), long_lines)
    if note is not None and note not in notes:
        notes.append(note)


def _add_decoding_note(path: Path, notes: list[ReadNote]) -> None:
    """Say where the first byte that is not UTF-8 sits (once, whichever path met it first)."""
    line = undecodable_line(files.read_lines_bytes(path)[0])
    if line is None:
        return
    note = _note(path, NoteKind.CORRUPT,
                 f"bytes that are not UTF-8 (first on line {line}) were read as replacement characters", [line])
    if note not in notes:
        notes.append(note)


def _note_cut_line(table: _Table, line: int, fields: int) -> None:
    kept = max(fields - 1, 0)
    table.note(NoteKind.TRUNCATED,
               f"the last line was cut while being written ({fields} of {len(table.names)} fields, no line end); "
               f"its cut field was dropped, {kept} complete field(s) kept", [line], 1)


def _line_table(
    path: Path, names: list[str], text_positions: list[int], padded: bool, notes: list[ReadNote], header_line: int
) -> _Table:
    """The line-by-line path: every line after the header split on its own, bad lines reported by number."""
    data, long_lines = files.read_lines_bytes(path)
    _note_long_lines(path, long_lines, notes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _add_decoding_note(path, notes)
        text = data.decode("utf-8", errors="replace")
    physical = re.split(LINE_END.pattern.decode(), text)
    unterminated = physical[-1] != ""
    if not unterminated:
        physical.pop()
    columns = len(names)
    rows: list[list[str]] = []
    lines: list[int] = []
    short, long_used, long_skipped, nul = [], [], [], []
    cut: tuple[int, int] | None = None
    last = len(physical)
    for line, raw in enumerate(physical[header_line:], start=header_line + 1):
        if not raw.strip():
            continue
        if "\x00" in raw:
            nul.append(line)
            continue
        try:
            cells = [cell.strip() for cell in next(csv.reader([raw], skipinitialspace=padded))]
        except csv.Error:
            cells = [cell.strip() for cell in raw.split(",")]
        if len(cells) < columns:
            if line == last and unterminated:
                cut = (line, len(cells))
                cells = cells[:-1]
            else:
                short.append(line)
            cells += [""] * (columns - len(cells))
        elif len(cells) > columns:
            if any(cells[columns:]):
                long_skipped.append(line)
                continue
            long_used.append(line)
            cells = cells[:columns]
        rows.append(cells)
        lines.append(line)
    for bad, message in (
        (short, "fewer fields than the header; read from the left, the missing ones empty"),
        (long_used, "more fields than the header, the extra ones empty; read without them"),
        (long_skipped, "more fields than the header; skipped (which field is extra is unknown)"),
        (nul, "NUL bytes (what a crash leaves behind); skipped"),
    ):
        if bad:
            count = len(bad)
            notes.append(_note(path, NoteKind.CORRUPT, f"{count} row(s) with {message} ({line_list(bad)})", bad, count))
    grid = np.array(rows, dtype=object).reshape(len(rows), columns)
    cell_columns = [np.ascontiguousarray(grid[:, position]) for position in range(columns)]
    table = _table_from_cells(path, names, cell_columns, _is_missing_token, np.array(lines, dtype=np.int64),
                              text_positions, notes)
    if cut is not None:
        _note_cut_line(table, *cut)
    return table


def _is_missing_token(cells: np.ndarray) -> np.ndarray:
    missing = np.zeros(cells.size, dtype=bool)
    for token in MISSING_TOKENS:
        missing |= cells == token
    return missing


def _table_from_cells(
    path: Path,
    names: list[str],
    columns: list[np.ndarray],
    is_missing: Callable[[np.ndarray], np.ndarray],
    lines: np.ndarray,
    text_positions: list[int],
    notes: list[ReadNote],
    blank: tuple[int, int] | None = None,
) -> _Table:
    """Columns of cells to numbers, one note per column with junk in it.

    ``blank`` (row, first column): cells of that row from that column on count as missing.
    """
    values: list[np.ndarray] = []
    numeric: list[np.ndarray] = []
    texts: dict[int, np.ndarray] = {}
    table = _Table(path, names, values, numeric, lines, texts, notes)
    for position, cells in enumerate(columns):
        if cells.dtype == np.float64:
            held = cells == cells  # NaN, the one value unequal to itself, is an empty cell here
            if blank is not None and position >= blank[1]:
                held[blank[0]] = False
            values.append(cells)
            numeric.append(held)
            continue
        missing = np.asarray(is_missing(cells), dtype=bool)
        if blank is not None and position >= blank[1]:
            missing[blank[0]] = True
        if position in text_positions:
            texts[position] = np.where(missing, "", cells).astype(object)
            values.append(np.full(cells.size, np.nan))
            numeric.append(np.zeros(cells.size, dtype=bool))
            continue
        column_values, column_numeric, junk = _numbers(cells, missing)
        values.append(column_values)
        numeric.append(column_numeric)
        if junk.any():
            _note_junk(table, names[position] or f"column {position + 1}", lines[junk], bool(column_numeric.any()))
    return table


def _numbers(cells: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells (str or float objects) as float64 the way Python's float() reads them.

    Returns the values (NaN where no number), a mask of cells holding a number and a mask of
    junk cells.  numpy's object-to-float cast calls float() on each cell in C; only a column
    with junk in it is walked in Python, to find which cells are junk.
    """
    values = np.full(cells.size, np.nan)
    present = np.flatnonzero(~missing)
    try:
        values[present] = cells[present].astype(np.float64)
        numeric = ~missing
        junk = np.zeros(cells.size, dtype=bool)
    except (ValueError, TypeError):
        numeric = np.zeros(cells.size, dtype=bool)
        junk = np.zeros(cells.size, dtype=bool)
        for index in present.tolist():
            cell = cells[index]
            text = cell.strip() if isinstance(cell, str) else cell
            if text in MISSING_TOKENS:
                continue
            try:
                word = text.lower() if isinstance(text, str) else None
                values[index] = _BOOLEANS[word] if word in _BOOLEANS else float(text)
                numeric[index] = True
            except (ValueError, TypeError):
                junk[index] = True
    return values, numeric, junk


def _note_junk(table: _Table, name: str, lines: np.ndarray, has_numbers: bool) -> None:
    count = int(lines.size)
    if has_numbers:
        message = f"column '{name}': {count} cell(s) are not numbers ({line_list(lines)}); dropped"
        table.note(NoteKind.CORRUPT, message, lines, count)
    else:
        message = f"column '{name}' holds text, not numbers ({line_list(lines)}); skipped"
        table.note(NoteKind.SKIPPED, message, lines, count)
