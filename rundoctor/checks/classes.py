"""The number of classes C, for the checks that compare accuracy with 1/C and loss with ln C.

Where C comes from, first found wins:

1. an explicit value (``--num-classes`` or the config file);
2. the hyper-parameters stored beside the log (``run.metadata``, flattened to dotted keys):
   a count under ``num_classes``, ``n_classes``, ``num_labels``, ``nc``, ``num_class``,
   ``n_class`` or ``classes`` (any nesting, e.g. ``model.num_classes``; names compared
   case-insensitively), or a list of classes under ``classes``, ``class_names``,
   ``label_names`` or ``id2label`` (its length; a list flattened to ``classes.0``,
   ``classes.1``, ... counts its children).  For one name, a top-level key wins over a
   nested one;
3. inferred from the curves.  An untrained classifier predicts roughly uniform
   probabilities, so its cross-entropy starts at ln C and its accuracy at 1/C:

   - the first finite training loss is within 2% of ln C for an integer C in 2..1000 and
     the first value of an accuracy series is within 15% of 1/C (of the candidate C the
     one whose 1/C is nearest the accuracy); or
   - the same on a per-step log's opening (its first 2% of points, at most five) for C up
     to 5: the median of the losses and the mean of an accuracy's values, as one batch's
     accuracy is a coarse binomial draw and its loss scatters; or
   - the run logs no accuracy at all and the first loss is within 1% of ln C for C in
     2..20, a tighter window because nothing corroborates it.  Above C = 20 the 1%
     windows of neighbouring C overlap, so any loss would match one of them.

   - a model still at chance at the end: the training loss over its last quarter (median)
     within 3% of ln C (or two standard errors of that median, up to 10%, when its points
     scatter more) and an accuracy over its last quarter within 15% of 1/C, for one C in
     2..100.  A model that learned anything is right far more often than the exponential
     of minus its loss (the loss is dominated by its confident mistakes), so the two agree
     on one C only when the predictions are uniform over C classes.

   A loss that matches no C, or an accuracy that contradicts the loss, leaves C unknown:
   a wrong C is worse than none, since checks then compare against the wrong chance level.
"""

from __future__ import annotations

import ast
import json
import math
from functools import lru_cache

import numpy as np

from rundoctor.checks.base import NumClasses, RunContext
from rundoctor.checks.measures import MAD_TO_SIGMA, edge_levels, fraction_values, median, window
from rundoctor.roles import ACCURACY_ROLES, Role
from rundoctor.series import Run

# Keys holding the number of classes, most specific first.
COUNT_KEYS = ("num_classes", "n_classes", "num_labels", "nc", "num_class", "n_class", "classes")
# Keys holding the classes themselves (a list or a mapping): C is their number.
LIST_KEYS = ("classes", "class_names", "label_names", "id2label")

# Inference windows (see the module docstring).  2% on the loss absorbs the first logged
# loss being an average over the first steps of training; 15% on the accuracy absorbs an
# evaluation set whose class mix is not exactly uniform, while a noisy first epoch mean of a
# different quantity (a top-5 rate, a mean rank) rarely lands that close by chance.
LOSS_TOLERANCE = 0.02
ACCURACY_TOLERANCE = 0.15
MAX_INFERRED = 1000
LOSS_ONLY_TOLERANCE = 0.01
MAX_LOSS_ONLY = 20
# Extreme classification reaches millions of labels; a larger count is not a class count.
MAX_FROM_METADATA = 10_000_000
# A settled loss is a median over many steps, of a model that may still learn a little:
# 3% of ln C (a loss further below it is on its way down, as before a grokking jump), or
# two standard errors of that median when its points scatter more (a handful of noisy
# epochs), never more than 10% (a loss that far under ln C has learned); above C = 100 the
# windows of neighbouring C overlap and no accuracy tells them apart.
# The opening of a per-step log: its first 2% of points, at most five (their median and mean
# halve a single batch's scatter).  Training may already have moved the loss a few percent
# in five steps, so only C up to 5 is read there: ln C of neighbouring C then lie 16% or more
# apart (ln 9 and ln 10 lie 5% apart, and an opening a little low would name 9).
OPENING_SHARE = 0.02
OPENING_POINTS = 5
MAX_OPENING = 5
SETTLED_LOSS_TOLERANCE = 0.03
SETTLED_LOSS_MAX_TOLERANCE = 0.10
MAX_SETTLED = 100


def resolve_num_classes(
    run: Run | RunContext, explicit: int | None = None, explicit_source: str = "--num-classes"
) -> NumClasses | None:
    """C from the explicit value, the run's hyper-parameters, or the curves; None if unknown.

    Given the run's context (as the engine does), the curves read are those the checks read
    after it, not read again.  Raises ValueError for an explicit value below 2 (a usage
    error, not a property of the log).
    """
    if explicit is not None:
        if explicit < 2:
            raise ValueError(f"{explicit_source} must be at least 2, got {explicit}")
        return NumClasses(int(explicit), explicit_source)
    ctx = run if isinstance(run, RunContext) else RunContext(run)
    return from_metadata(ctx.run.metadata) or inferred(ctx)


def from_metadata(metadata: dict[str, str]) -> NumClasses | None:
    """C from hyper-parameters flattened to dotted keys (see the module docstring)."""
    entries = [(key, key.lower().replace("-", "_").split(".")) for key in metadata]
    # By the order of the key lists above; for one name, top-level keys before nested ones.
    entries.sort(key=lambda entry: len(entry[1]))
    for names, read in ((COUNT_KEYS, _count), (LIST_KEYS, _length)):
        for name in names:
            for key, parts in entries:
                if parts[-1] != name:
                    continue
                value = read(metadata[key])
                if value is not None and 2 <= value <= MAX_FROM_METADATA:
                    return NumClasses(value, f"metadata: {key}")
    for name in LIST_KEYS:
        counted = _children(entries, name)
        if counted is not None:
            return counted
    return None


def inferred(ctx: RunContext) -> NumClasses | None:
    """C from the first training loss, corroborated by the first accuracy when one is logged, or
    from a loss and an accuracy that end at chance together."""
    loss_tag = ctx.primary(Role.TRAIN_LOSS)
    if loss_tag is None:
        return None
    loss = ctx.curve(loss_tag).finite
    if len(loss) == 0 or not loss.values[0] > 0:
        return None
    first_loss = float(loss.values[0])
    series = [
        (tag, ctx.measure(fraction_values, ctx.curve(tag).finite.values)) for tag in ctx.tags(*ACCURACY_ROLES)
    ]
    accuracies = [(tag, float(values[0])) for tag, values in series if values.size]
    if not accuracies:
        candidates = _classes_near(first_loss, LOSS_ONLY_TOLERANCE, MAX_LOSS_ONLY)
        if candidates.size != 1:
            return None
        classes = int(candidates[0])
        return NumClasses(classes, f"inferred: initial loss {first_loss:.4g} ≈ ln {classes}")
    return (
        _from_first_points(first_loss, accuracies)
        or _from_opening(loss.values, series)
        or _from_settled_chance(loss.values, series)
    )


def _from_opening(loss: np.ndarray, series: list[tuple[str, np.ndarray]]) -> NumClasses | None:
    """C from the opening points of a per-step log (see the module docstring): the median of
    the loss's first points near ln C and the mean of an accuracy's first points near 1/C.
    One batch's accuracy is a coarse binomial draw (0, 1/32, 2/32, ... for batches of 32), and
    one batch's loss scatters: a few of each, read before training has moved them, say more."""
    count = min(OPENING_POINTS, round(OPENING_SHARE * loss.size))
    if count < 2:
        return None
    accuracies = [(tag, float(np.mean(values[:count]))) for tag, values in series if values.size >= count]
    found = _from_first_points(median(loss[:count]), accuracies, f"median of the first {count} losses",
                               f"mean of the first {count} of")
    return found if found is not None and found.value <= MAX_OPENING else None


def _from_first_points(
    first_loss: float,
    accuracies: list[tuple[str, float]],
    loss_words: str = "initial loss",
    accuracy_words: str = "first",
) -> NumClasses | None:
    """C from the first loss near ln C and a first accuracy near 1/C (see the module docstring);
    the words say what was read, for the source."""
    candidates = _classes_near(first_loss, LOSS_TOLERANCE, MAX_INFERRED)
    best: tuple[float, int, str, float] | None = None
    for tag, first_accuracy in accuracies:
        for classes in candidates:
            error = abs(first_accuracy * classes - 1.0)
            if error <= ACCURACY_TOLERANCE and (best is None or error < best[0]):
                best = (error, int(classes), tag, first_accuracy)
    if best is None:
        return None
    _, classes, tag, first_accuracy = best
    return NumClasses(
        classes,
        f"inferred: {loss_words} {first_loss:.4g} ≈ ln {classes}, "
        f"{accuracy_words} {tag} {first_accuracy:.3g} ≈ 1/{classes}",
    )


def _from_settled_chance(loss: np.ndarray, series: list[tuple[str, np.ndarray]]) -> NumClasses | None:
    """C from a run still at chance at its end: the last quarter's loss near ln C and an
    accuracy's last quarter near 1/C, for the same C (see the module docstring)."""
    if loss.size < 8:
        return None
    tail = loss[-window(loss.size, 0.25) :]  # the last quarter, as edge_levels reads it
    settled = median(tail)
    # the standard error of a median: 1.2533 sigma / sqrt(n), sigma from the MAD
    error = 1.2533 * MAD_TO_SIGMA * median(np.abs(tail - settled)) / math.sqrt(tail.size)
    tolerance = min(max(SETTLED_LOSS_TOLERANCE, 2.0 * error / settled), SETTLED_LOSS_MAX_TOLERANCE) if settled > 0 else 0.0
    candidates = _classes_near(settled, tolerance, MAX_SETTLED)
    if candidates.size == 0:
        return None
    for tag, values in series:
        if values.size < 4:
            continue
        accuracy = edge_levels(values, 0.25, 1)[1]
        errors = np.abs(accuracy * candidates - 1.0)
        if float(errors.min()) <= ACCURACY_TOLERANCE:
            classes = int(candidates[int(np.argmin(errors))])
            return NumClasses(
                classes,
                f"inferred: settled loss {settled:.4g} ≈ ln {classes}, {tag} at its end {accuracy:.3g} ≈ 1/{classes}",
            )
    return None


def _classes_near(loss: float, tolerance: float, largest: int) -> np.ndarray:
    """Every C in 2..largest whose ln C is within ``tolerance`` (relative) of ``loss``."""
    classes, logs = _class_logs(largest)
    return classes[np.abs(loss - logs) <= tolerance * logs]


@lru_cache(maxsize=4)
def _class_logs(largest: int) -> tuple[np.ndarray, np.ndarray]:
    """(2..largest, their logarithms), read-only: every run of a sweep asks for the same ones."""
    classes = np.arange(2, largest + 1)
    logs = np.log(classes)
    classes.flags.writeable = logs.flags.writeable = False
    return classes, logs


def _count(text: str) -> int | None:
    """An integer count written as ``10`` or ``10.0``; a list counts its items."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return _length(text)
    if math.isfinite(number) and number == int(number):
        return int(number)
    return None


def _length(text: str) -> int | None:
    """The number of items of a list or mapping written as JSON, Python or YAML flow style."""
    text = text.strip()
    if (text[:1], text[-1:]) not in (("[", "]"), ("{", "}"), ("(", ")")):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, (list, tuple, dict)):
            return len(parsed)
    inner = text[1:-1]
    return len([item for item in inner.split(",") if item.strip()])


def _children(entries: list[tuple[str, list[str]]], name: str) -> NumClasses | None:
    """A list flattened to ``<prefix>.<name>.0``, ``<prefix>.<name>.1``: count its items."""
    children: dict[str, set[str]] = {}
    for key, parts in entries:
        if len(parts) >= 2 and parts[-2] == name:
            parent = key.rsplit(".", 1)[0]
            children.setdefault(parent, set()).add(parts[-1])
    for parent, items in sorted(children.items(), key=lambda item: item[0].count(".")):
        if len(items) >= 2:
            return NumClasses(len(items), f"metadata: {parent} ({len(items)} entries)")
    return None
