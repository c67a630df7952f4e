"""Seeded curve builders shared by the check tests, and a run factory.

Each builder returns values for ``steps``; ``make_run`` turns ``{tag: (steps, values)}`` into
a :class:`Run` with roles assigned, so a test reads like the curve it describes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rundoctor import roles
from rundoctor.checks.base import Check, NumClasses, RunContext
from rundoctor.findings import Finding
from rundoctor.series import Histogram, Run, RunBuilder


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def decay(n: int, start: float = 2.0, end: float = 0.1, rate: float = 5.0) -> np.ndarray:
    """Exponential decay from ``start`` toward ``end`` over ``n`` points."""
    t = np.linspace(0.0, 1.0, n)
    return end + (start - end) * np.exp(-rate * t)


def rise(n: int, start: float = 0.3, end: float = 0.95, rate: float = 5.0) -> np.ndarray:
    """An accuracy-like curve rising from ``start`` to ``end``."""
    t = np.linspace(0.0, 1.0, n)
    return end - (end - start) * np.exp(-rate * t)


def noisy(values: np.ndarray, relative: float = 0.02, seed: int = 0) -> np.ndarray:
    """Multiplicative Gaussian noise of ``relative`` standard deviation."""
    return values * (1.0 + relative * rng(seed).standard_normal(values.size))


def plateau(n: int, start: float = 2.0, level: float = 0.5, fall_fraction: float = 0.2) -> np.ndarray:
    """Falls to ``level`` within ``fall_fraction`` of the run, then stays flat."""
    t = np.linspace(0.0, 1.0, n)
    return level + (start - level) * np.exp(-t / (fall_fraction / 5.0))


def with_spikes(values: np.ndarray, at: Sequence[int], height: float = 5.0, width: int = 3) -> np.ndarray:
    out = values.copy()
    for index in at:
        out[index : index + width] *= height
    return out


def with_nan(values: np.ndarray, at: int, until: int | None = None) -> np.ndarray:
    out = values.copy()
    out[at : (until if until is not None else values.size)] = np.nan
    return out


def diverge(n: int, start: float = 2.0, turn: float = 0.6, factor: float = 50.0) -> np.ndarray:
    """Decays, then from ``turn`` (fraction of the run) grows exponentially to ``factor`` x."""
    values = decay(n, start=start, end=0.3)
    k = int(n * turn)
    values[k:] = values[k] * np.exp(np.linspace(0.0, np.log(factor), n - k))
    return values


Series = tuple[Sequence[int] | np.ndarray, Sequence[float] | np.ndarray]


def make_run(
    series: Mapping[str, Series],
    *,
    run_id: str = "run",
    histograms: Mapping[str, list[Histogram]] | None = None,
    role_overrides: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Run:
    builder = RunBuilder()
    for tag, (steps, values) in series.items():
        builder.add(tag, steps, values)
    run = builder.build(
        id=run_id,
        path=run_id,
        format="synthetic",
        sources=[run_id],
        histograms=dict(histograms or {}),
        metadata=dict(metadata or {}),
    )
    overrides = roles.parse_overrides(dict(role_overrides)) if role_overrides else None
    return roles.assign(run, overrides)


def context(run: Run, num_classes: int | None = None) -> RunContext:
    known = NumClasses(num_classes, "test") if num_classes else None
    return RunContext(run, num_classes=known)


def steps(n: int, every: int = 1, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n * every, every, dtype=np.int64)


# Series every check must survive without raising.
HOSTILE: dict[str, Series] = {
    "empty": (np.empty(0, np.int64), np.empty(0)),
    "one point": ([0], [1.0]),
    "constant": (np.arange(100), np.full(100, 0.7)),
    "all nan": (np.arange(50), np.full(50, np.nan)),
    "unsorted": (rng(1).permutation(100), decay(100)),
    "duplicated steps": (np.repeat(np.arange(50), 2), np.repeat(decay(50), 2)),
    "huge": (np.arange(100), np.full(100, 1e30)),
    "inf": (np.arange(20), np.where(np.arange(20) % 3 == 0, np.inf, 1.0)),
}


def overfit(n: int, turn: float = 0.4, low: float = 0.5, rise: float = 0.5, start: float = 2.0) -> np.ndarray:
    """A validation loss falling from ``start`` to ``low`` at ``turn`` (a fraction of the run),
    then climbing linearly to ``low * (1 + rise)`` at the end."""
    t = np.linspace(0.0, 1.0, n)
    falling = low + (start - low) * (1.0 - np.minimum(t / turn, 1.0)) ** 2
    climbing = low * (1.0 + rise * np.clip((t - turn) / (1.0 - turn), 0.0, None))
    return np.where(t < turn, falling, climbing)


def restarted(*ranges: tuple[int, int], every: int = 1) -> np.ndarray:
    """Steps of several starts appended to one log: ``restarted((0, 300), (0, 1000))``."""
    return np.concatenate([np.arange(first, last, every, dtype=np.int64) for first, last in ranges])


def jump(n: int, low: float = 0.1, high: float = 0.9, at: float = 0.6, width: float = 0.02) -> np.ndarray:
    """An accuracy flat at ``low`` that jumps to ``high`` at ``at`` (a fraction of the run),
    over ``width`` of the run: the shape of delayed generalization."""
    t = np.linspace(0.0, 1.0, n)
    return low + (high - low) / (1.0 + np.exp(-(t - at) / (width / 4.0)))


def probability_histogram(
    step: int, centre: float, spread: float, count: int = 1000, seed: int = 0
) -> Histogram:
    """A histogram of ``count`` predicted probabilities around ``centre`` (clipped to [0, 1]),
    in 20 buckets of 0.05 as TensorBoard would log them."""
    values = np.clip(centre + spread * rng(seed).standard_normal(count), 0.0, 1.0)
    limits = np.linspace(0.05, 1.0, 20)
    counts = np.bincount(np.minimum((values / 0.05).astype(int), 19), minlength=20).astype(np.float64)
    return Histogram(step, float("nan"), limits, counts, float(values.min()), float(values.max()))


def real_run(path: Path) -> Run:
    """The run read from ``path`` itself (a log file, or a directory of event files), not its
    neighbours: a detectron2 ``output/`` holds both event files and ``metrics.json``."""
    found = [run for run in real_runs(path.parent, path.name) if Path(run.path).resolve() == path.resolve()]
    assert len(found) == 1, [run.path for run in real_runs(path.parent, path.name)]
    return found[0]


# Real runs (under ../shared/real_logs) that INVENTORY.md reads as healthy: no check may
# give them a warning or an error.
HEALTHY_REAL_RUNS = (
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/runs/run4",
    "AguLeon__LoRA_RoBERTa_AGNews__hf-trainer-lora-lr-sweep/results/checkpoint-1200/trainer_state.json",
    "Asad-Ismail__SMN__detectron2-maskrcnn/output",
    "Kevindic0214__detectron2_training__detectron2-maskrcnn-short/output",
    "1WangXT__Pipeline_Defect_Recognition__yolov5-transient-nan/runs/train/exp",
    "Leaferd6712__Australian-Bills-Object-Detection-YOLOv5__yolov5-resumed-multifile/runs/train/exp",
    "AstilePeter__Raspberry-Quince-Detector__yolov5/runs/train/exp",
    "DeepPicEI__Elderly-fall-detection__ultralytics-yolo11/runs/train/exp",
    "0Xero7__slm_training__lightning-lm-long/lightning_logs/version_0/metrics.csv",
    "NijatZeynalov__mT5-based-azerbaijani-news-summarize__hf-trainer-mt5-long/trainer_state.json",
    "paulohenriquecrs__RoBERTa_SEQ_CLS_LoRA_Portuguese__hf-trainer-lora/results/checkpoint-8610/trainer_state.json",
    "boostcampaitech7__level2-objectdetection-cv-04__mmdet2-cascade-logjson/mmdetection/work_dirs/backbone_swin_rfp4step",
    "boostcampaitech6__level2-objectdetection-cv-02__mmengine-codetr-scalars/work_dirs/co-detr",
)


@functools.cache
def real_runs(root: Path, *relative: str) -> tuple[Run, ...]:
    """The runs under ``root / path`` for each path, read once per test session."""
    from rundoctor.discover import load_runs

    runs, errors = load_runs([root / path for path in relative])
    assert not errors, errors
    return tuple(runs)


def run_check(check: Check[Any], run: Run, params: Any = None) -> list[Finding]:
    """What ``check`` finds in ``run``, with the number of classes resolved as the CLI does."""
    from rundoctor.checks.classes import resolve_num_classes

    if check.missing(run):
        return []
    ctx = RunContext(run, num_classes=resolve_num_classes(run))
    return list(check.detect(check, ctx, params if params is not None else check.default_params()))


def linear(n: int, start: float = 2.0, end: float = 1.8) -> np.ndarray:
    """A straight line from ``start`` to ``end``: the loss of a learning rate far too low."""
    return np.linspace(start, end, n)


def find(
    check: Check[Any], series: Mapping[str, Series], num_classes: int | None = None, **params: Any
) -> list[Finding]:
    """What ``check`` finds in a run made of ``series``, with ``params`` overriding defaults."""
    run = make_run(series)
    chosen = check.make_params(params) if params else check.default_params()
    return list(check.detect(check, context(run, num_classes), chosen))


def assert_well_formed(finding: Finding) -> None:
    """A finding any reporter can print: one-line message, JSON-able evidence, ordered steps."""
    import json

    assert finding.message and "\n" not in finding.message
    json.dumps(dict(finding.evidence), allow_nan=False)
    if finding.first_step is not None and finding.last_step is not None:
        assert finding.first_step <= finding.last_step


def heavy_tailed(
    values: np.ndarray, spread: float = 0.5, outliers: float = 0.01, seed: int = 0
) -> np.ndarray:
    """Per-step losses of small batches on noisy labels around a trend ``values``.

    Lognormal multiplicative noise (``spread`` the sigma of its log, skewed upwards like a
    real per-batch cross-entropy) plus a share ``outliers`` of batches 10-50x the trend:
    a batch of 4 holding a mislabelled example.
    """
    generator = rng(seed)
    noise = np.exp(spread * generator.standard_normal(values.size) - spread**2 / 2.0)
    out = values * noise
    hit = generator.random(values.size) < outliers
    out[hit] = values[hit] * generator.uniform(10.0, 50.0, int(hit.sum()))
    return out


def epoch_running_mean(values: np.ndarray, steps_per_epoch: int) -> np.ndarray:
    """What Keras and the Hugging Face Trainer log: the mean of the losses since the epoch
    began, restarting every ``steps_per_epoch`` points (smooth and autocorrelated)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    for start in range(0, values.size, steps_per_epoch):
        part = values[start : start + steps_per_epoch]
        out[start : start + part.size] = np.cumsum(part) / np.arange(1, part.size + 1)
    return out


def step_decay(n: int, start: float = 2.0, floors: Sequence[float] = (0.8, 0.5, 0.35), rate: float = 25.0) -> np.ndarray:
    """A loss under a step-decay schedule: it falls towards each ``floors`` level in turn,
    flattening before each learning-rate drop and falling again after it."""
    t = np.linspace(0.0, 1.0, n)
    phases = len(floors)
    out = np.empty(n)
    level = start
    for k, floor in enumerate(floors):
        inside = (t >= k / phases) & (t <= (k + 1) / phases)
        local = t[inside] - k / phases
        out[inside] = floor + (level - floor) * np.exp(-rate * local)
        level = float(out[inside][-1])
    return out
