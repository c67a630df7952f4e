"""Run the steps of action.yml on this machine as a GitHub runner runs a composite action: the
test of the action (tests/test_action.py) and a way to try it by hand.

    python scripts/run_action.py --input path=sample_logs --input fail-on=warning
    python scripts/run_action.py --input path=runs --workspace ../project --runner-temp /tmp/ci

The steps' stdout is this script's stdout (where the runner reads workflow commands such as
``::error file=...::``), their stderr its stderr; the exit code is the action's.  In the
runner's temporary directory (``--runner-temp``, a new one by default) it leaves
``summary.md``, the job summary the steps wrote, and ``outputs.json``, the action's outputs.

What the runner does, done here:

- Inputs: the defaults in action.yml, overridden by ``--input NAME=VALUE``; an unknown input,
  or a required one without a value, is an error.
- Expressions ``${{ inputs.NAME }}``, ``${{ github.action_path }}``, ``${{ github.workspace }}``,
  ``${{ runner.temp }}`` and ``${{ steps.ID.outputs.NAME }}`` are substituted in ``run``, ``env``,
  ``working-directory`` and the action's ``outputs``.
- A ``run:`` step is written to a file and run with the command line the runner uses for its
  shell (``bash --noprofile --norc -eo pipefail FILE``), in the workspace or its
  ``working-directory``, with this process's environment plus what the runner sets: ``CI``,
  ``GITHUB_ACTIONS``, ``GITHUB_WORKSPACE``, ``GITHUB_ACTION_PATH``, ``RUNNER_TEMP``, a fresh
  ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` file per step, ``GITHUB_ENV`` and
  ``GITHUB_PATH`` (what a step writes there reaches the later steps), then the step's ``env``.
- A step that fails ends the action: later steps are skipped (no ``if: failure()`` here) and
  the outputs it wrote before failing still count.

What is not done, and why that is faithful:

- ``uses:`` steps are not run.  The only one allowed is ``actions/setup-python``, whose effect
  is a chosen Python first on PATH as ``python``: here the Python given by ``--python`` (by
  default the one running this script) is put first on PATH as ``python`` instead.
- Anything else the runner would have to evaluate (another expression, ``if:`` on a run step,
  another shell, ``continue-on-error``) is an error, not an approximation: an action.yml this
  script cannot run as the runner would fails its test.

``RUN_ACTION_SKIP_INSTALL=1`` skips the step whose id is ``install`` when ``python`` already
imports rundoctor from the action's own checkout (PYTHONPATH pointing at it, or an editable
install), and fails otherwise rather than test another copy.  The tests set it to spare a pip
install each; one slow test runs the install step for real.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SKIP_INSTALL = "RUN_ACTION_SKIP_INSTALL"
SHELLS = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}  # as the runner starts them
RUN_STEP_KEYS = {"name", "id", "shell", "run", "env", "working-directory"}
EMULATED_ACTIONS = ("actions/setup-python@",)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# This script's own failure (action.yml asks for what it cannot do), apart from any exit code
# of the action's (rundoctor's are 0 to 3), as `git bisect run` sets 125 apart.
EXIT_CANNOT_RUN = 125


class ActionError(Exception):
    """action.yml asks for something this script cannot do as the runner would."""


class Runner:
    """One run of the action: its inputs, the environment the steps share, the steps' outputs."""

    def __init__(self, action_path: Path, inputs: dict[str, str], workspace: Path, temp: Path, python: Path) -> None:
        self.action = yaml.safe_load((action_path / "action.yml").read_text(encoding="utf-8"))
        self.action_path = action_path
        self.workspace = workspace
        self.temp = temp
        self.python = python
        self.inputs = self._inputs(inputs)
        self.outputs: dict[str, dict[str, str]] = {}  # step id -> its outputs
        self.commands = temp / "_runner_file_commands"
        self.commands.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action_path),
            "RUNNER_TEMP": str(temp),
            "GITHUB_ENV": str(self.commands / "env"),
            "GITHUB_PATH": str(self.commands / "path"),
        }
        self.env["PATH"] = f"{self._python_on_path(python)}{os.pathsep}{self.env.get('PATH', '')}"
        self.summaries: list[Path] = []

    def _inputs(self, given: dict[str, str]) -> dict[str, str]:
        declared: dict[str, dict[str, Any]] = self.action.get("inputs") or {}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ActionError(f"unknown input(s) {', '.join(unknown)}; action.yml declares {', '.join(declared)}")
        values = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = given[name]
            elif "default" in spec:
                values[name] = str(spec["default"])
            elif spec.get("required"):
                raise ActionError(f"input {name} is required")
            else:
                values[name] = ""
        return values

    def _python_on_path(self, python: Path) -> Path:
        """A directory holding ``python``, which runs ``python`` exactly (a wrapper, not a
        symbolic link: a virtual environment's interpreter finds its environment from the
        path it was started by)."""
        shim = self.temp / "_python"
        shim.mkdir(exist_ok=True)
        wrapper = shim / "python"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(str(python))} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
        return shim

    def expand(self, text: str) -> str:
        """``text`` with every ``${{ ... }}`` the runner would substitute substituted."""
        return EXPRESSION.sub(lambda match: self._value(match.group(1)), text)

    def _value(self, expression: str) -> str:
        parts = expression.split(".")
        if len(parts) == 2 and parts[0] == "inputs" and parts[1] in self.inputs:
            return self.inputs[parts[1]]
        if expression == "github.action_path":
            return str(self.action_path)
        if expression == "github.workspace":
            return str(self.workspace)
        if expression == "runner.temp":
            return str(self.temp)
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            return self.outputs.get(parts[1], {}).get(parts[3], "")
        raise ActionError(f"expression not supported here: ${{{{ {expression} }}}}")

    def run(self) -> int:
        """Every step in order; the exit code of the first that fails, else 0."""
        runs = self.action.get("runs") or {}
        if runs.get("using") != "composite":
            raise ActionError(f"not a composite action: runs.using is {runs.get('using')!r}")
        for number, step in enumerate(runs.get("steps") or [], 1):
            name = step.get("name") or step.get("id") or f"step {number}"
            if "uses" in step:
                if not str(step["uses"]).startswith(EMULATED_ACTIONS):
                    raise ActionError(f"{name}: cannot run uses: {step['uses']}")
                note(f"skipped {name} ({step['uses']}): python is {self.python}")
                continue
            if step.get("id") == "install" and os.environ.get(SKIP_INSTALL) == "1":
                self._check_installed(name)
                continue
            status = self._run_step(number, name, step)
            if status != 0:
                note(f"{name} failed with exit code {status}")
                return status
        return 0

    def _check_installed(self, name: str) -> None:
        where = subprocess.run(
            ["python", "-c", "import rundoctor; print(rundoctor.__file__)"],
            env=self.env, cwd=self.workspace, capture_output=True, text=True, check=False,
        )
        package = Path(where.stdout.strip()).parent if where.returncode == 0 else None
        if package != self.action_path / "rundoctor":
            raise ActionError(
                f"{SKIP_INSTALL}=1, but python imports rundoctor from {package or 'nowhere'}, not from "
                f"{self.action_path}: set PYTHONPATH to the checkout, or run the install step"
            )
        note(f"skipped {name} ({SKIP_INSTALL}=1): python imports rundoctor from {package}")

    def _run_step(self, number: int, name: str, step: dict[str, Any]) -> int:
        extra = sorted(set(step) - RUN_STEP_KEYS)
        if extra:
            raise ActionError(f"{name}: not supported on a run step: {', '.join(extra)}")
        shell = SHELLS.get(step.get("shell", ""))
        if shell is None:
            raise ActionError(f"{name}: shell must be one of {', '.join(SHELLS)}, got {step.get('shell')!r}")
        script = self.commands / f"step_{number}.sh"
        script.write_text(self.expand(step["run"]), encoding="utf-8")
        output = self.commands / f"set_output_{number}"
        summary = self.commands / f"step_summary_{number}"
        for path in (output, summary):
            path.write_text("", encoding="utf-8")
        env = self._step_env()
        env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
        env.update({key: self.expand(str(value)) for key, value in (step.get("env") or {}).items()})
        cwd = self.workspace / self.expand(step.get("working-directory", "."))
        note(f"run {name}")
        sys.stdout.flush()
        status = subprocess.run([*shell, str(script)], cwd=cwd, env=env, check=False).returncode
        if "id" in step:
            self.outputs[step["id"]] = file_commands(output.read_text(encoding="utf-8"))
        self.summaries.append(summary)
        return status

    def _step_env(self) -> dict[str, str]:
        """The shared environment with what earlier steps wrote to GITHUB_ENV and GITHUB_PATH."""
        env = dict(self.env)
        env_file, path_file = Path(self.env["GITHUB_ENV"]), Path(self.env["GITHUB_PATH"])
        if env_file.is_file():
            env.update(file_commands(env_file.read_text(encoding="utf-8")))
        if path_file.is_file():
            added = [line for line in path_file.read_text(encoding="utf-8").splitlines() if line.strip()]
            env["PATH"] = os.pathsep.join([*reversed(added), env["PATH"]])
        return env

    def action_outputs(self) -> dict[str, str]:
        """The action's ``outputs:``, their ``value`` expressions evaluated."""
        declared: dict[str, dict[str, Any]] = self.action.get("outputs") or {}
        return {name: self.expand(str(spec.get("value", ""))) for name, spec in declared.items()}

    def job_summary(self) -> str:
        return "".join(path.read_text(encoding="utf-8") for path in self.summaries)


def file_commands(text: str) -> dict[str, str]:
    """What a step wrote to GITHUB_OUTPUT or GITHUB_ENV: ``NAME=VALUE`` lines and
    ``NAME<<DELIMITER`` blocks, as the runner reads them."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if equals and "<<" not in name:
            values[name] = value
            continue
        name, arrows, delimiter = line.partition("<<")
        if not arrows:
            raise ActionError(f"malformed file command line: {line!r}")
        try:
            end = lines.index(delimiter, index)
        except ValueError:
            raise ActionError(f"no closing {delimiter!r} for {name}") from None
        values[name] = "\n".join(lines[index:end])
        index = end + 1
    return values


def note(message: str) -> None:
    """A line of this script's own on stderr (stdout carries only what the steps print)."""
    sys.stderr.write(f"run_action: {message}\n")
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="an input of the action (repeatable)")
    parser.add_argument("--workspace", type=Path, default=Path.cwd(), help="GITHUB_WORKSPACE (default: the current directory)")
    parser.add_argument("--runner-temp", type=Path, help="RUNNER_TEMP, where summary.md and outputs.json are left (default: a new directory)")
    parser.add_argument("--action-path", type=Path, default=REPO, help="the action's checkout (default: this repository)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the python setup-python would put on PATH (default: this one)")
    options = parser.parse_args()
    inputs = {}
    for pair in options.input:
        name, equals, value = pair.partition("=")
        if not equals:
            parser.error(f"--input takes NAME=VALUE, got {pair!r}")
        inputs[name] = value
    temp = options.runner_temp or Path(tempfile.mkdtemp(prefix="run-action-"))
    temp.mkdir(parents=True, exist_ok=True)
    try:
        runner = Runner(options.action_path.resolve(), inputs, options.workspace.resolve(), temp.resolve(), options.python)
        status = runner.run()
    except ActionError as error:
        note(f"error: {error}")
        return EXIT_CANNOT_RUN
    (temp / "summary.md").write_text(runner.job_summary(), encoding="utf-8")
    (temp / "outputs.json").write_text(json.dumps(runner.action_outputs(), indent=2) + "\n", encoding="utf-8")
    note(f"exit code {status}; job summary and outputs in {temp}")
    return status


if __name__ == "__main__":
    sys.exit(main())
