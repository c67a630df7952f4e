"""What every hostile-input test shares: the settings, damage done to a file, points as
comparable keys, and the checks every run must pass whatever it was read from.

Damage is described by small frozen records (:class:`ByteMutation`, :class:`LineMutation`)
so that hypothesis prints a failing case as something a person can replay by hand.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from rundoctor.series import NoteKind, ReadNote, Run

# ``HYPOTHESIS_PROFILE=long`` soaks: twenty times the examples, and a fresh random seed each
# run so that a soak explores cases CI has not seen.  CI runs derandomized: the same examples
# every run of the same suite, so a failure there comes back when the tests run again.
_LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
_SOAK_FACTOR = 20


def fuzz_settings(examples: int, *, shrink: bool = True) -> settings:
    """Settings of one fuzz test: ``examples`` in CI, many more in a soak run.

    ``shrink=False`` for a test that is expected to fail (a known bug, marked xfail): it
    fails at its first failing example instead of spending seconds on a minimal one and on
    explaining it.
    """
    return settings(
        max_examples=examples * (_SOAK_FACTOR if _LONG else 1),
        deadline=None,  # a slow shared machine must not turn timing noise into failures
        derandomize=not _LONG,
        database=None,  # derandomized runs need no example database; soak runs must not leave one
        print_blob=True,
        phases=list(Phase) if shrink else [Phase.explicit, Phase.reuse, Phase.generate],
        # Examples write their files into the test's tmp_path, overwriting the last example's.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )


# ---------------------------------------------------------------------------------------------
# Points: (tag, step, value bits), NaN canonical (every writer spells NaN its own way).
# ---------------------------------------------------------------------------------------------

Point = tuple[str, int, int]
_NAN_BITS = struct.unpack("<q", struct.pack("<d", math.nan))[0]


def value_bits(value: float) -> int:
    """The float64 bit pattern of a value, so that -0.0 differs from 0.0; all NaNs are one."""
    return _NAN_BITS if math.isnan(value) else struct.unpack("<q", struct.pack("<d", value))[0]


def point(tag: str, step: int, value: float) -> Point:
    return (tag, int(step), value_bits(float(value)))


def run_points(run: Run) -> list[Point]:
    """The run's points in its own order."""
    names = run.tag_names
    return [
        point(names[code], step, value)
        for code, step, value in zip(run.tag_codes.tolist(), run.steps.tolist(), run.values.tolist(), strict=True)
    ]


def by_tag(points: Iterable[Point]) -> dict[str, list[tuple[int, int]]]:
    """Each tag's (step, bits) in the order given."""
    curves: dict[str, list[tuple[int, int]]] = {}
    for tag, step, bits in points:
        curves.setdefault(tag, []).append((step, bits))
    return curves


def assert_tag_prefixes(run: Run, expected: Sequence[Point], *, steps: bool = True) -> None:
    """Each tag's expected points are the first points of that tag in the run, in order.

    Every reader keeps a tag's points in log order, so the points logged before the damage
    come first.  ``steps=False`` compares values only (when later damage legitimately
    changed the step axis of the whole file).
    """
    got = by_tag(run_points(run))
    for tag, wanted in by_tag(expected).items():
        have = got.get(tag, [])[: len(wanted)]
        if not steps:
            wanted, have = [(0, bits) for _, bits in wanted], [(0, bits) for _, bits in have]
        assert have == wanted, f"tag {tag!r}: the points logged before the damage are not all read"


def assert_same_points(run: Run, expected: Sequence[Point]) -> None:
    """The run holds exactly these points, each tag's in this order."""
    got, wanted = by_tag(run_points(run)), by_tag(expected)
    assert got.keys() == wanted.keys(), (sorted(got), sorted(wanted))
    for tag in wanted:
        assert got[tag] == wanted[tag], f"tag {tag!r}"


def contains(points: Sequence[Point], expected: Sequence[Point]) -> bool:
    """Whether ``points`` hold every one of ``expected`` (as multisets)."""
    return not Counter(expected) - Counter(points)


# ---------------------------------------------------------------------------------------------
# Damage
# ---------------------------------------------------------------------------------------------

BYTE_KINDS = ("truncate", "flip", "insert", "delete", "duplicate")


@dataclass(frozen=True)
class ByteMutation:
    """Damage to a file's bytes at offset ``at``.

    ``truncate``: cut the file there; ``flip``: XOR the bytes there with ``payload``;
    ``insert``: insert ``payload``; ``delete``: remove ``size`` bytes; ``duplicate``: insert a
    copy of the ``size`` bytes at ``source`` (a record logged twice, a block written again).
    """

    kind: str
    at: int
    size: int = 0
    payload: bytes = b""
    source: int = 0

    def apply(self, data: bytes) -> bytes:
        at = min(self.at, len(data))
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "flip":
            span = data[at : at + len(self.payload)]
            flipped = bytes(a ^ b for a, b in zip(span, self.payload, strict=False))  # the file may end first
            return data[:at] + flipped + data[at + len(span) :]
        if self.kind == "insert":
            return data[:at] + self.payload + data[at:]
        if self.kind == "delete":
            return data[:at] + data[at + self.size :]
        if self.kind == "duplicate":
            return data[:at] + data[self.source : self.source + self.size] + data[at:]
        raise ValueError(f"unknown byte mutation {self.kind!r}")


@st.composite
def byte_mutation(
    draw: st.DrawFn, size: int, kind: str, garbage: st.SearchStrategy[bytes] | None = None
) -> ByteMutation:
    """One ``kind`` of damage somewhere in a file of ``size`` bytes (``garbage``: what an
    insertion inserts, random bytes by default)."""
    at = draw(st.integers(0, size))
    if kind == "truncate":
        return ByteMutation(kind, at)
    if kind == "flip":
        masks = st.binary(min_size=1, max_size=4).map(lambda b: bytes(x or 0x41 for x in b))  # never XOR 0
        return ByteMutation(kind, min(at, max(size - 1, 0)), payload=draw(masks))
    if kind == "insert":
        inserted = st.binary(min_size=1, max_size=24) if garbage is None else garbage
        return ByteMutation(kind, at, payload=draw(inserted))
    if kind == "delete":
        return ByteMutation(kind, at, size=draw(st.integers(1, 64)))
    if kind == "duplicate":
        source = draw(st.integers(0, max(size - 1, 0)))
        return ByteMutation(kind, at, size=draw(st.integers(1, 256)), source=source)
    raise ValueError(f"unknown byte mutation {kind!r}")


@dataclass(frozen=True)
class FieldCodec:
    """How a text format splits a line into fields and joins them back (None: not a line of
    fields, e.g. a JSON line a previous mutation broke)."""

    split: Callable[[bytes], list[bytes] | None]
    join: Callable[[list[bytes]], bytes]


LINE_KINDS = ("junk", "drop", "add", "blank", "bom", "crlf", "latin1", "dup_header", "dup_line")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LineMutation:
    """Damage to line ``line`` (0-based; clamped to the lines there are).

    ``junk``: field ``field`` becomes ``token``; ``drop``: field ``field`` is removed; ``add``:
    ``token`` is inserted as a field; ``blank``: a blank line is inserted before the line (or
    after the last); ``bom``: a UTF-8 BOM starts the line; ``crlf``: every line ends with CR LF;
    ``latin1``: the bytes ``token`` (not UTF-8) are inserted at byte ``field`` of the line;
    ``dup_header``: the first line is written again before the line; ``dup_line``: the line is
    written twice.
    """

    kind: str
    line: int
    field: int = 0
    token: bytes = b""

    def apply(self, data: bytes, codec: FieldCodec) -> bytes:
        if self.kind == "crlf":
            return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()  # the empty piece after the last line end
        if not lines:
            return data
        index = min(self.line, len(lines) - 1)  # a line that exists
        insert_at = min(self.line, len(lines))  # where a new line may go: after the last one too
        if self.kind in ("junk", "drop", "add"):
            fields = codec.split(lines[index])
            if not fields:
                return data
            position = self.field % len(fields)
            if self.kind == "junk":
                fields[position] = self.token
            elif self.kind == "drop":
                del fields[position]
            else:
                fields.insert(position, self.token)
            lines[index] = codec.join(fields)
        elif self.kind == "blank":
            lines.insert(insert_at, b"")
        elif self.kind == "bom":
            lines[index] = BOM + lines[index]
        elif self.kind == "latin1":
            position = self.field % (len(lines[index]) + 1)
            lines[index] = lines[index][:position] + self.token + lines[index][position:]
        elif self.kind == "dup_header":
            lines.insert(insert_at, lines[0])
        elif self.kind == "dup_line":
            lines.insert(insert_at, lines[index])
        else:
            raise ValueError(f"unknown line mutation {self.kind!r}")
        return b"\n".join(lines) + (b"\n" if data.endswith(b"\n") else b"")


Mutation = ByteMutation | LineMutation

# Not-UTF-8 bytes as a Windows editor or a latin-1 locale writes them.
LATIN1 = [b"\xe9", b"caf\xe9", b"\xff\xfe", b"\xb5s", b"\x80"]


@st.composite
def text_damage(
    draw: st.DrawFn,
    data: bytes,
    codec: FieldCodec,
    kinds: Sequence[str],
    junk: Sequence[bytes],
    extra: Sequence[bytes],
    garbage: st.SearchStrategy[bytes] | None = None,
) -> tuple[tuple[Mutation, ...], bytes]:
    """One or two mutations of a text file, line-level or byte-level, and the damaged bytes.

    ``junk`` are cell values that are no numbers, ``extra`` the fields an ``add`` inserts.
    Lines are drawn from 1 on for the mutations that would make the header a data line.
    """
    mutations: list[Mutation] = []
    current = data
    lines = max(data.count(b"\n"), 1)
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(kinds))
        mutation: Mutation
        if kind in BYTE_KINDS:
            mutation = draw(byte_mutation(len(current), kind, garbage))
        else:
            first = 1 if kind in ("blank", "dup_header") else 0
            line = draw(st.integers(first, max(lines, first)))
            token = draw(st.sampled_from({"junk": junk, "add": extra, "latin1": LATIN1}.get(kind, [b""])))
            mutation = LineMutation(kind, line, draw(st.integers(0, 200)), token)
        current = mutation.apply(current, codec) if isinstance(mutation, LineMutation) else mutation.apply(current)
        mutations.append(mutation)
    return tuple(mutations), current


def common_prefix(original: bytes, damaged: bytes) -> int:
    """How many leading bytes the damaged file shares with the original: where damage starts."""
    limit = min(len(original), len(damaged))
    if original[:limit] == damaged[:limit]:
        return limit
    low, high = 0, limit  # binary search on equal prefixes: files are small, but examples many
    while high - low > 1:
        middle = (low + high) // 2
        if original[:middle] == damaged[:middle]:
            low = middle
        else:
            high = middle
    return low


def damaged_span(original: bytes, damaged: bytes) -> tuple[int, int]:
    """``(start, end)`` of the original bytes the damage touched: everything before ``start``
    and from ``end`` on is in the damaged file too, unchanged (the end shifted)."""
    start = common_prefix(original, damaged)
    room = min(len(original), len(damaged)) - start
    suffix = common_prefix(original[::-1], damaged[::-1])
    return start, len(original) - min(suffix, room)


# ---------------------------------------------------------------------------------------------
# Checks on every run
# ---------------------------------------------------------------------------------------------

DAMAGE_KINDS = (NoteKind.CORRUPT, NoteKind.TRUNCATED, NoteKind.SKIPPED)
_LINES = re.compile(r"lines? (\d+(?:-\d+)?(?:, \d+(?:-\d+)?)*)(?: and \d+ more(?: ranges)?)?")
_OFFSET = re.compile(r"offset (\d+)")
_STEPS = re.compile(r"steps -?\d+\.\.-?\d+")


def note_lines(location: str | None) -> list[int]:
    """The line numbers a note's location names ("line 3", "lines 2, 5-7 and 3 more ranges")."""
    match = _LINES.fullmatch(location or "")
    if match is None:
        return []
    lines: list[int] = []
    for part in match.group(1).split(", "):
        first, _, last = part.partition("-")
        lines.extend(range(int(first), int(last or first) + 1))
    return lines


def note_offset(location: str | None) -> int | None:
    match = _OFFSET.fullmatch(location or "")
    return int(match.group(1)) if match else None


def notes_about(run: Run, source: Path, kinds: Sequence[NoteKind] = DAMAGE_KINDS) -> list[ReadNote]:
    return [note for note in run.notes if note.source == str(source) and note.kind in kinds]


def assert_consistent(
    run: Run, *, format: str, source: Path, lines: int | None = None, size: int | None = None
) -> None:
    """What must hold of any run, however damaged its input: one length for all point
    columns, codes that name tags, and notes that say where (a line of a text ``source``
    with ``lines`` lines, an offset of an event file of ``size`` bytes)."""
    points = run.points
    assert run.format == format
    assert run.tag_codes.dtype == np.int32 and run.steps.dtype == np.int64
    assert run.values.dtype == np.float64 and run.wall_times.dtype == np.float64
    assert run.tag_codes.size == run.steps.size == run.wall_times.size == points
    assert len(set(run.tag_names)) == len(run.tag_names)
    if points:
        assert int(run.tag_codes.min()) >= 0 and int(run.tag_codes.max()) < len(run.tag_names)
    for note in run.notes:
        assert isinstance(note.kind, NoteKind) and note.source and note.message
        assert note.count is None or note.count >= 0, note
        if note.source != str(source) or note.location is None:
            continue
        if lines is not None:
            named = note_lines(note.location)
            assert named, f"a text file's note must name lines, not {note.location!r}: {note}"
            assert all(1 <= line <= max(lines, 1) for line in named), (lines, note)
        if size is not None:
            offset = note_offset(note.location)
            if offset is None:
                assert note.kind is NoteKind.OVERLAP and _STEPS.fullmatch(note.location), note
            else:
                assert 0 <= offset <= size, (size, note)
