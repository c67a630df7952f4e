"""Healthy and faulty recipes of the histogram runs, each graded by a ``strength`` knob.

A recipe is a scenario trained with several seeds; even seeds tune thresholds, odd seeds test
them (as in the main corpus).  Faulty recipes plant one problem where it arises in real code:
a learning rate high enough to kill ReLU units, hidden biases that start them dead, a weight
init too wide for sigmoid/tanh layers, a deep plain sigmoid stack, a deep ReLU stack
initialised with too much gain, a layer left frozen, a learning rate far too low, a layer
initialised to zeros or a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corpus import data, schedules
from corpus.histograms import nets
from corpus.histograms.train import Plan

SEEDS: tuple[int, ...] = (0, 1, 2, 4)
MORE_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 6)


@dataclass
class Built:
    plan: Plan
    model: str
    planted: str = ""
    style: str = "dotted"


@dataclass(frozen=True)
class Recipe:
    scenario: str
    category: str | None  # None: healthy
    fmt: str  # "pytorch" or "keras"
    strengths: tuple[Any, ...]
    make: Callable[[Any, int], Built]
    seeds: tuple[int, ...] = SEEDS
    optim: str = ""
    allowed: frozenset[str] = field(default_factory=frozenset)

    def run_name(self, strength: Any, seed: int) -> str:
        knob = str(strength).replace(".", "p").replace("-", "m")
        return f"{self.scenario}-{knob}-s{seed}"


def _digits(seed: int) -> data.Dataset:
    return data.bundled("digits", seed)


def _mlp(sizes: list[int], function: str, **kwargs: Any) -> Callable[[], nets.MLP]:
    return lambda: nets.MLP(sizes, function, **kwargs)


def _plan(dataset: data.Dataset, build: Callable[[], Any], optimizer: str, schedule: schedules.Schedule,
          seed: int, *, steps: int = 800, init: nets.Init | None = None, hist_every: int = 100, **kwargs: Any) -> Plan:
    return Plan(dataset, build, init or nets.Init(), optimizer, schedule, steps, seed=seed, hist_every=hist_every,
                eval_every=50, **kwargs)


# -- healthy -----------------------------------------------------------------------------------


def h_relu_adam(naming: str, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu", sequential=naming == "sequential"), "adam",
                 schedules.Schedule(1e-3), seed)
    return Built(plan, f"MLP {sizes} ReLU ({naming} names)")


def h_tanh_momentum(lr: float, seed: int) -> Built:
    plan = _plan(_digits(seed), _mlp([64, 96, 10], "tanh"), "momentum",
                 schedules.Cosine(lr, total=800), seed)
    return Built(plan, "MLP [64, 96, 10] tanh", style="folders")


def h_sigmoid_adam(width: int, seed: int) -> Built:
    sizes = [64, width, width // 2, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "sigmoid"), "adam", schedules.Schedule(3e-3), seed)
    return Built(plan, f"MLP {sizes} sigmoid")


def h_bn_dropout(dropout: float, seed: int) -> Built:
    sizes = [64, 128, 128, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu", dropout=dropout, batchnorm=True), "adamw",
                 schedules.WarmupCosine(2e-3, warmup=60, total=600), seed, steps=600, hist_every=75)
    return Built(plan, f"MLP {sizes} ReLU + batch norm + dropout {dropout}", style="folders")


def h_cnn(width: int, seed: int) -> Built:
    dataset = _digits(seed)
    plan = _plan(dataset, lambda: nets.SmallCNN(10, width), "momentum", schedules.Cosine(0.01, total=400), seed,
                 steps=400, weight_decay=5e-4, hist_every=50)
    return Built(plan, f"CNN conv{width}-conv{2 * width}-pool-fc ReLU")


def h_deep_he(depth: int, seed: int) -> Built:
    sizes = [64, *[64] * depth, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "adam", schedules.Schedule(5e-4), seed,
                 init=nets.Init("he"), steps=250, hist_every=50)
    return Built(plan, f"MLP {depth} hidden layers of 64 ReLU, He init")


def h_gelu_rmsprop(lr: float, seed: int) -> Built:
    sizes = [64, 128, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "gelu"), "rmsprop", schedules.OneCycle(lr, total=800), seed)
    return Built(plan, f"MLP {sizes} GELU", style="weights-only")


def h_blobs_tanh(lr: float, seed: int) -> Built:
    dataset = data.classification(seed, n=2400, d=20, k=4, informative=12)
    plan = _plan(dataset, _mlp([20, 64, 64, 4], "tanh", sequential=True), "sgd", schedules.Schedule(lr), seed,
                 steps=600)
    return Built(plan, "MLP [20, 64, 64, 4] tanh (nn.Sequential)")


def h_keras(optimizer: str, seed: int) -> Built:
    lr = {"adam": 1e-3, "sgd": 0.05}[optimizer]
    plan = Plan(_digits(seed), _mlp([64, 64, 32, 10], "relu"), nets.Init(), optimizer, schedules.Schedule(lr),
                steps=40 * 22, batch=64, seed=seed, epoch_logging=True)
    return Built(plan, "Keras-style Dense [64, 32, 10] ReLU, 40 epochs")


# -- faulty ------------------------------------------------------------------------------------


def dead_relu_lr(peak: float, seed: int) -> Built:
    sizes = [64, 128, 128, 10]
    schedule = schedules.WarmupCosine(peak, warmup=200, total=100_000)  # rises to the peak, then stays
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "momentum", schedule, seed)
    return Built(plan, f"MLP {sizes} ReLU", f"SGD momentum warmed up to a learning rate of {peak:g}")


def dead_relu_bias(shift: float, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "adam", schedules.Schedule(1e-3), seed,
                 init=nets.Init("bias", shift))
    return Built(plan, f"MLP {sizes} ReLU", f"hidden biases start at {shift:g} (plus PyTorch's draw)")


def saturated_sigmoid(std: float, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "sigmoid"), "adam", schedules.Schedule(1e-3), seed,
                 init=nets.Init("normal", std))
    return Built(plan, f"MLP {sizes} sigmoid", f"every weight drawn from N(0, {std:g}^2)")


def saturated_tanh(std: float, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "tanh"), "momentum", schedules.Schedule(0.01), seed,
                 init=nets.Init("normal", std))
    return Built(plan, f"MLP {sizes} tanh", f"every weight drawn from N(0, {std:g}^2)", style="folders")


def vanishing_sigmoid(depth: int, seed: int) -> Built:
    sizes = [64, *[32] * depth, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "sigmoid"), "sgd", schedules.Schedule(0.1), seed, hist_every=160)
    return Built(plan, f"plain MLP of {depth} sigmoid layers of 32", f"{depth} sigmoid layers, no normalisation")


def exploding_relu(gain: float, seed: int) -> Built:
    sizes = [64, *[64] * 8, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "sgd", schedules.Schedule(1e-4), seed,
                 init=nets.Init("gain", gain), hist_every=160)
    return Built(plan, "plain MLP of 8 ReLU layers of 64", f"He init times {gain:g}")


def frozen_layer(layer: str, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "adam", schedules.Schedule(1e-3), seed, freeze=(layer,))
    return Built(plan, f"MLP {sizes} ReLU", f"{layer} left out of the optimiser (frozen)")


def lr_too_low(lr: float, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    plan = _plan(_digits(seed), _mlp(sizes, "relu"), "adam", schedules.Schedule(lr), seed)
    return Built(plan, f"MLP {sizes} ReLU", f"Adam at a learning rate of {lr:g}")


def bad_init(kind: str, seed: int) -> Built:
    sizes = [64, 128, 64, 10]
    init = {"zeros": nets.Init("zeros", layer="fc2"), "constant": nets.Init("constant", 0.05, "fc2"),
            "tiny": nets.Init("normal", 1e-3)}[kind]
    plan = _plan(_digits(seed), _mlp(sizes, "tanh"), "adam", schedules.Schedule(1e-3), seed, init=init)
    return Built(plan, f"MLP {sizes} tanh", init.describe())


def keras_frozen(layer: str, seed: int) -> Built:
    built = h_keras("adam", seed)
    built.plan.freeze = (layer,)
    return Built(built.plan, built.model, f"{layer} trainable=False")


def keras_lr_low(lr: float, seed: int) -> Built:
    built = h_keras("adam", seed)
    built.plan.schedule = schedules.Schedule(lr)
    return Built(built.plan, built.model, f"Adam at a learning rate of {lr:g}")


def keras_zero_init(layer: str, seed: int) -> Built:
    built = h_keras("adam", seed)
    built.plan.init = nets.Init("zeros", layer=layer)
    return Built(built.plan, built.model, f"{layer} initialised to zeros")


RECIPES: tuple[Recipe, ...] = (
    Recipe("h-relu-adam", None, "pytorch", ("fc", "sequential"), h_relu_adam, MORE_SEEDS, "Adam const"),
    Recipe("h-tanh-momentum", None, "pytorch", (0.01, 0.03), h_tanh_momentum, SEEDS, "SGD momentum, cosine"),
    Recipe("h-sigmoid-adam", None, "pytorch", (64, 128), h_sigmoid_adam, SEEDS, "Adam const"),
    Recipe("h-bn-dropout", None, "pytorch", (0.3, 0.5), h_bn_dropout, SEEDS, "AdamW, warm-up + cosine"),
    Recipe("h-cnn", None, "pytorch", (8, 16), h_cnn, SEEDS, "SGD momentum, cosine, weight decay"),
    Recipe("h-deep-he", None, "pytorch", (6, 10), h_deep_he, SEEDS, "Adam const"),
    Recipe("h-gelu-rmsprop", None, "pytorch", (0.001, 0.003), h_gelu_rmsprop, SEEDS, "RMSprop, one-cycle"),
    Recipe("h-blobs-tanh", None, "pytorch", (0.05, 0.2), h_blobs_tanh, SEEDS, "SGD const"),
    Recipe("h-keras", None, "keras", ("adam", "sgd"), h_keras, MORE_SEEDS, "Adam / SGD const"),
    Recipe("dead-relu-lr", "dead_units", "pytorch", (0.1, 0.3, 1.0), dead_relu_lr, SEEDS, "SGD momentum, warm-up"),
    Recipe("dead-relu-bias", "dead_units", "pytorch", (-1, -3, -10), dead_relu_bias, SEEDS, "Adam const"),
    Recipe("saturated-sigmoid", "saturated_activations", "pytorch", (0.3, 1.0, 3.0), saturated_sigmoid, SEEDS, "Adam const"),
    Recipe("saturated-tanh", "saturated_activations", "pytorch", (0.3, 1.0), saturated_tanh, SEEDS, "SGD momentum const"),
    Recipe("vanishing-sigmoid", "vanishing_gradients", "pytorch", (4, 8, 12), vanishing_sigmoid, SEEDS, "SGD const"),
    Recipe("exploding-relu", "exploding_gradients", "pytorch", (1.5, 2.0, 2.5), exploding_relu, SEEDS, "SGD const"),
    Recipe("frozen-layer", "frozen_layer", "pytorch", ("fc1", "fc2"), frozen_layer, SEEDS, "Adam const"),
    Recipe("lr-too-low-hist", "updates_too_small", "pytorch", (1e-5, 1e-6), lr_too_low, SEEDS, "Adam const"),
    Recipe("bad-init", "poor_weight_init", "pytorch", ("zeros", "constant", "tiny"), bad_init, SEEDS, "Adam const"),
    Recipe("keras-frozen", "frozen_layer", "keras", ("fc1",), keras_frozen, SEEDS, "Adam const"),
    Recipe("keras-lr-low", "updates_too_small", "keras", (1e-6,), keras_lr_low, SEEDS, "Adam const"),
    Recipe("keras-zero-init", "poor_weight_init", "keras", ("fc2",), keras_zero_init, SEEDS, "Adam const"),
)
