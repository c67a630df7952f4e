"""What the histogram checks tell the diagnosis: the cause inside the network behind a curve finding."""

from __future__ import annotations

from typing import Any

from rundoctor.checks.registry import REGISTRY
from rundoctor.diagnosis import Relation, diagnose_run
from rundoctor.findings import Finding, Severity
from rundoctor.series import Run
from tests.curves import decay, make_run, rise, steps
from tests.reporters.reports import finding

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def _run() -> Run:
    return make_run({"train/loss": (steps(100), decay(100)), "val/accuracy": (steps(100), rise(100))})


def _found(run: Run, check: str, severity: Severity | None = None, **evidence: Any) -> Finding:
    made = next(c for c in REGISTRY if c.name == check)
    return finding(run.id, check, made.code, severity or made.severity, steps=(10, 99),
                   message=f"{check} message; more", advice=f"{check} advice", evidence=evidence)


def _explained(diagnosis: Any) -> set[str]:
    return {link.finding.check for link in diagnosis.explains}


def test_units_killed_by_a_rising_learning_rate_explain_the_stalled_loss() -> None:
    run = _run()
    dead = _found(run, "dead-units", ERROR, learning_rate_peak=0.3, learning_rate_start=0.001)
    diagnosis = diagnose_run(run, [_found(run, "no-learning", ERROR), _found(run, "loss-plateau", INFO), dead])
    assert diagnosis.primary is dead
    assert diagnosis.problem == "learning rate too high: ReLU units died"
    assert _explained(diagnosis) == {"no-learning", "loss-plateau"}


def test_units_dead_from_the_start_are_named_without_a_cause_they_do_not_show() -> None:
    run = _run()
    diagnosis = diagnose_run(run, [_found(run, "dead-units", ERROR), _found(run, "no-learning", ERROR)])
    assert diagnosis.problem == "ReLU units died"


def test_weights_that_barely_move_make_a_plateau_a_learning_rate_too_low_not_one_to_lower() -> None:
    run = _run()
    slow = _found(run, "update-ratio", WARNING, direction="low")
    plateau = _found(run, "loss-plateau", INFO)
    diagnosis = diagnose_run(run, [plateau, _found(run, "lr-too-low", WARNING), slow])
    assert diagnosis.primary is slow and diagnosis.problem == "learning rate too low: weights barely move"
    assert {link.finding.check: link.relation for link in diagnosis.superseded} == {"loss-plateau": Relation.CONTRADICTS}
    assert _explained(diagnosis) == {"lr-too-low"}


def test_weights_that_move_fast_leave_the_plateau_standing() -> None:
    run = _run()
    fast = _found(run, "update-ratio", INFO, direction="high")
    plateau = _found(run, "loss-plateau", INFO)
    diagnosis = diagnose_run(run, [plateau, fast])
    assert diagnosis.superseded == () and _explained(diagnosis) == {"loss-plateau"}


def test_a_frozen_layer_is_named_as_such() -> None:
    run = _run()
    diagnosis = diagnose_run(run, [_found(run, "update-ratio", WARNING, direction="frozen")])
    assert diagnosis.problem == "layers frozen: weights do not change"


def test_a_bad_init_is_the_root_of_the_saturation_and_vanishing_gradients_it_causes() -> None:
    run = _run()
    init = _found(run, "weight-init", WARNING)
    effects = [_found(run, "saturated-activations", WARNING), _found(run, "vanishing-gradients", ERROR),
               _found(run, "no-learning", ERROR)]
    diagnosis = diagnose_run(run, [*effects, init])
    assert diagnosis.primary is init and diagnosis.problem == "weights initialised wrongly"
    assert _explained(diagnosis) == {"saturated-activations", "vanishing-gradients", "no-learning"}


def test_an_information_level_init_note_explains_nothing() -> None:
    run = _run()
    diagnosis = diagnose_run(run, [_found(run, "weight-init", INFO), _found(run, "no-learning", ERROR)])
    assert diagnosis.primary is not None and diagnosis.primary.check == "no-learning"
