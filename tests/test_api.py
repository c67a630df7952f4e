"""The library: the public names stay, ``import rundoctor`` stays light, ``load`` / ``diagnose``
give what ``check`` gives, DataFrames keep every point, and ``export`` round-trips."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rundoctor
from rundoctor.series import RunBuilder
from tests.conftest import REPO, SAMPLE_LOGS, run_cli

# The public API.  Removing a name breaks users: deprecate it first, then take it off here.
PUBLIC = {
    "Confidence", "Diagnosis", "Finding", "ReadError", "Report", "Run", "Runs", "Severity", "Verdict",
    "__version__", "diagnose", "export", "load",
}


def test_every_public_name_is_still_there_and_resolves() -> None:
    assert set(rundoctor.__all__) >= PUBLIC, f"public names gone: {sorted(PUBLIC - set(rundoctor.__all__))}"
    for name in rundoctor.__all__:
        assert getattr(rundoctor, name) is not None
    assert set(rundoctor.__all__) <= set(dir(rundoctor))
    with pytest.raises(AttributeError, match="no attribute 'engine_internals'"):
        _ = rundoctor.engine_internals  # type: ignore[attr-defined]


def test_the_live_callbacks_are_public_modules_named_in_the_readme_and_the_api_doc() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    doc = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    for module in ("rundoctor.live.lightning", "rundoctor.live.keras", "rundoctor.live.transformers"):
        assert f"{module}.RunDoctorCallback" in doc
        assert module in readme
    for name in PUBLIC - {"__version__"}:
        assert f"`{name}" in doc or f"rundoctor.{name}(" in doc, name


def test_import_rundoctor_loads_neither_numpy_nor_pandas() -> None:
    probe = "import sys, rundoctor; print(sorted(m for m in ('numpy', 'pandas', 'rundoctor.api') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.stdout.strip() == "[]"


def test_load_and_diagnose_give_the_document_check_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    printed = subprocess.run(
        [sys.executable, "-m", "rundoctor", "check", "sample_logs/problems", "--format", "json"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""}, check=False,
    )

    runs = rundoctor.load("sample_logs/problems")
    report = rundoctor.diagnose(runs)

    assert printed.returncode == report.exit_code == 1
    assert report.to_json() == printed.stdout
    assert isinstance(runs, rundoctor.Runs) and isinstance(report, rundoctor.Report)
    assert all(isinstance(finding, rundoctor.Finding) for finding in report.findings)


def test_read_errors_travel_with_the_runs_into_the_report(tmp_path: Path) -> None:
    junk = tmp_path / "notes.csv"
    junk.write_text("")

    runs = rundoctor.load([SAMPLE_LOGS / "problems" / "non_finite_tb", tmp_path / "missing", junk])
    report = rundoctor.diagnose(runs)

    assert [run.id for run in runs] == ["non_finite_tb"]
    assert sorted(Path(error.path).name for error in runs.errors) == ["missing", "notes.csv"]
    assert "no such file or directory" in [error.reason for error in runs.errors]
    assert report.errors == tuple(sorted(runs.errors, key=lambda error: error.path))
    assert [item["reason"] for item in json.loads(report.to_json())["errors"]] == [e.reason for e in report.errors]


def test_diagnose_takes_the_options_check_takes() -> None:
    runs = rundoctor.load(SAMPLE_LOGS / "problems")

    numerics = rundoctor.diagnose(runs, select="N")
    demoted = rundoctor.diagnose(runs, select=["non-finite"], severity={"non-finite": "info"}, fail_on="warning")
    never = rundoctor.diagnose(runs, select="N001", fail_on="never")

    assert {finding.code[0] for finding in numerics.findings} == {"N"}
    assert {finding.severity for finding in demoted.findings} == {rundoctor.Severity.INFO}
    assert demoted.exit_code == 0 and never.exit_code == 0
    assert rundoctor.diagnose(runs, select="N001").exit_code == 1


def test_wrong_arguments_are_value_errors_with_a_hint() -> None:
    runs = rundoctor.load(SAMPLE_LOGS / "problems" / "non_finite_tb")

    with pytest.raises(ValueError, match="did you mean 'non-finite'"):
        rundoctor.diagnose(runs, select="non-finit")
    with pytest.raises(ValueError, match="unknown parameter 'min_flat'"):
        rundoctor.diagnose(runs, params={"loss-plateau": {"min_flat": 0.4}})
    with pytest.raises(ValueError, match="params: unknown check 'loss-plato'"):
        rundoctor.diagnose(runs, params={"loss-plato": {}})
    with pytest.raises(ValueError, match="fail-on must be one of"):
        rundoctor.diagnose(runs, fail_on="fatal")
    with pytest.raises(ValueError, match="num_classes must be an int of at least 2"):
        rundoctor.diagnose(runs, num_classes=1)
    with pytest.raises(ValueError, match="reader must be one of"):
        rundoctor.load(SAMPLE_LOGS, reader="tensorbored")
    with pytest.raises(ValueError, match="unknown role 'val_los'"):
        rundoctor.load(SAMPLE_LOGS, roles={"val_los": "x"})


def test_a_run_built_by_hand_is_diagnosed_with_roles_named_as_a_reader_names_them() -> None:
    builder = RunBuilder()
    builder.add("train/loss", range(100), [2.0] * 60 + [math.nan] * 40)
    run = builder.build(id="mine", path="mine", format="hand", sources=[])

    report = rundoctor.diagnose(run, num_classes=10)

    assert report.diagnosis("mine").primary is not None
    assert report.diagnosis("mine").primary.code == "N001"
    assert run.roles["train/loss"].value == "train_loss"


def hand_run() -> rundoctor.Run:
    """Two tags; a NaN, an infinity, and step 2 written twice (a resume)."""
    builder = RunBuilder()
    builder.add("loss", [0, 1, 2, 2, 3], [1.0, math.nan, 0.5, 0.4, math.inf], [10.0, 11.0, 12.0, 13.0, 14.0])
    builder.add("val_loss", [1, 3], [0.9, 0.7])
    return builder.build(id="hand", path="hand", format="hand", sources=[])


def test_the_long_frame_keeps_every_point_as_logged() -> None:
    frame = hand_run().to_pandas()

    assert list(frame.columns) == ["step", "tag", "value", "wall_time"]
    assert frame.step.tolist() == [0, 1, 2, 2, 3, 1, 3]
    assert frame.tag.tolist() == ["loss"] * 5 + ["val_loss"] * 2
    np.testing.assert_array_equal(frame.value, [1.0, math.nan, 0.5, 0.4, math.inf, 0.9, 0.7])
    assert frame.wall_time.iloc[:5].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0] and frame.wall_time.iloc[5:].isna().all()


def test_the_wide_frame_has_a_row_a_step_and_the_last_write_of_a_repeated_step() -> None:
    wide = hand_run().to_pandas(wide=True)

    assert list(wide.columns) == ["step", "loss", "val_loss"]
    assert wide.step.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(wide["loss"], [1.0, math.nan, 0.4, math.inf])
    np.testing.assert_array_equal(wide["val_loss"], [math.nan, 0.9, math.nan, 0.7])


def test_a_tag_named_step_does_not_break_the_wide_frame() -> None:
    builder = RunBuilder()
    builder.add("step", [0, 1], [5.0, 6.0])
    run = builder.build(id="odd", path="odd", format="hand", sources=[])

    assert run.to_pandas(wide=True).shape == (2, 2)
    assert RunBuilder().build(id="e", path="e", format="hand", sources=[]).to_pandas(wide=True).empty


def exported_points(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [(run, tag, int(step), repr(float(value)), repr(float(wall)))
            for run, tag, step, value, wall in frame[["run", "tag", "step", "value", "wall_time"]].itertuples(index=False)]


@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
def test_export_round_trips_every_point(tmp_path: Path, format: str) -> None:
    runs = rundoctor.Runs([hand_run(), *rundoctor.load(SAMPLE_LOGS / "problems" / "resumed_tb")])
    path = tmp_path / f"series.{format}"

    written = rundoctor.export(runs, path)

    if format == "csv":
        back = pd.read_csv(path)
    elif format == "jsonl":
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert {k: lines[1][k] for k in ("value", "wall_time")} == {"value": "NaN", "wall_time": 11.0}
        assert lines[4]["value"] == "Infinity" and lines[5]["wall_time"] is None
        back = pd.DataFrame(lines).replace({"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf})
        back["wall_time"] = back.wall_time.astype(float)
    else:
        back = pd.read_parquet(path)
    assert written == len(back) == sum(run.points for run in runs)
    assert exported_points(back) == exported_points(runs.to_pandas())


def test_an_exported_csv_reads_back_with_rundoctor(tmp_path: Path) -> None:
    source = rundoctor.load(SAMPLE_LOGS / "problems" / "resumed_tb")
    rundoctor.export(source, tmp_path / "series.csv")

    (again,) = rundoctor.load(tmp_path / "series.csv")

    assert again.points == source[0].points
    np.testing.assert_array_equal(again.curve("train/loss").values, source[0].curve("train/loss").values)


def test_export_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = rundoctor.api.importlib.util.find_spec  # type: ignore[attr-defined]
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))

    with pytest.raises(ImportError, match=r"pip install 'rundoctor\[parquet\]'"):
        rundoctor.export([hand_run()], tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="cannot tell the format"):
        rundoctor.export([hand_run()], tmp_path / "x.txt")


def test_the_export_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    run = "sample_logs/problems/non_finite_tb"

    code, csv_text, _ = run_cli(monkeypatch, capsys, "export", run)
    jsonl = run_cli(monkeypatch, capsys, "export", run, "--format", "jsonl")
    parquet = run_cli(monkeypatch, capsys, "export", run, "-f", "parquet", "-o", str(tmp_path / "s.parquet"))
    no_file = run_cli(monkeypatch, capsys, "export", run, "-f", "parquet")
    bad_format = run_cli(monkeypatch, capsys, "export", run, "-f", "xlsx")
    nothing = run_cli(monkeypatch, capsys, "export", str(tmp_path / "s.parquet"))

    assert code == 0 and csv_text.splitlines()[0] == "run,tag,step,value,wall_time"
    assert len(csv_text.splitlines()) == 1 + len(jsonl[1].splitlines()) == 1 + len(pd.read_parquet(tmp_path / "s.parquet"))
    assert ",nan," in csv_text and '"value": "NaN"' in jsonl[1] and parquet[0] == 0
    assert no_file[0] == 2 and "give --output FILE" in no_file[2]
    assert bad_format[0] == 2 and "csv, jsonl, parquet" in bad_format[2]
    assert nothing[0] == 2 and "nothing could be analysed" in nothing[2]


def test_gating_through_the_library_excludes_ignores_per_path_and_reads_a_baseline(tmp_path: Path) -> None:
    problems = SAMPLE_LOGS / "problems"
    kept = rundoctor.load(problems, exclude="non_finite_tb,*.jsonl")
    assert kept and not any("non_finite_tb" in run.id or run.id.endswith(".jsonl") for run in kept)
    runs = rundoctor.load(problems / "non_finite_tb")
    assert rundoctor.diagnose(runs).exit_code == 1
    ignored = rundoctor.diagnose(runs, per_path_ignores={"non_finite_tb": ["N"]})
    assert ignored.suppressed and not any(f.check.startswith("non-finite") for f in ignored.active_findings)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"format": "rundoctor-baseline", "version": 1, "findings": []}))
    assert rundoctor.diagnose(runs, baseline=baseline).exit_code == 1  # an empty baseline accepts nothing
    with pytest.raises(ValueError, match="not absolute"):
        rundoctor.load(problems, exclude="/abs")
