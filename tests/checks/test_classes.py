"""The number of classes: explicit value, hyper-parameters, inference from the curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks import classes
from rundoctor.checks.base import NumClasses
from rundoctor.checks.classes import resolve_num_classes
from tests import curves


def _run(
    metadata: dict[str, str] | None = None, loss: float | None = None, accuracy: float | None = None
):
    series: dict[str, curves.Series] = {}
    if loss is not None:
        series["train/loss"] = (curves.steps(50, 10), curves.decay(50, start=loss, end=0.2))
    if accuracy is not None:
        series["val/accuracy"] = (curves.steps(10, 50), curves.rise(10, start=accuracy, end=0.9))
    return curves.make_run(series, metadata=metadata)


def test_explicit_value_wins_over_everything() -> None:
    run = _run({"num_classes": "7"}, loss=math.log(4), accuracy=0.25)
    assert resolve_num_classes(run, 10) == NumClasses(10, "--num-classes")
    assert resolve_num_classes(run, 3, "config (rundoctor.toml)") == NumClasses(
        3, "config (rundoctor.toml)"
    )


def test_explicit_value_below_two_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        resolve_num_classes(_run(), 1)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"num_classes": "10"}, NumClasses(10, "metadata: num_classes")),
        ({"model.num_classes": "7"}, NumClasses(7, "metadata: model.num_classes")),
        ({"model.num_classes": "5", "num_classes": "7"}, NumClasses(7, "metadata: num_classes")),
        (
            {"model.num_classes": "5", "n_classes": "7"},
            NumClasses(5, "metadata: model.num_classes"),
        ),
        ({"CLASSES": "2"}, NumClasses(2, "metadata: CLASSES")),  # an MLflow param
        ({"data.nc": "80"}, NumClasses(80, "metadata: data.nc")),
        ({"num_labels": "3.0"}, NumClasses(3, "metadata: num_labels")),
        ({"classes": "['cat', 'dog', 'bird']"}, NumClasses(3, "metadata: classes")),
        ({"classes": "[cat, dog]"}, NumClasses(2, "metadata: classes")),  # YAML flow style
        (
            {"id2label": "{0: 'World', 1: 'Sports', 2: 'Business', 3: 'Sci/Tech'}"},
            NumClasses(4, "metadata: id2label"),
        ),
        (
            {"data.classes.0": "cat", "data.classes.1": "dog", "data.classes.2": "cow"},
            NumClasses(3, "metadata: data.classes (3 entries)"),
        ),
    ],
)
def test_hyper_parameters_beside_the_log(metadata: dict[str, str], expected: NumClasses) -> None:
    assert resolve_num_classes(_run(metadata)) == expected


@pytest.mark.parametrize(
    "metadata",
    [
        {"num_labels": "1"},
        {"classes": "null"},
        {"classes": ""},
        {"num_classes": "ten"},
        {"nc": "2.5"},
        {"num_classes": "1e300"},
        {"batch_size": "32"},
    ],
)
def test_unusable_hyper_parameters_leave_it_unknown(metadata: dict[str, str]) -> None:
    assert resolve_num_classes(_run(metadata)) is None


def test_inferred_from_initial_loss_and_accuracy() -> None:
    found = resolve_num_classes(_run(loss=math.log(10) * 1.01, accuracy=0.1))
    assert found is not None and found.value == 10
    assert found.source.startswith("inferred: initial loss 2.326 ≈ ln 10")
    assert "val/accuracy 0.1 ≈ 1/10" in found.source


def test_inferred_from_a_percent_accuracy() -> None:
    run = curves.make_run(
        {
            "loss": (curves.steps(20), curves.decay(20, start=math.log(4), end=0.3)),
            "acc": (curves.steps(20), curves.rise(20, start=25.0, end=90.0)),
        }
    )
    assert resolve_num_classes(run).value == 4


def test_accuracy_that_contradicts_the_loss_leaves_it_unknown() -> None:
    # ln 10 would fit the loss, but an untrained 10-class model does not start at 0.5.
    assert resolve_num_classes(_run(loss=math.log(10), accuracy=0.5)) is None


def test_loss_outside_two_percent_of_any_ln_c_leaves_it_unknown() -> None:
    # 1.29 (the healthy R05 start) lies 7% below ln 4 and 17% above ln 3.
    assert resolve_num_classes(_run(loss=1.29, accuracy=0.25)) is None


def _ends_at(loss: float, accuracy: float, seed: int = 1) -> object:
    """An overconfident start (loss 3.2, accuracy 0.3) shed in a few steps, then a loss and a
    validation accuracy that settle at ``loss`` and ``accuracy``."""
    noise = curves.rng(seed).standard_normal((2, 60))
    return curves.make_run({
        "train/loss": (curves.steps(60, 10), curves.decay(60, start=3.2, end=loss, rate=20.0) * (1 + 0.01 * noise[0])),
        "val/accuracy": (curves.steps(60, 10), np.concatenate(([0.3], np.full(59, accuracy))) + 0.005 * noise[1]),
    })


def test_inferred_from_a_loss_and_an_accuracy_that_end_at_chance_together() -> None:
    # The start matches no C; the end agrees on 10: loss 2.25 (2% under ln 10), accuracy 0.1.
    found = resolve_num_classes(_ends_at(2.25, 0.1))
    assert found is not None and found.value == 10
    assert found.source.startswith("inferred: settled loss 2.2")
    # Near misses: a loss at ln 10 beside an accuracy of 0.3 (a model that learned) or of
    # 0.07 (no C has both), and a model that learned far past chance.
    assert resolve_num_classes(_ends_at(2.25, 0.3)) is None
    assert resolve_num_classes(_ends_at(2.25, 0.07)) is None
    assert resolve_num_classes(_ends_at(0.9, 0.7)) is None


def _noisy_at_chance(level: float, accuracy: float, scatter: float, seed: int = 4) -> object:
    """Fifteen epochs of a binary classifier's loss scattered by ``scatter`` around ``level``
    (its first epochs no nearer ln 2 than the rest), the accuracy around ``accuracy``."""
    noise = curves.rng(seed).standard_normal((2, 15))
    return curves.make_run({
        "train/loss": (curves.steps(15), level * np.exp(scatter * noise[0])),
        "train/accuracy": (curves.steps(15), accuracy + 0.005 * noise[1]),
    })


def test_a_noisy_loss_at_chance_is_judged_within_the_noise_of_its_median() -> None:
    # Eight percent scatter over four settled epochs: their median lies 4% from ln 2, within
    # two standard errors of itself; the accuracy sits at 1/2.
    run = _noisy_at_chance(math.log(2), 0.5, 0.08, seed=4)
    found = resolve_num_classes(run)
    assert found is not None and found.value == 2 and "settled loss" in found.source
    # Near misses: the same scatter at 0.85 ln 2 (a model that learned), and a smooth loss
    # 4% from ln 2 (its median is that far off, not its noise).
    assert resolve_num_classes(_noisy_at_chance(0.85 * math.log(2), 0.5, 0.08, seed=4)) is None
    assert resolve_num_classes(_noisy_at_chance(0.96 * math.log(2), 0.5, 0.001, seed=4)) is None


def _per_step_opening(count: int, seed: int = 2, rate: float = 1.0) -> object:
    """200 per-step losses falling from ln C with 3% batch scatter (the first one 3.5% off),
    beside batch accuracies of 32 examples drawn from 1/C up (the first one 3/4 of 1/C)."""
    generator = curves.rng(seed)
    level = math.log(count)
    loss = curves.decay(200, start=level, end=0.3, rate=rate) * np.exp(0.03 * generator.standard_normal(200))
    loss[0] = level * 1.035
    accuracy = generator.binomial(32, np.linspace(1 / count, 0.9, 200)) / 32
    accuracy[:4] = np.array([0.75, 1.1, 1.05, 1.1]) / count
    return curves.make_run({"train/loss": (curves.steps(200), loss), "train/accuracy": (curves.steps(200), accuracy)})


def test_inferred_from_the_opening_of_a_per_step_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither the first loss (3.5% off ln 2) nor the first batch accuracy (0.375) is near
    # enough; the median of four losses and the mean of four batch accuracies (0.5) are.
    found = resolve_num_classes(_per_step_opening(2))
    assert found is not None and found.value == 2
    assert found.source.startswith("inferred: median of the first 4 losses")
    # Near miss: ten classes are not read from an opening (ln 9 and ln 10 lie 5% apart, and a
    # loss may fall that much in its first steps), though this one matches ln 10.
    slow = _per_step_opening(10, rate=0.2)
    assert resolve_num_classes(slow) is None
    monkeypatch.setattr(classes, "MAX_OPENING", 10)
    assert resolve_num_classes(slow).value == 10


def test_loss_alone_for_few_classes() -> None:
    found = resolve_num_classes(_run(loss=math.log(3) * 1.005))
    assert found == NumClasses(3, "inferred: initial loss 1.104 ≈ ln 3")


@pytest.mark.parametrize("loss", [2.0, math.log(50), math.log(3) * 1.015])
def test_loss_alone_needs_a_tight_match_with_few_classes(loss: float) -> None:
    # 2.0 lies 2.8% above ln 7; ln 50 is beyond the 20 classes the loss alone may name.
    assert resolve_num_classes(_run(loss=loss)) is None


def test_no_training_loss_means_unknown() -> None:
    assert resolve_num_classes(_run(accuracy=0.25)) is None


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_losses_do_not_raise(name: str) -> None:
    steps, values = curves.HOSTILE[name]
    run = curves.make_run({"train/loss": (steps, values), "val/accuracy": (steps, values)})
    found = resolve_num_classes(run)
    assert found is None or 2 <= found.value <= 1000


def test_real_stalled_run_is_four_classes(real_logs) -> None:
    run = curves.real_run(
        real_logs / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run0"
    )
    found = resolve_num_classes(run)
    assert found is not None and found.value == 4
    assert found.source.startswith("inferred: initial loss 1.398 ≈ ln 4")


def test_real_healthy_run_has_no_inferred_classes(real_logs) -> None:
    # Its first logged loss (1.29) is already below ln 4: the model learned in 100 steps.
    run = curves.real_run(
        real_logs / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run4"
    )
    assert resolve_num_classes(run) is None


def test_real_mlflow_params(real_logs) -> None:
    run = curves.real_run(
        real_logs / "10tanmay100__DEEPCNNCLASSIFIER__mlflow-filestore-single-epoch"
        "/mlruns/0/cb0096518b0e4c66a94428555f05420b"
    )
    found = resolve_num_classes(run)
    assert found is not None and found.value == 2 and found.source.startswith("metadata: ")
    assert np.isfinite(run.curve("loss").values).all()
