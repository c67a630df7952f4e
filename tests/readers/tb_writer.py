"""Write TensorBoard event files for tests with tensorboard's own protos.

The TFRecord framing and its masked crc32c are written here, independently of the reader
(the crc comes from ``google_crc32c`` and is checked against tensorboard's pure-Python
implementation in the tests); no torch or TensorFlow is needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import google_crc32c
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata

# numpy dtype name -> (TensorProto dtype, typed field used when tensor_content is not)
TENSOR_DTYPES: dict[str, tuple[int, str]] = {
    "float32": (1, "float_val"),
    "float64": (2, "double_val"),
    "int32": (3, "int_val"),
    "uint8": (4, "int_val"),
    "int16": (5, "int_val"),
    "int8": (6, "int_val"),
    "int64": (9, "int64_val"),
    "bool": (10, "bool_val"),
    "bfloat16": (14, "half_val"),
    "uint16": (17, "int_val"),
    "float16": (19, "half_val"),
    "uint32": (22, "uint32_val"),
    "uint64": (23, "uint64_val"),
}


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    """One TFRecord: length, masked crc of the length, payload, masked crc of the payload."""
    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


def write_event_file(path: Path, events: Iterable[event_pb2.Event | bytes]) -> list[int]:
    """Write the records and return the offset where each one ends."""
    ends = []
    blob = bytearray()
    for event in events:
        payload = event if isinstance(event, bytes) else event.SerializeToString()
        blob += frame(payload)
        ends.append(len(blob))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(blob))
    return ends


def header_event(wall_time: float = 1_700_000_000.0) -> event_pb2.Event:
    return event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")


def _event(step: int, wall_time: float, *values: summary_pb2.Summary.Value) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=wall_time, step=step)
    event.summary.value.extend(values)
    return event


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> event_pb2.Event:
    """What torch's SummaryWriter.add_scalar writes: a simple_value."""
    return _event(step, wall_time, summary_pb2.Summary.Value(tag=tag, simple_value=value))


def multi_scalar_event(pairs: list[tuple[str, float]], step: int, wall_time: float) -> event_pb2.Event:
    """Several simple values in one summary (TF1 writers merge summaries this way)."""
    return _event(step, wall_time, *(summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in pairs))


def scalar_tensor(value: float | bool, dtype: str, *, typed: bool = False) -> tensor_pb2.TensorProto:
    """A rank-0 tensor of ``dtype``: raw bytes in tensor_content, or the dtype's typed field."""
    code, field = TENSOR_DTYPES[dtype]
    tensor = tensor_pb2.TensorProto(dtype=code)
    tensor.tensor_shape.SetInParent()
    if dtype == "bfloat16":
        bits = int(np.array(value, np.float32).view(np.uint32) >> 16)
        raw, typed_value = struct.pack("<H", bits), bits
    elif dtype == "float16":
        raw = np.array(value, np.float16).tobytes()
        typed_value = int(np.frombuffer(raw, np.uint16)[0])
    else:
        raw = np.array(value, dtype).tobytes()
        typed_value = np.array(value, dtype).item()
    if typed:
        getattr(tensor, field).append(typed_value)
    else:
        tensor.tensor_content = raw
    return tensor


def tensor_scalar_event(
    tag: str,
    value: float | bool,
    step: int,
    wall_time: float,
    *,
    dtype: str = "float32",
    typed: bool = False,
    with_metadata: bool = True,
) -> event_pb2.Event:
    """What TF2's tf.summary.scalar writes; TF2 attaches the metadata to a tag's first value only."""
    value_proto = summary_pb2.Summary.Value(tag=tag, tensor=scalar_tensor(value, dtype, typed=typed))
    if with_metadata:
        value_proto.metadata.CopyFrom(
            scalar_metadata.create_summary_metadata(display_name=None, description=None)
        )
    return _event(step, wall_time, value_proto)


def histogram_event(
    tag: str, values: np.ndarray, step: int, wall_time: float, bins: int = 10
) -> event_pb2.Event:
    """A HistogramProto, as torch's add_histogram writes."""
    counts, edges = np.histogram(values, bins=bins)
    histo = summary_pb2.HistogramProto(
        min=float(values.min()),
        max=float(values.max()),
        num=float(values.size),
        sum=float(values.sum()),
        sum_squares=float((values**2).sum()),
    )
    histo.bucket_limit.extend(edges[1:].tolist())
    histo.bucket.extend(counts.astype(float).tolist())
    return _event(step, wall_time, summary_pb2.Summary.Value(tag=tag, histo=histo))


def tensor_histogram_event(
    tag: str, rows: np.ndarray, step: int, wall_time: float, *, with_metadata: bool = True
) -> event_pb2.Event:
    """A TF2 histogram: a k x 3 float64 tensor of [left edge, right edge, count]."""
    tensor = tensor_pb2.TensorProto(dtype=2, tensor_content=np.asarray(rows, "<f8").tobytes())
    for size in rows.shape:
        tensor.tensor_shape.dim.add(size=size)
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if with_metadata:
        value.metadata.CopyFrom(
            histogram_metadata.create_summary_metadata(display_name=None, description=None)
        )
    return _event(step, wall_time, value)


def text_event(tag: str, text: str, step: int, wall_time: float) -> event_pb2.Event:
    """A text summary (HF Trainer writes its arguments this way)."""
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=[text.encode()])
    tensor.tensor_shape.dim.add(size=1)
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    value.metadata.CopyFrom(text_metadata.create_summary_metadata(display_name=None, description=None))
    return _event(step, wall_time, value)


def image_event(tag: str, step: int, wall_time: float) -> event_pb2.Event:
    image = summary_pb2.Summary.Image(height=1, width=1, colorspace=1, encoded_image_string=b"\x89PNG")
    return _event(step, wall_time, summary_pb2.Summary.Value(tag=tag, image=image))
