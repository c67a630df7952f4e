"""The GitHub Action (action.yml), its steps run by scripts/run_action.py as the runner runs
them: annotations on stdout, the job summary, the outputs and the exit code as the step's
result, on sample_logs/ (findings), sample_logs/healthy (clean) and fixtures written here.

``actions/setup-python`` is not run (the script puts this interpreter first on PATH as
``python``, which is what that step does); the install step is skipped with
RUN_ACTION_SKIP_INSTALL=1 (PYTHONPATH makes this checkout the rundoctor ``python`` imports),
except in the slow test that runs it for real into a virtual environment.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.package_source import copy_package

RUN_ACTION = REPO / "scripts" / "run_action.py"
# One training run a folder in sample_logs/healthy (each written in one format).
HEALTHY_SAMPLES = sum(1 for entry in (REPO / "sample_logs" / "healthy").iterdir() if entry.is_dir())
EXIT_CANNOT_RUN = 125  # run_action.py's own failure


@dataclass
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str]


def run_action(
    tmp_path: Path,
    *,
    workspace: Path = REPO,
    action_path: Path = REPO,
    python: str = sys.executable,
    skip_install: bool = True,
    **inputs: str,
) -> ActionRun:
    temp = tmp_path / "runner-temp"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RUN_ACTION_SKIP_INSTALL")}
    if skip_install:
        env.update(PYTHONPATH=str(REPO), RUN_ACTION_SKIP_INSTALL="1")
    command = [
        sys.executable, str(RUN_ACTION), "--workspace", str(workspace), "--runner-temp", str(temp),
        "--action-path", str(action_path), "--python", python,
    ]
    for name, value in inputs.items():
        command += ["--input", f"{name.replace('_', '-')}={value}"]
    done = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, check=False, timeout=600)
    summary, outputs = temp / "summary.md", temp / "outputs.json"
    return ActionRun(
        done.returncode, done.stdout, done.stderr,
        summary.read_text(encoding="utf-8") if summary.exists() else "",
        json.loads(outputs.read_text(encoding="utf-8")) if outputs.exists() else {},
    )


def annotations(stdout: str, level: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(f"::{level} ")]


def counts(report_path: str) -> dict[str, str]:
    summary = json.loads(Path(report_path).read_text(encoding="utf-8"))["summary"]
    by_severity = summary["findings_by_severity"]
    return {
        "runs": str(summary["runs"]), "errors": str(by_severity["error"]),
        "warnings": str(by_severity["warning"]), "infos": str(by_severity["info"]),
    }


# ---------------------------------------------------------------------------------------
# The action on real logs


def test_findings_fail_the_step_with_annotations_a_summary_and_counts(tmp_path: Path) -> None:
    done = run_action(tmp_path, path="sample_logs")

    assert done.exit_code == 1, done.stderr
    errors = annotations(done.stdout, "error")
    assert any("non_finite_tb" in line for line in errors), done.stdout
    assert all("file=sample_logs/" in line for line in errors)  # relative to the workspace
    assert annotations(done.stdout, "warning")
    assert done.summary.startswith("## rundoctor")
    assert "non\\_finite\\_tb" in done.summary and "serious" in done.summary
    outputs = done.outputs
    assert outputs["exit-code"] == "1"
    report = json.loads(Path(outputs["report"]).read_text(encoding="utf-8"))
    assert report["summary"]["exit_code"] == 1
    assert {name: outputs[name] for name in ("runs", "errors", "warnings", "infos")} == counts(outputs["report"])
    assert int(outputs["errors"]) > 0 and int(outputs["runs"]) > 20


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    done = run_action(tmp_path, path="sample_logs/healthy")

    assert done.exit_code == 0, done.stderr
    assert annotations(done.stdout, "error") == annotations(done.stdout, "warning") == []
    assert done.summary.startswith("## rundoctor") and "healthy" in done.summary
    assert done.outputs["exit-code"] == "0"
    assert (done.outputs["errors"], done.outputs["warnings"]) == ("0", "0")
    assert done.outputs["runs"] == str(HEALTHY_SAMPLES)


def test_fail_on_is_the_gate_and_annotate_and_summary_can_be_turned_off(tmp_path: Path) -> None:
    # One run with a warning and nothing worse: a near miss for error, a hit for warning.
    quiet = {"path": "sample_logs/problems/overfitting_keras_tf2", "annotate": "false", "summary": "false"}

    at_error = run_action(tmp_path / "error", **quiet)
    at_warning = run_action(tmp_path / "warning", fail_on="warning", **quiet)

    assert (at_error.exit_code, at_error.outputs["exit-code"], at_error.outputs["warnings"]) == (0, "0", "1")
    assert (at_warning.exit_code, at_warning.outputs["exit-code"]) == (1, "1")
    for done in (at_error, at_warning):
        assert done.stdout == "" and done.summary == ""


def write_nan_run(directory: Path) -> None:
    directory.mkdir(parents=True)
    rows = [f"{step},{0.2 + 2 * math.exp(-step / 20)!r}" for step in range(40)] + ["40,nan"]
    (directory / "metrics.csv").write_text("step,train_loss\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_inputs_are_data_not_shell_code(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    hostile = "it's $(touch pwned) `touch pwned` ; touch pwned"
    write_nan_run(workspace / hostile)

    done = run_action(tmp_path, workspace=workspace, path=shlex.quote(hostile), args="--select 'non-finite'")

    assert done.exit_code == 1, done.stderr
    assert not list(tmp_path.rglob("pwned"))
    assert (done.outputs["runs"], done.outputs["errors"], done.outputs["warnings"], done.outputs["infos"]) == (
        "1", "1", "0", "0"  # --select reached rundoctor: only non-finite ran
    )
    (error,) = annotations(done.stdout, "error")
    assert "N001" in error


def test_unreadable_input_fails_with_exit_2_and_says_so_in_the_summary(tmp_path: Path) -> None:
    done = run_action(tmp_path, path="no/such/runs")

    assert done.exit_code == 2
    assert "no/such/runs" in done.stderr  # rundoctor's own message, in the step log
    assert done.summary.startswith("## rundoctor: could not check no/such/runs (exit 2)")
    assert done.outputs["exit-code"] == "2" and done.outputs["report"] == "" and done.outputs["errors"] == ""


def test_a_path_with_unbalanced_quotes_stops_the_step(tmp_path: Path) -> None:
    done = run_action(tmp_path, path="'runs")

    assert done.exit_code != 0
    assert "rundoctor: input path: No closing quotation" in done.stderr
    assert done.outputs["exit-code"] == ""  # rundoctor never ran


@pytest.mark.slow
def test_the_install_step_installs_a_working_rundoctor_from_the_action_checkout(tmp_path: Path) -> None:
    """The install step for real, into a virtual environment that sees this environment's
    packages (so that only rundoctor itself is built and installed, from a copy of the
    working tree), standing in for the Python setup-python provides."""
    action = copy_package(tmp_path / "action", "action.yml")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    # A workspace of its own: `python -m` imports from the working directory first, and this
    # repository's holds rundoctor/.
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "sample_logs" / "healthy", workspace / "runs")

    done = run_action(tmp_path, workspace=workspace, action_path=action, python=str(python), skip_install=False, path="runs")

    assert done.exit_code == 0, done.stderr
    assert "run Install rundoctor" in done.stderr and done.outputs["runs"] == str(HEALTHY_SAMPLES)
    installed = subprocess.run(
        [str(python), "-c", "import rundoctor; print(rundoctor.__file__)"],
        cwd=workspace, capture_output=True, text=True, check=True,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    ).stdout
    assert Path(installed.strip()).is_relative_to(venv)


# ---------------------------------------------------------------------------------------
# The script runs steps as the runner does, and refuses what it cannot


def write_action(directory: Path, steps: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "action.yml").write_text(
        textwrap.dedent(
            """\
            name: probe
            description: a probe of run_action.py
            inputs:
              word: {description: a word, default: hello}
            outputs:
              lines: {description: lines, value: "${{ steps.first.outputs.lines }}"}
            runs:
              using: composite
              steps:
            """
        )
        + textwrap.indent(textwrap.dedent(steps), "    "),
        encoding="utf-8",
    )
    return directory


def test_outputs_env_and_path_reach_later_steps_and_a_failing_step_ends_the_action(tmp_path: Path) -> None:
    action = write_action(tmp_path / "action", """\
        - id: first
          shell: bash
          run: |
            printf 'lines<<END\\n%s\\nsecond line\\nEND\\n' "${{ inputs.word }}" >> "$GITHUB_OUTPUT"
            echo "SHARED=from the first step" >> "$GITHUB_ENV"
            mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\\necho tool ran\\n' > "$RUNNER_TEMP/bin/tool"
            chmod +x "$RUNNER_TEMP/bin/tool" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
            echo "summary of the first" >> "$GITHUB_STEP_SUMMARY"
        - shell: bash
          env: {FROM_INPUT: "${{ inputs.word }}"}
          run: |
            echo "$SHARED / $FROM_INPUT / $(tool) / ${{ steps.first.outputs.lines }}"
            false
            echo "not reached: -e"
        - shell: bash
          run: touch "$GITHUB_WORKSPACE/third-step-ran"
        """)
    workspace = tmp_path / "workspace"
    workspace.mkdir()

    done = run_action(tmp_path, workspace=workspace, action_path=action, skip_install=False, word="hi")

    assert done.exit_code == 1
    assert done.stdout == "from the first step / hi / tool ran / hi\nsecond line\n"
    assert done.outputs == {"lines": "hi\nsecond line"}
    assert done.summary == "summary of the first\n"
    assert not (workspace / "third-step-ran").exists()


@pytest.mark.parametrize(
    ("step", "complaint"),
    [
        ("- {shell: bash, run: 'echo ${{ github.event_name }}'}", "expression not supported here"),
        ("- {shell: bash, if: 'always()', run: 'true'}", "not supported on a run step: if"),
        ("- {shell: sh, run: 'true'}", "shell must be one of bash"),
        ("- {uses: actions/cache@v4}", "cannot run uses: actions/cache@v4"),
    ],
)
def test_what_the_script_cannot_do_as_the_runner_would_is_an_error(tmp_path: Path, step: str, complaint: str) -> None:
    action = write_action(tmp_path / "action", step + "\n")

    done = run_action(tmp_path, workspace=tmp_path, action_path=action, skip_install=False)

    assert done.exit_code == EXIT_CANNOT_RUN and complaint in done.stderr, done.stderr


def test_skipping_the_install_needs_the_checkout_importable(tmp_path: Path) -> None:
    # python imports rundoctor from this repository, not from the action checkout given.
    action = write_action(tmp_path / "action", "- {id: install, shell: bash, run: 'exit 9'}\n")

    done = run_action(tmp_path, workspace=tmp_path, action_path=action)

    assert done.exit_code == EXIT_CANNOT_RUN and "RUN_ACTION_SKIP_INSTALL=1, but python imports" in done.stderr
