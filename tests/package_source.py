"""A copy of what ``pip install <checkout>`` reads, for the tests that install the package for
real (the action's install step, the pre-commit hook): the working tree as it is, uncommitted
changes included, without the tests, corpora and caches that an install never reads."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO

# pyproject.toml names README.md as the long description; the package holds its data files.
PACKAGE_FILES = ("pyproject.toml", "README.md", "rundoctor")


def copy_package(destination: Path, *extra: str) -> Path:
    """Copy the package's sources and the ``extra`` files of the checkout to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in (*PACKAGE_FILES, *extra):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination
