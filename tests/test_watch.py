"""``rundoctor watch``: logs growing under a background writer, each finding printed once at
its step, ``--exit-on error`` soon after a NaN, runs that appear later, and records or lines
still being written that are neither read nor reported as damage."""

from __future__ import annotations

import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rundoctor import cli, discover
from rundoctor.config import Settings
from rundoctor.findings import Confidence, Finding, Severity
from rundoctor.readers.base import Reader
from rundoctor.series import Run
from rundoctor.watch import EXEC_TIMEOUT, FindingCommand, FindingTracker, Watcher, WatchOptions, watch
from tests.conftest import REPO
from tests.readers import tb_writer as w

T0 = 1_700_000_000.0
EVENT_NAME = "events.out.tfevents.1700000000.host.42.0"


def record(tag: str, value: float, step: int) -> bytes:
    return w.frame(w.scalar_event(tag, value, step, T0 + step).SerializeToString())


def loss(step: int) -> float:
    """A smooth, falling training loss."""
    return 0.2 + 2.0 * math.exp(-step / 20)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)
        file.flush()


@pytest.fixture
def watcher(tmp_path: Path) -> Callable[[Path], Watcher]:
    """A watcher on a directory, with every check and a scratch directory of its own."""

    def make(root: Path) -> Watcher:
        scratch = tmp_path / "scratch"
        scratch.mkdir(exist_ok=True)
        return Watcher(root, Settings(), scratch=scratch)

    return make


def keys(findings: list[Finding]) -> list[tuple[str, str, int | None]]:
    return [(finding.run, finding.code, finding.first_step) for finding in findings]


# ---------------------------------------------------------------------------------------
# The command, with a background writer


def test_watch_prints_each_finding_once_and_exits_soon_after_a_nan(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    event_file = runs / "tb" / EVENT_NAME
    csv_file = runs / "csv" / "metrics.csv"
    event_file.parent.mkdir(parents=True)
    csv_file.parent.mkdir(parents=True)
    w.write_event_file(event_file, [w.header_event()])
    csv_file.write_text("step,val_loss\n")
    go_nan = threading.Event()
    nan_written: list[float] = []

    def writer() -> None:
        for step in range(60):
            piece = record("train/loss", loss(step), step)
            line = f"{step},{loss(step) + 0.1!r}\n".encode()
            if step == 30:  # a transient +inf, completed with the next line: never seen last
                line = f"30,inf\n31,{loss(31) + 0.1!r}\n".encode()
            elif step == 31:
                line = b""
            # Records and lines land in two writes, a poll may fall between them.
            append(event_file, piece[:20])
            append(csv_file, line[:3])
            time.sleep(0.01)
            append(event_file, piece[20:])
            append(csv_file, line[3:])
            time.sleep(0.02)
        go_nan.wait(30)
        nan_written.append(time.monotonic())
        append(event_file, record("train/loss", math.nan, 60))

    process = subprocess.Popen(
        [sys.executable, "-m", "rundoctor", "watch", str(runs), "--interval", "0.1", "--timeout", "30",
         "--exit-on", "error", "--format", "json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(json.loads(line))
        if printed[-1]["code"] == "N001" and printed[-1]["run"] == "runs/csv/metrics.csv":
            go_nan.set()  # the watch is polling: now the NaN, timed
    process.wait(30)
    exited = time.monotonic()
    go_nan.set()
    thread.join(5)

    assert process.returncode == 1, process.stderr.read() if process.stderr else ""
    assert nan_written and exited - nan_written[0] < 3.0
    by_key = [(item["run"], item["code"], tuple(item["tags"])) for item in printed]
    assert len(by_key) == len(set(by_key)), printed  # nothing printed twice
    found = {(item["run"], item["code"]): item for item in printed}
    csv_inf = found["runs/csv/metrics.csv", "N001"]
    assert (csv_inf["steps"]["first"], csv_inf["severity"], csv_inf["tags"]) == (30, "warning", ["val_loss"])
    tb_nan = found["runs/tb", "N001"]
    assert (tb_nan["steps"]["first"], tb_nan["severity"], tb_nan["tags"]) == (60, "error", ["train/loss"])
    assert not any(item["code"] == "L002" for item in printed)  # half-written is not truncated


def test_text_lines_and_ctrl_c_ends_the_watch_quietly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    w.write_event_file(
        run / EVENT_NAME,
        [w.header_event()] + [w.scalar_event("train/loss", loss(s), s, T0) for s in range(40)]
        + [w.scalar_event("train/loss", math.nan, 40, T0)],
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "rundoctor", "watch", str(run), "--interval", "0.1", "--timeout", "30",
         "--select", "non-finite"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    process.wait(10)

    assert first.startswith("[step 40] run: ERROR N001 non-finite: train/loss turned non-finite at step 40")
    assert process.returncode == 0
    assert process.stderr.read() == "" and process.stdout.read() == ""


def test_once_and_exit_on_levels(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    lines = [f"{step},{loss(step)}" for step in range(40)]
    lines[20] = "20,inf"  # a transient non-finite value: a warning
    (run / "metrics.csv").write_text("step,train_loss\n" + "\n".join(lines) + "\n")
    runner = CliRunner()

    never = runner.invoke(cli.app, ["watch", str(run), "--once", "--select", "non-finite"])
    error = runner.invoke(cli.app, ["watch", str(run), "--once", "--select", "non-finite", "--exit-on", "error"])
    warning = runner.invoke(cli.app, ["watch", str(run), "--once", "--select", "non-finite", "--exit-on", "warning"])

    assert never.exit_code == 0 and never.stdout.startswith("[step 20] run/metrics.csv: WARNING N001")
    assert error.exit_code == 0
    assert warning.exit_code == 1 and warning.stdout == never.stdout
    assert runner.invoke(cli.app, ["watch", str(run), "--exit-on", "fatal"]).exit_code != 0


# ---------------------------------------------------------------------------------------
# Polls, in process


def test_a_run_that_appears_after_the_watch_started_is_picked_up(
    tmp_path: Path, watcher: Callable[[Path], Watcher]
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    watch = watcher(root)
    assert watch.poll() == []

    w.write_event_file(
        root / "later" / EVENT_NAME,
        [w.header_event()] + [w.scalar_event("train/loss", loss(s), s, T0) for s in range(30)]
        + [w.scalar_event("train/loss", math.nan, 30, T0)],
    )
    found = watch.poll()

    assert ("runs/later", "N001", 30) in keys(found)
    assert watch.poll() == []  # nothing new: nothing printed again


def test_a_half_written_event_record_waits_and_is_not_truncation(
    tmp_path: Path, watcher: Callable[[Path], Watcher]
) -> None:
    run = tmp_path / "run"
    path = run / EVENT_NAME
    w.write_event_file(path, [w.header_event()] + [w.scalar_event("train/loss", loss(s), s, T0) for s in range(30)])
    nan = record("train/loss", math.nan, 30)
    append(path, nan[:-7])
    watch = watcher(run)

    first = watch.poll()
    append(path, nan[-7:])
    second = watch.poll()

    assert not any(finding.code in ("L002", "N001") for finding in first)
    assert ("run", "N001", 30) in keys(second)
    assert not any(finding.code == "L002" for finding in second)


def recorded_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the watch hands to readers, from now on."""
    read: list[Path] = []
    reader_named = discover.reader_named

    def recording_reader(name: str) -> Reader:
        reader = reader_named(name)

        def recording(source: discover.RunSource, **options: bool) -> Run:
            read.append(source.files[0][0])
            return reader.read(source, **options)

        return replace(reader, read=recording)

    monkeypatch.setattr(discover, "reader_named", recording_reader)
    return read


def test_csv_lines_are_read_once_complete_and_only_the_new_ones(
    tmp_path: Path, watcher: Callable[[Path], Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = run / "metrics.csv"
    path.write_text("step,train_loss\n" + "".join(f"{s},{loss(s)}\n" for s in range(30)) + "30,1e")
    read = recorded_reads(monkeypatch)
    watch = watcher(run)

    first = watch.poll()  # "30,1e" is being written (a junk cell as it stands): not read yet
    append(path, b"-3\n31,0.5\n")
    second = watch.poll()
    append(path, b"32,0.4\n33,na")
    third = watch.poll()
    append(path, b"n\n")
    fourth = watch.poll()

    assert first == []
    # The whole log once its line was complete, then only the new lines (via scratch files).
    assert read[0] == path and len(read) == 3
    assert all(part.name == path.name and tmp_path / "scratch" in part.parents for part in read[1:])
    assert not any(finding.code in ("N001", "L002") for finding in second + third)
    assert third == []  # 32 is fine, 33 is not complete
    assert [(f.code, f.first_step, f.severity) for f in fourth] == [("N001", 33, Severity.ERROR)]


def test_a_csv_rewritten_with_a_new_header_is_read_again_whole(
    tmp_path: Path, watcher: Callable[[Path], Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = run / "metrics.csv"
    path.write_text("step,train_loss\n" + "".join(f"{s},{loss(s)}\n" for s in range(30)))
    watch = watcher(run)
    watch.poll()
    read = recorded_reads(monkeypatch)

    # Lightning rewrites metrics.csv, header included, when a new metric appears.
    rows = "".join(f"{s},{loss(s)},\n" for s in range(30)) + "30,0.3,nan\n"
    path.write_text("step,train_loss,val_loss\n" + rows)
    found = watch.poll()

    assert read == [path]  # the whole log, not its tail under the old header
    assert [(f.code, f.tags, f.first_step) for f in found] == [("N001", ("val_loss",), 30)]


def test_json_lines_are_read_the_same_way(tmp_path: Path, watcher: Callable[[Path], Watcher]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = run / "wandb-history.jsonl"
    path.write_text("".join(json.dumps({"_step": s, "loss": loss(s)}) + "\n" for s in range(30)))
    watch = watcher(run)
    watch.poll()

    append(path, b'{"_step": 30, "loss": 0.3}\n{"_step": 31, "lo')
    half = watch.poll()
    append(path, b'ss": NaN}\n')
    nan = watch.poll()

    assert not any(finding.code in ("N001", "L002") for finding in half)
    assert [(f.code, f.first_step, f.severity) for f in nan] == [("N001", 31, Severity.ERROR)]


def test_a_damaged_appended_line_is_reported_at_its_line_in_the_log(
    tmp_path: Path, watcher: Callable[[Path], Watcher]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = run / "metrics.csv"
    path.write_text("step,val_loss\n" + "".join(f"{s},{loss(s)}\n" for s in range(30)))
    watch = watcher(run)
    assert not any(finding.code == "L002" for finding in watch.poll())

    append(path, b"30,1.0,7\n31,0.5\n")
    (damaged,) = [finding for finding in watch.poll() if finding.code == "L002"]

    assert damaged.evidence["locations"] == ["line 32"]  # the log's line, not the new lines'
    assert "line 32" in damaged.message


def test_rewritten_documents_are_read_once_they_hold_still(
    tmp_path: Path, watcher: Callable[[Path], Watcher]
) -> None:
    run = tmp_path / "out"
    run.mkdir()
    state = run / "trainer_state.json"

    def save(losses: list[float]) -> None:
        history = [{"step": 10 * (i + 1), "loss": value} for i, value in enumerate(losses)]
        state.write_text(json.dumps({"log_history": history, "global_step": 10 * len(losses)}))

    save([loss(step) for step in range(20)])
    watch = watcher(run)
    assert not any(finding.code == "N001" for finding in watch.poll())
    save([loss(step) for step in range(20)] + [float("nan")])

    changed = watch.poll()  # just rewritten: it might still be being written
    held = watch.poll()

    assert not any(finding.code == "N001" for finding in changed)
    assert ("out/trainer_state.json", "N001", 210) in keys(held)


# ---------------------------------------------------------------------------------------
# Which findings are new


def finding(first: int | None, last: int | None = None, *, code: str = "C003", tags: tuple[str, ...] = ("loss",)) -> Finding:
    return Finding(
        check="loss-plateau", code=code, severity=Severity.WARNING, confidence=Confidence.HIGH, run="r",
        tags=tags, first_step=first, last_step=last if last is not None else first, message="m",
        evidence={}, advice="a",
    )


def test_a_growing_finding_or_a_moving_first_step_is_not_new() -> None:
    tracker = FindingTracker()

    assert tracker.new("r", [finding(100, 120)]) == [finding(100, 120)]
    assert tracker.new("r", [finding(100, 180)]) == []  # the step range grew
    assert tracker.new("r", [finding(104, 190)]) == []  # a smoothed onset moved
    later = finding(400)
    assert tracker.new("r", [finding(104, 190), later]) == [later]  # a second event
    assert tracker.new("r", [later]) == []
    assert tracker.new("r", [finding(110), later]) == []  # back after a while, moved
    other_tags = replace(later, tags=("val_loss",))
    assert tracker.new("r", [finding(110), later, other_tags]) == [other_tags]
    worse = replace(later, severity=Severity.ERROR)
    assert tracker.new("r", [finding(110), worse, other_tags]) == [worse]  # its severity rose
    assert tracker.new("r", [finding(110), worse, other_tags]) == []


def test_the_latest_findings_are_the_new_ones_when_several_appear() -> None:
    tracker = FindingTracker()
    tracker.new("r", [finding(50)])

    assert tracker.new("r", [finding(55), finding(300), finding(500)]) == [finding(300), finding(500)]
    assert tracker.new("r", [finding(None, code="L002", tags=())]) == [finding(None, code="L002", tags=())]
    assert tracker.new("other", [finding(55)]) == [finding(55)]  # another run's findings are its own


# ---------------------------------------------------------------------------------------
# A path that does not exist yet


def test_a_path_that_does_not_exist_yet_is_waited_for_then_watched(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "later"
    command, record = recorder(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "rundoctor", "watch", str(run), "--interval", "0.1", "--timeout", "30",
         "--exit-on", "error", "--format", "json", "--exec", command],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stderr is not None and process.stdout is not None
    waiting = process.stderr.readline()  # said before the run exists
    time.sleep(0.5)  # several polls of a missing path
    run.mkdir(parents=True)
    path = run / "metrics.csv"
    path.write_text("step,train_loss\n")
    for step in range(40):
        append(path, f"{step},{loss(step)!r}\n".encode())
        time.sleep(0.005)
    append(path, b"40,nan\n")
    process.wait(30)

    assert waiting == f"rundoctor: waiting for {run} ...\n"
    assert process.returncode == 1
    assert process.stderr.read() == "recorded N001 40\n"  # waiting said once; the command ran before the exit
    printed = [json.loads(line) for line in process.stdout.read().splitlines()]
    assert ("N001", 40, "error") in [(item["code"], item["steps"]["first"], item["severity"]) for item in printed]
    assert [call["finding"] for call in recorded(record)] == [item for item in printed if item["severity"] == "error"]


Main = Callable[..., tuple[int, str]]


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Main:
    """The command line in-process as ``main()`` runs it (usage errors exit 2): (code, stderr)."""

    def invoke(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["rundoctor", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        return code, capsys.readouterr().err

    return invoke


def test_a_path_that_cannot_appear_or_never_does_is_exit_2(tmp_path: Path, main: Main) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory\n")
    later = tmp_path / "later"

    under_a_file = main("watch", str(a_file / "run" / "logs"), "--timeout", "30")
    once = main("watch", str(later), "--once")
    started = time.monotonic()
    never = main("watch", str(later), "--interval", "0.05", "--timeout", "0.3")
    waited = time.monotonic() - started

    # at once, without waiting
    assert under_a_file == (2, f"rundoctor: {a_file / 'run' / 'logs'} cannot exist: {a_file} is not a directory\n")
    assert once == (2, f"rundoctor: no such file or directory: {later}\n")  # one poll does not wait
    assert never == (2, f"rundoctor: waiting for {later} ...\nrundoctor: {later} did not appear within 0.3 s\n")
    assert 0.3 <= waited < 10


# ---------------------------------------------------------------------------------------
# --exec: a command per new finding

RECORDER = """\
import json, os, sys
finding = json.loads(sys.stdin.read())
variables = {key: value for key, value in os.environ.items() if key.startswith("RUNDOCTOR_")}
with open(sys.argv[1], "a", encoding="utf-8") as record:
    record.write(json.dumps({"argv": sys.argv[2:], "env": variables, "finding": finding}) + "\\n")
print("recorded", finding["code"], finding["steps"]["first"])
sys.exit(int(os.environ.get("RECORDER_EXIT", "0")))
"""


def recorder(tmp_path: Path) -> tuple[str, Path]:
    """An --exec command line that records what it was given, and the file it records to
    (its name has a space and a quote: the command line is split as a shell would)."""
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    record = tmp_path / "what it's given.jsonl"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(record))} --extra 'two words'"
    return command, record


def recorded(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def csv_run(directory: Path, values: dict[int, str]) -> Path:
    """A falling training loss over 40 steps, some steps' values replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [f"{step},{values.get(step, repr(loss(step)))}" for step in range(40)]
    path = directory / "metrics.csv"
    path.write_text("step,train_loss\n" + "\n".join(rows) + "\n")
    return path


def watch_once(
    root: Path, command: str, *, fail_on: Severity | None = Severity.ERROR, timeout: float | None = None
) -> tuple[int, list[dict[str, Any]], str]:
    """One poll of ``root`` with ``--exec command``: the exit code, the findings printed (JSON
    lines) and stderr."""
    out, err = io.StringIO(), io.StringIO()
    options = WatchOptions(once=True, json_lines=True, on_finding=FindingCommand.parse(command, fail_on, timeout))
    code = watch(root, Settings(select=("N001", "C006")), options, out, err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_exec_runs_once_per_new_finding_at_or_above_fail_on_with_the_finding_on_stdin_and_in_the_environment(
    tmp_path: Path,
) -> None:
    command, record = recorder(tmp_path)
    csv_run(tmp_path / "runs" / "a", {39: "nan"})  # an error (N001) and, before it, an info (C006)

    code, printed, err = watch_once(tmp_path / "runs", command)

    assert code == 0
    (call,) = recorded(record)  # the error only: the info is below --fail-on
    assert call["argv"] == ["--extra", "two words"]
    assert call["env"] == {
        "RUNDOCTOR_RUN": "runs/a/metrics.csv", "RUNDOCTOR_CHECK": "non-finite", "RUNDOCTOR_SEVERITY": "error",
        "RUNDOCTOR_MESSAGE": call["finding"]["message"],
    }
    assert call["finding"] == next(item for item in printed if item["code"] == "N001")  # as watch prints it
    assert sorted(item["code"] for item in printed) == ["C006", "N001"]
    assert err == "recorded N001 39\n"  # the command's output on stderr: stdout holds only findings

    watch_once(tmp_path / "runs", command, fail_on=Severity.INFO)
    assert sorted(call["finding"]["code"] for call in recorded(record)[1:]) == ["C006", "N001"]


def test_log_text_reaches_the_command_only_as_data(tmp_path: Path) -> None:
    command, record = recorder(tmp_path)
    hostile = "a;$(touch pwned)`touch pwned`\n\x1b[2J"  # a run directory named by whoever wrote the logs
    csv_run(tmp_path / "runs" / hostile, {39: "nan"})

    code, printed, _ = watch_once(tmp_path / "runs", command)

    assert code == 0 and not list(tmp_path.rglob("pwned"))
    (call,) = recorded(record)
    assert call["finding"]["run"] == f"runs/{hostile}/metrics.csv"  # exact in the JSON on stdin
    assert call["finding"] == next(item for item in printed if item["code"] == "N001")
    # escaped in the environment: no raw newline or escape sequence for the command to print
    assert call["env"]["RUNDOCTOR_RUN"] == "runs/a;$(touch pwned)`touch pwned`\\n\\x1b[2J/metrics.csv"


def test_a_failing_or_hanging_command_is_reported_and_the_watch_goes_on(tmp_path: Path) -> None:
    command, record = recorder(tmp_path)
    csv_run(tmp_path / "runs" / "a", {39: "nan"})
    csv_run(tmp_path / "runs" / "b", {38: "nan", 39: "nan"})
    failing = f"env RECORDER_EXIT=4 {command}"
    # a command that hangs, and a child of it that would hold its output open
    hanging = "sh -c 'sleep 60 & sleep 60'"

    code, printed, failed = watch_once(tmp_path / "runs", failing)
    started = time.monotonic()
    _, printed_again, hung = watch_once(tmp_path / "runs", hanging, timeout=0.3)
    took = time.monotonic() - started

    assert code == 0 and len(recorded(record)) == 2  # one call per error finding, the first failure notwithstanding
    assert printed == printed_again and [item["code"] for item in printed].count("N001") == 2
    assert "rundoctor: --exec env exited with status 4 for runs/a/metrics.csv non-finite; watching on\n" in failed
    assert "rundoctor: --exec env exited with status 4 for runs/b/metrics.csv non-finite; watching on\n" in failed
    assert hung.count("rundoctor: --exec sh timed out after 0.3 s and was stopped for") == 2
    assert took < 5  # stopped with its child: neither waited for


def test_exec_options_are_checked_before_the_watch_starts(tmp_path: Path, main: Main) -> None:
    run = tmp_path / "run"
    csv_run(run, {})

    def usage(*args: str) -> str:
        code, err = main("watch", str(run), "--once", *args)
        assert code == 2, err
        return err

    assert "give --exec CMD" in usage("--fail-on", "warning")
    assert "give --exec CMD" in usage("--exec-timeout", "5")
    assert "--exec: command not found: no-such-program-here" in usage("--exec", "no-such-program-here --flag")
    assert "--exec: No closing quotation" in usage("--exec", "echo 'unbalanced")
    assert "--exec needs a command" in usage("--exec", "  ")
    assert "would never run" in usage("--exec", "true", "--fail-on", "never")
    assert "fail-on must be one of" in usage("--exec", "true", "--fail-on", "fatal")
    assert main("watch", str(run), "--once", "--exec", "true", "--fail-on", "info") == (0, "")


def test_the_exec_timeout_default_is_the_one_documented() -> None:
    result = CliRunner().invoke(cli.app, ["watch", "--help"], env={"COLUMNS": "200"})

    assert f"stopped [default: {EXEC_TIMEOUT:g}]" in result.output
    assert FindingCommand.parse("true", Severity.ERROR, None).timeout == EXEC_TIMEOUT


def test_watch_output_neutralises_log_controlled_text() -> None:
    from rundoctor.watch import finding_json, finding_line

    finding = Finding(
        check="non-finite", code="N001", severity=Severity.ERROR, confidence=Confidence.HIGH,
        run="runs/x\n::error::pwned\x1b[2J", tags=("loss",), first_step=3, last_step=9,
        message="loss\u202e went NaN", evidence={}, advice="",
    )
    line = finding_line(finding)
    assert line.count("\n") == 1 and "\x1b" not in line and "\u202e" not in line
    assert "runs/x\\n::error::pwned\\x1b[2J" in line
    document = finding_json(finding)
    assert document.count("\n") == 1 and "\u202e" not in document
    assert json.loads(document)["run"] == finding.run
