"""The command line never shows a traceback on damaged or hostile input (unless --debug).

Each case builds a tree the way crashed jobs, full disks and careless copies leave them, runs
``rundoctor check`` and ``rundoctor ls`` in a fresh process, and asserts a clean exit code,
no Python traceback, and that whatever was readable was read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_LOGS

EVENT_FILE = next((SAMPLE_LOGS / "healthy" / "pytorch_tb").glob("events.out.tfevents.*"))
CSV_FILE = SAMPLE_LOGS / "healthy" / "lightning" / "version_0" / "metrics.csv"


def _truncated_event_file(root: Path) -> None:
    data = EVENT_FILE.read_bytes()
    (root / "run").mkdir()
    (root / "run" / EVENT_FILE.name).write_bytes(data[: len(data) // 2 + 7])


def _corrupt_event_file(root: Path) -> None:
    data = bytearray(EVENT_FILE.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 40] = b"\xff" * 40
    (root / "run").mkdir()
    (root / "run" / EVENT_FILE.name).write_bytes(bytes(data))


def _garbage_event_file(root: Path) -> None:
    (root / "run").mkdir()
    (root / "run" / "events.out.tfevents.1.host").write_bytes(os.urandom(4096))


def _lfs_pointer(root: Path) -> None:
    (root / "run").mkdir()
    (root / "run" / "events.out.tfevents.1.host").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", encoding="utf-8"
    )


def _junk_csv(root: Path) -> None:
    lines = CSV_FILE.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",", ",oops", 1)
    lines.insert(9, "\x00\x01 binary junk")
    (root / "metrics.csv").write_text("\n".join(lines) + "\n0,0.5,", encoding="utf-8")


def _binary_named_csv(root: Path) -> None:
    (root / "results.csv").write_bytes(bytes(range(256)) * 8)


def _half_written_jsonl(root: Path) -> None:
    (root / "log.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n{"step": 3, "lo', encoding="utf-8")


def _bom_crlf_latin1(root: Path) -> None:
    text = "epoch,loss,val_loss\r\n0,1.0,1.1\r\n1,0.8,0.9\r\n2,0.7,\xe9\r\n"
    (root / "training.log").write_bytes(b"\xef\xbb\xbf" + text.encode("latin-1"))


def _empty_things(root: Path) -> None:
    (root / "empty_dir").mkdir()
    (root / "empty.csv").write_bytes(b"")
    (root / "run").mkdir()
    (root / "run" / "events.out.tfevents.0.host").write_bytes(b"")
    shutil.copy(CSV_FILE, root / "metrics.csv")


def _odd_names(root: Path) -> None:
    odd = root / "#1 run (copy) ünïcødé [x]; rm -rf"
    odd.mkdir()
    shutil.copy(CSV_FILE, odd / "metrics.csv")


def _symlink_loop(root: Path) -> None:
    (root / "run").mkdir()
    shutil.copy(CSV_FILE, root / "run" / "metrics.csv")
    (root / "run" / "loop").symlink_to(root, target_is_directory=True)


def _truncated_trainer_state(root: Path) -> None:
    text = (SAMPLE_LOGS / "healthy" / "hf_trainer" / "checkpoint-600" / "trainer_state.json").read_text(encoding="utf-8")
    (root / "trainer_state.json").write_text(text[: len(text) // 2], encoding="utf-8")


def _header_only_and_mixed(root: Path) -> None:
    (root / "a.csv").write_text("step,loss\n", encoding="utf-8")
    (root / "b.csv").write_text("step,loss,acc\n1,0.5,x\n2,abc,0.5\n3,0.4,0.6\n", encoding="utf-8")
    (root / "history.json").write_text(json.dumps({"loss": [1, "x", None, 0.5]}), encoding="utf-8")


CASES: dict[str, Callable[[Path], None]] = {
    "truncated event file": _truncated_event_file,
    "corrupt event record": _corrupt_event_file,
    "garbage event file": _garbage_event_file,
    "git lfs pointer": _lfs_pointer,
    "junk csv cells": _junk_csv,
    "binary named csv": _binary_named_csv,
    "half-written json line": _half_written_jsonl,
    "bom, crlf, non-utf8": _bom_crlf_latin1,
    "empty files and dirs": _empty_things,
    "odd names": _odd_names,
    "symlink loop": _symlink_loop,
    "truncated trainer_state": _truncated_trainer_state,
    "header-only and mixed types": _header_only_and_mixed,
}


# Cases where no input holds anything readable; every other case must yield a run.
NOTHING_READABLE = {"garbage event file", "git lfs pointer", "binary named csv"}


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rundoctor", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1"}, cwd=cwd,
    )


@pytest.mark.parametrize("case", CASES)
def test_no_traceback_on_hostile_input(tmp_path: Path, case: str) -> None:
    CASES[case](tmp_path)
    for args in (["check", str(tmp_path), "--format", "json"], ["ls", str(tmp_path)]):
        result = _run(*args)
        assert "Traceback" not in result.stderr + result.stdout, result.stderr
        assert result.returncode in (0, 1, 2), (args, result.returncode, result.stderr)
    result = _run("check", str(tmp_path), "--format", "json")
    if case in NOTHING_READABLE:  # exit 2, and stderr says which input and why
        assert result.returncode == 2 and result.stdout == ""
        assert str(tmp_path) in result.stderr
        return
    report = json.loads(result.stdout)  # what was readable was read; the rest has a reason
    assert report["runs"], case
    assert all(error["reason"] for error in report["errors"])


def test_truncated_event_file_is_read_up_to_the_cut_and_reported(tmp_path: Path) -> None:
    _truncated_event_file(tmp_path)
    report = json.loads(_run("check", str(tmp_path), "--format", "json").stdout)
    (run,) = report["runs"]
    assert run["points"] > 0
    truncated = [f for f in report["findings"] if f["check"] == "truncated-log"]
    assert truncated and "offset" in truncated[0]["message"]


def test_debug_shows_the_traceback_of_an_internal_error(tmp_path: Path) -> None:
    shutil.copy(CSV_FILE, tmp_path / "metrics.csv")
    code = (
        "import sys, rundoctor.engine as e\n"
        "def boom(*a, **k): raise RuntimeError('boom')\n"
        "e.diagnose = boom\n"
        "sys.argv = ['rundoctor', *sys.argv[1:]]\n"
        "from rundoctor.cli import main; main()\n"
    )
    for flags, traceback in (([], False), (["--debug"], True)):
        result = subprocess.run([sys.executable, "-c", code, *flags, "check", str(tmp_path)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 3
        assert ("Traceback" in result.stderr) is traceback
        assert "internal error: RuntimeError: boom" in result.stderr or traceback


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its size, mode and modification time."""
    return {str(path.relative_to(root)): (stat.st_size, stat.st_mode, stat.st_mtime_ns)
            for path in sorted(root.rglob("*")) for stat in [path.lstat()]}


def test_reading_a_tree_writes_nothing_into_it(tmp_path: Path) -> None:
    """Run from inside the tree, with every report format on stdout and a plot written
    elsewhere: not a byte, a file or a timestamp under the tree changes."""
    tree = tmp_path / "logs"
    shutil.copytree(SAMPLE_LOGS, tree)
    before = _snapshot(tree)
    for args in (["check", ".", "--format", "text"], ["check", ".", "--format", "json"],
                 ["check", ".", "--format", "html"], ["ls", "."],
                 ["plot", "healthy/lightning", "-o", str(tmp_path / "plot.png")]):
        result = _run(*args, cwd=tree)
        assert result.returncode in (0, 1), (args, result.stderr)
    assert _snapshot(tree) == before
