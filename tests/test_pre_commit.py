"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit on a fixture
repository that uses this working tree as its hook repository: a clean repository passes, one
with a diverging run fails, and a commit that touches no log does not run the hook.

pre-commit installs the hook from a commit of its repository, into an environment of its own
(``pip install`` of the package, dependencies from the package index): the working tree is
committed to a temporary repository for that, and the environment is built once per test
run (PRE_COMMIT_HOME in a directory of the run).  That install makes these tests slow.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.package_source import copy_package

HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
(HOOK,) = HOOKS


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=rundoctor tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This working tree's package and hook definition, committed: (repository, commit)."""
    repository = copy_package(tmp_path_factory.mktemp("hook-repository"), ".pre-commit-hooks.yaml")
    git(repository, "init", "-q")
    git(repository, "add", ".")
    git(repository, "commit", "-q", "-m", "the working tree under test")
    return repository, git(repository, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache of hook environments, shared by the tests of one pytest run."""
    return tmp_path_factory.mktemp("pre-commit-home")


def write_run(path: Path, losses: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{step},{value!r}\n" for step, value in enumerate(losses))
    path.write_text("step,train_loss\n" + rows, encoding="utf-8")


def healthy(steps: int = 60) -> list[float]:
    return [0.2 + 2.0 * math.exp(-step / 20) for step in range(steps)]


@pytest.fixture
def project(tmp_path: Path, hook_repository: tuple[Path, str]) -> Path:
    """A repository keeping one healthy run under runs/, with the hook configured on runs/."""
    repository, commit = hook_repository
    root = tmp_path / "project"
    write_run(root / "runs" / "baseline" / "metrics.csv", healthy())
    (root / "README.md").write_text("# experiments\n", encoding="utf-8")
    config = {"repos": [{"repo": str(repository), "rev": commit, "hooks": [{"id": "rundoctor", "args": ["runs/"]}]}]}
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", ".")
    return root


def pre_commit(project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Without PYTHONPATH: the hook must run the rundoctor pre-commit installed, not this checkout.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never", SKIP="")
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", *args],
        cwd=project, env=env, capture_output=True, text=True, check=False, timeout=1200,
    )


def add_diverging_run(project: Path) -> None:
    losses = healthy(40) + [10.0 ** (step - 38) for step in range(40, 50)] + [math.nan]
    write_run(project / "runs" / "lr_too_high" / "metrics.csv", losses)
    git(project, "add", ".")


@pytest.mark.slow
def test_a_clean_repository_passes(project: Path, pre_commit_home: Path) -> None:
    done = pre_commit(project, pre_commit_home, "--all-files")

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^rundoctor\.+Passed$", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.slow
def test_a_diverging_run_fails_the_hook(project: Path, pre_commit_home: Path) -> None:
    add_diverging_run(project)

    done = pre_commit(project, pre_commit_home, "--all-files")

    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^rundoctor\.+Failed$", done.stdout, re.MULTILINE)
    assert re.search(r"^SERIOUS +(runs/)?lr_too_high/metrics\.csv$", done.stdout, re.MULTILINE), done.stdout
    assert "training diverged" in done.stdout
    assert "N001 non-finite" in done.stdout


@pytest.mark.slow
def test_the_hook_runs_when_a_log_changes_and_checks_every_run(project: Path, pre_commit_home: Path) -> None:
    add_diverging_run(project)

    untouched = pre_commit(project, pre_commit_home, "--files", "README.md")
    touched = pre_commit(project, pre_commit_home, "--files", "runs/baseline/metrics.csv")

    assert untouched.returncode == 0 and re.search(r"^rundoctor\.+\(no files to check\)Skipped$", untouched.stdout, re.MULTILINE)
    # Only the healthy run's file changed, but the hook judges the runs under its paths whole.
    assert touched.returncode == 1 and "lr_too_high/metrics.csv" in touched.stdout


@pytest.mark.slow
def test_without_args_the_hook_checks_the_whole_repository(
    project: Path, pre_commit_home: Path, hook_repository: tuple[Path, str]
) -> None:
    repository, commit = hook_repository
    config = {"repos": [{"repo": str(repository), "rev": commit, "hooks": [{"id": "rundoctor"}]}]}
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    add_diverging_run(project)

    done = pre_commit(project, pre_commit_home, "--all-files")

    assert done.returncode == 1, done.stdout
    assert re.search(r"^SERIOUS +(project/runs/)?lr_too_high/metrics\.csv$", done.stdout, re.MULTILINE), done.stdout


# The files that start the hook: logs in every format rundoctor reads, and its configuration.
LOGS_AND_CONFIG = [
    "runs/tb/events.out.tfevents.1700000000.host.42.0",
    "logs/train/events.out.tfevents.1700000000.host.42.0.v2",
    "lightning_logs/version_0/metrics.csv",
    "results.csv",
    "out/checkpoint-600/trainer_state.json",
    "wandb/run-1/files/wandb-history.jsonl",
    "keras/training.log",
    "mlruns/1/0f3c2a9d/metrics/loss",
    "rundoctor.toml",
    "pyproject.toml",
]
OTHER_FILES = ["README.md", "src/model.py", "docs/curve.png", "checkpoints/model.safetensors", "events.md", "mlruns.txt"]


@pytest.mark.parametrize("path", LOGS_AND_CONFIG)
def test_logs_and_configuration_start_the_hook(path: str) -> None:
    assert re.search(HOOK["files"], path)


@pytest.mark.parametrize("path", OTHER_FILES)
def test_other_files_do_not(path: str) -> None:
    assert not re.search(HOOK["files"], path)


def test_the_hook_checks_whole_runs_with_rundoctor_check() -> None:
    assert (HOOK["id"], HOOK["entry"], HOOK["language"], HOOK["pass_filenames"]) == (
        "rundoctor", "rundoctor check", "python", False
    )
