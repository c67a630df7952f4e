"""Tiny numpy models with hand-written backward passes.

Every model exposes ``params`` (a list of arrays updated in place by an optimiser),
``forward(x, train, rng)`` and ``backward(dout) -> grads`` aligned with ``params``.  The
models are small on purpose: the corpus needs hundreds of real optimisation runs in a few
minutes on two cores, and the failure modes it plants (divergence, memorisation, collapse)
show up just as clearly at this scale.
"""

from __future__ import annotations

import itertools

import numpy as np


class Dense:
    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, *, gain: float = 2.0,
                 bias: float = 0.0) -> None:
        self.w = rng.normal(0.0, np.sqrt(gain / n_in), (n_in, n_out))
        self.b = np.full(n_out, bias)
        self._x = np.zeros((0, n_in))

    @property
    def params(self) -> list[np.ndarray]:
        return [self.w, self.b]

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> np.ndarray:
        self._x = x
        return x @ self.w + self.b

    def backward(self, d: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        return d @ self.w.T, [self._x.T @ d, d.sum(0)]


class Activation:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._cache: np.ndarray = np.zeros(0)  # ReLU: the active mask; tanh: the output

    @property
    def params(self) -> list[np.ndarray]:
        return []

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "relu":
            self._cache = x > 0
            return x * self._cache
        out = np.tanh(x)
        self._cache = out
        return out

    def backward(self, d: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        if self.kind == "relu":
            return d * self._cache, []
        return d * (1.0 - self._cache**2), []


class Dropout:
    """Inverted dropout: active in training only, so train loss sits above val loss."""

    @property
    def params(self) -> list[np.ndarray]:
        return []

    def __init__(self, p: float) -> None:
        self.p = p
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> np.ndarray:
        if not train or self.p == 0:
            self._mask = None
            return x
        self._mask = (rng.random(x.shape) >= self.p) / (1.0 - self.p)
        return x * self._mask

    def backward(self, d: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        return (d if self._mask is None else d * self._mask), []


class Sequential:
    def __init__(self, layers: list) -> None:
        self.layers = layers

    @property
    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params]

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train, rng)
        return x

    def backward_input(self, d: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        grads: list[list[np.ndarray]] = []
        for layer in reversed(self.layers):
            d, g = layer.backward(d)
            grads.append(g)
        return d, [g for layer_grads in reversed(grads) for g in layer_grads]

    def backward(self, d: np.ndarray) -> list[np.ndarray]:
        return self.backward_input(d)[1]


def mlp(sizes: list[int], rng: np.random.Generator, *, activation: str = "relu", dropout: float = 0.0,
        bias_init: float = 0.0, out_gain: float | None = None) -> Sequential:
    """Dense layers with ``activation`` between them; no activation after the last.

    ``bias_init`` sets the hidden biases (a large negative value kills every ReLU unit);
    ``out_gain`` scales the output layer's init (0 gives a zero-initialised head).
    """
    gain = 2.0 if activation == "relu" else 1.0
    layers: list = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(Dense(n_in, n_out, rng, gain=(out_gain if last and out_gain is not None else gain),
                            bias=0.0 if last else bias_init))
        if not last:
            layers.append(Activation(activation))
            if dropout:
                layers.append(Dropout(dropout))
    return Sequential(layers)


class MultiHead:
    """A shared trunk feeding several heads; ``forward`` returns {head: output}."""

    def __init__(self, trunk: Sequential, heads: dict[str, Sequential]) -> None:
        self.trunk, self.heads = trunk, heads

    @property
    def params(self) -> list[np.ndarray]:
        return self.trunk.params + [p for head in self.heads.values() for p in head.params]

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        h = self.trunk.forward(x, train, rng)
        return {name: head.forward(h, train, rng) for name, head in self.heads.items()}

    def backward(self, douts: dict[str, np.ndarray]) -> list[np.ndarray]:
        dhs, head_grads = [], []
        for name, head in self.heads.items():
            d, g = head.backward_input(douts[name])
            dhs.append(d)
            head_grads += g
        return self.trunk.backward(np.sum(dhs, axis=0)) + head_grads


class Elman:
    """A one-layer tanh RNN over (batch, time, features), read out from the last state; BPTT."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator) -> None:
        self.wx = rng.normal(0, np.sqrt(1.0 / n_in), (n_in, n_hidden))
        self.wh = np.linalg.qr(rng.normal(0, 1, (n_hidden, n_hidden)))[0] * 0.9
        self.b = np.zeros(n_hidden)
        self.wo = rng.normal(0, np.sqrt(1.0 / n_hidden), (n_hidden, n_out))
        self.bo = np.zeros(n_out)
        self._states: list[np.ndarray] = []
        self._x = np.zeros((0, 0, n_in))

    @property
    def params(self) -> list[np.ndarray]:
        return [self.wx, self.wh, self.b, self.wo, self.bo]

    def forward(self, x: np.ndarray, train: bool, rng: np.random.Generator) -> np.ndarray:
        self._x = x
        h = np.zeros((x.shape[0], self.wh.shape[0]))
        self._states = [h]
        for t in range(x.shape[1]):
            h = np.tanh(x[:, t] @ self.wx + h @ self.wh + self.b)
            self._states.append(h)
        return h @ self.wo + self.bo

    def backward(self, d: np.ndarray) -> list[np.ndarray]:
        last = self._states[-1]
        gwo, gbo = last.T @ d, d.sum(0)
        gwx, gwh, gb = np.zeros_like(self.wx), np.zeros_like(self.wh), np.zeros_like(self.b)
        dh = d @ self.wo.T
        for t in range(self._x.shape[1] - 1, -1, -1):
            h, prev = self._states[t + 1], self._states[t]
            dz = dh * (1.0 - h**2)
            gwx += self._x[:, t].T @ dz
            gwh += prev.T @ dz
            gb += dz.sum(0)
            dh = dz @ self.wh.T
        return [gwx, gwh, gb, gwo, gbo]
