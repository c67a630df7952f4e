"""Write a histogram run as PyTorch's SummaryWriter or as Keras' TensorBoard callback writes it.

``pytorch``: the run's scalars and histograms go through ``SummaryWriter.add_scalar`` and
``SummaryWriter.add_histogram`` (HistogramProto with TensorFlow's default buckets), exactly as
training code calls them.  Only the event file itself is replaced: SummaryWriter names its
file after the clock, host, process id and a per-process counter and stamps its first record
with the clock, so :class:`FixedFileWriter` writes the same records to a fixed name with the
run's own clock, keeping the archive reproducible.

``keras``: TF2's layout, ``train/`` and ``validation/`` folders of ``.v2`` event files with
rank-0 float32 tensors of the scalars plugin (``epoch_loss``, ``epoch_accuracy``) and, in
``train/``, one histogram per weight per epoch as a k x 3 float64 tensor of the histograms
plugin (tensorboard's ``histogram_pb``, TF2's 30 equal-width buckets), named as Keras names
weights: ``dense/kernel_0``, ``dense_1/bias_0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.histogram.summary_v2 import histogram_pb
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from torch.utils.tensorboard import SummaryWriter

from corpus.histograms.train import Record
from corpus.trace import EPOCH, EVAL, TRAIN
from corpus.writers.common import stamp
from corpus.writers.tensorboard import frame

# How each kind of tensor is tagged: {style: {kind: format}} (``{layer}`` as logged).
TAG_STYLES: dict[str, dict[str, str]] = {
    "dotted": {"weight": "{layer}.weight", "bias": "{layer}.bias", "grad_weight": "{layer}.weight.grad",
               "activation": "activations/{layer}"},
    "folders": {"weight": "weights/{layer}.weight", "bias": "weights/{layer}.bias", "grad_weight": "grad/{layer}.weight",
                "grad_bias": "grad/{layer}.bias", "activation": "act/{layer}"},
    # weights and their gradients only: no bias histogram tells a layer's fan-out
    "weights-only": {"weight": "{layer}.weight", "grad_weight": "{layer}.weight.grad", "activation": "{layer}/relu"},
}
SCALAR_TAGS = {"loss": "train/loss", "lr": "lr", "val_loss": "val/loss", "val_acc": "val/acc"}
HOST, PID = "gpu-node-7", 31337


class FixedFileWriter:
    """The part of torch's FileWriter SummaryWriter talks to, writing to one fixed file name."""

    def __init__(self, log_dir: Path, wall: float) -> None:
        self.log_dir = log_dir
        self.path = log_dir / f"events.out.tfevents.{stamp(wall)}.{HOST}.{PID}.0"
        header = event_pb2.Event(wall_time=wall, file_version="brain.Event:2")
        header.source_metadata.writer = "tensorboard.summary.writer.event_file_writer"
        self.records = [frame(header.SerializeToString())]

    def get_logdir(self) -> str:
        return str(self.log_dir)

    def add_event(self, event: event_pb2.Event, step: int | None = None, walltime: float | None = None) -> None:
        assert walltime is not None, "every record carries the run's own clock"
        event.wall_time = walltime
        if step is not None:
            event.step = int(step)
        self.records.append(frame(event.SerializeToString()))

    def add_summary(self, summary: Any, global_step: int | None = None, walltime: float | None = None) -> None:
        self.add_event(event_pb2.Event(summary=summary), global_step, walltime)

    def flush(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"".join(self.records))

    def close(self) -> None:
        self.flush()


class RunSummaryWriter(SummaryWriter):
    """torch's SummaryWriter whose file writer is a :class:`FixedFileWriter`."""

    def __init__(self, log_dir: Path, wall: float) -> None:
        self._fixed = FixedFileWriter(log_dir, wall)
        super().__init__(str(log_dir))

    def _get_file_writer(self) -> Any:
        if self.file_writer is None:
            self.file_writer = self._fixed
            self.all_writers = {str(self._fixed.log_dir): self._fixed}
        return self.file_writer


def write_pytorch(record: Record, run_dir: Path, *, style: str = "dotted") -> Path:
    """The run as a PyTorch script logs it; returns the run directory."""
    tags = TAG_STYLES[style]
    trace = record.trace
    writer = RunSummaryWriter(run_dir, trace.start_wall - 1.5)
    walls = {point.step: point.wall for point in trace.points}
    histograms: dict[int, list[tuple[str, str, np.ndarray]]] = {}
    for kind, layer, step, values in record.histograms:
        histograms.setdefault(step, []).append((kind, layer, values))
    scalar_steps = sorted({point.step for point in trace.points} | set(histograms))
    by_step: dict[int, list[Any]] = {}
    for point in trace.points:
        by_step.setdefault(point.step, []).append(point)
    for step in scalar_steps:
        wall = walls.get(step, trace.start_wall + 0.06 * step)
        for point in by_step.get(step, []):
            for key, value in point.values.items():
                if point.kind in (TRAIN, EVAL) and key in SCALAR_TAGS:
                    writer.add_scalar(SCALAR_TAGS[key], value, step, walltime=point.wall)
        for kind, layer, values in histograms.get(step, []):
            if kind in tags and np.isfinite(values).all():  # add_histogram cannot bucket NaN or inf
                writer.add_histogram(tags[kind].format(layer=layer), values, step, walltime=wall + 0.01)
    writer.close()
    return run_dir


def write_keras(record: Record, run_dir: Path) -> Path:
    """The run as Keras' ``TensorBoard(histogram_freq=1)`` callback logs it; returns the run directory."""
    trace = record.trace
    names = {name: "dense" if index == 0 else f"dense_{index}" for index, (name, *_rest) in enumerate(record.layers)}
    train: list[bytes] = []
    validation: list[bytes] = []
    by_epoch: dict[int, list[tuple[str, str, np.ndarray]]] = {}
    for kind, layer, epoch, values in record.histograms:
        by_epoch.setdefault(epoch, []).append((kind, layer, values))
    for point in trace.points:
        epoch, wall = point.step, point.wall
        if point.kind == EPOCH:
            for key, tag in (("loss", "epoch_loss"), ("acc", "epoch_accuracy")):
                train.append(_summary_event(scalar_pb(tag, np.float32(point.values[key])), epoch, wall))
            for kind, layer, values in by_epoch.get(epoch, []):
                tag = f"{names[layer]}/{'kernel' if kind == 'weight' else 'bias'}_0"
                train.append(_summary_event(histogram_pb(tag, values.astype(np.float64)), epoch, wall + 0.001))
        elif point.kind == EVAL:
            for key, tag in (("val_loss", "epoch_loss"), ("val_acc", "epoch_accuracy")):
                validation.append(_summary_event(scalar_pb(tag, np.float32(point.values[key])), epoch, wall + 0.002))
    for folder, records in (("train", train), ("validation", validation)):
        wall = trace.start_wall - 2.0
        header = event_pb2.Event(wall_time=wall, file_version="brain.Event:2").SerializeToString()
        path = run_dir / folder / f"events.out.tfevents.{stamp(wall)}.{HOST}.{PID}.{0 if folder == 'train' else 1}.v2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(frame(record) for record in [header, *records]))
    return run_dir


def _summary_event(summary: Any, step: int, wall: float) -> bytes:
    return event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString()
