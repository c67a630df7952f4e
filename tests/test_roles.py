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
