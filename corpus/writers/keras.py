"""Keras ``CSVLogger``: one row per epoch, ``epoch`` (from 0) then the log keys sorted.

Keras writes with ``csv.DictWriter`` (excel dialect, CRLF line ends); a value is ``str`` of
the Python float Keras holds, and epoch means are what Keras reports at an epoch's end.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from corpus.trace import EPOCH, EVAL, Trace
from corpus.writers.common import f32

KERAS_NAMES = {"acc": "accuracy", "loss": "loss", "lr": "learning_rate",
               "val_acc": "val_accuracy", "val_loss": "val_loss", "val_mae": "val_mae"}


def write(trace: Trace, run_dir: Path, *, filename: str = "training.log", learning_rate: bool = True) -> Path:
    epochs: dict[int, dict[str, float]] = {}
    for p in trace.points:
        if p.kind in (EPOCH, EVAL):
            row = epochs.setdefault(p.epoch, {})
            for key, value in p.values.items():
                name = KERAS_NAMES.get(key)
                if name is not None and (learning_rate or name != "learning_rate"):
                    row[name] = f32(value)
    keys = sorted(set().union(*epochs.values()))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=["epoch", *keys], restval="NA")
    writer.writeheader()
    for epoch in sorted(epochs):
        writer.writerow({"epoch": epoch, **epochs[epoch]})
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / filename
    path.write_bytes(buffer.getvalue().encode())
    return path
