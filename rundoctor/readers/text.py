"""Helpers every text-log reader shares, written once: the BOM, line ends and undecodable
bytes, line labels for notes, lines too long to read, flattening nested mappings, steps,
non-finite names."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rundoctor.readers.files import MAX_LINE_BYTES, LongLine
from rundoctor.series import NoteKind, ReadNote

BOM = b"\xef\xbb\xbf"
# What ends a line, for every line number in a note (as the csv module and pandas read them).
LINE_END = re.compile(rb"\r\n|\r|\n")
# A non-finite float written as its name in a string ("NaN", "Infinity", "-inf"): what a
# writer whose JSON encoder refuses NaN writes instead.  The value it names is the point.
NON_FINITE_NAMES = {f"{sign}{name}": float(f"{sign}{name}") for sign in ("", "+", "-")
                    for name in ("nan", "inf", "infinity")}
# Steps beyond this are not integers a float64 cell can hold exactly.
MAX_STEP = 2.0**53
_LINES_SHOWN = 5  # line numbers a list shows before it says "and N more": enough to see the pattern
_LISTED_RANGES = 20  # line ranges spelled out in one label; its count says how many in all


def undecodable_line(data: bytes) -> int | None:
    """The 1-based line (CR, LF and CR LF end one) of the first byte that is not UTF-8, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return len(LINE_END.findall(data, 0, error.start)) + 1
    return None


def line_list(lines: Sequence[int] | np.ndarray) -> str:
    """``lines 3, 5, 9 and 12 more``: the first few line numbers of a problem seen many times."""
    shown = ", ".join(str(int(line)) for line in lines[:_LINES_SHOWN])
    more = len(lines) - _LINES_SHOWN
    noun = "line" if len(lines) == 1 else "lines"
    return f"{noun} {shown}" + (f" and {more} more" if more > 0 else "")


def line_ranges(lines: Sequence[int]) -> str:
    """"line 7", "lines 3, 7-9, 12", with at most ``_LISTED_RANGES`` ranges spelled out."""
    ranges: list[list[int]] = []
    for line in sorted(set(lines)):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges[:_LISTED_RANGES])
    more = f" and {len(ranges) - _LISTED_RANGES} more ranges" if len(ranges) > _LISTED_RANGES else ""
    return f"{'line' if len(lines) == 1 else 'lines'} {shown}{more}"


def long_line_note(source: str, long_lines: Sequence[LongLine]) -> ReadNote | None:
    """The note on lines a text reader skipped for their length (see
    :func:`rundoctor.readers.files.open_lines`); None when there are none.  Corrupt: their
    points, if any, are lost, and a line of megabytes is damage or no log line at all."""
    if not long_lines:
        return None
    longest = max(line.length for line in long_lines)
    count = len(long_lines)
    what = (f"line {long_lines[0].line} is {longest:,} bytes long" if count == 1
            else f"{plural(count, 'line')} are longer (the longest {longest:,} bytes)")
    message = (f"{what}, over the {MAX_LINE_BYTES >> 20} MiB a line may have: skipped without "
               "being parsed (log lines are a few hundred bytes; this is damage, or no log)")
    return ReadNote(NoteKind.CORRUPT, source, message, location=line_ranges([line.line for line in long_lines]),
                    count=count)


def plural(n: int, noun: str) -> str:
    """``1 run``, ``2,000 runs``: the count with thousands separators, the noun plural by an ``s``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def flatten(mapping: Mapping[Any, Any], separator: str, *, keep_empty: bool = False) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a<separator>b": 1}, in key order; iterative, so no nesting depth can
    sink it.  ``keep_empty``: an empty mapping is a value of its own, else it adds nothing."""
    flat: dict[str, Any] = {}
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = [("", iter(mapping.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            if isinstance(value, dict) and (value or not keep_empty):
                stack.append((f"{prefix}{key}{separator}", iter(value.items())))
                break
            flat[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return flat


def number_text(value: float) -> str:
    """A number as a value's text: 42.0 -> "42" (a seed, a count), 0.1 -> "0.1"."""
    return str(int(value)) if value.is_integer() else repr(value)


def integral_steps(values: np.ndarray) -> np.ndarray:
    """Where float64 values are steps: finite, whole and small enough for float64 to hold exactly."""
    whole: np.ndarray = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) <= MAX_STEP)
    return whole
