"""A CSV file's header line, and the sniffers that judge a file by it and its name."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rundoctor.readers.text import BOM, LINE_END
from rundoctor.series import XAxis

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

# A column name as loggers write them (no spaces): tells a CSV header from a line of prose.
_METRIC_NAME = re.compile(r"[\w./:()\[\]@%+-]+")
# What sniffing sees of a file; a NUL byte in it means binary.
_SNIFF_BYTES = 1 << 16
# Longest header line read; a header longer than this is kept cut (its last name partial).
_HEADER_LIMIT = 1 << 20
# Unix times above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECOND_TIMES = 1e11


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
    body = head.removeprefix(BOM)
    prefix = body[: len(body) - len(body.lstrip())]
    start = max(prefix.rfind(b"\n"), prefix.rfind(b"\r")) + 1  # a padded header keeps its spaces
    if start == len(body):
        return len(head), len(LINE_END.findall(prefix)) + 1
    return len(head) - len(body) + start, len(LINE_END.findall(prefix, 0, start)) + 1


def _header_bytes(head: bytes) -> bytes:
    """The header line (without its line end: CR, LF or CR LF) as far as the first bytes hold it."""
    start, _ = _header_start(head)
    return LINE_END.split(head[start:], 1)[0]


def _is_blank(head: bytes) -> bool:
    return not head.removeprefix(BOM).strip()


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
