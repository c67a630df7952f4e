"""Hand-written optimisers with the update rules of their torch namesakes.

The name of each class is what a LearningRateMonitor would print (``lr-SGD``, ``lr-Adam``),
so the writers take it from here.  Optimisers update the parameter arrays in place.
"""

from __future__ import annotations

import numpy as np


class Optimizer:
    name = "Optimizer"

    def __init__(self, params: list[np.ndarray], *, weight_decay: float = 0.0) -> None:
        self.params = params
        self.weight_decay = weight_decay
        self.t = 0

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            self._update(i, p, g, lr)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        """A copy of the optimiser's state, for checkpoint / resume scenarios."""
        return {k: ([a.copy() for a in v] if isinstance(v, list) else v) for k, v in vars(self).items()
                if k != "params"}

    def load(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, [a.copy() for a in v] if isinstance(v, list) else v)


class SGD(Optimizer):
    name = "SGD"

    def __init__(self, params: list[np.ndarray], *, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, weight_decay=weight_decay)
        self.momentum, self.nesterov = momentum, nesterov
        self.buf = [np.zeros_like(p) for p in params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            self.buf[i] = self.momentum * self.buf[i] + g if self.t > 1 else g.copy()
            g = g + self.momentum * self.buf[i] if self.nesterov else self.buf[i]
        p -= lr * g


class Adam(Optimizer):
    """Adam with L2 weight decay folded into the gradient (torch.optim.Adam's weight_decay)."""

    name = "Adam"
    decoupled = False

    def __init__(self, params: list[np.ndarray], *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, weight_decay=weight_decay)
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
        self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
        m_hat = self.m[i] / (1 - self.b1**self.t)
        v_hat = self.v[i] / (1 - self.b2**self.t)
        p -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), torch's default decay 0.01."""

    name = "AdamW"
    decoupled = True

    def __init__(self, params: list[np.ndarray], *, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    name = "RMSprop"

    def __init__(self, params: list[np.ndarray], *, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, weight_decay=weight_decay)
        self.alpha, self.eps, self.momentum = alpha, eps, momentum
        self.sq = [np.zeros_like(p) for p in params]
        self.buf = [np.zeros_like(p) for p in params]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        self.sq[i] = self.alpha * self.sq[i] + (1 - self.alpha) * g * g
        step = g / (np.sqrt(self.sq[i]) + self.eps)
        if self.momentum:
            self.buf[i] = self.momentum * self.buf[i] + step
            step = self.buf[i]
        p -= lr * step


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop)}


def make(name: str, params: list[np.ndarray], **kwargs) -> Optimizer:
    return OPTIMIZERS[name](params, **kwargs)
