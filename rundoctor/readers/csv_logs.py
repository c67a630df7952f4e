"""CSV training logs: one file is one run, in five flavours.

- ``lightning-csv``: PyTorch Lightning ``metrics.csv``; sparse rows (train-step, train-epoch and
  validation rows apart), a ``step`` and an ``epoch`` column; ``hparams.yaml`` beside it.
- ``ultralytics-csv``: YOLOv5 / Ultralytics 8.x ``results.csv``; cells padded with spaces, one
  row per epoch, epochs repeated after a resume.
- ``keras-csv``: Keras ``CSVLogger`` (``training.log``); ``epoch`` first, then the metric names
  sorted, ``NA`` for a metric missing in an epoch.
- ``wide-csv``: any CSV with a step, global_step, iteration, iter or epoch column.
- ``long-csv``: one point a row, columns (step, tag, value) and an optional wall time.

Every numeric cell becomes one point; an empty (or ``NA``) cell is no point, while ``nan`` and
``inf`` are kept as logged; ``true``/``false`` read as 1 and 0, as pandas reads them.  Points
are grouped by column, each column in file order.

How a file is read.  The fast path parses the whole file once with pandas' C engine and
turns each column into points with one mask, copied straight into the run's arrays.  It is
exact because pandas is told that only an empty cell is missing: a logged ``nan`` is then not a
float to the C parser, so its column (or that chunk of it) stays text, which :func:`_numbers`
converts with Python's own float semantics.  A NaN in a float column therefore always means
"empty cell", and a NaN that came from text always means "logged nan".  pandas silently pads
rows with too few fields, so the raw bytes are counted too (commas and line ends): when they do
not add up, when the first row has too many fields (pandas drops them, and then takes later rows
of that length too) or pandas meets a later row with too many fields, the file goes to the
line-by-line path, which finds and reports each bad line.  Blank lines before the header, and
NUL bytes after it, also take the line path.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np
import yaml

from rundoctor.readers.base import FileReader, UnreadableInput
from rundoctor.series import NoteKind, ReadNote, Run, RunBuilder, XAxis

if TYPE_CHECKING:  # pandas is imported where it is used: listing event files must not pay for it
    import pandas as pd

# Cells that mean "nothing logged here": empty, and Keras CSVLogger's placeholder for a
# metric that was missing in an epoch.  Everything else is a number or junk.
MISSING_TOKENS = ("", "NA")

# pandas' C parser reads a column of true/false (any case) as 1/0 when asked for floats; the
# other paths follow it, so a flag column reads the same whichever path a file takes.
_BOOLEANS = {"true": 1.0, "false": 0.0}

# Axis column names (normalised) in order of preference: a step counter beats an epoch.
AXIS_COLUMNS: dict[str, XAxis] = {
    "step": XAxis.STEP,
    "global_step": XAxis.STEP,
    "iteration": XAxis.ITERATION,
    "iter": XAxis.ITERATION,
    "epoch": XAxis.EPOCH,
}
WALL_TIME_COLUMNS = ("wall_time", "walltime", "timestamp", "_timestamp")
LONG_TAG_COLUMNS = ("tag", "name", "metric", "key")

_BOM = b"\xef\xbb\xbf"
# What ends a line, for the line path and every line number in a note (as the csv module and
# pandas' C parser read them).
_LINE_END = re.compile(rb"\r\n|\r|\n")
# A column name as loggers write them (no spaces): tells a CSV header from a line of prose.
_METRIC_NAME = re.compile(r"[\w./:()\[\]@%+-]+")
# Line numbers a note lists before it says "and N more": enough to find the pattern.
_LINES_SHOWN = 5
# Bytes scanned at a time when counting commas and line ends: small enough to stay in cache.
_SCAN_CHUNK = 1 << 20
# What sniffing sees of a file; a NUL byte in it means binary.
_SNIFF_BYTES = 1 << 16
# Longest header line read; a header longer than this is kept cut (its last name partial).
_HEADER_LIMIT = 1 << 20
# Steps beyond this are not integers a float64 cell can hold exactly.
_MAX_STEP = 2.0**53
# Unix times above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECOND_TIMES = 1e11


def _float_options() -> dict[str, Any]:
    """pandas 3.1 parses floats exactly like float() and deprecates the option; older pandas
    needs the round-trip converter for that (its default can be off by one ulp)."""
    import pandas as pd

    major, minor = (re.match(r"\d+", part) for part in pd.__version__.split(".")[:2])
    version = (int(major.group()) if major else 0, int(minor.group()) if minor else 0)
    return {} if version >= (3, 1) else {"float_precision": "round_trip"}


# --------------------------------------------------------------------------------------------
# Header and sniffing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    """The first line of a text file, split as CSV; names stripped of padding and BOM."""

    names: tuple[str, ...]
    raw_commas: int  # commas on the header line as written (quoted ones included)

    @property
    def normalised(self) -> tuple[str, ...]:
        return tuple(_normalise(name) for name in self.names)

    def axis_columns(self) -> list[int]:
        """Positions of axis columns, most preferred first."""
        normalised = self.normalised
        return [
            position
            for axis_name in AXIS_COLUMNS
            for position, name in enumerate(normalised)
            if name == axis_name
        ]


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _header_start(head: bytes) -> tuple[int, int]:
    """Where the header line starts in the first bytes, and its 1-based line number: a BOM and
    blank lines before it are skipped.  ``len(head)`` when the bytes hold no header."""
    body = head.removeprefix(_BOM)
    prefix = body[: len(body) - len(body.lstrip())]
    start = max(prefix.rfind(b"\n"), prefix.rfind(b"\r")) + 1  # a padded header keeps its spaces
    if start == len(body):
        return len(head), len(_LINE_END.findall(prefix)) + 1
    return len(head) - len(body) + start, len(_LINE_END.findall(prefix, 0, start)) + 1


def _header_bytes(head: bytes) -> bytes:
    """The header line (without its line end: CR, LF or CR LF) as far as the first bytes hold it."""
    start, _ = _header_start(head)
    return _LINE_END.split(head[start:], 1)[0]


def _is_blank(head: bytes) -> bool:
    return not head.removeprefix(_BOM).strip()


def _binary_reason(head: bytes) -> str | None:
    """Why these first bytes are not a text CSV, or None when they may be one.

    NUL bytes make a file binary only when its header is no UTF-8 text or holds one: a crash
    often leaves a tail of NUL bytes after rows that are worth reading, while binary formats
    open with magic bytes that are no UTF-8 text.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text; save the file as UTF-8 to read it"
    if b"\x00" not in head:
        return None
    start, _ = _header_start(head)
    header = head[:start] + _header_bytes(head)
    try:
        clean = b"\x00" not in header and bool(header.decode("utf-8"))
    except UnicodeDecodeError:
        clean = False
    return None if clean else "binary data (NUL bytes from its start), not a CSV text file"


def _parse_header(first_line: bytes) -> _Header:
    text = first_line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    try:
        names = next(csv.reader([text]), [])
    except csv.Error:
        names = text.split(",")
    return _Header(tuple(name.strip() for name in names), first_line.count(b","))


@lru_cache(maxsize=4)  # every CSV sniffer asks, about the same head
def _sniff_header(head: bytes) -> _Header | None:
    """The header of a text file from its first bytes; None for binary or empty heads."""
    if _is_blank(head) or _binary_reason(head) is not None:
        return None
    return _parse_header(_header_bytes(head))


def _sniff_lightning(path: Path, head: bytes) -> bool:
    header = _sniff_header(head)
    return header is not None and path.name == "metrics.csv" and "step" in header.names


def _sniff_ultralytics(path: Path, head: bytes) -> bool:
    header = _sniff_header(head)
    if header is None or "epoch" not in header.names:
        return False
    return path.name == "results.csv" or "train/box_loss" in header.names


def _sniff_keras(path: Path, head: bytes) -> bool:
    """CSVLogger writes ``epoch`` and then the log keys sorted; keys never hold ``/``."""
    header = _sniff_header(head)
    if header is None or path.suffix.lower() not in (".csv", ".log") or len(header.names) < 2:
        return False
    names = header.names
    metrics = list(names[1:])
    return (
        names[0] == "epoch"
        and "step" not in names
        and all(name and "/" not in name for name in metrics)
        and (path.name == "training.log" or metrics == sorted(metrics))
    )


def _sniff_long(path: Path, head: bytes) -> bool:
    header = _sniff_header(head)
    if header is None or path.suffix.lower() != ".csv":
        return False
    names = set(header.normalised)
    return "value" in names and bool(names & set(LONG_TAG_COLUMNS)) and bool(header.axis_columns())


def _sniff_wide(path: Path, head: bytes) -> bool:
    """Any ``.csv`` with an axis column; an empty or binary ``.csv`` is claimed too, so that
    reading it says why.  Other names need a clean CSV header with an axis column."""
    suffix = path.suffix.lower()
    if suffix == ".csv" and (_is_blank(head) or _binary_reason(head) is not None):
        return True
    header = _sniff_header(head)
    if header is None or len(header.names) < 2 or not header.axis_columns():
        return False
    return suffix == ".csv" or (suffix in (".log", ".txt") and all(map(_METRIC_NAME.fullmatch, header.names)))


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


def line_list(lines: Sequence[int] | np.ndarray) -> str:
    """``lines 3, 5, 9 and 12 more``: the first few line numbers of a problem seen many times."""
    shown = ", ".join(str(int(line)) for line in lines[:_LINES_SHOWN])
    more = len(lines) - _LINES_SHOWN
    noun = "line" if len(lines) == 1 else "lines"
    return f"{noun} {shown}" + (f" and {more} more" if more > 0 else "")


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
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            start, line = _header_start(head)
            if _LINE_END.search(head, start):
                return head, _header_bytes(head), line
            return head, _LINE_END.split(head[start:] + handle.readline(_HEADER_LIMIT), 1)[0], line
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
            frame = _pandas_frame(path, len(names), text_positions, padded, "strict")
        except UnicodeDecodeError:
            _add_decoding_note(path, notes)
            frame = _pandas_frame(path, len(names), text_positions, padded, "replace")
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


def _pandas_frame(path: Path, columns: int, text_positions: list[int], padded: bool, errors: str) -> pd.DataFrame:
    """One parse, types inferred per column (per chunk of rows for a big file, read in parallel).

    A column is float64 unless a cell is no float (a logged nan, junk, text); such a column
    or chunk comes back as text, mixed with floats when chunks disagree.
    """
    import pandas as pd
    texts = {f"c{position}": object for position in text_positions}
    with warnings.catch_warnings():
        # Chunks that disagree on a column's type are expected and handled (DtypeWarning).  A
        # first row longer than the header makes pandas drop fields with a warning; the byte
        # count in _fast_table sees that row and sends the file to the line path.
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        return pd.read_csv(
            path,
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


def undecodable_line(data: bytes) -> int | None:
    """The 1-based line (CR, LF and CR LF end one) of the first byte that is not UTF-8, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return len(_LINE_END.findall(data, 0, error.start)) + 1
    return None


def _add_decoding_note(path: Path, notes: list[ReadNote]) -> None:
    """Say where the first byte that is not UTF-8 sits (once, whichever path met it first)."""
    line = undecodable_line(path.read_bytes())
    if line is None:
        return
    note = _note(path, NoteKind.CORRUPT,
                 f"bytes that are not UTF-8 (first on line {line}) were read as replacement characters", [line])
    if note not in notes:
        notes.append(note)


@dataclass(frozen=True)
class _ByteShape:
    """What the raw bytes say about rows: their commas, whether a row may span lines or have
    more fields than pandas kept, and NUL bytes (a crash's leftovers, reported by the line path)."""

    commas: int
    lines: int | None  # counted only when a quote could hide a line end inside a field
    last_line_commas: int | None  # set when the last line has no line end
    uneven: bool  # a data line with other commas than a row has
    nul: bool

    @classmethod
    def of(cls, path: Path, row_commas: int) -> _ByteShape:
        # Read in chunks, never memory-mapped: a file truncated while mapped (Lightning's
        # CSVLogger rewrites metrics.csv in place) would kill the process with SIGBUS.
        with path.open("rb") as handle:
            scan = _ByteScan()
            for chunk in _chunks(handle):
                scan.add(chunk)
            lines: int | None = None
            # pandas silently drops the extra fields of the first row (and then takes later
            # rows of that length too); a later long row makes it raise.  A quoted comma
            # defeats counting, so a file with quotes has every line checked.
            uneven = scan.first_row_commas > row_commas
            if scan.quoted:
                handle.seek(0)
                line_scan = _LineScan(row_commas)
                for chunk in _chunks(handle):
                    line_scan.add(chunk)
                lines, uneven = line_scan.lines, line_scan.uneven
        return cls(scan.commas, lines, None if scan.terminated else scan.last_line_commas, uneven, scan.nul)

    def cut_last_line_fields(self, columns: int) -> int | None:
        """Fields on the last line when it was cut while being written (no line end, too few)."""
        if self.last_line_commas is None or self.last_line_commas >= columns - 1:
            return None
        return self.last_line_commas + 1


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The rest of an open file, ``_SCAN_CHUNK`` bytes at a time."""
    while chunk := handle.read(_SCAN_CHUNK):
        yield chunk


class _ByteScan:
    """One pass over a file's chunks: its commas, quotes, NUL bytes, the commas of its first
    data row and of its last line.  Each chunk costs a numpy count and a few memchr-speed
    finds (~10 ms each for 200 MB)."""

    def __init__(self) -> None:
        self.commas = 0
        self.quoted = False
        self.nul = False
        self.terminated = False  # the last byte read is a line end
        self.last_line_commas = 0  # commas after the last line end read
        self.first_row_commas = 0  # commas between the first and second line ends
        self._line_ends_seen = 0  # up to 2: where the first row is

    def add(self, chunk: bytes) -> None:
        commas = int(np.count_nonzero(np.frombuffer(chunk, np.uint8) == ord(",")))
        self.commas += commas
        self.quoted = self.quoted or chunk.find(b'"') >= 0
        self.nul = self.nul or chunk.find(b"\x00") >= 0
        self.terminated = chunk.endswith(b"\n")
        last_end = chunk.rfind(b"\n")
        self.last_line_commas = self.last_line_commas + commas if last_end < 0 else chunk.count(b",", last_end + 1)
        position = 0
        while self._line_ends_seen < 2:
            end = chunk.find(b"\n", position)
            if self._line_ends_seen == 1:
                self.first_row_commas += chunk.count(b",", position, len(chunk) if end < 0 else end)
            if end < 0:
                break
            self._line_ends_seen, position = self._line_ends_seen + 1, end + 1


class _LineScan:
    """Whether a data line (the header aside) has other than ``row_commas`` commas, and how
    many lines there are; a last line without a line end may have fewer commas (it was cut).
    Vectorised a chunk at a time: the commas before each line end come from one
    searchsorted, never a loop per line."""

    def __init__(self, row_commas: int) -> None:
        self.row_commas = row_commas
        self._uneven_line = False  # a line that ended had other commas than a row
        self._line_ends = 0
        self._commas_before = 0  # commas before the chunk
        self._last_end: int | None = None  # commas before the latest line end, None before the header's
        self._terminated = False

    def add(self, chunk: bytes) -> None:
        data = np.frombuffer(chunk, np.uint8)
        commas = np.flatnonzero(data == ord(","))
        line_ends = np.flatnonzero(data == ord("\n"))
        at_ends = np.searchsorted(commas, line_ends) + self._commas_before
        if at_ends.size:
            previous = at_ends[:-1] if self._last_end is None else np.concatenate(([self._last_end], at_ends[:-1]))
            ends_uneven = at_ends[len(at_ends) - len(previous) :] - previous != self.row_commas
            self._uneven_line = self._uneven_line or bool(ends_uneven.any())
            self._last_end = int(at_ends[-1])
        self._commas_before += commas.size
        self._line_ends += line_ends.size
        self._terminated = chunk.endswith(b"\n")

    @property
    def uneven(self) -> bool:
        """A line with other commas than a row, or a last line (no line end) with more."""
        tail = 0 if self._last_end is None else self._commas_before - self._last_end
        return self._uneven_line or tail > self.row_commas

    @property
    def lines(self) -> int:
        return self._line_ends + (0 if self._terminated else 1)


def _note_cut_line(table: _Table, line: int, fields: int) -> None:
    kept = max(fields - 1, 0)
    table.note(NoteKind.TRUNCATED,
               f"the last line was cut while being written ({fields} of {len(table.names)} fields, no line end); "
               f"its cut field was dropped, {kept} complete field(s) kept", [line], 1)


def _line_table(
    path: Path, names: list[str], text_positions: list[int], padded: bool, notes: list[ReadNote], header_line: int
) -> _Table:
    """The line-by-line path: every line after the header split on its own, bad lines reported by number."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _add_decoding_note(path, notes)
        text = data.decode("utf-8", errors="replace")
    physical = re.split(_LINE_END.pattern.decode(), text)
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


# --------------------------------------------------------------------------------------------
# From a table to a run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """The step of each row, and which rows have one."""

    steps: np.ndarray  # int64 per row (0 where the row has none)
    usable: np.ndarray  # bool per row
    x_axis: XAxis
    column: int | None  # the axis column, or None when rows are numbered instead


def _axis(table: _Table, position: int, x_axis: XAxis) -> _Axis:
    """Steps from an axis column; rows whose cell is not an integer step lose their points.

    A column of fractional values (epoch 0.25, 0.5, ...) cannot be a step: the rows are then
    numbered in file order, and a wide file keeps the column as a tag so no value is lost.
    """
    raw = table.values[position]
    whole = integral_steps(raw)
    fractional = table.numeric[position] & np.isfinite(raw) & (np.abs(raw) <= _MAX_STEP) & ~whole
    usable = table.numeric[position] & whole
    name = table.names[position]
    if fractional.any():
        first = int(table.lines[np.flatnonzero(fractional)[0]])
        table.note(NoteKind.INFO,
                   f"column '{name}' holds fractional values (first on line {first}), so it cannot be the "
                   "step; rows are numbered in file order instead", [first])
        return _Axis(np.arange(table.rows, dtype=np.int64), np.ones(table.rows, dtype=bool), XAxis.ITERATION, None)
    unusable = np.flatnonzero(~usable)
    has_points = np.zeros(unusable.size, dtype=bool)
    for other, cells in enumerate(table.numeric):
        if other != position:
            has_points |= cells[unusable]
    lost_lines = table.lines[unusable[has_points]]
    if lost_lines.size:
        table.note(NoteKind.SKIPPED,
                   f"{lost_lines.size} row(s) without a usable '{name}' value; their points were dropped "
                   f"({line_list(lost_lines)})", lost_lines, int(lost_lines.size))
    steps = np.where(usable, raw, 0).astype(np.int64)
    return _Axis(steps, usable, x_axis, position)


def integral_steps(values: np.ndarray) -> np.ndarray:
    """Where float64 values are steps: finite, whole and small enough for float64 to hold exactly."""
    whole: np.ndarray = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) <= _MAX_STEP)
    return whole


def _note_repeated_steps(table: _Table, axis: _Axis, *, same_step_repeats: bool) -> None:
    """One DUPLICATED note when the axis goes back (a resumed run appending to its log).

    ``same_step_repeats``: a row at the same step as an earlier one is a repeat too (files
    with one row per step); in sparse files several rows legitimately share a step.
    """
    steps = axis.steps[axis.usable]
    if steps.size < 2:
        return
    reached = np.maximum.accumulate(steps)[:-1]
    later = steps[1:]
    repeated = (later <= reached) if same_step_repeats else (later < reached)
    if not repeated.any():
        return
    repeated_rows = np.flatnonzero(axis.usable)[1:][repeated]
    repeated_steps = later[repeated]
    restarts = int(np.count_nonzero(np.diff(np.concatenate(([False], repeated)).astype(np.int8)) == 1))
    name = table.names[axis.column] if axis.column is not None else "step"
    lines = table.lines[repeated_rows]
    table.note(NoteKind.DUPLICATED,
               f"{name} {int(repeated_steps.min())}..{int(repeated_steps.max())} logged again "
               f"({repeated_rows.size} row(s) after {restarts} restart(s), from {line_list(lines)}); "
               "both copies kept, the later one is used in analysis", lines, int(repeated_rows.size))


def _wall_times(table: _Table, position: int) -> np.ndarray:
    """Seconds since the epoch from a wall-time column: numbers (s or ms) or date-time text."""
    import pandas as pd
    values: np.ndarray = table.values[position]
    if position in table.texts:
        cells = pd.Series(table.texts[position], dtype=object).replace("", None)
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(values).any():
            moments = pd.to_datetime(cells, errors="coerce", utc=True, format="mixed")
            values = (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(
                dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.median(np.abs(finite))) > _MILLISECOND_TIMES:
        values = values / 1000.0
    return values


def _build_wide_run(
    table: _Table,
    *,
    format: str,
    axis: _Axis,
    not_tags: Iterable[int] = (),
    wall_column: int | None = None,
    tag_axes: dict[str, XAxis] | None = None,
    metadata: dict[str, str] | None = None,
    sources: Sequence[str] = (),
) -> Run:
    """Every numeric cell of every tag column becomes a point at its row's step.

    Each column's points are taken straight into their slice of the run's arrays: no
    concatenation of 10 million points at the end.  The row indices come from flatnonzero, so
    ``take`` skips its bounds checks (``mode="clip"``), which halves the copy time.
    """
    excluded = set(not_tags) | {i for i, name in enumerate(table.names) if not name}
    if axis.column is not None:
        excluded.add(axis.column)
    if wall_column is not None:
        excluded.add(wall_column)
    builder = RunBuilder()
    tags = [position for position in range(len(table.names)) if position not in excluded]
    masks = [table.numeric[position] if axis.usable.all() else table.numeric[position] & axis.usable
             for position in tags]
    counts = [int(np.count_nonzero(mask)) for mask in masks]
    total = sum(counts)
    values = np.empty(total, dtype=np.float64)
    steps = np.empty(total, dtype=np.int64)
    row_walls = _wall_times(table, wall_column) if wall_column is not None else None
    # Without a wall-time column every wall time is NaN: a read-only view of one NaN stands in
    # for the 80 MB a 10-million-point run would otherwise allocate and fill.
    walls = np.empty(total, dtype=np.float64) if row_walls is not None else np.broadcast_to(np.float64(np.nan), total)
    start = 0
    for position, mask, count in zip(tags, masks, counts, strict=True):
        end = start + count
        rows = np.flatnonzero(mask)
        np.take(table.values[position], rows, out=values[start:end], mode="clip")
        np.take(axis.steps, rows, out=steps[start:end], mode="clip")
        if row_walls is not None:
            np.take(row_walls, rows, out=walls[start:end], mode="clip")
        start = end
    codes = np.array([builder.code(table.names[position]) for position in tags], dtype=np.int32)
    builder.add_coded(np.repeat(codes, counts), steps, values, walls)
    return builder.build(
        id=str(table.path),
        path=str(table.path),
        format=format,
        sources=[str(table.path), *sources],
        x_axis=axis.x_axis,
        tag_axes=tag_axes or {},
        notes=table.notes,
        metadata=metadata or {},
    )


def _axis_or_fail(table: _Table, names: Sequence[str]) -> tuple[int, XAxis]:
    normalised = [_normalise(name) for name in table.names]
    for axis_name in names:
        if axis_name in normalised:
            return normalised.index(axis_name), AXIS_COLUMNS[axis_name]
    wanted = ", ".join(names)
    raise UnreadableInput(f"no {wanted} column in the header ({', '.join(table.names)})")


# --------------------------------------------------------------------------------------------
# The five flavours
# --------------------------------------------------------------------------------------------


def read_lightning(path: Path) -> Run:
    table = _read_table(path)
    step_column, x_axis = _axis_or_fail(table, ["step"])
    axis = _axis(table, step_column, x_axis)
    epoch_columns = [i for i, name in enumerate(table.names) if _normalise(name) == "epoch"]
    tag_axes = _validation_step_tags(table, epoch_columns, axis)
    metadata, sources = _lightning_hparams(path, table)
    return _build_wide_run(table, format="lightning-csv", axis=axis, not_tags=epoch_columns,
                           tag_axes=tag_axes, metadata=metadata, sources=sources)


def _validation_step_tags(table: _Table, epoch_columns: list[int], axis: _Axis) -> dict[str, XAxis]:
    """Tags of Lightning's validation-step rows, which count steps on the validation loop's own
    counter, not the training step.

    Two kinds of rows have a step and no epoch: validation-step rows, and the rows of loggers
    called directly, such as ``LearningRateMonitor`` (``lr-Adam``), whose step is the training
    step.  A tag logged only in such rows counts validation batches when one of its rows has
    a step below that of the last row with an epoch before it: the training step reached.
    The learning-rate monitor logs at the step training is at (or at the next epoch's first),
    never behind it, while the validation counter starts at 0 after the first training rows
    and grows by the validation batches alone.  Rows before any row with an epoch say
    nothing either way.
    """
    if not epoch_columns or axis.column is None:
        return {}
    epochless = ~table.numeric[epoch_columns[0]]
    if not epochless.any():
        return {}
    trained = ~epochless & axis.usable
    last_trained = np.maximum.accumulate(np.where(trained, np.arange(table.rows), -1))
    reached = axis.steps[np.maximum(last_trained, 0)]
    behind = epochless & axis.usable & (last_trained >= 0) & (axis.steps < reached)
    skip = {axis.column, *epoch_columns}
    tags = [name for position, (name, cells) in enumerate(zip(table.names, table.numeric, strict=True))
            if name and position not in skip and cells[behind].any() and not cells[~epochless].any()]
    if not tags:
        return {}
    table.note(NoteKind.INFO,
               f"{len(tags)} tag(s) are logged only in rows without an epoch (validation steps), whose "
               f"step counts validation batches, not training steps: {', '.join(tags)}", count=len(tags))
    return {tag: XAxis.ITERATION for tag in tags}


def _lightning_hparams(path: Path, table: _Table) -> tuple[dict[str, str], list[str]]:
    """``hparams.yaml`` beside the metrics, flattened to "a.b" keys; safe_load only."""
    hparams = path.with_name("hparams.yaml")
    if not hparams.is_file():
        return {}, []
    try:
        loaded = yaml.safe_load(hparams.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError) as error:
        table.notes.append(ReadNote(NoteKind.SKIPPED, str(hparams),
                                    f"hparams.yaml not read: {str(error).splitlines()[0]}"))
        return {}, []
    if loaded is None:
        return {}, [str(hparams)]
    if not isinstance(loaded, dict):
        table.notes.append(ReadNote(NoteKind.SKIPPED, str(hparams), "hparams.yaml is not a mapping; not read"))
        return {}, []
    return _flatten(loaded), [str(hparams)]


def _flatten(mapping: dict[Any, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings to ``{"a.b": "value"}``; non-text values rendered as JSON."""
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return flat


def read_ultralytics(path: Path) -> Run:
    table = _read_table(path, padded=True)
    axis = _axis(table, *_axis_or_fail(table, ["epoch"]))
    _note_repeated_steps(table, axis, same_step_repeats=True)
    return _build_wide_run(table, format="ultralytics-csv", axis=axis)


def read_keras(path: Path) -> Run:
    table = _read_table(path)
    axis = _axis(table, *_axis_or_fail(table, ["epoch"]))
    _note_repeated_steps(table, axis, same_step_repeats=True)
    return _build_wide_run(table, format="keras-csv", axis=axis)


def read_wide(path: Path) -> Run:
    table = _read_table(path, text_columns=WALL_TIME_COLUMNS)
    normalised = [_normalise(name) for name in table.names]
    axis_positions = [normalised.index(name) for name in AXIS_COLUMNS if name in normalised]
    chosen, x_axis = _axis_or_fail(table, list(AXIS_COLUMNS))
    axis = _axis(table, chosen, x_axis)
    if axis.column is not None:
        _note_repeated_steps(table, axis, same_step_repeats=False)
    wall = next((i for i, name in enumerate(normalised) if name in WALL_TIME_COLUMNS), None)
    other_axes = [i for i in axis_positions if i != chosen]
    return _build_wide_run(table, format="wide-csv", axis=axis, not_tags=other_axes, wall_column=wall)


def read_long(path: Path) -> Run:
    import pandas as pd
    table = _read_table(path, text_columns=LONG_TAG_COLUMNS + WALL_TIME_COLUMNS)
    normalised = [_normalise(name) for name in table.names]
    tag_column = next((i for i, name in enumerate(normalised) if name in LONG_TAG_COLUMNS), None)
    if tag_column is None or "value" not in normalised:
        raise UnreadableInput(f"a long CSV needs a tag and a value column ({', '.join(table.names)})")
    value_column = normalised.index("value")
    axis_position, x_axis = _axis_or_fail(table, list(AXIS_COLUMNS))
    axis = _axis(table, axis_position, x_axis)
    tags = pd.Series(table.texts[tag_column], dtype=object).str.strip().to_numpy(dtype=object)
    has_value = table.numeric[value_column] & axis.usable
    untagged = has_value & (tags == "")
    if untagged.any():
        lines = table.lines[untagged]
        table.note(NoteKind.SKIPPED, f"{lines.size} row(s) with a value but no tag; skipped ({line_list(lines)})",
                   lines, int(lines.size))
    keep = has_value & ~untagged
    used = {tag_column, value_column, axis_position}
    wall = next((i for i, name in enumerate(normalised) if name in WALL_TIME_COLUMNS), None)
    ignored = [name for i, name in enumerate(table.names) if i not in used and i != wall]
    if ignored:
        table.note(NoteKind.INFO, f"columns not used by the long layout: {', '.join(ignored)}",
                   [table.header_line], len(ignored))
    builder = RunBuilder()
    codes_per_row, uniques = pd.factorize(tags[keep])  # codes in order of first appearance
    for tag in uniques.tolist():
        builder.code(str(tag))
    codes_per_row = codes_per_row.astype(np.int32)
    walls = _wall_times(table, wall)[keep] if wall is not None else np.full(int(keep.sum()), np.nan)
    builder.add_coded(codes_per_row, axis.steps[keep], table.values[value_column][keep], walls)
    return builder.build(id=str(path), path=str(path), format="long-csv", sources=[str(path)],
                         x_axis=axis.x_axis, notes=table.notes)


READERS: tuple[FileReader, ...] = (
    FileReader("lightning-csv", "PyTorch Lightning CSVLogger metrics.csv", _sniff_lightning, read_lightning),
    FileReader("ultralytics-csv", "Ultralytics / YOLOv5 results.csv", _sniff_ultralytics, read_ultralytics),
    FileReader("keras-csv", "Keras CSVLogger log (training.log)", _sniff_keras, read_keras),
    FileReader("long-csv", "CSV with one point a row: step, tag, value", _sniff_long, read_long),
    FileReader("wide-csv", "CSV with a step, iteration or epoch column and one column a tag", _sniff_wide, read_wide),
)
