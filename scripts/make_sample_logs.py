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


def write_tensorboard(
    path: Path,
    series: Series,
    *,
    tensor: bool = False,
    histograms: Mapping[str, list[tuple[int, np.ndarray]]] | None = None,
) -> None:
    """One event file: a version header, then events ordered by step (as a writer emits them)."""
    records: list[tuple[int, int, bytes]] = []
    for order, (tag, (steps, values)) in enumerate(series.items()):
        for i, (step, value) in enumerate(zip(steps, values)):
            payload = _scalar_event(tag, int(step), float(value), T0 + int(step), tensor, first=i == 0)
            records.append((int(step), order, payload))
    for order, (tag, items) in enumerate((histograms or {}).items(), start=len(series)):
        for step, samples in items:
            counts, edges = np.histogram(samples, bins=20, range=(0.0, 1.0))
            histo = summary_pb2.HistogramProto(
                min=float(samples.min()), max=float(samples.max()), num=float(samples.size),
                sum=float(samples.sum()), sum_squares=float((samples**2).sum()),
                bucket_limit=edges[1:].tolist(), bucket=counts.astype(float).tolist(),
            )
            event = event_pb2.Event(wall_time=T0 + step, step=step,
                                    summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=histo)]))
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
