"""D001 grad-norm: exploding, spiking, vanishing or always-clipped gradient norms."""

from __future__ import annotations

import numpy as np
import pytest

from rundoctor.checks.grad_norm import CHECK, clip_threshold
from rundoctor.findings import Confidence, Severity
from tests import curves as c

N = 1000


def findings(values, steps=None, metadata=None, **params):
    at = c.steps(len(values)) if steps is None else steps
    run = c.make_run({"train/grad_norm": (at, values)}, metadata=metadata)
    found = c.run_check(CHECK, run, CHECK.make_params(params))
    for finding in found:
        c.assert_well_formed(finding)
    return found


def healthy(seed: int = 1) -> np.ndarray:
    """A pre-clip norm like a fine-tuning run's: noisy around 2-4, drifting down."""
    return c.noisy(c.decay(N, 4.0, 2.0, 2.0), 0.25, seed=seed)


def test_exploding_norm_fires():
    values = c.noisy(np.geomspace(1.0, 1e4, N), 0.1, seed=2)
    [finding] = findings(values)
    assert (finding.code, finding.severity, finding.confidence) == (
        "D001",
        Severity.WARNING,
        Confidence.HIGH,
    )
    assert (finding.first_step, finding.last_step) == (0, N - 1)
    assert finding.evidence["pattern"] == "exploding"
    assert finding.evidence["growth"] > 1000
    assert "exploded" in finding.message and "threshold 100x" in finding.message


def test_healthy_noisy_norm_does_not_fire():
    assert findings(healthy()) == []


def test_growth_just_under_a_hundredfold_does_not_fire_and_a_lower_factor_flips_it():
    values = np.geomspace(1.0, 80.0, N)  # end median / start median is about 64x
    assert findings(values) == []
    [finding] = findings(values, explode_factor=50.0)
    assert finding.evidence["pattern"] == "exploding"


def test_one_isolated_spike_is_information():
    values = healthy()
    values[600] = 60.0
    [finding] = findings(values)
    assert (finding.severity, finding.confidence) == (Severity.INFO, Confidence.MEDIUM)
    assert finding.evidence["pattern"] == "spikes"
    assert finding.evidence["spikes"] == 1
    assert (finding.evidence["largest_step"], finding.first_step, finding.last_step) == (
        600,
        600,
        600,
    )
    assert finding.evidence["largest_ratio"] == pytest.approx(
        60.0 / finding.evidence["running_median_at_largest"]
    )


def test_isolated_repeated_spikes_are_info_beyond_chance():
    values = c.with_spikes(healthy(), at=[100, 300, 500, 700], height=20.0, width=2)
    [finding] = findings(values)
    assert finding.severity == Severity.INFO
    assert finding.evidence["spikes"] == 4 and finding.evidence["beyond_chance"] is True
    assert (finding.first_step, finding.last_step) == (100, 701)


def test_a_norm_that_stays_up_is_a_warning():
    values = c.with_spikes(healthy(), at=[400, 700], height=20.0, width=20)
    [finding] = findings(values)
    assert finding.severity == Severity.WARNING and finding.evidence["lasting"] is True


def test_heavy_tailed_norms_of_small_batches_are_at_most_info():
    # Batch size 4: lognormal scatter of the norm and 3% of steps at 10-50x its trend.
    for seed in range(5):
        values = c.heavy_tailed(c.decay(N, 4.0, 2.0, 2.0), spread=0.5, outliers=0.03, seed=seed)
        found = findings(values)
        assert [f for f in found if f.severity is not Severity.INFO] == [], seed


def test_spike_count_chance_override():
    values = c.with_spikes(healthy(), at=[100, 300, 500, 700], height=20.0, width=2)
    [finding] = findings(values, chance_p=0.001)
    assert finding.evidence["beyond_chance"] is False and finding.evidence["expected_by_chance"] > 0.1


def test_spike_just_under_the_factor_does_not_fire():
    values = np.full(N, 2.0)
    values[::2] = 2.2  # not pinned: two values
    values[500] = 19.0  # 9x the running median
    assert findings(values) == []
    assert findings(values, spike_factor=8.0)[0].evidence["spikes"] == 1


def test_a_single_extreme_spike_is_a_warning():
    values = healthy()
    values[10] = 1e5
    [finding] = findings(values)
    assert finding.severity == Severity.WARNING
    assert finding.evidence["largest_ratio"] > 1000


def test_vanishing_norm_fires():
    values = np.geomspace(1.0, 1e-9, N)
    [finding] = findings(values)
    assert finding.evidence["pattern"] == "vanishing"
    assert finding.evidence["end_level"] < 1e-7
    assert "vanished" in finding.message


def test_norm_pinned_at_the_clip_threshold_fires():
    values = healthy()
    values[values > 1.0] = 1.0  # a logger that records the norm after clipping at 1.0
    values[:50] = np.linspace(0.5, 0.9, 50)
    [finding] = findings(values, metadata={"args.max_grad_norm": "1.0"})
    assert (finding.severity, finding.confidence) == (Severity.WARNING, Confidence.HIGH)
    assert finding.evidence["pattern"] == "clipping"
    assert finding.evidence["pinned_value"] == 1.0
    assert 0.9 < finding.evidence["pinned_fraction"] <= 0.95
    assert finding.evidence["clip_metadata_key"] == "args.max_grad_norm"
    assert "args.max_grad_norm" in finding.message
    # Without the hyper-parameters the pinned value is found all the same, at medium confidence.
    [unknown] = findings(values)
    assert (unknown.confidence, unknown.evidence["pinned_value"]) == (Confidence.MEDIUM, 1.0)


def test_pre_clip_norm_above_the_threshold_is_not_clipping_on_every_step():
    # Hugging Face logs the norm before clipping: 2-4 against max_grad_norm 1.0 is normal.
    assert findings(healthy(), metadata={"max_grad_norm": "1.0"}) == []


def test_pinned_near_miss_and_override():
    values = healthy()
    values[: int(0.75 * N)] = 1.0
    assert [f for f in findings(values) if f.evidence["pattern"] == "clipping"] == []
    [finding] = [
        f for f in findings(values, pinned_fraction=0.7) if f.evidence["pattern"] == "clipping"
    ]
    assert finding.evidence["pinned_fraction"] == pytest.approx(0.75)


def test_clip_threshold_from_metadata():
    assert clip_threshold({"optimizer_config.grad_clip.max_norm": "35"}) == (
        35.0,
        "optimizer_config.grad_clip.max_norm",
    )
    assert clip_threshold({"gradient_clip_val": "0.5", "lr": "1e-3"}) == (0.5, "gradient_clip_val")
    assert clip_threshold({"grad_clip": "None", "max_norm": "0"}) is None


def test_a_negative_series_is_not_a_norm():
    assert findings(-healthy()) == []


def test_the_example_curve_fires():
    steps, values = CHECK.example()
    [finding] = findings(values, steps=steps)
    assert (finding.evidence["spikes"], finding.evidence["largest_step"]) == (3, 3100)


def test_long_curves_are_binned():
    # 200,000 points: the spike survives binning and its exact step is reported.
    values = c.noisy(np.full(200_000, 3.0), 0.1, seed=3)
    values[123_457] = 90.0
    [finding] = findings(values)
    assert finding.evidence["largest_step"] == 123_457
    assert finding.evidence["spike_steps"] == [123_457]


def real_findings(real_logs, relative):
    return c.run_check(CHECK, c.real_run(real_logs / relative))


@pytest.mark.parametrize(
    "relative",
    [
        "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run4",
        "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/results/checkpoint-1200/trainer_state.json",
        (
            "paulohenriquecrs__RoBERTa_SEQ_CLS_LoRA_Portuguese__hf-trainer-lora/results/checkpoint-8610/"
            "trainer_state.json"
        ),
        (
            "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/"
            "backbone_swin_rfp4step/None.log.json"
        ),
    ],
)
def test_real_healthy_runs_do_not_fire(real_logs, relative):
    assert real_findings(real_logs, relative) == []


def test_real_t5_single_spike_is_information(real_logs):
    [finding] = real_findings(
        real_logs, "10844110__t5-summarization-demo__hf-trainer-t5-plateau/trainer_state.json"
    )
    assert (finding.severity, finding.evidence["largest_step"]) == (Severity.INFO, 190_000)
    assert finding.evidence["largest_value"] == pytest.approx(35.59, abs=0.01)


def test_real_centernet_spikes_repeatedly(real_logs):
    relative = (
        "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/"
        "centernet_resnet18_dcnv2_140e_trash/None.log.json"
    )
    # Dozens of isolated 10-130x norms (R43): reported, but none lasts, so it is a note.
    [finding] = real_findings(real_logs, relative)
    assert finding.severity == Severity.INFO and finding.evidence["lasting"] is False
    assert finding.evidence["spikes"] > 2


@pytest.mark.parametrize("relative", c.HEALTHY_REAL_RUNS)
def test_no_warning_on_healthy_real_runs(real_logs, relative):
    for run in c.real_runs(real_logs, relative):
        assert [f.message for f in c.run_check(CHECK, run) if f.severity is not Severity.INFO] == [], run.id


@pytest.mark.parametrize("seed", range(6))
def test_the_moving_minimum_shortcut_never_hides_a_spike(seed: int) -> None:
    # Whenever the shortcut says no bin can reach the factor, none reaches it over the
    # running median itself; and it does not claim that for a curve with a spike.
    from rundoctor.checks import grad_norm, measures

    rng = c.rng(seed)
    for n in (12, 300, 5000):
        for scatter in (0.05, 0.5, 1.0):
            values = np.exp(scatter * rng.standard_t(3, n)) * np.linspace(3.0, 1.0, n)
            if n > 100:
                values[n // 2] *= 5.0 if seed % 2 else 30.0
            bins = measures.binned(np.arange(n), values)
            width = measures.window(bins.level.size, 0.1, 5)
            base = measures.rolling_median(bins.level, width)
            spikes = bool(np.any(np.where(base > 0, bins.high / base, 0.0) >= 10.0))
            if grad_norm._below_spikes(bins, width, 10.0):
                assert not spikes
    clean = np.ones(200)
    spiky = clean.copy()
    spiky[100] = 50.0
    for values, expected in ((clean, True), (spiky, False)):
        bins = measures.binned(np.arange(200), values)
        assert grad_norm._below_spikes(bins, measures.window(200, 0.1, 5), 10.0) is expected
