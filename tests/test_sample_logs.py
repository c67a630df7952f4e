"""sample_logs/: every check has a run that triggers it, healthy runs trigger nothing, and the
committed files are exactly what scripts/make_sample_logs.py writes."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

import pytest

from rundoctor.checks.registry import REGISTRY
from rundoctor.config import Settings
from rundoctor.discover import load_runs
from rundoctor.engine import diagnose
from rundoctor.report import Report
from tests.conftest import REPO, SAMPLE_LOGS


def _generator():
    spec = importlib.util.spec_from_file_location("make_sample_logs", REPO / "scripts" / "make_sample_logs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
EXPECTED: dict[str, tuple[str, ...]] = GENERATOR.EXPECTED


@pytest.fixture(scope="module")
def report() -> Report:
    runs, errors = load_runs([SAMPLE_LOGS])
    assert errors == []
    return diagnose(runs, errors, Settings())


def test_every_run_is_listed_and_every_check_has_a_sample(report: Report) -> None:
    assert sorted(run.id for run in report.runs) == sorted(f"sample_logs/{path}" for path in EXPECTED)
    shown = {check for checks in EXPECTED.values() for check in checks}
    assert shown == {check.name for check in REGISTRY}


@pytest.mark.parametrize("path, checks", EXPECTED.items(), ids=list(EXPECTED))
def test_sample_runs_trigger_what_they_show(report: Report, path: str, checks: tuple[str, ...]) -> None:
    findings = report.findings_for(f"sample_logs/{path}")
    if not checks:
        assert findings == [], [f.message for f in findings]
        return
    fired = {f.check for f in findings}
    assert set(checks) <= fired, sorted(fired)
    # Nothing at warning or above beyond what the sample is about, or what the diagnosis
    # explains by it (a loss that exploded 10,000x also spiked).
    explained = {id(link.finding) for link in report.diagnosis(f"sample_logs/{path}").explains}
    for finding in report.active_findings_for(f"sample_logs/{path}"):
        if finding.severity.rank >= 2 and id(finding) not in explained:
            assert finding.check in checks, (finding.check, finding.message)


def test_committed_samples_are_what_the_script_writes(tmp_path: Path) -> None:
    GENERATOR.healthy_runs(tmp_path)
    GENERATOR.problem_runs(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SAMPLE_LOGS) for p in SAMPLE_LOGS.rglob("*") if p.is_file())
    assert written == committed
    assert all(filecmp.cmp(tmp_path / p, SAMPLE_LOGS / p, shallow=False) for p in written)


@pytest.mark.parametrize("format, name", [("text", "sample_logs.txt"), ("json", "sample_logs.json"),
                                          ("markdown", "sample_logs.md"), ("concise", "sample_logs.concise.txt"),
                                          ("github", "sample_logs.github.txt"), ("junit", "sample_logs.junit.xml")])
def test_reports_of_the_samples_match_their_golden_files(report: Report, golden, format: str, name: str) -> None:
    """The whole pipeline on sample_logs, at 80 columns without colour (pytest --update-golden)."""
    from rundoctor.reporters import RenderOptions, render

    golden(name, render(format, report, RenderOptions(width=80, color=False)))


def test_the_json_report_of_the_samples_follows_the_schema(report: Report) -> None:
    import json
    from importlib import resources

    import jsonschema

    from rundoctor.reporters import render

    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    document = json.loads(render("json", report))
    jsonschema.validate(document, schema)
    assert {f["check"] for f in document["findings"]} == {check.name for check in REGISTRY}
