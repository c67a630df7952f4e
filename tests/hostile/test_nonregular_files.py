"""Never block, never read what is not a file: FIFOs, sockets, devices and links to them,
named on the command line or found in a tree, are reported and never opened; links never
lead out of the tree; a symlink loop is reported, not a crash.

Every test runs under :func:`no_hang`: a FIFO opened for reading blocks until a writer
comes, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from rundoctor.discover import load_runs
from rundoctor.readers import files, reader_named
from rundoctor.readers.base import RunSource
from rundoctor.readers.follow import FollowContext, appended_lines
from rundoctor.readers.tensorboard.follow import TensorBoardFollower
from rundoctor.series import ReadError
from tests.conftest import SAMPLE_LOGS
from tests.hostile.bounds import no_hang, requires_fifo, scalar_records

GOOD_CSV = SAMPLE_LOGS / "problems" / "val_better_than_train.csv"


def _reasons(errors: list[ReadError]) -> dict[str, str]:
    return {Path(error.path).name: error.reason for error in errors}


def _tree_with_a_good_run(root: Path) -> Path:
    run = root / "tree" / "run"
    run.mkdir(parents=True)
    shutil.copy(GOOD_CSV, run / "good.csv")
    return root / "tree"


@requires_fifo
@pytest.mark.parametrize("name", ["metrics.csv", "history.jsonl", "events.out.tfevents.1700000000.host", "notes.txt"])
def test_a_fifo_in_a_tree_is_reported_and_the_logs_beside_it_are_read(tmp_path: Path, name: str) -> None:
    """Whatever the FIFO is named (sniffed as a CSV or JSON lines, claimed by name as an
    event file, or no log at all), it is not opened; the good log beside it is read."""
    tree = _tree_with_a_good_run(tmp_path)
    os.mkfifo(tree / "run" / name)
    with no_hang():
        runs, errors = load_runs([tree])
    assert [run.id for run in runs] == ["tree/run/good.csv"]
    assert _reasons(errors) == {name: "a FIFO, not a regular file: not opened"}


@requires_fifo
def test_a_fifo_named_on_the_command_line_is_reported(tmp_path: Path) -> None:
    fifo = tmp_path / "metrics.csv"
    os.mkfifo(fifo)
    for reader in (None, "lightning-csv", "tensorboard"):
        with no_hang():
            runs, errors = load_runs([fifo], reader=reader)
        assert runs == [] and _reasons(errors) == {"metrics.csv": "a FIFO, not a regular file: not opened"}


@requires_fifo
def test_a_symlink_to_a_fifo_inside_the_tree_is_not_opened(tmp_path: Path) -> None:
    tree = _tree_with_a_good_run(tmp_path)
    os.mkfifo(tree / "pipe")
    (tree / "run" / "metrics.csv").symlink_to(tree / "pipe")
    with no_hang():
        runs, errors = load_runs([tree])
    assert len(runs) == 1
    assert _reasons(errors) == {
        "pipe": "a FIFO, not a regular file: not opened",
        "metrics.csv": "a FIFO, not a regular file: not opened",
    }


def test_a_socket_in_a_tree_is_reported(tmp_path: Path) -> None:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets on this platform")
    tree = _tree_with_a_good_run(tmp_path)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tree / "run" / "s.jsonl"))
    except OSError as error:  # a socket path longer than the platform allows
        pytest.skip(f"cannot bind a socket here: {error}")
    try:
        with no_hang():
            runs, errors = load_runs([tree])
    finally:
        server.close()
    assert len(runs) == 1 and _reasons(errors) == {"s.jsonl": "a socket, not a regular file: not opened"}


def test_a_device_file_in_a_tree_is_reported(tmp_path: Path) -> None:
    """A character device with /dev/zero's numbers: endless if read."""
    tree = _tree_with_a_good_run(tmp_path)
    device = tree / "run" / "metrics.csv"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except (OSError, AttributeError) as error:  # creating devices takes privileges
        pytest.skip(f"cannot create a device file here: {error}")
    with no_hang():
        runs, errors = load_runs([tree])
    assert len(runs) == 1 and _reasons(errors) == {"metrics.csv": "a character device, not a regular file: not opened"}


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_devices_named_or_linked_are_not_read(tmp_path: Path) -> None:
    """/dev/zero named on the command line is a device, not opened; a link to it from a tree
    leads out of the tree, not followed."""
    tree = _tree_with_a_good_run(tmp_path)
    (tree / "run" / "zeros.csv").symlink_to("/dev/zero")
    with no_hang():
        runs, errors = load_runs([tree, Path("/dev/zero")])
    assert len(runs) == 1
    reasons = {error.path: error.reason for error in errors}
    assert reasons["/dev/zero"] == "a character device, not a regular file: not opened"
    assert reasons[str(tree / "run" / "zeros.csv")] == f"symlink points outside {tree} (not followed)"


def test_links_out_of_the_tree_are_reported_and_never_followed(tmp_path: Path) -> None:
    """Decided: the tree given is the boundary.  A link out of it, to a file or a folder,
    is reported and not followed; a link to a folder inside it is passed over silently (its
    files are read where they are, once); a link named on the command line is the user's
    choice and is read."""
    outside = tmp_path / "outside"
    (outside / "run").mkdir(parents=True)
    shutil.copy(GOOD_CSV, outside / "run" / "secret.csv")
    tree = _tree_with_a_good_run(tmp_path)
    (tree / "escape.csv").symlink_to(outside / "run" / "secret.csv")
    (tree / "elsewhere").symlink_to(outside / "run", target_is_directory=True)
    (tree / "latest-run").symlink_to(tree / "run", target_is_directory=True)
    (tree / "run" / "again.csv").symlink_to(tree / "run" / "good.csv")
    runs, errors = load_runs([tree])
    assert sorted(run.id for run in runs) == ["tree/run/good.csv", "tree/run/good.csv"]
    assert _reasons(errors) == {
        "escape.csv": f"symlink points outside {tree} (not followed)",
        "elsewhere": f"symlinked folder points outside {tree} (not followed)",
    }
    named, errors = load_runs([tree / "escape.csv"])
    assert len(named) == 1 and errors == []


def test_symlink_loops_are_reported_not_a_crash(tmp_path: Path) -> None:
    """A file that links to itself, or two that link to each other: Python before 3.13
    raises RuntimeError resolving them, which crashed discovery."""
    tree = _tree_with_a_good_run(tmp_path)
    (tree / "self.csv").symlink_to(tree / "self.csv")
    (tree / "a.csv").symlink_to(tree / "b.csv")
    (tree / "b.csv").symlink_to(tree / "a.csv")
    (tree / "gone.csv").symlink_to(tree / "nothing.csv")
    runs, errors = load_runs([tree])
    assert len(runs) == 1
    assert _reasons(errors) == {
        "self.csv": "symlink loop",
        "a.csv": "symlink loop",
        "b.csv": "symlink loop",
        "gone.csv": "broken symlink",
    }


@requires_fifo
def test_a_followed_log_replaced_by_a_fifo_does_not_block_watch(tmp_path: Path) -> None:
    """``watch`` reads a log again and again: a log replaced by a FIFO between two polls
    stops that log with an error (watch reports it), never a blocked read."""
    path = tmp_path / "history.jsonl"
    path.write_text('{"step": 0, "loss": 1.0}\n', encoding="utf-8")
    source = RunSource("jsonl", path, [(path, "")])
    reader = reader_named("jsonl")
    follower = appended_lines(header=False)(FollowContext(source, reader.read, tmp_path, first_poll=True))
    assert follower.update(source) is not None
    path.unlink()
    os.mkfifo(path)
    with no_hang(), pytest.raises(files.NotRegularFile):
        follower.update(source)


@requires_fifo
def test_an_event_file_replaced_by_a_fifo_while_followed_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1700000000.host"
    path.write_bytes(scalar_records(range(3)))
    follower = TensorBoardFollower(tmp_path)
    assert follower.poll([(path, "")])
    path.unlink()
    os.mkfifo(path)
    with no_hang():
        follower.poll([(path, "")])
        run = follower.run()
    assert run.curve("loss").steps.tolist() == [0, 1, 2]
    assert any("a FIFO, not a regular file" in note.message for note in run.notes)
