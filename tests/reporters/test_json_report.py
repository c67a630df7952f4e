from __future__ import annotations

import base64
import json
import os
import unicodedata
from collections.abc import Callable
from importlib import resources
from typing import Any

import jsonschema
import pytest

from rundoctor import __version__
from rundoctor.findings import Severity
from rundoctor.report import SCHEMA_VERSION, Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.json_report import render, report_document
from rundoctor.roles import Role
from rundoctor.series import NoteKind, ReadError, ReadNote
from tests.curves import decay, make_run, steps
from tests.reporters.reports import finding, healthy_run, sample_report, sweep_report


def schema() -> dict[str, Any]:
    return json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))


def document(report: Report) -> dict[str, Any]:
    return json.loads(render(report, RenderOptions()))


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(doc)


def test_the_schema_is_a_valid_draft_2020_12_schema_of_this_version() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema()["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_the_schema_enums_follow_the_code() -> None:
    defs = schema()["$defs"]
    assert defs["role"]["enum"] == [role.value for role in Role]
    kinds = defs["run"]["properties"]["notes"]["items"]["properties"]["kind"]["enum"]
    assert kinds == [kind.value for kind in NoteKind]


@pytest.mark.parametrize("make", [sample_report, lambda: sweep_report(30, 7), lambda: Report(runs=(), findings=())])
def test_reports_validate_against_the_schema(make) -> None:  # type: ignore[no-untyped-def]
    validate(document(make()))


def test_the_schema_rejects_what_a_report_must_not_hold() -> None:
    good = document(sample_report())
    broken = json.loads(json.dumps(good))
    broken["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    skipped_without_reason = json.loads(json.dumps(good))
    outcome = next(o for o in skipped_without_reason["checks"] if o["status"] == "skipped")
    outcome["reason"] = None
    with pytest.raises(jsonschema.ValidationError):
        validate(skipped_without_reason)
    stray = json.loads(json.dumps(good))
    stray["timestamp"] = "2024-01-01"
    with pytest.raises(jsonschema.ValidationError):
        validate(stray)


def test_the_document_carries_version_tool_and_summary() -> None:
    doc = document(sample_report())
    assert list(doc) == [
        "schema_version", "tool", "runs", "findings", "checks", "errors", "suppressed", "baseline", "sweep", "summary"
    ]
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["tool"] == {"name": "rundoctor", "version": __version__}
    assert doc["summary"] == {
        "runs": 3,
        "runs_by_verdict": {"healthy": 1, "info": 0, "warnings": 1, "errors": 1},
        "runs_by_diagnosis": {"serious": 1, "problem": 1, "no_data": 0, "minor": 0, "too_short": 0, "healthy": 1},
        "findings_by_severity": {"error": 1, "warning": 2, "info": 1},
        "findings_superseded": 1,
        "findings_suppressed": 0,
        "findings_baselined": 0,
        "baseline_fixed": 0,
        "fail_on": "error",
        "exit_code": 1,
    }
    assert doc["suppressed"] == [] and doc["baseline"] is None and doc["sweep"] is None
    assert document(sample_report(fail_on=None))["summary"]["fail_on"] == "never"
    assert document(sample_report(fail_on=None))["summary"]["exit_code"] == 0


def test_runs_carry_roles_tags_notes_and_verdict() -> None:
    doc = document(sample_report())
    assert [run["id"] for run in doc["runs"]] == ["sweep/lr_0.001", "sweep/lr_0.01", "sweep/lr_0.1"]
    sick = doc["runs"][2]
    assert sick["roles"] == {"train/loss": "train_loss", "val/loss": "val_loss"}
    assert sick["tags"][1] == {
        "name": "val/loss", "role": "val_loss", "points": 20, "first_step": 0, "last_step": 950, "axis": "step",
    }
    assert sick["verdict"] == "errors" and doc["runs"][1]["verdict"] == "healthy"


def test_each_run_carries_its_diagnosis_pointing_into_findings() -> None:
    doc = document(sample_report())
    sick = doc["runs"][2]["diagnosis"]
    findings = doc["findings"]
    assert sick["verdict"] == "serious" and sick["level"] == "error"
    assert sick["problem"] == "training diverged (NaN/inf)"
    assert findings[sick["primary"]["finding"]]["check"] == sick["primary"]["check"] == "non-finite"
    (superseded,) = sick["superseded"]
    assert superseded["check"] == superseded["finding"]["check"] == "still-improving"
    assert superseded["by"] == "non-finite" and superseded["relation"] == "contradicts"
    # findings holds what the report asserts: the superseded finding is only under its run
    assert "still-improving" not in {f["check"] for f in findings if f["run"] == "sweep/lr_0.1"}
    assert superseded["finding"]["message"].startswith("train/loss is still falling")
    assert sick["sources"] == ["sweep/lr_0.1"]
    assert sick["summary"].startswith("training diverged (NaN/inf) — train/loss is NaN from step 600")
    healthy = doc["runs"][1]["diagnosis"]
    assert healthy["verdict"] == "healthy" and healthy["primary"] is None and healthy["level"] is None
    assert all("superseded_by" not in f for f in findings)


def test_a_run_with_no_data_keeps_the_1_0_verdict_at_its_level() -> None:
    from tests.curves import make_run

    doc = document(Report(runs=(make_run({}, run_id="empty"),), findings=(), fail_on=Severity.WARNING))
    assert doc["runs"][0]["verdict"] == "warnings"
    assert doc["runs"][0]["diagnosis"]["verdict"] == "no_data"
    assert doc["summary"]["exit_code"] == 1
    validate(doc)


def test_read_notes_are_in_the_run() -> None:
    run = healthy_run()
    run.notes.append(ReadNote(NoteKind.DUPLICATED, "log.csv", "3 rows repeat a step", location="line 17", count=3))
    doc = document(Report(runs=(run,), findings=()))
    assert doc["runs"][0]["notes"] == [
        {"kind": "duplicated", "source": "log.csv", "location": "line 17", "count": 3,
         "message": "3 rows repeat a step"}
    ]
    validate(doc)


def test_findings_have_steps_evidence_and_non_finite_numbers_as_strings() -> None:
    def bare_constant(name: str) -> None:
        raise AssertionError(f"bare {name} in the JSON output")

    doc = json.loads(render(sample_report(), RenderOptions()), parse_constant=bare_constant)
    nan = next(f for f in doc["findings"] if f["code"] == "N001")
    assert nan["steps"] == {"first": 600, "last": 999}
    assert nan["evidence"] == {"first_nan_step": 600, "nan_points": 400, "last_finite": "NaN"}
    assert next(f for f in doc["findings"] if f["code"] == "G002")["evidence"]["ratio"] == "Infinity"
    assert nan["severity"] == "error" and nan["confidence"] == "high" and nan["tags"] == ["train/loss"]
    short = next(f for f in doc["findings"] if f["code"] == "R001")
    assert short["steps"] == {"first": None, "last": None}


def test_check_outcomes_and_errors_are_separate_lists() -> None:
    doc = document(sample_report())
    statuses = {(o["run"], o["check"]): (o["status"], o["reason"]) for o in doc["checks"]}
    assert statuses[("sweep/lr_0.1", "loss-spike")] == ("error", "ValueError: boom")
    assert statuses[("sweep/lr_0.01", "val-gap")] == ("skipped", "no val_accuracy series in this run")
    assert statuses[("sweep/lr_0.01", "non-finite")] == ("ran", None)
    assert doc["errors"] == [{"path": "broken/events.out.tfevents.1", "reason": "truncated record at offset 40"}]


def test_output_is_deterministic_whatever_order_the_report_was_built_in() -> None:
    report = sample_report()
    shuffled = Report(
        runs=tuple(reversed(report.runs)),
        findings=tuple(reversed(report.findings)),
        outcomes=tuple(reversed(report.outcomes)),
        errors=report.errors,
        fail_on=report.fail_on,
        diagnoses=tuple(reversed(report.diagnoses or ())),
    )
    assert render(shuffled, RenderOptions()) == render(report, RenderOptions())


def test_the_warning_gate_changes_only_the_summary() -> None:
    error_gate = document(sample_report(fail_on=Severity.ERROR))
    warning_gate = document(sample_report(fail_on=Severity.WARNING))
    assert error_gate["findings"] == warning_gate["findings"]
    assert warning_gate["summary"]["fail_on"] == "warning"


def test_the_sample_report_matches_its_golden_file(golden: Callable[[str, str], None]) -> None:
    golden("sample_report.json", render(sample_report(), RenderOptions()))


def test_a_path_that_is_not_utf8_is_written_escaped_with_its_raw_bytes_beside_it() -> None:
    raw = b"runs/caf\xe9-\xff\n\x1b"  # latin-1 and a stray byte: not UTF-8
    run = healthy_run(os.fsdecode(raw))
    run.path = os.fsdecode(b"/data/" + raw)
    tag = os.fsdecode(b"loss\xfe")
    report = Report(
        runs=(run,),
        findings=(finding(run.id, "spike", "S001", Severity.ERROR, tags=(tag,), message=f"{tag} spiked",
                          evidence={tag: 1.0}),),
        errors=(ReadError(os.fsdecode(b"bad-\x80.csv"), "not a log"),),
    )
    text = render(report, RenderOptions())
    doc = json.loads(text.encode("utf-8").decode("utf-8", errors="strict"))  # valid UTF-8 through and through
    validate(doc)
    entry = doc["runs"][0]
    assert entry["id"] == "runs/caf\\xe9-\\xff\n\x1b"  # only the undecodable bytes are written \xNN
    assert entry["path"] == "/data/runs/caf\\xe9-\\xff\n\x1b"
    assert base64.b64decode(entry["path_base64"]) == b"/data/" + raw
    assert doc["findings"][0]["run"] == entry["id"] and doc["findings"][0]["tags"] == ["loss\\xfe"]
    assert doc["findings"][0]["evidence"] == {"loss\\xfe": 1.0}
    assert doc["errors"] == [{"path": "bad-\\x80.csv", "path_base64": base64.b64encode(b"bad-\x80.csv").decode(),
                              "reason": "not a log"}]


def test_a_utf8_path_carries_no_raw_bytes_field() -> None:
    run = healthy_run("runs/café-\u202e")
    doc = document(Report(runs=(run,), findings=(), errors=(ReadError("ok.csv", "not a log"),)))
    assert doc["runs"][0]["path"] == "runs/café-\u202e" and "path_base64" not in doc["runs"][0]
    assert doc["errors"] == [{"path": "ok.csv", "reason": "not a log"}]


def test_characters_json_leaves_raw_are_escaped_and_parse_back_unchanged() -> None:
    tag = "loss\x85\x7f\u2028\u202e\U000e0001/é😀"
    run = make_run({tag: (steps(20), decay(20))}, run_id="runs/a\u2029b")
    text = render(Report(runs=(run,), findings=()), RenderOptions())
    assert not [char for char in text if char != "\n" and unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}]
    assert "loss\\u0085\\u007f\\u2028\\u202e\\udb40\\udc01/é😀" in text  # printable text stays as it is
    doc = json.loads(text)
    assert doc["runs"][0]["tags"][0]["name"] == tag and doc["runs"][0]["id"] == "runs/a\u2029b"


def test_the_report_written_in_pieces_is_the_document_written_whole() -> None:
    """The command line writes the JSON report a run at a time; the bytes are json.dumps's."""
    from rundoctor.reporters.json_report import chunks
    from rundoctor.reporters.jsonable import Items, dump_chunks, dumps

    awkward = {"name": "a\u202eb\x85", "nested": {"values": [1.5, float("nan"), []], "empty": {}}, "n": None}
    document = {"first": [], "runs": [awkward, {"x": [1, {"y": 2}]}], "none": [], "last": "\u2028"}
    lazy = {key: Items(iter(value)) if isinstance(value, list) else value for key, value in document.items()}
    assert "".join(dump_chunks(lazy)) == dumps(document)
    report = sample_report()
    pieces = list(chunks(report, RenderOptions()))
    assert len(pieces) > len(report.runs) + len(report.outcomes)  # an item at a time, not one text
    assert "".join(pieces) == dumps(report_document(report))
