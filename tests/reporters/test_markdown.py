from __future__ import annotations

import re
import unicodedata

from rundoctor.findings import Severity
from rundoctor.report import Report
from rundoctor.reporters import RenderOptions
from rundoctor.reporters.markdown import MAX_CHARS, Block, escape, fit, render
from tests.reporters.reports import finding, healthy_run, sample_report, sweep_report, twin_report


def table_rows(text: str) -> list[list[str]]:
    """Cells of every table row, split on unescaped pipes as GitHub does."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| "):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([cell.strip() for cell in cells])
    return rows


def test_a_table_of_runs_worst_first_with_verdict_markers_and_counts() -> None:
    rows = table_rows(render(sample_report(), RenderOptions()))
    assert rows[0] == ["Run", "Verdict", "Problem", "Errors", "Warnings", "Info"]
    assert rows[1] == ["---", "---", "---", "---:", "---:", "---:"]
    assert rows[2:] == [
        ["sweep/lr\\_0.1", "**serious**", "training diverged (NaN/inf)", "1", "1", "1"],
        ["sweep/lr\\_0.001", "**problem**", "loss plateaued at a fixed learning rate", "0", "1", "0"],
        ["sweep/lr\\_0.01", "healthy", "", "0", "0", "0"],
    ]
    assert all(len(row) == 6 for row in rows)


def test_each_run_section_leads_with_its_diagnosis() -> None:
    text = render(sample_report(), RenderOptions())
    section = text[text.index("### sweep/lr\\_0.1") :].split("\n### ")[0]
    assert section.splitlines()[2] == (
        "**SERIOUS: training diverged (NaN/inf)** — train/loss is NaN from step 600 to the end (400 of 1,000 points)"
    )
    assert "still-improving" not in section
    assert "1 finding superseded by the diagnosis; see --format json" in text


def test_findings_per_run_in_severity_order_with_steps_and_advice() -> None:
    text = render(sample_report(), RenderOptions())
    section = text[text.index("### sweep/lr\\_0.1") :].split("\n### ")[0]
    items = [line for line in section.splitlines() if line.startswith("- ")]
    assert items == [
        "- **error** `N001` non-finite (steps 600..999): train/loss is NaN from step 600 to the end "
        "(400 of 1,000 points)<br>*Advice:* Lower the learning rate or clip gradients; check the data for NaN.",
        "- **warning** `G002` overfitting (steps 500..950), medium confidence: val/loss rose 38% above its "
        "minimum at step 500 while train/loss kept falling<br>*Advice:* Stop earlier or regularise.",
        "- **info** `R001` short-run: the run is short<br>*Advice:* try something else",
    ]
    assert "### sweep/lr\\_0.01\n" not in text  # healthy runs have no section


def test_log_text_cannot_break_the_markup() -> None:
    text = render(sample_report(), RenderOptions())
    item = next(line for line in text.splitlines() if "P001" in line)
    assert "50% of \\| steps" in item
    assert "\\<tag\\> \\& \"quoted\" \\[bold\\]x\\[/bold\\]" in item
    assert "b\\\\nsecond line" in item  # a newline in a message is written \n and does not end the item
    assert escape("a*b*_c_ `d` ~e~") == "a\\*b\\*\\_c\\_ \\`d\\` \\~e\\~"
    assert escape("x\x1b[2J\u202ey\r\n") == "x\\\\x1b\\[2J\\\\u202ey\\\\r\\\\n"  # renders as x\x1b[2J\u202ey\r\n


HOSTILE = "a|b`c`<script>x</script>\n::error::pwned\r\n## head\x1b[31m\u202eevil\x85z"


def test_hostile_names_stay_inside_their_cell_and_their_line() -> None:
    run = healthy_run(HOSTILE)
    report = Report(runs=(run,), findings=(
        finding(run.id, "spike", "S001", Severity.ERROR, message=f"{HOSTILE} spiked", advice=HOSTILE),
    ))
    text = render(report, RenderOptions())
    rows = table_rows(text)
    assert len(rows[2]) == 6 and rows[2][1] == "**serious**"
    for line in text.splitlines():
        assert not line.lstrip().startswith(("::", "## head", "<script"))
    assert "<script>" not in text and "\\<script\\>" in text
    assert not [char for char in text if char != "\n" and unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}]


def test_errors_failed_checks_skips_and_result() -> None:
    text = render(sample_report(), RenderOptions())
    assert "### Could not read\n\n- broken/events.out.tfevents.1: truncated record at offset 40" in text
    assert "### Checks that failed\n\n- `S001` loss-spike on sweep/lr\\_0.1: ValueError: boom" in text
    assert "2 checks skipped for missing series; see --format json" in text
    assert text.rstrip().endswith("**Result: 1 finding at or above error (exit 1)**")


def test_a_sweep_folds_healthy_runs_into_details() -> None:
    text = render(sweep_report(runs=200, sick_every=10), RenderOptions())
    rows = table_rows(text)
    assert len(rows) == 2 + 20
    assert "<details><summary>180 healthy runs</summary>" in text
    assert text.count("\n- sweep/run\\_") == 180
    assert text.index("</details>") < text.index("### sweep/run\\_000")


def test_one_run_written_in_two_formats_is_one_row_and_one_section() -> None:
    text = render(twin_report(), RenderOptions())
    assert text.startswith("## rundoctor: 2 runs, 1 error, 1 info\n")
    assert [row[0] for row in table_rows(text)[2:]] == ["out/train", "out/other.csv"]  # serious first
    assert "### out/train\n" in text and "### out/train/results.csv" not in text
    assert "*Also written as:* out/train/results.csv (ultralytics-csv)" in text
    assert text.count("`N001` non-finite") == 1 and "also in ultralytics-csv" in text
    assert "`M004` class-imbalance (steps 30..49), in ultralytics-csv:" in text


def test_a_huge_sweep_is_cut_to_fit_a_comment_with_a_pointer_to_the_full_report() -> None:
    report = sweep_report(runs=2000, sick_every=1)  # every run has an error: 2,000 rows and sections
    text = render(report, RenderOptions())
    assert len(text) <= MAX_CHARS
    lines = text.splitlines()
    assert lines[-1] == "**Result: 2,000 findings at or above error (exit 1)**"
    note = next(line for line in lines if line.startswith("*Cut to fit a pull-request comment (65,536 characters): "))
    shown = len(table_rows(text)) - 2
    assert 0 < shown < 2000
    assert f"{2000 - shown:,} table rows, 2,000 run sections not shown." in note
    assert "`rundoctor check`" in note and "--format markdown" in note and "artifacts" in note
    assert [row[0] for row in table_rows(text)[2:5]] == ["sweep/run\\_000", "sweep/run\\_001", "sweep/run\\_002"]


def test_a_report_within_the_limit_is_not_cut() -> None:
    text = render(sweep_report(runs=100, sick_every=1), RenderOptions())
    assert len(text) < MAX_CHARS and "Cut to fit" not in text and text.count("\n### sweep/run") == 100


def test_fit_leaves_out_whole_blocks_and_every_later_block_of_their_kind() -> None:
    head, tail = ["# h"], ["end"]
    blocks = [Block("row", ("r" * 10,)), Block("row", ("r" * 300,)), Block("row", ("r",)),
              Block("section", ("s" * 20,)), Block("healthy run", ("h" * 900,), count=7)]
    every = fit(head, blocks, tail, limit=10_000)
    assert every == ["# h", "r" * 10, "r" * 300, "r", "s" * 20, "h" * 900, "end"]  # all fits: nothing said
    cut = fit(head, blocks, tail, limit=900)
    assert cut[:4] == ["# h", "r" * 10, "s" * 20, ""]  # the short third row does not follow the cut second
    assert cut[4].startswith("*Cut to fit a pull-request comment (900 characters): 2 rows, 7 healthy runs not shown.")
    assert cut[-1] == "end"
