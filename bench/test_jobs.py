"""Tests of bench/jobs.py's own logic: the tree it writes and the table it prints (no timing
is asserted)."""

from __future__ import annotations

from pathlib import Path

import jobs
import pytest

from rundoctor import api


@pytest.mark.skipif(not jobs.DEFAULT_MAKE_LOGS.is_file(), reason="make_logs.py is not beside the checkout")
def test_a_generated_tree_has_16_tags_of_200_steps_a_run_and_is_reused(tmp_path: Path) -> None:
    make_logs = jobs.load_make_logs(jobs.DEFAULT_MAKE_LOGS)
    tree = jobs.make_tree(tmp_path, 3, make_logs)
    runs = api.load(tree)
    assert [run.id.rsplit("/", 1)[-1] for run in runs] == ["run_00000", "run_00001", "run_00002"]
    assert {len(run.tags) for run in runs} == {16} and {run.points for run in runs} == {16 * 200}
    written = sorted(path.stat().st_mtime_ns for path in tree.rglob("events.*"))
    assert jobs.make_tree(tmp_path, 3, make_logs) == tree  # the same count: reused, not written again
    assert sorted(path.stat().st_mtime_ns for path in tree.rglob("events.*")) == written


def test_the_table_has_a_row_per_jobs_value_and_says_the_reports_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parents[1] / "sample_logs" / "problems"
    assert jobs.main(["--sweep", str(sample), "--jobs", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "| problems |" in out and "| rundoctor check --jobs 1 |" in out and "| rundoctor check --jobs 2 |" in out
    assert "reports byte-identical across --jobs" in out
