"""One module per framework format; ``write`` dispatches on the label's format name.

Each writer returns the path rundoctor identifies the run by: the TensorBoard run directory,
the MLflow run directory, or the log file itself.
"""

from __future__ import annotations

from pathlib import Path

from corpus.trace import Trace
from corpus.writers import (
    hf_trainer,
    jsonl,
    keras,
    lightning,
    mlflow,
    tensorboard,
    ultralytics,
)

FORMATS = ("tensorboard", "lightning_csv", "keras_csv", "hf_trainer_state", "jsonl", "ultralytics_csv", "mlflow")


def write(fmt: str, trace: Trace, run_dir: Path, **options) -> Path:
    if fmt == "tensorboard":
        return tensorboard.write(trace, run_dir, **options)
    if fmt == "lightning_csv":
        return lightning.write(trace, run_dir, **options)
    if fmt == "keras_csv":
        return keras.write(trace, run_dir, **options)
    if fmt == "hf_trainer_state":
        info = trace.info
        options.setdefault("logging_steps", info["log_every"])
        options.setdefault("eval_steps", info["eval_every"])
        options.setdefault("save_steps", 10 * info["log_every"])
        options.setdefault("batch_size", info["batch_size"])
        options.setdefault("eval_samples", info["n_val"])
        return hf_trainer.write(trace, run_dir, **options)
    if fmt == "jsonl":
        return jsonl.write(trace, run_dir, **options)
    if fmt == "ultralytics_csv":
        return ultralytics.write(trace, run_dir, **options)
    if fmt == "mlflow":
        options.setdefault("run_name", run_dir.name)
        return mlflow.write(trace, run_dir, **options)
    raise ValueError(f"unknown format {fmt!r}")
