"""Reading and checking logged histograms: rundoctor against tensorboard's EventAccumulator.

    python bench/histograms.py                        # 100 layers x 1,000 steps, both encodings
    python bench/histograms.py --layers 20 --steps 200 --repeat 1   # a quick look

Writes one run per encoding, each with one weight histogram per layer per step plus a training
loss, the way a training loop that calls ``add_histogram`` on every parameter leaves it:

- **HistogramProto** (PyTorch's SummaryWriter, tensorboardX, TF1): TensorFlow's default
  buckets merged as ``add_histogram(..., max_bins=64)`` merges them (PyTorch's default keeps
  all ~500 buckets a weight matrix spans, which would make the file ten times larger
  without changing what is compared);
- **TF2 tensors**: a [30, 3] float64 tensor of [left, right, count] rows per histogram, with
  the histograms plugin's metadata on each tag's first value.

Then it times, each in a fresh process (through the launcher of ``run_bench.py``, best of
``--repeat``): ``rundoctor check RUN --format json`` (reading every histogram and running
every check, the histogram checks included), and EventAccumulator keeping every histogram
(``size_guidance`` 0) and handing them over: ``.Histograms(tag)`` for HistogramProto, and
``.Tensors(tag)`` decoded to arrays for TF2.  The target is rundoctor at least 20x faster.

Both tools run from compiled bytecode, as installed packages do: a machine that sets
``PYTHONDONTWRITEBYTECODE`` would otherwise have every rundoctor process compile its ~100
modules from a source checkout (~0.2 s) while tensorboard's were compiled when pip installed
it.  So the timed processes share a bytecode cache in the scratch directory
(``PYTHONPYCACHEPREFIX``), which one untimed run of each tool on a small run fills first.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import run_bench as rb
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from rundoctor.readers.tfrecord import masked_crc32c

T0 = 1_700_000_000.0
TF2_BUCKETS = 30
TARGET = 20.0


def _edges() -> np.ndarray:
    """TensorFlow's default buckets merged 24 at a time (``max_bins=64``)."""
    positive = [1e-12]
    while positive[-1] * 1.1 < 1e20:
        positive.append(positive[-1] * 1.1)
    edges = np.concatenate((-np.array(positive)[::-1], [0.0], positive))
    return np.concatenate((edges[:-1:24], edges[-1:]))


EDGES = _edges()


def _record(event: event_pb2.Event) -> bytes:
    payload = event.SerializeToString()
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def _weights(layer: int, step: int, steps: int) -> np.ndarray:
    """A layer's weights at a step: PyTorch's default uniform init, spreading as it trains."""
    generator = np.random.default_rng(layer)
    bound = 1 / np.sqrt(64 + layer)
    return generator.uniform(-bound, bound, 512) * (1 + 0.5 * step / steps)


def _proto_value(values: np.ndarray) -> summary_pb2.Summary.Value:
    counts, _ = np.histogram(values, bins=EDGES)
    occupied = np.flatnonzero(counts)
    start, end = max(occupied[0] - 1, 0), occupied[-1] + 1
    return summary_pb2.Summary.Value(histo=summary_pb2.HistogramProto(
        min=float(values.min()), max=float(values.max()), num=float(values.size), sum=float(values.sum()),
        sum_squares=float(values @ values), bucket_limit=EDGES[start + 1 : end + 1].tolist(),
        bucket=counts[start:end].astype(float).tolist()))


def _tensor_value(values: np.ndarray, first: bool) -> summary_pb2.Summary.Value:
    edges = np.linspace(values.min(), values.max(), TF2_BUCKETS + 1)
    counts, _ = np.histogram(values, bins=edges)
    rows = np.stack([edges[:-1], edges[1:], counts], axis=1).astype("<f8")
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_content=rows.tobytes(),
                                    tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in rows.shape]))
    value = summary_pb2.Summary.Value(tensor=tensor)
    if first:
        value.metadata.plugin_data.plugin_name = "histograms"
    return value


def write_run(run: Path, layers: int, steps: int, encoding: str) -> int:
    """One event file of ``layers`` weight histograms per step for ``steps`` steps; returns its size."""
    run.mkdir(parents=True)
    path = run / f"events.out.tfevents.1700000000.bench.1.0{'.v2' if encoding == 'tf2' else ''}"
    with path.open("wb") as out:
        out.write(_record(event_pb2.Event(wall_time=T0, file_version="brain.Event:2")))
        for step in range(steps):
            loss = summary_pb2.Summary.Value(tag="train/loss", simple_value=2.0 * np.exp(-3.0 * step / steps) + 0.1)
            out.write(_record(event_pb2.Event(wall_time=T0 + step, step=step, summary=summary_pb2.Summary(value=[loss]))))
            for layer in range(layers):
                values = _weights(layer, step, steps)
                value = _proto_value(values) if encoding == "proto" else _tensor_value(values, step == 0)
                value.tag = f"layers.{layer}.weight"
                out.write(_record(event_pb2.Event(wall_time=T0 + step + 0.5, step=step,
                                                  summary=summary_pb2.Summary(value=[value]))))
    return path.stat().st_size


def ea_histograms(path: str) -> int:
    """EventAccumulator keeping every histogram: HistogramProto through .Histograms(tag), TF2 tensors
    through .Tensors(tag) decoded to [k, 3] arrays."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(path, size_guidance={"histograms": 0, "tensors": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    count = sum(len(accumulator.Histograms(tag)) for tag in tags["histograms"])
    for tag in tags["tensors"]:
        count += sum(tensor_util.make_ndarray(event.tensor_proto).shape[0] > 0 for event in accumulator.Tensors(tag))
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--peer", nargs=1, metavar="PATH", help=argparse.SUPPRESS)  # the EventAccumulator process
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tool (the best is kept)")
    args = parser.parse_args()
    if args.peer:
        print(json.dumps({"points": ea_histograms(args.peer[0])}))
        return 0
    command = rb.rundoctor_command(as_module=False).rundoctor
    print(f"{args.layers} layers x {args.steps} steps = {args.layers * args.steps:,} histograms per run\n")
    print("| encoding | file (MB) | rundoctor check (s) | EventAccumulator (s) | speed-up | target | "
          "CPU: rundoctor (s) | CPU: EventAccumulator (s) | CPU speed-up |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "bytecode")
        for encoding in ("proto", "tf2"):  # untimed: fills the bytecode cache (see the docstring)
            warm_up = Path(scratch) / f"warm-up-{encoding}"
            write_run(warm_up, 2, 3, encoding)
            rb.run_once([*command, "check", str(warm_up), "--format", "json", "-o", os.devnull], Path(scratch),
                        timeout=600.0, count=None)
            rb.run_once([sys.executable, str(Path(__file__).resolve()), "--peer", str(warm_up)], Path(scratch),
                        timeout=600.0, count=None)
        for encoding, name in (("proto", "HistogramProto"), ("tf2", "TF2 tensors")):
            run = Path(scratch) / encoding
            size = write_run(run, args.layers, args.steps, encoding)
            ours = [rb.run_once([*command, "check", str(run), "--format", "json", "-o", "/dev/null"],
                                Path(scratch), timeout=3600.0, count=None) for _ in range(args.repeat)]
            theirs = [rb.run_once([sys.executable, str(Path(__file__).resolve()), "--peer", str(run)],
                                  Path(scratch), timeout=3600.0, count=rb.peer_points) for _ in range(args.repeat)]
            failed = [s for s in ours if s.exit_code not in rb.CHECK_EXITS or s.timed_out] + [
                s for s in theirs if s.exit_code != 0 or s.timed_out]
            if failed:
                print(f"| {name} | {size / 1e6:.0f} | FAILED: {failed[0].message} | | | |")
                continue
            expected = args.layers * args.steps
            if any(sample.points != expected for sample in theirs):
                print(f"| {name} | EventAccumulator handed over {theirs[0].points} of {expected} histograms | | | | |")
            mine, peer = min(s.seconds for s in ours), min(s.seconds for s in theirs)
            verdict = "met" if peer / mine >= TARGET else "missed"
            # CPU time (user + system) as well: on a shared, loaded machine a short process
            # waits for a core a larger share of its wall time than a long one.
            mine_cpu, peer_cpu = min(s.cpu_seconds for s in ours), min(s.cpu_seconds for s in theirs)
            print(f"| {name} | {size / 1e6:.0f} | {mine:.2f} | {peer:.2f} | {peer / mine:.0f}x | >= {TARGET:g}x: {verdict} | "
                  f"{mine_cpu:.2f} | {peer_cpu:.2f} | {peer_cpu / mine_cpu:.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
