"""Lint and type checks run with the tests, so CI holds them: ruff (rules in pyproject.toml)
over the whole repository and ``mypy --strict`` over the package."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = _run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_data_file_of_the_package_ships() -> None:
    # A file the code reads at run time (the JSON schema, the HTML report's style and script)
    # must be in pyproject's package-data, or an installed wheel lacks it.
    import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["rundoctor"]
    package = REPO / "rundoctor"
    data = [path.relative_to(package).as_posix() for path in package.rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts]
    assert data, "the package has data files (schema.json at least)"
    assert [name for name in data if not any(fnmatch.fnmatch(name, pattern) for pattern in globs)] == []
