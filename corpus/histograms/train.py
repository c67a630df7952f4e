"""Train one PyTorch model and record what a practitioner's logging would write, plus the raw facts.

Every ``hist_every`` steps the loop records, as the user's ``add_histogram`` calls would, each
weight layer's weight and bias, their gradients of that step (after ``backward``, before
``optimizer.step``), and each hidden layer's activations on that training batch (a forward
hook).  Beside the histograms it keeps the facts the labels are decided from, computed from
the raw tensors, never from histograms: per layer the share of dead ReLU units on the
validation set (active on fewer than 1% of its inputs), the share of saturated outputs, the
mean |gradient|, the size of the update that step made relative to the weights, and whether
the weights are bit-identical to the first record.

Runs are deterministic: one CPU thread, seeded data order, init and dropout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from corpus.data import Dataset
from corpus.histograms import nets
from corpus.schedules import Schedule
from corpus.trace import EPOCH, EVAL, TRAIN, Trace

# A ReLU unit is dead when active on fewer than this share of the validation inputs (SageMaker
# Debugger's DeadRelu); a tanh/sigmoid output is saturated where the function's slope is under a
# fifth of its peak: tanh' = 1 - a^2 <= 0.2, sigmoid' = p (1 - p) <= 0.05.
DEAD_ACTIVITY = 0.01
TANH_SATURATED = 0.8**0.5  # |a| beyond it
SIGMOID_SATURATED = (1 - 0.8**0.5) / 2  # p below it (0.053) or above 1 minus it


@dataclass
class Plan:
    data: Dataset
    build: Callable[[], nn.Module]
    init: nets.Init
    optimizer: str  # sgd, momentum, adam, adamw, rmsprop
    schedule: Schedule
    steps: int
    batch: int = 64
    weight_decay: float = 0.0
    log_every: int = 10
    hist_every: int = 50
    eval_every: int = 50
    freeze: tuple[str, ...] = ()  # weight layers left out of the optimiser
    seed: int = 0
    epoch_logging: bool = False  # Keras: one record per epoch, histograms of weights only


@dataclass
class LayerFacts:
    """Raw-tensor facts about one weight layer at one record."""

    dead_share: float | None  # share of units dead on the validation set (ReLU layers)
    saturated_share: float | None  # share of outputs within the margin of a bound (tanh/sigmoid)
    grad_abs_mean: float
    update_ratio: float  # ||W after the step - W before|| / ||W before||, this step
    unchanged: bool  # weights bit-identical to the first record
    std: float


@dataclass(frozen=True)
class Initial:
    """A weight layer before the first step: its spread, whether it is constant, its fan-in."""

    std: float
    constant: bool
    fan_in: int


@dataclass
class Record:
    trace: Trace
    initial: dict[str, Initial] = field(default_factory=dict)
    histograms: list[tuple[str, str, int, np.ndarray]] = field(default_factory=list)  # (kind, layer, step, values)
    facts: dict[int, dict[str, LayerFacts]] = field(default_factory=dict)  # step -> layer -> facts
    layers: list[tuple[str, str | None, int, int]] = field(default_factory=list)  # name, function, fan_in, fan_out


def _optimizer(plan: Plan, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    lr = plan.schedule.lr(0)
    if plan.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=plan.weight_decay)
    if plan.optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=plan.weight_decay)
    if plan.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=plan.weight_decay)
    if plan.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=plan.weight_decay or 0.01)
    if plan.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=plan.weight_decay)
    raise ValueError(plan.optimizer)


def _saturated(values: torch.Tensor, function: str | None) -> float | None:
    if function == "tanh":
        return float((values.abs() >= TANH_SATURATED).float().mean())
    if function == "sigmoid":
        return float(((values <= SIGMOID_SATURATED) | (values >= 1 - SIGMOID_SATURATED)).float().mean())
    return None


def run(plan: Plan, start_wall: float) -> Record:
    torch.set_num_threads(1)
    torch.manual_seed(plan.seed)
    model = plan.build()
    plan.init.apply(model)
    layer_list = nets.layers(model)
    frozen = {layer.name for layer in layer_list if layer.name in plan.freeze}
    for layer in layer_list:
        if layer.name in frozen:
            for parameter in layer.module.parameters():
                parameter.requires_grad_(False)
    optimizer = _optimizer(plan, [p for p in model.parameters() if p.requires_grad])
    data = plan.data
    x_train = torch.tensor(data.x_train, dtype=torch.float32)
    y_train = torch.tensor(data.y_train, dtype=torch.int64)
    x_val = torch.tensor(data.x_val, dtype=torch.float32)
    y_val = torch.tensor(data.y_val, dtype=torch.int64)
    loss_fn = nn.CrossEntropyLoss()
    trace = Trace(optimizer=plan.optimizer, task="classification", n_classes=data.n_classes,
                  start_wall=start_wall, total_steps=plan.steps)
    steps_per_epoch = max(1, len(x_train) // plan.batch)
    trace.steps_per_epoch = steps_per_epoch
    record = Record(trace, layers=[(layer.name, layer.function, nets.fan_in(layer.module),
                                    int(layer.module.weight.shape[0])) for layer in layer_list])
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        layer.activation.register_forward_hook(
            lambda _module, _inputs, output, name=layer.name: captured.__setitem__(name, output.detach()))
        for layer in layer_list if layer.activation is not None
    ]
    first = {layer.name: layer.module.weight.detach().clone() for layer in layer_list}
    record.initial = {name: Initial(float(weight.std()), bool(weight.min() == weight.max()), int(weight[0].numel()))
                      for name, weight in first.items()}
    generator = torch.Generator().manual_seed(plan.seed)
    order = torch.randperm(len(x_train), generator=generator)
    position = 0
    wall = start_wall
    for step in range(plan.steps):
        lr = plan.schedule.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if position + plan.batch > len(order):
            order, position = torch.randperm(len(x_train), generator=generator), 0
        index = order[position:position + plan.batch]
        position += plan.batch
        model.train()
        captured.clear()
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        epoch_end = (step + 1) % steps_per_epoch == 0
        histogram_step = (epoch_end if plan.epoch_logging else step % plan.hist_every == 0)
        before = ({layer.name: layer.module.weight.detach().clone() for layer in layer_list}
                  if histogram_step else {})
        if histogram_step and not plan.epoch_logging:
            _record_tensors(record, layer_list, captured, step)
        optimizer.step()
        wall += 0.05 + 0.01 * (step % 7)
        logged_step = step // steps_per_epoch if plan.epoch_logging else step
        if not plan.epoch_logging and step % plan.log_every == 0:
            trace.add(TRAIN, step, step // steps_per_epoch, wall, {"loss": float(loss.detach()), "lr": lr})
        if histogram_step:
            if plan.epoch_logging:  # Keras logs the weights at the end of the epoch
                for layer in layer_list:
                    record.histograms.append(("weight", layer.name, logged_step, layer.module.weight.detach().numpy().copy()))
                    record.histograms.append(("bias", layer.name, logged_step, layer.module.bias.detach().numpy().copy()))
            record.facts[logged_step] = _facts(model, layer_list, captured, before, first, x_val)
        evaluate = epoch_end if plan.epoch_logging else (step + 1) % plan.eval_every == 0
        if evaluate:
            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = float(loss_fn(logits, y_val))
                accuracy = float((logits.argmax(1) == y_val).float().mean())
            values = {"val_loss": val_loss, "val_acc": accuracy}
            if plan.epoch_logging:  # Keras: the epoch's training loss and accuracy, then validation
                with torch.no_grad():
                    train_logits = model(x_train)
                trace.add(EPOCH, logged_step, logged_step, wall, {
                    "loss": float(loss_fn(train_logits, y_train)),
                    "acc": float((train_logits.argmax(1) == y_train).float().mean())})
                trace.add(EVAL, logged_step, logged_step, wall, values)
            else:
                trace.add(EVAL, step, step // steps_per_epoch, wall, values)
    for hook in hooks:
        hook.remove()
    return record


def _record_tensors(record: Record, layer_list: list[nets.Layer], captured: dict[str, torch.Tensor], step: int) -> None:
    """What the user's add_histogram calls log at a training step: weights, biases, their gradients
    and the activations of the batch."""
    for layer in layer_list:
        weight, bias = layer.module.weight, layer.module.bias
        record.histograms.append(("weight", layer.name, step, weight.detach().numpy().copy()))
        record.histograms.append(("bias", layer.name, step, bias.detach().numpy().copy()))
        if weight.grad is not None:
            record.histograms.append(("grad_weight", layer.name, step, weight.grad.detach().numpy().copy()))
            record.histograms.append(("grad_bias", layer.name, step, bias.grad.detach().numpy().copy()))
        if layer.name in captured:
            record.histograms.append(("activation", layer.name, step, captured[layer.name].numpy().copy()))


def _facts(model: nn.Module, layer_list: list[nets.Layer], captured: dict[str, torch.Tensor],
           before: dict[str, torch.Tensor], first: dict[str, torch.Tensor], x_val: torch.Tensor) -> dict[str, LayerFacts]:
    """Raw-tensor facts of every weight layer: activations on the validation set (in eval mode),
    this step's gradient and update."""
    probe: dict[str, torch.Tensor] = {}
    hooks = [
        layer.activation.register_forward_hook(
            lambda _module, _inputs, output, name=layer.name: probe.__setitem__(name, output.detach()))
        for layer in layer_list if layer.activation is not None
    ]
    model.eval()
    with torch.no_grad():
        model(x_val)
    for hook in hooks:
        hook.remove()
    facts = {}
    for layer in layer_list:
        weight = layer.module.weight
        now = weight.detach()
        was = before[layer.name]
        outputs = probe.get(layer.name)
        dead = None
        if outputs is not None and layer.function == "relu":
            per_unit = outputs.transpose(0, 1).reshape(outputs.shape[1], -1)  # units (channels) x inputs
            dead = float(((per_unit > 0).float().mean(1) < DEAD_ACTIVITY).float().mean())
        saturated = _saturated(outputs, layer.function) if outputs is not None else None
        grad = weight.grad
        facts[layer.name] = LayerFacts(
            dead_share=dead,
            saturated_share=saturated,
            grad_abs_mean=float(grad.abs().mean()) if grad is not None else 0.0,
            update_ratio=float((now - was).norm() / max(float(was.norm()), 1e-30)),
            unchanged=bool(torch.equal(now, first[layer.name])),
            std=float(now.std()),
        )
    return facts
