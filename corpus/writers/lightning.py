"""Lightning ``CSVLogger``: ``lightning_logs/version_0/metrics.csv`` and ``hparams.yaml``.

Every ``log_metrics`` call becomes one row; the columns are the union of all keys, sorted
(Lightning 2.x ``_ExperimentWriter``), written by ``csv.DictWriter`` (so lines end in CRLF)
with empty cells for keys absent from a row.  Training rows carry ``epoch`` and ``step``;
``LearningRateMonitor`` rows (``lr-<Optimizer>``) carry a step but NO epoch; at an epoch's
end the validation metrics and the ``*_epoch`` aggregates are separate rows with the same
step.  A resumed job appends to the same file, so steps repeat.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from corpus.trace import EPOCH, EVAL, TRAIN, Trace
from corpus.writers.common import f32


def rows(trace: Trace, *, on_epoch: bool = True, lr_monitor: bool = True, train_acc: bool = False,
         val_prefix: str = "val_") -> list[dict[str, object]]:
    """The ``log_metrics`` calls, in order.  ``on_epoch`` logs train_loss with on_step and
    on_epoch (keys ``train_loss_step`` / ``train_loss_epoch``), else only ``train_loss``."""
    out: list[dict[str, object]] = []
    lr_key = f"lr-{trace.optimizer}"
    step_suffix = "_step" if on_epoch else ""
    for p in trace.points:
        v = p.values
        if p.kind == TRAIN:
            if lr_monitor:
                out.append({lr_key: float(v["lr"]), "step": p.step})  # a Python float, not a tensor
            row: dict[str, object] = {f"train_loss{step_suffix}": f32(v["loss"])}
            for key in ("box_loss", "cls_loss", "dfl_loss"):
                if key in v:
                    row[f"train_{key}{step_suffix}"] = f32(v[key])
            if train_acc and "acc" in v:
                row[f"train_acc{step_suffix}"] = f32(v["acc"])
            out.append({**row, "epoch": p.epoch, "step": p.step})
        elif p.kind == EVAL:
            row = {val_prefix + k[4:] if k.startswith("val_") else f"val_{k}": f32(x) for k, x in v.items()}
            out.append({**row, "epoch": p.epoch, "step": p.step})
        elif p.kind == EPOCH and on_epoch:
            row = {"train_loss_epoch": f32(v["loss"])}
            if train_acc and "acc" in v:
                row["train_acc_epoch"] = f32(v["acc"])
            out.append({**row, "epoch": p.epoch, "step": p.step})
    return out


def render(records: list[dict[str, object]]) -> str:
    keys = sorted(set().union(*records))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def write(trace: Trace, run_dir: Path, *, cut_fraction: float | None = None, **style) -> Path:
    """Write the version folder; return the metrics.csv path (what rundoctor calls the run)."""
    folder = run_dir / "lightning_logs" / "version_0"
    folder.mkdir(parents=True, exist_ok=True)
    content = render(rows(trace, **style))
    if cut_fraction is not None:
        content = cut_mid_line(content, cut_fraction)
    (folder / "metrics.csv").write_bytes(content.encode())
    (folder / "hparams.yaml").write_text(yaml.safe_dump(trace.hparams, sort_keys=True))
    return folder / "metrics.csv"


def cut_mid_line(content: str, fraction: float) -> str:
    """Cut a text log inside a data line (never the header), as a killed writer leaves it."""
    lines = content.splitlines(keepends=True)
    index = max(2, min(len(lines) - 1, int(len(lines) * fraction)))
    line = lines[index]
    return "".join(lines[:index]) + line[: max(1, len(line.rstrip()) // 2)]
