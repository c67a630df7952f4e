"""PyTorch ``SummaryWriter`` event files, written with tensorboard's protos.

A file is ``events.out.tfevents.<10-digit time>.<host>.<pid>.<writer index>``; each record is
TFRecord-framed (length, masked crc32c of the length, payload, masked crc32c of the payload).
The first event carries ``file_version = "brain.Event:2"``; every ``add_scalar`` call is one
event with one ``simple_value``.  A resumed job is a new process, so it writes a second file
into the same run directory.  ``cut_fraction`` truncates the last file inside a record, as a
crash in the middle of a write leaves it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
from tensorboard.compat.proto import event_pb2

from corpus.trace import EPOCH, EVAL, TRAIN, Trace
from corpus.writers.common import f32, stamp

# Tag conventions seen in real projects: {trace kind: {trace key: tag}}.
STYLES: dict[str, dict[str, dict[str, str]]] = {
    "slash": {
        TRAIN: {"loss": "train/loss", "lr": "lr", "grad_norm": "train/grad_norm", "acc": "train/acc"},
        EVAL: {"val_loss": "val/loss", "val_acc": "val/acc", "val_mae": "val/mae"},
        EPOCH: {},
    },
    "capital": {
        TRAIN: {"loss": "Loss/train", "lr": "LR"},
        EVAL: {"val_loss": "Loss/val", "val_acc": "Accuracy/val", "val_mae": "MAE/val"},
        EPOCH: {"acc": "Accuracy/train"},
    },
    "minimal": {TRAIN: {"loss": "train/loss"}, EVAL: {"val_loss": "val/loss", "val_acc": "val/acc"}, EPOCH: {}},
    "detection": {
        TRAIN: {"loss": "train/loss", "box_loss": "train/box_loss", "cls_loss": "train/cls_loss",
                "dfl_loss": "train/dfl_loss", "lr": "lr/pg0"},
        EVAL: {"val_loss": "val/loss", "val_box_loss": "val/box_loss", "val_cls_loss": "val/cls_loss",
               "val_dfl_loss": "val/dfl_loss", "precision": "metrics/precision", "recall": "metrics/recall",
               "map50": "metrics/mAP50", "map50_95": "metrics/mAP50-95"},
        EPOCH: {},
    },
}


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", masked_crc32c(length)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


def _scalar(tag: str, value: float, step: int, wall: float) -> bytes:
    event = event_pb2.Event(wall_time=wall, step=step)
    event.summary.value.add(tag=tag, simple_value=f32(value))
    return event.SerializeToString()


def write(trace: Trace, run_dir: Path, *, style: str = "slash", host: str = "gpu-node-3",
          pid: int = 4242, cut_fraction: float | None = None, cut_seed: int = 0) -> Path:
    """Write the event file(s); return the run directory (what rundoctor calls the run)."""
    tags = STYLES[style]
    segments: dict[int, list[bytes]] = {}
    walls: dict[int, float] = {}
    for point in trace.points:
        records = segments.setdefault(point.segment, [])
        if not records:
            walls[point.segment] = point.wall - 1.5
            records.append(event_pb2.Event(wall_time=point.wall - 1.5,
                                           file_version="brain.Event:2").SerializeToString())
        for key, value in point.values.items():
            tag = tags[point.kind].get(key)
            if tag is not None:
                records.append(_scalar(tag, value, point.step, point.wall))
    run_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for segment, records in sorted(segments.items()):
        name = f"events.out.tfevents.{stamp(walls[segment])}.{host}.{pid + 7 * segment}.0"
        blobs = [frame(r) for r in records]
        files.append((run_dir / name, blobs))
    if cut_fraction is not None:
        path, blobs = files[-1]
        keep = max(2, int(len(blobs) * cut_fraction))
        partial = blobs[keep - 1]
        cut = 1 + (int(cut_fraction * 1e4) * 7919 + cut_seed) % (len(partial) - 1)  # inside, never at an edge
        files[-1] = (path, [*blobs[:keep - 1], partial[:cut]])
    for path, blobs in files:
        path.write_bytes(b"".join(blobs))
    return run_dir
