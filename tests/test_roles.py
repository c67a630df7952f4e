"""Tag names from every supported library map to the roles the checks ask for."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from rundoctor.roles import Role, assign, infer_role, meaningful_word, parse_overrides, primary
from rundoctor.series import Run
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
    # error rates fall as the model learns: metrics, never accuracies
    "train/top1_err": Role.TRAIN_METRIC,
    "val/error": Role.VAL_METRIC,
    "test_error_rate": Role.VAL_METRIC,
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
    assert infer_role("layer1/weights", histogram=True) is Role.WEIGHT_HISTOGRAM
    assert infer_role("layer1/something", histogram=True) is Role.OTHER


def test_overrides_win_and_accept_globs() -> None:
    run = make_run({"my/eval_thing": ([0, 1], [1.0, 0.5]), "aux/a": ([0], [1.0]), "aux/b": ([0], [2.0])})
    assert run.roles["my/eval_thing"] is Role.OTHER
    assign(run, parse_overrides({"val_loss": "my/eval_thing", "loss-component": ["aux/*"]}))
    assert run.roles == {"my/eval_thing": Role.VAL_LOSS, "aux/a": Role.LOSS_COMPONENT, "aux/b": Role.LOSS_COMPONENT}


def test_a_single_loss_term_without_a_total_is_the_loss_of_its_split() -> None:
    def roles_of(*tags: str) -> dict[str, Role]:
        return make_run({tag: ([0, 1], [1.0, 0.5]) for tag in tags}).roles

    # What the run minimises, whatever it is called: the curve checks read it.
    assert roles_of("train/ce_loss", "val/ce_loss", "val/mae") == {
        "train/ce_loss": Role.TRAIN_LOSS, "val/ce_loss": Role.VAL_LOSS, "val/mae": Role.VAL_METRIC,
    }
    assert roles_of("train/mse")["train/mse"] is Role.TRAIN_LOSS
    # Lightning's step and epoch series of one term are one term.
    assert set(roles_of("train_ce_loss_step", "train_ce_loss_epoch").values()) == {Role.TRAIN_LOSS}
    # Near misses: two terms (a GAN's players, box and class losses) or a logged total stay terms.
    assert set(roles_of("loss_D", "loss_G").values()) == {Role.LOSS_COMPONENT}
    assert roles_of("train/loss", "train/kl_loss")["train/kl_loss"] is Role.LOSS_COMPONENT
    # An override still wins over the promotion.
    run = make_run({"train/ce_loss": ([0, 1], [1.0, 0.5])}, role_overrides={"loss-component": "train/ce_loss"})
    assert run.roles["train/ce_loss"] is Role.LOSS_COMPONENT


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
    # errors, divergences, distances and calibration scores fall as a model improves
    for name in ("val_kl", "val/brier", "val_ece", "val_logloss", "eval_lpips", "val_edit_distance", "val_mape",
                 "test/bpd", "val_ade", "val_fpr"):
        assert lower_is_better(name), name
    for name in ("val_f1", "val_dice", "val_ssim", "val_psnr", "val_r2", "val_recall", "val_auc", "val_distill_acc"):
        assert not lower_is_better(name), name
    assert series_name("loss_cls_step") == series_name("loss_cls_epoch") == "loss_cls"
    assert words("eval_g0_accuracy") & words("eval_g0_loss") == {"eval", "g0"}


def _renamed_consistently(run: Run) -> tuple[Run, dict[str, str]]:
    """The run with every word of its tag names that :func:`rundoctor.roles.meaningful_word`
    does not keep replaced by a new token, the same one in every tag (``cls`` -> ``w3x``
    everywhere), each tag's role given by an override (as ``--role ROLE=TAG``), histograms,
    axes and read notes carried over; and the map from new names back to old ones."""
    tokens: dict[str, str] = {}

    def token(word: str) -> str:
        if not word or re.fullmatch(SEPARATORS, word) or meaningful_word(word):
            return word
        return tokens.setdefault(word.lower(), f"w{len(tokens)}x")

    def rename(tag: str) -> str:
        return "".join(token(part) for part in re.split(f"({SEPARATORS})", tag))

    names = {tag: rename(tag) for tag in [*run.tag_names, *run.histograms]}
    assert len(set(names.values())) == len(names), names
    renamed = dataclasses.replace(
        run,
        tag_names=[names[tag] for tag in run.tag_names],
        tag_axes={names[tag]: axis for tag, axis in run.tag_axes.items()},
        histograms={names[tag]: list(h) for tag, h in run.histograms.items()},
        notes=list(run.notes),
        roles={},
    )
    assign(renamed, {names[tag]: role for tag, role in run.roles.items()})  # --role ROLE=TAG each
    assert {names[tag]: role for tag, role in run.roles.items()} == renamed.roles
    return renamed, {new: old for old, new in names.items()}


SEPARATORS = r"[/_\-\s.:()\[\]]+"


def _synthetic_run() -> Run:
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
        "eval_wer": (evals, curves.noisy(curves.overfit(n, turn=0.4, low=0.2, rise=0.3), 0.005, seed=5)),
        "loss_cls_step": (per_step, curves.noisy(np.full(n * every, 1.35), 0.02, seed=3)),
        "loss_cls_epoch": (evals, curves.noisy(np.full(n, 1.35), 0.02, seed=6)),
        "loss_reg": (per_step, curves.noisy(np.full(n * every, 900.0), 0.02, seed=4)),
        "val/loss_cls": (evals, curves.noisy(curves.overfit(n, turn=0.3, low=1.0, rise=0.5), 0.01, seed=7)),
        "lr-SGD": (per_step, np.full(n * every, 1e-5)),
        "train/grad_norm": (per_step, curves.noisy(np.full(n * every, 3.0), 0.3, seed=8)),
    }
    return curves.make_run(named, run_id="synthetic")


def test_consistently_renamed_tags_with_role_overrides_give_the_same_findings() -> None:
    """Checks see roles, never spellings: the same runs with every name word that is not
    structure renamed consistently, and each tag's role given by an override, give the same
    findings from every registered check (tags mapped back to the old names)."""
    from rundoctor.config import Settings
    from rundoctor.discover import load_runs
    from rundoctor.engine import diagnose
    from tests.conftest import SAMPLE_LOGS

    runs = [*load_runs([SAMPLE_LOGS])[0], _synthetic_run()]
    renamed = [_renamed_consistently(run) for run in runs]
    back = {run.id: names for run, names in renamed}  # new tag -> old tag, per run
    assert len(back) == len(runs)

    def outcome(report, rename):
        found = [(f.run, f.check, f.severity, f.confidence, f.first_step, f.last_step,
                  tuple(rename.get(f.run, {}).get(tag, tag) for tag in f.tags)) for f in report.findings]
        ran = [(o.run, o.check, o.status) for o in report.outcomes]
        return sorted(found, key=repr), ran

    before = outcome(diagnose(runs, [], Settings(fail_on=None)), {})
    after = outcome(diagnose([run for run, _ in renamed], [], Settings(fail_on=None)), back)
    assert {f[1] for f in before[0]} >= {"class-imbalance", "overfitting", "metric-out-of-range",
                                         "loss-scale-imbalance", "lr-too-low"}
    assert after == before
