"""M005 underconfident: predicted probabilities near chance, or a double-softmax loss floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rundoctor.checks.underconfident import CHECK, double_softmax_floor, share_within
from rundoctor.findings import Confidence, Severity
from rundoctor.roles import Role
from rundoctor.series import Histogram
from tests import curves

N = 200


def _find(
    series: dict[str, curves.Series], histograms=None, num_classes: int | None = None, **params
):
    run = curves.make_run(series, histograms=histograms)
    check_params = CHECK.make_params(params) if params else CHECK.default_params()
    return list(CHECK.detect(CHECK, curves.context(run, num_classes), check_params))


def _histograms(centre: float, spread: float) -> dict[str, list[Histogram]]:
    return {
        "val/probabilities": [
            curves.probability_histogram(step, centre, spread, seed=step)
            for step in (100, 200, 300, 400)
        ]
    }


def _two_buckets(near: float) -> Histogram:
    """``near`` of the mass in the bucket (0.45, 0.5], the rest in (0.9, 0.95]."""
    limits = np.linspace(0.05, 1.0, 20)
    counts = np.zeros(20)
    counts[9], counts[18] = 100 * near, 100 * (1.0 - near)
    return Histogram(500, float("nan"), limits, counts, 0.46, 0.94)


@pytest.mark.parametrize(
    ("classes", "floor"), [(2, 0.3133), (4, 0.7437), (5, 0.9048), (10, 1.4612)]
)
def test_double_softmax_floor(classes: int, floor: float) -> None:
    assert double_softmax_floor(classes) == pytest.approx(floor, abs=1e-4)
    # The floor is the cross-entropy of a perfect first softmax passed through a second.
    assert double_softmax_floor(classes) == pytest.approx(
        -math.log(math.e / (math.e + classes - 1))
    )


def test_share_within_spreads_buckets_evenly() -> None:
    assert share_within(_two_buckets(0.45), 0.4, 0.6) == pytest.approx(0.45)
    assert share_within(_two_buckets(0.45), 0.475, 0.6) == pytest.approx(0.225)


def test_histograms_centred_on_one_half_fire() -> None:
    histograms = _histograms(0.5, 0.03)
    run = curves.make_run({"train/loss": (curves.steps(N), curves.decay(N))}, histograms=histograms)
    assert run.roles["val/probabilities"] is Role.PROB_HISTOGRAM
    (finding,) = _find({"train/loss": (curves.steps(N), curves.decay(N))}, histograms)
    curves.assert_well_formed(finding)
    # No accuracy to compare with: near chance could be a model still learning.
    assert (finding.code, finding.severity, finding.confidence) == ("M005", Severity.INFO, Confidence.LOW)
    assert (finding.first_step, finding.last_step) == (200, 400)
    assert finding.evidence["share_near_chance"] > 0.95
    assert (finding.evidence["band_low"], finding.evidence["band_high"]) == pytest.approx(
        (0.4, 0.6)
    )


def test_separated_histograms_are_quiet() -> None:
    assert _find({}, _histograms(0.9, 0.05)) == []
    bimodal = {"val/probabilities": [_two_buckets(0.0)]}
    assert _find({}, bimodal) == []


def test_near_miss_share_just_under_the_threshold() -> None:
    histograms = {"val/probabilities": [_two_buckets(0.45)]}
    assert _find({}, histograms) == []
    (finding,) = _find({}, histograms, max_share=0.4)
    assert finding.evidence["share_near_chance"] == pytest.approx(0.45)


def test_logit_histograms_are_not_judged() -> None:
    limits = np.linspace(-5.0, 5.0, 21)[1:]
    counts = np.zeros(20)
    counts[9:11] = 500
    logits = {"val/probabilities": [Histogram(10, float("nan"), limits, counts, -0.5, 0.5)]}
    assert _find({}, logits) == []


def test_low_confidence_scalar_fires() -> None:
    series = {"val/mean_confidence": (curves.steps(N), curves.noisy(np.full(N, 0.55), 0.01))}
    (finding,) = _find(series)
    assert finding.confidence is Confidence.LOW  # unknown C: read as binary
    assert finding.evidence["threshold_confidence"] == pytest.approx(0.6)
    assert finding.last_step == N - 1 and finding.first_step == N - 50
    (known,) = _find({"val/mean_confidence": (curves.steps(N), np.full(N, 0.2))}, num_classes=10)
    assert known.severity is Severity.INFO
    assert known.evidence["threshold_confidence"] == pytest.approx(0.28)


def test_confident_scalar_is_quiet() -> None:
    series = {"val/mean_confidence": (curves.steps(N), curves.rise(N, 0.5, 0.93))}
    assert _find(series) == []


def _double_softmax_series(loss_level: float, accuracy: float = 0.95) -> dict[str, curves.Series]:
    return {
        "train/loss": (curves.steps(N), curves.decay(N, start=2.3, end=loss_level, rate=6.0)),
        "train/accuracy": (curves.steps(N, 10), np.full(N, accuracy)),
    }


def test_loss_at_the_double_softmax_floor_fires() -> None:
    floor = double_softmax_floor(10)
    (finding,) = _find(_double_softmax_series(floor * 1.03), num_classes=10)
    assert finding.tags == ("train/loss", "train/accuracy")
    assert finding.evidence["double_softmax_floor"] == pytest.approx(1.4612, abs=1e-4)
    assert finding.evidence["final_loss"] == pytest.approx(floor * 1.03, rel=0.01)
    assert finding.evidence["expected_loss_at_accuracy"] == pytest.approx(0.309, abs=0.002)
    assert "applied twice" in finding.message and finding.last_step == N - 1


def test_healthy_loss_below_the_floor_is_quiet() -> None:
    assert _find(_double_softmax_series(0.2), num_classes=10) == []


def test_floor_needs_the_number_of_classes() -> None:
    # Without C the double-softmax floor is unknown; the loss far above what 95% accuracy
    # needs is still worth a note.
    (finding,) = _find(_double_softmax_series(double_softmax_floor(10) * 1.03))
    assert "applied twice" not in finding.message
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.LOW)


def test_near_miss_loss_just_above_the_floor_margin() -> None:
    series = _double_softmax_series(double_softmax_floor(10) * 1.12)
    # Not the double-softmax floor, but still a loss near a uniform guess at 95% accuracy.
    (finding,) = _find(series, num_classes=10)
    assert "applied twice" not in finding.message and "uniform guess" in finding.message
    (finding,) = _find(series, num_classes=10, floor_margin=0.15)
    assert "applied twice" in finding.message


def test_hard_problem_near_the_floor_with_modest_accuracy_is_quiet() -> None:
    # 60% accuracy on 10 classes: a loss of 1.5 is ordinary (expected about 1.55).
    assert (
        _find(_double_softmax_series(double_softmax_floor(10) * 1.03, accuracy=0.6), num_classes=10)
        == []
    )


@pytest.mark.parametrize("name", sorted(curves.HOSTILE))
@pytest.mark.parametrize("role", ["train/loss", "train/accuracy", "val/mean_confidence"])
def test_hostile_series_do_not_raise(name: str, role: str) -> None:
    series = _double_softmax_series(1.5)
    series["val/mean_confidence"] = (curves.steps(N), np.full(N, 0.55))
    series[role] = curves.HOSTILE[name]
    assert all(finding.code == "M005" for finding in _find(series, num_classes=10))


@pytest.mark.parametrize(
    "histogram",
    [
        Histogram(0, float("nan"), np.empty(0), np.empty(0)),
        Histogram(1, float("nan"), np.array([0.5, 1.0]), np.array([0.0, 0.0])),
        Histogram(2, float("nan"), np.array([0.5, 1.0]), np.array([3.0])),
        Histogram(3, float("nan"), np.array([np.nan, 1.0]), np.array([1.0, np.nan])),
        Histogram(4, float("nan"), np.array([-1.7e308, 0.5, 1.7e308]), np.array([1.0, 5.0, 1.0])),
    ],
)
def test_hostile_histograms_do_not_raise(histogram: Histogram) -> None:
    assert all(finding.code == "M005" for finding in _find({}, {"val/probabilities": [histogram]}))


@pytest.mark.parametrize("relative", curves.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative: str) -> None:
    for run in curves.real_runs(real_logs, relative):
        assert curves.run_check(CHECK, run) == [], run.id


def _with_accuracy(confidence: float, accuracy: float, loss: np.ndarray) -> dict[str, curves.Series]:
    epochs = curves.steps(20, 10, 9)
    return {
        "val/mean_confidence": (epochs, curves.noisy(np.full(20, confidence), 0.01, seed=1)),
        "val/accuracy": (epochs, curves.noisy(np.full(20, accuracy), 0.005, seed=2)),
        "val/loss": (epochs, loss),
        "train/loss": (curves.steps(200), curves.heavy_tailed(curves.decay(200, 0.7, 0.5), 0.5, 0.01, seed=3)),
    }


def test_confidence_far_below_accuracy_with_a_finished_loss_is_a_warning() -> None:
    flat = 0.45 * (1.0 + 0.005 * curves.rng(4).standard_normal(20))
    (finding,) = _find(_with_accuracy(0.56, 0.85, flat))
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert finding.evidence["calibration_gap"] == pytest.approx(0.29, abs=0.02)
    assert finding.evidence["still_learning"] is False


def test_confidence_below_accuracy_while_still_learning_is_a_note() -> None:
    # Stopped inside the first epoch: probabilities near 0.5 but the loss still falls.
    (finding,) = _find(_with_accuracy(0.56, 0.85, curves.decay(20, 0.69, 0.45, 2.0)))
    assert finding.severity is Severity.INFO and finding.evidence["still_learning"] is True


def test_calibrated_low_confidence_of_a_label_noise_run_is_quiet() -> None:
    # 42% label noise: the best model is 58% right and says so.
    flat = 0.68 * (1.0 + 0.005 * curves.rng(5).standard_normal(20))
    assert _find(_with_accuracy(0.57, 0.6, flat)) == []


def test_near_miss_at_the_calibration_margin() -> None:
    flat = 0.6 * (1.0 + 0.005 * curves.rng(6).standard_normal(20))
    assert _find(_with_accuracy(0.58, 0.66, flat)) == []
    (finding,) = _find(_with_accuracy(0.58, 0.66, flat), calibration_margin=0.05)
    assert finding.severity is Severity.WARNING


def _smoothed(loss_level: float, accuracy: float, rising: bool = False) -> dict[str, curves.Series]:
    epochs = curves.steps(30)
    loss = curves.decay(30, 2.3, loss_level, 8.0)
    if rising:
        loss = loss + np.linspace(0.0, 0.6, 30) ** 2
    return {"val_loss": (epochs, loss), "val_acc": (epochs, curves.rise(30, 0.1, accuracy, 8.0))}


def test_heavy_label_smoothing_loss_near_uniform_at_high_accuracy_is_a_warning() -> None:
    (finding,) = _find(_smoothed(1.3, 0.93), num_classes=10)
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.MEDIUM)
    assert "uniform guess" in finding.message
    assert _find(_smoothed(1.3, 0.93), num_classes=10, uniform_share=0.6) == []
    assert _find(_smoothed(1.3, 0.93), num_classes=10, uniform_excess=3.5) == []


def test_moderate_label_smoothing_is_caught_too() -> None:
    # Smoothing 0.5 on 10 classes: the right class gets about 0.55, a loss of 0.6 at 97%
    # accuracy, three times what that accuracy needs (0.2).
    (finding,) = _find(_smoothed(0.6, 0.97), num_classes=10)
    assert finding.severity is Severity.WARNING


def test_a_healthy_confident_classifier_is_quiet() -> None:
    assert _find(_smoothed(0.12, 0.97), num_classes=10) == []
    assert _find(_smoothed(0.12, 0.97)) == []


def test_a_rising_overfit_loss_is_not_underconfidence() -> None:
    assert _find(_smoothed(0.5, 0.88, rising=True), num_classes=10) == []


def test_a_label_noise_run_with_limited_accuracy_is_not_underconfident() -> None:
    # 10 classes, 40% noisy labels: accuracy 0.58, loss 1.6 is what a calibrated model has.
    assert _find(_smoothed(1.6, 0.58), num_classes=10) == []


def _binary_unsure(loss_level: float, accuracy: float, seed: int = 3) -> dict[str, curves.Series]:
    """A binary classifier whose accuracy climbs 0.5 -> ``accuracy`` while its loss only
    falls from ln 2 to ``loss_level``: answers mostly right, probabilities near one half."""
    steps = curves.steps(200, 10)
    loss = curves.noisy(curves.decay(200, math.log(2.0), loss_level, 6.0), 0.01, seed)
    return {"train/loss": (steps, loss), "train/accuracy": (steps, curves.rise(200, 0.5, accuracy, 6.0))}


def test_a_loss_near_a_uniform_guess_under_a_mostly_right_classifier_fires() -> None:
    # 0.61 is 88% of ln 2, 1.44x the 0.42 an accuracy of 0.86 needs (short of the 2x far
    # above a calibrated loss, past the 1.25x enough near a uniform guess).
    (finding,) = _find(_binary_unsure(0.61, 0.86), num_classes=2)
    assert finding.severity is Severity.WARNING
    assert "80% of ln C" in finding.message


def test_near_miss_a_loss_further_below_a_uniform_guess_is_a_calibrated_model() -> None:
    # 0.52 is 75% of ln 2: what a calibrated model right 82% of the time loses, give or take.
    assert _find(_binary_unsure(0.52, 0.82), num_classes=2) == []
    # Without the number of classes no loss can be placed against a uniform guess.
    assert _find(_binary_unsure(0.61, 0.86)) == []
    # Params override: asking for 1.5x, the 1.44x run is not reported.
    assert _find(_binary_unsure(0.61, 0.86), num_classes=2, near_uniform_excess=1.5) == []
