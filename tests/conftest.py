"""Shared test fixtures: where the real logs live, and a skip that says why; the command line
run in-process."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = REPO / "sample_logs"
# Real training logs from public repositories sit beside the checkout (../shared), in CI too.
REAL_LOGS = REPO.parent / "shared" / "real_logs"


class CliResult(NamedTuple):
    """What one in-process run of the command line left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``rundoctor ARGS`` in-process, through ``main()`` as the console script runs it (so usage
    errors become exit 2), with ``--debug`` left off from any earlier run."""
    from rundoctor import cli

    monkeypatch.setattr(sys, "argv", ["rundoctor", *args])
    monkeypatch.setattr(cli, "_debug", False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))  # main() sets it
    try:
        cli.main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


Invoke = Callable[..., CliResult]


@pytest.fixture
def rundoctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """The command line in-process: ``rundoctor("check", path)`` gives a :class:`CliResult`."""

    def invoke(*args: str) -> CliResult:
        return run_cli(monkeypatch, capsys, *args)

    return invoke


@pytest.fixture
def real_logs() -> Path:
    if not REAL_LOGS.is_dir():
        pytest.skip(f"real logs not found at {REAL_LOGS} (../shared/real_logs beside the checkout)")
    return REAL_LOGS


# The slow part of the suite (about two thirds of its time): the fuzz suites, lint and type
# checks, and whole corpora.  `python -m pytest -m "not slow"` is the inner loop; CI runs all.
SLOW = ("tests/hostile/", "tests/test_accuracy.py", "tests/test_real_logs.py", "tests/test_lint.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).resolve().relative_to(REPO).as_posix().startswith(SLOW):
            item.add_marker(pytest.mark.slow)


# Golden files: expected reports under tests/golden, compared byte for byte.
# `pytest --update-golden` rewrites them from the current output; review the diff before
# committing it.
GOLDEN = REPO / "tests" / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing with it",
    )


def normalise_golden(name: str, text: str) -> str:
    """What a golden file holds: paths relative to the repository, and for JSON reports the
    tool version replaced, so neither the checkout's location nor a release changes it."""
    # the checkout's path as written, and as markdown escapes it (a_b becomes a\_b)
    for repo in (str(REPO), str(REPO).replace("_", "\\_")):
        text = text.replace(repo + os.sep, "").replace(repo, ".")
    if name.endswith(".json"):
        document = json.loads(text)
        if isinstance(document, dict) and isinstance(document.get("tool"), dict):
            document["tool"]["version"] = "(version)"
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return text


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden("name.txt", text)``: assert ``text`` equals tests/golden/name.txt (or rewrite it)."""
    update = bool(request.config.getoption("--update-golden"))

    def compare(name: str, text: str) -> None:
        path = GOLDEN / name
        text = normalise_golden(name, text)
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.is_file():
            pytest.fail(f"missing golden file tests/golden/{name}: run pytest --update-golden to create it")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"output differs from tests/golden/{name}; if the change is intended, "
            "run pytest --update-golden and review the diff"
        )

    return compare
