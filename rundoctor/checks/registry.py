"""The check registry: an explicit tuple in catalogue order.

Adding a check is one module, one test module and one line here.  Codes are permanent: a
family letter (N numerics, C convergence, M metrics, G generalisation, T multi-task, L log
integrity, D gradients, A activations, W weights) and a number that never encodes severity.
"""

from __future__ import annotations

from typing import Any

from rundoctor.checks import (
    chance_level,
    class_imbalance,
    dead_units,
    delayed_generalization,
    duplicate_steps,
    exploding_gradients,
    grad_norm,
    loss_divergence,
    loss_magnitude,
    loss_oscillation,
    loss_plateau,
    loss_scale_imbalance,
    loss_spikes,
    lr_too_low,
    metric_flat_loss_falling,
    metric_loss_disagreement,
    metric_out_of_range,
    no_learning,
    non_finite,
    overfitting,
    saturated_activations,
    still_improving,
    truncated_log,
    underconfident,
    update_ratio,
    val_better_than_train,
    vanishing_gradients,
    weight_init,
)
from rundoctor.checks.base import Check

REGISTRY: tuple[Check[Any], ...] = (
    non_finite.CHECK,
    loss_divergence.CHECK,
    loss_magnitude.CHECK,
    no_learning.CHECK,
    lr_too_low.CHECK,
    loss_plateau.CHECK,
    loss_oscillation.CHECK,
    loss_spikes.CHECK,
    still_improving.CHECK,
    metric_flat_loss_falling.CHECK,
    delayed_generalization.CHECK,
    chance_level.CHECK,
    class_imbalance.CHECK,
    underconfident.CHECK,
    metric_out_of_range.CHECK,
    metric_loss_disagreement.CHECK,
    overfitting.CHECK,
    val_better_than_train.CHECK,
    loss_scale_imbalance.CHECK,
    duplicate_steps.CHECK,
    truncated_log.CHECK,
    grad_norm.CHECK,
    vanishing_gradients.CHECK,
    exploding_gradients.CHECK,
    dead_units.CHECK,
    saturated_activations.CHECK,
    update_ratio.CHECK,
    weight_init.CHECK,
)
