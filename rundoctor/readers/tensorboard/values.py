"""What an event's values hold: numbers of any dtype, histograms, and the tally of what was skipped."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2

from rundoctor.series import Histogram, NoteKind, ReadNote

SCALARS_PLUGIN = "scalars"
HISTOGRAMS_PLUGIN = "histograms"
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_LFS_REASON = "Git LFS pointer, not an event file (the real file was never fetched)"
_NO_HEADER_REASON = "no valid TFRecord header: not an event file"

# TensorProto dtype -> how one element is stored (little-endian); bfloat16 has no numpy type.
_TENSOR_DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    14: "bfloat16",  # DT_BFLOAT16
    17: "<u2",  # DT_UINT16
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
# Where a TensorProto without tensor_content keeps values of each dtype.
_TYPED_FIELDS: dict[int, str] = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    4: "int_val",
    5: "int_val",
    6: "int_val",
    9: "int64_val",
    10: "bool_val",
    14: "half_val",
    17: "int_val",
    19: "half_val",
    22: "uint32_val",
    23: "uint64_val",
}

# Scalars and histograms are small; a larger shape (which TensorFlow would fill with zeros
# when no values are stored) is not worth the memory.
_MAX_TENSOR_ELEMENTS = 1 << 20


class _NotAnEventFile(Exception):
    """A file that holds not even one valid record header."""

    def __init__(self, kind: NoteKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# ---------------------------------------------------------------------------------------
# Decoding values, shared by both paths.


def _storage_dtype(dtype: str) -> str:
    return "<u2" if dtype == "bfloat16" else dtype


def _as_float64(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        widened: np.ndarray = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
        return widened
    return raw.astype(np.float64)


def tensor_numbers(tensor: tensor_pb2.TensorProto) -> np.ndarray | None:
    """The elements of a numeric tensor as float64, or None for strings and malformed ones."""
    dtype = _TENSOR_DTYPES.get(tensor.dtype)
    if dtype is None:
        return None
    size = math.prod(dim.size for dim in tensor.tensor_shape.dim)
    if not 0 <= size <= _MAX_TENSOR_ELEMENTS:
        return None
    storage = _storage_dtype(dtype)
    if tensor.tensor_content:
        if len(tensor.tensor_content) != size * np.dtype(storage).itemsize:
            return None
        raw = np.frombuffer(tensor.tensor_content, storage)
    else:
        typed = getattr(tensor, _TYPED_FIELDS[tensor.dtype])
        try:
            if tensor.dtype in (14, 19):  # half_val holds the 16 bits of each value
                raw = np.array(typed, np.uint16).view(storage)
            else:
                raw = np.array(typed, storage)
        except OverflowError:  # a value out of the dtype's range: a malformed tensor
            return None
        if 0 < raw.size < size:  # TensorFlow repeats the last value to fill the shape
            raw = np.concatenate([raw, np.repeat(raw[-1:], size - raw.size)])
        elif raw.size == 0:
            raw = np.zeros(size, storage)
        if raw.size != size:
            return None
    return _as_float64(raw, dtype)


def _tensor_histogram(step: int, wall_time: float, tensor: tensor_pb2.TensorProto) -> Histogram | None:
    """A TF2 histogram: a k x 3 tensor of [left edge, right edge, count] rows."""
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    numbers = tensor_numbers(tensor)
    if numbers is None or len(dims) != 2 or dims[1] != 3:
        return None
    rows = numbers.reshape(dims)
    lowest = float(rows[0, 0]) if rows.size else math.nan
    highest = float(rows[-1, 1]) if rows.size else math.nan
    return Histogram(step, wall_time, rows[:, 1].copy(), rows[:, 2].copy(), lowest, highest)


def _proto_histogram(step: int, wall_time: float, histo: summary_pb2.HistogramProto) -> Histogram:
    return Histogram(
        step,
        wall_time,
        np.array(histo.bucket_limit, np.float64),
        np.array(histo.bucket, np.float64),
        histo.min,
        histo.max,
    )


# What the skip note calls each kind of value; other plugins are named after the plugin.
_SKIP_NOUNS: dict[str, tuple[str, str]] = {
    "text": ("text value", "text values"),
    "images": ("image", "images"),
    "audio": ("audio clip", "audio clips"),
    "graph": ("graph definition", "graph definitions"),
    "run_metadata": ("run metadata record", "run metadata records"),
    "session_log": ("session log event", "session log events"),
    "log_message": ("log message", "log messages"),
    "": ("tensor without plugin metadata", "tensors without plugin metadata"),
    "malformed": ("unreadable histogram or tensor", "unreadable histograms or tensors"),
    "empty": ("value without data", "values without data"),
    "obsolete_old_style_histogram": ("old-style histogram", "old-style histograms"),
}


class _SkipTally:
    """What a file held that is not a scalar or a histogram, for one summary note."""

    _SHOWN_TAGS = 3

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.tags: dict[str, list[str]] = {}

    def copy(self) -> _SkipTally:
        tally = _SkipTally()
        tally.counts = dict(self.counts)
        tally.tags = {kind: list(tags) for kind, tags in self.tags.items()}
        return tally

    def add(self, kind: str, tag: str | None = None, count: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count
        if tag is not None:
            tags = self.tags.setdefault(kind, [])
            if tag not in tags:
                tags.append(tag)

    def note(self, source: Path) -> ReadNote | None:
        if not self.counts:
            return None
        parts = []
        known = list(_SKIP_NOUNS)
        for kind, count in sorted(
            self.counts.items(), key=lambda item: known.index(item[0]) if item[0] in known else len(known)
        ):
            singular, plural = _SKIP_NOUNS.get(kind, (f"{kind} plugin value", f"{kind} plugin values"))
            part = f"{count} {singular if count == 1 else plural}"
            tags = self.tags.get(kind, [])
            if tags:
                shown = ", ".join(tags[: self._SHOWN_TAGS])
                part += f" ({shown}{', ...' if len(tags) > self._SHOWN_TAGS else ''})"
            parts.append(part)
        return ReadNote(
            NoteKind.SKIPPED, str(source), "skipped " + ", ".join(parts), count=sum(self.counts.values())
        )


_PLUGIN_SKIP_KIND = {
    "text": "text",
    "images": "images",
    "audio": "audio",
    "graph_keras_model": "graph",
    "graph_run_metadata": "run_metadata",
    "graph_run_metadata_graph": "run_metadata",
}
_EVENT_SKIP_KIND = {
    "graph_def": "graph",
    "meta_graph_def": "graph",
    "tagged_run_metadata": "run_metadata",
    "session_log": "session_log",
    "log_message": "log_message",
}


def _scalar_of(value: summary_pb2.Summary.Value) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        numbers = tensor_numbers(value.tensor)
        if numbers is not None and numbers.size == 1:
            return float(numbers[0])
    return None
