"""Ultralytics ``results.csv``: one row per epoch of a detection run.

Three generations: YOLOv8 as it is written today (plain ``%.6g`` cells, epochs from 1),
YOLOv8's first releases (every cell right-aligned to 23 characters, ``%23.5g``) and YOLOv5
(20-character cells, epochs from 0, ``obj_loss`` instead of ``dfl_loss``, ``x/lr0..2``).
The metrics come from the validation pass at each epoch's end; losses are epoch means.
``lr/pg2`` (biases) starts at the warm-up bias rate 0.1 and falls to the base rate.
"""

from __future__ import annotations

from pathlib import Path

from corpus.trace import EPOCH, EVAL, Trace

V8 = ["epoch", "train/box_loss", "train/cls_loss", "train/dfl_loss", "metrics/precision(B)",
      "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "val/cls_loss",
      "val/dfl_loss", "lr/pg0", "lr/pg1", "lr/pg2"]
V5 = ["epoch", "train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
      "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss", "val/obj_loss",
      "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"]


def _row(epoch: int, train: dict[str, float], val: dict[str, float], warmup_epochs: int,
         version: str) -> list[float]:
    lr = train["lr"]
    bias_lr = 0.1 + (lr - 0.1) * min(1.0, (epoch + 1) / warmup_epochs) if warmup_epochs else lr
    shown_epoch = epoch if version == "v5" else epoch + 1
    return [shown_epoch, train["box_loss"], train["cls_loss"], train["dfl_loss"], val["precision"],
            val["recall"], val["map50"], val["map50_95"], val["val_box_loss"], val["val_cls_loss"],
            val["val_dfl_loss"], lr, lr, bias_lr]


def write(trace: Trace, run_dir: Path, *, version: str = "v8", warmup_epochs: int = 0) -> Path:
    """version: ``v8`` (plain), ``v8-padded`` or ``v5``.  Returns results.csv."""
    train = {p.epoch: p.values for p in trace.points if p.kind == EPOCH}
    val = {p.epoch: p.values for p in trace.points if p.kind == EVAL}
    rows = [_row(e, train[e], val[e], warmup_epochs, version) for e in sorted(train) if e in val]
    if version == "v8":
        lines = [",".join(V8)] + [",".join(f"{x:.6g}" for x in row) for row in rows]
    else:
        width = 20 if version == "v5" else 23
        names = V5 if version == "v5" else V8
        lines = [",".join(f"%{width}s" % n for n in names)]
        lines += [",".join(f"%{width}.5g" % x for x in row) for row in rows]
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
