"""Gating through the command line, on real files and the real checks: --exclude, per-path
ignores, suppression files in the checked tree, the baseline, and what is refused (parameter
values out of range, a role override that names no tag).

The tree is three small CSV runs whose findings are known: ``runs/good`` (an info-level
plateau), ``runs/nan`` (an error: the loss turns NaN at step 120) and ``runs/spiky`` (a
warning: loss spikes).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from rundoctor.readers import files
from tests.conftest import CliResult, Invoke
from tests.curves import decay, noisy, with_nan, with_spikes

N = 200


def write_csv(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("step,loss\n" + "".join(f"{step},{float(value)!r}\n" for step, value in enumerate(values)))


def good_loss(seed: int = 1) -> np.ndarray:
    return noisy(decay(N, 2.0, 0.3, rate=8), 0.02, seed=seed)


def nan_loss(seed: int = 2) -> np.ndarray:
    return with_nan(noisy(decay(N), 0.02, seed=seed), 120)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``runs/`` with three runs, the working directory its parent."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    write_csv(root / "good" / "metrics.csv", good_loss())
    write_csv(root / "nan" / "metrics.csv", nan_loss())
    write_csv(root / "spiky" / "metrics.csv", with_spikes(good_loss(seed=3), [60, 120, 160], height=6.0, width=4))
    return root


def findings(result: CliResult, *, baselined: bool | None = None) -> list[tuple[str, str]]:
    """(run, check) of the JSON report's findings, all of them or those (not) baselined."""
    return [(f["run"], f["check"]) for f in result.json["findings"] if baselined is None or f["baselined"] is baselined]


def validate(document: Any) -> None:
    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)


ALL = [("runs/good/metrics.csv", "loss-plateau"), ("runs/nan/metrics.csv", "non-finite"),
       ("runs/spiky/metrics.csv", "loss-spikes")]


def test_the_tree_has_the_findings_these_tests_rely_on(runs: Path, rundoctor: Invoke) -> None:
    result = rundoctor("check", "runs", "--format", "json")
    assert result.code == 1
    assert findings(result) == ALL


# --exclude -----------------------------------------------------------------------------------

@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file opened through the file layer, in order."""
    seen: list[Path] = []
    real = files.open_binary

    def recording(path: Path, **options: Any) -> Any:
        seen.append(Path(path))
        return real(path, **options)

    monkeypatch.setattr(files, "open_binary", recording)
    return seen


@pytest.mark.parametrize("pattern", ["nan", "runs/nan", "nan/**", "runs/n?n", "*/nan/*.csv", "other,nan"])
def test_an_excluded_directory_is_never_read(runs: Path, rundoctor: Invoke, opened: list[Path], pattern: str) -> None:
    (runs / "nan" / "junk.csv").write_bytes(b"\xff\xfe not a log")  # would be a read error if opened
    result = rundoctor("check", "runs", "--format", "json", "--exclude", pattern)
    assert result.code == 0
    assert findings(result) == [ALL[0], ALL[2]]
    assert result.json["errors"] == []
    assert opened and not [path for path in opened if "nan" in path.parts]


def test_exclude_patterns_match_files_and_repeat(runs: Path, rundoctor: Invoke, opened: list[Path]) -> None:
    result = rundoctor("check", "runs", "--format", "json", "--exclude", "good/*.csv", "--exclude", "spiky")
    assert findings(result) == [ALL[1]]
    assert {path.parent.name for path in opened} == {"nan"}


def test_a_near_miss_excludes_nothing(runs: Path, rundoctor: Invoke) -> None:
    # a name pattern is a whole name; a path pattern names consecutive directories
    for pattern in ("na", "nan/x", "runs/nan/metrics", "good/nan"):
        assert findings(rundoctor("check", "runs", "--format", "json", "--exclude", pattern)) == ALL, pattern


def test_the_path_given_is_never_excluded_by_its_own_name(runs: Path, rundoctor: Invoke) -> None:
    assert findings(rundoctor("check", "runs", "--format", "json", "--exclude", "runs")) == ALL
    named = rundoctor("check", "runs/nan/metrics.csv", "--format", "json", "--exclude", "*.csv")
    assert findings(named) == [("metrics.csv", "non-finite")]


def test_the_config_excludes_and_the_command_line_replaces_it(runs: Path, rundoctor: Invoke) -> None:
    Path("pyproject.toml").write_text('[tool.rundoctor]\nexclude = ["nan", "spiky"]\n')
    assert findings(rundoctor("check", "runs", "--format", "json")) == [ALL[0]]
    assert findings(rundoctor("check", "runs", "--format", "json", "--exclude", "good")) == ALL[1:]


@pytest.mark.parametrize("table", ['exclude = "nan"', "exclude = [1]", 'exclude = ["/abs/runs"]', 'exclude = ["."]'])
def test_a_bad_exclude_in_the_config_exits_2(runs: Path, rundoctor: Invoke, table: str) -> None:
    Path("rundoctor.toml").write_text(table + "\n")
    result = rundoctor("check", "runs")
    assert result.code == 2 and "exclude" in result.err and result.out == ""


def test_an_absolute_exclude_on_the_command_line_exits_2(runs: Path, rundoctor: Invoke) -> None:
    result = rundoctor("check", "runs", "--exclude", str(runs / "nan"))
    assert result.code == 2 and "--exclude" in result.err and "not absolute" in result.err


# per-path-ignores ----------------------------------------------------------------------------

def test_per_path_ignores_set_findings_aside_on_the_runs_a_glob_matches(runs: Path, rundoctor: Invoke) -> None:
    Path("pyproject.toml").write_text(
        '[tool.rundoctor.per-path-ignores]\n"runs/nan" = ["non-finite"]\n"spiky" = ["C"]\n"good/*.txt" = ["C"]\n'
    )
    result = rundoctor("check", "runs", "--format", "json")
    assert result.code == 0  # the error is suppressed, so nothing fails
    # near miss: good/*.txt covers no run, its plateau stays; and with non-finite set aside,
    # nothing supersedes the info that the NaN run's loss was still falling
    assert findings(result) == [ALL[0], ("runs/nan/metrics.csv", "still-improving")]
    suppressed = result.json["suppressed"]
    assert [(s["run"], s["check"]) for s in suppressed] == ALL[1:]
    assert suppressed[0]["rule"] == {
        "kind": "per-path-ignores", "source": "pyproject.toml", "scope": "runs/nan",
        "selector": "non-finite", "reason": None,
    }
    assert suppressed[1]["rule"]["selector"] == "C" and suppressed[1]["finding"]["severity"] == "warning"
    assert result.json["summary"]["findings_suppressed"] == 2
    validate(result.json)
    text = rundoctor("check", "runs")
    assert text.out.rstrip().endswith("Result: no findings at or above error (exit 0); 2 suppressed")
    assert "non-finite" not in text.out


def test_a_suppressed_finding_takes_no_part_in_the_diagnosis(runs: Path, rundoctor: Invoke) -> None:
    def diagnosis() -> Any:
        document = rundoctor("check", "runs", "--format", "json").json
        return next(r for r in document["runs"] if r["id"] == "runs/nan/metrics.csv")["diagnosis"]

    before = diagnosis()
    assert before["primary"]["check"] == "non-finite"
    assert [s["check"] for s in before["superseded"]] == ["still-improving"]
    Path("rundoctor.toml").write_text('[per-path-ignores]\n"nan" = ["non-finite"]\n')
    after = diagnosis()
    assert after["primary"]["check"] == "still-improving" and after["superseded"] == []


@pytest.mark.parametrize(("table", "message"), [
    ('"runs/nan" = ["non-finit"]', "unknown check 'non-finit'"),
    ('"runs/nan" = "non-finite"', "must be a list"),
    ('"/runs/nan" = ["non-finite"]', "not absolute"),
])
def test_a_bad_per_path_ignore_exits_2(runs: Path, rundoctor: Invoke, table: str, message: str) -> None:
    Path("rundoctor.toml").write_text(f"[per-path-ignores]\n{table}\n")
    result = rundoctor("check", "runs")
    assert result.code == 2 and message in result.err and "per-path-ignores" in result.err


# rundoctor.toml in the checked tree --------------------------------------------------------------

def test_a_suppression_file_in_a_run_directory_covers_that_run_only(runs: Path, rundoctor: Invoke) -> None:
    (runs / "nan" / "rundoctor.toml").write_text(
        'ignore = ["N", "loss-spikes", "still-improving"]\nreason = "fp16 overflow, fixed in v2"\n')
    result = rundoctor("check", "runs", "--format", "json")
    assert result.code == 0
    assert findings(result) == [ALL[0], ALL[2]]  # spiky's loss-spikes is not under runs/nan
    (only, _) = result.json["suppressed"]  # non-finite, then the still-improving it no longer supersedes
    assert only["rule"] == {"kind": "file", "source": "runs/nan/rundoctor.toml", "scope": "runs/nan",
                            "selector": "N", "reason": "fp16 overflow, fixed in v2"}
    validate(result.json)


def test_a_suppression_file_above_the_runs_covers_every_run_below_it(runs: Path, rundoctor: Invoke) -> None:
    (runs / "rundoctor.toml").write_text('ignore = ["C005", "c003"]\nreason = "batch size 1"\n')
    (runs / "spiky" / "rundoctor.toml").write_text('ignore = ["C"]\nreason = "the nearest file speaks first"\n')
    result = rundoctor("check", "runs", "--format", "json")
    assert findings(result) == [ALL[1]]
    assert {s["run"]: s["rule"]["source"] for s in result.json["suppressed"]} == {
        "runs/good/metrics.csv": "runs/rundoctor.toml", "runs/spiky/metrics.csv": "runs/spiky/rundoctor.toml"}


def test_a_suppression_file_above_the_path_given_is_not_read(runs: Path, rundoctor: Invoke) -> None:
    (runs / "rundoctor.toml").write_text('ignore = ["non-finite"]\nreason = "only for runs/"\n')
    assert findings(rundoctor("check", "runs/nan", "--format", "json")) == [("nan/metrics.csv", "non-finite")]


def test_a_file_named_on_the_command_line_takes_the_suppression_beside_it(runs: Path, rundoctor: Invoke) -> None:
    (runs / "nan" / "rundoctor.toml").write_text('ignore = ["non-finite", "still-improving"]\nreason = "known"\n')
    result = rundoctor("check", "runs/nan/metrics.csv", "--format", "json")
    assert findings(result) == [] and result.json["suppressed"][0]["rule"]["scope"] == "metrics.csv"


def test_the_projects_own_config_inside_the_tree_is_not_a_suppression(runs: Path, rundoctor: Invoke) -> None:
    Path("rundoctor.toml").write_text('fail-on = "warning"\nignore = ["loss-plateau"]\n')
    result = rundoctor("check", ".", "--format", "json")
    assert result.code == 1 and result.json["suppressed"] == []
    assert [check for _, check in findings(result)] == ["non-finite", "loss-spikes"]


@pytest.mark.parametrize(("text", "message"), [
    ('ignore = ["non-finite"]\n', "`reason` is required"),
    ('ignore = ["non-finite"]\nreason = "  "\n', "`reason` is required"),
    ('reason = "x"\n', "`ignore` must be a non-empty list"),
    ('ignore = ["non-finit"]\nreason = "x"\n', "unknown check 'non-finit'"),
    ('ignore = ["non-finite"]\nreason = "x"\nfail-on = "never"\n', "holds only `ignore` and `reason`"),
    ('ignore = [\n', "cannot read suppression file runs/nan/rundoctor.toml"),
])
def test_a_bad_suppression_file_exits_2_naming_it(runs: Path, rundoctor: Invoke, text: str, message: str) -> None:
    (runs / "nan" / "rundoctor.toml").write_text(text)
    result = rundoctor("check", "runs")
    assert result.code == 2 and message in result.err and result.out == ""


# the baseline --------------------------------------------------------------------------------

def test_the_baseline_round_trip(runs: Path, rundoctor: Invoke) -> None:
    written = rundoctor("check", "runs", "--write-baseline", ".rundoctor-baseline.json")
    assert written.code == 0
    assert "wrote a baseline of 3 findings to .rundoctor-baseline.json" in written.err
    assert written.out.rstrip().endswith("Result: no findings at or above error (exit 0); 3 baselined")
    assert json.loads(Path(".rundoctor-baseline.json").read_text()) == {
        "format": "rundoctor-baseline", "version": 1,
        "findings": [{"run": run, "check": check, "tags": ["loss"], "count": 1} for run, check in ALL],
    }

    again = rundoctor("check", "runs", "--baseline", ".rundoctor-baseline.json", "--fail-on", "info")
    assert again.code == 0
    assert again.out.rstrip().endswith("Result: no findings at or above info (exit 0); 3 baselined")

    write_csv(runs / "new" / "metrics.csv", nan_loss(seed=7))  # a new problem
    gate = rundoctor("check", "runs", "--baseline", ".rundoctor-baseline.json")
    assert gate.code == 1
    assert gate.out.rstrip().endswith("Result: 1 finding at or above error (exit 1); 3 baselined")
    assert "new/metrics.csv" in gate.out and "runs under runs/" in gate.out
    assert "Only baselined findings (3):" in gate.out
    assert "runs/spiky" not in gate.out.split("Result:")[0].split("\n\n")[0]  # the known ones are not listed
    document = rundoctor("check", "runs", "--baseline", ".rundoctor-baseline.json", "--format", "json")
    assert findings(document, baselined=False) == [("runs/new/metrics.csv", "non-finite")]
    assert findings(document, baselined=True) == ALL
    assert document.json["summary"]["findings_baselined"] == 3
    assert document.json["baseline"] == {"source": ".rundoctor-baseline.json", "entries": 3, "fixed": []}
    validate(document.json)


def test_baseline_entries_no_longer_found_are_counted_as_fixed(runs: Path, rundoctor: Invoke) -> None:
    rundoctor("check", "runs", "--write-baseline", "base.json")
    write_csv(runs / "nan" / "metrics.csv", good_loss(seed=9))  # the NaN was fixed
    result = rundoctor("check", "runs", "--baseline", "base.json", "--format", "json")
    assert result.code == 0
    assert result.json["summary"]["baseline_fixed"] == 1
    assert result.json["baseline"]["fixed"] == [
        {"run": "runs/nan/metrics.csv", "check": "non-finite", "tags": ["loss"], "count": 1}]
    text = rundoctor("check", "runs", "--baseline", "base.json")
    assert "; 2 baselined, 1 fixed since the baseline" in " ".join(text.out.replace("│", " ").split())


def test_a_baseline_matches_on_run_check_and_tags_not_on_numbers(runs: Path, rundoctor: Invoke) -> None:
    rundoctor("check", "runs", "--write-baseline", "base.json")
    write_csv(runs / "nan" / "metrics.csv", with_nan(noisy(decay(N), 0.05, seed=4), 80))  # NaN earlier, other numbers
    assert rundoctor("check", "runs", "--baseline", "base.json").code == 0
    # near miss: the same problem on a tag the baseline does not hold is new
    (runs / "nan" / "metrics.csv").write_text(
        "step,train_loss\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(nan_loss())))
    result = rundoctor("check", "runs", "--baseline", "base.json", "--format", "json")
    assert result.code == 1 and findings(result, baselined=False) == [("runs/nan/metrics.csv", "non-finite")]


def test_a_baseline_entry_holds_as_many_findings_as_its_count(runs: Path, rundoctor: Invoke) -> None:
    entries = [{"run": "runs/nan/metrics.csv", "check": "non-finite", "tags": ["loss"], "count": 2}]
    Path("base.json").write_text(json.dumps({"format": "rundoctor-baseline", "version": 1, "findings": entries}))
    result = rundoctor("check", "runs", "--baseline", "base.json", "--format", "json")
    assert result.code == 0 and result.json["summary"]["baseline_fixed"] == 1
    entries[0]["count"] = 1
    entries.append(dict(entries[0]))  # the same key twice (an edited file): the counts add
    Path("base.json").write_text(json.dumps({"format": "rundoctor-baseline", "version": 1, "findings": entries}))
    assert rundoctor("check", "runs", "--baseline", "base.json", "--format", "json").json["summary"]["baseline_fixed"] == 1


def test_the_baseline_file_is_the_same_for_the_same_findings(runs: Path, rundoctor: Invoke) -> None:
    rundoctor("check", "runs", "--write-baseline", "one.json")
    rundoctor("check", "runs/", "--exclude", "nothing", "--write-baseline", "two.json")
    assert Path("one.json").read_bytes() == Path("two.json").read_bytes()
    lines = Path("one.json").read_text().splitlines()
    assert lines[:4] == ["{", '  "format": "rundoctor-baseline",', '  "version": 1,', '  "findings": [']
    assert len(lines) == 4 + len(ALL) + 2  # one entry a line


@pytest.mark.parametrize(("text", "message"), [
    (None, "cannot read --baseline"),
    ("{", "is not JSON"),
    ('{"findings": []}', "is not a rundoctor baseline"),
    ('{"format": "rundoctor-baseline", "version": 2, "findings": []}', "baseline version 2"),
    ('{"format": "rundoctor-baseline", "version": 1, "findings": [{"run": "a"}]}', "findings[0] must have"),
    ('{"format": "rundoctor-baseline", "version": 1, "findings": [{"run": "a", "check": "b", "count": 0}]}', "count >= 1"),
])
def test_a_bad_baseline_exits_2(runs: Path, rundoctor: Invoke, text: str | None, message: str) -> None:
    if text is not None:
        Path("base.json").write_text(text)
    result = rundoctor("check", "runs", "--baseline", "base.json")
    assert result.code == 2 and message in result.err and result.out == ""


def test_a_baseline_that_cannot_be_written_exits_2(runs: Path, rundoctor: Invoke) -> None:
    result = rundoctor("check", "runs", "--write-baseline", "no/such/dir/base.json")
    assert result.code == 2 and "cannot write --write-baseline" in result.err


# parameter values and role overrides ------------------------------------------------------------

@pytest.mark.parametrize(("value", "allowed"), [
    ("1.5", "in [0, 1]"), ("-0.1", "in [0, 1]"), ("nan", "in [0, 1]"), ("inf", "in [0, 1]")])
def test_a_param_outside_its_range_exits_2_naming_it_and_the_range(
    runs: Path, rundoctor: Invoke, value: str, allowed: str
) -> None:
    result = rundoctor("check", "runs", "--param", f"loss-spikes.window_fraction={value}")
    assert result.code == 2 and result.out == ""
    assert f"loss-spikes: parameter 'window_fraction' must be a finite number {allowed}, got {value}" in result.err


@pytest.mark.parametrize(("check", "line", "message"), [
    ("loss-spikes", "min_points = 0", "'min_points' must be a finite number >= 1, got 0"),
    ("loss-spikes", "noise_sigmas = -inf", "'noise_sigmas' must be a finite number >= 0, got -inf"),
    ("loss-spikes", "large_factor = 0.5", "'large_factor' must be a finite number >= 1, got 0.5"),
    ("still-improving", "confidence = 1.0", "'confidence' must be a finite number in (0, 1), got 1.0"),
    ("grad-norm", "chance_p = nan", "'chance_p' must be a finite number in (0, 1), got nan"),
])
def test_a_config_value_outside_its_range_exits_2(
    runs: Path, rundoctor: Invoke, check: str, line: str, message: str
) -> None:
    Path("rundoctor.toml").write_text(f"[checks.{check}]\n{line}\n")
    result = rundoctor("check", "runs")
    assert result.code == 2 and f"{check}: parameter {message}" in result.err and "rundoctor.toml" in result.err


def test_a_param_at_the_edge_of_its_range_is_accepted(runs: Path, rundoctor: Invoke) -> None:
    assert rundoctor("check", "runs", "--param", "loss-spikes.window_fraction=1", "--fail-on", "never").code == 0
    assert rundoctor("check", "runs", "--param", "loss-spikes.min_points=1", "--fail-on", "never").code == 0


def test_a_config_num_classes_below_two_exits_2(runs: Path, rundoctor: Invoke) -> None:
    Path("rundoctor.toml").write_text("num-classes = 1\n")
    result = rundoctor("check", "runs")
    assert result.code == 2 and "num-classes must be at least 2" in result.err


def test_a_role_override_that_names_no_tag_is_a_warning(runs: Path, rundoctor: Invoke) -> None:
    result = rundoctor("check", "runs", "--role", "val_loss=val/*", "--role", "train_loss=los")
    assert result.code == 1  # the report is what it would be: the warning does not gate
    assert "rundoctor: warning: role override val_loss=val/* matches no tag in the 3 runs read\n" in result.err
    assert "role override train_loss=los matches no tag in the 3 runs read (did you mean 'loss'?)" in result.err
    assert result.out.startswith("3 runs under runs/") and "matches no tag" not in result.out  # stdout holds only the report


def test_a_role_override_that_matches_gives_no_warning(runs: Path, rundoctor: Invoke) -> None:
    Path("rundoctor.toml").write_text('[roles]\ntrain_loss = ["lo*"]\n')
    assert rundoctor("check", "runs", "--role", "train_loss=loss").err == ""



def test_watch_follows_the_configs_exclude_and_per_path_ignores(runs: Path, rundoctor: Invoke) -> None:
    assert "non-finite" in rundoctor("watch", "runs", "--once").out
    Path("rundoctor.toml").write_text('exclude = ["nan"]\n[per-path-ignores]\n"spiky" = ["loss-spikes"]\n')
    result = rundoctor("watch", "runs", "--once")
    assert result.code == 0
    assert "non-finite" not in result.out and "loss-spikes" not in result.out and "loss-plateau" in result.out
