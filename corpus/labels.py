"""Labels from construction, confirmed by what the run's own logged numbers show.

A recipe plants one fault at a graded strength.  Whether it *manifested* is decided by a
simple criterion per category, computed from the trace (the values the writers log), never
from rundoctor.  The criteria (also in the README):

- nan_inf: a logged loss or metric is NaN or infinite.
- loss_explosion: the smoothed train loss ends (or, with NaN, ends its finite stretch) >= 3x
  its minimum and >= 1.5x its start, or a raw loss within 10 logged points before the first
  NaN reaches >= 10x the start.
- lr_too_high_oscillation: on a run where an LR was planted too high, no NaN, no explosion,
  and the smoothed loss ends above 90% of its start (for a classifier: of min(start, ln k),
  the loss of a uniform guess) - the loss bounces without getting anywhere.
- stalled_loss: the val loss spreads by < 1% over the last 40% of evaluations (without a val
  loss: the smoothed train loss changes by < 2% over the last 40% of steps) while the smoothed
  train loss is still >= 50% of ln(k), the loss of a uniform guess (regression: of its start).
- lr_too_low: the smoothed train loss falls by less than 25% from start to end.
- lr_plateau: the smoothed train loss improves by < 25% over the last half of a constant-LR
  run while it is still above 10% of its start (the notes quote the same run with a decay).
- loss_spikes: >= 3 logged points at >= 4x the rolling median (and >= 0.5 above it), spread
  over at least two thirds of the run.
- overfitting: the val loss ends >= 10% above its minimum while the train loss ended lower
  than it was at that minimum.
- metric_flat_may_jump: val accuracy spans < 0.05 over the last half of the evaluations and
  sits within 0.05 of chance while the smoothed train loss fell by >= 5% over the run.
- class_imbalance: the final val accuracy is within 2 points of the majority rate.
- loss_scale_imbalance: the median ratio of the largest to the smallest loss component >= 10.
- cannot_overfit: the final smoothed train loss is >= 90% of ln(k) (a uniform guess).
- underconfident: final val accuracy >= 0.8 while exp(-val_loss) < 0.5 (the right class gets
  under one half of the probability on geometric average).
- metric_bug: an accuracy above 1; or val accuracy within 0.05 of chance while the val loss
  fell by >= 50%; or an accuracy with one value over >= 5 evaluations while the loss fell.
- resumed_or_duplicate_steps: some train-loss step is logged more than once.
- truncated_file: the file was cut (by construction, always manifest).
- unnormalized_output: the smallest finite train loss is >= 100, or the loss became NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from corpus.trace import EPOCH, EVAL, TRAIN, Trace

CATEGORIES = (
    "nan_inf", "loss_explosion", "stalled_loss", "lr_too_low", "lr_plateau", "lr_too_high_oscillation",
    "loss_spikes", "overfitting", "metric_flat_may_jump", "class_imbalance", "loss_scale_imbalance",
    "cannot_overfit", "underconfident", "metric_bug", "resumed_or_duplicate_steps", "truncated_file",
    "unnormalized_output",
)

# Categories a doctor may plausibly report as a consequence of the planted fault: neither
# expected nor forbidden.
ALLOWED: dict[str, frozenset[str]] = {
    "nan_inf": frozenset({"loss_explosion", "loss_spikes", "stalled_loss"}),
    "loss_explosion": frozenset({"nan_inf", "lr_too_high_oscillation", "loss_spikes", "stalled_loss",
                                 "cannot_overfit", "overfitting"}),
    "lr_too_high_oscillation": frozenset({"loss_spikes", "loss_explosion", "stalled_loss", "cannot_overfit",
                                          "overfitting", "nan_inf"}),
    "stalled_loss": frozenset({"cannot_overfit", "lr_too_low", "lr_plateau"}),
    "lr_too_low": frozenset({"stalled_loss", "cannot_overfit"}),
    "lr_plateau": frozenset({"stalled_loss", "lr_too_high_oscillation", "loss_spikes"}),
    "loss_spikes": frozenset({"lr_too_high_oscillation", "nan_inf", "loss_explosion"}),
    "overfitting": frozenset(),
    "metric_flat_may_jump": frozenset({"overfitting", "stalled_loss", "cannot_overfit"}),
    "class_imbalance": frozenset({"stalled_loss", "cannot_overfit", "metric_flat_may_jump"}),
    "loss_scale_imbalance": frozenset({"stalled_loss", "unnormalized_output", "cannot_overfit"}),
    "cannot_overfit": frozenset({"stalled_loss", "overfitting"}),
    "underconfident": frozenset(),
    "metric_bug": frozenset({"metric_flat_may_jump"}),
    "resumed_or_duplicate_steps": frozenset({"loss_spikes"}),
    "truncated_file": frozenset(),
    "unnormalized_output": frozenset({"nan_inf", "loss_explosion", "stalled_loss", "lr_too_low",
                                      "cannot_overfit", "loss_spikes"}),
}


@dataclass
class Verdict:
    manifest: bool
    expect: list[str]
    evidence: str
    allowed: set[str] = field(default_factory=set)
    shown: dict[str, str] = field(default_factory=dict)  # allowed category -> the logged numbers


def g(x: float) -> str:
    """A number as a label quotes it."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


# -- series ------------------------------------------------------------------------------
def train_loss(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    steps, values = trace.series(TRAIN, "loss")
    return (steps, values) if len(values) else trace.series(EPOCH, "loss")


def smooth(values: np.ndarray) -> np.ndarray:
    """Rolling median over ~1/15 of the points (odd window, >= 3), finite values only."""
    v = values[np.isfinite(values)]
    if len(v) < 3:
        return v
    w = max(3, (len(v) // 15) | 1)
    # Full windows only: padding the ends would let one last spike pose as the final level.
    return np.median(np.lib.stride_tricks.sliding_window_view(v, w), axis=1)


def start_end(values: np.ndarray) -> tuple[float, float]:
    s = smooth(values)
    if len(s) == 0:
        return math.nan, math.nan
    k = max(1, len(s) // 20)
    return float(np.median(s[:k])), float(np.median(s[-k:]))


def any_nonfinite(trace: Trace) -> tuple[bool, str]:
    for p in trace.points:
        for key, value in p.values.items():
            if not math.isfinite(value):
                return True, f"{key} is {value} from step {p.step}"
    return False, ""


def chance(trace: Trace) -> float:
    return 1.0 / (trace.n_classes or 2)


# -- criteria ----------------------------------------------------------------------------
def explosion(trace: Trace) -> tuple[bool, str]:
    _, v = train_loss(trace)
    bad = np.flatnonzero(~np.isfinite(v))
    before = v[: bad[0]] if len(bad) else v
    s = smooth(before)
    if len(s) < 3:
        return False, ""
    start = start_end(v)[0]
    low = float(s.min())
    if s[-1] >= 3 * low and s[-1] >= 1.5 * start:
        where = "before the NaN" if len(bad) else "at the end"
        return True, f"smoothed loss falls to {g(low)}, then climbs to {g(s[-1])} {where} (start {g(start)})"
    if len(bad) and bad[0] > 0:  # a rise too fast for the smoothing, right before the NaN
        last = v[max(0, bad[0] - 10):bad[0]]
        if last.max() >= 10 * start:
            return True, f"loss reaches {g(last.max())} from a start of {g(start)} just before turning NaN"
    return False, ""


def stall(trace: Trace, level: float = 0.5) -> tuple[bool, str]:
    """Flat for the last 40% of the run while still near the loss of a uniform guess."""
    _, v = train_loss(trace)
    s = smooth(v)
    if len(s) < 5:
        return False, ""
    start, end = start_end(v)
    classifier = trace.task == "classification" and trace.n_classes is not None
    ref = math.log(trace.n_classes or 2) if classifier else start
    _, val = trace.series(EVAL, "val_loss")
    tail = val[int(0.6 * len(val)):]
    if len(tail) >= 2 and np.isfinite(tail).all():
        change = float((tail.max() - tail.min()) / tail.mean())
        text = (f"smoothed train loss {g(start)} -> {g(end)}; val_loss over the last 40% of evaluations "
                f"{g(tail.min())}-{g(tail.max())} ({change:.1%} spread)")
        flat = change < 0.01
    else:
        at60 = float(s[int(0.6 * (len(s) - 1))])
        flat = abs(end - at60) / max(abs(at60), 1e-12) < 0.02
        text = f"smoothed train loss {g(start)} at start, {g(at60)} at 60% of the run, {g(end)} at the end"
    if classifier:
        text += f" (ln k = {g(ref)})"
    return flat and end >= level * ref, text


def no_better_than_guessing(trace: Trace) -> tuple[bool, str]:
    """The smoothed loss ends above 90% of its start, or of ln(k) for a classifier (a uniform guess)."""
    _, v = train_loss(trace)
    start, end = start_end(v)
    k = trace.n_classes
    ref = min(start, math.log(k)) if k else start
    text = f"smoothed train loss {g(start)} -> {g(end)}" + (f" (ln k = {g(math.log(k))})" if k else "")
    return end >= 0.9 * ref, text


def little_progress(trace: Trace, limit: float) -> tuple[bool, str]:
    _, v = train_loss(trace)
    start, end = start_end(v)
    drop = (start - end) / start if start else 0.0
    return drop < limit, f"smoothed train loss {g(start)} -> {g(end)} ({drop:+.0%} drop)"


def plateau(trace: Trace) -> tuple[bool, str]:
    _, v = train_loss(trace)
    s = smooth(v)
    start = start_end(v)[0]
    mid, end = float(s[len(s) // 2]), float(s[-1])
    gain = (mid - end) / mid
    text = (f"smoothed train loss {g(start)} at start, {g(mid)} at mid-run, {g(end)} at the end "
            f"({abs(gain):.0%} {'lower' if gain >= 0 else 'higher'} over the second half at constant LR)")
    _, val = trace.series(EVAL, "val_loss")
    if len(val):
        text += f"; val_loss {g(val[0])} -> {g(val[-1])}"
    return gain < 0.25 and end > 0.1 * start, text


def spikes(trace: Trace) -> tuple[bool, str]:
    steps, v = train_loss(trace)
    ok = np.isfinite(v)
    steps, v = steps[ok], v[ok]
    if len(v) < 30:
        return False, ""
    w = 21
    pad = np.pad(v, w // 2, mode="edge")
    med = np.median(np.lib.stride_tricks.sliding_window_view(pad, w), axis=1)
    hit = (v >= 4 * med) & (v - med >= 0.5)
    where = steps[hit]
    thirds = len({int(3 * (s - steps[0]) / (steps[-1] - steps[0] + 1)) for s in where})
    top = float(v[hit].max()) if hit.any() else 0.0
    text = f"{int(hit.sum())} logged losses >= 4x the rolling median (largest {g(top)}), in {thirds} thirds of the run"
    return int(hit.sum()) >= 3 and thirds >= 2, text


def overfit(trace: Trace) -> tuple[bool, str]:
    vs, vv = trace.series(EVAL, "val_loss")
    if len(vv) < 3 or not np.isfinite(vv).all():
        return False, ""
    i = int(np.argmin(vv))
    ts, tv = train_loss(trace)
    before = tv[ts <= vs[i]]
    t_at = float(np.median(before[-5:])) if len(before) else float(tv[0])
    t_end = float(np.median(tv[-5:]))
    rise = vv[-1] / vv[i] - 1
    text = (f"val_loss min {g(vv[i])} at step {vs[i]}, {g(vv[-1])} at the end ({rise:+.0%}) "
            f"while train loss went {g(t_at)} -> {g(t_end)}")
    return rise >= 0.10 and t_end < t_at, text


def accuracy(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    return trace.series(EVAL, "val_acc")


def flat_metric(trace: Trace) -> tuple[bool, str]:
    _, acc = accuracy(trace)
    half = acc[len(acc) // 2:]
    _, tv = train_loss(trace)
    start, end = start_end(tv)
    fell = 1 - end / start
    span = float(half.max() - half.min())
    text = (f"val acc {g(half.min())}-{g(half.max())} over the last {len(half)} evaluations (chance "
            f"{g(chance(trace))}) while the smoothed train loss went {g(start)} -> {g(end)}")
    return span < 0.05 and abs(float(half.mean()) - chance(trace)) < 0.05 and fell >= 0.05, text


def majority(trace: Trace) -> tuple[bool, str]:
    _, acc = accuracy(trace)
    rate = float(trace.info["majority_rate"])
    text = f"val acc {g(acc[0])} -> {g(acc[-1])} against a majority rate of {g(rate)}"
    return abs(float(acc[-1]) - rate) <= 0.02, text


def scale_ratio(trace: Trace) -> tuple[bool, str]:
    comps = ["box_loss", "cls_loss", "dfl_loss"]
    kind = TRAIN if trace.series(TRAIN, "box_loss")[1].size else EPOCH
    series = np.stack([trace.series(kind, k)[1] for k in comps])
    ratio = series.max(0) / series.min(0)
    med = float(np.median(ratio))
    means = ", ".join(f"{k} median {g(float(np.median(s)))}" for k, s in zip(comps, series))
    return med >= 10, f"{means}; largest/smallest component ratio median {g(med)}"


def uniform_loss(trace: Trace) -> tuple[bool, str]:
    _, v = train_loss(trace)
    end = start_end(v)[1]
    ln_k = math.log(trace.n_classes or 2)
    return end >= 0.9 * ln_k, f"smoothed train loss ends at {g(end)} vs ln(k) = {g(ln_k)}"


def underconfidence(trace: Trace) -> tuple[bool, str]:
    _, acc = accuracy(trace)
    _, vl = trace.series(EVAL, "val_loss")
    p = math.exp(-float(vl[-1]))
    text = f"final val acc {g(acc[-1])} with val_loss {g(vl[-1])} (geometric-mean p(correct) {g(p)})"
    return float(acc[-1]) >= 0.8 and p < 0.5, text


def metric_inconsistency(trace: Trace) -> tuple[bool, str]:
    _, acc = accuracy(trace)
    _, vl = trace.series(EVAL, "val_loss")
    fell = 1 - float(vl[-1]) / float(vl[0])
    if acc.max() > 1:
        return True, f"val accuracy {g(acc.min())} -> {g(acc.max())} (> 1) while val_loss fell {fell:.0%}"
    if len(set(acc.tolist())) == 1 and len(acc) >= 5 and fell > 0:
        return True, f"val accuracy is {g(acc[0])} at all {len(acc)} evaluations while val_loss fell {fell:.0%}"
    near = abs(float(acc[-1]) - chance(trace)) < 0.05
    text = f"val accuracy ends at {g(acc[-1])} (chance {g(chance(trace))}) while val_loss fell {fell:.0%}"
    return near and fell >= 0.5, text


def repeated_steps(trace: Trace) -> tuple[bool, str]:
    steps, _ = trace.series(TRAIN, "loss")
    unique, counts = np.unique(steps, return_counts=True)
    dup = unique[counts > 1]
    if not len(dup):
        return False, "no step logged twice"
    return True, f"steps {dup.min()}-{dup.max()} logged twice ({len(dup)} train-loss steps)"


def big_loss(trace: Trace) -> tuple[bool, str]:
    _, v = train_loss(trace)
    finite = v[np.isfinite(v)]
    lo = float(finite.min()) if len(finite) else math.nan
    nan = not np.isfinite(v).all()
    return (lo >= 100 or nan), f"train loss min {g(lo)}, first {g(v[0])}" + (", then NaN" if nan else "")


# -- verdicts ----------------------------------------------------------------------------
def judge(category: str, trace: Trace) -> Verdict:
    """Did the planted ``category`` show in the logged numbers, and what else honestly did?"""
    nan, nan_text = any_nonfinite(trace)
    exploded, boom = explosion(trace)
    expect: list[str] = []
    evidence: list[str] = []
    if category == "truncated_file":
        expect, evidence = [category], ["the file ends inside a record / line"]
    elif category in ("loss_explosion", "lr_too_high_oscillation"):
        no_better, progress = no_better_than_guessing(trace)
        if exploded:
            expect, evidence = ["loss_explosion"], [boom]
        elif no_better and not nan:
            expect, evidence = ["lr_too_high_oscillation"], [progress]
        elif not nan:
            evidence = [progress]
    else:
        criterion = {
            "nan_inf": lambda t: (nan, nan_text),
            "stalled_loss": stall,
            "lr_too_low": lambda t: little_progress(t, 0.25),
            "lr_plateau": plateau,
            "loss_spikes": spikes,
            "overfitting": overfit,
            "metric_flat_may_jump": flat_metric,
            "class_imbalance": majority,
            "loss_scale_imbalance": scale_ratio,
            "cannot_overfit": uniform_loss,
            "underconfident": underconfidence,
            "metric_bug": metric_inconsistency,
            "resumed_or_duplicate_steps": repeated_steps,
            "unnormalized_output": big_loss,
        }[category]
        hit, text = criterion(trace)
        evidence = [text]
        if hit:
            expect = [category]
            if category in ("unnormalized_output", "nan_inf", "loss_spikes") and exploded:
                expect.append("loss_explosion")
                evidence.append(boom)
    if nan:
        if "nan_inf" not in expect:
            expect.append("nan_inf")
        if nan_text not in evidence:
            evidence.append(nan_text)
    manifest = bool(expect)
    shown = {c: text for c, text in also_shown(trace).items() if c not in expect}
    return Verdict(manifest, expect, "; ".join(e for e in evidence if e), set(shown), shown)


def also_shown(trace: Trace) -> dict[str, str]:
    """Every category whose manifest criterion holds on this run's logged numbers, with them.

    A faulty run never forbids what its own log shows, whatever was planted (a run whose
    val loss climbs 17% off its minimum while the train loss falls is overfitting, even if a
    dead-ReLU bug was planted).  Each criterion is the one that decides ``expect``, applied
    where the log holds its inputs.  Criteria whose premise is the construction are left out:
    lr_too_high_oscillation (an LR planted too high), lr_plateau (its evidence is the same run
    with a decay doing better, quoted in the notes; a second half that gains < 25% is met by
    any run that converged in its first half), truncated_file (a cut planted), and the NaN
    clause of unnormalized_output (NaN is evidence of raw targets only when they were planted;
    a NaN from any other cause is ``nan_inf``), and underconfident (its numbers, accuracy
    >= 0.8 with exp(-val_loss) < 0.5, are met as well by a few confidently wrong predictions:
    val acc 0.877 at val_loss 8.38 under a too-high LR; only a planted smoothing or
    temperature makes them underconfidence).  lr_too_low applies to a loss that did not end
    above its start (it "falls by less than 25%"; a rising loss is no slow descent), and
    class_imbalance to a majority rate more than 0.05 above chance (on balanced data,
    accuracy at the majority rate is accuracy at chance).
    """
    out: dict[str, str] = {}

    def take(category: str, result: tuple[bool, str]) -> None:
        if result[0]:
            out[category] = result[1]

    nan, nan_text = any_nonfinite(trace)
    take("nan_inf", (nan, nan_text))
    _, tv = train_loss(trace)
    finite = tv[np.isfinite(tv)]
    if len(finite) >= 5:
        take("loss_explosion", explosion(trace))
        take("stalled_loss", stall(trace))
        start, end = start_end(tv)
        if end <= start:  # "falls by less than 25%": a loss that rose is no slow descent
            take("lr_too_low", little_progress(trace, 0.25))
        take("loss_spikes", spikes(trace))
        if float(finite.min()) >= 100:
            take("unnormalized_output", big_loss(trace))
        if trace.task == "classification" and trace.n_classes:
            take("cannot_overfit", uniform_loss(trace))
    _, vl = trace.series(EVAL, "val_loss")
    if len(finite) and len(vl) >= 3 and np.isfinite(vl).all():
        take("overfitting", overfit(trace))
    _, acc = accuracy(trace)
    if len(acc) >= 2 and np.isfinite(acc).all():
        if len(finite) >= 5:
            take("metric_flat_may_jump", flat_metric(trace))
        rate = trace.info.get("majority_rate")
        if rate is not None and rate > chance(trace) + 0.05:  # an imbalanced prior, not chance
            take("class_imbalance", majority(trace))
        if len(vl) and np.isfinite(vl).all() and vl[0] > 0:
            take("metric_bug", metric_inconsistency(trace))
    components = ("box_loss", "cls_loss", "dfl_loss")
    kind = TRAIN if trace.series(TRAIN, "box_loss")[1].size else EPOCH
    parts = [trace.series(kind, k)[1] for k in components]
    if all(len(p) for p in parts) and len({len(p) for p in parts}) == 1 and all(np.isfinite(p).all() for p in parts):
        take("loss_scale_imbalance", scale_ratio(trace))
    if len(trace.series(TRAIN, "loss")[0]):
        take("resumed_or_duplicate_steps", repeated_steps(trace))
    return out


def faulty_forbid(category: str, verdict: Verdict) -> tuple[list[str], str]:
    """A faulty run's ``forbid`` and a note naming what its own log lifted out of it."""
    base = forbid(category, verdict.expect)
    lifted = [c for c in base if c in verdict.allowed]
    note = "; ".join(f"{c}: {verdict.shown[c]}" for c in lifted)
    return [c for c in base if c not in verdict.allowed], (
        f" Not forbidden because the log meets the criterion: {note}." if note else "")


def forbid(category: str | None, expect: list[str], extra_allowed: frozenset[str] = frozenset()) -> list[str]:
    """Everything that is neither expected nor a plausible consequence of what was planted."""
    allowed = set(extra_allowed)
    if category is not None:
        allowed |= {category} | ALLOWED[category]
        for co in expect:
            allowed |= ALLOWED[co]
    return [c for c in CATEGORIES if c not in allowed and c not in expect]


def summary(trace: Trace) -> str:
    """The numbers that make a healthy run healthy."""
    _, v = train_loss(trace)
    start, end = start_end(v)
    parts = [f"train loss {g(start)} -> {g(end)} (smoothed)"]
    vs, vv = trace.series(EVAL, "val_loss")
    if len(vv):
        i = int(np.argmin(vv))
        parts.append(f"val_loss {g(vv[0])} -> min {g(vv[i])} at step {vs[i]}, {g(vv[-1])} at the end")
    _, acc = accuracy(trace)
    if len(acc):
        parts.append(f"val acc {g(acc[0])} -> {g(acc[-1])}")
    _, m = trace.series(EVAL, "map50")
    if len(m):
        parts.append(f"mAP50 {g(m[0])} -> {g(m[-1])}")
    return "; ".join(parts)


def healthy_issues(trace: Trace, *, finetune: bool = False) -> list[str]:
    """Generation-time sanity checks: a healthy recipe that trips one of these is a recipe bug."""
    issues = []
    if any_nonfinite(trace)[0]:
        issues.append("non-finite values")
    if explosion(trace)[0]:
        issues.append("explosion: " + explosion(trace)[1])
    hit, text = overfit(trace)
    _, vv = trace.series(EVAL, "val_loss")
    if hit and vv[-1] / vv.min() > 1.15:
        issues.append("overfitting: " + text)
    if not finetune:
        hit, text = little_progress(trace, 0.25)
        if hit:
            issues.append("little progress: " + text)
        if stall(trace, level=0.8)[0]:
            issues.append("stall: " + stall(trace, level=0.8)[1])
    _, acc = accuracy(trace)
    rate = trace.info.get("majority_rate")
    if len(acc) and rate and acc.max() <= 1 and acc[-1] <= rate + 0.02:
        issues.append("accuracy at the majority rate")
    return issues
