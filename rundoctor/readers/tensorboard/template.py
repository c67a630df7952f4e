"""The template fast path: a record's layout found by a small wire-format walker, so that records of
the same layout are read through strided views instead of protobuf (see the package docstring)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c
import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from rundoctor.readers.tensorboard.values import (
    _TENSOR_DTYPES,
    _as_float64,
    _scalar_of,
    _storage_dtype,
)

# Fast path limits.  Scalar events are 30-300 bytes; a record below 16 bytes cannot hold a
# wall time, a step and a value (the longest record a layout is sought for is in layouts.py).
_FAST_MIN_LENGTH = 16
# Below this many records of one length, protobuf (~3 us a record) is cheaper than a round
# of template matching (~0.2 ms of numpy calls).
_FAST_MIN_GROUP = 64
_CHUNK_RECORDS = 1 << 16  # records gathered at once: gathers run fastest in chunks this size
_MAX_ROUNDS = 8  # layouts tried per group before the rest falls back to protobuf
_MAX_TEMPLATES_PER_ROUND = 64  # tags of one layout told apart in one round
_HASH_BITS = 12  # 4096 buckets for telling templates apart (collisions cost another round)
_HASH_SHIFT = np.uint64(64 - _HASH_BITS)
_HASH_FACTOR = np.uint64(0x9E3779B97F4A7C15)
_WORD_DTYPES = {8: "<u8", 4: "<u4", 2: "<u2", 1: "u1"}


# ---------------------------------------------------------------------------------------
# Templates: the layout of one scalar event, found by walking its wire format.


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _wire_fields(buffer: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end) of each field in buffer[start:end]."""
    position = start
    while position < end:
        key, position = _varint(buffer, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value_end = _varint(buffer, position)[1]
        elif wire == 1:
            value_end = position + 8
        elif wire == 2:
            size, position = _varint(buffer, position)
            value_end = position + size
        elif wire == 5:
            value_end = position + 4
        else:
            raise ValueError("unsupported wire type")
        if value_end > end:
            raise ValueError("field runs past its message")
        yield number, wire, position, value_end
        position = value_end


@dataclass(frozen=True)
class _Slot:
    """Where one scalar value of a template sits."""

    tag: str
    offset: int
    dtype: str  # a _TENSOR_DTYPES value
    is_tensor: bool
    plugin: str

    @property
    def size(self) -> int:
        return np.dtype(_storage_dtype(self.dtype)).itemsize


@dataclass(frozen=True)
class _RecordLayout:
    """What every fast-path layout shares: the payload of the record it was found in, the wall
    time at bytes 1..9 and the step varint at 10.. (``step_width`` bytes, 0 when the step is
    0 and so not written); the bytes outside ``variable_ranges`` are the same in every record
    of the layout and of the same tags."""

    payload: bytes
    step_width: int

    @property
    def variable_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of the bytes that differ from record to record (overridden)."""
        return [(1, 9)] + ([(10, 10 + self.step_width)] if self.step_width else [])

    @property
    def layout(self) -> tuple[object, ...]:
        """What records of one layout share whatever their tags (overridden)."""
        return (self.step_width,)

    @property
    def fixed_start(self) -> int:
        """Where the bytes after the wall time, the next field key and the step start."""
        return 10 + self.step_width

    def variable_bytes(self) -> list[int]:
        return [position for start, end in self.variable_ranges for position in range(start, end)]

    def step_continuation(self) -> tuple[np.uint64, np.uint64]:
        """(mask, expected) of the continuation bits of an 8-byte word at the step: set in
        each byte of the varint but its last."""
        mask = sum(0x80 << (8 * byte) for byte in range(self.step_width))
        return np.uint64(mask), np.uint64(mask & ~(0x80 << (8 * (self.step_width - 1))))

    def fixed_words(self) -> list[tuple[int, str]]:
        """(offset, dtype) of words covering the bytes every record of this template shares
        with it: the keys of the wall time and step fields, then the widest words that fit
        each stretch between values, the last one overlapping its neighbour rather than
        reaching into a value."""
        stretches = [(0, 1), (9, 10)]
        position = self.fixed_start
        for start, end in sorted(self.variable_ranges):
            if start < self.fixed_start:
                continue
            if start > position:
                stretches.append((position, start))
            position = end
        if position < len(self.payload):
            stretches.append((position, len(self.payload)))
        words = []
        for start, end in stretches:
            size = next(size for size in (8, 4, 2, 1) if size <= end - start)
            for offset in range(start, end, size):
                words.append((min(offset, end - size), _WORD_DTYPES[size]))
        return words

    def zeroed_crc(self) -> int:
        """crc32c of the payload with the variable bytes zeroed."""
        zeroed = bytearray(self.payload)
        for start, end in self.variable_ranges:
            zeroed[start:end] = bytes(end - start)
        return int(google_crc32c.value(bytes(zeroed)))


@dataclass(frozen=True)
class _Template(_RecordLayout):
    """The layout of a scalar event: its values in slots."""

    slots: tuple[_Slot, ...]

    @property
    def layout(self) -> tuple[object, ...]:
        return ("scalars", self.step_width, tuple((s.offset, s.dtype, s.is_tensor) for s in self.slots))

    @property
    def variable_ranges(self) -> list[tuple[int, int]]:
        return super().variable_ranges + [(slot.offset, slot.offset + slot.size) for slot in self.slots]


def event_frame(payload: bytes) -> tuple[int, int, int] | None:
    """(step width, start, end) of the summary of an event written as a fast-path layout
    expects: the wall time first, the step next (if not 0), the summary last; None for any
    other event.  Raises ValueError or IndexError on bytes that are no protobuf message."""
    fields = list(_wire_fields(payload, 0, len(payload)))
    step_width = fields[1][3] - 10 if len(fields) == 3 and fields[1][:3] == (2, 0, 10) else 0
    expected = [(1, 1, 1, 9)] + ([(2, 0, 10, 10 + step_width)] if step_width else [])
    if step_width > 8 or len(fields) != len(expected) + 1 or fields[:-1] != expected:
        return None
    number, wire, start, end = fields[-1]
    if (number, wire, end) != (5, 2, len(payload)):
        return None
    return step_width, start, end


def steps_of(raw: np.ndarray, step_width: int) -> np.ndarray:
    """Steps from the 8-byte little-endian words at byte 10 of records whose step varint is
    ``step_width`` bytes wide (0: no step field, step 0)."""
    steps = np.zeros(raw.size, np.uint64)
    for byte in range(step_width):
        steps |= ((raw >> np.uint64(8 * byte)) & np.uint64(0x7F)) << np.uint64(7 * byte)
    return steps.view(np.int64)


def _parse_template(payload: bytes) -> _Template | None:
    """The layout of a scalar event, or None if the record is anything else; the layout is
    checked against protobuf's parse of the same bytes."""
    try:
        frame = event_frame(payload)
        if frame is None:
            return None
        step_width, start, end = frame
        slots = []
        for number, wire, value_start, value_end in _wire_fields(payload, start, end):
            slot = _value_slot(payload, value_start, value_end) if (number, wire) == (1, 2) else None
            if slot is None:
                return None
            slots.append(slot)
    except (ValueError, IndexError):
        return None
    return _checked_template(payload, step_width, slots)


def _value_slot(payload: bytes, start: int, end: int) -> tuple[str, int, str, bool] | None:
    """(tag, value offset, dtype, is tensor) of a Summary.Value holding one scalar."""
    fields = list(_wire_fields(payload, start, end))
    if not fields or fields[0][:2] != (1, 2):
        return None
    try:
        tag = payload[fields[0][2] : fields[0][3]].decode("utf-8")
    except UnicodeDecodeError:
        return None
    slot: tuple[str, int, str, bool] | None = None
    for number, wire, value_start, value_end in fields[1:]:
        if (number, wire) == (2, 5) and slot is None:  # simple_value
            slot = (tag, value_start, "<f4", False)
        elif (number, wire) == (8, 2) and slot is None:  # tensor
            found = _tensor_slot(payload, value_start, value_end)
            if found is None:
                return None
            slot = (tag, found[0], found[1], True)
        elif (number, wire) != (9, 2):  # metadata is fine: it is part of the fixed bytes
            return None
    return slot


def _tensor_slot(payload: bytes, start: int, end: int) -> tuple[int, str] | None:
    """(offset, dtype) of the one value of a numeric tensor stored in fixed-width bytes."""
    dtype_code = None
    value: tuple[int, int, int] | None = None  # field number, start, end
    for number, wire, value_start, value_end in _wire_fields(payload, start, end):
        if (number, wire) == (1, 0):
            dtype_code = _varint(payload, value_start)[0]
        elif (number, wire) == (2, 2):
            continue  # the shape: one element is checked against protobuf's parse
        elif number in (4, 5, 6) and wire == 2 and value is None:
            value = (number, value_start, value_end)  # tensor_content, float_val, double_val
        else:
            return None
    dtype = _TENSOR_DTYPES.get(dtype_code) if dtype_code is not None else None
    if dtype is None or value is None:
        return None
    number, value_start, value_end = value
    if (number == 5 and dtype_code != 1) or (number == 6 and dtype_code != 2):
        return None
    if value_end - value_start != np.dtype(_storage_dtype(dtype)).itemsize:
        return None
    return value_start, dtype


def _checked_template(
    payload: bytes, step_width: int, slots: list[tuple[str, int, str, bool]]
) -> _Template | None:
    """The template, if protobuf reads the same wall time, step, tags and values from it."""
    try:
        event = event_pb2.Event.FromString(payload)
    except DecodeError:
        return None
    step = _varint(payload, 10)[0] if step_width else 0
    if (
        event.WhichOneof("what") != "summary"
        or struct.pack("<d", event.wall_time) != payload[1:9]
        or event.step != step
        or len(event.summary.value) != len(slots)
    ):
        return None
    checked = []
    for value, (tag, offset, dtype, is_tensor) in zip(event.summary.value, slots):
        storage = _storage_dtype(dtype)
        ours = float(_as_float64(np.frombuffer(payload, storage, 1, offset), dtype)[0])
        theirs = _scalar_of(value)
        if value.tag != tag or theirs is None or (value.WhichOneof("value") == "tensor") != is_tensor:
            return None
        if not (ours == theirs or (math.isnan(ours) and math.isnan(theirs))):
            return None
        plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
        checked.append(_Slot(tag, offset, dtype, is_tensor, plugin))
    return _Template(payload, step_width, tuple(checked))
