"""Labels of the histogram runs, decided from the raw tensors seen during training, never from rundoctor.

The curve categories (stalled loss, LR too low, NaN, ...) are judged on the run's logged
scalars by the main corpus's criteria (``corpus.labels``).  The categories only the inside of
the network shows are judged on the raw tensors the training loop saw (``train.LayerFacts``):

- dead_units: at the last record, some ReLU layer has more than half its units dead on the
  validation set, a unit being dead when active on fewer than 1% of the inputs (SageMaker
  Debugger's DeadRelu rule).
- saturated_activations: some tanh/sigmoid layer has more than half its outputs on the
  validation set where the function's slope is under a fifth of its peak (tanh |a| >= 0.894,
  sigmoid <= 0.053 or >= 0.947), at the first record and at the median record (a trained
  sigmoid layer grows confident as it learns; saturation from the start is the fault).
- vanishing_gradients: the first layer's mean |gradient| (median over records) is below 1e-7
  (SageMaker Debugger's VanishingGradient threshold), or 1e-4 times the last layer's.
- exploding_gradients: some layer's mean |gradient| is at least its mean |weight| at the
  median record (a plain SGD step at learning rate 1 would move every weight by more than its
  size), or its first-layer / last-layer ratio is at least 1e4.
- frozen_layer: some weight layer is bit-identical at the last record to its initial values
  while another layer changed.
- updates_too_small: the median over layers of the median per-step update ratio
  ||W_after - W_before|| / ||W_before|| is below 3e-5, thirty times under the ~1e-3 of the
  usual healthy band (Karpathy's rule of thumb).
- poor_weight_init: before the first step some weight layer is constant (all zero, or one
  value), or its standard deviation is outside [1/3, 3] times the range the common inits give
  for its fan-in: from LeCun/PyTorch-default uniform, 1/sqrt(3 fan_in), to He-normal,
  sqrt(2 / fan_in).
"""

from __future__ import annotations

import math

import numpy as np

from corpus import labels as curve_labels
from corpus.histograms.train import Record

HISTOGRAM_CATEGORIES = ("dead_units", "saturated_activations", "vanishing_gradients", "exploding_gradients",
                        "frozen_layer", "updates_too_small", "poor_weight_init")
CATEGORIES = (*curve_labels.CATEGORIES, *HISTOGRAM_CATEGORIES)

# Plausible consequences of each planted fault: neither expected nor forbidden.
_NO_LEARNING = frozenset({"stalled_loss", "cannot_overfit", "lr_too_low", "lr_plateau"})
ALLOWED: dict[str, frozenset[str]] = {
    # a dead layer passes no gradient: the layers before it stop moving too
    # (planted with a learning rate too high, which also overfits, as in the main corpus)
    "dead_units": _NO_LEARNING | {"loss_explosion", "nan_inf", "loss_spikes", "lr_too_high_oscillation",
                                  "vanishing_gradients", "frozen_layer", "updates_too_small", "overfitting"},
    # saturated units learn slowly: the loss creeps down while the accuracy waits
    "saturated_activations": _NO_LEARNING | {"poor_weight_init", "vanishing_gradients", "updates_too_small",
                                             "loss_spikes", "metric_flat_may_jump", "frozen_layer"},
    "vanishing_gradients": _NO_LEARNING | {"updates_too_small", "frozen_layer", "saturated_activations"},
    # activations blown up push many ReLU units far below zero: sparse or dead layers
    "exploding_gradients": _NO_LEARNING | {"loss_explosion", "nan_inf", "loss_spikes", "lr_too_high_oscillation",
                                           "poor_weight_init", "unnormalized_output", "updates_too_small",
                                           "dead_units"},
    "frozen_layer": frozenset({"updates_too_small"}),
    "updates_too_small": _NO_LEARNING,
    "poor_weight_init": _NO_LEARNING | {"saturated_activations", "vanishing_gradients", "exploding_gradients",
                                        "dead_units", "updates_too_small", "metric_flat_may_jump"},
}


def g(x: float) -> str:
    return curve_labels.g(x)


def criteria(record: Record) -> dict[str, tuple[bool, str]]:
    """Every histogram category's criterion on the raw facts: (holds, the numbers)."""
    steps = sorted(record.facts)
    names = [name for name, *_ in record.layers]
    facts = {name: [record.facts[step][name] for step in steps] for name in names}
    out: dict[str, tuple[bool, str]] = {}

    dead = {name: f[-1].dead_share for name, f in facts.items() if f[-1].dead_share is not None}
    worst = max(dead, key=lambda name: dead[name] or 0.0, default=None)
    out["dead_units"] = ((worst is not None and (dead[worst] or 0.0) > 0.5),
                         f"{worst}: {dead[worst]:.0%} of units dead at step {steps[-1]}" if worst else "no ReLU layer")

    # saturated from the start and still at the median record (a trained sigmoid layer grows
    # confident, so saturation reached by learning is not this fault)
    saturated = {name: min(f[0].saturated_share or 0.0, float(np.median([x.saturated_share for x in f])))
                 for name, f in facts.items() if f[0].saturated_share is not None}
    worst = max(saturated, key=lambda name: saturated[name], default=None)
    out["saturated_activations"] = ((worst is not None and saturated[worst] > 0.5),
                                    f"{worst}: {saturated[worst]:.0%} of outputs saturated from the first "
                                    "record on (least of the first and the median record)"
                                    if worst else "no tanh/sigmoid layer")

    grads = {name: float(np.median([x.grad_abs_mean for x in f])) for name, f in facts.items()}
    first, last = grads[names[0]], grads[names[-1]]
    ratio = first / last if last > 0 else math.nan
    out["vanishing_gradients"] = ((0 < first < 1e-7) or (ratio < 1e-4),
                                  f"mean |grad| {names[0]} {g(first)}, {names[-1]} {g(last)} (ratio {g(ratio)})")

    relative = {name: float(np.median([x.grad_abs_mean / max(x.std * math.sqrt(2 / math.pi), 1e-30) for x in f]))
                for name, f in facts.items()}
    worst = max(relative, key=lambda name: relative[name])
    out["exploding_gradients"] = ((relative[worst] >= 1.0) or (ratio >= 1e4),
                                  f"{worst}: mean |grad| / mean |weight| {g(relative[worst])} (median record); "
                                  f"first/last mean |grad| ratio {g(ratio)}")

    unchanged = [name for name, f in facts.items() if f[-1].unchanged]
    changed = [name for name, f in facts.items() if not f[-1].unchanged]
    out["frozen_layer"] = (bool(unchanged and changed),
                           f"{', '.join(unchanged)} bit-identical to the init at step {steps[-1]}" if unchanged
                           else "every layer changed")

    updates = {name: float(np.median([x.update_ratio for x in f])) for name, f in facts.items()}
    typical = float(np.median(list(updates.values())))
    out["updates_too_small"] = (typical < 3e-5, f"median per-step update ratio {g(typical)} "
                                                f"({', '.join(f'{n} {g(v)}' for n, v in updates.items())})")

    bad = []
    for name, initial in record.initial.items():
        low, high = 1 / math.sqrt(3 * initial.fan_in) / 3, math.sqrt(2 / initial.fan_in) * 3
        if initial.constant:
            bad.append(f"{name} constant")
        elif not low <= initial.std <= high:
            bad.append(f"{name} std {g(initial.std)} outside {g(low)}..{g(high)} (fan-in {initial.fan_in})")
    out["poor_weight_init"] = (bool(bad), "; ".join(bad) or "every layer's initial spread fits its fan-in")
    return out


def healthy_issues(record: Record) -> list[str]:
    """Generation-time sanity checks: a healthy recipe that trips one of these is a recipe bug."""
    issues = curve_labels.healthy_issues(record.trace)
    issues += [f"{c}: {text}" for c, (hit, text) in criteria(record).items() if hit]
    return issues


def label(category: str | None, record: Record) -> tuple[list[str], list[str], bool, str]:
    """(expect, forbid, manifest, evidence) of a run planted with ``category`` (None: healthy).

    A run never forbids a category whose criterion holds on its own numbers (as in the main
    corpus); a healthy run's evidence is its summary."""
    trace = record.trace
    shown = criteria(record)
    curve_shown = curve_labels.also_shown(trace)
    holding = {c for c, (hit, _) in shown.items() if hit} | set(curve_shown)
    if category is None:
        return [], [c for c in CATEGORIES if c not in holding], True, curve_labels.summary(trace)
    hit, text = shown[category]
    expect = [category] if hit else []
    nan, nan_text = curve_labels.any_nonfinite(trace)
    if nan:
        expect.append("nan_inf")
    allowed = {category} | ALLOWED[category] | holding
    forbid = [c for c in CATEGORIES if c not in allowed and c not in expect]
    also = [f"{c}: {t}" for c, (h, t) in shown.items() if h and c != category] + [
        f"{c}: {t}" for c, t in curve_shown.items()]
    evidence = "; ".join([text] + ([nan_text] if nan else []))
    if also:
        evidence += ". Also shown: " + "; ".join(also)
    return expect, forbid, bool(expect), evidence
