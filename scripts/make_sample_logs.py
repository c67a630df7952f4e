"""Write sample_logs/: small, deterministic logs in every supported format.

    python scripts/make_sample_logs.py [--out sample_logs]

``healthy/`` holds runs that must trigger nothing; ``problems/`` holds one run per failure
mode, named after the check it shows (``EXPECTED`` maps run directories to check names and is
what the tests assert).  Curves are seeded, wall times fixed and file names stable, so two
machines write byte-identical files.  TensorBoard files are written with tensorboard's own
record writer and protos (no TensorFlow or PyTorch).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

T0 = 1_700_000_000.0
Series = Mapping[str, tuple[Sequence[int], Sequence[float]]]

# run path (relative to the output) -> checks that must fire there; healthy runs fire nothing.
EXPECTED: dict[str, tuple[str, ...]] = {
    "healthy/pytorch_tb": (),
    "healthy/lightning/version_0/metrics.csv": (),
    "healthy/yolov8/results.csv": (),
    "healthy/hf_trainer/checkpoint-600/trainer_state.json": (),
    "healthy/mlflow/mlruns/1/0f3c2a9d4e5b46c7a1b2c3d4e5f60718": (),
    "problems/non_finite_tb": ("non-finite",),
    "problems/divergence_mmdet/20240101_000000.log.json": ("loss-divergence",),
    "problems/loss_magnitude.csv": ("loss-magnitude",),
    "problems/no_learning_keras/training.log": ("no-learning", "chance-level"),
    "problems/lr_too_low_hf/trainer_state.json": ("lr-too-low",),
    "problems/plateau_lightning/version_0/metrics.csv": ("loss-plateau",),
    "problems/oscillation_long.csv": ("loss-oscillation",),
    "problems/spikes_detectron2/metrics.json": ("loss-spikes",),
    "problems/still_improving_mlflow/mlruns/2/5a6b7c8d9e0f41a2b3c4d5e6f7a8b9c0": ("still-improving",),
    "problems/flat_accuracy_tb": ("metric-flat-loss-falling",),
    "problems/grokking/wandb-history.jsonl": ("delayed-generalization",),
    "problems/class_imbalance.jsonl": ("class-imbalance",),
    "problems/underconfident_tb": ("underconfident",),
    "problems/percent_accuracy_history.json": ("metric-out-of-range",),
    "problems/frozen_eval_tb": ("metric-loss-disagreement", "metric-flat-loss-falling"),
    "problems/overfitting_keras_tf2": ("overfitting",),
    "problems/val_better_than_train.csv": ("val-better-than-train",),
    "problems/loss_scale_mmengine/scalars.json": ("loss-scale-imbalance",),
    "problems/resumed_tb": ("duplicate-steps",),
    "problems/truncated_tb": ("truncated-log",),
    "problems/grad_clipping.jsonl": ("grad-norm",),
    "healthy/pytorch_histograms_tb": (),
    "problems/dead_relu_tb": ("dead-units",),
    "problems/saturated_sigmoid_tb": ("saturated-activations",),
    "problems/vanishing_gradients_tb": ("vanishing-gradients",),
    "problems/exploding_gradients_tb": ("exploding-gradients",),
    "problems/frozen_layer_keras_tf2": ("update-ratio",),
    "problems/zero_init_tb": ("weight-init",),
}


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def decay(n: int, start: float, end: float, rate: float = 5.0) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    return end + (start - end) * np.exp(-rate * t)


def converging(n: int, start: float, end: float) -> np.ndarray:
    """A loss that follows a decaying schedule down and settles as the learning rate ends."""
    return end + (start - end) * (1.0 - np.linspace(0.0, 1.0, n)) ** 4


def noisy(values: np.ndarray, relative: float, seed: int) -> np.ndarray:
    return values * (1.0 + relative * rng(seed).standard_normal(values.size))


def cosine_lr(n: int, peak: float, warmup: int = 0) -> np.ndarray:
    t = np.arange(n)
    lr = peak * 0.5 * (1 + np.cos(np.pi * t / n))
    if warmup:
        lr[:warmup] = peak * (t[:warmup] + 1) / warmup
    return lr


# --- TensorBoard ---------------------------------------------------------------------------


def _event_file(directory: Path, index: int = 0, stamp: int = 1_700_000_000, suffix: str = "") -> Path:
    """A file name as torch writes it (TF2 adds ``.v2``); the host name is fixed."""
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"events.out.tfevents.{stamp}.sample-host.4242.{index}{suffix}"


def _scalar_event(tag: str, step: int, value: float, wall: float, tensor: bool, first: bool) -> bytes:
    if tensor:  # TF2 / Keras: a rank-0 float tensor; the plugin metadata on the first value only
        proto = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            tensor_content=struct.pack("<f", value),
        )
        summary_value = summary_pb2.Summary.Value(tag=tag, tensor=proto)
        if first:
            summary_value.metadata.plugin_data.plugin_name = "scalars"
    else:  # PyTorch SummaryWriter / tensorboardX
        summary_value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
    event = event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(value=[summary_value]))
    return event.SerializeToString()


def _probability_histogram(samples: np.ndarray) -> summary_pb2.Summary.Value:
    """20 buckets of 0.05 over [0, 1], as a probability histogram is often logged."""
    counts, edges = np.histogram(samples, bins=20, range=(0.0, 1.0))
    return summary_pb2.Summary.Value(histo=summary_pb2.HistogramProto(
        min=float(samples.min()), max=float(samples.max()), num=float(samples.size),
        sum=float(samples.sum()), sum_squares=float((samples**2).sum()),
        bucket_limit=edges[1:].tolist(), bucket=counts.astype(float).tolist(),
    ))


def _tensorflow_edges() -> np.ndarray:
    """TensorFlow's default histogram buckets (PyTorch's ``bins="tensorflow"``): 1e-12 growing by
    10% up to 1e20, mirrored, with 0 as an edge."""
    positive = [1e-12]
    while positive[-1] * 1.1 < 1e20:
        positive.append(positive[-1] * 1.1)
    edges = np.array(positive)
    return np.concatenate((-edges[::-1], [0.0], edges))


TF_EDGES = _tensorflow_edges()


def _torch_histogram(samples: np.ndarray, max_bins: int | None) -> summary_pb2.Summary.Value:
    """What ``SummaryWriter.add_histogram(tag, values, step, max_bins=max_bins)`` writes: TensorFlow's
    buckets (merged 24 at a time for ``max_bins=64``, which keeps the samples small), the buckets
    outside [min, max] dropped but one on the left."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    counts, limits = np.histogram(samples, bins=TF_EDGES)
    if max_bins is not None and counts.size > max_bins:
        group = counts.size // max_bins
        counts = np.pad(counts, (0, (group - counts.size % group) % group)).reshape(-1, group).sum(axis=1)
        limits = np.concatenate((limits[:-1:group], limits[-1:]))
    occupied = np.cumsum(counts > 0)
    start, end = (int(i) for i in np.searchsorted(occupied, [0, occupied[-1] - 1], side="right"))
    end += 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return summary_pb2.Summary.Value(histo=summary_pb2.HistogramProto(
        min=float(samples.min()), max=float(samples.max()), num=float(samples.size), sum=float(samples.sum()),
        sum_squares=float(samples @ samples), bucket_limit=limits.tolist(), bucket=counts.astype(float).tolist(),
    ))


def _tf2_histogram(samples: np.ndarray, first: bool, buckets: int = 30) -> summary_pb2.Summary.Value:
    """What TF2's ``tf.summary.histogram`` writes (Keras' TensorBoard callback): a k x 3 float64
    tensor of [left, right, count] over equal-width buckets; the plugin metadata on the first."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    low, high = float(samples.min()), float(samples.max())
    if high == low:
        rows = np.zeros((buckets, 3))
        rows[:, :2], rows[-1, 2] = low, samples.size
    else:
        edges = np.linspace(low, high, buckets + 1)
        index = np.minimum(((samples - low) / ((high - low) / buckets)).astype(int), buckets - 1)
        rows = np.stack([edges[:-1], edges[1:], np.bincount(index, minlength=buckets)], axis=1)
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE, tensor_content=rows.astype("<f8").tobytes(),
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size)
                                                            for size in rows.shape]),
    )
    value = summary_pb2.Summary.Value(tensor=proto)
    if first:
        value.metadata.plugin_data.plugin_name = "histograms"
    return value


def write_tensorboard(
    path: Path,
    series: Series,
    *,
    tensor: bool = False,
    histograms: Mapping[str, list[tuple[int, np.ndarray]]] | None = None,
    layers: Mapping[str, list[tuple[int, np.ndarray]]] | None = None,
    max_bins: int | None = 64,
) -> None:
    """One event file: a version header, then events ordered by step (as a writer emits them).
    ``histograms`` are probabilities; ``layers`` are weights, gradients or activations, written as
    PyTorch's add_histogram does with ``max_bins`` (as TF2 does when ``tensor``)."""
    records: list[tuple[int, int, bytes]] = []
    for order, (tag, (steps, values)) in enumerate(series.items()):
        for i, (step, value) in enumerate(zip(steps, values)):
            payload = _scalar_event(tag, int(step), float(value), T0 + int(step), tensor, first=i == 0)
            records.append((int(step), order, payload))
    encoded = [(tag, [(step, _probability_histogram(samples)) for step, samples in items])
               for tag, items in (histograms or {}).items()]
    encoded += [(tag, [(step, _tf2_histogram(samples, first=i == 0) if tensor else _torch_histogram(samples, max_bins))
                       for i, (step, samples) in enumerate(items)])
                for tag, items in (layers or {}).items()]
    for order, (tag, values) in enumerate(encoded, start=len(series)):
        for step, value in values:
            value.tag = tag
            event = event_pb2.Event(wall_time=T0 + step, step=step, summary=summary_pb2.Summary(value=[value]))
            records.append((step, order, event.SerializeToString()))
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    writer.write(event_pb2.Event(wall_time=T0, file_version="brain.Event:2").SerializeToString())
    for _, _, payload in sorted(records, key=lambda r: (r[0], r[1])):
        writer.write(payload)
    path.write_bytes(buffer.getvalue())


# --- text formats --------------------------------------------------------------------------


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], pad: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in [header, *rows]:
        cells = ["" if cell is None else _cell(cell) for cell in row]
        lines.append(",".join(cell.rjust(pad) for cell in cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else repr(float(value))
    return str(value)


def write_jsonl(path: Path, records: Iterable[Mapping[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def write_trainer_state(path: Path, log_history: list[dict[str, object]], **fields: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"best_metric": None, "epoch": log_history[-1].get("epoch", 0), "global_step": log_history[-1]["step"],
             "log_history": log_history, "logging_steps": fields.pop("logging_steps", 10), **fields}
    path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")


def write_mlflow(run_dir: Path, metrics: Series, params: Mapping[str, str]) -> None:
    (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
    (run_dir / "params").mkdir(parents=True, exist_ok=True)
    run_dir.joinpath("meta.yaml").write_text(
        f"run_id: {run_dir.name}\nrun_name: sample\nstatus: 3\nstart_time: 1700000000000\nend_time: 1700003600000\n",
        encoding="utf-8",
    )
    run_dir.parent.joinpath("meta.yaml").write_text(f"experiment_id: '{run_dir.parent.name}'\nname: samples\n", encoding="utf-8")
    for key, (steps, values) in metrics.items():
        lines = [f"{int(1_700_000_000_000 + 1000 * s)} {float(v)!r} {int(s)}" for s, v in zip(steps, values)]
        run_dir.joinpath("metrics", key).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for key, value in params.items():
        run_dir.joinpath("params", key).write_text(value, encoding="utf-8")  # MLflow: no newline


# --- the runs ------------------------------------------------------------------------------


def healthy_runs(out: Path) -> None:
    n = 1000
    steps = np.arange(0, n * 10, 10)
    epochs = np.arange(0, n * 10 + 1, 500)[1:]
    write_tensorboard(_event_file(out / "healthy/pytorch_tb"), {
        "train/loss": (steps, noisy(converging(n, 2.3, 0.25), 0.03, 1)),
        "train/lr": (steps, cosine_lr(n, 1e-3, warmup=50)),
        "val/loss": (epochs, noisy(decay(epochs.size, 1.6, 0.32, 3.5), 0.01, 2)),
        "val/accuracy": (epochs, 0.92 - 0.5 * np.exp(-np.linspace(0, 3.5, epochs.size))),
    })

    # Lightning: step rows, epoch rows and validation rows are separate, sparse rows.
    rows = []
    train = noisy(converging(400, 1.2, 0.15), 0.04, 3)
    for i, loss in enumerate(train):
        step, epoch = 50 * (i + 1) - 1, i // 40
        rows.append([epoch, "", step, "", loss, ""])
        if (i + 1) % 40 == 0:
            val = 0.2 + 0.9 * np.exp(-0.45 * epoch)
            rows.append([epoch, 0.97 - 0.4 * np.exp(-0.5 * epoch), step, val, "", float(np.mean(train[i - 39 : i + 1]))])
    write_csv(out / "healthy/lightning/version_0/metrics.csv",
              ["epoch", "val_acc", "step", "val_loss", "train_loss_step", "train_loss_epoch"], rows)
    out.joinpath("healthy/lightning/version_0/hparams.yaml").write_text("num_classes: 5\nlr: 0.001\nbatch_size: 64\n", encoding="utf-8")

    epochs_y = np.arange(1, 61)
    lr = cosine_lr(60, 0.01)
    box, cls, dfl = (noisy(decay(60, s, e, 3.0), 0.01, k) for k, (s, e) in enumerate([(1.8, 0.9), (3.2, 0.8), (1.7, 1.05)]))
    vbox, vcls, vdfl = (noisy(decay(60, s, e, 3.0), 0.01, k + 7) for k, (s, e) in enumerate([(1.9, 1.1), (3.0, 1.0), (1.8, 1.2)]))
    map50 = 0.82 - 0.8 * np.exp(-np.linspace(0, 4, 60))
    write_csv(out / "healthy/yolov8/results.csv",
              ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)", "metrics/recall(B)",
               "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss", "val/dfl_loss", "lr/pg0"],
              [[int(e), round(b, 5), round(c, 5), round(d, 5), round(m + 0.05, 5), round(m, 5), round(m, 5), round(m * 0.6, 5),
                round(vb, 5), round(vc, 5), round(vd, 5), round(rate, 7)]
               for e, b, c, d, m, vb, vc, vd, rate in zip(epochs_y, box, cls, dfl, map50, vbox, vcls, vdfl, lr)], pad=23)

    # HF Trainer: two checkpoints; only the newest (600) is read.
    def hf_history(last: int) -> list[dict[str, object]]:
        history: list[dict[str, object]] = []
        for step in range(20, last + 1, 20):
            history.append({"epoch": step / 200, "grad_norm": 4.0 * np.exp(-step / 400) + 1.0,
                            "learning_rate": 2e-5 * (1 - step / 600), "loss": 0.35 + 0.4 * (1 - step / 600) ** 4 + 0.003 * np.sin(step),
                            "step": step})
            if step % 100 == 0:
                history.append({"epoch": step / 200, "eval_accuracy": 0.9 - 0.2 * np.exp(-step / 150),
                                "eval_loss": 0.3 + 0.3 * np.exp(-step / 150), "eval_runtime": 3.2, "step": step})
        return history

    for last in (300, 600):
        write_trainer_state(out / f"healthy/hf_trainer/checkpoint-{last}/trainer_state.json", hf_history(last),
                            eval_steps=100, train_batch_size=32)

    n_ml = 30
    write_mlflow(out / "healthy/mlflow/mlruns/1/0f3c2a9d4e5b46c7a1b2c3d4e5f60718", {
        "loss": (range(n_ml), decay(n_ml, 1.5, 0.3, 6.0)),
        "val_loss": (range(n_ml), decay(n_ml, 1.4, 0.35, 6.0)),
        "accuracy": (range(n_ml), 0.9 - 0.5 * np.exp(-np.linspace(0, 6, n_ml))),
        "lr": (range(n_ml), cosine_lr(n_ml, 0.01)),
    }, {"batch_size": "128", "optimizer": "adam"})
    healthy_histogram_run(out)


def problem_runs(out: Path) -> None:
    p = out / "problems"
    n = 1000
    steps = np.arange(n)

    loss = noisy(decay(n, 2.3, 0.4), 0.02, 10)
    loss[600:] = np.nan
    write_tensorboard(_event_file(p / "non_finite_tb"), {"train/loss": (steps, loss), "train/lr": (steps, np.full(n, 3e-3))})

    records = [{"env_info": "sample", "seed": 0}]
    loss = decay(240, 3.0, 0.9, 4.0)
    loss[160:] = loss[160] * np.exp(np.linspace(0, np.log(5e4), 80))
    for i, value in enumerate(loss):
        epoch, it = i // 20 + 1, (i % 20 + 1) * 50
        records.append({"mode": "train", "epoch": epoch, "iter": it, "lr": 0.02, "loss_cls": value * 0.6,
                        "loss_bbox": value * 0.4, "loss": value, "time": 0.5})
        if it == 1000:
            records.append({"mode": "val", "epoch": epoch, "iter": 50, "lr": 0.02, "bbox_mAP": min(0.05 * epoch, 0.3) if i < 160 else 0.0})
    write_jsonl(p / "divergence_mmdet/20240101_000000.log.json", records)

    n_reg = 200
    write_csv(p / "loss_magnitude.csv", ["step", "train/mse_loss", "val/mse_loss"],
              [[s * 10, v, (v * 1.1 if s % 10 == 0 else None)]
               for s, v in zip(range(n_reg), noisy(decay(n_reg, 9.8e7, 2.1e7, 3.0), 0.02, 11))])

    epochs_k = 30
    write_csv(p / "no_learning_keras/training.log", ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"],
              [[e, 0.1 + 0.004 * r1, 2.3026 + 0.003 * r2, 0.1 + 0.004 * r3, 2.3027 + 0.002 * r4]
               for e, (r1, r2, r3, r4) in enumerate(rng(12).standard_normal((epochs_k, 4)))])

    history = []
    for step in range(50, 5001, 50):
        history.append({"epoch": step / 1000, "learning_rate": 1e-7, "loss": 1.10 - 0.000022 * step + 0.002 * np.sin(step / 50.0), "step": step})
    write_trainer_state(p / "lr_too_low_hf/trainer_state.json", history, logging_steps=50)

    rows = []
    loss = noisy(decay(600, 2.0, 0.8, 25.0), 0.01, 13)
    for i, value in enumerate(loss):
        rows.append([i // 60, 0.001, i, value])
    write_csv(p / "plateau_lightning/version_0/metrics.csv", ["epoch", "lr-Adam", "step", "train_loss"], rows)

    values = 1.0 + 0.5 * np.sign(np.sin(np.arange(400) * 1.7)) * np.abs(rng(14).normal(0.8, 0.2, 400))
    write_csv(p / "oscillation_long.csv", ["step", "tag", "value"],
              [[s * 10, "loss", v] for s, v in enumerate(values)] + [[s * 10, "lr", 0.5] for s in range(400)])

    loss = noisy(decay(500, 2.5, 0.5), 0.02, 15)
    for at in (120, 260, 380):
        loss[at : at + 3] *= 8.0
    write_jsonl(p / "spikes_detectron2/metrics.json",
                [{"iteration": 20 * i + 19, "total_loss": v, "loss_cls": v * 0.5, "loss_box_reg": v * 0.3,
                  "loss_rpn_cls": v * 0.1, "loss_rpn_loc": v * 0.1, "lr": 0.02, "data_time": 0.01}
                 for i, v in enumerate(loss)])

    n_ml = 50
    write_mlflow(p / "still_improving_mlflow/mlruns/2/5a6b7c8d9e0f41a2b3c4d5e6f7a8b9c0", {
        "loss": (range(n_ml), np.linspace(2.0, 0.8, n_ml) + 0.005 * rng(16).standard_normal(n_ml)),
        "lr": (range(n_ml), np.full(n_ml, 0.01)),
    }, {"epochs": "50"})

    epochs = np.arange(0, 20000, 500)
    write_tensorboard(_event_file(p / "flat_accuracy_tb"), {
        # a binary task: the losses fall from overconfident mistakes towards ln 2 while the
        # accuracy sits at 0.5, which a cross-entropy this high allows (the metric may jump)
        "train/loss": (np.arange(0, 20000, 50), noisy(decay(400, 1.2, 0.62, 3.0), 0.02, 17)),
        "val/loss": (epochs, decay(epochs.size, 1.1, 0.7, 3.0)),
        "val/accuracy": (epochs, np.where(np.arange(epochs.size) < 8, np.linspace(0.3, 0.5, epochs.size)[:epochs.size], 0.5)
                         + 0.001 * rng(18).standard_normal(epochs.size)),
    })

    records = []
    for step in range(0, 20000, 100):
        record = {"_step": step, "_runtime": step / 10, "_timestamp": T0 + step / 10,
                  "train/loss": 2.3 * np.exp(-step / 500) + 0.001, "train/accuracy": min(1.0, 0.1 + step / 1000)}
        if step % 500 == 0:
            late = step >= 16000
            record.update({"val/accuracy": 0.95 if late else 0.1 + 0.005 * np.sin(step),
                           "val/loss": 0.2 if late else 2.3 + 0.01 * np.sin(step)})
        records.append(record)
    write_jsonl(p / "grokking/wandb-history.jsonl", records)

    write_jsonl(p / "class_imbalance.jsonl", [
        {"step": 100 * i, "train_loss": 0.33 * np.exp(-i / 40) + 0.3, "val_accuracy": 0.9 + 0.0005 * np.sin(i),
         "val_recall_class_0": 1.0, "val_recall_class_1": 0.0 + 0.001 * (i % 2), "val_balanced_accuracy": 0.5}
        for i in range(60)])

    probs = {"val/pred_probs": [(s, np.clip(rng(s).normal(0.5, 0.04, 2000), 0, 1)) for s in range(0, 1000, 100)]}
    write_tensorboard(_event_file(p / "underconfident_tb"), {
        "train/loss": (np.arange(0, 1000, 10), noisy(decay(100, 0.75, 0.68, 3.0), 0.005, 19)),
        "val/accuracy": (np.arange(0, 1000, 100), np.linspace(0.6, 0.8, 10)),
    }, histograms=probs)

    epochs_h = 25
    path = p / "percent_accuracy_history.json"
    path.write_text(json.dumps({
        # accuracy summed over batches of 2 instead of averaged: climbs past 1
        "loss": decay(epochs_h, 1.9, 0.3).tolist(), "accuracy": (2 * (0.95 - 0.6 * np.exp(-np.linspace(0, 5, epochs_h)))).tolist(),
        "val_loss": decay(epochs_h, 1.8, 0.35).tolist(), "val_accuracy": (100 * (0.92 - 0.6 * np.exp(-np.linspace(0, 5, epochs_h)))).tolist(),
    }, indent=1) + "\n", encoding="utf-8")

    evals = np.arange(0, 10000, 500)
    write_tensorboard(_event_file(p / "frozen_eval_tb"), {
        "train/loss": (np.arange(0, 10000, 25), noisy(decay(400, 1.5, 0.3), 0.02, 20)),
        "eval/loss": (evals, decay(evals.size, 1.4, 0.35)),
        "eval/accuracy": (evals, np.full(evals.size, 0.5625)),
    })

    epochs = np.arange(40)
    train = decay(40, 1.8, 0.05, 4.0)
    val = 0.55 + 1.2 * np.exp(-epochs / 3.0) + np.where(epochs > 10, 0.03 * (epochs - 10), 0.0)
    for split, series in (("train", {"epoch_loss": (epochs, train), "epoch_accuracy": (epochs, 1 - train / 2)}),
                          ("validation", {"epoch_loss": (epochs, val), "epoch_accuracy": (epochs, 0.8 - 0.002 * epochs)})):
        write_tensorboard(_event_file(p / "overfitting_keras_tf2" / split, suffix=".v2"), series, tensor=True)

    write_csv(p / "val_better_than_train.csv", ["epoch", "train_loss", "val_loss", "val_acc"],
              [[e, 1.6 - 0.02 * e, 0.5 - 0.006 * e, 0.6 + 0.01 * e] for e in range(30)])

    write_jsonl(p / "loss_scale_mmengine/scalars.json", [
        {"lr": 1e-3, "loss": 4.0 * np.exp(-i / 80) + 2.0 + 0.0021, "loss_cls": 4.0 * np.exp(-i / 80) + 2.0,
         "loss_bbox": 0.002 + 0.0001 * np.exp(-i / 80), "step": 50 * (i + 1)} for i in range(300)]
        + [{"coco/bbox_mAP": 0.1 + 0.02 * e, "step": e} for e in range(1, 11)])

    # Resumed from the step-300 checkpoint after the first attempt had reached 600; the second
    # attempt died at 450, so steps 451..599 exist only from the abandoned attempt.
    first = noisy(decay(600, 2.0, 0.6), 0.02, 21)
    second = noisy(decay(600, 2.0, 0.3), 0.02, 22)[300:451]
    write_tensorboard(_event_file(p / "resumed_tb", 0, 1_700_000_000), {"train/loss": (np.arange(600), first)})
    write_tensorboard(_event_file(p / "resumed_tb", 0, 1_700_009_000), {"train/loss": (np.arange(300, 451), second)})

    truncated = _event_file(p / "truncated_tb")
    write_tensorboard(truncated, {"train/loss": (np.arange(500), noisy(decay(500, 2.0, 0.3), 0.02, 23))})
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) - 37])  # the writer died mid-record

    grad = np.where(rng(24).random(500) < 0.92, 1.0, 0.6)
    write_jsonl(p / "grad_clipping.jsonl", [
        {"step": 10 * i, "loss": 1.5 * np.exp(-i / 150) + 0.4, "grad_norm": float(g), "lr": 3e-4}
        for i, g in enumerate(grad)])
    histogram_problem_runs(out)


# --- histograms of a small MLP (fc1 64x32, fc2 32x32, fc3 32x10), simulated with numpy ----------

LAYERS = {"fc1": (64, 32), "fc2": (32, 32), "fc3": (32, 10)}
HISTOGRAM_STEPS = list(range(0, 700, 100))


def _init(layer: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's default init of a Linear layer: weights and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, fan_out = LAYERS[layer]
    bound = 1 / np.sqrt(fan_in)
    return rng(seed).uniform(-bound, bound, (fan_out, fan_in)).ravel(), rng(seed + 1).uniform(-bound, bound, fan_out)


def _moving(weights: np.ndarray, step: int, rate: float, seed: int) -> np.ndarray:
    """Weights after ``step`` steps of training: their spread grows by ``rate`` per step, plus jitter
    (a layer that starts at zero moves away from it at the jitter's pace)."""
    scale = weights.std() or 0.05
    return weights * (1 + rate * step) + scale * rate * np.sqrt(step) * rng(seed).standard_normal(weights.size)


def _relu(step: int, seed: int, dead: float = 0.0) -> np.ndarray:
    """A ReLU layer's outputs on a batch of 64: live units active about half the time."""
    pre = rng(seed + step).normal(0.0, 1.0, (64, 32))
    pre[:, : round(dead * 32)] = -np.abs(pre[:, : round(dead * 32)]) - 0.1
    return np.maximum(pre, 0.0).ravel()


def _mlp_layers(*, rates: Mapping[str, float], grads: Mapping[str, float], dead: Mapping[int, float] | None = None,
                init: Mapping[str, np.ndarray] | None = None, activations: bool = True) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Weights, biases, weight gradients and hidden activations of the MLP as PyTorch code logs them;
    ``dead`` gives fc2's share of dead units at some steps."""
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    for k, layer in enumerate(LAYERS):
        weights, bias = _init(layer, 40 + 2 * k)
        weights = init.get(layer, weights) if init else weights
        out[f"{layer}.weight"] = [(s, _moving(weights, s, rates[layer], 50 + k)) for s in HISTOGRAM_STEPS]
        out[f"{layer}.bias"] = [(s, _moving(bias, s, rates[layer], 60 + k)) for s in HISTOGRAM_STEPS]
        out[f"{layer}.weight.grad"] = [(s, grads[layer] * rng(70 + k + s).standard_normal(weights.size))
                                       for s in HISTOGRAM_STEPS]
        if activations and layer != "fc3":
            dying = dead if dead and layer == "fc2" else {}
            out[f"activations/{layer}"] = [(s, _relu(s, 80 + k, dying.get(s, 0.0))) for s in HISTOGRAM_STEPS]
    return out


def _classifier_scalars(loss_end: float = 0.3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    steps = np.arange(0, 700, 10)
    evals = np.arange(99, 700, 100)
    return {
        "train/loss": (steps, noisy(converging(steps.size, 2.3, loss_end), 0.02, 90)),
        "lr": (steps, np.full(steps.size, 1e-3)),
        "val/loss": (evals, decay(evals.size, 1.2, loss_end + 0.05, 2.5)),
        "val/accuracy": (evals, 0.9 - 0.5 * np.exp(-np.linspace(0, 2.5, evals.size))),
    }


HEALTHY_RATES = {"fc1": 4e-4, "fc2": 5e-4, "fc3": 6e-4}
HEALTHY_GRADS = {"fc1": 8e-4, "fc2": 6e-4, "fc3": 2e-3}


def healthy_histogram_run(out: Path) -> None:
    """A healthy MLP logging its weights, biases, gradients and activations."""
    write_tensorboard(_event_file(out / "healthy/pytorch_histograms_tb"), _classifier_scalars(),
                      layers=_mlp_layers(rates=HEALTHY_RATES, grads=HEALTHY_GRADS))


def histogram_problem_runs(out: Path) -> None:
    """One run per problem the histograms show."""
    p = out / "problems"

    # SGD warmed up to a learning rate of 0.5: fc2's units die at step 300 and the loss stalls.
    steps = np.arange(0, 700, 10)
    dead_layers = _mlp_layers(rates=HEALTHY_RATES, grads=HEALTHY_GRADS, dead=dict.fromkeys((300, 400, 500, 600), 1.0))
    write_tensorboard(_event_file(p / "dead_relu_tb"), {
        "train/loss": (steps, 2.3 - 0.08 * (1 - np.exp(-np.minimum(steps, 300) / 100)) + 0.01 * rng(91).standard_normal(steps.size)),
        "lr": (steps, np.minimum(0.5, 0.002 * (steps + 1))),
    }, layers={tag: items for tag, items in dead_layers.items() if tag.startswith("activations/")})

    # A sigmoid MLP whose weights start at N(0, 1): most outputs sit near 0 or 1 from the start.
    sigmoid = {f"activations/{layer}": [(s, 1 / (1 + np.exp(-6.0 * rng(100 + k + s).standard_normal(2048))))
                                         for s in HISTOGRAM_STEPS] for k, layer in enumerate(("fc1", "fc2"))}
    # (TensorFlow's full buckets: merged ones are too coarse near 1 to see how close to it outputs pile)
    write_tensorboard(_event_file(p / "saturated_sigmoid_tb"), _classifier_scalars(0.5), layers=sigmoid, max_bins=None)

    # Six sigmoid layers: each passes back about an eighth of the gradient it gets.
    vanishing = {f"grad/fc{k + 1}.weight": [(s, 1e-2 * 0.12 ** (5 - k) * rng(110 + k + s).standard_normal(1024))
                                             for s in HISTOGRAM_STEPS] for k in range(6)}
    write_tensorboard(_event_file(p / "vanishing_gradients_tb"), _classifier_scalars(1.2), layers=vanishing)

    # A deep ReLU stack initialised 2.5x too wide: gradients twice as large as the weights.
    exploding = _mlp_layers(rates=HEALTHY_RATES, grads={"fc1": 0.5, "fc2": 0.45, "fc3": 0.3}, activations=False)
    write_tensorboard(_event_file(p / "exploding_gradients_tb"), _classifier_scalars(), layers={
        tag: items for tag, items in exploding.items() if not tag.endswith(".bias")})

    # Keras, fc1 left with trainable=False: its kernel never changes.
    epochs = np.arange(10)
    keras_layers = {}
    for k, (layer, name) in enumerate((("fc1", "dense"), ("fc2", "dense_1"), ("fc3", "dense_2"))):
        weights, bias = _init(layer, 120 + 2 * k)
        rate = 0.0 if name == "dense" else 0.01
        keras_layers[f"{name}/kernel_0"] = [(int(e), _moving(weights, int(e), rate, 130 + k)) for e in epochs]
        keras_layers[f"{name}/bias_0"] = [(int(e), _moving(bias, int(e), rate, 140 + k)) for e in epochs]
    train = decay(10, 1.8, 0.3, 3.0)
    write_tensorboard(_event_file(p / "frozen_layer_keras_tf2" / "train", suffix=".v2"),
                      {"epoch_loss": (epochs, train), "epoch_accuracy": (epochs, 1 - train / 2)},
                      tensor=True, layers=keras_layers)
    write_tensorboard(_event_file(p / "frozen_layer_keras_tf2" / "validation", suffix=".v2"),
                      {"epoch_loss": (epochs, train + 0.05), "epoch_accuracy": (epochs, 0.97 - train / 2)}, tensor=True)

    # fc2 initialised to zeros (nn.init.zeros_ on a weight matrix).
    zero = _mlp_layers(rates=HEALTHY_RATES, grads=HEALTHY_GRADS, activations=False,
                       init={"fc2": np.zeros(32 * 32)})
    write_tensorboard(_event_file(p / "zero_init_tb"), _classifier_scalars(), layers={
        tag: items for tag, items in zero.items() if not tag.endswith(".grad")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_logs")
    out = parser.parse_args().out
    if out.exists():
        shutil.rmtree(out)
    healthy_runs(out)
    problem_runs(out)
    print(f"wrote {sum(1 for f in out.rglob('*') if f.is_file())} files under {out}")


if __name__ == "__main__":
    main()
