"""Faulty runs: one planted fault per recipe, each at graded strengths.

The fault is planted where it arises in practice (a learning rate off by a factor, a bias
init that kills every ReLU, a schedule whose gamma is 0, a corrupted batch, a bug in
``compute_metrics``).  Whether it shows in the log is decided afterwards by
``corpus.labels.judge``; a planted knob too weak to show is kept as ``manifest: false``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from corpus import data, train
from corpus.recipes.base import (
    MORE_SEEDS,
    Built,
    Recipe,
    classifier,
    classify,
    detect,
    detector,
    regress,
    regressor,
)
from corpus.trace import EVAL, Trace
from corpus.train import Faults


def _digits_sgd(seed: int, lr: float, **kwargs) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (128,)), seed, optimizer="SGD", lr=lr,
                    optimizer_kwargs={"momentum": 0.9}, batch_size=32, **kwargs)
    return Built(plan, "MLP 64-128-10")


def lr_high_sgd(factor: float, seed: int) -> Built:
    built = _digits_sgd(seed, 0.05 * factor, epochs=10, log_every=2)
    built.planted = f"learning rate {factor:g}x a good value (0.05 -> {0.05 * factor:g}), no clipping"
    return built


def lr_high_adaptive(factor: float, seed: int, optimizer: str) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (64,), activation="tanh"), seed, optimizer=optimizer, lr=1e-3 * factor,
                    batch_size=32, epochs=12, log_every=3)
    return Built(plan, "MLP 64-64-10 (tanh)",
                 f"{optimizer} learning rate {factor:g}x a good value (1e-3 -> {1e-3 * factor:g})")


def lr_high_adam(factor: float, seed: int) -> Built:
    return lr_high_adaptive(factor, seed, "Adam")


def lr_high_rmsprop(factor: float, seed: int) -> Built:
    return lr_high_adaptive(factor, seed, "RMSprop")


def nan_at(fraction: float, seed: int) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (64,)), seed, optimizer="Adam", lr=1e-3, batch_size=32, epochs=12,
                    log_every=5)
    at = int(fraction * plan.total_steps)
    plan.faults = Faults(nan_at=at)
    return Built(plan, "MLP 64-64-10",
                 f"from step {at} ({fraction:.0%} of the run) a per-batch standardisation divides by a zero "
                 "std, so inputs become inf and every weight NaN")


def dead_relu(bias: float, seed: int) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (64, 64), bias_init=bias), seed, optimizer="SGD", lr=0.05,
                    optimizer_kwargs={"momentum": 0.9}, batch_size=32, epochs=15, log_every=5)
    return Built(plan, "MLP 64-64-64-10", f"hidden biases initialised to {bias:g}, so most ReLU units start dead")


def lr_zero(fraction: float, seed: int) -> Built:
    built = _digits_sgd(seed, 0.01, epochs=15, log_every=5)
    at = max(1, int(fraction * built.plan.total_steps))
    built.plan.schedule, built.plan.schedule_kwargs = "step_gamma0", {"at": at}
    built.planted = f"a step schedule with gamma=0 sets the learning rate to 0 at step {at} ({fraction:.0%})"
    return built


def lr_low(factor: float, seed: int) -> Built:
    built = _digits_sgd(seed, 0.05 * factor, epochs=15, log_every=10)
    built.planted = f"learning rate {factor:g}x a good value (0.05 -> {0.05 * factor:g})"
    return built


def lr_low_hf(factor: float, seed: int) -> Built:
    d = data.classification(seed, n=4000, k=4, flip_y=0.02)
    plan = classify(d, classifier(d, seed, (64,)), seed, optimizer="AdamW", lr=2e-3 * factor,
                    schedule="warmup_linear", schedule_kwargs={"warmup": 50}, batch_size=32, epochs=8,
                    log_every=10, eval_every=100, loss_logging="window")
    return Built(plan, "MLP 20-64-4", f"learning rate {factor:g}x a good value (2e-3 -> {2e-3 * factor:g})")


def lr_plateau(lr: float, seed: int) -> Built:
    def plan_with(schedule: str):
        d = data.classification(seed, n=3000, k=3, flip_y=0.1)
        return classify(d, classifier(d, seed, ()), seed, optimizer="SGD", lr=lr, batch_size=4, epochs=8,
                        log_every=20, schedule=schedule)

    reference = train.run(plan_with("cosine"), 0.0)
    _, ref_val = reference.series(EVAL, "val_loss")
    return Built(plan_with("constant"), "softmax regression",
                 f"a high learning rate ({lr:g}, batch 4) held constant: no decay to settle the gradient noise "
                 f"(the same recipe with cosine decay ends at val_loss {ref_val[-1]:.3g})")


SPIKES = {"x3-every100": (3.0, 100), "x10-every100": (10.0, 100), "x30-every100": (30.0, 100),
          "x10-every25": (10.0, 25)}


def loss_spikes(knob: str, seed: int) -> Built:
    scale, every = SPIKES[knob]
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (128,)), seed, optimizer="Adam", lr=1e-3, batch_size=32, epochs=15,
                    log_every=1)
    plan.faults = Faults(corrupt_every=every, corrupt_scale=scale)
    return Built(plan, "MLP 64-128-10",
                 f"every {every}th batch is corrupted (inputs x{scale:g}, labels scrambled), no gradient clipping",
                 options={"style": "minimal"})


def overfitting(epochs: int, seed: int) -> Built:
    d = data.flip_labels(data.bundled("digits", seed, n_train=200), 0.15, seed)
    plan = classify(d, classifier(d, seed, (512,)), seed, optimizer="SGD", lr=0.02,
                    optimizer_kwargs={"momentum": 0.9}, batch_size=16, epochs=epochs, log_every=5)
    return Built(plan, "MLP 64-512-10, no regularisation",
                 f"a big model on 200 training samples (15% wrong labels) for {epochs} epochs",
                 options={"style": "capital"})


def overfitting_sparse(epochs: int, seed: int) -> Built:
    d = data.flip_labels(data.bundled("digits", seed, n_train=300), 0.1, seed)
    plan = classify(d, classifier(d, seed, (512,)), seed, optimizer="AdamW", lr=1e-3, batch_size=32,
                    epochs=epochs, log_every=10, eval_every=epochs * 10 // 6, loss_logging="window")
    return Built(plan, "MLP 64-512-10",
                 f"a big model on 300 samples (10% label noise) for {epochs} epochs, evaluated 6 times")


def _cut_before_jump(fraction: float):
    def post(trace: Trace) -> tuple[Trace, str]:
        steps, acc = trace.series(EVAL, "val_acc")
        jump = int(steps[np.argmax(acc >= 0.6)]) if (acc >= 0.6).any() else int(steps[-1])
        cut = int(fraction * jump)
        kept = replace(trace, points=[p for p in trace.points if p.step <= cut])
        return kept, f"; the log ends at step {cut}, {fraction:.0%} of the way to the jump (val acc >= 0.6 at {jump})"
    return post


def parity_cut(fraction: float, seed: int) -> Built:
    d = data.sparse_parity(seed, n_bits=40, k=4, n_train=50_000)
    plan = classify(d, classifier(d, seed, (128,)), seed, optimizer="SGD", lr=0.02,
                    optimizer_kwargs={"momentum": 0.9}, batch_size=32, epochs=100, max_steps=9000,
                    log_every=50, eval_every=100, loss_logging="window", log_train_acc=True)
    return Built(plan, "MLP 40-128-2 on 4-sparse parity",
                 "a run stopped while accuracy was still flat (delayed generalisation)",
                 post=_cut_before_jump(fraction))


def imbalance(share: float, seed: int) -> Built:
    d = data.classification(seed, n=4000, k=2, d=20, informative=3, class_sep=0.3, flip_y=0.01,
                            weights=[share])
    plan = classify(d, classifier(d, seed, ()), seed, optimizer="SGD", lr=0.01,
                    optimizer_kwargs={"weight_decay": 0.05}, batch_size=64, epochs=15, log_every=5)
    return Built(plan, "logistic regression with strong weight decay",
                 f"a {share * 100:.0f}/{100 - share * 100:.0f} class split, weak features, no class weights")


def scale_imbalance(gain: float, seed: int) -> Built:
    d = data.detection(seed, n=4000, hard_frac=0.3)
    plan = detect(d, detector(d, seed), seed, box_gain=gain, optimizer="Adam", lr=1e-3, batch_size=32, epochs=20,
                  log_every=10)
    return Built(plan, "detection-like 3-head MLP", f"the box loss weighted {gain:g}x (box error in pixels)",
                 options={"version": "v8"})


def shuffled(width: int, seed: int) -> Built:
    d = data.shuffle_train_labels(data.bundled("digits", seed), seed)
    plan = classify(d, classifier(d, seed, (width,)), seed, optimizer="Adam", lr=1e-3, batch_size=32,
                    epochs=20, log_every=10)
    return Built(plan, f"MLP 64-{width}-10",
                 "train labels permuted independently of the inputs (a data-loading bug)")


def frozen(name: str, seed: int) -> Built:
    d = data.bundled(name, seed)
    plan = classify(d, classifier(d, seed, (64,)), seed, optimizer="Adam", lr=1e-3, batch_size=32, epochs=15,
                    log_every=5)
    plan.faults = Faults(train_last_bias_only=True)
    return Built(plan, f"MLP {d.x_train.shape[1]}-64-{d.n_classes}",
                 "every weight frozen by a requires_grad bug: only the output bias trains")


def smoothing(eps: float, seed: int) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (128,)), seed, optimizer="Adam", lr=1e-3, batch_size=32, epochs=15,
                    log_every=5, smoothing=eps)
    return Built(plan, "MLP 64-128-10", f"label smoothing {eps:g} in training (val loss is plain CE)")


def temperature(t: float, seed: int) -> Built:
    d = data.bundled("wine", seed) if seed % 2 else data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (64,)), seed, optimizer="Adam", lr=2e-3, batch_size=16, epochs=15,
                    log_every=5, eval_temperature=t)
    return Built(plan, "MLP", f"logits divided by a temperature of {t:g} at evaluation")


METRIC_BUGS = {"sum": "per-batch accuracies summed instead of averaged",
               "wrong_labels": "accuracy computed against a permuted copy of the labels",
               "constant": "the accuracy variable is computed once and never updated"}


def metric_bug(mode: str, seed: int) -> Built:
    d = data.bundled("digits", seed)
    plan = classify(d, classifier(d, seed, (64,)), seed, optimizer="AdamW", lr=1e-3, schedule="warmup_linear",
                    schedule_kwargs={"warmup": 30}, batch_size=16, epochs=6, log_every=10, eval_every=90,
                    loss_logging="window", acc_mode=mode)
    return Built(plan, "MLP 64-64-10", METRIC_BUGS[mode])


def resumed(lost_epochs: int, seed: int) -> Built:
    built = _digits_sgd(seed, 0.03, epochs=12, log_every=5)
    spe = built.plan.steps_per_epoch
    ckpt = 3
    crash = (ckpt + 1 + lost_epochs) * spe + spe // 2
    built.plan.faults = Faults(crash_at=crash, resume_epoch=ckpt)
    built.planted = (f"the job died at step {crash} and was resumed from the epoch-{ckpt} checkpoint "
                     f"(step {(ckpt + 1) * spe}), logging those steps again")
    return built


def truncated(fraction: float, seed: int) -> Built:
    built = _digits_sgd(seed, 0.03, epochs=12, log_every=5)
    built.planted = f"the writer was killed mid-write: the file is cut inside a record at ~{fraction:.0%} of the run"
    built.options = {"cut_fraction": fraction}
    return built


def unnormalized(scale: float, seed: int) -> Built:
    d = data.friedman(seed, target_scale=scale)
    plan = regress(d, regressor(d, seed, (64,)), seed, optimizer="SGD", lr=1e-4,
                   optimizer_kwargs={"momentum": 0.9}, batch_size=32, epochs=10, log_every=2,
                   eval_every=100, loss_logging="window")
    return Built(plan, "MLP 10-64-1 (MSE)", f"raw regression targets (mean {3 * scale:g}, sd {scale:g}), not normalised")


def unnormalized_adam(scale: float, seed: int) -> Built:
    d = data.friedman(seed, target_scale=scale)
    plan = regress(d, regressor(d, seed, (64,)), seed, optimizer="Adam", lr=1e-3, batch_size=32, epochs=15,
                   log_every=10)
    return Built(plan, "MLP 10-64-1 (MSE)", f"raw regression targets (mean {3 * scale:g}, sd {scale:g}), not normalised")


def F(scenario: str, category: str, fmt: str, strengths: tuple, make, model: str, data_: str, optim_: str,
      **kwargs) -> Recipe:
    return Recipe(scenario, category, fmt, strengths, make, model=model, data=data_, optim=optim_, **kwargs)


FAULTY: list[Recipe] = [
    F("lr-too-high", "loss_explosion", "tensorboard", (3.0, 10.0, 30.0, 100.0), lr_high_sgd, "MLP", "digits",
      "SGD momentum"),
    F("lr-too-high-adam", "lr_too_high_oscillation", "jsonl", (100.0, 300.0, 1000.0), lr_high_adam, "MLP (tanh)",
      "digits", "Adam const"),
    F("lr-too-high-rmsprop", "lr_too_high_oscillation", "mlflow", (100.0, 300.0, 1000.0), lr_high_rmsprop,
      "MLP (tanh)", "digits", "RMSprop const"),
    F("nan-midrun", "nan_inf", "lightning_csv", (0.1, 0.5, 0.95), nan_at, "MLP", "digits", "Adam"),
    F("dead-relu", "stalled_loss", "lightning_csv", (-1.0, -3.0, -10.0), dead_relu, "MLP", "digits", "SGD momentum"),
    F("lr-zeroed", "stalled_loss", "tensorboard", (0.005, 0.01, 0.03), lr_zero, "MLP", "digits",
      "SGD, step schedule gamma 0"),
    F("lr-too-low", "lr_too_low", "lightning_csv", (1e-2, 1e-3, 1e-4, 1e-5), lr_low, "MLP", "digits", "SGD momentum"),
    F("lr-too-low-hf", "lr_too_low", "hf_trainer_state", (1e-2, 1e-3), lr_low_hf, "MLP", "make_classification",
      "AdamW, warm-up + linear"),
    F("lr-plateau", "lr_plateau", "tensorboard", (0.1, 0.2, 0.3), lr_plateau, "softmax regression",
      "make_classification", "SGD const, batch 4", seeds=MORE_SEEDS),
    F("loss-spikes", "loss_spikes", "tensorboard", tuple(SPIKES), loss_spikes, "MLP", "digits", "Adam const"),
    F("overfitting", "overfitting", "tensorboard", (20, 60, 200, 600), overfitting, "MLP 512", "digits (200)",
      "Adam const"),
    F("overfitting-sparse-eval", "overfitting", "hf_trainer_state", (40, 150), overfitting_sparse, "MLP 512",
      "digits (300, 10% noise)", "AdamW const"),
    F("parity-truncated", "metric_flat_may_jump", "jsonl", (0.5, 0.9), parity_cut, "MLP", "sparse parity 4 of 40",
      "SGD momentum"),
    F("parity-truncated-tb", "metric_flat_may_jump", "tensorboard", (0.6, 0.95), parity_cut, "MLP",
      "sparse parity 4 of 40", "SGD momentum"),
    F("class-imbalance", "class_imbalance", "lightning_csv", (0.8, 0.9, 0.95, 0.99), imbalance,
      "logistic regression", "make_classification (imbalanced)", "SGD + weight decay"),
    F("loss-scale", "loss_scale_imbalance", "ultralytics_csv", (10.0, 100.0, 1000.0), scale_imbalance, "3-head MLP",
      "1-D bumps", "Adam const"),
    F("shuffled-labels", "cannot_overfit", "lightning_csv", (16, 64, 1024), shuffled, "MLP", "digits", "Adam const"),
    F("frozen-weights", "cannot_overfit", "jsonl", ("digits", "wine"), frozen, "MLP", "digits / wine", "Adam const"),
    F("label-smoothing", "underconfident", "tensorboard", (0.5, 0.8, 0.95), smoothing, "MLP", "digits", "Adam const"),
    F("eval-temperature", "underconfident", "mlflow", (3.0, 10.0, 30.0), temperature, "MLP", "digits / wine",
      "Adam const"),
    F("metric-bug", "metric_bug", "hf_trainer_state", tuple(METRIC_BUGS), metric_bug, "MLP", "digits",
      "AdamW, warm-up + linear"),
    F("resumed-tb", "resumed_or_duplicate_steps", "tensorboard", (1, 4), resumed, "MLP", "digits", "SGD momentum"),
    F("resumed-csv", "resumed_or_duplicate_steps", "lightning_csv", (1, 4), resumed, "MLP", "digits",
      "SGD momentum"),
    F("resumed-jsonl", "resumed_or_duplicate_steps", "jsonl", (2,), resumed, "MLP", "digits", "SGD momentum"),
    F("resumed-mlflow", "resumed_or_duplicate_steps", "mlflow", (2,), resumed, "MLP", "digits", "SGD momentum"),
    F("truncated-tb", "truncated_file", "tensorboard", (0.3, 0.7, 0.99), truncated, "MLP", "digits", "SGD momentum"),
    F("truncated-csv", "truncated_file", "lightning_csv", (0.5, 0.95), truncated, "MLP", "digits", "SGD momentum"),
    F("truncated-jsonl", "truncated_file", "jsonl", (0.6,), truncated, "MLP", "digits", "SGD momentum"),
    F("unnormalized-sgd", "unnormalized_output", "hf_trainer_state", (1e2, 1e3, 1e5), unnormalized, "MLP",
      "make_friedman1 (raw targets)", "SGD momentum"),
    F("unnormalized-adam", "unnormalized_output", "mlflow", (1e3, 1e5), unnormalized_adam, "MLP",
      "make_friedman1 (raw targets)", "Adam const"),
]
