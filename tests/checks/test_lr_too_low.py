"""C002 lr-too-low: the training loss creeps down in a slow straight line."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.lr_too_low import CHECK
from rundoctor.findings import Confidence, Severity
from tests import curves

N = 400
STEPS = curves.steps(N, 5)


def _loss(values: np.ndarray) -> dict[str, curves.Series]:
    return {"train/loss": (STEPS, curves.noisy(values, 0.003))}


def test_fires_on_a_slow_straight_decline_and_quotes_the_learning_rate() -> None:
    # Eight classes: 2.0 -> 1.8 is still near ln 8 = 2.08, far from any good level.
    series = {**_loss(curves.linear(N, 2.0, 1.8)), "train/lr": (STEPS, np.full(N, 2e-6))}
    (finding,) = curves.find(CHECK, series, num_classes=8)
    assert (finding.code, finding.severity, finding.confidence) == (
        "C002",
        Severity.WARNING,
        Confidence.MEDIUM,
    )
    assert (finding.first_step, finding.last_step) == (0, 1_995)
    evidence = finding.evidence
    assert evidence["drop"] == pytest.approx(0.1, abs=0.01)
    assert evidence["rate_ratio"] == pytest.approx(1.0, abs=0.25)
    assert evidence["lr_max"] == pytest.approx(2e-6) and evidence["lr_tag"] == "train/lr"
    assert "straight line" in finding.message and "2.000e-06" in finding.message
    assert finding.evidence["near_chance"] is True
    curves.assert_well_formed(finding)


def test_a_crawl_far_below_chance_or_with_no_chance_known_is_info() -> None:
    # A pretrained seq2seq model fine-tuned with AdamW at 5e-5: 1.91 -> 1.77 in a straight
    # line, no accuracy and no class count (a token loss over a 32k vocabulary is far below
    # its chance ln 32000): nothing says the loss is far from a good level.
    series = {**_loss(curves.linear(N, 1.91, 1.77)), "lr-AdamW": (STEPS, np.full(N, 5e-5))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.evidence["near_chance"] is False
    assert "not known to be near chance" in finding.message
    # Near miss: with ten classes the loss sits at 80% of ln 10, still near chance: a warning.
    (near,) = curves.find(CHECK, series, num_classes=10)
    assert near.severity is Severity.WARNING
    # With 1000 classes the same loss is 27% of ln 1000: far below chance, info.
    (far,) = curves.find(CHECK, series, num_classes=1000)
    assert far.severity is Severity.INFO
    # Params override: asking for 20% of ln C makes it a warning again.
    (strict,) = curves.find(CHECK, series, num_classes=1000, near_chance=0.2)
    assert strict.severity is Severity.WARNING


def test_a_crawl_of_a_classifier_with_a_low_accuracy_and_unknown_c_is_a_warning() -> None:
    series = {
        **_loss(curves.linear(N, 2.0, 1.8)),
        "lr": (STEPS, np.full(N, 2e-5)),
        "val/acc": (STEPS[::40], np.linspace(0.22, 0.26, 10)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING and finding.evidence["near_chance"] is True
    # Near miss: an accuracy that already reached 0.7 is not near chance: info.
    good = {**series, "val/acc": (STEPS[::40], np.linspace(0.66, 0.7, 10))}
    (info,) = curves.find(CHECK, good)
    assert info.severity is Severity.INFO


def test_a_healthy_decay_bends_and_is_silent() -> None:
    assert curves.find(CHECK, _loss(curves.decay(N))) == []


def test_a_small_fall_that_bends_is_silent() -> None:
    # A pretrained model fine-tuned: 13% drop, most of it early (the T5 run in the real logs).
    assert curves.find(CHECK, _loss(curves.decay(N, start=2.0, end=1.74, rate=4.0))) == []


def test_near_miss_above_the_drop_threshold_then_override() -> None:
    series = _loss(curves.linear(N, 2.0, 1.5))  # -25% end to end, -24% between end medians
    assert curves.find(CHECK, series) == []
    (finding,) = curves.find(CHECK, series, max_drop=0.3)
    assert finding.evidence["drop"] == pytest.approx(0.24, abs=0.01)


def test_a_flat_noisy_loss_is_not_a_decline() -> None:
    # Left to no-learning: no fall beyond the noise.
    flat = curves.noisy(np.full(N, 1.395), 0.003, seed=4)
    assert curves.find(CHECK, {"train/loss": (STEPS, flat)}) == []


def test_too_few_points() -> None:
    assert curves.find(CHECK, {"train/loss": (curves.steps(4), [2.0, 1.99, 1.98, 1.97])}) == []


def test_the_example_curve_fires() -> None:
    # ``rundoctor explain`` draws it as "a curve this check fires on".
    assert CHECK.example is not None
    findings = curves.find(CHECK, {"train/loss": CHECK.example()})
    assert [finding.code for finding in findings] == ["C002"]


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
def test_hostile_series_do_not_raise(name: str) -> None:
    findings = curves.find(CHECK, {"train/loss": curves.HOSTILE[name]})
    assert findings == []  # none of them is a slow straight decline


def test_real_stalled_keras_run_fires(real_logs) -> None:
    # R32: 0.5385 -> 0.5369 in five equal epoch steps.
    run = curves.real_run(
        real_logs / "olegkleiman__tf_keras__keras-tf2-stalled/logs/fit/20191031-020333"
    )
    (finding,) = curves.run_check(CHECK, run)
    assert finding.evidence["rate_ratio"] == pytest.approx(1.0, abs=0.05)


def test_real_lora_run_at_lr_5e_6_is_left_to_no_learning(real_logs) -> None:
    # R01: the loss does not decline beyond its noise, so it is not a slow decline either.
    run = curves.real_run(
        real_logs / "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run0"
    )
    assert curves.run_check(CHECK, run) == []


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def test_a_flat_loss_under_a_tiny_logged_sgd_rate_names_the_cause() -> None:
    # Lightning logs ``lr-SGD``: 1e-6 is far below any rate SGD trains at; the loss sits at
    # ln 10 with noise and moves 0.5%.
    loss = curves.noisy(np.full(N, 2.40), 0.01, seed=3)
    series = {**_loss(loss), "lr-SGD": (STEPS, np.full(N, 1e-6))}
    (finding,) = curves.find(CHECK, series)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["optimizer"] == "SGD" and finding.evidence["threshold_lr"] == 1e-4
    assert "learning rate is too low" in finding.message and "lr-SGD" in finding.tags


def test_a_tiny_rate_named_from_hyper_parameters_and_a_near_miss() -> None:
    loss = curves.noisy(np.full(N, 2.40), 0.01, seed=3)
    series = {**_loss(loss), "lr": (STEPS, np.full(N, 5e-5))}
    assert curves.find(CHECK, series) == []  # 5e-5 is a normal rate for Adam or unknown
    run = curves.make_run(series, metadata={"optimizer": "SGD"})
    (finding,) = curves.run_check(CHECK, run)
    assert finding.evidence["optimizer"] == "SGD"
    # Params override: a lower SGD floor keeps 5e-5 out.
    assert curves.run_check(CHECK, run, CHECK.make_params({"sgd_floor": 1e-5})) == []


def test_a_tiny_rate_under_a_loss_that_fell_is_not_reported() -> None:
    # Fine-tuning at 1e-6 that still fell 60%: the rate did its job.
    series = {**_loss(curves.decay(N, 2.0, 0.5)), "lr-AdamW": (STEPS, np.full(N, 1e-6))}
    assert curves.find(CHECK, series) == []


def test_a_tiny_sgd_rate_under_a_straight_fall_that_ends_near_chance_names_the_cause() -> None:
    # SGD at 5e-5 on ten classes: 2.86 -> 2.06 (28%) in a straight line, still near
    # ln 10 = 2.30 with the accuracy at 0.37: the step size limits the fall.
    series = {
        **_loss(curves.linear(N, 2.86, 2.06)),
        "lr-SGD": (STEPS, np.full(N, 5e-5)),
        "val/acc": (STEPS[::40], np.linspace(0.11, 0.37, 10)),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.WARNING and finding.evidence["lr_max"] == 5e-5
    assert "straight line, still near chance" in finding.message
    # Near miss: the same fall bending towards a floor is the rate doing its job.
    bent = {**series, **_loss(curves.decay(N, 2.86, 2.0, rate=6.0))}
    assert curves.find(CHECK, bent) == []
    # Params override: a lower SGD floor leaves the rate alone.
    assert curves.find(CHECK, series, sgd_floor=1e-5) == []


def test_healthy_heavy_tailed_batch_of_four_is_silent() -> None:
    n = 3000
    loss = curves.heavy_tailed(curves.decay(n, start=1.2, end=0.35, rate=4.0), spread=0.8, seed=7)
    series = {"train/loss": (curves.steps(n), loss), "lr": (curves.steps(n), np.full(n, 1e-3))}
    assert curves.find(CHECK, series) == []


def test_three_epochs_of_a_straight_line_are_only_info() -> None:
    series = {"train/epoch_loss": (np.arange(3), np.array([0.5385, 0.5379, 0.5373]))}
    assert [f.severity for f in curves.find(CHECK, series, min_points=3)] in ([], [Severity.INFO])


# Hugging Face's default schedule: linear warm-up over 10% of the steps, then linear decay to
# 0.  Under a rate far too low the loss falls in proportion to the rate spent, so it bends
# in steps (the decay slows it) but runs straight against the cumulative rate.
HF_N = 75
HF_STEPS = curves.steps(HF_N, 10, 10)
HF_RATE = np.interp(HF_STEPS, [0, 75, 752], [0.0, 2e-5, 0.0])


def _spent(rate: np.ndarray) -> np.ndarray:
    spent = np.concatenate(([0.0], np.cumsum(np.diff(HF_STEPS) * (rate[1:] + rate[:-1]) / 2)))
    return spent / spent[-1]


def test_a_crawl_under_warm_up_and_decay_is_straight_against_the_rate_spent() -> None:
    loss = curves.heavy_tailed(1.99 - 0.16 * _spent(HF_RATE), spread=0.03, outliers=0.0, seed=1)
    series = {"loss": (HF_STEPS, loss), "learning_rate": (HF_STEPS, HF_RATE)}
    (finding,) = curves.find(CHECK, series, num_classes=4)
    assert finding.severity is Severity.WARNING
    assert finding.evidence["against_learning_rate_spent"] is True
    assert finding.evidence["rate_ratio"] > 0.5
    assert "learning rate spent" in finding.message
    curves.assert_well_formed(finding)
    # Near miss: without the rate, the same loss bends in steps and is not a crawl.
    assert curves.find(CHECK, {"loss": (HF_STEPS, loss)}) == []


def test_a_fall_only_the_validation_loss_shows_is_info() -> None:
    # 0.001x the rate: the per-step loss scatters by 4% and shows no fall; the validation
    # loss, on a fixed set, falls 0.8% in a straight line against the rate spent.
    loss = curves.heavy_tailed(np.full(HF_N, 2.0), spread=0.04, outliers=0.0, seed=2)
    eval_steps = HF_STEPS[9::10]
    val = 2.021 - 0.016 * _spent(HF_RATE)[9::10]
    series = {
        "loss": (HF_STEPS, loss),
        "learning_rate": (HF_STEPS, HF_RATE / 10),
        "eval_loss": (eval_steps, val),
    }
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and finding.evidence["tag"] == "eval_loss"
    assert "validation loss shows it" in finding.message
    # At ln C the validation loss is a uniform guess: left to no-learning.
    flat = {**series, "eval_loss": (eval_steps, np.log(8) - 0.001 * _spent(HF_RATE)[9::10])}
    assert curves.find(CHECK, flat, num_classes=8) == []


def test_a_classifier_fine_tuned_from_a_good_start_is_not_a_crawl() -> None:
    loss = curves.noisy(curves.linear(N, 0.09, 0.08), 0.003)
    series = {"train/loss": (STEPS, loss), "val/acc": (STEPS[::40], np.full(10, 0.98))}
    assert curves.find(CHECK, series) == []
    # Without an accuracy the same numbers could be a regression's: judged as a crawl.
    assert [f.code for f in curves.find(CHECK, {"train/loss": (STEPS, loss)})] == ["C002"]


def test_a_crawl_at_a_usual_sgd_rate_is_only_info_then_override() -> None:
    # A task that generalises late (sparse parity) creeps 8% at SGD 0.02: the rate is usual.
    series = {**_loss(curves.linear(N, 0.81, 0.75)), "lr-SGD": (STEPS, np.full(N, 0.02))}
    (finding,) = curves.find(CHECK, series)
    assert finding.severity is Severity.INFO and "a usual rate for SGD" in finding.message
    (strict,) = curves.find(CHECK, series, num_classes=2, ordinary_sgd=0.1)  # at ln 2: near chance
    assert strict.severity is Severity.WARNING
