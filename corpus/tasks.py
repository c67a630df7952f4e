"""Losses and metrics: what turns a model's output into the numbers a training loop logs.

A task computes the training loss (the quantity that is optimised and logged per step) and
the evaluation metrics (logged at each evaluation).  Metric *bugs* live here too, because
that is where they live in real code: in ``compute_metrics``, not in the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, y: np.ndarray, *, smoothing: float = 0.0,
                  weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Mean CE of integer labels (torch semantics for label_smoothing and class weights)."""
    n, k = logits.shape
    with np.errstate(invalid="ignore", over="ignore"):
        logp = log_softmax(logits)
    target = np.full((n, k), smoothing / k)
    target[np.arange(n), y] += 1.0 - smoothing
    w = np.ones(n) if weights is None else weights[y]
    per = -(target * logp).sum(1)
    total = w.sum()
    loss = float((w * per).sum() / total)
    with np.errstate(invalid="ignore", over="ignore"):
        d = (np.exp(logp) - target) * (w / total)[:, None]
    return loss, d


@dataclass
class Classification:
    """Softmax classification; also the sequence task (an RNN's logits are the same).

    ``acc_mode`` plants metric bugs: ``sum`` adds per-batch accuracies instead of averaging,
    ``wrong_labels`` scores predictions against a permuted copy of the labels, ``constant``
    logs the first evaluation's accuracy forever; ``percent`` is the healthy 0-100 habit.
    ``eval_temperature`` divides the logits at evaluation (a calibration bug).
    """

    n_classes: int
    smoothing: float = 0.0
    class_weights: np.ndarray | None = None
    eval_temperature: float = 1.0
    acc_mode: str = "mean"
    eval_batch: int = 128
    _frozen_acc: float | None = field(default=None, repr=False)
    _wrong: np.ndarray | None = field(default=None, repr=False)

    kind = "classification"

    def loss(self, out: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        loss, d = cross_entropy(out, y, smoothing=self.smoothing, weights=self.class_weights)
        acc = float((out.argmax(1) == y).mean())
        return {"loss": loss, "acc": acc}, d

    def evaluate(self, outputs: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, float]:
        logits = np.concatenate(outputs) / self.eval_temperature
        y = np.concatenate(ys)
        loss, _ = cross_entropy(logits, y)
        pred = logits.argmax(1)
        batch_accs = [float((o.argmax(1) == t).mean()) for o, t in zip(outputs, ys)]
        acc = float((pred == y).mean())
        if self.acc_mode == "sum":
            acc = float(np.sum(batch_accs))
        elif self.acc_mode == "wrong_labels":
            if self._wrong is None:
                self._wrong = np.random.default_rng(7).permutation(y)
            acc = float((pred == self._wrong).mean())
        elif self.acc_mode == "constant":
            if self._frozen_acc is None:
                self._frozen_acc = acc
            acc = self._frozen_acc
        elif self.acc_mode == "percent":
            acc = 100.0 * acc
        return {"loss": loss, "acc": acc}


@dataclass
class Regression:
    """Mean squared error on (possibly badly scaled) targets."""

    eval_batch: int = 256
    kind = "regression"

    def loss(self, out: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        err = out - y
        with np.errstate(over="ignore", invalid="ignore"):
            return {"loss": float(np.mean(err**2))}, 2.0 * err / err.size

    def evaluate(self, outputs: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, float]:
        err = np.concatenate(outputs) - np.concatenate(ys)
        with np.errstate(over="ignore", invalid="ignore"):
            return {"loss": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}


@dataclass
class Detection:
    """A detection-like multi-loss task on 1-D images with one object each.

    Heads: ``cls`` (class logits), ``box`` (centre, half-width in tenths of the image,
    smooth-L1), ``dfl`` (the centre as a distribution over bins, CE; a stand-in for YOLOv8's
    distribution focal loss).  The logged loss is the gain-weighted sum; ``box_gain`` far from
    the others is the planted scale imbalance.
    """

    n_classes: int
    bins: int = 16
    box_gain: float = 1.0
    cls_gain: float = 1.0
    dfl_gain: float = 1.0
    eval_batch: int = 256
    kind = "detection"

    def _parts(self, out: dict[str, np.ndarray], y: np.ndarray):
        cls = y[:, 0].astype(int)
        box_t = y[:, 1:3] * 10.0
        cls_loss, d_cls = cross_entropy(out["cls"], cls)
        diff = out["box"] - box_t
        absd = np.abs(diff)
        box_loss = float(np.where(absd < 1, 0.5 * diff**2, absd - 0.5).sum(1).mean())
        d_box = np.clip(diff, -1, 1) / len(y)
        centre_bin = np.clip((y[:, 1] * self.bins).astype(int), 0, self.bins - 1)
        dfl_loss, d_dfl = cross_entropy(out["dfl"], centre_bin, smoothing=0.1)
        return (cls_loss, box_loss, dfl_loss), (d_cls, d_box, d_dfl)

    def loss(self, out: dict[str, np.ndarray], y: np.ndarray):
        (c, b, f), (dc, db, df) = self._parts(out, y)
        parts = {"box_loss": self.box_gain * b, "cls_loss": self.cls_gain * c, "dfl_loss": self.dfl_gain * f}
        parts["loss"] = parts["box_loss"] + parts["cls_loss"] + parts["dfl_loss"]
        douts = {"cls": self.cls_gain * dc, "box": self.box_gain * db, "dfl": self.dfl_gain * df}
        return parts, douts

    def evaluate(self, outputs: list[dict[str, np.ndarray]], ys: list[np.ndarray]) -> dict[str, float]:
        out = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        y = np.concatenate(ys)
        parts, _ = self.loss(out, y)
        logp = log_softmax(out["cls"])
        conf, pred = np.exp(logp.max(1)), logp.argmax(1)
        centre, half = out["box"][:, 0] / 10.0, np.abs(out["box"][:, 1]) / 10.0
        lo, hi = np.maximum(centre - half, y[:, 1] - y[:, 2]), np.minimum(centre + half, y[:, 1] + y[:, 2])
        inter = np.clip(hi - lo, 0, None)
        iou = inter / (2 * half + 2 * y[:, 2] - inter + 1e-9)
        right_cls = pred == y[:, 0].astype(int)
        keep = conf >= 0.25
        tp50 = right_cls & (iou >= 0.5)
        metrics = {
            "precision": float((tp50 & keep).sum() / max(1, keep.sum())),
            "recall": float((tp50 & keep).sum() / len(y)),
            "map50": _mean_ap(conf, pred, tp50, y[:, 0].astype(int), self.n_classes),
            "map50_95": float(np.mean([_mean_ap(conf, pred, right_cls & (iou >= t), y[:, 0].astype(int),
                                                self.n_classes) for t in np.arange(0.5, 0.96, 0.05)])),
        }
        metrics.update({f"val_{k}": v for k, v in parts.items()})
        metrics["loss"] = parts["loss"]
        return metrics


def _mean_ap(conf: np.ndarray, pred: np.ndarray, tp: np.ndarray, truth: np.ndarray, k: int) -> float:
    """COCO-style 101-point interpolated AP averaged over classes."""
    aps = []
    for c in range(k):
        n_true = int((truth == c).sum())
        mine = pred == c
        if n_true == 0:
            continue
        order = np.argsort(-conf[mine], kind="stable")
        hits = tp[mine][order]
        if hits.size == 0:
            aps.append(0.0)
            continue
        cum = np.cumsum(hits)
        recall = cum / n_true
        precision = cum / np.arange(1, len(hits) + 1)
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        grid = np.linspace(0, 1, 101)
        idx = np.searchsorted(recall, grid, side="left")
        aps.append(float(np.mean(np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0))))
    return float(np.mean(aps)) if aps else 0.0
