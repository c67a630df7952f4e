"""The histogram fast path: the layout of a histogram event found by the wire-format walker, so that
the bucket arrays of every record of that layout are read straight from the record bytes.

A writer's histogram events repeat a few layouts: the wall time, the step, one
``Summary.Value`` with its tag and either a ``HistogramProto`` (PyTorch, tensorboardX, TF1:
min, max, num, sum, sum_squares as doubles, then ``bucket_limit`` and ``bucket`` as packed
doubles) or a TF2 tensor of [left, right, count] rows (a float64 or float32 ``[k, 3]``
``tensor_content``).  With the same tag and the same number of buckets, two records differ only
in those numbers: every key and length is the same byte at the same offset.  So a record's
layout, once walked and checked against protobuf's parse of it, is matched against the other
records of its length as the scalar templates are (see the package docstring), and the
numbers of all matching records are read at once through strided views of their bytes:
one ``(records, buckets)`` array of edges and one of counts per layout.  Anything else (a
field written twice, unpacked doubles, another dtype, hparams or text metadata) is no
template, and its records take the protobuf path.

What a histogram record holds is kept bit for bit as the protobuf path keeps it (see
:func:`rundoctor.readers.tensorboard.values._proto_histogram` and ``_tensor_histogram``):
the template is read by :func:`gather` itself before it is accepted, and compared with
protobuf's decoding of the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from rundoctor.readers.tensorboard.template import (
    _RecordLayout,
    _varint,
    _wire_fields,
    event_frame,
    steps_of,
)
from rundoctor.readers.tensorboard.values import (
    HISTOGRAMS_PLUGIN,
    _as_float64,
    _proto_histogram,
    _tensor_histogram,
)
from rundoctor.series import Histogram, HistogramColumns

# HistogramProto's doubles: min, max, num, sum, sum_squares (fields 1-5), then the packed
# bucket_limit (6) and bucket (7).
_PROTO_NUMBERS = (1, 2, 3, 4, 5)
_PROTO_MIN, _PROTO_MAX, _PROTO_LIMITS, _PROTO_COUNTS = 1, 2, 6, 7
# TensorProto: dtype (1), shape (2), tensor_content (4); DT_FLOAT and DT_DOUBLE histograms.
_TENSOR_FLOATS = {1: "<f4", 2: "<f8"}
_ABSENT = -1  # offset of a HistogramProto double that is not written (proto3 leaves out 0.0)


@dataclass(frozen=True)
class _HistogramTemplate(_RecordLayout):
    """The layout of an event holding one histogram, and the tag and plugin of the record it was
    found in.

    ``numbers``: offsets of the HistogramProto doubles written (min and max among them at
    ``min_offset`` and ``max_offset``, or :data:`_ABSENT`); ``arrays``: (offset, elements) of
    the packed ``bucket_limit`` and ``bucket`` (elements 0 when not written), or of a tensor's
    content of ``rows`` x 3 elements of ``dtype``.
    """

    tag: str
    plugin: str
    is_tensor: bool
    dtype: str
    numbers: tuple[int, ...]
    min_offset: int
    max_offset: int
    arrays: tuple[tuple[int, int], ...]

    @property
    def layout(self) -> tuple[object, ...]:
        # Everything gather() reads a record by: one gather serves all templates of a layout.
        return ("histogram", self.step_width, self.is_tensor, self.dtype, self.numbers, self.min_offset,
                self.max_offset, self.arrays)

    @property
    def variable_ranges(self) -> list[tuple[int, int]]:
        size = np.dtype(self.dtype).itemsize
        return (
            super().variable_ranges
            + [(offset, offset + 8) for offset in self.numbers]
            + [(offset, offset + count * size) for offset, count in self.arrays if count]
        )


def parse_histogram_template(payload: bytes) -> _HistogramTemplate | None:
    """The layout of an event holding one histogram, or None for anything else; the layout is
    checked against protobuf's parse of the same bytes."""
    try:
        frame = event_frame(payload)
        if frame is None:
            return None
        step_width, start, end = frame
        values = list(_wire_fields(payload, start, end))
        if len(values) != 1 or values[0][:2] != (1, 2):
            return None
        found = _value_layout(payload, values[0][2], values[0][3])
    except (ValueError, IndexError):
        return None
    if found is None:
        return None
    tag, is_tensor, dtype, numbers, arrays = found
    minimum = next((offset for number, offset in numbers if number == _PROTO_MIN), _ABSENT)
    maximum = next((offset for number, offset in numbers if number == _PROTO_MAX), _ABSENT)
    template = _HistogramTemplate(
        payload, step_width, tag, "", is_tensor, dtype, tuple(offset for _, offset in numbers),
        minimum, maximum, arrays,
    )
    return _checked(template)


_ValueLayout = tuple[str, bool, str, list[tuple[int, int]], tuple[tuple[int, int], ...]]


def _value_layout(payload: bytes, start: int, end: int) -> _ValueLayout | None:
    """(tag, is tensor, dtype, [(field, offset)] of the doubles, arrays) of a Summary.Value
    holding a histogram: its tag first, then the histogram and metadata, each once."""
    fields = list(_wire_fields(payload, start, end))
    if not fields or fields[0][:2] != (1, 2):
        return None
    try:
        tag = payload[fields[0][2] : fields[0][3]].decode("utf-8")
    except UnicodeDecodeError:
        return None
    kinds = [(number, wire) for number, wire, _, _ in fields[1:]]
    if sorted(kinds) not in ([(5, 2)], [(8, 2)], [(5, 2), (9, 2)], [(8, 2), (9, 2)]):
        return None
    for number, _, value_start, value_end in fields[1:]:
        if number == 5:
            proto = _proto_layout(payload, value_start, value_end)
            return None if proto is None else (tag, False, "<f8", *proto)
        if number == 8:
            tensor = _tensor_layout(payload, value_start, value_end)
            return None if tensor is None else (tag, True, tensor[0], [], (tensor[1],))
    return None


def _proto_layout(
    payload: bytes, start: int, end: int
) -> tuple[list[tuple[int, int]], tuple[tuple[int, int], ...]] | None:
    """The doubles and packed arrays of a HistogramProto, each field at most once, in any order."""
    numbers: list[tuple[int, int]] = []
    arrays = {_PROTO_LIMITS: (0, 0), _PROTO_COUNTS: (0, 0)}
    seen: set[int] = set()
    for number, wire, value_start, value_end in _wire_fields(payload, start, end):
        if number in seen:
            return None
        seen.add(number)
        if number in _PROTO_NUMBERS and wire == 1:
            numbers.append((number, value_start))
        elif number in arrays and wire == 2 and (value_end - value_start) % 8 == 0:
            arrays[number] = (value_start, (value_end - value_start) // 8)
        else:
            return None
    return numbers, (arrays[_PROTO_LIMITS], arrays[_PROTO_COUNTS])


def _tensor_layout(payload: bytes, start: int, end: int) -> tuple[str, tuple[int, int]] | None:
    """(dtype, (offset, elements)) of a float tensor of shape [k, 3], k > 0, in tensor_content."""
    dtype = shape = content = None
    for number, wire, value_start, value_end in _wire_fields(payload, start, end):
        if (number, wire) == (1, 0) and dtype is None:
            dtype = _TENSOR_FLOATS.get(_varint(payload, value_start)[0])
        elif (number, wire) == (2, 2) and shape is None:
            shape = _shape(payload, value_start, value_end)
        elif (number, wire) == (4, 2) and content is None:
            content = (value_start, value_end)
        else:
            return None
    if dtype is None or shape is None or content is None or len(shape) != 2 or shape[1] != 3 or shape[0] < 1:
        return None
    elements = shape[0] * 3
    if content[1] - content[0] != elements * np.dtype(dtype).itemsize:
        return None
    return dtype, (content[0], elements)


def _shape(payload: bytes, start: int, end: int) -> list[int] | None:
    """The sizes of a TensorShapeProto's dims (no names, no unknown rank)."""
    sizes = []
    for number, wire, value_start, value_end in _wire_fields(payload, start, end):
        if (number, wire) != (2, 2):
            return None
        dim = list(_wire_fields(payload, value_start, value_end))
        if len(dim) != 1 or dim[0][:2] != (1, 0):
            return None
        sizes.append(_varint(payload, dim[0][2])[0])
    return sizes


def _checked(template: _HistogramTemplate) -> _HistogramTemplate | None:
    """The template with its plugin, if protobuf reads the same wall time, step, tag and
    histogram from its record as :func:`gather` does."""
    payload = template.payload
    try:
        event = event_pb2.Event.FromString(payload)
    except (DecodeError, RecursionError, ValueError):
        return None
    if event.WhichOneof("what") != "summary" or len(event.summary.value) != 1:
        return None
    value = event.summary.value[0]
    plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
    if value.tag != template.tag or plugin not in ("", HISTOGRAMS_PLUGIN):
        return None  # hparams or text metadata on a histogram: the protobuf path decides
    if struct.pack("<d", event.wall_time) != payload[1:9]:
        return None
    kind = value.WhichOneof("value")
    theirs: Histogram | None
    if kind == "histo" and not template.is_tensor:
        theirs = _proto_histogram(event.step, event.wall_time, value.histo)
    elif kind == "tensor" and template.is_tensor:
        theirs = _tensor_histogram(event.step, event.wall_time, value.tensor)
    else:
        return None
    row = np.frombuffer(payload + bytes(4), f"V{len(payload) + 4}")
    ours = gather(template, row, len(payload) + 4)
    if theirs is None or not _identical(ours[0], theirs):
        return None
    return _HistogramTemplate(
        payload, template.step_width, template.tag, plugin, template.is_tensor, template.dtype,
        template.numbers, template.min_offset, template.max_offset, template.arrays,
    )


def _identical(ours: Histogram, theirs: Histogram) -> bool:
    """Bit for bit: the same step, and the same bytes for every number (NaNs and -0.0 included)."""
    def pack(histogram: Histogram) -> tuple[object, ...]:
        numbers = np.array([histogram.wall_time, histogram.min, histogram.max], np.float64)
        return (
            histogram.step,
            numbers.tobytes(),
            np.ascontiguousarray(histogram.bucket_limits, np.float64).tobytes(),
            np.ascontiguousarray(histogram.bucket_counts, np.float64).tobytes(),
        )

    return pack(ours) == pack(theirs)


def gather(template: _HistogramTemplate, rows: np.ndarray, row_bytes: int) -> HistogramColumns:
    """The histograms of ``rows`` (records of ``template``'s layout, each ``row_bytes`` long),
    read through strided views of their bytes: each number is copied once, into its column."""
    count = rows.size
    itemsize = np.dtype(template.dtype).itemsize

    def strided(offset: int, elements: int | None, dtype: str, every: int = 1) -> np.ndarray:
        """Per row, ``elements`` values of ``dtype`` from ``offset``, one every ``every``
        (None: one value per row, as a 1-d view)."""
        shape, strides = ((count,), (row_bytes,)) if elements is None else (
            (count, elements), (row_bytes, every * np.dtype(dtype).itemsize))
        view: np.ndarray = np.ndarray(shape, dtype, buffer=rows, offset=offset, strides=strides)
        return view

    steps = steps_of(strided(10, None, "<u8"), template.step_width) if template.step_width else np.zeros(count, np.int64)
    wall_times = strided(1, None, "<f8").astype(np.float64)
    if template.is_tensor:  # [left, right, count] rows: the rights and counts, the first left, the last right
        offset, elements = template.arrays[0]
        buckets, dtype = elements // 3, template.dtype
        limits = _as_float64(strided(offset + itemsize, buckets, dtype, every=3), dtype).ravel()
        counts = _as_float64(strided(offset + 2 * itemsize, buckets, dtype, every=3), dtype).ravel()
        mins = _as_float64(strided(offset, None, dtype), dtype)
        maxs = _as_float64(strided(offset + (elements - 2) * itemsize, None, dtype), dtype)
        sizes = (buckets, buckets)
    else:
        (limit_offset, limit_size), (count_offset, count_size) = template.arrays
        limits = strided(limit_offset, limit_size, "<f8").ravel()
        counts = strided(count_offset, count_size, "<f8").ravel()
        mins, maxs = (
            strided(offset, None, "<f8").astype(np.float64) if offset != _ABSENT else np.zeros(count)
            for offset in (template.min_offset, template.max_offset)
        )
        sizes = (limit_size, count_size)
    spans: list[np.ndarray] = []
    for size in sizes:
        spans.extend((np.arange(count, dtype=np.int64) * size, np.full(count, size, np.int64)))
    return HistogramColumns(steps, wall_times, mins, maxs, (spans[0], spans[1], spans[2], spans[3]), limits, counts)


@dataclass(frozen=True)
class HistogramBlock:
    """Histograms the fast path read from records of one layout, one a record, in file order."""

    records: np.ndarray  # record numbers in the file
    codes: np.ndarray  # each histogram's tag, an index into ``tags``
    tags: list[str]
    columns: HistogramColumns

    def subset(self, keep: np.ndarray) -> HistogramBlock:
        """The histograms where ``keep`` is True."""
        picks = np.flatnonzero(keep)
        return HistogramBlock(self.records[picks], self.codes[picks], self.tags, self.columns.take(picks).compact())


class HistogramStore:
    """A file's histograms as read so far: blocks from the fast path and single ones from the
    protobuf path, each with the numbers of its records in the file; grouped by tag, in file
    order, once the file is read."""

    def __init__(self) -> None:
        self.blocks: list[HistogramBlock] = []
        self.singles: list[tuple[int, str, Histogram]] = []

    def add(self, tag: str, record: int, histogram: Histogram) -> None:
        """One histogram the protobuf path read."""
        self.singles.append((record, tag, histogram))

    def add_block(self, block: HistogramBlock) -> None:
        """Histograms the fast path read."""
        self.blocks.append(block)

    def mark(self) -> tuple[int, int]:
        """How much is held, to go back to with :meth:`restore`."""
        return len(self.blocks), len(self.singles)

    def restore(self, mark: tuple[int, int]) -> None:
        """Forget what was added after :meth:`mark` (a window decoded again)."""
        del self.blocks[mark[0] :]
        del self.singles[mark[1] :]

    def columns(self, prefix: str, *, final: bool = False) -> dict[str, HistogramColumns]:
        """Each tag's histograms in file order, tags in the order of their first histogram.

        One sort puts all histograms in (tag, record) order; each tag's columns then point
        into the buckets of all, which are never moved (one copy of the blocks' buckets).
        ``final``: the file is read; the store empties as the blocks are joined.
        """
        codes: dict[str, int] = {}
        parts: list[Sequence[Histogram]] = [block.columns for block in self.blocks]
        records = [block.records for block in self.blocks]
        tag_codes = [np.array([codes.setdefault(tag, len(codes)) for tag in block.tags], np.int64).take(block.codes)
                     for block in self.blocks]
        if self.singles:
            parts.append(HistogramColumns.of(histogram for _, _, histogram in self.singles))
            records.append(np.array([record for record, _, _ in self.singles], np.int64))
            tag_codes.append(np.array([codes.setdefault(tag, len(codes)) for _, tag, _ in self.singles], np.int64))
        if not parts:
            return {}
        all_codes, all_records = np.concatenate(tag_codes), np.concatenate(records)
        order = np.lexsort((all_records, all_codes))
        if final:
            self.blocks, self.singles = [], []
        joined = HistogramColumns.drain(parts)
        ends = np.cumsum(np.bincount(all_codes, minlength=len(codes))).tolist()
        starts = [0, *ends[:-1]]
        firsts = all_records[order]
        tags = sorted((int(firsts[start]), tag, start, end) for tag, start, end in zip(codes, starts, ends) if end > start)
        return {prefix + tag: joined.take(order[start:end]) for _, tag, start, end in tags}
