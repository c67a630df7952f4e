"""The PyTorch models of the histogram runs, how their weights start, and which tensors get logged.

Models are the small networks practitioners debug: MLPs with ReLU, tanh, sigmoid or GELU,
optionally with batch normalisation and dropout, deep plain stacks, and a small CNN on the 8x8
digits.  Layers are named the way PyTorch code names them: attributes ``fc1``, ``fc2``, ... or
an ``nn.Sequential`` whose parameters are ``net.0.weight``, ``net.2.weight``, ...

An :class:`Init` plants a way to start the weights: PyTorch's default (Kaiming-uniform with
a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))), He-normal, a fixed normal spread, a gain on
He, zero or constant layers, or hidden biases shifted below zero.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


@dataclass(frozen=True)
class Layer:
    """A weight layer as logged: its name (``fc1``, ``net.0``, ``conv1``), the module, the module
    whose output is its activation (None for the output layer) and that function's name."""

    name: str
    module: nn.Module
    activation: nn.Module | None
    function: str | None


class MLP(nn.Module):
    """Linear layers with an activation after each hidden one; ``sequential`` names them as
    ``nn.Sequential`` does (``net.0``, ``net.2``, ...), otherwise ``fc1``, ``fc2``, ..."""

    def __init__(self, sizes: list[int], function: str, *, dropout: float = 0.0, batchnorm: bool = False,
                 sequential: bool = False) -> None:
        super().__init__()
        self.function = function
        self.sequential = sequential
        parts: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            parts.append(nn.Linear(fan_in, fan_out))
            if index < len(sizes) - 2:
                if batchnorm:
                    parts.append(nn.BatchNorm1d(fan_out))
                parts.append(ACTIVATIONS[function]())
                if dropout:
                    parts.append(nn.Dropout(dropout))
        if sequential:
            self.net = nn.Sequential(*parts)
        else:
            counts = {"fc": 0, "bn": 0, "act": 0, "drop": 0}
            self.order: list[str] = []
            for part in parts:
                kind = ("fc" if isinstance(part, nn.Linear) else "bn" if isinstance(part, nn.BatchNorm1d)
                        else "drop" if isinstance(part, nn.Dropout) else "act")
                counts[kind] += 1
                name = f"{kind}{counts[kind]}"
                self.add_module(name, part)
                self.order.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sequential:
            return self.net(x)
        for name in self.order:
            x = getattr(self, name)(x)
        return x


class SmallCNN(nn.Module):
    """Two 3x3 convolutions with ReLU and a 2x2 max-pool on 8x8 digits, then a linear classifier."""

    def __init__(self, classes: int, width: int = 8) -> None:
        super().__init__()
        self.function = "relu"
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.act2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2 * width * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)
        x = self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.fc(x.flatten(1))


def layers(model: nn.Module) -> list[Layer]:
    """The weight layers in forward order, each with the activation module that follows it."""
    function = getattr(model, "function", None)
    found: list[Layer] = []
    pending: tuple[str, nn.Module] | None = None  # the last weight layer, until its activation shows
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if pending is not None:
                found.append(Layer(*pending, None, None))
            pending = (name, module)
        elif isinstance(module, tuple(ACTIVATIONS.values())) and pending is not None:
            found.append(Layer(*pending, module, function))
            pending = None
    if pending is not None:
        found.append(Layer(*pending, None, None))
    return found


def fan_in(module: nn.Module) -> int:
    weight = module.weight
    return int(weight[0].numel())


@dataclass(frozen=True)
class Init:
    """How the weights start: ``default`` (PyTorch's), ``he`` (normal, std sqrt(2/fan_in), zero
    biases), ``normal`` (every weight layer N(0, value^2)), ``gain`` (He times value),
    ``zeros`` / ``constant`` (the hidden layer ``layer`` all zero / all ``value``, the rest
    default), ``bias`` (every hidden bias at ``value`` plus PyTorch's default draw)."""

    kind: str = "default"
    value: float = 0.0
    layer: str = ""

    def apply(self, model: nn.Module) -> None:
        with torch.no_grad():
            for layer in layers(model):
                weight, bias = layer.module.weight, layer.module.bias
                hidden = layer.activation is not None
                if self.kind == "he":
                    nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_in(layer.module)))
                    nn.init.zeros_(bias)
                elif self.kind == "gain":
                    nn.init.normal_(weight, 0.0, self.value * math.sqrt(2.0 / fan_in(layer.module)))
                    nn.init.zeros_(bias)
                elif self.kind == "normal":
                    nn.init.normal_(weight, 0.0, self.value)
                elif self.kind == "zeros" and layer.name == self.layer:
                    nn.init.zeros_(weight)
                elif self.kind == "constant" and layer.name == self.layer:
                    nn.init.constant_(weight, self.value)
                elif self.kind == "bias" and hidden:
                    bias.add_(self.value)

    def describe(self) -> str:
        return {
            "default": "PyTorch's default init",
            "he": "He-normal init",
            "normal": f"every weight N(0, {self.value:g}^2)",
            "gain": f"He-normal init times {self.value:g}",
            "zeros": f"{self.layer} initialised to zeros",
            "constant": f"{self.layer} initialised to the constant {self.value:g}",
            "bias": f"hidden biases shifted by {self.value:g}",
        }[self.kind]
