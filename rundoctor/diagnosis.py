"""One diagnosis per run: the primary problem, the findings it explains, contradictions resolved.

Findings are symptoms, each measured by one check that knows nothing of the others.  The
diagnosis relates a run's findings the way a doctor goes from symptoms to a diagnosis:

- **Relations** are data: :data:`RULES` is a table of "finding X explains / contradicts /
  tells the same story as finding Y", each with the reason, and :func:`relate` is the one
  small function that applies it.  Three relations:

  ``explains``
      Y is a consequence of X (a run that went NaN also "stopped learning").  Y stays in
      the report and counts for ``--fail-on``; reports show it under X, "explained by X".
  ``contradicts``
      X makes Y's reading wrong (a run that went NaN is not "still improving"; "accuracy may
      jump later" is not said of a metric computed wrongly or of a loss that is rising).
      Y is *superseded*: left out of the counts and of ``--fail-on``, kept in the JSON report
      under its run's ``diagnosis.superseded`` with the reason.
  ``same story``
      X and Y are one story told twice (chance level and class imbalance on one accuracy
      series: a model predicting the label prior).  Y is superseded, X tells it once.

  A rule applies within a *scope*: anywhere in the run, only when the two findings share
  a tag, or only when they share a metric tag (a loss tag in common does not count: a bug
  in the accuracy code says nothing about another accuracy that shares its loss).  A rule
  may ask its cause to point one way (update-ratio's weights barely moving contradict "the
  plateau needs a lower learning rate"; weights changing fast do not) and may ask a
  minimum severity of its cause: a transient NaN in the gradient norm (info)
  explains nothing; a permanent NaN (error) contradicts "still improving" anywhere.
  Every rule's cause ranks above its effect in :data:`PROBLEMS` (a test holds this), so
  applying the rules in that order is well defined.

- **The primary problem** is the root (an active finding no other active finding explains)
  whose story is worst: the highest severity among itself and what it explains, then a
  problem before a note on how a series was logged (:data:`OBSERVATIONS`), then the
  rank of its check in :data:`PROBLEMS` (causal priority: numerics before learning-rate
  before metrics before generalisation before bookkeeping), then the earliest step.  The
  root cause therefore leads even when a symptom it explains is more severe: a learning
  rate too low (warning) that explains "no learning" (error) is a *serious* run whose
  problem is "learning rate too low".

- **The verdict** follows the most severe active finding: ``healthy`` (none), ``minor``
  (info only), ``problem`` (warning), ``serious`` (error).  A run that cannot be judged
  gets a verdict of its own instead of passing as healthy:

  ``no_data`` (level *warning*)
      the run holds no finite point at all (nothing logged, or every value NaN/inf);
  ``too_short`` (level *info*)
      no loss or metric series has :data:`MIN_POINTS_TO_JUDGE` finite points (the fewest
      any trend check needs; fewer, and no check can tell a trend from noise), including
      runs with no loss or metric series at all.

  These levels count for ``--fail-on``: ``--fail-on warning`` fails a CI artifact that
  holds an empty run, ``--fail-on info`` also one too short to judge.  A finding more
  severe than the data verdict's level wins (an all-NaN loss is a *serious* non-finite
  finding, not merely "no data").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rundoctor.findings import Finding, Severity
from rundoctor.roles import LOSS_ROLES, METRIC_ROLES, Role
from rundoctor.series import Run
from rundoctor.twins import twin_groups


class Verdict(str, enum.Enum):
    """What is wrong with a run, in one word; :attr:`level` is what ``--fail-on`` sees."""

    HEALTHY = "healthy"
    MINOR = "minor"  # information only
    PROBLEM = "problem"  # at least one warning
    SERIOUS = "serious"  # at least one error
    NO_DATA = "no_data"  # no finite point at all
    TOO_SHORT = "too_short"  # too few points to judge any curve

    @property
    def level(self) -> Severity | None:
        """The severity ``--fail-on`` compares with: None only for a healthy run; no data counts as a
        warning, a too-short run as information."""
        return _VERDICT_LEVEL[self]

    @property
    def label(self) -> str:
        """How reports write it in a run's header line: ``SERIOUS``, ``NO DATA``."""
        return self.value.replace("_", " ").upper()

    @property
    def judged(self) -> bool:
        """False for the verdicts that say the run could not be judged."""
        return self not in (Verdict.NO_DATA, Verdict.TOO_SHORT)


_VERDICT_LEVEL: dict[Verdict, Severity | None] = {
    Verdict.HEALTHY: None,
    Verdict.MINOR: Severity.INFO,
    Verdict.PROBLEM: Severity.WARNING,
    Verdict.SERIOUS: Severity.ERROR,
    Verdict.NO_DATA: Severity.WARNING,  # an empty artifact fails `--fail-on warning`
    Verdict.TOO_SHORT: Severity.INFO,  # a short run is a fact to know, rarely a failure
}
_BY_LEVEL = {None: Verdict.HEALTHY, Severity.INFO: Verdict.MINOR,
             Severity.WARNING: Verdict.PROBLEM, Severity.ERROR: Verdict.SERIOUS}

# The fewest finite points any trend check needs before it judges a curve (loss-divergence,
# no-learning, lr-too-low, overfitting, chance-level, class-imbalance, delayed-generalization,
# val-better-than-train all default to 5); a test keeps this equal to their defaults.
MIN_POINTS_TO_JUDGE = 5
JUDGED_ROLES: tuple[Role, ...] = (*LOSS_ROLES, *METRIC_ROLES)

# Check name -> the problem it names in plain words, in causal priority order (first is the
# most fundamental: what goes wrong first makes the rest happen).  A check missing here (a new
# one, say) ranks last and is named by its name: adding a check needs no line here.
PROBLEMS: dict[str, str] = {
    "non-finite": "training diverged (NaN/inf)",
    "loss-divergence": "training diverged",
    "metric-out-of-range": "metric is computed wrongly",
    "metric-loss-disagreement": "metric is computed wrongly",
    # What the histograms show inside the network: causes of what the curves show.
    "weight-init": "weights initialised wrongly",
    "exploding-gradients": "gradients exploding",
    "dead-units": "ReLU units died",
    "saturated-activations": "activations saturated",
    "vanishing-gradients": "gradients vanish in the first layers",
    "update-ratio": "weights barely move",
    "lr-too-low": "learning rate too low",
    "no-learning": "stalled: no learning",
    "chance-level": "stuck at chance: nothing learned",
    "class-imbalance": "class imbalance: model predicts the majority class",
    "grad-norm": "gradients exploding or clipped",
    "loss-magnitude": "loss at an implausible scale",
    "loss-oscillation": "loss oscillates: learning rate too high",
    "loss-spikes": "loss spikes",
    "overfitting": "overfitting",
    "val-better-than-train": "validation better than training: leak or mismatch",
    "delayed-generalization": "memorised, not yet generalising",
    "loss-plateau": "loss plateaued at a fixed learning rate",
    "metric-flat-loss-falling": "metric flat while the loss falls",
    "underconfident": "predictions near chance confidence",
    "loss-scale-imbalance": "loss terms on mismatched scales",
    "truncated-log": "log truncated",
    "duplicate-steps": "steps logged more than once",
    "still-improving": "still improving: could train longer",
}

# Problems whose name depends on what the finding's evidence says: (check, evidence key, the
# value it must have, or None for "present", name).  The first that matches names the problem.
EVIDENCED_PROBLEMS: tuple[tuple[str, str, str | None, str], ...] = (
    ("dead-units", "learning_rate_peak", None, "learning rate too high: ReLU units died"),
    ("dead-units", "loss_spike", None, "ReLU units died in a loss spike"),
    ("update-ratio", "direction", "frozen", "layers frozen: weights do not change"),
    ("update-ratio", "direction", "low", "learning rate too low: weights barely move"),
    ("update-ratio", "direction", "high", "learning rate may be too high: weights change fast"),
    ("metric-out-of-range", "unit", "percent", "metric logged in percent"),
)

# Findings that say how a series was logged, not that anything is wrong (check, evidence key,
# value): an accuracy logged in percent is a convention, not a bug.  Such a note is the
# primary only of a run with nothing else to say; any other finding of its severity leads.
OBSERVATIONS: tuple[tuple[str, str, str], ...] = (
    ("metric-out-of-range", "unit", "percent"),
)

# Problems named after the training loss: about other series (a validation metric, the
# gradient norm) the name is the second one.
NARROW_PROBLEMS: dict[str, tuple[tuple[Role, ...], str]] = {
    "non-finite": ((Role.TRAIN_LOSS, Role.LOSS_COMPONENT), "values went NaN/inf"),
}


class Relation(str, enum.Enum):
    """How a rule's cause bears on its effect: it explains it (both kept), contradicts it or tells the
    same story (the effect is superseded: dropped from what counts)."""

    EXPLAINS = "explains"
    CONTRADICTS = "contradicts"
    SAME_STORY = "same_story"


class Scope(str, enum.Enum):
    """Where two findings must meet for a rule between them to apply."""

    RUN = "run"  # anywhere in the run
    TAG = "tag"  # the two findings share a tag
    METRIC_TAG = "metric_tag"  # they share a tag that is not a loss


@dataclass(frozen=True)
class Rule:
    """``cause`` relates to ``effect`` (check names) within ``scope``, for ``reason``."""

    cause: str
    effect: str
    relation: Relation
    scope: Scope
    reason: str
    cause_at_least: Severity = Severity.INFO  # the cause's least severity for the rule to apply
    problem: str | None = None  # the story's name when a same-story rule applies
    cause_direction: str | None = None  # applies only to a cause whose evidence has this "direction"


def _rules(cause: str, effects: Iterable[str], relation: Relation, scope: Scope, reason: str,
           cause_at_least: Severity = Severity.INFO, cause_direction: str | None = None) -> tuple[Rule, ...]:
    return tuple(Rule(cause, effect, relation, scope, reason, cause_at_least, cause_direction=cause_direction)
                 for effect in effects)


E, C, S = Relation.EXPLAINS, Relation.CONTRADICTS, Relation.SAME_STORY
_NAN_REASON = "once the values went NaN/inf nothing after it trains; this follows from it"
_DIVERGED = "a loss that blew up explains the shapes it leaves on the curves"
_METRIC_BUG = "the metric is computed wrongly, so its level says nothing about the model"
_MAY_JUMP = "'the metric may still jump' needs a sound metric"

RULES: tuple[Rule, ...] = (
    # Non-finite values: the end state of a divergence, or a bug that poisons the weights.
    *_rules("non-finite", ("loss-divergence", "loss-spikes", "loss-oscillation", "loss-plateau",
                           "no-learning", "chance-level", "grad-norm", "loss-magnitude", "lr-too-low"),
            E, Scope.RUN, _NAN_REASON, Severity.WARNING),
    *_rules("non-finite", ("still-improving",), C, Scope.RUN,
            "a run whose values went NaN/inf for good is not still improving", Severity.ERROR),
    *_rules("non-finite", ("metric-flat-loss-falling", "delayed-generalization"), C, Scope.RUN,
            "a run whose values went NaN/inf for good will not see its metric jump later",
            Severity.ERROR),
    # Divergence.
    *_rules("loss-divergence", ("loss-spikes", "loss-oscillation", "loss-plateau", "no-learning",
                                "chance-level", "grad-norm", "loss-magnitude"),
            E, Scope.RUN, _DIVERGED),
    *_rules("loss-divergence", ("metric-out-of-range",), E, Scope.TAG,
            "the loss left its range as it blew up: divergence, not a metric bug"),
    *_rules("loss-divergence", ("still-improving",), C, Scope.RUN,
            "a run whose loss diverged is not still improving"),
    *_rules("loss-divergence", ("metric-flat-loss-falling", "delayed-generalization"), C, Scope.RUN,
            "the loss is rising, not falling: " + _MAY_JUMP + " and a loss still falling"),
    # A metric computed wrongly.
    *_rules("metric-out-of-range", ("metric-loss-disagreement", "chance-level", "class-imbalance"),
            E, Scope.METRIC_TAG, _METRIC_BUG, Severity.WARNING),
    *_rules("metric-out-of-range", ("metric-flat-loss-falling", "delayed-generalization"), C,
            Scope.METRIC_TAG, _METRIC_BUG + "; " + _MAY_JUMP, Severity.WARNING),
    *_rules("metric-loss-disagreement", ("chance-level", "class-imbalance"), E, Scope.METRIC_TAG,
            _METRIC_BUG),
    *_rules("metric-loss-disagreement", ("metric-flat-loss-falling", "delayed-generalization"), C,
            Scope.METRIC_TAG, _METRIC_BUG + "; " + _MAY_JUMP),
    # Inside the network (histograms): the causes behind the curves.
    *_rules("weight-init", ("exploding-gradients", "dead-units", "saturated-activations", "vanishing-gradients",
                            "update-ratio", "lr-too-low", "no-learning", "chance-level", "loss-plateau"),
            E, Scope.RUN, "weights started far from what their fan-in calls for; what follows comes from it",
            Severity.WARNING),
    *_rules("exploding-gradients", ("dead-units", "update-ratio", "grad-norm", "loss-spikes", "loss-oscillation",
                                    "loss-magnitude", "no-learning", "loss-plateau"),
            E, Scope.RUN, "updates as large as the weights throw the training around", Severity.WARNING),
    *_rules("dead-units", ("vanishing-gradients", "update-ratio", "lr-too-low", "no-learning", "chance-level",
                           "loss-plateau", "underconfident"),
            E, Scope.RUN, "dead ReLU units pass no signal forward and no gradient back: the loss stops moving",
            Severity.WARNING),
    *_rules("saturated-activations", ("vanishing-gradients", "update-ratio", "lr-too-low", "no-learning",
                                      "chance-level", "loss-plateau", "metric-flat-loss-falling"),
            E, Scope.RUN, "saturated units pass back almost no gradient: learning crawls", Severity.WARNING),
    *_rules("vanishing-gradients", ("update-ratio", "lr-too-low", "no-learning", "chance-level", "loss-plateau"),
            E, Scope.RUN, "the first layers get almost no gradient and stay where they started", Severity.WARNING),
    *_rules("update-ratio", ("lr-too-low", "no-learning", "chance-level"), E, Scope.RUN,
            "weights that barely move make the loss creep or stall", Severity.WARNING, "low"),
    *_rules("update-ratio", ("loss-plateau",), C, Scope.RUN,
            "the weights barely move: the plateau is a learning rate too low, and lowering it further "
            "would not help", Severity.WARNING, "low"),
    *_rules("update-ratio", ("no-learning", "chance-level", "loss-plateau"), E, Scope.RUN,
            "layers whose weights do not change cannot learn", Severity.WARNING, "frozen"),
    *_rules("update-ratio", ("loss-oscillation", "loss-plateau"), E, Scope.RUN,
            "weights that change wholesale every step make the loss bounce around a level", Severity.INFO, "high"),
    # Learning rate too low, and a loss that does not move.
    *_rules("lr-too-low", ("no-learning", "loss-plateau", "chance-level", "still-improving"), E,
            Scope.RUN, "steps too small to get anywhere: the loss creeps down a straight line"),
    *_rules("no-learning", ("chance-level", "class-imbalance", "underconfident", "loss-plateau"), E,
            Scope.RUN, "a loss that never moved leaves the model predicting the prior"),
    # Chance level and class imbalance: one story.
    Rule("chance-level", "class-imbalance", S, Scope.METRIC_TAG,
         "accuracy pinned at the majority-class rate is chance level for this label prior: "
         "one story, told once", problem="class imbalance: model predicts the majority class"),
    *_rules("chance-level", ("underconfident",), E, Scope.RUN,
            "a model at chance has chance-level probabilities"),
    *_rules("chance-level", ("metric-flat-loss-falling",), C, Scope.METRIC_TAG,
            "the loss sits at the prior's level: there is no learning for the metric to catch up "
            "with"),
    # Gradients and oscillation make spikes.
    *_rules("grad-norm", ("loss-spikes",), E, Scope.RUN,
            "bursts of the gradient norm are what the loss spikes come from"),
    *_rules("loss-oscillation", ("loss-spikes", "loss-plateau"), E, Scope.TAG,
            "the spikes and the flat level are the oscillation's peaks and mean"),
    # Generalisation.
    *_rules("overfitting", ("val-better-than-train",), C, Scope.RUN,
            "the validation loss turned up while the training loss fell, which a leaked "
            "validation set would not do: the gap is training-time regularisation"),
    *_rules("overfitting", ("still-improving",), C, Scope.RUN,
            "the training loss still falls but validation has turned: training longer "
            "overfits more"),
)
del E, C, S


@dataclass(frozen=True)
class Link:
    """``finding`` related to ``by`` (the higher-priority finding) for ``reason``."""

    finding: Finding
    by: Finding
    relation: Relation
    reason: str


@dataclass(frozen=True)
class Diagnosis:
    """What is wrong with one run, leading with its root cause.

    ``primary`` is the root-cause finding (None for healthy runs and for runs that could
    not be judged), ``problem`` its plain name; ``explains`` the findings it accounts for
    (directly or through a finding it explains); ``superseded`` the findings a
    higher-priority finding contradicts or tells the same story as, with the reason (left
    out of counts and ``--fail-on``); ``sources`` every file the run was read from.

    One run written in several formats (:mod:`rundoctor.twins`) has one diagnosis from the
    findings of all its formats: ``run`` is the leader (the member reports show it under),
    ``members`` every member's id, the leader first, and ``sources`` every source of every
    member.
    """

    run: str
    verdict: Verdict
    problem: str
    primary: Finding | None
    explains: tuple[Link, ...]
    superseded: tuple[Link, ...]
    sources: tuple[str, ...]
    detail: str  # the key fact with its number: the primary's first clause, or why unjudged
    advice: str
    members: tuple[str, ...] = ()  # empty means (run,)

    def __post_init__(self) -> None:
        if not self.members:
            object.__setattr__(self, "members", (self.run,))

    @property
    def level(self) -> Severity | None:
        """The verdict's level: what ``--fail-on`` sees for this run."""
        return self.verdict.level

    @property
    def summary(self) -> str:
        """One line: ``training diverged — train/loss turned non-finite at step 600 ...``.

        A run with notes only (``minor``) is summed up by its note alone: a problem's name
        asserts a cause ("learning rate too high") that information-level evidence does not
        establish, and a healthy run's header must not read like a diagnosis.
        """
        if self.verdict is Verdict.MINOR:
            return self.detail
        return f"{self.problem} — {self.detail}"


def relate(findings: Sequence[Finding], roles: Mapping[str, Role] | None = None
           ) -> tuple[list[Link], list[Link]]:
    """Apply :data:`RULES` to one run's findings: (superseded, explained) links.

    Findings are visited from the highest-priority check down; a superseded finding neither
    supersedes nor explains anything, so a chain of rules resolves from the top.
    """
    roles = roles or {}
    ordered = sorted(findings, key=_priority_key)
    superseded: dict[int, Link] = {}
    explained: list[Link] = []
    for cause in ordered:
        if id(cause) in superseded:
            continue
        for rule in _BY_CAUSE.get(cause.check, ()):
            if cause.severity.rank < rule.cause_at_least.rank:
                continue
            if rule.cause_direction is not None and cause.evidence.get("direction") != rule.cause_direction:
                continue
            for effect in ordered:
                if effect is cause or effect.check != rule.effect or id(effect) in superseded:
                    continue
                if not _in_scope(rule.scope, cause, effect, roles):
                    continue
                link = Link(effect, cause, rule.relation, rule.reason)
                if rule.relation is Relation.EXPLAINS:
                    explained.append(link)
                else:
                    superseded[id(effect)] = link
    explained = [link for link in explained if id(link.finding) not in superseded and id(link.by) not in superseded]
    return list(superseded.values()), explained


def diagnose_run(run: Run, findings: Sequence[Finding]) -> Diagnosis:
    """The diagnosis of ``run`` from its findings (all of them, in any order)."""
    return diagnose_group((run,), findings)


def diagnose_group(members: Sequence[Run], findings: Sequence[Finding]) -> Diagnosis:
    """One diagnosis of the runs of one twin group (one run written in several formats)
    from the findings of all of them; ``members[0]`` leads (:func:`rundoctor.twins.twin_groups`).

    The rules relate findings across members: a NaN read from the event files contradicts
    "still improving" read from the CSV.  Among equal findings of several members the
    leader's comes first, so it is the one that becomes the primary.
    """
    lead = members[0]
    order = {run.id: index for index, run in enumerate(members)}
    findings = sorted(findings, key=lambda finding: order.get(finding.run, len(order)))  # stable
    roles: dict[str, Role] = {}
    for run in reversed(members):  # the leader's role for a tag wins
        roles.update(run.roles)
    superseded, explained = relate(findings, roles)
    gone = {id(link.finding) for link in superseded}
    active = [finding for finding in findings if id(finding) not in gone]
    worst = max((finding.severity for finding in active), key=lambda s: s.rank, default=None)
    sources = tuple(dict.fromkeys(source for run in members for source in run.sources))
    ids = tuple(run.id for run in members)
    data = _group_data_verdict(members)
    if data is not None and (worst is None or worst.rank <= data[0].level.rank):  # type: ignore[union-attr]
        verdict, detail = data
        advice = NO_DATA_ADVICE if verdict is Verdict.NO_DATA else TOO_SHORT_ADVICE
        return Diagnosis(lead.id, verdict, PROBLEM_OF[verdict], None, (), tuple(superseded), sources,
                         detail, advice, ids)
    if not active:
        return Diagnosis(lead.id, Verdict.HEALTHY, "healthy", None, (), tuple(superseded), sources,
                         "no findings", "", ids)  # reports print "no findings from N checks"
    primary = _pick_primary(active, explained, order)
    explains = _closure(primary, explained)
    problem = _problem(primary, superseded, roles)
    return Diagnosis(lead.id, _BY_LEVEL[worst], problem, primary, tuple(explains), tuple(superseded),
                     sources, headline(primary.message), primary.advice, ids)


def diagnose_all(runs: Sequence[Run], findings: Sequence[Finding]) -> tuple[Diagnosis, ...]:
    """One diagnosis per training run: every twin group of ``runs`` diagnosed once, from the
    findings of all its members (a run with no twin is a group of one)."""
    by_run: dict[str, list[Finding]] = {}
    for finding in findings:
        by_run.setdefault(finding.run, []).append(finding)
    return tuple(
        diagnose_group(group, [finding for run in group for finding in by_run.get(run.id, ())])
        for group in twin_groups(runs)
    )


PROBLEM_OF = {Verdict.NO_DATA: "no data", Verdict.TOO_SHORT: "too short to judge"}
NO_DATA_ADVICE = (
    "Check that the run logged anything: the writer was flushed and closed, the logging "
    "interval is shorter than the run, and the logs are the ones of this run."
)
TOO_SHORT_ADVICE = (
    "Log more often (a shorter logging or evaluation interval) or let the run go on longer, "
    f"so its loss and metrics have at least {MIN_POINTS_TO_JUDGE} points to judge; map tags "
    "that were not recognised with --role."
)


def _group_data_verdict(members: Sequence[Run]) -> tuple[Verdict, str] | None:
    """A group can be judged when one of its members can; else the verdict of the member
    nearest to judgeable (too short before no data), the leader among equals."""
    verdicts = [_data_verdict(run) for run in members]
    if any(verdict is None for verdict in verdicts):
        return None
    return min(verdicts, key=lambda verdict: verdict[0] is Verdict.NO_DATA)  # type: ignore[index]


def _data_verdict(run: Run) -> tuple[Verdict, str] | None:
    """``no_data`` / ``too_short`` with the fact that says why, or None for a judgeable run."""
    if run.points == 0:
        return Verdict.NO_DATA, "the log holds no points"
    if not bool(np.isfinite(run.values).any()):
        return Verdict.NO_DATA, f"all {run.points:,} points are NaN or infinite"
    judged = [tag for tag in run.tags if run.roles.get(tag) in JUDGED_ROLES]
    if not judged:
        return Verdict.TOO_SHORT, (
            f"no loss or metric series among {len(run.tags):,} "
            f"tag{'s' if len(run.tags) != 1 else ''}"
        )
    counts = {tag: len(run.curve(tag).by_step.finite) for tag in judged}
    longest = max(counts, key=lambda tag: counts[tag])
    if counts[longest] >= MIN_POINTS_TO_JUDGE:
        return None
    return Verdict.TOO_SHORT, (
        f"the longest loss or metric series, {longest}, has "
        f"{counts[longest]} finite point{'s' if counts[longest] != 1 else ''} "
        f"(the curve checks need {MIN_POINTS_TO_JUDGE})"
    )


def _pick_primary(active: Sequence[Finding], explained: Sequence[Link],
                  member_rank: Mapping[str, int] | None = None) -> Finding:
    """The root whose story is worst (severity over itself and what it explains), then a
    problem before an observation, then the most fundamental check, then (in a twin group) the earlier member, then the
    earliest step."""
    member_rank = member_rank or {}
    explained_ids = {id(link.finding) for link in explained}
    roots = [finding for finding in active if id(finding) not in explained_ids] or list(active)

    def story(root: Finding) -> tuple[int, bool, int, int, int, str]:
        told = [root, *(link.finding for link in _closure(root, explained))]
        check_rank, step, code = _priority_key(root)
        return (-max(finding.severity.rank for finding in told), _is_observation(root), check_rank,
                member_rank.get(root.run, 0), step, code)

    return min(roots, key=story)


def _is_observation(finding: Finding) -> bool:
    """Whether ``finding`` only says how a series was logged (:data:`OBSERVATIONS`)."""
    return any(finding.check == check and finding.evidence.get(key) == value
               for check, key, value in OBSERVATIONS)


def _closure(root: Finding, explained: Sequence[Link]) -> list[Link]:
    """The findings ``root`` explains, directly or through what it explains, each once."""
    found: list[Link] = []
    seen = {id(root)}
    frontier = [root]
    while frontier:
        cause = frontier.pop(0)
        for link in explained:
            if link.by is cause and id(link.finding) not in seen:
                seen.add(id(link.finding))
                found.append(link)
                frontier.append(link.finding)
    return found


def _problem(primary: Finding, superseded: Sequence[Link], roles: Mapping[str, Role]) -> str:
    """The primary's problem name; a same-story rule that folded a finding into it names the
    story, and a check whose name fits only some roles says less about other series."""
    for link in superseded:
        if link.by is primary and link.relation is Relation.SAME_STORY:
            rule = _RULE_OF.get((primary.check, link.finding.check))
            if rule is not None and rule.problem:
                return rule.problem
    for check, key, value, name in EVIDENCED_PROBLEMS:
        if check == primary.check and key in primary.evidence and (value is None or primary.evidence[key] == value):
            return name
    narrow = NARROW_PROBLEMS.get(primary.check)
    if narrow is not None and not any(roles.get(tag) in narrow[0] for tag in primary.tags):
        return narrow[1]
    return PROBLEMS.get(primary.check, primary.check.replace("-", " "))


HEADLINE_LIMIT = 100


def headline(message: str) -> str:
    """A finding's message cut to its first clause: the sentence with the key number.

    The cut is at the first ``; `` outside parentheses; a clause still longer than
    :data:`HEADLINE_LIMIT` is cut before its last parenthesis or comma that fits (outside
    parentheses), else at a word with an ellipsis.
    """
    text = " ".join(message.split())
    depth, cuts = 0, []
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and text.startswith("; ", index):
            text = text[:index]
            break
        if depth == 0 and (text.startswith(" (", index) or text.startswith(", ", index)):
            cuts.append(index)
    if len(text) <= HEADLINE_LIMIT:
        return text
    fitting = [cut for cut in cuts if 20 <= cut <= HEADLINE_LIMIT]
    if fitting:
        return text[: fitting[-1]]
    cut = text.rfind(" ", 20, HEADLINE_LIMIT)
    return text[: cut if cut > 0 else HEADLINE_LIMIT] + "…"


def _in_scope(scope: Scope, cause: Finding, effect: Finding, roles: Mapping[str, Role]) -> bool:
    if scope is Scope.RUN:
        return True
    shared = set(cause.tags) & set(effect.tags)
    if scope is Scope.METRIC_TAG:
        shared = {tag for tag in shared if roles.get(tag) not in LOSS_ROLES}
    return bool(shared)


_RANK = {name: rank for rank, name in enumerate(PROBLEMS)}


def _priority_key(finding: Finding) -> tuple[int, int, str]:
    step = finding.first_step if finding.first_step is not None else -(2**63)
    return (_RANK.get(finding.check, len(_RANK)), step, finding.code)


_BY_CAUSE: dict[str, list[Rule]] = {}
for _rule in RULES:
    _BY_CAUSE.setdefault(_rule.cause, []).append(_rule)
_RULE_OF = {(rule.cause, rule.effect): rule for rule in RULES}
del _rule
