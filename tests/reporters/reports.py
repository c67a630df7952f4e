"""Hand-built reports for the reporter tests: runs from the curve builders, findings by hand.

``sample_report`` covers every case a reporter must render: a run with findings of all three
severities (one about a curve that turns NaN, which supersedes a "still improving" finding),
a healthy run, a run whose message and advice hold characters each format must escape, a
skipped and an errored check, and a read error.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.report import CheckOutcome, OutcomeStatus, Report
from rundoctor.series import ReadError, Run
from tests.curves import decay, make_run, noisy, rise, steps, with_nan

# Characters that are markup, separators or escapes in one output format or another.
AWKWARD = "50% of | steps, a: b\nsecond line <tag> & \"quoted\" [bold]x[/bold]"


def finding(
    run: str,
    check: str,
    code: str,
    severity: Severity,
    *,
    tags: tuple[str, ...] = ("train/loss",),
    steps: tuple[int | None, int | None] = (None, None),
    message: str = "something is off",
    advice: str = "try something else",
    confidence: Confidence = Confidence.HIGH,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    return Finding(
        check=check,
        code=code,
        severity=severity,
        confidence=confidence,
        run=run,
        tags=tags,
        first_step=steps[0],
        last_step=steps[1],
        message=message,
        evidence=evidence or {},
        advice=advice,
    )


def nan_run(run_id: str = "sweep/lr_0.1") -> Run:
    n = 1000
    return make_run(
        {
            "train/loss": (steps(n), with_nan(noisy(decay(n)), 600)),
            "val/loss": (steps(20, every=50), decay(20, start=2.2, end=0.4)),
        },
        run_id=run_id,
    )


def healthy_run(run_id: str = "sweep/lr_0.01") -> Run:
    return make_run({"train/loss": (steps(200), noisy(decay(200)))}, run_id=run_id)


def outcomes(run: str, *, skipped: bool = False, errored: bool = False) -> list[CheckOutcome]:
    made = [CheckOutcome("non-finite", "N001", run, OutcomeStatus.RAN)]
    if skipped:
        made.append(CheckOutcome("val-gap", "G001", run, OutcomeStatus.SKIPPED, "no val_accuracy series in this run"))
    if errored:
        made.append(CheckOutcome("loss-spike", "S001", run, OutcomeStatus.ERROR, "ValueError: boom"))
    return made


def sample_report(fail_on: Severity | None = Severity.ERROR) -> Report:
    sick, healthy, awkward = nan_run(), healthy_run(), healthy_run("sweep/lr_0.001")
    findings = [
        finding(
            sick.id, "non-finite", "N001", Severity.ERROR, steps=(600, 999),
            message="train/loss is NaN from step 600 to the end (400 of 1,000 points)",
            advice="Lower the learning rate or clip gradients; check the data for NaN.",
            evidence={"first_nan_step": 600, "nan_points": 400, "last_finite": float("nan")},
        ),
        finding(
            sick.id, "overfitting", "G002", Severity.WARNING, tags=("val/loss", "train/loss"),
            steps=(500, 950), confidence=Confidence.MEDIUM,
            message="val/loss rose 38% above its minimum at step 500 while train/loss kept falling",
            advice="Stop earlier or regularise.",
            evidence={"rise": 0.38, "min_step": 500, "ratio": float("inf")},
        ),
        finding(sick.id, "short-run", "R001", Severity.INFO, tags=(), message="the run is short"),
        finding(
            sick.id, "still-improving", "C006", Severity.INFO, steps=(480, 599),
            message="train/loss is still falling at the end of the run",
        ),
        finding(
            awkward.id, "loss-plateau", "P001", Severity.WARNING, steps=(120, 120),
            message=AWKWARD, advice=AWKWARD, evidence={"note": AWKWARD, "values": [1.0, np.nan]},
        ),
    ]
    return Report(
        runs=(sick, healthy, awkward),
        findings=tuple(findings),
        outcomes=(
            *outcomes(sick.id, errored=True),
            *outcomes(healthy.id, skipped=True),
            *outcomes(awkward.id, skipped=True),
        ),
        errors=(ReadError("broken/events.out.tfevents.1", "truncated record at offset 40"),),
        fail_on=fail_on,
    )


def sweep_report(runs: int = 200, sick_every: int = 10) -> Report:
    """A sweep where every ``sick_every``-th run has one error finding."""
    made = [healthy_run(f"sweep/run_{index:03d}") for index in range(runs)]
    findings = [
        finding(run.id, "non-finite", "N001", Severity.ERROR, steps=(100, 199), message="loss went NaN")
        for run in made[::sick_every]
    ]
    return Report(runs=tuple(made), findings=tuple(findings))


def written(run_id: str, format: str, sources: list[str], series: dict[str, Any], path: str | None = None) -> Run:
    """A run as a reader of ``format`` would give it (path and sources set)."""
    run = make_run(series, run_id=run_id)
    return dataclasses.replace(run, path=path or run_id, format=format, sources=sources)


TWIN_LOSS = noisy(decay(50), seed=3)


def twin_runs() -> tuple[Run, Run]:
    """One YOLO run written twice: event files, and ``results.csv`` beside them (equal losses,
    float32 against five decimals; each format has a series the other lacks)."""
    events = written("out/train", "tensorboard", ["out/train/events.out.tfevents.1"], {
        "train/box_loss": (steps(50), TWIN_LOSS.astype(np.float32)),
        "lr/pg0": (steps(50), np.full(50, 0.01)),
        "val/box_loss": (steps(50), decay(50, start=2.2)),
    })
    csv = written("out/train/results.csv", "ultralytics-csv", ["out/train/results.csv"], {
        "train/box_loss": (steps(50), np.round(TWIN_LOSS, 5)),
        "metrics/mAP50(B)": (steps(50), rise(50)),
    })
    return events, csv


def twin_report(fail_on: Severity | None = Severity.ERROR) -> Report:
    """The twins of :func:`twin_runs` and an unrelated healthy run beside them: a NaN both
    formats show, a "still improving" the CSV shows (contradicted by the NaN), and a finding
    only the CSV has."""
    events, csv = twin_runs()
    other = written("out/other.csv", "wide-csv", ["out/other.csv"], {"loss": (steps(50), decay(50, start=3.0))})
    nan: dict[str, Any] = {"severity": Severity.ERROR, "steps": (20, 30), "advice": "Lower the learning rate.",
                           "message": "train/box_loss is NaN at steps 20..30"}
    findings = [
        finding(events.id, "non-finite", "N001", tags=("train/box_loss",), **nan),
        finding(csv.id, "non-finite", "N001", tags=("train/box_loss",), **nan),
        finding(csv.id, "still-improving", "C006", Severity.INFO, steps=(40, 49),
                message="train/box_loss is still falling at the end of the run"),
        finding(csv.id, "class-imbalance", "M004", Severity.INFO, tags=("metrics/mAP50(B)",),
                steps=(30, 49), message="metrics/mAP50(B) pinned at 0.95"),
    ]
    outcomes_ = [CheckOutcome("non-finite", "N001", run.id, OutcomeStatus.RAN) for run in (events, csv, other)]
    return Report(runs=(events, csv, other), findings=tuple(findings), outcomes=tuple(outcomes_), fail_on=fail_on)
