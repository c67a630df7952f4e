"""The diagnosis: verdicts, the primary problem, what it explains, contradictions resolved,
and one run written in two formats diagnosed once.

Most cases hand-build findings (only the relating logic is under test); a few run the real
engine on runs built from the curve builders.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import pytest

from rundoctor import engine
from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.diagnosis import (
    MIN_POINTS_TO_JUDGE,
    PROBLEMS,
    RULES,
    Relation,
    Verdict,
    diagnose_group,
    diagnose_run,
    headline,
)
from rundoctor.findings import Finding, Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions, render
from rundoctor.series import Run
from rundoctor.twins import twin_groups
from tests.curves import decay, make_run, noisy, rise, steps, with_nan
from tests.reporters.reports import finding, twin_report, twin_runs, written

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
CODES = {check.name: check.code for check in REGISTRY}


def classifier_run(run_id: str = "runs/a") -> Run:
    """A run with a loss, a validation loss and two accuracies, 100 points each."""
    return make_run(
        {
            "train/loss": (steps(100), decay(100)),
            "val/loss": (steps(100), decay(100, start=2.2)),
            "val/accuracy": (steps(100), rise(100)),
            "val/top5": (steps(100), rise(100)),
        },
        run_id=run_id,
    )


def found(run: Run, check: str, severity: Severity | None = None, tags: tuple[str, ...] = ("train/loss",),
          first: int | None = 10) -> Finding:
    made = next(c for c in REGISTRY if c.name == check)
    return finding(run.id, check, made.code, severity or made.severity, tags=tags, steps=(first, 99),
                   message=f"{check} message, with the number 42; and more", advice=f"{check} advice")


def superseded(diagnosis: Any) -> dict[str, tuple[str, Relation]]:
    return {link.finding.check: (link.by.check, link.relation) for link in diagnosis.superseded}


def explained(diagnosis: Any) -> set[str]:
    return {link.finding.check for link in diagnosis.explains}


# The table --------------------------------------------------------------------------------

def test_problem_names_and_rules_name_real_checks() -> None:
    assert set(PROBLEMS) <= set(CODES)
    for rule in RULES:
        assert rule.cause in CODES and rule.effect in CODES, rule
        assert rule.reason


def test_every_rule_goes_from_a_more_fundamental_check_to_a_less_fundamental_one() -> None:
    rank = {name: index for index, name in enumerate(PROBLEMS)}
    assert all(rank[rule.cause] < rank[rule.effect] for rule in RULES)


def test_too_short_uses_the_fewest_points_a_trend_check_needs() -> None:
    trend = ("loss-divergence", "no-learning", "lr-too-low", "overfitting", "chance-level",
             "class-imbalance", "delayed-generalization", "val-better-than-train")
    needs = {check.name: check.default_params().min_points for check in REGISTRY if check.name in trend}
    assert min(needs.values()) == MIN_POINTS_TO_JUDGE


# Contradictions -----------------------------------------------------------------------------

@pytest.mark.parametrize("cause", ["non-finite", "loss-divergence"])
def test_a_run_that_went_nan_or_diverged_is_not_still_improving(cause: str) -> None:
    run = classifier_run()
    findings = [found(run, cause, ERROR, first=60), found(run, "still-improving", first=80)]
    diagnosis = diagnose_run(run, findings)
    assert superseded(diagnosis) == {"still-improving": (cause, Relation.CONTRADICTS)}
    assert diagnosis.verdict is Verdict.SERIOUS and diagnosis.primary is findings[0]


def test_a_transient_nan_does_not_contradict_still_improving() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, "non-finite", WARNING), found(run, "still-improving")])
    assert superseded(diagnosis) == {}


@pytest.mark.parametrize("effect", ["metric-flat-loss-falling", "delayed-generalization"])
@pytest.mark.parametrize("bug", ["metric-out-of-range", "metric-loss-disagreement"])
def test_may_jump_later_is_not_said_of_a_broken_metric(bug: str, effect: str) -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [
        found(run, bug, WARNING, tags=("val/accuracy", "val/loss")),
        found(run, effect, tags=("val/accuracy", "val/loss")),
    ])
    assert superseded(diagnosis) == {effect: (bug, Relation.CONTRADICTS)}
    assert diagnosis.problem == "metric is computed wrongly"


def test_a_bug_in_another_metric_sharing_only_the_loss_contradicts_nothing() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [
        found(run, "metric-loss-disagreement", tags=("val/top5", "val/loss")),
        found(run, "metric-flat-loss-falling", tags=("val/accuracy", "val/loss")),
    ])
    assert superseded(diagnosis) == {}


def test_a_metric_logged_in_percent_is_information_not_a_bug() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [
        found(run, "metric-out-of-range", INFO, tags=("val/accuracy",)),
        found(run, "metric-flat-loss-falling", tags=("val/accuracy", "val/loss")),
    ])
    assert superseded(diagnosis) == {}


def test_a_metric_logged_in_percent_leads_only_a_run_with_nothing_else_to_say() -> None:
    run = classifier_run()
    made = next(c for c in REGISTRY if c.name == "metric-out-of-range")
    percent = finding(run.id, made.name, made.code, INFO, tags=("val/accuracy",), steps=(0, 99),
                      message="val/accuracy looks like an accuracy in percent", evidence={"unit": "percent"})
    alone = diagnose_run(run, [percent])
    assert (alone.primary, alone.problem) == (percent, "metric logged in percent")
    # Any other note of its severity leads, though the check ranks below metric-out-of-range.
    improving = found(run, "still-improving", INFO)
    both = diagnose_run(run, [percent, improving])
    assert (both.primary, both.problem) == (improving, "still improving: could train longer")
    # Near miss: a value outside [0, 1] (no percent unit) is a metric bug and leads.
    outside = found(run, "metric-out-of-range", INFO, tags=("val/accuracy",))
    assert diagnose_run(run, [outside, improving]).primary is outside


@pytest.mark.parametrize("effect", ["metric-flat-loss-falling", "delayed-generalization"])
@pytest.mark.parametrize("cause, severity", [("loss-divergence", ERROR), ("non-finite", ERROR)])
def test_may_jump_later_is_not_said_when_the_loss_is_rising_or_broken(cause: str, severity: Severity, effect: str) -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, cause, severity), found(run, effect, tags=("val/accuracy", "val/loss"))])
    assert superseded(diagnosis) == {effect: (cause, Relation.CONTRADICTS)}


def test_chance_level_and_class_imbalance_on_one_metric_are_one_story_told_once() -> None:
    run = classifier_run()
    chance = found(run, "chance-level", tags=("val/accuracy", "val/loss"))
    imbalance = found(run, "class-imbalance", tags=("val/accuracy",))
    diagnosis = diagnose_run(run, [imbalance, chance])
    assert superseded(diagnosis) == {"class-imbalance": ("chance-level", Relation.SAME_STORY)}
    assert diagnosis.primary is chance
    assert diagnosis.problem == "class imbalance: model predicts the majority class"
    report = Report(runs=(run,), findings=(imbalance, chance))
    assert report.active_findings_for(run.id) == [chance] and report.counts()["warning"] == 0


def test_chance_level_and_class_imbalance_on_different_metrics_are_both_told() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, "chance-level", tags=("val/top5",)),
                                   found(run, "class-imbalance", tags=("val/accuracy",))])
    assert superseded(diagnosis) == {}


def test_overfitting_contradicts_a_leak_and_training_longer() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, "overfitting", tags=("val/loss", "train/loss")),
                                   found(run, "val-better-than-train", tags=("val/loss", "train/loss")),
                                   found(run, "still-improving")])
    assert superseded(diagnosis) == {
        "val-better-than-train": ("overfitting", Relation.CONTRADICTS),
        "still-improving": ("overfitting", Relation.CONTRADICTS),
    }
    assert diagnosis.problem == "overfitting" and diagnosis.verdict is Verdict.PROBLEM


# The primary problem and what it explains ---------------------------------------------------

def test_nan_and_divergence_explain_the_shapes_they_leave() -> None:
    run = classifier_run()
    effects = ["loss-spikes", "loss-oscillation", "loss-plateau", "no-learning", "chance-level"]
    findings = [found(run, "loss-divergence")] + [found(run, effect) for effect in effects]
    diagnosis = diagnose_run(run, findings)
    assert diagnosis.primary is findings[0] and explained(diagnosis) == set(effects)
    with_nan_first = diagnose_run(run, [found(run, "non-finite", ERROR), *findings])
    assert with_nan_first.problem == "training diverged (NaN/inf)"
    assert explained(with_nan_first) == {"loss-divergence", *effects}


def test_a_too_low_learning_rate_is_the_root_of_no_learning_even_though_less_severe() -> None:
    run = classifier_run()
    cause, symptom = found(run, "lr-too-low", WARNING), found(run, "no-learning", ERROR)
    diagnosis = diagnose_run(run, [symptom, cause, found(run, "loss-plateau")])
    assert diagnosis.primary is cause and diagnosis.problem == "learning rate too low"
    assert diagnosis.verdict is Verdict.SERIOUS  # the verdict follows the worst finding
    assert explained(diagnosis) == {"no-learning", "loss-plateau"}
    assert diagnosis.advice == "lr-too-low advice"
    assert diagnosis.summary == "learning rate too low — lr-too-low message, with the number 42"


def test_explained_findings_still_count_for_fail_on() -> None:
    run = classifier_run()
    report = Report(runs=(run,), findings=(found(run, "lr-too-low"), found(run, "no-learning", ERROR)))
    assert len(report.failing()) == 1 and report.exit_code == 1


def test_a_nan_in_the_gradient_norm_alone_explains_no_learning_not() -> None:
    run = make_run({"train/loss": (steps(100), decay(100)), "grad_norm": (steps(100), decay(100))})
    diagnosis = diagnose_run(run, [found(run, "non-finite", INFO, tags=("grad_norm",)), found(run, "no-learning")])
    assert diagnosis.problem == "stalled: no learning" and explained(diagnosis) == set()


def test_a_nan_outside_the_training_loss_is_not_called_a_divergence() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, "non-finite", WARNING, tags=("val/accuracy",))])
    assert diagnosis.problem == "values went NaN/inf"


def test_unrelated_problems_pick_the_worst_then_the_most_fundamental() -> None:
    run = classifier_run()
    diagnosis = diagnose_run(run, [found(run, "loss-spikes"), found(run, "overfitting"), found(run, "still-improving")])
    assert diagnosis.problem == "loss spikes" and diagnosis.verdict is Verdict.PROBLEM


# Verdicts ------------------------------------------------------------------------------------

@pytest.mark.parametrize("severity, verdict", [(None, Verdict.HEALTHY), (INFO, Verdict.MINOR),
                                               (WARNING, Verdict.PROBLEM), (ERROR, Verdict.SERIOUS)])
def test_the_verdict_follows_the_worst_active_finding(severity: Severity | None, verdict: Verdict) -> None:
    run = classifier_run()
    findings = [] if severity is None else [found(run, "loss-spikes", severity)]
    diagnosis = diagnose_run(run, findings)
    assert diagnosis.verdict is verdict and diagnosis.level is severity


def test_a_run_with_notes_only_is_summed_up_by_its_note_not_a_named_cause() -> None:
    run = classifier_run()
    note, warning = found(run, "loss-oscillation", INFO), found(run, "loss-oscillation", WARNING)
    minor, problem = diagnose_run(run, [note]), diagnose_run(run, [warning])
    assert minor.problem == problem.problem == "loss oscillates: learning rate too high"
    assert minor.summary == minor.detail and "learning rate too high" not in minor.summary
    assert problem.summary.startswith("loss oscillates: learning rate too high — ")


def test_an_empty_run_has_no_data_not_healthy() -> None:
    diagnosis = diagnose_run(make_run({}, run_id="empty"), [])
    assert diagnosis.verdict is Verdict.NO_DATA and diagnosis.level is WARNING
    assert diagnosis.summary == "no data — the log holds no points" and diagnosis.primary is None


def test_a_run_of_only_nan_has_no_data() -> None:
    run = make_run({"train/loss": (steps(10), np.full(10, np.nan))})
    assert diagnose_run(run, []).verdict is Verdict.NO_DATA
    assert "all 10 points are NaN or infinite" in diagnose_run(run, []).summary


def test_an_error_finding_beats_no_data_and_no_data_beats_a_warning() -> None:
    run = make_run({"train/loss": (steps(10), np.full(10, np.nan))})
    assert diagnose_run(run, [found(run, "non-finite", ERROR)]).verdict is Verdict.SERIOUS
    assert diagnose_run(run, [found(run, "truncated-log", tags=())]).verdict is Verdict.NO_DATA


@pytest.mark.parametrize("points", [1, MIN_POINTS_TO_JUDGE - 1])
def test_a_run_with_fewer_points_than_a_curve_check_needs_is_too_short(points: int) -> None:
    run = make_run({"train/loss": (steps(points), decay(points)), "epoch": (steps(50), np.arange(50.0))})
    diagnosis = diagnose_run(run, [])
    assert diagnosis.verdict is Verdict.TOO_SHORT and diagnosis.level is INFO
    assert f"train/loss, has {points} finite point" in diagnosis.summary


def test_a_run_long_enough_is_judged() -> None:
    run = make_run({"train/loss": (steps(MIN_POINTS_TO_JUDGE), decay(MIN_POINTS_TO_JUDGE))})
    assert diagnose_run(run, []).verdict is Verdict.HEALTHY


def test_a_run_without_any_loss_or_metric_is_too_short_to_judge() -> None:
    run = make_run({"epoch": (steps(100), np.arange(100.0)), "lr": (steps(100), np.full(100, 1e-3))})
    diagnosis = diagnose_run(run, [])
    assert diagnosis.verdict is Verdict.TOO_SHORT and "no loss or metric series among 2 tags" in diagnosis.summary


@pytest.mark.parametrize("fail_on, empty_fails, short_fails", [
    (ERROR, False, False), (WARNING, True, False), (INFO, True, True), (None, False, False),
])
def test_fail_on_counts_no_data_at_warning_and_too_short_at_info(
    fail_on: Severity | None, empty_fails: bool, short_fails: bool
) -> None:
    empty = make_run({}, run_id="empty")
    short = make_run({"train/loss": (steps(3), decay(3))}, run_id="short")
    assert Report(runs=(empty,), findings=(), fail_on=fail_on).exit_code == int(empty_fails)
    assert Report(runs=(short,), findings=(), fail_on=fail_on).exit_code == int(short_fails)


def test_a_superseded_finding_does_not_fail() -> None:
    run = classifier_run()
    nan = found(run, "non-finite", ERROR)
    still = found(run, "still-improving")
    report = Report(runs=(run,), findings=(nan, still), fail_on=INFO)
    assert report.failing() == [nan] and report.superseded_by(still).by is nan  # type: ignore[union-attr]
    assert report.counts() == {"info": 0, "warning": 0, "error": 1}


# The engine on real curves -----------------------------------------------------------------------

def test_the_engine_diagnoses_a_nan_run_and_drops_still_improving() -> None:
    run = make_run({"train/loss": (steps(1000), with_nan(noisy(decay(1000)), 600))}, run_id="runs/nan")
    report = engine.diagnose([run], [], Settings())
    diagnosis = report.diagnosis(run.id)
    assert diagnosis.verdict is Verdict.SERIOUS and diagnosis.primary is not None
    assert diagnosis.primary.check == "non-finite"
    assert diagnosis.summary.startswith("training diverged (NaN/inf) — train/loss")
    assert "still-improving" not in {f.check for f in report.active_findings_for(run.id)}


def test_the_engine_takes_its_registry_as_an_argument() -> None:
    only = [c for c in REGISTRY if c.name == "non-finite"]
    run = make_run({"train/loss": (steps(100), with_nan(decay(100), 60))})
    report = engine.diagnose([run], [], Settings(), only)
    assert {o.check for o in report.outcomes} == {"non-finite"}


def test_a_bug_resolving_the_classes_is_an_error_outcome_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("oops")

    monkeypatch.setattr(engine, "resolve_num_classes", broken)
    run = make_run({"train/loss": (steps(100), decay(100))})
    report = engine.diagnose([run], [], Settings(), [c for c in REGISTRY if c.name == "no-learning"])
    (outcome,) = report.outcomes
    assert outcome.status.value == "error" and outcome.reason == "resolving the number of classes raised RuntimeError: oops"


def test_headline_is_the_first_clause_outside_parentheses() -> None:
    assert headline("a (b; c) d; e") == "a (b; c) d"
    long = "val_loss is below 0.7x train_loss at 100% of 30 evaluations (median ratio 0.32; threshold: more than 50%)"
    assert headline(long) == "val_loss is below 0.7x train_loss at 100% of 30 evaluations"
    assert headline("x" * 30 + " " + "y" * 200).endswith("…")


def test_the_json_report_with_every_verdict_follows_the_schema() -> None:
    runs = [classifier_run(f"runs/{name}") for name in ("healthy", "minor", "problem", "serious")]
    runs += [make_run({}, run_id="runs/empty"), make_run({"train/loss": (steps(2), decay(2))}, run_id="runs/short")]
    findings = (
        found(runs[1], "still-improving"), found(runs[2], "loss-spikes"),
        found(runs[3], "non-finite", ERROR), found(runs[3], "still-improving"),
        found(runs[3], "loss-plateau"),
    )
    text = render("json", Report(runs=tuple(runs), findings=findings, fail_on=WARNING), RenderOptions())
    document = json.loads(text)
    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    verdicts = {run["id"]: run["diagnosis"]["verdict"] for run in document["runs"]}
    assert verdicts == {"runs/empty": "no_data", "runs/healthy": "healthy", "runs/minor": "minor",
                        "runs/problem": "problem", "runs/serious": "serious", "runs/short": "too_short"}
    serious = next(run["diagnosis"] for run in document["runs"] if run["id"] == "runs/serious")
    assert [e["check"] for e in serious["explains"]] == ["loss-plateau"]
    assert document["summary"]["findings_superseded"] == 1 and document["summary"]["exit_code"] == 1


# Twins: one run written in two formats ----------------------------------------------------------

LOSS = noisy(decay(50), seed=3)


def test_event_files_and_a_results_csv_in_one_directory_are_one_training_run() -> None:
    events, csv = twin_runs()
    assert twin_groups([csv, events]) == [(events, csv)]  # equal points: the leader by id
    report = engine.diagnose([events, csv], [], Settings())
    assert [run.id for run in report.runs] == ["out/train", "out/train/results.csv"]  # both kept, as read
    diagnosis = report.diagnosis(csv.id)
    assert diagnosis is report.diagnosis(events.id) and len(report.diagnoses or ()) == 1
    assert diagnosis.run == "out/train" and diagnosis.members == ("out/train", "out/train/results.csv")
    assert diagnosis.sources == ("out/train/events.out.tfevents.1", "out/train/results.csv")


def test_the_leader_is_the_member_with_the_most_points() -> None:
    events, _ = twin_runs()
    longer = written("out/train/results.csv", "ultralytics-csv", ["out/train/results.csv"], {
        "train/box_loss": (steps(50), np.round(LOSS, 5)), "metrics/mAP50(B)": (steps(50), rise(50)),
        "metrics/recall(B)": (steps(50), rise(50, start=0.2)), "metrics/precision(B)": (steps(50), rise(50)),
    })
    ((lead, other),) = twin_groups([events, longer])
    assert (lead.id, other.id) == (longer.id, events.id)


def test_a_trainer_state_in_a_checkpoint_and_event_files_under_runs_are_twins() -> None:
    state = written("out/checkpoint-50/trainer_state.json", "hf-trainer-state", ["out/checkpoint-50/trainer_state.json"],
                    {"loss": (steps(50, every=10), np.round(LOSS, 4))})
    events = written("out/runs/Jan01_host", "tensorboard", ["out/runs/Jan01_host/events.out.tfevents.1"],
                     {"train/loss": (steps(50, every=10), LOSS.astype(np.float32))})
    assert [len(group) for group in twin_groups([state, events])] == [2]


def test_detectron2_metrics_json_and_its_events_are_twins() -> None:
    metrics = written("out/metrics.json", "detectron2", ["out/metrics.json"],
                      {"total_loss": (steps(50), LOSS), "lr": (steps(50), np.full(50, 0.02))})
    events = written("out", "tensorboard", ["out/events.out.tfevents.1"],
                     {"total_loss": (steps(50), LOSS), "data_time": (steps(50), np.full(50, 0.1))})
    assert [len(group) for group in twin_groups([metrics, events])] == [2]


def test_two_unrelated_runs_in_one_folder_stay_two_diagnoses() -> None:
    a = written("sweep/a.csv", "wide-csv", ["sweep/a.csv"], {"loss": (steps(50), LOSS)})
    b = written("sweep/b", "tensorboard", ["sweep/b/events.out.tfevents.1"],
                {"loss": (steps(50), LOSS * 1.3), "lr": (steps(50), np.full(50, 0.01))})
    assert twin_groups([b, a]) == [(a,), (b,)]
    report = Report(runs=(a, b), findings=(found(a, "non-finite", ERROR, tags=("loss",)),
                                            found(b, "still-improving", tags=("loss",))))
    assert report.diagnosis(a.id) is not report.diagnosis(b.id)
    assert report.verdict(a.id) is Verdict.SERIOUS and report.verdict(b.id) is Verdict.MINOR
    assert [d.members for d in report.diagnoses or ()] == [(a.id,), (b.id,)]


def test_equal_curves_far_apart_in_the_tree_or_in_one_format_are_not_twins() -> None:
    a = written("x/a/b/c/log.csv", "wide-csv", ["x/a/b/c/log.csv"], {"loss": (steps(50), LOSS)})
    b = written("x/d", "tensorboard", ["x/d/events.out.tfevents.1"], {"loss": (steps(50), LOSS)})
    assert len(twin_groups([a, b])) == 2
    c = written("x/a/b/c/other.csv", "wide-csv", ["x/a/b/c/other.csv"], {"loss": (steps(50), LOSS)})
    assert len(twin_groups([a, c])) == 2


def test_twin_candidates_are_exactly_the_near_pairs_of_different_formats() -> None:
    from rundoctor import twins

    homes = ["/x/a/b/c", "/x/a/b", "/x/d", "/y/q", "x/a", "x/a/b/c/d/e", "/x", "r/s/t", "r/u/v/w"]
    runs = [
        written(f"{home}/log.csv" if k % 2 else home, ["wide-csv", "tensorboard", "mlflow"][k % 3],
                [f"{home}/log.csv"] if k % 2 else [f"{home}/events.out.tfevents.1"], {"loss": (steps(5), LOSS[:5])})
        for k, home in enumerate(homes)
    ]
    near = {
        (i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))
        if runs[i].format != runs[j].format and twins._near(runs[i], runs[j])
    }
    assert near and set(twins._candidate_pairs(runs)) == near


def test_a_shared_learning_rate_schedule_is_no_evidence() -> None:
    a = written("s/a.csv", "wide-csv", ["s/a.csv"], {"loss": (steps(50), LOSS), "lr": (steps(50), np.full(50, 0.01))})
    b = written("s/b", "tensorboard", ["s/b/e.tfevents"],
                {"loss": (steps(50), LOSS + 1), "lr": (steps(50), np.full(50, 0.01))})
    assert len(twin_groups([a, b])) == 2


def test_three_formats_of_one_run_are_one_group() -> None:
    events, csv = twin_runs()
    state = written("out/train/state.json", "json-lines", ["out/train/state.json"],
                    {"box_loss": (steps(50), np.round(LOSS, 4))})
    (group,) = twin_groups([state, csv, events])
    assert {run.id for run in group} == {events.id, csv.id, state.id}


def test_a_nan_in_one_format_contradicts_still_improving_in_the_other() -> None:
    events, csv = twin_runs()
    nan = found(events, "non-finite", ERROR, tags=("train/box_loss",), first=20)
    improving = found(csv, "still-improving", tags=("train/box_loss",), first=40)
    report = Report(runs=(events, csv), findings=(nan, improving))
    diagnosis = report.diagnosis(csv.id)
    assert superseded(diagnosis) == {"still-improving": ("non-finite", Relation.CONTRADICTS)}
    assert diagnosis.verdict is Verdict.SERIOUS and diagnosis.primary is nan
    assert report.active_findings == [nan] and report.superseded_by(improving) is not None


def test_equal_findings_of_two_formats_make_the_leaders_the_primary() -> None:
    events, csv = twin_runs()
    late = found(events, "non-finite", ERROR, tags=("train/box_loss",), first=20)
    early = found(csv, "non-finite", ERROR, tags=("train/box_loss",), first=19)  # an epoch axis counts differently
    diagnosis = diagnose_group((events, csv), [early, late])
    assert diagnosis.primary is late


def test_a_failing_finding_of_any_format_fails_and_verdicts_count_the_run_once() -> None:
    report = twin_report()
    assert report.exit_code == 1
    # the twins again, as full runs to diagnose from the CSV's findings alone
    only_csv = Report.from_runs(twin_runs(), [f for f in report.findings if f.run != "out/train"])
    assert only_csv.exit_code == 1 and only_csv.verdict("out/train") is Verdict.SERIOUS
    document = json.loads(render("json", report, RenderOptions()))
    assert document["summary"]["runs"] == 2
    assert document["summary"]["runs_by_diagnosis"] == {"serious": 1, "problem": 0, "no_data": 0, "minor": 0,
                                                        "too_short": 0, "healthy": 1}
    assert document["summary"]["runs_by_verdict"] == {"healthy": 1, "info": 0, "warnings": 0, "errors": 1}


def test_the_json_report_has_an_entry_per_format_sharing_one_diagnosis() -> None:
    document = json.loads(render("json", twin_report(), RenderOptions()))
    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    entries = {run["id"]: run for run in document["runs"]}
    assert [(run["path"], run["format"]) for run in document["runs"]] == [
        ("out/other.csv", "wide-csv"), ("out/train", "tensorboard"), ("out/train/results.csv", "ultralytics-csv")]
    events, csv = entries["out/train"], entries["out/train/results.csv"]
    assert events["diagnosis"] == csv["diagnosis"]
    assert csv["diagnosis"]["members"] == ["out/train", "out/train/results.csv"]
    assert csv["diagnosis"]["sources"] == ["out/train/events.out.tfevents.1", "out/train/results.csv"]
    assert entries["out/other.csv"]["diagnosis"]["members"] == ["out/other.csv"]
    by_run = [(f["run"], f["check"]) for f in document["findings"]]
    assert by_run == [("out/train", "non-finite"), ("out/train/results.csv", "non-finite"),
                      ("out/train/results.csv", "class-imbalance")]  # each format's own, the NaN in both
    assert document["findings"][csv["diagnosis"]["primary"]["finding"]]["run"] == "out/train"
    assert document["summary"]["findings_by_severity"] == {"error": 2, "warning": 0, "info": 1}
    assert [s["check"] for s in csv["diagnosis"]["superseded"]] == ["still-improving"]


def test_the_text_report_shows_the_run_once_naming_both_formats_and_a_shared_finding_once() -> None:
    text = render("text", twin_report(), RenderOptions(width=100))
    assert text.count("SERIOUS    train\n") == 1 and "results.csv\n" not in text
    assert "also written as results.csv (ultralytics-csv)" in text
    assert text.count("N001 non-finite") == 1 and "(also in ultralytics-csv)" in text
    assert "M004 class-imbalance  steps 30..49  metrics/mAP50(B) pinned at 0.95  (in ultralytics-csv)" in text
    assert "2 runs: 1 serious, 1 healthy; 1 error, 1 info" in text
    assert "Result: 1 finding at or above error (exit 1)" in text


def test_a_more_severe_finding_of_a_later_format_is_not_hidden() -> None:
    events, csv = twin_runs()
    mild = found(events, "loss-spikes", INFO, tags=("train/box_loss",))
    severe = found(csv, "loss-spikes", WARNING, tags=("train/box_loss",))
    report = Report(runs=(events, csv), findings=(mild, severe))
    assert report.shown_findings_for(csv.id) == [mild, severe]
    assert report.also_in(severe) == ()
