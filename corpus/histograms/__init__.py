"""Histogram runs of the calibration corpus: small PyTorch models trained on CPU whose logs hold
the histograms practitioners log (weights, biases, their gradients, activations), healthy and
with the problems histograms show planted (dead ReLU units, saturated activations, vanishing
and exploding gradients, a frozen layer, a learning rate too low, a poor initialisation).

They live in their own archive, ``corpus/histograms.tar.xz`` with ``corpus/histogram_labels.json``,
because they need torch to regenerate while the main corpus needs only numpy and scikit-learn:

    python -m corpus.histograms.generate --archive corpus/histograms.tar.xz

``extract(dest)`` unpacks it (no torch needed); label paths are relative to ``dest``.
"""

from __future__ import annotations

from pathlib import Path

from corpus import archive

ARCHIVE = Path(__file__).resolve().parents[1] / "histograms.tar.xz"
LABELS = ARCHIVE.with_name("histogram_labels.json")


def extract(dest: Path | str) -> Path:
    """Unpack the histogram runs into ``dest`` and return it (label paths are relative to it)."""
    return archive.extract(dest, ARCHIVE)


__all__ = ["ARCHIVE", "LABELS", "extract"]
