"""The shared classification measures: what an accuracy series says about its evaluation set."""

from __future__ import annotations

import numpy as np

from rundoctor.checks.classification import evaluation_size


def test_an_evaluation_set_is_counted_from_its_accuracies() -> None:
    # 200 different accuracies of a 359-example set, as float32 writes them
    counts = np.random.default_rng(0).choice(np.arange(1, 359), size=200, replace=False)
    assert evaluation_size((counts / 359).astype(np.float32)) == 359


def test_a_running_mean_fits_no_evaluation_set() -> None:
    assert evaluation_size(np.array([0.513, 0.6071, 0.7319, 0.8004, 0.8338, 0.85172])) is None


def test_a_per_step_accuracy_is_no_count_and_costs_no_quadratic_memory() -> None:
    # 100,000 distinct per-step values: once tried against every size at once (20,000 x
    # 100,000 floats, 16 GB), now refused by the count of values alone
    values = np.random.default_rng(1).uniform(0.2, 0.9, 100_000)
    assert evaluation_size(values) is None
    # and a long series of a real set's counts is checked in bounded blocks
    many = np.arange(1, 9_999) / 10_000.0
    assert evaluation_size(many) == 10_000
