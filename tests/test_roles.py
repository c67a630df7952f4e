"""Tag names from every supported library map to the roles the checks ask for."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.roles import Role, assign, infer_role, parse_overrides, primary
from tests.curves import make_run

SPELLINGS = {
    # Keras / HF / Lightning / detectron2 / YOLO / mmdet spellings of the same few things
    "loss": Role.TRAIN_LOSS,
    "train/loss": Role.TRAIN_LOSS,
    "train_loss_step": Role.TRAIN_LOSS,
    "train_loss_epoch": Role.TRAIN_LOSS,
    "total_loss": Role.TRAIN_LOSS,
    "epoch_loss": Role.TRAIN_LOSS,
    "train/epoch_loss": Role.TRAIN_LOSS,
    "val_loss": Role.VAL_LOSS,
    "eval/loss": Role.VAL_LOSS,
    "validation/epoch_loss": Role.VAL_LOSS,
    "loss_cls": Role.LOSS_COMPONENT,
    "train/box_loss": Role.LOSS_COMPONENT,
    "val/box_loss": Role.VAL_LOSS_COMPONENT,
    "acc": Role.TRAIN_ACCURACY,
    "epoch_accuracy": Role.TRAIN_ACCURACY,
    "fast_rcnn/cls_accuracy": Role.TRAIN_ACCURACY,
    "val_acc": Role.VAL_ACCURACY,
    "eval/accuracy": Role.VAL_ACCURACY,
    "val_acc_epoch": Role.VAL_ACCURACY,
    "metrics/mAP50(B)": Role.VAL_METRIC,
    "metrics/mAP_0.5": Role.VAL_METRIC,
    "coco/bbox_mAP": Role.VAL_METRIC,
    "eval_wer": Role.VAL_METRIC,
    "val_recall_class_0": Role.PER_CLASS_METRIC,
    "val_minority_recall": Role.PER_CLASS_METRIC,
    "f1_cls3": Role.PER_CLASS_METRIC,
    "balanced_accuracy": Role.BALANCED_METRIC,
    "val/balanced_acc": Role.BALANCED_METRIC,
    "eval_macro_f1": Role.BALANCED_METRIC,
    "f1_macro": Role.BALANCED_METRIC,
    "val_auc": Role.AUC,
    "eval/roc_auc": Role.AUC,
    "val_f1": Role.VAL_METRIC,
    "mean_confidence": Role.CONFIDENCE,
    "lr": Role.LEARNING_RATE,
    "train/learning_rate": Role.LEARNING_RATE,
    "x/lr0": Role.LEARNING_RATE,
    "lr/pg0": Role.LEARNING_RATE,
    "lr-Adam": Role.LEARNING_RATE,
    "train/grad_norm": Role.GRAD_NORM,
    "epoch": Role.COUNTER,
    "train/epoch": Role.COUNTER,
    "eval/runtime": Role.COUNTER,
    "eval_samples_per_second": Role.COUNTER,
    "hp_metric": Role.COUNTER,
    "data_time": Role.COUNTER,
    "weird_tag": Role.OTHER,
}


@pytest.mark.parametrize("tag, role", SPELLINGS.items())
def test_spellings_map_to_roles(tag: str, role: Role) -> None:
    assert infer_role(tag) is role


def test_histograms_of_probabilities_are_recognised() -> None:
    assert infer_role("val/pred_probs", histogram=True) is Role.PROB_HISTOGRAM
    assert infer_role("layer1/weights", histogram=True) is Role.OTHER


def test_overrides_win_and_accept_globs() -> None:
    run = make_run({"my/eval_thing": ([0, 1], [1.0, 0.5]), "aux/a": ([0], [1.0]), "aux/b": ([0], [2.0])})
    assert run.roles["my/eval_thing"] is Role.OTHER
    assign(run, parse_overrides({"val_loss": "my/eval_thing", "loss-component": ["aux/*"]}))
    assert run.roles == {"my/eval_thing": Role.VAL_LOSS, "aux/a": Role.LOSS_COMPONENT, "aux/b": Role.LOSS_COMPONENT}


def test_unknown_role_names_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'val_loss'"):
        parse_overrides({"val_los": "x"})


def test_primary_is_the_densest_series() -> None:
    run = make_run({
        "train/train_loss": ([100], [0.5]),
        "train/loss": (np.arange(0, 100, 10), np.linspace(2, 0.5, 10)),
    })
    assert primary(run, Role.TRAIN_LOSS) == "train/loss"
    assert primary(run, Role.VAL_LOSS) is None


def test_primary_validation_series_is_not_lightnings_per_batch_counter() -> None:
    run = make_run({
        "val_loss_step": (np.arange(400), np.linspace(1, 0.5, 400)),
        "val_loss_epoch": (np.arange(99, 1000, 100), np.linspace(1, 0.5, 10)),
    })
    assert primary(run, Role.VAL_LOSS) == "val_loss_epoch"


def test_metric_direction_and_series_name_are_read_from_the_name() -> None:
    from rundoctor.roles import lower_is_better, series_name, words

    assert lower_is_better("eval_wer") and lower_is_better("val/perplexity")
    assert not lower_is_better("metrics/mAP50(B)") and not lower_is_better("val_acc")
    assert series_name("loss_cls_step") == series_name("loss_cls_epoch") == "loss_cls"
    assert words("eval_g0_accuracy") & words("eval_g0_loss") == {"eval", "g0"}


def test_renamed_tags_with_role_overrides_give_the_same_findings() -> None:
    """Checks see roles, never spellings: the same curves under meaningless names, with each
    tag's role given by an override, give the same findings (mapped back to the old names)."""
    from rundoctor.checks.base import RunContext
    from rundoctor.checks.registry import REGISTRY
    from tests import curves

    n, every = 30, 50
    evals = curves.steps(n, every, every - 1)
    per_step = curves.steps(n * every)
    rng = curves.rng(11)
    named = {
        "train_loss": (per_step, curves.heavy_tailed(curves.decay(n * every, 2.0, 0.05, 4.0), 0.4, 0.01, seed=1)),
        "val_loss": (evals, curves.noisy(curves.overfit(n, turn=0.3, low=0.5, rise=0.6), 0.01, seed=2)),
        "val_acc": (evals, 0.945 + 0.0005 * rng.standard_normal(n)),
        "val_minority_recall": (evals, np.full(n, 0.01)),
        "val_balanced_accuracy": (evals, np.full(n, 0.505)),
        "val_auc": (evals, np.full(n, 0.4)),
        "val/mean_confidence": (evals, np.full(n, 0.55)),
        "loss_cls": (per_step, curves.noisy(np.full(n * every, 1.35), 0.02, seed=3)),
        "loss_reg": (per_step, curves.noisy(np.full(n * every, 900.0), 0.02, seed=4)),
    }
    original = curves.make_run(named)
    new_names = {tag: f"series{k}" for k, tag in enumerate(named)}
    renamed = curves.make_run({new_names[tag]: values for tag, values in named.items()})
    assign(renamed, {new_names[tag]: original.roles[tag] for tag in named})  # --role ROLE=TAG each
    assert all(renamed.roles[new_names[tag]] is original.roles[tag] for tag in named)
    back = {new: old for old, new in new_names.items()}
    mine = {"chance-level", "class-imbalance", "underconfident", "metric-out-of-range",
            "metric-loss-disagreement", "overfitting", "val-better-than-train", "loss-scale-imbalance"}

    def outcome(run, rename):
        found = []
        for check in REGISTRY:
            if check.name not in mine or check.missing(run):
                continue
            ctx = RunContext(run, num_classes=None)
            for f in check.detect(check, ctx, check.default_params()):
                found.append((f.check, f.severity, f.confidence, f.first_step, f.last_step,
                              tuple(rename.get(tag, tag) for tag in f.tags)))
        return sorted(found, key=repr)

    before = outcome(original, {})
    assert {f[0] for f in before} >= {"class-imbalance", "overfitting", "metric-out-of-range", "loss-scale-imbalance"}
    assert outcome(renamed, back) == before
