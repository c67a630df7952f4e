"""What a classifier's accuracy and cross-entropy say about each other, for the metric checks.

Accuracy counts arg-max hits; cross-entropy measures the probability given to the right
class.  Each bounds the other, and those bounds separate a model that learned from one
that did not without any threshold tuned to a particular log:

- A model that ignores its input predicts the class prior p; its cross-entropy is the
  prior's entropy H(p), and its accuracy is the majority share a = max p.  For a given a,
  H(p) is smallest when the prior is as concentrated as a allows
  (:func:`min_prior_entropy`), so a loss well below that floor means the outputs carry
  information about the input: the model is not a majority-class predictor, however
  constant its accuracy.
- A misclassified example gives its right class at most probability 1/2 (another class
  has at least as much), so it costs at least ln 2 nats: a mean cross-entropy L allows an
  accuracy no lower than 1 - L / ln 2 (:func:`min_accuracy_for_loss`).  An accuracy read
  far below that bound is a broken metric, not a bad model.

No constant prediction beats the prior's entropy on the data it was fitted to, so a
training loss far below it rules a prior predictor out whatever a validation loss says
(:func:`train_loss_level`); a fixed evaluation set of n examples makes every accuracy a
whole multiple of 1/n, which tells how many examples a level near 1 leaves out
(:func:`evaluation_size`).

Per-class and class-balanced metrics (roles ``per_class_metric``, ``balanced_metric``) are
the direct evidence: :func:`class_metric_evidence` sorts them into learned and not learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rundoctor.checks import measures
from rundoctor.checks.base import RunContext
from rundoctor.roles import Role

LN2 = math.log(2.0)


def min_prior_entropy(majority: float) -> float:
    """The lowest entropy (nats) of a class prior whose largest class has share ``majority``.

    As many classes as fit take ``majority`` each and one class the remainder: for
    majority >= 1/2 this is the binary entropy h(majority); it is never below -ln(majority).
    """
    a = min(max(float(majority), 1e-12), 1.0)
    if a >= 1.0:
        return 0.0
    full = math.floor(1.0 / a)
    rest = max(0.0, 1.0 - full * a)
    entropy = -full * a * math.log(a)
    if rest > 1e-12:
        entropy -= rest * math.log(rest)
    return float(entropy)


def min_accuracy_for_loss(loss: float) -> float:
    """The lowest accuracy a mean cross-entropy ``loss`` (nats) allows: 1 - loss / ln 2.

    Each error costs at least ln 2, so the error rate is at most loss / ln 2.  Negative
    (no bound) for a loss of ln 2 or more.
    """
    return 1.0 - float(loss) / LN2


# Clip a tail at this quantile before averaging: a cross-entropy is a mean, and the per-batch
# losses of small batches are skewed (a batch of 4 holding one minority example costs 15x
# the median one), so a median misses the level; one diverging batch should not set it.
CLIP_QUANTILE = 0.99


def mean_loss(values: np.ndarray) -> float:
    """The mean of a cross-entropy curve's values, its top 1% clipped: the level to compare
    with an entropy (a median of skewed per-batch losses sits far below it)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(np.minimum(values, measures.quantile(values, CLIP_QUANTILE)).mean())


def still_falling(values: np.ndarray, min_fall: float, sigmas: float = 3.0) -> bool:
    """Whether a loss still falls: the median of its last quarter is ``min_fall`` (relative)
    and ``sigmas`` noise sigmas of such a median below the median of its first quarter.

    Quarter medians ignore the heavy-tailed batches of a per-step loss; the noise is the
    MAD of point-to-point changes scaled to a median of a quarter of the points (a running
    average's autocorrelation makes it smaller, so doubt leans towards "falling", which
    every caller reads as the milder verdict).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 4:
        return False
    width = measures.window(values.size, 0.25, 1)
    first, last = measures.edge_levels(values, 0.25, 1)
    noise = measures.noise_sigma(values) * math.sqrt(math.pi / 2.0) / math.sqrt(width)
    return bool(first > 0 and (first - last) >= max(min_fall * first, sigmas * noise))


def train_loss_level(
    ctx: RunContext, tag: str, first: float, last: float, tail_fraction: float = 0.25
) -> tuple[str, float] | None:
    """(tag, level) of the main training loss over the final ``tail_fraction`` of the stretch
    where the series ``tag`` went from step ``first`` to step ``last``; None without one.

    The level is :func:`mean_loss`: a prior predictor's mean training cross-entropy is the
    entropy of the training prior (Gibbs: no constant prediction does better on the data it
    was fitted to), so a training loss far below :func:`min_prior_entropy` of the majority
    share shows outputs that depend on the input, whatever a validation loss says (an
    overfit model's validation loss rises above the prior's entropy while its accuracy
    stays high and constant).
    """
    loss_tag = ctx.primary(Role.TRAIN_LOSS)
    if loss_tag is None:
        return None
    loss = ctx.curve(loss_tag).finite
    low, high = measures.steps_on_axis_of_tag(ctx, tag, loss_tag, np.array([first, last]))
    values = loss.values[(loss.steps >= low) & (loss.steps <= high)]
    if values.size < 2:
        return None
    return loss_tag, mean_loss(values[-measures.window(values.size, tail_fraction, 1) :])


# Counting an evaluation set: a logged accuracy is k / n for the set's size n; values are
# logged as float32 (about 7 significant digits) or rounded, so k may be off by a hundredth.
COUNT_TOLERANCE = 0.01
FLOAT32_PRECISION = 1e-6
MIN_DISTINCT_FOR_COUNT = 4


def evaluation_size(values: np.ndarray, largest: int = 20_000) -> int | None:
    """The smallest n (up to ``largest``) for which every accuracy in ``values`` is a whole
    number of examples out of n: the size of a fixed evaluation set, or None.

    Needs ``MIN_DISTINCT_FOR_COUNT`` distinct values in (0, 1) so that a small n does not fit
    by chance; an accuracy averaged over batches of different sizes (Keras' running mean)
    fits no n and gives None.
    """
    values = np.asarray(values, dtype=np.float64)
    distinct = measures.distinct(values[np.isfinite(values) & (values > 0.0) & (values < 1.0)])
    # n examples give at most n - 1 accuracies strictly between 0 and 1: a per-step accuracy
    # with thousands of distinct values is no fixed set's count (and would cost n x values).
    if distinct.size < MIN_DISTINCT_FOR_COUNT or distinct.size > largest:
        return None
    sizes = np.arange(2, largest + 1, dtype=np.float64)
    # Sizes that fit one value first (all but a few percent fail at once), then a few, then a
    # sample, then the survivors against all of them in blocks: memory stays bounded by sizes x
    # sample whatever the number of values, and a size is kept only if it fits every value.
    few = distinct[np.linspace(0, distinct.size - 1, min(distinct.size, 8)).astype(int)]
    sample = distinct[np.linspace(0, distinct.size - 1, min(distinct.size, 64)).astype(int)]
    counts = sizes * few[0]
    sizes = sizes[np.abs(counts - np.round(counts)) <= COUNT_TOLERANCE + FLOAT32_PRECISION * sizes]
    for chunk in (few, sample, *np.array_split(distinct, max(1, distinct.size // 256))):
        if sizes.size == 0:
            return None
        counts = np.outer(sizes, chunk)
        slack = COUNT_TOLERANCE + FLOAT32_PRECISION * sizes
        sizes = sizes[np.all(np.abs(counts - np.round(counts)) <= slack[:, None], axis=1)]
    return int(sizes[0]) if sizes.size else None


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class and balanced metrics by verdict, each with its final median level."""

    unlearned: list[tuple[str, float]]
    learned: list[tuple[str, float]]


def class_metric_evidence(
    ctx: RunContext, unlearned_score: float, balanced_margin: float, tail_fraction: float
) -> ClassMetrics:
    """Sort the run's per-class and balanced metrics into learned and not learned.

    A per-class recall or F1 whose final median is at most ``unlearned_score`` is a class
    never predicted; a balanced metric (balanced accuracy, macro recall or F1) within
    ``balanced_margin`` of its chance level (1/C, or 0.5 with C unknown) is a model that
    predicts one class.  Medians of the final ``tail_fraction`` of each series, so one
    lucky evaluation decides nothing.
    """
    chance = 1.0 / ctx.num_classes.value if ctx.num_classes else 0.5
    unlearned: list[tuple[str, float]] = []
    learned: list[tuple[str, float]] = []
    for role, limit in ((Role.PER_CLASS_METRIC, unlearned_score), (Role.BALANCED_METRIC, chance + balanced_margin)):
        for tag in ctx.tags(role):
            values = ctx.measure(measures.fraction_values, ctx.curve(tag).finite.values)
            if values.size == 0:
                continue  # out of range: the range check's business
            tail = measures.median(values[-measures.window(values.size, tail_fraction, 1) :])
            (unlearned if tail <= limit else learned).append((tag, tail))
    return ClassMetrics(unlearned, learned)
