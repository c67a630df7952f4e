"""JSON lines from a hand-written loop: one ``json.dumps`` object per logging call.

Train lines carry ``step``, ``epoch``, the loss and ``lr``; validation lines carry
``val_*``.  ``json.dumps`` writes non-finite floats as ``NaN`` / ``Infinity``, which is what
such loggers leave behind.  A resumed job opens the file in append mode, so steps repeat.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus.trace import EVAL, TRAIN, Trace
from corpus.writers.common import f32
from corpus.writers.lightning import cut_mid_line


def write(trace: Trace, run_dir: Path, *, filename: str = "metrics.jsonl", loss_key: str = "loss",
          acc_key: str = "val_acc", grad_norm: bool = False, train_acc: bool = False,
          cut_fraction: float | None = None) -> Path:
    lines = []
    for p in trace.points:
        v = p.values
        if p.kind == TRAIN:
            obj: dict[str, object] = {"step": p.step, "epoch": p.epoch, loss_key: f32(v["loss"]), "lr": v["lr"]}
            for key in ("box_loss", "cls_loss", "dfl_loss"):
                if key in v:
                    obj[key] = f32(v[key])
            if grad_norm:
                obj["grad_norm"] = f32(v["grad_norm"])
            if train_acc and "acc" in v:
                obj["train_acc"] = f32(v["acc"])
        elif p.kind == EVAL:
            obj = {"step": p.step}
            obj.update({(acc_key if k == "val_acc" else k): f32(x) for k, x in v.items()})
        else:
            continue
        lines.append(json.dumps(obj) + "\n")
    content = "".join(lines)
    if cut_fraction is not None:
        content = cut_mid_line(content, cut_fraction)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / filename
    path.write_text(content)
    return path
