"""Measurements on logged histograms (checks/histograms.py) and how histogram tags are read (roles.py):
exact where the encoding allows, bounded where it does not, and never a crash on a malformed histogram."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rundoctor.checks import histograms as H
from rundoctor.checks.registry import REGISTRY
from rundoctor.roles import Role, histogram_name, infer_role
from rundoctor.series import Histogram
from tests import curves
from tests.checks import histogram_logs as logs

ENCODINGS = pytest.mark.parametrize("encode", list(logs.ENCODINGS.values()), ids=list(logs.ENCODINGS))
NORMAL = logs.rng(0).normal(0.0, 0.1, 20_000)


@pytest.mark.parametrize(
    ("tag", "layer", "tensor", "gradient", "role"),
    [
        ("fc1.weight", "fc1", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("fc1.weight.grad", "fc1", "weight", True, Role.GRADIENT_HISTOGRAM),
        ("grad/fc1.weight", "fc1", "weight", True, Role.GRADIENT_HISTOGRAM),
        ("gradients/encoder.layers.0.linear1/bias", "encoder.layers.0.linear1", "bias", True, Role.GRADIENT_HISTOGRAM),
        ("train/dense_1/kernel_0", "dense_1", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("train/dense/bias_0/histogram", "dense", "bias", False, Role.BIAS_HISTOGRAM),
        ("dense/kernel:0", "dense", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("dense/kernel_0_grad", "dense", "weight", True, Role.GRADIENT_HISTOGRAM),
        ("net.2.weight", "net.2", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("lstm.weight_hh_l0", "lstm", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("weights/fc1", "fc1", "weight", False, Role.WEIGHT_HISTOGRAM),
        ("activations/fc1", "fc1", "activation", False, Role.ACTIVATION_HISTOGRAM),
        ("fc2/relu", "fc2", "activation", False, Role.ACTIVATION_HISTOGRAM),
        ("bn1.weight", "bn1", "norm", False, Role.OTHER),
        ("batch_normalization/gamma_0", "batch_normalization", "norm", False, Role.OTHER),
        ("val/pred_probs", "val/pred_probs", "other", False, Role.PROB_HISTOGRAM),
    ],
)
def test_histogram_tags_name_their_layer_as_logged(tag: str, layer: str, tensor: str, gradient: bool, role: Role) -> None:
    name = histogram_name(tag)
    assert (name.layer, name.tensor, name.gradient) == (layer, tensor, gradient)
    assert infer_role(tag, histogram=True) is role


@ENCODINGS
def test_scale_spread_and_distance_read_what_was_histogrammed(encode) -> None:
    first, shifted = encode(NORMAL, 0), encode(NORMAL + 0.02, 1)
    assert H.abs_mean(first) == pytest.approx(np.abs(NORMAL).mean(), rel=0.05)
    assert H.spread(first)[1] == pytest.approx(NORMAL.std(), rel=0.05)
    assert H.distance(first, first) == 0.0
    assert H.distance(first, shifted) == pytest.approx(0.02, rel=0.1)
    assert H.distance(first, shifted) == pytest.approx(H.distance(shifted, first))


def test_the_distance_is_a_lower_bound_of_the_mean_change() -> None:
    moved = NORMAL + logs.rng(1).normal(0.0, 0.01, NORMAL.size)  # every value moves by ~0.008
    distance = H.distance(logs.torch_histogram(NORMAL, 0), logs.torch_histogram(moved, 1))
    assert 0 < distance < np.abs(moved - NORMAL).mean()


def test_exact_zeros_sit_in_a_bucket_of_their_own_with_torchs_buckets_only() -> None:
    outputs = logs.relu_outputs(8192, 0.5, seed=0)
    share = float(np.mean(outputs == 0))
    assert H.zero_share(logs.torch_histogram(outputs, 0)) == pytest.approx((share, True))
    bound, exact = H.zero_share(logs.tf2_histogram(outputs, 0))
    assert not exact and share <= bound < share + 0.05
    assert H.zero_share(logs.tf2_histogram(np.zeros(10), 0)) == (1.0, True)
    assert H.zero_share(logs.torch_histogram(NORMAL, 0)) == (0.0, True)
    scale = np.abs(outputs[outputs > 0]).mean()
    assert H.nonzero_abs_mean(logs.torch_histogram(outputs, 0)) == pytest.approx(scale, rel=0.05)


@ENCODINGS
def test_share_outside_spreads_each_bucket_over_its_width(encode) -> None:
    uniform = np.linspace(-1, 1, 20_001)
    assert H.share_outside(encode(uniform, 0), -0.5, 0.5) == pytest.approx(0.5, abs=0.03)


def test_constant_and_identical_histograms_are_recognised() -> None:
    assert H.is_constant(logs.torch_histogram(np.full(100, 0.05), 0))
    assert H.is_constant(logs.tf2_histogram(np.zeros(100), 0))
    assert not H.is_constant(logs.torch_histogram(NORMAL, 0))
    assert H.same(logs.torch_histogram(NORMAL, 0), logs.torch_histogram(NORMAL, 5))
    assert not H.same(logs.torch_histogram(NORMAL, 0), logs.torch_histogram(NORMAL * 1.0001, 5))


def test_the_activation_function_is_read_from_the_name_or_the_values() -> None:
    def kind(tag: str, values: np.ndarray) -> str:
        [item] = H.series(logs.run_with({tag: [logs.torch_histogram(values, 0)]}), Role.ACTIVATION_HISTOGRAM)
        return H.activation_kind(item)

    relu = logs.relu_outputs(4096, 0.2, seed=1)
    assert kind("activations/fc1", relu) == "relu"
    assert kind("activations/fc1", np.tanh(NORMAL * 20)) == "tanh"
    assert kind("activations/fc1", 1 / (1 + np.exp(-NORMAL * 40))) == "sigmoid"
    assert kind("activations/fc1", relu * 0.1) == "relu"  # small outputs, exact zeros and a thin top
    assert kind("activations/fc1", NORMAL * 20) == "other"
    assert kind("fc1/gelu", relu) == "other"


MALFORMED = {
    "lengths differ": Histogram(0, math.nan, np.array([0.1, 0.2]), np.array([1.0]), 0.0, 0.2),
    "nan counts": Histogram(0, math.nan, np.array([0.1, 0.2]), np.array([math.nan, 1.0]), 0.0, 0.2),
    "negative counts": Histogram(0, math.nan, np.array([0.1, 0.2]), np.array([-1.0, 1.0]), 0.0, 0.2),
    "empty": Histogram(0, math.nan, np.empty(0), np.empty(0)),
    "no mass": Histogram(0, math.nan, np.array([0.1, 0.2]), np.zeros(2), 0.0, 0.2),
    "infinite edges": Histogram(0, math.nan, np.array([-math.inf, 0.1, math.inf]), np.array([1.0, 2.0, 3.0])),
    "unsorted edges": Histogram(0, math.nan, np.array([0.3, 0.1, 0.2]), np.array([1.0, 2.0, 3.0]), 0.0, 0.3),
    "huge": Histogram(0, math.nan, np.array([1e300, 1e308]), np.array([1.0, 1e30]), -1e308, 1e308),
    "one bucket": Histogram(0, math.nan, np.array([0.5]), np.array([7.0])),
}


@pytest.mark.parametrize("histogram", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_histograms_measure_as_nan_never_raise(histogram: Histogram) -> None:
    good = logs.torch_histogram(NORMAL, 1)
    for measure in (H.abs_mean, H.nonzero_abs_mean, H.spread, H.zero_share, H.is_constant,
                    lambda h: H.share_outside(h, -0.1, 0.1), lambda h: H.distance(h, good),
                    lambda h: H.same(h, good)):
        measure(histogram)


HISTOGRAM_CHECKS = [check for check in REGISTRY if check.code[0] in "AW" or check.code in ("D002", "D003")]


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("check", HISTOGRAM_CHECKS, ids=lambda check: check.name)
def test_every_histogram_check_survives_malformed_histograms_in_every_role(check, name: str) -> None:
    bad = [MALFORMED[name], MALFORMED[name]]
    fine = logs.over_steps(lambda i, step: NORMAL * (1 + 0.01 * i), range(0, 500, 100))
    histograms = {"fc1.weight": bad, "fc1.bias": bad, "fc1.weight.grad": bad, "activations/fc1": bad,
                  "fc2.weight": fine, "fc2.bias": fine[:1], "fc2.weight.grad": fine, "activations/fc2": fine}
    for finding in curves.run_check(check, logs.run_with(histograms)):
        curves.assert_well_formed(finding)


def random_histograms(count: int, seed: int) -> list[Histogram]:
    """Histograms of a few bucket counts, some malformed: non-finite edges and counts, edges out of
    order, negative counts, no mass, min and max missing or clipping."""
    generator = logs.rng(seed)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, -1.0])
    found = []
    for step in range(count):
        buckets = int(generator.integers(1, 6))
        limits = np.sort(generator.normal(size=buckets)) * 10.0 ** int(generator.integers(-3, 4))
        counts = generator.integers(0, 4, size=buckets).astype(float)
        if generator.random() < 0.2:
            limits[generator.integers(buckets)] = generator.choice(special)
        if generator.random() < 0.2:
            counts[generator.integers(buckets)] = generator.choice(special)
        if generator.random() < 0.1:
            limits = limits[::-1].copy()
        low = float(generator.choice([np.nan, limits.min() - 1.0, np.inf]))
        high = float(generator.choice([np.nan, limits.max(), -np.inf]))
        found.append(Histogram(step, 0.0, limits, counts, low, high))
    return found


def test_histograms_measured_together_measure_as_each_alone() -> None:
    items = random_histograms(400, 7)
    together = H.measure_together(items)
    distances = H.consecutive_distances(items)
    H._cache.clear()
    for index, histogram in enumerate(items):
        alone = H.measure_together([histogram])[0]
        H._cache.clear()
        assert (alone is None) == (together[index] is None)
        if alone is not None and together[index] is not None:
            for name in ("lefts", "rights", "counts", "quantiles"):
                assert getattr(alone, name).tobytes() == getattr(together[index], name).tobytes()
            assert np.array([alone.total, alone.mean, alone.std]).tobytes() == np.array(
                [together[index].total, together[index].mean, together[index].std]).tobytes()
    pairs = [H.distance(a, b) for a, b in itertools.pairwise(items)]
    assert np.array(distances).tobytes() == np.array(pairs).tobytes()
    assert any(found is None for found in together) and any(found is not None for found in together)
