"""Tests of the benchmark harness's own logic (no timing is asserted anywhere).

    python -m pytest bench/test_run_bench.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import peers
import pytest
import run_bench as rb

PYTHON = sys.executable


def tool(name: str, code: str, **kwargs) -> rb.Tool:
    return rb.Tool(name, (PYTHON, "-c", code), **kwargs)


def result(name: str, seconds: list[float], *, group: str = "g", points: int | None = None,
           expected: int | None = None, failure: str = "") -> rb.ToolResult:
    counted = tool(name, "pass", count=rb.peer_points if expected is not None else None)
    samples = tuple(rb.Sample(s, 10_000_000, 0, False, points, "") for s in seconds)
    return rb.ToolResult(rb.Group(group, group, None, (counted,)), counted, samples, failure, expected)


def test_rundoctor_ls_points_reads_the_summary_line() -> None:
    out = "run_000  tensorboard  16,000 points\n...\n2 runs, 3,200,000 points, 0 unreadable inputs\n"
    assert rb.rundoctor_ls_points(out) == 3_200_000
    assert rb.rundoctor_ls_points("1 run, 7 points, 0 unreadable inputs") == 7
    assert rb.rundoctor_ls_points("no summary here") is None


def test_peer_points_reads_the_last_json_line() -> None:
    assert rb.peer_points('warning: something\n{"points": 42}\n') == 42
    assert rb.peer_points('{"bytes": 42}\n') is None
    assert rb.peer_points("") is None


def test_run_once_reports_exit_code_output_and_the_childs_own_memory() -> None:
    big = rb.run_once([PYTHON, "-c", "b = bytearray(150_000_000); print('1 runs, 5 points')"], Path("."), 60,
                      rb.rundoctor_ls_points)
    small = rb.run_once([PYTHON, "-c", "import sys; sys.exit('ValueError: broken input')"], Path("."), 60, None)
    assert (big.exit_code, big.points, big.timed_out) == (0, 5, False)
    assert big.peak_rss >= 150_000_000
    # the launcher keeps the harness's own memory out of the child's peak
    assert small.peak_rss < 60_000_000
    assert (small.exit_code, small.message) == (1, "ValueError: broken input")


def test_run_once_kills_a_tool_that_overruns_its_timeout() -> None:
    sample = rb.run_once([PYTHON, "-c", "import time; time.sleep(30)"], Path("."), 0.5, None)
    assert sample.timed_out
    assert rb.judge(tool("sleeper", "pass"), sample).startswith("timed out")


def test_run_once_reports_a_missing_program_as_a_failure() -> None:
    sample = rb.run_once(["no-such-program-anywhere"], Path("."), 10, None)
    assert sample.exit_code == 127
    assert "no-such-program-anywhere" in sample.message


def test_a_failing_tool_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    group = rb.Group("g", "g", "w", (
        tool("broken", "raise SystemExit(3)"),
        tool("fine", "print('{\"points\": 9}')", count=rb.peer_points),
        tool("slow peer", "print('{\"points\": 8}')", count=rb.peer_points, slow=True),
    ))
    manifest = {"workloads": {"w": {"scalar_points": 9, "bytes": 1}}}
    runner = rb.Runner(tmp_path, repeat=3, peer_repeat=2, warmup=True, timeout=60, log=lambda _: None)
    broken, fine, slow = runner.run_group(group, manifest)
    assert broken.failure == "warm-up: exit 3" and not broken.samples
    assert len(fine.samples) == 3 and fine.measured and fine.count_problem == ""
    assert len(slow.samples) == 2
    assert slow.count_problem == "read 8 points, MANIFEST.json has 9"
    verdict = rb.PairedTarget("goal", "g", "fine", "broken", 2, True).evaluate(rb.Results([broken, fine]), manifest)
    assert verdict.status == "not measured" and "broken failed" in verdict.measured


def test_paired_target_takes_the_median_of_round_by_round_ratios() -> None:
    peer = result("peer", [30.0, 66.0, 40.0, 10.0])
    ours = result("ours", [1.0, 2.0, 1.0])  # the fourth peer round has no partner
    results = rb.Results([peer, ours])
    assert rb.paired_ratios(peer, ours) == [30.0, 33.0, 40.0]
    met = rb.PairedTarget("goal", "g", "peer", "ours", 30, True).evaluate(results, {})
    missed = rb.PairedTarget("goal", "g", "peer", "ours", 34, True).evaluate(results, {})
    within = rb.PairedTarget("goal", "g", "ours", "peer", 0.05, False).evaluate(results, {})
    assert (met.status, missed.status, within.status) == ("met", "NOT MET", "met")
    assert "= 33.0x (median of 3 pairs" in met.measured


def test_a_target_says_when_a_tool_read_the_wrong_number_of_points() -> None:
    results = rb.Results([result("peer", [10.0], points=100, expected=100),
                          result("ours", [1.0], points=99, expected=100)])
    verdict = rb.PairedTarget("goal", "g", "peer", "ours", 5, True).evaluate(results, {})
    assert verdict.status == "met (counts differ)"
    assert "ours read 99 points, MANIFEST.json has 100" in verdict.measured


def test_time_and_memory_targets() -> None:
    manifest = {"workloads": {"w": {"scalar_points": 1_000_000, "bytes": 4_000_000}}}
    results = rb.Results([result("fast", [0.1, 0.12, 0.2]), result("base", [0.05])])
    assert rb.TimeTarget("goal", "g", "fast", 0.15).evaluate(results, manifest).status == "met"
    assert rb.TimeTarget("goal", "g", "fast", 0.11).evaluate(results, manifest).status == "NOT MET"
    # the samples' peak RSS is 10 MB: 2.5x a 4 MB file
    assert rb.FileSizeTarget("goal", "g", "fast", "w", 3).evaluate(results, manifest).status == "met"
    assert rb.FileSizeTarget("goal", "g", "fast", "w", 2).evaluate(results, manifest).status == "NOT MET"
    # budget: 10 MB baseline + 1 B x 1M points = 11 MB >= 10 MB; with 0 B per point, 10 MB <= 10 MB
    budget = rb.PointBudgetTarget("goal", "g", "fast", "base", "w", 0)
    assert budget.evaluate(results, manifest).status == "met"
    missing = rb.TimeTarget("goal", "other", "fast", 1).evaluate(results, manifest)
    assert missing.status == "not measured"


def test_stale_letters_finds_missing_and_changed_workloads(tmp_path: Path) -> None:
    (tmp_path / "a_big").mkdir()
    (tmp_path / "a_big" / "events.out.tfevents.1").write_bytes(b"x" * 10)
    manifest = {"scale": 0.5, "seed": rb.SEED, "workloads": {"a_big": {"bytes": 10}}}
    assert rb.stale_letters(tmp_path, manifest, 0.5, "a") == ""
    assert rb.stale_letters(tmp_path, manifest, 0.5, "ab") == "b"
    assert rb.stale_letters(tmp_path, manifest, 1.0, "a") == "a"
    (tmp_path / "a_big" / "events.out.tfevents.1").write_bytes(b"x" * 11)
    assert rb.stale_letters(tmp_path, manifest, 0.5, "a") == "a"


def test_reports_show_no_path_of_this_machine() -> None:
    assert rb.shown_path(rb.BENCH / "out" / "scale-1") == "bench/out/scale-1"
    assert rb.scrub(f"cannot read {rb.REPO}/bench/out/x") == "cannot read ./bench/out/x"
    cmd = rb.rundoctor_command(as_module=True)
    assert rb.shown_command(cmd.rd("ls", "ls", "a_big").argv, cmd) == "python -m rundoctor ls a_big"
    assert rb.shown_command(cmd.peer("p", "tbparse", "a_big").argv, cmd) == "python bench/peers.py tbparse a_big"


def test_markdown_table_escapes_pipes() -> None:
    table = rb.markdown_table(["a", "b"], [["x|y", "z"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | z |"]


@pytest.mark.parametrize("peer, text, axes, expected", [
    (peers.pandas_csv, "epoch,loss,step\n0,1.5,0\n0,,1\n0,0.5,2\n", ["epoch", "step"], 2),
    (peers.polars_ndjson, '{"_step": 0, "loss": 1.5}\n{"_step": 1}\n{"_step": 2, "loss": 0.5, "acc": 0.1}\n',
     ["_step"], 3),
])
def test_table_peers_count_the_metric_cells(tmp_path: Path, peer, text: str, axes: list[str], expected: int) -> None:
    path = tmp_path / "log"
    path.write_text(text)
    assert peer(str(path), axes) == expected


def test_event_file_peers_count_every_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path))
    for step in range(30):
        for tag in ("loss", "acc"):
            event = event_pb2.Event(step=step, wall_time=1.0 + step)
            event.summary.value.add(tag=tag, simple_value=0.5)
            writer.add_event(event)
    writer.close()
    assert peers.ea_scalars(str(tmp_path)) == 60
    assert peers.main(["tbparse", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"points": 60}
    assert peers.read_bytes(str(tmp_path)) > 60 * 20


def test_tensor_peer_decodes_tf2_scalars(tmp_path: Path) -> None:
    from tensorboard.compat.proto import event_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path))
    for step in range(25):
        event = event_pb2.Event(step=step, wall_time=1.0 + step)
        packed = tensor_pb2.TensorProto(dtype=1, tensor_content=b"\x00\x00\x80\x3f")  # 1.0f
        listed = tensor_pb2.TensorProto(dtype=1, float_val=[2.0])  # the other encoding
        event.summary.value.add(tag="epoch_loss", tensor=packed)
        event.summary.value.add(tag="epoch_acc", tensor=listed)
        writer.add_event(event)
    writer.close()
    assert peers.ea_tensors(str(tmp_path)) == 50
