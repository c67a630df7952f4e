"""The MLflow file store: ``mlruns/<experiment id>/<run id>/``.

``metrics/<key>`` holds one line per ``log_metric`` call, ``<timestamp ms> <value> <step>``;
``params/<name>`` and ``tags/<name>`` hold bare values; ``meta.yaml`` describes the run and
the experiment folder has its own ``meta.yaml``.  The store also creates the ``0``
(Default) experiment.  A resumed run (``start_run(run_id=...)``) appends to the same files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from corpus.trace import EVAL, TRAIN, Trace
from corpus.writers.common import f32

ARTIFACT_ROOT = "file:///home/trainer/project/mlruns"
KEYS = {TRAIN: {"loss": "train_loss", "lr": "lr", "grad_norm": "grad_norm"},
        EVAL: {"val_loss": "val_loss", "val_acc": "val_accuracy", "val_mae": "val_mae"}}


def _yaml(fields: dict[str, object]) -> str:
    def render(v: object) -> str:
        if isinstance(v, str):
            return "''" if v == "" else (f"'{v}'" if v.isdigit() else v)
        if isinstance(v, list):
            return "[]"
        return str(v)

    return "".join(f"{k}: {render(v)}\n" for k, v in sorted(fields.items()))


def write(trace: Trace, run_dir: Path, *, run_name: str, experiment: str = "corpus",
          experiment_id: str = "1") -> Path:
    """Write the store under ``run_dir/mlruns``; return the run folder."""
    run_id = hashlib.sha1(run_name.encode()).hexdigest()[:32]
    store = run_dir / "mlruns"
    start_ms = int(trace.start_wall * 1000)
    end_ms = int(max(p.wall for p in trace.points) * 1000) + 800
    for exp_id, name in (("0", "Default"), (experiment_id, experiment)):
        exp = store / exp_id
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "meta.yaml").write_text(_yaml({
            "artifact_location": f"{ARTIFACT_ROOT}/{exp_id}", "creation_time": start_ms - 60_000,
            "experiment_id": exp_id, "last_update_time": start_ms - 60_000, "lifecycle_stage": "active",
            "name": name}))
    run = store / experiment_id / run_id
    for folder in ("metrics", "params", "tags", "artifacts"):
        (run / folder).mkdir(parents=True, exist_ok=True)
    (run / "meta.yaml").write_text(_yaml({
        "artifact_uri": f"{ARTIFACT_ROOT}/{experiment_id}/{run_id}/artifacts", "end_time": end_ms,
        "entry_point_name": "", "experiment_id": experiment_id, "lifecycle_stage": "active", "name": "",
        "run_id": run_id, "run_name": run_name, "run_uuid": run_id, "source_name": "", "source_type": 4,
        "source_version": "", "start_time": start_ms, "status": 3, "tags": [], "user_id": "trainer"}))
    lines: dict[str, list[str]] = {}
    for p in trace.points:
        for key, value in p.values.items():
            metric = KEYS.get(p.kind, {}).get(key)
            if metric is not None:
                shown = float(value) if key == "lr" else f32(value)
                lines.setdefault(metric, []).append(f"{int(p.wall * 1000)} {shown} {p.step}\n")
    for name, content in lines.items():
        (run / "metrics" / name).write_text("".join(content))
    for key, param in trace.hparams.items():
        (run / "params" / key).write_text(str(param))
    tags = {"mlflow.runName": run_name, "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL",
            "mlflow.user": "trainer", "mlflow.source.git.commit": hashlib.sha1(experiment.encode()).hexdigest()}
    for key, tag in tags.items():
        (run / "tags" / key).write_text(tag)
    return run
