"""Datasets for the corpus: scikit-learn's bundled sets and small synthetic problems.

Nothing is downloaded: every set either ships inside scikit-learn or is synthesised from a
seed, so a run is reproducible offline.  Inputs are standardised with the TRAIN statistics
(as a careful practitioner would) unless a recipe asks for raw inputs on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A train/validation split.  ``n_classes`` is None for regression."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int | None = None

    @property
    def majority_rate(self) -> float:
        """Share of the most frequent class in the validation set (accuracy of a constant guess)."""
        labels = self.y_val if self.y_val.ndim == 1 else self.y_val[:, 0]  # detection: (class, box)
        counts = np.bincount(labels.astype(int), minlength=self.n_classes or 1)
        return float(counts.max() / counts.sum())


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int, val_frac: float,
           n_classes: int | None, standardize: bool = True, n_train: int | None = None) -> Dataset:
    rng = np.random.default_rng(10_000 + seed)
    order = rng.permutation(len(x))
    n_val = round(len(x) * val_frac)
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        train = train[:n_train]
    x_train, x_val = x[train].astype(np.float64), x[val].astype(np.float64)
    if standardize:
        mean, std = x_train.mean(0), x_train.std(0)
        std[std == 0] = 1.0
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return Dataset(name, x_train, y[train], x_val, y[val], n_classes)


@cache
def _sklearn_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
        "diabetes": datasets.load_diabetes,
    }[name]
    bunch = loader()
    return bunch.data, bunch.target


def bundled(name: str, seed: int, *, val_frac: float = 0.2, standardize: bool = True,
            n_train: int | None = None) -> Dataset:
    """One of scikit-learn's bundled sets (digits, breast_cancer, wine, iris, diabetes)."""
    x, y = _sklearn_set(name)
    if name == "diabetes":
        y = (y - y.mean()) / y.std()  # normalised regression target
        return _split(name, x, y.astype(np.float64)[:, None], seed, val_frac, None, standardize, n_train)
    return _split(name, x, y.astype(np.int64), seed, val_frac, int(y.max()) + 1, standardize, n_train)


def classification(seed: int, *, n: int = 3000, d: int = 20, k: int = 3, informative: int = 10,
                   class_sep: float = 1.0, flip_y: float = 0.0, weights: list[float] | None = None,
                   val_frac: float = 0.25, n_train: int | None = None) -> Dataset:
    """make_classification: Gaussian clusters, optionally imbalanced (``weights``)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=d, n_informative=informative,
                               n_redundant=min(2, d - informative), n_classes=k,
                               n_clusters_per_class=1 if k > 2 else 2, class_sep=class_sep,
                               flip_y=flip_y, weights=weights, random_state=seed)
    return _split("make_classification", x, y.astype(np.int64), seed, val_frac, k, True, n_train)


def moons(seed: int, *, n: int = 2000, noise: float = 0.2) -> Dataset:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return _split("make_moons", x, y.astype(np.int64), seed, 0.25, 2)


def friedman(seed: int, *, n: int = 2000, noise: float = 0.5, target_scale: float | None = None) -> Dataset:
    """make_friedman1; targets normalised unless ``target_scale`` asks for raw large targets."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=n, n_features=10, noise=noise, random_state=seed)
    y = (y - y.mean()) / y.std()
    if target_scale is not None:
        y = y * target_scale + 3.0 * target_scale  # raw units: large mean and spread
    return _split("make_friedman1", x, y[:, None], seed, 0.2, None)


def regression(seed: int, *, n: int = 2000, d: int = 20, noise: float = 10.0) -> Dataset:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n, n_features=d, n_informative=10, noise=noise, random_state=seed)
    y = (y - y.mean()) / y.std()
    return _split("make_regression", x, y[:, None], seed, 0.2, None)


def flip_labels(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Replace ``fraction`` of the TRAIN and VAL labels with a uniformly drawn other class."""
    rng = np.random.default_rng(20_000 + seed)

    def flip(y: np.ndarray) -> np.ndarray:
        y = y.copy()
        hit = rng.random(len(y)) < fraction
        y[hit] = (y[hit] + rng.integers(1, data.n_classes, hit.sum())) % data.n_classes
        return y

    return replace(data, y_train=flip(data.y_train), y_val=flip(data.y_val))


def shuffle_train_labels(data: Dataset, seed: int) -> Dataset:
    """The bug: train labels permuted independently of the inputs (pairs become random)."""
    rng = np.random.default_rng(30_000 + seed)
    return replace(data, y_train=rng.permutation(data.y_train))


def sparse_parity(seed: int, *, n_bits: int = 20, k: int = 3, n_train: int = 20_000,
                  n_val: int = 4000) -> Dataset:
    """Parity of k hidden bits out of n (+-1 inputs): the loss creeps while accuracy sits at 0.5."""
    rng = np.random.default_rng(50_000 + seed)
    x = rng.choice([-1.0, 1.0], size=(n_train + n_val, n_bits))
    y = (np.prod(x[:, :k], axis=1) < 0).astype(np.int64)
    return Dataset(f"parity{k}of{n_bits}", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 2)


def sequences(seed: int, *, n: int = 2400, length: int = 14, k: int = 3) -> Dataset:
    """Noisy 1-D sequences whose class is which of k motifs was embedded at a random offset."""
    rng = np.random.default_rng(60_000 + seed)
    motifs = rng.normal(0, 1, size=(k, 4))
    x = rng.normal(0, 0.6, size=(n, length, 1))
    y = rng.integers(0, k, n)
    offsets = rng.integers(0, length - 4, n)
    for i in range(n):
        x[i, offsets[i]:offsets[i] + 4, 0] += 1.5 * motifs[y[i]]
    n_val = n // 5
    return Dataset("motif_sequences", x[n_val:], y[n_val:], x[:n_val], y[:n_val], k)


def detection(seed: int, *, n: int = 3000, width: int = 32, k: int = 4, noise: float = 0.35,
              hard_frac: float = 0.0) -> Dataset:
    """1-D 'images' holding one object: a box of class-specific brightness and varying extent.

    Targets are (class, centre, half-width) with positions in [0, 1]; ``hard_frac`` of the
    objects get twice the noise so the metrics cannot saturate.  y is an (n, 3) float array.
    """
    rng = np.random.default_rng(70_000 + seed)
    grid = np.linspace(0, 1, width)
    cls = rng.integers(0, k, n)
    centre = rng.uniform(0.2, 0.8, n)
    half = rng.uniform(0.06, 0.18, n)
    inside = np.abs(grid[None, :] - centre[:, None]) <= half[:, None]
    level = (0.7 + 0.6 * cls + rng.uniform(-0.1, 0.1, n))[:, None]  # the class sets the brightness
    sigma = np.where(rng.random(n) < hard_frac, 2 * noise, noise)[:, None]
    x = inside * level + rng.normal(0, 1, (n, width)) * sigma
    y = np.stack([cls, centre, half], axis=1).astype(np.float64)
    n_val = n // 5
    return Dataset("bumps_1d", x[n_val:], y[n_val:], x[:n_val], y[:n_val], k)
