"""Tag roles: what a logged series *is*, inferred from its name so checks never see spellings.

Every logging library spells "validation loss" its own way (``val_loss``, ``eval/loss``,
``validation/epoch_loss``, ``val/box_loss``...).  ``infer_role`` maps a tag name to a
:class:`Role` with the alias table below; users override it per tag (CLI ``--role
ROLE=TAG``, config ``[roles]``).  The table is rendered in the README; keep them in step.

How a name is read:

1. Lower-cased; ``epoch_`` prefixes (TF2 Keras), ``_step``/``_epoch`` suffixes (Lightning)
   and ``_vs_iterations`` are dropped; the name is split into words on ``/ _ - . : space``.
2. The split is ``val`` when a word is one of ``VAL_WORDS``, ``train`` when one of
   ``TRAIN_WORDS``, otherwise unsplit names are training series (Keras ``loss``, HF ``loss``),
   except evaluation metrics (mAP, AUC, F1, ...), which are validation series.
3. The first matching rule in ``RULES`` decides the kind.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rundoctor.series import Run


class Role(str, enum.Enum):
    """What a tag measures, which decides the checks that read it: inferred from its name by
    :func:`infer_role` unless ``--role`` or the config's ``roles`` table sets it."""

    TRAIN_LOSS = "train_loss"
    VAL_LOSS = "val_loss"
    LOSS_COMPONENT = "loss_component"  # a term of the training loss (loss_cls, box_loss)
    VAL_LOSS_COMPONENT = "val_loss_component"
    TRAIN_ACCURACY = "train_accuracy"
    VAL_ACCURACY = "val_accuracy"
    TRAIN_METRIC = "train_metric"  # other higher- or lower-is-better metrics on train data
    VAL_METRIC = "val_metric"  # evaluation metrics: mAP, AUC, F1, BLEU, WER, ...
    PER_CLASS_METRIC = "per_class_metric"  # one class's recall, precision or F1 (minority recall)
    BALANCED_METRIC = "balanced_metric"  # class-balanced summary: balanced accuracy, macro F1
    AUC = "auc"  # area under the ROC curve: 0.5 is chance, below it ranks backwards
    CONFIDENCE = "confidence"  # mean predicted probability / max softmax, as a scalar
    PROB_HISTOGRAM = "prob_histogram"  # histogram of predicted probabilities
    WEIGHT_HISTOGRAM = "weight_histogram"  # a layer's weights (kernel, embedding) over training
    BIAS_HISTOGRAM = "bias_histogram"  # a layer's biases
    GRADIENT_HISTOGRAM = "gradient_histogram"  # the gradient of a layer's weights or biases
    ACTIVATION_HISTOGRAM = "activation_histogram"  # a layer's outputs (after its activation function)
    LEARNING_RATE = "learning_rate"
    GRAD_NORM = "grad_norm"
    COUNTER = "counter"  # epoch, runtime, throughput, memory: bookkeeping, not diagnosed
    OTHER = "other"


LOSS_ROLES = (Role.TRAIN_LOSS, Role.VAL_LOSS, Role.LOSS_COMPONENT, Role.VAL_LOSS_COMPONENT)
ACCURACY_ROLES = (Role.TRAIN_ACCURACY, Role.VAL_ACCURACY)
# Per-class and class-balanced metrics: the evidence for or against a majority-class model.
CLASS_METRIC_ROLES = (Role.PER_CLASS_METRIC, Role.BALANCED_METRIC)
METRIC_ROLES = (*ACCURACY_ROLES, Role.TRAIN_METRIC, Role.VAL_METRIC, Role.AUC, *CLASS_METRIC_ROLES)

VAL_WORDS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test", "dev", "coco"})
TRAIN_WORDS = frozenset({"train", "training", "tr"})

_COUNTER_WORDS = frozenset(
    {"epoch", "epochs", "step", "global", "iteration", "iter", "time", "runtime", "timestamp",
     "eta", "flos", "memory", "mem", "throughput", "samples", "second", "per", "steps",
     "data", "speed", "it", "s", "sec", "tokens", "num", "batch", "size", "hp", "metric"}
)
_COUNTER_NAMES = re.compile(
    r"(^|_)(runtime|samples_per_second|steps_per_second|total_flos|data_time|timestamp|"
    r"memory|max_mem|eta|num_tokens|tokens_per_second|throughput|hp_metric)($|_)"
)

_CONFIDENCE = re.compile(r"confidence|max_?prob|mean_?prob|max_?softmax|pred(icted)?_?prob")

# (kind, pattern on the normalised name): first match wins.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("lr", re.compile(r"(^|_)(lr\d*|learning_rate|lr_[a-z0-9]+|pg\d+)($|_)")),
    ("grad_norm", re.compile(r"grad(ient)?_?norm|(^|_)gnorm($|_)")),
    ("confidence", _CONFIDENCE),
    # Losses before per-class metrics: ``loss_cls0`` is a term of the loss, not a class metric.
    ("loss", re.compile(r"(^|_)(loss|losses|nll|xent|cross_entropy|mse|mae_loss)($|_)|loss")),
    ("balanced", re.compile(
        r"balanced|(^|_)(macro|bal_acc|mean_class_acc\w*|mean_per_class\w*|class_mean_acc\w*)($|_)"
    )),
    ("per_class", re.compile(r"per_class|(^|_)(class|cls)_?\d+($|_)|(^|_)(minority|majority|positive|negative)_"
                             r"(recall|precision|f1|acc|accuracy|sensitivity|specificity)($|_)")),
    ("auc", re.compile(r"(^|_)(auc|auroc|roc_auc|rocauc|auc_roc)($|_)")),
    # Ranks of the right answer (``acc_mean_pos``, ``mean_rank``, MRR) are not accuracies.
    ("metric", re.compile(r"(^|_)(mean_pos|mean_position|mean_rank|median_rank|rank|mrr)($|_)")),
    # Error rates (``top1_err``, ``val/error``) fall as the model learns: a metric, not an accuracy.
    ("metric", re.compile(r"(^|_)(err|error|errors|error_rate|err_rate)($|_)")),
    ("accuracy", re.compile(r"(^|_)(acc|accuracy|acc\d|top_?[15]|top[15]_acc)($|_)|accuracy")),
    ("metric", re.compile(
        r"(^|_)(map|map\d+|map_\d+|ap|ap\d+|auc|roc_auc|auroc|f1|fscore|precision|recall|iou|miou|"
        r"dice|bleu|rouge\w*|wer|cer|perplexity|ppl|mae|rmse|r2|ndcg|psnr|ssim|fid|score)($|_)"
    )),
)

# Loss names whose words beyond the split and "loss" name a term of a larger loss.
_LOSS_PLAIN_WORDS = frozenset({"loss", "total", "train", "training", "val", "valid", "validation",
                               "eval", "evaluation", "test", "dev", "avg", "mean", "epoch",
                               "step", "overall", "running", "smoothed", "tr", "objective", "full"})


def normalise(tag: str) -> list[str]:
    """Words of a tag name, with library decorations removed."""
    name = tag.lower()
    name = re.sub(r"(^|/)epoch_", r"\1", name)  # TF2 Keras: epoch_loss
    name = re.sub(r"_vs_iterations$", "", name)  # TF2 Keras evaluation_*_vs_iterations
    name = re.sub(r"_(step|epoch)$", "", name)  # Lightning: train_loss_step / _epoch
    name = name.replace("(b)", "").replace("(m)", "")  # Ultralytics metrics/mAP50(B)
    return [word for word in re.split(r"[/_\-\s.:()\[\]]+", name) if word]


def words(tag: str) -> set[str]:
    """The set of words of a tag (see :func:`normalise`): what two related tags share."""
    return set(normalise(tag))


def series_name(tag: str) -> str:
    """A tag's name without logging decorations: Lightning's ``loss_cls_step`` and
    ``loss_cls_epoch`` are one series, ``loss_cls``, logged twice."""
    return "_".join(normalise(tag))


# Metric names (words of the tag) for which smaller is better; every other metric and every
# accuracy is better when larger.
LOWER_IS_BETTER = frozenset(
    {"wer", "cer", "ter", "perplexity", "ppl", "mae", "mse", "rmse", "fid", "error", "err", "loss", "nll", "eer",
     "rank", "pos", "position",
     # regression errors, divergences and distances
     "mape", "smape", "msle", "rmsle", "nmse", "mad", "kl", "kld", "divergence", "distance", "dist", "edit",
     "hausdorff", "chamfer", "epe", "ade", "fde",
     # calibration and scoring rules, bits, perceptual distance, detection error rates
     "brier", "ece", "mce", "logloss", "bpd", "bpc", "bpb", "lpips", "fpr", "fnr", "far", "frr", "hter",
     "missrate", "cost", "regret"}
)


def lower_is_better(tag: str) -> bool:
    """Whether a smaller value of the metric ``tag`` is an improvement (WER, perplexity, FID)."""
    return bool(LOWER_IS_BETTER.intersection(normalise(tag)))


def higher_is_better(tag: str) -> bool:
    """Whether a larger value of the metric ``tag`` is an improvement (mAP, accuracy, BLEU)."""
    return not lower_is_better(tag)


def split_free_name(tag: str) -> str:
    """A tag's name without its split words: ``val/box_loss`` and ``train/box_loss`` -> ``box_loss``."""
    return "_".join(word for word in normalise(tag) if word not in VAL_WORDS and word not in TRAIN_WORDS)


def same_term(a: str, b: str) -> bool:
    """Whether two tags name the same series on different splits (``val/box_loss`` and
    ``train/box_loss``; Lightning's ``loss_cls_step`` and ``val_loss_cls_epoch``)."""
    return split_free_name(a) == split_free_name(b)


def series_groups(tags: Iterable[str]) -> list[list[str]]:
    """``tags`` grouped by series, in first-logged order: Lightning's ``loss_cls_step`` and
    ``loss_cls_epoch`` are one series, ``loss_cls``, logged twice (see :func:`series_name`)."""
    groups: dict[str, list[str]] = {}
    for tag in tags:
        groups.setdefault(series_name(tag), []).append(tag)
    return list(groups.values())


# Words of an accuracy-like name that say it is an accuracy, not which one it is.
_ACCURACY_WORD = re.compile(r"^(acc\d*|accuracy|top\d+|top)$")


def shared_words(metric: str, loss: str) -> int:
    """How many name words a metric shares with a loss, beyond the words that only say it is an
    accuracy: ``eval_g0_accuracy`` shares two with ``eval_g0_loss``, one with ``eval_g1_loss``."""
    own = {word for word in words(metric) if not _ACCURACY_WORD.match(word)}
    return len(own & words(loss))


# Optimizers a name can mention (Lightning's ``lr-AdamW``, ``optimizer: SGD``): adaptive ones
# by any of these, plain SGD by "sgd".
ADAPTIVE_OPTIMIZERS = ("adam", "rmsprop", "adagrad", "adafactor", "lion", "lamb")


def optimizer_named(names: Iterable[str]) -> str:
    """``"SGD"``, ``"adaptive"`` or ``"unknown"``: the optimizer a learning rate's tag (Lightning's
    ``lr-SGD``, ``lr-AdamW``) or hyper-parameter values (``optimizer: SGD``) name."""
    text = " ".join(names).lower()
    adaptive = any(word in text for word in ADAPTIVE_OPTIMIZERS)
    return "SGD" if "sgd" in text and not adaptive else ("adaptive" if adaptive else "unknown")


# Decorations :func:`normalise` drops or reads, as words of the raw name.
_DECORATION_WORDS = frozenset({"epoch", "step", "vs", "iterations", "b", "m"})


def meaningful_word(word: str) -> bool:
    """Whether a word of a tag name tells the checks something its role does not: the split
    (``val``, ``train``), a logging decoration (``_step``, ``epoch_``), a metric's direction
    (``wer``, ``loss``), an optimizer (``AdamW``), or what a histogram holds (``weight``,
    ``grad``, ``kernel_0``, ``relu``, ``bn1``: see :func:`histogram_name`).  Every other word only tells tags apart,
    so renaming it consistently across a run, with each tag's role set by ``--role``,
    changes no finding."""
    word = word.lower()
    return (
        word in HISTOGRAM_WORDS
        or word.isdigit()  # Keras' kernel_0, PyTorch's layers.0: positions the histogram rules read
        or bool(_FUNCTION.match(word) or re.fullmatch(r"(bn|ln|norm|l)\d+", word))
        or word in VAL_WORDS
        or word in TRAIN_WORDS
        or word in _DECORATION_WORDS
        or word in LOWER_IS_BETTER
        or "sgd" in word
        or any(name in word for name in ADAPTIVE_OPTIMIZERS)
    )


def infer_role(tag: str, *, histogram: bool = False) -> Role:
    """The role a tag's name suggests; :attr:`Role.OTHER` when no rule matches, so that only the
    checks that read every tag (non-finite, duplicate-steps) see it."""
    words = normalise(tag)
    joined = "_".join(words)
    if histogram:
        return _histogram_role(tag, joined)
    split = "val" if VAL_WORDS.intersection(words) else "train" if TRAIN_WORDS.intersection(words) else None
    unsplit = set(words) - VAL_WORDS - TRAIN_WORDS
    if _COUNTER_NAMES.search(joined) or (unsplit and unsplit <= _COUNTER_WORDS):
        return Role.COUNTER
    for kind, pattern in RULES:
        if not pattern.search(joined):
            continue
        if kind == "lr":
            return Role.LEARNING_RATE
        if kind == "grad_norm":
            return Role.GRAD_NORM
        if kind == "confidence":
            return Role.CONFIDENCE
        if kind == "per_class":
            return Role.PER_CLASS_METRIC
        if kind == "balanced":
            return Role.BALANCED_METRIC
        if kind == "auc":
            return Role.AUC
        if kind == "loss":
            component = any(word not in _LOSS_PLAIN_WORDS for word in words)
            if split == "val":
                return Role.VAL_LOSS_COMPONENT if component else Role.VAL_LOSS
            return Role.LOSS_COMPONENT if component else Role.TRAIN_LOSS
        if kind == "accuracy":
            return Role.VAL_ACCURACY if split == "val" else Role.TRAIN_ACCURACY
        return Role.TRAIN_METRIC if split == "train" else Role.VAL_METRIC
    return Role.OTHER


# -- histograms: which layer's weights, biases, gradients or activations a tag holds ----------
#
# PyTorch users log ``fc1.weight`` (``named_parameters``), its gradient as ``fc1.weight.grad``,
# ``grad/fc1.weight`` or ``gradients/fc1/weight``, and activations from forward hooks as
# ``activations/fc1`` or ``fc1/relu``; Keras' TensorBoard callback logs ``dense/kernel_0`` and
# ``dense_1/bias_0`` (TF 2.0-2.3 appended ``/histogram``; TF1's ``write_grads`` logged
# ``dense/kernel_0_grad``), and the TensorBoard reader puts Keras' ``train/`` folder in front.
# A tag is read from its ends: split and plugin decorations, a gradient marker, an activation
# marker, then the tensor's own name (the last ``.`` or ``/`` component); what is left is the
# layer, spelled as logged, so findings name layers the way the user's code does.

_GRADIENT_WORDS = frozenset({"grad", "grads", "gradient", "gradients"})
_ACTIVATION_WORDS = frozenset({"act", "acts", "activation", "activations"})
_PREFIX_FOLDERS = frozenset({"weights", "biases", "params", "parameters", "param", "parameter", "histograms",
                             "histogram", "hist", "train", "training", "validation"})
_WEIGHT_NAMES = frozenset({"weight", "weights", "kernel", "w", "embeddings", "embedding", "recurrent_kernel",
                           "depthwise_kernel", "pointwise_kernel", "in_proj_weight"})
_BIAS_NAMES = frozenset({"bias", "biases", "b", "in_proj_bias"})
_NORM_NAMES = frozenset({"gamma", "beta", "moving_mean", "moving_variance", "running_mean", "running_var"})
_RNN_TENSOR = re.compile(r"^(weight|bias)_(ih|hh)(_l\d+)?(_reverse)?$")  # PyTorch RNN/LSTM/GRU
_NORM_LAYER = re.compile(
    r"(^|[^a-z])(bn|batchnorm|batch_norm|batch_normalization|layernorm|layer_norm|ln|norm|groupnorm|"
    r"group_norm|instancenorm|instance_norm)(_?\d+)?($|[^a-z])"
)
# Activation functions a name can mention; ``relu`` covers the family whose outputs are >= 0.
_FUNCTION = re.compile(r"^(relu6?|leaky_?relu|elu|selu|gelu|silu|swish|mish|tanh|sigmoid|softplus|hardtanh)\d*$")
_RELU_FAMILY = frozenset({"relu", "relu6"})


@dataclass(frozen=True)
class HistogramName:
    """What a histogram tag names: the layer as logged, which of its tensors (``weight``,
    ``bias``, ``norm`` for a normalisation layer's parameters and statistics, ``activation``,
    or ``other``), whether it is that tensor's gradient, and the activation function the name
    mentions (``relu``, ``tanh``, ``sigmoid``, ...; None when it mentions none)."""

    layer: str
    tensor: str
    gradient: bool
    function: str | None


def histogram_name(tag: str) -> HistogramName:
    """Read a histogram tag (see the comment above): ``fc1.weight.grad`` is the gradient of
    layer ``fc1``'s weight, ``train/dense_1/kernel_0`` layer ``dense_1``'s weight,
    ``activations/fc2`` layer ``fc2``'s outputs."""
    parts = [part for part in tag.split("/") if part]
    if len(parts) > 1 and parts[-1].lower() in ("histogram", "histo"):
        parts = parts[:-1]
    gradient = activation = False
    folder = None  # "weights/fc1", "biases/fc1": the folder names the tensor
    while len(parts) > 1 and parts[0].lower() in _PREFIX_FOLDERS | _GRADIENT_WORDS | _ACTIVATION_WORDS:
        word = parts.pop(0).lower()
        gradient |= word in _GRADIENT_WORDS
        activation |= word in _ACTIVATION_WORDS
        folder = {"weights": "weight", "biases": "bias"}.get(word, folder)
    while len(parts) > 1 and parts[-1].lower() in _GRADIENT_WORDS | _ACTIVATION_WORDS:
        word = parts.pop().lower()
        gradient |= word in _GRADIENT_WORDS
        activation |= word in _ACTIVATION_WORDS
    path = "/".join(parts)
    suffix = re.search(r"[._](grad|grads|gradient|gradients|act|acts|activation|activations)$", path, re.IGNORECASE)
    if suffix and suffix.start() > 0:
        gradient |= suffix.group(1).lower() in _GRADIENT_WORDS
        activation |= suffix.group(1).lower() in _ACTIVATION_WORDS
        path = path[: suffix.start()]
    layer, _, last = path.rpartition("/") if "/" in path else path.rpartition(".")
    name = re.sub(r"[:_]\d+$", "", last.lower())  # Keras: kernel:0, kernel_0
    words = [word for word in re.split(r"[/_\-\s.:]+", tag.lower()) if word]
    function = next((_FUNCTION.match(word).group(1) for word in reversed(words) if _FUNCTION.match(word)), None)  # type: ignore[union-attr]
    function = "relu" if function is not None and function.startswith("relu") else function
    if activation or not layer:
        tensor, layer = ("activation", path) if activation or (function and not layer) else ("other", path)
    elif name in _WEIGHT_NAMES or (_RNN_TENSOR.match(name) and name.startswith("weight")):
        tensor = "weight"
    elif name in _BIAS_NAMES or _RNN_TENSOR.match(name):
        tensor = "bias"
    elif name in _NORM_NAMES:
        tensor = "norm"
    elif _FUNCTION.match(name):
        tensor = "activation"
    else:
        tensor, layer = (folder, path) if folder else ("other", path)
    if tensor == "other" and folder:
        tensor = folder
    if tensor in ("weight", "bias") and _NORM_LAYER.search(layer.lower()):
        tensor = "norm"
    return HistogramName(layer, tensor, gradient, function)


def relu_family(function: str | None) -> bool:
    """Whether an activation function's outputs are exactly zero for every negative input."""
    return function in _RELU_FAMILY


_PROBABILITY_WORDS = re.compile(r"(^|_)(prob|probs|probabilities|sigmoid|softmax|predictions|preds)($|_)")


def _histogram_role(tag: str, joined: str) -> Role:
    """A histogram's role: predicted probabilities by their words, else what
    :func:`histogram_name` reads; normalisation layers are left out (their scale starts at
    exactly 1 and their statistics are not trained)."""
    name = histogram_name(tag)
    explicit_activation = bool(set(normalise(tag)) & _ACTIVATION_WORDS)
    if not name.gradient and not explicit_activation and (_CONFIDENCE.search(joined) or _PROBABILITY_WORDS.search(joined)):
        return Role.PROB_HISTOGRAM
    if name.tensor == "norm" or name.tensor == "other":
        return Role.OTHER
    if name.gradient:
        return Role.GRADIENT_HISTOGRAM if name.tensor in ("weight", "bias") else Role.OTHER
    return {"weight": Role.WEIGHT_HISTOGRAM, "bias": Role.BIAS_HISTOGRAM}.get(name.tensor, Role.ACTIVATION_HISTOGRAM)


# Words the histogram tag rules read (renaming them would change what a tag is).
HISTOGRAM_WORDS = frozenset(
    word
    for name in (*_GRADIENT_WORDS, *_ACTIVATION_WORDS, *_PREFIX_FOLDERS, *_WEIGHT_NAMES, *_BIAS_NAMES,
                 *_NORM_NAMES, "histo", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "reverse",
                 "relu", "relu6", "leaky_relu", "leakyrelu", "elu", "selu", "gelu", "silu", "swish", "mish",
                 "tanh", "sigmoid", "softplus", "hardtanh", "bn", "batchnorm", "batch_norm",
                 "batch_normalization", "layernorm", "layer_norm", "ln", "norm", "groupnorm", "group_norm",
                 "instancenorm", "instance_norm")
    for word in name.split("_")
)


def parse_overrides(pairs: Mapping[str, str | list[str]]) -> dict[str, Role]:
    """``{"val_loss": "my/tag"}`` or ``{"val_loss": ["a", "b*"]}`` -> ``{pattern: Role}``.

    Raises ValueError naming the closest role for an unknown role name.
    """
    overrides: dict[str, Role] = {}
    valid = {role.value: role for role in Role}
    for role_name, patterns in pairs.items():
        role = valid.get(role_name.strip().lower().replace("-", "_"))
        if role is None:
            import difflib

            close = difflib.get_close_matches(role_name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown role {role_name!r}{hint}; roles: {', '.join(valid)}")
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            overrides[pattern] = role
    return overrides


def assign(run: Run, overrides: Mapping[str, Role] | None = None) -> Run:
    """Set ``run.roles`` for every tag and histogram tag; user overrides win (glob patterns)."""
    roles: dict[str, Role] = {}
    for tag in run.tag_names:
        roles[tag] = infer_role(tag)
    for tag in run.histograms:
        roles[tag] = infer_role(tag, histogram=True)
    _promote_sole_terms(roles)
    for pattern, role in (overrides or {}).items():
        for tag in roles:
            if _overrides(pattern, tag):
                roles[tag] = role
    run.roles = roles
    return run


_SOLE_TERMS = ((Role.LOSS_COMPONENT, Role.TRAIN_LOSS), (Role.VAL_LOSS_COMPONENT, Role.VAL_LOSS))


def _promote_sole_terms(roles: dict[str, Role]) -> None:
    """A split with no total loss and a single loss term (``train/ce_loss``, ``train/mse``,
    ``val/infonce_loss``, logged once or as Lightning's ``_step``/``_epoch`` pair) has that
    term as its loss: it is what the run minimises, and every check of a loss curve should
    read it.  Two or more terms (box and class losses, a GAN's two players) stay terms: their
    sum is not logged, and no one of them is the run's loss."""
    for term, total in _SOLE_TERMS:
        if total in roles.values():
            continue
        groups = series_groups(tag for tag, role in roles.items() if role is term)
        if len(groups) == 1:
            for tag in groups[0]:
                roles[tag] = total


def unmatched_overrides(overrides: Mapping[str, Role], tags: Iterable[str]) -> list[str]:
    """The override patterns (tag names or globs) that name none of ``tags``."""
    seen = set(tags)
    return [pattern for pattern in overrides if not any(_overrides(pattern, tag) for tag in seen)]


def _overrides(pattern: str, tag: str) -> bool:
    return tag == pattern or fnmatch.fnmatchcase(tag, pattern)


def primary(run: Run, role: Role) -> str | None:
    """The tag that best represents a role: the one with most points, first logged on ties.

    HF logs ``train/loss`` every few steps and ``train/train_loss`` once at the end; Lightning
    logs ``train_loss_step`` and ``train_loss_epoch``: the densest series is the curve.
    """
    candidates = run.tags_with(role)
    if not candidates:
        return None

    def rank(tag: str) -> tuple[bool, int, int]:
        # Lightning's ``val_loss_step`` counts validation batches on its own step axis; the
        # per-evaluation series is the curve to compare with training.
        own_axis = role in _VAL_ROLES and tag.lower().endswith("_step")
        return (not own_axis, run.point_count(tag), -candidates.index(tag))

    return max(candidates, key=rank)


_VAL_ROLES = (Role.VAL_LOSS, Role.VAL_ACCURACY, Role.VAL_METRIC, Role.VAL_LOSS_COMPONENT, Role.AUC)
